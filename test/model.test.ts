import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { TfModel, causalMask, keyMaskFrom } from '../src/model/tfModel.js';
import { labelSmoothedCrossEntropy, layerwiseTaskLoss } from '../src/train/loss.js';
import { useFastMatMulGradient } from '../src/train/fastMatMulGradient.js';
import { parameterCount } from '../src/model/parameters.js';
import { presetConfig } from '../src/model/config.js';
import { initTensorflow, randomInputs, tf, tinyConfig } from './helpers.js';

before(async () => {
  await initTensorflow();
});

/** ⟨∇f(x), u⟩ against the central difference (f(x + εu) − f(x − εu)) / 2ε along a random direction u. */
function directionalDerivativeCheck(f: (x: tf.Tensor) => tf.Scalar, x: tf.Tensor, seed: number): { analytic: number; numeric: number } {
  const direction = tf.randomNormal(x.shape, 0, 1, 'float32', seed);
  const gradient = tf.grad(f)(x);
  const analytic = tf.sum(tf.mul(gradient, direction)).dataSync()[0]!;
  const epsilon = 1e-2;
  const plus = f(tf.add(x, tf.mul(direction, epsilon))).dataSync()[0]!;
  const minus = f(tf.sub(x, tf.mul(direction, epsilon))).dataSync()[0]!;
  return { analytic, numeric: (plus - minus) / (2 * epsilon) };
}

test('finite-difference gradient check: one encoder layer and one decoder layer (inputs and a weight)', () => {
  const config = tinyConfig();
  const model = TfModel.initialise(config, 1);
  // Larger weights than the 0.02 init so the layers are far from identity and the check means something.
  for (const variable of model.weights.values()) if (variable.rank === 2) variable.assign(tf.mul(variable, 10));
  const projection = tf.randomNormal([2, 5, config.dim], 0, 1, 'float32', 11);
  const memory = tf.randomNormal([2, 7, config.dim], 0, 1, 'float32', 12) as tf.Tensor3D;
  const memoryMask = keyMaskFrom(tf.tensor2d([[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0, 0]]));
  const x = tf.randomNormal([2, 5, config.dim], 0, 1, 'float32', 13);
  const keyMask = keyMaskFrom(tf.tensor2d([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]));
  const encoderLoss = (input: tf.Tensor) => tf.sum(tf.mul(model.encoderLayer(0, input as tf.Tensor3D, keyMask), projection)) as tf.Scalar;
  const decoderLoss = (input: tf.Tensor) => tf.sum(tf.mul(model.decoderLayer(1, input as tf.Tensor3D, memory, causalMask(5), memoryMask), projection)) as tf.Scalar;
  for (const [name, check] of [
    ['encoder layer input', directionalDerivativeCheck(encoderLoss, x, 21)],
    ['decoder layer input', directionalDerivativeCheck(decoderLoss, x, 22)],
  ] as const) {
    assert.ok(Math.abs(check.analytic - check.numeric) <= 2e-2 * Math.abs(check.numeric) + 1e-3, `${name}: analytic ${check.analytic} vs numeric ${check.numeric}`);
  }
  // Gradient with respect to a weight inside each layer, through tf.variableGrads.
  for (const [name, loss] of [['encoder.0.ffn.fc1.weight', () => encoderLoss(x)], ['decoder.1.cross_attention.key.weight', () => decoderLoss(x)]] as const) {
    const variable = model.weights.get(name)!;
    const direction = tf.randomNormal(variable.shape, 0, 1, 'float32', 31);
    const { grads } = tf.variableGrads(loss, [variable]);
    const analytic = tf.sum(tf.mul(grads[name]!, direction)).dataSync()[0]!;
    const original = variable.clone();
    const epsilon = 1e-2;
    variable.assign(tf.add(original, tf.mul(direction, epsilon)));
    const plus = loss().dataSync()[0]!;
    variable.assign(tf.sub(original, tf.mul(direction, epsilon)));
    const minus = loss().dataSync()[0]!;
    variable.assign(original);
    const numeric = (plus - minus) / (2 * epsilon);
    assert.ok(Math.abs(analytic - numeric) <= 2e-2 * Math.abs(numeric) + 1e-3, `${name}: analytic ${analytic} vs numeric ${numeric}`);
  }
  model.dispose();
});

test('the fast BatchMatMul gradient equals the stock gradient, for every transpose flag', () => {
  const a = tf.randomNormal([2, 3, 4], 0, 1, 'float32', 1);
  const b = tf.randomNormal([2, 4, 5], 0, 1, 'float32', 2);
  const cases: Array<[boolean, boolean, tf.Tensor, tf.Tensor]> = [
    [false, false, a, b],
    [true, false, tf.transpose(a, [0, 2, 1]), b],
    [false, true, a, tf.transpose(b, [0, 2, 1])],
    [true, true, tf.transpose(a, [0, 2, 1]), tf.transpose(b, [0, 2, 1])],
  ];
  for (const [transposeA, transposeB, left, right] of cases) {
    const f = (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.square(tf.matMul(x, y, transposeA, transposeB)));
    useFastMatMulGradient(false);
    const stock = tf.grads(f)([left, right]).map((g) => Array.from(g.dataSync()));
    useFastMatMulGradient(true);
    const fast = tf.grads(f)([left, right]).map((g) => Array.from(g.dataSync()));
    for (let k = 0; k < 2; k++) fast[k]!.forEach((value, i) => assert.ok(Math.abs(value - stock[k]![i]!) < 1e-4, `flags ${transposeA},${transposeB}`));
  }
});

test('label-smoothed cross-entropy matches a hand computation and ignores padding', () => {
  const logits = tf.tensor3d([[[2, 0, 0], [0, 1, 0]]]); // (1, 2, 3)
  const targets = tf.tensor2d([[0, 2]], [1, 2], 'int32');
  const mask = tf.tensor2d([[1, 0]]);
  const smoothing = 0.1;
  const logZ = Math.log(Math.exp(2) + 2);
  const logP = [2 - logZ, -logZ, -logZ];
  const expected = -((1 - smoothing) * logP[0]! + (smoothing * (logP[0]! + logP[1]! + logP[2]!)) / 3);
  assert.ok(Math.abs(labelSmoothedCrossEntropy(logits, targets, mask, smoothing).dataSync()[0]! - expected) < 1e-6);
});

test('the layer-wise loss equals the sum of per-layer losses computed separately; last-layer mode is the last one', () => {
  const config = tinyConfig({ decoderLayers: 3 });
  const model = TfModel.initialise(config, 2);
  const inputs = randomInputs(config);
  const targets = tf.randomUniform([2, 4], 4, config.vocabSize, 'int32', 9) as tf.Tensor2D;
  const targetMask = tf.tensor2d([[1, 1, 1, 1], [1, 1, 0, 0]]);
  const { decoderStates } = model.forward(inputs);
  const layerwise = layerwiseTaskLoss(model, decoderStates, targets, targetMask, { smoothing: 0.1, mode: 'layerwise' });
  const separately = [1, 2, 3].map((i) => labelSmoothedCrossEntropy(model.logits(decoderStates[i]!), targets, targetMask, 0.1).dataSync()[0]!);
  assert.equal(layerwise.perLayer.length, 3);
  assert.ok(Math.abs(layerwise.total.dataSync()[0]! - separately.reduce((a, b) => a + b, 0)) < 1e-5);
  const lastLayer = layerwiseTaskLoss(model, decoderStates, targets, targetMask, { smoothing: 0.1, mode: 'last-layer' });
  assert.ok(Math.abs(lastLayer.total.dataSync()[0]! - separately[2]!) < 1e-6);
  model.dispose();
});

test('decomposed encoder: the image stream ignores the text; joint mode mixes them; padding is ignored', () => {
  for (const encoderMode of ['decomposed', 'joint'] as const) {
    const config = tinyConfig({ encoderMode });
    const model = TfModel.initialise(config, 4);
    const inputs = randomInputs(config);
    const otherText = tf.randomUniform(inputs.textIds.shape, 4, config.vocabSize, 'int32', 77) as tf.Tensor2D;
    const first = model.encode(inputs.images, inputs.textIds, inputs.textMask);
    const second = model.encode(inputs.images, otherText, inputs.textMask);
    const patches = (config.imageSize / config.patchSize) ** 2;
    const imagePart = (memory: tf.Tensor3D) => memory.slice([0, 0, 0], [-1, patches, -1]);
    const difference = tf.max(tf.abs(tf.sub(imagePart(first.memory), imagePart(second.memory)))).dataSync()[0]!;
    if (encoderMode === 'decomposed') {
      assert.equal(difference, 0);
      assert.equal(first.imageStates.length, config.encoderLayers + 1);
    } else {
      assert.ok(difference > 1e-4);
      assert.equal(first.jointStates.length, config.encoderLayers + 1);
    }
    // Changing a padded token (row 1, position 4) changes nothing at the real positions.
    const ids = inputs.textIds.arraySync();
    ids[1]![4] = ids[1]![4] === 5 ? 6 : 5;
    const padded = model.encode(inputs.images, tf.tensor2d(ids, undefined, 'int32'), inputs.textMask);
    const realText = (memory: tf.Tensor3D) => memory.slice([1, patches, 0], [1, 3, -1]);
    assert.ok(tf.max(tf.abs(tf.sub(realText(first.memory), realText(padded.memory)))).dataSync()[0]! < 1e-6);
    model.dispose();
  }
});

test('presets have the documented shapes; any depth/width/heads is valid config', () => {
  const base = presetConfig('ofa-base', 100);
  assert.deepEqual([base.dim, base.ffnDim, base.heads, base.encoderLayers, base.decoderLayers], [768, 3072, 12, 6, 6]);
  assert.ok(parameterCount(presetConfig('small', 80)) > 1e6);
  assert.throws(() => presetConfig('tiny', 10, { dim: 30, heads: 4 }), /not divisible/);
  assert.throws(() => presetConfig('huge', 10), /unknown preset/);
  const odd = presetConfig('tiny', 10, { dim: 24, heads: 3, encoderLayers: 1, decoderLayers: 5 });
  assert.equal(odd.decoderLayers, 5);
});
