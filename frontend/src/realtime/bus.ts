/**
 * A typed pub/sub. Subscribing returns an unsubscribe handle; unknown event names are rejected so a typo
 * fails loudly instead of never firing. A failing handler is logged and does not stop the others.
 */
import { BusMessage, CONNECTION, ConnectionState, EVENT_NAMES, EventName } from './events';

export type Unsubscribe = () => void;
type Handler<E extends EventName> = (message: BusMessage<E>) => void;
type ConnectionHandler = (state: ConnectionState) => void;

export class EventBus {
  private handlers = new Map<string, Set<(m: never) => void>>();
  private anyHandlers = new Set<(m: BusMessage) => void>();

  subscribe<E extends EventName>(event: E, handler: Handler<E>): Unsubscribe;
  subscribe(event: typeof CONNECTION, handler: ConnectionHandler): Unsubscribe;
  subscribe(event: string, handler: (m: never) => void): Unsubscribe {
    if (event !== CONNECTION && !EVENT_NAMES.has(event)) {
      throw new Error(`Unknown event "${event}"; known events: ${[...EVENT_NAMES].join(', ')}`);
    }
    let set = this.handlers.get(event);
    if (!set) this.handlers.set(event, (set = new Set()));
    set.add(handler);
    return () => {
      set!.delete(handler);
    };
  }

  /** Every bus message, whatever its name (for logs and debugging panels). */
  subscribeAll(handler: (m: BusMessage) => void): Unsubscribe {
    this.anyHandlers.add(handler);
    return () => {
      this.anyHandlers.delete(handler);
    };
  }

  publish(message: BusMessage): void {
    if (!EVENT_NAMES.has(message.event)) {
      console.warn('[lightbox] ignoring unknown event', message.event);
      return;
    }
    this.dispatch(message.event, message);
    for (const h of [...this.anyHandlers]) this.safely(() => h(message));
  }

  publishConnection(state: ConnectionState): void {
    this.dispatch(CONNECTION, state);
  }

  listenerCount(event: string): number {
    return this.handlers.get(event)?.size ?? 0;
  }

  clear(): void {
    this.handlers.clear();
    this.anyHandlers.clear();
  }

  private dispatch(event: string, arg: unknown): void {
    const set = this.handlers.get(event);
    if (!set) return;
    for (const h of [...set]) this.safely(() => (h as (a: unknown) => void)(arg));
  }

  private safely(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      console.error('[lightbox] event handler failed', e);
    }
  }
}
