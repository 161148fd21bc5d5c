/**
 * The AI panel's state, built from bus messages (snapshot, analysis.*), the jobs REST list and the stored
 * results (`/api/analysis/studies/<uid>/results/`). Pure: no DOM, no Cornerstone, so it is unit-tested.
 *
 * Job payloads come in two spellings: websocket events use backend/analysis/jobs.py `job_payload`
 * ({job, model, series, progress, ...}); REST uses the serializer ({id, model_name, series_instance_uid, ...}).
 * Both are normalised into AiJob here.
 */

export type JobStatus = 'queued' | 'running' | 'completed' | 'failed' | 'canceled';
export const FINAL: ReadonlySet<string> = new Set(['completed', 'failed', 'canceled']);

export interface AiModel {
  name: string;
  title: string;
  task: string;
  version: string;
  modalities: string[];
  body_parts: string[];
}

export interface AiJob {
  id: string;
  model: string;
  series: string;
  status: JobStatus;
  progress: number;
  stage: string;
  reason: string;
  result: Record<string, unknown>;
  created: string;
  trigger: string;
}

export interface MaskSlab {
  job: string;
  seq?: number;
  z_start: number;
  z_end: number;
  shape: number[];
  encoding: string;
  data: string;
  labels: Record<string, number>;
  sop_instance_uids: string[];
  /** Source series, when known (results give it; live partials belong to the job's series). */
  series?: string;
  /** "live" (analysis.partial or snapshot) or "archive" (decoded from a stored SEG). */
  origin: 'live' | 'archive';
}

export interface Detection {
  id: number;
  label: string;
  score: number;
  center_mm?: number[];
  center_voxel?: number[];
  box_voxel?: number[][];
  box_mm?: number[][];
  long_axis_mm?: number;
  short_axis_mm?: number;
  equivalent_diameter_mm?: number;
  volume_mm3?: number;
  long_axis_slice?: number;
  long_axis_sop_instance_uid?: string;
  long_axis_endpoints_mm?: number[][];
  center_sop_instance_uid?: string;
}

export interface Classification {
  label: string;
  probability: number;
  positive: boolean;
  threshold: number;
  heatmap_peak_px?: number[];
  sop_instance_uid?: string;
}

export interface Heatmap {
  sop_instance_uid: string;
  source_sop_instance_uid: string;
  shape: number[];
  png: string;
}

export interface StudyResults {
  segmentations?: (Omit<MaskSlab, 'job' | 'origin' | 'series'> & { sop_instance_uid: string; source_series_instance_uid: string })[];
  heatmaps?: Heatmap[];
  jobs?: unknown[];
}

type Json = Record<string, unknown>;
const asStr = (v: unknown): string => (typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v));
const asNum = (v: unknown, d = 0): number => (typeof v === 'number' && Number.isFinite(v) ? v : d);
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

const STATUSES = new Set(['queued', 'running', 'completed', 'failed', 'canceled']);

/** A job from an event payload or a REST record; undefined when it has no ID. */
export function normalizeJob(raw: unknown): AiJob | undefined {
  if (!isObj(raw)) return undefined;
  const id = asStr(raw.job ?? raw.id);
  if (!id) return undefined;
  const status = asStr(raw.status);
  return {
    id,
    model: asStr(raw.model ?? raw.model_name),
    series: asStr(raw.series ?? raw.series_instance_uid),
    status: (STATUSES.has(status) ? status : 'queued') as JobStatus,
    progress: asNum(raw.progress),
    stage: asStr(raw.stage),
    reason: asStr(raw.reason),
    result: isObj(raw.result) ? raw.result : {},
    created: asStr(raw.created),
    trigger: asStr(raw.trigger) || 'user',
  };
}

/** Validate a mask payload (partial or stored segmentation); throws with a readable reason. */
export function toMaskSlab(raw: Json, job: string, origin: MaskSlab['origin'], series?: string): MaskSlab {
  const shape = raw.shape;
  const sops = raw.sop_instance_uids;
  const z0 = asNum(raw.z_start, NaN);
  const z1 = asNum(raw.z_end, NaN);
  if (!Array.isArray(shape) || shape.length !== 3) throw new Error('mask without a 3-D shape');
  if (!Array.isArray(sops) || sops.length !== shape[0]) throw new Error(`mask names ${Array.isArray(sops) ? sops.length : 0} source images for ${shape[0]} slices`);
  if (Number.isFinite(z0) && Number.isFinite(z1) && z1 - z0 !== shape[0]) throw new Error(`mask slices ${z0}..${z1} do not match its shape ${shape[0]}`);
  if (typeof raw.data !== 'string') throw new Error('mask without data');
  const labels: Record<string, number> = {};
  if (isObj(raw.labels)) for (const [k, v] of Object.entries(raw.labels)) if (typeof v === 'number' && v > 0 && v < 256) labels[k] = v;
  return {
    job,
    seq: typeof raw.seq === 'number' ? raw.seq : undefined,
    z_start: z0,
    z_end: z1,
    shape: shape.map(Number),
    encoding: asStr(raw.encoding),
    data: raw.data,
    labels,
    sop_instance_uids: sops.map(asStr),
    series,
    origin,
  };
}

export function toDetection(raw: unknown): Detection | undefined {
  if (!isObj(raw) || typeof raw.id !== 'number') return undefined;
  return { ...(raw as unknown as Detection), label: asStr(raw.label) || 'finding', score: asNum(raw.score) };
}

export function toClassification(raw: unknown): Classification | undefined {
  if (!isObj(raw) || typeof raw.probability !== 'number') return undefined;
  return {
    label: asStr(raw.label) || 'finding',
    probability: raw.probability,
    positive: raw.positive === true,
    threshold: asNum(raw.threshold, 0.5),
    heatmap_peak_px: Array.isArray(raw.heatmap_peak_px) ? raw.heatmap_peak_px.map(Number) : undefined,
    sop_instance_uid: raw.sop_instance_uid !== undefined ? asStr(raw.sop_instance_uid) : undefined,
  };
}

export interface AiListeners {
  /** Jobs list changed (status, progress). */
  jobs?: (jobs: AiJob[]) => void;
  /** A mask slab to draw (each slab once). */
  mask?: (slab: MaskSlab, job: AiJob | undefined) => void;
  /** Detections or classifications changed. */
  findings?: () => void;
  /** A job reached a final status by an event (not from the snapshot or REST list). */
  finished?: (job: AiJob) => void;
}

interface BusLike {
  event: string;
  time?: number;
  payload: unknown;
}

export class AiState {
  readonly jobs = new Map<string, AiJob>();
  private seen = new Set<string>();
  private detections = new Map<string, Map<number, Detection>>();
  private classifications = new Map<string, Classification>();
  /** Time (performance.now()) of the first mask slab and of each job's final event, for tests and the bench. */
  readonly timeline: { event: string; job?: string; at: number; serverTime?: number; receivedAt?: number }[] = [];

  constructor(
    private readonly listeners: AiListeners = {},
    private readonly now: () => number = () => (typeof performance !== 'undefined' ? performance.now() : Date.now()),
  ) {}

  /** Jobs, newest first. */
  list(): AiJob[] {
    return [...this.jobs.values()].sort((a, b) => (a.created < b.created ? 1 : a.created > b.created ? -1 : 0));
  }

  job(id: string): AiJob | undefined {
    return this.jobs.get(id);
  }

  active(): AiJob[] {
    return this.list().filter((j) => !FINAL.has(j.status));
  }

  /** Merge a job record; a final status is never overwritten by a late non-final one. */
  upsert(update: AiJob): AiJob {
    const old = this.jobs.get(update.id);
    if (!old) {
      this.jobs.set(update.id, update);
      return update;
    }
    const keepFinal = FINAL.has(old.status) && !FINAL.has(update.status);
    const merged: AiJob = {
      ...old,
      ...update,
      status: keepFinal ? old.status : update.status,
      progress: keepFinal ? old.progress : update.progress,
      stage: keepFinal ? old.stage : update.stage,
      model: update.model || old.model,
      series: update.series || old.series,
      created: update.created || old.created,
      result: Object.keys(update.result).length ? update.result : old.result,
      reason: update.reason || old.reason,
    };
    this.jobs.set(update.id, merged);
    return merged;
  }

  /** Feed one bus message (snapshot or analysis.*); other events are ignored. */
  handle(msg: BusLike): void {
    const p = isObj(msg.payload) ? msg.payload : {};
    const jobId = asStr(p.job ?? p.id);
    this.timeline.push({ event: msg.event, job: jobId || undefined, at: this.now(), serverTime: msg.time, receivedAt: Date.now() / 1000 });
    if (this.timeline.length > 5000) this.timeline.splice(0, 1000);
    switch (msg.event) {
      case 'snapshot':
        this.applySnapshot(p);
        return;
      case 'analysis.queued':
      case 'analysis.started':
      case 'analysis.done':
      case 'analysis.failed':
      case 'analysis.canceled': {
        const job = normalizeJob(p);
        if (!job) return;
        const status: JobStatus = ({ 'analysis.queued': 'queued', 'analysis.started': 'running', 'analysis.done': 'completed', 'analysis.failed': 'failed', 'analysis.canceled': 'canceled' } as const)[msg.event];
        job.status = status;
        if (status === 'completed') job.progress = 100;
        if (status === 'running' && !this.jobs.get(job.id)) job.progress = 0;
        const merged = this.upsert(job);
        if (status === 'running') {
          // A (re)started job streams again from the start.
          this.detections.delete(job.id);
          this.classifications.delete(job.id);
          for (const k of [...this.seen]) if (k.startsWith(`${job.id}:`)) this.seen.delete(k);
        }
        if (status === 'completed') this.applyResult(merged);
        this.listeners.jobs?.(this.list());
        if (FINAL.has(status)) this.listeners.finished?.(merged);
        return;
      }
      case 'analysis.progress': {
        if (!jobId) return;
        const old = this.jobs.get(jobId);
        if (old && FINAL.has(old.status)) return;
        const job: AiJob = old ? { ...old } : (normalizeJob({ job: jobId }) as AiJob);
        job.status = 'running';
        job.progress = asNum(p.percent, job.progress);
        job.stage = asStr(p.stage) || job.stage;
        this.jobs.set(jobId, job);
        this.listeners.jobs?.(this.list());
        return;
      }
      case 'analysis.partial':
        this.applyPartial(jobId, p);
        return;
      default:
        return;
    }
  }

  private applySnapshot(p: Json): void {
    const analysis = isObj(p.analysis) ? p.analysis : {};
    const jobs = Array.isArray(analysis.jobs) ? analysis.jobs : [];
    for (const raw of jobs) {
      const job = normalizeJob(raw);
      if (!job) continue;
      const merged = this.upsert(job);
      if (merged.status === 'completed') this.applyResult(merged, false);
      const partials = isObj(raw) && Array.isArray(raw.partials) ? raw.partials : [];
      for (const part of partials) if (isObj(part)) this.applyPartial(job.id, part);
    }
    this.listeners.jobs?.(this.list());
    this.listeners.findings?.();
  }

  /** Jobs from `GET /api/analysis/jobs/?study=` or the results' `jobs`. */
  applyJobs(list: unknown[]): void {
    for (const raw of list) {
      const job = normalizeJob(raw);
      if (!job) continue;
      const merged = this.upsert(job);
      if (merged.status === 'completed') this.applyResult(merged, false);
    }
    this.listeners.jobs?.(this.list());
    this.listeners.findings?.();
  }

  applyPartial(jobId: string, p: Json): void {
    if (!jobId) return;
    const key = `${jobId}:${asStr(p.seq)}`;
    if (p.seq !== undefined) {
      if (this.seen.has(key)) return;
      this.seen.add(key);
    }
    const kind = asStr(p.kind);
    const job = this.jobs.get(jobId);
    if (kind === 'mask') {
      let slab: MaskSlab;
      try {
        slab = toMaskSlab(p, jobId, 'live', job?.series || undefined);
      } catch (e) {
        console.warn('[lightbox] ignoring a malformed mask partial', e);
        return;
      }
      this.listeners.mask?.(slab, job);
    } else if (kind === 'detection') {
      const d = toDetection(p);
      if (!d) return;
      let m = this.detections.get(jobId);
      if (!m) this.detections.set(jobId, (m = new Map()));
      m.set(d.id, d);
      this.listeners.findings?.();
    } else if (kind === 'classification') {
      const c = toClassification(p);
      if (!c) return;
      this.classifications.set(jobId, c);
      this.listeners.findings?.();
    }
  }

  /** A completed job's result: its final detections / classification replace the streamed ones. */
  private applyResult(job: AiJob, notify = true): void {
    const r = job.result;
    if (Array.isArray(r.detections)) {
      const m = new Map<number, Detection>();
      for (const raw of r.detections) {
        const d = toDetection(raw);
        if (d) m.set(d.id, d);
      }
      this.detections.set(job.id, m);
    }
    const c = toClassification(r);
    if (c) {
      const streamed = this.classifications.get(job.id);
      const label = typeof r.label === 'string' && r.label ? c.label : streamed?.label ?? c.label;
      this.classifications.set(job.id, { ...c, label, sop_instance_uid: c.sop_instance_uid ?? streamed?.sop_instance_uid });
    }
    if (notify) this.listeners.findings?.();
  }

  /**
   * The job whose findings to show for each series and model: the newest job that is running or completed
   * (a failed or canceled rerun does not hide the last good result).
   */
  currentJobs(): AiJob[] {
    const seen = new Set<string>();
    const out: AiJob[] = [];
    for (const j of this.list()) {
      if (j.status === 'failed' || j.status === 'canceled') continue;
      const key = `${j.series}|${j.model}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(j);
    }
    return out;
  }

  /** Detections of the current jobs, with the job and series they belong to. */
  findings(): { job: AiJob; detection: Detection }[] {
    const out: { job: AiJob; detection: Detection }[] = [];
    for (const job of this.currentJobs()) {
      const m = this.detections.get(job.id);
      if (!m) continue;
      for (const d of [...m.values()].sort((a, b) => b.score - a.score || a.id - b.id)) out.push({ job, detection: d });
    }
    return out;
  }

  classificationsList(): { job: AiJob; classification: Classification }[] {
    const out: { job: AiJob; classification: Classification }[] = [];
    for (const job of this.currentJobs()) {
      const c = this.classifications.get(job.id);
      if (c) out.push({ job, classification: c });
    }
    return out;
  }
}
