// The encoder text of a visual-entailment question, as the official MuE/OFA runs build it
// (OFA data/mm_data/snli_ve_dataset.py): the hypothesis (and, when the data set has one, the
// premise caption) inside a fixed question template. The leading space is OFA's: with a
// GPT-2 style BPE it makes " does" the word-initial token the OFA vocabulary has.
import { ENTAILMENT_LABELS } from './sceneworld/entailment.js';
import type { TextTokenizer } from './tokenizer.js';

/**
 * How a VE model reads its input and where it answers:
 *   prompt — encoder text = the template; the decoder reads <bos> + that text and answers at
 *            its last position, constrained to yes / no / maybe (the official formulation);
 *   bos    — encoder text = the bare hypothesis; the decoder reads <bos> only and answers at
 *            position 0 (how mue's first models were trained; kept for them and the ablation).
 */
export type VeFormulation = 'prompt' | 'bos';
export const VE_FORMULATIONS: readonly VeFormulation[] = ['prompt', 'bos'];

/** ` does the image describe " {hypothesis} "?` */
export const hypothesisQuestion = (hypothesis: string): string => ` does the image describe " ${hypothesis} "?`;

/** ` can image and text1 " {premise} " imply text2 " {hypothesis} "?` (SNLI-VE with its premise caption). */
export const premiseQuestion = (premise: string, hypothesis: string): string => ` can image and text1 " ${premise} " imply text2 " ${hypothesis} "?`;

/** The encoder text of a VE example under a formulation; the premise is used whenever it is given. */
export function entailmentText(formulation: VeFormulation, hypothesis: string, premise?: string): string {
  if (formulation === 'bos') return hypothesis;
  return premise === undefined ? hypothesisQuestion(hypothesis) : premiseQuestion(premise, hypothesis);
}

/**
 * Refuses a hypothesis without a word: the template alone, or "?!" with a tokenizer that keeps `?`,
 * would otherwise pass as a question. (Over-long text is refused where it is encoded.)
 */
export function checkHypothesisHasWord(hypothesis: string): void {
  if (!/[^\p{P}\p{S}\s]/u.test(hypothesis)) throw new Error('text is empty');
}

/**
 * Token ids of the answers yes, no, maybe (in that order). 'prompt' models answer with the word
 * after a space, as OFA's ` yes` (a GPT-2 BPE has a distinct word-initial token; a word-level or
 * WordPiece tokenizer gives the plain word); 'bos' models with the token of the bare word, as they
 * were trained. Each answer must be one token.
 */
export function entailmentAnswerIds(tokenizer: TextTokenizer, formulation: VeFormulation): number[] {
  if (formulation === 'bos') return ENTAILMENT_LABELS.map((label) => tokenizer.idOf(label));
  return ENTAILMENT_LABELS.map((label) => {
    const ids = tokenizer.encode(` ${label}`);
    if (ids.length !== 1) throw new Error(`the tokenizer splits the answer " ${label}" into ${ids.length} tokens; VE answers must be one token`);
    return ids[0]!;
  });
}
