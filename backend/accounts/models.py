"""Per-study grants for users whose role does not see every study (residents, teachers, referrers)."""
from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models


class StudyGrant(models.Model):
    """Lets one user, or every member of one group, read one study."""

    study_instance_uid = models.CharField(max_length=64, db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE)
    group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.CASCADE)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(user__isnull=False) | models.Q(group__isnull=False), name="grant_has_subject"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user or self.group} -> {self.study_instance_uid}"
