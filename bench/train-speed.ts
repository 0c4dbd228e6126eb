// Training-step speed: TensorFlow.js (fast BatchMatMul gradient) vs the ONNX Runtime engine,
// interleaved in one process so machine noise hits both, for small at batch 16 and 32 and
// ofa-tiny at batch 16 (caption-shaped batches: 64 image patches, a 6-token prompt, 12 target
// tokens; layer-wise loss). Also measures the machine's ORT MatMul ceiling, and the peak RSS
// of ORT training small at batch 32 in a child process (tfjs' memory is not counted).
// Writes results/bench-train.json.
// Usage: npm run bench:train [-- --rounds 3 --threads 2 --profile]
//   --profile: also write ORT's profile of the small batch-32 step and print time per op type.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../src/graph/onnxBuilder.js';
import { initTensorflow, tf } from '../src/model/backend.js';
import { type ModelConfig, imagePatchCount, patchVectorSize, presetConfig } from '../src/model/config.js';
import { TfModel } from '../src/model/tfModel.js';
import { AdamW } from '../src/train/adamw.js';
import type { TrainingBatch } from '../src/train/batch.js';
import { type LossOptions, TfjsEngine, type TrainingEngine } from '../src/train/engine.js';
import { OrtEngine } from '../src/train/ortEngine.js';
import { DEFAULT_THREADS, fromVariables } from '../src/train/trainer.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    threads: { type: 'string', default: String(DEFAULT_THREADS) },
    profile: { type: 'boolean', default: false },
    'rss-probe': { type: 'boolean', default: false },
  },
});
const rounds = Number(values.rounds);
const threads = Number(values.threads);
const TEXT_LENGTH = 6;
const TARGET_LENGTH = 12;
const VOCAB = 64;
const LOSS: LossOptions = { smoothing: 0.1, mode: 'layerwise' };
const optimizer = () => new AdamW({ learningRate: 1e-4, warmupSteps: 1, totalSteps: 1000, minLearningRateRatio: 0.1, weightDecay: 0.01, clipNorm: 1, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 });

function captionBatch(config: ModelConfig, size: number): TrainingBatch {
  return {
    inputs: {
      images: tf.randomUniform([size, config.imageSize, config.imageSize, 3], -1, 1, 'float32', 1) as tf.Tensor4D,
      textIds: tf.randomUniform([size, TEXT_LENGTH], 4, VOCAB, 'int32', 2) as tf.Tensor2D,
      textMask: tf.ones([size, TEXT_LENGTH]) as tf.Tensor2D,
      decoderIds: tf.randomUniform([size, TARGET_LENGTH], 4, VOCAB, 'int32', 3) as tf.Tensor2D,
    },
    targets: tf.randomUniform([size, TARGET_LENGTH], 4, VOCAB, 'int32', 4) as tf.Tensor2D,
    targetMask: tf.ones([size, TARGET_LENGTH]) as tf.Tensor2D,
  };
}

/**
 * Matrix-product FLOPs of one training step: 3 × the forward's (the backward does two products
 * per forward product). Forward per sample: patch projection, encoder layers per stream
 * (Q, K, V, O: 4·T·D²; scores and context: 2·T²·D; FFN: 2·T·D·F), decoder layers (self and
 * cross attention, cross K/V over the memory M, FFN) and the tied head of every layer; 2 FLOPs per multiply-add.
 */
function trainingStepFlops(config: ModelConfig, batch: number): number {
  const { dim: d, ffnDim: f, vocabSize: v } = config;
  const np = imagePatchCount(config);
  const t = TARGET_LENGTH;
  const m = np + TEXT_LENGTH;
  const encoderLayer = (n: number) => 4 * n * d * d + 2 * n * n * d + 2 * n * d * f;
  const streams = config.encoderMode === 'decomposed' ? encoderLayer(np) + encoderLayer(TEXT_LENGTH) : encoderLayer(m);
  const decoderLayer = 4 * t * d * d + 2 * t * t * d + 2 * t * d * d + 2 * m * d * d + 2 * t * m * d + 2 * t * d * f + t * d * v;
  const forward = np * patchVectorSize(config) * d + config.encoderLayers * streams + config.decoderLayers * decoderLayer;
  return 3 * 2 * forward * batch;
}

/** The best GFLOP/s of one ORT MatMul over shapes like the training step's. */
async function matMulCeiling(): Promise<{ gflops: number; shapes: string }> {
  let best = 0;
  let bestShape = '';
  for (const [m, k, n] of [[2048, 128, 512], [2048, 512, 128], [4096, 256, 1024], [1024, 1024, 1024]] as const) {
    const builder = new GraphBuilder(new Map());
    const a = builder.input({ name: 'a', type: 'float32', dims: [m, k] });
    const b = builder.input({ name: 'b', type: 'float32', dims: [k, n] });
    builder.output(builder.node('MatMul', [a, b]), { name: 'c', type: 'float32', dims: [m, n] });
    const session = await ort.InferenceSession.create(builder.build('matmul'), { intraOpNumThreads: threads, graphOptimizationLevel: 'all' });
    const feeds = { a: new ort.Tensor('float32', new Float32Array(m * k).fill(0.5), [m, k]), b: new ort.Tensor('float32', new Float32Array(k * n).fill(0.5), [k, n]) };
    await session.run(feeds);
    const times: number[] = [];
    for (let i = 0; i < 10; i++) {
      const started = performance.now();
      await session.run(feeds);
      times.push(performance.now() - started);
    }
    await session.release();
    const gflops = (2 * m * k * n) / (median(times) * 1e6);
    if (gflops > best) [best, bestShape] = [gflops, `${m}x${k}x${n}`];
  }
  return { gflops: best, shapes: bestShape };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Time per op type from an ORT profile (JSON trace events), per run. */
function summariseProfile(file: string): { op: string; msPerStep: number; share: number }[] {
  const events = JSON.parse(readFileSync(file, 'utf8')) as { cat: string; name: string; dur: number; args?: { op_name?: string } }[];
  const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').length;
  const byOp = new Map<string, number>();
  let total = 0;
  for (const event of events) {
    if (event.cat !== 'Node' || !event.name.endsWith('_kernel_time') || !event.args?.op_name) continue;
    byOp.set(event.args.op_name, (byOp.get(event.args.op_name) ?? 0) + event.dur);
    total += event.dur;
  }
  return [...byOp].sort((a, b) => b[1] - a[1]).map(([op, microseconds]) => ({ op, msPerStep: microseconds / 1000 / runs, share: microseconds / total }));
}

async function timedStep(engine: TrainingEngine, batch: TrainingBatch): Promise<number> {
  const started = performance.now();
  await engine.step(batch);
  return performance.now() - started;
}

await initTensorflow();

if (values['rss-probe']) {
  // Child process: ORT alone, small at batch 32; prints its peak RSS in bytes.
  const config = presetConfig('small', VOCAB);
  const engine = new OrtEngine(config, fromVariables(TfModel.initialise(config, 1).weights), optimizer(), { loss: LOSS, threads });
  const batch = captionBatch(config, 32);
  for (let i = 0; i < 3; i++) await engine.step(batch);
  await engine.release();
  console.log(process.resourceUsage().maxRSS * 1024);
  process.exit(0);
}

const cases = [{ preset: 'small', batch: 16 }, { preset: 'small', batch: 32 }, { preset: 'ofa-tiny', batch: 16 }];
const results = [];
const profileDir = join(tmpdir(), `mue-train-profile-${process.pid}`);
for (const { preset, batch: batchSize } of cases) {
  const config = presetConfig(preset, VOCAB);
  const model = TfModel.initialise(config, 1);
  const profile = values.profile && preset === 'small' && batchSize === 32;
  if (profile) mkdirSync(profileDir, { recursive: true });
  const ortEngine = new OrtEngine(config, fromVariables(model.weights), optimizer(), { loss: LOSS, threads, ...(profile ? { profilePrefix: join(profileDir, 'step') } : {}) });
  const engines: Record<'tfjs' | 'ort', TrainingEngine> = { tfjs: new TfjsEngine(model, optimizer(), LOSS), ort: ortEngine };
  const batch = captionBatch(config, batchSize);
  const times: Record<'tfjs' | 'ort', number[]> = { tfjs: [], ort: [] };
  // Warm-up: kernel set-up and allocation (ORT plans its memory over the first two runs).
  await timedStep(engines.tfjs, batch);
  for (let i = 0; i < 2; i++) await timedStep(engines.ort, batch);
  for (let round = 0; round < rounds; round++) {
    for (const name of ['tfjs', 'ort'] as const) {
      times[name].push(await timedStep(engines[name], batch));
      console.error(`${preset} batch ${batchSize} round ${round + 1}/${rounds} ${name}: ${times[name].at(-1)!.toFixed(0)} ms/step`);
    }
  }
  await ortEngine.release();
  model.dispose();
  const flops = trainingStepFlops(config, batchSize);
  const summary = (name: 'tfjs' | 'ort') => {
    const msPerStep = median(times[name]);
    return { samplesPerSecond: (batchSize * 1000) / msPerStep, msPerStep, gflopsPerSecond: flops / (msPerStep * 1e6) };
  };
  const tfjs = summary('tfjs');
  const ortResult = summary('ort');
  results.push({ preset, batchSize, stepGflop: flops / 1e9, tfjs, ort: ortResult, speedUp: ortResult.samplesPerSecond / tfjs.samplesPerSecond });
}

const ceiling = await matMulCeiling();
const probe = execFileSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--rss-probe', '--threads', String(threads)], { encoding: 'utf8' });
const ortPeakRssBytes = Number(probe.trim().split('\n').at(-1));
let profileSummary: ReturnType<typeof summariseProfile> | undefined;
if (values.profile) {
  const file = (await import('node:fs')).readdirSync(profileDir).find((name) => name.endsWith('.json'));
  if (file) profileSummary = summariseProfile(join(profileDir, file));
  rmSync(profileDir, { recursive: true, force: true });
}

const report = {
  command: 'npm run bench:train',
  threads,
  rounds,
  batchShape: { imagePatches: 64, textTokens: TEXT_LENGTH, targetTokens: TARGET_LENGTH, vocabulary: VOCAB, loss: 'layerwise' },
  results,
  ortMatMulCeiling: { gflopsPerSecond: ceiling.gflops, bestShape: ceiling.shapes },
  fractionOfCeiling: Object.fromEntries(results.map((r) => [`${r.preset}-b${r.batchSize}`, r.ort.gflopsPerSecond / ceiling.gflops])),
  ortSmallBatch32PeakRssBytes: ortPeakRssBytes,
  ...(profileSummary ? { ortProfileSmallBatch32: profileSummary.slice(0, 15) } : {}),
};
mkdirSync('results', { recursive: true });
writeFileSync('results/bench-train.json', `${JSON.stringify(report, null, 2)}\n`);

console.log(`threads ${threads}, ${rounds} interleaved rounds, median step time; caption-shaped batch, layer-wise loss`);
console.log('| model | batch | tfjs samples/s | ORT samples/s | speed-up | tfjs ms/step | ORT ms/step | ORT GFLOP/s |');
console.log('|---|---|---|---|---|---|---|---|');
for (const r of results) {
  console.log(`| ${r.preset} | ${r.batchSize} | ${r.tfjs.samplesPerSecond.toFixed(1)} | ${r.ort.samplesPerSecond.toFixed(1)} | ${r.speedUp.toFixed(2)}x | ${r.tfjs.msPerStep.toFixed(0)} | ${r.ort.msPerStep.toFixed(0)} | ${r.ort.gflopsPerSecond.toFixed(1)} |`);
}
console.log(`ORT MatMul ceiling: ${ceiling.gflops.toFixed(1)} GFLOP/s (${ceiling.shapes}); peak RSS of ORT small batch 32: ${(ortPeakRssBytes / 2 ** 30).toFixed(2)} GB`);
if (profileSummary) {
  console.log('ORT profile, small batch 32, time per op type:');
  for (const { op, msPerStep, share } of profileSummary.slice(0, 15)) console.log(`  ${op.padEnd(24)} ${msPerStep.toFixed(1).padStart(8)} ms/step  ${(share * 100).toFixed(1)}%`);
}
console.log('wrote results/bench-train.json');
