// The OFA-style unified encoder-decoder in TensorFlow.js (DESIGN 2.1, 2.2): the
// training engine and the reference the ONNX runtime is tested against.
// Notation: B batch, Np image patches, Lt text tokens, T decoder tokens, D width,
// nh heads, hs = D / nh head size, V vocabulary.
import { tf } from './backend.js';
import type { ModelConfig } from './config.js';
import { headSize } from './config.js';
import { INIT_STD, parameterSpecs } from './parameters.js';

/** Additive attention mask value for keys that must not be attended to. */
const MASKED = -1e9;

/** Model inputs as tensors. Pixels are already normalised to [-1, 1]. */
export interface ModelInputs {
  images: tf.Tensor4D; // (B, H, W, 3)
  textIds: tf.Tensor2D; // (B, Lt) int32, padded with the pad id
  textMask: tf.Tensor2D; // (B, Lt) float32, 1 for real tokens
  decoderIds: tf.Tensor2D; // (B, T) int32: start token then the target shifted right
}

export interface EncoderOutput {
  /** Per stream, the input of layer 1 (index 0, the embedding) and every layer's output (index i). Joint mode fills jointStates instead. */
  imageStates: tf.Tensor3D[]; // each (B, Np, D)
  textStates: tf.Tensor3D[]; // each (B, Lt, D)
  jointStates: tf.Tensor3D[]; // each (B, Np + Lt, D)
  /** Final-normalised [image ; text] states the decoder cross-attends to: (B, Np + Lt, D). */
  memory: tf.Tensor3D;
  memoryMask: tf.Tensor2D; // (B, Np + Lt)
}

export interface ForwardOutput {
  encoder: EncoderOutput;
  /** Decoder embedding (index 0) and every decoder layer's output (index i), before the final norm: (B, T, D). */
  decoderStates: tf.Tensor3D[];
}

export class TfModel {
  constructor(
    readonly config: ModelConfig,
    readonly weights: Map<string, tf.Variable>,
  ) {}

  /** Fresh weights, deterministic in the seed (one derived seed per tensor). */
  static initialise(config: ModelConfig, seed: number): TfModel {
    const weights = new Map<string, tf.Variable>();
    parameterSpecs(config).forEach((spec, index) => {
      const value = tf.tidy(() => {
        if (spec.init === 'zeros') return tf.zeros(spec.shape);
        if (spec.init === 'ones') return tf.ones(spec.shape);
        return tf.truncatedNormal(spec.shape, 0, INIT_STD, 'float32', seed * 7919 + index);
      });
      weights.set(spec.name, tf.variable(value, true, spec.name));
      value.dispose();
    });
    return new TfModel(config, weights);
  }

  /** Wraps given tensors (e.g. loaded from a checkpoint), which must match the config's specs. */
  static fromTensors(config: ModelConfig, tensors: Map<string, tf.Tensor>): TfModel {
    const weights = new Map<string, tf.Variable>();
    for (const spec of parameterSpecs(config)) {
      const tensor = tensors.get(spec.name);
      if (!tensor) throw new Error(`missing tensor "${spec.name}"`);
      weights.set(spec.name, tf.variable(tensor, true, spec.name));
    }
    return new TfModel(config, weights);
  }

  weight(name: string): tf.Tensor {
    const tensor = this.weights.get(name);
    if (!tensor) throw new Error(`model has no tensor "${name}"`);
    return tensor;
  }

  dispose(): void {
    for (const variable of this.weights.values()) variable.dispose();
    this.weights.clear();
  }

  // ---- building blocks -------------------------------------------------------

  /** y = x·W + b over the last axis; x (..., in) -> (..., out). */
  linear(x: tf.Tensor, prefix: string): tf.Tensor {
    const weight = this.weight(`${prefix}.weight`);
    const [inputs, outputs] = weight.shape as [number, number];
    const flat = x.reshape([-1, inputs]); // (N, in)
    return tf.add(tf.matMul(flat, weight), this.weight(`${prefix}.bias`)).reshape([...x.shape.slice(0, -1), outputs]);
  }

  /** LN(x) = (x − mean) / sqrt(var + ε) · γ + β over the last axis. */
  layerNorm(x: tf.Tensor, prefix: string): tf.Tensor {
    const { mean, variance } = tf.moments(x, -1, true);
    const normalised = tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, this.config.layerNormEpsilon)));
    return tf.add(tf.mul(normalised, this.weight(`${prefix}.weight`)), this.weight(`${prefix}.bias`));
  }

  /**
   * Multi-head attention, the one implementation for self- and cross-attention.
   * queryInput (B, Tq, D), keyValueInput (B, Tk, D), additiveMask broadcastable to (B, nh, Tq, Tk).
   */
  attention(queryInput: tf.Tensor, keyValueInput: tf.Tensor, additiveMask: tf.Tensor | null, prefix: string): tf.Tensor {
    const [batch, queryLength] = queryInput.shape as [number, number, number];
    const keyLength = keyValueInput.shape[1]!;
    const { heads, dim } = this.config;
    const size = headSize(this.config);
    const query = this.linear(queryInput, `${prefix}.query`)
      .reshape([batch, queryLength, heads, size]).transpose([0, 2, 1, 3]); // (B, nh, Tq, hs)
    // Keys are laid out pre-transposed so the product below runs on wasm's fast non-transposed path.
    const keyTransposed = this.linear(keyValueInput, `${prefix}.key`)
      .reshape([batch, keyLength, heads, size]).transpose([0, 2, 3, 1]); // (B, nh, hs, Tk)
    const value = this.linear(keyValueInput, `${prefix}.value`)
      .reshape([batch, keyLength, heads, size]).transpose([0, 2, 1, 3]); // (B, nh, Tk, hs)
    let scores = tf.mul(tf.matMul(query, keyTransposed), 1 / Math.sqrt(size)); // (B, nh, Tq, Tk)
    if (additiveMask) scores = tf.add(scores, additiveMask);
    const context = tf.matMul(tf.softmax(scores), value) // (B, nh, Tq, hs)
      .transpose([0, 2, 1, 3]).reshape([batch, queryLength, dim]); // (B, Tq, D)
    return this.linear(context, `${prefix}.output`);
  }

  /** FFN(x) = fc2(GELU(fc1(x))), GELU(x) = x · Φ(x) = 0.5·x·(1 + erf(x/√2)). */
  feedForward(x: tf.Tensor, prefix: string): tf.Tensor {
    const hidden = this.linear(x, `${prefix}.fc1`);
    const gelu = tf.mul(tf.mul(hidden, 0.5), tf.add(tf.erf(tf.mul(hidden, Math.SQRT1_2)), 1));
    return this.linear(gelu, `${prefix}.fc2`);
  }

  // ---- embeddings ------------------------------------------------------------

  /** Images (B, H, W, 3) in [-1, 1] -> patch tokens (B, Np, D). Patch vectors are ordered (row, column, channel). */
  embedImage(images: tf.Tensor4D): tf.Tensor3D {
    const { imageSize, patchSize, dim } = this.config;
    const grid = imageSize / patchSize;
    const batch = images.shape[0];
    const patches = images
      .reshape([batch, grid, patchSize, grid, patchSize, 3])
      .transpose([0, 1, 3, 2, 4, 5]) // (B, gy, gx, P, P, 3)
      .reshape([batch, grid * grid, patchSize * patchSize * 3]); // (B, Np, P·P·3)
    const tokens = this.linear(patches, 'patch_projection');
    const typed = tf.add(tf.add(tokens, this.weight('image_position')), this.weight('type_embedding').slice([0, 0], [1, dim]));
    return this.layerNorm(typed, 'image_embedding_norm') as tf.Tensor3D;
  }

  /**
   * Token lookup as one-hot(ids) · E: (B, L) -> (B, L, D). Same values as a gather, but its
   * gradient is a matrix product; the gather gradient needs UnsortedSegmentSum, which wasm lacks.
   */
  embedTokens(ids: tf.Tensor2D): tf.Tensor3D {
    const [batch, length] = ids.shape;
    const oneHot = tf.oneHot(ids.reshape([batch * length]), this.config.vocabSize).toFloat(); // (B·L, V)
    return tf.matMul(oneHot, this.weight('token_embedding')).reshape([batch, length, this.config.dim]) as tf.Tensor3D;
  }

  /** Text ids (B, Lt) -> (B, Lt, D): shared token embedding + text type + position, normalised. */
  embedText(textIds: tf.Tensor2D): tf.Tensor3D {
    const length = textIds.shape[1];
    const tokens = this.embedTokens(textIds); // (B, Lt, D)
    const position = this.weight('text_position').slice([0, 0], [length, this.config.dim]);
    const typed = tf.add(tf.add(tokens, position), this.weight('type_embedding').slice([1, 0], [1, this.config.dim]));
    return this.layerNorm(typed, 'text_embedding_norm') as tf.Tensor3D;
  }

  /** Decoder ids (B, T) -> (B, T, D): shared token embedding + decoder position, normalised. */
  embedDecoder(decoderIds: tf.Tensor2D): tf.Tensor3D {
    const length = decoderIds.shape[1];
    const tokens = this.embedTokens(decoderIds);
    const position = this.weight('decoder_position').slice([0, 0], [length, this.config.dim]);
    return this.layerNorm(tf.add(tokens, position), 'decoder_embedding_norm') as tf.Tensor3D;
  }

  // ---- layers ----------------------------------------------------------------

  /** Pre-LN encoder layer: x + Attn(LN(x)), then + FFN(LN(·)). keyMask (B, 1, 1, Tk) additive or null. */
  encoderLayer(index: number, x: tf.Tensor3D, keyMask: tf.Tensor | null): tf.Tensor3D {
    const prefix = `encoder.${index}`;
    const normed = this.layerNorm(x, `${prefix}.attention_norm`);
    const attended = tf.add(x, this.attention(normed, normed, keyMask, `${prefix}.attention`));
    return tf.add(attended, this.feedForward(this.layerNorm(attended, `${prefix}.ffn_norm`), `${prefix}.ffn`)) as tf.Tensor3D;
  }

  /** Pre-LN decoder layer: causal self-attention, cross-attention to the memory, FFN. */
  decoderLayer(index: number, x: tf.Tensor3D, memory: tf.Tensor3D, causalMask: tf.Tensor, memoryKeyMask: tf.Tensor): tf.Tensor3D {
    const prefix = `decoder.${index}`;
    const selfNormed = this.layerNorm(x, `${prefix}.self_attention_norm`);
    const afterSelf = tf.add(x, this.attention(selfNormed, selfNormed, causalMask, `${prefix}.self_attention`));
    const crossNormed = this.layerNorm(afterSelf, `${prefix}.cross_attention_norm`);
    const afterCross = tf.add(afterSelf, this.attention(crossNormed, memory, memoryKeyMask, `${prefix}.cross_attention`));
    return tf.add(afterCross, this.feedForward(this.layerNorm(afterCross, `${prefix}.ffn_norm`), `${prefix}.ffn`)) as tf.Tensor3D;
  }

  // ---- full passes -----------------------------------------------------------

  /** Runs the encoder at full depth, keeping every layer's states (DESIGN 2.2). */
  encode(images: tf.Tensor4D, textIds: tf.Tensor2D, textMask: tf.Tensor2D): EncoderOutput {
    const batch = images.shape[0];
    const patchCount = (this.config.imageSize / this.config.patchSize) ** 2;
    const imageMask = tf.ones([batch, patchCount]) as tf.Tensor2D;
    const memoryMask = tf.concat([imageMask, textMask], 1) as tf.Tensor2D; // (B, Np + Lt)
    const runLayers = (embedded: tf.Tensor3D, keyMask: tf.Tensor | null): tf.Tensor3D[] => {
      const states = [embedded];
      for (let i = 0; i < this.config.encoderLayers; i++) states.push(this.encoderLayer(i, states[i]!, keyMask));
      return states;
    };
    const imageEmbedded = this.embedImage(images);
    const textEmbedded = this.embedText(textIds);
    let imageStates: tf.Tensor3D[] = [];
    let textStates: tf.Tensor3D[] = [];
    let jointStates: tf.Tensor3D[] = [];
    let lastLayer: tf.Tensor3D;
    if (this.config.encoderMode === 'decomposed') {
      // Two sequences through the same (tied) layers: image never attends to text and vice versa.
      imageStates = runLayers(imageEmbedded, null);
      textStates = runLayers(textEmbedded, keyMaskFrom(textMask));
      lastLayer = tf.concat([imageStates.at(-1)!, textStates.at(-1)!], 1) as tf.Tensor3D; // (B, Np + Lt, D)
    } else {
      jointStates = runLayers(tf.concat([imageEmbedded, textEmbedded], 1) as tf.Tensor3D, keyMaskFrom(memoryMask));
      lastLayer = jointStates.at(-1)!;
    }
    const memory = this.layerNorm(lastLayer, 'encoder.final_norm') as tf.Tensor3D;
    return { imageStates, textStates, jointStates, memory, memoryMask };
  }

  /** Teacher-forced decoder at full depth: embedding (index 0) and every layer's output. */
  decode(memory: tf.Tensor3D, memoryMask: tf.Tensor2D, decoderIds: tf.Tensor2D): tf.Tensor3D[] {
    const length = decoderIds.shape[1];
    const causal = causalMask(length);
    const memoryKeyMask = keyMaskFrom(memoryMask);
    const states = [this.embedDecoder(decoderIds)];
    for (let i = 0; i < this.config.decoderLayers; i++) {
      states.push(this.decoderLayer(i, states[i]!, memory, causal, memoryKeyMask));
    }
    return states;
  }

  /** Logits of any decoder layer's states through the shared head: LN_dec(h) · Eᵀ, (B, T, D) -> (B, T, V). */
  logits(decoderState: tf.Tensor3D): tf.Tensor3D {
    const [batch, length, dim] = decoderState.shape;
    const normed = this.layerNorm(decoderState, 'decoder.final_norm').reshape([batch * length, dim]);
    const embeddingTransposed = tf.transpose(this.weight('token_embedding')); // (D, V)
    return tf.matMul(normed, embeddingTransposed).reshape([batch, length, this.config.vocabSize]) as tf.Tensor3D;
  }

  forward(inputs: ModelInputs): ForwardOutput {
    const encoder = this.encode(inputs.images, inputs.textIds, inputs.textMask);
    return { encoder, decoderStates: this.decode(encoder.memory, encoder.memoryMask, inputs.decoderIds) };
  }
}

/** (B, Tk) 1/0 mask -> additive (B, 1, 1, Tk): 0 where attended, −1e9 where masked. */
export function keyMaskFrom(mask: tf.Tensor2D): tf.Tensor {
  const [batch, length] = mask.shape;
  return tf.mul(tf.sub(1, mask), MASKED).reshape([batch, 1, 1, length]);
}

/** Additive causal mask (1, 1, T, T): position t attends to positions ≤ t. */
export function causalMask(length: number): tf.Tensor {
  const lowerTriangle = tf.linalg.bandPart(tf.ones([length, length]), -1, 0);
  return tf.mul(tf.sub(1, lowerTriangle), MASKED).reshape([1, 1, length, length]);
}
