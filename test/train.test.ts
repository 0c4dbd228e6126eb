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
  // The 'bos' formulation with a full-vocabulary, smoothed loss falls fast from ln V (the prompt formulation's 3-way loss starts at ln 3: below).
  const options = tinyRun('falls', { steps: 40, batchSize: 16, veFormulation: 'bos', labelSmoothing: 0.1 });
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

test('prompt formulation: 60 steps of a tiny model beat the majority answer; the runtime answers as training validation counts', async () => {
  const { MuEModel } = await import('../src/runtime/mueModel.js');
  const { sceneWorldEvalSet } = await import('../src/eval/evaluate.js');
  const options = tinyRun('prompt', { steps: 60, batchSize: 16, warmupSteps: 10, validationEvery: 60, validationSize: 128, veFormulation: 'prompt' });
  const { model, lastValidation } = await train(options);
  model.dispose();
  const saved = loadCheckpoint(options.outDir);
  assert.equal(saved.config.veFormulation, 'prompt');
  assert.equal((saved.trainingState!.options as TrainOptions).labelSmoothing, 0); // the VE default, as the official runs
  // The validation set is SceneWorld validation 0..127 (seed 1): its most common answer is the bar.
  const examples = sceneWorldEvalSet('ve', 'validation', 128, options.seed, options.imageSize);
  const counts = new Map<string, number>();
  for (const e of examples) counts.set(e.label!, (counts.get(e.label!) ?? 0) + 1);
  const majority = Math.max(...counts.values()) / examples.length;
  assert.ok(lastValidation!.accuracy > majority + 0.03, `validation accuracy ${lastValidation!.accuracy} vs majority answer ${majority}`);
  // Training validates at the last prompt position (teacher-forced tfjs); the ORT runtime must agree at full depth.
  const runtime = await MuEModel.load(options.outDir);
  try {
    let correct = 0;
    for (let start = 0; start < examples.length; start += 32) {
      const part = examples.slice(start, start + 32);
      const results = await runtime.entailBatch(part.map((e) => ({ image: e.image, hypothesis: e.hypothesis })), { imageThreshold: 1, textThreshold: 1, decoderThreshold: 1 });
      results.forEach((result, i) => (correct += Number(result.answer === part[i]!.label)));
    }
    assert.ok(Math.abs(correct / examples.length - lastValidation!.accuracy) <= 1 / examples.length, `runtime ${correct}/128 vs validation ${lastValidation!.accuracy}`);
  } finally {
    await runtime.dispose();
  }
});

test('a resume keeps a run\'s formulation and ε when none is given, also for runs saved before the options existed', async () => {
  const { writeFileSync } = await import('node:fs');
  const old = tinyRun('old-run', { steps: 2, stopAtStep: 1, veFormulation: 'bos', labelSmoothing: 0.1 });
  (await train(old)).model.dispose();
  // A run saved before veFormulation existed has no such option (and was trained 'bos').
  const statePath = join(old.outDir, 'training_state.json');
  const state = JSON.parse(readFileSync(statePath, 'utf8'));
  delete state.options.veFormulation;
  writeFileSync(statePath, JSON.stringify(state));
  const { veFormulation: _v, labelSmoothing: _l, ...unset } = tinyRun('old-run', { steps: 2 });
  (await train(unset, {}, 'resume')).model.dispose();
  const resumed = loadCheckpoint(old.outDir);
  assert.equal(resumed.trainingState!.step, 2);
  assert.equal(resumed.config.veFormulation, 'bos');
  assert.equal((resumed.trainingState!.options as TrainOptions).labelSmoothing, 0.1);
  await assert.rejects(train({ ...unset, veFormulation: 'prompt' }, {}, 'resume'), /cannot resume: option veFormulation/);
});
