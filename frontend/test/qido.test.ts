import { describe, expect, it } from 'vitest';
import { buildStudyQuery, filtersFromParams, filtersToParams, sortRows, studyRow, wildcard } from '../src/api/qido';
import { personName } from '../src/api/dicomjson';

describe('buildStudyQuery', () => {
  it('leaves out empty filters and always pages', () => {
    const q = buildStudyQuery({ patientName: '  ', modality: '' }, { limit: 26, offset: 50 });
    expect(q).toEqual({ includefield: expect.any(String), limit: '26', offset: '50' });
  });

  it('wraps free text in wildcards and asks for fuzzy name matching', () => {
    const q = buildStudyQuery({ patientName: 'phantom', patientId: 'ID1', accessionNumber: 'A12', description: 'chest' }, { limit: 25, offset: 0 });
    expect(q.PatientName).toBe('*phantom*');
    expect(q.fuzzymatching).toBe('true');
    expect(q.PatientID).toBe('*ID1*');
    expect(q.AccessionNumber).toBe('*A12*');
    expect(q.StudyDescription).toBe('*chest*');
  });

  it('keeps the user own wildcards', () => {
    expect(wildcard('Phan*')).toBe('Phan*');
    expect(wildcard('P?antom')).toBe('P?antom');
  });

  it('turns dates into DICOM ranges', () => {
    expect(buildStudyQuery({ dateFrom: '2024-01-01', dateTo: '2024-12-31' }, { limit: 1, offset: 0 }).StudyDate).toBe('20240101-20241231');
    expect(buildStudyQuery({ dateFrom: '2024-01-01' }, { limit: 1, offset: 0 }).StudyDate).toBe('20240101-');
    expect(buildStudyQuery({ dateTo: '2024-01-01' }, { limit: 1, offset: 0 }).StudyDate).toBe('-20240101');
    expect(buildStudyQuery({ dateFrom: '2024-03-05', dateTo: '2024-03-05' }, { limit: 1, offset: 0 }).StudyDate).toBe('20240305');
  });

  it('matches modality in study, upper case', () => {
    expect(buildStudyQuery({ modality: 'ct' }, { limit: 1, offset: 0 }).ModalitiesInStudy).toBe('CT');
  });

  it('round-trips filters through the URL', () => {
    const f = { patientName: 'a b', patientId: '', accessionNumber: 'x', dateFrom: '2024-01-01', dateTo: '', modality: 'MR', description: 'd' };
    expect(filtersFromParams(filtersToParams(f))).toEqual({ ...f, patientId: '', dateTo: '' });
  });
});

describe('study rows', () => {
  const ds = (name: string, date: string, n: number) => ({
    '00100010': { vr: 'PN', Value: [{ Alphabetic: name }] },
    '00080020': { vr: 'DA', Value: [date] },
    '0020000D': { vr: 'UI', Value: ['1.2.3'] },
    '00080061': { vr: 'CS', Value: ['CT', 'SR'] },
    '00201208': { vr: 'IS', Value: [n] },
  });

  it('reads DICOM JSON', () => {
    const r = studyRow(ds('Phantom^Chest', '20240115', 300));
    expect(r.patientName).toBe('Phantom, Chest');
    expect(r.studyDate).toBe('2024-01-15');
    expect(r.modalities).toBe('CT/SR');
    expect(r.instances).toBe(300);
  });

  it('tolerates empty values (PS3.18 F.2.5)', () => {
    const r = studyRow({ '00100010': { vr: 'PN' }, '00201208': { vr: 'IS' } });
    expect(r.patientName).toBe('');
    expect(r.instances).toBeUndefined();
  });

  it('sorts by a column both ways', () => {
    const rows = [studyRow(ds('b', '20240102', 1)), studyRow(ds('A', '20240103', 3)), studyRow(ds('c', '20240101', 2))];
    expect(sortRows(rows, 'patientName', 1).map((r) => r.patientName)).toEqual(['A', 'b', 'c']);
    expect(sortRows(rows, 'studyDate', -1).map((r) => r.studyDate)).toEqual(['2024-01-03', '2024-01-02', '2024-01-01']);
    expect(sortRows(rows, 'instances', 1).map((r) => r.instances)).toEqual([1, 2, 3]);
  });

  it('formats person names', () => {
    expect(personName({ Alphabetic: 'Doe^Jane^M^Dr' })).toBe('Doe, Dr Jane M');
    expect(personName('Solo')).toBe('Solo');
  });
});
