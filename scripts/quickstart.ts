// The README's first command: train a `tiny` visual-entailment model on SceneWorld
// (about a minute), then answer held-out test questions at full depth and with MuE exits,
// side by side in this process. Usage: npm run quickstart
import { existsSync } from 'node:fs';
import { veExample } from '../src/data/sceneworld.js';
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
const examples = Array.from({ length: 300 }, (_, i) => veExample(i, { split: 'test', seed: 1 }));
const settings: Array<[string, InferenceOptions]> = [
  ['full depth', { imageThreshold: 1, textThreshold: 1, decoderThreshold: 1 }],
  ['MuE τ=0.95', { imageThreshold: 0.95, textThreshold: 0.95, decoderThreshold: 0.95 }],
  ['MuE τ=0.9', { imageThreshold: 0.9, textThreshold: 0.9, decoderThreshold: 0.9 }],
];
console.log(`\n${examples.length} held-out SceneWorld test questions, batch 1, same process:`);
console.log('setting       accuracy  image layers  text layers  decoder layers  FLOPs vs full  time vs full');
let fullTime = 0;
for (const [name, options] of settings) {
  let correct = 0, image = 0, text = 0, decoder = 0, flops = 0, fullFlops = 0;
  const started = performance.now();
  for (const example of examples) {
    const { answer, telemetry } = await model.entail({ image: example.image, hypothesis: example.hypothesis }, options);
    correct += Number(answer === example.label);
    image += telemetry.imageLayers!;
    text += telemetry.textLayers!;
    decoder += telemetry.tokenLayers[0]!;
    flops += telemetry.flops;
    fullFlops += telemetry.fullDepthFlops;
  }
  const timeMs = performance.now() - started;
  if (name === 'full depth') fullTime = timeMs;
  const n = examples.length;
  console.log(`${name.padEnd(13)} ${(100 * correct / n).toFixed(1).padStart(7)}%  ${(image / n).toFixed(2).padStart(12)}  ${(text / n).toFixed(2).padStart(11)}  ${(decoder / n).toFixed(2).padStart(14)}  ${(100 * flops / fullFlops).toFixed(1).padStart(12)}%  ${(timeMs / fullTime).toFixed(2).padStart(11)}x`);
}
console.log(`\n(${model.config.encoderLayers} encoder and ${model.config.decoderLayers} decoder layers; thresholds here are illustrative, not calibrated.)`);
await model.dispose();
