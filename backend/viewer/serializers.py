from __future__ import annotations

import math
import re

from rest_framework import serializers

from .models import Measurement, MeasurementKind

UID_RE = re.compile(r"^[0-9]+(\.[0-9]+)*$")
ANNOTATION_UID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
STAT_KEYS = {"length", "angle", "area", "mean", "stdDev", "min", "max", "value"}
UNIT_KEYS = {"unit", "areaUnit"}
MAX_POINTS = 64


def _dicom_uid(value: str) -> str:
    if not value or len(value) > 64 or not UID_RE.match(value):
        raise serializers.ValidationError("must be a DICOM UID (digits and dots, at most 64 characters)")
    return value


def _vector(value, name: str):
    if value is None:
        return None
    if not isinstance(value, list | tuple) or len(value) != 3 or not all(_finite(v) for v in value):
        raise serializers.ValidationError(f"{name} must be three finite numbers")
    return [float(v) for v in value]


def _finite(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


class MeasurementSerializer(serializers.ModelSerializer):
    kind = serializers.ChoiceField(choices=MeasurementKind.choices)

    class Meta:
        model = Measurement
        fields = [
            "id", "uid", "kind", "series_instance_uid", "sop_instance_uid", "frame_number", "frame_of_reference_uid",
            "points", "view_plane_normal", "view_up", "label", "stats", "created", "updated",
        ]
        read_only_fields = ["id", "created", "updated"]

    def validate_uid(self, value: str) -> str:
        if not ANNOTATION_UID_RE.match(value):
            raise serializers.ValidationError("must be 1-64 letters, digits, '.', '_' or '-'")
        return value

    validate_series_instance_uid = staticmethod(_dicom_uid)
    validate_sop_instance_uid = staticmethod(_dicom_uid)

    def validate_frame_of_reference_uid(self, value: str) -> str:
        return _dicom_uid(value) if value else ""

    def validate_points(self, value):
        if not isinstance(value, list) or not 1 <= len(value) <= MAX_POINTS:
            raise serializers.ValidationError(f"points must be a list of 1 to {MAX_POINTS} [x, y, z] triples")
        return [_vector(p, "each point") for p in value]

    def validate_view_plane_normal(self, value):
        return _vector(value, "view_plane_normal")

    def validate_view_up(self, value):
        return _vector(value, "view_up")

    def validate_stats(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("stats must be an object")
        clean = {}
        for k, v in value.items():
            if k in STAT_KEYS and _finite(v):
                clean[k] = float(v)
            elif k in UNIT_KEYS and isinstance(v, str) and len(v) <= 16:
                clean[k] = v
            else:
                raise serializers.ValidationError(f"unexpected stats entry {k!r}; allowed: {sorted(STAT_KEYS | UNIT_KEYS)}")
        return clean

    def validate(self, attrs):
        kind = attrs.get("kind", getattr(self.instance, "kind", None))
        points = attrs.get("points", getattr(self.instance, "points", None)) or []
        needed = {"length": 2, "angle": 3, "ellipse": 2, "rectangle": 2, "probe": 1, "arrow": 2}.get(kind, 1)
        if len(points) < needed:
            raise serializers.ValidationError({"points": f"a {kind} measurement needs at least {needed} points"})
        return attrs
