// Autoregressive decoding with per-token exits (DESIGN 2.4). Every generated token of
// every sequence runs decoder layers until its policy fires on cos(h_i, h_{i−1}); the
// rows that exited leave the batch. Layers a token skipped owe later tokens a key/value:
//   drop       — the official MuE behaviour (ofa/ARCHITECTURE.md §10.3): they get none; later
//                tokens attend over that layer's shorter cache;
//   copy       — they reuse the exit layer's own key/value (no compute);
//   propagate  — CALM: their K/V projections run on the exited state;
//   recompute  — they are computed for real when a later token first needs them.
// Exit granularity: 'token' (default) lets each row (sequence or beam) decide on its own
// cosine; 'step' reproduces the official one decision per step for all beams of a sample,
// on the cosine of the beams' states pooled into one vector (ofa/ARCHITECTURE.md §10.1).
import { cosineSimilarity, type ExitPolicy, type PolicyMemory } from './exits.js';
import { crossKeyValueFlops, decoderStepFlops, headFlops, selfKeyValueFlops, similarityFlops } from './flops.js';
import type { DecoderStepOutput, ExitRunner, KeyValue } from './exitRunner.js';
import { gatherRows } from './rows.js';

export type KvStrategy = 'drop' | 'copy' | 'propagate' | 'recompute';
export const KV_STRATEGIES: readonly KvStrategy[] = ['drop', 'copy', 'propagate', 'recompute'];
export type ExitGranularity = 'token' | 'step';
export const EXIT_GRANULARITIES: readonly ExitGranularity[] = ['token', 'step'];

/** Everything fixed for one batch of requests. */
export interface DecoderContext {
  runner: ExitRunner;
  /** Final-normalised [image ; text] states (B, M, D) and their mask (B, M). */
  memory: Float32Array;
  memoryMask: Float32Array;
  memoryLength: number;
  samples: number;
  policy: ExitPolicy;
  strategy: KvStrategy;
  granularity: ExitGranularity;
  /** Full depth through the single whole-step graph (the runner needs `fullStack`); policy and strategy are then unused. */
  fused?: boolean;
  /** Tokens the answer may use (constrained decoding); undefined = whole vocabulary. */
  allowedTokens?: number[];
  /** The generation's T: tokens before the forced end token (steps 0 … T), read by the decaying schedule. */
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
  /** keys[layer][position] -> (D); undefined where 'drop' gave none or 'recompute' has not computed it yet. */
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
  for (const s of sequences) s.tokenSimilarities.push([]);
  let states = await runner.embedDecoder(inputTokens, sequences.map(() => position)); // (A, 1, D)
  if (context.fused) return decodeFused(context, sequences, states, position);
  const stepDecision = context.granularity === 'step';
  if (stepDecision && policy.needsHead) throw new Error(`exit granularity "step" pools the beams' states; policy ${policy.name} reads each row's output distribution`);
  let active = sequences.map((_, row) => row);
  // One policy memory per row, or per sample when its beams decide together.
  const memories = new Map<number, PolicyMemory>();
  const memoryOf = (row: number) => {
    const key = stepDecision ? -1 - sequences[row]!.sample : row;
    if (!memories.has(key)) memories.set(key, policy.start());
    return memories.get(key)!;
  };
  const computeSimilarity = policy.needsSimilarity || context.recordSimilarities;
  const exitStates = new Array<Float32Array>(sequences.length);
  const exitLogits = new Array<Float32Array | undefined>(sequences.length);

  for (let layer = 1; layer <= decoderLayers; layer++) {
    const rows = active.map((row) => sequences[row]!);
    if (context.strategy === 'recompute') for (const s of rows) await completeCache(context, s, layer, position);
    const output = await runDecoderLayer(context, layer - 1, states, rows, position);
    const logits = policy.needsHead ? await runner.head(output.hidden, rows.length, 1) : undefined; // (A, 1, V)
    const similarities = rows.map((s, i) => {
      const similarity = computeSimilarity ? cosineSimilarity(output.hidden, states, i * dim, dim) : Number.NaN;
      if (computeSimilarity) s.tokenSimilarities[position]!.push(similarity);
      context.flops[s.sample]! += decoderStepFlops(config, output.pastLengths[i]!, context.memoryLength) + (policy.needsSimilarity ? similarityFlops(dim) : 0) + (logits ? headFlops(config) : 0);
      return similarity;
    });
    // 'step': cos over the sample's beams flattened into one vector = Σ dot / √(Σ‖a‖² · Σ‖b‖²).
    const pooled = stepDecision && policy.needsSimilarity ? pooledSimilarities(output.hidden, states, rows, dim) : undefined;
    const decided = new Map<number, boolean>();
    const stillActive: number[] = [];
    rows.forEach((s, i) => {
      s.keys[layer - 1]![position] = output.key.slice(i * dim, (i + 1) * dim);
      s.values[layer - 1]![position] = output.value.slice(i * dim, (i + 1) * dim);
      const rowLogits = logits?.subarray(i * config.vocabSize, (i + 1) * config.vocabSize);
      const probabilities = rowLogits ? softmaxOver(rowLogits, context.allowedTokens) : undefined;
      const decide = () => layer === decoderLayers || policy.shouldExit(
        { layer, totalLayers: decoderLayers, similarity: pooled?.get(s.sample) ?? similarities[i]!, probabilities, position, maxLength: context.maxLength }, memoryOf(active[i]!));
      let exits: boolean;
      if (stepDecision) {
        if (!decided.has(s.sample)) decided.set(s.sample, decide());
        exits = decided.get(s.sample)!;
      } else {
        exits = decide();
      }
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

/** Per sample, the cosine of its rows' new states (A, 1, D) with their inputs, all its rows pooled into one vector. */
export function pooledSimilarities(output: Float32Array, input: Float32Array, rows: Sequence[], dim: number): Map<number, number> {
  const sums = new Map<number, { dot: number; a: number; b: number }>();
  rows.forEach((s, i) => {
    const sum = sums.get(s.sample) ?? { dot: 0, a: 0, b: 0 };
    for (let k = i * dim; k < (i + 1) * dim; k++) {
      sum.dot += output[k]! * input[k]!;
      sum.a += output[k]! * output[k]!;
      sum.b += input[k]! * input[k]!;
    }
    sums.set(s.sample, sum);
  });
  return new Map([...sums].map(([sample, { dot, a, b }]) => [sample, a === 0 || b === 0 ? 0 : Math.max(-1, Math.min(1, dot / Math.sqrt(a * b)))]));
}

/**
 * Decoder layer `index` at `position` for the given rows (states (A, 1, D)). Each row attends over the
 * key/values its cache holds for this layer: all earlier positions, or with 'drop' only those that ran
 * the layer. The step graph has no self-attention mask, so rows whose caches differ in length run as
 * separate calls (one per length), and their outputs are put back in row order.
 */
async function runDecoderLayer(context: DecoderContext, index: number, states: Float32Array, rows: Sequence[], position: number): Promise<DecoderStepOutput & { pastLengths: number[] }> {
  const { runner, memoryLength } = context;
  const dim = runner.config.dim;
  const cached = rows.map((s) => cachedPositions(s, index, position));
  if (context.strategy !== 'drop' && cached.some((positions) => positions.length !== position)) {
    throw new Error(`decoder layer ${index + 1} is missing key/values of earlier positions under the ${context.strategy} strategy`);
  }
  const byLength = new Map<number, number[]>();
  cached.forEach((positions, i) => byLength.set(positions.length, [...(byLength.get(positions.length) ?? []), i]));
  const pastLengths = cached.map((positions) => positions.length);
  const runGroup = async (members: number[], x: Float32Array) => {
    const group = members.map((i) => rows[i]!);
    const positions = members.map((i) => cached[i]!);
    const cross = await crossFor(context, index, group.map((s) => s.sample));
    return runner.decoderStep(
      index, x, stackCache(group, index, positions, dim, 'keys'), stackCache(group, index, positions, dim, 'values'), positions[0]!.length,
      cross.key, cross.value, cross.mask, group.length, memoryLength, position,
    );
  };
  if (byLength.size === 1) return { ...(await runGroup(rows.map((_, i) => i), states)), pastLengths };
  const hidden = new Float32Array(rows.length * dim);
  const key = new Float32Array(rows.length * dim);
  const value = new Float32Array(rows.length * dim);
  for (const members of byLength.values()) {
    const output = await runGroup(members, gatherRows(states, members, dim));
    members.forEach((row, i) => {
      hidden.set(output.hidden.subarray(i * dim, (i + 1) * dim), row * dim);
      key.set(output.key.subarray(i * dim, (i + 1) * dim), row * dim);
      value.set(output.value.subarray(i * dim, (i + 1) * dim), row * dim);
    });
  }
  return { hidden, key, value, pastLengths };
}

/**
 * Positions before `position` whose key/value layer `index` holds for this sequence, in order.
 * Only their count reaches the runner (pastLength, with the query's `position`): OFA's runner adds
 * the self-attention bias of the LAST S positions to these S keys, right-aligned even when they are
 * not contiguous, as the official code does (ARCHITECTURE.md §10.3).
 */
function cachedPositions(sequence: Sequence, index: number, position: number): number[] {
  const positions: number[] = [];
  const keys = sequence.keys[index]!;
  for (let p = 0; p < position; p++) if (keys[p] !== undefined) positions.push(p);
  return positions;
}

/** Full depth for this step in the single whole-step graph (the fused reference of the benchmark). */
async function decodeFused(context: DecoderContext, sequences: Sequence[], states: Float32Array, position: number): Promise<Float32Array[]> {
  const { runner, memoryLength } = context;
  const config = runner.config;
  const { dim, decoderLayers } = config;
  const all = Array.from({ length: position }, (_, p) => p);
  const positions = sequences.map(() => all);
  const past: KeyValue[] = [];
  const cross: KeyValue[] = [];
  let mask: Float32Array = new Float32Array(0);
  for (let index = 0; index < decoderLayers; index++) {
    past.push({ key: stackCache(sequences, index, positions, dim, 'keys'), value: stackCache(sequences, index, positions, dim, 'values') });
    const layerCross = await crossFor(context, index, sequences.map((s) => s.sample));
    cross.push(layerCross);
    mask = layerCross.mask;
  }
  const output = await runner.fullDecoderStep(states, past, position, cross, mask, sequences.length, memoryLength);
  sequences.forEach((s, i) => {
    output.keyValues.forEach((kv, index) => {
      s.keys[index]![position] = kv.key.slice(i * dim, (i + 1) * dim);
      s.values[index]![position] = kv.value.slice(i * dim, (i + 1) * dim);
    });
    s.depth[position] = decoderLayers;
    s.tokenLayers.push(decoderLayers);
    context.flops[s.sample]! += decoderLayers * decoderStepFlops(config, position, memoryLength) + headFlops(config);
  });
  const logits = await runner.head(output.hidden, sequences.length, 1); // (A, 1, V)
  return sequences.map((_, i) => logSoftmaxOver(logits.subarray(i * config.vocabSize, (i + 1) * config.vocabSize), context.allowedTokens));
}

/** Gives the layers above each sequence's exit layer their key/value for this position. */
async function fillSkippedLayers(context: DecoderContext, sequences: Sequence[], exitStates: Float32Array[], position: number): Promise<void> {
  const { decoderLayers } = context.runner.config;
  sequences.forEach((s, row) => {
    s.depth[position] = s.tokenLayers[position]!;
    s.exitStates[position] = exitStates[row]!;
  });
  if (context.strategy === 'recompute') return; // computed lazily by completeCache
  if (context.strategy === 'drop') return; // the official behaviour: skipped layers get no entry for this position
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
      const earlier = [Array.from({ length: past }, (_, p) => p)];
      const output = await runner.decoderStep(
        index, sequence.exitStates[past]!, stackCache([sequence], index, earlier, dim, 'keys'), stackCache([sequence], index, earlier, dim, 'values'), past,
        cross.key, cross.value, cross.mask, 1, context.memoryLength, past,
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

/** The cache of one layer at the given positions of each sequence (every row the same count S): (A, S, D). */
function stackCache(sequences: Sequence[], layerIndex: number, positions: number[][], dim: number, which: 'keys' | 'values'): Float32Array {
  const length = positions[0]?.length ?? 0;
  const out = new Float32Array(sequences.length * length * dim);
  sequences.forEach((s, row) => {
    positions[row]!.forEach((p, i) => out.set(s[which][layerIndex]![p]!, (row * length + i) * dim));
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
