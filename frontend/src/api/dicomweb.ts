/** DICOMweb calls: QIDO through dicomweb-client, series metadata with one plain request. */
import { api } from 'dicomweb-client';
import { DicomJson } from './dicomjson';
import { HttpError } from './http';

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

export async function searchSeries(studyInstanceUID: string): Promise<DicomJson[]> {
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
export async function findStudy(studyInstanceUID: string): Promise<DicomJson | undefined> {
  const rows = await searchStudies({ StudyInstanceUID: studyInstanceUID, includefield: '00081030,00080061' });
  return rows[0];
}

/** All instances of a series in one request (series-level WADO-RS metadata). */
export async function seriesMetadata(studyUID: string, seriesUID: string): Promise<DicomJson[]> {
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
