"""Audit records: who touched which patient data, when, from where (after IHE ATNA's questions)."""
from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    time = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    username = models.CharField(max_length=150, blank=True)  # kept when the user is deleted
    action = models.CharField(max_length=64, db_index=True)  # e.g. "wado.retrieve", "stow.store"
    study_instance_uid = models.CharField(max_length=64, blank=True, db_index=True)
    series_instance_uid = models.CharField(max_length=64, blank=True)
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    outcome = models.CharField(max_length=16, default="success")
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-time"]

    def __str__(self) -> str:
        return f"{self.time:%Y-%m-%d %H:%M:%S} {self.username} {self.action} {self.study_instance_uid}"
