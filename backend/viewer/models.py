"""Measurements drawn in the viewer, kept per user and study, keyed by the annotation UID the browser made."""
from __future__ import annotations

from django.conf import settings
from django.db import models


class MeasurementKind(models.TextChoices):
    LENGTH = "length", "Length"
    ANGLE = "angle", "Angle"
    ELLIPSE = "ellipse", "Ellipse ROI"
    RECTANGLE = "rectangle", "Rectangle ROI"
    PROBE = "probe", "Probe"
    ARROW = "arrow", "Arrow annotation"


class Measurement(models.Model):
    """One measurement on one image frame. Points are patient coordinates in mm (DICOM world space)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="measurements")
    uid = models.CharField(max_length=64, help_text="Annotation UID chosen by the viewer")
    kind = models.CharField(max_length=16, choices=MeasurementKind.choices)
    study_instance_uid = models.CharField(max_length=64, db_index=True)
    series_instance_uid = models.CharField(max_length=64)
    sop_instance_uid = models.CharField(max_length=64)
    frame_number = models.PositiveIntegerField(default=1)
    frame_of_reference_uid = models.CharField(max_length=64, blank=True, default="")
    points = models.JSONField(help_text="[[x, y, z], ...] in mm, patient coordinate system")
    view_plane_normal = models.JSONField(null=True, blank=True)
    view_up = models.JSONField(null=True, blank=True)
    label = models.CharField(max_length=256, blank=True, default="")
    stats = models.JSONField(default=dict, blank=True, help_text="length, angle, area, mean, stdDev, min, max, unit")
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created", "id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "study_instance_uid", "uid"], name="viewer_measurement_unique_uid"),
        ]
        indexes = [models.Index(fields=["user", "study_instance_uid"], name="viewer_meas_user_study")]

    def __str__(self) -> str:
        return f"{self.kind} {self.uid} on {self.sop_instance_uid}#{self.frame_number}"
