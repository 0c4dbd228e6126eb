// The VE formulations (src/data/entailmentPrompt.ts) as training sees them: the encoder text,
// the decoder input, the supervised positions and the answer constraint of known examples,
// written out by hand; and the constrained label-smoothed loss against its formula.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { openDataSource, takeRecords, type TaskRecord } from '../src/data/dataSource.js';
import { entailmentAnswerIds } from '../src/data/entailmentPrompt.js';
import { sceneWorldTokenizer } from '../src/data/sceneworld.js';
import { WordTokenizer } from '../src/data/tokenizer.js';
import { validateConfig } from '../src/model/config.js';
import { disposeBatch, fitsModel, fromTaskRecord, makeBatch, type TrainingBatch } from '../src/train/batch.js';
import { labelSmoothedCrossEntropy } from '../src/train/loss.js';
import { initTensorflow, tf, tinyConfig } from './helpers.js';

before(async () => {
  await initTensorflow();
});

const image = { width: 16, height: 16, pixels: new Uint8Array(16 * 16 * 3) };
const record = (hypothesis: string, label: 'yes' | 'no' | 'maybe', premise?: string): TaskRecord => ({ id: hypothesis, image, hypothesis, label, group: '', ...(premise ? { premise } : {}) });
const rows = (tensor: tf.Tensor2D): number[][] => tensor.arraySync();
const unpack = (batch: TrainingBatch) => ({
  text: rows(batch.inputs.textIds), textMask: rows(batch.inputs.textMask), decoder: rows(batch.inputs.decoderIds),
  targets: rows(batch.targets), targetMask: rows(batch.targetMask), answerPositions: batch.answerPositions, allowedTokens: batch.allowedTokens,
});

test('SceneWorld, prompt formulation: <bos> + the template is the decoder input, only its last position is supervised', () => {
  const tokenizer = sceneWorldTokenizer();
  const config = tinyConfig({ vocabSize: tokenizer.vocabSize, maxTextLength: 20, maxTargetLength: 24 });
  const first = fromTaskRecord(record('there is a red circle', 'yes'), 0, 'prompt');
  const second = fromTaskRecord(record('there is no circle', 'no'), 0, 'prompt');
  assert.equal(first.text, ' does the image describe " there is a red circle "?');
  const batch = makeBatch([first, second], tokenizer, config);
  // Ids: <pad> 0, <bos> 1; yes 4, no 5, maybe 6; does 8, the 9, image 10, describe 11, there 12, is 13, a 15, red 52, circle 58, " 70, ? 71.
  const firstText = [8, 9, 10, 11, 70, 12, 13, 15, 52, 58, 70, 71];
  const secondText = [8, 9, 10, 11, 70, 12, 13, 5, 58, 70, 71];
  assert.deepEqual(unpack(batch), {
    text: [firstText, [...secondText, 0]],
    textMask: [new Array(12).fill(1), [...new Array(11).fill(1), 0]],
    decoder: [[1, ...firstText], [1, ...secondText, 0]],
    targets: [[...new Array(12).fill(0), 4], [...new Array(11).fill(0), 5, 0]],
    targetMask: [[...new Array(12).fill(0), 1], [...new Array(11).fill(0), 1, 0]],
    answerPositions: [12, 11],
    allowedTokens: [4, 5, 6],
  });
  disposeBatch(batch);
});

test('SceneWorld, bos formulation (the first shipped models): the bare hypothesis, the answer from <bos>', () => {
  const tokenizer = sceneWorldTokenizer();
  const config = tinyConfig({ vocabSize: tokenizer.vocabSize });
  const example = fromTaskRecord(record('there is a red circle', 'maybe', 'a premise is ignored'), 0, 'bos');
  assert.equal(example.text, 'there is a red circle');
  const batch = makeBatch([example], tokenizer, config);
  assert.deepEqual(unpack(batch), {
    text: [[12, 13, 15, 52, 58]], textMask: [[1, 1, 1, 1, 1]],
    decoder: [[1, 6]], targets: [[6, 2]], targetMask: [[1, 1]], answerPositions: [0], allowedTokens: undefined,
  });
  disposeBatch(batch);
});

test('SNLI-VE, prompt formulation: the reader keeps the premise and the premise template is used', async () => {
  const [first] = await takeRecords(openDataSource(`snli-ve:${join(import.meta.dirname, 'fixtures', 'datasets', 'snli-ve-tsv')}`, 've', 1), 'validation', 1, 16);
  assert.equal(fromTaskRecord(first!, 0, 'prompt').text, ' can image and text1 " a picture of shapes " imply text2 " there is a small square "?');
  const tokenizer = WordTokenizer.fromWords(['yes', 'no', 'maybe', 'can', 'image', 'and', 'text1', 'imply', 'text2', 'a', 'dog', 'runs', '"', '?']);
  const example = fromTaskRecord(record('a dog runs', 'no', 'a dog'), 0, 'prompt');
  const batch = makeBatch([example], tokenizer, tinyConfig({ vocabSize: tokenizer.vocabSize, maxTextLength: 20, maxTargetLength: 24 }));
  // can 7, image 8, and 9, text1 10, " 16, a 13, dog 14, imply 11, text2 12, runs 15, ? 17; no 5.
  const text = [7, 8, 9, 10, 16, 13, 14, 16, 11, 12, 16, 13, 14, 15, 16, 17];
  assert.deepEqual(unpack(batch), {
    text: [text], textMask: [new Array(16).fill(1)],
    decoder: [[1, ...text]], targets: [[...new Array(16).fill(0), 5]], targetMask: [[...new Array(16).fill(0), 1]],
    answerPositions: [16], allowedTokens: [4, 5, 6],
  });
  disposeBatch(batch);
});

test('the decoder prompt counts against maxTargetLength; a batch cannot mix formulations; answers must be yes/no/maybe', () => {
  const tokenizer = sceneWorldTokenizer();
  const prompt = fromTaskRecord(record('there is a red circle', 'yes'), 0, 'prompt'); // 12 text tokens, 13 decoder positions
  assert.equal(fitsModel(prompt, tokenizer, tinyConfig({ vocabSize: tokenizer.vocabSize, maxTextLength: 12, maxTargetLength: 13 })), true);
  assert.equal(fitsModel(prompt, tokenizer, tinyConfig({ vocabSize: tokenizer.vocabSize, maxTextLength: 12, maxTargetLength: 12 })), false);
  assert.equal(fitsModel(prompt, tokenizer, tinyConfig({ vocabSize: tokenizer.vocabSize, maxTextLength: 11, maxTargetLength: 24 })), false);
  const config = tinyConfig({ vocabSize: tokenizer.vocabSize, maxTextLength: 20, maxTargetLength: 24 });
  assert.throws(() => makeBatch([prompt, fromTaskRecord(record('there is a circle', 'no'), 0, 'bos')], tokenizer, config), /cannot mix/);
  assert.throws(() => makeBatch([{ ...prompt, target: 'red' }], tokenizer, config), /answer "red" is not one of yes, no, maybe/);
});

test('model configs record the formulation: absent means bos (old checkpoints), anything else is refused', () => {
  const base = { ...tinyConfig() } as Record<string, unknown>;
  delete base.veFormulation;
  assert.equal(validateConfig(base).veFormulation, 'bos');
  assert.equal(validateConfig({ ...base, veFormulation: 'prompt' }).veFormulation, 'prompt');
  assert.throws(() => validateConfig({ ...base, veFormulation: 'answer' }), /veFormulation must be "prompt" or "bos"/);
  assert.equal(tinyConfig().veFormulation, 'prompt'); // new models
});

test('constrained label-smoothed CE: a softmax over the allowed tokens, smoothing averaged over them, unsupervised positions ignored', () => {
  const logitRows = [[0.5, 2, -1, 3, 0.25], [1, -0.5, 0.75, 4, 2]]; // (T = 2, V = 5); token 3 is the largest but not allowed
  const allowed = [0, 2, 4];
  const logits = tf.tensor3d([logitRows]);
  const targets = tf.tensor2d([[0, 4]], [1, 2], 'int32');
  const mask = tf.tensor2d([[0, 1]]);
  // By hand at position 1: log p_v = z_v − log Σ_{u∈A} e^{z_u}.
  const row = logitRows[1]!;
  const logSum = Math.log(allowed.reduce((sum, v) => sum + Math.exp(row[v]!), 0));
  const negLog = (v: number) => logSum - row[v]!;
  for (const smoothing of [0, 0.1]) {
    const expected = (1 - smoothing) * negLog(4) + smoothing * allowed.reduce((sum, v) => sum + negLog(v), 0) / allowed.length;
    const actual = labelSmoothedCrossEntropy(logits, targets, mask, smoothing, allowed).dataSync()[0]!;
    assert.ok(Math.abs(actual - expected) < 1e-5, `ε=${smoothing}: ${actual} vs ${expected}`);
  }
  // The disallowed logits get no gradient.
  const gradient = tf.grad((z: tf.Tensor) => labelSmoothedCrossEntropy(z as tf.Tensor3D, targets, mask, 0.1, allowed))(logits).arraySync() as number[][][];
  for (const value of [gradient[0]![1]![1], gradient[0]![1]![3], ...gradient[0]![0]!]) assert.equal(Math.abs(value!), 0);
  tf.dispose([logits, targets, mask]);
});

test('answer ids: prompt models use the word after a space (OFA\'s " yes"), bos models the bare word; an answer must be one token', () => {
  // A stand-in for a GPT-2 style BPE, whose word-initial tokens differ from the bare words.
  const bpeLike = {
    ...sceneWorldTokenizer(),
    encode: (text: string) => ({ ' yes': [4420], ' no': [117], ' maybe': [2085] } as Record<string, number[]>)[text] ?? [9, 9],
    idOf: (token: string) => ({ yes: 10, no: 11, maybe: 12 } as Record<string, number>)[token] ?? 3,
  };
  assert.deepEqual(entailmentAnswerIds(bpeLike, 'prompt'), [4420, 117, 2085]);
  assert.deepEqual(entailmentAnswerIds(bpeLike, 'bos'), [10, 11, 12]);
  assert.throws(() => entailmentAnswerIds({ ...bpeLike, encode: () => [1, 2] }, 'prompt'), /splits the answer " yes" into 2 tokens/);
  // SceneWorld's word tokenizer: both are the word's id.
  assert.deepEqual(entailmentAnswerIds(sceneWorldTokenizer(), 'prompt'), [4, 5, 6]);
  assert.deepEqual(entailmentAnswerIds(sceneWorldTokenizer(), 'bos'), [4, 5, 6]);
});
