// The demo page in headless Chromium, as a user would use it: the page loads a SceneWorld example,
// the user types a hypothesis and asks; the answer, the per-layer exit picture and the time saved
// appear. Needs a Chromium (test/browser.ts: skipped with a
// notice when there is none, a failure under CI=true).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { MuEModel } from '../src/runtime/mueModel.js';
import { buildServer } from '../src/serve/app.js';
import { launchChromium, type ChromiumSession } from '../scripts/chromium.js';
import { browserTestOptions } from './browser.js';
import { saveRandomCheckpoint } from './helpers.js';

const workDir = mkdtempSync(join(tmpdir(), 'mue-serve-browser-'));
let model: MuEModel;
let app: FastifyInstance;
let session: ChromiumSession | undefined;

before(async () => {
  await saveRandomCheckpoint(join(workDir, 've'), 've');
  model = await MuEModel.load(join(workDir, 've'));
  ({ app } = await buildServer(model));
});

after(async () => {
  await session?.close();
  await app.close();
  await model.dispose();
  rmSync(workDir, { recursive: true, force: true });
});

test('the demo page answers a hypothesis and shows where each stream and word exited', browserTestOptions(), async () => {
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  session = await launchChromium();
  const page = await session.context.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  await page.goto(url);

  await page.locator('#preview[src^="data:image/png"]').waitFor();
  await page.locator('#example-index').fill('5');
  await page.locator('#generate').click();
  await page.locator('#example-note', { hasText: 'test example 5' }).waitFor();
  await page.locator('#hypothesis').fill('there is a red circle');
  await page.locator('#submit').click();

  await page.locator('#answer').filter({ hasText: /^(yes|no|maybe)$/ }).waitFor({ timeout: 15_000 });
  assert.equal(await page.locator('#error').innerText(), '', 'no error shown');
  const rows = page.locator('#exits tr.exit-row');
  assert.equal(await rows.count(), 3, 'image stream, text stream and the one answer word');
  const rowText = await rows.allInnerTexts();
  assert.match(rowText[0]!, /image stream[\s\S]*exited at [12] of 2/);
  assert.match(rowText[1]!, /text stream[\s\S]*exited at [12] of 2/);
  assert.match(rowText[2]!, /(yes|no|maybe)[\s\S]*exited at [12] of 2/);
  assert.equal(await page.locator('#exits td.exit').count(), 3, 'one exit cell per row');
  assert.match(await page.locator('#savings').innerText(), /FLOPs: [\d.]+% of full depth .* ms with exits vs [\d.]+ ms at full depth/);
  assert.deepEqual(pageErrors, []);

  const screenshotPath = join(workDir, 'serve-demo.png');
  await page.screenshot({ path: screenshotPath, fullPage: true });
  assert.ok(statSync(screenshotPath).size > 20_000, 'the screenshot is not blank');
});
