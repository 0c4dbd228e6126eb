// A converted OFA model directory's files parsed from memory (written by `mue convert-ofa`,
// src/model/ofaConvert.ts): config.json { family: "ofa", task, vocabSize, modelArgs },
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

export interface ParsedOfaModel {
  family: 'ofa';
  task: OfaTask;
  config: OfaConfig;
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
  const tokenizer = tokenizerFromJSON(rawTokenizer);
  if (tokenizer.vocabSize !== vocabSize) throw new Error(`config/tokenizer disagree: config.json says vocabSize ${vocabSize}, tokenizer.json has ${tokenizer.vocabSize} tokens`);
  return { family: 'ofa', task, config, tokenizer, weights };
}
