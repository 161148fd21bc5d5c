"""The one entry point the platform calls: analyse a series with a registry model, return DICOM results.

``analyze_series`` is a pure function of its arguments (no Django, no Celery, no database): the Celery task
resolves IDs to file paths, passes a callback that forwards events to the websocket bus, and stores the
returned datasets. It raises :class:`~inference.errors.InferenceInputError` for a series the model does not
accept and :class:`~inference.errors.InferenceCancelled` when ``should_cancel()`` turns True.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset

from inference.errors import ModelRegistryError
from inference.events import EventHandler, EventKind, emit
from inference.registry import DEFAULT_REGISTRY, ModelSpec, get_model_spec

__all__ = ["AnalysisResult", "analyze_series", "get_pipeline", "clear_pipeline_cache", "warm_up"]

logger = logging.getLogger(__name__)

_PIPELINES: dict[tuple[str, str, str], Any] = {}
_PIPELINES_LOCK = threading.Lock()


@dataclass
class AnalysisResult:
    """DICOM objects produced (SEG, SR, Parametric Map ...) and a JSON-ready summary for the database."""

    datasets: list[Dataset]
    summary: dict[str, Any]
    paths: list[Path] = field(default_factory=list)


def get_pipeline(model_name: str, registry: str | Path = DEFAULT_REGISTRY, device: str | None = None):
    """The model's pipeline, built once per process and device (loading weights costs more than a small
    series). Thread-safe: a job arriving while :func:`warm_up` builds the same pipeline waits for it."""
    key = (model_name, str(registry), str(device or ""))
    with _PIPELINES_LOCK:
        if key not in _PIPELINES:
            spec = get_model_spec(model_name, registry)
            _PIPELINES[key] = spec.build_pipeline(**({"device": device} if device else {}))
        return _PIPELINES[key]


def clear_pipeline_cache() -> None:
    with _PIPELINES_LOCK:
        _PIPELINES.clear()


def warm_up(
    model_names: Sequence[str] | None = None, registry: str | Path = DEFAULT_REGISTRY, device: str | None = None
) -> dict[str, float]:
    """Load the models' networks and run each once on a dummy input, so the first job of a worker process
    pays neither the weights' loading nor torch's first-call set-up. Models without weights are skipped
    (logged). Returns the seconds each took."""
    from inference.errors import ModelRegistryError
    from inference.registry import load_registry

    names = list(model_names) if model_names is not None else list(load_registry(registry))
    took: dict[str, float] = {}
    for name in names:
        t = time.perf_counter()
        try:
            pipe = get_pipeline(name, registry, device)
            if hasattr(pipe, "warm_up"):
                pipe.warm_up()
        except ModelRegistryError as exc:
            logger.warning("not warming %s: %s", name, exc)
            continue
        took[name] = round(time.perf_counter() - t, 3)
    logger.info("models warm: %s", took)
    return took


def _deliver(datasets: list[Dataset], out: str | Path | Callable[[Dataset], Any] | None) -> list[Path]:
    if out is None:
        return []
    if callable(out):
        for ds in datasets:
            out(ds)
        return []
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for ds in datasets:
        path = folder / f"{ds.Modality}_{ds.SOPInstanceUID}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def _result_event(on_event: EventHandler | None, ds: Dataset, description: str) -> None:
    emit(
        on_event,
        EventKind.RESULT,
        {
            "sop_class_uid": str(ds.SOPClassUID),
            "sop_instance_uid": str(ds.SOPInstanceUID),
            "series_instance_uid": str(ds.SeriesInstanceUID),
            "modality": str(ds.Modality),
            "description": description,
        },
    )


def _analyze_ct(
    spec: ModelSpec, pipeline, paths, on_event, should_cancel, slice_ordered: bool = False
) -> tuple[list[Dataset], dict]:
    from inference.pipelines.dicom_seg import build_segmentation
    from inference.pipelines.dicom_sr import build_nodule_report

    if slice_ordered:
        result = pipeline.run(paths, on_event, should_cancel, slice_ordered=True)
    else:
        result = pipeline.run(paths, on_event, should_cancel)
    t = time.perf_counter()
    emit(
        on_event,
        EventKind.PROGRESS,
        {"percent": 96.0, "stage": "writing", "message": "writing DICOM SEG and SR"},
    )
    geometry = result.geometry
    datasets: list[Dataset] = []
    seg = None
    if (result.labels > 0).any():
        seg = build_segmentation(
            geometry.headers,
            result.labels,
            result.label_names,
            model_name=spec.name,
            model_version=spec.version,
        )
        datasets.append(seg)
        _result_event(on_event, seg, "segmentation")
    sr = build_nodule_report(
        geometry.headers,
        result.detections,
        model_name=spec.name,
        model_version=spec.version,
        frame_of_reference_uid=geometry.frame_of_reference_uid,
        referenced_segmentation=seg,
    )
    datasets.append(sr)
    _result_event(on_event, sr, "nodule report")
    timings = dict(result.timings, write=round(time.perf_counter() - t, 3))
    volumes = {
        name: round(float((result.labels == value).sum()) * float(np.prod(geometry.spacing)) / 1000.0, 1)
        for name, value in result.label_names.items()
        if value
    }
    summary = {
        "task": spec.task,
        "study_instance_uid": geometry.study_instance_uid,
        "series_instance_uid": geometry.series_instance_uid,
        "slices": len(geometry.paths),
        "label_volumes_ml": volumes,
        "detections": [d.as_dict() for d in result.detections],
        "timings_s": timings,
    }
    return datasets, summary


def _analyze_cxr(spec: ModelSpec, pipeline, paths, on_event, should_cancel) -> tuple[list[Dataset], dict]:
    from inference.pipelines.dicom_pmap import build_heatmap_map
    from inference.pipelines.dicom_sr import build_classification_report

    result = pipeline.run(paths, on_event, should_cancel)
    t = time.perf_counter()
    emit(
        on_event,
        EventKind.PROGRESS,
        {"percent": 90.0, "stage": "writing", "message": "writing heatmap and report"},
    )
    header = result.radiograph.header
    pm = build_heatmap_map(header, result.heatmap, model_name=spec.name, model_version=spec.version)
    _result_event(on_event, pm, "Grad-CAM heatmap")
    sr = build_classification_report(
        header, result.probability, model_name=spec.name, model_version=spec.version
    )
    _result_event(on_event, sr, "classification report")
    summary = {
        "task": spec.task,
        "study_instance_uid": str(header.StudyInstanceUID),
        "series_instance_uid": str(header.SeriesInstanceUID),
        "label": result.label,
        "sop_instance_uid": str(header.SOPInstanceUID),
        "probability": round(result.probability, 4),
        "positive": result.positive,
        "threshold": result.threshold,
        "heatmap_peak_px": list(result.peak_px),
        "timings_s": dict(result.timings, write=round(time.perf_counter() - t, 3)),
    }
    return [pm, sr], summary


def analyze_series(
    model_name: str,
    series_paths: Sequence[str | Path],
    out_dir_or_callback: str | Path | Callable[[Dataset], Any] | None = None,
    on_event: EventHandler | None = None,
    should_cancel: Callable[[], bool] | None = None,
    *,
    registry: str | Path = DEFAULT_REGISTRY,
    pipeline: Any = None,
    device: str | None = None,
    slice_ordered: bool = False,
) -> AnalysisResult:
    """Analyse one series with the registry model ``model_name``.

    Args:
        model_name: a key of ``registry.yaml``, e.g. ``"chest-ct-nodules"`` or ``"cxr-nodule-classifier"``.
        series_paths: the series' files (any order).
        out_dir_or_callback: a folder to write the result files into, a callable receiving each dataset
            (e.g. a STOW or archive import), or None to only return them.
        on_event: ``on_event(kind, payload)``, see :mod:`inference.events`.
        should_cancel: polled between slabs; True stops the job with ``InferenceCancelled``.
        pipeline: a prebuilt pipeline (tests); by default one cached per process.
        device: torch device for the cached pipeline (``cpu``, ``cuda``, ``auto``); by default
            ``LIGHTBOX_AI_DEVICE`` or the CPU.
        slice_ordered: ``series_paths`` come sorted along the slice normal (either direction), e.g. by the
            archive's indexed slice position: a volume model then starts on the first slices' headers and
            reads the others after its first partial result (checked; a wrong hint costs time, not results).

    Returns:
        :class:`AnalysisResult` with the datasets, a summary and, for a folder, the written paths.
    """
    t0 = time.perf_counter()
    spec = get_model_spec(model_name, registry)
    pipe = pipeline if pipeline is not None else get_pipeline(model_name, registry, device)
    paths = [Path(p) for p in series_paths]
    if spec.task.startswith("segmentation"):
        datasets, summary = _analyze_ct(spec, pipe, paths, on_event, should_cancel, slice_ordered)
    elif spec.task == "classification":
        datasets, summary = _analyze_cxr(spec, pipe, paths, on_event, should_cancel)
    else:
        raise ModelRegistryError(
            f"model {model_name!r} has task {spec.task!r}, which analyze_series does not know."
        )
    written = _deliver(datasets, out_dir_or_callback)
    summary.update(model=spec.name, model_version=spec.version, seconds=round(time.perf_counter() - t0, 2))
    summary["results"] = [
        {
            "modality": str(ds.Modality),
            "sop_class_uid": str(ds.SOPClassUID),
            "sop_instance_uid": str(ds.SOPInstanceUID),
        }
        for ds in datasets
    ]
    emit(
        on_event,
        EventKind.PROGRESS,
        {"percent": 100.0, "stage": "done", "message": f"done in {summary['seconds']} s"},
    )
    logger.info("analysed %d files with %s in %.1f s", len(paths), model_name, summary["seconds"])
    return AnalysisResult(datasets=datasets, summary=summary, paths=written)
