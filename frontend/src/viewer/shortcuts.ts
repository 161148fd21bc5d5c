/** Keyboard shortcuts: one table drives both the key handler and the help panel. */
import { h } from '../util/dom';
import { CT_PRESETS } from './presets';

export type Action =
  | 'next'
  | 'prev'
  | 'next10'
  | 'prev10'
  | 'first'
  | 'last'
  | 'invert'
  | 'rotate'
  | 'flipH'
  | 'flipV'
  | 'reset'
  | 'cine'
  | 'mpr'
  | 'help'
  | 'layout1x1'
  | 'layout1x2'
  | 'layout2x2'
  | 'nextViewport'
  | 'deleteMeasurement'
  | `tool:${string}`
  | `preset:${string}`;

export interface Shortcut {
  keys: string[]; // KeyboardEvent.key values, or "Shift+Digit1"-style codes
  action: Action;
  label: string;
}

export const SHORTCUTS: Shortcut[] = [
  { keys: ['ArrowDown', 'ArrowRight'], action: 'next', label: 'Next image' },
  { keys: ['ArrowUp', 'ArrowLeft'], action: 'prev', label: 'Previous image' },
  { keys: ['PageDown'], action: 'next10', label: 'Forward 10 images' },
  { keys: ['PageUp'], action: 'prev10', label: 'Back 10 images' },
  { keys: ['Home'], action: 'first', label: 'First image' },
  { keys: ['End'], action: 'last', label: 'Last image' },
  { keys: ['w'], action: 'tool:WindowLevel', label: 'Window/level (drag)' },
  { keys: ['p'], action: 'tool:Pan', label: 'Pan' },
  { keys: ['z'], action: 'tool:Zoom', label: 'Zoom' },
  { keys: ['l'], action: 'tool:Length', label: 'Length' },
  { keys: ['a'], action: 'tool:Angle', label: 'Angle' },
  { keys: ['e'], action: 'tool:EllipticalROI', label: 'Ellipse ROI' },
  { keys: ['g'], action: 'tool:RectangleROI', label: 'Rectangle ROI' },
  { keys: ['o'], action: 'tool:Probe', label: 'Probe' },
  { keys: ['t'], action: 'tool:ArrowAnnotate', label: 'Arrow annotation' },
  { keys: ['x'], action: 'tool:Crosshairs', label: 'Crosshairs (MPR)' },
  ...CT_PRESETS.map((p) => ({ keys: [p.key], action: `preset:${p.id}` as Action, label: `Window: ${p.label} (W ${p.width} / L ${p.center})` })),
  { keys: ['i'], action: 'invert', label: 'Invert' },
  { keys: ['r'], action: 'rotate', label: 'Rotate 90° clockwise' },
  { keys: ['h'], action: 'flipH', label: 'Flip horizontally' },
  { keys: ['v'], action: 'flipV', label: 'Flip vertically' },
  { keys: ['Escape', '0'], action: 'reset', label: 'Reset view' },
  { keys: ['c'], action: 'cine', label: 'Play / stop cine' },
  { keys: ['m'], action: 'mpr', label: 'MPR on / off' },
  { keys: ['Shift+Digit1'], action: 'layout1x1', label: 'Layout 1×1' },
  { keys: ['Shift+Digit2'], action: 'layout1x2', label: 'Layout 1×2' },
  { keys: ['Shift+Digit3'], action: 'layout2x2', label: 'Layout 2×2' },
  { keys: ['Tab'], action: 'nextViewport', label: 'Next viewport' },
  { keys: ['Delete', 'Backspace'], action: 'deleteMeasurement', label: 'Delete selected measurement' },
  { keys: ['?'], action: 'help', label: 'Show / hide this help' },
];

/** The action for a key event, or undefined. Shift+digit is matched by code so keyboard layouts do not matter. */
export function actionFor(e: Pick<KeyboardEvent, 'key' | 'code' | 'shiftKey' | 'ctrlKey' | 'metaKey' | 'altKey'>): Action | undefined {
  if (e.ctrlKey || e.metaKey || e.altKey) return undefined;
  for (const s of SHORTCUTS) {
    for (const k of s.keys) {
      if (k.startsWith('Shift+')) {
        if (e.shiftKey && e.code === k.slice(6)) return s.action;
      } else if (e.key === k || (k.length === 1 && e.key.toLowerCase() === k && !e.shiftKey)) {
        return s.action;
      }
    }
  }
  return undefined;
}

const pretty = (k: string) =>
  ({ ArrowDown: '↓', ArrowUp: '↑', ArrowLeft: '←', ArrowRight: '→', 'Shift+Digit1': 'Shift+1', 'Shift+Digit2': 'Shift+2', 'Shift+Digit3': 'Shift+3' })[k] ?? k;

export function helpPanel(onClose: () => void): HTMLElement {
  const rows = SHORTCUTS.map((s) => h('tr', {}, h('td', {}, ...s.keys.flatMap((k, i) => [i ? ' / ' : '', h('kbd', {}, pretty(k))])), h('td', {}, s.label)));
  const mouse = [
    ['Left drag', 'Active tool (window/level by default)'],
    ['Middle drag', 'Pan'],
    ['Right drag', 'Zoom'],
    ['Wheel', 'Scroll through images'],
    ['Drag a series', 'Drop it on a viewport to show it there'],
  ].map(([a, b]) => h('tr', {}, h('td', {}, a), h('td', {}, b)));
  const close = h('button', { class: 'close', 'aria-label': 'Close help' }, '×');
  close.addEventListener('click', onClose);
  return h(
    'div',
    { class: 'help-panel', id: 'help-panel', role: 'dialog', 'aria-label': 'Keyboard shortcuts' },
    close,
    h('h2', {}, 'Keyboard shortcuts'),
    h('table', {}, h('tbody', {}, ...rows)),
    h('h2', {}, 'Mouse'),
    h('table', {}, h('tbody', {}, ...mouse)),
  );
}
