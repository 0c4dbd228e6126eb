// ONNX Runtime training engine: one session per step shape runs the training-step graph
// (src/train/ortGraph.ts: forward, layer-wise loss, every gradient); AdamW updates the
// Float32Array parameters in TypeScript. Parameters are graph inputs, so nothing is rebuilt
// when they change; batches are padded up to a few fixed lengths so few graphs are built.
import * as ort from 'onnxruntime-node';
import { type ModelConfig, imagePatchCount } from '../model/config.js';
import { tf } from '../model/backend.js';
import type { NamedArray } from '../model/safetensors.js';
import { TfModel } from '../model/tfModel.js';
import type { AdamW } from './adamw.js';
import type { TrainingBatch } from './batch.js';
import type { LossOptions, StepResult, TrainingEngine } from './engine.js';
import { allowedTokenMask } from './loss.js';
import { type StepShape, trainingStepGraph, type TrainingStepGraph } from './ortGraph.js';

/** The most intra-op threads --threads accepts (this project's machines have 2–16 cores). */
export const MAX_THREADS = 16;

export interface OrtEngineOptions {
  loss: LossOptions;
  /** Intra-op threads of the session (1..MAX_THREADS). */
  threads: number;
  /**
   * Text and decoder lengths are padded up to a multiple of this (exact: padding is masked), so
   * few distinct graphs are built (each costs a session); 1 = no padding.
   */
  lengthBucket?: number;
  /** Write ORT's profile (JSON) of every session under this file prefix. */
  profilePrefix?: string;
}

/** Additive logit mask for tokens outside allowedTokens (as the tfjs loss). */
const MASKED = -1e9;
/** Sessions kept for distinct step shapes (each holds its own buffers); the least recently used is released. */
const MAX_SESSIONS = 4;
/** The trainer's padding: lengths up to 16 / 24 tokens give at most 2 × 3 step graphs. */
export const DEFAULT_LENGTH_BUCKET = 8;

/** The batch as the graph's feeds (padded to `shape`). */
export interface StepFeeds { shape: StepShape; feeds: Record<string, ort.Tensor> }

/**
 * Converts a TrainingBatch to the step graph's batch inputs, padding text and decoder lengths
 * up to `shape` (padded text is masked as a key; padded target positions weigh 0).
 */
export function stepFeeds(config: ModelConfig, batch: TrainingBatch, loss: LossOptions, bucket: number): StepFeeds {
  const [size, textLength] = batch.inputs.textIds.shape;
  const targetLength = batch.targets.shape[1];
  const roundUp = (n: number, limit: number) => Math.max(n, Math.min(limit, Math.ceil(n / bucket) * bucket));
  const shape: StepShape = { batch: size, textLength: roundUp(textLength, config.maxTextLength), targetLength: roundUp(targetLength, config.maxTargetLength) };
  const { vocabSize } = config;
  const patchCount = imagePatchCount(config);
  const textIds = batch.inputs.textIds.dataSync();
  const textMask = batch.inputs.textMask.dataSync();
  const decoderIds = batch.inputs.decoderIds.dataSync();
  const targets = batch.targets.dataSync();
  const targetMask = batch.targetMask.dataSync();

  const paddedText = new BigInt64Array(size * shape.textLength);
  const paddedTextMask = new Float32Array(size * shape.textLength);
  const memoryMask = new Float32Array(size * (patchCount + shape.textLength));
  const paddedDecoder = new BigInt64Array(size * shape.targetLength);
  for (let b = 0; b < size; b++) {
    memoryMask.fill(1, b * (patchCount + shape.textLength), b * (patchCount + shape.textLength) + patchCount);
    for (let t = 0; t < textLength; t++) {
      paddedText[b * shape.textLength + t] = BigInt(textIds[b * textLength + t]!);
      paddedTextMask[b * shape.textLength + t] = textMask[b * textLength + t]!;
      memoryMask[b * (patchCount + shape.textLength) + patchCount + t] = textMask[b * textLength + t]!;
    }
    for (let t = 0; t < targetLength; t++) paddedDecoder[b * shape.targetLength + t] = BigInt(decoderIds[b * targetLength + t]!);
  }

  // W = mask_bt / max(Σ mask, 1) · ((1 − ε)·onehot(y_bt) + ε·allowed / |allowed|), so CE = −Σ W ⊙ log p.
  const allowed = batch.allowedTokens ? allowedTokenMask(batch.allowedTokens, vocabSize) : new Float32Array(vocabSize).fill(1);
  const allowedCount = allowed.reduce((a, b) => a + b, 0);
  let maskSum = 0;
  for (const m of targetMask) maskSum += m;
  const normaliser = 1 / Math.max(maskSum, 1);
  const targetWeights = new Float32Array(size * shape.targetLength * vocabSize);
  for (let b = 0; b < size; b++) {
    for (let t = 0; t < targetLength; t++) {
      const weight = targetMask[b * targetLength + t]! * normaliser;
      if (weight === 0) continue;
      const row = (b * shape.targetLength + t) * vocabSize;
      for (let v = 0; v < vocabSize; v++) targetWeights[row + v] = (weight * loss.smoothing * allowed[v]!) / allowedCount;
      targetWeights[row + targets[b * targetLength + t]!] += weight * (1 - loss.smoothing);
    }
  }
  const allowedLogits = allowed.map((a) => (a ? 0 : MASKED));
  const images = batch.inputs.images;
  return {
    shape,
    feeds: {
      pixels: new ort.Tensor('float32', images.dataSync() as Float32Array, images.shape),
      text_ids: new ort.Tensor('int64', paddedText, [size, shape.textLength]),
      text_mask: new ort.Tensor('float32', paddedTextMask, [size, shape.textLength]),
      memory_mask: new ort.Tensor('float32', memoryMask, [size, patchCount + shape.textLength]),
      decoder_ids: new ort.Tensor('int64', paddedDecoder, [size, shape.targetLength]),
      target_weights: new ort.Tensor('float32', targetWeights, [size, shape.targetLength, vocabSize]),
      allowed_logits: new ort.Tensor('float32', allowedLogits, [vocabSize]),
    },
  };
}

interface StepSession { graph: TrainingStepGraph; session: ort.InferenceSession }

export class OrtEngine implements TrainingEngine {
  private readonly sessions = new Map<string, Promise<StepSession>>();

  constructor(
    readonly config: ModelConfig,
    /** The parameters, updated in place by AdamW. */
    private readonly parameters: Map<string, NamedArray>,
    private readonly optimizer: AdamW,
    private readonly options: OrtEngineOptions,
  ) {
    if (!Number.isInteger(options.threads) || options.threads < 1 || options.threads > MAX_THREADS) {
      throw new Error(`--threads must be an integer from 1 to ${MAX_THREADS} (got ${options.threads})`);
    }
  }

  /** Loss, per-layer losses and every parameter's gradient of the batch at the current weights. */
  async lossAndGradients(batch: TrainingBatch): Promise<{ loss: number; layerLosses: number[]; gradients: Map<string, Float32Array> }> {
    const { shape, feeds } = stepFeeds(this.config, batch, this.options.loss, this.options.lengthBucket ?? 1);
    const { graph, session } = await this.sessionFor(shape);
    for (const name of graph.parameters) {
      const parameter = this.parameters.get(name)!;
      feeds[name] = new ort.Tensor('float32', parameter.data, parameter.shape);
    }
    const results = await session.run(feeds);
    const scalar = (name: string) => (results[name]!.data as Float32Array)[0]!;
    return {
      loss: scalar('loss'),
      layerLosses: graph.layerLossNames.map(scalar),
      gradients: new Map(graph.parameters.map((name) => [name, results[graph.gradientNames.get(name)!]!.data as Float32Array])),
    };
  }

  async step(batch: TrainingBatch): Promise<StepResult> {
    const { loss, layerLosses, gradients } = await this.lossAndGradients(batch);
    return { loss, layerLosses, ...this.optimizer.apply(this.parameters, gradients) };
  }

  weights(): Map<string, NamedArray> {
    return new Map([...this.parameters].map(([name, { shape, data }]) => [name, { shape, data: Float32Array.from(data) }]));
  }

  withModel<T>(use: (model: TfModel) => T): T {
    const model = this.referenceModel();
    try {
      return use(model);
    } finally {
      model.dispose();
    }
  }

  async finish(): Promise<TfModel> {
    await this.release();
    return this.referenceModel();
  }

  /** Ends the sessions (writing their profiles when profiling). */
  async release(): Promise<void> {
    for (const pending of this.sessions.values()) {
      const built = await pending.catch(() => null); // a graph that failed to build has no session
      if (!built) continue;
      const { session } = built;
      if (this.options.profilePrefix) session.endProfiling();
      await session.release();
    }
    this.sessions.clear();
  }

  private referenceModel(): TfModel {
    return TfModel.fromTensors(this.config, new Map([...this.parameters].map(([name, { shape, data }]) => [name, tf.tensor(data, shape)])));
  }

  private sessionFor(shape: StepShape): Promise<StepSession> {
    const key = `${shape.batch}x${shape.textLength}x${shape.targetLength}`;
    let pending = this.sessions.get(key);
    if (pending) {
      // Most recently used last.
      this.sessions.delete(key);
      this.sessions.set(key, pending);
      return pending;
    }
    if (this.sessions.size >= MAX_SESSIONS) {
      const [oldestKey, oldest] = this.sessions.entries().next().value!;
      this.sessions.delete(oldestKey);
      void oldest.then(({ session }) => session.release());
    }
    pending = (async () => {
      const graph = trainingStepGraph(this.config, shape, this.options.loss.mode);
      const session = await ort.InferenceSession.create(graph.model, {
        graphOptimizationLevel: 'all',
        intraOpNumThreads: this.options.threads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        ...(this.options.profilePrefix ? { enableProfiling: true, profileFilePrefix: `${this.options.profilePrefix}-${key}` } : {}),
      });
      return { graph, session };
    })();
    this.sessions.set(key, pending);
    return pending;
  }
}
