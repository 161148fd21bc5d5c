"""Synthetic chest CT with known lungs, liver and nodules, for demo data, training and tests.

Anatomy is defined in millimetres, not voxels, so a seed gives (nearly) the same patient on any grid with
the same field of view: the demo series at 0.7 x 0.7 x 1.25 mm and the training volumes at the model's
1.5 mm show the same structures at the same physical size. Large structures are drawn on a grid of about 1.4 x 1.4 x 2.5 mm and
upsampled (trilinear for HU, nearest for labels); nodules are drawn at full resolution so their size is
exact.

Not anatomy: a test object with the contrasts and confounders (vessels, bone, liver) that matter to a
nodule detector. Never present results on it as clinical.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from inference.phantoms._render import (
    add_noise_inplace,
    axis_coords,
    draw_capsule,
    fibonacci_sphere,
    upsample_to,
)
from inference.phantoms.types import CT_LABELS, Nodule, Phantom

__all__ = ["make_chest_ct", "DEMO_CT_SHAPE", "DEMO_CT_SPACING"]

DEMO_CT_SHAPE: tuple[int, int, int] = (300, 512, 512)
DEMO_CT_SPACING: tuple[float, float, float] = (1.25, 0.7, 0.7)

_AIR, _FAT, _SOFT, _BONE_CORTEX, _BONE_CANCELLOUS, _DISC, _CSF = (
    -1000.0,
    -100.0,
    40.0,
    700.0,
    300.0,
    70.0,
    15.0,
)
_COARSE_MM = (2.5, 1.4, 1.4)  # largest cell used for the big structures (z, y, x)


@dataclass
class _Anatomy:
    """Random shape parameters of one patient (mm, LPS)."""

    bx: float
    by: float
    ax: float
    ay: float
    fat: float
    lungs: list[dict]
    lung_hu: float
    z_base: float
    z_top: float
    dome: float
    heart: tuple[float, ...]
    liver: tuple[float, ...]
    liver_hu: float
    spine: tuple[float, float, float]
    disc_period: float
    disc_phase: float
    rib_period: float
    rib_phase: float
    rib_height: float
    scale: float


def _check_args(seed: int, shape, spacing, n_nodules, noise_sigma, diameter_range) -> None:
    if not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__} ({seed!r}).")
    if len(shape) != 3 or any(int(s) < 16 for s in shape):
        raise ValueError(f"shape must be 3 sizes (z, y, x) of at least 16 voxels, got {shape!r}.")
    if len(spacing) != 3 or any(float(s) <= 0 for s in spacing):
        raise ValueError(f"spacing must be 3 positive mm values (z, y, x), got {spacing!r}.")
    if n_nodules is not None and not 0 <= int(n_nodules) <= 8:
        raise ValueError(f"n_nodules must be None or in [0, 8], got {n_nodules!r}.")
    if noise_sigma < 0:
        raise ValueError(f"noise_sigma must be >= 0, got {noise_sigma!r}.")
    lo, hi = diameter_range
    if not 2.0 <= lo <= hi <= 40.0:
        raise ValueError(
            f"nodule_diameter_range must satisfy 2 <= low <= high <= 40 mm, got {diameter_range!r}."
        )


def _random_anatomy(rng: np.random.Generator, fov_xy: float, z_lo: float, z_hi: float) -> _Anatomy:
    s = min(1.0, fov_xy / 360.0) * rng.uniform(0.88, 1.04)
    length = z_hi - z_lo
    sz = min(1.0, length / 375.0)
    ax, ay = 160.0 * s, 112.0 * s
    bx, by = rng.uniform(-6, 6) * s, rng.uniform(-6, 6) * s
    z_top = z_hi - rng.uniform(0.05, 0.1) * length
    z_base = z_lo + rng.uniform(0.3, 0.38) * length
    lungs = []
    for side in (1.0, -1.0):  # +x is the patient's left
        lungs.append(
            {
                "side": side,
                "cx": bx + side * rng.uniform(0.38, 0.44) * ax,
                "cy": by + rng.uniform(-0.08, 0.04) * ay,
                "rx": rng.uniform(0.27, 0.32) * ax,
                "ry": rng.uniform(0.62, 0.70) * ay,
            }
        )
    height = z_top - z_base
    heart = (
        bx + rng.uniform(8, 25) * s,
        by - rng.uniform(0.15, 0.3) * ay,
        z_base + rng.uniform(0.18, 0.3) * height,
        rng.uniform(50, 62) * s,
        rng.uniform(42, 52) * s,
        rng.uniform(45, 58) * sz,
    )
    liver_r = (rng.uniform(0.5, 0.6) * ax, rng.uniform(0.65, 0.78) * ay, rng.uniform(0.2, 0.28) * length)
    liver = (
        bx - rng.uniform(0.3, 0.42) * ax,
        by + rng.uniform(-0.1, 0.08) * ay,
        z_base + rng.uniform(10, 30) * sz - liver_r[2],
        *liver_r,
    )
    return _Anatomy(
        bx=bx,
        by=by,
        ax=ax,
        ay=ay,
        fat=rng.uniform(6, 16) * s,
        lungs=lungs,
        lung_hu=rng.uniform(-870, -820),
        z_base=z_base,
        z_top=z_top,
        dome=rng.uniform(15, 30) * sz,
        heart=heart,
        liver=liver,
        liver_hu=rng.uniform(55, 70),
        spine=(bx, by + 0.62 * ay, 0.1 * ax),
        disc_period=28.0 * sz,
        disc_phase=rng.uniform(0, 28.0),
        rib_period=rng.uniform(22, 27) * sz,
        rib_phase=rng.uniform(0, 25.0),
        rib_height=rng.uniform(8, 11) * sz,
        scale=s,
    )


def _lung_mask(a: _Anatomy, zc: np.ndarray, yc: np.ndarray, xc: np.ndarray) -> np.ndarray:
    z = zc[:, None, None]
    height = a.z_top - a.z_base
    t = (z - a.z_base) / height
    # Flat-ish lower part, domed apex: cross-section scale per slice.
    scale2 = np.where(t > 0.35, np.clip(1 - ((t - 0.35) / 0.65) ** 2, 0, 1), 1.0).astype(np.float32)
    mask = np.zeros((zc.size, yc.size, xc.size), dtype=bool)
    for lung in a.lungs:
        e = ((xc[None, :] - lung["cx"]) / lung["rx"]) ** 2 + ((yc[:, None] - lung["cy"]) / lung["ry"]) ** 2
        e = e.astype(np.float32)[None]
        base = a.z_base + a.dome * np.clip(1 - e, 0, 1)  # diaphragm dome, deep costophrenic recesses
        mask |= (e <= scale2) & (z >= base)
    mask &= (np.abs(xc - a.bx) > 22 * a.scale)[None, None, :]  # mediastinum
    return mask


def _ellipsoid(c: tuple[float, ...], zc, yc, xc) -> np.ndarray:
    cx, cy, cz, rx, ry, rz = c
    return (
        ((xc[None, None, :] - cx) / rx) ** 2
        + ((yc[None, :, None] - cy) / ry) ** 2
        + ((zc[:, None, None] - cz) / rz) ** 2
    ) <= 1


def _vessel_fraction(a: _Anatomy, rng: np.random.Generator, coords, edge_mm: float) -> np.ndarray:
    """Branching tubes from each hilum: the confounders a nodule detector must learn to ignore."""
    zc, yc, xc = coords
    frac = np.zeros((zc.size, yc.size, xc.size), dtype=np.float32)
    height = a.z_top - a.z_base
    for lung in a.lungs:
        hilum = np.array(
            [
                lung["cx"] - lung["side"] * 0.55 * lung["rx"],
                lung["cy"] - 0.05 * lung["ry"],
                a.z_base + 0.5 * height,
            ]
        )
        for _ in range(6):
            d = rng.normal(size=3)
            d[0] = lung["side"] * abs(d[0]) + lung["side"] * 0.5
            # Trunks enter along the hilum, not from one point: six thick tubes meeting in one spot would
            # make a nodule-like blob that no label calls a nodule.
            start = hilum + np.array(
                [
                    -lung["side"] * rng.uniform(0, 12),
                    rng.uniform(-18, 18) * a.scale,
                    rng.uniform(-0.12, 0.12) * height,
                ]
            )
            stack = [(start, d / np.linalg.norm(d), rng.uniform(2.6, 3.6), 0)]
            while stack:
                p0, direction, radius, depth = stack.pop()
                length = rng.uniform(20, 40) * max(a.scale, 0.6)
                p1 = p0 + direction * length
                draw_capsule(frac, coords, p0, p1, radius, edge_mm)
                if depth < 4:
                    for _ in range(2):
                        nd = direction + rng.normal(scale=0.6, size=3)
                        stack.append((p1, nd / np.linalg.norm(nd), radius * 0.72, depth + 1))
    return frac


def _render_coarse(
    a: _Anatomy, rng: np.random.Generator, coords, edge_mm: float
) -> tuple[np.ndarray, np.ndarray]:
    zc, yc, xc = coords
    z = zc[:, None, None]
    y2 = yc[:, None]
    x2 = xc[None, :]
    e_body = ((x2 - a.bx) / a.ax) ** 2 + ((y2 - a.by) / a.ay) ** 2
    e_in = ((x2 - a.bx) / (a.ax - a.fat)) ** 2 + ((y2 - a.by) / (a.ay - a.fat)) ** 2
    shape = (zc.size, yc.size, xc.size)
    hu = np.full(shape, _AIR, dtype=np.float32)
    hu[:, e_body <= 1] = _FAT
    inner = e_in <= 1
    hu[:, inner] = _SOFT

    lung = _lung_mask(a, zc, yc, xc)
    lung &= inner[None]
    heart = _ellipsoid(a.heart, zc, yc, xc)
    liver = _ellipsoid(a.liver, zc, yc, xc) & inner[None]
    lung &= ~heart & ~liver

    vessels = _vessel_fraction(a, rng, coords, edge_mm)
    hu[lung] = a.lung_hu + (_SOFT - a.lung_hu) * vessels[lung]
    hu[heart & inner[None]] = 45.0
    hu[liver] = a.liver_hu

    # Spine: vertebral bodies with discs, a spinal canal and a posterior arch.
    sx, sy, sr = a.spine
    d_spine = np.sqrt((x2 - sx) ** 2 + (y2 - sy) ** 2)
    disc = ((z - a.disc_phase) % a.disc_period) < 6.0
    body = d_spine <= sr
    vb = np.where(d_spine > sr - 2.5, _BONE_CORTEX, _BONE_CANCELLOUS).astype(np.float32)
    hu[:, body] = np.where(disc[:, 0, 0][:, None], _DISC, vb[body][None, :])
    canal_y = sy + sr + 8 * a.scale
    d_canal = np.sqrt((x2 - sx) ** 2 + (y2 - canal_y) ** 2)
    arch = (d_canal > 7 * a.scale) & (d_canal <= 12 * a.scale)
    hu[:, arch] = _BONE_CORTEX
    hu[:, d_canal <= 7 * a.scale] = _CSF

    # Ribs: an oblique band inside the body wall; sternum in front.
    r_in = np.sqrt(e_in)
    wall = (a.ax - a.fat) * (1 - r_in)
    band = (
        (wall > 3 * a.scale)
        & (wall < 11 * a.scale)
        & ~((y2 < a.by - 0.5 * a.ay) & (np.abs(x2 - a.bx) < 0.25 * a.ax))
    )
    phase = (z + 0.35 * (y2 - a.by)[None] - a.rib_phase) % a.rib_period
    in_z = (z > a.z_base - 40) & (z < a.z_top + 10)
    ribs = band[None] & (phase < a.rib_height) & in_z
    sternum = (np.abs(x2 - a.bx) < 14 * a.scale) & (wall > 2 * a.scale) & (wall < 14 * a.scale) & (y2 < a.by)
    ribs |= sternum[None] & in_z
    hu[ribs] = _BONE_CORTEX

    labels = np.zeros(shape, dtype=np.uint8)
    labels[lung] = CT_LABELS["lung"]
    labels[liver] = CT_LABELS["liver"]
    return hu, labels


def _place_nodules(
    rng: np.random.Generator,
    n: int,
    lung_coarse: np.ndarray,
    coords,
    diameter_range: tuple[float, float],
) -> list[tuple[np.ndarray, float]]:
    """Pick centres (x, y, z mm) so that each sphere plus a 3 mm margin lies in lung, and spheres stay apart."""
    zc, yc, xc = coords
    if n == 0 or not lung_coarse.any():
        return []
    # Candidates are drawn in mm inside the lungs' bounding box, so a seed places its nodules at the same
    # patient positions whatever the grid (the coarse mask only accepts or rejects them).
    nzi, nyi, nxi = (np.flatnonzero(lung_coarse.any(axis=axes)) for axes in ((1, 2), (0, 2), (0, 1)))
    box_lo = np.array([xc[nxi[0]], yc[nyi[0]], zc[nzi[0]]], dtype=np.float64)
    box_hi = np.array([xc[nxi[-1]], yc[nyi[-1]], zc[nzi[-1]]], dtype=np.float64)
    dirs = fibonacci_sphere(60)
    steps = np.array([abs(zc[1] - zc[0]) if zc.size > 1 else 1.0, abs(yc[1] - yc[0]), abs(xc[1] - xc[0])])

    def inside(points: np.ndarray) -> bool:
        idx_z = np.rint((points[:, 2] - zc[0]) / steps[0]).astype(int)
        idx_y = np.rint((points[:, 1] - yc[0]) / steps[1]).astype(int)
        idx_x = np.rint((points[:, 0] - xc[0]) / steps[2]).astype(int)
        ok = (
            (idx_z >= 0)
            & (idx_z < zc.size)
            & (idx_y >= 0)
            & (idx_y < yc.size)
            & (idx_x >= 0)
            & (idx_x < xc.size)
        )
        if not ok.all():
            return False
        return bool(lung_coarse[idx_z, idx_y, idx_x].all())

    placed: list[tuple[np.ndarray, float]] = []
    for _ in range(n):
        diameter = float(rng.uniform(*diameter_range))
        for _attempt in range(2000):
            center = rng.uniform(box_lo, box_hi)
            r = diameter / 2
            shell = np.concatenate([center + dirs * (r + 3.0), center + dirs * (r + 3.0) * 0.5, center[None]])
            if not inside(shell):
                continue
            if any(np.linalg.norm(center - c) < r + rc + 8.0 for c, rc in ((c, d / 2) for c, d in placed)):
                continue
            placed.append((center, diameter))
            break
        else:
            diameter_range = (diameter_range[0], max(diameter_range[0], diameter * 0.7))
    return placed


def _draw_nodule(
    volume: np.ndarray,
    labels: np.ndarray,
    origin: tuple[float, float, float],
    spacing: tuple[float, float, float],
    center: np.ndarray,
    diameter: float,
    hu: float,
    rng: np.random.Generator,
) -> float:
    """Blend a slightly lobulated sphere into ``volume`` and label it; return its labelled volume (mm3)."""
    r = diameter / 2
    sz, sy, sx = spacing
    ox, oy, oz = origin
    edge = float(np.mean(spacing))
    reach = r * 1.2 + 2 * edge
    lo = [
        max(0, int(math.floor((center[2] - reach - oz) / sz))),
        max(0, int(math.floor((center[1] - reach - oy) / sy))),
        max(0, int(math.floor((center[0] - reach - ox) / sx))),
    ]
    hi = [
        min(volume.shape[0], int(math.ceil((center[2] + reach - oz) / sz)) + 1),
        min(volume.shape[1], int(math.ceil((center[1] + reach - oy) / sy)) + 1),
        min(volume.shape[2], int(math.ceil((center[0] + reach - ox) / sx)) + 1),
    ]
    z = (oz + np.arange(lo[0], hi[0]) * sz - center[2])[:, None, None]
    y = (oy + np.arange(lo[1], hi[1]) * sy - center[1])[None, :, None]
    x = (ox + np.arange(lo[2], hi[2]) * sx - center[0])[None, None, :]
    d = np.sqrt(x * x + y * y + z * z) + 1e-6
    theta = np.arctan2(y, x)
    phi = np.arccos(np.clip(z / d, -1, 1))
    amp = rng.uniform(0.03, 0.09)
    k1, k2 = rng.integers(2, 5), rng.integers(1, 4)
    p1, p2 = rng.uniform(0, 2 * np.pi, 2)
    r_eff = r * (1 + amp * np.sin(k1 * theta + p1) * np.sin(k2 * phi + p2))
    f = np.clip((r_eff - d) / edge + 0.5, 0, 1).astype(np.float32)
    box = (slice(lo[0], hi[0]), slice(lo[1], hi[1]), slice(lo[2], hi[2]))
    volume[box] = volume[box] * (1 - f) + hu * f
    inside = f >= 0.5
    labels[box][inside] = CT_LABELS["nodule"]
    return float(inside.sum() * sz * sy * sx)


def make_chest_ct(
    seed: int,
    shape: tuple[int, int, int] = DEMO_CT_SHAPE,
    spacing: tuple[float, float, float] = DEMO_CT_SPACING,
    n_nodules: int | None = None,
    *,
    noise_sigma: float = 20.0,
    origin: tuple[float, float, float] | None = None,
    nodule_diameter_range: tuple[float, float] = (4.0, 20.0),
) -> Phantom:
    """Build a random chest CT phantom.

    Args:
        seed: the whole patient (anatomy, nodules, noise) follows from it.
        shape: (z, y, x) voxels. The body shrinks when the in-plane field of view is below 360 mm and the
            lungs follow the z extent, so small test volumes still hold a whole chest.
        spacing: (z, y, x) mm.
        n_nodules: 0-8 nodules; ``None`` draws 0-4.
        noise_sigma: white noise, HU.
        origin: patient position (x, y, z mm, LPS) of voxel (0, 0, 0); by default the volume is centred.
        nodule_diameter_range: nodule diameters are drawn uniformly from it (mm).

    Returns:
        A :class:`Phantom` with int16 HU, uint8 labels (:data:`CT_LABELS`) and the nodules actually placed
        (fewer than asked only if the lungs are too small to hold them apart).
    """
    _check_args(seed, shape, spacing, n_nodules, noise_sigma, nodule_diameter_range)
    shape = tuple(int(s) for s in shape)
    spacing = tuple(float(s) for s in spacing)
    rng = np.random.default_rng(int(seed))
    nz, ny, nx = shape
    sz, sy, sx = spacing
    if origin is None:
        origin = (-(nx - 1) / 2 * sx, -(ny - 1) / 2 * sy, -(nz - 1) / 2 * sz)
    origin = tuple(float(v) for v in origin)
    ox, oy, oz = origin

    factors = [max(1, round(c / s)) for c, s in zip(_COARSE_MM, spacing, strict=True)]
    low = tuple(max(8, math.ceil(n / f)) for n, f in zip(shape, factors, strict=True))
    coords = (
        axis_coords(nz, low[0], oz, sz),
        axis_coords(ny, low[1], oy, sy),
        axis_coords(nx, low[2], ox, sx),
    )
    edge_mm = float(np.mean([shape[a] / low[a] * spacing[a] for a in range(3)]))

    anatomy = _random_anatomy(rng, min(nx * sx, ny * sy), oz, oz + (nz - 1) * sz)
    hu_low, labels_low = _render_coarse(anatomy, rng, coords, edge_mm)

    n = int(rng.integers(0, 5)) if n_nodules is None else int(n_nodules)
    placed = _place_nodules(rng, n, labels_low == CT_LABELS["lung"], coords, tuple(nodule_diameter_range))

    volume = upsample_to(hu_low, shape, labels=False)
    labels = upsample_to(labels_low, shape, labels=True)
    del hu_low, labels_low

    nodules: list[Nodule] = []
    for center, diameter in placed:
        hu = float(rng.uniform(15, 45))
        vol_mm3 = _draw_nodule(volume, labels, origin, spacing, center, diameter, hu, rng)
        center_voxel = ((center[2] - oz) / sz, (center[1] - oy) / sy, (center[0] - ox) / sx)
        nodules.append(
            Nodule(
                center_mm=(float(center[0]), float(center[1]), float(center[2])),
                center_voxel=tuple(float(v) for v in center_voxel),
                diameter_mm=diameter,
                volume_mm3=vol_mm3,
                hu=hu,
            )
        )

    add_noise_inplace(volume, noise_sigma, rng)
    np.clip(volume, -1024, 3071, out=volume)
    np.rint(volume, out=volume)
    return Phantom(
        volume=volume.astype(np.int16),
        spacing=spacing,
        origin=origin,
        labels=labels,
        nodules=nodules,
        modality="CT",
        label_names=dict(CT_LABELS),
        seed=int(seed),
    )
