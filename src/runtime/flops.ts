// FLOPs of each piece the runtime executes (2 per multiply-add; matrix products and
// attention only: norms, softmax and GELU are O(T·D) and left out, in both the executed
// and the full-depth count). Notation: D width, F FFN width, V vocabulary.
import type { ModelConfig } from '../model/config.js';
import { patchVectorSize } from '../model/config.js';
import type { RunnerShape } from './exitRunner.js';

type Shape = Pick<RunnerShape, 'dim' | 'ffnDim' | 'vocabSize'>;

/** Encoder layer over T tokens: Q,K,V,O projections 4·T·D², scores and context 2·T²·D, FFN 2·T·D·F. */
export const encoderLayerFlops = (c: Shape, tokens: number): number =>
  2 * (4 * tokens * c.dim * c.dim + 2 * tokens * tokens * c.dim + 2 * tokens * c.dim * c.ffnDim);

/** Decoder layer for one token at position t over M memory tokens (cross K/V excluded: see crossKeyValueFlops). */
export const decoderStepFlops = (c: Shape, position: number, memoryLength: number): number =>
  2 * (4 * c.dim * c.dim + 2 * (position + 1) * c.dim + 2 * c.dim * c.dim + 2 * memoryLength * c.dim + 2 * c.dim * c.ffnDim);

/** Decoder layer over a whole prompt of `length` positions, causal: position p costs a step at p. */
export const decoderPromptFlops = (c: Shape, length: number, memoryLength: number): number => {
  let total = 0;
  for (let position = 0; position < length; position++) total += decoderStepFlops(c, position, memoryLength);
  return total;
};

/** Cross-attention keys and values of one decoder layer over the memory, computed once per request. */
export const crossKeyValueFlops = (c: Shape, memoryLength: number): number => 2 * 2 * memoryLength * c.dim * c.dim;

/** Self-attention K/V projections of one skipped layer (the 'propagate' strategy). */
export const selfKeyValueFlops = (c: Shape): number => 2 * 2 * c.dim * c.dim;

/** Output head for one token: D·V. */
export const headFlops = (c: Shape): number => 2 * c.dim * c.vocabSize;

export const imageEmbeddingFlops = (c: ModelConfig): number => 2 * (c.imageSize / c.patchSize) ** 2 * patchVectorSize(c) * c.dim;

/** One cosine similarity over n values: dot product and two norms. */
export const similarityFlops = (values: number): number => 2 * 3 * values;

/**
 * OFA's image embedding: the ResNet stem (conv1 7×7/2, max-pool /2, bottleneck-v1.5 stages 1–3 of
 * widths 64/128/256 ×4 out, stride on the 3×3 and the downsample of stages 2–3; ARCHITECTURE.md §2)
 * plus the patch projection 1024 → D. Convolution: 2·Hout·Wout·Cin·Cout·k².
 */
export function ofaStemFlops(c: { imageSize: number; dim: number; resnetBlocks: readonly number[] }): number {
  const halve = (size: number): number => Math.floor((size - 1) / 2) + 1;
  const conv = (side: number, inputs: number, outputs: number, kernel: number): number => 2 * side * side * inputs * outputs * kernel * kernel;
  let side = halve(c.imageSize);
  let total = conv(side, 3, 64, 7);
  side = halve(side); // max-pool
  let channels = 64;
  c.resnetBlocks.forEach((blocks, stage) => {
    const width = 64 * 2 ** stage;
    for (let block = 0; block < blocks; block++) {
      const inputSide = side;
      if (block === 0 && stage > 0) side = halve(side); // stride 2 on conv2 (v1.5) and the downsample
      total += conv(inputSide, channels, width, 1) + conv(side, width, width, 3) + conv(side, width, 4 * width, 1);
      if (block === 0) total += conv(side, channels, 4 * width, 1);
      channels = 4 * width;
    }
  });
  return total + 2 * side * side * channels * c.dim;
}
