// End-to-end tests of the study list and the viewer in headless Chromium, against a live Lightbox with the
// demo data loaded (tests/browser/run.sh sets that up). One browser is shared by every test.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { baseUrl, canvasStats, launch, loggedInContext, studyUidByPatient, waitForImage, watch } from './lib.mjs';

let browser;
let context;
let ctUid;

const PIXEL_SPACING_MM = 0.7; // the demo chest CT (backend/demo)

async function openViewer(uid, { waitImage = true } = {}) {
  const page = await context.newPage();
  const log = watch(page);
  page.on('dialog', (d) => d.accept('test label'));
  await page.goto(`${baseUrl()}/viewer/${uid}`);
  if (waitImage) await waitForImage(page);
  return { page, log };
}

function explain(log) {
  return log.length ? `\n--- browser log ---\n${log.slice(-30).join('\n')}` : '';
}

/** Poll the canvas until it shows something (or give up and return the last reading). */
async function waitForPixels(page, slot, timeout = 10000) {
  const end = Date.now() + timeout;
  let st;
  do {
    st = await canvasStats(page, slot);
    if (st && st.nonBlackFraction > 0.02 && st.std > 3) return st;
    await new Promise((r) => setTimeout(r, 100));
  } while (Date.now() < end);
  return st;
}

/** Poll the canvas until its pixels differ from `hash`. */
async function waitForChange(page, slot, hash, timeout = 10000) {
  const end = Date.now() + timeout;
  let st;
  do {
    st = await canvasStats(page, slot);
    if (st && st.hash !== hash) return st;
    await new Promise((r) => setTimeout(r, 50));
  } while (Date.now() < end);
  return st;
}

async function frames(page, n = 2) {
  await page.evaluate((n) => new Promise((r) => { let k = 0; const f = () => (++k >= n ? r() : requestAnimationFrame(f)); requestAnimationFrame(f); }), n);
}

before(async () => {
  browser = await launch();
  context = await loggedInContext(browser);
  const page = await context.newPage();
  await page.goto(`${baseUrl()}/`);
  ctUid = await studyUidByPatient(page, 'Phantom^Chest');
  assert.ok(ctUid, 'the demo chest CT (Phantom^Chest) is in the archive');
  // Start from no saved measurements on the CT, whatever an earlier run left.
  await page.evaluate(async (uid) => {
    const csrftoken = document.cookie.match(/csrftoken=([^;]+)/)?.[1] ?? '';
    const list = await (await fetch(`/api/viewer/studies/${uid}/measurements/`)).json();
    for (const m of list) await fetch(`/api/viewer/studies/${uid}/measurements/${m.uid}/`, { method: 'DELETE', headers: { 'X-CSRFToken': csrftoken } });
  }, ctUid);
  await page.close();
});

after(async () => {
  await browser?.close();
});

describe('study list', () => {
  test('unauthenticated visitors are sent to the login page', async () => {
    const anon = await browser.newContext();
    const page = await anon.newPage();
    await page.goto(`${baseUrl()}/`);
    assert.match(new URL(page.url()).pathname, /^\/accounts\/login\//);
    await anon.close();
  });

  test('search by patient name, sort, and open a study', async () => {
    const page = await context.newPage();
    const log = watch(page);
    await page.goto(`${baseUrl()}/`);
    await page.waitForSelector('#study-rows tr');
    const all = await page.locator('#study-rows tr').count();
    assert.ok(all >= 3, `expected the demo studies, got ${all} rows${explain(log)}`);

    await page.fill('input[name=patientName]', 'phantom');
    await page.click('#study-search button[type=submit]');
    await page.waitForFunction(() => [...document.querySelectorAll('#study-rows tr')].every((tr) => /Phantom/i.test(tr.textContent ?? '')));
    const names = await page.locator('#study-rows tr td:first-child').allTextContents();
    assert.ok(names.length >= 3 && names.length < all, `filtered rows: ${names}`);
    assert.ok(new URL(page.url()).searchParams.get('name') === 'phantom', 'the search is in the URL');

    await page.click('th[data-sort=patientName]');
    await page.click('th[data-sort=patientName]'); // toggle: descending
    const sorted = await page.locator('#study-rows tr td:first-child').allTextContents();
    assert.deepEqual(sorted, [...sorted].sort((a, b) => b.toLowerCase().localeCompare(a.toLowerCase())));

    await page.fill('input[name=patientName]', '');
    await page.selectOption('select[name=modality]', 'CT');
    await page.click('#study-search button[type=submit]');
    await page.waitForFunction(() => [...document.querySelectorAll('#study-rows tr')].every((tr) => /CT/.test(tr.textContent ?? '')));

    await page.click(`tr[data-study="${ctUid}"] a`);
    await page.waitForURL(`**/viewer/${ctUid}`);
    await waitForImage(page);
    await page.close();
  });
});

describe('viewer', () => {
  test('shows the CT image (pixels, not just a render event) with overlays', async () => {
    const { page, log } = await openViewer(ctUid);
    const s = await waitForPixels(page, 0);
    assert.ok(s && s.width > 100, `canvas present${explain(log)}`);
    assert.ok(s.nonBlackFraction > 0.1 && s.std > 10, `image drawn: ${JSON.stringify(s)}${explain(log)}`);
    const tl = await page.textContent('.slot[data-slot="0"] .corner.tl');
    assert.match(tl, /Phantom, Chest/);
    const bl = await page.textContent('.slot[data-slot="0"] .corner.bl');
    assert.match(bl, /Im: \d+ \/ 300/);
    const thumbs = await page.locator('.series-item').count();
    assert.ok(thumbs >= 1);
    await page.close();
  });

  test('the first image needs no tools chunk; keys pressed before it arrives are applied once it is in', async () => {
    const { page, log } = await openViewer(ctUid, { waitImage: false });
    await page.waitForFunction(() => window.__lightbox?.slots()[0]?.timings?.firstImage !== undefined, null, { timeout: 20000 });
    // Pressed as soon as the image is up (usually before the tools are in): a tool and cine wait for them.
    await page.keyboard.press('z');
    await page.keyboard.press('c');
    await page.waitForFunction(() => window.__lightbox.toolsReady(), null, { timeout: 20000 });
    await page.waitForFunction(() => window.__lightbox.state().cineOn, null, { timeout: 5000 });
    const st = await page.evaluate(() => ({ tool: window.__lightbox.state().primaryTool, zoomOn: document.querySelector('#btn-tool-Zoom').classList.contains('on') }));
    assert.deepEqual(st, { tool: 'Zoom', zoomOn: true }, explain(log));
    await page.keyboard.press('c');
    // The tools chunk was requested only after the first image was drawn.
    const order = await page.evaluate(() => {
      const tools = performance.getEntriesByType('resource').find((e) => /\/tooling-[^/]*\.js/.test(e.name));
      const first = performance.getEntriesByName('lb:first-image')[0];
      return { tools: tools?.startTime, first: first?.startTime };
    });
    assert.ok(order.tools !== undefined && order.first !== undefined && order.tools >= order.first, `tools chunk after the first image: ${JSON.stringify(order)}`);
    assert.ok(!log.some((l) => /pageerror|Uncaught/i.test(l)), `no page errors${explain(log)}`);
    await page.close();
  });

  test('the first image is drawn on the CPU, then the viewport moves to WebGL with the same picture and no blank frame', async () => {
    const page = await context.newPage();
    const log = watch(page);
    // Every animation frame from the start: is there a picture on screen (the Cornerstone canvas, or the still
    // copy that covers it while the WebGL viewport is set up), and what it looks like.
    await page.addInitScript(() => {
      const seen = (window.__frames = []);
      const sample = (c) => {
        if (!c || !c.width || !c.height) return undefined;
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let lit = 0;
        let sum = 0;
        let n = 0;
        for (let i = 0; i < d.length; i += 4 * 97, n++) {
          sum += d[i];
          if (d[i] > 8) lit++;
        }
        return { lit: lit / n, mean: sum / n };
      };
      const look = () => {
        const canvas = sample(document.querySelector('.slot[data-slot="0"] canvas.cornerstone-canvas'));
        const cover = sample(document.querySelector('.slot[data-slot="0"] canvas.render-cover'));
        seen.push({ canvas, cover, renderer: window.__lightbox?.slots()[0]?.renderer() });
        if (seen.length < 2000) requestAnimationFrame(look);
      };
      requestAnimationFrame(look);
    });
    await page.goto(`${baseUrl()}/viewer/${ctUid}`);
    await page.waitForFunction(() => window.__lightbox?.toolsReady(), null, { timeout: 20000 });
    await frames(page, 3);
    const { timings, renderer, seen } = await page.evaluate(() => ({
      timings: window.__lightbox.slots()[0].timings,
      renderer: window.__lightbox.slots()[0].renderer(),
      seen: window.__frames.slice(),
    }));
    assert.equal(timings.firstRenderer, 'cpu', `first image drawn by ${timings.firstRenderer}`);
    assert.equal(renderer, 'gpu', 'the viewport is drawn with WebGL once the tools are in');
    const shown = (f) => (f.canvas?.lit ?? 0) > 0.02 || (f.cover?.lit ?? 0) > 0.02;
    const firstShown = seen.findIndex(shown);
    assert.ok(firstShown >= 0, 'a picture was seen');
    const blank = seen.slice(firstShown).filter((f) => !shown(f));
    assert.equal(blank.length, 0, `${blank.length} blank frames after the first image: ${JSON.stringify(blank.slice(0, 3))}`);
    assert.ok(seen.slice(firstShown).some((f) => f.cover), 'the still copy covered the switch');
    // The same slice, window and size drawn by both pipelines: the same picture within rounding.
    const cpu = seen.slice(firstShown).find((f) => f.renderer === 'cpu' && f.canvas?.lit > 0.02).canvas;
    const gpu = await waitForPixels(page, 0);
    assert.ok(Math.abs(cpu.mean - gpu.mean) < 4, `CPU mean ${cpu.mean} vs WebGL mean ${gpu.mean}`);
    assert.ok(!log.some((l) => /pageerror|Uncaught/i.test(l)), `no page errors${explain(log)}`);
    await page.close();
  });

  test('window/level (presets and mouse drag) changes the pixels', async () => {
    const { page } = await openViewer(ctUid);
    const initial = await waitForPixels(page, 0);
    await page.keyboard.press('3'); // bone
    const bone = await waitForChange(page, 0, initial.hash);
    await page.keyboard.press('1'); // lung
    const lung = await waitForChange(page, 0, bone.hash);
    assert.notEqual(lung.hash, bone.hash);
    assert.ok(Math.abs(lung.mean - bone.mean) > 5, `lung ${lung.mean} vs bone ${bone.mean}`);
    assert.match(await page.textContent('.slot[data-slot="0"] .corner.br'), /W: 1500 L: -600/);
    await page.keyboard.press('3');
    await waitForChange(page, 0, lung.hash);
    assert.match(await page.textContent('.slot[data-slot="0"] .corner.br'), /W: 2000 L: 500/);

    const box = await page.locator('.slot[data-slot="0"] .cs-element').boundingBox();
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width / 2 + 120, box.y + box.height / 2 + 60, { steps: 6 });
    await page.mouse.up();
    const dragged = await waitForChange(page, 0, bone.hash);
    assert.notEqual(dragged.hash, bone.hash, 'dragging changed window/level');
    assert.doesNotMatch(await page.textContent('.slot[data-slot="0"] .corner.br'), /W: 2000 L: 500/);

    await page.keyboard.press('i');
    const inverted = await waitForChange(page, 0, dragged.hash);
    assert.ok(Math.abs(inverted.mean - dragged.mean) > 50, `invert: mean ${dragged.mean} -> ${inverted.mean}`);
    await page.close();
  });

  test('scrolling (keys, wheel, slider) changes the slice and the pixels', async () => {
    const { page } = await openViewer(ctUid);
    const index = () => page.evaluate(() => window.__lightbox.slots()[0].viewport().getCurrentImageIdIndex());
    const i0 = await index();
    const before = await waitForPixels(page, 0);
    for (let k = 0; k < 20; k++) await page.keyboard.press('ArrowDown');
    await page.waitForFunction((i0) => window.__lightbox.slots()[0].viewport().getCurrentImageIdIndex() === i0 + 20, i0);
    const after20 = await waitForChange(page, 0, before.hash);
    assert.notEqual(after20.hash, before.hash, 'pixels changed after 20 slices');

    const box = await page.locator('.slot[data-slot="0"] .cs-element').boundingBox();
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    for (let k = 0; k < 5; k++) await page.mouse.wheel(0, -100);
    await page.waitForFunction((i) => window.__lightbox.slots()[0].viewport().getCurrentImageIdIndex() < i, i0 + 20);

    await page.locator('.slot[data-slot="0"] .slice-slider').fill('1');
    await page.waitForFunction(() => /Im: 1 \/ 300/.test(document.querySelector('.slot[data-slot="0"] .corner.bl').textContent));
    await page.close();
  });

  test('all 300 slices load, nearest first, and the progress bar goes away', async () => {
    const { page, log } = await openViewer(ctUid);
    await page.waitForFunction(() => window.__lightbox.metrics().allLoadedMs !== undefined, null, { timeout: 60000 });
    const m = await page.evaluate(() => window.__lightbox.metrics());
    assert.equal(m.progress.failed, 0, explain(log));
    assert.equal(m.cached, 300);
    assert.ok(await page.locator('.slot[data-slot="0"] .load-progress').isHidden());
    // The uncompressed CT never needs a decoder: every slice made into an image on the main thread, and no
    // decode worker was started (its script never fetched).
    assert.equal(m.loader.decoder, 0, JSON.stringify(m.loader));
    assert.ok(m.loader.direct >= 300, JSON.stringify(m.loader));
    const workers = await page.evaluate(() => performance.getEntriesByType('resource').filter((e) => /decodeImageFrameWorker/.test(e.name)).length);
    assert.equal(workers, 0, 'no decode worker started for the CT');
    console.log(`# CT: first image ${m.firstImageMs.toFixed(0)} ms, all 300 slices ${m.allLoadedMs.toFixed(0)} ms after viewer start`);

    // Once loaded, scrolling through every slice never shows a blank frame and asks the network for nothing.
    const scroll = await page.evaluate(async () => {
      const vp = window.__lightbox.slots()[0].stackViewport();
      const canvas = window.__lightbox.canvas(0);
      const ctx = canvas.getContext('2d');
      const frameRequests = () => performance.getEntriesByType('resource').filter((e) => e.name.includes('/frames/')).length;
      const before = frameRequests();
      const blank = [];
      const n = vp.getImageIds().length;
      for (let i = 0; i < n; i++) {
        await vp.setImageIdIndex(i);
        // The very next frame must show it: a slice still loading would be drawn blank (or not at all).
        await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
        // The central quarter (where the body is) is enough to tell a drawn slice from a blank one.
        const d = ctx.getImageData(canvas.width >> 2, canvas.height >> 2, canvas.width >> 1, canvas.height >> 1).data;
        let lit = 0;
        let seen = 0;
        for (let k = 0; k < d.length; k += 4 * 53) {
          seen++;
          if (d[k] > 8 || d[k + 1] > 8 || d[k + 2] > 8) lit++;
        }
        if (vp.getCurrentImageIdIndex() !== i || lit / seen < 0.02) blank.push(i);
      }
      return { n, blank, newFrameRequests: frameRequests() - before };
    });
    assert.equal(scroll.n, 300);
    assert.deepEqual(scroll.blank, [], `slices shown blank while scrolling: ${scroll.blank.join(', ')}`);
    assert.equal(scroll.newFrameRequests, 0, 'scrolling a loaded series fetches nothing');
    await page.close();
  });

  test('a length between two known points reads the known distance in mm (within 1%), and is saved', async () => {
    const { page, log } = await openViewer(ctUid);
    await page.keyboard.press('l');
    // Two points 300 pixels apart on one row: 300 x 0.7 mm = 210 mm.
    const a = await page.evaluate(() => window.__lightbox.imageToClient(0, [106, 256]));
    const b = await page.evaluate(() => window.__lightbox.imageToClient(0, [406, 256]));
    await page.mouse.move(a[0], a[1]);
    await page.mouse.down();
    await page.mouse.move((a[0] + b[0]) / 2, b[1], { steps: 4 });
    await page.mouse.move(b[0], b[1], { steps: 4 });
    await page.mouse.up();
    await page.waitForFunction(() => window.__lightbox.measurements.all.some((m) => m.kind === 'length' && m.stats.length > 0), null, { timeout: 10000 });
    await page.evaluate(() => window.__lightbox.measurements.flush());
    const rec = await page.evaluate(() => window.__lightbox.measurements.all.find((m) => m.kind === 'length'));
    const expected = 300 * PIXEL_SPACING_MM;
    assert.ok(Math.abs(rec.stats.length - expected) / expected < 0.01, `length ${rec.stats.length} mm, expected ${expected} mm${explain(log)}`);
    assert.ok(rec.id, 'stored on the server (has an id)');
    assert.match(await page.textContent('#measure-list'), /Length 21\d\.\d\d mm/);

    // An ellipse ROI gives HU statistics.
    await page.keyboard.press('e');
    const c = await page.evaluate(() => window.__lightbox.imageToClient(0, [236, 236]));
    const d = await page.evaluate(() => window.__lightbox.imageToClient(0, [276, 276]));
    await page.mouse.move(c[0], c[1]);
    await page.mouse.down();
    await page.mouse.move(d[0], d[1], { steps: 5 });
    await page.mouse.up();
    await page.waitForFunction(() => window.__lightbox.measurements.all.some((m) => m.kind === 'ellipse' && m.stats.mean !== undefined), null, { timeout: 10000 });
    await page.evaluate(() => window.__lightbox.measurements.flush());
    const roi = await page.evaluate(() => window.__lightbox.measurements.all.find((m) => m.kind === 'ellipse'));
    assert.ok(roi.stats.area > 0 && roi.stats.min <= roi.stats.mean && roi.stats.mean <= roi.stats.max, JSON.stringify(roi.stats));
    assert.equal(roi.stats.unit, 'HU');

    // Reopen: both come back from the server.
    await page.reload();
    await waitForImage(page);
    await page.waitForFunction(() => window.__lightbox.measurements.all.length >= 2, null, { timeout: 10000 });
    const restored = await page.evaluate(() => window.__lightbox.measurements.all.map((m) => ({ kind: m.kind, uid: m.uid, length: m.stats.length })));
    assert.ok(restored.some((m) => m.uid === rec.uid && m.kind === 'length'), JSON.stringify(restored));
    const onServer = await page.evaluate(async (uid) => (await fetch(`/api/viewer/studies/${uid}/measurements/`)).json(), ctUid);
    assert.ok(Math.abs(onServer.find((m) => m.uid === rec.uid).stats.length - expected) / expected < 0.01);
    await page.close();
  });

  test('measurements export as a DICOM SR into the archive', async () => {
    const { page, log } = await openViewer(ctUid);
    await page.waitForFunction(() => window.__lightbox.measurements.all.length >= 1, null, { timeout: 10000 });
    await page.click('#btn-export-sr');
    await page.waitForSelector('.banner', { timeout: 20000 });
    const text = await page.textContent('.banner');
    assert.match(text, /Stored a DICOM SR with \d+ measurement/, `${text}${explain(log)}`);
    const series = await page.evaluate(async (uid) => (await fetch(`/dicomweb/studies/${uid}/series?Modality=SR&includefield=0008103E`, { headers: { Accept: 'application/dicom+json' } })).json(), ctUid);
    assert.ok(series.length >= 1, 'an SR series is in the study');
    await page.close();

    // Reopened, the SR is listed as a report: no thumbnail (and no thumbnail request), never loaded as a stack.
    // The measurement SR (an AI run may have stored its own SR in this study too).
    const mine = series.find((x) => x['0008103E']?.Value?.[0] === 'Lightbox measurements');
    assert.ok(mine, `the measurement SR is listed: ${JSON.stringify(series.map((x) => x['0008103E']?.Value))}`);
    const srUid = mine['0020000E'].Value[0];
    const again = await openViewer(ctUid, { waitImage: false });
    const requested = [];
    again.page.on('request', (r) => requested.push(r.url()));
    await waitForImage(again.page);
    const item = again.page.locator(`.series-item[data-series="${srUid}"]`);
    await item.waitFor();
    assert.equal(await item.getAttribute('data-kind'), 'non-image');
    assert.match(await item.textContent(), /SR — measurement report/);
    assert.equal(await item.locator('img').count(), 0, 'no thumbnail image for an SR');
    await item.click();
    await frames(again.page, 3);
    const shown = await again.page.evaluate(() => ({ series: window.__lightbox.slots()[0].series?.modality, images: window.__lightbox.slots()[0].series?.imageIds.length }));
    assert.deepEqual(shown, { series: 'CT', images: 300 }, 'clicking the SR leaves the CT on screen');
    await again.page.waitForSelector('.banner:has-text("this series holds no images")', { timeout: 5000 });
    assert.match(await again.page.textContent('.banner:has-text("this series holds no images")'), /SR — measurement report: this series holds no images/);
    assert.ok(!requested.some((u) => u.includes(srUid)), `no request for the SR series: ${requested.filter((u) => u.includes(srUid)).join(', ')}`);
    await again.page.close();
  });

  test('MPR shows axial, sagittal and coronal planes of the volume', async () => {
    const { page, log } = await openViewer(ctUid);
    await page.keyboard.press('m');
    await page.waitForFunction(() => {
      const s = window.__lightbox.slots();
      return s.length === 3 && s.every((x) => x.kind === 'mpr' && x.message.hidden);
    }, null, { timeout: 60000 });
    // Wait until the volume has streamed in enough to draw all three planes.
    await page.waitForFunction(() => {
      return [0, 1, 2].every((i) => {
        const c = window.__lightbox.canvas(i);
        const ctx = c?.getContext('2d');
        if (!ctx) return false;
        const d = ctx.getImageData(0, 0, c.width, c.height).data;
        let lit = 0;
        for (let k = 0; k < d.length; k += 16) if (d[k] > 8) lit++;
        return lit / (d.length / 16) > 0.05;
      });
    }, null, { timeout: 60000 });
    const normals = await page.evaluate(() => [0, 1, 2].map((i) => window.__lightbox.slots()[i].viewport().getCamera().viewPlaneNormal.map((v) => Math.round(v))));
    const axes = normals.map((n) => n.findIndex((v) => v !== 0)).sort();
    assert.deepEqual(axes, [0, 1, 2], `three orthogonal planes: ${JSON.stringify(normals)}${explain(log)}`);
    const stats = await Promise.all([0, 1, 2].map((i) => canvasStats(page, i)));
    for (const s of stats) assert.ok(s.std > 5, JSON.stringify(s));
    assert.notEqual(stats[0].hash, stats[1].hash);
    const orientations = await page.locator('.slot .corner.bl').allTextContents();
    assert.ok(orientations.some((t) => /Sagittal/.test(t)) && orientations.some((t) => /Coronal/.test(t)));
    await page.keyboard.press('m'); // back to the stack
    await page.waitForFunction(() => window.__lightbox.slots()[0].kind === 'stack');
    await page.close();
  });

  test('layouts: 1x2 and 2x2 show more viewports; a dragged series lands in a viewport', async () => {
    const mrUid = await (async () => {
      const p = await context.newPage();
      await p.goto(`${baseUrl()}/`);
      const uid = await studyUidByPatient(p, 'CompressedSamples^MR1');
      await p.close();
      return uid;
    })();
    const { page, log } = await openViewer(mrUid);
    await page.click('#btn-layout-2x2');
    await page.waitForFunction(() => window.__lightbox.slots().length === 4);
    const items = page.locator('.series-item');
    assert.ok((await items.count()) >= 2, explain(log));
    await items.nth(1).dragTo(page.locator('.slot[data-slot="3"]'));
    await waitForImage(page, 3);
    const s3 = await waitForPixels(page, 3);
    assert.ok(s3.nonBlackFraction > 0.05, JSON.stringify(s3));
    await page.click('#btn-layout-1x2');
    await page.waitForFunction(() => window.__lightbox.slots().length === 2);
    await page.close();
  });

  test('compressed transfer syntaxes, multi-frame and colour images display', async () => {
    const names = ['CompressedSamples^MR1', 'CompressedSamples^CT1', 'CompressedSamples^NM1', 'Lestrade^G'];
    const page0 = await context.newPage();
    await page0.goto(`${baseUrl()}/`);
    const studies = await page0.evaluate(async () => (await fetch('/dicomweb/studies?limit=100', { headers: { Accept: 'application/dicom+json' } })).json());
    await page0.close();
    const uids = studies.map((s) => ({ uid: s['0020000D'].Value[0], name: s['00100010']?.Value?.[0]?.Alphabetic ?? '' }));
    const picked = uids.filter((s) => !/^Phantom\^/.test(s.name));
    let decoded = 0;
    let direct = 0;
    assert.ok(picked.length >= names.length - 1, `sample studies present: ${JSON.stringify(uids)}`);
    for (const s of picked) {
      const { page, log } = await openViewer(s.uid, { waitImage: false });
      await page.waitForFunction(() => window.__lightbox?.state().series.length > 0, null, { timeout: 15000 });
      // Non-image series (SR, SEG...) are labelled entries, not stacks (checked in the SR export test).
      const series = await page.evaluate(() => window.__lightbox.state().series.filter((x) => !['SR', 'SEG', 'KO', 'PR', 'RTSTRUCT', 'RTPLAN', 'DOC'].includes(x.modality)).map((x) => x.seriesInstanceUID));
      for (const se of series) {
        const t = await page.evaluate((se) => (window.__lightbox.slots()[0].series?.series === se ? 0 : performance.now()), se);
        await page.click(`.series-item[data-series="${se}"]`);
        await page.waitForFunction(({ se, t }) => {
          const slot = window.__lightbox.slots()[0];
          if (slot.series?.series !== se || !(slot.timings?.requested >= t)) return false;
          return slot.timings.firstImage !== undefined || (slot.message.dataset.kind === 'error' && !slot.message.hidden) || slot.series.imageIds.length === 0;
        }, { se, t }, { timeout: 20000 });
        const state = await page.evaluate(() => {
          const slot = window.__lightbox.slots()[0];
          return { error: slot.message.dataset.kind === 'error' && !slot.message.hidden ? slot.message.textContent : null, images: slot.series.imageIds.length, modality: slot.series.modality };
        });
        if (state.images === 0) continue; // e.g. an SR series
        assert.equal(state.error, null, `${s.name} ${se}: ${state.error}${explain(log)}`);
        const st = await waitForPixels(page, 0);
        assert.ok(st.nonBlackFraction > 0.02 && st.std > 3, `${s.name} ${se} (${state.modality}) drawn: ${JSON.stringify(st)}${explain(log)}`);
      }
      const loader = await page.evaluate(() => window.__lightbox.metrics().loader);
      decoded += loader.decoder;
      direct += loader.direct;
      await page.close();
    }
    // Compressed samples went through Cornerstone's decode workers, native ones did not need them.
    assert.ok(decoded > 0 && direct > 0, `frames decoded by workers ${decoded}, made directly ${direct}`);
  });

  test('a MONOCHROME1 radiograph shows air dark and the body bright', async () => {
    const p = await context.newPage();
    await p.goto(`${baseUrl()}/`);
    const uid = await studyUidByPatient(p, 'Phantom^Xray');
    await p.close();
    const { page, log } = await openViewer(uid);
    const s = await canvasStats(page);
    assert.ok(s.std > 10, JSON.stringify(s) + explain(log));
    // Map the image's corner and centre onto the canvas and compare brightness there.
    const region = async (i, j) => {
      const [x, y] = await page.evaluate(([i, j]) => {
        const r = window.__lightbox.slots()[0].element.getBoundingClientRect();
        const c = window.__lightbox.imageToClient(0, [i, j]);
        const canvas = window.__lightbox.canvas(0);
        const k = canvas.width / r.width;
        return [Math.round((c[0] - r.left) * k), Math.round((c[1] - r.top) * k)];
      }, [i, j]);
      return canvasStats(page, 0, { x: x - 5, y: y - 5, w: 10, h: 10 });
    };
    const dims = await page.evaluate(() => {
      const img = window.__lightbox.slots()[0].viewport().getImageData();
      return img.dimensions;
    });
    const corner = await region(8, 8);
    const centreBottom = await region(Math.round(dims[0] / 2), Math.round(dims[1] * 0.9));
    assert.ok(corner.mean < centreBottom.mean, `corner ${corner.mean} should be darker than the body ${centreBottom.mean}`);
    await page.close();
  });

  test('clear messages: unknown study, lost connection', async () => {
    const { page } = await openViewer('1.2.3.4.5.6.7.8.9', { waitImage: false });
    await page.waitForSelector('.slot-message[data-kind=error]:not([hidden])');
    assert.match(await page.textContent('.slot-message'), /Study not found/);
    await page.close();

    // An image whose bytes cannot be decoded (the archive answers with a broken JPEG 2000 frame).
    const broken = await context.newPage();
    await broken.route('**/frames/**', (route) =>
      route.fulfill({
        status: 200,
        headers: { 'Content-Type': 'multipart/related; type="application/octet-stream"; boundary=b' },
        body: '--b\r\nContent-Type: application/octet-stream; transfer-syntax=1.2.840.10008.1.2.4.90\r\n\r\nnot a codestream\r\n--b--',
      }),
    );
    await broken.goto(`${baseUrl()}/viewer/${ctUid}`);
    await broken.waitForSelector('.slot-message[data-kind=error]:not([hidden])', { timeout: 20000 });
    assert.match(await broken.textContent('.slot-message'), /could not be decoded/);
    await broken.close();

    const { page: p2 } = await openViewer(ctUid);
    await p2.context().setOffline(true);
    await p2.waitForSelector('.banner-warn', { timeout: 10000 });
    assert.match(await p2.textContent('.banner-warn'), /Connection lost/);
    await p2.context().setOffline(false);
    await p2.close();
  });

  test('rotate, flip, zoom, reset and cine', async () => {
    const { page } = await openViewer(ctUid);
    const base = await waitForPixels(page, 0);
    await page.keyboard.press('r');
    const rotated = await waitForChange(page, 0, base.hash);
    assert.equal(await page.evaluate(() => window.__lightbox.slots()[0].viewport().getViewPresentation().rotation), 90);
    await page.keyboard.press('h');
    const flipped = await waitForChange(page, 0, rotated.hash);
    assert.notEqual(flipped.hash, rotated.hash);
    await page.keyboard.press('Escape');
    await waitForChange(page, 0, flipped.hash);
    assert.equal(await page.evaluate(() => window.__lightbox.slots()[0].viewport().getViewPresentation().rotation), 0);
    // Right-drag zooms.
    const zoom = () => page.evaluate(() => window.__lightbox.slots()[0].viewport().getZoom());
    const z0 = await zoom();
    const box = await page.locator('.slot[data-slot="0"] .cs-element').boundingBox();
    // (A drag that starts while the previous render is still in flight can be dropped on a loaded machine:
    // try up to three times.)
    let zoomed = false;
    for (let attempt = 0; attempt < 3 && !zoomed; attempt++) {
      await frames(page, 2);
      await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
      await page.mouse.down({ button: 'right' });
      for (let k = 1; k <= 10; k++) await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2 - 15 * k);
      await page.mouse.up({ button: 'right' });
      zoomed = await page
        .waitForFunction((z0) => Math.abs(window.__lightbox.slots()[0].viewport().getZoom() - z0) > 0.05, z0, { timeout: 4000 })
        .then(() => true, () => false);
    }
    assert.ok(zoomed, 'right-drag zooms');
    assert.match(await page.textContent('.slot[data-slot="0"] .corner.br'), new RegExp(`Zoom: ${Math.round((await zoom()) * 100)}%`));
    // Cine plays through slices, and stops.
    const i0 = await page.evaluate(() => window.__lightbox.slots()[0].viewport().getCurrentImageIdIndex());
    await page.keyboard.press('c');
    await page.waitForFunction((i0) => Math.abs(window.__lightbox.slots()[0].viewport().getCurrentImageIdIndex() - i0) >= 5, i0, { timeout: 10000 });
    await page.keyboard.press('c');
    const stopped = await page.evaluate(() => window.__lightbox.slots()[0].viewport().getCurrentImageIdIndex());
    await page.waitForTimeout(400);
    assert.equal(await page.evaluate(() => window.__lightbox.slots()[0].viewport().getCurrentImageIdIndex()), stopped);
    await page.close();
  });

  test('help panel lists the keyboard shortcuts', async () => {
    const { page } = await openViewer(ctUid);
    await page.keyboard.press('?');
    await page.waitForSelector('#help-panel');
    const text = await page.textContent('#help-panel');
    assert.match(text, /Length/);
    assert.match(text, /Lung/);
    await page.keyboard.press('?');
    await page.waitForSelector('#help-panel', { state: 'detached' });
    await page.close();
  });
});
