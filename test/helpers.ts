// Small shared fixtures for the test suite.
import { initTensorflow, tf } from '../src/model/backend.js';
import { type ModelConfig, presetConfig } from '../src/model/config.js';
import type { ModelInputs } from '../src/model/tfModel.js';

/** A tiny config with small sequences so math tests run in milliseconds. */
export function tinyConfig(overrides: Partial<ModelConfig> = {}): ModelConfig {
  return presetConfig('tiny', 20, { imageSize: 16, patchSize: 8, maxTextLength: 6, maxTargetLength: 5, ...overrides });
}

/** Deterministic random inputs; the second text row is padded after 3 tokens. */
export function randomInputs(config: ModelConfig, batch = 2, seed = 3): ModelInputs {
  const textLength = Math.min(5, config.maxTextLength);
  const textMask = tf.tensor2d(Array.from({ length: batch * textLength }, (_, i) => (i % textLength < (i < textLength ? textLength : 3) ? 1 : 0)), [batch, textLength]);
  return {
    images: tf.randomUniform([batch, config.imageSize, config.imageSize, 3], -1, 1, 'float32', seed) as tf.Tensor4D,
    textIds: tf.randomUniform([batch, textLength], 4, config.vocabSize, 'int32', seed + 1) as tf.Tensor2D,
    textMask: textMask as tf.Tensor2D,
    decoderIds: tf.randomUniform([batch, 4], 4, config.vocabSize, 'int32', seed + 2) as tf.Tensor2D,
  };
}

export { initTensorflow, tf };

/** Saves a randomly initialised checkpoint (any config) for runtime tests; returns its directory. */
export async function saveRandomCheckpoint(directory: string, task: 've' | 'caption', overrides: Partial<ModelConfig> = {}, seed = 7): Promise<void> {
  const { sceneWorldTokenizer } = await import('../src/data/sceneworld.js');
  const { saveCheckpoint } = await import('../src/model/checkpoint.js');
  const { TfModel } = await import('../src/model/tfModel.js');
  const { fromVariables } = await import('../src/train/trainer.js');
  await initTensorflow();
  const tokenizer = sceneWorldTokenizer();
  const config = presetConfig('tiny', tokenizer.vocabSize, { imageSize: 32, patchSize: 8, ...overrides });
  const model = TfModel.initialise(config, seed);
  saveCheckpoint(directory, { task, config, tokenizer, weights: fromVariables(model.weights) });
  model.dispose();
}
