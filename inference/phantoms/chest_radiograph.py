"""Synthetic PA chest radiograph with an optional nodule, for the 2D classifier and demo data.

The image is a sum of analytic line integrals (water-equivalent path length, mm) through a body, two lungs,
the heart, spine, ribs, clavicles, vessel markings and, optionally, one spherical nodule. Anatomy is
defined relative to the field of view, so the 1024 x 1024 demo image (0.3 mm) and the classifier's
256 x 256 input (1.2 mm) show the same patient.
"""

from __future__ import annotations

import numpy as np

from inference.phantoms.types import RadiographNodule, RadiographPhantom

__all__ = ["make_chest_radiograph", "DEMO_CR_SIZE", "DEMO_CR_SPACING"]

DEMO_CR_SIZE: tuple[int, int] = (1024, 1024)
DEMO_CR_SPACING: float = 0.3


def _ellipse_depth(u: np.ndarray, v: np.ndarray, cu: float, cv: float, au: float, av: float) -> np.ndarray:
    """Normalised chord length through an ellipsoid seen along its third axis (0 outside, 1 at centre)."""
    r2 = ((u - cu) / au) ** 2 + ((v - cv) / av) ** 2
    return np.sqrt(np.clip(1 - r2, 0, None))


def _segment_distance(u, v, p0, p1) -> np.ndarray:
    d = p1 - p0
    t = np.clip(((u - p0[0]) * d[0] + (v - p0[1]) * d[1]) / (d @ d + 1e-9), 0, 1)
    return np.hypot(u - p0[0] - t * d[0], v - p0[1] - t * d[1])


def _stamp_segment(out, u, v, p0, p1, half_width, px, value) -> None:
    """Max-composite an anti-aliased line of ``value`` into ``out``, touching only its bounding box."""
    u1, v1 = u[0], v[:, 0]
    reach = half_width + px
    c0, c1 = np.searchsorted(u1, min(p0[0], p1[0]) - reach), np.searchsorted(u1, max(p0[0], p1[0]) + reach)
    r0, r1 = np.searchsorted(v1, min(p0[1], p1[1]) - reach), np.searchsorted(v1, max(p0[1], p1[1]) + reach)
    if c1 <= c0 or r1 <= r0:
        return
    dist = _segment_distance(u[:, c0:c1], v[r0:r1], p0, p1)
    view = out[r0:r1, c0:c1]
    np.maximum(view, value * np.clip((half_width - dist) / px + 0.5, 0, 1), out=view)


def make_chest_radiograph(
    seed: int,
    size: tuple[int, int] = DEMO_CR_SIZE,
    spacing: float = DEMO_CR_SPACING,
    nodule: bool | None = None,
    *,
    nodule_diameter_range: tuple[float, float] = (8.0, 25.0),
    noise_sigma: float = 1.5,
) -> RadiographPhantom:
    """Build a random PA chest radiograph.

    Args:
        seed: anatomy, nodule and noise follow from it.
        size: (rows, columns).
        spacing: mm per pixel (square pixels). The field of view is ``size * spacing``; anatomy scales with it.
        nodule: force a nodule (True) or none (False); ``None`` draws one with probability 0.5.
        nodule_diameter_range: mm; below ~8 mm a nodule is rarely visible on a radiograph.
        noise_sigma: noise in water-equivalent mm (the nodule adds up to 2.5 times its diameter).
    """
    if not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__} ({seed!r}).")
    if len(size) != 2 or min(size) < 32:
        raise ValueError(f"size must be (rows, columns) of at least 32 pixels, got {size!r}.")
    if spacing <= 0:
        raise ValueError(f"spacing must be positive (mm), got {spacing!r}.")
    lo, hi = nodule_diameter_range
    if not 2 <= lo <= hi <= 60:
        raise ValueError(
            f"nodule_diameter_range must satisfy 2 <= low <= high <= 60 mm, got {nodule_diameter_range!r}."
        )
    rng = np.random.default_rng(int(seed))
    rows, cols = int(size[0]), int(size[1])
    half_w = cols * spacing / 2  # mm per unit of u
    u = ((np.arange(cols, dtype=np.float32) + 0.5) / cols * 2 - 1)[None, :]  # -1 .. 1, + is patient left
    v = ((np.arange(rows, dtype=np.float32) + 0.5) / rows * 2 - 1)[:, None] * (rows / cols)  # + is feet

    body_a = rng.uniform(0.8, 0.9)
    neck = np.clip((v + 0.88) / 0.15, 0, 1)  # 0 at the neck, 1 below the shoulders
    half_width = 0.28 + (body_a - 0.28) * neck
    depth = rng.uniform(200, 240)
    t = depth * np.sqrt(np.clip(1 - (u / half_width) ** 2, 0, None))

    lung_v, lung_av = rng.uniform(-0.15, -0.05), rng.uniform(0.52, 0.6)
    lungs = []
    for side in (1.0, -1.0):
        cu = side * rng.uniform(0.38, 0.45)
        au = rng.uniform(0.26, 0.32)
        lungs.append((cu, lung_v, au, lung_av))
        t = t - 150 * 0.8 * _ellipse_depth(u, v, cu, lung_v, au, lung_av)
    heart = (
        rng.uniform(0.05, 0.15),
        lung_v + lung_av * rng.uniform(0.45, 0.6),
        rng.uniform(0.28, 0.34),
        0.26,
    )
    heart_depth = _ellipse_depth(u, v, *heart)
    t = t + 45 * heart_depth
    t = np.where(t > 0, np.maximum(t, 25.0), t)

    # Vessel markings fanning out from each hilum.
    markings = np.zeros((rows, cols), dtype=np.float32)
    px = 2.0 / cols  # one pixel in u units
    for cu, cv, au, av in lungs:
        hilum = np.array([cu - np.sign(cu) * 0.55 * au, cv + 0.1 * av])
        for _ in range(10):
            angle = rng.uniform(0, 2 * np.pi)
            p0, width = hilum, rng.uniform(1.5, 3.0)
            for _ in range(3):  # a vessel bends twice and narrows as it goes out
                angle += rng.normal(scale=0.35)
                length = rng.uniform(0.15, 0.35) * au
                p1 = p0 + length * np.array([np.cos(angle), np.sin(angle) * av / au])
                _stamp_segment(markings, u, v, p0, p1, width / half_w, px, 4.0 * width)
                p0, width = p1, width * 0.7
    lung_any = sum(_ellipse_depth(u, v, *lung) > 0 for lung in lungs) > 0
    t = t + markings * lung_any

    # Bone: spine, ribs, clavicles (bone counts ~1.8 times water).
    t = t + 1.8 * 15 * np.clip((0.05 - np.abs(u)) / px + 0.5, 0, 1) * (v > -0.95)
    rib_gap, rib_w = rng.uniform(0.085, 0.1), rng.uniform(0.022, 0.03)
    for k in range(10):
        v0 = lung_v - lung_av + 0.05 + k * rib_gap
        centre = v0 + 0.35 * (np.abs(u) - 0.05) ** 2 + 0.25 * np.abs(u) * 0.5
        band = (
            np.clip((rib_w - np.abs(v - centre)) / px + 0.5, 0, 1)
            * (np.abs(u) > 0.06)
            * (np.abs(u) < body_a - 0.04)
        )
        t = t + 1.8 * 10 * band
    clav_v = lung_v - lung_av + rng.uniform(0.0, 0.05)
    clav = (
        np.clip((0.025 - np.abs(v - (clav_v - 0.15 * np.abs(u)))) / px + 0.5, 0, 1)
        * (np.abs(u) > 0.08)
        * (np.abs(u) < 0.55)
    )
    t = t + 1.8 * 12 * clav

    has_nodule = bool(rng.random() < 0.5) if nodule is None else bool(nodule)
    nodules: list[RadiographNodule] = []
    mask = np.zeros((rows, cols), dtype=bool)
    if has_nodule:
        diameter = float(rng.uniform(*nodule_diameter_range))
        r_u = diameter / 2 / half_w
        for _ in range(1000):
            cu, cv, au, av = lungs[int(rng.integers(2))]
            nu, nv = cu + rng.uniform(-1, 1) * au, cv + rng.uniform(-1, 1) * av
            inside_lung = ((nu - cu) / (au - r_u)) ** 2 + ((nv - cv) / (av - r_u)) ** 2 <= 0.85
            off_heart = ((nu - heart[0]) / (heart[2] + r_u)) ** 2 + (
                (nv - heart[1]) / (heart[3] + r_u)
            ) ** 2 > 1
            if inside_lung and off_heart:
                break
        d = np.hypot(u - nu, v - nv) * half_w
        r = diameter / 2
        # Drawn 2.5 times denser than water: at this size a water-density sphere is as faint as a rib
        # crossing, too subtle for a demo model trained in minutes.
        t = t + 2.5 * 2 * np.sqrt(np.clip(r * r - d * d, 0, None))
        mask = d <= r
        row = (nv / (rows / cols) + 1) / 2 * rows - 0.5
        col = (nu + 1) / 2 * cols - 0.5
        nodules.append(
            RadiographNodule(
                center_px=(float(row), float(col)),
                center_mm=(row * spacing, col * spacing),
                diameter_mm=diameter,
            )
        )

    t = t + rng.normal(scale=noise_sigma, size=t.shape).astype(np.float32)
    image = np.clip(100 + t * 11.0, 0, 4095).astype(np.uint16)
    return RadiographPhantom(
        image=image,
        spacing=(float(spacing), float(spacing)),
        nodules=nodules,
        nodule_mask=mask,
        seed=int(seed),
    )
