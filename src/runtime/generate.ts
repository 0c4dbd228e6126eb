// Search over decoder outputs, as the official OFA/MuE caption evaluation runs it
// (fairseq's SequenceGenerator; ofa/ARCHITECTURE.md §11): at every step `<pad>` is never
// chosen, the end token is banned before `minLength` tokens, no n-gram repeats, and with
// `forcedEnd` one last step (step = maxLength) allows only the end token, so every hypothesis
// ends. Greedy (batched, sequences leave when they end) is beam search of width 1.
import { cloneSequence, decodeNextToken, newSequence, type DecoderContext, type Sequence } from './decoderExits.js';

export interface SearchOptions {
  beamSize: number;
  /** Finished hypotheses compete on log p / length^lengthPenalty, length counting the end token. */
  lengthPenalty: number;
  noRepeatNgramSize: number;
  eosId: number;
  padId: number;
  /** Tokens before the end token is allowed (official captions: 1, i.e. it is banned at step 0). */
  minLength: number;
  /** Tokens at most before the end token (official captions: 16). */
  maxLength: number;
  /** Run step maxLength with only the end token allowed (captions); false stops after maxLength tokens (one-token answers). */
  forcedEnd: boolean;
}

/** One decoding step: each sequence's log-probabilities for its next token (decodeNextToken; tests pass a table). */
export type NextToken = (context: DecoderContext, sequences: Sequence[]) => Promise<Float32Array[]>;

/** Greedy decoding of every sample; returns one sequence per sample. */
export async function greedySearch(context: DecoderContext, options: SearchOptions, next: NextToken = decodeNextToken): Promise<Sequence[]> {
  const layers = context.runner.config.decoderLayers;
  const sequences = Array.from({ length: context.samples }, (_, sample) => newSequence(sample, layers));
  let live = sequences;
  for (let step = 0; step < lastStep(options) && live.length > 0; step++) {
    const logProbabilities = await next(context, live);
    live.forEach((sequence, row) => {
      const scores = constrain(logProbabilities[row]!, sequence.tokens, step, options);
      const token = argmax(scores);
      sequence.tokens.push(token);
      sequence.logProbability += scores[token]!;
    });
    live = live.filter((sequence) => sequence.tokens.at(-1) !== options.eosId);
  }
  return sequences;
}

/**
 * Beam search, one sample at a time (its beams run as one batch), with fairseq's rules: of the
 * 2·beam best extensions, those ending in the end token among the first `beam` are finished; the
 * next beams are the first `beam` that do not end; the search stops once `beam` hypotheses have
 * finished (or at the last step), and the best finished one by normalised score wins.
 */
export async function beamSearch(context: DecoderContext, options: SearchOptions, next: NextToken = decodeNextToken): Promise<Sequence[]> {
  const layers = context.runner.config.decoderLayers;
  const { beamSize } = options;
  const results: Sequence[] = [];
  const normalised = (s: Sequence) => s.logProbability / s.tokens.length ** options.lengthPenalty;
  for (let sample = 0; sample < context.samples; sample++) {
    let beams = [newSequence(sample, layers)];
    const finished: Sequence[] = [];
    for (let step = 0; step < lastStep(options) && beams.length > 0 && finished.length < beamSize; step++) {
      const logProbabilities = await next(context, beams);
      const candidates: Array<{ beam: number; token: number; score: number }> = [];
      beams.forEach((beam, row) => {
        const scores = constrain(logProbabilities[row]!, beam.tokens, step, options);
        for (const token of topK(scores, 2 * beamSize)) candidates.push({ beam: row, token, score: beam.logProbability + scores[token]! });
      });
      candidates.sort((a, b) => b.score - a.score);
      const best = candidates.slice(0, 2 * beamSize).filter((candidate) => Number.isFinite(candidate.score));
      const extend = (candidate: (typeof best)[number]) => {
        const extended = cloneSequence(beams[candidate.beam]!);
        extended.tokens.push(candidate.token);
        extended.logProbability = candidate.score;
        return extended;
      };
      for (const candidate of best.slice(0, beamSize)) {
        if (candidate.token === options.eosId && finished.length < beamSize) finished.push(extend(candidate));
      }
      beams = best.filter((candidate) => candidate.token !== options.eosId).slice(0, beamSize).map(extend);
    }
    // Without a forced end (or if every extension was impossible) unfinished beams compete too.
    const pool = finished.length > 0 ? finished : beams;
    results.push(pool.reduce((winner, s) => (normalised(s) > normalised(winner) ? s : winner)));
  }
  return results;
}

/** Steps the search runs: 0 … maxLength with a forced end, else 0 … maxLength − 1. */
const lastStep = (options: SearchOptions): number => options.maxLength + (options.forcedEnd ? 1 : 0);

/**
 * The step's scores with the official constraints: `<pad>` never, only the end token at step
 * maxLength (forcedEnd), no end token before minLength, no repeated n-gram. Returns a copy.
 * NaN scores (weights so large that the logits overflow) are refused: they would silently pick
 * a meaningless token.
 */
export function constrain(logProbabilities: Float32Array, tokens: number[], step: number, options: SearchOptions): Float32Array {
  if (logProbabilities.some(Number.isNaN)) throw new Error('the decoder\'s scores are not numbers (NaN): the model\'s weights are broken');
  const scores = logProbabilities.slice();
  scores[options.padId] = -Infinity;
  if (options.forcedEnd && step >= options.maxLength) {
    const end = scores[options.eosId]!;
    scores.fill(-Infinity);
    scores[options.eosId] = end;
  }
  if (step < options.minLength) scores[options.eosId] = -Infinity;
  banRepeats(scores, tokens, options.noRepeatNgramSize);
  return scores;
}

/** Sets −∞ (in place) for every token that would repeat an n-gram already in `tokens`. */
function banRepeats(scores: Float32Array, tokens: number[], size: number): void {
  if (size < 1 || tokens.length < size - 1) return;
  const prefix = tokens.slice(tokens.length - (size - 1));
  for (let start = 0; start + size - 1 < tokens.length; start++) {
    if (prefix.every((token, i) => tokens[start + i] === token)) scores[tokens[start + size - 1]!] = -Infinity;
  }
}

function argmax(scores: Float32Array): number {
  let best = 0;
  for (let i = 1; i < scores.length; i++) if (scores[i]! > scores[best]!) best = i;
  return best;
}

function topK(scores: Float32Array, k: number): number[] {
  return [...scores.keys()].sort((a, b) => scores[b]! - scores[a]!).slice(0, k);
}
