// The in-browser demo page as `mue serve` serves it (/browser/), in headless Chromium with the network
// limited to the local server: it loads the served model into the page, draws a SceneWorld scene,
// answers with and without exits exactly as the Node runtime does, and answers a painted picture.
// Needs a Chromium (test/browser.ts: skipped with a notice when there is none, a failure under CI=true).
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, normalize } from 'node:path';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { veExample } from '../src/data/sceneworld.js';
import { MuEModel } from '../src/runtime/mueModel.js';
import { buildServer } from '../src/serve/app.js';
import { launchChromium, type ChromiumSession } from '../scripts/chromium.js';
// @ts-expect-error: a plain .mjs build script without type declarations
import { buildBrowser } from '../scripts/build-browser.mjs';
import { BROWSER_BUNDLE_DIR } from '../src/serve/browserPage.js';
import { browserTestOptions } from './browser.js';

const root = join(import.meta.dirname, '..');
const modelDir = join(root, 'models', 've-small');
const SCENE = 3;
const options = browserTestOptions();
let model: MuEModel;
let app: FastifyInstance;
let session: ChromiumSession | undefined;

before(async () => {
  if (options.skip) return;
  await buildBrowser({ quiet: true });
  model = await MuEModel.load(modelDir);
  ({ app } = await buildServer(model, undefined, { modelDirectory: modelDir }));
});

after(async () => {
  await session?.close();
  await app?.close();
  await model?.dispose();
});

test('the browser demo page runs the served model in the page, with and without exits, as Node does', options, async () => {
  const origin = await app.listen({ host: '127.0.0.1', port: 0 });
  session = await launchChromium();
  const foreign: string[] = [];
  const modelRequests: string[] = [];
  await session.context.route('**/*', (route) => {
    const url = route.request().url();
    if (!url.startsWith(`${origin}/`)) {
      foreign.push(url);
      return route.abort();
    }
    if (url.includes('/v1/')) modelRequests.push(url);
    return route.continue();
  });
  const page = await session.context.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  await page.goto(`${origin}/browser/`);
  await page.locator('#submit:not([disabled])').waitFor({ timeout: 60_000 });
  assert.match(await page.locator('#load-note').innerText(), /loaded, graphs built and warmed up in [\d.]+ s; onnxruntime-web wasm/);

  await page.locator('#example-index').fill(String(SCENE));
  await page.locator('#generate').click();
  const example = veExample(SCENE, { split: 'test', seed: 1, imageSize: model.config.imageSize });
  assert.equal(await page.locator('#hypothesis').inputValue(), example.hypothesis);

  for (const exits of [true, false]) {
    await page.locator('#use-exits').setChecked(exits);
    await page.locator('#answer').evaluate((element) => { element.textContent = ''; });
    await page.locator('#submit').click();
    await page.locator('#answer').filter({ hasText: /^(yes|no|maybe)$/ }).waitFor({ timeout: 30_000 });
    const expected = await model.entail({ image: example.image, hypothesis: example.hypothesis }, exits ? {} : { imageThreshold: 1, textThreshold: 1, decoderThreshold: 1 });
    assert.equal(await page.locator('#answer').innerText(), expected.answer, `answer (${exits ? 'exits' : 'full depth'})`);
    const rows = await page.locator('#exits tr.exit-row').allInnerTexts();
    const { imageLayers, textLayers, tokenLayers } = expected.telemetry;
    const layers = model.config.encoderLayers;
    assert.match(rows[0]!, new RegExp(`image stream[\\s\\S]*exited at ${imageLayers} of ${layers}`));
    assert.match(rows[1]!, new RegExp(`text stream[\\s\\S]*exited at ${textLayers} of ${layers}`));
    assert.match(rows[2]!, new RegExp(`${expected.answer}[\\s\\S]*exited at ${tokenLayers[0]} of ${model.config.decoderLayers}`));
    assert.match(await page.locator('#timing').innerText(), /[\d.]+ ms in this browser; FLOPs: [\d.]+% of full depth/);
  }

  // Paint on the canvas: the page reads the canvas itself and still answers.
  await page.locator('#answer').evaluate((element) => { element.textContent = ''; });
  const box = (await page.locator('#canvas').boundingBox())!;
  await page.mouse.move(box.x + 40, box.y + 40);
  await page.mouse.down();
  await page.mouse.move(box.x + 200, box.y + 200, { steps: 10 });
  await page.mouse.up();
  await page.locator('#hypothesis').fill('there is a red circle');
  await page.locator('#submit').click();
  await page.locator('#answer').filter({ hasText: /^(yes|no|maybe)$/ }).waitFor({ timeout: 30_000 });

  assert.equal(await page.locator('#error').innerText(), '');
  assert.deepEqual(modelRequests, [], 'the page never asked the server to run the model');
  assert.deepEqual(foreign, [], 'nothing but the local server was asked');
  assert.deepEqual(pageErrors, []);
});

test('the page works from a plain static host: dist/browser copied beside a models folder, no special headers', options, async () => {
  // The simplest static host: files by path, a content type by extension, 404 otherwise; no COOP/COEP (so no threads).
  const site = mkdtempSync(join(tmpdir(), 'mue-static-'));
  cpSync(BROWSER_BUNDLE_DIR, site, { recursive: true });
  cpSync(join(root, 'models', 'caption-small'), join(site, 'models', 'caption-small'), { recursive: true });
  const types: Record<string, string> = { html: 'text/html', js: 'text/javascript', mjs: 'text/javascript', css: 'text/css', json: 'application/json', wasm: 'application/wasm' };
  const server: Server = createServer((request, response) => {
    const path = normalize(decodeURIComponent(new URL(request.url!, 'http://x').pathname)).replace(/^\/+/, '') || 'index.html';
    try {
      const body = readFileSync(join(site, path));
      response.writeHead(200, { 'content-type': types[path.split('.').pop()!] ?? 'application/octet-stream' }).end(body);
    } catch {
      response.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as { port: number };
  const staticOrigin = `http://127.0.0.1:${address.port}`;
  session ??= await launchChromium();
  const page = await session.context.newPage();
  const foreign: string[] = [];
  await page.route('**/*', (route) => {
    if (route.request().url().startsWith(`${staticOrigin}/`)) return route.continue();
    foreign.push(route.request().url());
    return route.abort();
  });
  try {
    // No models.json here: the page falls back to models/ve-small/ and models/caption-small/; ask for the caption model.
    await page.goto(`${staticOrigin}/index.html?model=caption-small`);
    await page.locator('#submit:not([disabled])').waitFor({ timeout: 60_000 });
    assert.match(await page.locator('#load-note').innerText(), /1 thread\(s\) \(page not cross-origin isolated: no threads\)/);
    await page.locator('#submit').click();
    await page.locator('#exits tr.exit-row').first().waitFor({ timeout: 60_000 });
    assert.notEqual(await page.locator('#answer').innerText(), '', 'a caption was written');
    assert.equal(await page.locator('#error').innerText(), '');
    assert.deepEqual(foreign, []);
  } finally {
    await page.close();
    server.close();
    rmSync(site, { recursive: true, force: true });
  }
});
