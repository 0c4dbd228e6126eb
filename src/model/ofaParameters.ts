// Every tensor the `ofa` family's forward reads, by its official state-dict name (ARCHITECTURE.md
// §13) and shape: the check that a weight map (converted checkpoint, fixture) is complete before
// graphs are built, and the shapes of the random-weight benchmark model. Linear weights are
// PyTorch's (out, in). Parameters a checkpoint holds but the VE/caption forward never reads
// (decoder image-code embeddings and tables, BN counters, bucket buffers) are not listed.
import type { OfaConfig } from './ofaConfig.js';
import { OFA_STEM_CHANNELS } from './ofaConfig.js';
import { imageBucketCount, tokenBucketCount } from './ofaBuckets.js';
import type { NamedArray } from './safetensors.js';

export type OfaInitialiser = 'normal' | 'zeros' | 'ones';
export interface OfaParameterSpec { name: string; shape: number[]; init: OfaInitialiser }

const linear = (prefix: string, inputs: number, outputs: number): OfaParameterSpec[] => [
  { name: `${prefix}.weight`, shape: [outputs, inputs], init: 'normal' },
  { name: `${prefix}.bias`, shape: [outputs], init: 'zeros' },
];
const layerNorm = (prefix: string, width: number): OfaParameterSpec[] => [
  { name: `${prefix}.weight`, shape: [width], init: 'ones' },
  { name: `${prefix}.bias`, shape: [width], init: 'zeros' },
];
/** Eval-mode BatchNorm: affine and running statistics (running_var starts at 1). */
const batchNorm = (prefix: string, channels: number): OfaParameterSpec[] => [
  { name: `${prefix}.weight`, shape: [channels], init: 'ones' },
  { name: `${prefix}.bias`, shape: [channels], init: 'zeros' },
  { name: `${prefix}.running_mean`, shape: [channels], init: 'zeros' },
  { name: `${prefix}.running_var`, shape: [channels], init: 'ones' },
];
const conv = (name: string, outputs: number, inputs: number, kernel: number): OfaParameterSpec => ({ name: `${name}.weight`, shape: [outputs, inputs, kernel, kernel], init: 'normal' });

function attention(config: OfaConfig, prefix: string, heads: number): OfaParameterSpec[] {
  const specs = ['q_proj', 'k_proj', 'v_proj', 'out_proj'].flatMap((projection) => linear(`${prefix}.${projection}`, config.dim, config.dim));
  if (config.scaleHeads) specs.push({ name: `${prefix}.c_attn`, shape: [heads], init: 'ones' });
  return specs;
}

function feedForward(config: OfaConfig, prefix: string, ffnDim: number): OfaParameterSpec[] {
  return [
    ...layerNorm(`${prefix}.final_layer_norm`, config.dim),
    ...linear(`${prefix}.fc1`, config.dim, ffnDim),
    ...(config.scaleFeedForward ? layerNorm(`${prefix}.ffn_layernorm`, ffnDim) : []),
    ...linear(`${prefix}.fc2`, ffnDim, config.dim),
  ];
}

function resnet(config: OfaConfig): OfaParameterSpec[] {
  const stem = 'encoder.embed_images';
  const specs = [conv(`${stem}.conv1`, 64, 3, 7), ...batchNorm(`${stem}.bn1`, 64)];
  let inputs = 64;
  config.resnetBlocks.forEach((blocks, stage) => {
    const width = 64 * 2 ** stage;
    for (let block = 0; block < blocks; block++) {
      const name = `${stem}.layer${stage + 1}.${block}`;
      specs.push(
        conv(`${name}.conv1`, width, inputs, 1), ...batchNorm(`${name}.bn1`, width),
        conv(`${name}.conv2`, width, width, 3), ...batchNorm(`${name}.bn2`, width),
        conv(`${name}.conv3`, 4 * width, width, 1), ...batchNorm(`${name}.bn3`, 4 * width),
      );
      if (block === 0) specs.push(conv(`${name}.downsample.0`, 4 * width, inputs, 1), ...batchNorm(`${name}.downsample.1`, 4 * width));
      inputs = 4 * width;
    }
  });
  return specs;
}

export function ofaParameterSpecs(config: OfaConfig): OfaParameterSpec[] {
  const { dim, encoderHeads, decoderHeads } = config;
  const embedding = (name: string, rows: number): OfaParameterSpec => ({ name, shape: [rows, dim], init: 'normal' });
  const specs: OfaParameterSpec[] = [
    embedding('encoder.embed_tokens.weight', config.vocabSize),
    embedding('encoder.type_embedding.weight', 2),
    ...layerNorm('encoder.layernorm_embedding', dim),
    ...layerNorm('encoder.patch_layernorm_embedding', dim),
    ...linear('encoder.image_proj', OFA_STEM_CHANNELS, dim),
    ...resnet(config),
    embedding('encoder.embed_positions.weight', config.maxSourcePositions + 2),
    embedding('encoder.embed_image_positions.weight', config.imageBucketSize ** 2 + 1),
    ...layerNorm('encoder.pos_ln', dim),
    ...layerNorm('encoder.image_pos_ln', dim),
    ...linear('encoder.pos_q_linear', dim, dim),
    ...linear('encoder.pos_k_linear', dim, dim),
  ];
  for (let l = 0; l < config.encoderLayers; l++) {
    const prefix = `encoder.layers.${l}`;
    specs.push(
      { name: `encoder.token_rel_pos_table_list.${l}.weight`, shape: [tokenBucketCount(config.tokenBucketSize), encoderHeads], init: 'normal' },
      { name: `encoder.image_rel_pos_table_list.${l}.weight`, shape: [imageBucketCount(config.imageBucketSize), encoderHeads], init: 'normal' },
      ...layerNorm(`${prefix}.self_attn_layer_norm`, dim),
      ...attention(config, `${prefix}.self_attn`, encoderHeads),
      ...(config.scaleAttention ? layerNorm(`${prefix}.attn_ln`, dim) : []),
      ...feedForward(config, prefix, config.encoderFfnDim),
    );
  }
  specs.push(
    ...layerNorm('encoder.layer_norm', dim),
    embedding('decoder.embed_tokens.weight', config.vocabSize),
    embedding('decoder.output_projection.weight', config.vocabSize),
    ...layerNorm('decoder.layernorm_embedding', dim),
    embedding('decoder.embed_positions.weight', config.maxTargetPositions + 2),
    ...layerNorm('decoder.pos_ln', dim),
    ...['self_pos_q_linear', 'self_pos_k_linear', 'cross_pos_q_linear', 'cross_pos_k_linear'].flatMap((name) => linear(`decoder.${name}`, dim, dim)),
  );
  for (let l = 0; l < config.decoderLayers; l++) {
    const prefix = `decoder.layers.${l}`;
    specs.push(
      { name: `decoder.token_rel_pos_table_list.${l}.weight`, shape: [tokenBucketCount(config.tokenBucketSize), decoderHeads], init: 'normal' },
      ...layerNorm(`${prefix}.self_attn_layer_norm`, dim),
      ...attention(config, `${prefix}.self_attn`, decoderHeads),
      ...(config.scaleAttention ? layerNorm(`${prefix}.self_attn_ln`, dim) : []),
      ...layerNorm(`${prefix}.encoder_attn_layer_norm`, dim),
      ...attention(config, `${prefix}.encoder_attn`, decoderHeads),
      ...(config.scaleAttention ? layerNorm(`${prefix}.cross_attn_ln`, dim) : []),
      ...feedForward(config, prefix, config.decoderFfnDim),
    );
  }
  specs.push(...layerNorm('decoder.layer_norm', dim));
  return specs;
}

/** Throws naming the first missing or misshapen tensors (up to five) when `weights` cannot feed the forward of `config`. */
export function checkOfaWeights(config: OfaConfig, weights: Map<string, NamedArray>, source = 'weights'): void {
  const problems: string[] = [];
  for (const spec of ofaParameterSpecs(config)) {
    const tensor = weights.get(spec.name);
    if (!tensor) problems.push(`missing ${spec.name}`);
    else if (tensor.shape.length !== spec.shape.length || tensor.shape.some((size, i) => size !== spec.shape[i])) {
      problems.push(`${spec.name} is [${tensor.shape}], the config needs [${spec.shape}]`);
    }
  }
  if (problems.length > 0) throw new Error(`${source} do not fit the OFA config: ${problems.slice(0, 5).join('; ')}${problems.length > 5 ? `; and ${problems.length - 5} more` : ''}`);
}
