/**
 * Cornerstone annotations <-> the server's measurement records (backend/viewer). Pure functions: the server
 * stores points in patient coordinates (mm) plus the image they were drawn on, never a URL, so a measurement
 * restores on any host.
 */

/** Tool names of Cornerstone3D that the viewer offers as measurements, and the server's names for them. */
export const TOOL_TO_KIND = {
  Length: 'length',
  Angle: 'angle',
  EllipticalROI: 'ellipse',
  RectangleROI: 'rectangle',
  Probe: 'probe',
  ArrowAnnotate: 'arrow',
} as const;
export type ToolName = keyof typeof TOOL_TO_KIND;
export type MeasurementKind = (typeof TOOL_TO_KIND)[ToolName];
export const KIND_TO_TOOL = Object.fromEntries(Object.entries(TOOL_TO_KIND).map(([t, k]) => [k, t])) as Record<MeasurementKind, ToolName>;

export type Point3 = [number, number, number];

export interface MeasurementStats {
  length?: number; // mm
  angle?: number; // degrees
  area?: number; // mm²
  mean?: number;
  stdDev?: number;
  min?: number;
  max?: number;
  value?: number; // probe
  unit?: string; // unit of length or of the pixel values (HU for CT)
  areaUnit?: string;
}

export interface MeasurementRecord {
  id?: number;
  uid: string;
  kind: MeasurementKind;
  series_instance_uid: string;
  sop_instance_uid: string;
  frame_number: number;
  frame_of_reference_uid: string;
  points: Point3[];
  view_plane_normal: Point3 | null;
  view_up: Point3 | null;
  label: string;
  stats: MeasurementStats;
  created?: string;
  updated?: string;
}

/** The parts of a Cornerstone annotation we read and write (typed loosely on purpose: versions vary). */
export interface AnnotationLike {
  annotationUID?: string;
  metadata: {
    toolName: string;
    referencedImageId?: string;
    FrameOfReferenceUID?: string;
    viewPlaneNormal?: number[];
    viewUp?: number[];
    [k: string]: unknown;
  };
  data: {
    handles?: { points?: number[][]; textBox?: unknown; [k: string]: unknown };
    label?: string;
    text?: string;
    cachedStats?: Record<string, Record<string, unknown>>;
    [k: string]: unknown;
  };
  [k: string]: unknown;
}

export interface ImageRef {
  studyInstanceUID: string;
  seriesInstanceUID: string;
  sopInstanceUID: string;
  frameNumber: number;
}

const FRAME_URL = /\/studies\/([^/]+)\/series\/([^/]+)\/instances\/([^/]+)\/frames\/(\d+)/;

/** Study/series/instance/frame out of a `wadors:` image ID (or any frames URL). */
export function parseImageId(imageId: string | undefined): ImageRef | undefined {
  const m = imageId ? FRAME_URL.exec(imageId) : null;
  if (!m) return undefined;
  return {
    studyInstanceUID: decodeURIComponent(m[1]),
    seriesInstanceUID: decodeURIComponent(m[2]),
    sopInstanceUID: decodeURIComponent(m[3]),
    frameNumber: Number(m[4]),
  };
}

const finite = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const round = (v: number | undefined, digits = 4) => (v === undefined ? undefined : Number(v.toFixed(digits)));

/** The first target's statistics, with only the numbers and units kept. */
export function extractStats(cached: Record<string, Record<string, unknown>> | undefined): MeasurementStats {
  const first = cached ? Object.values(cached)[0] : undefined;
  if (!first) return {};
  const stats: MeasurementStats = {
    length: round(finite(first.length)),
    angle: round(finite(first.angle)),
    area: round(finite(first.area)),
    mean: round(finite(first.mean)),
    stdDev: round(finite(first.stdDev)),
    min: round(finite(first.min)),
    max: round(finite(first.max)),
    value: round(finite(first.value)),
    unit: typeof first.unit === 'string' ? first.unit : typeof first.modalityUnit === 'string' ? first.modalityUnit : undefined,
    areaUnit: typeof first.areaUnit === 'string' ? first.areaUnit : undefined,
  };
  return Object.fromEntries(Object.entries(stats).filter(([, v]) => v !== undefined)) as MeasurementStats;
}

export function isMeasurementTool(toolName: string): toolName is ToolName {
  return Object.prototype.hasOwnProperty.call(TOOL_TO_KIND, toolName);
}

const point3 = (p: number[] | undefined): Point3 | null =>
  p && p.length >= 3 && p.slice(0, 3).every((n) => Number.isFinite(n)) ? [p[0], p[1], p[2]] : null;

/** Annotation -> record; undefined for annotations that are not measurements or not tied to an image. */
export function toRecord(a: AnnotationLike, fallback?: ImageRef): MeasurementRecord | undefined {
  if (!isMeasurementTool(a.metadata.toolName) || !a.annotationUID) return undefined;
  const ref = parseImageId(a.metadata.referencedImageId) ?? fallback;
  if (!ref) return undefined;
  const points = (a.data.handles?.points ?? []).map(point3).filter((p): p is Point3 => p !== null);
  if (!points.length) return undefined;
  return {
    uid: a.annotationUID,
    kind: TOOL_TO_KIND[a.metadata.toolName],
    series_instance_uid: ref.seriesInstanceUID,
    sop_instance_uid: ref.sopInstanceUID,
    frame_number: ref.frameNumber,
    frame_of_reference_uid: a.metadata.FrameOfReferenceUID ?? '',
    points,
    view_plane_normal: point3(a.metadata.viewPlaneNormal),
    view_up: point3(a.metadata.viewUp),
    label: String(a.data.text ?? a.data.label ?? ''),
    stats: extractStats(a.data.cachedStats),
  };
}

/** Record -> annotation ready for `annotation.state.addAnnotation`; `imageIdFor` rebuilds the image ID. */
export function toAnnotation(r: MeasurementRecord, imageIdFor: (ref: Omit<ImageRef, 'studyInstanceUID'>) => string): AnnotationLike {
  const toolName = KIND_TO_TOOL[r.kind];
  if (!toolName) throw new Error(`Unknown measurement kind "${r.kind}"`);
  const referencedImageId = imageIdFor({ seriesInstanceUID: r.series_instance_uid, sopInstanceUID: r.sop_instance_uid, frameNumber: r.frame_number });
  const data: AnnotationLike['data'] = {
    handles: { points: r.points.map((p) => [...p]), activeHandleIndex: null, textBox: { hasMoved: false, worldPosition: [0, 0, 0], worldBoundingBox: { topLeft: [0, 0, 0], topRight: [0, 0, 0], bottomLeft: [0, 0, 0], bottomRight: [0, 0, 0] } } },
    label: r.label,
    cachedStats: {},
  };
  if (toolName === 'ArrowAnnotate') data.text = r.label;
  return {
    annotationUID: r.uid,
    highlighted: false,
    invalidated: true,
    isLocked: false,
    isVisible: true,
    autoGenerated: false,
    metadata: {
      toolName,
      referencedImageId,
      FrameOfReferenceUID: r.frame_of_reference_uid,
      viewPlaneNormal: r.view_plane_normal ?? undefined,
      viewUp: r.view_up ?? undefined,
    },
    data,
  };
}

/** Short human text for the measurement list ("Length 42.1 mm", "Ellipse mean 35.2 HU ..."). */
export function describe(r: Pick<MeasurementRecord, 'kind' | 'stats' | 'label'>): string {
  const s = r.stats;
  const f = (v: number | undefined, d = 1) => (v === undefined ? '—' : v.toFixed(d));
  switch (r.kind) {
    case 'length':
      return `Length ${f(s.length, 2)} ${s.unit ?? 'mm'}`;
    case 'angle':
      return `Angle ${f(s.angle)}°`;
    case 'ellipse':
    case 'rectangle':
      return `${r.kind === 'ellipse' ? 'Ellipse' : 'Rectangle'} ${f(s.area)} ${s.areaUnit ?? 'mm²'}, mean ${f(s.mean)} ± ${f(s.stdDev)} ${s.unit ?? ''} [${f(s.min)}, ${f(s.max)}]`.trim();
    case 'probe':
      return `Probe ${f(s.value)} ${s.unit ?? ''}`.trim();
    case 'arrow':
      return `Arrow${r.label ? `: ${r.label}` : ''}`;
  }
}
