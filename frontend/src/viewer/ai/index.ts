/**
 * The AI panel's home. For now it shows the state of the study's analyses as the event bus pushes it
 * (queued, progress, done, failed); mask and detection overlays from `analysis.partial` plug in here later
 * (decode masks with util/rle.ts, draw them as a labelmap segmentation on the viewports).
 */
import type { EventBus, Unsubscribe } from '../../realtime/bus';
import { Events } from '../../realtime/events';
import { h } from '../../util/dom';

export interface AiPanel {
  el: HTMLElement;
  dispose(): void;
}

export function mountAiPanel(bus: EventBus): AiPanel {
  const status = h('div', { class: 'ai-status', id: 'ai-status' }, 'No analysis running.');
  const bar = h('progress', { max: 100, value: 0, hidden: true, id: 'ai-progress' });
  const el = h('section', { class: 'panel ai-panel', id: 'ai-panel' }, h('h3', {}, 'AI'), status, bar);
  const set = (text: string, percent?: number) => {
    status.textContent = text;
    bar.hidden = percent === undefined;
    if (percent !== undefined) bar.value = percent;
  };
  const subs: Unsubscribe[] = [
    bus.subscribe(Events.ANALYSIS_QUEUED, () => set('Analysis queued…', 0)),
    bus.subscribe(Events.ANALYSIS_STARTED, () => set('Analysis started…', 0)),
    bus.subscribe(Events.ANALYSIS_PROGRESS, (m) => set(`Analysis ${Math.round(m.payload.percent)}%${m.payload.stage ? ` — ${m.payload.stage}` : ''}`, m.payload.percent)),
    bus.subscribe(Events.ANALYSIS_PARTIAL, (m) => set(`Partial result: ${m.payload.kind}`, bar.hidden ? undefined : bar.value)),
    bus.subscribe(Events.ANALYSIS_DONE, () => set('Analysis done.')),
    bus.subscribe(Events.ANALYSIS_FAILED, (m) => set(`Analysis failed: ${m.payload.reason ?? 'unknown reason'}`)),
    bus.subscribe(Events.ANALYSIS_CANCELED, () => set('Analysis canceled.')),
  ];
  return { el, dispose: () => subs.forEach((u) => u()) };
}
