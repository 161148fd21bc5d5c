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

from inference.errors import InferenceCancelled, InferenceInputError
from inference.events import EventHandler, EventKind, emit
from inference.pipelines.detection import Candidate, find_candidates, measure_mask, soft_nms
from inference.pipelines.dicom_series import SeriesGeometry, read_slices, scan_series
from inference.pipelines.encoding import RLE_ENCODING, rle_encode_b64
from inference.pipelines.inferer import VolumeInferer
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
        network: an already loaded network (tests); by default loaded from ``spec``.
        strict_weights: refuse to run without trained weights (set False only in tests).
    """

    def __init__(
        self,
        spec,
        network: nn.Module | None = None,
        *,
        strict_weights: bool = True,
        threads: int | None = None,
    ):
        from inference.registry import load_network

        self.spec = spec
        self.network = network if network is not None else load_network(spec, strict_weights=strict_weights)
        self.network.eval()
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
        self.first_slab_core = int(inf.get("first_slab_core", self.slab_core))
        self.labels = dict(spec.labels) or {"background": 0, "lung": 1, "nodule": 2, "liver": 3}
        self.nodule_label = int(self.labels.get("nodule", 2))
        self.candidate_thresholds = tuple(post.get("candidate_thresholds", (0.3, 0.5)))
        self.score_threshold = float(post.get("score_threshold", 0.5))
        self.soft_nms_sigma = float(post.get("soft_nms_sigma", 0.5))
        self.min_volume_mm3 = float(post.get("min_volume_mm3", 15.0))
        if threads:
            torch.set_num_threads(int(threads))

    # -- public -------------------------------------------------------------------------------------------

    def run(
        self,
        series_paths: Sequence[str | Path],
        on_event: EventHandler | None = None,
        should_cancel: Callable[[], bool] | None = None,
    ) -> SegmentationResult:
        t_start = time.perf_counter()
        timings: dict[str, float] = {}
        emit(on_event, EventKind.PROGRESS, {"percent": 0.0, "stage": "reading", "message": "reading headers"})
        geometry = scan_series(series_paths, modalities=self.spec.modalities)
        ok, reason = self.spec.accepts(geometry.modality, geometry.body_part or None)
        if not ok:
            raise InferenceInputError(reason)
        timings["headers"] = time.perf_counter() - t_start

        nz, rows, cols = geometry.shape
        sz, sy, sx = geometry.spacing
        mz_sp, my_sp, mx_sp = self.model_spacing
        n_model = (
            max(1, round(nz * sz / mz_sp)),
            max(16, round(rows * sy / my_sp)),
            max(16, round(cols * sx / mx_sp)),
        )
        model_spacing_eff = (nz * sz / n_model[0], rows * sy / n_model[1], cols * sx / n_model[2])
        q_source = source_to_model_z(nz, n_model[0])  # model z of each source slice
        p_model = source_to_model_z(n_model[0], nz)  # source z of each model slice

        labels = np.zeros((nz, rows, cols), dtype=np.uint8)  # canonical orientation
        nodule_prob = np.zeros(n_model, dtype=np.float32)
        cache: dict[int, torch.Tensor] = {}  # source slice -> in-plane resampled HU
        slabs = plan_slabs(n_model[0], self.slab_core, self.first_slab_core)
        detections: list[Detection] = []
        seen_boxes: set[tuple[int, ...]] = set()
        t_model = t_back = t_read = t_detect = 0.0
        done_source = 0

        for slab_index, (c0, c1) in enumerate(slabs):
            if should_cancel is not None and should_cancel():
                raise InferenceCancelled(f"cancelled before slab {slab_index + 1} of {len(slabs)}")
            a, b = max(0, c0 - self.slab_halo), min(n_model[0], c1 + self.slab_halo)
            # Source slices the slab input interpolates from.
            k_lo = max(0, int(np.floor(p_model[a])))
            k_hi = min(nz, int(np.floor(p_model[b - 1])) + 2)
            t = time.perf_counter()
            missing = [k for k in range(k_lo, k_hi) if k not in cache]
            if missing:
                hu = torch.from_numpy(read_slices(geometry, missing[0], missing[-1] + 1))
                small = resample_inplane(hu, n_model[1:])
                for n, k in enumerate(range(missing[0], missing[-1] + 1)):
                    cache[k] = small[n]
            for k in [k for k in cache if k < k_lo]:
                del cache[k]
            stack = torch.stack([cache[k] for k in range(k_lo, k_hi)])[None]
            slab_hu = interp_z(stack, k_lo, p_model[a:b])[0]
            t_read += time.perf_counter() - t

            t = time.perf_counter()
            with torch.inference_mode():
                probs = self.inferer(hu_to_channels(slab_hu, self.windows)[None], self.network)[0]
            t_model += time.perf_counter() - t
            nodule_prob[c0:c1] = probs[self.nodule_label, c0 - a : c1 - a].numpy()

            # Back to source slices whose model z falls in this core.
            t = time.perf_counter()
            last = slab_index == len(slabs) - 1
            upper = np.inf if last else c1 - 0.5
            ks = [k for k in range(done_source, nz) if q_source[k] < upper]
            if ks:
                keep_lo = max(a, c0 - 1)
                keep = probs[:, keep_lo - a : min(b, c1 + 1) - a]
                for chunk in range(0, len(ks), 16):
                    part = ks[chunk : chunk + 16]
                    pz = interp_z(keep, keep_lo, q_source[part])  # (C, n, my, mx)
                    labels[part[0] : part[-1] + 1] = upsample_labels(pz, rows, cols)
                k0, k1 = ks[0], ks[-1] + 1
                done_source = k1
                stored = geometry.to_stored(labels[k0:k1])
                emit(
                    on_event,
                    EventKind.PARTIAL_MASK,
                    {
                        "z_start": k0,
                        "z_end": k1,
                        "shape": [k1 - k0, rows, cols],
                        "encoding": RLE_ENCODING,
                        "data": rle_encode_b64(stored),
                        "labels": {k: v for k, v in self.labels.items() if v},
                        "sop_instance_uids": geometry.sop_instance_uids[k0:k1],
                        "resolution": "source",
                        "orientation": "slices sorted feet to head (ascending patient z), rows and columns as stored",
                    },
                )
            t_back += time.perf_counter() - t

            t = time.perf_counter()
            new = self._detect(nodule_prob, c1, last, seen_boxes)
            for cand in new:
                det = self._measure(
                    cand, labels, geometry, q_source, n_model, model_spacing_eff, len(detections) + 1
                )
                if det is not None:
                    detections.append(det)
                    emit(on_event, EventKind.DETECTION, det.as_dict())
            t_detect += time.perf_counter() - t
            emit(
                on_event,
                EventKind.PROGRESS,
                {
                    "percent": round(5 + 90 * c1 / n_model[0], 1),
                    "stage": "segmenting",
                    "message": f"slab {slab_index + 1}/{len(slabs)}",
                },
            )

        timings.update(
            read_resample=t_read,
            network=t_model,
            to_source=t_back,
            detect=t_detect,
            total=time.perf_counter() - t_start,
        )
        timings = {k: round(v, 3) for k, v in timings.items()}
        logger.info("chest CT pipeline: %s", timings)
        emit(
            on_event,
            EventKind.PROGRESS,
            {"percent": 95.0, "stage": "segmenting", "message": "segmentation done"},
        )
        return SegmentationResult(
            geometry=geometry,
            labels=geometry.to_stored(labels),
            label_names=dict(self.labels),
            detections=detections,
            timings=timings,
        )

    # -- detection ----------------------------------------------------------------------------------------

    def _detect(self, nodule_prob: np.ndarray, c1: int, last: bool, seen: set) -> list[Candidate]:
        """Closed, not yet reported candidate groups after Soft-NMS and the score threshold."""
        region = nodule_prob[:c1]
        if region.max() < min(self.candidate_thresholds):
            return []
        cands = find_candidates(region, self.candidate_thresholds)
        closed = [c for c in cands if (last or c.box[3] < c1) and c.box not in seen]
        for c in closed:
            seen.add(c.box)
        kept = soft_nms(closed, sigma=self.soft_nms_sigma)
        return [c for c in kept if c.score >= self.score_threshold]

    def _measure(
        self,
        cand: Candidate,
        labels: np.ndarray,
        geometry: SeriesGeometry,
        q_source: np.ndarray,
        n_model: tuple[int, int, int],
        model_spacing: tuple[float, float, float],
        det_id: int,
    ) -> Detection | None:
        """Measure a candidate on the source-resolution labels (canonical), falling back to the model grid."""
        nz, rows, cols = labels.shape
        z0, y0, x0, z1, y1, x1 = cand.box
        ks = np.nonzero((q_source >= z0 - 1) & (q_source <= z1))[0]
        if ks.size == 0:
            return None
        ry, rx = rows / n_model[1], cols / n_model[2]
        r0, r1 = max(0, int((y0 - 1) * ry)), min(rows, int(np.ceil((y1 + 1) * ry)))
        q0, q1 = max(0, int((x0 - 1) * rx)), min(cols, int(np.ceil((x1 + 1) * rx)))
        crop = labels[ks[0] : ks[-1] + 1, r0:r1, q0:q1] == self.nodule_label
        comps, n = ndimage.label(crop, structure=np.ones((3, 3, 3), dtype=bool))
        spacing = geometry.spacing
        if n:
            # The component nearest to the candidate's centroid.
            cz = np.interp(cand.centroid[0], q_source, np.arange(nz)) - ks[0]
            cy = (cand.centroid[1] + 0.5) * ry - 0.5 - r0
            cx = (cand.centroid[2] + 0.5) * rx - 0.5 - q0
            centers = ndimage.center_of_mass(crop, comps, range(1, n + 1))
            dist = [np.linalg.norm((np.array(c) - (cz, cy, cx)) * spacing) for c in centers]
            mask = comps == (int(np.argmin(dist)) + 1)
            offset = (int(ks[0]), r0, q0)
        else:
            return None
        meas = measure_mask(mask, spacing)
        if meas.volume_mm3 < self.min_volume_mm3:
            return None
        zz, yy, xx = np.nonzero(mask)
        center = (zz.mean() + offset[0], yy.mean() + offset[1], xx.mean() + offset[2])
        lo = (int(zz.min()) + offset[0], int(yy.min()) + offset[1], int(xx.min()) + offset[2])
        hi = (int(zz.max()) + offset[0], int(yy.max()) + offset[1], int(xx.max()) + offset[2])
        corners = np.array([geometry.index_to_patient(c) for c in (lo, hi)])
        box_mm = (tuple(corners.min(axis=0)), tuple(corners.max(axis=0)))
        slice_k = meas.long_axis_slice + offset[0]
        ends = tuple(
            tuple(float(v) for v in geometry.index_to_patient((slice_k, p[0] + offset[1], p[1] + offset[2])))
            for p in meas.long_axis_endpoints
        )
        stored_center = geometry.stored_index(center)
        stored_lo, stored_hi = geometry.stored_index(lo), geometry.stored_index(hi)
        box_voxel = (
            tuple(int(min(a, b)) for a, b in zip(stored_lo, stored_hi, strict=True)),
            tuple(int(max(a, b)) for a, b in zip(stored_lo, stored_hi, strict=True)),
        )
        center_k = int(round(center[0]))
        return Detection(
            id=det_id,
            score=float(cand.score),
            center_mm=tuple(float(v) for v in geometry.index_to_patient(center)),
            center_voxel=tuple(float(v) for v in stored_center),
            box_voxel=box_voxel,
            box_mm=box_mm,
            long_axis_mm=meas.long_axis_mm,
            short_axis_mm=meas.short_axis_mm,
            equivalent_diameter_mm=meas.equivalent_diameter_mm,
            volume_mm3=meas.volume_mm3,
            long_axis_slice=slice_k,
            long_axis_sop_instance_uid=geometry.sop_instance_uids[slice_k],
            long_axis_endpoints_mm=ends,
            center_sop_instance_uid=geometry.sop_instance_uids[center_k],
        )
