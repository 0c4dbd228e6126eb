// Runs the `ofa` family piece by piece with onnxruntime (one session per graph of
// src/graph/ofaGraphs.ts), the counterpart of LayerRunner for mue's own family. Thin: inputs
// are wrapped as ort.Tensor views, outputs returned as is. Shapes as in ofaGraphs.ts: B batch,
// N patches, Ts text tokens, M = N + Ts memory, T sequence, Tq queries, t cached positions,
// S keys, D width, nh heads; biases (1|B, nh, Tq, Tk); arrays row-major float32.
import type { OfaConfig } from '../model/ofaConfig.js';
import { checkOfaWeights } from '../model/ofaParameters.js';
import type { NamedArray } from '../model/safetensors.js';
import { ofaFullStackPieces, ofaPieces } from '../graph/ofaGraphs.js';
import type { OrtBackend, OrtOutputs, OrtSession, OrtTensor } from './ortBackend.js';
import { defaultBackend } from './platform.js';

export interface OfaRunnerOptions {
  /** Intra-op threads per session (default 2 from width 512 on, else 1, as LayerRunner). */
  threads?: number;
  /** Also load the whole-stack benchmark graphs (ofa_full_encoder, ofa_full_decoder). */
  fullStack?: boolean;
  /** ONNX Runtime implementation (default: the platform's, as LayerRunner). */
  backend?: OrtBackend;
}

/** A bias and its batch extent (1 when shared by every row). */
export interface Bias { data: Float32Array; batch: number }
export interface KeyValue { key: Float32Array; value: Float32Array }

type Stack = 'encoder' | 'decoder';

const floatData = (tensor: OrtTensor | undefined): Float32Array => tensor!.data as Float32Array;

export class OfaRunner {
  private readonly floatTensor: (data: Float32Array, dims: number[]) => OrtTensor;
  private readonly int64Tensor: (values: number[] | BigInt64Array, dims: number[]) => OrtTensor;

  private constructor(readonly config: OfaConfig, private readonly sessions: Map<string, OrtSession>, backend: OrtBackend) {
    this.floatTensor = (data, dims) => new backend.Tensor('float32', data, dims);
    this.int64Tensor = (values, dims) => new backend.Tensor('int64', values instanceof BigInt64Array ? values : BigInt64Array.from(values, BigInt), dims);
  }

  /** Builds every piece's graph from the (PyTorch-named) weights and opens a session on it, one piece at a time. */
  static async create(config: OfaConfig, weights: Map<string, NamedArray>, options: OfaRunnerOptions = {}): Promise<OfaRunner> {
    checkOfaWeights(config, weights);
    const backend = options.backend ?? await defaultBackend();
    const sessionOptions = backend.sessionOptions(options.threads ?? (config.dim >= 512 ? 2 : 1));
    const sessions = new Map<string, OrtSession>();
    const generators = options.fullStack ? [ofaPieces(config, weights), ofaFullStackPieces(config, weights)] : [ofaPieces(config, weights)];
    for (const generator of generators) {
      for (const piece of generator) sessions.set(piece.name, await backend.InferenceSession.create(piece.model, sessionOptions));
    }
    return new OfaRunner(config, sessions, backend);
  }

  heads(stack: Stack): number {
    return stack === 'encoder' ? this.config.encoderHeads : this.config.decoderHeads;
  }

  /** pixels (B, S, S, 3) in [-1, 1] -> patch states (B, N, D) and the stem features (B, 1024, h, w). */
  async embedImage(pixels: Float32Array, batch: number): Promise<{ states: Float32Array; features: Float32Array }> {
    const { imageSize } = this.config;
    const result = await this.run('ofa_image_embedding', { pixels: this.floatTensor(pixels, [batch, imageSize, imageSize, 3]) });
    return { states: floatData(result.states), features: floatData(result.features) };
  }

  /** Token ids, B rows of equal length Ts (pad id 1) -> (B, Ts, D), pad rows zero. */
  async embedText(ids: number[][]): Promise<Float32Array> {
    const result = await this.run('ofa_text_embedding', { ids: this.int64Tensor(ids.flat(), [ids.length, ids[0]?.length ?? 0]) });
    return floatData(result.states);
  }

  /**
   * Image position ids (N) and the text length -> the encoder's position embeddings (M, D) and
   * absolute biases: split mode image (1, nh, N, N) and text (1, nh, Ts, Ts); joint mode (1, nh, M, M).
   */
  async encoderPositionBias(imagePositionIds: number[], textLength: number): Promise<{ positionEmbeddings: Float32Array; image?: Float32Array; text?: Float32Array; joint?: Float32Array }> {
    const result = await this.run('ofa_encoder_position_bias', {
      image_position_ids: this.int64Tensor(imagePositionIds, [imagePositionIds.length]),
      text_position_ids: this.int64Tensor(Array.from({ length: textLength }, (_, i) => i), [textLength]),
    });
    return result.bias
      ? { positionEmbeddings: floatData(result.position_embeddings), joint: floatData(result.bias) }
      : { positionEmbeddings: floatData(result.position_embeddings), image: floatData(result.image_bias), text: floatData(result.text_bias) };
  }

  /** bias (batch, nh, Tq, Tk) + layer `index`'s relative table at buckets (Tq, Tk) -> (batch, nh, Tq, Tk). */
  async relativeBias(stack: Stack, index: number, bias: Bias, buckets: BigInt64Array, queries: number, keys: number): Promise<Bias> {
    const result = await this.run(`ofa_${stack}_relative_bias_${index}`, {
      position_bias: this.floatTensor(bias.data, [bias.batch, this.heads(stack), queries, keys]),
      buckets: this.int64Tensor(buckets, [queries, keys]),
    });
    return { data: floatData(result.output), batch: bias.batch };
  }

  /** Encoder layer `index` on any stream: states (B, T, D), keyMask (B, T) 1/0, bias (1|B, nh, T, T) -> (B, T, D). */
  async encoderLayer(index: number, states: Float32Array, keyMask: Float32Array, bias: Bias, batch: number, length: number): Promise<Float32Array> {
    const result = await this.run(`ofa_encoder_layer_${index}`, {
      states: this.floatTensor(states, [batch, length, this.config.dim]),
      key_mask: this.floatTensor(keyMask, [batch, length]),
      position_bias: this.floatTensor(bias.data, [bias.batch, this.config.encoderHeads, length, length]),
    });
    return floatData(result.output);
  }

  /** Every encoder layer over one stream in one graph (needs fullStack); biases[l] (1|B, nh, T, T). */
  async fullEncoder(states: Float32Array, keyMask: Float32Array, biases: Bias[], batch: number, length: number): Promise<Float32Array> {
    const feeds: Record<string, OrtTensor> = {
      states: this.floatTensor(states, [batch, length, this.config.dim]),
      key_mask: this.floatTensor(keyMask, [batch, length]),
    };
    biases.forEach((bias, i) => { feeds[`position_bias_${i}`] = this.floatTensor(bias.data, [bias.batch, this.config.encoderHeads, length, length]); });
    return floatData((await this.run('ofa_full_encoder', feeds)).output);
  }

  /** states (B, T, D) -> encoder.layer_norm(states). */
  async encoderFinalNorm(states: Float32Array, batch: number, length: number): Promise<Float32Array> {
    return floatData((await this.run('ofa_encoder_final_norm', { states: this.floatTensor(states, [batch, length, this.config.dim]) })).output);
  }

  /** Decoder token ids, B rows of equal length T -> (B, T, D). */
  async embedDecoder(ids: number[][]): Promise<Float32Array> {
    const result = await this.run('ofa_decoder_embedding', { ids: this.int64Tensor(ids.flat(), [ids.length, ids[0]?.length ?? 0]) });
    return floatData(result.states);
  }

  /** Decoder query/key positions and the encoder's position embeddings (M, D) -> self (1, nh, Tq, Tk) and cross (1, nh, Tq, M) absolute biases. */
  async decoderPositionBias(queryPositions: number[], keyPositions: number[], memoryPositions: Float32Array, memoryLength: number): Promise<{ self: Bias; cross: Bias }> {
    const result = await this.run('ofa_decoder_position_bias', {
      query_positions: this.int64Tensor(queryPositions, [queryPositions.length]),
      key_positions: this.int64Tensor(keyPositions, [keyPositions.length]),
      memory_positions: this.floatTensor(memoryPositions, [memoryLength, this.config.dim]),
    });
    return { self: { data: floatData(result.self_bias), batch: 1 }, cross: { data: floatData(result.cross_bias), batch: 1 } };
  }

  /** memory (B, M, D) -> decoder layer `index`'s cross-attention key and value (B, M, D). */
  async crossKeyValues(index: number, memory: Float32Array, batch: number, memoryLength: number): Promise<KeyValue> {
    const result = await this.run(`ofa_cross_key_values_${index}`, { memory: this.floatTensor(memory, [batch, memoryLength, this.config.dim]) });
    return { key: floatData(result.key), value: floatData(result.value) };
  }

  /**
   * Decoder layer `index` over Tq new positions after t cached ones: x (B, Tq, D), past (B, t, D),
   * selfKeyMask (B, t + Tq) 1/0, selfBias (1|B, nh, Tq, t + Tq), cross (B, M, D), memoryMask (B, M),
   * crossBias (1|B, nh, Tq, M) -> hidden (B, Tq, D) and the new positions' key/value (B, Tq, D).
   */
  async decoderLayer(
    index: number, x: Float32Array, queries: number, past: KeyValue, pastLength: number, selfKeyMask: Float32Array, selfBias: Bias,
    cross: KeyValue, memoryMask: Float32Array, crossBias: Bias, batch: number, memoryLength: number,
  ): Promise<{ hidden: Float32Array } & KeyValue> {
    const { dim, decoderHeads: nh } = this.config;
    const keys = pastLength + queries;
    const result = await this.run(`ofa_decoder_layer_${index}`, {
      states: this.floatTensor(x, [batch, queries, dim]),
      past_key: this.floatTensor(past.key, [batch, pastLength, dim]),
      past_value: this.floatTensor(past.value, [batch, pastLength, dim]),
      self_key_mask: this.floatTensor(selfKeyMask, [batch, keys]),
      self_bias: this.floatTensor(selfBias.data, [selfBias.batch, nh, queries, keys]),
      cross_key: this.floatTensor(cross.key, [batch, memoryLength, dim]),
      cross_value: this.floatTensor(cross.value, [batch, memoryLength, dim]),
      memory_mask: this.floatTensor(memoryMask, [batch, memoryLength]),
      cross_bias: this.floatTensor(crossBias.data, [crossBias.batch, nh, queries, memoryLength]),
    });
    return { hidden: floatData(result.output), key: floatData(result.key), value: floatData(result.value) };
  }

  /** Every decoder layer in one graph (needs fullStack), the per-layer inputs of decoderLayer as arrays -> last hidden and each layer's new key/value. */
  async fullDecoder(
    x: Float32Array, queries: number, past: KeyValue[], pastLength: number, selfKeyMask: Float32Array, selfBiases: Bias[],
    cross: KeyValue[], memoryMask: Float32Array, crossBias: Bias, batch: number, memoryLength: number,
  ): Promise<{ hidden: Float32Array; keyValues: KeyValue[] }> {
    const { dim, decoderHeads: nh, decoderLayers } = this.config;
    const keys = pastLength + queries;
    const feeds: Record<string, OrtTensor> = { states: this.floatTensor(x, [batch, queries, dim]), memory_mask: this.floatTensor(memoryMask, [batch, memoryLength]) };
    for (let i = 0; i < decoderLayers; i++) {
      feeds[`past_key_${i}`] = this.floatTensor(past[i]!.key, [batch, pastLength, dim]);
      feeds[`past_value_${i}`] = this.floatTensor(past[i]!.value, [batch, pastLength, dim]);
      feeds[`self_key_mask_${i}`] = this.floatTensor(selfKeyMask, [batch, keys]);
      feeds[`self_bias_${i}`] = this.floatTensor(selfBiases[i]!.data, [selfBiases[i]!.batch, nh, queries, keys]);
      feeds[`cross_key_${i}`] = this.floatTensor(cross[i]!.key, [batch, memoryLength, dim]);
      feeds[`cross_value_${i}`] = this.floatTensor(cross[i]!.value, [batch, memoryLength, dim]);
      feeds[`cross_bias_${i}`] = this.floatTensor(crossBias.data, [crossBias.batch, nh, queries, memoryLength]);
    }
    const result = await this.run('ofa_full_decoder', feeds);
    const keyValues = Array.from({ length: decoderLayers }, (_, i) => ({ key: floatData(result[`key_${i}`]), value: floatData(result[`value_${i}`]) }));
    return { hidden: floatData(result.output), keyValues };
  }

  /** Decoder states (B, T, D) of any layer -> logits (B, T, V) through decoder.layer_norm and the tied head. */
  async head(x: Float32Array, batch: number, length: number): Promise<Float32Array> {
    return floatData((await this.run('ofa_output_head', { states: this.floatTensor(x, [batch, length, this.config.dim]) })).logits);
  }

  async dispose(): Promise<void> {
    for (const session of this.sessions.values()) await session.release();
    this.sessions.clear();
  }

  private run(piece: string, feeds: Record<string, OrtTensor>): Promise<OrtOutputs> {
    const session = this.sessions.get(piece);
    if (!session) throw new Error(`ofa runner has no piece "${piece}"${piece.startsWith('ofa_full_') ? ' (create it with fullStack: true)' : ''}`);
    return session.run(feeds);
  }
}
