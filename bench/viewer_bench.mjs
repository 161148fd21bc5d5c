// Viewer benchmark: time from opening a study to the first image drawn and to every slice loaded, with the
// number of requests and bytes, in headless Chromium. Runs the Lightbox viewer and, when its prebuilt dist is
// unpacked under bench/ohif/package/dist (see bench/README-viewer.md), OHIF Viewer against the same archive.
//
// Both viewers are reached through the same small Node proxy, so neither gets a shorter path to the archive:
//   lightbox mode: every path goes to the Lightbox server (session cookie login, as a user would);
//   ohif mode:     OHIF's static files from bench/ohif, /dicomweb proxied to Lightbox with HTTP Basic auth.
//
//   node bench/viewer_bench.mjs --server http://127.0.0.1:8010 --user rad --password ... [--runs 3]
//        [--patient Phantom^Chest] [--expect 300] [--no-ohif] [--direct] [--warm] [--query '?lb.gpufirst=1'] [--json bench/out/viewer.json]
//   --direct also times Lightbox without the proxy (its real figure).
//   --warm   also times a returning user: the same viewer opened once before in the same browser context
//            (HTTP cache and V8's code cache warm). Without it every run is a first visit (empty cache).
//
// What is measured, per run, in a fresh browser context: t=0 is the navigation to the viewer URL
// (performance.timeOrigin of that page). Lightbox's session cookie is set beforehand by logging in through the
// Django form with next=/api/accounts/me/, so no viewer asset is cached by the login; OHIF needs no login (the
// proxy adds HTTP Basic). "first image" = the first animation frame in which a Cornerstone canvas shows pixels
// (read back with getImageData); "all loaded" = every slice of the series decoded in the viewer's image cache
// (polled every 25 ms). Requests and bytes are every resource of the page (Resource Timing transferSize, plus
// the document), split into code (scripts, styles, wasm) and the rest, counted until "all loaded".
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import os from 'node:os';
import zlib from 'node:zlib';

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
const RUNS = Number(args.runs ?? 3);
const PATIENT = args.patient ?? 'Phantom^Chest';
const EXPECT = Number(args.expect ?? 300);
const OHIF_DIST = path.join(here, 'ohif', 'package', 'dist');
const TIMEOUT_MS = Number(args.timeout ?? 60000);
// Appended to Lightbox's viewer URL, for A/B runs of its loading knobs (e.g. '?lb.gpufirst=1'; viewer/cornerstone.ts).
const QUERY = typeof args.query === 'string' ? args.query : '';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--use-angle=swiftshader', '--enable-unsafe-swiftshader'];

const MIME = { '.js': 'text/javascript', '.css': 'text/css', '.html': 'text/html', '.wasm': 'application/wasm', '.json': 'application/json', '.svg': 'image/svg+xml', '.png': 'image/png', '.ico': 'image/x-icon', '.woff2': 'font/woff2', '.txt': 'text/plain' };
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
const GZIP_TYPES = new Set(['.js', '.css', '.html', '.wasm', '.json', '.svg']);
const gzipCache = new Map();
const backend = new URL(SERVER);

function forward(req, res, extraHeaders = {}) {
  // The Host header stays the proxy's, so Django's CSRF origin check sees the origin the browser used.
  const headers = { ...req.headers, ...extraHeaders };
  const up = http.request({ host: backend.hostname, port: backend.port, path: req.url, method: req.method, headers, agent }, (r) => {
    res.writeHead(r.statusCode ?? 502, r.headers);
    r.pipe(res);
  });
  up.on('error', (e) => {
    res.writeHead(502);
    res.end(String(e));
  });
  req.pipe(up);
}

function startProxy(mode) {
  const state = { config: '' };
  const basic = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
  const server = http.createServer((req, res) => {
    if (mode === 'lightbox') return forward(req, res);
    if (req.url.startsWith('/dicomweb')) return forward(req, res, { authorization: basic });
    const p = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    if (p === '/app-config.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' });
      return res.end(state.config);
    }
    let file = path.join(OHIF_DIST, path.normalize(p));
    if (!file.startsWith(OHIF_DIST) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) file = path.join(OHIF_DIST, 'index.html');
    // Served as a production server would (and as Lightbox serves its own assets): gzip for text and wasm,
    // year-long caching for content-hashed names, revalidation for the rest.
    const ext = path.extname(file);
    const hashed = /[.-][0-9a-f]{16}\.(js|wasm|css)$/.test(file) || /^[0-9a-f]{16}\.wasm$/.test(path.basename(file));
    const headers = {
      'content-type': MIME[ext] ?? 'application/octet-stream',
      'cache-control': hashed ? 'public, max-age=31536000, immutable' : 'no-cache',
      'cross-origin-opener-policy': 'same-origin',
      'cross-origin-embedder-policy': 'require-corp',
      'cross-origin-resource-policy': 'same-origin',
    };
    if (GZIP_TYPES.has(ext) && /gzip/.test(req.headers['accept-encoding'] ?? '')) {
      let body = gzipCache.get(file);
      if (!body) gzipCache.set(file, (body = zlib.gzipSync(fs.readFileSync(file), { level: 6 })));
      res.writeHead(200, { ...headers, 'content-encoding': 'gzip', 'content-length': body.length, vary: 'Accept-Encoding' });
      return res.end(body);
    }
    res.writeHead(200, headers);
    fs.createReadStream(file).pipe(res);
  });
  server.state = state;
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

function ohifConfig(origin) {
  const root = `${origin}/dicomweb`;
  return `window.config = {
  routerBasename: '/', extensions: [], modes: [], customizationService: {}, showStudyList: true,
  maxNumberOfWebWorkers: 3, showLoadingIndicator: true, strictZSpacingForVolumeViewport: true,
  maxNumRequests: { interaction: 100, thumbnail: 5, prefetch: 25 },
  defaultDataSourceName: 'lightbox',
  dataSources: [{
    namespace: '@ohif/extension-default.dataSourcesModule.dicomweb',
    sourceName: 'lightbox',
    configuration: {
      friendlyName: 'Lightbox', name: 'lightbox',
      wadoUriRoot: '${root}', qidoRoot: '${root}', wadoRoot: '${root}',
      qidoSupportsIncludeField: true, supportsFuzzyMatching: true, supportsWildcard: true,
      imageRendering: 'wadors', thumbnailRendering: 'wadors', enableStudyLazyLoad: true,
      staticWado: false, singlepart: 'bulkdata,video', bulkDataURI: { enabled: false },
      omitQuotationForMultipartRequest: true,
    },
  }],
};`;
}

// Runs in the page from its first script: watches resources and the Cornerstone canvases.
const PAGE_PROBE = `(() => {
  performance.setResourceTimingBufferSize(100000);
  const probe = (window.__bench = { firstImage: null, frames: [], resources: [] });
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      probe.resources.push({ name: e.name, end: e.responseEnd, type: e.initiatorType, bytes: e.transferSize || e.encodedBodySize || 0 });
      if (e.name.includes('/frames/')) probe.frames.push(e.responseEnd);
    }
  }).observe({ type: 'resource', buffered: true });
  const look = () => {
    if (probe.firstImage === null) {
      for (const c of document.querySelectorAll('canvas.cornerstone-canvas, .cs-element canvas')) {
        if (!c.width || !c.height) continue;
        const ctx = c.getContext('2d');
        if (!ctx) continue;
        const d = ctx.getImageData(0, 0, c.width, c.height).data;
        let lit = 0;
        for (let i = 0; i < d.length; i += 4 * 97) if (d[i] > 8 || d[i + 1] > 8) lit++;
        if (lit / (d.length / (4 * 97)) > 0.02) { probe.firstImage = performance.now(); break; }
      }
    }
    if (probe.firstImage === null) requestAnimationFrame(look);
  };
  requestAnimationFrame(look);
})();`;

async function findStudy(page, origin, viaBasic) {
  return page.evaluate(async ({ patient, origin, basic }) => {
    const r = await fetch(`${origin}/dicomweb/studies?PatientName=${encodeURIComponent(patient)}`, { headers: { Accept: 'application/dicom+json', ...(basic ? { Authorization: basic } : {}) } });
    return (await r.json())[0]?.['0020000D']?.Value?.[0];
  }, { patient: PATIENT, origin, basic: viaBasic ? `Basic ${btoa(`${USER}:${PASSWORD}`)}` : null });
}

async function cachedCount(page, viewer) {
  return page.evaluate((viewer) => {
    if (viewer.startsWith('lightbox')) return window.__lightbox?.metrics().cached ?? 0;
    const cs = window.cornerstone;
    if (!cs?.cache) return 0;
    // OHIF: the largest set of cached images of one series.
    const per = new Map();
    for (const k of cs.cache._imageCache?.keys?.() ?? []) {
      const m = /series\/([^/]+)\//.exec(k);
      if (m) per.set(m[1], (per.get(m[1]) ?? 0) + 1);
    }
    return Math.max(0, ...per.values());
  }, viewer);
}

async function runOnce(browser, viewer, origin, studyUid, warm = false) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const url = viewer.startsWith('lightbox') ? `${origin}/viewer/${studyUid}${QUERY}` : `${origin}/viewer?StudyInstanceUIDs=${studyUid}`;
  if (viewer.startsWith('lightbox')) {
    // A logged-in session, without loading any viewer asset: the form redirects to a JSON endpoint.
    const login = await context.newPage();
    await login.goto(`${origin}/accounts/login/?next=/api/accounts/me/`);
    await login.fill('input[name=username]', USER);
    await login.fill('input[name=password]', PASSWORD);
    await Promise.all([login.waitForURL((u) => !u.pathname.startsWith('/accounts/login')), login.click('button[type=submit], input[type=submit]')]);
    await login.close();
  }
  if (warm) {
    // A returning user: the same viewer fully loaded once before, in this context (HTTP and code caches).
    const before = await context.newPage();
    await before.goto(url);
    const end = Date.now() + TIMEOUT_MS;
    while (Date.now() < end && (await cachedCount(before, viewer).catch(() => 0)) < EXPECT) await new Promise((r) => setTimeout(r, 100));
    await before.close();
  }
  await context.addInitScript(PAGE_PROBE);
  const page = await context.newPage();
  const t0 = Date.now();
  await page.goto(url, { waitUntil: 'commit' });
  let firstImage = null;
  let allLoaded = null;
  let cached = 0;
  while (Date.now() - t0 < TIMEOUT_MS) {
    const probe = await page.evaluate(() => ({ firstImage: window.__bench?.firstImage ?? null, frames: window.__bench?.frames.length ?? 0, now: performance.now() })).catch(() => null);
    if (probe) {
      firstImage ??= probe.firstImage;
      cached = await cachedCount(page, viewer).catch(() => cached);
      if (allLoaded === null && cached >= EXPECT) allLoaded = probe.now;
      if (firstImage !== null && allLoaded !== null) break;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  const res = await page.evaluate((until) => {
    const b = window.__bench;
    const nav = performance.getEntriesByType('navigation')[0];
    const frames = [...b.frames].sort((x, y) => x - y);
    const upTo = b.resources.filter((r) => until === null || r.end <= until + 50);
    const code = upTo.filter((r) => /\.(js|mjs|css|wasm)(\?|$)/.test(new URL(r.name).pathname));
    const sum = (xs) => xs.reduce((s, r) => s + r.bytes, 0);
    return {
      requests: upTo.length + 1,
      bytes: sum(upTo) + (nav?.transferSize ?? 0),
      codeRequests: code.length,
      codeBytes: sum(code),
      frameRequests: frames.length,
      lastFrameMs: frames.length ? frames[frames.length - 1] : null,
    };
  }, allLoaded);
  await context.close();
  return { viewer: warm ? `${viewer}-warm` : viewer, firstImageMs: firstImage, allLoadedMs: allLoaded, cached, ...res };
}

const range = (xs) => {
  const v = xs.filter((x) => x !== null && x !== undefined);
  return v.length ? [Math.min(...v), Math.max(...v)] : [null, null];
};

const median = (xs) => {
  const v = xs.filter((x) => x !== null && x !== undefined).sort((a, b) => a - b);
  return v.length ? v[Math.floor(v.length / 2)] : null;
};

async function main() {
  const browser = await chromium.launch({ executablePath: process.env.LIGHTBOX_CHROMIUM ?? '/usr/bin/chromium', args: CHROMIUM_ARGS });
  const lbProxy = await startProxy('lightbox');
  const lbOrigin = `http://127.0.0.1:${lbProxy.address().port}`;
  const viewers = [['lightbox', lbOrigin]];
  if (args.direct) viewers.push(['lightbox-direct', SERVER]);
  let ohifProxy;
  const wantOhif = !args['no-ohif'];
  if (wantOhif && fs.existsSync(path.join(OHIF_DIST, 'index.html'))) {
    ohifProxy = await startProxy('ohif');
    const origin = `http://127.0.0.1:${ohifProxy.address().port}`;
    ohifProxy.state.config = ohifConfig(origin);
    viewers.push(['ohif', origin]);
  } else if (wantOhif) {
    console.log(`OHIF not run: ${OHIF_DIST} is missing (see bench/README-viewer.md to unpack @ohif/app).`);
  }

  // The study to open.
  const ctx = await browser.newContext();
  const p = await ctx.newPage();
  await p.goto(`${SERVER}/accounts/login/`);
  const studyUid = await findStudy(p, SERVER, true);
  await ctx.close();
  if (!studyUid) throw new Error(`no study for patient ${PATIENT} on ${SERVER} (load the demo data)`);

  const loadBefore = os.loadavg();
  console.log(`machine: ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), load average ${loadBefore.map((x) => x.toFixed(2)).join(' ')} at start`);
  const modes = args.warm ? [false, true] : [false];
  const results = [];
  for (let r = 0; r < RUNS; r++) {
    for (const warm of modes) {
      for (const [viewer, origin] of viewers) {
        const out = await runOnce(browser, viewer, origin, studyUid, warm);
        out.loadavg1 = os.loadavg()[0];
        results.push(out);
        console.log(`run ${r + 1} ${out.viewer.padEnd(20)} first image ${fmt(out.firstImageMs)}  all ${EXPECT} loaded ${fmt(out.allLoadedMs)}  (cached ${out.cached}; ${out.requests} requests, ${(out.bytes / 1e6).toFixed(1)} MB, of which code ${out.codeRequests} / ${(out.codeBytes / 1e6).toFixed(2)} MB; ${out.frameRequests} frame requests; load ${out.loadavg1.toFixed(2)})`);
      }
    }
  }
  const loadAfter = os.loadavg();
  const names = [...new Set(results.map((x) => x.viewer))];
  const summary = names.map((viewer) => {
    const rs = results.filter((x) => x.viewer === viewer);
    const pick = (k) => median(rs.map((x) => x[k]));
    return { viewer, runs: rs.length, firstImageMs: pick('firstImageMs'), allLoadedMs: pick('allLoadedMs'), firstImageRangeMs: range(rs.map((x) => x.firstImageMs)), allLoadedRangeMs: range(rs.map((x) => x.allLoadedMs)), requests: pick('requests'), bytes: pick('bytes'), codeRequests: pick('codeRequests'), codeBytes: pick('codeBytes'), frameRequests: pick('frameRequests') };
  });
  console.log(`\nmedian of ${RUNS} runs (ms from navigation start; "all loaded" = every slice decoded in the viewer cache); load average ${loadAfter.map((x) => x.toFixed(2)).join(' ')} at end:`);
  for (const s of summary) console.log(`  ${s.viewer.padEnd(20)} first image ${fmt(s.firstImageMs)} [${s.firstImageRangeMs.map((x) => x?.toFixed(0)).join('-')}]  all loaded ${fmt(s.allLoadedMs)} [${s.allLoadedRangeMs.map((x) => x?.toFixed(0)).join('-')}]  requests ${s.requests}  bytes ${(s.bytes / 1e6).toFixed(1)} MB (code ${(s.codeBytes / 1e6).toFixed(2)} MB)`);
  if (args.json) {
    fs.mkdirSync(path.dirname(path.resolve(args.json)), { recursive: true });
    fs.writeFileSync(args.json, JSON.stringify({ server: SERVER, patient: PATIENT, expect: EXPECT, cores: os.cpus().length, loadavgStart: loadBefore, loadavgEnd: loadAfter, results, summary }, null, 2));
  }
  await browser.close();
  lbProxy.close();
  ohifProxy?.close();
  agent.destroy();
}

function fmt(ms) {
  return ms === null || ms === undefined ? '   n/a  ' : `${ms.toFixed(0).padStart(6)} ms`;
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
