// OFA's text conventions (ARCHITECTURE.md §11): how a hypothesis, premise or caption is cleaned
// before tokenisation (data/ofa_dataset.py pre_caption), the caption task's fixed prompt, and how
// a generated caption is cleaned for scoring (utils/eval_utils.py: punctuation removed).

/** The caption task's encoder text (caption_dataset.py), tokenised `<s>` 99 473 5 2274 6190 116 `</s>`. */
export const OFA_CAPTION_PROMPT = ' what does the image describe?';
/** max_src_length of the MuE SNLI-VE and caption runs, in words. */
export const OFA_MAX_WORDS = 80;

/** pre_caption: lower-case, strip leading `,.!?*#:;~`, `-` and `/` to spaces, `<person>` → person, collapse spaces, at most `maxWords` words. */
export function normaliseOfaText(text: string, maxWords = OFA_MAX_WORDS): string {
  const cleaned = text.toLowerCase().replace(/^[,.!?*#:;~]+/, '').replace(/[-/]/g, ' ').replaceAll('<person>', 'person')
    .replace(/\s{2,}/g, ' ').replace(/\n+$/, '').replace(/^ +| +$/g, '');
  const words = cleaned.split(' ');
  return words.length > maxWords ? words.slice(0, maxWords).join(' ') : cleaned;
}

/** A decoded caption as the official evaluation scores it: every ASCII punctuation mark removed, then trimmed. */
export function cleanOfaCaption(text: string): string {
  return text.replace(/[!"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~]/g, '').trim();
}
