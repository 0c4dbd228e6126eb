// COCO captions in the Karpathy split: DIR/dataset_coco.json (one JSON object: images[] with
// filepath, filename, split and sentences[].raw) and the images at DIR/<filepath>/<filename>.
// One record per image with all its reference captions. The file (~140 MB for COCO) is one
// JSON object, so it is parsed whole — refused above MAX_KARPATHY_BYTES with a clear error
// rather than running the process out of memory; images are decoded one at a time.
import { existsSync } from 'node:fs';
import { readFileBounded } from './boundedRead.js';
import { join } from 'node:path';
import type { DataSource, TaskRecord } from './dataSource.js';
import { loadImageFile } from './image.js';
import type { Split } from './sceneworld.js';

export const KARPATHY_FILE = 'dataset_coco.json';
export const MAX_KARPATHY_BYTES = 256 * 1024 * 1024; // JSON.parse of a larger file needs several GB of heap
/** restval is the part of val2014 Karpathy moved into training. */
const KARPATHY_SPLITS: Record<Split, readonly string[]> = { train: ['train', 'restval'], validation: ['val'], test: ['test'] };

interface KarpathyImage { file: string; id: string; references: string[]; split: string }

export function cocoSource(directory: string): DataSource {
  let images: KarpathyImage[] | undefined; // parsed on first use: constructing a source reads nothing
  const split = (name: Split) => (images ??= readKarpathy(directory)).filter((image) => KARPATHY_SPLITS[name].includes(image.split));
  return {
    name: `COCO captions (Karpathy split) in ${directory}`,
    task: 'caption',
    async *records(name, imageSize, skip = 0) {
      for (const image of split(name).slice(skip)) {
        const record: TaskRecord = { id: image.id, image: await loadImageFile(join(directory, image.file), imageSize), hypothesis: '', references: image.references, group: 'coco' };
        yield record;
      }
    },
    size: async (name) => split(name).length,
  };
}

function readKarpathy(directory: string): KarpathyImage[] {
  const path = join(directory, KARPATHY_FILE);
  if (!existsSync(path)) throw new Error(`COCO: ${path} does not exist (expected the Karpathy split file ${KARPATHY_FILE} in ${directory})`);
  let text: string;
  try {
    text = readFileBounded(path, MAX_KARPATHY_BYTES).toString('utf8');
  } catch (error) {
    throw new Error(`COCO: cannot read ${path}: ${(error as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`COCO: ${path} is not valid JSON (${(error as Error).message})`);
  }
  const images = (json as { images?: unknown }).images;
  if (!Array.isArray(images)) throw new Error(`COCO: ${path} has no "images" array`);
  return images.map((raw: unknown, index) => {
    const image = raw as { filepath?: unknown; filename?: unknown; split?: unknown; sentences?: unknown; cocoid?: unknown; imgid?: unknown };
    const where = `${path}: images[${index}]`;
    if (typeof image.filename !== 'string' || typeof image.split !== 'string') throw new Error(`${where} lacks "filename" or "split"`);
    if (!Array.isArray(image.sentences) || image.sentences.length === 0 || image.sentences.some((s: { raw?: unknown }) => typeof s?.raw !== 'string')) {
      throw new Error(`${where} needs "sentences" with a "raw" caption each`);
    }
    return {
      file: typeof image.filepath === 'string' ? join(image.filepath, image.filename) : image.filename,
      id: String(image.cocoid ?? image.imgid ?? image.filename),
      references: image.sentences.map((s: { raw: string }) => s.raw.trim()),
      split: image.split,
    };
  });
}
