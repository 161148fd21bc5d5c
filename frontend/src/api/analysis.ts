/** The analysis API (backend/analysis/urls.py): models, jobs, cancel, stored results. */
import { apiJson } from './http';
import type { AiModel, StudyResults } from '../viewer/ai/model';

const ROOT = '/api/analysis';

export const listModels = () => apiJson<AiModel[]>(`${ROOT}/models/`);

export const listJobs = (study: string) => apiJson<unknown[]>(`${ROOT}/jobs/?study=${encodeURIComponent(study)}`);

export function submitJob(study: string, model: string, series?: string): Promise<Record<string, unknown>> {
  const body: Record<string, string> = { study_instance_uid: study, model };
  if (series) body.series_instance_uid = series;
  return apiJson(`${ROOT}/jobs/`, { method: 'POST', body: JSON.stringify(body) });
}

export const cancelJob = (id: string) => apiJson<Record<string, unknown>>(`${ROOT}/jobs/${encodeURIComponent(id)}/cancel/`, { method: 'POST' });

export const studyResults = (study: string) => apiJson<StudyResults>(`${ROOT}/studies/${encodeURIComponent(study)}/results/`);
