"""Chest radiograph pipeline: one CR/DX image in; nodule-present probability and a Grad-CAM heatmap out."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from inference.errors import InferenceCancelled, InferenceInputError
from inference.events import EventHandler, EventKind, emit
from inference.pipelines.dicom_series import Radiograph, read_radiograph
from inference.pipelines.gradcam import GradCAM
from inference.pipelines.transforms import radiograph_to_input

__all__ = ["CXRClassificationPipeline", "ClassificationResult"]


@dataclass
class ClassificationResult:
    """``heatmap`` is float32 in [0, 1] at the source image's size (rows, columns), MONOCHROME2 orientation."""

    radiograph: Radiograph
    probability: float
    positive: bool
    threshold: float
    heatmap: np.ndarray
    peak_px: tuple[int, int]
    timings: dict[str, float] = field(default_factory=dict)
    label: str = "nodule"


class CXRClassificationPipeline:
    """Run the ``cxr-nodule-classifier`` model on one radiograph."""

    def __init__(
        self,
        spec,
        network: nn.Module | None = None,
        *,
        strict_weights: bool = True,
        threads: int | None = None,
        device: str | torch.device | None = None,
    ):
        from inference.devices import resolve_device
        from inference.registry import load_network

        self.spec = spec
        self.device = resolve_device(device)
        self.network = network if network is not None else load_network(spec, strict_weights=strict_weights)
        self.network.eval().to(self.device)
        self.size = tuple(int(v) for v in spec.preprocessing.get("size", (256, 256)))
        self.percentiles = tuple(float(v) for v in spec.preprocessing.get("percentiles", (1.0, 99.5)))
        self.threshold = float(spec.postprocessing.get("threshold", 0.5))
        self.label = str(spec.postprocessing.get("label", "nodule"))  # what "positive" means, named once
        self.gradcam_layer = str(spec.postprocessing.get("gradcam_layer", "features.context"))
        if threads:
            torch.set_num_threads(int(threads))

    def warm_up(self) -> None:
        """One Grad-CAM pass on zeros, so the first radiograph does not pay torch's first-call set-up."""
        channels = int(getattr(self.spec, "network", {}).get("in_channels", 2))
        GradCAM(self.network, self.gradcam_layer)(torch.zeros((1, channels, *self.size), device=self.device))

    def run(
        self,
        series_paths: Sequence[str | Path],
        on_event: EventHandler | None = None,
        should_cancel: Callable[[], bool] | None = None,
    ) -> ClassificationResult:
        t0 = time.perf_counter()
        paths = list(series_paths)
        if len(paths) != 1:
            raise InferenceInputError(
                f"this model reads one radiograph at a time; the series has {len(paths)} images."
            )
        emit(
            on_event,
            EventKind.PROGRESS,
            {"percent": 0.0, "stage": "reading", "message": "reading the radiograph"},
        )
        radiograph = read_radiograph(paths[0], modalities=self.spec.modalities)
        ok, reason = self.spec.accepts(
            str(radiograph.header.Modality),
            str(getattr(radiograph.header, "BodyPartExamined", "") or "") or None,
        )
        if not ok:
            raise InferenceInputError(reason)
        if should_cancel is not None and should_cancel():
            raise InferenceCancelled("cancelled before classification")
        emit(
            on_event,
            EventKind.PROGRESS,
            {"percent": 30.0, "stage": "classifying", "message": "running the classifier"},
        )
        x = radiograph_to_input(radiograph.image, self.size, self.percentiles).to(self.device)
        logits, cam = GradCAM(self.network, self.gradcam_layer)(x)
        logits, cam = logits.float().cpu(), cam.float().cpu()
        probability = float(torch.sigmoid(logits[0, 0]))
        rows, cols = radiograph.image.shape
        heatmap = F.interpolate(cam[None], size=(rows, cols), mode="bilinear", align_corners=False)[0, 0]
        heatmap = heatmap.clamp_(0, 1).numpy().astype(np.float32)
        peak = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
        positive = probability >= self.threshold
        sr, sc = radiograph.spacing
        emit(
            on_event,
            EventKind.CLASSIFICATION,
            {
                "label": self.label,
                "probability": round(probability, 4),
                "positive": positive,
                "threshold": self.threshold,
                "heatmap_peak_px": [int(peak[0]), int(peak[1])],
                "heatmap_peak_mm": [round(peak[0] * sr, 2), round(peak[1] * sc, 2)],
                "sop_instance_uid": str(radiograph.header.SOPInstanceUID),
            },
        )
        return ClassificationResult(
            radiograph=radiograph,
            probability=probability,
            positive=positive,
            threshold=self.threshold,
            heatmap=heatmap,
            peak_px=(int(peak[0]), int(peak[1])),
            timings={"total": round(time.perf_counter() - t0, 3)},
            label=self.label,
        )
