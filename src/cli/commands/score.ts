// `mue score`: caption metrics (BLEU-1..4, ROUGE-L, CIDEr-D) of candidate captions against references.
import type { Command } from 'commander';

import { scoreCaptions, type CaptionScores } from '../../eval/captionMetrics.js';
import { MAX_JSON_BYTES, readJsonFile } from '../jsonFile.js';

interface ScoreOptions {
  references: string;
  candidates: string;
  json?: boolean;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseReferences(value: unknown, path: string): Record<string, string[]> {
  const expected = `${path}: references must be a JSON object mapping image id to an array of caption strings`;
  if (!isPlainObject(value)) throw new Error(expected);
  for (const [id, captions] of Object.entries(value)) {
    if (!Array.isArray(captions) || !captions.every((caption) => typeof caption === 'string')) {
      throw new Error(`${expected} (image "${id}" is not)`);
    }
  }
  return value as Record<string, string[]>;
}

function parseCandidates(value: unknown, path: string): Record<string, string> {
  const expected = `${path}: candidates must be a JSON object mapping image id to a caption string`;
  if (!isPlainObject(value)) throw new Error(expected);
  for (const [id, caption] of Object.entries(value)) {
    if (typeof caption !== 'string') throw new Error(`${expected} (image "${id}" is not)`);
  }
  return value as Record<string, string>;
}

function formatTable(scores: CaptionScores): string {
  const rows: Array<[string, string]> = [
    ['images', String(Object.keys(scores.perImage).length)],
    ['BLEU-1', scores.bleu1.toFixed(4)],
    ['BLEU-2', scores.bleu2.toFixed(4)],
    ['BLEU-3', scores.bleu3.toFixed(4)],
    ['BLEU-4', scores.bleu4.toFixed(4)],
    ['ROUGE-L', scores.rougeL.toFixed(4)],
    ['CIDEr-D', scores.ciderD.toFixed(4)],
  ];
  const nameWidth = Math.max(...rows.map(([name]) => name.length));
  const valueWidth = Math.max(...rows.map(([, value]) => value.length));
  return rows.map(([name, value]) => `${name.padEnd(nameWidth)}  ${value.padStart(valueWidth)}`).join('\n');
}

export function registerScoreCommand(program: Command): void {
  program
    .command('score')
    .description('Score candidate captions against reference captions (BLEU-1..4, ROUGE-L, CIDEr-D as in the COCO caption evaluation)')
    .requiredOption('--references <file>', `JSON object {imageId: [reference caption, ...]}; captions lower-case, space-tokenized (at most ${MAX_JSON_BYTES / 2 ** 20} MB)`)
    .requiredOption('--candidates <file>', `JSON object {imageId: candidate caption} (at most ${MAX_JSON_BYTES / 2 ** 20} MB)`)
    .option('--json', 'print all scores, including per-image ROUGE-L and CIDEr-D, as JSON')
    .action(async (options: ScoreOptions) => {
      const references = parseReferences(await readJsonFile(options.references), options.references);
      const candidates = parseCandidates(await readJsonFile(options.candidates), options.candidates);
      const scores = scoreCaptions(references, candidates);
      console.log(options.json ? JSON.stringify(scores, null, 2) : formatTable(scores));
    });
}
