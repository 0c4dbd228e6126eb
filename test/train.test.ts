import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadCheckpoint } from '../src/model/checkpoint.js';
import { DEFAULT_TRAIN_OPTIONS, train, type StepRecord, type TrainOptions } from '../src/train/trainer.js';

const workDir = mkdtempSync(join(tmpdir(), 'mue-train-'));
after(() => rmSync(workDir, { recursive: true, force: true }));

const tinyRun = (name: string, overrides: Partial<TrainOptions> = {}): TrainOptions => ({
  ...DEFAULT_TRAIN_OPTIONS, task: 've', preset: 'tiny', imageSize: 32, steps: 6, batchSize: 8, warmupSteps: 2,
  learningRate: 3e-3, validationEvery: 1000, validationSize: 16, checkpointEvery: 1000, outDir: join(workDir, name), ...overrides,
});
const readLog = (outDir: string) => readFileSync(join(outDir, 'train-log.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line));

test('a tiny model\'s training loss falls on SceneWorld; the JSONL log has every layer\'s loss', async () => {
  const options = tinyRun('falls', { steps: 40, batchSize: 16 });
  const { model } = await train(options);
  model.dispose();
  const steps = readLog(options.outDir).filter((r) => r.type === 'train') as StepRecord[];
  assert.equal(steps.length, 40);
  assert.equal(steps[0]!.layerLosses.length, 2);
  const mean = (records: StepRecord[]) => records.reduce((sum, r) => sum + r.loss, 0) / records.length;
  const early = mean(steps.slice(0, 5));
  const late = mean(steps.slice(-5));
  assert.ok(late < early * 0.8, `loss did not fall: first 5 steps ${early.toFixed(3)}, last 5 ${late.toFixed(3)}`);
  assert.ok(readLog(options.outDir).some((r) => r.type === 'validation' && r.layerAccuracy.length === 2));
});

test('training N steps equals N/2 steps + resume + N/2 steps (loss to 1e-6, identical weights)', async () => {
  const straight = tinyRun('straight');
  (await train(straight)).model.dispose();
  const paused = tinyRun('paused', { stopAtStep: 3 });
  (await train(paused)).model.dispose();
  assert.equal(loadCheckpoint(paused.outDir).trainingState!.step, 3);
  (await train(tinyRun('paused'), {}, 'resume')).model.dispose();
  const lossesStraight = readLog(straight.outDir).filter((r) => r.type === 'train').map((r) => r.loss);
  const lossesResumed = readLog(paused.outDir).filter((r) => r.type === 'train').map((r) => r.loss);
  assert.equal(lossesResumed.length, 6);
  lossesStraight.forEach((loss, i) => assert.ok(Math.abs(loss - lossesResumed[i]!) < 1e-6, `step ${i + 1}: ${loss} vs ${lossesResumed[i]}`));
  const a = loadCheckpoint(straight.outDir).weights;
  const b = loadCheckpoint(paused.outDir).weights;
  for (const [name, tensor] of a) assert.deepEqual(Array.from(b.get(name)!.data), Array.from(tensor.data), name);
});

test('training refuses to clobber a checkpoint, a changed resume, and bad options', async () => {
  await assert.rejects(train(tinyRun('straight')), /already holds a checkpoint/);
  await assert.rejects(train(tinyRun('straight', { learningRate: 1e-2 }), {}, 'resume'), /cannot resume: option learningRate/);
  await assert.rejects(train(tinyRun('x', { batchSize: 0 })), /--batch-size must be an integer from 1 to 4096/);
  await assert.rejects(train(tinyRun('x', { steps: 1e20 })), /--steps must be an integer from 1 to 10000000/);
  await assert.rejects(train(tinyRun('x', { labelSmoothing: 1 })), /--label-smoothing/);
  await assert.rejects(train(tinyRun('nothing'), {}, 'resume'), /not a model directory/);
});

test('examples longer than the model\'s limits are recognised (training and evaluation skip and count them)', async () => {
  const { fitsModel } = await import('../src/train/batch.js');
  const { sceneWorldTokenizer } = await import('../src/data/sceneworld.js');
  const { presetConfig } = await import('../src/model/config.js');
  const tokenizer = sceneWorldTokenizer();
  const config = presetConfig('tiny', tokenizer.vocabSize, { maxTextLength: 4, maxTargetLength: 3 });
  const image = { width: 1, height: 1, pixels: new Uint8Array(3) };
  assert.equal(fitsModel({ image, text: 'there is a circle', target: 'yes' }, tokenizer, config), true);
  assert.equal(fitsModel({ image, text: 'there is a red circle', target: 'yes' }, tokenizer, config), false); // 5 > 4 text tokens
  assert.equal(fitsModel({ image, text: 'a circle', target: 'a red circle' }, tokenizer, config), false); // 3 + <eos> > 3
  assert.equal(fitsModel({ image, text: '', target: 'yes' }, tokenizer, config), false);
});
