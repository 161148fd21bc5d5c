/**
 * The AI panel: lists the models that fit the study and runs one, follows every job of the study live
 * (progress, partial masks, detections, classifications; a viewer opened mid-job catches up from the
 * websocket snapshot), draws the segmentation as a Cornerstone labelmap that fills in slab by slab, lists the
 * detections (click: go to the slice and box it), shows classifications with their heatmap, and reloads stored
 * results from the archive when the study is reopened. Every string from the server goes in with textContent.
 */
import { cancelJob, listJobs, listModels, studyResults, submitJob } from '../../api/analysis';
import { HttpError, apiJson } from '../../api/http';
import type { SeriesInfo } from '../../api/dicomweb';
import type { EventBus, Unsubscribe } from '../../realtime/bus';
import { CONNECTION, ConnectionState } from '../../realtime/events';
import { clear, h, showBanner } from '../../util/dom';
import { loadSeries } from '../series';
import type { Slot } from '../slot';
import { DrawnHeatmap, SlotDecorations } from './decorations';
import { SeriesLabelmap } from './labelmap';
import { Vec3, colorizeHeatmap, describeDetection, seriesForModel, usableModels } from './mapping';
import { AiJob, AiModel, AiState, FINAL, MaskSlab, StudyResults, normalizeJob, toMaskSlab } from './model';

export interface AiHost {
  study: string;
  bus: EventBus;
  canRun: boolean;
  /** The viewport slots on screen. */
  slots(): Slot[];
  seriesList(): SeriesInfo[];
  /** The series in the active viewport. */
  shownSeries(): { seriesInstanceUID: string; modality: string } | undefined;
  /** Show an image of a series (by SOP Instance UID) or, in MPR, the point `world` (patient mm). */
  goTo(series: string, sop: string | undefined, world: Vec3 | undefined): Promise<void>;
}

export interface AiHooks {
  state: AiState;
  labelmaps: () => SeriesLabelmap[];
  labelled: (series?: string) => number;
  /** When the first labelled voxels were drawn (of `job`, or of any job). */
  firstOverlayAt: (job?: string) => number | undefined;
  heatmaps: () => { sourceSop: string; visible: boolean; opacity: number }[];
  ready: () => boolean;
}

export interface AiPanel {
  el: HTMLElement;
  /** Call after viewports change (series shown, layout, MPR on/off). */
  viewportsChanged(): void;
  /** Start loading models, jobs and stored results (after the first image is up). */
  start(): void;
  hooks: AiHooks;
  dispose(): void;
}

const STATUS_TEXT: Record<string, string> = { queued: 'Queued', running: 'Running', completed: 'Done', failed: 'Failed', canceled: 'Canceled' };

function errorText(e: unknown): string {
  if (e instanceof HttpError) {
    const body = e.body as Record<string, unknown> | undefined;
    if (body && typeof body === 'object') {
      const parts = Object.values(body).flatMap((v) => (Array.isArray(v) ? v : [v])).filter((v) => typeof v === 'string') as string[];
      if (parts.length) return parts.join(' ');
    }
    if (e.status === 0) return 'The server could not be reached.';
    return e.message;
  }
  return (e as Error)?.message ?? String(e);
}

function pngToHeatmap(png: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => {
      const c = document.createElement('canvas');
      c.width = img.naturalWidth;
      c.height = img.naturalHeight;
      const ctx = c.getContext('2d');
      if (!ctx) return reject(new Error('no 2-D canvas'));
      ctx.drawImage(img, 0, 0);
      const data = ctx.getImageData(0, 0, c.width, c.height);
      colorizeHeatmap(data.data);
      ctx.putImageData(data, 0, 0);
      resolve(c.toDataURL('image/png'));
    };
    img.onerror = () => reject(new Error('the heatmap image could not be decoded'));
    img.src = `data:image/png;base64,${png}`;
  });
}

export function mountAiPanel(host: AiHost): AiPanel {
  // ---- DOM ----
  const modelSelect = h('select', { id: 'ai-model', 'aria-label': 'AI model' }, h('option', { value: '' }, 'Loading models…'));
  modelSelect.disabled = true;
  const runBtn = h('button', { type: 'button', id: 'ai-run', class: 'primary', title: 'Run the model on this study' }, 'Run');
  runBtn.disabled = true;
  const note = h('div', { class: 'ai-note', id: 'ai-note', hidden: true });
  const status = h('div', { class: 'ai-status', id: 'ai-status' }, 'No analysis running.');
  const bar = h('progress', { max: 100, value: 0, hidden: true, id: 'ai-progress' });
  const jobList = h('ul', { class: 'ai-jobs', id: 'ai-jobs' });
  const legend = h('div', { class: 'ai-legend', id: 'ai-legend', hidden: true });
  const detList = h('ul', { class: 'ai-detections', id: 'ai-detections' });
  const boxesToggle = h('input', { type: 'checkbox', id: 'ai-boxes', checked: true, 'aria-label': 'Show detection boxes' }) as HTMLInputElement;
  const detSection = h('div', { class: 'ai-section', id: 'ai-findings', hidden: true }, h('h4', {}, 'Detections ', h('label', { class: 'ai-boxes', title: 'Show the boxes on the images' }, boxesToggle, ' boxes')), detList);
  const classSection = h('div', { class: 'ai-section', id: 'ai-classification', hidden: true });
  const el = h(
    'section',
    { class: 'panel ai-panel', id: 'ai-panel' },
    h('h3', {}, 'AI'),
    h('div', { class: 'ai-run' }, modelSelect, runBtn),
    note,
    status,
    bar,
    jobList,
    legend,
    detSection,
    classSection,
  );

  // ---- state ----
  let models: AiModel[] = [];
  let usable: AiModel[] = [];
  let connection: ConnectionState = 'connecting';
  let started = false;
  let ready = false;
  let selectedDet: string | undefined;
  let showBoxes = true;
  boxesToggle.addEventListener('change', () => {
    showBoxes = boxesToggle.checked;
    redrawDecorations();
  });
  const labelmaps = new Map<string, SeriesLabelmap>();
  const chains = new Map<string, Promise<unknown>>();
  const jobSeries = new Map<string, Promise<string | undefined>>();
  const heatmaps = new Map<string, DrawnHeatmap>(); // by source SOP Instance UID
  const decorations = new Map<Slot, SlotDecorations>();
  const heatmapsSeen = new Set<string>();

  const state = new AiState({
    jobs: () => scheduleRender(),
    findings: () => scheduleRender(),
    mask: (slab, job) => void applyMask(slab, job),
    finished: (job) => onFinished(job),
  });

  // ---- rendering of the panel (coalesced to one per frame) ----
  let renderQueued = false;
  function scheduleRender(): void {
    if (renderQueued) return;
    renderQueued = true;
    requestAnimationFrame(() => {
      renderQueued = false;
      try {
        renderJobs();
        renderFindings();
        redrawDecorations();
      } catch (e) {
        console.error('[lightbox] AI panel render failed', e);
      }
    });
  }

  const modelTitle = (name: string) => models.find((m) => m.name === name)?.title || name || 'Analysis';

  function renderJobs(): void {
    const jobs = state.list();
    const active = jobs.filter((j) => !FINAL.has(j.status));
    const lead = active[0];
    if (lead) {
      status.textContent = `${lead.model || 'Analysis'}: ${lead.status === 'queued' ? 'queued…' : `${Math.round(lead.progress)}%${lead.stage ? ` — ${lead.stage}` : ''}`}`;
      bar.hidden = false;
      bar.value = lead.progress;
    } else {
      bar.hidden = true;
      status.textContent = jobs.length ? 'No analysis running.' : 'No analysis run on this study yet.';
    }
    status.dataset.state = lead ? 'running' : jobs[0]?.status ?? 'idle';
    clear(jobList);
    for (const job of jobs.slice(0, 6)) {
      const li = h('li', { class: `ai-job ${job.status}`, 'data-job': job.id, 'data-status': job.status });
      const title = h('div', { class: 'ai-job-title', title: modelTitle(job.model) });
      title.textContent = job.model || 'analysis';
      const meta = h('div', { class: 'ai-job-meta' });
      const when = job.created ? new Date(job.created) : undefined;
      meta.textContent = [STATUS_TEXT[job.status] ?? job.status, !FINAL.has(job.status) && job.status !== 'queued' ? `${Math.round(job.progress)}%` : '', !FINAL.has(job.status) ? job.stage : '', job.trigger === 'auto' ? 'auto' : '', when && !Number.isNaN(when.getTime()) ? when.toLocaleTimeString() : ''].filter(Boolean).join(' · ');
      li.append(title, meta);
      if (!FINAL.has(job.status)) {
        li.appendChild(h('progress', { max: 100, value: job.progress }));
        if (host.canRun) {
          const cancel = h('button', { type: 'button', class: 'ai-cancel', title: 'Cancel this analysis' }, 'Cancel');
          cancel.addEventListener('click', () => void doCancel(job.id, cancel));
          li.appendChild(cancel);
        }
      }
      if (job.status === 'failed') {
        const reason = h('div', { class: 'ai-reason', role: 'alert' });
        reason.textContent = job.reason || 'The analysis failed (no reason given).';
        li.appendChild(reason);
      }
      jobList.appendChild(li);
    }
  }

  // DOM parts are rebuilt only when what they show changes (a slider being dragged must not be replaced).
  const signatures = new Map<string, string>();
  function changed(part: string, signature: unknown): boolean {
    const sig = JSON.stringify(signature);
    if (signatures.get(part) === sig) return false;
    signatures.set(part, sig);
    return true;
  }

  function legendHead(lm: SeriesLabelmap): string {
    const series = host.seriesList().find((s) => s.seriesInstanceUID === lm.series.series);
    const job = lm.job ? state.job(lm.job) : undefined;
    const live = lm.origin === 'live' && (!job || !FINAL.has(job.status));
    return `Segmentation${series?.description ? ` — ${series.description}` : ''}${live ? ` (filling in: ${lm.written.size}/${lm.imageIds.length} slices)` : lm.origin === 'archive' ? ' (stored)' : ''}`;
  }

  function renderLegend(): void {
    const maps = [...labelmaps.values()].filter((m) => m.segments.size);
    if (!changed('legend', maps.map((m) => [m.series.series, [...m.segments.keys()]]))) {
      maps.forEach((lm, i) => {
        const head = legend.querySelectorAll('h4')[i];
        if (head) head.textContent = legendHead(lm);
      });
      return;
    }
    clear(legend);
    legend.hidden = !maps.length;
    for (const lm of maps) {
      const head = h('h4', {});
      head.textContent = legendHead(lm);
      legend.appendChild(head);
      for (const s of [...lm.segments.values()].sort((a, b) => a.value - b.value)) {
        const check = h('input', { type: 'checkbox', 'data-segment': s.name, 'aria-label': `Show ${s.name}` }) as HTMLInputElement;
        check.checked = s.visible;
        check.addEventListener('change', () => lm.setVisible(s.value, check.checked));
        const alpha = h('input', { type: 'range', min: 0, max: 100, value: Math.round(s.alpha * 100), class: 'ai-alpha', 'data-segment': s.name, 'aria-label': `${s.name} opacity`, title: 'Opacity' }) as HTMLInputElement;
        alpha.addEventListener('input', () => lm.setAlpha(s.value, Number(alpha.value) / 100));
        const swatch = h('span', { class: 'swatch' });
        swatch.style.background = `rgb(${s.color.join(',')})`;
        const name = h('span', { class: 'seg-name' });
        name.textContent = s.name;
        legend.appendChild(h('label', { class: 'ai-seg' }, check, swatch, name, alpha));
      }
    }
  }

  function renderFindings(): void {
    renderLegend();
    const findings = state.findings();
    const running = state.currentJobs().some((j) => !FINAL.has(j.status));
    renderClassifications();
    if (!changed('findings', [findings.map((f) => [f.job.id, f.detection]), selectedDet, running])) return;
    detSection.hidden = !findings.length && !state.currentJobs().some((j) => j.model && models.find((m) => m.name === j.model)?.task.includes('detection'));
    clear(detList);
    if (!findings.length) {
      detList.appendChild(h('li', { class: 'empty' }, running ? 'None yet…' : 'No findings.'));
    }
    for (const { job, detection: d } of findings) {
      const key = `${job.id}:${d.id}`;
      const t = describeDetection(d);
      const title = h('span', { class: 'det-title' });
      title.textContent = t.title;
      const size = h('span', { class: 'det-size' });
      size.textContent = t.size;
      const vol = h('span', { class: 'det-volume' });
      vol.textContent = t.volume;
      const score = h('span', { class: 'det-score' });
      score.textContent = t.score;
      const li = h('li', { 'data-det': key, tabindex: 0, class: key === selectedDet ? 'selected' : '', title: 'Go to the slice and show the box' }, title, size, vol, score);
      const go = () => {
        selectedDet = key;
        showBoxes = boxesToggle.checked = true;
        void host.goTo(job.series, d.long_axis_sop_instance_uid || d.center_sop_instance_uid, d.center_mm as Vec3 | undefined).finally(() => scheduleRender());
        scheduleRender();
      };
      li.addEventListener('click', go);
      li.addEventListener('keydown', (e) => e.key === 'Enter' && go());
      detList.appendChild(li);
    }
  }

  function renderClassifications(): void {
    const list = state.classificationsList();
    const maps = [...heatmaps.values()];
    if (!changed('classes', [list.map((c) => [c.job.id, c.job.status, c.classification]), maps.map((m) => m.sourceSop)])) return;
    classSection.hidden = !list.length && !maps.length;
    clear(classSection);
    if (classSection.hidden) return;
    classSection.appendChild(h('h4', {}, 'Classification'));
    for (const { job, classification: c } of list) {
      const line = h('div', { class: `ai-class ${c.positive ? 'positive' : 'negative'}`, 'data-job': job.id });
      // Streamed classifications name their label; a stored job's summary may not (then: the model).
      const named = c.label && c.label !== 'finding';
      const what = named ? `${c.label[0].toUpperCase()}${c.label.slice(1)}: ${c.positive ? 'present' : 'absent'}` : `${job.model || 'Classifier'}: ${c.positive ? 'positive' : 'negative'}`;
      line.textContent = `${what} (p = ${c.probability.toFixed(2)}, threshold ${c.threshold.toFixed(2)}) `;
      const show = h('button', { type: 'button', class: 'ai-show', title: 'Show the image' }, 'Show');
      show.addEventListener('click', () => void host.goTo(job.series, c.sop_instance_uid, undefined));
      line.appendChild(show);
      classSection.appendChild(line);
    }
    // One row per heatmap (keyed by its source image): visibility and opacity.
    maps.forEach((hm, i) => {
      const toggle = h('input', { type: 'checkbox', class: 'ai-heat-toggle', 'aria-label': 'Show the heatmap' }) as HTMLInputElement;
      toggle.checked = hm.visible;
      toggle.addEventListener('change', () => {
        hm.visible = toggle.checked;
        redrawDecorations();
      });
      const slider = h('input', { type: 'range', class: 'ai-heat-opacity', min: 0, max: 100, value: Math.round(hm.opacity * 100), 'aria-label': 'Heatmap opacity', title: 'Opacity' }) as HTMLInputElement;
      slider.addEventListener('input', () => {
        hm.opacity = Number(slider.value) / 100;
        redrawDecorations();
      });
      classSection.appendChild(h('label', { class: 'ai-heat', 'data-sop': hm.sourceSop }, toggle, maps.length > 1 ? ` Heatmap ${i + 1} ` : ' Heatmap ', slider));
    });
  }

  // ---- decorations (boxes, heatmaps) ----
  function decorationState() {
    return {
      showBoxes,
      detections: state.findings().map(({ job, detection }) => ({ key: `${job.id}:${detection.id}`, series: job.series, detection, selected: `${job.id}:${detection.id}` === selectedDet })),
      heatmaps: [...heatmaps.values()],
    };
  }

  function redrawDecorations(): void {
    for (const d of decorations.values()) d.redraw();
  }

  // ---- masks ----
  function seriesOfJob(jobId: string): Promise<string | undefined> {
    const known = state.job(jobId)?.series;
    if (known) return Promise.resolve(known);
    let p = jobSeries.get(jobId);
    if (!p) {
      p = apiJson<Record<string, unknown>>(`/api/analysis/jobs/${encodeURIComponent(jobId)}/`)
        .then((raw) => {
          const job = normalizeJob(raw);
          if (job) state.upsert(job);
          return job?.series || undefined;
        })
        .catch(() => undefined);
      jobSeries.set(jobId, p);
    }
    return p;
  }

  async function labelmapFor(seriesUid: string): Promise<SeriesLabelmap> {
    let lm = labelmaps.get(seriesUid);
    if (!lm) {
      const series = await loadSeries(host.study, seriesUid);
      lm = labelmaps.get(seriesUid) ?? new SeriesLabelmap(series);
      labelmaps.set(seriesUid, lm);
    }
    return lm;
  }

  /** Apply masks of one series in arrival order. */
  function enqueue(seriesUid: string, task: () => Promise<void> | void): Promise<void> {
    const prev = chains.get(seriesUid) ?? Promise.resolve();
    const next = prev.then(task).catch((e) => {
      console.error('[lightbox] could not draw an AI mask', e);
      showNote(`A segmentation slab could not be drawn: ${(e as Error).message}`, 'error');
    });
    chains.set(seriesUid, next);
    return next;
  }

  async function applyMask(slab: MaskSlab, job: AiJob | undefined): Promise<void> {
    const seriesUid = slab.series || job?.series || (await seriesOfJob(slab.job));
    if (!seriesUid) {
      console.warn('[lightbox] mask of an unknown job', slab.job);
      return;
    }
    await enqueue(seriesUid, async () => {
      const lm = await labelmapFor(seriesUid);
      // A stored segmentation never replaces the live one of this session.
      if (slab.origin === 'archive' && lm.origin === 'live') return;
      const before = lm.segments.size;
      const out = lm.write(slab);
      if (out.missing) console.warn(`[lightbox] ${out.missing} mask slice(s) name images that are not in series ${seriesUid}`);
      if (lm.segments.size !== before || lm.attachedViewportIds().length === 0) syncViewports();
      scheduleRender();
    });
  }

  function syncViewports(): void {
    const slots = host.slots();
    const visibleIds = new Set(slots.map((s) => s.viewportId));
    for (const lm of labelmaps.values()) {
      for (const id of lm.attachedViewportIds()) if (!visibleIds.has(id)) lm.detach(id);
      for (const s of slots) {
        const vp = s.viewport();
        // An MPR plane gets the labelmap once its volume is set (the message goes then).
        if (s.kind === 'mpr' && !s.message.hidden) continue;
        if (vp && s.kind !== 'empty' && s.series?.series === lm.series.series) {
          try {
            lm.attach(vp);
          } catch (e) {
            console.warn('[lightbox] the segmentation could not be shown on', s.viewportId, e);
          }
        } else {
          lm.detach(s.viewportId);
        }
      }
    }
    for (const s of slots) if (!decorations.has(s)) decorations.set(s, new SlotDecorations(s, decorationState));
    redrawDecorations();
  }

  // ---- stored results ----
  let resultsTimer: ReturnType<typeof setTimeout> | undefined;
  function scheduleResults(delay = 300): void {
    clearTimeout(resultsTimer);
    resultsTimer = setTimeout(() => void loadResults(), delay);
  }

  async function loadResults(): Promise<void> {
    let res: StudyResults;
    try {
      res = await studyResults(host.study);
    } catch (e) {
      showNote(`Stored AI results could not be loaded: ${errorText(e)}`, 'error');
      return;
    }
    if (Array.isArray(res.jobs)) state.applyJobs(res.jobs);
    const seenSeries = new Set<string>();
    for (const seg of res.segmentations ?? []) {
      const series = seg.source_series_instance_uid;
      if (!series || seenSeries.has(series)) continue; // newest first: one per series
      seenSeries.add(series);
      try {
        const slab = toMaskSlab(seg as never, `archive:${seg.sop_instance_uid}`, 'archive', series);
        void applyMask(slab, undefined);
      } catch (e) {
        console.warn('[lightbox] ignoring a stored segmentation', e);
      }
    }
    for (const hm of res.heatmaps ?? []) {
      if (!hm.png || !hm.source_sop_instance_uid || heatmapsSeen.has(hm.sop_instance_uid)) continue; // each stored map once
      try {
        const href = await pngToHeatmap(hm.png);
        const old = heatmaps.get(hm.source_sop_instance_uid);
        heatmaps.set(hm.source_sop_instance_uid, { sourceSop: hm.source_sop_instance_uid, href, rows: hm.shape[0], columns: hm.shape[1], opacity: old?.opacity ?? 0.5, visible: old?.visible ?? true });
        heatmapsSeen.add(hm.sop_instance_uid);
      } catch (e) {
        console.warn('[lightbox] heatmap', e);
      }
    }
    ready = true;
    scheduleRender();
  }

  // ---- actions ----
  let noteTimer: ReturnType<typeof setTimeout> | undefined;
  function showNote(text: string, kind: 'error' | 'info' = 'info', ms = 0): void {
    note.textContent = text;
    note.dataset.kind = kind;
    note.hidden = false;
    clearTimeout(noteTimer);
    if (ms) noteTimer = setTimeout(() => (note.hidden = true), ms);
  }

  async function doRun(): Promise<void> {
    const model = models.find((m) => m.name === modelSelect.value);
    if (!model) return;
    runBtn.disabled = true;
    const shown = host.shownSeries();
    const series = seriesForModel(model, shown);
    try {
      const raw = await submitJob(host.study, model.name, series);
      const job = normalizeJob(raw);
      if (job) {
        state.upsert(job);
        scheduleRender();
      }
      note.hidden = true;
    } catch (e) {
      showNote(`The analysis could not be started: ${errorText(e)}`, 'error');
    } finally {
      runBtn.disabled = !host.canRun || !usable.length;
    }
  }

  async function doCancel(id: string, button: HTMLButtonElement): Promise<void> {
    button.disabled = true;
    try {
      const job = normalizeJob(await cancelJob(id));
      if (job) state.upsert(job);
      scheduleRender();
    } catch (e) {
      showNote(`The analysis could not be canceled: ${errorText(e)}`, 'error');
      button.disabled = false;
    }
  }
  runBtn.addEventListener('click', () => void doRun());

  function onFinished(job: AiJob): void {
    if (job.status === 'failed' || job.status === 'canceled') {
      // Its partial masks go; the stored result of an earlier run (if any) comes back from the archive.
      let dropped = false;
      for (const lm of labelmaps.values()) {
        if (lm.job !== job.id) continue;
        void enqueue(lm.series.series, () => lm.reset());
        dropped = true;
      }
      if (dropped) scheduleResults(200);
    }
    if (job.status === 'failed') {
      showBanner(`${modelTitle(job.model)} failed: ${job.reason || 'no reason given'}`, 'error', 12000);
    } else if (job.status === 'completed') {
      // Heatmaps (and segmentations this viewer did not see stream) come from the archive.
      scheduleResults(200);
    }
    scheduleRender();
  }

  function fillModels(): void {
    const modalities = new Set(host.seriesList().map((s) => s.modality).filter(Boolean));
    usable = usableModels(models, modalities);
    const chosen = modelSelect.value;
    clear(modelSelect);
    if (!usable.length) {
      modelSelect.appendChild(h('option', { value: '' }, 'No model for this study'));
      showNote(`No installed model reads ${[...modalities].join('/') || 'these'} images (models: ${models.map((m) => `${m.name} (${m.modalities.join('/')})`).join(', ') || 'none'}).`);
    }
    const shown = host.shownSeries()?.modality?.toUpperCase();
    for (const m of usable) {
      const opt = h('option', { value: m.name, title: `${m.task}, version ${m.version}` });
      opt.textContent = m.title || m.name;
      modelSelect.appendChild(opt);
    }
    const preferred = usable.find((m) => m.name === chosen) ?? usable.find((m) => shown && m.modalities.some((x) => x.toUpperCase() === shown));
    if (preferred) modelSelect.value = preferred.name;
    modelSelect.disabled = !usable.length;
    runBtn.disabled = !host.canRun || !usable.length;
    if (!host.canRun) runBtn.title = 'Your role may not start analyses';
  }

  async function start(): Promise<void> {
    if (started) return;
    started = true;
    const [m, jobs] = await Promise.allSettled([listModels(), listJobs(host.study)]);
    if (m.status === 'fulfilled') {
      models = m.value;
      fillModels();
    } else {
      clear(modelSelect);
      modelSelect.appendChild(h('option', { value: '' }, 'Models unavailable'));
      showNote(`The list of models could not be loaded: ${errorText(m.reason)}`, 'error');
    }
    if (jobs.status === 'fulfilled') state.applyJobs(jobs.value);
    await loadResults();
  }

  // ---- bus ----
  const subs: Unsubscribe[] = [];
  subs.push(
    host.bus.subscribeAll((msg) => {
      if (msg.event === 'snapshot' || msg.event.startsWith('analysis.')) state.handle(msg);
      if (msg.event === 'study.stored' && models.length) fillModels();
    }),
  );
  subs.push(
    host.bus.subscribe(CONNECTION, (s) => {
      connection = s;
    }),
  );
  // Without live updates (socket refused or down), poll while a job is unfinished.
  const poll = setInterval(() => {
    if (connection === 'open' || !started || !state.active().length) return;
    void listJobs(host.study)
      .then((list) => {
        const before = new Map(state.list().map((j) => [j.id, j.status]));
        state.applyJobs(list);
        for (const j of state.list()) if (FINAL.has(j.status) && before.get(j.id) && !FINAL.has(before.get(j.id)!)) onFinished(j);
      })
      .catch(() => undefined);
  }, 3000);

  renderJobs();

  return {
    el,
    viewportsChanged: () => {
      try {
        syncViewports();
      } catch (e) {
        console.error('[lightbox] AI overlay sync failed', e);
      }
    },
    start: () => void start().catch((e) => showNote(`The AI panel could not start: ${errorText(e)}`, 'error')),
    hooks: {
      state,
      labelmaps: () => [...labelmaps.values()],
      labelled: (series) => [...labelmaps.values()].filter((l) => !series || l.series.series === series).reduce((n, l) => n + l.labelled(), 0),
      firstOverlayAt: (job) => {
        const t = Math.min(...[...labelmaps.values()].map((l) => (job ? l.firstLabelledByJob.get(job) : l.firstLabelledAt) ?? Infinity));
        return Number.isFinite(t) ? t : undefined;
      },
      heatmaps: () => [...heatmaps.values()].map((x) => ({ sourceSop: x.sourceSop, visible: x.visible, opacity: x.opacity })),
      ready: () => ready,
    },
    dispose: () => {
      subs.forEach((u) => u());
      clearInterval(poll);
      clearTimeout(resultsTimer);
      for (const d of decorations.values()) d.dispose();
    },
  };
}
