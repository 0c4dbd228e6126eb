// PNG files for RgbImage, via pngjs (pure JavaScript, no native build).
import { PNG } from 'pngjs';
import type { RgbImage } from './sceneworld/rgb-image.js';

/** Encode as an 8-bit RGB PNG (no alpha channel, so files stay small). */
export function encodePng(image: RgbImage): Buffer {
  const { width, height, pixels } = image;
  if (pixels.length !== width * height * 3) {
    throw new Error(`encodePng: expected ${width * height * 3} bytes for a ${width}x${height} RGB image, got ${pixels.length}`);
  }
  const png = new PNG({ width, height, colorType: 2, inputColorType: 2, inputHasAlpha: false, bitDepth: 8 });
  png.data = Buffer.from(pixels.buffer, pixels.byteOffset, pixels.length);
  return PNG.sync.write(png, { colorType: 2, inputColorType: 2, inputHasAlpha: false });
}

/** Decode any PNG to RGB; an alpha channel, if present, is dropped (not composited). */
export function decodePng(data: Buffer): RgbImage {
  const png = PNG.sync.read(data); // always RGBA, 8 bits per channel
  const pixels = new Uint8Array(png.width * png.height * 3);
  for (let source = 0, target = 0; target < pixels.length; source += 4, target += 3) {
    pixels[target] = png.data[source]!;
    pixels[target + 1] = png.data[source + 1]!;
    pixels[target + 2] = png.data[source + 2]!;
  }
  return { width: png.width, height: png.height, pixels };
}
