// The README's first command: train a `tiny` visual-entailment model on SceneWorld
// (about a minute), then answer held-out test questions at full depth and with MuE exits,
// side by side in this process. Usage: npm run quickstart
import { existsSync } from 'node:fs';
import { runPaired, sceneWorldEvalSet, scoreRun } from '../src/eval/evaluate.js';
import { MuEModel, type InferenceOptions } from '../src/runtime/mueModel.js';
import { DEFAULT_TRAIN_OPTIONS, train } from '../src/train/trainer.js';
import { progressBar } from '../src/cli/progress.js';

const modelDir = 'runs/quickstart-ve-tiny';
if (!existsSync(`${modelDir}/config.json`)) {
  console.log(`training a tiny VE model into ${modelDir} (mue train --preset tiny --task ve --steps 200)`);
  const bar = progressBar('steps');
  const { model } = await train(
    { ...DEFAULT_TRAIN_OPTIONS, task: 've', preset: 'tiny', steps: 200, outDir: modelDir },
    { onStart: ({ totalSteps }) => bar.start(totalSteps, 0, { rate: '', status: '' }), onStep: (r) => bar.update(r.step, { rate: `${r.samplesPerSecond.toFixed(0)} samples/s`, status: `loss ${r.loss.toFixed(3)}` }) },
  );
  bar.stop();
  model.dispose();
}

const model = await MuEModel.load(modelDir);
const examples = sceneWorldEvalSet('ve', 'test', 300, 1, model.config.imageSize);
const fullDepth: InferenceOptions = { imageThreshold: 1, textThreshold: 1, decoderThreshold: 1 };
const settings: Array<[string, InferenceOptions]> = [
  ['full depth', fullDepth],
  ['MuE τ=0.95', { imageThreshold: 0.95, textThreshold: 0.95, decoderThreshold: 0.95 }],
  ['MuE τ=0.9', { imageThreshold: 0.9, textThreshold: 0.9, decoderThreshold: 0.9 }],
];
console.log(`\n${examples.length} held-out SceneWorld test questions, batch 1; each setting timed against full depth run back to back on every question:`);
console.log('setting       accuracy  image layers  text layers  decoder layers  FLOPs vs full  time vs full');
const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
for (const [name, options] of settings) {
  const { run, fullTimeMs } = await runPaired(model, examples, options, fullDepth);
  const t = run.telemetry;
  const flopRatio = t.reduce((n, x) => n + x.flops, 0) / t.reduce((n, x) => n + x.fullDepthFlops, 0);
  console.log(`${name.padEnd(13)} ${(100 * scoreRun(model, examples, run.answers).quality).toFixed(1).padStart(7)}%  ${mean(t.map((x) => x.imageLayers!)).toFixed(2).padStart(12)}  ${mean(t.map((x) => x.textLayers!)).toFixed(2).padStart(11)}  ${mean(t.map((x) => x.tokenLayers[0]!)).toFixed(2).padStart(14)}  ${(100 * flopRatio).toFixed(1).padStart(12)}%  ${(run.timeMs / fullTimeMs).toFixed(2).padStart(11)}x`);
}
console.log(`\n(${model.config.encoderLayers} encoder and ${model.config.decoderLayers} decoder layers; thresholds here are illustrative, not calibrated.)`);
await model.dispose();
