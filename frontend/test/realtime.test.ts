import { describe, expect, it, vi } from 'vitest';
import { EventBus } from '../src/realtime/bus';
import { Events } from '../src/realtime/events';
import { RealtimeClient, SocketLike, backoffDelay, studySocketUrl } from '../src/realtime/socket';
import { readFileSync } from 'node:fs';

describe('event names', () => {
  it('mirror backend/events/names.py', () => {
    const py = readFileSync(new URL('../../backend/events/names.py', import.meta.url), 'utf8');
    const names = [...py.matchAll(/^[ \t]+[A-Z_]+ = "([a-z.]+)"/gm)].map((m) => m[1]).sort();
    expect(names.length).toBeGreaterThan(5);
    expect(Object.values(Events).sort()).toEqual(names);
  });
});

describe('EventBus', () => {
  it('delivers to subscribers until they unsubscribe', () => {
    const bus = new EventBus();
    const seen: number[] = [];
    const off = bus.subscribe(Events.ANALYSIS_PROGRESS, (m) => seen.push(m.payload.percent));
    bus.publish({ event: 'analysis.progress', study: '1.2', time: 0, payload: { percent: 10 } });
    off();
    bus.publish({ event: 'analysis.progress', study: '1.2', time: 0, payload: { percent: 20 } });
    expect(seen).toEqual([10]);
    expect(bus.listenerCount('analysis.progress')).toBe(0);
  });

  it('rejects unknown event names at subscribe time', () => {
    expect(() => new EventBus().subscribe('analysis.progres' as never, () => undefined)).toThrow(/Unknown event/);
  });

  it('keeps going when a handler throws', () => {
    const bus = new EventBus();
    const spy = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const ok = vi.fn();
    bus.subscribe(Events.ANALYSIS_DONE, () => {
      throw new Error('boom');
    });
    bus.subscribe(Events.ANALYSIS_DONE, ok);
    bus.publish({ event: 'analysis.done', study: '1', time: 0, payload: {} });
    expect(ok).toHaveBeenCalledOnce();
    spy.mockRestore();
  });
});

class FakeSocket implements SocketLike {
  static all: FakeSocket[] = [];
  onopen: SocketLike['onopen'] = null;
  onclose: SocketLike['onclose'] = null;
  onmessage: SocketLike['onmessage'] = null;
  onerror: SocketLike['onerror'] = null;
  sent: string[] = [];
  closed = false;
  constructor(readonly url: string) {
    FakeSocket.all.push(this);
  }
  send(d: string) {
    this.sent.push(d);
  }
  close() {
    this.closed = true;
  }
}

describe('RealtimeClient', () => {
  it('builds the study socket URL', () => {
    expect(studySocketUrl('1.2.3', { protocol: 'https:', host: 'h:1' })).toBe('wss://h:1/ws/studies/1.2.3/');
    expect(studySocketUrl('1.2.3', { protocol: 'http:', host: 'h' })).toBe('ws://h/ws/studies/1.2.3/');
  });

  it('caps the backoff', () => {
    expect(backoffDelay(0, 500, 15000, () => 1)).toBe(500);
    expect(backoffDelay(3, 500, 15000, () => 1)).toBe(4000);
    expect(backoffDelay(30, 500, 15000, () => 1)).toBe(15000);
    expect(backoffDelay(1, 500, 15000, () => 0)).toBe(800);
  });

  it('publishes messages, reconnects after a drop, stops on access denied', () => {
    vi.useFakeTimers();
    FakeSocket.all = [];
    const bus = new EventBus();
    const states: string[] = [];
    const events: string[] = [];
    bus.subscribe('connection', (s) => states.push(s));
    bus.subscribe(Events.SNAPSHOT, (m) => events.push(m.event));
    bus.subscribe(Events.STUDY_STORED, (m) => events.push(m.event));
    const client = new RealtimeClient('ws://x/ws/studies/1/', bus, { factory: (u) => new FakeSocket(u), minDelayMs: 100, maxDelayMs: 1000 }).start();
    const s1 = FakeSocket.all[0];
    s1.onopen!({});
    s1.onmessage!({ data: JSON.stringify({ event: 'snapshot', study: '1', time: 1, payload: {} }) });
    s1.onmessage!({ data: 'not json' });
    s1.onclose!({ code: 1006 });
    expect(FakeSocket.all).toHaveLength(1);
    vi.advanceTimersByTime(150);
    expect(FakeSocket.all).toHaveLength(2);
    const s2 = FakeSocket.all[1];
    s2.onopen!({});
    s2.onmessage!({ data: JSON.stringify({ event: 'study.stored', study: '1', time: 2, payload: {} }) });
    vi.advanceTimersByTime(25000);
    expect(s2.sent).toContain(JSON.stringify({ type: 'ping' }));
    s2.onclose!({ code: 4403 });
    vi.advanceTimersByTime(60000);
    expect(FakeSocket.all).toHaveLength(2);
    expect(events).toEqual(['snapshot', 'study.stored']);
    expect(states).toEqual(['connecting', 'open', 'closed', 'connecting', 'open', 'denied']);
    client.stop();
    vi.useRealTimers();
  });
});
