// Live AI benchmark: in headless Chromium, open the viewer on a study, click Run in the AI panel, and time
//   - the first analysis.partial event and the first partial overlay (labelled voxels drawn into the labelmap,
//     and visible: coloured pixels on the canvas once the viewport shows the labelled slice),
//   - analysis.done,
//   - the event latency: the browser's receipt (Date.now()) minus the server's event `time` (epoch seconds),
//     per event kind (same machine, same clock).
//
//   node bench/ai_live_bench.mjs --server http://127.0.0.1:8010 --user rad --password ... [--runs 1]
//        [--patient Phantom^Chest] [--model chest-ct-nodules] [--timeout 300] [--json bench/out/ai_live.json]
// (tests/browser/run.sh --ai-bench runs it against the test server.)
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const here = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(here, '..');
const require = createRequire(path.join(ROOT, 'frontend', 'package.json'));
const { chromium } = require('playwright-core');

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => {
    if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1] && !all[i + 1].startsWith('--') ? all[i + 1] : true]);
    return acc;
  }, []),
);
const SERVER = (args.server ?? process.env.LIGHTBOX_URL ?? 'http://127.0.0.1:8010').replace(/\/$/, '');
const USER = args.user ?? process.env.LIGHTBOX_USER ?? 'rad';
const PASSWORD = args.password ?? process.env.LIGHTBOX_PASSWORD ?? 'rad-pass-123';
const RUNS = Number(args.runs ?? 1);
const PATIENT = args.patient ?? 'Phantom^Chest';
const MODEL = args.model ?? 'chest-ct-nodules';
const TIMEOUT_MS = Number(args.timeout ?? 300) * 1000;
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--use-angle=swiftshader', '--enable-unsafe-swiftshader'];

const stats = (xs) => {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return { n: 0 };
  const q = (p) => v[Math.min(v.length - 1, Math.max(0, Math.ceil(p * v.length) - 1))];
  return { n: v.length, median: q(0.5), p95: q(0.95), max: v[v.length - 1], min: v[0] };
};
const ms = (x) => (x === undefined || x === null || !Number.isFinite(x) ? '   n/a' : `${x.toFixed(0).padStart(6)} ms`);

async function login(context) {
  const page = await context.newPage();
  await page.goto(`${SERVER}/accounts/login/`);
  await page.fill('input[name=username]', USER);
  await page.fill('input[name=password]', PASSWORD);
  await Promise.all([page.waitForURL((u) => !u.pathname.startsWith('/accounts/login')), page.click('button[type=submit], input[type=submit]')]);
  return page;
}

async function runOnce(browser, studyUid) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await login(context);
  await page.goto(`${SERVER}/viewer/${studyUid}`);
  await page.waitForFunction(() => window.__lightbox?.slots()[0]?.timings?.firstImage !== undefined, null, { timeout: 60000 });
  await page.waitForFunction(() => window.__lightbox.ai.ready() && !document.querySelector('#ai-run').disabled, null, { timeout: 60000 });
  // No other job on the study may be running (its partials would be counted).
  await page.waitForFunction(() => window.__lightbox.ai.state.active().length === 0, null, { timeout: TIMEOUT_MS });
  await page.selectOption('#ai-model', MODEL);
  const before = await page.evaluate(() => window.__lightbox.ai.state.list().map((j) => j.id));
  const clickedAt = await page.evaluate(() => {
    const t = performance.now();
    document.querySelector('#ai-run').click();
    return t;
  });
  const jobId = await page
    .waitForFunction((before) => window.__lightbox.ai.state.list().find((j) => !before.includes(j.id))?.id, before, { timeout: 30000 })
    .then((h) => h.jsonValue());

  // Watch in the page: when the labelmap gets its first labels, show that slice and wait for colour on screen.
  const visibleAt = page.evaluate(
    ({ id, timeout }) =>
      new Promise((resolve) => {
        const end = performance.now() + timeout;
        let jumped = false;
        const tick = () => {
          const ai = window.__lightbox.ai;
          const job = ai.state.job(id);
          if (performance.now() > end || job?.status === 'failed' || job?.status === 'canceled') return resolve(null);
          if (!jumped && ai.firstOverlayAt(id) !== undefined) {
            const lm = ai.labelmaps().find((l) => l.job === id);
            const idx = lm?.busiestIndex() ?? -1;
            if (idx >= 0) {
              jumped = true;
              window.__lightbox.slots()[0].viewport().setImageIdIndex(idx);
            }
          }
          if (jumped) {
            const c = window.__lightbox.canvas(0);
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0;
            for (let i = 0; i < d.length; i += 16) if (Math.max(d[i], d[i + 1], d[i + 2]) - Math.min(d[i], d[i + 1], d[i + 2]) > 30) n++;
            if (n > 50) return resolve(performance.now());
          }
          requestAnimationFrame(tick);
        };
        tick();
      }),
    { id: jobId, timeout: TIMEOUT_MS },
  );
  await page.waitForFunction((id) => ['completed', 'failed', 'canceled'].includes(window.__lightbox.ai.state.job(id)?.status), jobId, { timeout: TIMEOUT_MS, polling: 250 });
  const visible = await visibleAt;
  const out = await page.evaluate(({ id, clickedAt }) => {
    const ai = window.__lightbox.ai;
    const job = ai.state.job(id);
    const tl = ai.state.timeline.filter((e) => e.job === id);
    const first = (name) => tl.find((e) => e.event === name)?.at;
    const latency = {};
    for (const e of tl) {
      if (!e.serverTime) continue;
      (latency[e.event] ??= []).push((e.receivedAt - e.serverTime) * 1000);
    }
    return {
      job: id,
      status: job.status,
      reason: job.reason,
      serverSeconds: job.result?.seconds,
      queuedMs: first('analysis.queued') - clickedAt,
      startedMs: first('analysis.started') - clickedAt,
      firstPartialMs: first('analysis.partial') - clickedAt,
      firstOverlayMs: ai.firstOverlayAt(id) - clickedAt,
      doneMs: (first('analysis.done') ?? first('analysis.failed') ?? first('analysis.canceled')) - clickedAt,
      partials: tl.filter((e) => e.event === 'analysis.partial').length,
      latency,
    };
  }, { id: jobId, clickedAt });
  out.firstVisibleMs = visible === null ? undefined : visible - clickedAt;
  await context.close();
  return out;
}

async function main() {
  const browser = await chromium.launch({ executablePath: process.env.LIGHTBOX_CHROMIUM ?? '/usr/bin/chromium', args: CHROMIUM_ARGS });
  const ctx = await browser.newContext();
  const page = await login(ctx);
  const studyUid = await page.evaluate(async (patient) => {
    const r = await fetch(`/dicomweb/studies?PatientName=${encodeURIComponent(patient)}`, { headers: { Accept: 'application/dicom+json' } });
    return (await r.json())[0]?.['0020000D']?.Value?.[0];
  }, PATIENT);
  await ctx.close();
  if (!studyUid) throw new Error(`no study for patient ${PATIENT} on ${SERVER} (load the demo data)`);

  const results = [];
  for (let r = 0; r < RUNS; r++) {
    const out = await runOnce(browser, studyUid);
    results.push(out);
    const all = Object.values(out.latency).flat();
    const s = stats(all);
    console.log(
      `run ${r + 1} ${MODEL} (${out.status}${out.reason ? `: ${out.reason}` : ''}): first partial event ${ms(out.firstPartialMs)}, first overlay drawn ${ms(out.firstOverlayMs)}, visible ${ms(out.firstVisibleMs)}, done ${ms(out.doneMs)} after Run (${out.partials} partials; worker ${out.serverSeconds ?? '?'} s); event latency median ${s.median?.toFixed(1)} ms, p95 ${s.p95?.toFixed(1)} ms, max ${s.max?.toFixed(1)} ms (n=${s.n})`,
    );
  }
  const latencyByEvent = {};
  for (const r of results) for (const [k, v] of Object.entries(r.latency)) (latencyByEvent[k] ??= []).push(...v);
  const summary = {
    firstPartialMs: stats(results.map((r) => r.firstPartialMs)).median,
    firstOverlayMs: stats(results.map((r) => r.firstOverlayMs)).median,
    firstVisibleMs: stats(results.map((r) => r.firstVisibleMs)).median,
    doneMs: stats(results.map((r) => r.doneMs)).median,
    latencyMs: Object.fromEntries(Object.entries(latencyByEvent).map(([k, v]) => [k, stats(v)])),
    latencyAllMs: stats(Object.values(latencyByEvent).flat()),
  };
  console.log(`\nmedian of ${RUNS} run(s), ms after clicking Run: first partial event ${ms(summary.firstPartialMs)}, first overlay drawn ${ms(summary.firstOverlayMs)}, visible ${ms(summary.firstVisibleMs)}, analysis.done ${ms(summary.doneMs)}`);
  console.log('event latency (browser receipt - server event time):');
  for (const [k, s] of Object.entries(summary.latencyMs)) console.log(`  ${k.padEnd(18)} n=${String(s.n).padStart(3)}  median ${s.median.toFixed(1).padStart(7)} ms  p95 ${s.p95.toFixed(1).padStart(7)} ms  max ${s.max.toFixed(1).padStart(7)} ms`);
  if (args.json) {
    fs.mkdirSync(path.dirname(path.resolve(args.json)), { recursive: true });
    fs.writeFileSync(args.json, JSON.stringify({ server: SERVER, patient: PATIENT, model: MODEL, results, summary }, null, 2));
  }
  await browser.close();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
