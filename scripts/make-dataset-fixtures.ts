// Packs a handful of small SceneWorld images into each real data set layout the loaders read,
// so the loaders are tested on files in the published formats (the real data sets cannot be
// downloaded here). Usage: node --import tsx scripts/make-dataset-fixtures.ts [OUT_DIR]
// (default test/fixtures/datasets). Writes:
//   snli-ve-tsv/snli_ve_{train,dev,test}.tsv      OFA layout, PNG images in base64
//   snli-ve-jsonl/snli_ve_{train,dev,test}.jsonl  original layout + flickr30k_images/<id>.jpg (JPEG)
//   coco/dataset_coco.json + train2014/, val2014/  Karpathy split, PNG images
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import sharp from 'sharp';
import { captionExample, veExample, type CaptionExample, type Split, type VeExample } from '../src/data/sceneworld.js';
import { writeFileAtomic } from '../src/model/atomicWrite.js';

export const FIXTURE_IMAGE_SIZE = 32;
const GOLD = { yes: 'entailment', maybe: 'neutral', no: 'contradiction' } as const;
const SNLI_SPLITS: Array<[Split, string, number]> = [['train', 'train', 6], ['validation', 'dev', 3], ['test', 'test', 3]];
/** Karpathy split name, its COCO folder, how many images. */
const KARPATHY_SPLITS: Array<[string, Split, string, number]> = [['train', 'train', 'train2014', 3], ['restval', 'train', 'val2014', 2], ['val', 'validation', 'val2014', 2], ['test', 'test', 'val2014', 2]];

export interface SnliFixtureRow { split: Split; fileSplit: string; flickrId: number; example: VeExample }
export interface CocoFixtureImage { karpathySplit: string; split: Split; folder: string; cocoId: number; example: CaptionExample }

export function snliFixtureRows(): SnliFixtureRow[] {
  return SNLI_SPLITS.flatMap(([split, fileSplit, count]) =>
    Array.from({ length: count }, (_, i) => ({ split, fileSplit, flickrId: 1000 + 10 * SNLI_SPLITS.findIndex((s) => s[0] === split) + i, example: veExample(i, { split, seed: 1, imageSize: FIXTURE_IMAGE_SIZE }) })));
}

export function cocoFixtureImages(): CocoFixtureImage[] {
  let cocoId = 500;
  return KARPATHY_SPLITS.flatMap(([karpathySplit, split, folder, count], s) =>
    Array.from({ length: count }, (_, i) => ({ karpathySplit, split, folder, cocoId: cocoId++, example: captionExample(10 * s + i, { split, seed: 1, imageSize: FIXTURE_IMAGE_SIZE }) })));
}

const encode = (image: VeExample['image'], format: 'png' | 'jpeg') =>
  sharp(Buffer.from(image.pixels), { raw: { width: image.width, height: image.height, channels: 3 } })[format](format === 'jpeg' ? { quality: 95 } : {}).toBuffer();

export async function writeDatasetFixtures(out: string): Promise<void> {
  const rows = snliFixtureRows();
  const tsvDir = join(out, 'snli-ve-tsv');
  const jsonlDir = join(out, 'snli-ve-jsonl');
  mkdirSync(tsvDir, { recursive: true });
  mkdirSync(join(jsonlDir, 'flickr30k_images'), { recursive: true });
  for (const [split, fileSplit] of SNLI_SPLITS) {
    const tsv: string[] = [];
    const jsonl: string[] = [];
    for (const row of rows.filter((r) => r.split === split)) {
      const { example, flickrId } = row;
      const premise = 'a picture of shapes';
      tsv.push([example.id, String(flickrId), (await encode(example.image, 'png')).toString('base64'), example.hypothesis, premise, GOLD[example.label]].join('\t'));
      jsonl.push(JSON.stringify({ Flikr30kID: `${flickrId}.jpg`, gold_label: GOLD[example.label], sentence1: premise, sentence2: example.hypothesis, pairID: example.id }));
      writeFileAtomic(join(jsonlDir, 'flickr30k_images', `${flickrId}.jpg`), await encode(example.image, 'jpeg'));
    }
    writeFileAtomic(join(tsvDir, `snli_ve_${fileSplit}.tsv`), `${tsv.join('\n')}\n`);
    writeFileAtomic(join(jsonlDir, `snli_ve_${fileSplit}.jsonl`), `${jsonl.join('\n')}\n`);
  }
  const cocoDir = join(out, 'coco');
  const images = [];
  for (const image of cocoFixtureImages()) {
    const filename = `COCO_${image.folder}_${String(image.cocoId).padStart(12, '0')}.png`;
    mkdirSync(join(cocoDir, image.folder), { recursive: true });
    writeFileAtomic(join(cocoDir, image.folder, filename), await encode(image.example.image, 'png'));
    images.push({
      filepath: image.folder, filename, imgid: images.length, split: image.karpathySplit, cocoid: image.cocoId,
      sentences: image.example.captions.map((raw, i) => ({ raw, tokens: raw.split(' '), imgid: images.length, sentid: 6 * images.length + i })),
    });
  }
  writeFileAtomic(join(cocoDir, 'dataset_coco.json'), `${JSON.stringify({ images, dataset: 'coco' })}\n`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const out = process.argv[2] ?? 'test/fixtures/datasets';
  await writeDatasetFixtures(out);
  console.log(`wrote SNLI-VE (TSV, JSONL) and COCO Karpathy fixtures to ${out}`);
}
