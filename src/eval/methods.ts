// The methods compared in one harness, each with the settings it sweeps (DESIGN 2.7):
// MuE, its ablations, and the baselines the paper compares against.
import type { Task } from '../model/checkpoint.js';
import { entropyExit, fixedDepthExit, marginExit, patienceExit } from '../runtime/exits.js';
import { KV_STRATEGIES } from '../runtime/decoderExits.js';
import { CAPTION_DECODING, type InferenceOptions } from '../runtime/mueModel.js';

export interface MethodSetting {
  method: string;
  setting: string;
  /** The swept number (threshold, patience, depth), for plots. */
  knob: number;
  options: InferenceOptions;
}

/** Which model a method runs on: the main one, or an ablation model trained differently. */
export type ModelRole = 'main' | 'joint' | 'lastlayer';

export const SIMILARITY_THRESHOLDS = [0.995, 0.99, 0.98, 0.97, 0.95, 0.93, 0.9, 0.85, 0.8];
/** The thresholds at which the other key/value strategies are compared with the default (fewer: they triple the sweep). */
export const KV_COMPARISON_THRESHOLDS = [0.99, 0.95, 0.9, 0.85];

const FULL: InferenceOptions = { imageThreshold: 1, textThreshold: 1, jointThreshold: 1, decoderThreshold: 1 };

/** Every method's sweep for a model of this shape; each entry says which model it needs. */
export function methodSweeps(task: Task, config: { encoderLayers: number; decoderLayers: number }): Array<MethodSetting & { role: ModelRole }> {
  const settings: Array<MethodSetting & { role: ModelRole }> = [];
  const add = (role: ModelRole, method: string, setting: string, knob: number, options: InferenceOptions) =>
    settings.push({ role, method, setting, knob, options: { ...FULL, ...options } });
  // Static truncation of encoder and decoder to k layers (a smaller static model's cost).
  for (let k = 1; k < Math.max(config.encoderLayers, config.decoderLayers); k++) {
    add('main', 'static', `k=${k}`, k, { encoderPolicy: fixedDepthExit(Math.min(k, config.encoderLayers)), decoderPolicy: fixedDepthExit(Math.min(k, config.decoderLayers)) });
  }
  // Decoder-only baselines, on output distributions (entropy scale depends on how many answers there are).
  const entropies = task === 've' ? [0.9, 0.7, 0.5, 0.3, 0.15, 0.05] : [2, 1.5, 1, 0.5, 0.25, 0.1];
  for (const entropy of entropies) add('main', 'deebert', `H<${entropy}`, entropy, { decoderPolicy: entropyExit(entropy) });
  for (let patience = 1; patience < config.decoderLayers - 1; patience++) add('main', 'pabee', `patience=${patience}`, patience, { decoderPolicy: patienceExit(patience) });
  for (const margin of [0.1, 0.3, 0.5, 0.7, 0.9]) add('main', 'calm', `margin>${margin}`, margin, { decoderPolicy: marginExit(margin) });
  // Similarity exits: encoder only, full MuE, and MuE on the ablation models.
  for (const tau of SIMILARITY_THRESHOLDS) {
    add('main', 'encoder-only', `τ=${tau}`, tau, { imageThreshold: tau, textThreshold: tau });
    add('main', 'mue', `τ=${tau}`, tau, { imageThreshold: tau, textThreshold: tau, decoderThreshold: tau });
    // Captions: MuE with each other way of filling skipped layers' key/values ('mue' runs the default, drop).
    // A one-token VE answer has no later token to read them, so there they would all be equal.
    if (task === 'caption') {
      for (const kvStrategy of KV_STRATEGIES.filter((strategy) => strategy !== CAPTION_DECODING.kvStrategy && KV_COMPARISON_THRESHOLDS.includes(tau))) {
        add('main', `mue-${kvStrategy}`, `τ=${tau}`, tau, { imageThreshold: tau, textThreshold: tau, decoderThreshold: tau, kvStrategy });
      }
    }
    add('joint', 'mue-joint', `τ=${tau}`, tau, { jointThreshold: tau, decoderThreshold: tau });
    add('lastlayer', 'mue-lastlayer', `τ=${tau}`, tau, { imageThreshold: tau, textThreshold: tau, decoderThreshold: tau });
  }
  return settings;
}
