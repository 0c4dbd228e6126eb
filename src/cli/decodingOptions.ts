// The decoding options shared by the commands that run a model (eval, calibrate, demo, serve).
// No commander defaults: what the user leaves out falls back to the runtime's official
// defaults (CAPTION_DECODING), which --help names.
import type { Command } from 'commander';
import { EXIT_GRANULARITIES, KV_STRATEGIES } from '../runtime/decoderExits.js';
import { THRESHOLD_SCHEDULES } from '../runtime/exits.js';
import { CAPTION_DECODING, MAX_BEAM_SIZE, type InferenceOptions } from '../runtime/mueModel.js';
import { integerOption, parseChoice } from './options.js';

export function addDecodingOptions(command: Command): Command {
  return command
    .addOption(integerOption('--beam-size <n>', `caption beam width (default ${CAPTION_DECODING.beamSize}, official; 1 = greedy; at most the model's vocabulary)`, 1, MAX_BEAM_SIZE))
    .option('--decoder-schedule <name>', `decoder threshold over caption steps: ${THRESHOLD_SCHEDULES.join(' | ')} (default ${CAPTION_DECODING.decoderSchedule}, official)`, parseChoice('--decoder-schedule', THRESHOLD_SCHEDULES))
    .option('--kv-strategy <name>', `key/values of decoder layers a token skipped: ${KV_STRATEGIES.join(' | ')} (default ${CAPTION_DECODING.kvStrategy}, official)`, parseChoice('--kv-strategy', KV_STRATEGIES))
    .option('--exit-granularity <name>', `decoder exit decision: ${EXIT_GRANULARITIES.join(' | ')} (default ${CAPTION_DECODING.exitGranularity}: each beam on its own; step = one per step for all beams, official)`, parseChoice('--exit-granularity', EXIT_GRANULARITIES));
}

/** The decoding options the user gave (only those). */
export function decodingFrom(raw: Record<string, unknown>): InferenceOptions {
  const options: InferenceOptions = {};
  if (raw.beamSize !== undefined) options.beamSize = raw.beamSize as number;
  if (raw.decoderSchedule !== undefined) options.decoderSchedule = raw.decoderSchedule as InferenceOptions['decoderSchedule'];
  if (raw.kvStrategy !== undefined) options.kvStrategy = raw.kvStrategy as InferenceOptions['kvStrategy'];
  if (raw.exitGranularity !== undefined) options.exitGranularity = raw.exitGranularity as InferenceOptions['exitGranularity'];
  return options;
}
