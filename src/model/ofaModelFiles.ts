// A converted OFA model directory's files parsed from memory (written by `mue convert-ofa`,
// src/model/ofaConvert.ts): config.json { family: "ofa", task, vocabSize, modelArgs, taskArgs },
// model.safetensors (official state-dict names, the tied embedding stored once and its copies
// named in __metadata__.aliases), tokenizer.json. No file system, like modelFiles.ts, so the
// Node and browser loaders validate alike.
import { tokenizerFromJSON } from '../data/hfTokenizer.js';
import type { TextTokenizer } from '../data/tokenizer.js';
import { countResnetBlocks, type OfaConfig, ofaConfigFromModelArgs } from './ofaConfig.js';
import { checkOfaWeights } from './ofaParameters.js';
import { decodeSafetensors, type NamedArray, type Sha256 } from './safetensors.js';

export type OfaTask = 've' | 'caption';
export const OFA_TASKS: readonly OfaTask[] = ['ve', 'caption'];

/** cfg["task"] fields inference follows: the VE decoder prompt, whether VE reads a premise, the word limit. */
export const OFA_TASK_SETTINGS = ['prompt_type', 'add_caption', 'max_src_length'] as const;

/** How the checkpoint was trained to read its inputs (absent fields: the MuE scripts' values). */
export interface OfaTaskSettings {
  /** VE: the decoder reads <s> + the question (prev_output, the only set-up mue runs). */
  promptType: string;
  /** VE: trained with SNLI-VE's caption as a premise (--add-caption). */
  addCaption: boolean;
  /** Words kept of a hypothesis or premise. */
  maxWords: number;
}

export interface ParsedOfaModel {
  family: 'ofa';
  task: OfaTask;
  config: OfaConfig;
  settings: OfaTaskSettings;
  tokenizer: TextTokenizer;
  /** Every tensor the forward reads, the tied copies included (sharing the stored array). */
  weights: Map<string, NamedArray>;
}

/** rawConfig is config.json's object (family "ofa"); the first problem is named with its file. */
export function parseOfaModelFiles(rawConfig: Record<string, unknown>, weightsBytes: Uint8Array, rawTokenizer: unknown, sha256?: Sha256): ParsedOfaModel {
  const task = rawConfig.task as OfaTask;
  if (!OFA_TASKS.includes(task)) throw new Error(`config.json: "task" must be one of ${OFA_TASKS.join(', ')} (got ${JSON.stringify(rawConfig.task)})`);
  const vocabSize = rawConfig.vocabSize;
  if (typeof vocabSize !== 'number' || !Number.isInteger(vocabSize)) throw new Error(`config.json: "vocabSize" must be an integer (got ${JSON.stringify(vocabSize)})`);
  const { tensors: weights, metadata } = decodeSafetensors(weightsBytes, 'model.safetensors', sha256);
  let aliases: Record<string, unknown> = {};
  if (metadata.aliases !== undefined) {
    try {
      aliases = JSON.parse(metadata.aliases) as Record<string, unknown>;
    } catch {
      throw new Error('model.safetensors: __metadata__.aliases is not valid JSON');
    }
  }
  for (const [alias, target] of Object.entries(aliases)) {
    const tensor = typeof target === 'string' ? weights.get(target) : undefined;
    if (!tensor) throw new Error(`model.safetensors: alias ${alias} names ${JSON.stringify(target)}, which the file does not hold`);
    weights.set(alias, tensor);
  }
  const config = ofaConfigFromModelArgs(rawConfig.modelArgs, vocabSize, countResnetBlocks(weights.keys()));
  checkOfaWeights(config, weights, 'model.safetensors');
  for (const [name, { data }] of weights) {
    const index = data.findIndex((value) => !Number.isFinite(value));
    if (index >= 0) throw new Error(`model.safetensors: tensor "${name}" holds ${data[index]} at index ${index} (a corrupted model)`);
  }
  const settings = taskSettings(rawConfig.taskArgs);
  if (task === 've' && settings.promptType !== 'prev_output') {
    throw new Error(`config.json: this VE checkpoint was trained with prompt_type ${JSON.stringify(settings.promptType)}; mue runs the MuE set-up, prompt_type "prev_output", only`);
  }
  const tokenizer = tokenizerFromJSON(rawTokenizer);
  if (tokenizer.vocabSize !== vocabSize) throw new Error(`config/tokenizer disagree: config.json says vocabSize ${vocabSize}, tokenizer.json has ${tokenizer.vocabSize} tokens`);
  return { family: 'ofa', task, config, settings, tokenizer, weights };
}

function taskSettings(raw: unknown): OfaTaskSettings {
  if (raw !== undefined && (typeof raw !== 'object' || raw === null || Array.isArray(raw))) throw new Error('config.json: "taskArgs" must be an object');
  const args = (raw ?? {}) as Record<string, unknown>;
  const promptType = args.prompt_type ?? 'prev_output';
  const addCaption = args.add_caption ?? false;
  const maxWords = args.max_src_length ?? 80;
  if (typeof promptType !== 'string') throw new Error(`config.json: taskArgs.prompt_type must be a string (got ${JSON.stringify(promptType)})`);
  if (typeof addCaption !== 'boolean') throw new Error(`config.json: taskArgs.add_caption must be true or false (got ${JSON.stringify(addCaption)})`);
  if (typeof maxWords !== 'number' || !Number.isInteger(maxWords) || maxWords < 1) throw new Error(`config.json: taskArgs.max_src_length must be a positive integer (got ${JSON.stringify(maxWords)})`);
  return { promptType, addCaption, maxWords };
}
