// Reference captions: six per image, differing in wording, object order and level of
// detail, and mentioning only what is visible (the grey block included). Long object
// lists are summarised ("two red circles", then "two circles", then "five shapes")
// until the caption fits in MAX_CAPTION_WORDS. No punctuation: captions are already
// in the lower-case, space-separated form the caption metrics expect.
import { GRID_SIZE, type Cell, type Scene, type SceneObject } from './scene.js';
import { countWord, countedNounPhrase, type Descriptor } from './words.js';

export const MAX_CAPTION_WORDS = 20;

/** From most to least detailed way of listing the objects; identical descriptions are always counted together. */
const DETAILS = ['size colour shape', 'colour shape', 'shape', 'total'] as const;
type Detail = (typeof DETAILS)[number];

const SIZE_RANK = { large: 0, small: 1 } as const;

function byReadingOrder(a: SceneObject, b: SceneObject): number {
  return a.cell.row - b.cell.row || a.cell.column - b.cell.column;
}
function byColumnThenRow(a: SceneObject, b: SceneObject): number {
  return a.cell.column - b.cell.column || a.cell.row - b.cell.row;
}
function byLargeFirst(a: SceneObject, b: SceneObject): number {
  return SIZE_RANK[a.size] - SIZE_RANK[b.size] || byReadingOrder(a, b);
}

/** Count the objects per description, in order of first appearance: ["two red circles", "a blue square"]. */
function countedPhrases(objects: SceneObject[], describe: (object: SceneObject) => Descriptor): string[] {
  const groups = new Map<string, { descriptor: Descriptor; count: number }>();
  for (const object of objects) {
    const descriptor = describe(object);
    const key = JSON.stringify(descriptor);
    const group = groups.get(key) ?? { descriptor, count: 0 };
    group.count++;
    groups.set(key, group);
  }
  return [...groups.values()].map(({ descriptor, count }) => countedNounPhrase(count, descriptor));
}

function objectPhrases(objects: SceneObject[], detail: Detail): string[] {
  switch (detail) {
    case 'size colour shape':
      return countedPhrases(objects, (o) => ({ size: o.size, colour: o.colour, shape: o.shape }));
    case 'colour shape':
      return countedPhrases(objects, (o) => ({ colour: o.colour, shape: o.shape }));
    case 'shape':
      return countedPhrases(objects, (o) => ({ shape: o.shape }));
    case 'total':
      return [countedNounPhrase(objects.length, {})];
  }
}

/** "a red circle", "a red circle and a blue square", "a red circle a blue square and a green star" (no commas). */
function joinList(phrases: string[]): string {
  return phrases.length === 1 ? phrases[0]! : `${phrases.slice(0, -1).join(' ')} and ${phrases.at(-1)!}`;
}

function wordCount(text: string): number {
  return text.split(' ').length;
}

/** The most detailed caption, starting at `mostDetail`, that fits in MAX_CAPTION_WORDS. */
function fitted(mostDetail: Detail, caption: (detail: Detail) => string): string {
  const details = DETAILS.slice(DETAILS.indexOf(mostDetail));
  for (const detail of details) {
    const text = caption(detail);
    if (wordCount(text) <= MAX_CAPTION_WORDS) return text;
  }
  throw new Error(`caption does not fit in ${MAX_CAPTION_WORDS} words: ${caption('total')}`);
}

function location(cell: Cell): string {
  const vertical = cell.row === 0 ? ['top'] : cell.row === GRID_SIZE - 1 ? ['bottom'] : [];
  const horizontal = cell.column === 0 ? ['left'] : cell.column === GRID_SIZE - 1 ? ['right'] : [];
  const words = [...vertical, ...horizontal];
  return words.length === 0 ? 'in the center' : `at the ${words.join(' ')}`;
}

/** One object placed relative to another (or in the image, if it is alone), the rest counted. */
function relationCaption(objects: SceneObject[]): string {
  const describe = (o: SceneObject): string => countedNounPhrase(1, o);
  const [first, ...rest] = objects.slice().sort(byReadingOrder) as [SceneObject, ...SceneObject[]];
  if (rest.length === 0) return `${describe(first)} ${location(first.cell)}`;
  // Reading order puts `first` above or left of everything in its column; prefer a left/right pair.
  const partner = rest.find((o) => o.cell.column !== first.cell.column) ?? rest[0]!;
  const relation =
    partner.cell.column === first.cell.column ? 'above' : partner.cell.column > first.cell.column ? 'left of' : 'right of';
  const others = objects.length - 2;
  const remainder = others === 0 ? '' : ` and ${countWord(others)} other ${others === 1 ? 'shape' : 'shapes'}`;
  return `${describe(first)} ${relation} ${describe(partner)}${remainder}`;
}

export function sceneCaptions(scene: Scene): string[] {
  const { objects } = scene;
  const block = scene.occluder ? ['a grey block'] : [];
  const near = (text: string, preposition: string): string => (scene.occluder ? `${text} ${preposition} a grey block` : text);
  const readingOrder = objects.slice().sort(byReadingOrder);
  const leftToRight = objects.slice().sort(byColumnThenRow);
  const largeFirst = objects.slice().sort(byLargeFirst);
  return [
    fitted('size colour shape', (detail) => joinList([...objectPhrases(readingOrder, detail), ...block])),
    fitted('colour shape', (detail) => {
      const phrases = objectPhrases(leftToRight, detail);
      // The verb agrees with the first item: "there are two circles and a square".
      const verb = phrases[0]!.startsWith('a ') ? 'is' : 'are';
      return near(`there ${verb} ${joinList(phrases)}`, 'next to');
    }),
    near(`${countedNounPhrase(objects.length, {})} on a dark background`, 'with'),
    fitted('shape', (detail) => `a picture with ${joinList([...objectPhrases(readingOrder, detail), ...block])}`),
    near(relationCaption(objects), 'near'),
    fitted('size colour shape', (detail) => `the image shows ${joinList([...objectPhrases(largeFirst, detail), ...block])}`),
  ];
}
