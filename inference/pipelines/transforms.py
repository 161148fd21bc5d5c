"""Array transforms shared by training and inference, so both see the same numbers.

The segmentation network sees HU through fixed windows, one channel per window, each scaled to [0, 1]:
air maps to 0 in every channel, which is also what zero padding means at the image border.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "hu_to_channels",
    "resample_inplane",
    "interp_z",
    "source_to_model_z",
    "pad_to_multiple",
    "DEFAULT_WINDOWS",
]

#: (low, high) HU per input channel: a lung window and a soft-tissue window (liver vs muscle).
DEFAULT_WINDOWS: tuple[tuple[float, float], ...] = ((-1000.0, 400.0), (-160.0, 240.0))


def hu_to_channels(
    hu: np.ndarray | torch.Tensor, windows: Sequence[Sequence[float]] = DEFAULT_WINDOWS
) -> torch.Tensor:
    """HU array (any shape) to a float32 tensor with a leading channel axis, one channel per window."""
    if not windows:
        raise ValueError(f"windows must name at least one (low, high) pair, got {windows!r}.")
    t = torch.as_tensor(hu, dtype=torch.float32)
    out = []
    for lo, hi in windows:
        if not hi > lo:
            raise ValueError(f"each window needs high > low, got {(lo, hi)!r}.")
        out.append(((t - lo) / (hi - lo)).clamp_(0.0, 1.0))
    return torch.stack(out, dim=0)


def resample_inplane(slices: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(n, H, W) float tensor to (n, h, w): area averaging when shrinking (keeps noise and partial volume
    like a thicker acquisition would), bilinear when enlarging."""
    if slices.ndim != 3:
        raise ValueError(f"slices must be (n, H, W), got shape {tuple(slices.shape)!r}.")
    if tuple(slices.shape[1:]) == tuple(size):
        return slices
    x = slices[:, None]
    if size[0] <= slices.shape[1] and size[1] <= slices.shape[2]:
        return F.interpolate(x, size=size, mode="area")[:, 0]
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)[:, 0]


def source_to_model_z(n_source: int, n_model: int) -> np.ndarray:
    """Model-grid z coordinate of each source slice centre, both grids covering the same extent
    (the ``align_corners=False`` convention)."""
    return (np.arange(n_source) + 0.5) * (n_model / n_source) - 0.5


def interp_z(stack: torch.Tensor, first_index: int, positions: np.ndarray) -> torch.Tensor:
    """Linear interpolation along axis 1 of ``stack`` (C, n, ...), whose slice 0 has global index
    ``first_index``, at global fractional ``positions``; positions are clamped to the stack."""
    n = stack.shape[1]
    local = np.clip(np.asarray(positions, dtype=np.float64) - first_index, 0, n - 1)
    lo = np.floor(local).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    w = torch.as_tensor(local - lo, dtype=stack.dtype).view(1, -1, *([1] * (stack.ndim - 2)))
    return stack[:, lo] * (1 - w) + stack[:, hi] * w


def pad_to_multiple(
    x: torch.Tensor, multiple: int, dims: Sequence[int]
) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """Zero-pad the given dims of ``x`` symmetrically up to a multiple; return the tensor and the (before,
    after) pads so the caller can crop the output back."""
    pads: list[tuple[int, int]] = [(0, 0)] * x.ndim
    for d in dims:
        size = x.shape[d]
        total = (-size) % multiple
        pads[d] = (total // 2, total - total // 2)
    flat: list[int] = []
    for before, after in reversed(pads):
        flat += [before, after]
    if any(flat):
        x = F.pad(x, flat)
    return x, pads


def radiograph_to_input(
    image: np.ndarray,
    size: Sequence[int] = (256, 256),
    percentiles: Sequence[float] = (1.0, 99.5),
    dog_sigmas: Sequence[float] = (1.5, 6.0),
    dog_gain: float = 8.0,
) -> torch.Tensor:
    """A MONOCHROME2 radiograph (H, W) to the classifier input (1, 2, h, w).

    Channel 0: the image, area-resized, scaled by its own percentiles so exposure and bit depth do not
    matter. Channel 1: a difference of Gaussians (``dog_sigmas`` in output pixels) of channel 0, times
    ``dog_gain``: it flattens ribs, heart and lung fields and leaves blobs of nodule size, which lets a
    small network learn from a few thousand images.
    """
    from scipy import ndimage

    if image.ndim != 2:
        raise ValueError(f"image must be 2D (rows, columns), got shape {image.shape!r}.")
    t = torch.as_tensor(np.asarray(image, dtype=np.float32))[None, None]
    size = (int(size[0]), int(size[1]))
    if tuple(t.shape[2:]) != size:
        if t.shape[2] >= size[0] and t.shape[3] >= size[1]:
            t = F.interpolate(t, size=size, mode="area")
        else:
            t = F.interpolate(t, size=size, mode="bilinear", align_corners=False)
    lo, hi = np.percentile(t.numpy(), percentiles)
    x = ((t[0, 0] - float(lo)) / max(float(hi - lo), 1e-6)).clamp_(-0.5, 1.5).numpy()
    dog = ndimage.gaussian_filter(x, dog_sigmas[0]) - ndimage.gaussian_filter(x, dog_sigmas[1])
    return torch.from_numpy(np.stack([x, dog * dog_gain]).astype(np.float32))[None]
