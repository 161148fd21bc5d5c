/**
 * One viewport cell of the grid: the Cornerstone element, its overlay, slice slider, progress bar and
 * messages. A slot shows either a stack of one series or one plane of an MPR.
 */
import { Enums, RenderingEngine, Types, cache, eventTarget, imageLoader } from '@cornerstonejs/core';
import { DicomJson } from '../api/dicomjson';
import { h } from '../util/dom';
import { Overlay } from './overlay';
import { Prefetcher, PrefetchProgress } from './prefetch';
import { LoadedSeries } from './series';
import { windowFromRange } from './presets';
import { tuning } from './cornerstone';
import { imageProblem, transferSyntaxName } from './validate';

export type SlotKind = 'empty' | 'stack' | 'mpr';

export interface SlotTimings {
  requested: number;
  firstImage?: number;
  /** The pipeline that drew the first image (the page's first is drawn on the CPU: cornerstone.ts). */
  firstRenderer?: 'cpu' | 'gpu';
  allLoaded?: number;
}

export class Slot {
  readonly host: HTMLElement;
  readonly element: HTMLDivElement;
  readonly overlay = new Overlay();
  readonly slider: HTMLInputElement;
  readonly progress: HTMLElement;
  readonly message: HTMLElement;
  readonly viewportId: string;
  kind: SlotKind = 'empty';
  series?: LoadedSeries;
  prefetcher?: Prefetcher;
  orientation?: string;
  timings?: SlotTimings;
  private listeners: [EventTarget, string, EventListener][] = [];
  private generation = 0;
  /** The showStack in progress, if any (the switch to WebGL waits for it: see moveToGpu). */
  busy?: Promise<void>;
  /** What a CPU-drawn stack showed when it was first drawn, to tell the user's changes from defaults. */
  private cpuBaseline?: { voi: string; invert: boolean; presentation: string };

  constructor(
    readonly index: number,
    private readonly engine: RenderingEngine,
    private readonly studyAttrs: () => DicomJson | undefined,
  ) {
    this.viewportId = `vp-${index}`;
    this.element = h('div', { class: 'cs-element', 'data-viewport': this.viewportId }) as HTMLDivElement;
    this.element.addEventListener('contextmenu', (e) => e.preventDefault());
    this.slider = h('input', { type: 'range', class: 'slice-slider', min: 1, max: 1, value: 1, 'aria-label': 'Slice', orient: 'vertical' });
    this.progress = h('div', { class: 'load-progress', hidden: true }, h('div', { class: 'bar' }), h('span', { class: 'label' }));
    this.message = h('div', { class: 'slot-message', hidden: true, role: 'alert' });
    this.host = h('div', { class: 'slot', 'data-slot': index }, this.element, this.overlay.el, this.slider, this.progress, this.message);
    this.slider.addEventListener('input', () => {
      const vp = this.stackViewport();
      if (vp) void vp.setImageIdIndex(Number(this.slider.value) - 1).catch(() => undefined);
    });
    this.showMessage('Drag a series here, or click one in the series list.', 'hint');
  }

  viewport(): Types.IViewport | undefined {
    try {
      return this.engine.getViewport(this.viewportId);
    } catch {
      return undefined;
    }
  }

  /** Which of Cornerstone's pipelines draws this slot (for tests and the benchmark). */
  renderer(): 'cpu' | 'gpu' | undefined {
    const vp = this.viewport();
    if (!vp) return undefined;
    return this.kind === 'stack' && isCpuDrawn(vp as Types.IStackViewport) ? 'cpu' : 'gpu';
  }

  stackViewport(): Types.IStackViewport | undefined {
    return this.kind === 'stack' ? (this.viewport() as Types.IStackViewport | undefined) : undefined;
  }

  showMessage(text: string, kind: 'hint' | 'error' | 'info' = 'info'): void {
    delete this.message.dataset.reason;
    this.message.textContent = text;
    this.message.dataset.kind = kind;
    this.message.hidden = false;
  }

  hideMessage(): void {
    this.message.hidden = true;
  }

  private on(target: EventTarget, type: string, fn: EventListener): void {
    target.addEventListener(type, fn);
    this.listeners.push([target, type, fn]);
  }

  /**
   * Tear down whatever the slot shows (listeners, prefetch, Cornerstone viewport). With `keepStack`, a stack
   * viewport stays enabled for the next setStack: disabling one while its image is still loading and
   * enabling a new one under the same ID can leave the canvas black.
   */
  clear(keepStack = false): void {
    this.generation++;
    for (const [t, type, fn] of this.listeners) t.removeEventListener(type, fn);
    this.listeners = [];
    this.prefetcher?.stop();
    this.prefetcher = undefined;
    const keep = keepStack && this.kind === 'stack' && !!this.viewport();
    if (this.viewport() && !keep) this.engine.disableElement(this.viewportId);
    this.kind = keep ? 'stack' : 'empty';
    this.series = undefined;
    this.orientation = undefined;
    this.slider.hidden = true;
    this.progress.hidden = true;
    this.overlay.update({ index: 0, total: 0 });
  }

  /** Show a series as a stack, first the image at `startIndex`, then everything around it. */
  showStack(series: LoadedSeries, startIndex: number, onProgress?: (p: PrefetchProgress) => void): Promise<void> {
    const run = this.showStackNow(series, startIndex, onProgress);
    const busy = run.finally(() => {
      if (this.busy === busy) this.busy = undefined;
    });
    this.busy = busy;
    return busy;
  }

  private async showStackNow(series: LoadedSeries, startIndex: number, onProgress?: (p: PrefetchProgress) => void): Promise<void> {
    const reuse = this.kind === 'stack' && !!this.viewport() && series.imageIds.length > 0;
    this.clear(reuse);
    const gen = this.generation;
    this.timings = { requested: performance.now() };
    this.kind = 'stack';
    this.series = series;
    if (!series.imageIds.length) {
      this.showMessage('This series holds no images (for example a structured report).', 'info');
      return;
    }
    // Ask for the first image before setting up the viewport: its fetch and decode then overlap with the
    // WebGL set-up of a new viewport.
    performance.mark('lb:first-request');
    const first = imageLoader.loadAndCacheImage(series.imageIds[startIndex]);
    first.catch(() => undefined);
    if (!reuse) {
      this.engine.enableElement({
        viewportId: this.viewportId,
        type: Enums.ViewportType.STACK,
        element: this.element,
        defaultOptions: { background: [0, 0, 0] },
      });
    }
    this.hideMessage();
    this.showMessage('Loading…', 'info');
    const vp = this.viewport() as Types.IStackViewport;
    const n = series.imageIds.length;
    this.slider.max = String(n);
    this.slider.value = String(startIndex + 1);
    this.slider.hidden = n < 2;

    this.on(this.element, Enums.Events.STACK_NEW_IMAGE, ((e: CustomEvent) => {
      const idx = e.detail.imageIdIndex as number;
      this.slider.value = String(idx + 1);
      this.prefetcher?.setFocus(idx);
      this.updateOverlay();
      this.checkCurrentImage();
    }) as EventListener);
    this.on(this.element, Enums.Events.VOI_MODIFIED, () => this.updateOverlay());
    this.on(this.element, Enums.Events.CAMERA_MODIFIED, () => this.updateOverlay());
    this.on(eventTarget, Enums.Events.IMAGE_LOAD_FAILED, ((e: CustomEvent) => {
      const id = e.detail?.imageId as string | undefined;
      if (id && id === this.stackViewport()?.getCurrentImageId()) this.showDecodeError(e.detail?.error);
    }) as EventListener);

    try {
      await vp.setStack(series.imageIds, startIndex);
    } catch (err) {
      if (gen !== this.generation) return;
      this.showDecodeError(err);
      return;
    }
    if (gen !== this.generation) return;
    // render() only flags the viewport for the next animation frame. Wait until that frame has drawn it (and
    // the browser has had its turn to paint) before prefetch and the caller's follow-up work (the tools chunk)
    // start: their responses and module evaluation would otherwise hold up that very frame.
    const drawn = paintedAfterRender(this.element);
    vp.render();
    this.hideMessage();
    this.checkCurrentImage();
    this.updateOverlay();
    await drawn;
    if (gen !== this.generation) return;
    this.cpuBaseline = isCpuDrawn(vp) ? viewState(vp) : undefined;
    this.timings.firstRenderer = this.renderer();
    this.timings.firstImage = performance.now();
    performance.mark('lb:first-image');

    this.prefetcher = new Prefetcher(series.imageIds, (p) => {
      this.renderProgress(p);
      if (p.done && this.timings && !this.timings.allLoaded) this.timings.allLoaded = performance.now();
      onProgress?.(p);
    }, tuning('prefetch', 10), (imageId, image) => imageProblem(image as never, series.instanceOf.get(imageId)));
    this.prefetcher.start(startIndex);
  }

  /**
   * Re-create a stack viewport that Cornerstone drew on the CPU (the page's first image, cornerstone.ts
   * `cpuForFirstImage`) as a WebGL one, keeping its slice, window, invert, zoom, pan, rotation and flip. The
   * caller switches the default first (`gpuFromNowOn`) and calls this in the same task for every slot: from
   * then on a CPU viewport would be rendered down the WebGL path. A copy of the picture covers the canvas until
   * the WebGL viewport has drawn, so nothing blinks.
   */
  async moveToGpu(): Promise<void> {
    const vp = this.stackViewport();
    if (!vp || !isCpuDrawn(vp)) return;
    const imageIds = vp.getImageIds();
    const index = vp.getCurrentImageIdIndex();
    // Only what the user changed is carried over: the two pipelines keep some defaults differently (the CPU
    // one folds MONOCHROME1 into its lookup table, the WebGL one inverts), so copying them would undo them.
    const now = viewState(vp);
    const base = this.cpuBaseline;
    const voi = !base || now.voi !== base.voi ? vp.getProperties().voiRange : undefined;
    const flipInvert = !!base && now.invert !== base.invert;
    const presentation = !base || now.presentation !== base.presentation ? vp.getViewPresentation() : undefined;
    this.cpuBaseline = undefined;
    const cover = this.coverWith(vp.getCanvas());
    const gen = this.generation;
    try {
      this.engine.enableElement({
        viewportId: this.viewportId,
        type: Enums.ViewportType.STACK,
        element: this.element,
        defaultOptions: { background: [0, 0, 0] },
      });
      if (!imageIds.length) return;
      const gpu = this.viewport() as Types.IStackViewport;
      await gpu.setStack(imageIds, index);
      if (gen !== this.generation) return;
      if (voi) gpu.setProperties({ voiRange: voi });
      if (flipInvert) gpu.setProperties({ invert: !gpu.getProperties().invert });
      if (presentation) gpu.setViewPresentation(presentation);
      const drawn = paintedAfterRender(this.element);
      gpu.render();
      await drawn;
      this.updateOverlay();
    } catch (err) {
      if (gen === this.generation) this.showDecodeError(err);
    } finally {
      cover?.remove();
    }
  }

  /** A still copy of `canvas` laid over the viewport (removed by the caller). */
  private coverWith(canvas: HTMLCanvasElement): HTMLCanvasElement | undefined {
    if (!canvas.width || !canvas.height) return undefined;
    const cover = document.createElement('canvas');
    cover.className = 'render-cover';
    cover.width = canvas.width;
    cover.height = canvas.height;
    cover.getContext('2d')?.drawImage(canvas, 0, 0);
    this.element.after(cover);
    return cover;
  }

  /** Say so when the image on screen did not decode (the loader does not always report it). */
  private checkCurrentImage(): void {
    const vp = this.stackViewport();
    if (!vp || !this.series) return;
    const id = vp.getCurrentImageId();
    const image = cache.getImage(id) as unknown as { transferSyntaxUID?: string } | undefined;
    const problem = imageProblem(image as never, this.series.instanceOf.get(id));
    if (problem) {
      this.showMessage(`This image could not be decoded (${transferSyntaxName(image?.transferSyntaxUID)}): ${problem}.`, 'error');
      this.message.dataset.reason = 'decode';
    } else if (this.message.dataset.reason === 'decode') {
      delete this.message.dataset.reason;
      this.hideMessage();
    }
  }

  private showDecodeError(err: unknown): void {
    const detail = (err as { message?: string; error?: { message?: string } })?.message ?? (err as { error?: { message?: string } })?.error?.message ?? '';
    const status = (err as { status?: number; request?: { status?: number } })?.request?.status ?? (err as { status?: number })?.status;
    const text =
      status === 0 || (typeof navigator !== 'undefined' && !navigator.onLine)
        ? 'The image could not be fetched: the connection to the server was lost.'
        : status && status >= 400
          ? `The image could not be fetched (HTTP ${status}).`
          : `This image could not be decoded${detail ? `: ${detail}` : '.'}`;
    this.showMessage(text, 'error');
  }

  private renderProgress(p: PrefetchProgress): void {
    const bar = this.progress.querySelector('.bar') as HTMLElement;
    const label = this.progress.querySelector('.label') as HTMLElement;
    const pct = p.total ? Math.round(((p.loaded + p.failed) / p.total) * 100) : 100;
    bar.style.width = `${pct}%`;
    label.textContent = p.failed ? `${p.loaded}/${p.total} (${p.failed} failed)` : `${p.loaded}/${p.total}`;
    this.progress.hidden = p.done && !p.failed;
    this.progress.dataset.done = String(p.done);
  }

  /** Show one plane of a volume (MPR). The caller sets the volume on all three planes together. */
  enableOrthographic(orientation: 'axial' | 'sagittal' | 'coronal', series: LoadedSeries): void {
    this.clear();
    this.kind = 'mpr';
    this.series = series;
    this.orientation = orientation;
    const axis = { axial: Enums.OrientationAxis.AXIAL, sagittal: Enums.OrientationAxis.SAGITTAL, coronal: Enums.OrientationAxis.CORONAL }[orientation];
    this.engine.enableElement({
      viewportId: this.viewportId,
      type: Enums.ViewportType.ORTHOGRAPHIC,
      element: this.element,
      defaultOptions: { orientation: axis, background: [0, 0, 0] },
    });
    this.hideMessage();
    this.on(this.element, Enums.Events.VOI_MODIFIED, () => this.updateOverlay());
    this.on(this.element, Enums.Events.CAMERA_MODIFIED, () => this.updateOverlay());
    this.on(this.element, Enums.Events.VOLUME_NEW_IMAGE, () => this.updateOverlay());
  }

  updateOverlay(): void {
    const vp = this.viewport();
    if (!vp || !this.series) return;
    let instance: DicomJson | undefined;
    let index = 0;
    let total = 0;
    let window: { width: number; center: number } | undefined;
    let invert = false;
    try {
      const props = (vp as Types.IStackViewport).getProperties() as { voiRange?: { lower: number; upper: number }; invert?: boolean };
      if (props.voiRange) window = windowFromRange(props.voiRange);
      invert = !!props.invert;
    } catch {
      /* not ready */
    }
    if (this.kind === 'stack') {
      const s = vp as Types.IStackViewport;
      index = s.getCurrentImageIdIndex();
      total = this.series.imageIds.length;
      instance = this.series.instanceOf.get(s.getCurrentImageId());
    } else {
      instance = this.series.instanceOf.get(this.series.imageIds[0]);
      try {
        const v = vp as Types.IVolumeViewport;
        index = v.getSliceIndex();
        total = v.getNumberOfSlices();
      } catch {
        /* not ready */
      }
    }
    let zoom: number | undefined;
    try {
      zoom = (vp as Types.IStackViewport).getZoom();
    } catch {
      zoom = undefined;
    }
    this.overlay.update({
      patient: this.studyAttrs(),
      instance,
      index,
      total,
      window,
      zoom,
      invert,
      orientation: this.orientation ? this.orientation[0].toUpperCase() + this.orientation.slice(1) : undefined,
    });
  }

  /** For tests and the benchmark: how much of the stack is in the cache. */
  cachedCount(): number {
    return this.series ? this.series.imageIds.filter((id) => !!cache.getImage(id)).length : 0;
  }
}

/** Whether Cornerstone draws this stack with its CPU pipeline (`useCPURendering` is private in its typings). */
function isCpuDrawn(vp: Types.IStackViewport): boolean {
  return !!(vp as unknown as { useCPURendering?: boolean }).useCPURendering;
}

/** The parts of a stack's view the user can change before the tools are in (window, invert, rotate, flip). */
function viewState(vp: Types.IStackViewport): { voi: string; invert: boolean; presentation: string } {
  const p = vp.getProperties();
  return { voi: JSON.stringify(p.voiRange ?? null), invert: !!p.invert, presentation: JSON.stringify(vp.getViewPresentation()) };
}

/**
 * Resolves once Cornerstone has rendered `element` (its IMAGE_RENDERED event, fired in an animation frame) and
 * the next animation frame has begun, i.e. the drawn frame has been presented; after `timeoutMs` in any case,
 * so a viewport that never reports a render cannot hold the caller back.
 */
export function paintedAfterRender(element: HTMLElement, timeoutMs = 1000): Promise<void> {
  return new Promise((resolve) => {
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      element.removeEventListener(Enums.Events.IMAGE_RENDERED, onRendered);
      clearTimeout(timer);
      requestAnimationFrame(() => setTimeout(resolve, 0));
    };
    const onRendered = () => finish();
    element.addEventListener(Enums.Events.IMAGE_RENDERED, onRendered);
    const timer = setTimeout(finish, timeoutMs);
  });
}

