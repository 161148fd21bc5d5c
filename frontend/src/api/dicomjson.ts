/** Reading values out of DICOM JSON (PS3.18 F.2). Every value read here is data, never markup. */

export interface DicomJsonElement {
  vr: string;
  Value?: unknown[];
  BulkDataURI?: string;
  InlineBinary?: string;
}
export type DicomJson = Record<string, DicomJsonElement | undefined>;

/** Tags used by the viewer and the study list, by DICOM keyword. */
export const Tag = {
  SpecificCharacterSet: '00080005',
  SOPClassUID: '00080016',
  SOPInstanceUID: '00080018',
  StudyDate: '00080020',
  StudyTime: '00080030',
  AccessionNumber: '00080050',
  Modality: '00080060',
  ModalitiesInStudy: '00080061',
  StudyDescription: '00081030',
  SeriesDescription: '0008103E',
  PatientName: '00100010',
  PatientID: '00100020',
  PatientBirthDate: '00100030',
  PatientSex: '00100040',
  SliceThickness: '00180050',
  StudyInstanceUID: '0020000D',
  SeriesInstanceUID: '0020000E',
  StudyID: '00200010',
  SeriesNumber: '00200011',
  InstanceNumber: '00200013',
  ImagePositionPatient: '00200032',
  ImageOrientationPatient: '00200037',
  FrameOfReferenceUID: '00200052',
  SliceLocation: '00201041',
  NumberOfStudyRelatedSeries: '00201206',
  NumberOfStudyRelatedInstances: '00201208',
  NumberOfSeriesRelatedInstances: '00201209',
  SamplesPerPixel: '00280002',
  PhotometricInterpretation: '00280004',
  NumberOfFrames: '00280008',
  Rows: '00280010',
  Columns: '00280011',
  PixelSpacing: '00280030',
  WindowCenter: '00281050',
  WindowWidth: '00281051',
  RescaleIntercept: '00281052',
  RescaleSlope: '00281053',
} as const;

export function firstValue(ds: DicomJson | undefined, tag: string): unknown {
  const el = ds?.[tag];
  return el?.Value && el.Value.length > 0 ? el.Value[0] : undefined;
}

export function values(ds: DicomJson | undefined, tag: string): unknown[] {
  return ds?.[tag]?.Value ?? [];
}

/** A string value; PN values are rendered from their Alphabetic group with ^ turned into spaces-friendly form. */
export function str(ds: DicomJson | undefined, tag: string): string {
  const v = firstValue(ds, tag);
  if (v === undefined || v === null) return '';
  if (typeof v === 'object') return personName(v as Record<string, string>);
  return String(v);
}

export function personName(pn: { Alphabetic?: string; Ideographic?: string; Phonetic?: string } | string): string {
  const raw = typeof pn === 'string' ? pn : (pn.Alphabetic ?? pn.Ideographic ?? pn.Phonetic ?? '');
  // Family^Given^Middle^Prefix^Suffix -> "Family, Given Middle"
  const [family = '', given = '', middle = '', prefix = '', suffix = ''] = raw.split('^');
  const rest = [prefix, given, middle, suffix].filter(Boolean).join(' ');
  return rest ? `${family}, ${rest}` : family;
}

export function num(ds: DicomJson | undefined, tag: string): number | undefined {
  const v = firstValue(ds, tag);
  if (v === undefined || v === null || v === '') return undefined;
  const n = typeof v === 'number' ? v : Number(v);
  return Number.isFinite(n) ? n : undefined;
}

export function nums(ds: DicomJson | undefined, tag: string): number[] {
  return values(ds, tag).map(Number).filter((n) => Number.isFinite(n));
}

/** DICOM DA (YYYYMMDD) to ISO (YYYY-MM-DD); other strings are returned as they are. */
export function formatDate(da: string): string {
  return /^\d{8}$/.test(da) ? `${da.slice(0, 4)}-${da.slice(4, 6)}-${da.slice(6, 8)}` : da;
}

/** DICOM TM (HHMMSS.frac) to HH:MM. */
export function formatTime(tm: string): string {
  return /^\d{4}/.test(tm) ? `${tm.slice(0, 2)}:${tm.slice(2, 4)}` : tm;
}
