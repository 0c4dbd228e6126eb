// What the host platform provides to the runtime, Node version: onnxruntime-node and model files
// read from a directory. The browser bundle replaces this module with src/browser/platform.ts
// (scripts/build-browser.mjs), which has the same exports over onnxruntime-web and fetch.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readFileBounded } from '../data/boundedRead.js';
import { loadModelDirectory } from '../model/checkpoint.js';
import type { ParsedModel } from '../model/modelFiles.js';
import { EXITS_FILE, type LoadOptions } from './modelSource.js';
import { nodeBackend } from './nodeBackend.js';
import type { OrtBackend } from './ortBackend.js';

export async function defaultBackend(): Promise<OrtBackend> {
  return nodeBackend;
}

/** A model directory -> its validated checkpoint and exits.json (parsed JSON, undefined if absent). */
export async function openModelSource(directory: string, options: LoadOptions): Promise<{ model: ParsedModel; exits: unknown }> {
  const model = loadModelDirectory(directory);
  for (const file of ['config.json', 'model.safetensors', 'tokenizer.json']) {
    options.progress_callback?.({ status: 'done', name: directory, file });
  }
  const exits = readExitsJson(directory);
  return { model, exits };
}

/** exits.json is a few hundred bytes; anything near this is not one. */
const MAX_EXITS_FILE_BYTES = 1024 * 1024;

/** DIR/exits.json parsed, or undefined if there is none. */
export function readExitsJson(directory: string): unknown {
  const path = join(directory, EXITS_FILE);
  if (!existsSync(path)) return undefined;
  let text: string;
  try {
    text = readFileBounded(path, MAX_EXITS_FILE_BYTES).toString('utf8');
  } catch (error) {
    throw new Error(`${path}: cannot read it: ${(error as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`${EXITS_FILE} is not valid JSON`);
  }
}
