// Every word SceneWorld text can contain, in a fixed order (token ids follow it).
// The tests generate thousands of hypotheses and captions and check they stay inside it.
import { COLOURS, SHAPES, SIZES } from './scene.js';
import { COUNT_WORDS, pluralShape } from './words.js';

/**
 * The official OFA caption prompt (ofa/ARCHITECTURE.md §11), leading space and question mark included
 * (they matter to a BPE tokenizer). SceneWorld's word tokenizer drops the `?` and the spaces, so its
 * ids are those of the five words.
 */
export const CAPTION_PROMPT = ' what does the image describe?';

export const VOCABULARY: readonly string[] = [
  ...['yes', 'no', 'maybe'], // answers
  ...CAPTION_PROMPT.replace('?', '').trim().split(' '),
  ...['there', 'is', 'are', 'a', 'all', 'more', 'than', 'of'], // hypothesis grammar ("the" comes from the prompt)
  ...['left', 'right', 'above', 'below', 'top', 'bottom', 'center', 'at', 'in'], // places
  ...['and', 'shape', 'shapes', 'other', 'on', 'dark', 'background', 'picture', 'with', 'shows', 'next', 'to', 'near'],
  ...['grey', 'block'],
  ...COUNT_WORDS,
  ...SIZES,
  ...COLOURS,
  ...SHAPES,
  ...SHAPES.map(pluralShape),
];
