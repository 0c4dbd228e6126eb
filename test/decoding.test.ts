// Official caption decoding (ofa/ARCHITECTURE.md §10–11): the decaying schedule against hand-computed
// thresholds, the search rules on a hand-written next-token table, the 'drop' key/value cache against
// a by-hand run of the layers, step-level exits, the fused full-depth path, and the defaults on a
// tiny captioning model trained here.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { captionExample } from '../src/data/sceneworld.js';
import { evaluateModels } from '../src/eval/harness.js';
import { loadCheckpoint } from '../src/model/checkpoint.js';
import { decodeNextToken, logSoftmaxOver, newSequence, pooledSimilarities, type DecoderContext, type ExitGranularity, type KvStrategy, type Sequence } from '../src/runtime/decoderExits.js';
import { decayingThreshold, similarityExit, type ExitPolicy, type LayerSignal } from '../src/runtime/exits.js';
import { beamSearch, greedySearch, type SearchOptions } from '../src/runtime/generate.js';
import { LayerRunner, type KeyValue } from '../src/runtime/layerRunner.js';
import { CAPTION_DECODING, MuEModel } from '../src/runtime/mueModel.js';
import { DEFAULT_TRAIN_OPTIONS, train } from '../src/train/trainer.js';
import { saveRandomCheckpoint } from './helpers.js';

const workDir = mkdtempSync(join(tmpdir(), 'mue-decoding-'));
const trainedDir = join(workDir, 'caption-trained');
const randomDir = join(workDir, 'caption-random');

before(async () => {
  const tiny = { ...DEFAULT_TRAIN_OPTIONS, task: 'caption' as const, preset: 'tiny', imageSize: 32, steps: 30, batchSize: 16, warmupSteps: 5, learningRate: 3e-3, validationEvery: 1000, validationSize: 16, checkpointEvery: 1000 };
  (await train({ ...tiny, outDir: trainedDir })).model.dispose();
  await saveRandomCheckpoint(randomDir, 'caption', { encoderLayers: 2, decoderLayers: 3, maxTargetLength: 8 });
});
after(() => rmSync(workDir, { recursive: true, force: true }));

test('decaying schedule: no exit while step < (T+1)/3, then 0.9·τ + 0.1·exp(−(t+1)/(T+1)) (hand-computed, T = 16, τ = 0.9)', () => {
  // 17/3 = 5.67: steps 0–5 run every layer.
  for (let step = 0; step <= 5; step++) assert.equal(decayingThreshold(0.9, step, 16), 1, `step ${step}`);
  const expected = [0.876248, 0.872463, 0.868895, 0.865531, 0.862358, 0.859367, 0.856547, 0.853888, 0.851381, 0.849017, 0.846788]; // steps 6–16
  expected.forEach((threshold, i) => assert.ok(Math.abs(decayingThreshold(0.9, 6 + i, 16) - threshold) < 1e-6, `step ${6 + i}`));
  // τ = 1 stays full depth at every step; the policy applies the schedule only when it knows the step.
  for (let step = 0; step <= 16; step++) assert.equal(decayingThreshold(1, step, 16), 1);
  const policy = similarityExit(0.9, 'decaying');
  const signal = (position: number, similarity: number): LayerSignal => ({ layer: 1, totalLayers: 6, similarity, position, maxLength: 16 });
  assert.equal(policy.shouldExit(signal(5, 0.999), {}), false);
  assert.equal(policy.shouldExit(signal(6, 0.877), {}), true);
  assert.equal(policy.shouldExit(signal(6, 0.876), {}), false);
  assert.equal(policy.shouldExit(signal(16, 0.847), {}), true);
  assert.equal(similarityExit(0.9, 'constant').shouldExit(signal(16, 0.89), {}), false);
});

// A hand-written "model": log-probabilities of the next token given the tokens so far.
// Vocabulary: 0 <pad>, 1 <bos>, 2 <eos>, 3 a, 4 b, 5 c.
const EOS = 2;
const A = 3;
const B = 4;
const C = 5;
const fakeContext = { runner: { config: { decoderLayers: 1 } }, samples: 1 } as unknown as DecoderContext;
const table = (entries: (tokens: number[]) => Record<number, number>) => async (_: DecoderContext, sequences: Sequence[]) =>
  sequences.map((s) => {
    const out = new Float32Array(6).fill(-Infinity);
    for (const [token, probability] of Object.entries(entries(s.tokens))) out[Number(token)] = Math.log(probability);
    return out;
  });
const search = (overrides: Partial<SearchOptions>): SearchOptions => ({
  beamSize: 1, lengthPenalty: 1, noRepeatNgramSize: 0, eosId: EOS, padId: 0, minLength: 1, maxLength: 4, forcedEnd: true, ...overrides,
});

test('search constraints: <pad> never, no <eos> at step 0, only <eos> at step maxLength, no repeated 3-gram', async () => {
  // Prefers <pad>, then <eos>, then a; never wants to stop by itself after step 0.
  const eager = table((tokens) => (tokens.length === 0 ? { 0: 0.5, [EOS]: 0.3, [A]: 0.2 } : { 0: 0.5, [A]: 0.4, [EOS]: 0.1 }));
  const [greedy] = await greedySearch(fakeContext, search({}), eager);
  assert.deepEqual(greedy!.tokens, [A, A, A, A, EOS]);
  const [beamOfOne] = await beamSearch(fakeContext, search({}), eager);
  assert.deepEqual(beamOfOne!.tokens, greedy!.tokens);
  // Beam 3 (hand-traced): a<eos>, a a<eos>, a a a<eos> end at steps 1–3, which stops the search before the
  // forced end; a a a<eos> has the best score / length: log(0.2·0.4·0.4·0.1) / 4.
  const [beam] = await beamSearch(fakeContext, search({ beamSize: 3 }), eager);
  assert.deepEqual(beam!.tokens, [A, A, A, EOS]);
  // Always prefers a, then b: the 3-gram (a a a) may not repeat, nor (a a b), …; hand-traced.
  const repetitive = table(() => ({ [A]: 0.6, [B]: 0.3, [EOS]: 0.1 }));
  const [blocked] = await greedySearch(fakeContext, search({ maxLength: 6, noRepeatNgramSize: 3 }), repetitive);
  assert.deepEqual(blocked!.tokens, [A, A, A, B, A, A, EOS]);
  const [free] = await greedySearch(fakeContext, search({ maxLength: 6 }), repetitive);
  assert.deepEqual(free!.tokens, [A, A, A, A, A, A, EOS]);
});

test('beam search: finished hypotheses compete on score / length^penalty; the search stops once beam hypotheses ended', async () => {
  // Hand-traced, beam 2. Step 0: a (0.6), b (0.4). Step 1: a<eos> (log 0.3) is in the top 2 and ends;
  // beams a c (0.3), b c (0.2). Step 2: b c <eos> (0.2) and a c <eos> (0.15) end; b c <eos> is the second finished one.
  // Finished: a <eos> (log 0.3 / 2 = −0.602) and b c <eos> (log 0.2 / 3 = −0.536).
  let calls = 0;
  const model = table((tokens) => {
    calls++;
    const key = tokens.join(' ');
    if (key === '') return { [A]: 0.6, [B]: 0.4 };
    if (key === `${A}`) return { [EOS]: 0.5, [C]: 0.5 };
    if (key === `${B}`) return { [C]: 0.5, [EOS]: 0.1 };
    if (key === `${A} ${C}`) return { [EOS]: 0.5 };
    return { [EOS]: 1 };
  });
  const [normalised] = await beamSearch(fakeContext, search({ beamSize: 2, lengthPenalty: 1 }), model);
  assert.deepEqual(normalised!.tokens, [B, C, EOS]);
  assert.ok(Math.abs(normalised!.logProbability - Math.log(0.2)) < 1e-6);
  assert.equal(calls, 1 + 2 + 2, 'three steps, then two hypotheses have ended');
  const [raw] = await beamSearch(fakeContext, search({ beamSize: 2, lengthPenalty: 0 }), model);
  assert.deepEqual(raw!.tokens, [A, EOS]);
});

test('pooled similarity of a sample\'s beams = cosine of the beams flattened into one vector', () => {
  // Row 1: (1, 0) vs (1, 0), cos 1; row 2: (0, 1) vs (1, 0), cos 0. Pooled: (1 + 0) / √(2 · 2) = 0.5.
  const output = Float32Array.from([1, 0, 0, 1]);
  const input = Float32Array.from([1, 0, 1, 0]);
  const rows = [newSequence(0, 1), newSequence(0, 1)];
  assert.equal(pooledSimilarities(output, input, rows, 2).get(0), 0.5);
  const twoSamples = [newSequence(0, 1), newSequence(1, 1)];
  assert.deepEqual([...pooledSimilarities(output, input, twoSamples, 2)], [[0, 1], [1, 0]]);
});

/** A decoder context over random memory for the random checkpoint. */
async function randomContext(runner: LayerRunner, policy: ExitPolicy, strategy: KvStrategy, granularity: ExitGranularity = 'token'): Promise<DecoderContext> {
  const memoryLength = 5;
  const memory = Float32Array.from({ length: memoryLength * runner.config.dim }, (_, i) => Math.sin(i * 0.37));
  return {
    runner, memory, memoryMask: new Float32Array(memoryLength).fill(1), memoryLength, samples: 1, policy, strategy, granularity,
    maxLength: 6, bosId: 1, crossCache: [], flops: [0], fullDepthFlops: [0], recordSimilarities: true,
  };
}

test('drop: a layer skipped at a step gets no key/value, and later tokens attend over its shorter cache (by-hand run)', async () => {
  const { config, weights } = loadCheckpoint(randomDir);
  const runner = await LayerRunner.create(config, weights);
  try {
    // Position 1 exits after layer 1; positions 0 and 2 run all 3 layers.
    const policy: ExitPolicy = { name: 'test', needsHead: false, needsSimilarity: false, start: () => ({}), shouldExit: ({ layer, position }) => position === 1 && layer === 1 };
    const inputs = [1, 9, 12]; // <bos>, then two given tokens
    const decode = async (strategy: KvStrategy) => {
      const context = await randomContext(runner, policy, strategy);
      const sequence = newSequence(0, config.decoderLayers);
      let last: Float32Array = new Float32Array(0);
      for (const token of inputs.slice(1).concat([0])) {
        [last] = (await decodeNextToken(context, [sequence])) as [Float32Array];
        sequence.tokens.push(token);
      }
      return { last, sequence, flops: context.flops[0]! };
    };
    const dropped = await decode('drop');
    assert.deepEqual(dropped.sequence.tokenLayers, [3, 1, 3]);
    assert.deepEqual(dropped.sequence.keys.map((layer) => [0, 1, 2].map((p) => layer[p] !== undefined)), [[true, true, true], [true, false, true], [true, false, true]]);

    // By hand: layer l at position 2 attends over the positions that ran it (layer 1: 0, 1, 2; layers 2, 3: 0, 2).
    const cross: KeyValue[] = [];
    for (let l = 0; l < config.decoderLayers; l++) cross.push(await runner.crossKeyValues(l, (await randomContext(runner, policy, 'drop')).memory, 1, 5));
    const cache: Float32Array[][] = [[], [], []];
    const values: Float32Array[][] = [[], [], []];
    let hidden: Float32Array = new Float32Array(0);
    for (const [position, layers] of [[0, 3], [1, 1], [2, 3]] as const) {
      hidden = await runner.embedDecoder([inputs[position]!], [position]);
      for (let l = 0; l < layers; l++) {
        const past = cache[l]!.length;
        const join = (parts: Float32Array[]) => Float32Array.from(parts.flatMap((part) => [...part]));
        const out = await runner.decoderStep(l, hidden, join(cache[l]!), join(values[l]!), past, cross[l]!.key, cross[l]!.value, new Float32Array(5).fill(1), 1, 5);
        cache[l]!.push(out.key);
        values[l]!.push(out.value);
        hidden = out.hidden;
      }
    }
    const expected = logSoftmaxOver(await runner.head(hidden, 1, 1));
    const difference = (a: Float32Array, b: Float32Array) => Math.max(...a.map((x, i) => Math.abs(x - b[i]!)));
    assert.ok(difference(dropped.last, expected) < 1e-5, `drop differs from the by-hand run by ${difference(dropped.last, expected)}`);
    // The other strategies fill the gap, so they attend over 3 keys and answer differently.
    const copied = await decode('copy');
    assert.ok(difference(copied.last, expected) > 1e-4);
    assert.ok(dropped.flops < copied.flops, 'shorter caches cost fewer attention FLOPs');
  } finally {
    await runner.dispose();
  }
});

test('exit granularity: "token" decides per beam, "step" once per sample for all its beams on the pooled cosine', async () => {
  const { config, weights } = loadCheckpoint(randomDir);
  const runner = await LayerRunner.create(config, weights);
  try {
    const run = async (granularity: ExitGranularity) => {
      const signals: number[][] = [];
      const inner = similarityExit(0.2);
      const policy: ExitPolicy = { ...inner, shouldExit: (signal, memory) => { (signals[signal.layer - 1] ??= []).push(signal.similarity); return inner.shouldExit(signal, memory); } };
      const context = await randomContext(runner, policy, 'drop', granularity);
      const beams = [newSequence(0, config.decoderLayers), newSequence(0, config.decoderLayers), newSequence(0, config.decoderLayers)];
      await decodeNextToken(context, beams); // position 0: identical beams
      beams.forEach((beam, i) => beam.tokens.push(5 + 7 * i));
      await decodeNextToken(context, beams); // position 1: three different tokens
      return { signals, beams };
    };
    const perToken = await run('token');
    const perStep = await run('step');
    // 'token': one decision per active beam and layer; 'step': one per layer, and every beam exits together.
    assert.equal(perToken.signals[0]!.length, 6);
    assert.equal(perStep.signals[0]!.length, 2);
    for (const position of [0, 1]) assert.equal(new Set(perStep.beams.map((b) => b.tokenLayers[position])).size, 1);
    // At position 0 the beams are identical, so the pooled cosine is each beam's own.
    assert.ok(Math.abs(perStep.signals[0]![0]! - perStep.beams[0]!.tokenSimilarities[0]![0]!) < 1e-6);
    await assert.rejects(
      decodeNextToken(await randomContext(runner, { ...similarityExit(0.5), needsHead: true, name: 'head-reader' }, 'drop', 'step'), [newSequence(0, config.decoderLayers)]),
      /granularity "step" pools the beams' states/,
    );
  } finally {
    await runner.dispose();
  }
});

test('fused full depth (whole-stack graphs) writes the same caption as the per-layer runtime at full depth', async () => {
  const model = await MuEModel.load(randomDir, { fullStack: true });
  try {
    const image = captionExample(0, { split: 'test', seed: 4, imageSize: 32 }).image;
    const full = await model.caption({ image }, { imageThreshold: 1, textThreshold: 1, decoderThreshold: 1 });
    const fused = await model.caption({ image }, { fused: true });
    assert.equal(fused.caption, full.caption);
    assert.deepEqual(fused.telemetry.tokenLayers, full.telemetry.tokenLayers);
    assert.equal(fused.telemetry.flops, full.telemetry.flops);
    await assert.rejects(model.caption({ image }, { fused: true, decoderPolicy: similarityExit(0.5) }), /fused runs are full depth/);
  } finally {
    await model.dispose();
  }
});

test('a trained captioning model decodes with the official settings by default; greedy is --beam-size 1', async () => {
  const model = await MuEModel.load(trainedDir);
  try {
    assert.deepEqual(CAPTION_DECODING, { beamSize: 5, noRepeatNgramSize: 3, maxLength: 16, lengthPenalty: 1, minLength: 1, decoderSchedule: 'decaying', kvStrategy: 'drop', exitGranularity: 'token' });
    const maxLength = Math.min(16, model.config.maxTargetLength - 1);
    for (let i = 0; i < 4; i++) {
      const image = captionExample(i, { split: 'test', seed: 5, imageSize: 32 }).image;
      const byDefault = await model.caption({ image }, { decoderThreshold: 0.9 });
      const official = await model.caption({ image }, { decoderThreshold: 0.9, ...CAPTION_DECODING, maxLength });
      assert.equal(byDefault.caption, official.caption);
      assert.deepEqual(byDefault.telemetry.tokenLayers, official.telemetry.tokenLayers);
      const words = byDefault.caption.split(' ').filter((w) => w.length > 0);
      assert.ok(words.length >= 1 && words.length <= maxLength, `"${byDefault.caption}"`);
      const trigrams = words.slice(2).map((w, k) => `${words[k]} ${words[k + 1]} ${w}`);
      assert.equal(new Set(trigrams).size, trigrams.length, `repeated 3-gram in "${byDefault.caption}"`);
      // The forced end token is the last generated token: one more step than words.
      assert.equal(byDefault.telemetry.tokenLayers.length, words.length + 1);
      const greedy = await model.caption({ image }, { decoderThreshold: 0.9, beamSize: 1 });
      assert.ok(greedy.telemetry.flops < byDefault.telemetry.flops, 'five beams cost more than one');
    }
  } finally {
    await model.dispose();
  }
});

test('mue eval on captions reports drop (mue) beside copy, propagate and recompute, and the fused full-depth reference', async () => {
  const report = await evaluateModels({
    modelDir: trainedDir, split: 'test', count: 3, seed: 1, command: 'test', methods: ['mue', 'mue-copy', 'mue-propagate', 'mue-recompute'],
    settings: [{ method: 'mue', setting: 'τ=0.9' }, { method: 'mue-copy', setting: 'τ=0.9' }, { method: 'mue-propagate', setting: 'τ=0.9' }, { method: 'mue-recompute', setting: 'τ=0.9' }],
    fusedReference: true, decoding: { beamSize: 2 },
  });
  assert.deepEqual(report.methods.map((m) => m.method), ['mue', 'mue-copy', 'mue-propagate', 'mue-recompute']);
  assert.equal(report.fullDepth.flopRatio, 1); // against its own run
  assert.ok(report.fullDepth.fusedTimeRatio! > 0);
  for (const result of report.methods) {
    assert.ok(result.fusedTimeRatio! > 0 && result.timeRatio > 0, result.method);
    assert.ok(result.flopRatio > 0 && result.flopRatio < 1.5, `${result.method}: ${result.flopRatio}`);
  }
});
