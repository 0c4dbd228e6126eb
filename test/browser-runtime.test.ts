// The runtime in headless Chromium on onnxruntime-web against the same runtime in Node on
// onnxruntime-node: for the shipped models, at full depth and with the calibrated exits, the answers,
// captions and every exit layer must be equal. The page may talk to the local server only.
// Also measures how far the browser's image resizing is from sharp's on real photos.
// Needs a Chromium (test/browser.ts: skipped with a notice when there is none, a failure under CI=true).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Page } from 'playwright-core';
import { captionExample, veExample } from '../src/data/sceneworld.js';
import { loadImage } from '../src/data/image.js';
import { encodePng } from '../src/data/png.js';
import { convertOfaCheckpoint } from '../src/model/ofaConvert.js';
import { MuEModel, type InferenceOptions, type Telemetry } from '../src/runtime/mueModel.js';
import { registerBrowserPage } from '../src/serve/browserPage.js';
import { launchChromium, type ChromiumSession } from '../scripts/chromium.js';
// @ts-expect-error: a plain .mjs build script without type declarations
import { buildBrowser } from '../scripts/build-browser.mjs';
import { browserTestOptions } from './browser.js';

const root = join(import.meta.dirname, '..');
const workDir = mkdtempSync(join(tmpdir(), 'mue-browser-runtime-'));
// A converted OFA / MuE checkpoint (the official code's tiny fixture, random weights) beside the shipped models.
const MODELS = { 've-small': join(root, 'models', 've-small'), 'caption-small': join(root, 'models', 'caption-small'), 'ofa-ve': join(workDir, 'ofa-ve') };
const FULL_DEPTH: InferenceOptions = { imageThreshold: 1, textThreshold: 1, jointThreshold: 1, decoderThreshold: 1 };
/** Thresholds under which the tiny OFA fixture model exits early (its layers' similarities are about 0.55–0.85). */
const OFA_EXITS: InferenceOptions = { imageThreshold: 0.5, textThreshold: 0.5, decoderThreshold: 0.5 };
const VE_EXAMPLES = 8;
const CAPTION_EXAMPLES = 4;
const options = browserTestOptions();

let app: FastifyInstance;
let origin: string;
let session: ChromiumSession | undefined;
let page: Page;
const foreignRequests: string[] = [];
const pageErrors: string[] = [];

before(async () => {
  if (options.skip) return;
  const ofaFixture = join(root, 'test', 'fixtures', 'ofa');
  convertOfaCheckpoint({ checkpoint: join(ofaFixture, 'tiny-mue', 'checkpoint.pt.gz'), bpeDir: join(ofaFixture, 'vocab'), out: MODELS['ofa-ve'], task: 've' });
  await buildBrowser({ quiet: true });
  app = Fastify({ logger: false });
  registerBrowserPage(app, Object.entries(MODELS).map(([name, directory]) => ({ name, directory })));
  origin = await app.listen({ host: '127.0.0.1', port: 0 });
  session = await launchChromium();
  // Everything not on the local server is refused and recorded.
  await session.context.route('**/*', (route) => {
    if (route.request().url().startsWith(`${origin}/`)) return route.continue();
    foreignRequests.push(route.request().url());
    return route.abort();
  });
  page = await session.context.newPage();
  page.on('pageerror', (error) => pageErrors.push(error.message));
  await page.goto(`${origin}/browser/`);
});

after(async () => {
  await session?.close();
  await app?.close();
  rmSync(workDir, { recursive: true, force: true });
});

/** What must be equal between Node and the browser. */
const exitsOf = (telemetry: Telemetry) => ({
  imageLayers: telemetry.imageLayers, textLayers: telemetry.textLayers, jointLayers: telemetry.jointLayers, tokenLayers: telemetry.tokenLayers,
});

interface Case { image: { width: number; height: number; pixels: number[] }; hypothesis?: string }

/** Runs the cases in the page with MuEModel.load(url) over onnxruntime-web. */
async function inBrowser(model: string, cases: Case[], optionSets: InferenceOptions[]) {
  return page.evaluate(async ({ model, cases, optionSets }) => {
    const mue = await import('/browser/mue.js');
    const progress: Array<{ status: string; file?: string; loaded?: number; total?: number }> = [];
    // A bound method, not an arrow: tsx would wrap a property-named arrow in a helper the page does not have.
    const loaded = await mue.MuEModel.load(`models/${model}/`, { progress_callback: progress.push.bind(progress) });
    const results = [];
    for (const inferenceOptions of optionSets) {
      for (const { image, hypothesis } of cases) {
        const input = { image: { ...image, pixels: Uint8Array.from(image.pixels) } };
        const result = hypothesis === undefined ? await loaded.caption(input, inferenceOptions) : await loaded.entail({ ...input, hypothesis }, inferenceOptions);
        results.push({ text: result.answer ?? result.caption, telemetry: result.telemetry });
      }
    }
    await loaded.dispose();
    return { results, progress };
  }, { model, cases, optionSets });
}

async function inNode(model: string, cases: Case[], optionSets: InferenceOptions[]) {
  const loaded = await MuEModel.load(MODELS[model as keyof typeof MODELS]);
  const results = [];
  for (const inferenceOptions of optionSets) {
    for (const { image, hypothesis } of cases) {
      const input = { image: { ...image, pixels: Uint8Array.from(image.pixels) } };
      const result = hypothesis === undefined ? await loaded.caption(input, inferenceOptions) : await loaded.entail({ ...input, hypothesis }, inferenceOptions);
      results.push({ text: 'answer' in result ? result.answer : result.caption, telemetry: result.telemetry });
    }
  }
  await loaded.dispose();
  return results;
}

const asCase = (image: { width: number; height: number; pixels: Uint8Array }, hypothesis?: string): Case =>
  ({ image: { width: image.width, height: image.height, pixels: [...image.pixels] }, hypothesis });

const veCases = Array.from({ length: VE_EXAMPLES }, (_, i) => { const e = veExample(i, { split: 'test', seed: 1, imageSize: 64 }); return asCase(e.image, e.hypothesis); });
for (const [model, cases, exits] of [
  ['ve-small', veCases, {}],
  ['caption-small', Array.from({ length: CAPTION_EXAMPLES }, (_, i) => asCase(captionExample(i, { split: 'test', seed: 1, imageSize: 64 }).image)), {}],
  ['ofa-ve', veCases.slice(0, 4), OFA_EXITS],
] as const) {
  test(`${model}: the browser's answers and exit layers equal Node's, at full depth and with ${model === 'ofa-ve' ? 'early' : 'the calibrated'} exits`, options, async () => {
    const optionSets = [FULL_DEPTH, exits];
    const { results: browser, progress } = await inBrowser(model, [...cases], optionSets);
    const node = await inNode(model, [...cases], optionSets);
    // Progress as transformers.js reports it: per file initiate … done, then ready.
    const weightsBytes = statSync(join(MODELS[model], 'model.safetensors')).size;
    assert.deepEqual(progress.find((event) => event.status === 'done' && event.file === 'model.safetensors'),
      { status: 'done', name: `models/${model}/`, file: 'model.safetensors', loaded: weightsBytes, total: weightsBytes });
    assert.ok(progress.some((event) => event.status === 'progress' && event.file === 'model.safetensors' && event.total === weightsBytes));
    assert.deepEqual(progress.at(-1), { status: 'ready', name: `models/${model}/` });
    assert.equal(browser.length, node.length);
    let earlyExits = 0;
    for (let i = 0; i < node.length; i++) {
      const where = `${i < cases.length ? 'full depth' : 'exits'}, example ${i % cases.length}`;
      assert.equal(browser[i]!.text, node[i]!.text, `${where}: answer`);
      assert.deepEqual(exitsOf(browser[i]!.telemetry), exitsOf(node[i]!.telemetry), `${where}: exit layers`);
      assert.equal(browser[i]!.telemetry.flops, node[i]!.telemetry.flops, `${where}: FLOPs`);
      if (browser[i]!.telemetry.flops < browser[i]!.telemetry.fullDepthFlops) earlyExits++;
    }
    // The comparison must include real exits, not only full-depth runs.
    assert.ok(earlyExits > 0, 'some inputs exit early with the calibrated thresholds');
    assert.deepEqual(foreignRequests, [], 'nothing but the local server was asked');
    assert.deepEqual(pageErrors, []);
  });
}

test('page images (File) are resized like the Node path: a few levels apart on real photos', options, async () => {
  const photos = ['snli-ve-jsonl/flickr30k_images/1000.jpg', 'snli-ve-jsonl/flickr30k_images/1001.jpg', 'coco/val2014/COCO_val2014_000000000503.png']
    .map((path) => join(root, 'test/fixtures/datasets', path));
  for (const path of photos) {
    const bytes = readFileSync(path);
    const node = await loadImage(bytes, 64, path);
    const browser = await page.evaluate(async ({ bytes, type }) => {
      const mue = await import('/browser/mue.js');
      const image = await mue.readImage(new Blob([Uint8Array.from(bytes)], { type }), 64);
      return [...image.pixels];
    }, { bytes: [...bytes], type: path.endsWith('.png') ? 'image/png' : 'image/jpeg' });
    assert.equal(browser.length, node.pixels.length);
    const meanAbs = meanAbsDifference(browser, node.pixels);
    console.log(`# ${path.split('/').pop()}: browser vs sharp mean |Δ| = ${meanAbs.toFixed(2)} of 255`);
    assert.ok(meanAbs < 6, `${path}: mean difference ${meanAbs} levels`);
  }
  assert.deepEqual(foreignRequests, []);
});

test('two models run at once in one page give the answers they give one at a time (onnxruntime-web runs are queued)', options, async () => {
  const outcome = await page.evaluate(async (cases) => {
    const mue = await import('/browser/mue.js');
    const [ve, captioner] = [await mue.MuEModel.load('models/ve-small/'), await mue.MuEModel.load('models/caption-small/')];
    const image = { ...cases[0].image, pixels: Uint8Array.from(cases[0].image.pixels) };
    const alone = [(await ve.entail({ image, hypothesis: cases[0].hypothesis })).answer, (await captioner.caption({ image })).caption];
    const together = await Promise.all([ve.entail({ image, hypothesis: cases[0].hypothesis }), captioner.caption({ image }), ve.entail({ image, hypothesis: cases[0].hypothesis })]);
    await ve.dispose();
    await captioner.dispose();
    return { alone, together: [together[0].answer, together[1].caption, together[2].answer] };
  }, veCases.slice(0, 1));
  assert.deepEqual(outcome.together, [...outcome.alone, outcome.alone[0]]);
});

test('a URL without a model is refused with a message naming the missing file', options, async () => {
  const message = await page.evaluate(async () => {
    const mue = await import('/browser/mue.js');
    return mue.MuEModel.load('models/nothing-here/').then(() => 'loaded', (error: Error) => error.message);
  });
  assert.match(message, /\/browser\/models\/nothing-here\/(config|tokenizer)\.json is not a model file: the server answered 404/);
});

/** Mean |Δ| over all bytes, in levels of 255. */
const meanAbsDifference = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!);
  return sum / a.length;
};

test('large scene pictures downscaled by the page or by sharp: bytes a few levels apart, answers mostly equal', options, async () => {
  const SCENES = 12;
  const model = await MuEModel.load(MODELS['ve-small']);
  let agree = 0;
  let totalDifference = 0;
  for (let i = 0; i < SCENES; i++) {
    // The same scene rendered at 256 px, as a user's bigger picture would be.
    const example = veExample(i, { split: 'test', seed: 1, imageSize: 256 });
    const png = encodePng(example.image);
    const node = await loadImage(png, 64, `scene ${i}`);
    const browser = Uint8Array.from(await page.evaluate(async (bytes) => {
      const mue = await import('/browser/mue.js');
      return [...(await mue.readImage(new Blob([Uint8Array.from(bytes)], { type: 'image/png' }), 64)).pixels];
    }, [...png]));
    totalDifference += meanAbsDifference(browser, node.pixels);
    const [a, b] = [await model.entail({ image: node, hypothesis: example.hypothesis }), await model.entail({ image: { ...node, pixels: browser }, hypothesis: example.hypothesis })];
    if (a.answer === b.answer) agree++;
  }
  await model.dispose();
  console.log(`# ${SCENES} scenes 256 -> 64 px: browser vs sharp mean |Δ| = ${(totalDifference / SCENES).toFixed(2)} of 255; same answer on ${agree}/${SCENES}`);
  assert.ok(totalDifference / SCENES < 6);
  assert.ok(agree >= SCENES - 2, `answers agree on ${agree} of ${SCENES}`);
});
