"""Synthetic axial T1-like head MR, for demo data and for checking that CT models refuse MR input."""

from __future__ import annotations

import numpy as np

from inference.phantoms.types import MR_LABELS, Phantom

__all__ = ["make_brain_mr", "DEMO_MR_SHAPE", "DEMO_MR_SPACING"]

DEMO_MR_SHAPE: tuple[int, int, int] = (24, 256, 256)
DEMO_MR_SPACING: tuple[float, float, float] = (5.0, 0.9, 0.9)


def make_brain_mr(
    seed: int,
    shape: tuple[int, int, int] = DEMO_MR_SHAPE,
    spacing: tuple[float, float, float] = DEMO_MR_SPACING,
    *,
    noise_sigma: float = 12.0,
) -> Phantom:
    """Build a head phantom: scalp, skull, CSF, grey and white matter, two ventricles.

    Intensities are T1-like (white matter brightest inside the brain, CSF dark) in arbitrary units
    (0-1000, stored as int16). Labels follow :data:`MR_LABELS`.
    """
    if not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__} ({seed!r}).")
    if len(shape) != 3 or min(shape) < 4:
        raise ValueError(f"shape must be 3 sizes (z, y, x) of at least 4, got {shape!r}.")
    if len(spacing) != 3 or min(spacing) <= 0:
        raise ValueError(f"spacing must be 3 positive mm values, got {spacing!r}.")
    rng = np.random.default_rng(int(seed))
    nz, ny, nx = (int(s) for s in shape)
    sz, sy, sx = (float(s) for s in spacing)
    origin = (-(nx - 1) / 2 * sx, -(ny - 1) / 2 * sy, -(nz - 1) / 2 * sz)
    z = (origin[2] + np.arange(nz) * sz)[:, None, None].astype(np.float32)
    y = (origin[1] + np.arange(ny) * sy)[None, :, None].astype(np.float32)
    x = (origin[0] + np.arange(nx) * sx)[None, None, :].astype(np.float32)

    ax, ay, az = rng.uniform(68, 76), rng.uniform(86, 96), rng.uniform(70, 80)
    cz = rng.uniform(-10, 10)

    def shell(scale: float) -> np.ndarray:
        return (x / (ax * scale)) ** 2 + (y / (ay * scale)) ** 2 + ((z - cz) / (az * scale)) ** 2 <= 1

    vol = np.zeros((nz, ny, nx), dtype=np.float32)
    vol[shell(1.0)] = 550  # scalp and fat
    vol[shell(0.93)] = 60  # skull
    vol[shell(0.87)] = 180  # CSF
    brain = shell(0.84)
    vol[brain] = 470  # grey matter
    white = shell(0.7)
    vol[white] = 650
    ventricles = np.zeros_like(brain)
    for side in (-1, 1):
        vx = side * rng.uniform(8, 12)
        ventricles |= ((x - vx) / 7) ** 2 + ((y + 5) / 28) ** 2 + ((z - cz - 5) / 18) ** 2 <= 1
    vol[ventricles] = 180
    vol += rng.normal(scale=noise_sigma, size=vol.shape).astype(np.float32)
    np.clip(vol, 0, 1000, out=vol)

    labels = np.zeros((nz, ny, nx), dtype=np.uint8)
    labels[brain] = MR_LABELS["brain"]
    labels[ventricles & brain] = MR_LABELS["ventricles"]
    return Phantom(
        volume=np.rint(vol).astype(np.int16),
        spacing=(sz, sy, sx),
        origin=origin,
        labels=labels,
        nodules=[],
        modality="MR",
        label_names=dict(MR_LABELS),
        seed=int(seed),
    )
