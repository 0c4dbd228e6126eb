// A model's files parsed from memory: config.json, tokenizer.json (already parsed JSON) and the
// model.safetensors bytes -> a validated checkpoint. No file system: the Node loader
// (checkpoint.ts) and the browser loader (fetch) both end here, so both validate alike.
import { tokenizerFromJSON } from '../data/hfTokenizer.js';
import type { TextTokenizer } from '../data/tokenizer.js';
import { checkMueFamily, type ModelConfig, validateConfig } from './config.js';
import { parameterSpecs } from './parameters.js';
import { decodeSafetensors, type NamedArray } from './safetensors.js';

export type Task = 've' | 'caption';
export const TASKS: readonly Task[] = ['ve', 'caption'];
export const CHECKPOINT_FORMAT_VERSION = 1;

export const FILES = {
  config: 'config.json',
  weights: 'model.safetensors',
  tokenizer: 'tokenizer.json',
  optimizer: 'optimizer.safetensors',
  trainingState: 'training_state.json',
} as const;

/** The inference part of a checkpoint, as read from files or fetched. */
export interface ModelFiles {
  /** config.json, parsed. */
  config: unknown;
  /** model.safetensors bytes. */
  weights: Uint8Array;
  /** tokenizer.json, parsed. */
  tokenizer: unknown;
}

export interface ParsedModel {
  task: Task;
  config: ModelConfig;
  tokenizer: TextTokenizer;
  weights: Map<string, NamedArray>;
}

/** Validates and decodes the three files; the first problem is named with its file. */
export function parseModelFiles(files: ModelFiles): ParsedModel {
  const rawConfig = jsonObject(files.config, FILES.config);
  const task = rawConfig.task as Task;
  if (!TASKS.includes(task)) throw new Error(`${FILES.config}: "task" must be one of ${TASKS.join(', ')} (got ${JSON.stringify(rawConfig.task)})`);
  checkMueFamily(rawConfig);
  if (rawConfig.mue_format_version !== CHECKPOINT_FORMAT_VERSION) {
    throw new Error(`${FILES.config}: unsupported mue_format_version ${JSON.stringify(rawConfig.mue_format_version)} (expected ${CHECKPOINT_FORMAT_VERSION})`);
  }
  const config = validateConfig(rawConfig);
  const tokenizer = tokenizerFromJSON(jsonObject(files.tokenizer, FILES.tokenizer));
  if (tokenizer.vocabSize !== config.vocabSize) {
    throw new Error(`config/tokenizer disagree: config.json says vocabSize ${config.vocabSize}, tokenizer.json has ${tokenizer.vocabSize} tokens`);
  }
  const weights = decodeSafetensors(files.weights, FILES.weights).tensors;
  checkWeights(config, weights, FILES.weights);
  return { task, config, tokenizer, weights };
}

/** The weights must be exactly the tensors the config implies: none missing, none extra, every shape equal. */
export function checkWeights(config: ModelConfig, weights: Map<string, NamedArray>, source: string): void {
  const specs = parameterSpecs(config);
  for (const spec of specs) {
    const tensor = weights.get(spec.name);
    if (!tensor) throw new Error(`${source}: missing tensor "${spec.name}"`);
    if (tensor.shape.length !== spec.shape.length || tensor.shape.some((size, axis) => size !== spec.shape[axis])) {
      throw new Error(`${source}: tensor "${spec.name}" has shape [${tensor.shape}] but the config implies [${spec.shape}] (config/weights disagree)`);
    }
  }
  const expected = new Set(specs.map((spec) => spec.name));
  const unexpected = [...weights.keys()].find((name) => !expected.has(name));
  if (unexpected) throw new Error(`${source}: unexpected tensor "${unexpected}" (config/weights disagree)`);
}

/** Text of a JSON file -> its object; a one-line error names the file. */
export function parseJsonObject(text: string, file: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new Error(`${file} is not valid JSON (${(error as Error).message})`);
  }
  return jsonObject(parsed, file);
}

function jsonObject(value: unknown, file: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${file} must hold a JSON object`);
  return value as Record<string, unknown>;
}
