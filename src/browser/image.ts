// Pictures in the page (<img>, <canvas>, ImageBitmap, File/Blob, ImageData) -> the RGB bytes the
// model takes, with the Node path's policy (src/data/image.ts): for mue's models scale the shorter
// side to the input size and centre-crop the longer one ("cover"; a plain size as the target), for
// OFA models stretch the whole image (MuEModel.imageResize, fit "fill"); alpha dropped. Resampling is the browser's
// (imageSmoothingQuality "high"), not sharp's lanczos3: the bytes differ slightly from Node's
// (measured in test/browser-runtime.test.ts and stated in the README).
import { type ImageTarget, resizeOf, type RgbPixels } from '../data/preprocess.js';

export type ImageInput = HTMLImageElement | HTMLCanvasElement | OffscreenCanvas | ImageBitmap | Blob | ImageData;

/** Any page image -> size×size RGB bytes (target: a side length, or a model's imageResize). */
export async function readImage(source: ImageInput, target: ImageTarget): Promise<RgbPixels> {
  const { size, fit } = resizeOf(target);
  // Workers have no HTMLImageElement: test for it before instanceof.
  const isImageElement = (value: unknown): value is HTMLImageElement => typeof HTMLImageElement !== 'undefined' && value instanceof HTMLImageElement;
  if (isImageElement(source) && !source.complete) await source.decode();
  // Files are decoded with their EXIF orientation applied, as sharp's rotate() does.
  const drawable = source instanceof Blob ? await createImageBitmap(source, { imageOrientation: 'from-image' })
    : source instanceof ImageData ? await createImageBitmap(source) : source;
  const width = isImageElement(drawable) ? drawable.naturalWidth : drawable.width;
  const height = isImageElement(drawable) ? drawable.naturalHeight : drawable.height;
  if (!width || !height) throw new Error('the image is empty (0×0) or not loaded');
  const canvas = new OffscreenCanvas(size, size);
  const context = canvas.getContext('2d', { willReadFrequently: true })!;
  context.imageSmoothingEnabled = true;
  context.imageSmoothingQuality = 'high';
  if (fit === 'fill') {
    // The whole image stretched to size×size (OFA models; the canvas's 'high' smoothing, not exactly sharp's bicubic).
    context.drawImage(drawable, 0, 0, width, height, 0, 0, size, size);
  } else {
    // Centre square of the shorter side, scaled to size×size.
    const side = Math.min(width, height);
    context.drawImage(drawable, (width - side) / 2, (height - side) / 2, side, side, 0, 0, size, size);
  }
  const rgba = context.getImageData(0, 0, size, size).data; // (size, size, 4)
  const pixels = new Uint8Array(size * size * 3); // (size, size, 3)
  for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
    pixels[j] = rgba[i]!;
    pixels[j + 1] = rgba[i + 1]!;
    pixels[j + 2] = rgba[i + 2]!;
  }
  return { width: size, height: size, pixels };
}
