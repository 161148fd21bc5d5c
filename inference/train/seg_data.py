"""Training data for the chest CT segmentation net: phantoms rendered directly on the model grid.

The model runs at 1.5 mm on the whole chest, so training volumes are whole chests on that grid (not
64 mm cubes), with fields of view and noise around what the inference resampler produces from a
0.7 x 0.7 x 1.25 mm series: area averaging of sigma 20 HU noise leaves about 8 HU.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from inference.phantoms import make_chest_ct
from inference.phantoms.types import Phantom
from inference.pipelines.transforms import hu_to_channels

__all__ = ["SegPhantomPool", "make_model_grid_phantom", "SegBatch"]


def make_model_grid_phantom(
    seed: int,
    spacing_mm: float = 1.5,
    *,
    n_nodules: int | None = None,
    noise_sigma: float = 0.0,
    full_fov: bool = False,
) -> Phantom:
    """A chest phantom on an isotropic grid; field of view drawn at random unless ``full_fov`` (the demo's
    358 x 358 x 375 mm)."""
    rng = np.random.default_rng(seed + 7_000_000)
    if full_fov:
        fov_xy, fov_z = 512 * 0.7, 300 * 1.25
    else:
        fov_xy, fov_z = rng.uniform(220, 380), rng.uniform(140, 400)
    n_xy = int(round(fov_xy / spacing_mm))
    n_z = int(round(fov_z / spacing_mm))
    if n_nodules is None:
        n_nodules = int(rng.integers(1, 7))
    return make_chest_ct(
        seed,
        shape=(n_z, n_xy, n_xy),
        spacing=(spacing_mm,) * 3,
        n_nodules=n_nodules,
        noise_sigma=noise_sigma,
    )


@dataclass
class SegBatch:
    image: torch.Tensor  # (B, C, D, H, W)
    label: torch.Tensor  # (B, 1, D, H, W) int64


class SegPhantomPool:
    """A rolling pool of noise-free phantoms; crops get blur, noise and HU jitter on the fly.

    ``refresh_every`` steps one phantom is replaced by a new seed, so a long run sees many patients while
    each step costs one crop, not one phantom.
    """

    def __init__(
        self,
        seeds: list[int],
        patch: tuple[int, int, int] = (64, 128, 128),
        pool_size: int = 16,
        refresh_every: int = 4,
        nodule_fraction: float = 0.6,
        noise_range: tuple[float, float] = (2.0, 16.0),
        windows=None,
        spacing_mm: float = 1.5,
        rng_seed: int = 0,
    ) -> None:
        if pool_size < 1 or pool_size > len(seeds):
            raise ValueError(f"pool_size must be in [1, len(seeds)={len(seeds)}], got {pool_size!r}.")
        if not 0 <= nodule_fraction <= 1:
            raise ValueError(f"nodule_fraction must be in [0, 1], got {nodule_fraction!r}.")
        self.seeds = list(seeds)
        self.patch = tuple(int(p) for p in patch)
        self.refresh_every = int(refresh_every)
        self.nodule_fraction = float(nodule_fraction)
        self.noise_range = noise_range
        self.windows = windows
        self.spacing_mm = spacing_mm
        self.rng = np.random.default_rng(rng_seed)
        self._next = 0
        self.pool: list[Phantom] = [self._new() for _ in range(pool_size)]
        self._steps = 0

    def _new(self) -> Phantom:
        seed = self.seeds[self._next % len(self.seeds)]
        self._next += 1
        return make_model_grid_phantom(seed, self.spacing_mm)

    def _crop(self, ph: Phantom) -> tuple[np.ndarray, np.ndarray]:
        shape = np.array(ph.shape)
        patch = np.array(self.patch)
        if ph.nodules and self.rng.random() < self.nodule_fraction:
            nod = ph.nodules[int(self.rng.integers(len(ph.nodules)))]
            centre = np.array(nod.center_voxel) + self.rng.uniform(-0.35, 0.35, 3) * patch
        else:
            centre = self.rng.uniform(patch / 2, np.maximum(shape - patch / 2, patch / 2 + 1))
        start = np.clip(np.round(centre - patch / 2).astype(int), 0, np.maximum(shape - patch, 0))
        sl = tuple(slice(int(s), int(s + p)) for s, p in zip(start, patch, strict=True))
        hu = ph.volume[sl].astype(np.float32)
        lab = ph.labels[sl]
        pad = [(0, int(p - s)) for p, s in zip(patch, hu.shape, strict=True)]
        if any(p[1] for p in pad):
            hu = np.pad(hu, pad, constant_values=-1000)
            lab = np.pad(lab, pad)
        blur = self.rng.uniform(0.0, 0.7)
        if blur > 0.15:
            hu = ndimage.gaussian_filter(hu, blur)
        hu = hu * self.rng.uniform(0.97, 1.03) + self.rng.uniform(-15, 15)
        hu += self.rng.normal(scale=self.rng.uniform(*self.noise_range), size=hu.shape).astype(np.float32)
        return hu, lab

    def batch(self, size: int) -> SegBatch:
        self._steps += 1
        if self.refresh_every and self._steps % self.refresh_every == 0:
            self.pool[int(self.rng.integers(len(self.pool)))] = self._new()
        images, labels = [], []
        for _ in range(size):
            ph = self.pool[int(self.rng.integers(len(self.pool)))]
            hu, lab = self._crop(ph)
            images.append(hu_to_channels(hu, self.windows) if self.windows else hu_to_channels(hu))
            labels.append(torch.from_numpy(lab.astype(np.int64))[None])
        return SegBatch(torch.stack(images), torch.stack(labels))
