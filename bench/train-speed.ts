// Training-step speed of the `small` preset with tfjs' stock BatchMatMul gradient vs
// the fast one (explicit transposes), interleaved in one process so machine noise hits both.
// Usage: npm run bench:train [-- --batch-size 16 --rounds 3 --preset small]
import { parseArgs } from 'node:util';
import { initTensorflow, tf } from '../src/model/backend.js';
import { presetConfig } from '../src/model/config.js';
import { TfModel } from '../src/model/tfModel.js';
import { AdamW } from '../src/train/adamw.js';
import { useFastMatMulGradient } from '../src/train/fastMatMulGradient.js';
import { layerwiseTaskLoss } from '../src/train/loss.js';

const { values } = parseArgs({ options: { 'batch-size': { type: 'string', default: '16' }, rounds: { type: 'string', default: '3' }, preset: { type: 'string', default: 'small' } } });
const batchSize = Number(values['batch-size']);
const rounds = Number(values.rounds);
await initTensorflow();
const config = presetConfig(values.preset!, 64);
const model = TfModel.initialise(config, 1);
const optimizer = new AdamW({ learningRate: 1e-4, warmupSteps: 1, totalSteps: 1000, minLearningRateRatio: 0.1, weightDecay: 0.01, clipNorm: 1, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 });
// Caption-shaped batch: 64 image patches, a 6-word prompt, 12 target tokens.
const textLength = 6;
const targetLength = 12;
const inputs = {
  images: tf.randomUniform([batchSize, config.imageSize, config.imageSize, 3], -1, 1, 'float32', 1) as tf.Tensor4D,
  textIds: tf.randomUniform([batchSize, textLength], 4, 64, 'int32', 2) as tf.Tensor2D,
  textMask: tf.ones([batchSize, textLength]) as tf.Tensor2D,
  decoderIds: tf.randomUniform([batchSize, targetLength], 4, 64, 'int32', 3) as tf.Tensor2D,
};
const targets = tf.randomUniform([batchSize, targetLength], 4, 64, 'int32', 4) as tf.Tensor2D;
const targetMask = tf.ones([batchSize, targetLength]) as tf.Tensor2D;

function timedStep(): number {
  const started = performance.now();
  const { value, grads } = tf.variableGrads(() => {
    const { decoderStates } = model.forward(inputs);
    return layerwiseTaskLoss(model, decoderStates, targets, targetMask, { smoothing: 0.1, mode: 'layerwise' }).total;
  });
  optimizer.apply(model.weights, grads);
  value.dataSync();
  tf.dispose([value, ...Object.values(grads)]);
  return performance.now() - started;
}

const times: Record<'stock' | 'fast', number[]> = { stock: [], fast: [] };
for (const variant of ['stock', 'fast'] as const) {
  useFastMatMulGradient(variant === 'fast');
  timedStep(); // warm-up: kernel set-up and allocation
}
for (let round = 0; round < rounds; round++) {
  for (const variant of ['stock', 'fast'] as const) {
    useFastMatMulGradient(variant === 'fast');
    times[variant].push(timedStep());
    console.error(`round ${round + 1}/${rounds} ${variant}: ${times[variant].at(-1)!.toFixed(0)} ms/step`);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const samplesPerSecond = (variant: 'stock' | 'fast') => (batchSize * 1000) / median(times[variant]);
console.log(`preset ${values.preset}, batch ${batchSize}, ${rounds} interleaved rounds, median step time`);
console.log(`stock BatchMatMul gradient: ${samplesPerSecond('stock').toFixed(2)} samples/s (${median(times.stock).toFixed(0)} ms/step)`);
console.log(`fast BatchMatMul gradient:  ${samplesPerSecond('fast').toFixed(2)} samples/s (${median(times.fast).toFixed(0)} ms/step)`);
console.log(`speed-up: ${(samplesPerSecond('fast') / samplesPerSecond('stock')).toFixed(2)}x`);
