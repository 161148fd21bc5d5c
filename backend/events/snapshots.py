"""Providers of "the state so far" for a socket joining a study mid-job. Apps register; events knows none."""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

SnapshotProvider = Callable[[str, Any], dict[str, Any]]
_providers: dict[str, SnapshotProvider] = {}


def register(name: str, provider: SnapshotProvider) -> None:
    """Register ``provider(study_uid, user) -> dict``; its answer goes under ``name`` in the snapshot."""
    _providers[name] = provider


def snapshot(study_instance_uid: str, user) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for name, provider in _providers.items():
        try:
            state[name] = provider(study_instance_uid, user)
        except Exception:
            logger.exception("snapshot provider %s failed", name)
    return state
