/**
 * The one websocket client: connects to /ws/studies/<uid>/, parses messages into the bus and reconnects with
 * capped exponential backoff. Close codes 4401/4403 (not signed in / no access) stop the retries.
 */
import { EventBus } from './bus';
import { BusMessage } from './events';

export interface SocketLike {
  onopen: ((ev: unknown) => void) | null;
  onclose: ((ev: { code: number }) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string): void;
  close(code?: number): void;
}
export type SocketFactory = (url: string) => SocketLike;

export interface RealtimeOptions {
  /** Injected in tests; the browser's WebSocket otherwise. */
  factory?: SocketFactory;
  minDelayMs?: number;
  maxDelayMs?: number;
  pingIntervalMs?: number;
  timers?: { setTimeout: typeof setTimeout; clearTimeout: typeof clearTimeout; setInterval: typeof setInterval; clearInterval: typeof clearInterval };
}

const FATAL_CODES = new Set([4401, 4403]);

export function studySocketUrl(studyUID: string, loc: { protocol: string; host: string } = location): string {
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${loc.host}/ws/studies/${encodeURIComponent(studyUID)}/`;
}

/** Delay before reconnect attempt n (0-based): min * 2^n, capped, with up to 20% jitter. */
export function backoffDelay(attempt: number, min: number, max: number, random: () => number = Math.random): number {
  const base = Math.min(max, min * 2 ** attempt);
  return Math.round(base * (0.8 + 0.2 * random()));
}

export class RealtimeClient {
  readonly bus: EventBus;
  private socket: SocketLike | undefined;
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private pingTimer: ReturnType<typeof setInterval> | undefined;
  private stopped = false;
  private readonly opts: Required<Omit<RealtimeOptions, 'factory'>> & { factory: SocketFactory };

  constructor(
    private readonly url: string,
    bus: EventBus = new EventBus(),
    options: RealtimeOptions = {},
  ) {
    this.bus = bus;
    this.opts = {
      factory: options.factory ?? ((u) => new WebSocket(u) as unknown as SocketLike),
      minDelayMs: options.minDelayMs ?? 500,
      maxDelayMs: options.maxDelayMs ?? 15000,
      pingIntervalMs: options.pingIntervalMs ?? 25000,
      // Bound to the global object: calling window.setTimeout with another `this` throws "Illegal invocation".
      timers: options.timers ?? {
        setTimeout: globalThis.setTimeout.bind(globalThis),
        clearTimeout: globalThis.clearTimeout.bind(globalThis),
        setInterval: globalThis.setInterval.bind(globalThis),
        clearInterval: globalThis.clearInterval.bind(globalThis),
      },
    };
  }

  start(): this {
    this.stopped = false;
    this.connect();
    return this;
  }

  stop(): void {
    this.stopped = true;
    const t = this.opts.timers;
    if (this.retryTimer) t.clearTimeout(this.retryTimer);
    if (this.pingTimer) t.clearInterval(this.pingTimer);
    this.socket?.close(1000);
    this.socket = undefined;
    this.bus.publishConnection('closed');
  }

  private connect(): void {
    this.bus.publishConnection('connecting');
    const ws = this.opts.factory(this.url);
    this.socket = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.bus.publishConnection('open');
      const t = this.opts.timers;
      if (this.pingTimer) t.clearInterval(this.pingTimer);
      this.pingTimer = t.setInterval(() => this.safeSend({ type: 'ping' }), this.opts.pingIntervalMs);
    };
    ws.onmessage = (ev) => {
      let msg: BusMessage;
      try {
        msg = JSON.parse(String(ev.data)) as BusMessage;
      } catch {
        console.warn('[lightbox] websocket message is not JSON');
        return;
      }
      if ((msg as { event?: string }).event === 'pong') return;
      this.bus.publish(msg);
    };
    ws.onerror = () => {
      /* onclose follows and decides */
    };
    ws.onclose = (ev) => {
      if (this.socket !== ws) return;
      const t = this.opts.timers;
      if (this.pingTimer) t.clearInterval(this.pingTimer);
      this.socket = undefined;
      if (this.stopped) return;
      if (FATAL_CODES.has(ev.code)) {
        this.bus.publishConnection('denied');
        return;
      }
      this.bus.publishConnection('closed');
      const delay = backoffDelay(this.attempt++, this.opts.minDelayMs, this.opts.maxDelayMs);
      this.retryTimer = t.setTimeout(() => this.connect(), delay);
    };
  }

  private safeSend(obj: unknown): void {
    try {
      this.socket?.send(JSON.stringify(obj));
    } catch {
      /* closed in between; onclose reconnects */
    }
  }
}
