// `mue data generate`: writes a SceneWorld split to disk as PNG images, a JSONL file of
// examples and the tokenizer.json. (Training streams examples directly and needs no files.)
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { SingleBar, Presets } from 'cli-progress';
import type { Command } from 'commander';

import { encodePng } from '../../data/png.js';
import {
  captionExamples,
  sceneWorldTokenizer,
  SPLITS,
  veExamples,
  type CaptionExample,
  type Split,
  type VeExample,
} from '../../data/sceneworld.js';
import { MIN_IMAGE_SIZE } from '../../data/sceneworld/options.js';

const TASKS = ['ve', 'caption'] as const;
type Task = (typeof TASKS)[number];

/** Below this a progress bar would only flicker. */
const PROGRESS_BAR_MIN_COUNT = 500;

interface RawOptions {
  task: string;
  count: string;
  seed: string;
  split: string;
  out: string;
  imageSize: string;
}

interface GenerateOptions {
  task: Task;
  count: number;
  seed: number;
  split: Split;
  out: string;
  imageSize: number;
}

function oneOf<T extends string>(name: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw new Error(`${name} must be one of ${allowed.join(', ')}, got "${value}"`);
  }
  return value as T;
}

function integer(name: string, value: string, min: number, max: number = Number.MAX_SAFE_INTEGER): number {
  const parsed = Number(value);
  if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
    throw new Error(`${name} must be an integer from ${min} to ${max}, got "${value}"`);
  }
  return parsed;
}

function validate(raw: RawOptions): GenerateOptions {
  return {
    task: oneOf('--task', raw.task, TASKS),
    count: integer('--count', raw.count, 1, 10_000_000),
    seed: integer('--seed', raw.seed, 0, 2 ** 32 - 1),
    split: oneOf('--split', raw.split, SPLITS),
    out: raw.out,
    imageSize: integer('--image-size', raw.imageSize, MIN_IMAGE_SIZE, 1024),
  };
}

/** One JSONL record: the example with its pixels replaced by the image path relative to the output directory. */
function record(example: VeExample | CaptionExample, imagePath: string): Record<string, unknown> {
  return Object.fromEntries(Object.entries(example).map(([key, value]) => [key, key === 'image' ? imagePath : value]));
}

async function generate(options: GenerateOptions): Promise<void> {
  const { task, count, seed, split, out, imageSize } = options;
  const imageDirectory = join(out, 'images');
  await mkdir(imageDirectory, { recursive: true });
  const jsonlPath = join(out, `${task}-${split}.jsonl`);
  const jsonl = createWriteStream(jsonlPath);
  const references: Record<string, string[]> = {};
  const bar = count >= PROGRESS_BAR_MIN_COUNT ? new SingleBar({ etaBuffer: 100 }, Presets.shades_classic) : null;
  bar?.start(count, 0);

  const sceneWorld = { split, seed, imageSize };
  const examples: Iterable<VeExample | CaptionExample> =
    task === 've' ? veExamples(count, sceneWorld) : captionExamples(count, sceneWorld);
  for (const example of examples) {
    const imagePath = `images/${example.id}.png`;
    await writeFile(join(out, imagePath), encodePng(example.image));
    if (!jsonl.write(`${JSON.stringify(record(example, imagePath))}\n`)) {
      await once(jsonl, 'drain');
    }
    if ('captions' in example) references[example.id] = example.captions;
    bar?.increment();
  }
  bar?.stop();
  jsonl.end();
  await finished(jsonl);

  const written = [jsonlPath];
  if (task === 'caption') {
    // The shape `mue score --references` reads.
    const referencesPath = join(out, `caption-${split}-references.json`);
    await writeFile(referencesPath, `${JSON.stringify(references, null, 2)}\n`);
    written.push(referencesPath);
  }
  const tokenizerPath = join(out, 'tokenizer.json');
  await writeFile(tokenizerPath, `${JSON.stringify(sceneWorldTokenizer().toJSON(), null, 2)}\n`);
  written.push(tokenizerPath);
  console.log(`wrote ${count} ${task} examples (${imageSize}x${imageSize} PNG in ${imageDirectory}), ${written.join(', ')}`);
}

export function registerDataCommand(program: Command): void {
  const data = program.command('data').description('SceneWorld synthetic data set');
  data
    .command('generate')
    .description('Write a SceneWorld split: PNG images, a JSONL file of examples and tokenizer.json')
    .requiredOption('--task <task>', `ve (visual entailment) or caption`)
    .requiredOption('--count <n>', 'number of examples (integer 1–10000000)')
    .requiredOption('--seed <s>', `data set seed (integer 0–${2 ** 32 - 1})`)
    .requiredOption('--split <split>', SPLITS.join(' | '))
    .requiredOption('--out <dir>', 'output directory (created if missing)')
    .option('--image-size <pixels>', `side of the square images (integer ${MIN_IMAGE_SIZE}–1024)`, '64')
    .action(async (raw: RawOptions) => {
      await generate(validate(raw));
    });
}
