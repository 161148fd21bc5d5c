"""The one place the web side calls into ``inference`` (which knows nothing of Django)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings


@dataclass(frozen=True)
class ModelInfo:
    name: str
    task: str
    modality: str
    body_part: str
    description: str = ""


def available_models() -> list[ModelInfo]:
    from inference.registry import load_registry

    return [
        ModelInfo(name=m.name, task=m.task, modality=m.modality, body_part=m.body_part,
                  description=getattr(m, "description", ""))
        for m in load_registry().values()
    ]


def model_names() -> set[str]:
    return {m.name for m in available_models()}


def run(
    model_name: str,
    paths: list[Path],
    on_event: Callable[[str, dict[str, Any]], None],
    should_cancel: Callable[[], bool],
):
    """Run a registered model on one series' files; returns inference's AnalysisResult."""
    from inference.jobs import analyze_series

    return analyze_series(model_name, paths, on_event=on_event, should_cancel=should_cancel,
                          work_dir=Path(settings.DATA_DIR) / "tmp")
