// One encoder stream (image, text, or the joint sequence) through the layers with
// per-sample exits (DESIGN 2.3): after layer i, sample s stops when its policy fires on
// cos(h_i[s], h_{i−1}[s]) over its real tokens. Exited samples leave the batch (the
// active rows are compacted), so they cost nothing more.
import { cosineSimilarity, type ExitPolicy } from './exits.js';
import { encoderLayerFlops, similarityFlops } from './flops.js';
import type { EncoderStream, ExitRunner } from './exitRunner.js';
import { gatherRows } from './rows.js';

export interface StreamResult {
  /** Each sample's state at its exit layer: (B, T, D). */
  finalStates: Float32Array;
  layersUsed: number[];
  /** similarities[s][i] = cos(h_{i+1}, h_i) for every layer sample s ran (empty when not computed). */
  similarities: number[][];
  flops: number[];
}

/**
 * embedded (B, T, D) and keyMask (B, T) with every sample's real tokens first (lengths[s] of them).
 */
export async function runEncoderStream(
  runner: ExitRunner, stream: EncoderStream, embedded: Float32Array, keyMask: Float32Array, lengths: number[], policy: ExitPolicy, recordSimilarities = false,
): Promise<StreamResult> {
  const computeSimilarity = policy.needsSimilarity || recordSimilarities;
  const { config } = runner;
  const batch = lengths.length;
  const length = keyMask.length / batch;
  const rowSize = length * config.dim;
  const finalStates = new Float32Array(batch * rowSize);
  const layersUsed = new Array<number>(batch).fill(0);
  const similarities = lengths.map(() => [] as number[]);
  const flops = new Array<number>(batch).fill(0);
  const memories = lengths.map(() => policy.start());
  let active = [...Array(batch).keys()]; // sample index of each active row
  let states = embedded; // (A, T, D) for the active rows
  let mask = keyMask; // (A, T)
  for (let layer = 1; layer <= config.encoderLayers; layer++) {
    const output = await runner.encoderLayer(layer - 1, states, mask, active.length, length, stream);
    const stillActive: number[] = [];
    active.forEach((sample, row) => {
      const realValues = lengths[sample]! * config.dim;
      const similarity = computeSimilarity ? cosineSimilarity(output, states, row * rowSize, realValues) : Number.NaN;
      if (computeSimilarity) similarities[sample]!.push(similarity);
      // Similarities computed only for the record are a diagnostic, not the method's cost.
      flops[sample]! += encoderLayerFlops(config, length) + (policy.needsSimilarity ? similarityFlops(realValues) : 0);
      const exits = layer === config.encoderLayers || policy.shouldExit({ layer, totalLayers: config.encoderLayers, similarity }, memories[sample]!);
      if (exits) {
        finalStates.set(output.subarray(row * rowSize, (row + 1) * rowSize), sample * rowSize);
        layersUsed[sample] = layer;
      } else {
        stillActive.push(row);
      }
    });
    if (stillActive.length === 0) break;
    if (stillActive.length === active.length) {
      states = output;
    } else {
      // Compact: keep only the rows that go on. (A', T, D) and (A', T).
      states = gatherRows(output, stillActive, rowSize);
      mask = gatherRows(mask, stillActive, length);
    }
    active = stillActive.map((row) => active[row]!);
  }
  return { finalStates, layersUsed, similarities, flops };
}
