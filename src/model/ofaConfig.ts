// Configuration of the `ofa` model family (the real OFA / MuE architecture, ARCHITECTURE.md),
// read from a checkpoint's cfg["model"] Namespace fields (`modelArgs`, verbatim as JSON).
// A converted model directory's config.json is { family: "ofa", task, vocabSize, modelArgs };
// the reference fixtures' config.json → model_args holds the same fields.

/** split: MuE's encoder (image and text streams through the same layers, never attending to each other); joint: OFA's fused encoder. */
export type OfaEncoderMode = 'split' | 'joint';

export interface OfaConfig {
  family: 'ofa';
  /** Rows of the tied token embedding (from the checkpoint, not from modelArgs.vocab_size when they differ). */
  vocabSize: number;
  /** Model width C (encoder and decoder share it: share_all_embeddings). */
  dim: number;
  encoderFfnDim: number;
  decoderFfnDim: number;
  encoderHeads: number;
  decoderHeads: number;
  encoderLayers: number;
  decoderLayers: number;
  /** Bottlenecks in ResNet stages 1–3 (resnet101: 3, 4, 23). */
  resnetBlocks: [number, number, number];
  /** Square input images of imageSize pixels (patch_image_size). */
  imageSize: number;
  encoderMode: OfaEncoderMode;
  /** Attention and position-bias scale (head size · attentionScaleFactor)^-1/2. */
  attentionScaleFactor: number;
  tokenBucketSize: number;
  imageBucketSize: number;
  maxSourcePositions: number;
  maxTargetPositions: number;
  /** attn_ln / self_attn_ln / cross_attn_ln after attention (scale_attn). */
  scaleAttention: boolean;
  /** ffn_layernorm between the FFN activation and fc2 (scale_fc). */
  scaleFeedForward: boolean;
  /** per-head c_attn scales (scale_heads). */
  scaleHeads: boolean;
  layerNormEpsilon: number;
  /** fairseq dictionary ids. */
  padId: number;
}

/** ResNet stages 1–3 bottleneck counts per resnet_type (R:162-166, U:556-563). */
const RESNET_BLOCKS: Record<string, [number, number, number]> = {
  resnet50: [3, 4, 6],
  resnet101: [3, 4, 23],
  resnet152: [3, 8, 36],
};

/** Flags whose value the architecture fixes: anything else is another model (or an unported option). */
const REQUIRED_FLAGS: Record<string, unknown> = {
  encoder_normalize_before: true,
  decoder_normalize_before: true,
  share_all_embeddings: true,
  layernorm_embedding: true,
  patch_layernorm_embedding: true,
  add_type_embedding: true,
  no_scale_embedding: true,
  entangle_position_embedding: false,
  disable_entangle: true,
  scale_resids: false,
  activation_fn: 'gelu',
};

/**
 * Validates modelArgs (a checkpoint's cfg["model"] fields) and returns the config; every
 * problem is one error naming the field. `resnetBlocks` overrides the counts implied by
 * resnet_type: count them from the state dict with countResnetBlocks (the fixtures shrink the stem in code).
 */
export function ofaConfigFromModelArgs(modelArgs: unknown, vocabSize: number, resnetBlocks?: [number, number, number]): OfaConfig {
  if (typeof modelArgs !== 'object' || modelArgs === null || Array.isArray(modelArgs)) throw new Error('ofa config: modelArgs must be a JSON object (the checkpoint\'s cfg["model"] fields)');
  const args = modelArgs as Record<string, unknown>;
  const integer = (key: string, minimum = 1): number => {
    const value = args[key];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < minimum) throw new Error(`ofa config: modelArgs.${key} must be an integer ≥ ${minimum} (got ${JSON.stringify(value)})`);
    return value;
  };
  const flag = (key: string): boolean => {
    const value = args[key];
    if (typeof value !== 'boolean') throw new Error(`ofa config: modelArgs.${key} must be true or false (got ${JSON.stringify(value)})`);
    return value;
  };
  if (!Number.isInteger(vocabSize) || vocabSize < 4) throw new Error(`ofa config: vocabSize must be an integer ≥ 4 (got ${vocabSize})`);
  for (const [key, expected] of Object.entries(REQUIRED_FLAGS)) {
    if (args[key] !== expected) throw new Error(`ofa config: modelArgs.${key} is ${JSON.stringify(args[key])}; only ${JSON.stringify(expected)} is supported (OFA/MuE as released)`);
  }
  const dim = integer('encoder_embed_dim');
  if (integer('decoder_embed_dim') !== dim) throw new Error(`ofa config: decoder_embed_dim ${args.decoder_embed_dim} differs from encoder_embed_dim ${dim} (shared embeddings need one width)`);
  const encoderHeads = integer('encoder_attention_heads');
  const decoderHeads = integer('decoder_attention_heads');
  for (const heads of [encoderHeads, decoderHeads]) if (dim % heads !== 0) throw new Error(`ofa config: width ${dim} is not divisible by ${heads} attention heads`);
  const resnetType = args.resnet_type;
  const stemBlocks = resnetBlocks ?? RESNET_BLOCKS[String(resnetType)];
  if (!stemBlocks) throw new Error(`ofa config: modelArgs.resnet_type ${JSON.stringify(resnetType)} is not one of ${Object.keys(RESNET_BLOCKS).join(', ')}`);
  if (stemBlocks.length !== 3 || !stemBlocks.every((count) => Number.isInteger(count) && count >= 1)) throw new Error(`ofa config: ResNet block counts must be three positive integers (got ${JSON.stringify(stemBlocks)})`);
  const attentionScaleFactor = args.attn_scale_factor;
  if (typeof attentionScaleFactor !== 'number' || !(attentionScaleFactor > 0)) throw new Error(`ofa config: modelArgs.attn_scale_factor must be a positive number (got ${JSON.stringify(attentionScaleFactor)})`);
  const config: OfaConfig = {
    family: 'ofa',
    vocabSize,
    dim,
    encoderFfnDim: integer('encoder_ffn_embed_dim'),
    decoderFfnDim: integer('decoder_ffn_embed_dim'),
    encoderHeads,
    decoderHeads,
    encoderLayers: integer('encoder_layers'),
    decoderLayers: integer('decoder_layers'),
    resnetBlocks: [...stemBlocks],
    imageSize: integer('patch_image_size', 16),
    encoderMode: args.train_mue === true ? 'split' : 'joint',
    attentionScaleFactor,
    tokenBucketSize: integer('token_bucket_size', 2),
    imageBucketSize: integer('image_bucket_size', 1),
    maxSourcePositions: integer('max_source_positions'),
    maxTargetPositions: integer('max_target_positions'),
    scaleAttention: flag('scale_attn'),
    scaleFeedForward: flag('scale_fc'),
    scaleHeads: flag('scale_heads'),
    layerNormEpsilon: 1e-5,
    padId: 1,
  };
  const [rows, columns] = ofaImageGrid(config);
  if (rows > config.imageBucketSize || columns > config.imageBucketSize) {
    throw new Error(`ofa config: a ${config.imageSize}px image gives a ${rows}×${columns} patch grid, larger than image_bucket_size ${config.imageBucketSize}`);
  }
  return config;
}

/** Bottleneck counts of ResNet stages 1–3 from state-dict names `encoder.embed_images.layer{s}.{n}.*`. */
export function countResnetBlocks(names: Iterable<string>): [number, number, number] {
  const counts: [number, number, number] = [0, 0, 0];
  for (const name of names) {
    const match = /^encoder\.embed_images\.layer([123])\.(\d+)\./.exec(name);
    if (match) counts[Number(match[1]) - 1] = Math.max(counts[Number(match[1]) - 1]!, Number(match[2]) + 1);
  }
  return counts;
}

/** Patch grid (rows, columns) of the stem: conv1 /2, max-pool /2, stages 2 and 3 /2 each, rounded as the convolutions round. */
export function ofaImageGrid(config: Pick<OfaConfig, 'imageSize'>): [number, number] {
  const halve = (size: number): number => Math.floor((size - 1) / 2) + 1; // k=3,p=1,s=2 and k=7,p=3,s=2 alike
  const side = halve(halve(halve(halve(config.imageSize))));
  return [side, side];
}

export const ofaPatchCount = (config: Pick<OfaConfig, 'imageSize'>): number => ofaImageGrid(config)[0] * ofaImageGrid(config)[1];

/** Output channels of ResNet stage 3 (the patch features image_proj reads). */
export const OFA_STEM_CHANNELS = 1024;
