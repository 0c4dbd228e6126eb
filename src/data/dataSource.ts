// Where examples come from: one DataSource interface, one implementation per data set
// (SceneWorld, SNLI-VE, COCO captions). Training, evaluation and the CLI's `--data SPEC`
// go through openDataSource, so no caller branches on the data set.
import { type ImageTarget, resizeOf } from './image.js';
import { cocoSource } from './coco.js';
import type { RgbPixels } from './preprocess.js';
import { captionExample, veExample, type EntailmentLabel, type Split } from './sceneworld.js';
import { snliVeSource } from './snliVe.js';

export type DataTask = 've' | 'caption';

/** One example with its ground truth, images already at the model's input size. */
export interface TaskRecord {
  id: string;
  image: RgbPixels;
  /** Hypothesis (VE); empty for captioning. */
  hypothesis: string;
  /** VE data sets with a premise caption (SNLI-VE): the caption the hypothesis is judged against. */
  premise?: string;
  label?: EntailmentLabel;
  /** Every reference caption of the image (captioning). */
  references?: string[];
  /** Difficulty group for per-group reports: VE hypothesis family or gold label; captions: object count or data set. */
  group: string;
  /** SceneWorld only: visible objects in the scene. */
  objectCount?: number;
}

export interface DataSource {
  /** Human-readable, for logs: "SceneWorld", "SNLI-VE (OFA TSV) in DIR", … */
  readonly name: string;
  readonly task: DataTask;
  /** The split's records in order, skipping the first `skip` without decoding their images. SceneWorld never ends. */
  records(split: Split, imageSize: ImageTarget, skip?: number): AsyncGenerator<TaskRecord>;
  /** How many records the split holds (Infinity for SceneWorld); reads the split once without decoding images. */
  size(split: Split): Promise<number>;
}

export const DATA_KINDS = ['sceneworld', 'snli-ve', 'coco'] as const;
export const DATA_SPEC_HELP = 'sceneworld | snli-ve:DIR (OFA TSV or SNLI-VE JSONL + Flickr30k images) | coco:DIR (Karpathy dataset_coco.json + images)';

/** `sceneworld`, `snli-ve:PATH` or `coco:PATH`, for a model of `task`; refuses a data set of the other task. */
export function openDataSource(spec: string, task: DataTask, seed: number): DataSource {
  const separator = spec.indexOf(':');
  const kind = separator === -1 ? spec : spec.slice(0, separator);
  const path = separator === -1 ? '' : spec.slice(separator + 1);
  if (kind === 'sceneworld') {
    if (path) throw new Error(`--data sceneworld takes no path (got "${spec}")`);
    return sceneWorldSource(task, seed);
  }
  if (kind !== 'snli-ve' && kind !== 'coco') throw new Error(`--data must be ${DATA_SPEC_HELP} (got "${spec}")`);
  if (!path) throw new Error(`--data ${kind}:PATH needs the data set's directory after the colon`);
  const source = kind === 'snli-ve' ? snliVeSource(path) : cocoSource(path);
  if (source.task !== task) throw new Error(`--data ${kind} is a ${source.task} data set but the task is ${task}`);
  return source;
}

/** SceneWorld record `index` of a split: a pure function of its arguments. */
export function sceneWorldRecord(task: DataTask, split: Split, index: number, seed: number, target: ImageTarget): TaskRecord {
  // Rendered at the input size: the resize policy has nothing to crop or stretch.
  const imageSize = resizeOf(target).size;
  if (task === 've') {
    const e = veExample(index, { split, seed, imageSize });
    return { id: e.id, image: e.image, hypothesis: e.hypothesis, label: e.label, group: e.family, objectCount: e.objectCount };
  }
  const e = captionExample(index, { split, seed, imageSize });
  return { id: e.id, image: e.image, hypothesis: '', references: e.captions, group: `${e.objectCount} objects`, objectCount: e.objectCount };
}

function sceneWorldSource(task: DataTask, seed: number): DataSource {
  return {
    name: 'SceneWorld',
    task,
    async *records(split, imageSize, skip = 0) {
      for (let index = skip; ; index++) yield sceneWorldRecord(task, split, index, seed, imageSize);
    },
    size: async () => Infinity,
  };
}

/** The first `count` records of a split (fewer if the split is shorter; none is an error). */
export async function takeRecords(source: DataSource, split: Split, count: number, imageSize: ImageTarget): Promise<TaskRecord[]> {
  const records: TaskRecord[] = [];
  if (count > 0) {
    for await (const record of source.records(split, imageSize)) {
      records.push(record);
      if (records.length === count) break;
    }
  }
  if (records.length === 0) throw new Error(`${source.name} has no ${split} examples`);
  return records;
}

/**
 * Records of a split from global stream position `start` on, forever: file data sets restart
 * at their first record after the last (epochs), so position p is record p mod size.
 */
export async function* endlessRecords(source: DataSource, split: Split, imageSize: ImageTarget, start: number): AsyncGenerator<TaskRecord> {
  const size = start > 0 ? await source.size(split) : Infinity;
  let skip = size === Infinity ? start : start % size;
  for (;;) {
    let yielded = 0;
    for await (const record of source.records(split, imageSize, skip)) {
      yielded++;
      yield record;
    }
    if (yielded === 0 && skip === 0) throw new Error(`${source.name} has no ${split} examples`);
    skip = 0;
  }
}
