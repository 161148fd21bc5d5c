/** Ordering slices and deciding what can be shown as a volume (pure, unit-tested). */

export interface SliceGeometry {
  instanceNumber?: number;
  position?: number[]; // ImagePositionPatient
  orientation?: number[]; // ImageOrientationPatient
  rows?: number;
  columns?: number;
  frames?: number;
}

export function cross(a: number[], b: number[]): [number, number, number] {
  return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
}

export function dot(a: number[], b: number[]): number {
  return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

const sameOrientation = (a?: number[], b?: number[]) =>
  !!a && !!b && a.length === 6 && b.length === 6 && a.every((v, i) => Math.abs(v - b[i]) < 1e-3);

/**
 * Indices of the slices in display order: along the slice normal from its head end (superior first for axial
 * images) when every slice has a position and the same orientation, else by Instance Number.
 */
export function sliceOrder(slices: SliceGeometry[]): number[] {
  const idx = slices.map((_, i) => i);
  const o = slices[0]?.orientation;
  const geometric = slices.length > 1 && slices.every((s) => s.position?.length === 3 && sameOrientation(s.orientation, o));
  if (geometric && o) {
    const normal = cross(o.slice(0, 3), o.slice(3, 6));
    const d = slices.map((s) => dot(s.position!, normal));
    return idx.sort((a, b) => d[b] - d[a] || (slices[a].instanceNumber ?? 0) - (slices[b].instanceNumber ?? 0));
  }
  return idx.sort((a, b) => (slices[a].instanceNumber ?? a) - (slices[b].instanceNumber ?? b));
}

/** Can the series be reconstructed as a volume (MPR)? Returns the reason when it cannot. */
export function volumeEligibility(modality: string, slices: SliceGeometry[]): { ok: boolean; reason?: string } {
  if (!['CT', 'MR', 'PT', 'NM'].includes(modality)) return { ok: false, reason: `MPR is offered for CT, MR and PET series, not ${modality || 'this modality'}` };
  if (slices.length < 3) return { ok: false, reason: 'MPR needs at least 3 slices' };
  if (slices.some((s) => (s.frames ?? 1) > 1)) return { ok: false, reason: 'MPR of multi-frame images is not supported yet' };
  const first = slices[0];
  if (!slices.every((s) => s.position?.length === 3 && sameOrientation(s.orientation, first.orientation))) {
    return { ok: false, reason: 'Slices lack positions or differ in orientation' };
  }
  if (!slices.every((s) => s.rows === first.rows && s.columns === first.columns)) {
    return { ok: false, reason: 'Slices differ in size' };
  }
  return { ok: true };
}

/**
 * The next index to fetch: the one nearest to `focus` not yet requested, looking one step ahead first, then
 * one step behind (scrolling usually goes on in the same direction). -1 when all are requested.
 */
export function nextNearest(focus: number, requested: ArrayLike<number | boolean>, direction: 1 | -1 = 1): number {
  const n = requested.length;
  if (n === 0) return -1;
  const f = Math.min(n - 1, Math.max(0, focus));
  for (let dist = 0; dist < n; dist++) {
    const a = f + dist * direction;
    if (a >= 0 && a < n && !requested[a]) return a;
    const b = f - dist * direction;
    if (dist > 0 && b >= 0 && b < n && !requested[b]) return b;
  }
  return -1;
}
