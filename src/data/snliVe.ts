// SNLI-VE (visual entailment on Flickr30k) in its two published layouts, streamed line by
// line (node:readline over a file stream) so multi-GB files are never held in memory:
//   - OFA TSV: snli_ve_{train,dev,test}.tsv, one example per line with the columns
//     unique id, image id, base64 image, hypothesis, caption (premise), label;
//   - original JSONL: snli_ve_{train,dev,test}.jsonl (fields Flikr30kID — sic — or
//     Flickr30K_ID, sentence1 = premise, sentence2 = hypothesis, gold_label, pairID) + the Flickr30k images in
//     flickr30k_images/ (or flickr30k-images/).
// Gold labels map entailment / neutral / contradiction -> yes / maybe / no. The premise is kept:
// the official runs ask ` can image and text1 " {premise} " imply text2 " {hypothesis} "?`.
import { createReadStream, existsSync } from 'node:fs';
import { extname, join } from 'node:path';
import { createInterface } from 'node:readline';
import type { DataSource, TaskRecord } from './dataSource.js';
import { loadImage, loadImageFile, type ImageTarget } from './image.js';
import type { EntailmentLabel, Split } from './sceneworld.js';

export const SNLI_VE_LABELS: Readonly<Record<string, EntailmentLabel>> = { entailment: 'yes', neutral: 'maybe', contradiction: 'no' };
const FILE_SPLIT: Record<Split, string> = { train: 'train', validation: 'dev', test: 'test' };
const IMAGE_FOLDERS = ['flickr30k_images', 'flickr30k-images'];

/** Non-empty lines of a text file with their 1-based numbers, read as a stream. */
export async function* readLines(path: string): AsyncGenerator<{ line: string; number: number }> {
  const input = createReadStream(path, { encoding: 'utf8' });
  const lines = createInterface({ input, crlfDelay: Infinity });
  let number = 0;
  try {
    for await (const line of lines) {
      number++;
      if (line.trim().length > 0) yield { line, number };
    }
  } finally {
    // Closing readline only pauses its input: destroy the stream so an early stop frees the file.
    lines.close();
    input.destroy();
  }
}

/** One example before its image is decoded, so skipped rows cost no decoding. */
interface SnliVeRow { id: string; hypothesis: string; premise: string; label: EntailmentLabel; gold: string; image: () => Promise<TaskRecord['image']> }

export function snliVeSource(directory: string): DataSource {
  const fileOf = (split: Split, extension: 'tsv' | 'jsonl') => join(directory, `snli_ve_${FILE_SPLIT[split]}.${extension}`);
  const layout = existsSync(fileOf('train', 'tsv')) || existsSync(fileOf('test', 'tsv')) ? 'tsv' : 'jsonl';
  const imageFolder = IMAGE_FOLDERS.map((name) => join(directory, name)).find((folder) => existsSync(folder));

  const rows = (split: Split, imageSize: ImageTarget): AsyncGenerator<SnliVeRow> => {
    const path = fileOf(split, layout);
    if (!existsSync(path)) throw new Error(`SNLI-VE: ${path} does not exist (expected snli_ve_{train,dev,test}.tsv or .jsonl in ${directory})`);
    return layout === 'tsv' ? tsvRows(path, imageSize) : jsonlRows(path, imageSize, imageFolder ?? join(directory, IMAGE_FOLDERS[0]!));
  };
  return {
    name: `SNLI-VE (${layout === 'tsv' ? 'OFA TSV' : 'JSONL + Flickr30k images'}) in ${directory}`,
    task: 've',
    async *records(split, imageSize, skip = 0) {
      let index = 0;
      for await (const row of rows(split, imageSize)) {
        if (index++ < skip) continue;
        yield { id: row.id, image: await row.image(), hypothesis: row.hypothesis, premise: row.premise, label: row.label, group: row.gold };
      }
    },
    async size(split) {
      let count = 0;
      for await (const _ of rows(split, 1)) count++;
      return count;
    },
  };
}

function label(gold: unknown, where: string): { label: EntailmentLabel; gold: string } {
  const mapped = typeof gold === 'string' ? SNLI_VE_LABELS[gold.trim().toLowerCase()] : undefined;
  if (!mapped) throw new Error(`${where}: label ${JSON.stringify(gold)} is not entailment, neutral or contradiction`);
  return { label: mapped, gold: (gold as string).trim().toLowerCase() };
}

async function* tsvRows(path: string, imageSize: ImageTarget): AsyncGenerator<SnliVeRow> {
  for await (const { line, number } of readLines(path)) {
    const where = `${path}:${number}`;
    const columns = line.split('\t');
    if (columns.length !== 6) throw new Error(`${where}: expected 6 tab-separated columns (unique id, image id, base64 image, hypothesis, caption, label), got ${columns.length}`);
    const [uniqueId, imageId, base64, hypothesis, premise] = columns as [string, string, string, string, string];
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64)) throw new Error(`${where}: the image column is not base64`);
    yield {
      id: uniqueId, hypothesis, premise, ...label(columns[5], where),
      image: () => loadImage(Buffer.from(base64, 'base64'), imageSize, `${where} (image ${imageId})`),
    };
  }
}

async function* jsonlRows(path: string, imageSize: ImageTarget, imageFolder: string): AsyncGenerator<SnliVeRow> {
  for await (const { line, number } of readLines(path)) {
    const where = `${path}:${number}`;
    let row: Record<string, unknown>;
    try {
      row = JSON.parse(line) as Record<string, unknown>;
    } catch (error) {
      throw new Error(`${where}: not valid JSON (${(error as Error).message})`);
    }
    const imageId = row.Flikr30kID ?? row.Flickr30K_ID;
    if (typeof imageId !== 'string' && typeof imageId !== 'number') throw new Error(`${where}: missing Flikr30kID / Flickr30K_ID`);
    if (typeof row.sentence2 !== 'string') throw new Error(`${where}: missing sentence2 (the hypothesis)`);
    if (typeof row.sentence1 !== 'string') throw new Error(`${where}: missing sentence1 (the premise)`);
    const file = extname(String(imageId)) ? String(imageId) : `${imageId}.jpg`;
    yield {
      id: typeof row.pairID === 'string' ? row.pairID : `${file}#${number}`, hypothesis: row.sentence2, premise: row.sentence1, ...label(row.gold_label, where),
      image: () => loadImageFile(join(imageFolder, file), imageSize),
    };
  }
}
