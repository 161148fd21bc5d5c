/**
 * Event names of the Lightbox bus, mirroring backend/events/names.py (keep the two lists identical).
 * Every websocket message is {event, study, time, payload}.
 */
export const Events = {
  STUDY_STORED: 'study.stored',
  STUDY_DELETED: 'study.deleted',
  ANALYSIS_QUEUED: 'analysis.queued',
  ANALYSIS_STARTED: 'analysis.started',
  ANALYSIS_PROGRESS: 'analysis.progress',
  ANALYSIS_PARTIAL: 'analysis.partial',
  ANALYSIS_DONE: 'analysis.done',
  ANALYSIS_FAILED: 'analysis.failed',
  ANALYSIS_CANCELED: 'analysis.canceled',
  SNAPSHOT: 'snapshot',
  WORKLIST_CHANGED: 'worklist.changed',
} as const;

export type EventName = (typeof Events)[keyof typeof Events];

export const EVENT_NAMES: ReadonlySet<string> = new Set(Object.values(Events));

/** Payloads the viewer relies on; other fields may be present. */
export interface EventPayloads {
  'study.stored': { series?: string[]; instances?: number; [k: string]: unknown };
  'study.deleted': Record<string, unknown>;
  // analysis.queued/started/done/failed/canceled carry the job (backend/analysis/jobs.py job_payload).
  'analysis.queued': { job?: string; model?: string; [k: string]: unknown };
  'analysis.started': { job?: string; [k: string]: unknown };
  'analysis.progress': { percent: number; stage?: string; job?: string; [k: string]: unknown };
  'analysis.partial': { job?: string; seq?: number; kind: 'mask' | 'detection' | 'classification'; [k: string]: unknown };
  'analysis.done': { job?: string; result?: Record<string, unknown>; [k: string]: unknown };
  'analysis.failed': { job?: string; reason: string; [k: string]: unknown };
  'analysis.canceled': { job?: string; [k: string]: unknown };
  snapshot: Record<string, unknown>;
  'worklist.changed': Record<string, unknown>;
}

export interface BusMessage<E extends EventName = EventName> {
  event: E;
  study: string;
  time: number;
  payload: EventPayloads[E];
}

/** Connection state changes are published on the same bus under this local-only name. */
export const CONNECTION = 'connection' as const;
export type ConnectionState = 'connecting' | 'open' | 'closed' | 'denied';
