// Input preprocessing shared by training, evaluation, the runtime and the server:
// one place decides how pixels are normalised and how text becomes ids.
import type { TextTokenizer } from './tokenizer.js';

export interface RgbPixels { width: number; height: number; pixels: Uint8Array }

/** How an image becomes the model's size × size input: 'cover' keeps the aspect ratio and crops the centre, 'fill' stretches. */
export interface ImageResize { size: number; fit: 'cover' | 'fill'; kernel: 'lanczos3' | 'cubic' }
/** A side length (mue's policy: cover, lanczos3) or a full resize policy. */
export type ImageTarget = number | ImageResize;

/**
 * OFA's preprocessing (ARCHITECTURE.md §14): both sides to S, aspect ratio not kept, bicubic, EXIF
 * orientation ignored (PIL's Image.open does not apply it).
 * sharp's 'cubic' is the Catmull-Rom cubic (a = −0.5) as PIL's BICUBIC, and libvips filters when
 * shrinking as PIL does; the two resamplers still differ in rounding and edge handling, so pixels
 * may differ by a few levels from PIL's.
 */
export const ofaImageResize = (size: number): ImageResize => ({ size, fit: 'fill', kernel: 'cubic' });

export const resizeOf = (target: ImageTarget): ImageResize => (typeof target === 'number' ? { size: target, fit: 'cover', kernel: 'lanczos3' } : target);

/** RGB bytes (H, W, 3) -> float32 in [-1, 1]: x / 127.5 − 1. Refuses any other size. */
export function normaliseImage(image: RgbPixels, imageSize: number): Float32Array {
  if (image.width !== imageSize || image.height !== imageSize) {
    throw new Error(`image is ${image.width}×${image.height} but the model expects ${imageSize}×${imageSize} RGB`);
  }
  if (image.pixels.length !== imageSize * imageSize * 3) {
    throw new Error(`image has ${image.pixels.length} bytes, expected ${imageSize * imageSize * 3} (${imageSize}×${imageSize}×3 RGB)`);
  }
  const normalised = new Float32Array(image.pixels.length);
  for (let i = 0; i < normalised.length; i++) normalised[i] = image.pixels[i]! / 127.5 - 1;
  return normalised;
}

/** Text -> ids for the encoder's text stream (unknown words map to <unk>); refuses empty or too-long text. */
export function encodeText(tokenizer: TextTokenizer, text: string, maxLength: number): number[] {
  const ids = tokenizer.encode(text);
  if (ids.length === 0) throw new Error('text is empty');
  if (ids.length > maxLength) throw new Error(`text has ${ids.length} tokens but the model takes at most ${maxLength}`);
  return ids;
}
