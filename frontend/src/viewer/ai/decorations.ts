/**
 * An SVG layer over one viewport for what is not a labelmap: detection boxes (projected from patient mm, so
 * they follow zoom, pan, rotation, flips, scrolling and the MPR planes) and the classification heatmap over a
 * radiograph. Redrawn on every Cornerstone render of the viewport. Text goes in with textContent.
 */
import { Enums, metaData, Types, utilities as csUtils } from '@cornerstonejs/core';
import { Tag, str } from '../../api/dicomjson';
import type { Slot } from '../slot';
import { Vec2, Vec3, boxCorners, convexHull, halfVoxel, planeCutsBox } from './mapping';
import type { Detection } from './model';

const SVG_NS = 'http://www.w3.org/2000/svg';

export interface DrawnDetection {
  key: string;
  series: string;
  detection: Detection;
  selected: boolean;
}

export interface DrawnHeatmap {
  sourceSop: string;
  href: string;
  rows: number;
  columns: number;
  opacity: number;
  visible: boolean;
}

export interface DecorationState {
  detections: DrawnDetection[];
  showBoxes: boolean;
  heatmaps: DrawnHeatmap[];
}

interface Plane {
  origin: Vec3;
  normal: Vec3;
  row: Vec3;
  column: Vec3;
  spacing: { row: number; column: number; slice: number };
  imageId?: string;
  sop?: string;
}

const cross = (a: number[], b: number[]): Vec3 => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

export class SlotDecorations {
  readonly el: SVGSVGElement;
  private readonly onRender = () => this.redraw();

  constructor(
    private readonly slot: Slot,
    private readonly state: () => DecorationState,
  ) {
    this.el = svg('svg', { class: 'ai-layer', 'data-slot': slot.index });
    slot.host.insertBefore(this.el, slot.overlay.el);
    slot.element.addEventListener(Enums.Events.IMAGE_RENDERED, this.onRender);
  }

  dispose(): void {
    this.slot.element.removeEventListener(Enums.Events.IMAGE_RENDERED, this.onRender);
    this.el.remove();
  }

  /** The plane on screen: the stack's current image, or the volume viewport's camera. */
  private plane(vp: Types.IViewport): Plane | undefined {
    const series = this.slot.series;
    if (!series) return undefined;
    if (this.slot.kind === 'stack') {
      const imageId = (vp as Types.IStackViewport).getCurrentImageId?.();
      if (!imageId) return undefined;
      const p = metaData.get('imagePlaneModule', imageId) as { imagePositionPatient?: number[]; rowCosines?: number[]; columnCosines?: number[]; rowPixelSpacing?: number; columnPixelSpacing?: number; sliceThickness?: number } | undefined;
      if (!p?.imagePositionPatient || !p.rowCosines || !p.columnCosines) return undefined;
      const normal = cross(p.rowCosines, p.columnCosines);
      const ids = series.imageIds;
      const idx = ids.indexOf(imageId);
      let slice = p.sliceThickness ?? 1;
      const neighbour = ids[idx + 1] ?? ids[idx - 1];
      const q = neighbour ? (metaData.get('imagePlaneModule', neighbour) as { imagePositionPatient?: number[] } | undefined) : undefined;
      if (q?.imagePositionPatient) {
        const d = Math.abs(normal.reduce((s, n, i) => s + n * (q.imagePositionPatient![i] - p.imagePositionPatient![i]), 0));
        if (d > 1e-3) slice = d;
      }
      return {
        origin: p.imagePositionPatient as Vec3,
        normal,
        row: p.rowCosines as Vec3,
        column: p.columnCosines as Vec3,
        spacing: { row: p.rowPixelSpacing ?? 1, column: p.columnPixelSpacing ?? 1, slice },
        imageId,
        sop: str(series.instanceOf.get(imageId), Tag.SOPInstanceUID),
      };
    }
    if (this.slot.kind === 'mpr') {
      const cam = vp.getCamera();
      if (!cam.focalPoint || !cam.viewPlaneNormal) return undefined;
      // Voxel size of the source stack, for the half-voxel padding of the boxes.
      const first = metaData.get('imagePlaneModule', series.imageIds[0]) as { rowCosines?: number[]; columnCosines?: number[]; rowPixelSpacing?: number; columnPixelSpacing?: number; sliceThickness?: number } | undefined;
      const row = (first?.rowCosines ?? [1, 0, 0]) as Vec3;
      const column = (first?.columnCosines ?? [0, 1, 0]) as Vec3;
      return {
        origin: cam.focalPoint as Vec3,
        normal: cam.viewPlaneNormal as Vec3,
        row,
        column,
        spacing: { row: first?.rowPixelSpacing ?? 1, column: first?.columnPixelSpacing ?? 1, slice: first?.sliceThickness ?? 1 },
      };
    }
    return undefined;
  }

  redraw(): void {
    const el = this.el;
    while (el.firstChild) el.removeChild(el.firstChild);
    const vp = this.slot.viewport();
    const series = this.slot.series;
    if (!vp || !series || this.slot.kind === 'empty') return;
    let plane: Plane | undefined;
    try {
      plane = this.plane(vp);
    } catch {
      plane = undefined;
    }
    if (!plane) return;
    const st = this.state();
    const toCanvas = (w: number[] | undefined): Vec2 => vp.worldToCanvas((w ?? [0, 0, 0]) as Types.Point3) as Vec2;

    // Heatmap under the boxes.
    if (this.slot.kind === 'stack' && plane.imageId) {
      for (const hm of st.heatmaps) {
        if (!hm.visible || hm.sourceSop !== plane.sop) continue;
        const o = toCanvas(csUtils.imageToWorldCoords(plane.imageId, [0, 0]));
        const u = toCanvas(csUtils.imageToWorldCoords(plane.imageId, [hm.columns, 0]));
        const v = toCanvas(csUtils.imageToWorldCoords(plane.imageId, [0, hm.rows]));
        const a = (u[0] - o[0]) / hm.columns;
        const b = (u[1] - o[1]) / hm.columns;
        const c = (v[0] - o[0]) / hm.rows;
        const d = (v[1] - o[1]) / hm.rows;
        const image = svg('image', { class: 'ai-heatmap', width: hm.columns, height: hm.rows, preserveAspectRatio: 'none', opacity: hm.opacity, transform: `matrix(${a} ${b} ${c} ${d} ${o[0]} ${o[1]})` });
        image.setAttribute('href', hm.href);
        el.appendChild(image);
      }
    }

    if (!st.showBoxes) return;
    const pad = halfVoxel(plane.row, plane.column, plane.normal, plane.spacing);
    for (const item of st.detections) {
      const d = item.detection;
      if (item.series !== series.series || !d.box_mm || d.box_mm.length !== 2) continue;
      const corners = boxCorners(d.box_mm, pad);
      if (!planeCutsBox(corners, plane.origin, plane.normal)) continue;
      const raw = convexHull(corners.map(toCanvas));
      if (raw.length < 3) continue;
      // A few pixels of margin, so the box frames the finding instead of covering its edge.
      const cx = raw.reduce((s, p) => s + p[0], 0) / raw.length;
      const cy = raw.reduce((s, p) => s + p[1], 0) / raw.length;
      const hull = raw.map(([x, y]): Vec2 => {
        const dx = x - cx;
        const dy = y - cy;
        const len = Math.hypot(dx, dy) || 1;
        return [x + (dx / len) * 4, y + (dy / len) * 4];
      });
      const g = svg('g', { class: `ai-box${item.selected ? ' selected' : ''}`, 'data-det': item.key });
      g.appendChild(svg('polygon', { points: hull.map((p) => `${p[0].toFixed(1)},${p[1].toFixed(1)}`).join(' ') }));
      // The long axis, on the slice it was measured on.
      if (d.long_axis_endpoints_mm?.length === 2 && (plane.sop ? plane.sop === d.long_axis_sop_instance_uid : true)) {
        const [p, q] = d.long_axis_endpoints_mm.map(toCanvas);
        if (planeCutsBox(d.long_axis_endpoints_mm as Vec3[], plane.origin, plane.normal, Math.max(plane.spacing.slice / 2, 0.5))) {
          g.appendChild(svg('line', { class: 'ai-axis', x1: p[0], y1: p[1], x2: q[0], y2: q[1] }));
        }
      }
      const top = hull.reduce((m, p) => (p[1] < m[1] || (p[1] === m[1] && p[0] < m[0]) ? p : m), hull[0]);
      const text = svg('text', { x: top[0], y: Math.max(12, top[1] - 4) });
      const mm = d.long_axis_mm ?? d.equivalent_diameter_mm;
      text.textContent = `${d.label} ${d.id}${mm !== undefined ? ` · ${mm.toFixed(1)} mm` : ''}`;
      g.appendChild(text);
      el.appendChild(g);
    }
  }
}
