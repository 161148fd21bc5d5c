"""Drop remembered credentials whenever a user or token changes, so revocation is immediate."""
from django.contrib.auth import get_user_model
from django.db.models.signals import post_delete, post_save
from rest_framework.authtoken.models import Token

from .authentication import invalidate_credential_cache


def _invalidate(**_kwargs) -> None:
    invalidate_credential_cache()


for _model in (get_user_model(), Token):
    post_save.connect(_invalidate, sender=_model, dispatch_uid=f"accounts-invalidate-save-{_model.__name__}")
    post_delete.connect(_invalidate, sender=_model, dispatch_uid=f"accounts-invalidate-del-{_model.__name__}")
