"""Small vectorised drawing helpers shared by the phantoms (private)."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["axis_coords", "upsample_to", "draw_capsule", "fibonacci_sphere", "add_noise_inplace"]


def axis_coords(n_full: int, n_low: int, origin: float, spacing: float) -> np.ndarray:
    """Patient mm of the centres of ``n_low`` cells that cover ``n_full`` voxels.

    Matches ``torch.nn.functional.interpolate(..., align_corners=False)`` so a field drawn on the coarse
    grid lands where the fine grid expects it after upsampling.
    """
    idx = (np.arange(n_low, dtype=np.float64) + 0.5) * (n_full / n_low) - 0.5
    return (origin + idx * spacing).astype(np.float32)


def upsample_to(array: np.ndarray, shape: tuple[int, int, int], *, labels: bool) -> np.ndarray:
    """Trilinear (intensities) or nearest (labels) upsampling with torch: several times faster than scipy."""
    if tuple(array.shape) == tuple(shape):
        return array
    t = torch.from_numpy(np.ascontiguousarray(array))[None, None]
    if labels:
        out = torch.nn.functional.interpolate(t.float(), size=shape, mode="nearest-exact")
        return out[0, 0].to(torch.uint8).numpy()
    out = torch.nn.functional.interpolate(t.float(), size=shape, mode="trilinear", align_corners=False)
    return out[0, 0].numpy()


def fibonacci_sphere(n: int) -> np.ndarray:
    """``n`` roughly uniform unit vectors (x, y, z)."""
    i = np.arange(n) + 0.5
    phi = np.arccos(1 - 2 * i / n)
    theta = np.pi * (1 + 5**0.5) * i
    return np.stack([np.cos(theta) * np.sin(phi), np.sin(theta) * np.sin(phi), np.cos(phi)], axis=1)


def draw_capsule(
    frac: np.ndarray,
    coords: tuple[np.ndarray, np.ndarray, np.ndarray],
    p0: np.ndarray,
    p1: np.ndarray,
    radius: float,
    edge_mm: float,
) -> None:
    """Max-composite an anti-aliased tube from ``p0`` to ``p1`` (x, y, z mm) into ``frac`` (z, y, x), in place.

    Only the bounding box is touched, so a hundred vessels cost less than one full-volume operation.
    """
    zc, yc, xc = coords
    lo = np.minimum(p0, p1) - radius - edge_mm
    hi = np.maximum(p0, p1) + radius + edge_mm
    sl = []
    for axis_c, a, b in ((zc, lo[2], hi[2]), (yc, lo[1], hi[1]), (xc, lo[0], hi[0])):
        start = int(np.searchsorted(axis_c, a)) if axis_c[0] <= axis_c[-1] else 0
        stop = int(np.searchsorted(axis_c, b, side="right"))
        if stop <= start:
            return
        sl.append(slice(start, stop))
    z = zc[sl[0]][:, None, None]
    y = yc[sl[1]][None, :, None]
    x = xc[sl[2]][None, None, :]
    d = p1 - p0
    length2 = float(d @ d) or 1e-6
    t = ((x - p0[0]) * d[0] + (y - p0[1]) * d[1] + (z - p0[2]) * d[2]) / length2
    t = np.clip(t, 0.0, 1.0)
    dist = np.sqrt((x - p0[0] - t * d[0]) ** 2 + (y - p0[1] - t * d[1]) ** 2 + (z - p0[2] - t * d[2]) ** 2)
    f = np.clip((radius - dist) / edge_mm + 0.5, 0.0, 1.0).astype(np.float32)
    view = frac[sl[0], sl[1], sl[2]]
    np.maximum(view, f, out=view)


def add_noise_inplace(volume: np.ndarray, sigma: float, rng: np.random.Generator, chunk: int = 32) -> None:
    """Add white Gaussian noise slab by slab so the float64 temporaries never hold the whole volume."""
    if sigma <= 0:
        return
    for start in range(0, volume.shape[0], chunk):
        block = volume[start : start + chunk]
        noise = rng.standard_normal(block.shape, dtype=np.float32)
        noise *= sigma
        block += noise
