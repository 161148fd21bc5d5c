// Screenshots for the docs: the study list, the viewer with a length and an ellipse ROI, MPR, 2x2, and the AI panel.
//   LIGHTBOX_URL=... LIGHTBOX_USER=... LIGHTBOX_PASSWORD=... node tests/browser/screenshots.mjs [out-dir]
// (tests/browser/run.sh --screenshots sets these up against a fresh server with the demo data.)
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, baseUrl, launch, loggedInContext, studyUidByPatient, waitForImage } from './lib.mjs';

const out = path.resolve(process.argv[2] ?? path.join(ROOT, 'docs', 'screenshots'));
fs.mkdirSync(out, { recursive: true });

const browser = await launch();
const context = await loggedInContext(browser, { viewport: { width: 1440, height: 900 } });
const page = await context.newPage();
page.on('dialog', (d) => d.accept('nodule'));

await page.goto(`${baseUrl()}/`);
await page.waitForSelector('#study-rows tr');
await page.waitForTimeout(300);
await page.screenshot({ path: path.join(out, 'study-list.png') });

const uid = await studyUidByPatient(page, 'Phantom^Chest');
// Drop measurements an earlier run left, so the picture shows exactly the ones drawn here.
await page.evaluate(async (uid) => {
  const csrftoken = document.cookie.match(/csrftoken=([^;]+)/)?.[1] ?? '';
  const list = await (await fetch(`/api/viewer/studies/${uid}/measurements/`)).json();
  for (const m of list) await fetch(`/api/viewer/studies/${uid}/measurements/${m.uid}/`, { method: 'DELETE', headers: { 'X-CSRFToken': csrftoken } });
}, uid);
await page.goto(`${baseUrl()}/viewer/${uid}`);
await waitForImage(page);
await page.waitForFunction(() => window.__lightbox.metrics().allLoadedMs !== undefined, null, { timeout: 60000 });
const draw = async (key, from, to) => {
  await page.keyboard.press(key);
  const a = await page.evaluate((p) => window.__lightbox.imageToClient(0, p), from);
  const b = await page.evaluate((p) => window.__lightbox.imageToClient(0, p), to);
  await page.mouse.move(a[0], a[1]);
  await page.mouse.down();
  await page.mouse.move(b[0], b[1], { steps: 8 });
  await page.mouse.up();
};
await draw('l', [106, 300], [406, 300]);
await draw('e', [330, 200], [380, 250]);
await page.keyboard.press('w');
await page.evaluate(() => window.__lightbox.measurements.flush());
await page.waitForTimeout(500);
await page.screenshot({ path: path.join(out, 'viewer-measurements.png') });

await page.keyboard.press('m');
await page.waitForFunction(() => window.__lightbox.slots().length === 3 && window.__lightbox.slots().every((s) => s.kind === 'mpr' && s.message.hidden), null, { timeout: 60000 });
await page.waitForTimeout(3000);
await page.screenshot({ path: path.join(out, 'viewer-mpr.png') });

await page.keyboard.press('m');
await page.waitForFunction(() => window.__lightbox.slots()[0].kind === 'stack');
await page.click('#btn-layout-2x2');
await page.waitForTimeout(3000);
await page.screenshot({ path: path.join(out, 'viewer-2x2.png') });

// The AI panel: segmentation overlay, legend and detections of chest-ct-nodules (run here if the study has no
// result yet), the first detection selected.
const ai = await context.newPage();
await ai.goto(`${baseUrl()}/viewer/${uid}`);
await waitForImage(ai);
await ai.waitForFunction(() => window.__lightbox.ai.ready(), null, { timeout: 60000 });
const hasResult = await ai.evaluate(() => window.__lightbox.ai.state.list().some((j) => j.model === 'chest-ct-nodules' && j.status === 'completed'));
if (!hasResult) {
  await ai.selectOption('#ai-model', 'chest-ct-nodules');
  await ai.click('#ai-run');
  await ai.waitForSelector('#ai-jobs li[data-status="completed"]', { timeout: 300000 });
}
await ai.waitForSelector('#ai-detections li[data-det]', { timeout: 30000 });
await ai.waitForFunction(() => window.__lightbox.ai.labelled() > 0, null, { timeout: 30000 });
await ai.click('#ai-detections li[data-det]');
await ai.waitForSelector('.ai-layer .ai-box polygon', { timeout: 10000 });
await ai.waitForTimeout(1500);
await ai.screenshot({ path: path.join(out, 'viewer-ai.png') });

await browser.close();
console.log(`screenshots written to ${out}`);
