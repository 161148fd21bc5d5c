/** Building QIDO-RS study queries and turning the answers into rows (pure, unit-tested). */
import { DicomJson, Tag, formatDate, num, str, values } from './dicomjson';

export interface StudyFilters {
  patientName?: string;
  patientId?: string;
  accessionNumber?: string;
  dateFrom?: string; // YYYY-MM-DD
  dateTo?: string; // YYYY-MM-DD
  modality?: string;
  description?: string;
}

export type SortKey = 'patientName' | 'patientId' | 'studyDate' | 'modalities' | 'description' | 'accession' | 'instances';

export interface StudyRow {
  studyInstanceUID: string;
  patientName: string;
  patientId: string;
  studyDate: string;
  studyTime: string;
  accession: string;
  modalities: string;
  description: string;
  series: number | undefined;
  instances: number | undefined;
}

export const STUDY_INCLUDE_FIELDS = [
  Tag.StudyDescription,
  Tag.ModalitiesInStudy,
  Tag.NumberOfStudyRelatedSeries,
  Tag.NumberOfStudyRelatedInstances,
  Tag.StudyTime,
];

const isoToDa = (d: string) => d.replace(/-/g, '');

/** Wrap free text for a wildcard match unless the user typed their own wildcards. */
export function wildcard(text: string): string {
  const t = text.trim();
  if (!t) return '';
  return /[*?]/.test(t) ? t : `*${t}*`;
}

/** QIDO-RS query parameters for /studies (PS3.18 8.3.4), with paging. Empty filters are left out. */
export function buildStudyQuery(f: StudyFilters, page: { limit: number; offset: number }): Record<string, string> {
  const q: Record<string, string> = {};
  if (f.patientName?.trim()) q.PatientName = wildcard(f.patientName);
  if (f.patientId?.trim()) q.PatientID = wildcard(f.patientId);
  if (f.accessionNumber?.trim()) q.AccessionNumber = wildcard(f.accessionNumber);
  if (f.description?.trim()) q.StudyDescription = wildcard(f.description);
  if (f.modality?.trim()) q.ModalitiesInStudy = f.modality.trim().toUpperCase();
  const from = f.dateFrom ? isoToDa(f.dateFrom) : '';
  const to = f.dateTo ? isoToDa(f.dateTo) : '';
  if (from || to) q.StudyDate = from === to ? from : `${from}-${to}`;
  if (q.PatientName) q.fuzzymatching = 'true';
  q.includefield = STUDY_INCLUDE_FIELDS.join(',');
  q.limit = String(page.limit);
  q.offset = String(page.offset);
  return q;
}

export function toQueryString(q: Record<string, string>): string {
  return new URLSearchParams(q).toString();
}

export function studyRow(ds: DicomJson): StudyRow {
  return {
    studyInstanceUID: str(ds, Tag.StudyInstanceUID),
    patientName: str(ds, Tag.PatientName),
    patientId: str(ds, Tag.PatientID),
    studyDate: formatDate(str(ds, Tag.StudyDate)),
    studyTime: str(ds, Tag.StudyTime),
    accession: str(ds, Tag.AccessionNumber),
    modalities: values(ds, Tag.ModalitiesInStudy).map(String).join('/'),
    description: str(ds, Tag.StudyDescription),
    series: num(ds, Tag.NumberOfStudyRelatedSeries),
    instances: num(ds, Tag.NumberOfStudyRelatedInstances),
  };
}

/** Sort rows of the current page on the client; string keys compare case-insensitively. */
export function sortRows(rows: StudyRow[], key: SortKey, dir: 1 | -1): StudyRow[] {
  const get = (r: StudyRow): string | number => {
    switch (key) {
      case 'studyDate':
        return `${r.studyDate} ${r.studyTime}`;
      case 'accession':
        return r.accession.toLowerCase();
      case 'instances':
        return r.instances ?? -1;
      default:
        return String(r[key]).toLowerCase();
    }
  };
  return [...rows].sort((a, b) => {
    const x = get(a);
    const y = get(b);
    return (x < y ? -1 : x > y ? 1 : 0) * dir;
  });
}

/** Filters to and from the page URL, so a search can be bookmarked and survives the back button. */
export function filtersFromParams(p: URLSearchParams): StudyFilters {
  return {
    patientName: p.get('name') ?? '',
    patientId: p.get('pid') ?? '',
    accessionNumber: p.get('acc') ?? '',
    dateFrom: p.get('from') ?? '',
    dateTo: p.get('to') ?? '',
    modality: p.get('mod') ?? '',
    description: p.get('desc') ?? '',
  };
}

export function filtersToParams(f: StudyFilters): URLSearchParams {
  const p = new URLSearchParams();
  const set = (k: string, v?: string) => v && v.trim() && p.set(k, v.trim());
  set('name', f.patientName);
  set('pid', f.patientId);
  set('acc', f.accessionNumber);
  set('from', f.dateFrom);
  set('to', f.dateTo);
  set('mod', f.modality);
  set('desc', f.description);
  return p;
}
