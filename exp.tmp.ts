import { DEFAULT_TRAIN_OPTIONS, train } from './src/train/trainer.js';
const form = process.argv[2] as 'prompt' | 'bos';
const started = Date.now();
const { model } = await train({ ...DEFAULT_TRAIN_OPTIONS, task: 've', preset: 'tiny', imageSize: 32, steps: Number(process.argv[3]), batchSize: 16, warmupSteps: 10,
  learningRate: 3e-3, validationEvery: 50, validationSize: 128, checkpointEvery: 100000, veFormulation: form, outDir: `/tmp/fid-exp-${form}-${Date.now()}` },
  { onValidation: (r) => console.log(form, r.step, r.layerAccuracy.map((a) => a.toFixed(3)).join(' '), r.loss.toFixed(3), ((Date.now() - started) / 1000).toFixed(0) + 's') });
model.dispose();
