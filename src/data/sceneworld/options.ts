// Options shared by every SceneWorld generator, and their validation.

export const SPLITS = ['train', 'validation', 'test'] as const;
export type Split = (typeof SPLITS)[number];

export interface SceneWorldOptions {
  split: Split;
  seed: number;
  /** Side of the square RGB images in pixels; default 64. The scenes do not depend on it. */
  imageSize?: number;
  /**
   * Chance that a scene has a grey occluder; default 0.4. Visual-entailment scenes labelled
   * "maybe" always have one, since only the occluder makes a hypothesis undecidable.
   */
  occluderProbability?: number;
}

export const DEFAULT_IMAGE_SIZE = 64;
export const DEFAULT_OCCLUDER_PROBABILITY = 0.4;
/** Below this the small shapes are only a few pixels wide and no longer recognisable. */
export const MIN_IMAGE_SIZE = 32;

export type ResolvedOptions = Required<SceneWorldOptions>;

export function resolveOptions(options: SceneWorldOptions): ResolvedOptions {
  const { split, seed } = options;
  const imageSize = options.imageSize ?? DEFAULT_IMAGE_SIZE;
  const occluderProbability = options.occluderProbability ?? DEFAULT_OCCLUDER_PROBABILITY;
  if (!SPLITS.includes(split)) throw new Error(`SceneWorld split must be one of ${SPLITS.join(', ')}, got ${JSON.stringify(split)}`);
  if (!Number.isSafeInteger(seed)) throw new Error(`SceneWorld seed must be an integer, got ${seed}`);
  if (!Number.isInteger(imageSize) || imageSize < MIN_IMAGE_SIZE) {
    throw new Error(`SceneWorld image size must be an integer of at least ${MIN_IMAGE_SIZE} pixels, got ${imageSize}`);
  }
  if (!(occluderProbability >= 0 && occluderProbability <= 1)) {
    throw new Error(`SceneWorld occluder probability must be between 0 and 1, got ${occluderProbability}`);
  }
  return { split, seed, imageSize, occluderProbability };
}

export function checkIndex(index: number): void {
  if (!Number.isSafeInteger(index) || index < 0) throw new Error(`SceneWorld example index must be a non-negative integer, got ${index}`);
}
