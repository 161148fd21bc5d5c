import { describe, expect, it, vi } from 'vitest';
import { bytesToBase64, decodeMask, encodeRle } from '../src/util/rle';
import {
  boxCorners,
  convexHull,
  describeDetection,
  halfVoxel,
  heatColor,
  latencyStats,
  placeSlab,
  planeCutsBox,
  seriesForModel,
  slabTargets,
  usableModels,
} from '../src/viewer/ai/mapping';
import { AiModel, AiState, MaskSlab, normalizeJob, toMaskSlab } from '../src/viewer/ai/model';

const CT_MODEL: AiModel = { name: 'chest-ct-nodules', title: 'Chest CT', task: 'segmentation+detection', version: '0.1.0', modalities: ['CT'], body_parts: ['CHEST'] };
const CXR_MODEL: AiModel = { name: 'cxr-nodule-classifier', title: 'CXR', task: 'classification', version: '0.1.0', modalities: ['CR', 'DX'], body_parts: [] };

// The detection of a real chest-ct-nodules run on the demo CT (0.7 mm pixels, 1.25 mm slices, axial).
const DETECTION = {
  id: 1,
  label: 'nodule',
  score: 1.0,
  center_mm: [91.83, 32.75, 53.05],
  center_voxel: [191.94, 302.28, 386.69],
  box_voxel: [
    [189, 296, 381],
    [195, 308, 393],
  ],
  box_mm: [
    [87.85, 28.35, 49.38],
    [96.25, 36.75, 56.88],
  ],
  long_axis_mm: 8.99,
  short_axis_mm: 8.7,
  equivalent_diameter_mm: 8.92,
  volume_mm3: 371.1,
  long_axis_slice: 192,
  long_axis_sop_instance_uid: '1.2.3.192',
  center_sop_instance_uid: '1.2.3.192',
};

describe('models and series', () => {
  it('offers the models that read one of the study modalities', () => {
    expect(usableModels([CT_MODEL, CXR_MODEL], ['CT', 'SR']).map((m) => m.name)).toEqual(['chest-ct-nodules']);
    expect(usableModels([CT_MODEL, CXR_MODEL], ['cr']).map((m) => m.name)).toEqual(['cxr-nodule-classifier']);
    expect(usableModels([CT_MODEL], ['MR'])).toEqual([]);
    expect(usableModels([{ ...CT_MODEL, modalities: [] }], ['MR'])).toHaveLength(1);
  });

  it('sends the series on screen when the model reads it, else lets the server choose', () => {
    expect(seriesForModel(CT_MODEL, { seriesInstanceUID: '1.2', modality: 'CT' })).toBe('1.2');
    expect(seriesForModel(CT_MODEL, { seriesInstanceUID: '1.2', modality: 'SEG' })).toBeUndefined();
    expect(seriesForModel(CT_MODEL, undefined)).toBeUndefined();
  });
});

describe('mask slabs onto a stack, by SOP Instance UID', () => {
  // The stack shows slices head first (index 0 = top); the pipeline sends them feet first.
  const sops = ['s0', 's1', 's2', 's3', 's4'];
  const indexOfSop = new Map(sops.map((s, i) => [s, 4 - i] as [string, number]));

  it('maps each slice to the image with its UID, not its position', () => {
    expect(slabTargets(['s1', 's2'], indexOfSop)).toEqual({ writes: [{ z: 0, index: 3 }, { z: 1, index: 2 }], missing: [] });
    expect(slabTargets(['s1', 'zz'], indexOfSop).missing).toEqual(['zz']);
  });

  it('decodes a slab and copies each slice into the right image buffer', () => {
    const rows = 2;
    const cols = 3;
    // slab of s1..s3 (z_start 1): slice z has value z + 1 at pixel z
    const labels = new Uint8Array(3 * rows * cols);
    for (let z = 0; z < 3; z++) labels[z * rows * cols + z] = z + 1;
    const slab = toMaskSlab({ z_start: 1, z_end: 4, shape: [3, rows, cols], encoding: 'rle-u8-u32le', data: bytesToBase64(encodeRle(labels)), labels: { lung: 1, nodule: 2, liver: 3 }, sop_instance_uids: ['s1', 's2', 's3'] }, 'job', 'live');
    const buffers = Array.from({ length: 5 }, () => new Uint8Array(rows * cols));
    const out = placeSlab(decodeMask(slab), slab.shape, slab.sop_instance_uids, indexOfSop, (i) => buffers[i]);
    expect(out.modified).toEqual([3, 2, 1]);
    expect([...buffers[3]]).toEqual([1, 0, 0, 0, 0, 0]); // s1
    expect([...buffers[2]]).toEqual([0, 2, 0, 0, 0, 0]); // s2
    expect([...buffers[1]]).toEqual([0, 0, 3, 0, 0, 0]); // s3
    expect([...buffers[0]].every((v) => v === 0) && [...buffers[4]].every((v) => v === 0)).toBe(true);
    expect(out.labelled.get(2)).toBe(1);
  });

  it('skips images of another size and reports unknown UIDs', () => {
    const voxels = new Uint8Array(2 * 4).fill(1);
    const out = placeSlab(voxels, [2, 2, 2], ['s0', 'nope'], indexOfSop, () => new Uint8Array(9));
    expect(out).toMatchObject({ modified: [], skipped: 1, missing: ['nope'] });
  });

  it('refuses payloads whose UIDs or slice range do not match the shape', () => {
    expect(() => toMaskSlab({ z_start: 0, z_end: 2, shape: [2, 1, 1], data: '', sop_instance_uids: ['a'] }, 'j', 'live')).toThrow(/1 source images for 2 slices/);
    expect(() => toMaskSlab({ z_start: 0, z_end: 3, shape: [2, 1, 1], data: '', sop_instance_uids: ['a', 'b'] }, 'j', 'live')).toThrow(/do not match/);
  });
});

describe('detection boxes in patient space', () => {
  const pad = halfVoxel([1, 0, 0], [0, 1, 0], [0, 0, 1], { row: 0.7, column: 0.7, slice: 1.25 });

  it('pads by half a voxel on each patient axis', () => {
    expect(pad).toEqual([0.35, 0.35, 0.625]);
  });

  it('is cut by the axial planes of its slices only', () => {
    const corners = boxCorners(DETECTION.box_mm, pad);
    const at = (z: number) => planeCutsBox(corners, [0, 0, z], [0, 0, 1]);
    expect(at(53.05)).toBe(true);
    expect(at(49.38)).toBe(true); // first slice
    expect(at(56.88)).toBe(true); // last slice
    expect(at(49.38 - 1.25)).toBe(false); // the slice below
    expect(at(56.88 + 1.25)).toBe(false);
    // A sagittal plane through the centre, and one beside the box.
    expect(planeCutsBox(corners, [91.83, 0, 0], [1, 0, 0])).toBe(true);
    expect(planeCutsBox(corners, [120, 0, 0], [1, 0, 0])).toBe(false);
  });

  it('projects to a rectangle (hull of the corners)', () => {
    const corners = boxCorners(DETECTION.box_mm);
    const hull = convexHull(corners.map((c) => [c[0], c[1]] as [number, number]));
    expect(hull).toHaveLength(4);
    const xs = hull.map((p) => p[0]);
    expect(Math.min(...xs)).toBeCloseTo(87.85);
    expect(Math.max(...xs)).toBeCloseTo(96.25);
  });

  it('describes size, volume and score', () => {
    expect(describeDetection(DETECTION)).toEqual({ title: 'Nodule 1', size: '⌀ 9.0 mm', volume: '371 mm³', score: 'score 1.00' });
    expect(describeDetection({ id: 2, label: '', score: 0.5, volume_mm3: 12.34 }).volume).toBe('12.3 mm³');
  });
});

describe('AI state from events', () => {
  const mask = (job: string, seq: number, sops: string[]) => ({ job, seq, kind: 'mask', z_start: 0, z_end: sops.length, shape: [sops.length, 1, 1], encoding: 'rle-u8-u32le', data: bytesToBase64(encodeRle(sops.map(() => 1))), labels: { lung: 1 }, sop_instance_uids: sops });

  it('normalises the event and REST spellings of a job', () => {
    expect(normalizeJob({ job: 'a', model: 'm', series: 's', status: 'running', progress: 12.5 })).toMatchObject({ id: 'a', model: 'm', series: 's', status: 'running', progress: 12.5 });
    expect(normalizeJob({ id: 'b', model_name: 'm', series_instance_uid: 's', status: 'completed' })).toMatchObject({ id: 'b', model: 'm', series: 's', status: 'completed' });
    expect(normalizeJob({ status: 'x' })).toBeUndefined();
  });

  it('catches up from the snapshot, then follows live events without drawing a slab twice', () => {
    const masks: MaskSlab[] = [];
    const finished = vi.fn();
    const st = new AiState({ mask: (m) => masks.push(m), finished });
    st.handle({
      event: 'snapshot',
      payload: { analysis: { jobs: [{ job: 'j1', model: 'chest-ct-nodules', series: 'S', status: 'running', progress: 30, stage: 'segmenting', created: '2026-01-01T00:00:00Z', partials: [mask('j1', 1, ['a', 'b']), { seq: 2, kind: 'detection', ...DETECTION }] }] } },
    });
    expect(masks.map((m) => [m.job, m.seq, m.series])).toEqual([['j1', 1, 'S']]);
    expect(st.findings().map((f) => f.detection.id)).toEqual([1]);
    // The same partial again (sent live just after the snapshot), then a new one.
    st.handle({ event: 'analysis.partial', time: 1, payload: mask('j1', 1, ['a', 'b']) });
    st.handle({ event: 'analysis.partial', time: 2, payload: mask('j1', 3, ['c']) });
    expect(masks.map((m) => m.seq)).toEqual([1, 3]);
    st.handle({ event: 'analysis.progress', time: 3, payload: { job: 'j1', percent: 51.1, stage: 'segmenting' } });
    expect(st.job('j1')).toMatchObject({ status: 'running', progress: 51.1 });
    st.handle({ event: 'analysis.done', time: 4, payload: { job: 'j1', model: 'chest-ct-nodules', series: 'S', status: 'completed', result: { detections: [{ ...DETECTION, id: 1, score: 0.9 }, { ...DETECTION, id: 2, score: 0.7 }] } } });
    expect(st.job('j1')?.status).toBe('completed');
    expect(st.findings().map((f) => [f.detection.id, f.detection.score])).toEqual([[1, 0.9], [2, 0.7]]);
    expect(finished).toHaveBeenCalledOnce();
    // A late progress event does not reopen a finished job.
    st.handle({ event: 'analysis.progress', time: 5, payload: { job: 'j1', percent: 99, stage: 'storing results' } });
    expect(st.job('j1')).toMatchObject({ status: 'completed', progress: 100 });
    expect(st.timeline.map((t) => t.event)).toContain('analysis.done');
  });

  it('keeps the failure reason, and a failed rerun does not hide the last good findings', () => {
    const st = new AiState();
    st.applyJobs([{ id: 'old', model_name: 'm', series_instance_uid: 'S', status: 'completed', created: '2026-01-01T00:00:00Z', result: { detections: [DETECTION] } }]);
    st.handle({ event: 'analysis.queued', payload: { job: 'new', model: 'm', series: 'S', status: 'queued', created: '2026-01-02T00:00:00Z' } });
    st.handle({ event: 'analysis.failed', payload: { job: 'new', model: 'm', series: 'S', status: 'failed', reason: 'The series has no instances in the archive (was it deleted?).', created: '2026-01-02T00:00:00Z' } });
    expect(st.list()[0]).toMatchObject({ id: 'new', status: 'failed', reason: expect.stringMatching(/no instances/) });
    expect(st.findings().map((f) => f.job.id)).toEqual(['old']);
    expect(st.active()).toEqual([]);
  });

  it('reads classifications from partials and from the completed job', () => {
    const st = new AiState();
    st.handle({ event: 'analysis.started', payload: { job: 'c', model: 'cxr', series: 'X', status: 'running' } });
    st.handle({ event: 'analysis.partial', payload: { job: 'c', seq: 1, kind: 'classification', label: 'nodule', probability: 0.83, positive: true, threshold: 0.5, heatmap_peak_px: [10, 20], sop_instance_uid: 'img' } });
    expect(st.classificationsList()[0].classification).toMatchObject({ probability: 0.83, positive: true, sop_instance_uid: 'img' });
    st.handle({ event: 'analysis.done', payload: { job: 'c', status: 'completed', result: { probability: 0.8301, positive: true, threshold: 0.5, heatmap_peak_px: [10, 20] } } });
    expect(st.classificationsList()[0].classification).toMatchObject({ label: 'nodule', probability: 0.8301, sop_instance_uid: 'img' });
  });

  it('ignores malformed partials instead of failing', () => {
    const masks: MaskSlab[] = [];
    const st = new AiState({ mask: (m) => masks.push(m) });
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    st.handle({ event: 'analysis.partial', payload: { job: 'j', seq: 1, kind: 'mask', shape: [2, 1, 1], sop_instance_uids: ['a'] } });
    st.handle({ event: 'analysis.partial', payload: { job: 'j', seq: 2, kind: 'detection', label: 'x' } });
    expect(masks).toEqual([]);
    expect(st.findings()).toEqual([]);
    warn.mockRestore();
  });
});

describe('colours and figures', () => {
  it('heatmap colours run cold (transparent) to hot (opaque red)', () => {
    expect(heatColor(0)[3]).toBe(0);
    const hot = heatColor(1);
    expect(hot[0]).toBeGreaterThan(100);
    expect(hot[2]).toBe(0);
    expect(hot[3]).toBe(255);
  });

  it('summarises latencies', () => {
    expect(latencyStats([5, 1, 3, 2, 4])).toEqual({ n: 5, median: 3, p95: 5, max: 5 });
    expect(latencyStats([]).n).toBe(0);
  });
});
