// The layer-wise task loss of MuE (DESIGN 2.5): every decoder layer answers through
// the shared final LayerNorm and tied output projection, and all are trained at once.
import { tf } from '../model/backend.js';
import type { TfModel } from '../model/tfModel.js';

export type LossMode = 'layerwise' | 'last-layer';
export const LOSS_MODES: readonly LossMode[] = ['layerwise', 'last-layer'];

/** Additive logit mask for tokens outside allowedTokens (as the attention masks). */
const MASKED = -1e9;

/**
 * Label-smoothed cross-entropy averaged over supervised positions:
 * CE = Σ_t mask_t·[ (1 − ε)·(−log p(y_t)) + ε·mean_{v∈A}(−log p(v)) ] / max(Σ_t mask_t, 1),
 * A = allowedTokens (the whole vocabulary when absent); with A given, p is the softmax of the
 * logits + (−1e9 outside A), i.e. a softmax over A only (the official VE answer constraint).
 * logits (B, T, V), targets (B, T) int32, targetMask (B, T) 1 where supervised.
 */
export function labelSmoothedCrossEntropy(logits: tf.Tensor3D, targets: tf.Tensor2D, targetMask: tf.Tensor2D, smoothing: number, allowedTokens?: number[]): tf.Scalar {
  return tf.tidy(() => {
    const vocabSize = logits.shape[2];
    const allowed = allowedTokens ? tf.tensor1d(allowedTokenMask(allowedTokens, vocabSize)) : null; // (V) 1/0
    const logProbabilities = tf.logSoftmax(allowed ? tf.add(logits, tf.mul(tf.sub(1, allowed), MASKED)) : logits); // (B, T, V)
    const targetLogProbability = tf.sum(tf.mul(logProbabilities, tf.oneHot(targets, vocabSize)), -1); // (B, T)
    const meanLogProbability = allowed ? tf.div(tf.sum(tf.mul(logProbabilities, allowed), -1), tf.sum(allowed)) : tf.mean(logProbabilities, -1); // (B, T)
    const perToken = tf.neg(tf.add(tf.mul(targetLogProbability, 1 - smoothing), tf.mul(meanLogProbability, smoothing)));
    return tf.div(tf.sum(tf.mul(perToken, targetMask)), tf.maximum(tf.sum(targetMask), 1)) as tf.Scalar;
  });
}

/** allowedTokens as a (V) 1/0 mask; duplicates count once. */
export function allowedTokenMask(allowedTokens: number[], vocabSize: number): Float32Array {
  const mask = new Float32Array(vocabSize);
  for (const id of allowedTokens) {
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) throw new Error(`allowed token ${id} is outside the vocabulary (size ${vocabSize})`);
    mask[id] = 1;
  }
  if (allowedTokens.length === 0) throw new Error('allowedTokens is empty');
  return mask;
}

export interface LayerwiseLoss {
  /** The loss that is optimised: Σ_i CE_i (layerwise) or CE_N (last-layer). */
  total: tf.Scalar;
  /** CE of every decoder layer 1..N (always computed, for logging). */
  perLayer: tf.Scalar[];
}

/** Loss = Σ_{i=1..N_D} CE(W_out · LN_dec(h_i), y); the last-layer ablation keeps only i = N_D. */
export function layerwiseTaskLoss(
  model: TfModel,
  decoderStates: tf.Tensor3D[],
  targets: tf.Tensor2D,
  targetMask: tf.Tensor2D,
  options: { smoothing: number; mode: LossMode; allowedTokens?: number[] },
): LayerwiseLoss {
  const perLayer = decoderStates.slice(1).map((state) => labelSmoothedCrossEntropy(model.logits(state), targets, targetMask, options.smoothing, options.allowedTokens));
  const total = options.mode === 'layerwise' ? (tf.addN(perLayer) as tf.Scalar) : perLayer.at(-1)!;
  return { total, perLayer };
}
