/** The viewer's measurements API (backend/viewer): per user and study, keyed by the annotation UID. */
import { apiJson } from './http';
import type { MeasurementRecord } from '../viewer/measurements/serialize';

const base = (study: string) => `/api/viewer/studies/${encodeURIComponent(study)}/measurements/`;

export const listMeasurements = (study: string) => apiJson<MeasurementRecord[]>(base(study));

/** Create or replace (PUT is an upsert by UID, so retries are harmless). */
export const saveMeasurement = (study: string, r: MeasurementRecord) =>
  apiJson<MeasurementRecord>(`${base(study)}${encodeURIComponent(r.uid)}/`, { method: 'PUT', body: JSON.stringify(r) });

export const deleteMeasurement = (study: string, uid: string) =>
  apiJson<void>(`${base(study)}${encodeURIComponent(uid)}/`, { method: 'DELETE' });

export interface SrExportResult {
  sop_instance_uid: string;
  series_instance_uid: string;
  measurements: number;
}

export const exportSr = (study: string) => apiJson<SrExportResult>(`${base(study)}export-sr/`, { method: 'POST', body: '{}' });
