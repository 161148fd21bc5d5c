// Shared helpers for the browser tests and the benchmark: one headless Chromium, logging in, reading pixels.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(here, '..', '..');
// playwright-core is a dev dependency of frontend/.
const require = createRequire(path.join(ROOT, 'frontend', 'package.json'));
const { chromium } = require('playwright-core');

export const CHROMIUM = process.env.LIGHTBOX_CHROMIUM ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-angle=swiftshader',
  '--enable-unsafe-swiftshader',
];

export function baseUrl() {
  const url = process.env.LIGHTBOX_URL;
  if (!url) throw new Error('LIGHTBOX_URL is not set: run the tests through tests/browser/run.sh');
  return url.replace(/\/$/, '');
}

export const USER = process.env.LIGHTBOX_USER ?? 'rad';
export const PASSWORD = process.env.LIGHTBOX_PASSWORD ?? 'rad-pass-123';

export async function launch() {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
}

/** A new context with a logged-in session (the Django login form, as a person would). */
export async function loggedInContext(browser, { viewport = { width: 1400, height: 900 } } = {}) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  await page.goto(`${baseUrl()}/accounts/login/`);
  await page.fill('input[name=username]', USER);
  await page.fill('input[name=password]', PASSWORD);
  await Promise.all([page.waitForURL((u) => !u.pathname.startsWith('/accounts/login')), page.click('button[type=submit], input[type=submit]')]);
  await page.close();
  return context;
}

/** Collect console errors and failed requests of a page (printed when a test fails). */
export function watch(page) {
  const log = [];
  page.on('console', (m) => (m.type() === 'error' || m.type() === 'warning') && log.push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => log.push(`[pageerror] ${e.message}`));
  page.on('requestfailed', (r) => log.push(`[requestfailed] ${r.url()} ${r.failure()?.errorText}`));
  return log;
}

/** Statistics of a viewport's canvas pixels, read in the page (luminance of RGB). */
export async function canvasStats(page, slot = 0, region) {
  return page.evaluate(
    ({ slot, region }) => {
      const canvas = window.__lightbox?.canvas(slot);
      if (!canvas) return null;
      const ctx = canvas.getContext('2d');
      if (!ctx) return null;
      const r = region ?? { x: 0, y: 0, w: canvas.width, h: canvas.height };
      const data = ctx.getImageData(r.x, r.y, r.w, r.h).data;
      let sum = 0, sum2 = 0, min = 255, max = 0, nonBlack = 0, hash = 2166136261;
      const n = data.length / 4;
      for (let i = 0; i < data.length; i += 4) {
        const v = (data[i] * 299 + data[i + 1] * 587 + data[i + 2] * 114) / 1000;
        sum += v; sum2 += v * v;
        if (v < min) min = v;
        if (v > max) max = v;
        if (v > 8) nonBlack++;
        if ((i / 4) % 7 === 0) hash = Math.imul(hash ^ data[i], 16777619) >>> 0;
      }
      const mean = sum / n;
      return { width: canvas.width, height: canvas.height, mean, std: Math.sqrt(Math.max(0, sum2 / n - mean * mean)), min, max, nonBlackFraction: nonBlack / n, hash };
    },
    { slot, region },
  );
}

export async function waitForImage(page, slot = 0, timeout = 20000) {
  await page.waitForFunction(
    (slot) => {
      const lb = window.__lightbox;
      const s = lb?.slots()[slot];
      // ...and the tools chunk (tools, measurements, AI panel), loaded right after the first image.
      return !!s && s.kind !== 'empty' && s.timings?.firstImage !== undefined && (!lb.toolsReady || lb.toolsReady());
    },
    slot,
    { timeout },
  );
  // One more frame so the copy to the visible canvas has happened.
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
}

export async function studyUidByPatient(page, name) {
  return page.evaluate(async (name) => {
    const r = await fetch(`/dicomweb/studies?PatientName=${encodeURIComponent(name)}&limit=5`, { headers: { Accept: 'application/dicom+json' } });
    const j = await r.json();
    return j[0]?.['0020000D']?.Value?.[0];
  }, name);
}
