/**
 * Pure helpers of the AI panel (unit-tested): which models fit a study, where a mask slab's slices go in a
 * stack (by SOP Instance UID, never by index), detection boxes in patient space against a view plane, colours
 * and text.
 */
import type { AiModel, Detection } from './model';

export type Vec3 = [number, number, number];
export type Vec2 = [number, number];

/** Models that can read at least one of the study's series (a model without modalities reads any). */
export function usableModels(models: AiModel[], modalities: Iterable<string>): AiModel[] {
  const have = new Set([...modalities].map((m) => m.toUpperCase()));
  return models.filter((m) => !m.modalities?.length || m.modalities.some((x) => have.has(x.toUpperCase())));
}

/**
 * The series to analyse: the one on screen when the model reads its modality, else undefined (the server
 * then picks the largest series of a matching modality).
 */
export function seriesForModel(model: AiModel, shown: { seriesInstanceUID: string; modality: string } | undefined): string | undefined {
  if (!shown) return undefined;
  if (!model.modalities?.length || model.modalities.some((m) => m.toUpperCase() === shown.modality.toUpperCase())) return shown.seriesInstanceUID;
  return undefined;
}

export interface SlabWrite {
  /** Slice within the slab (0-based). */
  z: number;
  /** Index of the image in the stack. */
  index: number;
}

/** Where each slice of a slab goes: the stack image with the same SOP Instance UID; unknown UIDs are listed. */
export function slabTargets(sopInstanceUids: readonly string[], indexOfSop: ReadonlyMap<string, number>): { writes: SlabWrite[]; missing: string[] } {
  const writes: SlabWrite[] = [];
  const missing: string[] = [];
  sopInstanceUids.forEach((sop, z) => {
    const index = indexOfSop.get(sop);
    if (index === undefined) missing.push(sop);
    else writes.push({ z, index });
  });
  return { writes, missing };
}

/**
 * Copy a decoded slab (C order: slice, row, column) into the stack's per-image label buffers, slice by slice,
 * matched by SOP Instance UID. Buffers of another size are skipped (not this stack's geometry).
 */
export function placeSlab(
  voxels: Uint8Array,
  shape: readonly number[],
  sopInstanceUids: readonly string[],
  indexOfSop: ReadonlyMap<string, number>,
  bufferAt: (index: number) => Uint8Array | undefined,
): { modified: number[]; labelled: Map<number, number>; missing: string[]; skipped: number } {
  const [n, rows, cols] = shape;
  const area = rows * cols;
  const { writes, missing } = slabTargets(sopInstanceUids, indexOfSop);
  const modified: number[] = [];
  const labelled = new Map<number, number>();
  let skipped = 0;
  for (const { z, index } of writes) {
    const target = bufferAt(index);
    if (z >= n || !target || target.length !== area) {
      skipped++;
      continue;
    }
    const slice = voxels.subarray(z * area, (z + 1) * area);
    target.set(slice);
    let count = 0;
    for (let k = 0; k < slice.length; k++) if (slice[k]) count++;
    labelled.set(index, count);
    modified.push(index);
  }
  return { modified, labelled, missing, skipped };
}

const sub = (a: Vec3, b: Vec3): Vec3 => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
const dot = (a: Vec3, b: Vec3): number => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];

/** Half a voxel in patient axes, for a box whose corners are voxel centres: |row|·Δc/2 + |col|·Δr/2 + |n|·Δz/2. */
export function halfVoxel(rowCosines: Vec3, columnCosines: Vec3, normal: Vec3, spacing: { row: number; column: number; slice: number }): Vec3 {
  const out: Vec3 = [0, 0, 0];
  for (let i = 0; i < 3; i++) {
    out[i] = (Math.abs(rowCosines[i]) * spacing.column + Math.abs(columnCosines[i]) * spacing.row + Math.abs(normal[i]) * spacing.slice) / 2;
  }
  return out;
}

/** The 8 corners of the patient-axis box spanned by two corners (any order), padded by `pad` on each side. */
export function boxCorners(box: readonly (readonly number[])[], pad: Vec3 = [0, 0, 0]): Vec3[] {
  const [a, b] = box;
  const lo: Vec3 = [0, 1, 2].map((i) => Math.min(a[i], b[i]) - pad[i]) as Vec3;
  const hi: Vec3 = [0, 1, 2].map((i) => Math.max(a[i], b[i]) + pad[i]) as Vec3;
  const out: Vec3[] = [];
  for (const x of [lo[0], hi[0]]) for (const y of [lo[1], hi[1]]) for (const z of [lo[2], hi[2]]) out.push([x, y, z]);
  return out;
}

/** Does the plane through `origin` with `normal` cut the box given by its corners? */
export function planeCutsBox(corners: readonly Vec3[], origin: Vec3, normal: Vec3, tolerance = 1e-3): boolean {
  let min = Infinity;
  let max = -Infinity;
  for (const c of corners) {
    const d = dot(sub(c, origin), normal);
    if (d < min) min = d;
    if (d > max) max = d;
  }
  return min <= tolerance && max >= -tolerance;
}

/** Convex hull (counter-clockwise, Andrew's monotone chain) of 2-D points; duplicates collapse. */
export function convexHull(points: readonly Vec2[]): Vec2[] {
  const pts = [...points].sort((p, q) => p[0] - q[0] || p[1] - q[1]);
  const cross = (o: Vec2, a: Vec2, b: Vec2) => (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
  const lower: Vec2[] = [];
  for (const p of pts) {
    while (lower.length >= 2 && cross(lower[lower.length - 2], lower[lower.length - 1], p) <= 1e-9) lower.pop();
    lower.push(p);
  }
  const upper: Vec2[] = [];
  for (let i = pts.length - 1; i >= 0; i--) {
    const p = pts[i];
    while (upper.length >= 2 && cross(upper[upper.length - 2], upper[upper.length - 1], p) <= 1e-9) upper.pop();
    upper.push(p);
  }
  upper.pop();
  lower.pop();
  return lower.concat(upper);
}

const fmt = (v: number | undefined, digits: number) => (v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(digits));

/** Text for one detection: "Nodule 1", "⌀ 9.0 mm (long axis)", "371 mm³", "score 1.00". */
export function describeDetection(d: Detection): { title: string; size: string; volume: string; score: string } {
  const label = d.label ? d.label[0].toUpperCase() + d.label.slice(1) : 'Finding';
  const diameter = d.long_axis_mm ?? d.equivalent_diameter_mm;
  return {
    title: `${label} ${d.id}`,
    size: `⌀ ${fmt(diameter, 1)} mm`,
    volume: `${d.volume_mm3 === undefined ? '—' : d.volume_mm3 >= 100 ? d.volume_mm3.toFixed(0) : d.volume_mm3.toFixed(1)} mm³`,
    score: `score ${fmt(d.score, 2)}`,
  };
}

export type Rgb = [number, number, number];
const NAMED_COLORS: Record<string, Rgb> = {
  lung: [64, 160, 255],
  nodule: [255, 64, 64],
  liver: [214, 150, 56],
  heart: [230, 80, 160],
  kidney: [120, 220, 90],
  spleen: [170, 110, 230],
};
const PALETTE: Rgb[] = [
  [255, 200, 40],
  [40, 220, 200],
  [160, 220, 40],
  [250, 120, 200],
  [120, 140, 255],
  [255, 140, 60],
];

/** A segment's colour: by name for the known organs, else from a palette by label value. */
export function segmentColor(name: string, value: number): Rgb {
  return NAMED_COLORS[name.toLowerCase()] ?? PALETTE[(value - 1 + PALETTE.length) % PALETTE.length];
}

/** Jet-like colour for a heatmap value in [0, 1]; alpha grows with the value (cold areas stay see-through). */
export function heatColor(v: number): [number, number, number, number] {
  const x = Math.min(1, Math.max(0, v));
  const c = (t: number) => Math.round(255 * Math.min(1, Math.max(0, 1.5 - Math.abs(4 * x - t))));
  const alpha = Math.round(255 * Math.min(1, Math.max(0, (x - 0.1) / 0.5)));
  return [c(3), c(2), c(1), alpha];
}

/** Colour a grey RGBA buffer (as a canvas reads a greyscale PNG) in place with heatColor. */
export function colorizeHeatmap(rgba: Uint8ClampedArray): Uint8ClampedArray {
  const lut = Array.from({ length: 256 }, (_, g) => heatColor(g / 255));
  for (let i = 0; i < rgba.length; i += 4) {
    const [r, g, b, a] = lut[rgba[i]];
    rgba[i] = r;
    rgba[i + 1] = g;
    rgba[i + 2] = b;
    rgba[i + 3] = a;
  }
  return rgba;
}

/** Median, 95th percentile and max of latencies (for the bench and the test log). */
export function latencyStats(samples: readonly number[]): { n: number; median: number; p95: number; max: number } {
  const v = samples.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return { n: 0, median: NaN, p95: NaN, max: NaN };
  const q = (p: number) => v[Math.min(v.length - 1, Math.max(0, Math.ceil(p * v.length) - 1))];
  return { n: v.length, median: q(0.5), p95: q(0.95), max: v[v.length - 1] };
}
