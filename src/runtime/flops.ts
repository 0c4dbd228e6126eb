// FLOPs of each piece the runtime executes (2 per multiply-add; matrix products and
// attention only: norms, softmax and GELU are O(T·D) and left out, in both the executed
// and the full-depth count). Notation: D width, F FFN width, V vocabulary.
import type { ModelConfig } from '../model/config.js';
import { patchVectorSize } from '../model/config.js';

/** Encoder layer over T tokens: Q,K,V,O projections 4·T·D², scores and context 2·T²·D, FFN 2·T·D·F. */
export const encoderLayerFlops = (c: ModelConfig, tokens: number): number =>
  2 * (4 * tokens * c.dim * c.dim + 2 * tokens * tokens * c.dim + 2 * tokens * c.dim * c.ffnDim);

/** Decoder layer for one token at position t over M memory tokens (cross K/V excluded: see crossKeyValueFlops). */
export const decoderStepFlops = (c: ModelConfig, position: number, memoryLength: number): number =>
  2 * (4 * c.dim * c.dim + 2 * (position + 1) * c.dim + 2 * c.dim * c.dim + 2 * memoryLength * c.dim + 2 * c.dim * c.ffnDim);

/** Decoder layer over a whole prompt of `length` positions, causal: position p costs a step at p. */
export const decoderPromptFlops = (c: ModelConfig, length: number, memoryLength: number): number => {
  let total = 0;
  for (let position = 0; position < length; position++) total += decoderStepFlops(c, position, memoryLength);
  return total;
};

/** Cross-attention keys and values of one decoder layer over the memory, computed once per request. */
export const crossKeyValueFlops = (c: ModelConfig, memoryLength: number): number => 2 * 2 * memoryLength * c.dim * c.dim;

/** Self-attention K/V projections of one skipped layer (the 'propagate' strategy). */
export const selfKeyValueFlops = (c: ModelConfig): number => 2 * 2 * c.dim * c.dim;

/** Output head for one token: D·V. */
export const headFlops = (c: ModelConfig): number => 2 * c.dim * c.vocabSize;

export const imageEmbeddingFlops = (c: ModelConfig): number => 2 * (c.imageSize / c.patchSize) ** 2 * patchVectorSize(c) * c.dim;

/** One cosine similarity over n values: dot product and two norms. */
export const similarityFlops = (values: number): number => 2 * 3 * values;
