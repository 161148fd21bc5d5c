"""Write audit records. High-rate actions (frames, thumbnails) are coalesced per user, study and client."""
from __future__ import annotations

import logging

from django.core.cache import cache

from lightbox.conf import lightbox_setting

from .models import AuditEvent

logger = logging.getLogger(__name__)


def client_ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR") if request is not None else None


def record(
    user,
    action: str,
    *,
    request=None,
    study_instance_uid: str = "",
    series_instance_uid: str = "",
    outcome: str = "success",
    coalesce: bool = False,
    **detail,
) -> None:
    """Store one audit event. With ``coalesce``, repeats within AUDIT_COALESCE_SECONDS are written once."""
    ip = client_ip(request)
    user_id = getattr(user, "pk", None)
    if coalesce:
        key = f"audit:{action}:{user_id}:{study_instance_uid}:{series_instance_uid}:{ip}"
        if not cache.add(key, 1, lightbox_setting("AUDIT_COALESCE_SECONDS")):
            return
    try:
        AuditEvent.objects.create(
            user_id=user_id,
            username=getattr(user, "username", "") or "",
            action=action,
            study_instance_uid=study_instance_uid or "",
            series_instance_uid=series_instance_uid or "",
            source_ip=ip,
            outcome=outcome,
            detail=detail,
        )
    except Exception:  # an audit failure is logged loudly, never turned into a lost response
        logger.exception("could not write audit event %s for %s", action, study_instance_uid)
