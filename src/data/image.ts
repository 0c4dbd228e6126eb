// Photos in any common format -> RGB pixels at the model's input size, via sharp (libvips).
// Training on real data sets, `mue predict`, the server and evaluation all call loadImage;
// its output then goes through normaliseImage, so there is one resize policy and one
// normalisation. Decoding works on in-memory buffers only: no temporary files are written.
//
// Resize policy of mue's own models (a plain number as the target): scale so the SHORTER side
// equals the input size (bicubic-family "lanczos3", sharp's default), then centre-crop the longer
// side ("cover"), EXIF orientation applied. Aspect ratio is kept; the margins of the longer side are
// lost. OFA models (ofaImageResize, fit "fill") stretch both sides to the input size with a bicubic
// filter, as OFA's Resize((S, S), BICUBIC) does, and like PIL ignore EXIF orientation. Images
// smaller than the input size are scaled up.
import { readFileBounded } from './boundedRead.js';
import sharp from 'sharp';
import { type ImageTarget, resizeOf, type RgbPixels } from './preprocess.js';

export { type ImageResize, type ImageTarget, ofaImageResize, resizeOf } from './preprocess.js';

export interface ImageLimits {
  /** Largest encoded file accepted, in bytes. */
  maxBytes: number;
  /** Largest decoded image accepted (width × height), checked from the header before decoding (decompression bombs). */
  maxPixels: number;
}

/** 32 MB and 50 megapixels: any camera photo passes, a 1-GB-when-decoded PNG does not. */
export const DEFAULT_IMAGE_LIMITS: ImageLimits = { maxBytes: 32 * 1024 * 1024, maxPixels: 50_000_000 };

const FORMATS = new Set(['jpeg', 'png', 'webp']);


/**
 * Decodes a JPEG, PNG or WebP image and returns `size`×`size` RGB bytes resized by the target's
 * policy: alpha is dropped (composited over black is NOT done — the colour channels are kept as
 * stored), grey is expanded to three equal channels, EXIF orientation is applied under mue's policy
 * (not OFA's). `source` names the image in errors.
 */
export async function loadImage(bytes: Uint8Array, target: ImageTarget, source: string, limits: ImageLimits = DEFAULT_IMAGE_LIMITS): Promise<RgbPixels> {
  const { size, fit, kernel } = resizeOf(target);
  if (bytes.length > limits.maxBytes) throw new Error(`${source}: image file is ${bytes.length} bytes, more than the limit of ${limits.maxBytes}`);
  if (bytes.length === 0) throw new Error(`${source}: image file is empty`);
  let format: string | undefined;
  let width = 0;
  let height = 0;
  try {
    ({ format, width = 0, height = 0 } = await sharp(bytes).metadata());
  } catch (error) {
    throw new Error(`${source}: not a readable image (${decoderReason(error)})`);
  }
  if (!format || !FORMATS.has(format)) throw new Error(`${source}: ${format ?? 'unknown'} images are not supported (JPEG, PNG or WebP)`);
  if (width * height > limits.maxPixels) {
    throw new Error(`${source}: image is ${width}×${height} = ${width * height} pixels, more than the limit of ${limits.maxPixels}`);
  }
  try {
    // failOn 'truncated': a cut-off file is an error, not a half-grey picture.
    const decoded = sharp(bytes, { failOn: 'truncated', limitInputPixels: limits.maxPixels });
    // OFA's preprocessing (PIL's open + convert) ignores EXIF orientation and resamples the full
    // decoded image: no rotation, no shrink-on-load of JPEGs in the DCT domain.
    const ofaLike = fit === 'fill';
    const { data, info } = await (ofaLike ? decoded : decoded.rotate())
      .removeAlpha()
      .toColourspace('srgb')
      .resize(size, size, { fit, position: 'centre', kernel, fastShrinkOnLoad: !ofaLike })
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3 || info.width !== size || info.height !== size) throw new Error(`decoder returned ${info.width}×${info.height}×${info.channels}`);
    return { width: size, height: size, pixels: new Uint8Array(data.buffer, data.byteOffset, data.length) };
  } catch (error) {
    throw new Error(`${source}: cannot decode ${format} image (${decoderReason(error)})`);
  }
}

/** libvips reports one line per warning, often repeated; keep each distinct line once, on one line. */
const decoderReason = (error: unknown): string => [...new Set((error as Error).message.split('\n').map((line) => line.trim()).filter(Boolean))].join('; ');

/**
 * An image file's bytes, read with the byte limit whatever the path is (regular file, device,
 * FIFO or pipe: see boundedRead.ts); a FIFO that stays silent fails after a few seconds.
 */
export function readImageFile(path: string, limits: ImageLimits = DEFAULT_IMAGE_LIMITS): Buffer {
  try {
    return readFileBounded(path, limits.maxBytes);
  } catch (error) {
    throw new Error(`cannot read image ${path}: ${(error as Error).message}`);
  }
}

/** loadImage on a file read by readImageFile. */
export async function loadImageFile(path: string, target: ImageTarget, limits: ImageLimits = DEFAULT_IMAGE_LIMITS): Promise<RgbPixels> {
  return loadImage(readImageFile(path, limits), target, path, limits);
}
