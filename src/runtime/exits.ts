// Exit criteria behind one interface (DESIGN 2.3, 2.4). After every layer the runtime
// hands the policy what it observed; the policy says whether this stream/token stops.
// MuE's criterion is the similarity of consecutive layers' states and needs no head;
// the baselines (DeeBERT entropy, CALM margin, PABEE patience, static depth) read the
// layer's output distribution, so the runtime applies the shared head only for them.

export interface LayerSignal {
  /** The layer just computed, 1-based. */
  layer: number;
  totalLayers: number;
  /** cos(h_i, h_{i−1}) of this stream or token; NaN when no one needs it (it is then not computed). */
  similarity: number;
  /** softmax(W_out · LN(h_i)) over the allowed tokens; present only when the policy needsHead. */
  probabilities?: Float32Array;
  /** Decoder only: the generation step (= the token's position) and the generation's maxLength T (tokens before the forced end token; steps 0 … T), for schedules. */
  position?: number;
  maxLength?: number;
}

export interface ExitPolicy {
  readonly name: string;
  /** Whether the policy reads the layer's output distribution (costs a head projection per layer). */
  readonly needsHead: boolean;
  /** Whether the policy reads the similarity (a threshold of 1 never exits, so full depth skips computing it). */
  readonly needsSimilarity: boolean;
  /** Per-stream or per-token memory, e.g. PABEE's patience counter; created fresh for each. */
  start(): PolicyMemory;
  shouldExit(signal: LayerSignal, memory: PolicyMemory): boolean;
}
export interface PolicyMemory { previousArgmax?: number; unchangedLayers?: number }

/** cos(a, b) = a·b / (‖a‖‖b‖) over a[offset, offset+length) and b likewise; clamped to [−1, 1]. */
export function cosineSimilarity(a: Float32Array, b: Float32Array, offset: number, length: number): number {
  let dot = 0;
  let normA = 0;
  let normB = 0;
  for (let i = offset, end = offset + length; i < end; i++) {
    const x = a[i]!;
    const y = b[i]!;
    dot += x * y;
    normA += x * x;
    normB += y * y;
  }
  if (normA === 0 || normB === 0) return 0;
  return Math.max(-1, Math.min(1, dot / Math.sqrt(normA * normB)));
}

export function checkThreshold(name: string, value: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < -1 || value > 1) {
    throw new Error(`${name} must be a number in [-1, 1] (got ${value})`);
  }
  return value;
}

export type ThresholdSchedule = 'constant' | 'decaying';
export const THRESHOLD_SCHEDULES: readonly ThresholdSchedule[] = ['constant', 'decaying'];

/**
 * The official MuE generation schedule (ofa/ARCHITECTURE.md §10.2) for step t of a generation of at most
 * T = maxLength tokens before the forced end token (steps 0 … T):
 *   τ_t = 1 (no exit) while t < (T + 1) / 3,  else  τ_t = 0.9·τ + 0.1·exp(−(t + 1) / (T + 1)).
 * τ ≥ 1 stays 1 at every step: in mue a threshold of 1 always means full depth.
 */
export function decayingThreshold(threshold: number, step: number, maxLength: number): number {
  if (threshold >= 1 || step < (maxLength + 1) / 3) return 1;
  return 0.9 * threshold + 0.1 * Math.exp(-(step + 1) / (maxLength + 1));
}

/**
 * MuE: exit when cos(h_i, h_{i−1}) > τ. A threshold of 1 never exits (cos ≤ 1), i.e. full depth.
 * 'decaying' (decoder only; the official generation schedule, see decayingThreshold) needs the
 * token's position and the generation's maxLength in the signal; without them it is constant.
 */
export function similarityExit(threshold: number, schedule: ThresholdSchedule = 'constant'): ExitPolicy {
  checkThreshold('similarity threshold', threshold);
  return {
    name: schedule === 'constant' ? `similarity>${threshold}` : `similarity>${threshold}(decaying)`,
    needsHead: false,
    needsSimilarity: threshold < 1,
    start: () => ({}),
    shouldExit: ({ similarity, position, maxLength }) => {
      if (threshold >= 1) return false;
      if (schedule === 'decaying' && position !== undefined && maxLength !== undefined) {
        return similarity > decayingThreshold(threshold, position, maxLength);
      }
      return similarity > threshold;
    },
  };
}

/** DeeBERT-style: exit when the entropy H(p) = −Σ p log p of the layer's prediction is below the threshold. */
export function entropyExit(maxEntropy: number): ExitPolicy {
  if (!(maxEntropy >= 0)) throw new Error(`entropy threshold must be a non-negative number (got ${maxEntropy})`);
  return {
    name: `entropy<${maxEntropy}`,
    needsHead: true,
    needsSimilarity: false,
    start: () => ({}),
    shouldExit: ({ probabilities }) => {
      let entropy = 0;
      for (const p of probabilities!) if (p > 0) entropy -= p * Math.log(p);
      return entropy < maxEntropy;
    },
  };
}

/** CALM-style: exit when the top-1 minus top-2 probability margin exceeds the threshold. */
export function marginExit(minMargin: number): ExitPolicy {
  if (!(minMargin >= 0 && minMargin <= 1)) throw new Error(`margin threshold must be in [0, 1] (got ${minMargin})`);
  return {
    name: `margin>${minMargin}`,
    needsHead: true,
    needsSimilarity: false,
    start: () => ({}),
    shouldExit: ({ probabilities }) => {
      let first = 0;
      let second = 0;
      for (const p of probabilities!) {
        if (p > first) [first, second] = [p, first];
        else if (p > second) second = p;
      }
      return first - second > minMargin;
    },
  };
}

/** PABEE-style: exit once the argmax has stayed the same for `patience` consecutive layers. */
export function patienceExit(patience: number): ExitPolicy {
  if (!Number.isInteger(patience) || patience < 1) throw new Error(`patience must be a positive integer (got ${patience})`);
  return {
    name: `patience=${patience}`,
    needsHead: true,
    needsSimilarity: false,
    start: () => ({ unchangedLayers: 0 }),
    shouldExit: ({ probabilities }, memory) => {
      let argmax = 0;
      probabilities!.forEach((p, i) => { if (p > probabilities![argmax]!) argmax = i; });
      memory.unchangedLayers = argmax === memory.previousArgmax ? memory.unchangedLayers! + 1 : 0;
      memory.previousArgmax = argmax;
      return memory.unchangedLayers >= patience;
    },
  };
}

/** Static truncation: always stop after `depth` layers. */
export function fixedDepthExit(depth: number): ExitPolicy {
  if (!Number.isInteger(depth) || depth < 1) throw new Error(`depth must be a positive integer (got ${depth})`);
  return { name: `depth=${depth}`, needsHead: false, needsSimilarity: false, start: () => ({}), shouldExit: ({ layer }) => layer >= depth };
}

export const fullDepth = (): ExitPolicy => similarityExit(1);
