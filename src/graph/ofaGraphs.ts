// The ONNX graphs of the `ofa` family (the real OFA / MuE architecture, ARCHITECTURE.md), one
// small graph per piece like mue's own family (src/graph/layerGraphs.ts), built from the same
// layer builders (linear, layerNorm, feedForward, attend) with OFA's hooks: PyTorch (out, in)
// linear weights, position-bias inputs, attention scale (hs·factor)^-1/2, c_attn, attn_ln, ffn_layernorm.
// Positions never enter the residual stream: the runtime computes the absolute position biases once
// per call (ofa_encoder_position_bias, ofa_decoder_position_bias), adds each layer's relative
// bias (ofa_*_relative_bias_l) and hands the layers a full (1|B, nh, Tq, Tk) bias.
// Notation: B batch, N image patches, Ts text tokens, T sequence, Tq queries, t cached decoder
// positions, S = t + Tq keys, M = N + Ts memory tokens, D width, nh heads, hs = D / nh, V vocabulary.
// Keys/values cross graph boundaries token-major, heads concatenated: (B, T, D).
import type { OfaConfig } from '../model/ofaConfig.js';
import { OFA_STEM_CHANNELS, ofaImageGrid, ofaPatchCount } from '../model/ofaConfig.js';
import { imageBucketCount, tokenBucketCount } from '../model/ofaBuckets.js';
import { float, int64, type LayerShape, MASKED, ModelNodes, type PieceGraph, transposed, weightOf, type Weights } from './layerGraphs.js';
import { floatAttribute, intAttribute, intsAttribute, type TensorSignature } from './onnxBuilder.js';

type Stack = 'encoder' | 'decoder';

const heads = (config: OfaConfig, stack: Stack): number => (stack === 'encoder' ? config.encoderHeads : config.decoderHeads);

/** (hs · attn_scale_factor)^-1/2: the attention scale and the position-bias scale (A:58, U:579, 1163). */
export const ofaAttentionScale = (config: OfaConfig, stack: Stack): number => (config.dim / heads(config, stack) * config.attentionScaleFactor) ** -0.5;

function nodesFor(config: OfaConfig, weights: Weights, stack: Stack): ModelNodes<LayerShape> {
  const shape: LayerShape = { dim: config.dim, heads: heads(config, stack), layerNormEpsilon: config.layerNormEpsilon };
  return new ModelNodes(shape, weights, { linearLayout: 'out-in' });
}

function finish(nodes: ModelNodes<LayerShape>, name: string, outputs: [string, TensorSignature][]): PieceGraph {
  for (const [tensor, signature] of outputs) nodes.builder.output(tensor, signature);
  return { name, model: nodes.builder.build(name), ...nodes.builder.signature };
}

/** x (B, T, D) with the rows where `ids` (B, T) is the pad id set to zero. */
function zeroPadRows(nodes: ModelNodes<LayerShape>, x: string, ids: string, padId: number): string {
  const isPad = nodes.node('Equal', [ids, nodes.builder.int64Constant([padId])]); // (B, T) bool
  const keep = nodes.node('Cast', [nodes.node('Not', [isPad])], { to: intAttribute(1) }); // (B, T) float
  return nodes.node('Mul', [x, nodes.node('Unsqueeze', [keep, nodes.builder.int64Constant([2])])]); // (B, T, 1) broadcast
}

/**
 * bias[h, i, j] = (s·(Wq P_i + bq)_h) · (Wk P_j + bk)_h for position embeddings queries (Tq, D),
 * keys (Tk, D) -> (1, nh, Tq, Tk) (U:904-918, 1303-1324).
 */
function positionBias(nodes: ModelNodes<LayerShape>, config: OfaConfig, stack: Stack, queries: string, keys: string, qPrefix: string, kPrefix: string): string {
  const splitHeads = nodes.builder.int64Constant([0, heads(config, stack), config.dim / heads(config, stack)]); // (T, D) -> (T, nh, hs)
  const query = nodes.node('Transpose', [nodes.node('Reshape', [nodes.linear(queries, qPrefix), splitHeads])], { perm: intsAttribute([1, 0, 2]) }); // (nh, Tq, hs)
  const key = nodes.node('Transpose', [nodes.node('Reshape', [nodes.linear(keys, kPrefix), splitHeads])], { perm: intsAttribute([1, 2, 0]) }); // (nh, hs, Tk)
  const scaledQuery = nodes.node('Mul', [query, nodes.builder.floatConstant([ofaAttentionScale(config, stack)], [])]);
  return nodes.node('Unsqueeze', [nodes.node('MatMul', [scaledQuery, key]), nodes.builder.int64Constant([0])]); // (1, nh, Tq, Tk)
}

/** One OFA attention call (A): projections, scale, bias, additive mask, c_attn, out_proj; then attn_ln when scale_attn. */
function ofaAttention(
  nodes: ModelNodes<LayerShape>, config: OfaConfig, stack: Stack, prefix: string, query: string,
  keyValue: { key: string; value: string }, bias: string, additiveMask: string | null, outputNorm: string,
): string {
  const attended = nodes.attend(nodes.linear(query, `${prefix}.q_proj`), keyValue.key, keyValue.value, additiveMask, prefix, {
    scale: ofaAttentionScale(config, stack),
    bias,
    headScales: config.scaleHeads ? `${prefix}.c_attn` : undefined,
    outputProjection: `${prefix}.out_proj`,
  });
  return config.scaleAttention ? nodes.layerNorm(attended, outputNorm) : attended;
}

/** FFN sub-block with its residual: x + fc2(ffn_layernorm(gelu(fc1(LN(x))))) (L:270-293). */
function ofaFeedForwardBlock(nodes: ModelNodes<LayerShape>, config: OfaConfig, prefix: string, x: string): string {
  const normed = nodes.layerNorm(x, `${prefix}.final_layer_norm`);
  return nodes.node('Add', [x, nodes.feedForward(normed, prefix, config.scaleFeedForward ? `${prefix}.ffn_layernorm` : undefined)]);
}

/** Encoder layer l (L:222-293): x (B, T, D), additive key mask (B, 1, 1, T), bias (1|B, nh, T, T) -> (B, T, D). */
function ofaEncoderLayerNodes(nodes: ModelNodes<LayerShape>, config: OfaConfig, index: number, x: string, mask: string, bias: string): string {
  const prefix = `encoder.layers.${index}`;
  const normed = nodes.layerNorm(x, `${prefix}.self_attn_layer_norm`);
  const selfAttention = `${prefix}.self_attn`;
  const keyValue = { key: nodes.linear(normed, `${selfAttention}.k_proj`), value: nodes.linear(normed, `${selfAttention}.v_proj`) };
  const attended = nodes.node('Add', [x, ofaAttention(nodes, config, 'encoder', selfAttention, normed, keyValue, bias, mask, `${prefix}.attn_ln`)]);
  return ofaFeedForwardBlock(nodes, config, prefix, attended);
}

/** Conv2d without bias (the stem's convolutions): x (B, Cin, H, W) -> (B, Cout, H', W'). */
function conv(nodes: ModelNodes<LayerShape>, x: string, name: string, kernel: number, stride: number): string {
  const padding = Math.floor(kernel / 2);
  return nodes.node('Conv', [x, nodes.builder.weight(`${name}.weight`)], {
    kernel_shape: intsAttribute([kernel, kernel]), strides: intsAttribute([stride, stride]), pads: intsAttribute([padding, padding, padding, padding]),
  });
}

/** Eval-mode BatchNorm: (x − running_mean) / √(running_var + 1e-5) · weight + bias per channel. */
function batchNorm(nodes: ModelNodes<LayerShape>, x: string, name: string): string {
  const { builder } = nodes;
  return nodes.node('BatchNormalization', [x, builder.weight(`${name}.weight`), builder.weight(`${name}.bias`), builder.weight(`${name}.running_mean`), builder.weight(`${name}.running_var`)], {
    epsilon: floatAttribute(1e-5),
  });
}

/** Bottleneck v1.5 (R:113-133): ReLU(shortcut + bn3(conv3(relu(bn2(conv2_s(relu(bn1(conv1(x))))))))). */
function bottleneck(nodes: ModelNodes<LayerShape>, x: string, name: string, stride: number, downsample: boolean): string {
  let branch = nodes.node('Relu', [batchNorm(nodes, conv(nodes, x, `${name}.conv1`, 1, 1), `${name}.bn1`)]);
  branch = nodes.node('Relu', [batchNorm(nodes, conv(nodes, branch, `${name}.conv2`, 3, stride), `${name}.bn2`)]);
  branch = batchNorm(nodes, conv(nodes, branch, `${name}.conv3`, 1, 1), `${name}.bn3`);
  const shortcut = downsample ? batchNorm(nodes, conv(nodes, x, `${name}.downsample.0`, 1, stride), `${name}.downsample.1`) : x;
  return nodes.node('Relu', [nodes.node('Add', [shortcut, branch])]);
}

/** A (D) row of a (rows, D) parameter as an initialiser. */
function parameterRow(nodes: ModelNodes<LayerShape>, weights: Weights, name: string, row: number): string {
  const { shape, data } = weightOf(weights, name);
  const width = shape[1]!;
  return nodes.builder.derivedWeight(`${name}.row${row}`, [width], data.subarray(row * width, (row + 1) * width));
}

// ---- pieces ------------------------------------------------------------------

/**
 * pixels (B, S, S, 3) in [-1, 1] -> states (B, N, D) = patch_LN(image_proj(stem(pixels)) + type[1])
 * and the stem's features (B, 1024, h, w); patch p = r·w + c (U:665-702).
 */
export function ofaImageEmbedding(config: OfaConfig, weights: Weights): PieceGraph {
  const nodes = nodesFor(config, weights, 'encoder');
  const { imageSize, dim } = config;
  const pixels = nodes.builder.input(float('pixels', ['batch', imageSize, imageSize, 3]));
  let x = nodes.node('Transpose', [pixels], { perm: intsAttribute([0, 3, 1, 2]) }); // (B, 3, S, S)
  const stem = 'encoder.embed_images';
  x = nodes.node('Relu', [batchNorm(nodes, conv(nodes, x, `${stem}.conv1`, 7, 2), `${stem}.bn1`)]);
  x = nodes.node('MaxPool', [x], { kernel_shape: intsAttribute([3, 3]), strides: intsAttribute([2, 2]), pads: intsAttribute([1, 1, 1, 1]) }); // (B, 64, S/4, S/4)
  config.resnetBlocks.forEach((blocks, stage) => {
    for (let block = 0; block < blocks; block++) {
      x = bottleneck(nodes, x, `${stem}.layer${stage + 1}.${block}`, block === 0 && stage > 0 ? 2 : 1, block === 0);
    }
  }); // (B, 1024, h, w)
  const patches = nodes.node('Transpose', [nodes.node('Reshape', [x, nodes.builder.int64Constant([0, OFA_STEM_CHANNELS, -1])])], { perm: intsAttribute([0, 2, 1]) }); // (B, N, 1024)
  const typed = nodes.node('Add', [nodes.linear(patches, 'encoder.image_proj'), parameterRow(nodes, weights, 'encoder.type_embedding.weight', 1)]);
  return finish(nodes, 'ofa_image_embedding', [
    [nodes.layerNorm(typed, 'encoder.patch_layernorm_embedding'), float('states', ['batch', ofaPatchCount(config), dim])],
    [x, float('features', ['batch', OFA_STEM_CHANNELS, ...ofaImageGrid(config)])],
  ]);
}

/** ids (B, Ts) -> (B, Ts, D) = LN(E[id] + type[0]), pad rows zeroed (U:728-737, 897-899). */
export function ofaTextEmbedding(config: OfaConfig, weights: Weights): PieceGraph {
  const nodes = nodesFor(config, weights, 'encoder');
  const ids = nodes.builder.input(int64('ids', ['batch', 'length']));
  const tokens = nodes.node('Gather', [nodes.builder.weight('encoder.embed_tokens.weight'), ids]); // (B, Ts, D)
  const typed = nodes.node('Add', [tokens, parameterRow(nodes, weights, 'encoder.type_embedding.weight', 0)]);
  const states = zeroPadRows(nodes, nodes.layerNorm(typed, 'encoder.layernorm_embedding'), ids, config.padId);
  return finish(nodes, 'ofa_text_embedding', [[states, float('states', ['batch', 'length', config.dim])]]);
}

/**
 * image_position_ids (N), text_position_ids (Ts) -> position_embeddings (M, D) = [image_pos_ln(E_img[pid]);
 * pos_ln(E_pos[t])] (the decoder's cross-attention keys) and the absolute biases (U:904-918):
 * split mode image_bias (1, nh, N, N) and text_bias (1, nh, Ts, Ts); joint mode bias (1, nh, M, M).
 */
export function ofaEncoderPositionBias(config: OfaConfig, weights: Weights): PieceGraph {
  const nodes = nodesFor(config, weights, 'encoder');
  const { builder } = nodes;
  const imageIds = builder.input(int64('image_position_ids', ['patches']));
  const textIds = builder.input(int64('text_position_ids', ['length']));
  const image = nodes.layerNorm(nodes.node('Gather', [builder.weight('encoder.embed_image_positions.weight'), imageIds]), 'encoder.image_pos_ln'); // (N, D)
  const text = nodes.layerNorm(nodes.node('Gather', [builder.weight('encoder.embed_positions.weight'), textIds]), 'encoder.pos_ln'); // (Ts, D)
  const joint = nodes.node('Concat', [image, text], { axis: intAttribute(0) }); // (M, D)
  const bias = (positions: string): string => positionBias(nodes, config, 'encoder', positions, positions, 'encoder.pos_q_linear', 'encoder.pos_k_linear');
  const nh = config.encoderHeads;
  const biases: [string, TensorSignature][] = config.encoderMode === 'split'
    ? [[bias(image), float('image_bias', [1, nh, 'patches', 'patches'])], [bias(text), float('text_bias', [1, nh, 'length', 'length'])]]
    : [[bias(joint), float('bias', [1, nh, 'memory', 'memory'])]];
  return finish(nodes, 'ofa_encoder_position_bias', [[joint, float('position_embeddings', ['memory', config.dim])], ...biases]);
}

/**
 * Rows of layer l's combined relative table: encoder [text (2b_t − 1); image ((2b_i − 1)² + 3); zero],
 * decoder [text; zero]. Bucket indices from ofaRelativeBuckets (src/model/ofaBuckets.ts) address it;
 * the zero row serves pairs without a relative bias (OFA's image↔text blocks).
 */
export function relativeTableLayout(config: OfaConfig, stack: Stack): { text: number; image: number; zero: number } {
  const text = tokenBucketCount(config.tokenBucketSize);
  const image = stack === 'encoder' ? imageBucketCount(config.imageBucketSize) : 0;
  return { text: 0, image: text, zero: text + image };
}

/** position_bias (1|B, nh, Tq, Tk) + layer l's relative table gathered at buckets (Tq, Tk) -> (1|B, nh, Tq, Tk) (U:645-663). */
export function ofaRelativeBias(config: OfaConfig, weights: Weights, stack: Stack, index: number): PieceGraph {
  const nodes = nodesFor(config, weights, stack);
  const nh = heads(config, stack);
  const tables = [weightOf(weights, `${stack}.token_rel_pos_table_list.${index}.weight`)];
  if (stack === 'encoder') tables.push(weightOf(weights, `${stack}.image_rel_pos_table_list.${index}.weight`));
  const layout = relativeTableLayout(config, stack);
  const combined = new Float32Array((layout.zero + 1) * nh); // last row stays zero
  let offset = 0;
  for (const table of tables) {
    combined.set(table.data, offset);
    offset += table.data.length;
  }
  const table = nodes.builder.derivedWeight(`${stack}.relative_table.${index}`, [layout.zero + 1, nh], combined);
  const bias = nodes.builder.input(float('position_bias', ['bias_batch', nh, 'queries', 'keys']));
  const buckets = nodes.builder.input(int64('buckets', ['queries', 'keys']));
  const relative = nodes.node('Transpose', [nodes.node('Gather', [table, buckets])], { perm: intsAttribute([2, 0, 1]) }); // (nh, Tq, Tk)
  return finish(nodes, `ofa_${stack}_relative_bias_${index}`, [[nodes.node('Add', [bias, relative]), float('output', ['bias_batch', nh, 'queries', 'keys'])]]);
}

/** Encoder layer l on any stream: states (B, T, D), key_mask (B, T) 1/0, position_bias (1|B, nh, T, T) -> (B, T, D). */
export function ofaEncoderLayer(config: OfaConfig, weights: Weights, index: number): PieceGraph {
  const nodes = nodesFor(config, weights, 'encoder');
  const x = nodes.builder.input(float('states', ['batch', 'length', config.dim]));
  const mask = nodes.additiveKeyMask(nodes.builder.input(float('key_mask', ['batch', 'length'])));
  const bias = nodes.builder.input(float('position_bias', ['bias_batch', config.encoderHeads, 'length', 'length']));
  return finish(nodes, `ofa_encoder_layer_${index}`, [[ofaEncoderLayerNodes(nodes, config, index, x, mask, bias), float('output', ['batch', 'length', config.dim])]]);
}

/** Every encoder layer over one stream in one graph (benchmarks): states, key_mask and per layer position_bias_l -> (B, T, D). */
export function ofaFullEncoder(config: OfaConfig, weights: Weights): PieceGraph {
  const nodes = nodesFor(config, weights, 'encoder');
  let x = nodes.builder.input(float('states', ['batch', 'length', config.dim]));
  const mask = nodes.additiveKeyMask(nodes.builder.input(float('key_mask', ['batch', 'length'])));
  for (let i = 0; i < config.encoderLayers; i++) {
    const bias = nodes.builder.input(float(`position_bias_${i}`, ['bias_batch', config.encoderHeads, 'length', 'length']));
    x = ofaEncoderLayerNodes(nodes, config, i, x, mask, bias);
  }
  return finish(nodes, 'ofa_full_encoder', [[x, float('output', ['batch', 'length', config.dim])]]);
}

/** states (B, T, D) -> encoder.layer_norm(states): the memory, given [image ; text] final states. */
export function ofaEncoderFinalNorm(config: OfaConfig, weights: Weights): PieceGraph {
  const nodes = nodesFor(config, weights, 'encoder');
  const x = nodes.builder.input(float('states', ['batch', 'length', config.dim]));
  return finish(nodes, 'ofa_encoder_final_norm', [[nodes.layerNorm(x, 'encoder.layer_norm'), float('output', ['batch', 'length', config.dim])]]);
}

/** ids (B, T) -> (B, T, D) = decoder.layernorm_embedding(E[id]); no positions (disable_entangle, U:1481-1494). */
export function ofaDecoderEmbedding(config: OfaConfig, weights: Weights): PieceGraph {
  const nodes = nodesFor(config, weights, 'decoder');
  const ids = nodes.builder.input(int64('ids', ['batch', 'length']));
  const tokens = nodes.node('Gather', [nodes.builder.weight('decoder.embed_tokens.weight'), ids]); // (B, T, D)
  return finish(nodes, 'ofa_decoder_embedding', [[nodes.layerNorm(tokens, 'decoder.layernorm_embedding'), float('states', ['batch', 'length', config.dim])]]);
}

/**
 * query_positions (Tq), key_positions (Tk) (decoder positions; right-aligned after skipped layers,
 * §10.3), memory_positions (M, D) (the encoder's position_embeddings) -> self_bias (1, nh, Tq, Tk)
 * and cross_bias (1, nh, Tq, M), the absolute biases shared by every decoder layer (U:1303-1324).
 */
export function ofaDecoderPositionBias(config: OfaConfig, weights: Weights): PieceGraph {
  const nodes = nodesFor(config, weights, 'decoder');
  const { builder } = nodes;
  const embed = (ids: string): string => nodes.layerNorm(nodes.node('Gather', [builder.weight('decoder.embed_positions.weight'), ids]), 'decoder.pos_ln'); // (T, D)
  const queries = embed(builder.input(int64('query_positions', ['queries'])));
  const keys = embed(builder.input(int64('key_positions', ['keys'])));
  const memory = builder.input(float('memory_positions', ['memory', config.dim]));
  const nh = config.decoderHeads;
  return finish(nodes, 'ofa_decoder_position_bias', [
    [positionBias(nodes, config, 'decoder', queries, keys, 'decoder.self_pos_q_linear', 'decoder.self_pos_k_linear'), float('self_bias', [1, nh, 'queries', 'keys'])],
    [positionBias(nodes, config, 'decoder', queries, memory, 'decoder.cross_pos_q_linear', 'decoder.cross_pos_k_linear'), float('cross_bias', [1, nh, 'queries', 'memory'])],
  ]);
}

/** memory (B, M, D) -> decoder layer l's cross-attention key, value (B, M, D). */
export function ofaCrossKeyValues(config: OfaConfig, weights: Weights, index: number): PieceGraph {
  const nodes = nodesFor(config, weights, 'decoder');
  const memory = nodes.builder.input(float('memory', ['batch', 'memory', config.dim]));
  const prefix = `decoder.layers.${index}.encoder_attn`;
  return finish(nodes, `ofa_cross_key_values_${index}`, [
    [nodes.linear(memory, `${prefix}.k_proj`), float('key', ['batch', 'memory', config.dim])],
    [nodes.linear(memory, `${prefix}.v_proj`), float('value', ['batch', 'memory', config.dim])],
  ]);
}

/**
 * Decoder layer l (L:431-581) over Tq ≥ 1 new positions after t ≥ 0 cached ones (one graph for a
 * whole teacher-forced prompt, t = 0, and for a generation step, Tq = 1): causal within the new
 * positions, all cached keys visible.
 */
function ofaDecoderLayerNodes(
  nodes: ModelNodes<LayerShape>, config: OfaConfig, index: number, x: string,
  past: { key: string; value: string }, selfMask: string, selfBias: string,
  cross: { key: string; value: string }, memoryMask: string, crossBias: string,
): { hidden: string; key: string; value: string } {
  const { builder } = nodes;
  const prefix = `decoder.layers.${index}`;
  const selfAttention = `${prefix}.self_attn`;
  const normed = nodes.layerNorm(x, `${prefix}.self_attn_layer_norm`);
  const current = { key: nodes.linear(normed, `${selfAttention}.k_proj`), value: nodes.linear(normed, `${selfAttention}.v_proj`) };
  const keys = nodes.node('Concat', [past.key, current.key], { axis: intAttribute(1) }); // (B, S, D)
  const values = nodes.node('Concat', [past.value, current.value], { axis: intAttribute(1) }); // (B, S, D)
  // Causal: new query i sees key k iff k ≤ t + i, i.e. the lower triangle shifted by t.
  const pastLength = nodes.node('Shape', [past.key], { start: intAttribute(1), end: intAttribute(2) }); // [t]
  const queryLength = nodes.node('Shape', [x], { start: intAttribute(1), end: intAttribute(2) }); // [Tq]
  const keyLength = nodes.node('Shape', [keys], { start: intAttribute(1), end: intAttribute(2) }); // [S]
  const ones = nodes.node('Expand', [builder.floatConstant([1], []), nodes.node('Concat', [queryLength, keyLength], { axis: intAttribute(0) })]); // (Tq, S)
  const visible = nodes.node('Trilu', [ones, nodes.node('Squeeze', [pastLength, builder.int64Constant([0])])], { upper: intAttribute(0) }); // (Tq, S)
  const causal = nodes.node('Mul', [nodes.node('Sub', [builder.floatConstant([1], []), visible]), builder.floatConstant([MASKED], [])]); // (Tq, S)
  const selfAdditive = nodes.node('Add', [nodes.additiveKeyMask(selfMask), causal]); // (B, 1, Tq, S)
  const afterSelf = nodes.node('Add', [x, ofaAttention(nodes, config, 'decoder', selfAttention, normed, { key: keys, value: values }, selfBias, selfAdditive, `${prefix}.self_attn_ln`)]);
  const crossNormed = nodes.layerNorm(afterSelf, `${prefix}.encoder_attn_layer_norm`);
  const afterCross = nodes.node('Add', [afterSelf, ofaAttention(nodes, config, 'decoder', `${prefix}.encoder_attn`, crossNormed, cross, crossBias, nodes.additiveKeyMask(memoryMask), `${prefix}.cross_attn_ln`)]);
  return { hidden: ofaFeedForwardBlock(nodes, config, prefix, afterCross), key: current.key, value: current.value };
}

const decoderLayerInputs = (nodes: ModelNodes<LayerShape>, config: OfaConfig, suffix: string) => {
  const { dim, decoderHeads: nh } = config;
  const input = (signature: TensorSignature): string => nodes.builder.input({ ...signature, name: `${signature.name}${suffix}` });
  return {
    past: { key: input(float('past_key', ['batch', 'past', dim])), value: input(float('past_value', ['batch', 'past', dim])) },
    selfMask: input(float('self_key_mask', ['batch', 'keys'])),
    selfBias: input(float('self_bias', ['bias_batch', nh, 'queries', 'keys'])),
    cross: { key: input(float('cross_key', ['batch', 'memory', dim])), value: input(float('cross_value', ['batch', 'memory', dim])) },
    crossBias: input(float('cross_bias', ['bias_batch', nh, 'queries', 'memory'])),
  };
};

/**
 * Decoder layer l: states (B, Tq, D), past_key/past_value (B, t, D), self_key_mask (B, S) 1/0 over
 * [cached; new] keys, self_bias (1|B, nh, Tq, S) (absolute + relative, right-aligned), cross_key/value
 * (B, M, D), memory_mask (B, M) 1/0, cross_bias (1|B, nh, Tq, M) -> output (B, Tq, D) and the new
 * positions' self-attention key/value (B, Tq, D) to append to this layer's cache.
 */
export function ofaDecoderLayer(config: OfaConfig, weights: Weights, index: number): PieceGraph {
  const nodes = nodesFor(config, weights, 'decoder');
  const { dim } = config;
  const x = nodes.builder.input(float('states', ['batch', 'queries', dim]));
  const memoryMask = nodes.builder.input(float('memory_mask', ['batch', 'memory']));
  const inputs = decoderLayerInputs(nodes, config, '');
  const layer = ofaDecoderLayerNodes(nodes, config, index, x, inputs.past, inputs.selfMask, inputs.selfBias, inputs.cross, memoryMask, inputs.crossBias);
  return finish(nodes, `ofa_decoder_layer_${index}`, [
    [layer.hidden, float('output', ['batch', 'queries', dim])],
    [layer.key, float('key', ['batch', 'queries', dim])],
    [layer.value, float('value', ['batch', 'queries', dim])],
  ]);
}

/** Every decoder layer in one graph (benchmarks): states, memory_mask and per layer l the inputs of ofa_decoder_layer suffixed _l -> last output, key_l, value_l. */
export function ofaFullDecoder(config: OfaConfig, weights: Weights): PieceGraph {
  const nodes = nodesFor(config, weights, 'decoder');
  const { dim } = config;
  let x = nodes.builder.input(float('states', ['batch', 'queries', dim]));
  const memoryMask = nodes.builder.input(float('memory_mask', ['batch', 'memory']));
  const outputs: [string, TensorSignature][] = [];
  for (let i = 0; i < config.decoderLayers; i++) {
    const inputs = decoderLayerInputs(nodes, config, `_${i}`);
    const layer = ofaDecoderLayerNodes(nodes, config, i, x, inputs.past, inputs.selfMask, inputs.selfBias, inputs.cross, memoryMask, inputs.crossBias);
    outputs.push([layer.key, float(`key_${i}`, ['batch', 'queries', dim])], [layer.value, float(`value_${i}`, ['batch', 'queries', dim])]);
    x = layer.hidden;
  }
  return finish(nodes, 'ofa_full_decoder', [[x, float('output', ['batch', 'queries', dim])], ...outputs]);
}

/** Decoder states (B, T, D) of any layer -> logits (B, T, V) = decoder.layer_norm(x) · Eᵀ, the tied head (U:1583-1589, 2217-2218). */
export function ofaOutputHead(config: OfaConfig, weights: Weights): PieceGraph {
  const nodes = nodesFor(config, weights, 'decoder');
  const x = nodes.builder.input(float('states', ['batch', 'length', config.dim]));
  const embedding = weightOf(weights, 'decoder.output_projection.weight');
  const embeddingTransposed = nodes.builder.derivedWeight('decoder.output_projection.weight.transposed', [config.dim, config.vocabSize], transposed(embedding)); // (D, V)
  const logits = nodes.node('MatMul', [nodes.layerNorm(x, 'decoder.layer_norm'), embeddingTransposed]);
  return finish(nodes, 'ofa_output_head', [[logits, float('logits', ['batch', 'length', config.vocabSize])]]);
}

/** Every per-piece graph the OFA runner needs, built one at a time (each holds a copy of its weights). */
export function* ofaPieces(config: OfaConfig, weights: Weights): Generator<PieceGraph> {
  yield ofaImageEmbedding(config, weights);
  yield ofaTextEmbedding(config, weights);
  yield ofaEncoderPositionBias(config, weights);
  for (let i = 0; i < config.encoderLayers; i++) {
    yield ofaRelativeBias(config, weights, 'encoder', i);
    yield ofaEncoderLayer(config, weights, i);
  }
  yield ofaEncoderFinalNorm(config, weights);
  yield ofaDecoderEmbedding(config, weights);
  yield ofaDecoderPositionBias(config, weights);
  for (let i = 0; i < config.decoderLayers; i++) {
    yield ofaRelativeBias(config, weights, 'decoder', i);
    yield ofaCrossKeyValues(config, weights, i);
    yield ofaDecoderLayer(config, weights, i);
  }
  yield ofaOutputHead(config, weights);
}

/** The whole-stack benchmark graphs. */
export function* ofaFullStackPieces(config: OfaConfig, weights: Weights): Generator<PieceGraph> {
  yield ofaFullEncoder(config, weights);
  yield ofaFullDecoder(config, weights);
}
