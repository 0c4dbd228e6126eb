// In-browser runtime speed: per-example latency of the shipped models (ve-small, caption-small) in
// headless Chromium on onnxruntime-web (WebAssembly), at full depth and with the calibrated exits
// (exits.json), against the Node runtime (onnxruntime-node) on the same inputs and machine. Browser
// and Node calls alternate example by example (browser full, Node full, browser exits, Node exits)
// so load from other processes hits both alike; results are compared by medians.
// Latency = telemetry.timeMs (the runtime's own wall clock around one request, same code on both sides).
// Writes results/bench-browser.json. Usage: npm run bench:browser [-- --examples 20] [--warmup 3]
// (npm run bench:browser builds the bundle first.)
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Fastify from 'fastify';
import { captionExample, veExample } from '../src/data/sceneworld.js';
import { writeFileAtomic } from '../src/model/atomicWrite.js';
import { defaultThreads } from '../src/runtime/layerRunner.js';
import { MuEModel, type InferenceOptions } from '../src/runtime/mueModel.js';
import { registerBrowserPage } from '../src/serve/browserPage.js';
import { launchChromium } from '../scripts/chromium.js';

const { values: flags } = parseArgs({ options: { examples: { type: 'string', default: '20' }, warmup: { type: 'string', default: '3' }, out: { type: 'string' } } });
const examples = Number(flags.examples);
const warmup = Number(flags.warmup);
if (!Number.isInteger(examples) || examples < 1) throw new Error(`--examples must be a positive integer (got ${flags.examples})`);
if (!Number.isInteger(warmup) || warmup < 0) throw new Error(`--warmup must be a non-negative integer (got ${flags.warmup})`);
const root = join(import.meta.dirname, '..');
const outPath = flags.out ?? join(root, 'results', 'bench-browser.json');
const command = `npm run bench:browser${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
const MODELS = { 've-small': join(root, 'models', 've-small'), 'caption-small': join(root, 'models', 'caption-small') } as const;
const FULL_DEPTH: InferenceOptions = { imageThreshold: 1, textThreshold: 1, jointThreshold: 1, decoderThreshold: 1 };
const MODES = { full: FULL_DEPTH, exits: {} } as const;

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};
const round = (value: number, digits = 2) => Number(value.toFixed(digits));

const started = performance.now();
const loadAverageAtStart = os.loadavg();
const app = Fastify({ logger: false });
registerBrowserPage(app, Object.entries(MODELS).map(([name, directory]) => ({ name, directory })));
const origin = await app.listen({ host: '127.0.0.1', port: 0 });
const session = await launchChromium();
const page = await session.context.newPage();
await page.goto(`${origin}/browser/`);
const results: Record<string, unknown> = {};
let browserInfo: { crossOriginIsolated: boolean; threads: number; userAgent: string } | undefined;

for (const [name, directory] of Object.entries(MODELS)) {
  const node = await MuEModel.load(directory);
  const { imageSize } = node.config;
  const inputs = Array.from({ length: warmup + examples }, (_, i) => {
    const example = node.task === 've' ? veExample(i, { split: 'test', seed: 1, imageSize }) : captionExample(i, { split: 'test', seed: 1, imageSize });
    return { pixels: [...example.image.pixels], hypothesis: 'hypothesis' in example ? example.hypothesis : undefined };
  });
  const browserLoadMs = await page.evaluate(async (modelName) => {
    const t0 = performance.now();
    const mue = await import('/browser/mue.js');
    (globalThis as Record<string, unknown>).model = await mue.MuEModel.load(`models/${modelName}/`);
    return performance.now() - t0;
  }, name);
  browserInfo ??= await page.evaluate(async () => ({
    crossOriginIsolated, threads: (await import('/browser/mue.js')).wasmThreads(), userAgent: navigator.userAgent,
  }));
  const rows = [];
  for (let i = 0; i < inputs.length; i++) {
    const { pixels, hypothesis } = inputs[i]!;
    const row: Record<string, unknown> = { example: i - warmup };
    for (const [mode, options] of Object.entries(MODES)) {
      const browser = await page.evaluate(async ({ pixels, hypothesis, options, imageSize }) => {
        const model = (globalThis as Record<string, any>).model;
        const image = { width: imageSize, height: imageSize, pixels: Uint8Array.from(pixels) };
        const result = hypothesis === undefined ? await model.caption({ image }, options) : await model.entail({ image, hypothesis }, options);
        return { text: result.answer ?? result.caption, timeMs: result.telemetry.timeMs as number };
      }, { pixels, hypothesis, options, imageSize });
      const image = { width: imageSize, height: imageSize, pixels: Uint8Array.from(pixels) };
      const nodeResult = hypothesis === undefined ? await node.caption({ image }, options) : await node.entail({ image, hypothesis }, options);
      const nodeText = 'answer' in nodeResult ? nodeResult.answer : nodeResult.caption;
      row[mode] = { browserMs: round(browser.timeMs), nodeMs: round(nodeResult.telemetry.timeMs), sameOutput: browser.text === nodeText };
    }
    if (i >= warmup) rows.push(row);
    process.stderr.write(`\r${name}: ${i + 1}/${inputs.length}`);
  }
  process.stderr.write('\n');
  await page.evaluate(async () => (globalThis as Record<string, any>).model.dispose());
  await node.dispose();
  const summary: Record<string, unknown> = {};
  for (const mode of Object.keys(MODES)) {
    const browserMs = rows.map((row) => (row[mode] as { browserMs: number }).browserMs);
    const nodeMs = rows.map((row) => (row[mode] as { nodeMs: number }).nodeMs);
    summary[mode] = {
      browserMedianMs: round(median(browserMs)), nodeMedianMs: round(median(nodeMs)),
      browserToNodeRatio: round(median(browserMs) / median(nodeMs)),
      sameOutputs: rows.filter((row) => (row[mode] as { sameOutput: boolean }).sameOutput).length,
    };
  }
  const full = summary.full as { browserMedianMs: number; nodeMedianMs: number };
  const exits = summary.exits as { browserMedianMs: number; nodeMedianMs: number };
  summary.exitSpeedup = { browser: round(full.browserMedianMs / exits.browserMedianMs), node: round(full.nodeMedianMs / exits.nodeMedianMs) };
  results[name] = { browserLoadMs: round(browserLoadMs, 0), nodeThreads: defaultThreads(node.config), summary, perExample: rows };
  console.log(name, JSON.stringify(summary));
}
await session.close();
await app.close();

const report = {
  command,
  date: new Date().toISOString(),
  durationSeconds: round((performance.now() - started) / 1000, 1),
  machine: {
    platform: os.platform(), arch: os.arch(), cpuModel: os.cpus()[0]?.model, cpuCount: os.cpus().length, node: process.version,
    loadAverageAtStart, loadAverageAtEnd: os.loadavg(),
    note: 'a shared 2-core machine: other processes ran during the measurement (see the load averages); ratios of interleaved medians are the meaningful numbers',
  },
  browser: { ...browserInfo, backend: 'onnxruntime-web wasm (SIMD)' },
  settings: { examples, warmup, data: 'SceneWorld test split, seed 1, examples 0..N-1', modes: { full: 'all thresholds 1', exits: 'the model\'s exits.json' } },
  models: results,
};
writeFileAtomic(outPath, `${JSON.stringify(report, null, 2)}\n`);
console.log(`wrote ${outPath}`);
