/**
 * What a series is and how it is shown, decided from DICOM JSON alone (no Cornerstone, so the entry chunk can
 * use it to request the first image before the viewer's code has arrived). Pure and unit-tested.
 */
import { DicomJson, Tag, num, nums, str } from '../api/dicomjson';
import { SliceGeometry, sliceOrder, volumeEligibility } from './geometry';

const NON_IMAGE_SOP_PREFIXES = ['1.2.840.10008.5.1.4.1.1.88.', '1.2.840.10008.5.1.4.1.1.66', '1.2.840.10008.5.1.4.1.1.11.', '1.2.840.10008.5.1.4.1.1.104.', '1.2.840.10008.5.1.4.1.1.481.'];

/** Does the instance carry displayable pixels? (SR, SEG, presentation states, PDFs, RT plans do not.) */
export function hasPixels(ds: DicomJson): boolean {
  const sopClass = str(ds, Tag.SOPClassUID);
  if (sopClass === '1.2.840.10008.5.1.4.1.1.481.2') return true; // RT Dose is an image
  if (NON_IMAGE_SOP_PREFIXES.some((p) => sopClass.startsWith(p))) return false;
  return num(ds, Tag.Rows) !== undefined;
}

/**
 * Series modalities that hold no images to scroll through, with what the series panel calls them. A SEG is
 * drawn as an overlay on its source images (AI panel), never loaded as a stack.
 */
export const NON_IMAGE_MODALITIES: Record<string, string> = {
  SEG: 'Segmentation',
  SR: 'Report',
  KO: 'Key images',
  PR: 'Presentation state',
  RTSTRUCT: 'RT structures',
  RTPLAN: 'RT plan',
  DOC: 'Document',
};

export function isImageModality(modality: string): boolean {
  return !(modality in NON_IMAGE_MODALITIES);
}

/** The label of a non-image series in the series panel, e.g. "SEG — AI segmentation", "SR — report". */
export function nonImageLabel(modality: string, description: string): string {
  const kind = NON_IMAGE_MODALITIES[modality] ?? 'No images';
  const ai = /^AI\b/i.test(description.trim());
  const what = modality === 'SEG' ? (ai ? 'AI segmentation' : 'segmentation') : modality === 'SR' ? (ai ? 'AI report' : /measurement/i.test(description) ? 'measurement report' : 'report') : kind.toLowerCase();
  return `${modality} — ${what}`;
}

export interface SeriesPlan {
  /** Image instances in display order. */
  instances: DicomJson[];
  /** Frames per instance, parallel to `instances`. */
  frames: number[];
  modality: string;
  mpr: { ok: boolean; reason?: string };
  /** Index of the image shown first (the middle slice of a volume, else the first). */
  startIndex: number;
  /** Number of images (frames) in the stack. */
  total: number;
}

export function planSeries(all: DicomJson[]): SeriesPlan {
  const images = all.filter(hasPixels);
  const geometry: SliceGeometry[] = images.map((ds) => ({
    instanceNumber: num(ds, Tag.InstanceNumber),
    position: nums(ds, Tag.ImagePositionPatient),
    orientation: nums(ds, Tag.ImageOrientationPatient),
    rows: num(ds, Tag.Rows),
    columns: num(ds, Tag.Columns),
    frames: num(ds, Tag.NumberOfFrames) ?? 1,
  }));
  const order = sliceOrder(geometry);
  const instances = order.map((i) => images[i]);
  const frames = order.map((i) => geometry[i].frames ?? 1);
  const modality = str(instances[0], Tag.Modality);
  const mpr = volumeEligibility(modality, order.map((i) => geometry[i]));
  const total = frames.reduce((a, b) => a + b, 0);
  return { instances, frames, modality, mpr, startIndex: mpr.ok ? Math.floor(total / 2) : 0, total };
}

/** (instance index, 1-based frame number) of the stack's image at `index`. */
export function frameAt(plan: Pick<SeriesPlan, 'frames'>, index: number): [number, number] | undefined {
  let rest = index;
  for (let i = 0; i < plan.frames.length; i++) {
    if (rest < plan.frames[i]) return [i, rest + 1];
    rest -= plan.frames[i];
  }
  return undefined;
}
