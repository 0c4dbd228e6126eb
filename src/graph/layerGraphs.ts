// The ONNX graphs of the model, one small graph per piece (embedding, encoder layer,
// decoder step, ...) so early-exit logic can run in TypeScript between layers, plus two
// whole-stack graphs for benchmarks. The math is exactly TfModel's (src/model/tfModel.ts):
// pre-LN layers, exact GELU, attention scale 1/√hs, additive −1e9 key and causal masks.
// Notation: B batch, Np image patches, Lt text tokens, T sequence, t past decoder
// positions, M memory tokens, D width, nh heads, hs = D / nh head size, V vocabulary.
// Attention keys and values cross graph boundaries token-major, heads concatenated: (B, T, D).
import type { ModelConfig } from '../model/config.js';
import { imagePatchCount, patchVectorSize } from '../model/config.js';
import type { NamedArray } from '../model/safetensors.js';
import { type Attribute, floatAttribute, GraphBuilder, intAttribute, intsAttribute, type TensorSignature } from './onnxBuilder.js';

/** Additive attention mask value for keys that must not be attended to (as TfModel; exp underflows to exactly 0 as with −∞). */
export const MASKED = -1e9;

/** One piece: its serialised ModelProto and its input/output signatures (in graph order). */
export interface PieceGraph {
  name: string;
  model: Uint8Array;
  inputs: TensorSignature[];
  outputs: TensorSignature[];
}

export type Weights = Map<string, NamedArray>;

export const float = (name: string, dims: (number | string)[]): TensorSignature => ({ name, type: 'float32', dims });
export const int64 = (name: string, dims: (number | string)[]): TensorSignature => ({ name, type: 'int64', dims });

/** What the layer builders need to know of a model: width, heads of the graph's attention, LayerNorm ε. */
export type LayerShape = Pick<ModelConfig, 'dim' | 'heads' | 'layerNormEpsilon'>;

/**
 * How a model stores its linear weights: 'in-out' (in, out) as mue's own checkpoints (x·W), or
 * 'out-in' (out, in) as PyTorch's nn.Linear (transposed once into an initialiser).
 */
export type LinearLayout = 'in-out' | 'out-in';

/** Optional parts of an attention call beyond mue's own plain attention (the OFA family uses them). */
export interface AttentionHooks {
  /** Score scale (default 1/√hs); OFA uses (hs·attn_scale_factor)^-1/2. */
  scale?: number;
  /** Additive score bias broadcastable to (B, nh, Tq, Tk), e.g. OFA's position biases. */
  bias?: string;
  /** Parameter name of per-head output scales (nh), applied to each head's context (OFA's c_attn). */
  headScales?: string;
  /** Prefix of the output projection (default `${prefix}.output`). */
  outputProjection?: string;
}

export interface ModelNodesOptions {
  linearLayout?: LinearLayout;
  /** Weights become graph inputs (training) and weights derived from them are computed in the graph. */
  parametersAsInputs?: boolean;
}

/**
 * Node-building functions for a model's layers over one GraphBuilder; every graph, inference
 * piece or training step, of either family, is made from these. The layer builders need only
 * the LayerShape; mue's own embeddings and head (typed `this: ModelNodes<ModelConfig>`) need
 * the whole ModelConfig.
 */
export class ModelNodes<Config extends LayerShape = ModelConfig> {
  readonly builder: GraphBuilder;
  private readonly linearLayout: LinearLayout;

  constructor(readonly config: Config, private readonly weights: Weights, options: ModelNodesOptions = {}) {
    this.builder = new GraphBuilder(weights, options.parametersAsInputs ?? false);
    this.linearLayout = options.linearLayout ?? 'in-out';
  }

  node(opType: string, inputs: string[], attributes?: Record<string, Attribute>): string {
    return this.builder.node(opType, inputs, attributes);
  }

  /** y = x·W + b over the last axis; x (..., in) -> (..., out). */
  linear(x: string, prefix: string): string {
    return this.node('Add', [this.node('MatMul', [x, this.linearWeight(prefix)]), this.builder.weight(`${prefix}.bias`)]);
  }

  /** The (in, out) weight of linear `prefix` in either stored layout. */
  private linearWeight(prefix: string): string {
    const name = `${prefix}.weight`;
    if (this.linearLayout === 'in-out') return this.builder.weight(name);
    const stored = weightOf(this.weights, name);
    return this.builder.derivedWeight(`${name}.transposed`, [stored.shape[1]!, stored.shape[0]!], transposed(stored)); // (in, out)
  }

  /** LN(x) = (x − mean) / sqrt(var + ε) · γ + β over the last axis. */
  layerNorm(x: string, prefix: string): string {
    return this.node('LayerNormalization', [x, this.builder.weight(`${prefix}.weight`), this.builder.weight(`${prefix}.bias`)], {
      axis: intAttribute(-1),
      epsilon: floatAttribute(this.config.layerNormEpsilon),
    });
  }

  /**
   * FFN(x) = fc2(GELU(fc1(x))), GELU(x) = 0.5·x·(1 + erf(x/√2)); with `hiddenNorm` (OFA's
   * ffn_layernorm) fc2(LN(GELU(fc1(x)))).
   */
  feedForward(x: string, prefix: string, hiddenNorm?: string): string {
    const hidden = this.linear(x, `${prefix}.fc1`);
    const erf = this.node('Erf', [this.node('Mul', [hidden, this.builder.floatConstant([Math.SQRT1_2], [])])]);
    const halfHidden = this.node('Mul', [hidden, this.builder.floatConstant([0.5], [])]);
    const gelu = this.node('Mul', [halfHidden, this.node('Add', [erf, this.builder.floatConstant([1], [])])]);
    return this.linear(hiddenNorm ? this.layerNorm(gelu, hiddenNorm) : gelu, `${prefix}.fc2`);
  }

  /** (B, Tk) 1/0 mask -> additive (B, 1, 1, Tk): 0 where attended, −1e9 where masked. */
  additiveKeyMask(mask: string): string {
    const additive = this.node('Mul', [this.node('Sub', [this.builder.floatConstant([1], []), mask]), this.builder.floatConstant([MASKED], [])]);
    return this.node('Unsqueeze', [additive, this.builder.int64Constant([1, 2])]); // (B, 1, 1, Tk)
  }

  /**
   * Multi-head attention from projected, token-major query (B, Tq, D), key and value (B, Tk, D),
   * with an optional additive mask broadcastable to (B, nh, Tq, Tk) — a key mask (B, 1, 1, Tk) or
   * a causal mask (Tq, Tk); returns the output projection (B, Tq, D).
   * The one attention implementation (self, cross, decoder layer over new positions after a cache).
   */
  attend(query: string, key: string, value: string, additiveMask: string | null, prefix: string, hooks: AttentionHooks = {}): string {
    const { heads, dim } = this.config;
    const size = dim / heads;
    const splitHeads = this.builder.int64Constant([0, 0, heads, size]); // (B, T, D) -> (B, T, nh, hs)
    const queryHeads = this.node('Transpose', [this.node('Reshape', [query, splitHeads])], { perm: intsAttribute([0, 2, 1, 3]) }); // (B, nh, Tq, hs)
    const keyTransposed = this.node('Transpose', [this.node('Reshape', [key, splitHeads])], { perm: intsAttribute([0, 2, 3, 1]) }); // (B, nh, hs, Tk)
    const valueHeads = this.node('Transpose', [this.node('Reshape', [value, splitHeads])], { perm: intsAttribute([0, 2, 1, 3]) }); // (B, nh, Tk, hs)
    let scores = this.node('Mul', [this.node('MatMul', [queryHeads, keyTransposed]), this.builder.floatConstant([hooks.scale ?? 1 / Math.sqrt(size)], [])]); // (B, nh, Tq, Tk)
    if (hooks.bias) scores = this.node('Add', [scores, hooks.bias]);
    if (additiveMask) scores = this.node('Add', [scores, additiveMask]);
    const weights = this.node('Softmax', [scores], { axis: intAttribute(-1) });
    let headContext = this.node('MatMul', [weights, valueHeads]); // (B, nh, Tq, hs)
    if (hooks.headScales) {
      const scales = weightOf(this.weights, hooks.headScales);
      headContext = this.node('Mul', [headContext, this.builder.derivedWeight(`${hooks.headScales}.per_head`, [heads, 1, 1], scales.data)]); // (nh, 1, 1) broadcast
    }
    const context = this.node('Transpose', [headContext], { perm: intsAttribute([0, 2, 1, 3]) }); // (B, Tq, nh, hs)
    const merged = this.node('Reshape', [context, this.builder.int64Constant([0, 0, dim])]); // (B, Tq, D)
    return this.linear(merged, hooks.outputProjection ?? `${prefix}.output`);
  }

  /** Pre-LN encoder layer: x + Attn(LN(x)), then + FFN(LN(·)). x (B, T, D), additiveMask (B, 1, 1, T) or null (no padding). */
  encoderLayer(index: number, x: string, additiveMask: string | null): string {
    const prefix = `encoder.${index}`;
    const normed = this.layerNorm(x, `${prefix}.attention_norm`);
    const attention = `${prefix}.attention`;
    const attended = this.node('Add', [x, this.attend(
      this.linear(normed, `${attention}.query`), this.linear(normed, `${attention}.key`), this.linear(normed, `${attention}.value`),
      additiveMask, attention,
    )]);
    return this.node('Add', [attended, this.feedForward(this.layerNorm(attended, `${prefix}.ffn_norm`), `${prefix}.ffn`)]);
  }

  /** Self-attention key and value (B, T, D) that decoder layer `index` computes from its input x (B, T, D). */
  selfKeyValues(index: number, x: string): { normed: string; key: string; value: string } {
    const prefix = `decoder.${index}`;
    const normed = this.layerNorm(x, `${prefix}.self_attention_norm`);
    return { normed, key: this.linear(normed, `${prefix}.self_attention.key`), value: this.linear(normed, `${prefix}.self_attention.value`) };
  }

  /** Cross-attention key and value (B, M, D) of decoder layer `index` from the memory (B, M, D). */
  crossKeyValues(index: number, memory: string): { key: string; value: string } {
    const prefix = `decoder.${index}.cross_attention`;
    return { key: this.linear(memory, `${prefix}.key`), value: this.linear(memory, `${prefix}.value`) };
  }

  /**
   * Additive causal mask (T, t + T) for T new positions after t cached ones: the new position i
   * (absolute t + i) may attend to key j iff j ≤ t + i; 0 there, −1e9 above. For T = 1 it is all
   * zeros (a decoding step sees its whole past). x (B, T, D), pastKey (B, t, D), t + T ≤ Tmax.
   * Sliced from a constant (Tmax, Tmax) table (Tmax² floats per decoder-layer graph): 5 small ops.
   * Building the triangle per call instead (Expand + Trilu + arithmetic, 9 ops) made a one-token
   * step of caption-small's layer ~17 % slower than the unmasked step (one interleaved measurement);
   * the slice measured within a few % of it.
   */
  causalMaskAfter(this: ModelNodes<ModelConfig>, x: string, pastKey: string): string {
    const newLength = this.node('Shape', [x], { start: intAttribute(1), end: intAttribute(2) }); // [T]
    const pastLength = this.node('Shape', [pastKey], { start: intAttribute(1), end: intAttribute(2) }); // [t]
    const total = this.node('Add', [pastLength, newLength]); // [t + T]
    const size = this.config.maxTargetLength;
    const table = new Float32Array(size * size); // (Tmax, Tmax): −1e9 above the diagonal
    for (let i = 0; i < size; i++) for (let j = i + 1; j < size; j++) table[i * size + j] = MASKED;
    const full = this.builder.derivedWeight('causal_mask', [size, size], table);
    const rows = this.node('Slice', [full, pastLength, total, this.builder.int64Constant([0])]); // (T, Tmax)
    return this.node('Slice', [rows, this.builder.int64Constant([0]), total, this.builder.int64Constant([1])]); // (T, t + T)
  }

  /**
   * T ≥ 1 new positions through pre-LN decoder layer `index`: causal self-attention over the
   * cached past positions and the new ones, cross-attention to the memory, FFN. The one decoder
   * layer: a generation step is T = 1 with a past, a teacher-forced sequence or a VE prompt is
   * T positions with an empty past (t = 0; training passes null: no Concat to differentiate).
   * x (B, T, D); past K/V (B, t, D), t ≥ 0; cross K/V (B, M, D); memoryMask additive (B, 1, 1, M);
   * causalMask additive, broadcastable to (B, nh, T, t + T). Returns the hidden states and the new positions'
   * self-attention key/value (B, T, D), to append to the cache.
   */
  decoderLayer(
    index: number, x: string, past: { key: string; value: string } | null,
    cross: { key: string; value: string }, memoryMask: string, causalMask: string,
  ): { hidden: string; key: string; value: string } {
    const current = this.selfKeyValues(index, x);
    const keys = past ? this.node('Concat', [past.key, current.key], { axis: intAttribute(1) }) : current.key; // (B, t + T, D)
    const values = past ? this.node('Concat', [past.value, current.value], { axis: intAttribute(1) }) : current.value; // (B, t + T, D)
    const hidden = this.decoderBlock(index, x, current.normed, { key: keys, value: values }, causalMask, cross, memoryMask);
    return { hidden, key: current.key, value: current.value };
  }

  /** Additive causal mask (1, 1, T, T) of a fixed length (training graphs): 0 where key position ≤ query position, −1e9 after it. */
  causalMask(length: number): string {
    const values = Array.from({ length: length * length }, (_, i) => (i % length <= Math.floor(i / length) ? 0 : MASKED));
    return this.builder.floatConstant(values, [1, 1, length, length]);
  }

  /** The body of a decoder layer after its self-attention K/V: x + SelfAttn, + CrossAttn, + FFN. */
  private decoderBlock(
    index: number, x: string, normed: string, self: { key: string; value: string }, selfMask: string | null,
    cross: { key: string; value: string }, memoryMask: string,
  ): string {
    const prefix = `decoder.${index}`;
    const selfAttention = `${prefix}.self_attention`;
    const afterSelf = this.node('Add', [x, this.attend(this.linear(normed, `${selfAttention}.query`), self.key, self.value, selfMask, selfAttention)]);
    const crossAttention = `${prefix}.cross_attention`;
    const crossQuery = this.linear(this.layerNorm(afterSelf, `${prefix}.cross_attention_norm`), `${crossAttention}.query`);
    const afterCross = this.node('Add', [afterSelf, this.attend(crossQuery, cross.key, cross.value, memoryMask, crossAttention)]);
    return this.node('Add', [afterCross, this.feedForward(this.layerNorm(afterCross, `${prefix}.ffn_norm`), `${prefix}.ffn`)]);
  }

  // ---- embeddings and head ---------------------------------------------------

  /** pixels (B, H, W, 3) in [-1, 1] -> (B, Np, D); patch vectors ordered (row, column, channel). */
  embedImage(this: ModelNodes<ModelConfig>, pixels: string): string {
    const { imageSize, patchSize } = this.config;
    const grid = imageSize / patchSize;
    const blocks = this.node('Reshape', [pixels, this.builder.int64Constant([0, grid, patchSize, grid, patchSize, 3])]); // (B, gy, P, gx, P, 3)
    const ordered = this.node('Transpose', [blocks], { perm: intsAttribute([0, 1, 3, 2, 4, 5]) }); // (B, gy, gx, P, P, 3)
    const patches = this.node('Reshape', [ordered, this.builder.int64Constant([0, imagePatchCount(this.config), patchVectorSize(this.config)])]); // (B, Np, P·P·3)
    const positioned = this.node('Add', [this.linear(patches, 'patch_projection'), this.builder.weight('image_position')]);
    return this.layerNorm(this.node('Add', [positioned, this.typeEmbeddingRow(0)]), 'image_embedding_norm');
  }

  /** ids (B, Lt) -> (B, Lt, D): token embedding + text position + text type, normalised. */
  embedText(this: ModelNodes<ModelConfig>, ids: string): string {
    const tokens = this.node('Gather', [this.builder.weight('token_embedding'), ids]); // (B, Lt, D)
    const typed = this.node('Add', [this.node('Add', [tokens, this.leadingRows('text_position', ids)]), this.typeEmbeddingRow(1)]);
    return this.layerNorm(typed, 'text_embedding_norm');
  }

  /** ids (B, T) with position rows broadcastable to (B, T, D) -> token embedding + position, normalised. */
  embedDecoder(ids: string, positionRows: string): string {
    const tokens = this.node('Gather', [this.builder.weight('token_embedding'), ids]); // (B, T, D)
    return this.layerNorm(this.node('Add', [tokens, positionRows]), 'decoder_embedding_norm');
  }

  /** The first L rows (L, D) of position table `name`, L = the length (axis 1) of ids (B, L). */
  leadingRows(name: string, ids: string): string {
    const length = this.node('Shape', [ids], { start: intAttribute(1), end: intAttribute(2) }); // [L]
    return this.node('Slice', [this.builder.weight(name), this.builder.int64Constant([0]), length, this.builder.int64Constant([0])]); // (L, D)
  }

  /** x (B, T, D) -> logits (B, T, V) = LN_dec(x) · Eᵀ with the tied token embedding. */
  logits(this: ModelNodes<ModelConfig>, x: string): string {
    const { dim, vocabSize } = this.config;
    // Transposed once per graph, however many layers go through the head.
    this.embeddingTransposed ??= this.builder.parametersAsInputs
      ? this.node('Transpose', [this.builder.weight('token_embedding')], { perm: intsAttribute([1, 0]) }) // (D, V)
      : this.builder.derivedWeight('token_embedding.transposed', [dim, vocabSize], transposed(weightOf(this.weights, 'token_embedding'))); // (D, V)
    return this.node('MatMul', [this.layerNorm(x, 'decoder.final_norm'), this.embeddingTransposed]);
  }

  private embeddingTransposed: string | undefined;

  /** Row `row` of type_embedding (2, D) as (D): row 0 image, row 1 text. */
  private typeEmbeddingRow(this: ModelNodes<ModelConfig>, row: 0 | 1): string {
    if (this.builder.parametersAsInputs) return this.node('Gather', [this.builder.weight('type_embedding'), this.builder.int64Constant([row], [])]); // (D)
    const { dim } = this.config;
    const rowData = weightOf(this.weights, 'type_embedding').data.subarray(row * dim, (row + 1) * dim);
    return this.builder.derivedWeight(`type_embedding.${row === 0 ? 'image' : 'text'}`, [dim], rowData);
  }

  input(signature: TensorSignature): string {
    return this.builder.input(signature);
  }

  finish(name: string, outputs: [string, TensorSignature][]): PieceGraph {
    for (const [tensor, signature] of outputs) this.builder.output(tensor, signature);
    return { name, model: this.builder.build(name), ...this.builder.signature };
  }
}

// ---- pieces ------------------------------------------------------------------

/** pixels (B, H, W, 3) in [-1, 1] -> (B, Np, D); patch vectors ordered (row, column, channel). */
export function imageEmbedding(config: ModelConfig, weights: Weights): PieceGraph {
  const nodes = new ModelNodes(config, weights);
  const pixels = nodes.input(float('pixels', ['batch', config.imageSize, config.imageSize, 3]));
  return nodes.finish('image_embedding', [[nodes.embedImage(pixels), float('states', ['batch', imagePatchCount(config), config.dim])]]);
}

/** ids (B, Lt) -> (B, Lt, D): token embedding + text position + text type, normalised. */
export function textEmbedding(config: ModelConfig, weights: Weights): PieceGraph {
  const nodes = new ModelNodes(config, weights);
  const ids = nodes.input(int64('ids', ['batch', 'length']));
  return nodes.finish('text_embedding', [[nodes.embedText(ids), float('states', ['batch', 'length', config.dim])]]);
}

/** Encoder layer `index` for any stream (image, text or joint): x (B, T, D), keyMask (B, T) 1/0 -> (B, T, D). */
export function encoderLayer(config: ModelConfig, weights: Weights, index: number): PieceGraph {
  const nodes = new ModelNodes(config, weights);
  const x = nodes.input(float('states', ['batch', 'length', config.dim]));
  const keyMask = nodes.additiveKeyMask(nodes.input(float('key_mask', ['batch', 'length'])));
  return nodes.finish(`encoder_layer_${index}`, [[nodes.encoderLayer(index, x, keyMask), float('output', ['batch', 'length', config.dim])]]);
}

/** Image stream through every encoder layer in one graph (benchmarks): x (B, T, D), keyMask (B, T) -> (B, T, D). */
export function fullEncoder(config: ModelConfig, weights: Weights): PieceGraph {
  const nodes = new ModelNodes(config, weights);
  let x = nodes.input(float('states', ['batch', 'length', config.dim]));
  const keyMask = nodes.additiveKeyMask(nodes.input(float('key_mask', ['batch', 'length'])));
  for (let i = 0; i < config.encoderLayers; i++) x = nodes.encoderLayer(i, x, keyMask);
  return nodes.finish('full_encoder', [[x, float('output', ['batch', 'length', config.dim])]]);
}

/** x (B, T, D) -> LN_enc(x). */
export function encoderFinalNorm(config: ModelConfig, weights: Weights): PieceGraph {
  const nodes = new ModelNodes(config, weights);
  const x = nodes.input(float('states', ['batch', 'length', config.dim]));
  return nodes.finish('encoder_final_norm', [[nodes.layerNorm(x, 'encoder.final_norm'), float('output', ['batch', 'length', config.dim])]]);
}

/** memory (B, M, D) -> cross-attention key, value (B, M, D) of decoder layer `index`. */
export function crossKeyValues(config: ModelConfig, weights: Weights, index: number): PieceGraph {
  const nodes = new ModelNodes(config, weights);
  const memory = nodes.input(float('memory', ['batch', 'memory', config.dim]));
  const { key, value } = nodes.crossKeyValues(index, memory);
  return nodes.finish(`cross_key_values_${index}`, [
    [key, float('key', ['batch', 'memory', config.dim])],
    [value, float('value', ['batch', 'memory', config.dim])],
  ]);
}

/** ids (B, T), positions (B, T) -> (B, T, D): token embedding + decoder position, normalised (T = 1 for a step, the prompt length for a VE prompt). */
export function decoderEmbedding(config: ModelConfig, weights: Weights): PieceGraph {
  const nodes = new ModelNodes(config, weights);
  const ids = nodes.input(int64('ids', ['batch', 'length']));
  const positions = nodes.input(int64('positions', ['batch', 'length']));
  const position = nodes.node('Gather', [nodes.builder.weight('decoder_position'), positions]); // (B, T, D)
  return nodes.finish('decoder_embedding', [[nodes.embedDecoder(ids, position), float('states', ['batch', 'length', config.dim])]]);
}

/**
 * Decoder layer `index` for T ≥ 1 new positions (ModelNodes.decoderLayer): x (B, T, D), past
 * self-attention key/value (B, t, D), cross key/value (B, M, D), memoryMask (B, M) 1/0 -> hidden
 * (B, T, D) and the new positions' self-attention key/value (B, T, D). A generation step passes
 * T = 1; a VE prompt (or a teacher-forced sequence) passes T positions and an empty past (t = 0),
 * which onnxruntime accepts.
 */
export function decoderStep(config: ModelConfig, weights: Weights, index: number): PieceGraph {
  const nodes = new ModelNodes(config, weights);
  const { dim } = config;
  const x = nodes.input(float('states', ['batch', 'length', dim]));
  const past = { key: nodes.input(float('past_key', ['batch', 'past', dim])), value: nodes.input(float('past_value', ['batch', 'past', dim])) };
  const cross = { key: nodes.input(float('cross_key', ['batch', 'memory', dim])), value: nodes.input(float('cross_value', ['batch', 'memory', dim])) };
  const memoryMask = nodes.additiveKeyMask(nodes.input(float('memory_mask', ['batch', 'memory'])));
  const step = nodes.decoderLayer(index, x, past, cross, memoryMask, nodes.causalMaskAfter(x, past.key));
  return nodes.finish(`decoder_step_${index}`, [
    [step.hidden, float('output', ['batch', 'length', dim])],
    [step.key, float('key', ['batch', 'length', dim])],
    [step.value, float('value', ['batch', 'length', dim])],
  ]);
}

/**
 * Every decoder layer in one graph (the fused full-depth reference of the benchmarks), for T ≥ 1
 * new positions after t cached ones (a generation step: T = 1; a VE prompt: t = 0): inputs states
 * (B, T, D), memory_mask and per layer i past_key_i, past_value_i (B, t, D), cross_key_i,
 * cross_value_i (B, M, D); outputs the last layer's hidden (B, T, D) and per layer key_i, value_i (B, T, D).
 */
export function fullDecoderStep(config: ModelConfig, weights: Weights): PieceGraph {
  const nodes = new ModelNodes(config, weights);
  const { dim } = config;
  let x = nodes.input(float('states', ['batch', 'length', dim]));
  const memoryMask = nodes.additiveKeyMask(nodes.input(float('memory_mask', ['batch', 'memory'])));
  const outputs: [string, TensorSignature][] = [];
  for (let i = 0; i < config.decoderLayers; i++) {
    const past = { key: nodes.input(float(`past_key_${i}`, ['batch', 'past', dim])), value: nodes.input(float(`past_value_${i}`, ['batch', 'past', dim])) };
    const cross = { key: nodes.input(float(`cross_key_${i}`, ['batch', 'memory', dim])), value: nodes.input(float(`cross_value_${i}`, ['batch', 'memory', dim])) };
    const step = nodes.decoderLayer(i, x, past, cross, memoryMask, nodes.causalMaskAfter(x, past.key));
    outputs.push([step.key, float(`key_${i}`, ['batch', 'length', dim])], [step.value, float(`value_${i}`, ['batch', 'length', dim])]);
    x = step.hidden;
  }
  return nodes.finish('full_decoder_step', [[x, float('output', ['batch', 'length', dim])], ...outputs]);
}

/** x (B, 1, D) -> the self-attention key, value (B, 1, D) decoder layer `index` computes for it (LN, then projections). */
export function selfKeyValues(config: ModelConfig, weights: Weights, index: number): PieceGraph {
  const nodes = new ModelNodes(config, weights);
  const x = nodes.input(float('states', ['batch', 1, config.dim]));
  const { key, value } = nodes.selfKeyValues(index, x);
  return nodes.finish(`self_key_values_${index}`, [
    [key, float('key', ['batch', 1, config.dim])],
    [value, float('value', ['batch', 1, config.dim])],
  ]);
}

/** x (B, T, D) -> logits (B, T, V) = LN_dec(x) · Eᵀ with the tied token embedding. */
export function outputHead(config: ModelConfig, weights: Weights): PieceGraph {
  const nodes = new ModelNodes(config, weights);
  const x = nodes.input(float('states', ['batch', 'length', config.dim]));
  return nodes.finish('output_head', [[nodes.logits(x), float('logits', ['batch', 'length', config.vocabSize])]]);
}

/** Every per-layer piece the runner needs, built one at a time (each holds a copy of its weights). */
export function* layerPieces(config: ModelConfig, weights: Weights): Generator<PieceGraph> {
  yield imageEmbedding(config, weights);
  yield textEmbedding(config, weights);
  for (let i = 0; i < config.encoderLayers; i++) yield encoderLayer(config, weights, i);
  yield encoderFinalNorm(config, weights);
  yield decoderEmbedding(config, weights);
  for (let i = 0; i < config.decoderLayers; i++) {
    yield crossKeyValues(config, weights, i);
    yield decoderStep(config, weights, i);
    yield selfKeyValues(config, weights, i);
  }
  yield outputHead(config, weights);
}

/** The whole-stack benchmark graphs. */
export function* fullStackPieces(config: ModelConfig, weights: Weights): Generator<PieceGraph> {
  yield fullEncoder(config, weights);
  yield fullDecoderStep(config, weights);
}

// ---- helpers -------------------------------------------------------------------

export function weightOf(weights: Weights, name: string): NamedArray {
  const tensor = weights.get(name);
  if (!tensor) throw new Error(`weights have no tensor "${name}"`);
  return tensor;
}

/** (R, C) row-major -> (C, R). */
export function transposed({ shape, data }: NamedArray): Float32Array {
  const [rows, columns] = shape as [number, number];
  const out = new Float32Array(rows * columns);
  for (let r = 0; r < rows; r++) for (let c = 0; c < columns; c++) out[c * rows + r] = data[r * columns + c]!;
  return out;
}
