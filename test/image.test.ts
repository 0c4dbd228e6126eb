// The sharp input pipeline: formats, colour handling, resize policy, limits and bad files.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import sharp from 'sharp';
import { loadImage, loadImageFile } from '../src/data/image.js';
import { normaliseImage } from '../src/data/preprocess.js';
import { veExample } from '../src/data/sceneworld.js';

const workDir = mkdtempSync(join(tmpdir(), 'mue-image-'));
after(() => rmSync(workDir, { recursive: true, force: true }));

const raw = (pixels: Uint8Array, width: number, height: number, channels: 1 | 3 | 4) => sharp(Buffer.from(pixels), { raw: { width, height, channels } });
const scene = veExample(0, { split: 'test', seed: 1, imageSize: 32 }).image;
const rejection = async (promise: Promise<unknown>): Promise<string> => {
  try {
    await promise;
  } catch (error) {
    return (error as Error).message;
  }
  return assert.fail('expected a rejection');
};

test('PNG and lossless WebP at the model size come back pixel for pixel; JPEG within compression error', async () => {
  for (const format of ['png', 'webp'] as const) {
    const bytes = await raw(scene.pixels, 32, 32, 3)[format](format === 'webp' ? { lossless: true } : {}).toBuffer();
    assert.deepEqual(await loadImage(bytes, 32, format), scene, format);
  }
  const jpeg = await raw(scene.pixels, 32, 32, 3).jpeg({ quality: 95 }).toBuffer();
  const decoded = await loadImage(jpeg, 32, 'jpeg');
  const meanError = decoded.pixels.reduce((sum, value, i) => sum + Math.abs(value - scene.pixels[i]!), 0) / decoded.pixels.length;
  assert.ok(meanError < 4, `mean absolute error ${meanError}`);
});

test('grey is expanded to three equal channels and alpha is dropped', async () => {
  const grey = await raw(new Uint8Array(8 * 8).fill(90), 8, 8, 1).png().toBuffer();
  assert.deepEqual([...(await loadImage(grey, 4, 'grey')).pixels], new Array(4 * 4 * 3).fill(90));
  const rgba = new Uint8Array(8 * 8 * 4);
  for (let i = 0; i < rgba.length; i += 4) rgba.set([10, 20, 30, i % 8 === 0 ? 0 : 128], i);
  const image = await loadImage(await raw(rgba, 8, 8, 4).png().toBuffer(), 8, 'rgba');
  assert.deepEqual([...image.pixels.slice(0, 6)], [10, 20, 30, 10, 20, 30]);
  assert.equal(image.pixels.length, 8 * 8 * 3);
});

test('resize policy: shorter side to the input size, longer side centre-cropped', async () => {
  // 30 wide × 10 high: left third red, middle green, right blue; the square crop keeps the middle.
  const pixels = new Uint8Array(30 * 10 * 3);
  for (let y = 0; y < 10; y++) for (let x = 0; x < 30; x++) pixels.set(x < 10 ? [255, 0, 0] : x < 20 ? [0, 255, 0] : [0, 0, 255], (y * 30 + x) * 3);
  const image = await loadImage(await raw(pixels, 30, 10, 3).png().toBuffer(), 10, 'wide');
  assert.equal(image.width, 10);
  assert.equal(image.height, 10);
  for (let i = 0; i < image.pixels.length; i += 3) assert.deepEqual([...image.pixels.slice(i, i + 3)], [0, 255, 0]);
  // Small images are scaled up to the model size; the result feeds the one normalisation.
  const up = await loadImage(await raw(new Uint8Array(4 * 4 * 3).fill(255), 4, 4, 3).png().toBuffer(), 16, 'small');
  assert.deepEqual([...normaliseImage(up, 16).slice(0, 3)], [1, 1, 1]);
});

test('decompression bombs, oversized files, truncated, corrupt and unsupported files are refused with the reason', async () => {
  const large = await sharp({ create: { width: 3000, height: 3000, channels: 3, background: 'white' } }).png().toBuffer();
  assert.ok(large.length < 200_000, 'the bomb is small on disk');
  assert.match(await rejection(loadImage(large, 32, 'bomb.png', { maxBytes: 1e9, maxPixels: 4_000_000 })), /bomb\.png: image is 3000×3000 = 9000000 pixels, more than the limit of 4000000/);
  assert.match(await rejection(loadImage(large, 32, 'big.png', { maxBytes: 1000, maxPixels: 1e9 })), /big\.png: image file is \d+ bytes, more than the limit of 1000/);
  const png = await raw(scene.pixels, 32, 32, 3).png().toBuffer();
  assert.match(await rejection(loadImage(png.subarray(0, png.length - 30), 32, 'cut.png')), /cut\.png: cannot decode png image \(.*libpng read error/);
  const jpeg = await raw(scene.pixels, 32, 32, 3).jpeg().toBuffer();
  assert.match(await rejection(loadImage(jpeg.subarray(0, jpeg.length / 2), 32, 'cut.jpg')), /cut\.jpg: .*premature end of JPEG/);
  assert.match(await rejection(loadImage(Buffer.from('not an image at all'), 32, 'text.jpg')), /text\.jpg: not a readable image \(.*unsupported image format/);
  assert.match(await rejection(loadImage(Buffer.alloc(0), 32, 'empty.png')), /empty\.png: image file is empty/);
  const gif = await raw(scene.pixels, 32, 32, 3).gif().toBuffer();
  assert.match(await rejection(loadImage(gif, 32, 'anim.gif')), /gif images are not supported \(JPEG, PNG or WebP\)/);
});

test('files: size checked before reading, missing files named, no temporary files left', async () => {
  const path = join(workDir, 'scene.png');
  writeFileSync(path, await raw(scene.pixels, 32, 32, 3).png().toBuffer());
  assert.deepEqual(await loadImageFile(path, 32), scene);
  assert.match(await rejection(loadImageFile(path, 32, { maxBytes: 10, maxPixels: 1e6 })), /cannot read image .*scene\.png: larger than the limit of 10 bytes/);
  assert.match(await rejection(loadImageFile(join(workDir, 'missing.jpg'), 32)), /cannot read image .*missing\.jpg: file not found/);
  assert.deepEqual(readdirSync(workDir), ['scene.png']);
});
