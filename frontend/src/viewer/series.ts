/**
 * One series-level metadata request -> registered image IDs, in display order. Each instance's DICOM JSON is
 * handed to the loader's metadata manager, so frames load without any per-instance metadata request.
 */
import { wadors } from '@cornerstonejs/dicom-image-loader';
import { frameUrl, seriesMetadata } from '../api/dicomweb';
import { DicomJson, Tag, num, nums, str } from '../api/dicomjson';
import { SliceGeometry, sliceOrder, volumeEligibility } from './geometry';

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
  metadataMs: number;
}

const NON_IMAGE_SOP_PREFIXES = ['1.2.840.10008.5.1.4.1.1.88.', '1.2.840.10008.5.1.4.1.1.66', '1.2.840.10008.5.1.4.1.1.11.', '1.2.840.10008.5.1.4.1.1.104.', '1.2.840.10008.5.1.4.1.1.481.'];

/** Does the instance carry displayable pixels? (SR, SEG, presentation states, PDFs, RT plans do not.) */
export function hasPixels(ds: DicomJson): boolean {
  const sopClass = str(ds, Tag.SOPClassUID);
  if (sopClass === '1.2.840.10008.5.1.4.1.1.481.2') return true; // RT Dose is an image
  if (NON_IMAGE_SOP_PREFIXES.some((p) => sopClass.startsWith(p))) return false;
  return num(ds, Tag.Rows) !== undefined;
}

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
  const instances = (await seriesMetadata(study, series)).filter(hasPixels);
  const geometry: SliceGeometry[] = instances.map((ds) => ({
    instanceNumber: num(ds, Tag.InstanceNumber),
    position: nums(ds, Tag.ImagePositionPatient),
    orientation: nums(ds, Tag.ImageOrientationPatient),
    rows: num(ds, Tag.Rows),
    columns: num(ds, Tag.Columns),
    frames: num(ds, Tag.NumberOfFrames) ?? 1,
  }));
  const order = sliceOrder(geometry);
  const imageIds: string[] = [];
  const instanceOf = new Map<string, DicomJson>();
  for (const i of order) {
    const ds = instances[i];
    const sop = str(ds, Tag.SOPInstanceUID);
    const frames = geometry[i].frames ?? 1;
    // Multi-frame: registering frame 1 lets the loader derive every frame's metadata.
    wadors.metaDataManager.add(wadorsImageId(study, series, sop, 1), ds as never);
    for (let f = 1; f <= frames; f++) {
      const id = wadorsImageId(study, series, sop, f);
      imageIds.push(id);
      instanceOf.set(id, ds);
    }
  }
  const first = instances[order[0]];
  const modality = str(first, Tag.Modality);
  return {
    study,
    series,
    modality,
    description: str(first, Tag.SeriesDescription),
    imageIds,
    instanceOf,
    frameOfReferenceUID: str(first, Tag.FrameOfReferenceUID),
    mpr: volumeEligibility(modality, order.map((i) => geometry[i])),
    metadataMs: performance.now() - t0,
  };
}
