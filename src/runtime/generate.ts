// Search over decoder outputs: greedy (batched, sequences leave when they end) and beam
// search (per sample, beams as rows), both with no-repeat n-grams and a length penalty.
import { cloneSequence, decodeNextToken, newSequence, type DecoderContext, type Sequence } from './decoderExits.js';

export interface SearchOptions {
  beamSize: number;
  /** Beam score = log p / length^lengthPenalty. */
  lengthPenalty: number;
  noRepeatNgramSize: number;
  eosId: number;
}

/** Greedy decoding of every sample; returns one finished sequence per sample. */
export async function greedySearch(context: DecoderContext, options: SearchOptions): Promise<Sequence[]> {
  const layers = context.runner.config.decoderLayers;
  const sequences = Array.from({ length: context.samples }, (_, sample) => newSequence(sample, layers));
  let live = sequences;
  while (live.length > 0 && live[0]!.tokens.length < context.maxLength) {
    const logProbabilities = await decodeNextToken(context, live);
    live.forEach((sequence, row) => {
      const scores = banRepeats(checkScores(logProbabilities[row]!), sequence.tokens, options.noRepeatNgramSize);
      const token = argmax(scores);
      sequence.tokens.push(token);
      sequence.logProbability += scores[token]!;
    });
    live = live.filter((sequence) => sequence.tokens.at(-1) !== options.eosId);
  }
  return sequences;
}

/** Beam search, one sample at a time (its beams run as one batch). */
export async function beamSearch(context: DecoderContext, options: SearchOptions): Promise<Sequence[]> {
  const layers = context.runner.config.decoderLayers;
  const results: Sequence[] = [];
  const normalised = (s: Sequence) => s.logProbability / s.tokens.length ** options.lengthPenalty;
  for (let sample = 0; sample < context.samples; sample++) {
    let beams = [newSequence(sample, layers)];
    const finished: Sequence[] = [];
    while (beams.length > 0 && finished.length < options.beamSize && beams[0]!.tokens.length < context.maxLength) {
      const logProbabilities = await decodeNextToken(context, beams);
      const candidates: Array<{ beam: number; token: number; score: number }> = [];
      beams.forEach((beam, row) => {
        const scores = banRepeats(checkScores(logProbabilities[row]!), beam.tokens, options.noRepeatNgramSize);
        for (const token of topK(scores, 2 * options.beamSize)) candidates.push({ beam: row, token, score: beam.logProbability + scores[token]! });
      });
      candidates.sort((a, b) => b.score - a.score);
      const next: Sequence[] = [];
      for (const candidate of candidates) {
        if (next.length === options.beamSize || !Number.isFinite(candidate.score)) break;
        const extended = cloneSequence(beams[candidate.beam]!);
        extended.tokens.push(candidate.token);
        extended.logProbability = candidate.score;
        if (candidate.token === options.eosId) finished.push(extended);
        else next.push(extended);
        if (finished.length === options.beamSize) break;
      }
      beams = next;
    }
    // Unfinished beams compete only when too few hypotheses ended (the length limit was hit).
    if (finished.length < options.beamSize) finished.push(...beams);
    results.push(finished.reduce((best, s) => (normalised(s) > normalised(best) ? s : best)));
  }
  return results;
}

/** NaN scores (weights so large that the logits overflow) would silently pick a meaningless token. */
function checkScores(scores: Float32Array): Float32Array {
  if (scores.some(Number.isNaN)) throw new Error('the decoder\'s scores are not numbers (NaN): the model\'s weights are broken');
  return scores;
}

/** −∞ for every token that would repeat an n-gram already in `tokens`. */
function banRepeats(scores: Float32Array, tokens: number[], size: number): Float32Array {
  if (size < 1 || tokens.length < size - 1) return scores;
  const banned = scores.slice();
  const prefix = tokens.slice(tokens.length - (size - 1));
  for (let start = 0; start + size - 1 < tokens.length; start++) {
    if (prefix.every((token, i) => tokens[start + i] === token)) banned[tokens[start + size - 1]!] = -Infinity;
  }
  return banned;
}

function argmax(scores: Float32Array): number {
  let best = 0;
  for (let i = 1; i < scores.length; i++) if (scores[i]! > scores[best]!) best = i;
  return best;
}

function topK(scores: Float32Array, k: number): number[] {
  return [...scores.keys()].sort((a, b) => scores[b]! - scores[a]!).slice(0, k);
}
