"""The one place the web side calls into ``inference`` (which knows nothing of Django)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ModelInfo:
    name: str
    title: str
    task: str
    version: str
    modalities: tuple[str, ...]
    body_parts: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def available_models() -> list[ModelInfo]:
    from inference.registry import load_registry

    return [
        ModelInfo(name=m.name, title=m.title, task=m.task, version=m.version,
                  modalities=tuple(m.modalities), body_parts=tuple(m.body_parts))
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
    """Run a registered model on one series' files, listed in slice order (``tasks._series_paths``); returns
    inference's AnalysisResult (datasets, summary)."""
    from inference.jobs import analyze_series

    return analyze_series(model_name, paths, None, on_event=on_event, should_cancel=should_cancel,
                          slice_ordered=True)
