// A model's files parsed from memory: config.json, tokenizer.json (already parsed JSON) and the
// model.safetensors bytes -> a validated checkpoint. No file system: the Node loader
// (checkpoint.ts) and the browser loader (fetch) both end here, so both validate alike.
import { tokenizerFromJSON } from '../data/hfTokenizer.js';
import type { TextTokenizer } from '../data/tokenizer.js';
import { checkMueFamily, type ModelConfig, validateConfig } from './config.js';
import { parseOfaModelFiles, type ParsedOfaModel } from './ofaModelFiles.js';
import { parameterSpecs } from './parameters.js';
import { decodeSafetensors, type NamedArray, type Sha256 } from './safetensors.js';

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

/** Weights-file metadata key holding the task and config the weights were saved with. */
export const CONFIG_METADATA_KEY = 'mue_config';

/** The inference part of a checkpoint, as read from files or fetched. */
export interface ModelFiles {
  /** config.json, parsed. */
  config: unknown;
  /** model.safetensors bytes. */
  weights: Uint8Array;
  /** tokenizer.json, parsed. */
  tokenizer: unknown;
}

/** A model of mue's own family. */
export interface ParsedMueModel {
  family: 'mue';
  task: Task;
  config: ModelConfig;
  tokenizer: TextTokenizer;
  weights: Map<string, NamedArray>;
}

/** Either family: config.json `family` "ofa" (a converted OFA / MuE checkpoint) or absent/"mue". */
export type ParsedModel = ParsedMueModel | ParsedOfaModel;

/**
 * Validates and decodes the three files; the first problem is named with its file. The weights'
 * checksum is verified when a hash function is given (Node passes one; the browser has no
 * synchronous SHA-256, so only the checksum is skipped there: every other check still runs).
 */
export function parseModelFiles(files: ModelFiles, sha256?: Sha256): ParsedModel {
  const rawConfig = jsonObject(files.config, FILES.config);
  if (rawConfig.family === 'ofa') return parseOfaModelFiles(rawConfig, files.weights, jsonObject(files.tokenizer, FILES.tokenizer), sha256);
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
  const { tensors: weights, metadata } = decodeSafetensors(files.weights, FILES.weights, sha256);
  checkWeights(config, weights, FILES.weights);
  checkSavedConfig(metadata[CONFIG_METADATA_KEY], { task, ...config });
  return { family: 'mue', task, config, tokenizer, weights };
}

/** Weights files record the task and config they were saved with; config.json must still say the same. */
function checkSavedConfig(saved: string | undefined, current: Record<string, unknown>): void {
  if (saved === undefined) return; // written before configs were recorded: the shape checks are all there is
  let recorded: Record<string, unknown>;
  try {
    const { task, ...config } = JSON.parse(saved) as Record<string, unknown>;
    // Through validateConfig as config.json is: a field added since the save (e.g. veFormulation)
    // gets the same default on both sides, so only a real disagreement is refused.
    recorded = { task, ...validateConfig(config) };
  } catch (error) {
    throw new Error(`${FILES.weights}: the recorded config in its metadata is not a valid config (${(error as Error).message})`);
  }
  for (const key of new Set([...Object.keys(recorded), ...Object.keys(current)])) {
    if (recorded[key] !== current[key]) {
      throw new Error(`${FILES.config} says ${key} ${JSON.stringify(current[key])} but ${FILES.weights} was saved with ${key} ${JSON.stringify(recorded[key])} (config/weights disagree)`);
    }
  }
}

/**
 * The weights must be exactly the tensors the config implies (none missing, none extra, every
 * shape equal), finite, and not all zeros where neither initialisation nor training makes zeros
 * (matrices, embeddings and LayerNorm gains; biases may legitimately be zero).
 */
export function checkWeights(config: ModelConfig, weights: Map<string, NamedArray>, source: string): void {
  const specs = parameterSpecs(config);
  for (const spec of specs) {
    const tensor = weights.get(spec.name);
    if (!tensor) throw new Error(`${source}: missing tensor "${spec.name}"`);
    if (tensor.shape.length !== spec.shape.length || tensor.shape.some((size, axis) => size !== spec.shape[axis])) {
      throw new Error(`${source}: tensor "${spec.name}" has shape [${tensor.shape}] but the config implies [${spec.shape}] (config/weights disagree)`);
    }
    if (spec.init !== 'zeros' && tensor.data.length > 0 && tensor.data.every((value) => value === 0)) {
      throw new Error(`${source}: tensor "${spec.name}" is all zeros, which no initialised or trained model has (zeroed or corrupted weights)`);
    }
  }
  const expected = new Set(specs.map((spec) => spec.name));
  const unexpected = [...weights.keys()].find((name) => !expected.has(name));
  if (unexpected) throw new Error(`${source}: unexpected tensor "${unexpected}" (config/weights disagree)`);
  checkFinite(weights, source);
}

/** Every value must be a finite number: a NaN or infinity means a diverged or corrupted file. */
export function checkFinite(tensors: Map<string, NamedArray>, source: string): void {
  for (const [name, { data }] of tensors) {
    const index = data.findIndex((value) => !Number.isFinite(value));
    if (index >= 0) throw new Error(`${source}: tensor "${name}" holds ${data[index]} at index ${index} (a diverged or corrupted model)`);
  }
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
