"""Isotropic patches around a point of a source volume, and their way back to the source grid.

The nodule refiner sees every candidate the same way whatever the scanner's spacing: a cube of ``size``
voxels of ``spacing`` mm centred on the candidate, resampled trilinearly from the source slices. Its output
returns to the source voxels by the inverse mapping, so SEG voxels and measurements agree.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["patch_bounds", "extract_patch", "patch_to_source"]


def patch_bounds(
    center: Sequence[float], size: int, spacing: float, source_spacing: Sequence[float], shape: Sequence[int]
) -> tuple[slice, slice, slice]:
    """Source index slices (canonical z, y, x) covering the patch, with one voxel of margin, clipped."""
    half = (size - 1) / 2 * spacing
    out = []
    for c, s, n in zip(center, source_spacing, shape, strict=True):
        lo = max(0, int(np.floor(c - half / s)) - 1)
        hi = min(int(n), int(np.ceil(c + half / s)) + 2)
        out.append(slice(lo, max(hi, lo + 1)))
    return tuple(out)  # type: ignore[return-value]


def _grid(center, size, spacing, source_spacing, region) -> torch.Tensor:
    """grid_sample grid (1, D, H, W, 3) mapping patch voxels into the normalised crop ``region``."""
    axes = []
    offsets = (np.arange(size) - (size - 1) / 2) * spacing
    for c, s, sl in zip(center, source_spacing, region, strict=True):
        idx = c + offsets / s  # source index of each patch voxel along this axis
        n = sl.stop - sl.start
        axes.append(torch.as_tensor(2 * (idx - sl.start) / max(n - 1, 1) - 1, dtype=torch.float32))
    gz, gy, gx = torch.meshgrid(axes[0], axes[1], axes[2], indexing="ij")
    return torch.stack([gx, gy, gz], dim=-1)[None]


def extract_patch(
    volume: np.ndarray | torch.Tensor,
    center: Sequence[float],
    *,
    size: int,
    spacing: float,
    source_spacing: Sequence[float],
    fill: float = -1000.0,
) -> torch.Tensor:
    """A (size, size, size) float32 patch of ``volume`` (canonical z, y, x; HU) centred on ``center``
    (fractional source index), sampled every ``spacing`` mm; outside the volume reads as ``fill`` (air)."""
    region = patch_bounds(center, size, spacing, source_spacing, volume.shape)
    crop = torch.as_tensor(np.asarray(volume[region], dtype=np.float32)) - fill
    grid = _grid(center, size, spacing, source_spacing, region)
    out = F.grid_sample(crop[None, None], grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return out[0, 0] + fill


def patch_to_source(
    patch: torch.Tensor | np.ndarray,
    center: Sequence[float],
    *,
    spacing: float,
    source_spacing: Sequence[float],
    shape: Sequence[int],
) -> tuple[tuple[slice, slice, slice], np.ndarray]:
    """Resample a patch map back onto the source voxels it covers: (region slices, values on that region)."""
    p = torch.as_tensor(np.asarray(patch, dtype=np.float32))
    size = p.shape[0]
    region = patch_bounds(center, size, spacing, source_spacing, shape)
    axes = []
    for c, s, sl in zip(center, source_spacing, region, strict=True):
        idx = np.arange(sl.start, sl.stop)
        pos = (idx - c) * s / spacing + (size - 1) / 2  # patch coordinate of each source voxel
        axes.append(torch.as_tensor(2 * pos / (size - 1) - 1, dtype=torch.float32))
    gz, gy, gx = torch.meshgrid(axes[0], axes[1], axes[2], indexing="ij")
    grid = torch.stack([gx, gy, gz], dim=-1)[None]
    values = F.grid_sample(p[None, None], grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return region, values[0, 0].numpy()
