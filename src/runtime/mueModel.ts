// The public inference API: load a checkpoint, answer entailment questions and write
// captions with MuE exits, and report what each answer cost.
import { existsSync } from 'node:fs';
import { readFileBounded } from '../data/boundedRead.js';
import { join } from 'node:path';
import { encodeText, normaliseImage, type RgbPixels } from '../data/preprocess.js';
import { CAPTION_PROMPT } from '../data/sceneworld.js';
import type { TextTokenizer } from '../data/tokenizer.js';
import { loadCheckpoint, type Task } from '../model/checkpoint.js';
import { imagePatchCount, type ModelConfig } from '../model/config.js';
import type { Sequence } from './decoderExits.js';
import { KV_STRATEGIES, type DecoderContext, type KvStrategy } from './decoderExits.js';
import { runEncoderStream, type StreamResult } from './encoderExits.js';
import { checkThreshold, similarityExit, type ExitPolicy, type ThresholdSchedule } from './exits.js';
import { crossKeyValueFlops, encoderLayerFlops, imageEmbeddingFlops } from './flops.js';
import { beamSearch, greedySearch } from './generate.js';
import { LayerRunner } from './layerRunner.js';
import { concatSequences } from './rows.js';

export const ENTAILMENT_ANSWERS = ['yes', 'no', 'maybe'] as const;
export type EntailmentAnswer = (typeof ENTAILMENT_ANSWERS)[number];

/** Calibrated thresholds stored beside the weights (written by `mue calibrate`). */
export const EXITS_FILE = 'exits.json';
/** Widest beam search: memory grows with beams × vocabulary × length, and wider beams stop helping long before this. */
export const MAX_BEAM_SIZE = 64;

export interface ExitThresholds {
  imageThreshold: number;
  textThreshold: number;
  /** Joint-mode models: one threshold for the concatenated sequence. */
  jointThreshold: number;
  decoderThreshold: number;
}

export interface InferenceOptions extends Partial<ExitThresholds> {
  decoderSchedule?: ThresholdSchedule;
  /** Replace the similarity criterion (e.g. a baseline); thresholds are then ignored for that part. */
  encoderPolicy?: ExitPolicy;
  decoderPolicy?: ExitPolicy;
  kvStrategy?: KvStrategy;
  beamSize?: number;
  lengthPenalty?: number;
  /** Generated tokens at most, <eos> included (default: the model's maximum). */
  maxLength?: number;
  noRepeatNgramSize?: number;
  /** Include the similarity at every layer in the telemetry. */
  recordSimilarities?: boolean;
}

export interface Telemetry {
  /** Encoder layers run per stream (decomposed) or for the joint sequence. */
  imageLayers?: number;
  textLayers?: number;
  jointLayers?: number;
  /** Decoder layers run for each generated token. */
  tokenLayers: number[];
  flops: number;
  fullDepthFlops: number;
  /** Wall time of the batch this request ran in. */
  timeMs: number;
  thresholds: ExitThresholds;
  similarities?: { image?: number[]; text?: number[]; joint?: number[]; tokens: number[][] };
}

export interface EntailInput { image: RgbPixels; hypothesis: string }
export interface CaptionInput { image: RgbPixels }
export interface EntailResult { answer: EntailmentAnswer; telemetry: Telemetry }
export interface CaptionResult { caption: string; telemetry: Telemetry }

const FULL_DEPTH: ExitThresholds = { imageThreshold: 1, textThreshold: 1, jointThreshold: 1, decoderThreshold: 1 };

export class MuEModel {
  private constructor(
    readonly task: Task,
    readonly config: ModelConfig,
    readonly tokenizer: TextTokenizer,
    /** Thresholds used when a call gives none: exits.json if present, else 1 (full depth). */
    readonly defaultThresholds: ExitThresholds,
    private readonly runner: LayerRunner,
  ) {}

  static async load(directory: string, options: { threads?: number } = {}): Promise<MuEModel> {
    const checkpoint = loadCheckpoint(directory);
    const runner = await LayerRunner.create(checkpoint.config, checkpoint.weights, { threads: options.threads });
    return new MuEModel(checkpoint.task, checkpoint.config, checkpoint.tokenizer, readExitThresholds(directory), runner);
  }

  async entail(input: EntailInput, options: InferenceOptions = {}): Promise<EntailResult> {
    return (await this.entailBatch([input], options))[0]!;
  }

  async caption(input: CaptionInput, options: InferenceOptions = {}): Promise<CaptionResult> {
    return (await this.captionBatch([input], options))[0]!;
  }

  /** Any batch size; every sample exits on its own, and results equal one-by-one calls. */
  async entailBatch(inputs: EntailInput[], options: InferenceOptions = {}): Promise<EntailResult[]> {
    const answerIds = ENTAILMENT_ANSWERS.map((word) => this.tokenizer.idOf(word));
    const runs = await this.run(inputs.map((input) => ({ image: input.image, text: input.hypothesis })), options, answerIds, 1);
    return runs.map(({ sequence, telemetry }) => ({ answer: ENTAILMENT_ANSWERS[answerIds.indexOf(sequence.tokens[0]!)]!, telemetry }));
  }

  async captionBatch(inputs: CaptionInput[], options: InferenceOptions = {}): Promise<CaptionResult[]> {
    const maxLength = options.maxLength ?? this.config.maxTargetLength;
    if (!Number.isInteger(maxLength) || maxLength < 1 || maxLength > this.config.maxTargetLength) {
      throw new Error(`maxLength must be an integer in [1, ${this.config.maxTargetLength}] (got ${maxLength})`);
    }
    const runs = await this.run(inputs.map((input) => ({ image: input.image, text: CAPTION_PROMPT })), options, undefined, maxLength);
    return runs.map(({ sequence, telemetry }) => ({ caption: this.tokenizer.decode(sequence.tokens), telemetry }));
  }

  async dispose(): Promise<void> {
    await this.runner.dispose();
  }

  /** Encoder with per-stream exits, then decoding with per-token exits, for a batch. */
  private async run(
    inputs: Array<{ image: RgbPixels; text: string }>, options: InferenceOptions, allowedTokens: number[] | undefined, maxLength: number,
  ): Promise<Array<{ sequence: Sequence; telemetry: Telemetry }>> {
    if (inputs.length === 0) return [];
    const started = performance.now();
    const thresholds = this.resolveThresholds(options);
    const kvStrategy = options.kvStrategy ?? 'propagate';
    if (!KV_STRATEGIES.includes(kvStrategy)) throw new Error(`kvStrategy must be one of ${KV_STRATEGIES.join(', ')} (got ${kvStrategy})`);
    const beamSize = options.beamSize ?? 1;
    const beamLimit = Math.min(MAX_BEAM_SIZE, this.config.vocabSize);
    if (!Number.isInteger(beamSize) || beamSize < 1 || beamSize > beamLimit) throw new Error(`beamSize must be an integer from 1 to ${beamLimit} (got ${beamSize})`);
    const noRepeatNgramSize = options.noRepeatNgramSize ?? 0;
    if (!Number.isInteger(noRepeatNgramSize) || noRepeatNgramSize < 0) throw new Error(`noRepeatNgramSize must be a non-negative integer (got ${noRepeatNgramSize})`);
    const lengthPenalty = options.lengthPenalty ?? 1;
    if (!Number.isFinite(lengthPenalty)) throw new Error(`lengthPenalty must be a finite number (got ${lengthPenalty})`);
    if (options.decoderSchedule !== undefined && options.decoderSchedule !== 'constant' && options.decoderSchedule !== 'decaying') {
      throw new Error(`decoderSchedule must be "constant" or "decaying" (got ${JSON.stringify(options.decoderSchedule)})`);
    }
    // Encoder streams have no output distribution: only criteria that read the states can stop them.
    if (options.encoderPolicy?.needsHead) throw new Error(`encoderPolicy ${options.encoderPolicy.name} reads the output distribution, which only the decoder has`);
    const { config, runner } = this;
    const record = options.recordSimilarities ?? false;
    const batch = inputs.length;
    const patches = imagePatchCount(config);
    const textIds = inputs.map((input) => encodeText(this.tokenizer, input.text, config.maxTextLength));
    const pixels = new Float32Array(batch * config.imageSize * config.imageSize * 3);
    inputs.forEach((input, row) => pixels.set(normaliseImage(input.image, config.imageSize), row * config.imageSize * config.imageSize * 3));

    // Encoder: embeddings, then each stream through the layers with its own exits. (B, Np, D), (B, Lt, D)
    const textLengths = textIds.map((ids) => ids.length);
    const textLength = Math.max(...textLengths);
    const paddedText = textIds.map((ids) => [...ids, ...new Array<number>(textLength - ids.length).fill(this.tokenizer.padId)]);
    const textMask = Float32Array.from(paddedText.flatMap((ids, row) => ids.map((_, t) => (t < textLengths[row]! ? 1 : 0))));
    const imageEmbedded = await runner.embedImage(pixels, batch);
    const textEmbedded = await runner.embedText(paddedText);
    const memoryLength = patches + textLength;
    const memoryMask = new Float32Array(batch * memoryLength);
    for (let row = 0; row < batch; row++) memoryMask.fill(1, row * memoryLength, row * memoryLength + patches + textLengths[row]!);
    let streams: { image?: StreamResult; text?: StreamResult; joint?: StreamResult };
    let lastLayerStates: Float32Array; // (B, M, D)
    if (config.encoderMode === 'decomposed') {
      const image = await runEncoderStream(runner, imageEmbedded, new Float32Array(batch * patches).fill(1), new Array(batch).fill(patches),
        options.encoderPolicy ?? similarityExit(thresholds.imageThreshold), record);
      const text = await runEncoderStream(runner, textEmbedded, textMask, textLengths, options.encoderPolicy ?? similarityExit(thresholds.textThreshold), record);
      streams = { image, text };
      lastLayerStates = concatSequences([image.finalStates, text.finalStates], [patches, textLength], config.dim, batch);
    } else {
      // Joint: one sequence [image ; text] whose real tokens must come first, so padding goes last.
      const jointEmbedded = concatSequences([imageEmbedded, textEmbedded], [patches, textLength], config.dim, batch);
      const joint = await runEncoderStream(runner, jointEmbedded, memoryMask, textLengths.map((n) => patches + n),
        options.encoderPolicy ?? similarityExit(thresholds.jointThreshold), record);
      streams = { joint };
      lastLayerStates = joint.finalStates;
    }
    const memory = await runner.encoderFinalNorm(lastLayerStates, batch, memoryLength);

    // Decoder with per-token exits.
    const flops = Array.from({ length: batch }, (_, s) =>
      imageEmbeddingFlops(config) + (streams.image?.flops[s] ?? 0) + (streams.text?.flops[s] ?? 0) + (streams.joint?.flops[s] ?? 0));
    const context: DecoderContext = {
      runner, memory, memoryMask, memoryLength, samples: batch,
      policy: options.decoderPolicy ?? similarityExit(thresholds.decoderThreshold, options.decoderSchedule),
      strategy: kvStrategy, allowedTokens, maxLength, bosId: this.tokenizer.bosId, crossCache: [], flops, recordSimilarities: record,
      fullDepthFlops: new Array<number>(batch).fill(0),
    };
    const searchOptions = { beamSize, lengthPenalty, noRepeatNgramSize, eosId: this.tokenizer.eosId };
    const sequences = beamSize === 1 ? await greedySearch(context, searchOptions) : await beamSearch(context, searchOptions);
    const timeMs = performance.now() - started;

    return sequences.map((sequence, s) => {
      const tokens = sequence.tokens.at(-1) === this.tokenizer.eosId ? sequence.tokens.slice(0, -1) : sequence.tokens;
      const telemetry: Telemetry = {
        imageLayers: streams.image?.layersUsed[s], textLayers: streams.text?.layersUsed[s], jointLayers: streams.joint?.layersUsed[s],
        tokenLayers: sequence.tokenLayers,
        flops: context.flops[s]!,
        fullDepthFlops: this.fullDepthEncoderFlops(config.encoderMode === 'decomposed' ? [patches, textLength] : [memoryLength], memoryLength) + context.fullDepthFlops[s]!,
        timeMs, thresholds,
      };
      if (options.recordSimilarities) {
        telemetry.similarities = {
          image: streams.image?.similarities[s], text: streams.text?.similarities[s], joint: streams.joint?.similarities[s],
          tokens: sequence.tokenSimilarities,
        };
      }
      return { sequence: { ...sequence, tokens }, telemetry };
    });
  }

  /**
   * Full-depth FLOPs of the request's encoder side: every encoder layer per stream, and every decoder
   * layer's cross K/V. The decoding steps' full-depth cost is counted as they run (DecoderContext).
   */
  private fullDepthEncoderFlops(streamLengths: number[], memoryLength: number): number {
    const c = this.config;
    let total = imageEmbeddingFlops(c);
    for (const length of streamLengths) total += c.encoderLayers * encoderLayerFlops(c, length);
    return total + c.decoderLayers * crossKeyValueFlops(c, memoryLength);
  }

  private resolveThresholds(options: InferenceOptions): ExitThresholds {
    const thresholds = { ...this.defaultThresholds };
    for (const key of Object.keys(FULL_DEPTH) as (keyof ExitThresholds)[]) {
      if (options[key] !== undefined) thresholds[key] = checkThreshold(key, options[key]);
    }
    return thresholds;
  }
}

/** exits.json is a few hundred bytes; anything near this is not one. */
const MAX_EXITS_FILE_BYTES = 1024 * 1024;

/** exits.json if present and valid, else full depth. */
export function readExitThresholds(directory: string): ExitThresholds {
  const path = join(directory, EXITS_FILE);
  if (!existsSync(path)) return { ...FULL_DEPTH };
  let raw: Record<string, unknown>;
  let text: string;
  try {
    text = readFileBounded(path, MAX_EXITS_FILE_BYTES).toString('utf8');
  } catch (error) {
    throw new Error(`${path}: cannot read it: ${(error as Error).message}`);
  }
  try {
    raw = JSON.parse(text);
  } catch {
    throw new Error(`${EXITS_FILE} is not valid JSON`);
  }
  const thresholds = { ...FULL_DEPTH };
  for (const key of Object.keys(FULL_DEPTH) as (keyof ExitThresholds)[]) {
    if (raw[key] !== undefined) thresholds[key] = checkThreshold(`${EXITS_FILE}: ${key}`, raw[key] as number);
  }
  return thresholds;
}
