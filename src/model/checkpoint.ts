// A checkpoint directory: config.json (model config + task), model.safetensors,
// tokenizer.json (Hugging Face format) and, while training, optimizer.safetensors
// and training_state.json. Loading validates everything and names the first problem
// (the parsing itself is file-system free, in modelFiles.ts, so the browser shares it).
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import type { TextTokenizer } from '../data/tokenizer.js';
import { replaceDirectory, writeFileAtomic } from './atomicWrite.js';
import type { ModelConfig } from './config.js';
import { CHECKPOINT_FORMAT_VERSION, checkWeights, FILES, parseJsonObject, parseModelFiles, type Task } from './modelFiles.js';
import { decodeSafetensors, encodeSafetensors, type NamedArray, type StoredDtype } from './safetensors.js';

export { CHECKPOINT_FORMAT_VERSION, FILES, TASKS, type Task } from './modelFiles.js';

export interface Checkpoint {
  task: Task;
  config: ModelConfig;
  tokenizer: TextTokenizer;
  weights: Map<string, NamedArray>;
  /** Present in training checkpoints only. */
  optimizerState?: Map<string, NamedArray>;
  trainingState?: Record<string, unknown>;
}

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
  const { task, config, tokenizer, weights } = parseModelFiles({
    config: readJson(join(directory, FILES.config)),
    weights: readFileSync(join(directory, FILES.weights)),
    tokenizer: readJson(join(directory, FILES.tokenizer)),
  });
  const checkpoint: Checkpoint = { task, config, tokenizer, weights };
  if (existsSync(join(directory, FILES.optimizer))) {
    checkpoint.optimizerState = decodeSafetensors(readFileSync(join(directory, FILES.optimizer)), FILES.optimizer).tensors;
  }
  if (existsSync(join(directory, FILES.trainingState))) checkpoint.trainingState = readJson(join(directory, FILES.trainingState));
  return checkpoint;
}

function readJson(path: string): Record<string, unknown> {
  return parseJsonObject(readFileSync(path, 'utf8'), basename(path));
}
