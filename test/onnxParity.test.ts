// The ONNX pieces driven by LayerRunner reproduce TfModel: every encoder layer's states,
// the memory, every decoder layer's states (step by step with the K/V cache) and the logits,
// for every preset and for the joint encoder mode; exported files match the in-memory runner.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { exportGraphs, MANIFEST_FILE, type GraphManifest } from '../src/export/exportGraphs.js';
import { type ModelConfig, PRESETS, presetConfig } from '../src/model/config.js';
import { TfModel } from '../src/model/tfModel.js';
import { LayerRunner, type KeyValue } from '../src/runtime/layerRunner.js';
import { fromVariables } from '../src/train/trainer.js';
import { concatSequences } from '../src/runtime/rows.js';
import { decoderStep } from '../src/graph/layerGraphs.js';
import { loadCheckpoint } from '../src/model/checkpoint.js';
import { sceneWorldEvalSet } from '../src/eval/evaluate.js';
import { fixedDepthExit } from '../src/runtime/exits.js';
import { MuEModel } from '../src/runtime/mueModel.js';
import { disposeBatch, fromTaskRecord, makeBatch } from '../src/train/batch.js';
import { toTensors } from '../src/train/trainer.js';
import { initTensorflow, randomInputs, saveRandomCheckpoint, tf } from './helpers.js';

const TOLERANCE = 1e-4;
const BATCH = 2;

before(async () => {
  await initTensorflow();
});

const smallSequences = (preset: string, overrides: Partial<ModelConfig> = {}): ModelConfig =>
  presetConfig(preset, 60, { imageSize: 16, patchSize: 8, maxTextLength: 6, maxTargetLength: 5, ...overrides });

/** max |a − b| / max |b|. */
function relativeError(actual: Float32Array, expected: Float32Array): number {
  assert.equal(actual.length, expected.length, 'length');
  let difference = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    difference = Math.max(difference, Math.abs(actual[i]! - expected[i]!));
    scale = Math.max(scale, Math.abs(expected[i]!));
  }
  return difference / scale;
}


/** Position `position` of (B, T, D) -> (B, 1, D). */
function positionOf(states: Float32Array, length: number, position: number, dim: number): Float32Array {
  const out = new Float32Array(BATCH * dim);
  for (let row = 0; row < BATCH; row++) out.set(states.subarray((row * length + position) * dim, (row * length + position + 1) * dim), row * dim);
  return out;
}

const floats = (tensor: tf.Tensor): Float32Array => tensor.dataSync() as Float32Array;
const rows = (tensor: tf.Tensor2D): number[][] => tensor.arraySync();

/**
 * Runs the runner through the whole model as the runtime will (decomposed or joint encoder,
 * step-by-step decoding with a growing K/V cache) and compares every intermediate with TfModel.
 * Returns the largest relative error seen.
 */
async function checkParity(config: ModelConfig): Promise<number> {
  const model = TfModel.initialise(config, 5);
  const runner = await LayerRunner.create(config, fromVariables(model.weights));
  const inputs = randomInputs(config, BATCH);
  const reference = model.forward(inputs);
  const { dim } = config;
  let worst = 0;
  const compare = (what: string, actual: Float32Array, expected: tf.Tensor | Float32Array): void => {
    const error = relativeError(actual, expected instanceof Float32Array ? expected : floats(expected));
    assert.ok(error < TOLERANCE, `${what}: relative error ${error}`);
    worst = Math.max(worst, error);
  };
  try {
    const patchCount = (config.imageSize / config.patchSize) ** 2;
    const textLength = inputs.textIds.shape[1];
    const textMask = floats(inputs.textMask);
    const imageMask = new Float32Array(BATCH * patchCount).fill(1);
    const memoryLength = patchCount + textLength;
    const memoryMask = concatSequences([imageMask, textMask], [patchCount, textLength], 1, BATCH);

    const runStream = async (name: string, embedded: Float32Array, mask: Float32Array, length: number, expected: tf.Tensor[]): Promise<Float32Array> => {
      compare(`${name} embedding`, embedded, expected[0]!);
      let states = embedded;
      for (let i = 0; i < config.encoderLayers; i++) {
        states = await runner.encoderLayer(i, states, mask, BATCH, length);
        compare(`${name} encoder layer ${i}`, states, expected[i + 1]!);
      }
      return states;
    };
    const imageEmbedded = await runner.embedImage(floats(inputs.images), BATCH);
    const textEmbedded = await runner.embedText(rows(inputs.textIds));
    let lastLayer: Float32Array;
    if (config.encoderMode === 'decomposed') {
      const image = await runStream('image', imageEmbedded, imageMask, patchCount, reference.encoder.imageStates);
      const text = await runStream('text', textEmbedded, textMask, textLength, reference.encoder.textStates);
      lastLayer = concatSequences([image, text], [patchCount, textLength], dim, BATCH);
    } else {
      const joint = concatSequences([imageEmbedded, textEmbedded], [patchCount, textLength], dim, BATCH);
      lastLayer = await runStream('joint', joint, memoryMask, memoryLength, reference.encoder.jointStates);
    }
    const memory = await runner.encoderFinalNorm(lastLayer, BATCH, memoryLength);
    compare('memory', memory, reference.encoder.memory);

    const cross: KeyValue[] = [];
    for (let i = 0; i < config.decoderLayers; i++) cross.push(await runner.crossKeyValues(i, memory, BATCH, memoryLength));
    const decoderIds = rows(inputs.decoderIds);
    const targetLength = decoderIds[0]!.length;
    const expectedStates = reference.decoderStates.map(floats); // each (B, T, D)
    const cache: KeyValue[] = Array.from({ length: config.decoderLayers }, () => ({ key: new Float32Array(0), value: new Float32Array(0) }));
    let finalStates: Float32Array = new Float32Array(0); // (B, t, D), the last layer's outputs so far
    for (let position = 0; position < targetLength; position++) {
      let x = await runner.embedDecoder(decoderIds.map((row) => row[position]!), [position, position]);
      compare(`decoder embedding @${position}`, x, positionOf(expectedStates[0]!, targetLength, position, dim));
      for (let i = 0; i < config.decoderLayers; i++) {
        const step = await runner.decoderStep(i, x, cache[i]!.key, cache[i]!.value, position, cross[i]!.key, cross[i]!.value, memoryMask, BATCH, memoryLength);
        const recomputed = await runner.selfKeyValues(i, x, BATCH);
        compare(`self key @${position} layer ${i}`, recomputed.key, step.key);
        compare(`self value @${position} layer ${i}`, recomputed.value, step.value);
        cache[i] = {
          key: concatSequences([cache[i]!.key, step.key], [position, 1], dim, BATCH),
          value: concatSequences([cache[i]!.value, step.value], [position, 1], dim, BATCH),
        };
        x = step.hidden;
        compare(`decoder layer ${i} @${position}`, x, positionOf(expectedStates[i + 1]!, targetLength, position, dim));
      }
      finalStates = concatSequences([finalStates, x], [position, 1], dim, BATCH);
    }
    compare('logits', await runner.head(finalStates, BATCH, targetLength), model.logits(reference.decoderStates.at(-1)!));
  } finally {
    await runner.dispose();
    model.dispose();
  }
  return worst;
}

for (const preset of Object.keys(PRESETS)) {
  test(`ONNX pieces match TfModel at every layer and in the logits: preset ${preset}`, async (t) => {
    const started = performance.now();
    const worst = await checkParity(smallSequences(preset));
    t.diagnostic(`${preset}: max relative error ${worst.toExponential(2)}, ${((performance.now() - started) / 1000).toFixed(1)} s`);
  });
}

test('ONNX pieces match TfModel in joint encoder mode', async (t) => {
  const worst = await checkParity(smallSequences('tiny', { encoderMode: 'joint' }));
  t.diagnostic(`joint tiny: max relative error ${worst.toExponential(2)}`);
});

test('whole-stack graphs give the per-layer pieces\' results', async () => {
  const config = smallSequences('tiny');
  const model = TfModel.initialise(config, 9);
  const runner = await LayerRunner.create(config, fromVariables(model.weights), { fullStack: true });
  try {
    const { dim, decoderLayers } = config;
    const length = 3;
    const memoryLength = 4;
    const random = (size: number, seed: number): Float32Array => floats(tf.randomNormal([size], 0, 1, 'float32', seed));
    const states = random(BATCH * length * dim, 1);
    const mask = Float32Array.from([1, 1, 1, 1, 1, 0]);
    let layered = states;
    for (let i = 0; i < config.encoderLayers; i++) layered = await runner.encoderLayer(i, layered, mask, BATCH, length);
    assert.ok(relativeError(await runner.fullEncoder(states, mask, BATCH, length), layered) < TOLERANCE);

    const x = random(BATCH * dim, 2);
    const memoryMask = Float32Array.from([1, 1, 1, 1, 1, 1, 0, 0]);
    const past = Array.from({ length: decoderLayers }, (_, i) => ({ key: random(BATCH * 2 * dim, 10 + i), value: random(BATCH * 2 * dim, 20 + i) }));
    const cross = Array.from({ length: decoderLayers }, (_, i) => ({ key: random(BATCH * memoryLength * dim, 30 + i), value: random(BATCH * memoryLength * dim, 40 + i) }));
    const whole = await runner.fullDecoderStep(x, past, 2, cross, memoryMask, BATCH, memoryLength);
    let hidden = x;
    for (let i = 0; i < decoderLayers; i++) {
      const step = await runner.decoderStep(i, hidden, past[i]!.key, past[i]!.value, 2, cross[i]!.key, cross[i]!.value, memoryMask, BATCH, memoryLength);
      assert.ok(relativeError(whole.keyValues[i]!.key, step.key) < TOLERANCE, `key ${i}`);
      assert.ok(relativeError(whole.keyValues[i]!.value, step.value) < TOLERANCE, `value ${i}`);
      hidden = step.hidden;
    }
    assert.ok(relativeError(whole.hidden, hidden) < TOLERANCE);
  } finally {
    await runner.dispose();
    model.dispose();
  }
});

const outDir = mkdtempSync(join(tmpdir(), 'mue-onnx-'));
after(() => rmSync(outDir, { recursive: true, force: true }));

test('exported graph files load in a fresh session and match the in-memory runner', async () => {
  const config = smallSequences('tiny');
  const model = TfModel.initialise(config, 7);
  const weights = fromVariables(model.weights);
  const runner = await LayerRunner.create(config, weights);
  const manifest = exportGraphs(config, weights, outDir);
  try {
    const written = JSON.parse(readFileSync(join(outDir, MANIFEST_FILE), 'utf8')) as GraphManifest;
    assert.deepEqual(written, manifest);
    assert.deepEqual(written.config, config);
    const names = written.pieces.map((piece) => piece.name);
    for (const name of ['image_embedding', 'text_embedding', 'encoder_layer_1', 'encoder_final_norm', 'cross_key_values_0', 'decoder_embedding',
      'decoder_step_1', 'self_key_values_0', 'output_head', 'full_encoder', 'full_decoder_step']) assert.ok(names.includes(name), name);
    const layer = written.pieces.find((piece) => piece.name === 'encoder_layer_1')!;
    assert.deepEqual(layer.inputs.map((input) => input.name), ['states', 'key_mask']);

    const session = await ort.InferenceSession.create(join(outDir, layer.file));
    const length = 3;
    const states = floats(tf.randomNormal([BATCH * length * config.dim], 0, 1, 'float32', 3));
    const mask = Float32Array.from([1, 1, 1, 1, 0, 0]);
    const fromFile = await session.run({
      states: new ort.Tensor('float32', states, [BATCH, length, config.dim]),
      key_mask: new ort.Tensor('float32', mask, [BATCH, length]),
    });
    await session.release();
    assert.ok(relativeError(fromFile.output!.data as Float32Array, await runner.encoderLayer(1, states, mask, BATCH, length)) < 1e-6);
  } finally {
    await runner.dispose();
    model.dispose();
  }
});

// ---- VE 'prompt' formulation: the decoder over <bos> + text, answered at the last position ----

/** Answer logits (allowed tokens) at each row's last prompt position of (B, T, V) logits. */
function answerLogits(logits: Float32Array, lastPositions: number[], length: number, vocabSize: number, allowed: number[]): number[] {
  return lastPositions.flatMap((position, row) => allowed.map((id) => logits[(row * length + position) * vocabSize + id]!));
}

test('prompt formulation: the ORT decoder over the whole prompt gives TfModel\'s teacher-forced answer logits at every layer', async (t) => {
  const config = smallSequences('tiny', { maxTextLength: 8, maxTargetLength: 9 });
  const model = TfModel.initialise(config, 11);
  const weights = fromVariables(model.weights);
  const runner = await LayerRunner.create(config, weights);
  const { dim, decoderLayers, vocabSize } = config;
  const allowed = [4, 5, 6];
  try {
    const inputs = randomInputs(config, BATCH);
    // <bos> + each row's real text tokens, right-padded with <pad> 0 (the second row has 3 text tokens).
    const textRows = rows(inputs.textIds);
    const textLengths = rows(inputs.textMask).map((mask) => mask.reduce((a, b) => a + b, 0));
    const prompts = textRows.map((ids, row) => [1, ...ids.slice(0, textLengths[row]!)]);
    const length = Math.max(...prompts.map((p) => p.length));
    const padded = prompts.map((p) => [...p, ...new Array<number>(length - p.length).fill(0)]);
    const lastPositions = prompts.map((p) => p.length - 1);
    const reference = model.forward({ ...inputs, decoderIds: tf.tensor2d(padded, [BATCH, length], 'int32') });

    const memory = floats(reference.encoder.memory);
    const memoryMask = floats(reference.encoder.memoryMask);
    const memoryLength = reference.encoder.memory.shape[1];
    let states = await runner.embedDecoderPrompt(padded);
    let worst = 0;
    for (let i = 0; i < decoderLayers; i++) {
      const cross = await runner.crossKeyValues(i, memory, BATCH, memoryLength);
      states = await runner.decoderPrompt(i, states, BATCH, length, cross.key, cross.value, memoryMask, memoryLength);
      const expected = answerLogits(floats(model.logits(reference.decoderStates[i + 1]!)), lastPositions, length, vocabSize, allowed);
      const actual = answerLogits(await runner.head(states, BATCH, length), lastPositions, length, vocabSize, allowed);
      const error = relativeError(Float32Array.from(actual), Float32Array.from(expected));
      assert.ok(error < TOLERANCE, `layer ${i + 1} answer logits: relative error ${error}`);
      worst = Math.max(worst, error);
    }
    t.diagnostic(`prompt answer logits: max relative error ${worst.toExponential(2)}`);

    // The same graph with a past: the prompt in two chunks (2 positions, then the rest after them) equals one pass.
    const session = await ort.InferenceSession.create(decoderStep(config, weights, 0).model);
    const cross = await runner.crossKeyValues(0, memory, BATCH, memoryLength);
    const embedded = await runner.embedDecoderPrompt(padded);
    const feed = (x: Float32Array, positions: number, past: { key: Float32Array; value: Float32Array }, pastLength: number) => session.run({
      states: new ort.Tensor('float32', x, [BATCH, positions, dim]),
      past_key: new ort.Tensor('float32', past.key, [BATCH, pastLength, dim]),
      past_value: new ort.Tensor('float32', past.value, [BATCH, pastLength, dim]),
      cross_key: new ort.Tensor('float32', cross.key, [BATCH, memoryLength, dim]),
      cross_value: new ort.Tensor('float32', cross.value, [BATCH, memoryLength, dim]),
      memory_mask: new ort.Tensor('float32', memoryMask, [BATCH, memoryLength]),
    });
    const slice = (x: Float32Array, from: number, to: number) => {
      const out = new Float32Array(BATCH * (to - from) * dim);
      for (let row = 0; row < BATCH; row++) out.set(x.subarray((row * length + from) * dim, (row * length + to) * dim), row * (to - from) * dim);
      return out;
    };
    const head = await feed(slice(embedded, 0, 2), 2, { key: new Float32Array(0), value: new Float32Array(0) }, 0);
    const tail = await feed(slice(embedded, 2, length), length - 2, { key: head.key!.data as Float32Array, value: head.value!.data as Float32Array }, 2);
    const whole = await feed(embedded, length, { key: new Float32Array(0), value: new Float32Array(0) }, 0);
    const chunked = concatSequences([head.output!.data as Float32Array, tail.output!.data as Float32Array], [2, length - 2], dim, BATCH);
    assert.ok(relativeError(chunked, whole.output!.data as Float32Array) < TOLERANCE, 'chunked prompt');
    assert.ok(relativeError(whole.output!.data as Float32Array, floats(reference.decoderStates[1]!)) < TOLERANCE, 'layer 1 at every position');
    await session.release();
  } finally {
    await runner.dispose();
    model.dispose();
  }
});

test('prompt formulation: the fused whole-decoder reference answers as the per-layer pipeline at full depth', async () => {
  const directory = join(outDir, 've-prompt-fused');
  await saveRandomCheckpoint(directory, 've', { veFormulation: 'prompt' }, 22);
  const model = await MuEModel.load(directory, { fullStack: true });
  try {
    const records = sceneWorldEvalSet('ve', 'validation', 6, 5, model.config.imageSize);
    const inputs = records.map((record) => ({ image: record.image, hypothesis: record.hypothesis }));
    const perLayer = await model.entailBatch(inputs, { decoderThreshold: 1 });
    const fused = await model.entailBatch(inputs, { fused: true });
    assert.deepEqual(fused.map((r) => r.answer), perLayer.map((r) => r.answer));
    fused.forEach((r, row) => {
      assert.deepEqual(r.telemetry.tokenLayers, [model.config.decoderLayers]);
      assert.ok(Math.abs(r.telemetry.flops - perLayer[row]!.telemetry.flops) / perLayer[row]!.telemetry.flops < 1e-9, `row ${row}: FLOPs`);
    });
  } finally {
    await model.dispose();
  }
});

test('prompt formulation end to end: MuEModel.entail answers as the training batch\'s teacher-forced logits say, at every exit depth', async () => {
  const directory = join(outDir, 've-prompt');
  await saveRandomCheckpoint(directory, 've', { veFormulation: 'prompt' }, 21);
  const checkpoint = loadCheckpoint(directory);
  const { config, tokenizer } = checkpoint;
  const reference = TfModel.fromTensors(config, toTensors(checkpoint.weights));
  const model = await MuEModel.load(directory);
  const records = sceneWorldEvalSet('ve', 'validation', 4, 3, config.imageSize);
  const batch = makeBatch(records.map((record) => fromTaskRecord(record, 0, 'prompt')), tokenizer, config);
  try {
    const { decoderStates } = reference.forward(batch.inputs);
    const allowed = batch.allowedTokens!;
    const length = batch.inputs.decoderIds.shape[1];
    let compared = 0;
    for (let depth = 1; depth <= config.decoderLayers; depth++) {
      const expected = answerLogits(floats(reference.logits(decoderStates[depth]!)), batch.answerPositions, length, config.vocabSize, allowed);
      for (const [row, record] of records.entries()) {
        const scores = expected.slice(row * 3, row * 3 + 3);
        const sorted = [...scores].sort((a, b) => b - a);
        const result = await model.entail({ image: record.image, hypothesis: record.hypothesis }, { decoderPolicy: fixedDepthExit(depth) });
        assert.deepEqual(result.telemetry.tokenLayers, [depth]);
        assert.equal(result.telemetry.promptLength, batch.answerPositions[row]! + 1);
        if (sorted[0]! - sorted[1]! < 1e-3) continue; // a near tie may flip within float error
        assert.equal(result.answer, tokenizer.decode([allowed[scores.indexOf(sorted[0]!)]!]), `row ${row}, depth ${depth}`);
        compared++;
      }
    }
    assert.ok(compared >= 6, `only ${compared} answers were clear enough to compare`);
    // The exit statistic: one cosine per layer over the row's flattened real prompt states, layer output vs input.
    const states = decoderStates.map(floats); // each (B, T, D)
    const { dim } = config;
    for (const [row, record] of records.entries()) {
      const values = (batch.answerPositions[row]! + 1) * dim;
      const rowStates = (layer: number) => states[layer]!.subarray(row * length * dim, row * length * dim + values);
      const expected = Array.from({ length: config.decoderLayers }, (_, layer) => {
        const [a, b] = [rowStates(layer + 1), rowStates(layer)];
        let dot = 0, normA = 0, normB = 0;
        for (let i = 0; i < values; i++) { dot += a[i]! * b[i]!; normA += a[i]! ** 2; normB += b[i]! ** 2; }
        return dot / Math.sqrt(normA * normB);
      });
      const { telemetry } = await model.entail({ image: record.image, hypothesis: record.hypothesis }, { decoderThreshold: 1, recordSimilarities: true });
      assert.equal(telemetry.similarities!.tokens.length, 1);
      telemetry.similarities!.tokens[0]!.forEach((similarity, layer) => assert.ok(Math.abs(similarity - expected[layer]!) < 1e-4, `row ${row} layer ${layer + 1}: ${similarity} vs ${expected[layer]}`));
    }
  } finally {
    disposeBatch(batch);
    await model.dispose();
    reference.dispose();
  }
});
