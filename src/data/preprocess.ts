// Input preprocessing shared by training, evaluation, the runtime and the server:
// one place decides how pixels are normalised and how text becomes ids.
import type { TextTokenizer } from './tokenizer.js';

export interface RgbPixels { width: number; height: number; pixels: Uint8Array }

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
