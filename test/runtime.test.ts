import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { captionExample, sceneWorldTokenizer, veExample } from '../src/data/sceneworld.js';
import { encodeText, normaliseImage } from '../src/data/preprocess.js';
import { loadCheckpoint } from '../src/model/checkpoint.js';
import { TfModel } from '../src/model/tfModel.js';
import { toTensors } from '../src/train/trainer.js';
import { entropyExit, fixedDepthExit, marginExit, patienceExit } from '../src/runtime/exits.js';
import { MuEModel } from '../src/runtime/mueModel.js';
import { initTensorflow, saveRandomCheckpoint, tf } from './helpers.js';

const workDir = mkdtempSync(join(tmpdir(), 'mue-runtime-'));
const veDir = join(workDir, 've');
const captionDir = join(workDir, 'caption');
let ve: MuEModel;
let captioner: MuEModel;
const sceneOptions = { split: 'test' as const, seed: 3, imageSize: 32 };
const veInput = (i: number) => { const e = veExample(i, sceneOptions); return { image: e.image, hypothesis: e.hypothesis }; };
const captionInput = (i: number) => ({ image: captionExample(i, sceneOptions).image });

before(async () => {
  await initTensorflow();
  // Deeper than `tiny` so exits have room: 4 encoder and 4 decoder layers, random weights.
  await saveRandomCheckpoint(veDir, 've', { encoderLayers: 4, decoderLayers: 4 });
  await saveRandomCheckpoint(captionDir, 'caption', { encoderLayers: 3, decoderLayers: 4, maxTargetLength: 8 });
  ve = await MuEModel.load(veDir);
  captioner = await MuEModel.load(captionDir);
});
after(async () => {
  await ve.dispose();
  await captioner.dispose();
  rmSync(workDir, { recursive: true, force: true });
});

test('threshold 1 reproduces the TensorFlow.js model at full depth (greedy caption tokens, official constraints)', async () => {
  const checkpoint = loadCheckpoint(captionDir);
  const reference = TfModel.fromTensors(checkpoint.config, toTensors(checkpoint.weights));
  const tokenizer = sceneWorldTokenizer();
  const image = captionInput(0).image;
  const prompt = encodeText(tokenizer, 'what does the image describe', checkpoint.config.maxTextLength);
  const maxLength = checkpoint.config.maxTargetLength - 1; // steps 0 … maxLength, the last forced to <eos>
  const expected: number[] = [];
  tf.tidy(() => {
    const images = tf.tensor4d(normaliseImage(image, 32), [1, 32, 32, 3]);
    const encoded = reference.encode(images, tf.tensor2d([prompt], undefined, 'int32'), tf.ones([1, prompt.length]) as tf.Tensor2D);
    while (expected.at(-1) !== tokenizer.eosId) {
      const states = reference.decode(encoded.memory, encoded.memoryMask, tf.tensor2d([[tokenizer.bosId, ...expected]], undefined, 'int32'));
      const logits = Array.from(reference.logits(states.at(-1)!).slice([0, expected.length, 0], [1, 1, -1]).dataSync());
      logits[tokenizer.padId] = -Infinity; // never <pad>
      if (expected.length === 0) logits[tokenizer.eosId] = -Infinity; // minimum length 1
      const best = logits.indexOf(Math.max(...logits));
      expected.push(expected.length === maxLength ? tokenizer.eosId : best);
    }
  });
  const result = await captioner.caption({ image }, { imageThreshold: 1, textThreshold: 1, decoderThreshold: 1, beamSize: 1, noRepeatNgramSize: 0 });
  assert.equal(result.caption, tokenizer.decode(expected));
  assert.ok(result.telemetry.tokenLayers.every((layers) => layers === 4));
  assert.equal(result.telemetry.flops <= result.telemetry.fullDepthFlops * 1.01, true);
  reference.dispose();
});

test('a threshold crafted from a similarity trace makes the stream exit at exactly that layer', async () => {
  const input = veInput(1);
  const trace = (await ve.entail(input, { recordSimilarities: true })).telemetry.similarities!;
  for (const stream of ['image', 'text'] as const) {
    const similarities = trace[stream]!;
    assert.equal(similarities.length, 4);
    for (let layer = 1; layer <= 4; layer++) {
      const earlierMax = Math.max(-1, ...similarities.slice(0, layer - 1));
      if (similarities[layer - 1]! <= earlierMax + 1e-6) continue; // this layer cannot be singled out by a threshold
      const threshold = (similarities[layer - 1]! + earlierMax) / 2;
      const result = await ve.entail(input, { [`${stream}Threshold`]: threshold });
      assert.equal(result.telemetry[`${stream}Layers`], layer, `${stream} threshold ${threshold} with trace ${similarities}`);
    }
  }
  // Decoder: exit of the answer token at layer 1 when the threshold is just below its first similarity.
  const first = trace.tokens[0]![0]!;
  assert.deepEqual((await ve.entail(input, { decoderThreshold: first - 1e-4 })).telemetry.tokenLayers, [1]);
});

test('image and text streams exit at different layers for one input', async () => {
  const input = veInput(2);
  const trace = (await ve.entail(input, { recordSimilarities: true })).telemetry.similarities!;
  const result = await ve.entail(input, { imageThreshold: trace.image![0]! - 1e-4, textThreshold: 1 });
  assert.equal(result.telemetry.imageLayers, 1);
  assert.equal(result.telemetry.textLayers, 4);
  assert.ok(result.telemetry.flops < result.telemetry.fullDepthFlops);
});

test('batched results equal one-by-one results, with per-sample exits', async () => {
  const inputs = Array.from({ length: 6 }, (_, i) => veInput(10 + i));
  const traces = await Promise.all(inputs.map(async (input) => (await ve.entail(input, { recordSimilarities: true })).telemetry.similarities!));
  // Thresholds at the median similarity so that samples exit at different layers.
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const options = {
    imageThreshold: median(traces.flatMap((t) => t.image!)), textThreshold: median(traces.flatMap((t) => t.text!)),
    decoderThreshold: median(traces.flatMap((t) => t.tokens.flat())),
  };
  const batched = await ve.entailBatch(inputs, options);
  const single = [];
  for (const input of inputs) single.push(await ve.entail(input, options));
  assert.ok(new Set(batched.map((r) => `${r.telemetry.imageLayers}/${r.telemetry.textLayers}`)).size > 1, 'samples should exit at different layers');
  batched.forEach((result, i) => {
    assert.equal(result.answer, single[i]!.answer);
    assert.equal(result.telemetry.imageLayers, single[i]!.telemetry.imageLayers);
    assert.equal(result.telemetry.textLayers, single[i]!.telemetry.textLayers);
    assert.deepEqual(result.telemetry.tokenLayers, single[i]!.telemetry.tokenLayers);
  });
  const captionInputs = [0, 1, 2].map(captionInput);
  const batchedCaptions = await captioner.captionBatch(captionInputs, { decoderThreshold: 0.5 });
  for (let i = 0; i < 3; i++) {
    const alone = await captioner.caption(captionInputs[i]!, { decoderThreshold: 0.5 });
    assert.equal(batchedCaptions[i]!.caption, alone.caption);
    assert.deepEqual(batchedCaptions[i]!.telemetry.tokenLayers, alone.telemetry.tokenLayers);
  }
});

test('captions decode with beams by default; wider beams run with no-repeat n-grams', async () => {
  for (let i = 0; i < 3; i++) {
    const official = await captioner.caption(captionInput(i), { decoderThreshold: 0.6 });
    const explicit = await captioner.caption(captionInput(i), { decoderThreshold: 0.6, beamSize: 5, noRepeatNgramSize: 3, maxLength: 7, decoderSchedule: 'decaying', kvStrategy: 'drop' });
    assert.equal(official.caption, explicit.caption);
    assert.deepEqual(official.telemetry.tokenLayers, explicit.telemetry.tokenLayers);
  }
  const wide = await captioner.caption(captionInput(0), { beamSize: 3, noRepeatNgramSize: 2, lengthPenalty: 1 });
  // At full depth the executed FLOPs are exactly the full-depth count, beams included.
  assert.equal(wide.telemetry.flops, wide.telemetry.fullDepthFlops);
  const words = wide.caption.split(' ');
  const bigrams = words.slice(1).map((w, i) => `${words[i]} ${w}`);
  assert.equal(new Set(bigrams).size, bigrams.length);
});

test('each KV strategy runs with early-exiting tokens; recompute equals full depth when no token exits', async () => {
  const full = await captioner.caption(captionInput(1), { decoderThreshold: 1 });
  const recomputeNoExit = await captioner.caption(captionInput(1), { decoderThreshold: 1, kvStrategy: 'recompute' });
  assert.equal(recomputeNoExit.caption, full.caption);
  assert.equal(recomputeNoExit.telemetry.flops, full.telemetry.flops);
  const threshold = 0.5;
  const results = {} as Record<string, Awaited<ReturnType<MuEModel['caption']>>>;
  for (const kvStrategy of ['drop', 'copy', 'propagate', 'recompute'] as const) {
    results[kvStrategy] = await captioner.caption(captionInput(1), { decoderThreshold: threshold, kvStrategy, maxLength: 7, beamSize: 1, decoderSchedule: 'constant' });
  }
  assert.ok(results.copy!.telemetry.tokenLayers.some((layers) => layers < 4), 'some token should exit early');
  for (const [strategy, result] of Object.entries(results)) {
    assert.ok(result.telemetry.tokenLayers.length > 0, strategy);
    // Executed FLOPs include the similarity checks, which full depth does not run: allow 1%.
    assert.ok(result.telemetry.flops <= result.telemetry.fullDepthFlops * 1.01, `${strategy}: ${result.telemetry.flops} vs ${result.telemetry.fullDepthFlops}`);
  }
});

test('baseline criteria run behind the same interface', async () => {
  const input = veInput(4);
  assert.deepEqual((await ve.entail(input, { decoderPolicy: fixedDepthExit(2), encoderPolicy: fixedDepthExit(3) })).telemetry.tokenLayers, [2]);
  assert.equal((await ve.entail(input, { encoderPolicy: fixedDepthExit(3) })).telemetry.imageLayers, 3);
  assert.deepEqual((await ve.entail(input, { decoderPolicy: entropyExit(10) })).telemetry.tokenLayers, [1]); // log 3 < 10: exits at once
  assert.deepEqual((await ve.entail(input, { decoderPolicy: marginExit(1) })).telemetry.tokenLayers, [4]); // a margin > 1 is impossible
  assert.ok((await ve.entail(input, { decoderPolicy: patienceExit(2) })).telemetry.tokenLayers[0]! >= 3);
});

test('bad input gets a clear error', async () => {
  const input = veInput(0);
  await assert.rejects(ve.entail(input, { imageThreshold: 1.5 }), /imageThreshold must be a number in \[-1, 1\]/);
  await assert.rejects(ve.entail(input, { decoderThreshold: Number.NaN }), /decoderThreshold/);
  await assert.rejects(ve.entail({ ...input, image: { width: 16, height: 16, pixels: new Uint8Array(16 * 16 * 3) } }), /model expects 32×32/);
  await assert.rejects(ve.entail({ ...input, hypothesis: 'a '.repeat(40) }), /at most 20/);
  await assert.rejects(ve.entail({ ...input, hypothesis: '  ' }), /text is empty/);
  await assert.rejects(ve.entail(input, { kvStrategy: 'teleport' as never }), /kvStrategy must be one of/);
  await assert.rejects(ve.entail(input, { encoderPolicy: entropyExit(0.5) }), /reads the output distribution, which only the decoder has/);
  await assert.rejects(ve.entail(input, { decoderSchedule: 'sometimes' as never }), /decoderSchedule must be/);
  await assert.rejects(captioner.caption(captionInput(0), { noRepeatNgramSize: 1.5 }), /noRepeatNgramSize must be a non-negative integer/);
  assert.throws(() => marginExit(Number.NaN), /margin threshold must be in \[0, 1\]/);
  // Unknown words map to <unk> (documented) rather than failing.
  assert.ok(['yes', 'no', 'maybe'].includes((await ve.entail({ ...input, hypothesis: 'there is a purple dodecahedron' })).answer));
  const notAModel = join(workDir, 'not-a-model');
  writeFileSync(join(workDir, 'stray.txt'), 'x');
  await assert.rejects(MuEModel.load(notAModel), /not a model directory/);
  await assert.rejects(MuEModel.load(join(workDir, 'stray.txt')), /not a model directory/);
});
