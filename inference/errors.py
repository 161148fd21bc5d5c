"""One error family for inference so callers (Celery tasks, the archive) can catch it in one place."""

from __future__ import annotations

__all__ = ["InferenceError", "InferenceInputError", "InferenceCancelled", "ModelRegistryError"]


class InferenceError(Exception):
    """Base class of every error raised on purpose by :mod:`inference`."""


class InferenceInputError(InferenceError):
    """The series cannot be analysed by this model; ``reason`` is meant for a human reader.

    Raised for a wrong modality, missing geometry, inconsistent slices or unreadable pixel data.
    It is not a bug in the model: show ``reason`` to the user and do not retry.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InferenceCancelled(InferenceError):
    """``should_cancel()`` returned True; the job stopped between two slabs."""


class ModelRegistryError(InferenceError):
    """The registry names a model, weights or config that cannot be loaded; the message names the fix."""
