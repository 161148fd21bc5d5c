"""AI analysis jobs, their streamed partial results, and the rules that start them on ingest."""
from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class JobStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"


FINAL_STATUSES = {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED}


class AnalysisJob(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    study_instance_uid = models.CharField(max_length=64, db_index=True)
    series_instance_uid = models.CharField(max_length=64, db_index=True)
    model_name = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True)
    progress = models.FloatField(default=0)  # percent
    stage = models.CharField(max_length=64, blank=True)
    reason = models.TextField(blank=True)  # why it failed, for a human
    cancel_requested = models.BooleanField(default=False)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    trigger = models.CharField(max_length=16, default="user")  # "user" or "auto"
    queue = models.CharField(max_length=16, default="cpu")
    attempts = models.PositiveSmallIntegerField(default=0)
    worker = models.CharField(max_length=128, blank=True)
    heartbeat = models.DateTimeField(null=True, blank=True)  # last sign of life of the worker running it
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(default=dict, blank=True)  # stored UIDs and the findings summary

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.model_name} on {self.series_instance_uid} ({self.status})"


class PartialResult(models.Model):
    """One streamed piece (a mask slab, a detection), kept so a viewer that joins mid-job can catch up."""

    job = models.ForeignKey(AnalysisJob, on_delete=models.CASCADE, related_name="partials")
    seq = models.PositiveIntegerField()
    kind = models.CharField(max_length=16)
    payload = models.JSONField()

    class Meta:
        ordering = ["seq"]
        constraints = [models.UniqueConstraint(fields=["job", "seq"], name="unique_partial_seq")]


class AutoRule(models.Model):
    """Run ``model_name`` on every new series that matches (empty fields match anything)."""

    name = models.CharField(max_length=64, unique=True)
    modality = models.CharField(max_length=16, blank=True)
    body_part_examined = models.CharField(max_length=16, blank=True)
    series_description_contains = models.CharField(max_length=64, blank=True)
    min_instances = models.PositiveIntegerField(default=1)
    model_name = models.CharField(max_length=64)
    enabled = models.BooleanField(default=True)

    def __str__(self) -> str:
        return f"{self.name}: {self.modality or '*'}/{self.body_part_examined or '*'} -> {self.model_name}"

    def matches(self, modality: str, body_part: str, description: str, instances: int) -> bool:
        return (
            self.enabled
            and (not self.modality or self.modality.upper() == modality.upper())
            and (not self.body_part_examined or self.body_part_examined.upper() == body_part.upper())
            and (not self.series_description_contains
                 or self.series_description_contains.lower() in description.lower())
            and instances >= self.min_instances
        )
