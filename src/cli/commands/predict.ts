// `mue predict`: one image (JPEG, PNG or WebP) + hypothesis or caption request, with MuE exits and telemetry.
import type { Command } from 'commander';
import { DEFAULT_READ_TIMEOUT_MS } from '../../data/boundedRead.js';
import { DEFAULT_IMAGE_LIMITS, loadImage, readImageFile } from '../../data/image.js';
import { KV_STRATEGIES } from '../../runtime/decoderExits.js';
import { MAX_BEAM_SIZE, MuEModel, type InferenceOptions, type Telemetry } from '../../runtime/mueModel.js';
import { integerOption, MAX_THREADS, numberOption, parseChoice, THRESHOLD_RANGE } from '../options.js';

/** Longer n-grams than any model's output are meaningless. */
const MAX_NGRAM_SIZE = 64;

export function registerPredictCommand(program: Command): void {
  program
    .command('predict')
    .description('answer a hypothesis about an image (ve) or caption it, exiting early; --json adds telemetry')
    .requiredOption('--model <dir>', 'model directory (checkpoint)')
    .requiredOption('--image <file>', `JPEG, PNG or WebP image (any size: shorter side scaled to the model's, centre-cropped; at most ${DEFAULT_IMAGE_LIMITS.maxBytes / 2 ** 20} MB; a FIFO or pipe silent for ${DEFAULT_READ_TIMEOUT_MS / 1000} s is an error)`)
    .option('--text <hypothesis>', 'hypothesis (ve models)')
    .option('--task <task>', 've | caption (default: the model\'s task)', parseChoice('--task', ['ve', 'caption'] as const))
    .addOption(numberOption('--image-threshold <x>', 'image-stream exit threshold (default: exits.json, else 1 = full depth)', THRESHOLD_RANGE))
    .addOption(numberOption('--text-threshold <x>', 'text-stream exit threshold', THRESHOLD_RANGE))
    .addOption(numberOption('--joint-threshold <x>', 'joint-encoder exit threshold (joint models)', THRESHOLD_RANGE))
    .addOption(numberOption('--decoder-threshold <x>', 'per-token decoder exit threshold', THRESHOLD_RANGE))
    .option('--decaying', 'decoder threshold decays with position (CALM-style schedule)')
    .option('--kv-strategy <name>', `skipped-layer key/values: ${KV_STRATEGIES.join(' | ')}`, parseChoice('--kv-strategy', KV_STRATEGIES), 'propagate')
    .addOption(integerOption('--beam-size <n>', 'beam search width (captions; at most the model\'s vocabulary)', 1, MAX_BEAM_SIZE, 1))
    .addOption(integerOption('--no-repeat-ngram-size <n>', 'forbid repeating n-grams (captions; 0 = allow)', 0, MAX_NGRAM_SIZE, 0))
    .addOption(integerOption('--threads <n>', 'ONNX Runtime intra-op threads', 1, MAX_THREADS))
    .option('--json', 'print the result with its telemetry as JSON')
    .action(async (raw: Record<string, unknown>) => {
      const imageBytes = readImageFile(raw.image as string); // before the model: a bad file fails fast
      const model = await MuEModel.load(raw.model as string, { threads: raw.threads as number | undefined });
      try {
        const image = await loadImage(imageBytes, model.config.imageSize, raw.image as string);
        const task = (raw.task as string | undefined) ?? model.task;
        if (task !== model.task) throw new Error(`${raw.model as string} is a ${model.task} model; it cannot do --task ${task}`);
        const options: InferenceOptions = {
          imageThreshold: raw.imageThreshold as number | undefined, textThreshold: raw.textThreshold as number | undefined,
          jointThreshold: raw.jointThreshold as number | undefined, decoderThreshold: raw.decoderThreshold as number | undefined,
          decoderSchedule: raw.decaying ? 'decaying' : 'constant', kvStrategy: raw.kvStrategy as InferenceOptions['kvStrategy'],
          beamSize: raw.beamSize as number, noRepeatNgramSize: raw.noRepeatNgramSize as number, recordSimilarities: Boolean(raw.json),
        };
        let answer: string;
        let telemetry: Telemetry;
        if (task === 've') {
          if (typeof raw.text !== 'string') throw new Error('--text "<hypothesis>" is required for visual entailment');
          ({ answer, telemetry } = await model.entail({ image, hypothesis: raw.text }, options));
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
