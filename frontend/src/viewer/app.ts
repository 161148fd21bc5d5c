/**
 * The reading view at /viewer/<StudyInstanceUID>: series panel, viewport grid (1x1, 1x2, 2x2), MPR, tools,
 * measurements saved on the server, and the study's live events.
 *
 * This chunk holds Cornerstone's core and our loaders only: enough to draw the first image. The tools, the
 * measurement store and the AI panel (`tooling.ts`, @cornerstonejs/tools) are imported after the first image is
 * drawn; until then cine, MPR and delete wait for them and a picked tool is applied when they arrive
 * (scrolling, presets, invert, rotate, flip and layouts work at once).
 */
import { RenderingEngine, Types, cache, setVolumesForViewports, volumeLoader, utilities as csUtils } from '@cornerstonejs/core';
import type { Types as ToolTypes } from '@cornerstonejs/tools';
import { findStudy, pickInitialSeries, searchSeries, thumbnailUrl, toSeriesInfo } from '../api/dicomweb';
import { DicomJson, Tag, formatDate, str } from '../api/dicomjson';
import { HttpError, Me, redirectToLogin } from '../api/http';
import { exportSr } from '../api/measurements';
import { EventBus } from '../realtime/bus';
import { CONNECTION, Events } from '../realtime/events';
import { RealtimeClient, studySocketUrl } from '../realtime/socket';
import { clear, h, showBanner } from '../util/dom';
import type { AiHooks, AiPanel } from './ai';
import { RenderSupport, cpuForFirstImage, gpuFromNowOn, startCornerstone } from './cornerstone';
import { loaderStats } from './frameLoader';
import type { MeasurementStore } from './measurements/store';
import { describe, MeasurementRecord } from './measurements/serialize';
import { CT_PRESETS, voiRange } from './presets';
import type { SeriesInfo } from '../api/dicomweb';
import { LoadedSeries, loadSeries, wadorsImageId } from './series';
import { isImageModality, nonImageLabel } from './plan';
import { Action, actionFor, helpPanel } from './shortcuts';
import { Slot } from './slot';

type Tooling = typeof import('./tooling');
// @cornerstonejs/tools' MouseBindings values (importing its enum would pull the package into this chunk).
const MouseBindings = { Primary: 1, Secondary: 2, Auxiliary: 4, Wheel: 524288 } as const;

type Layout = '1x1' | '1x2' | '2x2';
const LAYOUT_SLOTS: Record<Layout, number> = { '1x1': 1, '1x2': 2, '2x2': 4 };

const PRIMARY_TOOLS = [
  { name: 'WindowLevel', label: 'W/L', title: 'Window/level (W)' },
  { name: 'Pan', label: 'Pan', title: 'Pan (P)' },
  { name: 'Zoom', label: 'Zoom', title: 'Zoom (Z)' },
  { name: 'Length', label: 'Length', title: 'Length (L)' },
  { name: 'Angle', label: 'Angle', title: 'Angle (A)' },
  { name: 'EllipticalROI', label: 'Ellipse', title: 'Ellipse ROI (E)' },
  { name: 'RectangleROI', label: 'Rect', title: 'Rectangle ROI (G)' },
  { name: 'Probe', label: 'Probe', title: 'Probe (O)' },
  { name: 'ArrowAnnotate', label: 'Arrow', title: 'Arrow annotation (T)' },
  { name: 'Crosshairs', label: 'Crosshairs', title: 'Crosshairs, MPR only (X)' },
];
const PASSIVE_WHEN_INACTIVE = ['Length', 'Angle', 'EllipticalROI', 'RectangleROI', 'Probe', 'ArrowAnnotate'];

interface ViewerState {
  study: string;
  studyAttrs?: DicomJson;
  series: SeriesInfo[];
  slots: Slot[];
  active: number;
  layout: Layout;
  mpr: boolean;
  primaryTool: string;
  cineFps: number;
  cineOn: boolean;
  openedAt: number;
}

export interface LightboxTestHooks {
  state: () => ViewerState;
  engine: RenderingEngine;
  support: RenderSupport;
  /** Undefined until the tools chunk is loaded (`toolsReady()`). */
  measurements: MeasurementStore | undefined;
  bus: EventBus;
  metrics: () => Record<string, unknown>;
  /** Only `ready()` (false) until the tools chunk is loaded (`toolsReady()`). */
  ai: AiHooks;
  /** Tools, measurements and the AI panel are attached (after the first image). */
  toolsReady: () => boolean;
  imageToClient: (slot: number, ij: [number, number]) => [number, number] | undefined;
  canvas: (slot: number) => HTMLCanvasElement | undefined;
  slots: () => Slot[];
}

declare global {
  interface Window {
    __lightbox?: LightboxTestHooks;
  }
}

export async function mountViewer(root: HTMLElement, studyUID: string, me: Me): Promise<void> {
  const openedAt = performance.now();
  performance.mark('lb:viewer-start');
  const support = startCornerstone();
  performance.mark('lb:cornerstone-ready');
  // The first image is drawn on the CPU, then every viewport moves to WebGL (renderWithGpu).
  cpuForFirstImage(support);
  const engine = new RenderingEngine('lightbox');
  const state: ViewerState = {
    study: studyUID,
    series: [],
    slots: [],
    active: 0,
    layout: '1x1',
    mpr: false,
    primaryTool: 'WindowLevel',
    cineFps: 20,
    cineOn: false,
    openedAt,
  };

  // ---- tools chunk: loaded after the first image (loadTools) ----
  let T: Tooling | undefined;
  let resolveTools!: (t: Tooling) => void;
  const toolsLoaded = new Promise<Tooling>((r) => (resolveTools = r));
  let stackGroup: ToolTypes.IToolGroup | undefined;
  let mprGroup: ToolTypes.IToolGroup | undefined;
  let ai: AiPanel | undefined;
  let store: MeasurementStore | undefined;

  // ---- tool groups: one for stacks, one for the three MPR planes ----
  function createToolGroups(t: Tooling): void {
    const { ToolGroupManager } = t.tools;
    stackGroup = ToolGroupManager.getToolGroup('stack') ?? ToolGroupManager.createToolGroup('stack')!;
    mprGroup = ToolGroupManager.getToolGroup('mpr') ?? ToolGroupManager.createToolGroup('mpr')!;
    for (const g of [stackGroup, mprGroup]) {
      for (const t of ['WindowLevel', 'Pan', 'Zoom', 'StackScroll', 'PlanarRotate', 'Length', 'Angle', 'EllipticalROI', 'RectangleROI', 'Probe']) g.addTool(t);
      g.addTool('ArrowAnnotate', {
        getTextCallback: (done: (t: string) => void) => done(window.prompt('Arrow label', '') ?? ''),
        changeTextCallback: (_d: unknown, _e: unknown, done: (t: string) => void) => done(window.prompt('Arrow label', '') ?? ''),
      });
      g.setToolActive('Pan', { bindings: [{ mouseButton: MouseBindings.Auxiliary }] });
      g.setToolActive('Zoom', { bindings: [{ mouseButton: MouseBindings.Secondary }] });
      g.setToolActive('StackScroll', { bindings: [{ mouseButton: MouseBindings.Wheel }] });
    }
    mprGroup.addTool('Crosshairs', {
      getReferenceLineColor: (id: string) => ({ 'vp-0': 'rgb(255, 80, 80)', 'vp-1': 'rgb(80, 220, 80)', 'vp-2': 'rgb(80, 160, 255)' })[id] ?? 'yellow',
    });
  }

  // ---- layout ----
  const toolbar = h('header', { class: 'toolbar', id: 'toolbar', role: 'toolbar' });
  const seriesPanel = h('aside', { class: 'series-panel', id: 'series-panel', 'aria-label': 'Series' }, h('div', { class: 'panel-title' }, 'Series'));
  const grid = h('section', { class: 'grid layout-1x1', id: 'grid' });
  const measureList = h('ul', { class: 'measure-list', id: 'measure-list' });
  const measurePanel = h('section', { class: 'panel', id: 'measure-panel' }, h('h3', {}, 'Measurements'), measureList);
  const bus = new EventBus();
  const sidePanel = h('aside', { class: 'side-panel' }, measurePanel);
  const connection = h('span', { class: 'conn', id: 'conn-state', title: 'Live updates' });
  clear(root);
  const page = h('div', { class: 'page viewer' }, toolbar, h('div', { class: 'main' }, seriesPanel, grid, sidePanel));
  root.appendChild(page);

  const slotFor = (i: number): Slot => {
    let s = state.slots[i];
    if (!s) {
      s = new Slot(i, engine, () => state.studyAttrs);
      state.slots[i] = s;
      s.host.addEventListener('mousedown', () => setActive(i), true);
      s.host.addEventListener('dragover', (e) => {
        if (e.dataTransfer?.types.includes('application/x-lightbox-series')) {
          e.preventDefault();
          s!.host.classList.add('drop-target');
        }
      });
      s.host.addEventListener('dragleave', () => s!.host.classList.remove('drop-target'));
      s.host.addEventListener('drop', (e) => {
        e.preventDefault();
        s!.host.classList.remove('drop-target');
        const uid = e.dataTransfer?.getData('application/x-lightbox-series');
        if (uid) {
          setActive(i);
          void showSeriesIn(i, uid);
        }
      });
    }
    return s;
  };

  function setActive(i: number): void {
    state.active = i;
    state.slots.forEach((s, k) => s.host.classList.toggle('active', k === i));
    highlightSeries();
  }

  function activeSlot(): Slot | undefined {
    return state.slots[state.active];
  }

  function attachToGroups(): void {
    if (!stackGroup || !mprGroup) return;
    for (const s of state.slots.slice(0, visibleSlots())) {
      if (s.kind === 'empty') continue;
      const group = s.kind === 'mpr' ? mprGroup : stackGroup;
      const other = s.kind === 'mpr' ? stackGroup : mprGroup;
      other.removeViewports(engine.id, s.viewportId);
      if (!group.getViewportIds().includes(s.viewportId)) group.addViewport(s.viewportId, engine.id);
    }
  }

  const visibleSlots = () => (state.mpr ? 3 : LAYOUT_SLOTS[state.layout]);

  function setLayout(layout: Layout): void {
    if (state.mpr) void exitMpr(layout);
    else applyLayout(layout);
  }

  function applyLayout(layout: Layout): void {
    state.layout = layout;
    const n = LAYOUT_SLOTS[layout];
    grid.className = `grid layout-${layout}`;
    for (let i = 0; i < Math.max(n, state.slots.length); i++) {
      const s = slotFor(i);
      if (i < n) {
        if (!s.host.isConnected) grid.appendChild(s.host);
      } else {
        stopCine(s);
        s.clear();
        s.host.remove();
      }
    }
    engine.resize(true, true);
    if (state.active >= n) setActive(0);
    else setActive(state.active);
    // Fill new empty slots with the next series not shown yet.
    for (let i = 0; i < n; i++) {
      const s = state.slots[i];
      if (s.kind === 'empty' && state.series.length) {
        const shown = new Set(state.slots.map((x) => x.series?.series).filter(Boolean));
        const next = state.series.find((x) => !shown.has(x.seriesInstanceUID) && isImageModality(x.modality) && (x.imageCount ?? 1) > 0);
        if (next) void showSeriesIn(i, next.seriesInstanceUID);
      }
    }
    syncToolbar();
    ai?.viewportsChanged();
  }

  async function showSeriesIn(i: number, seriesUID: string, startAt: 'middle' | 'first' = 'middle'): Promise<void> {
    const info = state.series.find((x) => x.seriesInstanceUID === seriesUID);
    if (info && !isImageModality(info.modality)) {
      // SEG, SR, KO, PR...: nothing to scroll through (a SEG is drawn over its source images by the AI panel).
      showBanner(`${nonImageLabel(info.modality, info.description)}: this series holds no images to show.`, 'info', 4000);
      return;
    }
    if (state.mpr) await exitMpr(state.layout);
    const slot = slotFor(i);
    if (slot.kind === 'stack' && slot.series?.series === seriesUID) return; // already there
    stopCine(slot);
    slot.showMessage('Loading series…', 'info');
    let series: LoadedSeries;
    try {
      series = await loadSeries(state.study, seriesUID);
    } catch (e) {
      if (e instanceof HttpError && e.status === 401) return redirectToLogin();
      slot.showMessage(e instanceof HttpError && e.status === 0 ? 'The series could not be fetched: the connection to the server was lost.' : `The series could not be loaded: ${(e as Error).message}`, 'error');
      return;
    }
    performance.mark('lb:series-ready');
    // Volumes open on their middle slice (where anatomy is); it also makes prefetch radiate both ways.
    const start = startAt === 'middle' ? series.startIndex : 0;
    await slot.showStack(series, start, () => undefined);
    attachToGroups();
    applyPrimaryTool();
    highlightSeries();
    syncToolbar();
    ai?.viewportsChanged();
    if (i === state.active) firstImageShown();
  }

  /** Show an image of a series by SOP Instance UID (an AI finding); in MPR of that series, jump to `world`. */
  async function goToImage(seriesUID: string, sop: string | undefined, world: [number, number, number] | undefined): Promise<void> {
    if (state.mpr) {
      if (world && state.slots[0]?.series?.series === seriesUID) {
        for (const s of state.slots.slice(0, 3)) (s.viewport() as Types.IVolumeViewport | undefined)?.jumpToWorld?.(world as Types.Point3);
        return;
      }
      await exitMpr(state.layout);
    }
    let slot = state.slots.slice(0, visibleSlots()).find((s) => s.kind === 'stack' && s.series?.series === seriesUID);
    if (!slot) {
      await showSeriesIn(state.active, seriesUID);
      slot = activeSlot();
    }
    const series = slot?.series;
    if (!slot || !series || series.series !== seriesUID) return;
    setActive(slot.index);
    const idx = sop ? series.imageIds.findIndex((id) => str(series.instanceOf.get(id), Tag.SOPInstanceUID) === sop) : -1;
    if (idx >= 0) await slot.stackViewport()?.setImageIdIndex(idx);
  }

  // ---- series panel ----
  function highlightSeries(): void {
    const shown = activeSlot()?.series?.series;
    for (const el of seriesPanel.querySelectorAll<HTMLElement>('.series-item')) {
      el.classList.toggle('active', el.dataset.series === shown);
    }
  }

  function renderSeriesPanel(): void {
    for (const el of seriesPanel.querySelectorAll('.series-item')) el.remove();
    for (const s of state.series) {
      const meta = [s.modality, s.seriesNumber !== undefined ? `#${s.seriesNumber}` : '', s.imageCount !== undefined ? `${s.imageCount} ${isImageModality(s.modality) ? 'img' : s.imageCount === 1 ? 'object' : 'objects'}` : ''].filter(Boolean).join(' · ');
      if (!isImageModality(s.modality)) {
        // A labelled entry with a badge instead of a thumbnail: no thumbnail request, never loaded as a stack.
        const label = nonImageLabel(s.modality, s.description);
        const item = h(
          'div',
          { class: 'series-item non-image', 'data-series': s.seriesInstanceUID, 'data-modality': s.modality, 'data-kind': 'non-image', title: `${label}: no images to show${s.modality === 'SEG' ? ' (the AI panel draws segmentations over their source images)' : ''}` },
          h('div', { class: 'thumb badge', 'aria-hidden': 'true' }, s.modality),
          h('div', { class: 'series-text' }, h('div', { class: 'series-desc' }, label), h('div', { class: 'series-sub' }, s.description || ''), h('div', { class: 'series-meta' }, meta)),
        );
        item.addEventListener('click', () => void showSeriesIn(state.active, s.seriesInstanceUID));
        seriesPanel.appendChild(item);
        continue;
      }
      const img = h('img', { class: 'thumb', alt: '', width: 96, height: 96, 'data-src': thumbnailUrl(state.study, s.seriesInstanceUID) });
      img.addEventListener('error', () => img.classList.add('missing'));
      const item = h(
        'div',
        { class: 'series-item', draggable: 'true', 'data-series': s.seriesInstanceUID, 'data-modality': s.modality, 'data-kind': 'image', tabindex: 0, title: 'Click to show, or drag onto a viewport' },
        img,
        h('div', { class: 'series-text' }, h('div', { class: 'series-desc' }, s.description || '(no description)'), h('div', { class: 'series-meta' }, meta)),
      );
      item.addEventListener('click', () => void showSeriesIn(state.mpr ? 0 : state.active, s.seriesInstanceUID));
      item.addEventListener('keydown', (e) => e.key === 'Enter' && void showSeriesIn(state.active, s.seriesInstanceUID));
      item.addEventListener('dragstart', (e) => {
        e.dataTransfer?.setData('application/x-lightbox-series', s.seriesInstanceUID);
        e.dataTransfer!.effectAllowed = 'copy';
      });
      seriesPanel.appendChild(item);
    }
  }

  let thumbsLoaded = false;
  function loadThumbnails(): void {
    if (thumbsLoaded) return;
    thumbsLoaded = true;
    for (const img of seriesPanel.querySelectorAll<HTMLImageElement>('img.thumb[data-src]')) {
      img.src = img.dataset.src!;
      img.removeAttribute('data-src');
    }
  }

  let firstShown = false;
  function firstImageShown(): void {
    if (firstShown) return;
    firstShown = true;
    // Thumbnails, the tools and the websocket wait until the first image is up: they would only compete with it.
    loadThumbnails();
    const tooling = import('./tooling');
    tooling.catch(() => undefined);
    void renderWithGpu().then(() => loadTools(tooling));
  }

  /**
   * Move the viewports drawn on the CPU (the first image: cornerstone.ts `cpuForFirstImage`) to WebGL, which
   * segmentation overlays and MPR need. A viewport being set up is waited for, then the default and every
   * slot switch in one task (a CPU viewport left behind would be drawn down the WebGL path).
   */
  async function renderWithGpu(): Promise<void> {
    for (;;) {
      const busy = state.slots.map((s) => s.busy).filter((b): b is Promise<void> => !!b);
      if (!busy.length) break;
      await Promise.allSettled(busy);
    }
    if (!gpuFromNowOn()) return;
    await Promise.all(state.slots.map((s) => s.moveToGpu()));
  }

  /** Attach the tools chunk's tools, measurements and the AI panel; then run what waited for them. */
  async function loadTools(tooling: Promise<Tooling>): Promise<void> {
    let t: Tooling;
    try {
      t = await tooling;
    } catch (e) {
      showBanner(`The viewer's tools could not be loaded (${(e as Error).message}). Reload the page to try again.`, 'error');
      return;
    }
    performance.mark('lb:tools-loaded');
    t.startTools(engine);
    createToolGroups(t);
    T = t;
    attachToGroups();
    applyPrimaryTool();
    const st = new t.MeasurementStore(studyUID, (m) => showBanner(m, 'error', 8000));
    store = st;
    st.attach();
    st.onChange(renderMeasurements);
    const panel = t.mountAiPanel({
      study: studyUID,
      bus,
      canRun: me.capabilities.includes('run_ai'),
      slots: () => state.slots.slice(0, visibleSlots()),
      seriesList: () => state.series,
      shownSeries: () => {
        const s = activeSlot()?.series;
        return s ? { seriesInstanceUID: s.series, modality: s.modality } : undefined;
      },
      goTo: (series, sop, world) => goToImage(series, sop, world),
    });
    ai = panel;
    sidePanel.appendChild(panel.el);
    panel.viewportsChanged();
    // The websocket starts once the AI panel listens, so the panel sees its first message (the jobs' snapshot).
    startRealtime();
    panel.start();
    void restoreMeasurements();
    grid.dataset.tools = 'ready';
    resolveTools(t);
  }

  // ---- tools ----
  function applyPrimaryTool(): void {
    if (!stackGroup || !mprGroup) return syncToolbar(); // applied when the tools arrive (loadTools)
    const name = state.primaryTool;
    for (const g of [stackGroup, mprGroup]) {
      for (const t of PRIMARY_TOOLS) {
        if (!g.hasTool(t.name)) continue;
        if (t.name === name) continue;
        if (PASSIVE_WHEN_INACTIVE.includes(t.name)) g.setToolPassive(t.name);
        else if (t.name === 'Crosshairs') g.setToolDisabled(t.name);
        else g.setToolPassive(t.name);
      }
      const target = g === mprGroup || name !== 'Crosshairs' ? name : 'WindowLevel';
      if (g.hasTool(target)) g.setToolActive(target, { bindings: [{ mouseButton: MouseBindings.Primary }] });
      // Keep pan/zoom on the other buttons.
      g.setToolActive('Pan', { bindings: [{ mouseButton: MouseBindings.Auxiliary }, ...(target === 'Pan' ? [{ mouseButton: MouseBindings.Primary }] : [])] });
      g.setToolActive('Zoom', { bindings: [{ mouseButton: MouseBindings.Secondary }, ...(target === 'Zoom' ? [{ mouseButton: MouseBindings.Primary }] : [])] });
    }
    syncToolbar();
  }

  function selectTool(name: string): void {
    if (name === 'Crosshairs' && !state.mpr) {
      showBanner('Crosshairs link the three MPR planes: switch MPR on first (M).', 'info', 4000);
      return;
    }
    state.primaryTool = name;
    applyPrimaryTool();
  }

  function withViewport(fn: (vp: Types.IStackViewport | Types.IVolumeViewport, s: Slot) => void): void {
    const s = activeSlot();
    const vp = s?.viewport();
    if (!s || !vp) return;
    fn(vp as Types.IStackViewport, s);
    vp.render();
  }

  function applyPreset(id: string): void {
    const p = CT_PRESETS.find((x) => x.id === id);
    if (!p) return;
    const targets = state.mpr ? state.slots.slice(0, 3) : [activeSlot()];
    for (const s of targets) {
      const vp = s?.viewport() as Types.IStackViewport | undefined;
      if (!vp) continue;
      vp.setProperties({ voiRange: voiRange(p.width, p.center) });
      vp.render();
    }
  }

  function run(action: Action): void {
    // Before the tools chunk is in, these wait for it (a tool picked now is applied by loadTools anyway).
    if (!T && (action === 'cine' || action === 'mpr' || action === 'deleteMeasurement')) {
      void toolsLoaded.then(() => run(action));
      return;
    }
    if (action.startsWith('tool:')) return selectTool(action.slice(5));
    if (action.startsWith('preset:')) return applyPreset(action.slice(7));
    const stack = activeSlot()?.stackViewport();
    switch (action) {
      case 'next':
      case 'prev':
      case 'next10':
      case 'prev10': {
        const delta = { next: 1, prev: -1, next10: 10, prev10: -10 }[action];
        const vp = activeSlot()?.viewport();
        if (vp) csUtils.scroll(vp as never, { delta } as never);
        return;
      }
      case 'first':
        void stack?.setImageIdIndex(0);
        return;
      case 'last':
        if (stack) void stack.setImageIdIndex(stack.getImageIds().length - 1);
        return;
      case 'invert':
        return withViewport((vp) => {
          const props = (vp as Types.IStackViewport).getProperties();
          (vp as Types.IStackViewport).setProperties({ invert: !props.invert });
        });
      case 'rotate':
        return withViewport((vp) => {
          const r = vp.getViewPresentation().rotation ?? 0;
          vp.setViewPresentation({ rotation: (r + 90) % 360 });
        });
      case 'flipH':
        return withViewport((vp) => vp.setCamera({ flipHorizontal: !vp.getCamera().flipHorizontal }));
      case 'flipV':
        return withViewport((vp) => vp.setCamera({ flipVertical: !vp.getCamera().flipVertical }));
      case 'reset':
        return withViewport((vp) => {
          vp.resetCamera();
          (vp as Types.IStackViewport).resetProperties?.();
        });
      case 'cine':
        return toggleCine();
      case 'mpr':
        void (state.mpr ? exitMpr(state.layout) : enterMpr());
        return;
      case 'help':
        return toggleHelp();
      case 'layout1x1':
        return setLayout('1x1');
      case 'layout1x2':
        return setLayout('1x2');
      case 'layout2x2':
        return setLayout('2x2');
      case 'nextViewport':
        return setActive((state.active + 1) % visibleSlots());
      case 'deleteMeasurement': {
        const { annotation } = T!.tools;
        const selected = annotation.selection.getAnnotationsSelected?.() ?? [];
        for (const uid of selected) annotation.state.removeAnnotation(uid as unknown as string);
        engine.render();
        return;
      }
    }
  }

  // ---- cine ----
  function stopCine(s: Slot | undefined): void {
    if (!s || !T) return; // no cine before the tools are in
    try {
      T.tools.utilities.cine.stopClip(s.element);
    } catch {
      /* not playing */
    }
  }

  function toggleCine(): void {
    const s = activeSlot();
    if (!s || s.kind !== 'stack' || !T) return;
    state.cineOn = !state.cineOn;
    if (state.cineOn) T.tools.utilities.cine.playClip(s.element, { framesPerSecond: state.cineFps, loop: true } as never);
    else stopCine(s);
    syncToolbar();
  }

  // ---- MPR ----
  let savedLayout: { layout: Layout; series: (string | undefined)[] } | undefined;

  async function enterMpr(): Promise<void> {
    const s = activeSlot();
    const series = s?.series;
    if (!series) return;
    if (!support.webgl) {
      showBanner(`MPR needs WebGL, which this browser does not provide. ${support.reason ?? ''} Stacks still work.`, 'error');
      return;
    }
    if (!series.mpr.ok) {
      showBanner(`MPR is not available for this series: ${series.mpr.reason}.`, 'info', 5000);
      return;
    }
    savedLayout = { layout: state.layout, series: state.slots.map((x) => x.series?.series) };
    const voi = (s.viewport() as Types.IStackViewport).getProperties().voiRange;
    for (const x of state.slots) {
      stopCine(x);
      x.clear();
      x.host.remove();
    }
    state.mpr = true;
    state.cineOn = false;
    grid.className = 'grid layout-mpr';
    const planes = ['axial', 'sagittal', 'coronal'] as const;
    const slots = planes.map((_, i) => slotFor(i));
    slots.forEach((x) => grid.appendChild(x.host));
    engine.resize(true, true);
    slots.forEach((x, i) => x.enableOrthographic(planes[i], series));
    slots.forEach((x) => x.showMessage('Building volume…', 'info'));
    const volumeId = `cornerstoneStreamingImageVolume:${series.series}`;
    try {
      const volume = await volumeLoader.createAndCacheVolume(volumeId, { imageIds: series.imageIds });
      (volume as unknown as { load: () => void }).load();
      await setVolumesForViewports(
        engine,
        [{ volumeId, callback: voi ? ({ volumeActor }: { volumeActor: { getProperty: () => { getRGBTransferFunction: (n: number) => { setMappingRange: (a: number, b: number) => void } } } }) => volumeActor.getProperty().getRGBTransferFunction(0).setMappingRange(voi.lower, voi.upper) : undefined } as never],
        slots.map((x) => x.viewportId),
      );
    } catch (e) {
      slots.forEach((x) => x.showMessage(`MPR could not be built: ${(e as Error).message}`, 'error'));
      return;
    }
    slots.forEach((x) => {
      x.hideMessage();
      x.updateOverlay();
    });
    attachToGroups();
    state.primaryTool = 'Crosshairs';
    applyPrimaryTool();
    ai?.viewportsChanged();
    engine.render();
    setActive(0);
    syncToolbar();
  }

  async function exitMpr(layout: Layout): Promise<void> {
    if (!state.mpr) return;
    for (const x of state.slots) {
      x.clear();
      x.host.remove();
    }
    state.mpr = false;
    if (state.primaryTool === 'Crosshairs') state.primaryTool = 'WindowLevel';
    const previous = savedLayout;
    savedLayout = undefined;
    state.layout = layout;
    grid.className = `grid layout-${layout}`;
    const n = LAYOUT_SLOTS[layout];
    for (let i = 0; i < n; i++) grid.appendChild(slotFor(i).host);
    engine.resize(true, true);
    await Promise.all(
      Array.from({ length: n }, (_, i) => {
        const uid = previous?.series[i] ?? (i === 0 ? pickInitialSeries(state.series)?.seriesInstanceUID : undefined);
        return uid ? showSeriesIn(i, uid) : Promise.resolve();
      }),
    );
    setActive(0);
    syncToolbar();
    ai?.viewportsChanged();
  }

  // ---- toolbar ----
  const buttons = new Map<string, HTMLButtonElement>();
  const btn = (id: string, label: string, title: string, onClick: () => void, cls = '') => {
    const b = h('button', { type: 'button', id: `btn-${id}`, title, class: cls }, label);
    b.addEventListener('click', () => {
      onClick();
      b.blur();
    });
    buttons.set(id, b);
    return b;
  };
  const presetSelect = h('select', { id: 'wl-presets', title: 'Window presets (1–5)' }, h('option', { value: '' }, 'W/L preset…'), ...CT_PRESETS.map((p) => h('option', { value: p.id }, `${p.key} ${p.label}`)));
  presetSelect.addEventListener('change', () => {
    if (presetSelect.value) applyPreset(presetSelect.value);
    presetSelect.value = '';
    presetSelect.blur();
  });
  const fpsInput = h('input', { type: 'number', id: 'cine-fps', min: 1, max: 60, value: state.cineFps, title: 'Cine frames per second', class: 'fps' });
  fpsInput.addEventListener('change', () => {
    state.cineFps = Math.min(60, Math.max(1, Number(fpsInput.value) || 20));
    fpsInput.value = String(state.cineFps);
    if (state.cineOn) {
      toggleCine();
      toggleCine();
    }
  });
  const studyTitle = h('span', { class: 'study-title', id: 'study-title' });
  toolbar.append(
    h('a', { href: '/', class: 'back', title: 'Back to the study list' }, '← Studies'),
    studyTitle,
    h('span', { class: 'group' }, btn('layout-1x1', '1×1', 'Layout 1×1 (Shift+1)', () => setLayout('1x1')), btn('layout-1x2', '1×2', 'Layout 1×2 (Shift+2)', () => setLayout('1x2')), btn('layout-2x2', '2×2', 'Layout 2×2 (Shift+3)', () => setLayout('2x2'))),
    h('span', { class: 'group' }, ...PRIMARY_TOOLS.map((t) => btn(`tool-${t.name}`, t.label, t.title, () => selectTool(t.name)))),
    h('span', { class: 'group' }, presetSelect, btn('invert', 'Invert', 'Invert (I)', () => run('invert')), btn('rotate', 'Rotate', 'Rotate 90° (R)', () => run('rotate')), btn('flipH', 'Flip H', 'Flip horizontally (H)', () => run('flipH')), btn('flipV', 'Flip V', 'Flip vertically (V)', () => run('flipV')), btn('reset', 'Reset', 'Reset (Esc)', () => run('reset'))),
    h('span', { class: 'group' }, btn('cine', '▶ Cine', 'Play/stop cine (C)', () => run('cine')), fpsInput, h('span', { class: 'unit' }, 'fps')),
    h('span', { class: 'group' }, btn('mpr', 'MPR', 'Axial, sagittal and coronal with crosshairs (M)', () => run('mpr'))),
    h('span', { class: 'group' }, btn('export-sr', 'Save SR', 'Store the measurements in the archive as a DICOM SR (TID 1500)', () => void doExportSr())),
    h('span', { class: 'spacer' }),
    connection,
    btn('help', '?', 'Keyboard shortcuts (?)', () => run('help')),
    h('span', { class: 'user' }, me.username),
  );

  function syncToolbar(): void {
    for (const t of PRIMARY_TOOLS) buttons.get(`tool-${t.name}`)?.classList.toggle('on', state.primaryTool === t.name);
    for (const l of Object.keys(LAYOUT_SLOTS)) buttons.get(`layout-${l}`)?.classList.toggle('on', !state.mpr && state.layout === l);
    buttons.get('mpr')?.classList.toggle('on', state.mpr);
    const mprOk = !!activeSlot()?.series?.mpr.ok || state.mpr;
    const mprBtn = buttons.get('mpr');
    if (mprBtn) {
      mprBtn.disabled = !mprOk || !support.webgl;
      mprBtn.title = !support.webgl ? `MPR needs WebGL: ${support.reason}` : mprOk ? 'Axial, sagittal and coronal with crosshairs (M)' : `MPR unavailable: ${activeSlot()?.series?.mpr.reason ?? 'no volume series shown'}`;
    }
    const cine = buttons.get('cine');
    if (cine) cine.textContent = state.cineOn ? '■ Stop' : '▶ Cine';
  }

  // ---- help ----
  let help: HTMLElement | undefined;
  function toggleHelp(): void {
    if (help) {
      help.remove();
      help = undefined;
      return;
    }
    help = helpPanel(() => toggleHelp());
    page.appendChild(help);
  }

  // ---- keyboard ----
  const onKey = (e: KeyboardEvent) => {
    const t = e.target as HTMLElement;
    if (t && (t.tagName === 'INPUT' || t.tagName === 'SELECT' || t.tagName === 'TEXTAREA') && e.key !== 'Escape') return;
    const action = actionFor(e);
    if (!action) return;
    e.preventDefault();
    run(action);
  };
  document.addEventListener('keydown', onKey);

  // ---- measurements (the store is made in loadTools) ----

  function renderMeasurements(records: MeasurementRecord[]): void {
    clear(measureList);
    if (!records.length) {
      measureList.appendChild(h('li', { class: 'empty' }, 'None yet. Pick a tool (L, A, E, G, O, T) and draw.'));
      return;
    }
    for (const r of records) {
      const del = h('button', { class: 'del', title: 'Delete', 'aria-label': 'Delete measurement' }, '×');
      del.addEventListener('click', (e) => {
        e.stopPropagation();
        T?.tools.annotation.state.removeAnnotation(r.uid);
        engine.render();
      });
      const li = h('li', { 'data-uid': r.uid, 'data-kind': r.kind, tabindex: 0 }, h('span', { class: 'desc' }, describe(r)), del);
      li.addEventListener('click', () => jumpTo(r));
      measureList.appendChild(li);
    }
  }

  function jumpTo(r: MeasurementRecord): void {
    const imageId = wadorsImageId(studyUID, r.series_instance_uid, r.sop_instance_uid, r.frame_number);
    const slot = state.slots.find((s) => s.kind === 'stack' && s.series?.series === r.series_instance_uid);
    if (slot) {
      const idx = slot.series!.imageIds.indexOf(imageId);
      if (idx >= 0) void slot.stackViewport()?.setImageIdIndex(idx);
      setActive(slot.index);
    } else {
      void showSeriesIn(state.active, r.series_instance_uid).then(() => {
        const s = activeSlot();
        const idx = s?.series?.imageIds.indexOf(imageId) ?? -1;
        if (idx >= 0) void s!.stackViewport()?.setImageIdIndex(idx);
      });
    }
    // Select it so Delete removes it.
    T?.tools.annotation.selection.setAnnotationSelected?.(r.uid, true);
  }

  async function restoreMeasurements(): Promise<void> {
    if (!store) return;
    try {
      const n = await store.restore();
      if (n) engine.render();
      if (!n) renderMeasurements([]);
    } catch (e) {
      if (e instanceof HttpError && e.status === 401) return redirectToLogin();
      showBanner(`Saved measurements could not be loaded: ${(e as Error).message}`, 'error');
    }
  }

  async function doExportSr(): Promise<void> {
    await toolsLoaded;
    if (!store) return;
    await store.flush();
    if (!store.all.length) {
      showBanner('There are no measurements to export.', 'info', 4000);
      return;
    }
    const b = buttons.get('export-sr')!;
    b.disabled = true;
    try {
      const res = await exportSr(studyUID);
      showBanner(`Stored a DICOM SR with ${res.measurements} measurement(s) in the archive (series ${res.series_instance_uid}).`, 'info', 8000);
    } catch (e) {
      showBanner(`SR export failed: ${(e as Error).message}`, 'error');
    } finally {
      b.disabled = false;
    }
  }

  // ---- realtime ----
  let realtime: RealtimeClient | undefined;
  let lostBanner: HTMLElement | undefined;
  function startRealtime(): void {
    if (realtime) return;
    realtime = new RealtimeClient(studySocketUrl(studyUID), bus).start();
  }
  bus.subscribe(CONNECTION, (s) => {
    connection.dataset.state = s;
    connection.textContent = s === 'open' ? '● live' : s === 'connecting' ? '○ connecting' : s === 'denied' ? '○ no live updates' : '○ offline';
    if (s === 'open' && lostBanner) {
      lostBanner.remove();
      lostBanner = undefined;
    }
  });
  bus.subscribe(Events.STUDY_STORED, () => void refreshSeries());
  bus.subscribe(Events.STUDY_DELETED, () => showBanner('This study was deleted from the archive.', 'warn'));
  const onOffline = () => {
    lostBanner ??= showBanner('Connection lost. Images already loaded stay available; reconnecting…', 'warn');
  };
  const onOnline = () => {
    lostBanner?.remove();
    lostBanner = undefined;
  };
  window.addEventListener('offline', onOffline);
  window.addEventListener('online', onOnline);
  bus.subscribe(CONNECTION, (s) => {
    if (s === 'closed' && firstShown) setTimeout(() => connection.dataset.state === 'closed' && onOffline(), 3000);
  });

  async function refreshSeries(): Promise<void> {
    try {
      state.series = toSeriesInfo(await searchSeries(studyUID, true));
      renderSeriesPanel();
      thumbsLoaded = false;
      loadThumbnails();
      highlightSeries();
    } catch {
      /* keep the old list */
    }
  }

  // ---- resize ----
  let resizeTimer: ReturnType<typeof setTimeout> | undefined;
  const ro = new ResizeObserver(() => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => engine.resize(true, true), 50);
  });
  ro.observe(grid);

  // ---- test hooks (read-only views on the state; used by tests/browser and bench) ----
  window.__lightbox = {
    state: () => state,
    engine,
    support,
    get measurements() {
      return store;
    },
    bus,
    get ai() {
      // Before the tools chunk is in: only ready() (false), so `ai.ready()` can be polled from the start.
      return ai?.hooks ?? ({ ready: () => false } as unknown as AiHooks);
    },
    toolsReady: () => !!T,
    slots: () => state.slots.slice(0, visibleSlots()),
    canvas: (i) => state.slots[i]?.viewport()?.getCanvas() as HTMLCanvasElement | undefined,
    imageToClient: (i, ij) => {
      const s = state.slots[i];
      const vp = s?.viewport() as Types.IStackViewport | undefined;
      if (!vp) return undefined;
      const imageId = vp.getCurrentImageId?.();
      if (!imageId) return undefined;
      const world = csUtils.imageToWorldCoords(imageId, ij as Types.Point2);
      if (!world) return undefined;
      const c = vp.worldToCanvas(world);
      const rect = s.element.getBoundingClientRect();
      return [rect.left + c[0], rect.top + c[1]];
    },
    metrics: () => {
      const s = state.slots[0];
      return {
        openedAt: state.openedAt,
        firstImageMs: s?.timings?.firstImage !== undefined ? s.timings.firstImage - state.openedAt : undefined,
        allLoadedMs: s?.timings?.allLoaded !== undefined ? s.timings.allLoaded - state.openedAt : undefined,
        progress: s?.prefetcher?.progress,
        cached: s?.cachedCount(),
        cacheBytes: cache.getCacheSize(),
        // Frames made into images on the main thread / by Cornerstone's decode workers / left to its loader.
        loader: { ...loaderStats },
      };
    },
  };

  // ---- start ----
  applyLayout('1x1');
  slotFor(0).showMessage('Loading study…', 'info');
  let seriesList: DicomJson[];
  try {
    const [attrs, list] = await Promise.all([findStudy(studyUID), searchSeries(studyUID)]);
    state.studyAttrs = attrs;
    seriesList = list;
    performance.mark('lb:study-ready');
  } catch (e) {
    if (e instanceof HttpError && e.status === 401) return redirectToLogin();
    slotFor(0).showMessage(e instanceof HttpError && e.status === 0 ? 'The archive could not be reached. Check the connection and reload.' : `The study could not be loaded: ${(e as Error).message}`, 'error');
    return;
  }
  if (!state.studyAttrs && !seriesList.length) {
    slotFor(0).showMessage('Study not found. It may have been deleted, or you may not have access to it.', 'error');
    document.title = 'Study not found — Lightbox';
    grid.dataset.state = 'not-found';
    return;
  }
  const attrs = state.studyAttrs;
  studyTitle.textContent = [str(attrs, Tag.PatientName), str(attrs, Tag.StudyDescription), formatDate(str(attrs, Tag.StudyDate))].filter(Boolean).join(' · ');
  document.title = `${str(attrs, Tag.PatientName) || 'Study'} — Lightbox`;
  state.series = toSeriesInfo(seriesList);
  renderSeriesPanel();
  const first = pickInitialSeries(state.series);
  if (!first) {
    slotFor(0).showMessage('This study has no image series.', 'info');
    firstImageShown();
    return;
  }
  await showSeriesIn(0, first.seriesInstanceUID);
  firstImageShown();
}
