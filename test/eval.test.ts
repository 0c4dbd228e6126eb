// Evaluation and calibration end to end on a tiny model trained here.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { binomialCdf, calibrate } from '../src/eval/calibrate.js';
import { runMethod, sceneWorldEvalSet, scoreRun } from '../src/eval/evaluate.js';
import { evaluateModels } from '../src/eval/harness.js';
import { MuEModel, readExitThresholds } from '../src/runtime/mueModel.js';
import { DEFAULT_TRAIN_OPTIONS, train } from '../src/train/trainer.js';
import { writeExitsFile } from '../src/eval/calibrate.js';

const workDir = mkdtempSync(join(tmpdir(), 'mue-eval-'));
const modelDir = join(workDir, 've-tiny');
const jointDir = join(workDir, 've-tiny-joint');
const lastLayerDir = join(workDir, 've-tiny-lastlayer');

before(async () => {
  const tiny = { ...DEFAULT_TRAIN_OPTIONS, task: 've' as const, preset: 'tiny', imageSize: 32, steps: 30, batchSize: 16, warmupSteps: 5, learningRate: 3e-3, validationEvery: 1000, validationSize: 16, checkpointEvery: 1000 };
  for (const options of [
    { ...tiny, outDir: modelDir },
    { ...tiny, outDir: jointDir, encoderMode: 'joint' as const, steps: 10 },
    { ...tiny, outDir: lastLayerDir, lossMode: 'last-layer' as const, steps: 10 },
  ]) (await train(options)).model.dispose();
});
after(() => rmSync(workDir, { recursive: true, force: true }));

test('binomial tail matches hand-computed values', () => {
  assert.ok(Math.abs(binomialCdf(0, 10, 0.1) - 0.9 ** 10) < 1e-12);
  assert.ok(Math.abs(binomialCdf(1, 3, 0.5) - 0.5) < 1e-12);
  assert.equal(binomialCdf(3, 3, 0.2), 1);
});

test('mue calibrate: the chosen thresholds meet the target on the calibration split, and load uses them', async () => {
  const target = 0.97;
  const calibrationSet = { split: 'validation' as const, count: 80, seed: 1 };
  const result = await calibrate({ modelDir, ...calibrationSet, targetRetention: target });
  assert.ok(result.retention >= target);
  assert.ok(result.steps.length > 1);
  writeExitsFile(modelDir, result, calibrationSet);
  assert.deepEqual(readExitThresholds(modelDir), result.thresholds);
  // Re-measure independently: thresholds from exits.json (the default on load) vs full depth on the same split.
  const model = await MuEModel.load(modelDir);
  const examples = sceneWorldEvalSet('ve', 'validation', 80, 1, 32);
  const calibrated = scoreRun(model, examples, (await runMethod(model, examples, {})).answers).quality;
  const full = scoreRun(model, examples, (await runMethod(model, examples, { imageThreshold: 1, textThreshold: 1, decoderThreshold: 1 })).answers).quality;
  assert.ok(calibrated >= target * full, `retention ${calibrated / full} below ${target}`);
  await model.dispose();
});

test('Learn-then-Test calibration accepts only steps whose p-value is below δ, in a fixed sequence', async () => {
  const result = await calibrate({ modelDir, split: 'validation', count: 80, seed: 1, targetRetention: 0.9, delta: 0.1 });
  assert.equal(result.method, 'learn-then-test');
  const accepted = result.steps.filter((s) => s.accepted);
  assert.ok(accepted.every((s) => s.pValue! < 0.1));
  assert.ok(result.steps.findIndex((s) => !s.accepted) === -1 || result.steps.findIndex((s) => !s.accepted) === result.steps.length - 1);
  await assert.rejects(calibrate({ modelDir, split: 'validation', count: 10, seed: 1, targetRetention: 1.5 }), /--target-retention must be in/);
});

test('mue eval runs every method end to end and evaluates the calibrated thresholds on the test split', async () => {
  const report = await evaluateModels({ modelDir, jointModelDir: jointDir, lastLayerModelDir: lastLayerDir, split: 'test', count: 24, seed: 1, command: 'test' });
  assert.equal(report.fullDepth.retention, 1);
  assert.ok(report.fullDepth.flopRatio >= 1 && report.fullDepth.flopRatio < 1.01); // the in-graph similarity is the only extra
  const methods = new Set(report.methods.map((m) => m.method));
  for (const method of ['static', 'deebert', 'calm', 'encoder-only', 'mue', 'mue-joint', 'mue-lastlayer', 'mue-calibrated']) assert.ok(methods.has(method), method);
  assert.ok(report.methods.filter((m) => m.method === 'mue-joint').every((m) => m.exitHistograms.joint && !m.exitHistograms.image));
  assert.ok(Object.keys(report.fullDepth.detail).some((key) => /^accuracy \d objects$/.test(key)));
  // Per hypothesis family: each family's accuracy, and the families together cover every example.
  const families = Object.keys(report.fullDepth.detail).filter((key) => key.startsWith('accuracy group '));
  assert.ok(families.length >= 2 && families.every((key) => /^accuracy group (existence|attribute|counting|spatial|comparison|negation)$/.test(key)), families.join());
  await assert.rejects(evaluateModels({ modelDir, jointModelDir: lastLayerDir, split: 'test', count: 2, seed: 1, command: 'test' }), /not trained with --encoder-mode joint/);
  assert.ok(report.calibration && report.calibration.testRetention > 0);
  for (const result of report.methods) {
    // Output-based criteria pay a head projection per layer, which can cost more than they save on a tiny model.
    const limit = ['deebert', 'pabee', 'calm'].includes(result.method) ? 1.5 : 1.01;
    assert.ok(result.flopRatio > 0 && result.flopRatio <= limit, `${result.method} ${result.setting}: FLOP ratio ${result.flopRatio}`);
    assert.ok(result.layerReduction >= 0 && result.layerReduction < 1);
    assert.ok(result.timeRatio > 0);
    assert.equal(result.exitHistograms.decoder.reduce((a, b) => a + b, 0), 24);
  }
  const staticOne = report.methods.find((m) => m.method === 'static' && m.knob === 1)!;
  assert.equal(staticOne.layerReduction, 0.5); // tiny: every stream and token uses 1 of 2 layers
  assert.equal(report.similarityCurve.image!.length, 2);
  assert.ok(Object.keys(report.fullDepth.depthByGroup).length >= 4);
  assert.ok(existsSync(join(modelDir, 'exits.json')) && JSON.parse(readFileSync(join(modelDir, 'exits.json'), 'utf8')).calibration.target === 0.97);
});

test('the report of a real evaluation renders every plot as a non-empty SVG', async () => {
  const { renderReport } = await import('../src/eval/report.js');
  const report = await evaluateModels({ modelDir, split: 'test', count: 12, seed: 2, command: 'test', methods: ['static', 'mue', 'mue-calibrated'] });
  const out = join(workDir, 'report');
  const { htmlPath, svgCount } = await renderReport(report, out);
  assert.ok(svgCount >= 7);
  const html = readFileSync(htmlPath, 'utf8');
  assert.equal((html.match(/<svg/g) ?? []).length, svgCount);
  for (const svg of html.split('<svg').slice(1)) assert.ok(svg.length > 500 && /<text/.test(svg));
});
