"""The one per-study access check. Every view, websocket and task that touches patient data calls it."""
from __future__ import annotations

from django.db.models import Q, QuerySet

from .models import StudyGrant
from .roles import Capability, has_capability


def _grant_filter(user) -> Q:
    return Q(user=user) | Q(group__in=user.groups.all())


def can_view_study(user, study_instance_uid: str) -> bool:
    """May ``user`` read the study? Answers the same whether or not the study exists."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if has_capability(user, Capability.VIEW_ALL_STUDIES):
        return True
    return StudyGrant.objects.filter(_grant_filter(user), study_instance_uid=study_instance_uid).exists()


def visible_study_uids(user) -> QuerySet | None:
    """None when the user sees every study, else a queryset of the Study Instance UIDs granted."""
    if has_capability(user, Capability.VIEW_ALL_STUDIES):
        return None
    return StudyGrant.objects.filter(_grant_filter(user)).values("study_instance_uid")
