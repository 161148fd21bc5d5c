/**
 * One series-level metadata request -> registered image IDs, in display order. Each instance's DICOM JSON is
 * handed to the loader's metadata manager, so frames load without any per-instance metadata request.
 */
import { wadors } from '@cornerstonejs/dicom-image-loader';
import { frameUrl, seriesMetadata } from '../api/dicomweb';
import { DicomJson, Tag, str } from '../api/dicomjson';
import { planSeries } from './plan';

export interface LoadedSeries {
  study: string;
  series: string;
  modality: string;
  description: string;
  imageIds: string[];
  /** Per image ID: its instance's DICOM JSON (for overlays and measurements). */
  instanceOf: Map<string, DicomJson>;
  frameOfReferenceUID: string;
  mpr: { ok: boolean; reason?: string };
  /** The image shown first: the middle slice of a volume (where anatomy is), else the first. */
  startIndex: number;
  metadataMs: number;
}

export { hasPixels } from './plan';

export function wadorsImageId(study: string, series: string, sop: string, frame: number): string {
  return `wadors:${frameUrl(study, series, sop, frame)}`;
}

const cache = new Map<string, Promise<LoadedSeries>>();

export function loadSeries(study: string, series: string): Promise<LoadedSeries> {
  const key = `${study}/${series}`;
  let p = cache.get(key);
  if (!p) {
    p = fetchSeries(study, series);
    p.catch(() => cache.delete(key));
    cache.set(key, p);
  }
  return p;
}

async function fetchSeries(study: string, series: string): Promise<LoadedSeries> {
  const t0 = performance.now();
  const plan = planSeries(await seriesMetadata(study, series));
  const imageIds: string[] = [];
  const instanceOf = new Map<string, DicomJson>();
  plan.instances.forEach((ds, i) => {
    const sop = str(ds, Tag.SOPInstanceUID);
    // Multi-frame: registering frame 1 lets the loader derive every frame's metadata.
    wadors.metaDataManager.add(wadorsImageId(study, series, sop, 1), ds as never);
    for (let f = 1; f <= plan.frames[i]; f++) {
      const id = wadorsImageId(study, series, sop, f);
      imageIds.push(id);
      instanceOf.set(id, ds);
    }
  });
  const first = plan.instances[0];
  return {
    study,
    series,
    modality: plan.modality,
    description: str(first, Tag.SeriesDescription),
    imageIds,
    instanceOf,
    frameOfReferenceUID: str(first, Tag.FrameOfReferenceUID),
    mpr: plan.mpr,
    startIndex: plan.startIndex,
    metadataMs: performance.now() - t0,
  };
}
