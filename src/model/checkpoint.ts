// A checkpoint directory: config.json (model config + task), model.safetensors,
// tokenizer.json (Hugging Face format) and, while training, optimizer.safetensors
// and training_state.json. Loading validates everything and names the first problem
// (the parsing itself is file-system free, in modelFiles.ts, so the browser shares it).
//
// Crash safety: a save fills a hidden sibling `.NAME.writing-PID` (config.json written last, so a
// folder with config.json is complete), then swaps it in (NAME -> .NAME.old-PID, fresh -> NAME,
// remove the old). A crash at any point leaves NAME or a complete leftover; recoverCheckpoint
// (run by every load and by `mue train`) moves the newest complete one into place and removes
// the rest, so no good checkpoint stays hidden and training never silently restarts at step 0.
// Earlier versions named the old folder `NAME.old-PID` (not hidden); such a folder may also be a
// user's own backup, so it is only taken when NAME holds no complete checkpoint, and never removed.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { readFileBounded } from '../data/boundedRead.js';
import type { TextTokenizer } from '../data/tokenizer.js';
import { type FileOps, NODE_FILE_OPS, replaceDirectory } from './atomicWrite.js';
import { checkMueFamily, type ModelConfig } from './config.js';
import { CHECKPOINT_FORMAT_VERSION, checkFinite, checkWeights, CONFIG_METADATA_KEY, FILES, parseJsonObject, parseModelFiles, type ParsedModel, type ParsedMueModel, type Task } from './modelFiles.js';
import { decodeSafetensors, encodeSafetensors, type NamedArray, type StoredDtype } from './safetensors.js';
import { nodeSha256 } from './sha256.js';

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

/** Largest JSON file of a checkpoint (config, tokenizer, training state) and largest tensor file read. */
export const MAX_CHECKPOINT_JSON_BYTES = 64 * 1024 * 1024;
export const MAX_TENSOR_FILE_BYTES = 4 * 1024 * 1024 * 1024;

/** Writes a checkpoint so that the directory holds either the previous or the new checkpoint, never a mix. */
export function saveCheckpoint(directory: string, checkpoint: Checkpoint, options: { weightDtype?: StoredDtype; fileOps?: FileOps } = {}): void {
  const ops = options.fileOps ?? NODE_FILE_OPS;
  checkWeights(checkpoint.config, checkpoint.weights, 'checkpoint to save');
  if (checkpoint.optimizerState) checkFinite(checkpoint.optimizerState, 'optimizer state to save');
  const described = { task: checkpoint.task, ...checkpoint.config };
  const fresh = writingPath(directory, process.pid);
  ops.makeDirectory(dirname(directory));
  ops.remove(fresh); // a leftover of this process's own earlier failed save
  ops.makeDirectory(fresh);
  // Files that are not part of the checkpoint (the training log, evaluation results, exits.json) stay.
  const checkpointFiles = new Set<string>(Object.values(FILES));
  const targetExists = existsSync(directory);
  if (targetExists) {
    for (const entry of readdirSync(directory, { withFileTypes: true })) {
      if (entry.isFile() && !checkpointFiles.has(entry.name)) ops.copyFile(join(directory, entry.name), join(fresh, entry.name));
    }
  }
  ops.writeFile(join(fresh, FILES.weights), encodeSafetensors(checkpoint.weights, {
    dtype: options.weightDtype ?? 'F32', metadata: { format: 'mue', [CONFIG_METADATA_KEY]: JSON.stringify(described) }, sha256: nodeSha256,
  }));
  ops.writeFile(join(fresh, FILES.tokenizer), `${JSON.stringify(checkpoint.tokenizer.toJSON(), null, 2)}\n`);
  if (checkpoint.optimizerState) ops.writeFile(join(fresh, FILES.optimizer), encodeSafetensors(checkpoint.optimizerState, { metadata: { format: 'mue' }, sha256: nodeSha256 }));
  if (checkpoint.trainingState) ops.writeFile(join(fresh, FILES.trainingState), `${JSON.stringify(checkpoint.trainingState, null, 2)}\n`);
  // Last: a folder holding config.json is a complete checkpoint (what recovery relies on).
  ops.writeFile(join(fresh, FILES.config), `${JSON.stringify({ mue_format_version: CHECKPOINT_FORMAT_VERSION, ...described }, null, 2)}\n`);
  replaceDirectory(fresh, directory, ops, targetExists);
}

const writingPath = (directory: string, pid: number) => join(dirname(directory), `.${basename(directory)}.writing-${pid}`);
const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

interface Candidate { path: string; kind: 'target' | 'writing' | 'old'; step: number; modifiedMs: number }

/** What recoverCheckpoint did: which leftover became the checkpoint (if any) and which were removed. */
export interface Recovery { restoredFrom?: string; removed: string[] }

/**
 * Makes DIRECTORY the newest complete checkpoint among itself and the leftovers of interrupted
 * saves (`.NAME.writing-PID`, `.NAME.old-PID`, and `NAME.old-PID` from earlier versions) and
 * removes the other leftovers. Leftovers of a process that is still running are left alone (it
 * may be saving right now). Newest = highest training step, then latest config.json; on a tie
 * the directory itself stays.
 */
export function recoverCheckpoint(directory: string, ops: FileOps = NODE_FILE_OPS): Recovery {
  const parent = dirname(directory);
  const name = escapeRegExp(basename(directory));
  const recovery: Recovery = { removed: [] };
  if (!existsSync(parent) || !statSync(parent).isDirectory()) return recovery;
  const pattern = new RegExp(`^(?:\\.${name}\\.(writing|old)|${name}\\.(old))-(\\d+)$`);
  const leftovers: Array<{ path: string; kind: 'writing' | 'old'; legacy: boolean }> = [];
  for (const entry of readdirSync(parent)) {
    const match = pattern.exec(entry);
    if (!match || isOtherLiveProcess(Number(match[3]))) continue;
    leftovers.push({ path: join(parent, entry), kind: (match[1] ?? match[2]) as 'writing' | 'old', legacy: match[2] !== undefined });
  }
  if (leftovers.length === 0) return recovery;
  const targetComplete = describeComplete(directory);
  const candidates = [{ path: directory, kind: 'target' as const }, ...leftovers.filter((l) => !l.legacy || !targetComplete)].flatMap((item) => {
    const described = item.kind === 'target' ? targetComplete : describeComplete(item.path);
    return described ? [{ ...item, ...described }] : [];
  });
  const rank: Record<Candidate['kind'], number> = { target: 2, writing: 1, old: 0 };
  const newest = candidates.sort((a, b) => b.step - a.step || b.modifiedMs - a.modifiedMs || rank[b.kind] - rank[a.kind])[0];
  if (newest && newest.kind !== 'target') {
    try {
      if (existsSync(directory)) {
        // DIRECTORY is not a complete checkpoint or is older: keep its other files (e.g. a training
        // log written before the first save finished), then swap the leftover in.
        for (const entry of readdirSync(directory, { withFileTypes: true })) {
          if (entry.isFile() && !existsSync(join(newest.path, entry.name))) ops.copyFile(join(directory, entry.name), join(newest.path, entry.name));
        }
      }
      replaceDirectory(newest.path, directory, ops, existsSync(directory));
    } catch (error) {
      throw new Error(`${newest.path} holds the newest complete checkpoint of ${directory} (left by an interrupted save) but it could not be moved into place: ${(error as Error).message}; move it there by hand`);
    }
    recovery.restoredFrom = newest.path;
  }
  for (const leftover of leftovers) {
    if (leftover.path === newest?.path || leftover.legacy) continue;
    ops.remove(leftover.path);
    recovery.removed.push(leftover.path);
  }
  return recovery;
}

/** A folder with config.json (written last by a save) is complete; its step orders it. */
function describeComplete(path: string): { step: number; modifiedMs: number } | undefined {
  const configPath = join(path, FILES.config);
  if (!existsSync(configPath)) return undefined;
  let step = -1;
  try {
    const state = JSON.parse(readFileBounded(join(path, FILES.trainingState), MAX_CHECKPOINT_JSON_BYTES).toString('utf8')) as { step?: unknown };
    if (Number.isSafeInteger(state.step)) step = state.step as number;
  } catch {
    // No (readable) training state: an inference checkpoint, ordered by time only.
  }
  return { step, modifiedMs: statSync(configPath).mtimeMs };
}

function isOtherLiveProcess(pid: number): boolean {
  if (pid === process.pid) return false; // saves are synchronous: none of ours is under way
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A model directory of either family, validated (config, weights with their checksum, tokenizer); training files are not read. */
export function loadModelDirectory(directory: string): ParsedModel {
  recoverCheckpoint(directory);
  if (!existsSync(directory) || !statSync(directory).isDirectory()) throw new Error(`${directory} is not a model directory (it does not exist or is not a folder)`);
  for (const file of [FILES.config, FILES.weights, FILES.tokenizer]) {
    if (!existsSync(join(directory, file))) throw new Error(`${directory} is not a model directory: ${file} is missing`);
  }
  return parseModelFiles({
    config: readJson(directory, FILES.config),
    weights: readCheckpointFile(directory, FILES.weights, MAX_TENSOR_FILE_BYTES),
    tokenizer: readJson(directory, FILES.tokenizer),
  }, nodeSha256);
}

/** A checkpoint of mue's own family with its training files (an OFA model is refused: mue does not train that family). */
export function loadCheckpoint(directory: string): Checkpoint {
  const model = loadModelDirectory(directory);
  if (model.family === 'ofa') checkMueFamily({ family: 'ofa' });
  const { task, config, tokenizer, weights } = model as ParsedMueModel;
  const checkpoint: Checkpoint = { task, config, tokenizer, weights };
  if (existsSync(join(directory, FILES.optimizer))) {
    checkpoint.optimizerState = decodeSafetensors(readCheckpointFile(directory, FILES.optimizer, MAX_TENSOR_FILE_BYTES), FILES.optimizer, nodeSha256).tensors;
    checkFinite(checkpoint.optimizerState, FILES.optimizer);
  }
  if (existsSync(join(directory, FILES.trainingState))) {
    checkpoint.trainingState = readJson(directory, FILES.trainingState);
    checkTrainingState(checkpoint.trainingState, task, config);
  }
  return checkpoint;
}

/** training_state.json: the step reached and the run's options, which must agree with the config. */
function checkTrainingState(state: Record<string, unknown>, task: Task, config: ModelConfig): void {
  const where = FILES.trainingState;
  const options = state.options as Record<string, unknown> | undefined;
  if (typeof options !== 'object' || options === null || Array.isArray(options)) throw new Error(`${where}: "options" must be an object (the run's options)`);
  const totalSteps = options.steps;
  if (typeof totalSteps !== 'number' || !Number.isSafeInteger(totalSteps) || totalSteps < 1) throw new Error(`${where}: options.steps must be a positive integer (got ${JSON.stringify(totalSteps)})`);
  const { step } = state;
  if (typeof step !== 'number' || !Number.isSafeInteger(step) || step < 0 || step > totalSteps) {
    throw new Error(`${where}: "step" must be an integer from 0 to the run's ${totalSteps} steps (got ${JSON.stringify(step)})`);
  }
  const agree: Array<[string, unknown]> = [['task', task], ['encoderMode', config.encoderMode], ['imageSize', config.imageSize]];
  for (const [key, value] of agree) {
    if (key in options && options[key] !== value) throw new Error(`${where}: the run's ${key} was ${JSON.stringify(options[key])} but ${FILES.config} says ${JSON.stringify(value)}`);
  }
}

function readCheckpointFile(directory: string, file: string, maxBytes: number): Buffer {
  try {
    return readFileBounded(join(directory, file), maxBytes);
  } catch (error) {
    throw new Error(`${join(directory, file)}: cannot read it: ${(error as Error).message}`);
  }
}

function readJson(directory: string, file: string): Record<string, unknown> {
  return parseJsonObject(readCheckpointFile(directory, file, MAX_CHECKPOINT_JSON_BYTES).toString('utf8'), file);
}
