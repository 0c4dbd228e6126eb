// The ONNX graphs of the model, one small graph per piece (embedding, encoder layer,
// decoder step, ...) so early-exit logic can run in TypeScript between layers, plus two
// whole-stack graphs for benchmarks. The math is exactly TfModel's (src/model/tfModel.ts):
// pre-LN layers, exact GELU, attention scale 1/√hs, additive −1e9 key and causal masks.
// Notation: B batch, Np image patches, Lt text tokens, T sequence, t past decoder
// positions, M memory tokens, D width, nh heads, hs = D / nh head size, V vocabulary.
// Attention keys and values cross graph boundaries token-major, heads concatenated: (B, T, D).
import type { ModelConfig } from '../model/config.js';
import { headSize, imagePatchCount, patchVectorSize } from '../model/config.js';
import type { NamedArray } from '../model/safetensors.js';
import { type Attribute, floatAttribute, GraphBuilder, intAttribute, intsAttribute, type TensorSignature } from './onnxBuilder.js';

/** Additive attention mask value for keys that must not be attended to (as TfModel). */
const MASKED = -1e9;

/** One piece: its serialised ModelProto and its input/output signatures (in graph order). */
export interface PieceGraph {
  name: string;
  model: Uint8Array;
  inputs: TensorSignature[];
  outputs: TensorSignature[];
}

type Weights = Map<string, NamedArray>;

const float = (name: string, dims: (number | string)[]): TensorSignature => ({ name, type: 'float32', dims });
const int64 = (name: string, dims: (number | string)[]): TensorSignature => ({ name, type: 'int64', dims });

/** Node-building functions for the model's layers over one GraphBuilder; every graph is made from these. */
class ModelNodes {
  readonly builder: GraphBuilder;

  constructor(readonly config: ModelConfig, weights: Weights) {
    this.builder = new GraphBuilder(weights);
  }

  node(opType: string, inputs: string[], attributes?: Record<string, Attribute>): string {
    return this.builder.node(opType, inputs, attributes);
  }

  /** y = x·W + b over the last axis; x (..., in) -> (..., out). */
  linear(x: string, prefix: string): string {
    return this.node('Add', [this.node('MatMul', [x, this.builder.weight(`${prefix}.weight`)]), this.builder.weight(`${prefix}.bias`)]);
  }

  /** LN(x) = (x − mean) / sqrt(var + ε) · γ + β over the last axis. */
  layerNorm(x: string, prefix: string): string {
    return this.node('LayerNormalization', [x, this.builder.weight(`${prefix}.weight`), this.builder.weight(`${prefix}.bias`)], {
      axis: intAttribute(-1),
      epsilon: floatAttribute(this.config.layerNormEpsilon),
    });
  }

  /** FFN(x) = fc2(GELU(fc1(x))), GELU(x) = 0.5·x·(1 + erf(x/√2)). */
  feedForward(x: string, prefix: string): string {
    const hidden = this.linear(x, `${prefix}.fc1`);
    const erf = this.node('Erf', [this.node('Mul', [hidden, this.builder.floatConstant([Math.SQRT1_2], [])])]);
    const halfHidden = this.node('Mul', [hidden, this.builder.floatConstant([0.5], [])]);
    const gelu = this.node('Mul', [halfHidden, this.node('Add', [erf, this.builder.floatConstant([1], [])])]);
    return this.linear(gelu, `${prefix}.fc2`);
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
  attend(query: string, key: string, value: string, additiveMask: string | null, prefix: string): string {
    const { heads, dim } = this.config;
    const size = headSize(this.config);
    const splitHeads = this.builder.int64Constant([0, 0, heads, size]); // (B, T, D) -> (B, T, nh, hs)
    const queryHeads = this.node('Transpose', [this.node('Reshape', [query, splitHeads])], { perm: intsAttribute([0, 2, 1, 3]) }); // (B, nh, Tq, hs)
    const keyTransposed = this.node('Transpose', [this.node('Reshape', [key, splitHeads])], { perm: intsAttribute([0, 2, 3, 1]) }); // (B, nh, hs, Tk)
    const valueHeads = this.node('Transpose', [this.node('Reshape', [value, splitHeads])], { perm: intsAttribute([0, 2, 1, 3]) }); // (B, nh, Tk, hs)
    let scores = this.node('Mul', [this.node('MatMul', [queryHeads, keyTransposed]), this.builder.floatConstant([1 / Math.sqrt(size)], [])]); // (B, nh, Tq, Tk)
    if (additiveMask) scores = this.node('Add', [scores, additiveMask]);
    const weights = this.node('Softmax', [scores], { axis: intAttribute(-1) });
    const context = this.node('Transpose', [this.node('MatMul', [weights, valueHeads])], { perm: intsAttribute([0, 2, 1, 3]) }); // (B, Tq, nh, hs)
    const merged = this.node('Reshape', [context, this.builder.int64Constant([0, 0, dim])]); // (B, Tq, D)
    return this.linear(merged, `${prefix}.output`);
  }

  /** Pre-LN encoder layer: x + Attn(LN(x)), then + FFN(LN(·)). x (B, T, D), additiveMask (B, 1, 1, T). */
  encoderLayer(index: number, x: string, additiveMask: string): string {
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
  causalMask(x: string, pastKey: string): string {
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
   * T positions with an empty past (t = 0). x (B, T, D); past K/V (B, t, D), t ≥ 0; cross K/V
   * (B, M, D); memoryMask additive (B, 1, 1, M). Returns the hidden states and the new positions'
   * self-attention key/value (B, T, D), to append to the cache.
   */
  decoderLayer(
    index: number, x: string, past: { key: string; value: string },
    cross: { key: string; value: string }, memoryMask: string,
  ): { hidden: string; key: string; value: string } {
    const prefix = `decoder.${index}`;
    const current = this.selfKeyValues(index, x);
    const keys = this.node('Concat', [past.key, current.key], { axis: intAttribute(1) }); // (B, t + T, D)
    const values = this.node('Concat', [past.value, current.value], { axis: intAttribute(1) }); // (B, t + T, D)
    const selfAttention = `${prefix}.self_attention`;
    const causal = this.causalMask(x, past.key);
    const afterSelf = this.node('Add', [x, this.attend(this.linear(current.normed, `${selfAttention}.query`), keys, values, causal, selfAttention)]);
    const crossAttention = `${prefix}.cross_attention`;
    const crossQuery = this.linear(this.layerNorm(afterSelf, `${prefix}.cross_attention_norm`), `${crossAttention}.query`);
    const afterCross = this.node('Add', [afterSelf, this.attend(crossQuery, cross.key, cross.value, memoryMask, crossAttention)]);
    const hidden = this.node('Add', [afterCross, this.feedForward(this.layerNorm(afterCross, `${prefix}.ffn_norm`), `${prefix}.ffn`)]);
    return { hidden, key: current.key, value: current.value };
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
  const { imageSize, patchSize, dim } = config;
  const grid = imageSize / patchSize;
  const pixels = nodes.input(float('pixels', ['batch', imageSize, imageSize, 3]));
  const blocks = nodes.node('Reshape', [pixels, nodes.builder.int64Constant([0, grid, patchSize, grid, patchSize, 3])]); // (B, gy, P, gx, P, 3)
  const ordered = nodes.node('Transpose', [blocks], { perm: intsAttribute([0, 1, 3, 2, 4, 5]) }); // (B, gy, gx, P, P, 3)
  const patches = nodes.node('Reshape', [ordered, nodes.builder.int64Constant([0, imagePatchCount(config), patchVectorSize(config)])]); // (B, Np, P·P·3)
  const positioned = nodes.node('Add', [nodes.linear(patches, 'patch_projection'), nodes.builder.weight('image_position')]);
  const typed = nodes.node('Add', [positioned, typeEmbeddingRow(nodes, weights, 0, dim)]);
  return nodes.finish('image_embedding', [[nodes.layerNorm(typed, 'image_embedding_norm'), float('states', ['batch', imagePatchCount(config), dim])]]);
}

/** ids (B, Lt) -> (B, Lt, D): token embedding + text position + text type, normalised. */
export function textEmbedding(config: ModelConfig, weights: Weights): PieceGraph {
  const nodes = new ModelNodes(config, weights);
  const ids = nodes.input(int64('ids', ['batch', 'length']));
  const tokens = nodes.node('Gather', [nodes.builder.weight('token_embedding'), ids]); // (B, Lt, D)
  const length = nodes.node('Shape', [ids], { start: intAttribute(1), end: intAttribute(2) }); // [Lt]
  const position = nodes.node('Slice', [nodes.builder.weight('text_position'), nodes.builder.int64Constant([0]), length, nodes.builder.int64Constant([0])]); // (Lt, D)
  const typed = nodes.node('Add', [nodes.node('Add', [tokens, position]), typeEmbeddingRow(nodes, weights, 1, config.dim)]);
  return nodes.finish('text_embedding', [[nodes.layerNorm(typed, 'text_embedding_norm'), float('states', ['batch', 'length', config.dim])]]);
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
  const tokens = nodes.node('Gather', [nodes.builder.weight('token_embedding'), ids]); // (B, T, D)
  const position = nodes.node('Gather', [nodes.builder.weight('decoder_position'), positions]); // (B, T, D)
  return nodes.finish('decoder_embedding', [
    [nodes.layerNorm(nodes.node('Add', [tokens, position]), 'decoder_embedding_norm'), float('states', ['batch', 'length', config.dim])],
  ]);
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
  const step = nodes.decoderLayer(index, x, past, cross, memoryMask);
  return nodes.finish(`decoder_step_${index}`, [
    [step.hidden, float('output', ['batch', 'length', dim])],
    [step.key, float('key', ['batch', 'length', dim])],
    [step.value, float('value', ['batch', 'length', dim])],
  ]);
}

/**
 * Every decoder layer's step in one graph (benchmarks): inputs states, memory_mask and per layer i
 * past_key_i, past_value_i (B, t, D), cross_key_i, cross_value_i (B, M, D); outputs the last
 * layer's hidden (B, 1, D) and per layer key_i, value_i (B, 1, D).
 */
export function fullDecoderStep(config: ModelConfig, weights: Weights): PieceGraph {
  const nodes = new ModelNodes(config, weights);
  const { dim } = config;
  let x = nodes.input(float('states', ['batch', 1, dim]));
  const memoryMask = nodes.additiveKeyMask(nodes.input(float('memory_mask', ['batch', 'memory'])));
  const outputs: [string, TensorSignature][] = [];
  for (let i = 0; i < config.decoderLayers; i++) {
    const past = { key: nodes.input(float(`past_key_${i}`, ['batch', 'past', dim])), value: nodes.input(float(`past_value_${i}`, ['batch', 'past', dim])) };
    const cross = { key: nodes.input(float(`cross_key_${i}`, ['batch', 'memory', dim])), value: nodes.input(float(`cross_value_${i}`, ['batch', 'memory', dim])) };
    const step = nodes.decoderLayer(i, x, past, cross, memoryMask);
    outputs.push([step.key, float(`key_${i}`, ['batch', 1, dim])], [step.value, float(`value_${i}`, ['batch', 1, dim])]);
    x = step.hidden;
  }
  return nodes.finish('full_decoder_step', [[x, float('output', ['batch', 1, dim])], ...outputs]);
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
  const embeddingTransposed = nodes.builder.derivedWeight('token_embedding.transposed', [config.dim, config.vocabSize], transposed(weightOf(weights, 'token_embedding'))); // (D, V)
  const logits = nodes.node('MatMul', [nodes.layerNorm(x, 'decoder.final_norm'), embeddingTransposed]);
  return nodes.finish('output_head', [[logits, float('logits', ['batch', 'length', config.vocabSize])]]);
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

function weightOf(weights: Weights, name: string): NamedArray {
  const tensor = weights.get(name);
  if (!tensor) throw new Error(`weights have no tensor "${name}"`);
  return tensor;
}

/** Row `row` of type_embedding (2, D) as a (D) initialiser: row 0 image, row 1 text. */
function typeEmbeddingRow(nodes: ModelNodes, weights: Weights, row: 0 | 1, dim: number): string {
  const rowData = weightOf(weights, 'type_embedding').data.subarray(row * dim, (row + 1) * dim);
  return nodes.builder.derivedWeight(`type_embedding.${row === 0 ? 'image' : 'text'}`, [dim], rowData);
}

/** (R, C) row-major -> (C, R). */
function transposed({ shape, data }: NamedArray): Float32Array {
  const [rows, columns] = shape as [number, number];
  const out = new Float32Array(rows * columns);
  for (let r = 0; r < rows; r++) for (let c = 0; c < columns; c++) out[c * rows + r] = data[r * columns + c]!;
  return out;
}
