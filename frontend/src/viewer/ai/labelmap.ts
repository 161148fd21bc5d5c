/**
 * One Cornerstone3D labelmap segmentation per analysed series: derived uint8 images parallel to the series'
 * image IDs (a stack labelmap), filled slab by slab as mask partials arrive. The same segmentation is shown on
 * stack viewports of the series and, through the volume Cornerstone builds from the labelmap images, on the
 * MPR planes.
 */
import { cache, imageLoader, Types, utilities as csUtils } from '@cornerstonejs/core';
import { Enums as ToolEnums, segmentation as csSeg } from '@cornerstonejs/tools';
import { Tag, str } from '../../api/dicomjson';
import { decodeMask } from '../../util/rle';
import type { LoadedSeries } from '../series';
import { Rgb, placeSlab, segmentColor } from './mapping';
import type { MaskSlab } from './model';

const LABELMAP = ToolEnums.SegmentationRepresentations.Labelmap;

export interface SegmentInfo {
  name: string;
  value: number;
  color: Rgb;
  visible: boolean;
  alpha: number;
}

const DEFAULT_ALPHA: Record<string, number> = { nodule: 0.85, lung: 0.35, liver: 0.4 };

export interface WriteOutcome {
  slices: number;
  missing: number;
  labelled: number;
}

export class SeriesLabelmap {
  readonly segmentationId: string;
  readonly imageIds: string[];
  readonly segments = new Map<number, SegmentInfo>();
  /** The job whose masks are drawn (a newer job's first slab clears the older one's). */
  job?: string;
  origin?: MaskSlab['origin'];
  /** performance.now() when the first labelled voxel was written (overall, and per job), and the last write. */
  firstLabelledAt?: number;
  readonly firstLabelledByJob = new Map<string, number>();
  lastWriteAt?: number;
  /** Images written by the current job. */
  readonly written = new Set<number>();
  private readonly indexOfSop = new Map<string, number>();
  private readonly labelledPerImage: Uint32Array;
  private colorLUTIndex: number | undefined;
  private attached = new Map<string, Types.IViewport>();
  private registered = false;

  constructor(readonly series: LoadedSeries) {
    this.segmentationId = `lightbox-ai-${series.series}`;
    series.imageIds.forEach((id, i) => {
      const sop = str(series.instanceOf.get(id), Tag.SOPInstanceUID);
      if (sop && !this.indexOfSop.has(sop)) this.indexOfSop.set(sop, i);
    });
    // Cornerstone's own `derived:` IDs: its volume code knows they have no loader (they live in the cache).
    const images = imageLoader.createAndCacheDerivedLabelmapImages(series.imageIds);
    this.imageIds = images.map((im) => im.imageId);
    this.labelledPerImage = new Uint32Array(this.imageIds.length);
  }

  /** Labelled voxels written so far (for tests and the panel). */
  labelled(): number {
    let n = 0;
    for (const v of this.labelledPerImage) n += v;
    return n;
  }

  /** Stack index of the image with the most labelled voxels (-1 when empty). */
  busiestIndex(): number {
    let best = -1;
    let max = 0;
    this.labelledPerImage.forEach((v, i) => {
      if (v > max) {
        max = v;
        best = i;
      }
    });
    return best;
  }

  indexOf(sop: string): number | undefined {
    return this.indexOfSop.get(sop);
  }

  private ensureSegments(labels: Record<string, number>): void {
    let added = false;
    for (const [name, value] of Object.entries(labels)) {
      if (this.segments.has(value)) continue;
      this.segments.set(value, { name, value, color: segmentColor(name, value), visible: true, alpha: DEFAULT_ALPHA[name.toLowerCase()] ?? 0.5 });
      added = true;
    }
    if (!added && this.registered) return;
    const segments: Record<number, { segmentIndex: number; label: string; locked: boolean; cachedStats: Record<string, unknown>; active: boolean }> = {};
    for (const s of this.segments.values()) segments[s.value] = { segmentIndex: s.value, label: s.name, locked: true, cachedStats: {}, active: false };
    const lut: Types.ColorLUT = [[0, 0, 0, 0]];
    const maxValue = Math.max(0, ...this.segments.keys());
    for (let v = 1; v <= Math.max(maxValue, 1); v++) {
      const s = this.segments.get(v);
      lut.push(s ? [...s.color, 255] : [...segmentColor('', v), 255]);
    }
    if (!this.registered) {
      this.colorLUTIndex = csSeg.config.color.addColorLUT(lut);
      csSeg.addSegmentations([
        {
          segmentationId: this.segmentationId,
          representation: { type: LABELMAP, data: { imageIds: this.imageIds, referencedImageIds: this.series.imageIds } as never },
          config: { label: 'AI', segments },
        },
      ]);
      this.registered = true;
    } else {
      csSeg.config.color.addColorLUT(lut, this.colorLUTIndex);
      csSeg.updateSegmentations([{ segmentationId: this.segmentationId, payload: { segments } as never }]);
    }
    this.applyStyles();
  }

  /** Write a slab (decoded here); returns how many slices landed and how many named unknown images. */
  write(slab: MaskSlab): WriteOutcome {
    const voxels = decodeMask(slab);
    if (slab.job !== this.job) {
      if (this.job !== undefined) this.clearData();
      this.job = slab.job;
      this.origin = slab.origin;
    }
    this.ensureSegments(slab.labels);
    const out = placeSlab(voxels, slab.shape, slab.sop_instance_uids, this.indexOfSop, (index) => cache.getImage(this.imageIds[index])?.voxelManager?.getScalarData() as Uint8Array | undefined);
    let labelled = 0;
    for (const [index, count] of out.labelled) {
      this.labelledPerImage[index] = count;
      this.written.add(index);
      labelled += count;
    }
    this.lastWriteAt = performance.now();
    if (labelled && this.firstLabelledAt === undefined) this.firstLabelledAt = this.lastWriteAt;
    if (labelled && !this.firstLabelledByJob.has(slab.job)) this.firstLabelledByJob.set(slab.job, this.lastWriteAt);
    if (out.modified.length) csSeg.triggerSegmentationEvents.triggerSegmentationDataModified(this.segmentationId, this.volumeSlices(out.modified));
    return { slices: out.modified.length, missing: out.missing.length, labelled };
  }

  /**
   * The slices to refresh, as indices of the volume Cornerstone builds over the labelmap images for MPR (it sorts
   * them along the normal itself; stack viewports ignore the list). Undefined (refresh all) if unknown.
   */
  private volumeOrder?: Map<string, number> | null;
  private volumeSlices(indices: number[]): number[] | undefined {
    if (this.volumeOrder === undefined) {
      try {
        const { sortedImageIds } = csUtils.sortImageIdsAndGetSpacing(this.imageIds);
        this.volumeOrder = new Map(sortedImageIds.map((id, k) => [id, k] as [string, number]));
      } catch {
        this.volumeOrder = null;
      }
    }
    if (!this.volumeOrder) return undefined;
    const out: number[] = [];
    for (const i of indices) {
      const k = this.volumeOrder.get(this.imageIds[i]);
      if (k === undefined) return undefined;
      out.push(k);
    }
    return out;
  }

  /** Forget the drawn masks (a canceled or failed job's partial result is not a result). */
  reset(): void {
    this.clearData();
    this.job = undefined;
    this.origin = undefined;
  }

  private clearData(): void {
    for (const id of this.imageIds) {
      const data = cache.getImage(id)?.voxelManager?.getScalarData() as Uint8Array | undefined;
      data?.fill(0);
    }
    this.labelledPerImage.fill(0);
    this.written.clear();
    if (this.registered) csSeg.triggerSegmentationEvents.triggerSegmentationDataModified(this.segmentationId);
  }

  /** Show on a viewport (stack of this series, or an MPR plane of its volume); idempotent. */
  attach(viewport: Types.IViewport): void {
    if (!this.registered) return;
    const id = viewport.id;
    const current = this.attached.get(id);
    const has = csSeg.state.getSegmentationRepresentations(id, { segmentationId: this.segmentationId, type: LABELMAP }).length > 0;
    if (current === viewport && has) return;
    if (has) csSeg.removeSegmentationRepresentations(id, { segmentationId: this.segmentationId, type: LABELMAP });
    csSeg.addLabelmapRepresentationToViewport(id, [{ segmentationId: this.segmentationId, config: { colorLUTOrIndex: this.colorLUTIndex } }]);
    this.attached.set(id, viewport);
    this.applyStyles(id);
  }

  detach(viewportId: string): void {
    if (!this.attached.has(viewportId) && !this.registered) return;
    this.attached.delete(viewportId);
    if (csSeg.state.getSegmentationRepresentations(viewportId, { segmentationId: this.segmentationId }).length) {
      csSeg.removeSegmentationRepresentations(viewportId, { segmentationId: this.segmentationId, type: LABELMAP });
    }
  }

  attachedViewportIds(): string[] {
    return [...this.attached.keys()];
  }

  setVisible(value: number, visible: boolean): void {
    const s = this.segments.get(value);
    if (!s) return;
    s.visible = visible;
    this.applyStyles();
  }

  setAlpha(value: number, alpha: number): void {
    const s = this.segments.get(value);
    if (!s) return;
    s.alpha = Math.min(1, Math.max(0, alpha));
    this.applyStyles();
  }

  private applyStyles(only?: string): void {
    if (!this.registered) return;
    for (const s of this.segments.values()) {
      csSeg.config.style.setStyle({ type: LABELMAP, segmentationId: this.segmentationId, segmentIndex: s.value }, { fillAlpha: s.alpha, fillAlphaInactive: s.alpha, renderOutline: true, outlineOpacity: s.name === 'nodule' ? 1 : 0.9, outlineWidth: 1 } as never);
    }
    for (const id of only ? [only] : [...this.attached.keys()]) {
      try {
        for (const s of this.segments.values()) {
          csSeg.config.visibility.setSegmentIndexVisibility(id, { segmentationId: this.segmentationId, type: LABELMAP }, s.value, s.visible);
        }
        csSeg.triggerSegmentationEvents.triggerSegmentationRepresentationModified(id, this.segmentationId, LABELMAP);
      } catch {
        /* the viewport went away */
      }
    }
  }
}
