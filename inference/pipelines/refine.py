"""Second stage for nodule candidates: a small 3D U-Net on a 0.8 mm cube around each candidate.

Stage one (the 1.5 mm whole-chest U-Net) finds candidates cheaply but at 1.5 mm a 5 mm nodule spans three
voxels and a vessel seen end-on looks like a nodule. The refiner sees 35 mm around the candidate at 0.9 mm:
it segments the nodule at the centre, if any. Its maximum probability near the centre is the candidate's
score (false-positive reduction, like the second-stage classifiers of lung CAD systems) and its mask gives
the measurements and the SEG voxels. It costs a few tens of milliseconds per candidate on the CPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage
from torch import nn

from inference.pipelines.detection import NoduleMeasurement, measure_mask
from inference.pipelines.patches import extract_patch, patch_to_source
from inference.pipelines.transforms import hu_to_channels

__all__ = ["NoduleRefiner", "RefinedNodule"]


@dataclass
class RefinedNodule:
    """A candidate after refinement; ``center`` is a canonical source index (z, y, x)."""

    score: float
    center: tuple[float, float, float]
    measurement: NoduleMeasurement
    region: tuple[slice, slice, slice]
    source_mask: np.ndarray  # bool, on ``region`` of the canonical source volume
    patch_center: tuple[float, float, float]  # source index of the patch centre (measurement coordinates)


class NoduleRefiner:
    """Score and segment candidates. ``window`` is the HU window of the single input channel."""

    def __init__(
        self,
        network: nn.Module,
        *,
        patch_size: int = 40,
        patch_spacing_mm: float = 0.9,
        window: Sequence[float] = (-1000.0, 400.0),
        center_radius_mm: float = 5.0,
        batch_size: int = 8,
        device: str | torch.device = "cpu",
    ) -> None:
        if patch_size < 16 or patch_size % 8:
            raise ValueError(f"patch_size must be a multiple of 8, at least 16, got {patch_size!r}.")
        if patch_spacing_mm <= 0:
            raise ValueError(f"patch_spacing_mm must be > 0, got {patch_spacing_mm!r}.")
        self.network = network.eval()
        self.patch_size = int(patch_size)
        self.patch_spacing = float(patch_spacing_mm)
        self.window = (float(window[0]), float(window[1]))
        self.center_radius_mm = float(center_radius_mm)
        self.batch_size = int(batch_size)
        self.device = torch.device(device)
        r = (np.arange(self.patch_size) - (self.patch_size - 1) / 2) * self.patch_spacing
        zz, yy, xx = np.meshgrid(r, r, r, indexing="ij")
        self._center_ball = torch.as_tensor(zz**2 + yy**2 + xx**2 <= self.center_radius_mm**2)

    def patches(self, volume: np.ndarray, centers: Sequence[Sequence[float]], source_spacing) -> torch.Tensor:
        """(N, 1, P, P, P) network input for candidate centres (canonical source indices)."""
        hu = [
            extract_patch(
                volume, c, size=self.patch_size, spacing=self.patch_spacing, source_spacing=source_spacing
            )
            for c in centers
        ]
        return torch.stack([hu_to_channels(h, [self.window]) for h in hu])

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Sigmoid probabilities (N, P, P, P)."""
        out = []
        with torch.inference_mode():
            for start in range(0, len(x), self.batch_size):
                batch = x[start : start + self.batch_size].to(self.device)
                out.append(torch.sigmoid(self.network(batch)[:, 0]).float().cpu())
        return torch.cat(out) if out else torch.empty(0)

    def score(self, probs: torch.Tensor) -> torch.Tensor:
        """Maximum probability within ``center_radius_mm`` of the patch centre, per patch."""
        return probs[:, self._center_ball].amax(dim=1) if len(probs) else torch.empty(0)

    def refine(
        self, volume: np.ndarray, centers: Sequence[Sequence[float]], source_spacing: Sequence[float]
    ) -> list[RefinedNodule | None]:
        """One result per centre; None where no nodule touches the centre."""
        if not centers:
            return []
        probs = self.predict(self.patches(volume, centers, source_spacing))
        scores = self.score(probs)
        out: list[RefinedNodule | None] = []
        half = (self.patch_size - 1) / 2
        for c, p, s in zip(centers, probs.numpy(), scores.tolist(), strict=True):
            comps, n = ndimage.label(p >= 0.5, structure=np.ones((3, 3, 3), dtype=bool))
            if n == 0:
                out.append(None)
                continue
            in_ball = comps[self._center_ball.numpy()]
            ids = np.bincount(in_ball[in_ball > 0], minlength=n + 1)
            if ids.sum() == 0:
                out.append(None)
                continue
            mask = comps == int(np.argmax(ids))
            meas = measure_mask(mask, (self.patch_spacing,) * 3)
            zz, yy, xx = np.nonzero(mask)
            centroid = np.array([zz.mean(), yy.mean(), xx.mean()])
            center = tuple(
                float(ci + (pi - half) * self.patch_spacing / si)
                for ci, pi, si in zip(c, centroid, source_spacing, strict=True)
            )
            soft = np.where(ndimage.binary_dilation(mask, iterations=1), p, 0.0).astype(np.float32)
            region, values = patch_to_source(
                soft, c, spacing=self.patch_spacing, source_spacing=source_spacing, shape=volume.shape
            )
            out.append(
                RefinedNodule(
                    score=float(s),
                    center=center,
                    measurement=meas,
                    region=region,
                    source_mask=values >= 0.5,
                    patch_center=tuple(float(v) for v in c),
                )
            )
        return out
