"""The audit trail for administrators: who accessed which study, when, from where."""
from __future__ import annotations

from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.roles import Capability, has_capability

from .log import flush, record
from .models import AuditEvent

MAX_ROWS = 1000


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = ["time", "username", "action", "study_instance_uid", "series_instance_uid", "source_ip",
                  "outcome", "detail"]


@api_view(["GET"])
def audit_events(request: Request) -> Response:
    """``?study=&user=&action=&limit=``: newest first."""
    if not has_capability(request.user, Capability.VIEW_AUDIT):
        raise PermissionDenied("Only administrators may read the audit trail.")
    flush()  # events still queued by this process's writer (audit.log) are read too
    rows = AuditEvent.objects.all()
    if study := request.query_params.get("study"):
        rows = rows.filter(study_instance_uid=study)
    if user := request.query_params.get("user"):
        rows = rows.filter(username=user)
    if action := request.query_params.get("action"):
        rows = rows.filter(action__startswith=action)
    try:
        limit = min(max(int(request.query_params.get("limit", 200)), 1), MAX_ROWS)
    except ValueError:
        raise serializers.ValidationError({"limit": "must be an integer"}) from None
    record(request.user, "audit.read", request=request, query=dict(request.query_params.items()))
    return Response(AuditEventSerializer(rows[:limit], many=True).data)
