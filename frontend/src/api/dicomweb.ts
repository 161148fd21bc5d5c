/** DICOMweb calls: QIDO through dicomweb-client, series metadata with one plain request. */
import { api } from 'dicomweb-client';
import { DicomJson, Tag, num, str } from './dicomjson';
import { HttpError } from './http';
import { requestFrameEarly } from './frames';
import { frameAt, isImageModality, planSeries } from '../viewer/plan';

export const DICOMWEB_ROOT = '/dicomweb';

let client: InstanceType<typeof api.DICOMwebClient> | undefined;

export function dicomweb(): InstanceType<typeof api.DICOMwebClient> {
  client ??= new api.DICOMwebClient({ url: `${location.origin}${DICOMWEB_ROOT}`, singlepart: false } as never);
  return client;
}

function httpErrorFrom(e: unknown): HttpError {
  const status = (e as { status?: number })?.status ?? 0;
  return new HttpError(status, status ? `DICOMweb request failed (${status})` : 'The archive could not be reached');
}

export async function searchStudies(queryParams: Record<string, string>): Promise<DicomJson[]> {
  try {
    return ((await dicomweb().searchForStudies({ queryParams } as never)) as DicomJson[]) ?? [];
  } catch (e) {
    throw httpErrorFrom(e);
  }
}

/**
 * Requests started before the viewer's code has even arrived (see warmStudy) are kept here, so the viewer
 * picks them up instead of asking again. A failed request is forgotten, so a retry goes to the network.
 */
const inflight = new Map<string, Promise<unknown>>();
function once<T>(key: string, make: () => Promise<T>, fresh = false): Promise<T> {
  let p = fresh ? undefined : (inflight.get(key) as Promise<T> | undefined);
  if (!p) {
    p = make();
    inflight.set(key, p);
    p.catch(() => inflight.delete(key));
  }
  return p;
}

export function searchSeries(studyInstanceUID: string, fresh = false): Promise<DicomJson[]> {
  return once(`series:${studyInstanceUID}`, () => searchSeriesNow(studyInstanceUID), fresh);
}

async function searchSeriesNow(studyInstanceUID: string): Promise<DicomJson[]> {
  try {
    return ((await dicomweb().searchForSeries({
      studyInstanceUID,
      queryParams: { includefield: '0008103E,00201209,00080060,00200011,00080021,00080031' },
    } as never)) as DicomJson[]) ?? [];
  } catch (e) {
    throw httpErrorFrom(e);
  }
}

/** Study-level attributes (patient, study) for the overlays: one QIDO study match by UID. */
export function findStudy(studyInstanceUID: string): Promise<DicomJson | undefined> {
  return once(`study:${studyInstanceUID}`, async () => {
    const rows = await searchStudies({ StudyInstanceUID: studyInstanceUID, includefield: '00081030,00080061' });
    return rows[0];
  });
}

/** All instances of a series in one request (series-level WADO-RS metadata). */
export function seriesMetadata(studyUID: string, seriesUID: string): Promise<DicomJson[]> {
  return once(`metadata:${studyUID}/${seriesUID}`, () => seriesMetadataNow(studyUID, seriesUID));
}

async function seriesMetadataNow(studyUID: string, seriesUID: string): Promise<DicomJson[]> {
  let res: Response;
  try {
    res = await fetch(`${DICOMWEB_ROOT}/studies/${studyUID}/series/${seriesUID}/metadata`, {
      headers: { Accept: 'application/dicom+json' },
      credentials: 'same-origin',
    });
  } catch {
    throw new HttpError(0, 'The archive could not be reached');
  }
  if (!res.ok) throw new HttpError(res.status, `Series metadata request failed (${res.status})`);
  return (await res.json()) as DicomJson[];
}

export function frameUrl(study: string, series: string, sop: string, frame: number): string {
  return `${location.origin}${DICOMWEB_ROOT}/studies/${study}/series/${series}/instances/${sop}/frames/${frame}`;
}

export function thumbnailUrl(study: string, series: string, size = 128): string {
  return `${DICOMWEB_ROOT}/studies/${study}/series/${series}/thumbnail?viewport=${size},${size}`;
}

/** The first series with images: skip SR, SEG, KO, PR and other non-image modalities. */
export function pickInitialSeries<T extends { modality: string }>(series: T[]): T | undefined {
  return series.find((s) => isImageModality(s.modality));
}

export interface SeriesInfo {
  seriesInstanceUID: string;
  description: string;
  modality: string;
  seriesNumber?: number;
  imageCount?: number;
}

export function toSeriesInfo(list: DicomJson[]): SeriesInfo[] {
  return list
    .map((ds) => ({
      seriesInstanceUID: str(ds, Tag.SeriesInstanceUID),
      description: str(ds, Tag.SeriesDescription),
      modality: str(ds, Tag.Modality),
      seriesNumber: num(ds, Tag.SeriesNumber),
      imageCount: num(ds, Tag.NumberOfSeriesRelatedInstances),
    }))
    .sort((a, b) => (a.seriesNumber ?? 1e9) - (b.seriesNumber ?? 1e9));
}

/**
 * Start the study's requests (study, series list, the first series' metadata, then its first image) while the viewer's code is
 * still downloading: they are the critical path to the first image.
 */
export function warmStudy(studyInstanceUID: string): void {
  const quiet = (p: Promise<unknown>) => p.catch(() => undefined);
  quiet(findStudy(studyInstanceUID));
  quiet(
    searchSeries(studyInstanceUID).then((list) => {
      const first = pickInitialSeries(toSeriesInfo(list));
      if (!first) return;
      return seriesMetadata(studyInstanceUID, first.seriesInstanceUID).then((metadata) => {
        // The image the viewer will show first: ask for it now, the loader takes the answer.
        const plan = planSeries(metadata);
        const at = frameAt(plan, plan.startIndex);
        if (!at) return;
        const sop = str(plan.instances[at[0]], Tag.SOPInstanceUID);
        requestFrameEarly(frameUrl(studyInstanceUID, first.seriesInstanceUID, sop, at[1]));
      });
    }),
  );
}
