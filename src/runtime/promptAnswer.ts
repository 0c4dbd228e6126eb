// Answering at the end of a decoder prompt (VE 'prompt' formulation, official MuE/OFA
// prompt_type=prev_output): the decoder reads <bos> + the question's tokens in one causal pass
// per layer, with one exit decision per layer for all prompt positions of a row (the official
// decoder exit pools the whole prompt: cos over the row's flattened prompt states, layer output
// vs layer input). The answer is scored at the last prompt position through the shared head on
// the exit layer's state, restricted to the allowed answers (constrained scoring).
import type { DecoderContext, Sequence } from './decoderExits.js';
import { crossFor, logSoftmaxOver, newSequence } from './decoderExits.js';
import { cosineSimilarity, type PolicyMemory } from './exits.js';
import { decoderPromptFlops, headFlops, similarityFlops } from './flops.js';
import type { KeyValue } from './exitRunner.js';
import { gatherRows } from './rows.js';

/**
 * prompts[s] = <bos> + text ids of sample s (one row per sample). Returns per sample a sequence
 * whose single token is the argmax of the allowed answers at its last prompt position, with the
 * decoder layers run (tokenLayers) and per-layer similarities (tokenSimilarities) of that decision.
 */
export async function answerAtPrompt(context: DecoderContext, prompts: number[][], padId: number): Promise<Sequence[]> {
  const { runner, policy, memoryLength } = context;
  const config = runner.config;
  const { dim, decoderLayers, vocabSize } = config;
  const allowed = context.allowedTokens;
  if (!allowed || allowed.length === 0) throw new Error('answering at the prompt needs the allowed answer tokens');
  const lengths = prompts.map((ids) => ids.length);
  const length = Math.max(...lengths);
  // Right padding: under the causal mask no real position ever attends to a pad.
  const padded = prompts.map((ids) => [...ids, ...new Array<number>(length - ids.length).fill(padId)]);
  const sequences = prompts.map((_, sample) => newSequence(sample, decoderLayers));
  for (const [sample, promptLength] of lengths.entries()) {
    context.fullDepthFlops[sample]! += decoderLayers * decoderPromptFlops(config, promptLength, memoryLength) + headFlops(config);
  }
  const rowSize = length * dim;
  /** The last prompt position of each listed row of (A, T, D) -> (A, 1, D). */
  const lastPositions = (states: Float32Array, rows: number[], samples: number[]): Float32Array => {
    const out = new Float32Array(rows.length * dim);
    rows.forEach((row, i) => {
      const offset = row * rowSize + (lengths[samples[i]!]! - 1) * dim;
      out.set(states.subarray(offset, offset + dim), i * dim);
    });
    return out;
  };

  let states = await runner.embedDecoderPrompt(padded); // (A, T, D)
  if (context.fused) return answerFused(context, sequences, states, lengths, length, lastPositions);
  let active = sequences.map((_, sample) => sample);
  const memories: PolicyMemory[] = sequences.map(() => policy.start());
  const computeSimilarity = policy.needsSimilarity || context.recordSimilarities;
  const exitStates = new Array<Float32Array>(sequences.length); // (D) at the last prompt position
  const exitLogits = new Array<Float32Array | undefined>(sequences.length);
  for (const s of sequences) s.tokenSimilarities.push([]);

  for (let layer = 1; layer <= decoderLayers; layer++) {
    const cross = await crossFor(context, layer - 1, active);
    const output = await runner.decoderPrompt(layer - 1, states, active.length, length, cross.key, cross.value, cross.mask, memoryLength); // (A, T, D)
    const rowIndices = active.map((_, i) => i);
    const logits = policy.needsHead ? await runner.head(lastPositions(output, rowIndices, active), active.length, 1) : undefined; // (A, 1, V)
    const stillActive: number[] = [];
    active.forEach((sample, i) => {
      const s = sequences[sample]!;
      const promptValues = lengths[sample]! * dim;
      // One decision for the row: cos over its flattened real prompt states (pads excluded).
      const similarity = computeSimilarity ? cosineSimilarity(output, states, i * rowSize, promptValues) : Number.NaN;
      if (computeSimilarity) s.tokenSimilarities[0]!.push(similarity);
      context.flops[sample]! += decoderPromptFlops(config, lengths[sample]!, memoryLength)
        + (policy.needsSimilarity ? similarityFlops(promptValues) : 0) + (logits ? headFlops(config) : 0);
      const rowLogits = logits?.subarray(i * vocabSize, (i + 1) * vocabSize);
      const rowLogProbabilities = rowLogits ? logSoftmaxOver(rowLogits, allowed) : undefined;
      const probabilities = rowLogProbabilities ? Float32Array.from(allowed, (id) => Math.exp(rowLogProbabilities[id]!)) : undefined;
      const exits = layer === decoderLayers || policy.shouldExit({ layer, totalLayers: decoderLayers, similarity, probabilities }, memories[sample]!);
      if (exits) {
        exitStates[sample] = lastPositions(output, [i], [sample]);
        exitLogits[sample] = rowLogits;
        s.tokenLayers.push(layer);
      } else {
        stillActive.push(i);
      }
    });
    if (stillActive.length === 0) break;
    states = stillActive.length === active.length ? output : gatherRows(output, stillActive, rowSize);
    active = stillActive.map((i) => active[i]!);
  }

  // The answer: the shared head on each row's exit state at its last prompt position.
  const needHead = sequences.map((_, sample) => sample).filter((sample) => !exitLogits[sample]);
  if (needHead.length > 0) {
    const stacked = new Float32Array(needHead.length * dim);
    needHead.forEach((sample, i) => stacked.set(exitStates[sample]!, i * dim));
    const logits = await runner.head(stacked, needHead.length, 1);
    needHead.forEach((sample, i) => {
      exitLogits[sample] = logits.subarray(i * vocabSize, (i + 1) * vocabSize);
      context.flops[sample]! += headFlops(config);
    });
  }
  return sequences.map((s, sample) => {
    const logProbabilities = logSoftmaxOver(exitLogits[sample]!, allowed);
    const answer = allowed.reduce((best, id) => (logProbabilities[id]! > logProbabilities[best]! ? id : best), allowed[0]!);
    return { ...s, tokens: [answer], logProbability: logProbabilities[answer]! };
  });
}

/** Full depth in the single whole-decoder graph (the benchmark's fused reference): every row runs every layer. */
async function answerFused(
  context: DecoderContext, sequences: Sequence[], states: Float32Array, lengths: number[], length: number,
  lastPositions: (states: Float32Array, rows: number[], samples: number[]) => Float32Array,
): Promise<Sequence[]> {
  const { runner, memoryLength } = context;
  const config = runner.config;
  const samples = sequences.map((_, sample) => sample);
  const empty = new Float32Array(0);
  const cross: KeyValue[] = [];
  let mask: Float32Array = new Float32Array(0);
  for (let index = 0; index < config.decoderLayers; index++) {
    const layerCross = await crossFor(context, index, samples);
    cross.push(layerCross);
    mask = layerCross.mask;
  }
  const past = cross.map(() => ({ key: empty, value: empty }));
  const output = await runner.fullDecoderStep(states, past, 0, cross, mask, sequences.length, memoryLength, length); // (A, T, D)
  const logits = await runner.head(lastPositions(output.hidden, samples, samples), sequences.length, 1); // (A, 1, V)
  const allowed = context.allowedTokens!;
  return sequences.map((s, sample) => {
    context.flops[sample]! += config.decoderLayers * decoderPromptFlops(config, lengths[sample]!, memoryLength) + headFlops(config);
    const logProbabilities = logSoftmaxOver(logits.subarray(sample * config.vocabSize, (sample + 1) * config.vocabSize), allowed);
    const answer = allowed.reduce((best, id) => (logProbabilities[id]! > logProbabilities[best]! ? id : best), allowed[0]!);
    return { ...s, tokens: [answer], tokenLayers: [config.decoderLayers], logProbability: logProbabilities[answer]! };
  });
}
