import { describe, expect, it } from 'vitest';
import { MultipartError, mediaParam, partTransferSyntax, splitMultipart } from '../src/api/multipart';
import { frameAt, hasPixels, isImageModality, nonImageLabel, planSeries } from '../src/viewer/plan';
import { pickInitialSeries } from '../src/api/dicomweb';

const enc = (s: string) => new TextEncoder().encode(s);
function concat(...chunks: (string | Uint8Array)[]): Uint8Array {
  const parts = chunks.map((c) => (typeof c === 'string' ? enc(c) : c));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Bytes laid out as backend/archive/wado/multipart.py writes them (part heads with Content-Length). */
function archiveBody(boundary: string, parts: [string, Uint8Array][], withLength = true): Uint8Array {
  const chunks: (string | Uint8Array)[] = [];
  for (const [type, data] of parts) {
    chunks.push(`--${boundary}\r\nContent-Type: ${type}\r\n${withLength ? `Content-Length: ${data.length}\r\n` : ''}\r\n`, data, '\r\n');
  }
  chunks.push(`--${boundary}--\r\n`);
  return concat(...chunks);
}

describe('multipart frames', () => {
  const pixels = new Uint8Array(4096).map((_, i) => (i * 7) & 0xff);
  // Bytes that look like a line break and a boundary start inside the pixel data must not end the part.
  pixels.set(enc('\r\n--lightbox-'), 100);

  it('splits the archive answer by Content-Length, pixel bytes untouched', () => {
    const ct = 'multipart/related; type="application/octet-stream"; boundary=lightbox-abc';
    const body = archiveBody('lightbox-abc', [['application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1', pixels]]);
    const parts = splitMultipart(ct, body);
    expect(parts).toHaveLength(1);
    expect(parts[0].data).toEqual(pixels);
    expect(partTransferSyntax(parts[0].contentType)).toBe('1.2.840.10008.1.2.1');
  });

  it('finds parts without Content-Length by their boundary, several frames in one answer', () => {
    const a = pixels.slice(0, 1000);
    const b = pixels.slice(1000, 1500);
    const ct = 'multipart/related; type="image/jls"; boundary="q b"';
    const parts = splitMultipart(ct, archiveBody('q b', [['image/jls', a], ['image/jls; transfer-syntax=1.2.840.10008.1.2.4.80', b]], false));
    expect(parts.map((p) => p.data.length)).toEqual([1000, 500]);
    expect(parts[0].data).toEqual(a);
    expect(parts[1].data).toEqual(b);
    expect(partTransferSyntax(parts[0].contentType)).toBe('1.2.840.10008.1.2.4.80');
  });

  it('a wrong Content-Length falls back to the boundary; a truncated body is an error', () => {
    const ct = 'multipart/related; boundary=x1';
    const good = concat('--x1\r\nContent-Type: application/octet-stream\r\nContent-Length: 3\r\n\r\n', pixels.slice(0, 10), '\r\n--x1--\r\n');
    expect(splitMultipart(ct, good)[0].data).toEqual(pixels.slice(0, 10));
    const cut = concat('--x1\r\nContent-Type: application/octet-stream\r\n\r\n', pixels.slice(0, 10));
    expect(() => splitMultipart(ct, cut)).toThrow(MultipartError);
    expect(() => splitMultipart('multipart/related', good)).toThrow(/no boundary/);
  });

  it('a single-part answer is one part; transfer syntaxes from media types', () => {
    expect(splitMultipart('application/octet-stream', pixels)[0].data).toBe(pixels);
    expect(partTransferSyntax('application/octet-stream')).toBe('1.2.840.10008.1.2');
    expect(partTransferSyntax('image/jpeg')).toBe('1.2.840.10008.1.2.4.50');
    expect(partTransferSyntax('application/octet-stream; transfer-syntax=*')).toBe('1.2.840.10008.1.2');
    expect(mediaParam('multipart/related; type="application/dicom"; boundary=abc', 'type')).toBe('application/dicom');
  });
});

const ds = (sop: string, z: number, extra: Record<string, unknown> = {}) => ({
  '00080016': { vr: 'UI', Value: ['1.2.840.10008.5.1.4.1.1.2'] },
  '00080018': { vr: 'UI', Value: [sop] },
  '00080060': { vr: 'CS', Value: ['CT'] },
  '00200013': { vr: 'IS', Value: [1] },
  '00200032': { vr: 'DS', Value: [0, 0, z] },
  '00200037': { vr: 'DS', Value: [1, 0, 0, 0, 1, 0] },
  '00280010': { vr: 'US', Value: [64] },
  '00280011': { vr: 'US', Value: [64] },
  ...extra,
});

describe('series plan (shared by the entry chunk and the viewer)', () => {
  it('orders a volume head first and starts in the middle', () => {
    const plan = planSeries([ds('a', 0), ds('b', 20), ds('c', 10), ds('d', 30), ds('sr', 5, { '00080016': { vr: 'UI', Value: ['1.2.840.10008.5.1.4.1.1.88.33'] } })]);
    expect(plan.instances.map((x) => (x['00080018'] as { Value: string[] }).Value[0])).toEqual(['d', 'b', 'c', 'a']);
    expect(plan.mpr.ok).toBe(true);
    expect(plan.total).toBe(4);
    expect(plan.startIndex).toBe(2);
    expect(frameAt(plan, plan.startIndex)).toEqual([2, 1]);
  });

  it('counts frames of multi-frame instances and starts a non-volume at its first image', () => {
    const plan = planSeries([ds('m', 0, { '00280008': { vr: 'IS', Value: [5] }, '00080060': { vr: 'CS', Value: ['NM'] } }), ds('n', 1, { '00080060': { vr: 'CS', Value: ['NM'] } })]);
    expect(plan.total).toBe(6);
    expect(plan.startIndex).toBe(0);
    expect(plan.frames).toEqual([1, 5]); // head first: n (z=1) before m (z=0)
    expect(frameAt(plan, 0)).toEqual([0, 1]);
    expect(frameAt(plan, 4)).toEqual([1, 4]);
    expect(frameAt(plan, 6)).toBeUndefined();
  });

  it('knows images from SEG, SR and other non-image objects', () => {
    expect(hasPixels(ds('x', 0))).toBe(true);
    expect(hasPixels(ds('seg', 0, { '00080016': { vr: 'UI', Value: ['1.2.840.10008.5.1.4.1.1.66.4'] } }))).toBe(false);
    expect(isImageModality('CT')).toBe(true);
    expect(isImageModality('SEG')).toBe(false);
    expect(isImageModality('SR')).toBe(false);
    expect(nonImageLabel('SEG', 'AI chest-ct-nodules SEG')).toBe('SEG — AI segmentation');
    expect(nonImageLabel('SR', 'AI chest-ct-nodules nodules')).toBe('SR — AI report');
    expect(nonImageLabel('SR', 'Lightbox measurements')).toBe('SR — measurement report');
    expect(nonImageLabel('SR', '')).toBe('SR — report');
    expect(nonImageLabel('KO', '')).toBe('KO — key images');
  });

  it('never opens a study on a SEG or SR series', () => {
    expect(pickInitialSeries([{ modality: 'SEG' }, { modality: 'SR' }, { modality: 'CT', n: 1 }])).toEqual({ modality: 'CT', n: 1 });
    expect(pickInitialSeries([{ modality: 'SR' }])).toBeUndefined();
  });
});
