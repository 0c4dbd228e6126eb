// `mue predict`: one image (JPEG, PNG or WebP) + hypothesis or caption request, with MuE exits and telemetry.
import type { Command } from 'commander';
import { DEFAULT_READ_TIMEOUT_MS } from '../../data/boundedRead.js';
import { DEFAULT_IMAGE_LIMITS, loadImage, readImageFile } from '../../data/image.js';
import { EXIT_GRANULARITIES, KV_STRATEGIES } from '../../runtime/decoderExits.js';
import { THRESHOLD_SCHEDULES } from '../../runtime/exits.js';
import { CAPTION_DECODING, MAX_BEAM_SIZE, MuEModel, type InferenceOptions, type Telemetry } from '../../runtime/mueModel.js';
import { integerOption, MAX_THREADS, numberOption, parseChoice, THRESHOLD_RANGE } from '../options.js';

/** Longer n-grams than any model's output are meaningless. */
const MAX_NGRAM_SIZE = 64;
/** Longest caption asked for; the model's own limit (maxTargetLength) caps it further. */
const MAX_CAPTION_TOKENS = 1024;
/** Length penalty range: 0 = raw log-probability, larger favours longer captions. */
const LENGTH_PENALTY_RANGE = { min: 0, max: 10 };

export function registerPredictCommand(program: Command): void {
  program
    .command('predict')
    .description('answer a hypothesis about an image (ve) or caption it, exiting early; --json adds telemetry')
    .requiredOption('--model <dir>', 'model directory (checkpoint)')
    .requiredOption('--image <file>', `JPEG, PNG or WebP image (any size: mue models scale the shorter side to the model's and crop the centre, OFA models stretch it to the model's square, bicubic; at most ${DEFAULT_IMAGE_LIMITS.maxBytes / 2 ** 20} MB; a FIFO or pipe silent for ${DEFAULT_READ_TIMEOUT_MS / 1000} s is an error)`)
    .option('--text <hypothesis>', 'hypothesis (ve models)')
    .option('--premise <text>', 'premise, a caption of the image (ve models of the prompt formulation, as SNLI-VE gives one: "can image and text1 … imply text2 …?")')
    .option('--task <task>', 've | caption (default: the model\'s task)', parseChoice('--task', ['ve', 'caption'] as const))
    .addOption(numberOption('--image-threshold <x>', 'image-stream exit threshold (default: exits.json, else 1 = full depth)', THRESHOLD_RANGE))
    .addOption(numberOption('--text-threshold <x>', 'text-stream exit threshold', THRESHOLD_RANGE))
    .addOption(numberOption('--joint-threshold <x>', 'joint-encoder exit threshold (joint models)', THRESHOLD_RANGE))
    .addOption(numberOption('--decoder-threshold <x>', 'per-token decoder exit threshold', THRESHOLD_RANGE))
    .option('--decoder-schedule <name>', `decoder threshold over generation steps: ${THRESHOLD_SCHEDULES.join(' | ')} (default: decaying, the official schedule, for captions; constant for ve)`, parseChoice('--decoder-schedule', THRESHOLD_SCHEDULES))
    .option('--kv-strategy <name>', `key/values of decoder layers a token skipped: ${KV_STRATEGIES.join(' | ')} (drop = official)`, parseChoice('--kv-strategy', KV_STRATEGIES), CAPTION_DECODING.kvStrategy)
    .option('--exit-granularity <name>', `decoder exit decision: token (each beam on its own) | step (one per step for all beams, official)`, parseChoice('--exit-granularity', EXIT_GRANULARITIES), CAPTION_DECODING.exitGranularity)
    .addOption(integerOption('--beam-size <n>', 'beam search width (captions; 1 = greedy; at most the model\'s vocabulary)', 1, MAX_BEAM_SIZE, CAPTION_DECODING.beamSize))
    .addOption(integerOption('--no-repeat-ngram-size <n>', 'forbid repeating n-grams (captions; 0 = allow)', 0, MAX_NGRAM_SIZE, CAPTION_DECODING.noRepeatNgramSize))
    .addOption(integerOption('--max-length <n>', `caption tokens at most before the forced end token (default ${CAPTION_DECODING.maxLength}, capped by the model)`, 1, MAX_CAPTION_TOKENS))
    .addOption(numberOption('--length-penalty <x>', 'beams compete on log p / length^x (captions)', LENGTH_PENALTY_RANGE, CAPTION_DECODING.lengthPenalty))
    .addOption(integerOption('--threads <n>', 'ONNX Runtime intra-op threads', 1, MAX_THREADS))
    .option('--json', 'print the result with its telemetry as JSON')
    .action(async (raw: Record<string, unknown>) => {
      const imageBytes = readImageFile(raw.image as string); // before the model: a bad file fails fast
      const model = await MuEModel.load(raw.model as string, { threads: raw.threads as number | undefined });
      try {
        const image = await loadImage(imageBytes, model.imageResize, raw.image as string);
        const task = (raw.task as string | undefined) ?? model.task;
        if (task !== model.task) throw new Error(`${raw.model as string} is a ${model.task} model; it cannot do --task ${task}`);
        const options: InferenceOptions = {
          imageThreshold: raw.imageThreshold as number | undefined, textThreshold: raw.textThreshold as number | undefined,
          jointThreshold: raw.jointThreshold as number | undefined, decoderThreshold: raw.decoderThreshold as number | undefined,
          decoderSchedule: raw.decoderSchedule as InferenceOptions['decoderSchedule'], kvStrategy: raw.kvStrategy as InferenceOptions['kvStrategy'],
          exitGranularity: raw.exitGranularity as InferenceOptions['exitGranularity'], beamSize: raw.beamSize as number,
          noRepeatNgramSize: raw.noRepeatNgramSize as number, maxLength: raw.maxLength as number | undefined,
          lengthPenalty: raw.lengthPenalty as number, recordSimilarities: Boolean(raw.json),
        };
        let answer: string;
        let telemetry: Telemetry;
        if (task === 've') {
          if (typeof raw.text !== 'string') throw new Error('--text "<hypothesis>" is required for visual entailment');
          if (model.config.expectsPremise && raw.premise === undefined) {
            console.error('note: this model was trained with a premise (a caption of the image, --premise); without one it reads the hypothesis-only question');
          }
          ({ answer, telemetry } = await model.entail({ image, hypothesis: raw.text, premise: raw.premise as string | undefined }, options));
        } else {
          ({ caption: answer, telemetry } = await model.caption({ image }, options));
        }
        if (raw.json) {
          console.log(JSON.stringify({ task, answer, telemetry }, null, 2));
        } else {
          console.log(answer);
          const streams = telemetry.jointLayers !== undefined ? `joint ${telemetry.jointLayers}` : `image ${telemetry.imageLayers}, text ${telemetry.textLayers}`;
          console.log(`encoder layers: ${streams} of ${model.config.encoderLayers}; decoder layers per token: ${telemetry.tokenLayers.join(' ')} of ${model.config.decoderLayers}`);
          console.log(`FLOPs: ${(100 * telemetry.flops / telemetry.fullDepthFlops).toFixed(1)}% of full depth; ${telemetry.timeMs.toFixed(1)} ms`);
        }
      } finally {
        await model.dispose();
      }
    });
}
