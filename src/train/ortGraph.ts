// The ONNX graph of one training step: the forward pass built from the same ModelNodes layer
// definitions as the inference pieces, the layer-wise task loss, and (by src/graph/autodiff.ts)
// every parameter's gradient. Inputs = parameters + batch; outputs = total loss, per-layer
// losses, gradients. Shapes are fixed per graph: (B, Lt, T) pick the graph.
// Notation: B batch, Np image patches, Lt text tokens, T decoder tokens, D width, V vocabulary.
import { appendGradients, type Shape } from '../graph/autodiff.js';
import { ModelNodes } from '../graph/layerGraphs.js';
import { type ModelConfig, imagePatchCount } from '../model/config.js';
import { parameterSpecs } from '../model/parameters.js';
import type { NamedArray } from '../model/safetensors.js';
import type { LossMode } from './loss.js';

/** The batch dims a training-step graph is built for. */
export interface StepShape { batch: number; textLength: number; targetLength: number }

export interface TrainingStepGraph {
  model: Uint8Array;
  /** Parameter names in graph-input order. */
  parameters: string[];
  /** Output names: `loss`, `layer_loss_<i>` (i = 0..N_D−1) and `gradient.<parameter>`. */
  layerLossNames: string[];
  gradientNames: Map<string, string>;
}

/** Batch input names and shapes (besides the parameters). */
export function batchInputShapes(config: ModelConfig, shape: StepShape): Map<string, Shape> {
  const { batch, textLength, targetLength } = shape;
  return new Map<string, Shape>([
    ['pixels', [batch, config.imageSize, config.imageSize, 3]],
    ['text_ids', [batch, textLength]], // int64
    ['text_mask', [batch, textLength]], // 1/0
    ['memory_mask', [batch, imagePatchCount(config) + textLength]], // 1/0 over [image ; text]
    ['decoder_ids', [batch, targetLength]], // int64
    // W = mask_bt / max(Σ mask, 1) · ((1 − ε)·onehot(y_bt) + ε·allowed / |allowed|): CE_layer = −Σ W ⊙ log p.
    ['target_weights', [batch, targetLength, config.vocabSize]],
    ['allowed_logits', [config.vocabSize]], // additive: 0 allowed, −1e9 masked
  ]);
}

const INT64_INPUTS = new Set(['text_ids', 'decoder_ids']);

export function trainingStepGraph(config: ModelConfig, shape: StepShape, lossMode: LossMode): TrainingStepGraph {
  // Parameters are graph inputs; only their shapes are read here.
  const shapes = new Map<string, NamedArray>(parameterSpecs(config).map((spec) => [spec.name, { shape: spec.shape, data: new Float32Array(0) }]));
  const nodes = new ModelNodes(config, shapes, { parametersAsInputs: true });
  const inputShapes = batchInputShapes(config, shape);
  const input = (name: string) => nodes.input({ name, type: INT64_INPUTS.has(name) ? 'int64' : 'float32', dims: inputShapes.get(name)! });
  const [pixels, textIds, textMask, memoryMask, decoderIds, targetWeights, allowedLogits] =
    ['pixels', 'text_ids', 'text_mask', 'memory_mask', 'decoder_ids', 'target_weights', 'allowed_logits'].map(input) as string[];

  // Encoder at full depth (DESIGN 2.2): decomposed streams through tied layers, or one joint sequence.
  const runLayers = (x: string, mask: string | null) => {
    for (let i = 0; i < config.encoderLayers; i++) x = nodes.encoderLayer(i, x, mask);
    return x;
  };
  const image = nodes.embedImage(pixels!);
  const text = nodes.embedText(textIds!);
  const lastLayer = config.encoderMode === 'decomposed'
    ? nodes.node('Concat', [runLayers(image, null), runLayers(text, nodes.additiveKeyMask(textMask!))], { axis: { type: 'int', value: 1 } }) // (B, Np + Lt, D)
    : runLayers(nodes.node('Concat', [image, text], { axis: { type: 'int', value: 1 } }), nodes.additiveKeyMask(memoryMask!)); // (B, Np + Lt, D)
  const memory = nodes.layerNorm(lastLayer, 'encoder.final_norm');

  // Teacher-forced decoder; every layer answers through the shared head (DESIGN 2.5).
  const memoryKeyMask = nodes.additiveKeyMask(memoryMask!);
  const causal = nodes.causalMask(shape.targetLength);
  let x = nodes.embedDecoder(decoderIds!, nodes.leadingRows('decoder_position', decoderIds!));
  const layerLosses: string[] = [];
  for (let i = 0; i < config.decoderLayers; i++) {
    x = nodes.decoderLayer(i, x, null, nodes.crossKeyValues(i, memory), memoryKeyMask, causal).hidden;
    const logProbabilities = nodes.node('LogSoftmax', [nodes.node('Add', [nodes.logits(x), allowedLogits!])], { axis: { type: 'int', value: -1 } }); // (B, T, V)
    // CE_i = −Σ_{b,t,v} W·log p (W carries the mask, the normaliser and the smoothing).
    layerLosses.push(nodes.node('Neg', [nodes.node('ReduceSum', [nodes.node('Mul', [logProbabilities, targetWeights!])], { keepdims: { type: 'int', value: 0 } })]));
  }
  const loss = lossMode === 'layerwise' ? nodes.node('Sum', layerLosses) : layerLosses.at(-1)!;

  const parameters = nodes.builder.parameters;
  const parameterShapes = new Map<string, Shape>(parameters.map((name) => [name, shapes.get(name)!.shape]));
  const gradients = appendGradients(nodes.builder, loss, parameters, new Map([...inputShapes, ...parameterShapes]));
  const layerLossNames = layerLosses.map((_, i) => `layer_loss_${i}`);
  const gradientNames = new Map(parameters.map((name) => [name, `gradient.${name}`]));
  const piece = nodes.finish('training_step', [
    [loss, { name: 'loss', type: 'float32', dims: [] }],
    ...layerLosses.map((tensor, i): [string, { name: string; type: 'float32'; dims: number[] }] => [tensor, { name: layerLossNames[i]!, type: 'float32', dims: [] }]),
    ...parameters.map((name): [string, { name: string; type: 'float32'; dims: number[] }] => [gradients.get(name)!, { name: gradientNames.get(name)!, type: 'float32', dims: shapes.get(name)!.shape }]),
  ]);
  return { model: piece.model, parameters, layerLossNames, gradientNames };
}
