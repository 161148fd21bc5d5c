"""Chest CT pipeline: DICOM slices in; lung, nodule and liver labels and nodule detections out, streamed.

The series is processed in z-slabs on the model's 1.5 mm grid. For each slab the pipeline reads only the
source slices it needs, resamples them, runs the network on the slab plus a halo of context above and below,
keeps the slab's core, maps the probabilities back to the source slices (linear in z, bilinear in-plane,
then argmax) and reports them as a ``partial_mask`` event. A nodule is reported (``detection``) as soon as
its connected component is closed, i.e. does not reach the last finished model slice. ``should_cancel`` is
polled between slabs. The first slab is smaller so the viewer gets a first overlay quickly.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import nn

from inference.cpuload import CpuWindow
from inference.errors import InferenceCancelled, InferenceInputError
from inference.events import EventHandler, EventKind, emit
from inference.pipelines.blobs import dot_candidates
from inference.pipelines.detection import (
    Candidate,
    NoduleMeasurement,
    find_candidates,
    measure_mask,
    soft_nms,
)
from inference.pipelines.dicom_series import (
    SeriesGeometry,
    read_slices,
    same_start,
    scan_series,
    scan_series_start,
)
from inference.pipelines.encoding import RLE_ENCODING, rle_encode_b64
from inference.pipelines.inferer import VolumeInferer
from inference.pipelines.refine import NoduleRefiner
from inference.pipelines.transforms import hu_to_channels, interp_z, resample_inplane, source_to_model_z

__all__ = ["ChestCTPipeline", "Detection", "SegmentationResult", "plan_slabs", "upsample_labels"]

logger = logging.getLogger(__name__)


@dataclass
class Detection:
    """A nodule found in the series. Voxel indices are (slice, row, column) of the stored images, slices
    sorted along the normal; patient coordinates are LPS mm."""

    id: int
    score: float
    center_mm: tuple[float, float, float]
    center_voxel: tuple[float, float, float]
    box_voxel: tuple[tuple[int, int, int], tuple[int, int, int]]  # inclusive min and max corners
    box_mm: tuple[tuple[float, float, float], tuple[float, float, float]]
    long_axis_mm: float
    short_axis_mm: float
    equivalent_diameter_mm: float
    volume_mm3: float
    long_axis_slice: int
    long_axis_sop_instance_uid: str
    long_axis_endpoints_mm: tuple[tuple[float, float, float], tuple[float, float, float]]
    center_sop_instance_uid: str
    label: str = "nodule"

    def as_dict(self) -> dict[str, Any]:
        def r(values, nd=2):
            if isinstance(values, (tuple, list)):
                return [r(v, nd) for v in values]
            return round(float(values), nd)

        return {
            "id": self.id,
            "label": self.label,
            "score": round(self.score, 4),
            "center_mm": r(self.center_mm),
            "center_voxel": r(self.center_voxel),
            "box_voxel": [list(map(int, c)) for c in self.box_voxel],
            "box_mm": r(self.box_mm),
            "long_axis_mm": r(self.long_axis_mm),
            "short_axis_mm": r(self.short_axis_mm),
            "equivalent_diameter_mm": r(self.equivalent_diameter_mm),
            "volume_mm3": r(self.volume_mm3, 1),
            "long_axis_slice": self.long_axis_slice,
            "long_axis_sop_instance_uid": self.long_axis_sop_instance_uid,
            "long_axis_endpoints_mm": r(self.long_axis_endpoints_mm),
            "center_sop_instance_uid": self.center_sop_instance_uid,
        }


@dataclass
class SegmentationResult:
    """``labels`` is uint8 (slice, row, column) as stored, slices sorted along the normal."""

    geometry: SeriesGeometry
    labels: np.ndarray
    label_names: dict[str, int]
    detections: list[Detection]
    timings: dict[str, float] = field(default_factory=dict)


def upsample_labels(probs: torch.Tensor, rows: int, cols: int, margin: int = 2) -> np.ndarray:
    """Argmax of bilinearly upsampled class probabilities (C, n, h, w) -> uint8 (n, rows, cols).

    Only the bounding box of non-background voxels (plus ``margin`` model voxels) is upsampled: the
    lungs and liver cover about a third of a slice, and the rest is background by construction.
    """
    n_classes, n, h, w = probs.shape
    out = np.zeros((n, rows, cols), dtype=np.uint8)
    fg = probs[1:].amax(dim=(0, 1)) > 0.2
    if not bool(fg.any()):
        return out
    ys, xs = torch.nonzero(fg.any(dim=1)).flatten(), torch.nonzero(fg.any(dim=0)).flatten()
    m_y0, m_y1 = max(0, int(ys[0]) - margin), min(h - 1, int(ys[-1]) + margin)
    m_x0, m_x1 = max(0, int(xs[0]) - margin), min(w - 1, int(xs[-1]) + margin)
    # Source pixels whose centres fall in the box (align_corners=False convention).
    r0 = max(0, int(np.floor((m_y0 + 0.5) * rows / h - 0.5)))
    r1 = min(rows, int(np.ceil((m_y1 + 0.5) * rows / h + 0.5)))
    c0 = max(0, int(np.floor((m_x0 + 0.5) * cols / w - 0.5)))
    c1 = min(cols, int(np.ceil((m_x1 + 0.5) * cols / w + 0.5)))
    gy = ((torch.arange(r0, r1, dtype=torch.float32) + 0.5) / rows) * 2 - 1
    gx = ((torch.arange(c0, c1, dtype=torch.float32) + 0.5) / cols) * 2 - 1
    grid = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), dim=-1)[None].expand(n, -1, -1, -1)
    up = F.grid_sample(
        probs.permute(1, 0, 2, 3), grid, mode="bilinear", padding_mode="border", align_corners=False
    )
    out[:, r0:r1, c0:c1] = up.max(dim=1).indices.to(torch.uint8).numpy()
    return out


def plan_slabs(n_model: int, core: int, first_core: int | None = None) -> list[tuple[int, int]]:
    """Split model slices ``0:n_model`` into consecutive (start, stop) cores; the first may be smaller."""
    if core < 1:
        raise ValueError(f"core must be >= 1, got {core!r}.")
    slabs, start = [], 0
    size = first_core or core
    while start < n_model:
        stop = min(n_model, start + size)
        if n_model - stop < core // 3:  # avoid a sliver at the end
            stop = n_model
        slabs.append((start, stop))
        start, size = stop, core
    return slabs


class ChestCTPipeline:
    """Run the ``chest-ct-nodules`` model on a series.

    Args:
        spec: the registry entry (:class:`inference.registry.ModelSpec`).
        network: an already loaded stage-one network (tests); by default loaded from ``spec``.
        refiner: an already loaded refiner network, or ``False`` for stage one alone; by default the
            spec's ``refiner`` component when its weights exist.
        strict_weights: refuse to run without trained weights (set False only in tests).

    Without a refiner, nodules are stage one's components, measured on its source-resolution labels.
    """

    def __init__(
        self,
        spec,
        network: nn.Module | None = None,
        *,
        refiner: nn.Module | bool | None = None,
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
        pre, inf, post = spec.preprocessing, spec.inference, spec.postprocessing
        self.model_spacing = tuple(float(v) for v in pre.get("spacing_mm", (1.5, 1.5, 1.5)))
        self.windows = [tuple(w) for w in pre.get("windows", ((-1000, 400), (-160, 240)))]
        self.inferer = VolumeInferer(
            roi_depth=int(inf.get("roi_depth", 80)),
            overlap=float(inf.get("overlap", 0.25)),
            divisor=int(inf.get("divisor", 16)),
        )
        self.slab_core = int(inf.get("slab_core", 48))
        self.slab_halo = int(inf.get("slab_halo", 16))
        self.first_slab_halo = int(inf.get("first_slab_halo", self.slab_halo))
        self.first_slab_core = int(inf.get("first_slab_core", self.slab_core))
        self.labels = dict(spec.labels) or {"background": 0, "lung": 1, "nodule": 2, "liver": 3}
        self.nodule_label = int(self.labels.get("nodule", 2))
        self.lung_label = int(self.labels.get("lung", 1))
        self.candidate_thresholds = tuple(post.get("candidate_thresholds", (0.3, 0.5)))
        self.score_threshold = float(post.get("score_threshold", 0.5))
        self.candidate_score_threshold = float(post.get("candidate_score_threshold", self.score_threshold))
        self.soft_nms_sigma = float(post.get("soft_nms_sigma", 0.5))
        self.min_volume_mm3 = float(post.get("min_volume_mm3", 15.0))
        self.refiner = self._build_refiner(refiner)
        blobs = post.get("blob_candidates")
        self.blob_params = dict(blobs) if blobs else None
        if threads:
            torch.set_num_threads(int(threads))

    def _build_refiner(self, refiner: nn.Module | bool | None) -> NoduleRefiner | None:
        from inference.registry import load_network

        if refiner is False or "refiner" not in self.spec.components:
            return None
        params = self.spec.components["refiner"]
        if refiner is None or refiner is True:
            component = self.spec.component("refiner")
            if component.weights is None or not Path(component.weights).exists():
                if refiner is True:
                    load_network(component)  # raises with the command that creates the weights
                logger.warning("no refiner weights at %s: stage one alone reports nodules", component.weights)
                return None
            refiner = load_network(component)
        return NoduleRefiner(
            refiner.to(self.device),
            device=self.device,
            patch_size=int(params.get("patch_size", 40)),
            patch_spacing_mm=float(params.get("patch_spacing_mm", 0.9)),
            window=tuple(params.get("window", (-1000, 400))),
            center_radius_mm=float(params.get("center_radius_mm", 5.0)),
        )

    def warm_up(self, model_slices: int | None = None, size: int = 240) -> None:
        """Run the networks once on zeros (the first slab's usual shape), so a worker's first job does not
        pay torch's first-call set-up (memory pools, kernel selection)."""
        first = self.first_slab_core + self.first_slab_halo
        depth = model_slices or -(-first // self.inferer.divisor) * self.inferer.divisor
        with torch.inference_mode():
            x = torch.zeros((1, len(self.windows), depth, size, size), device=self.device)
            self.inferer(x, self.network)
            if self.refiner is not None:
                p = self.refiner.patch_size
                self.refiner.predict(torch.zeros((1, 1, p, p, p)))

    def _start(self, geometry: SeriesGeometry, on_event, t_start: float):
        ok, reason = self.spec.accepts(geometry.modality, geometry.body_part or None)
        if not ok:
            raise InferenceInputError(reason)
        job = _Job(self, geometry, on_event, t_start)
        return job, plan_slabs(job.n_model[0], self.slab_core, self.first_slab_core)

    # -- public -------------------------------------------------------------------------------------------

    def run(
        self,
        series_paths: Sequence[str | Path],
        on_event: EventHandler | None = None,
        should_cancel: Callable[[], bool] | None = None,
        *,
        slice_ordered: bool = False,
    ) -> SegmentationResult:
        """Segment a series, streaming events.

        ``slice_ordered``: the caller lists the files sorted along the slice normal (either direction), as
        the archive can from its index. The first slab then starts after the headers of its own slices
        only; the other headers are read right after it and checked against them (a wrong hint costs one
        slab, computed again; it never changes the result).
        """
        t_start = time.perf_counter()
        cpu_window = CpuWindow()  # what else runs while this thread reads: sizes the first slab's threads
        emit(on_event, EventKind.PROGRESS, {"percent": 0.0, "stage": "reading", "message": "reading headers"})
        paths = list(series_paths)
        early = None
        if slice_ordered:
            needed_mm = (self.first_slab_core + self.first_slab_halo) * self.model_spacing[0]
            early = scan_series_start(paths, needed_mm, modalities=self.spec.modalities)
        job, slabs = self._start(early or scan_series(paths, modalities=self.spec.modalities), on_event, t_start)
        if early is not None and job.source_range(*slabs[0])[1] > len(early.sop_instance_uids):
            early = None  # the first slab needs more slices than were read
            job, slabs = self._start(scan_series(paths, modalities=self.spec.modalities), on_event, t_start)
        job.timings["headers"] = time.perf_counter() - t_start
        job.cpu_window = cpu_window
        slab_index = 0
        while slab_index < len(slabs):
            c0, c1 = slabs[slab_index]
            if should_cancel is not None and should_cancel():
                raise InferenceCancelled(f"cancelled before slab {slab_index + 1} of {len(slabs)}")
            last = slab_index == len(slabs) - 1
            job.segment_slab(c0, c1, last)
            if early is not None:
                # The first slab is out on the first slices' headers: now read and check all of them.
                t = time.perf_counter()
                full = scan_series(paths, modalities=self.spec.modalities)
                read = int(np.flatnonzero(job.loaded).max()) + 1 if job.loaded.any() else 0
                early_ok = same_start(early, full, read) and _Job.model_shape(self, full) == job.n_model
                early = None
                if early_ok:
                    job.geometry = full
                    job.timings["headers_rest"] = time.perf_counter() - t
                else:
                    logger.warning("slice-order hint did not hold for %s; starting again", full.series_instance_uid)
                    job, slabs = self._start(full, on_event, t_start)
                    job.timings["headers"] = time.perf_counter() - t_start
                    continue  # slab 0 again, on the checked geometry
            job.detect(c1, last)
            emit(
                on_event,
                EventKind.PROGRESS,
                {
                    "percent": round(5 + 90 * c1 / job.n_model[0], 1),
                    "stage": "segmenting",
                    "message": f"slab {slab_index + 1}/{len(slabs)}",
                },
            )
            slab_index += 1
        geometry = job.geometry
        job.timings["total"] = time.perf_counter() - t_start
        timings = {k: round(v, 3) for k, v in job.timings.items()}
        logger.info("chest CT pipeline: %s", timings)
        emit(
            on_event,
            EventKind.PROGRESS,
            {"percent": 95.0, "stage": "segmenting", "message": "segmentation done"},
        )
        return SegmentationResult(
            geometry=geometry,
            labels=geometry.to_stored(job.labels),
            label_names=dict(self.labels),
            detections=job.detections,
            timings=timings,
        )


class _Job:
    """State of one run: source slices read so far, model-grid probabilities, labels and detections.

    Arrays are canonical (see :mod:`inference.pipelines.dicom_series`); events convert to the stored order.
    """

    def __init__(
        self,
        pipe: ChestCTPipeline,
        geometry: SeriesGeometry,
        on_event: EventHandler | None,
        t_start: float | None = None,
    ) -> None:
        self.pipe = pipe
        self.t_start = time.perf_counter() if t_start is None else t_start
        self.cpu_window: CpuWindow | None = None
        self.geometry = geometry
        self.on_event = on_event
        nz, rows, cols = geometry.shape
        self.n_model = self.model_shape(pipe, geometry)
        self.q_source = source_to_model_z(nz, self.n_model[0])  # model z of each source slice
        self.p_model = source_to_model_z(self.n_model[0], nz)  # source z of each model slice
        self.hu = np.zeros((nz, rows, cols), dtype=np.int16)  # source HU, filled as slices are read
        self.loaded = np.zeros(nz, dtype=bool)
        self.small: dict[int, torch.Tensor] = {}  # source slice -> in-plane resampled HU
        self.labels = np.zeros((nz, rows, cols), dtype=np.uint8)
        self.refined = np.zeros((nz, rows, cols), dtype=bool)  # nodule voxels confirmed by the refiner
        self.nodule_prob = np.zeros(self.n_model, dtype=np.float32)
        self.done_source = 0  # source slices [0, done_source) have labels
        self.seen: set[tuple[int, ...]] = set()
        self.detections: list[Detection] = []
        self.blob_queue: list[tuple[tuple[float, float, float], float]] = []
        self.timings: dict[str, float] = {
            "read_resample": 0.0,
            "network": 0.0,
            "to_source": 0.0,
            "detect": 0.0,
        }

    @staticmethod
    def model_shape(pipe: ChestCTPipeline, geometry: SeriesGeometry) -> tuple[int, int, int]:
        """The series' shape on the model's grid (same extent, ``pipe.model_spacing``)."""
        nz, rows, cols = geometry.shape
        sz, sy, sx = geometry.spacing
        mz, my, mx = pipe.model_spacing
        return (max(1, round(nz * sz / mz)), max(16, round(rows * sy / my)), max(16, round(cols * sx / mx)))

    def model_range(self, c0: int, c1: int) -> tuple[int, int]:
        """Model slices the network sees for core ``c0:c1``: the core and its halo (the first slab's may be
        smaller, so the first overlay comes sooner)."""
        halo = self.pipe.first_slab_halo if c0 == 0 else self.pipe.slab_halo
        return max(0, c0 - halo), min(self.n_model[0], c1 + halo)

    def source_range(self, c0: int, c1: int) -> tuple[int, int]:
        """Source slices [k_lo, k_hi) that model slab ``c0:c1`` and its halo are interpolated from."""
        a, b = self.model_range(c0, c1)
        k_lo = max(0, int(np.floor(self.p_model[a])))
        k_hi = min(len(self.loaded), int(np.floor(self.p_model[b - 1])) + 2)
        return k_lo, k_hi

    # -- reading --------------------------------------------------------------------------------------------

    def ensure_loaded(self, k0: int, k1: int) -> None:
        k0, k1 = max(0, k0), min(len(self.loaded), k1)
        missing = np.flatnonzero(~self.loaded[k0:k1]) + k0
        if missing.size == 0:
            return
        a, b = int(missing[0]), int(missing[-1]) + 1
        values = read_slices(self.geometry, a, b)
        self.hu[a:b] = np.clip(np.rint(values), -32768, 32767).astype(np.int16)
        self.loaded[a:b] = True

    # -- stage one --------------------------------------------------------------------------------------

    def segment_slab(self, c0: int, c1: int, last: bool) -> None:
        pipe, nz = self.pipe, len(self.loaded)
        a, b = self.model_range(c0, c1)
        k_lo, k_hi = self.source_range(c0, c1)
        t = time.perf_counter()
        self.ensure_loaded(k_lo, k_hi)
        missing = [k for k in range(k_lo, k_hi) if k not in self.small]
        if missing:
            block = torch.from_numpy(self.hu[missing[0] : missing[-1] + 1].astype(np.float32))
            resampled = resample_inplane(block, self.n_model[1:])
            for n, k in enumerate(range(missing[0], missing[-1] + 1)):
                self.small[k] = resampled[n]
        for k in [k for k in self.small if k < k_lo]:
            del self.small[k]
        stack = torch.stack([self.small[k] for k in range(k_lo, k_hi)])[None]
        slab_hu = interp_z(stack, k_lo, self.p_model[a:b])[0]
        self.timings["read_resample"] += time.perf_counter() - t

        t = time.perf_counter()
        wanted = torch.get_num_threads()
        threads = wanted
        if c0 == 0 and pipe.device.type == "cpu" and self.cpu_window is not None:
            # The first overlay waits on this slab: no more threads than the cores other work leaves free.
            threads = self.cpu_window.threads(wanted)
            self.timings["first_slab_threads"] = threads
        try:
            if threads != wanted:
                torch.set_num_threads(threads)
            with torch.inference_mode():
                x = hu_to_channels(slab_hu, pipe.windows)[None].to(pipe.device)
                probs = pipe.inferer(x, pipe.network)[0].float().cpu()
        finally:
            if threads != wanted:
                torch.set_num_threads(wanted)
        self.timings["network"] += time.perf_counter() - t
        self.nodule_prob[c0:c1] = probs[pipe.nodule_label, c0 - a : c1 - a].numpy()

        t = time.perf_counter()
        upper = np.inf if last else c1 - 0.5
        ks = [k for k in range(self.done_source, nz) if self.q_source[k] < upper]
        if ks:
            rows, cols = self.geometry.rows, self.geometry.columns
            keep_lo = max(a, c0 - 1)
            keep = probs[:, keep_lo - a : min(b, c1 + 1) - a]
            for chunk in range(0, len(ks), 16):
                part = ks[chunk : chunk + 16]
                pz = interp_z(keep, keep_lo, self.q_source[part])  # (C, n, my, mx)
                self.labels[part[0] : part[-1] + 1] = upsample_labels(pz, rows, cols)
            k0, k1 = ks[0], ks[-1] + 1
            if pipe.refiner is not None:
                # Nodules come from the refiner only; stage one's nodule voxels read as lung meanwhile.
                block = self.labels[k0:k1]
                block[block == pipe.nodule_label] = pipe.lung_label
                block[self.refined[k0:k1]] = pipe.nodule_label
            self.done_source = k1
            self.emit_labels(k0, k1)
            if "first_partial" not in self.timings:  # where the wait for the first overlay went
                self.timings["first_partial"] = time.perf_counter() - self.t_start
                self.timings["first_slab_read"] = self.timings["read_resample"]
                self.timings["first_slab_network"] = self.timings["network"]
                self.timings["first_slab_to_source"] = self.timings["to_source"] + time.perf_counter() - t
        self.timings["to_source"] += time.perf_counter() - t
        # Candidate search after the slab is on its way to the viewers: it only feeds detect().
        if pipe.refiner is not None and pipe.blob_params is not None:
            t = time.perf_counter()
            lungs = probs.max(dim=0).indices.numpy()
            mask = ndimage.binary_dilation(np.isin(lungs, (pipe.lung_label, pipe.nodule_label)), iterations=2)
            found = dot_candidates(slab_hu.numpy(), mask, z_range=(c0 - a, c1 - a), **pipe.blob_params)
            self.blob_queue.extend(((z + a, y, x), v) for (z, y, x), v in found)
            self.timings["blobs"] = self.timings.get("blobs", 0.0) + time.perf_counter() - t

    def emit_labels(self, k0: int, k1: int) -> None:
        geometry = self.geometry
        emit(
            self.on_event,
            EventKind.PARTIAL_MASK,
            {
                "z_start": k0,
                "z_end": k1,
                "shape": [k1 - k0, geometry.rows, geometry.columns],
                "encoding": RLE_ENCODING,
                "data": rle_encode_b64(geometry.to_stored(self.labels[k0:k1])),
                "labels": {k: v for k, v in self.pipe.labels.items() if v},
                "sop_instance_uids": geometry.sop_instance_uids[k0:k1],
                "resolution": "source",
                "orientation": "slices sorted feet to head (ascending patient z), rows and columns as stored",
            },
        )

    # -- detection ----------------------------------------------------------------------------------------

    def detect(self, c1: int, last: bool) -> None:
        t = time.perf_counter()
        pipe = self.pipe
        region = self.nodule_prob[:c1]
        kept: list[Candidate] = []
        if region.max() >= min(pipe.candidate_thresholds):
            cands = find_candidates(region, pipe.candidate_thresholds)
            closed = [c for c in cands if (last or c.box[3] < c1) and c.box not in self.seen]
            for c in closed:
                self.seen.add(c.box)
            kept = soft_nms(closed, sigma=pipe.soft_nms_sigma)
        if pipe.refiner is None:
            for cand in (c for c in kept if c.score >= pipe.score_threshold):
                det = self._measure_stage_one(cand)
                if det is not None:
                    self._accept(det)
        else:
            cands = [c for c in kept if c.score >= pipe.candidate_score_threshold]
            # Blob candidates of this slab that stage one did not already propose (within 6 mm).
            near = 6.0 / float(np.mean(pipe.model_spacing))
            for (z, y, x), value in self.blob_queue:
                if all(np.linalg.norm(np.subtract((z, y, x), c.centroid)) > near for c in cands):
                    box = (int(z) - 1, int(y) - 1, int(x) - 1, int(z) + 2, int(y) + 2, int(x) + 2)
                    cands.append(
                        Candidate(box, 0.0, (z, y, x), 1, 0.0, {"source": "dot filter", "value": value})
                    )
            self.blob_queue.clear()
            self._refine(cands)
        self.timings["detect"] += time.perf_counter() - t

    def _source_index(self, model_zyx: Sequence[float]) -> tuple[float, float, float]:
        nz, rows, cols = self.geometry.shape
        z = float(np.interp(model_zyx[0], self.q_source, np.arange(nz)))
        y = (model_zyx[1] + 0.5) * rows / self.n_model[1] - 0.5
        x = (model_zyx[2] + 0.5) * cols / self.n_model[2] - 0.5
        return z, y, x

    def _refine(self, cands: list[Candidate]) -> None:
        if not cands:
            return
        pipe, spacing = self.pipe, self.geometry.spacing
        refiner = pipe.refiner
        centers = [self._source_index(c.centroid) for c in cands]
        reach = (refiner.patch_size / 2 + 2) * refiner.patch_spacing / spacing[0]
        for c in centers:
            self.ensure_loaded(int(c[0] - reach), int(c[0] + reach) + 1)
        for refined in refiner.refine(self.hu, centers, spacing):
            if refined is None or refined.score < pipe.score_threshold:
                continue
            if refined.measurement.volume_mm3 < pipe.min_volume_mm3:
                continue
            center_mm = self.geometry.index_to_patient(refined.center)
            radius = refined.measurement.equivalent_diameter_mm / 2
            if any(
                np.linalg.norm(np.array(d.center_mm) - center_mm) < max(radius, 3.0) for d in self.detections
            ):
                continue  # the same nodule reached from a second stage-one candidate
            det = self._detection_from_mask(
                refined.source_mask,
                refined.region,
                refined.measurement,
                refined.score,
                refined.center,
                refiner,
                refined.patch_center,
            )
            if det is None:
                continue
            self.refined[refined.region] |= refined.source_mask
            self._accept(det)
            # Slices already reported get the nodule now; later slices get it when they are reported.
            k0, k1 = refined.region[0].start, min(refined.region[0].stop, self.done_source)
            if k1 > k0:
                block = self.labels[k0:k1]
                block[self.refined[k0:k1]] = pipe.nodule_label
                self.emit_labels(k0, k1)

    def _accept(self, det: Detection) -> None:
        self.detections.append(det)
        emit(self.on_event, EventKind.DETECTION, det.as_dict())

    def _detection_from_mask(
        self,
        mask: np.ndarray,
        region: tuple[slice, slice, slice],
        meas: NoduleMeasurement,
        score: float,
        center: Sequence[float],
        refiner: NoduleRefiner | None,
        patch_center: Sequence[float] | None = None,
    ) -> Detection | None:
        geometry = self.geometry
        if not mask.any():
            return None
        offset = np.array([sl.start for sl in region])
        zz, yy, xx = np.nonzero(mask)
        lo = tuple(int(v) for v in (offset + [zz.min(), yy.min(), xx.min()]))
        hi = tuple(int(v) for v in (offset + [zz.max(), yy.max(), xx.max()]))
        corners = np.array([geometry.index_to_patient(c) for c in (lo, hi)])
        if refiner is not None and patch_center is not None:
            # Long-axis end points are (row, column) on patch slice ``long_axis_slice``: back to source indices.
            half = (refiner.patch_size - 1) / 2
            step = [refiner.patch_spacing / s for s in geometry.spacing]
            ends_idx = [
                (
                    patch_center[0] + (meas.long_axis_slice - half) * step[0],
                    patch_center[1] + (p[0] - half) * step[1],
                    patch_center[2] + (p[1] - half) * step[2],
                )
                for p in meas.long_axis_endpoints
            ]
        else:
            ends_idx = [
                (meas.long_axis_slice + offset[0], p[0] + offset[1], p[1] + offset[2])
                for p in meas.long_axis_endpoints
            ]
        ends = tuple(tuple(float(v) for v in geometry.index_to_patient(e)) for e in ends_idx)
        slice_k = int(np.clip(round(ends_idx[0][0]), 0, geometry.shape[0] - 1))
        stored_lo, stored_hi = geometry.stored_index(lo), geometry.stored_index(hi)
        center_k = int(np.clip(round(center[0]), 0, geometry.shape[0] - 1))
        return Detection(
            id=len(self.detections) + 1,
            score=float(score),
            center_mm=tuple(float(v) for v in geometry.index_to_patient(center)),
            center_voxel=tuple(float(v) for v in geometry.stored_index(center)),
            box_voxel=(
                tuple(int(min(a, b)) for a, b in zip(stored_lo, stored_hi, strict=True)),
                tuple(int(max(a, b)) for a, b in zip(stored_lo, stored_hi, strict=True)),
            ),
            box_mm=(tuple(corners.min(axis=0)), tuple(corners.max(axis=0))),
            long_axis_mm=meas.long_axis_mm,
            short_axis_mm=meas.short_axis_mm,
            equivalent_diameter_mm=meas.equivalent_diameter_mm,
            volume_mm3=meas.volume_mm3,
            long_axis_slice=slice_k,
            long_axis_sop_instance_uid=geometry.sop_instance_uids[slice_k],
            long_axis_endpoints_mm=ends,
            center_sop_instance_uid=geometry.sop_instance_uids[center_k],
        )

    def _measure_stage_one(self, cand: Candidate) -> Detection | None:
        """Measure a stage-one candidate on the source-resolution labels (no refiner)."""
        pipe, geometry = self.pipe, self.geometry
        nz, rows, cols = geometry.shape
        z0, y0, x0, z1, y1, x1 = cand.box
        ks = np.nonzero((self.q_source >= z0 - 1) & (self.q_source <= z1))[0]
        if ks.size == 0:
            return None
        ry, rx = rows / self.n_model[1], cols / self.n_model[2]
        r0, r1 = max(0, int((y0 - 1) * ry)), min(rows, int(np.ceil((y1 + 1) * ry)))
        q0, q1 = max(0, int((x0 - 1) * rx)), min(cols, int(np.ceil((x1 + 1) * rx)))
        region = (slice(int(ks[0]), int(ks[-1]) + 1), slice(r0, r1), slice(q0, q1))
        crop = self.labels[region] == pipe.nodule_label
        comps, n = ndimage.label(crop, structure=np.ones((3, 3, 3), dtype=bool))
        if n == 0:
            return None
        target = np.array(self._source_index(cand.centroid)) - [ks[0], r0, q0]
        centers = ndimage.center_of_mass(crop, comps, range(1, n + 1))
        dist = [np.linalg.norm((np.array(c) - target) * geometry.spacing) for c in centers]
        mask = comps == (int(np.argmin(dist)) + 1)
        meas = measure_mask(mask, geometry.spacing)
        if meas.volume_mm3 < pipe.min_volume_mm3:
            return None
        zz, yy, xx = np.nonzero(mask)
        center = (zz.mean() + ks[0], yy.mean() + r0, xx.mean() + q0)
        return self._detection_from_mask(mask, region, meas, cand.score, center, None)
