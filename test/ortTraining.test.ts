// The ONNX Runtime training engine against tfjs autodiff (the gradient oracle): loss, per-layer
// losses and every parameter's gradient for tiny and small, both encoder modes, both losses,
// VE- and caption-shaped padded batches, with and without allowedTokens; resume exactness;
// the build-time error for an op without a VJP.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { appendGradients } from '../src/graph/autodiff.js';
import { GraphBuilder } from '../src/graph/onnxBuilder.js';
import { loadCheckpoint } from '../src/model/checkpoint.js';
import { type EncoderMode, type ModelConfig, presetConfig } from '../src/model/config.js';
import { TfModel } from '../src/model/tfModel.js';
import { AdamW } from '../src/train/adamw.js';
import type { TrainingBatch } from '../src/train/batch.js';
import { tfjsLossAndGradients } from '../src/train/engine.js';
import type { LossMode } from '../src/train/loss.js';
import { OrtEngine } from '../src/train/ortEngine.js';
import { DEFAULT_TRAIN_OPTIONS, fromVariables, train, type TrainOptions } from '../src/train/trainer.js';
import { initTensorflow, tf } from './helpers.js';

const GRADIENT_TOLERANCE = 1e-4;
const LOSS_TOLERANCE = 1e-5;
/** A tensor whose gradient norm is below this fraction of the global norm counts as zero-gradient. */
const ZERO_GRADIENT = 1e-5;
const VOCAB = 40;
const ANSWERS = [5, 6, 7];

before(async () => {
  await initTensorflow();
});

const configFor = (preset: string, encoderMode: EncoderMode): ModelConfig =>
  presetConfig(preset, VOCAB, { imageSize: 16, patchSize: 8, maxTextLength: 8, maxTargetLength: 8, encoderMode });

/**
 * A batch of 2 with padding in both streams. VE-shaped: a 5-token hypothesis (row 2 padded
 * after 3), target = answer + <eos>, only the answer scored when allowedTokens is set.
 * Caption-shaped: a 3-token prompt, 6-token targets (row 2 padded after 4).
 */
function batchOf(task: 've' | 'caption', allowed: boolean, seed: number): TrainingBatch {
  const rows = 2;
  const textLength = task === 've' ? 5 : 3;
  const targetLength = task === 've' ? 2 : 6;
  const realText = [textLength, task === 've' ? 3 : textLength];
  const realTarget = task === 've' ? (allowed ? [1, 1] : [2, 2]) : [6, 4];
  const mask = (length: number, real: number[]) => tf.tensor2d(Array.from({ length: rows * length }, (_, i) => (i % length < real[Math.floor(i / length)]! ? 1 : 0)), [rows, length]);
  const ids = (length: number, s: number) => tf.randomUniform([rows, length], 4, VOCAB, 'int32', s) as tf.Tensor2D;
  const targets = task === 've' && allowed ? tf.tensor2d([ANSWERS[0]!, 3, ANSWERS[2]!, 3], [rows, 2], 'int32') : ids(targetLength, seed + 3);
  return {
    inputs: {
      images: tf.randomUniform([rows, 16, 16, 3], -1, 1, 'float32', seed) as tf.Tensor4D,
      textIds: ids(textLength, seed + 1),
      textMask: mask(textLength, realText),
      decoderIds: ids(targetLength, seed + 2),
    },
    targets,
    targetMask: mask(targetLength, realTarget),
    ...(allowed ? { allowedTokens: ANSWERS } : {}),
  };
}

const norm = (values: Float32Array): number => Math.sqrt(values.reduce((sum, v) => sum + v * v, 0));
function relativeDifference(actual: Float32Array, expected: Float32Array): number {
  assert.equal(actual.length, expected.length);
  const difference = actual.map((v, i) => v - expected[i]!);
  const scale = norm(expected);
  return scale === 0 ? norm(actual) : norm(difference) / scale;
}

const optimizerFor = (steps: number) => new AdamW({ learningRate: 1e-3, warmupSteps: 1, totalSteps: steps, minLearningRateRatio: 0.1, weightDecay: 0.01, clipNorm: 1, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 });

/** Checks loss, per-layer losses and every gradient; returns the worst gradient difference. */
async function checkGradients(config: ModelConfig, task: 've' | 'caption', lossMode: LossMode, allowed: boolean, lengthBucket = 1): Promise<number> {
  const model = TfModel.initialise(config, 11);
  const batch = batchOf(task, allowed, 21);
  const loss = { smoothing: 0.1, mode: lossMode };
  const engine = new OrtEngine(config, fromVariables(model.weights), optimizerFor(10), { loss, threads: 1, lengthBucket });
  try {
    const expected = tfjsLossAndGradients(model, batch, loss);
    const actual = await engine.lossAndGradients(batch);
    assert.ok(Math.abs(actual.loss - expected.loss) <= LOSS_TOLERANCE * Math.abs(expected.loss), `loss ${actual.loss} vs ${expected.loss}`);
    actual.layerLosses.forEach((value, i) => assert.ok(Math.abs(value - expected.layerLosses[i]!) <= LOSS_TOLERANCE * Math.abs(expected.layerLosses[i]!), `layer ${i} loss ${value} vs ${expected.layerLosses[i]}`));
    assert.equal(actual.gradients.size, model.weights.size);
    let worst = 0;
    const globalNorm = Math.sqrt([...expected.gradients.values()].reduce((sum, g) => sum + norm(g) ** 2, 0));
    for (const [name, gradient] of expected.gradients) {
      const ort = actual.gradients.get(name)!;
      if (norm(gradient) < ZERO_GRADIENT * globalNorm) {
        // Attention key biases: softmax is shift-invariant, so their true gradient is 0 and both engines give rounding noise.
        const absolute = norm(ort.map((v, i) => v - gradient[i]!)) / globalNorm;
        assert.ok(absolute < ZERO_GRADIENT, `gradient of ${name} should be ~0: ${absolute.toExponential(2)} of the global norm`);
        continue;
      }
      const difference = relativeDifference(ort, gradient);
      assert.ok(difference < GRADIENT_TOLERANCE, `gradient of ${name}: relative difference ${difference.toExponential(2)}`);
      worst = Math.max(worst, difference);
    }
    return worst;
  } finally {
    await engine.release();
    model.dispose();
  }
}

/** tiny: every combination; small (slower to build): each encoder mode, loss and task at least twice. */
const COMBINATIONS = [
  ...(['decomposed', 'joint'] as const).flatMap((encoderMode) => (['layerwise', 'last-layer'] as const).flatMap((lossMode) =>
    (['ve', 'caption'] as const).map((task) => ({ preset: 'tiny', encoderMode, lossMode, task })))),
  { preset: 'small', encoderMode: 'decomposed', lossMode: 'layerwise', task: 've' },
  { preset: 'small', encoderMode: 'decomposed', lossMode: 'last-layer', task: 'caption' },
  { preset: 'small', encoderMode: 'joint', lossMode: 'layerwise', task: 'caption' },
  { preset: 'small', encoderMode: 'joint', lossMode: 'last-layer', task: 've' },
] as const;

for (const { preset, encoderMode, lossMode, task } of COMBINATIONS) {
  const allowed = task === 've';
  test(`ORT gradients match tfjs: ${preset}, ${encoderMode}, ${lossMode}, ${task}${allowed ? ' with allowedTokens' : ''}, padded batch`, async (t) => {
    const worst = await checkGradients(configFor(preset, encoderMode), task, lossMode, allowed);
    t.diagnostic(`worst relative gradient difference ${worst.toExponential(2)}`);
  });
}

test('ORT gradients match tfjs for a VE batch without allowedTokens and with lengths padded to buckets of 4', async () => {
  await checkGradients(configFor('tiny', 'decomposed'), 've', 'layerwise', false, 4);
  await checkGradients(configFor('tiny', 'joint'), 'caption', 'layerwise', false, 4);
});

test('an op without a VJP on the path to the loss is a build-time error naming it', () => {
  const builder = new GraphBuilder(new Map([['w', { shape: [3], data: new Float32Array(3) }]]), true);
  const loss = builder.node('ReduceSum', [builder.node('Sqrt', [builder.weight('w')])], { keepdims: { type: 'int', value: 0 } });
  assert.throws(() => appendGradients(builder, loss, ['w'], new Map([['w', [3]]])), /no vector-Jacobian product for ONNX op "Sqrt"/);
});

const workDir = mkdtempSync(join(tmpdir(), 'mue-ort-train-'));
after(() => rmSync(workDir, { recursive: true, force: true }));

const run = (name: string, overrides: Partial<TrainOptions> = {}): TrainOptions => ({
  ...DEFAULT_TRAIN_OPTIONS, task: 'caption', preset: 'tiny', imageSize: 32, steps: 6, batchSize: 4, warmupSteps: 2,
  learningRate: 3e-3, validationEvery: 1000, validationSize: 8, checkpointEvery: 1000, outDir: join(workDir, name), ...overrides,
});
const trainLosses = (outDir: string): number[] => readFileSync(join(outDir, 'train-log.jsonl'), 'utf8').trim().split('\n')
  .map((line) => JSON.parse(line)).filter((r) => r.type === 'train').map((r) => r.loss);

for (const engine of ['ort', 'tfjs'] as const) {
  test(`${engine}: N steps equal N/2 steps + resume + N/2 steps (loss to 1e-6, identical weights)`, async () => {
    (await train(run(`${engine}-straight`, { engine }))).model.dispose();
    (await train(run(`${engine}-paused`, { engine, stopAtStep: 3 }))).model.dispose();
    (await train(run(`${engine}-paused`, { engine }), {}, 'resume')).model.dispose();
    const straight = trainLosses(join(workDir, `${engine}-straight`));
    const resumed = trainLosses(join(workDir, `${engine}-paused`));
    assert.equal(resumed.length, 6);
    straight.forEach((loss, i) => assert.ok(Math.abs(loss - resumed[i]!) < 1e-6, `step ${i + 1}: ${loss} vs ${resumed[i]}`));
    const a = loadCheckpoint(join(workDir, `${engine}-straight`));
    const b = loadCheckpoint(join(workDir, `${engine}-paused`));
    for (const [name, tensor] of a.weights) {
      const other = b.weights.get(name)!.data;
      tensor.data.forEach((v, i) => assert.ok(Math.abs(v - other[i]!) <= 1e-6, `${name}[${i}]`));
    }
    assert.ok(a.optimizerState!.has('adam.m.token_embedding') && a.optimizerState!.has('adam.v.decoder.0.ffn.fc1.weight'));
  });
}

test('a model trained with ort runs through the runtime', async () => {
  const { MuEModel } = await import('../src/runtime/mueModel.js');
  const model = await MuEModel.load(join(workDir, 'ort-straight'));
  const image = { width: 32, height: 32, pixels: new Uint8Array(32 * 32 * 3).fill(128) };
  const { caption, telemetry } = await model.caption({ image }, { imageThreshold: 1, textThreshold: 1, decoderThreshold: 1 });
  await model.dispose();
  assert.equal(typeof caption, 'string');
  assert.ok(telemetry);
});

test('the ORT and tfjs engines take the same first steps', async () => {
  const losses = (engine: 'ort' | 'tfjs') => trainLosses(join(workDir, `${engine}-straight`));
  losses('ort').forEach((loss, i) => assert.ok(Math.abs(loss - losses('tfjs')[i]!) < 1e-3 * loss, `step ${i + 1}: ort ${loss} vs tfjs ${losses('tfjs')[i]}`));
});

test('a non-finite loss stops ORT training with the step number; the starting checkpoint is untouched', async () => {
  const { saveCheckpoint } = await import('../src/model/checkpoint.js');
  const { saveRandomCheckpoint } = await import('./helpers.js');
  const start = join(workDir, 'nan-start');
  await saveRandomCheckpoint(start, 'caption');
  const checkpoint = loadCheckpoint(start);
  // NaN weights are refused on save and load; finite weights this large overflow float32 in the
  // first forward pass (1e20² = ∞, ∞ − ∞ = NaN), which is what training must catch.
  for (const { data } of checkpoint.weights.values()) data.fill(1e20);
  saveCheckpoint(start, { task: 'caption', config: checkpoint.config, tokenizer: checkpoint.tokenizer, weights: checkpoint.weights });
  await assert.rejects(train(run('nan-run', { initFrom: start })), /training diverged at step 1 \(loss NaN\)/);
  assert.equal(loadCheckpoint(start).weights.get('decoder.final_norm.weight')!.data[0], Math.fround(1e20));
});

test('allowedTokens: CE = (1−ε)(−log p_y) + ε·mean over the allowed tokens, p a softmax over the allowed tokens only', async () => {
  const { labelSmoothedCrossEntropy } = await import('../src/train/loss.js');
  const logits = [1.5, -0.5, 0.25, 3];
  const allowed = [0, 2];
  const logNormaliser = Math.log(Math.exp(logits[0]!) + Math.exp(logits[2]!));
  const logP = (v: number) => logits[v]! - logNormaliser;
  const expected = 0.9 * -logP(2) + 0.1 * -(logP(0) + logP(2)) / 2;
  const loss = labelSmoothedCrossEntropy(tf.tensor3d(logits, [1, 1, 4]), tf.tensor2d([[2]], [1, 1], 'int32'), tf.tensor2d([[1]]), 0.1, allowed);
  assert.ok(Math.abs(loss.dataSync()[0]! - expected) < 1e-6, `${loss.dataSync()[0]} vs ${expected}`);
  assert.throws(() => labelSmoothedCrossEntropy(tf.tensor3d(logits, [1, 1, 4]), tf.tensor2d([[2]], [1, 1], 'int32'), tf.tensor2d([[1]]), 0.1, [9]), /allowed token 9 is outside the vocabulary/);
});
