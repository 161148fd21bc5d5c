import { describe, expect, it } from 'vitest';
import { AnnotationLike, describe as describeM, extractStats, parseImageId, toAnnotation, toRecord } from '../src/viewer/measurements/serialize';

const imageId = 'wadors:http://127.0.0.1:8010/dicomweb/studies/1.2.3/series/1.2.3.4/instances/1.2.3.4.5/frames/1';

const length: AnnotationLike = {
  annotationUID: 'abc-123',
  metadata: { toolName: 'Length', referencedImageId: imageId, FrameOfReferenceUID: '1.9', viewPlaneNormal: [0, 0, -1], viewUp: [0, -1, 0] },
  data: {
    handles: { points: [[0, 0, 5], [30, 40, 5]], textBox: {} },
    label: '',
    cachedStats: { [`imageId:${imageId}`]: { length: 50.000001, unit: 'mm', statsArray: [] } },
  },
};

describe('measurement serialisation', () => {
  it('parses image IDs', () => {
    expect(parseImageId(imageId)).toEqual({ studyInstanceUID: '1.2.3', seriesInstanceUID: '1.2.3.4', sopInstanceUID: '1.2.3.4.5', frameNumber: 1 });
    expect(parseImageId('wadouri:file.dcm')).toBeUndefined();
  });

  it('turns an annotation into a record without URLs', () => {
    const r = toRecord(length)!;
    expect(r).toMatchObject({
      uid: 'abc-123',
      kind: 'length',
      series_instance_uid: '1.2.3.4',
      sop_instance_uid: '1.2.3.4.5',
      frame_number: 1,
      frame_of_reference_uid: '1.9',
      points: [[0, 0, 5], [30, 40, 5]],
      view_plane_normal: [0, 0, -1],
      stats: { length: 50, unit: 'mm' },
    });
    expect(JSON.stringify(r)).not.toContain('http');
  });

  it('round-trips through the server format', () => {
    const r = toRecord(length)!;
    const a = toAnnotation(r, (ref) => `wadors:http://other/dicomweb/studies/1.2.3/series/${ref.seriesInstanceUID}/instances/${ref.sopInstanceUID}/frames/${ref.frameNumber}`);
    expect(a.metadata.toolName).toBe('Length');
    expect(a.metadata.referencedImageId).toContain('http://other/');
    expect(a.data.handles!.points).toEqual(r.points);
    expect(a.invalidated).toBe(true); // stats are recomputed on display
    expect(toRecord(a)).toMatchObject({ ...r, stats: {} });
  });

  it('keeps ROI statistics and units', () => {
    const s = extractStats({ t: { area: 12.3456789, mean: -4.5, stdDev: 2, min: -10, max: 3, modalityUnit: 'HU', areaUnit: 'mm²', Modality: 'CT', statsArray: [1] } });
    expect(s).toEqual({ area: 12.3457, mean: -4.5, stdDev: 2, min: -10, max: 3, unit: 'HU', areaUnit: 'mm²' });
    expect(extractStats({ t: { angle: 'Incomplete Angle' } })).toEqual({});
  });

  it('ignores non-measurement tools and annotations without an image', () => {
    expect(toRecord({ ...length, metadata: { ...length.metadata, toolName: 'Crosshairs' } })).toBeUndefined();
    expect(toRecord({ ...length, metadata: { ...length.metadata, referencedImageId: undefined } })).toBeUndefined();
  });

  it('arrow text travels as the label', () => {
    const arrow: AnnotationLike = { ...length, metadata: { ...length.metadata, toolName: 'ArrowAnnotate' }, data: { ...length.data, text: 'nodule' } };
    const r = toRecord(arrow)!;
    expect(r.kind).toBe('arrow');
    expect(r.label).toBe('nodule');
    expect(toAnnotation(r, () => imageId).data.text).toBe('nodule');
  });

  it('describes measurements for the list', () => {
    expect(describeM({ kind: 'length', stats: { length: 50, unit: 'mm' }, label: '' })).toBe('Length 50.00 mm');
    expect(describeM({ kind: 'ellipse', stats: { area: 10, mean: 1, stdDev: 2, min: 0, max: 3, unit: 'HU', areaUnit: 'mm²' }, label: '' })).toBe('Ellipse 10.0 mm², mean 1.0 ± 2.0 HU [0.0, 3.0]');
  });
});
