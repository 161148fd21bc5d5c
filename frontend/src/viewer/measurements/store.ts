/**
 * Keeps Cornerstone's annotations and the server in step: restores saved measurements when the viewer opens,
 * saves on completion and edits (debounced, only when something changed), deletes on removal.
 */
import { eventTarget } from '@cornerstonejs/core';
import { annotation as csAnnotation, Enums as ToolEnums } from '@cornerstonejs/tools';
import { deleteMeasurement, listMeasurements, saveMeasurement } from '../../api/measurements';
import { HttpError } from '../../api/http';
import { AnnotationLike, MeasurementRecord, isMeasurementTool, toAnnotation, toRecord } from './serialize';
import { wadorsImageId } from '../series';

type Listener = (records: MeasurementRecord[]) => void;

export class MeasurementStore {
  private records = new Map<string, MeasurementRecord>();
  private lastSaved = new Map<string, string>();
  private timers = new Map<string, ReturnType<typeof setTimeout>>();
  private restoring = new Set<string>();
  private inflight = new Map<string, Promise<void>>();
  private listeners = new Set<Listener>();
  private detach: (() => void) | undefined;
  saving = 0;

  constructor(
    private readonly study: string,
    private readonly onError: (message: string) => void,
  ) {}

  get all(): MeasurementRecord[] {
    return [...this.records.values()];
  }

  onChange(l: Listener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  private emit(): void {
    for (const l of this.listeners) l(this.all);
  }

  /** Fetch saved measurements and put them into Cornerstone's annotation state. */
  async restore(): Promise<number> {
    const saved = await listMeasurements(this.study);
    for (const r of saved) {
      try {
        const ann = toAnnotation(r, (ref) => wadorsImageId(this.study, ref.seriesInstanceUID, ref.sopInstanceUID, ref.frameNumber));
        this.restoring.add(r.uid);
        csAnnotation.state.addAnnotation(ann as never, r.frame_of_reference_uid || (ann.metadata.referencedImageId as string));
        this.records.set(r.uid, r);
        this.lastSaved.set(r.uid, JSON.stringify(this.comparable(r)));
      } catch (e) {
        console.warn('[lightbox] could not restore measurement', r.uid, e);
      }
    }
    this.emit();
    return saved.length;
  }

  attach(): void {
    const completed = (evt: Event) => this.schedule((evt as CustomEvent).detail.annotation, 50);
    const modified = (evt: Event) => {
      const a = (evt as CustomEvent).detail.annotation as AnnotationLike;
      // Restored annotations recompute their stats once; that is not an edit.
      if (a?.annotationUID && this.restoring.has(a.annotationUID)) {
        this.restoring.delete(a.annotationUID);
        this.refreshLocal(a);
        return;
      }
      if (a?.annotationUID && this.records.has(a.annotationUID)) this.schedule(a, 400);
    };
    const removed = (evt: Event) => {
      const a = (evt as CustomEvent).detail.annotation as AnnotationLike;
      if (a?.annotationUID && isMeasurementTool(a.metadata.toolName)) void this.remove(a.annotationUID);
    };
    eventTarget.addEventListener(ToolEnums.Events.ANNOTATION_COMPLETED, completed);
    eventTarget.addEventListener(ToolEnums.Events.ANNOTATION_MODIFIED, modified);
    eventTarget.addEventListener(ToolEnums.Events.ANNOTATION_REMOVED, removed);
    this.detach = () => {
      eventTarget.removeEventListener(ToolEnums.Events.ANNOTATION_COMPLETED, completed);
      eventTarget.removeEventListener(ToolEnums.Events.ANNOTATION_MODIFIED, modified);
      eventTarget.removeEventListener(ToolEnums.Events.ANNOTATION_REMOVED, removed);
    };
  }

  dispose(): void {
    this.detach?.();
    for (const t of this.timers.values()) clearTimeout(t);
  }

  /** Wait for pending saves (tests and the SR export call this). */
  async flush(): Promise<void> {
    for (const [uid, t] of this.timers) {
      clearTimeout(t);
      this.timers.delete(uid);
      // Stats still being recomputed after the last drag (Cornerstone throttles that): wait for them, briefly.
      for (let i = 0; i < 50 && isStale(csAnnotation.state.getAnnotation(uid)); i++) await new Promise((r) => setTimeout(r, 20));
      const a = csAnnotation.state.getAnnotation(uid) as unknown as AnnotationLike | undefined;
      if (a) await this.save(a);
    }
    await Promise.all([...this.inflight.values()]);
    while (this.saving > 0) await new Promise((r) => setTimeout(r, 20));
  }

  private comparable(r: MeasurementRecord) {
    const { id: _id, created: _c, updated: _u, ...rest } = r;
    return rest;
  }

  private refreshLocal(a: AnnotationLike): void {
    const r = toRecord(a);
    if (!r) return;
    const old = this.records.get(r.uid);
    this.records.set(r.uid, { ...old, ...r });
    this.lastSaved.set(r.uid, JSON.stringify(this.comparable({ ...old, ...r })));
    this.emit();
  }

  private schedule(a: AnnotationLike, delay: number, attempt = 0): void {
    if (!a?.annotationUID || !isMeasurementTool(a.metadata.toolName)) return;
    const uid = a.annotationUID;
    clearTimeout(this.timers.get(uid));
    this.timers.set(
      uid,
      setTimeout(() => {
        this.timers.delete(uid);
        const current = (csAnnotation.state.getAnnotation(uid) as unknown as AnnotationLike | undefined) ?? a;
        // Handles moved but stats not recomputed yet (the tool does that on a later, throttled render): saving
        // now would store the stats of an earlier handle position. Try again shortly.
        if (isStale(current) && attempt < 40) return this.schedule(current, 50, attempt + 1);
        void this.save(current);
      }, delay),
    );
  }

  /**
   * Saves of one measurement go out one after the other: two PUTs in flight at once (the save on completion and
   * a flush) could otherwise reach the server in either order and leave the older stats stored.
   */
  private save(a: AnnotationLike): Promise<void> {
    const uid = a.annotationUID;
    if (!uid) return Promise.resolve();
    const prev = this.inflight.get(uid) ?? Promise.resolve();
    const next = prev.then(() => this.saveNow((csAnnotation.state.getAnnotation(uid) as unknown as AnnotationLike | undefined) ?? a));
    this.inflight.set(uid, next);
    void next.finally(() => {
      if (this.inflight.get(uid) === next) this.inflight.delete(uid);
    });
    return next;
  }

  private async saveNow(a: AnnotationLike): Promise<void> {
    const r = toRecord(a);
    if (!r) return;
    const key = JSON.stringify(this.comparable(r));
    if (this.lastSaved.get(r.uid) === key) return;
    this.records.set(r.uid, { ...this.records.get(r.uid), ...r });
    this.emit();
    this.saving++;
    try {
      const stored = await saveMeasurement(this.study, r);
      this.records.set(r.uid, stored);
      this.lastSaved.set(r.uid, key);
      this.emit();
    } catch (e) {
      this.onError(e instanceof HttpError && e.status === 0 ? 'Measurement not saved: the server could not be reached.' : `Measurement not saved: ${(e as Error).message}`);
    } finally {
      this.saving--;
    }
  }

  private async remove(uid: string): Promise<void> {
    clearTimeout(this.timers.get(uid));
    this.timers.delete(uid);
    const had = this.records.delete(uid);
    this.lastSaved.delete(uid);
    this.emit();
    if (!had) return;
    try {
      await deleteMeasurement(this.study, uid);
    } catch (e) {
      if (!(e instanceof HttpError && e.status === 404)) this.onError(`Measurement not deleted: ${(e as Error).message}`);
    }
  }
}

/** Cornerstone marks an annotation `invalidated` when its handles move, until its stats are recomputed. */
function isStale(a: unknown): boolean {
  return !!(a as { invalidated?: boolean } | undefined)?.invalidated;
}
