// Autoregressive decoding with per-token exits (DESIGN 2.4). Every generated token of
// every sequence runs decoder layers until its policy fires on cos(h_i, h_{i−1}); the
// rows that exited leave the batch. Skipped layers still owe key/values to later tokens:
//   copy       — they reuse the exit layer's own key/value (no compute);
//   propagate  — CALM: their K/V projections run on the exited state;
//   recompute  — they are computed for real when a later token first needs them.
import { cosineSimilarity, type ExitPolicy, type PolicyMemory } from './exits.js';
import { crossKeyValueFlops, decoderStepFlops, headFlops, selfKeyValueFlops, similarityFlops } from './flops.js';
import type { KeyValue, LayerRunner } from './layerRunner.js';
import { gatherRows } from './rows.js';

export type KvStrategy = 'copy' | 'propagate' | 'recompute';
export const KV_STRATEGIES: readonly KvStrategy[] = ['copy', 'propagate', 'recompute'];

/** Everything fixed for one batch of requests. */
export interface DecoderContext {
  runner: LayerRunner;
  /** Final-normalised [image ; text] states (B, M, D) and their mask (B, M). */
  memory: Float32Array;
  memoryMask: Float32Array;
  memoryLength: number;
  samples: number;
  policy: ExitPolicy;
  strategy: KvStrategy;
  /** Tokens the answer may use (constrained decoding); undefined = whole vocabulary. */
  allowedTokens?: number[];
  maxLength: number;
  bosId: number;
  /** Cross-attention K/V per layer for all samples, computed when a layer is first used. */
  crossCache: (KeyValue | undefined)[];
  /** FLOPs executed per sample (all its sequences, e.g. beams). */
  flops: number[];
  /** FLOPs the same decoding steps (same sequences, same positions) would cost at full depth, per sample. */
  fullDepthFlops: number[];
  /** Compute and keep every layer's similarity even when the policy does not read it. */
  recordSimilarities: boolean;
}

/** One sequence being generated (a sample, or one beam of it). */
export interface Sequence {
  sample: number;
  tokens: number[];
  logProbability: number;
  /** keys[layer][position] -> (D); undefined where 'recompute' has not computed it yet. */
  keys: (Float32Array | undefined)[][];
  values: (Float32Array | undefined)[][];
  /** Layers computed for each position, and the state after them (for 'recompute'). */
  depth: number[];
  exitStates: Float32Array[];
  tokenLayers: number[];
  tokenSimilarities: number[][];
}

export function newSequence(sample: number, layers: number): Sequence {
  return {
    sample, tokens: [], logProbability: 0,
    keys: Array.from({ length: layers }, () => []), values: Array.from({ length: layers }, () => []),
    depth: [], exitStates: [], tokenLayers: [], tokenSimilarities: [],
  };
}

export function cloneSequence(sequence: Sequence): Sequence {
  // Cached entries are never mutated once written, so beams share them by reference.
  return {
    ...sequence,
    tokens: [...sequence.tokens],
    keys: sequence.keys.map((row) => [...row]),
    values: sequence.values.map((row) => [...row]),
    depth: [...sequence.depth],
    exitStates: [...sequence.exitStates],
    tokenLayers: [...sequence.tokenLayers],
    tokenSimilarities: sequence.tokenSimilarities.map((row) => [...row]),
  };
}

/**
 * Runs the decoder for the next position of every sequence (all at the same position t)
 * and returns each one's log-probabilities over the vocabulary (−∞ outside allowedTokens).
 */
export async function decodeNextToken(context: DecoderContext, sequences: Sequence[]): Promise<Float32Array[]> {
  const { runner, policy } = context;
  const config = runner.config;
  const { dim, decoderLayers } = config;
  const position = sequences[0]!.tokens.length;
  const inputTokens = sequences.map((s) => (position === 0 ? context.bosId : s.tokens[position - 1]!));
  // Full depth would run every layer and the head once for each of these rows.
  for (const s of sequences) context.fullDepthFlops[s.sample]! += decoderLayers * decoderStepFlops(config, position, context.memoryLength) + headFlops(config);
  let states = await runner.embedDecoder(inputTokens, sequences.map(() => position)); // (A, 1, D)
  let active = sequences.map((_, row) => row);
  const memories: PolicyMemory[] = sequences.map(() => policy.start());
  const computeSimilarity = policy.needsSimilarity || context.recordSimilarities;
  const exitStates = new Array<Float32Array>(sequences.length);
  const exitLogits = new Array<Float32Array | undefined>(sequences.length);
  for (const s of sequences) s.tokenSimilarities.push([]);

  for (let layer = 1; layer <= decoderLayers; layer++) {
    const rows = active.map((row) => sequences[row]!);
    if (context.strategy === 'recompute') for (const s of rows) await completeCache(context, s, layer, position);
    const cross = await crossFor(context, layer - 1, rows.map((s) => s.sample));
    const output = await runner.decoderStep(
      layer - 1, states, stackCache(rows, layer - 1, position, dim, 'keys'), stackCache(rows, layer - 1, position, dim, 'values'), position,
      cross.key, cross.value, cross.mask, rows.length, context.memoryLength,
    );
    const logits = policy.needsHead ? await runner.head(output.hidden, rows.length, 1) : undefined; // (A, 1, V)
    const stillActive: number[] = [];
    rows.forEach((s, i) => {
      s.keys[layer - 1]![position] = output.key.slice(i * dim, (i + 1) * dim);
      s.values[layer - 1]![position] = output.value.slice(i * dim, (i + 1) * dim);
      const similarity = computeSimilarity ? cosineSimilarity(output.hidden, states, i * dim, dim) : Number.NaN;
      if (computeSimilarity) s.tokenSimilarities[position]!.push(similarity);
      context.flops[s.sample]! += decoderStepFlops(config, position, context.memoryLength) + (policy.needsSimilarity ? similarityFlops(dim) : 0) + (logits ? headFlops(config) : 0);
      const rowLogits = logits?.subarray(i * config.vocabSize, (i + 1) * config.vocabSize);
      const probabilities = rowLogits ? softmaxOver(rowLogits, context.allowedTokens) : undefined;
      const exits = layer === decoderLayers || policy.shouldExit(
        { layer, totalLayers: decoderLayers, similarity, probabilities, position, maxLength: context.maxLength }, memories[active[i]!]!);
      if (exits) {
        const row = active[i]!;
        exitStates[row] = output.hidden.slice(i * dim, (i + 1) * dim);
        exitLogits[row] = rowLogits;
        s.tokenLayers.push(layer);
      } else {
        stillActive.push(i);
      }
    });
    if (stillActive.length === 0) break;
    states = stillActive.length === rows.length ? output.hidden : gatherRows(output.hidden, stillActive, dim);
    active = stillActive.map((i) => active[i]!);
  }
  await fillSkippedLayers(context, sequences, exitStates, position);

  // The answer for this position: the shared head on each sequence's exit state.
  const needHead = sequences.map((_, row) => row).filter((row) => !exitLogits[row]);
  if (needHead.length > 0) {
    const logits = await runner.head(concatenate(needHead.map((row) => exitStates[row]!)), needHead.length, 1);
    needHead.forEach((row, i) => {
      exitLogits[row] = logits.subarray(i * config.vocabSize, (i + 1) * config.vocabSize);
      context.flops[sequences[row]!.sample]! += headFlops(config);
    });
  }
  return exitLogits.map((logits) => logSoftmaxOver(logits!, context.allowedTokens));
}

/** Gives the layers above each sequence's exit layer their key/value for this position. */
async function fillSkippedLayers(context: DecoderContext, sequences: Sequence[], exitStates: Float32Array[], position: number): Promise<void> {
  const { decoderLayers } = context.runner.config;
  sequences.forEach((s, row) => {
    s.depth[position] = s.tokenLayers[position]!;
    s.exitStates[position] = exitStates[row]!;
  });
  if (context.strategy === 'recompute') return; // computed lazily by completeCache
  for (let layer = 2; layer <= decoderLayers; layer++) {
    const skipped = sequences.filter((s) => s.tokenLayers[position]! < layer);
    if (skipped.length === 0) continue;
    if (context.strategy === 'copy') {
      for (const s of skipped) {
        const exitLayer = s.tokenLayers[position]!;
        s.keys[layer - 1]![position] = s.keys[exitLayer - 1]![position];
        s.values[layer - 1]![position] = s.values[exitLayer - 1]![position];
      }
    } else {
      const kv = await context.runner.selfKeyValues(layer - 1, concatenate(skipped.map((s) => s.exitStates[position]!)), skipped.length);
      const dim = context.runner.config.dim;
      skipped.forEach((s, i) => {
        s.keys[layer - 1]![position] = kv.key.slice(i * dim, (i + 1) * dim);
        s.values[layer - 1]![position] = kv.value.slice(i * dim, (i + 1) * dim);
        context.flops[s.sample]! += selfKeyValueFlops(context.runner.config);
      });
    }
  }
}

/** 'recompute': before layer `layer` runs at `position`, run it (and any layer below) for earlier positions that skipped it. */
async function completeCache(context: DecoderContext, sequence: Sequence, layer: number, position: number): Promise<void> {
  const { runner } = context;
  const dim = runner.config.dim;
  for (let past = 0; past < position; past++) {
    while (sequence.depth[past]! < layer) {
      const index = sequence.depth[past]!; // 0-based layer to run next
      const cross = await crossFor(context, index, [sequence.sample]);
      const output = await runner.decoderStep(
        index, sequence.exitStates[past]!, stackCache([sequence], index, past, dim, 'keys'), stackCache([sequence], index, past, dim, 'values'), past,
        cross.key, cross.value, cross.mask, 1, context.memoryLength,
      );
      sequence.keys[index]![past] = output.key;
      sequence.values[index]![past] = output.value;
      sequence.exitStates[past] = output.hidden;
      sequence.depth[past] = index + 1;
      context.flops[sequence.sample]! += decoderStepFlops(runner.config, past, context.memoryLength);
    }
  }
}

/** Cross-attention K/V and memory mask for the given samples' rows: (A, M, D), (A, M, D), (A, M). */
export async function crossFor(context: DecoderContext, layerIndex: number, samples: number[]): Promise<KeyValue & { mask: Float32Array }> {
  const { runner, memoryLength } = context;
  let cached = context.crossCache[layerIndex];
  if (!cached) {
    cached = await runner.crossKeyValues(layerIndex, context.memory, context.samples, memoryLength);
    context.crossCache[layerIndex] = cached;
    for (let s = 0; s < context.samples; s++) context.flops[s]! += crossKeyValueFlops(runner.config, memoryLength);
  }
  if (samples.length === 1) {
    // One sample (e.g. a recompute step): views into the cache, no copies.
    const [sample] = samples as [number];
    const rowSize = memoryLength * runner.config.dim;
    return {
      key: cached.key.subarray(sample * rowSize, (sample + 1) * rowSize),
      value: cached.value.subarray(sample * rowSize, (sample + 1) * rowSize),
      mask: context.memoryMask.subarray(sample * memoryLength, (sample + 1) * memoryLength),
    };
  }
  const identity = samples.length === context.samples && samples.every((sample, i) => sample === i);
  if (identity) return { ...cached, mask: context.memoryMask };
  const rowSize = memoryLength * runner.config.dim;
  return {
    key: gatherRows(cached.key, samples, rowSize),
    value: gatherRows(cached.value, samples, rowSize),
    mask: gatherRows(context.memoryMask, samples, memoryLength),
  };
}

/** The cache of one layer for positions [0, length) of each sequence: (A, length, D). */
function stackCache(sequences: Sequence[], layerIndex: number, length: number, dim: number, which: 'keys' | 'values'): Float32Array {
  const out = new Float32Array(sequences.length * length * dim);
  sequences.forEach((s, row) => {
    for (let p = 0; p < length; p++) out.set(s[which][layerIndex]![p]!, (row * length + p) * dim);
  });
  return out;
}

function concatenate(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, part) => n + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** log softmax over the allowed tokens (all when undefined); −∞ elsewhere. */
export function logSoftmaxOver(logits: Float32Array, allowed?: number[]): Float32Array {
  const out = new Float32Array(logits.length).fill(-Infinity);
  if (allowed) {
    let max = -Infinity;
    for (const id of allowed) max = Math.max(max, logits[id]!);
    let sum = 0;
    for (const id of allowed) sum += Math.exp(logits[id]! - max);
    const logSum = max + Math.log(sum);
    for (const id of allowed) out[id] = logits[id]! - logSum;
    return out;
  }
  let max = -Infinity;
  for (let id = 0; id < logits.length; id++) max = Math.max(max, logits[id]!);
  let sum = 0;
  for (let id = 0; id < logits.length; id++) sum += Math.exp(logits[id]! - max);
  const logSum = max + Math.log(sum);
  for (let id = 0; id < logits.length; id++) out[id] = logits[id]! - logSum;
  return out;
}

/** softmax restricted to the allowed tokens, as a dense vector over those tokens only. */
function softmaxOver(logits: Float32Array, allowed?: number[]): Float32Array {
  const logProbabilities = logSoftmaxOver(logits, allowed);
  return allowed ? Float32Array.from(allowed, (id) => Math.exp(logProbabilities[id]!)) : logProbabilities.map(Math.exp);
}
