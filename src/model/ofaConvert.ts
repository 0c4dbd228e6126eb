// An OFA / MuE checkpoint.pt -> a mue model directory of family "ofa":
//   config.json       { family: "ofa", task, vocabSize, modelArgs: cfg["model"] fields verbatim,
//                     taskArgs: the cfg["task"] settings inference follows (OFA_TASK_SETTINGS) }
//   model.safetensors the state dict under its official names, float32, the tied embedding stored once
//                     (__metadata__.aliases names the copies), without the int64 bucket tables
//   tokenizer.json    OFA's BPE -> dictionary ids (src/data/ofaTokenizer.ts)
// The directory is written beside the target and swapped in whole, so a failed run leaves nothing half-written.
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { buildOfaTokenizerJson } from '../data/ofaTokenizer.js';
import { NODE_FILE_OPS, replaceDirectory, writeFileAtomic } from './atomicWrite.js';
import { readOfaCheckpointWeights } from './ofaCheckpoint.js';
import { encodeSafetensors, type NamedArray } from './safetensors.js';
import { nodeSha256 } from './sha256.js';

import { OFA_TASK_SETTINGS, OFA_TASKS, type OfaTask } from './ofaModelFiles.js';

export { OFA_TASKS, type OfaTask };
/** fairseq task names (`cfg["task"]._name`) of the tasks mue runs. */
const TASK_OF_FAIRSEQ_TASK: Record<string, OfaTask> = { snli_ve: 've', caption: 'caption' };
const OUTPUT_FILES = ['config.json', 'model.safetensors', 'tokenizer.json'];

export interface OfaConvertOptions {
  checkpoint: string;
  bpeDir: string;
  out: string;
  /** Default: from the checkpoint's task (snli_ve -> ve, caption -> caption). */
  task?: OfaTask;
}

export interface OfaConvertResult {
  task: OfaTask;
  vocabSize: number;
  storedTensors: number;
  floatDtype: string;
  aliases: Record<string, string>;
}

export function convertOfaCheckpoint(options: OfaConvertOptions): OfaConvertResult {
  const out = resolve(options.out);
  if (existsSync(out) && !statSync(out).isDirectory()) throw new Error(`--out ${options.out} exists and is not a directory`);
  const checkpoint = readOfaCheckpointWeights(options.checkpoint);
  const task = options.task ?? taskOf(checkpoint.taskArgs._name ?? checkpoint.modelArgs.task, options.checkpoint);
  // OFA's task defaults (tasks/ofa_task.py) when neither cfg["model"] nor cfg["task"] names them.
  const integer = (key: string, fallback: number): number => {
    const value = checkpoint.modelArgs[key] ?? checkpoint.taskArgs[key] ?? fallback;
    if (!Number.isInteger(value)) throw new Error(`${options.checkpoint}: ${key} is ${JSON.stringify(value)}, expected an integer`);
    return value as number;
  };
  const { json: tokenizer } = buildOfaTokenizerJson(options.bpeDir, {
    vocabSize: checkpoint.vocabSize, codeDictSize: integer('code_dict_size', 8192), numBins: integer('num_bins', 1000),
  });

  const stored = new Map<string, NamedArray>();
  for (const [name, tensor] of checkpoint.weights) if (!(name in checkpoint.aliases)) stored.set(name, tensor);
  // The task settings the runtime must follow (cfg["task"], else the model args, as fairseq resolves them).
  const taskArgs = Object.fromEntries(OFA_TASK_SETTINGS.flatMap((key) => {
    const value = checkpoint.taskArgs[key] ?? checkpoint.modelArgs[key];
    return value === undefined ? [] : [[key, value]];
  }));
  const config = { family: 'ofa', task, vocabSize: checkpoint.vocabSize, modelArgs: checkpoint.modelArgs, taskArgs };

  mkdirSync(dirname(out), { recursive: true });
  const fresh = join(dirname(out), `.${basename(out)}.writing-${process.pid}`);
  rmSync(fresh, { recursive: true, force: true });
  mkdirSync(fresh);
  try {
    writeFileAtomic(join(fresh, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
    writeFileAtomic(join(fresh, 'model.safetensors'), encodeSafetensors(stored, {
      dtype: 'F32',
      metadata: { format: 'ofa', aliases: JSON.stringify(checkpoint.aliases), source_dtype: checkpoint.floatDtype }, sha256: nodeSha256,
    }));
    writeFileAtomic(join(fresh, 'tokenizer.json'), `${JSON.stringify(tokenizer)}\n`);
    // Other files in an existing --out (exits.json, evaluation results) are kept.
    const outExists = existsSync(out);
    if (outExists) {
      for (const entry of readdirSync(out, { withFileTypes: true })) {
        if (entry.isFile() && !OUTPUT_FILES.includes(entry.name)) copyFileSync(join(out, entry.name), join(fresh, entry.name));
      }
    }
    replaceDirectory(fresh, out, NODE_FILE_OPS, outExists);
  } catch (error) {
    rmSync(fresh, { recursive: true, force: true });
    throw error;
  }
  return { task, vocabSize: checkpoint.vocabSize, storedTensors: stored.size, floatDtype: checkpoint.floatDtype, aliases: checkpoint.aliases };
}

/** The mue task of a fairseq task name (cfg["task"]._name, or a pre-hydra file's args.task). */
function taskOf(name: unknown, source: string): OfaTask {
  const task = typeof name === 'string' ? TASK_OF_FAIRSEQ_TASK[name] : undefined;
  if (task === undefined) throw new Error(`${source} was trained for task ${JSON.stringify(name ?? null)}; say which mue task it serves with --task ${OFA_TASKS.join('|')}`);
  return task;
}
