// English surface forms shared by hypotheses and captions.
import type { Colour, Shape, Size } from './scene.js';

// Up to six: scenes never show more visible objects.
export const COUNT_WORDS = ['one', 'two', 'three', 'four', 'five', 'six'] as const;

export function countWord(count: number): string {
  const word = COUNT_WORDS[count - 1];
  if (word === undefined) throw new RangeError(`no count word for ${count}`);
  return word;
}

export function pluralShape(shape: Shape): string {
  return shape === 'cross' ? 'crosses' : `${shape}s`;
}

/** Which objects a noun phrase picks out; an absent attribute matches anything. */
export interface Descriptor {
  shape?: Shape;
  colour?: Colour;
  size?: Size;
}

/** "small red circle", "red shape"; with `plural`, "small red circles", "red shapes". */
export function nounPhrase(descriptor: Descriptor, plural = false): string {
  const noun = descriptor.shape ? (plural ? pluralShape(descriptor.shape) : descriptor.shape) : plural ? 'shapes' : 'shape';
  return [descriptor.size, descriptor.colour, noun].filter((word) => word !== undefined).join(' ');
}

/** "a red circle" or "three red circles". Every SceneWorld noun starts with a consonant, so "a" is always right. */
export function countedNounPhrase(count: number, descriptor: Descriptor): string {
  return count === 1 ? `a ${nounPhrase(descriptor)}` : `${countWord(count)} ${nounPhrase(descriptor, true)}`;
}
