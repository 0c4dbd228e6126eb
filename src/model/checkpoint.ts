// A checkpoint directory: config.json (model config + task), model.safetensors,
// tokenizer.json (Hugging Face format) and, while training, optimizer.safetensors
// and training_state.json. Loading validates everything and names the first problem.
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { tokenizerFromJSON } from '../data/hfTokenizer.js';
import type { TextTokenizer } from '../data/tokenizer.js';
import { replaceDirectory, writeFileAtomic } from './atomicWrite.js';
import { type ModelConfig, validateConfig } from './config.js';
import { parameterSpecs } from './parameters.js';
import { decodeSafetensors, encodeSafetensors, type NamedArray, type StoredDtype } from './safetensors.js';

export type Task = 've' | 'caption';
export const TASKS: readonly Task[] = ['ve', 'caption'];
export const CHECKPOINT_FORMAT_VERSION = 1;

export interface Checkpoint {
  task: Task;
  config: ModelConfig;
  tokenizer: TextTokenizer;
  weights: Map<string, NamedArray>;
  /** Present in training checkpoints only. */
  optimizerState?: Map<string, NamedArray>;
  trainingState?: Record<string, unknown>;
}

export const FILES = {
  config: 'config.json',
  weights: 'model.safetensors',
  tokenizer: 'tokenizer.json',
  optimizer: 'optimizer.safetensors',
  trainingState: 'training_state.json',
} as const;

/** Writes a checkpoint so that the directory holds either the previous or the new checkpoint, never a mix. */
export function saveCheckpoint(directory: string, checkpoint: Checkpoint, options: { weightDtype?: StoredDtype } = {}): void {
  checkWeights(checkpoint.config, checkpoint.weights, 'checkpoint to save');
  mkdirSync(dirname(directory), { recursive: true });
  const fresh = join(dirname(directory), `.${basename(directory)}.writing-${process.pid}`);
  mkdirSync(fresh, { recursive: true });
  const config = { mue_format_version: CHECKPOINT_FORMAT_VERSION, task: checkpoint.task, ...checkpoint.config };
  writeFileAtomic(join(fresh, FILES.config), `${JSON.stringify(config, null, 2)}\n`);
  writeFileAtomic(join(fresh, FILES.weights), encodeSafetensors(checkpoint.weights, { dtype: options.weightDtype ?? 'F32', metadata: { format: 'mue' } }));
  writeFileAtomic(join(fresh, FILES.tokenizer), `${JSON.stringify(checkpoint.tokenizer.toJSON(), null, 2)}\n`);
  if (checkpoint.optimizerState) writeFileAtomic(join(fresh, FILES.optimizer), encodeSafetensors(checkpoint.optimizerState));
  if (checkpoint.trainingState) writeFileAtomic(join(fresh, FILES.trainingState), `${JSON.stringify(checkpoint.trainingState, null, 2)}\n`);
  // Files that are not part of the checkpoint (the training log, evaluation results, exits.json) stay.
  const checkpointFiles = new Set<string>(Object.values(FILES));
  if (existsSync(directory)) {
    for (const entry of readdirSync(directory, { withFileTypes: true })) {
      if (entry.isFile() && !checkpointFiles.has(entry.name)) copyFileSync(join(directory, entry.name), join(fresh, entry.name));
    }
  }
  replaceDirectory(fresh, directory);
}

export function loadCheckpoint(directory: string): Checkpoint {
  if (!existsSync(directory) || !statSync(directory).isDirectory()) throw new Error(`${directory} is not a model directory (it does not exist or is not a folder)`);
  for (const file of [FILES.config, FILES.weights, FILES.tokenizer]) {
    if (!existsSync(join(directory, file))) throw new Error(`${directory} is not a model directory: ${file} is missing`);
  }
  const rawConfig = readJson(join(directory, FILES.config));
  const task = rawConfig.task as Task;
  if (!TASKS.includes(task)) throw new Error(`${FILES.config}: "task" must be one of ${TASKS.join(', ')} (got ${JSON.stringify(rawConfig.task)})`);
  if (rawConfig.mue_format_version !== CHECKPOINT_FORMAT_VERSION) {
    throw new Error(`${FILES.config}: unsupported mue_format_version ${JSON.stringify(rawConfig.mue_format_version)} (expected ${CHECKPOINT_FORMAT_VERSION})`);
  }
  const config = validateConfig(rawConfig);
  const tokenizer = tokenizerFromJSON(readJson(join(directory, FILES.tokenizer)));
  if (tokenizer.vocabSize !== config.vocabSize) {
    throw new Error(`config/tokenizer disagree: config.json says vocabSize ${config.vocabSize}, tokenizer.json has ${tokenizer.vocabSize} tokens`);
  }
  const weights = decodeSafetensors(readFileSync(join(directory, FILES.weights)), FILES.weights).tensors;
  checkWeights(config, weights, FILES.weights);
  const checkpoint: Checkpoint = { task, config, tokenizer, weights };
  if (existsSync(join(directory, FILES.optimizer))) {
    checkpoint.optimizerState = decodeSafetensors(readFileSync(join(directory, FILES.optimizer)), FILES.optimizer).tensors;
  }
  if (existsSync(join(directory, FILES.trainingState))) checkpoint.trainingState = readJson(join(directory, FILES.trainingState));
  return checkpoint;
}

/** The weights must be exactly the tensors the config implies: none missing, none extra, every shape equal. */
function checkWeights(config: ModelConfig, weights: Map<string, NamedArray>, source: string): void {
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

function readJson(path: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new Error(`${basename(path)} is not valid JSON (${(error as Error).message})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error(`${basename(path)} must hold a JSON object`);
  return parsed as Record<string, unknown>;
}
