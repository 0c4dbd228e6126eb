// The `ofa` family behind the exit logic's ExitRunner interface: OfaRunner's pieces plus the
// attention biases OFA adds in every layer (ARCHITECTURE.md §5-6, docs/ofa-pieces.md), which
// depend only on lengths and positions and are therefore computed once and cached:
//   encoder  — per text length: the position embeddings [P_img ; P_text] (the decoder's cross-bias
//              keys), the text stream's bias per layer (absolute + relative), the image stream's
//              absolute bias (the official MuE encoder discards its relative part, §6), or the
//              joint sequence's bias per layer (plain OFA);
//   decoder  — per (position, cached keys, memory length, layer): the self bias of the query's row
//              added right-aligned to the keys the layer's cache holds (§10.3), and the cross bias.
import type { OfaConfig } from '../model/ofaConfig.js';
import { ofaPatchCount } from '../model/ofaConfig.js';
import type { NamedArray } from '../model/safetensors.js';
import type { DecoderStepOutput, EncoderStream, ExitRunner, KeyValue, RunnerShape } from './exitRunner.js';
import { ofaStemFlops } from './flops.js';
import { type Bias, OfaRunner, type OfaRunnerOptions } from './ofaRunner.js';
import { imagePositionIds, jointBuckets, range, textBuckets } from './ofaPositions.js';

/**
 * Bytes of biases kept per runner. For OFA-Base an encoder text bias is nh·Ts² floats per layer, a
 * decoder cross bias nh·Tq·M (≈ 2 MB for a 50-token VE prompt), a joint-mode encoder bias nh·M² per
 * layer (≈ 40 MB): a few hundred MB holds every length a serving process sees in practice.
 */
const MAX_CACHED_BIAS_BYTES = 384 * 2 ** 20;

interface DecoderBiases { self: Bias; cross: Bias }

const floatBytes = (...arrays: Float32Array[]): number => arrays.reduce((sum, array) => sum + array.byteLength, 0);
const isContiguous = (positions: number[]): boolean => positions.every((position, i) => position === positions[0]! + i);

/**
 * Least-recently-used promises bounded by the bytes of their values; concurrent callers of one key
 * share one computation, and a failed computation is forgotten so the next caller retries.
 */
class BiasCache {
  private readonly entries = new Map<string, { value: Promise<unknown>; bytes: number }>();
  private bytes = 0;
  constructor(private readonly maxBytes: number) {}

  get<V>(key: string, compute: () => Promise<V>, sizeOf: (value: V) => number): Promise<V> {
    const hit = this.entries.get(key);
    if (hit) {
      this.entries.delete(key); // re-inserted as the most recent
      this.entries.set(key, hit);
      return hit.value as Promise<V>;
    }
    const entry = { value: compute() as Promise<unknown>, bytes: 0 };
    this.entries.set(key, entry);
    entry.value.then((value) => {
      if (this.entries.get(key) !== entry) return;
      entry.bytes = sizeOf(value as V);
      this.bytes += entry.bytes;
      for (const [oldKey, old] of this.entries) {
        if (this.bytes <= this.maxBytes || old === entry) break;
        this.entries.delete(oldKey);
        this.bytes -= old.bytes;
      }
    }, () => {
      if (this.entries.get(key) === entry) this.entries.delete(key);
    });
    return entry.value as Promise<V>;
  }
}

export class OfaExitRunner implements ExitRunner {
  readonly config: RunnerShape;
  readonly imageTokens: number;
  private readonly imagePositions: number[];
  private readonly cache = new BiasCache(MAX_CACHED_BIAS_BYTES);
  /** The image stream's bias: one per model, always needed. */
  private imageBias?: Promise<Bias>;

  private constructor(readonly ofa: OfaRunner) {
    const c = ofa.config;
    this.config = { dim: c.dim, ffnDim: c.encoderFfnDim, vocabSize: c.vocabSize, encoderLayers: c.encoderLayers, decoderLayers: c.decoderLayers };
    this.imagePositions = imagePositionIds(c);
    this.imageTokens = ofaPatchCount(c);
  }

  static async create(config: OfaConfig, weights: Map<string, NamedArray>, options: OfaRunnerOptions = {}): Promise<OfaExitRunner> {
    return new OfaExitRunner(await OfaRunner.create(config, weights, options));
  }

  private get ofaConfig(): OfaConfig {
    return this.ofa.config;
  }

  imageEmbeddingFlops(): number {
    return ofaStemFlops(this.ofaConfig);
  }

  async embedImage(pixels: Float32Array, batch: number): Promise<Float32Array> {
    return (await this.ofa.embedImage(pixels, batch)).states;
  }

  embedText(ids: number[][]): Promise<Float32Array> {
    return this.ofa.embedText(ids);
  }

  async encoderLayer(index: number, states: Float32Array, keyMask: Float32Array, batch: number, length: number, stream: EncoderStream): Promise<Float32Array> {
    return this.ofa.encoderLayer(index, states, keyMask, await this.encoderBias(stream, length, index), batch, length);
  }

  async fullEncoder(states: Float32Array, keyMask: Float32Array, batch: number, length: number, stream: EncoderStream): Promise<Float32Array> {
    const biases = await Promise.all(range(this.config.encoderLayers).map((index) => this.encoderBias(stream, length, index)));
    return this.ofa.fullEncoder(states, keyMask, biases, batch, length);
  }

  encoderFinalNorm(states: Float32Array, batch: number, length: number): Promise<Float32Array> {
    return this.ofa.encoderFinalNorm(states, batch, length);
  }

  crossKeyValues(index: number, memory: Float32Array, batch: number, memoryLength: number): Promise<KeyValue> {
    return this.ofa.crossKeyValues(index, memory, batch, memoryLength);
  }

  /** OFA's decoder embedding has no positions (disable_entangle): they enter as attention biases. */
  embedDecoder(ids: number[]): Promise<Float32Array> {
    return this.ofa.embedDecoder(ids.map((id) => [id]));
  }

  embedDecoderPrompt(ids: number[][]): Promise<Float32Array> {
    return this.ofa.embedDecoder(ids);
  }

  async decoderPrompt(
    index: number, x: Float32Array, batch: number, length: number,
    crossKey: Float32Array, crossValue: Float32Array, memoryMask: Float32Array, memoryLength: number,
  ): Promise<Float32Array> {
    const positions = range(length);
    const bias = await this.decoderBias(index, positions, positions, memoryLength);
    // Right-padded prompts under the causal mask: no real position attends to a pad, so every key stays unmasked.
    const empty = new Float32Array(0);
    const output = await this.ofa.decoderLayer(index, x, length, { key: empty, value: empty }, 0, new Float32Array(batch * length).fill(1),
      bias.self, { key: crossKey, value: crossValue }, memoryMask, bias.cross, batch, memoryLength);
    return output.hidden;
  }

  async decoderStep(
    index: number, x: Float32Array, pastKey: Float32Array, pastValue: Float32Array, pastLength: number,
    crossKey: Float32Array, crossValue: Float32Array, memoryMask: Float32Array, batch: number, memoryLength: number, position: number,
  ): Promise<DecoderStepOutput> {
    // The layer's S = pastLength + 1 keys get the bias columns of positions position−S+1 … position (right-aligned, §10.3).
    const bias = await this.decoderBias(index, [position], range(pastLength + 1, position - pastLength), memoryLength);
    return this.ofa.decoderLayer(index, x, 1, { key: pastKey, value: pastValue }, pastLength, new Float32Array(batch * (pastLength + 1)).fill(1),
      bias.self, { key: crossKey, value: crossValue }, memoryMask, bias.cross, batch, memoryLength);
  }

  async fullDecoderStep(
    x: Float32Array, past: KeyValue[], pastLength: number, cross: KeyValue[],
    memoryMask: Float32Array, batch: number, memoryLength: number, length = 1,
  ): Promise<{ hidden: Float32Array; keyValues: KeyValue[] }> {
    const queries = range(length, pastLength);
    const keys = range(pastLength + length);
    const biases = await Promise.all(range(this.config.decoderLayers).map((index) => this.decoderBias(index, queries, keys, memoryLength)));
    return this.ofa.fullDecoder(x, length, past, pastLength, new Float32Array(batch * keys.length).fill(1), biases.map((b) => b.self),
      cross, memoryMask, biases[0]!.cross, batch, memoryLength);
  }

  selfKeyValues(): Promise<KeyValue> {
    return Promise.reject(new Error('the ofa family has no piece that projects a skipped layer\'s keys/values: kvStrategy "propagate" is not available for it (drop, the official behaviour, copy and recompute are)'));
  }

  head(x: Float32Array, batch: number, length: number): Promise<Float32Array> {
    return this.ofa.head(x, batch, length);
  }

  dispose(): Promise<void> {
    return this.ofa.dispose();
  }

  /** Layer `index`'s full encoder bias for a stream of `length` tokens (1, nh, T, T). */
  async encoderBias(stream: EncoderStream, length: number, index: number): Promise<Bias> {
    const config = this.ofaConfig;
    if ((stream === 'joint') !== (config.encoderMode === 'joint')) throw new Error(`an OFA model in ${config.encoderMode} encoder mode has no ${stream} stream`);
    if (stream === 'image') {
      this.imageBias ??= this.ofa.encoderPositionBias(this.imagePositions, 1).then((biases) => ({ data: biases.image!, batch: 1 }));
      this.imageBias.catch(() => { this.imageBias = undefined; });
      return this.imageBias;
    }
    const textLength = stream === 'joint' ? length - this.imageTokens : length;
    return this.cache.get(`encoder:${textLength}:${index}`, async () => {
      const absolute = await this.encoderPositions(textLength);
      if (stream === 'text') {
        const buckets = textBuckets(config, range(textLength), range(textLength), config.maxSourcePositions);
        return this.ofa.relativeBias('encoder', index, { data: absolute.text!, batch: 1 }, buckets, textLength, textLength);
      }
      return this.ofa.relativeBias('encoder', index, { data: absolute.joint!, batch: 1 }, jointBuckets(config, textLength), length, length);
    }, (bias) => floatBytes(bias.data));
  }

  /** [P_img ; P_text] (M, D) for a text of `textLength` tokens: the encoder's position embeddings, the keys of the decoder's cross bias. */
  async encoderPositionEmbeddings(textLength: number): Promise<Float32Array> {
    return (await this.encoderPositions(textLength)).positionEmbeddings;
  }

  /** The encoder's position embeddings and absolute text (split) or joint bias for a text length; the image bias is kept apart. */
  private encoderPositions(textLength: number): Promise<{ positionEmbeddings: Float32Array; text?: Float32Array; joint?: Float32Array }> {
    return this.cache.get(`positions:${textLength}`, async () => {
      const { positionEmbeddings, text, joint } = await this.ofa.encoderPositionBias(this.imagePositions, textLength);
      return { positionEmbeddings, text, joint };
    }, (value) => floatBytes(value.positionEmbeddings, ...(value.text ? [value.text] : []), ...(value.joint ? [value.joint] : [])));
  }

  /**
   * Decoder layer `index`'s self bias (queries × keys, absolute + relative) and the cross bias (queries ×
   * memory, the same for every layer). Query and key positions are contiguous ranges.
   */
  async decoderBias(index: number, queries: number[], keys: number[], memoryLength: number): Promise<DecoderBiases> {
    if (!isContiguous(queries) || !isContiguous(keys)) throw new Error('decoder bias: query and key positions must be contiguous ranges');
    const config = this.ofaConfig;
    const span = `${queries[0]}+${queries.length}:${keys[0]}+${keys.length}:${memoryLength}`;
    const absolute = await this.cache.get(`decoder:${span}`, async () => {
      const positionEmbeddings = await this.encoderPositionEmbeddings(memoryLength - this.imageTokens);
      return this.ofa.decoderPositionBias(queries, keys, positionEmbeddings, memoryLength);
    }, (biases) => floatBytes(biases.self.data, biases.cross.data));
    const self = await this.cache.get(`decoder:${index}:${span}`,
      () => this.ofa.relativeBias('decoder', index, absolute.self, textBuckets(config, queries, keys, config.maxTargetPositions), queries.length, keys.length),
      (bias) => floatBytes(bias.data));
    return { self, cross: absolute.cross };
  }
}
