// Every tensor of the model: its name, shape and initialisation. The names are the
// checkpoint's safetensors keys (documented in docs/model-format.md); both engines
// (TensorFlow.js training, ONNX Runtime inference) read weights by these names.
// Linear weights are stored (in, out) so y = x·W + b needs no transpose.
import type { ModelConfig } from './config.js';
import { imagePatchCount, patchVectorSize } from './config.js';

export type Initialiser = 'normal' | 'zeros' | 'ones';
export interface ParameterSpec { name: string; shape: number[]; init: Initialiser }

/** Standard deviation of the normal initialiser (BERT/OFA use 0.02). */
export const INIT_STD = 0.02;

const linear = (prefix: string, inputs: number, outputs: number): ParameterSpec[] => [
  { name: `${prefix}.weight`, shape: [inputs, outputs], init: 'normal' },
  { name: `${prefix}.bias`, shape: [outputs], init: 'zeros' },
];
const layerNorm = (prefix: string, dim: number): ParameterSpec[] => [
  { name: `${prefix}.weight`, shape: [dim], init: 'ones' },
  { name: `${prefix}.bias`, shape: [dim], init: 'zeros' },
];
const attention = (prefix: string, dim: number): ParameterSpec[] =>
  ['query', 'key', 'value', 'output'].flatMap((projection) => linear(`${prefix}.${projection}`, dim, dim));
const feedForward = (prefix: string, dim: number, ffnDim: number): ParameterSpec[] => [
  ...linear(`${prefix}.fc1`, dim, ffnDim),
  ...linear(`${prefix}.fc2`, ffnDim, dim),
];

export function parameterSpecs(config: ModelConfig): ParameterSpec[] {
  const { dim, ffnDim } = config;
  const specs: ParameterSpec[] = [
    { name: 'token_embedding', shape: [config.vocabSize, dim], init: 'normal' },
    ...linear('patch_projection', patchVectorSize(config), dim),
    { name: 'type_embedding', shape: [2, dim], init: 'normal' }, // row 0: image, row 1: text
    { name: 'image_position', shape: [imagePatchCount(config), dim], init: 'normal' },
    { name: 'text_position', shape: [config.maxTextLength, dim], init: 'normal' },
    { name: 'decoder_position', shape: [config.maxTargetLength, dim], init: 'normal' },
    ...layerNorm('image_embedding_norm', dim),
    ...layerNorm('text_embedding_norm', dim),
    ...layerNorm('decoder_embedding_norm', dim),
  ];
  for (let i = 0; i < config.encoderLayers; i++) {
    specs.push(
      ...layerNorm(`encoder.${i}.attention_norm`, dim),
      ...attention(`encoder.${i}.attention`, dim),
      ...layerNorm(`encoder.${i}.ffn_norm`, dim),
      ...feedForward(`encoder.${i}.ffn`, dim, ffnDim),
    );
  }
  specs.push(...layerNorm('encoder.final_norm', dim));
  for (let i = 0; i < config.decoderLayers; i++) {
    specs.push(
      ...layerNorm(`decoder.${i}.self_attention_norm`, dim),
      ...attention(`decoder.${i}.self_attention`, dim),
      ...layerNorm(`decoder.${i}.cross_attention_norm`, dim),
      ...attention(`decoder.${i}.cross_attention`, dim),
      ...layerNorm(`decoder.${i}.ffn_norm`, dim),
      ...feedForward(`decoder.${i}.ffn`, dim, ffnDim),
    );
  }
  specs.push(...layerNorm('decoder.final_norm', dim));
  return specs;
}

export const parameterCount = (config: ModelConfig): number =>
  parameterSpecs(config).reduce((total, spec) => total + spec.shape.reduce((a, b) => a * b, 1), 0);
