// Runs the model piece by piece with ONNX Runtime: one InferenceSession per ONNX graph of
// src/graph/layerGraphs.ts, so early-exit logic decides in TypeScript between layers.
// A thin layer: inputs are wrapped as Tensor views (no copies), outputs returned as is.
// The ONNX Runtime implementation is injected (OrtBackend): onnxruntime-node or onnxruntime-web.
// Shapes: B batch, T sequence, t cached decoder positions, M memory tokens, D width, V vocabulary;
// every array is row-major float32 with those dims, keys/values token-major (B, T, D).
import { imagePatchCount, type ModelConfig } from '../model/config.js';
import type { NamedArray } from '../model/safetensors.js';
import { fullStackPieces, layerPieces } from '../graph/layerGraphs.js';
import type { DecoderStepOutput, ExitRunner, KeyValue } from './exitRunner.js';
import { imageEmbeddingFlops } from './flops.js';
import type { OrtBackend, OrtOutputs, OrtSession, OrtTensor } from './ortBackend.js';
import { defaultBackend } from './platform.js';

export interface LayerRunnerOptions {
  /** Intra-op threads per session (default: defaultThreads(config)). */
  threads?: number;
  /** Also load the whole-stack benchmark graphs (fullEncoder, fullDecoderStep); default false. */
  fullStack?: boolean;
  /** ONNX Runtime implementation (default: the platform's, onnxruntime-node in Node, onnxruntime-web in the browser bundle). */
  backend?: OrtBackend;
}

export type { DecoderStepOutput, KeyValue } from './exitRunner.js';

const floatData = (tensor: OrtTensor | undefined): Float32Array => tensor!.data as Float32Array;

/**
 * Narrow layers are too small to split across threads: on the 2-core machine `small` (D = 128)
 * ran full depth in 15.7 ms with 1 thread vs 24.8 ms with 2 (bench:runtime --threads 1 vs 2),
 * while OFA-Base widths gain from 2.
 */
export function defaultThreads(config: Pick<ModelConfig, 'dim'>): number {
  return config.dim >= 512 ? 2 : 1;
}

/** Positions enter as absolute embeddings at the inputs, so the stream and decoder position arguments of ExitRunner are not needed here. */
export class LayerRunner implements ExitRunner {
  private constructor(
    readonly config: ModelConfig,
    private readonly sessions: Map<string, OrtSession>,
    private readonly backend: OrtBackend,
  ) {}

  /** Builds every piece's graph from the weights and opens a session on it (one piece at a time, to bound memory). */
  static async create(config: ModelConfig, weights: Map<string, NamedArray>, options: LayerRunnerOptions = {}): Promise<LayerRunner> {
    const backend = options.backend ?? await defaultBackend();
    const sessionOptions = backend.sessionOptions(options.threads ?? defaultThreads(config));
    const sessions = new Map<string, OrtSession>();
    const pieces = options.fullStack ? [layerPieces(config, weights), fullStackPieces(config, weights)] : [layerPieces(config, weights)];
    for (const generator of pieces) {
      for (const piece of generator) sessions.set(piece.name, await backend.InferenceSession.create(piece.model, sessionOptions));
    }
    return new LayerRunner(config, sessions, backend);
  }

  get imageTokens(): number {
    return imagePatchCount(this.config);
  }

  imageEmbeddingFlops(): number {
    return imageEmbeddingFlops(this.config);
  }

  /** pixels (B, H, W, 3) in [-1, 1] -> (B, Np, D). */
  async embedImage(pixels: Float32Array, batch: number): Promise<Float32Array> {
    const { imageSize } = this.config;
    const result = await this.run('image_embedding', { pixels: this.floatTensor(pixels, [batch, imageSize, imageSize, 3]) });
    return floatData(result.states);
  }

  /** Token ids, B rows of equal length Lt (padded) -> (B, Lt, D). */
  async embedText(ids: number[][]): Promise<Float32Array> {
    const result = await this.run('text_embedding', { ids: this.int64Tensor(ids.flat(), [ids.length, ids[0]?.length ?? 0]) });
    return floatData(result.states);
  }

  /** Encoder layer `index` on any stream: states (B, T, D), keyMask (B, T) 1/0 -> (B, T, D). */
  async encoderLayer(index: number, states: Float32Array, keyMask: Float32Array, batch: number, length: number): Promise<Float32Array> {
    const result = await this.run(`encoder_layer_${index}`, {
      states: this.floatTensor(states, [batch, length, this.config.dim]),
      key_mask: this.floatTensor(keyMask, [batch, length]),
    });
    return floatData(result.output);
  }

  /** Every encoder layer in one graph (needs `fullStack`): states (B, T, D), keyMask (B, T) -> (B, T, D). */
  async fullEncoder(states: Float32Array, keyMask: Float32Array, batch: number, length: number): Promise<Float32Array> {
    const result = await this.run('full_encoder', {
      states: this.floatTensor(states, [batch, length, this.config.dim]),
      key_mask: this.floatTensor(keyMask, [batch, length]),
    });
    return floatData(result.output);
  }

  /** states (B, T, D) -> LN_enc(states), the memory when given the last layer's [image ; text] states. */
  async encoderFinalNorm(states: Float32Array, batch: number, length: number): Promise<Float32Array> {
    const result = await this.run('encoder_final_norm', { states: this.floatTensor(states, [batch, length, this.config.dim]) });
    return floatData(result.output);
  }

  /** memory (B, M, D) -> decoder layer `index`'s cross-attention key and value (B, M, D). */
  async crossKeyValues(index: number, memory: Float32Array, batch: number, memoryLength: number): Promise<KeyValue> {
    const result = await this.run(`cross_key_values_${index}`, { memory: this.floatTensor(memory, [batch, memoryLength, this.config.dim]) });
    return { key: floatData(result.key), value: floatData(result.value) };
  }

  /** One token per row: ids[b] at decoder position positions[b] -> (B, 1, D). */
  async embedDecoder(ids: number[], positions: number[]): Promise<Float32Array> {
    const result = await this.run('decoder_embedding', {
      ids: this.int64Tensor(ids, [ids.length, 1]),
      positions: this.int64Tensor(positions, [positions.length, 1]),
    });
    return floatData(result.states);
  }

  /** Whole decoder prompts: B rows of equal length T (padded), positions 0..T−1 -> (B, T, D). */
  async embedDecoderPrompt(ids: number[][]): Promise<Float32Array> {
    const length = ids[0]?.length ?? 0;
    const positions = ids.flatMap(() => Array.from({ length }, (_, t) => t));
    const result = await this.run('decoder_embedding', {
      ids: this.int64Tensor(ids.flat(), [ids.length, length]),
      positions: this.int64Tensor(positions, [ids.length, length]),
    });
    return floatData(result.states);
  }

  /**
   * Decoder layer `index` over a whole prompt of T positions, causal among them, with no past:
   * x (B, T, D), cross key/value (B, M, D), memoryMask (B, M) 1/0 -> hidden (B, T, D). The same
   * graph as decoderStep; the prompt's own keys/values are not returned (nothing decodes after it).
   */
  async decoderPrompt(
    index: number, x: Float32Array, batch: number, length: number,
    crossKey: Float32Array, crossValue: Float32Array, memoryMask: Float32Array, memoryLength: number,
  ): Promise<Float32Array> {
    const { dim } = this.config;
    const empty = new Float32Array(0);
    const result = await this.run(`decoder_step_${index}`, {
      states: this.floatTensor(x, [batch, length, dim]),
      past_key: this.floatTensor(empty, [batch, 0, dim]),
      past_value: this.floatTensor(empty, [batch, 0, dim]),
      cross_key: this.floatTensor(crossKey, [batch, memoryLength, dim]),
      cross_value: this.floatTensor(crossValue, [batch, memoryLength, dim]),
      memory_mask: this.floatTensor(memoryMask, [batch, memoryLength]),
    });
    return floatData(result.output);
  }

  /**
   * Decoder layer `index` for one position: x (B, 1, D), this layer's cached self-attention
   * key/value (B, t, D) with t = pastLength ≥ 0, cross key/value (B, M, D), memoryMask (B, M) 1/0
   * -> hidden (B, 1, D) and this position's key/value (B, 1, D) to append to the cache.
   */
  async decoderStep(
    index: number, x: Float32Array, pastKey: Float32Array, pastValue: Float32Array, pastLength: number,
    crossKey: Float32Array, crossValue: Float32Array, memoryMask: Float32Array, batch: number, memoryLength: number,
  ): Promise<DecoderStepOutput> {
    const { dim } = this.config;
    const result = await this.run(`decoder_step_${index}`, {
      states: this.floatTensor(x, [batch, 1, dim]),
      past_key: this.floatTensor(pastKey, [batch, pastLength, dim]),
      past_value: this.floatTensor(pastValue, [batch, pastLength, dim]),
      cross_key: this.floatTensor(crossKey, [batch, memoryLength, dim]),
      cross_value: this.floatTensor(crossValue, [batch, memoryLength, dim]),
      memory_mask: this.floatTensor(memoryMask, [batch, memoryLength]),
    });
    return { hidden: floatData(result.output), key: floatData(result.key), value: floatData(result.value) };
  }

  /**
   * Every decoder layer in one graph (needs `fullStack`) for `length` new positions x (B, T, D):
   * past[i] (B, t, D) and cross[i] (B, M, D) per layer -> the last layer's hidden (B, T, D) and every
   * layer's new key/value (B, T, D).
   */
  async fullDecoderStep(
    x: Float32Array, past: KeyValue[], pastLength: number, cross: KeyValue[],
    memoryMask: Float32Array, batch: number, memoryLength: number, length = 1,
  ): Promise<{ hidden: Float32Array; keyValues: KeyValue[] }> {
    const { dim, decoderLayers } = this.config;
    const feeds: Record<string, OrtTensor> = {
      states: this.floatTensor(x, [batch, length, dim]),
      memory_mask: this.floatTensor(memoryMask, [batch, memoryLength]),
    };
    for (let i = 0; i < decoderLayers; i++) {
      feeds[`past_key_${i}`] = this.floatTensor(past[i]!.key, [batch, pastLength, dim]);
      feeds[`past_value_${i}`] = this.floatTensor(past[i]!.value, [batch, pastLength, dim]);
      feeds[`cross_key_${i}`] = this.floatTensor(cross[i]!.key, [batch, memoryLength, dim]);
      feeds[`cross_value_${i}`] = this.floatTensor(cross[i]!.value, [batch, memoryLength, dim]);
    }
    const result = await this.run('full_decoder_step', feeds);
    const keyValues = Array.from({ length: decoderLayers }, (_, i) => ({ key: floatData(result[`key_${i}`]), value: floatData(result[`value_${i}`]) }));
    return { hidden: floatData(result.output), keyValues };
  }

  /** x (B, 1, D), a layer-input hidden state -> the self-attention key/value (B, 1, D) decoder layer `index` computes for it. */
  async selfKeyValues(index: number, x: Float32Array, batch: number): Promise<KeyValue> {
    const result = await this.run(`self_key_values_${index}`, { states: this.floatTensor(x, [batch, 1, this.config.dim]) });
    return { key: floatData(result.key), value: floatData(result.value) };
  }

  /** Decoder states (B, T, D) of any layer -> logits (B, T, V) through the shared head. */
  async head(x: Float32Array, batch: number, length: number): Promise<Float32Array> {
    const result = await this.run('output_head', { states: this.floatTensor(x, [batch, length, this.config.dim]) });
    return floatData(result.logits);
  }

  async dispose(): Promise<void> {
    for (const session of this.sessions.values()) await session.release();
    this.sessions.clear();
  }

  private floatTensor(data: Float32Array, dims: number[]): OrtTensor {
    return new this.backend.Tensor('float32', data, dims);
  }

  private int64Tensor(values: number[], dims: number[]): OrtTensor {
    return new this.backend.Tensor('int64', BigInt64Array.from(values, BigInt), dims);
  }

  private run(piece: string, feeds: Record<string, OrtTensor>): Promise<OrtOutputs> {
    const session = this.sessions.get(piece);
    if (!session) throw new Error(`layer runner has no piece "${piece}"${piece.startsWith('full_') ? ' (create it with fullStack: true)' : ''}`);
    return session.run(feeds);
  }
}
