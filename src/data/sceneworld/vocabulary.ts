// Every word SceneWorld text can contain, in a fixed order (token ids follow it).
// The tests generate thousands of hypotheses and captions and check they stay inside it.
import { COLOURS, SHAPES, SIZES } from './scene.js';
import { COUNT_WORDS, pluralShape } from './words.js';

/** The official caption prompt (OFA caption_dataset.py); tokenizers without `?` drop it. */
export const CAPTION_PROMPT = ' what does the image describe?';

export const VOCABULARY: readonly string[] = [
  ...['yes', 'no', 'maybe'], // answers
  ...['what', 'does', 'the', 'image', 'describe'], // caption prompt and VE template
  ...['there', 'is', 'are', 'a', 'all', 'more', 'than', 'of'], // hypothesis grammar ("the" comes from the prompt)
  ...['left', 'right', 'above', 'below', 'top', 'bottom', 'center', 'at', 'in'], // places
  ...['and', 'shape', 'shapes', 'other', 'on', 'dark', 'background', 'picture', 'with', 'shows', 'next', 'to', 'near'],
  ...['grey', 'block'],
  ...COUNT_WORDS,
  ...SIZES,
  ...COLOURS,
  ...SHAPES,
  ...SHAPES.map(pluralShape),
  // Last, so every earlier word keeps the id it had before the VE template (models/ ship with their own tokenizer.json anyway).
  ...['"', '?'], // VE template ` does the image describe " {hypothesis} "?`, caption prompt
];
