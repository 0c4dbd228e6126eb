// Model configuration, presets and the derived sizes every other module needs.
import { VE_FORMULATIONS, type VeFormulation } from '../data/entailmentPrompt.js';

export type EncoderMode = 'decomposed' | 'joint';

export interface ModelConfig {
  /** Vocabulary size of the shared token embedding / tied output projection. */
  vocabSize: number;
  /** Hidden width D. */
  dim: number;
  /** FFN inner width. */
  ffnDim: number;
  /** Attention heads; must divide dim. */
  heads: number;
  encoderLayers: number;
  decoderLayers: number;
  /** Square RGB input images of imageSize × imageSize pixels. */
  imageSize: number;
  /** Square patches of patchSize × patchSize pixels; must divide imageSize. */
  patchSize: number;
  /** Longest text-stream input (hypothesis or prompt), in tokens. */
  maxTextLength: number;
  /** Longest decoder sequence including the start token, in tokens. */
  maxTargetLength: number;
  /** decomposed: image and text are two sequences through tied encoder layers (MuE); joint: one sequence (ablation). */
  encoderMode: EncoderMode;
  layerNormEpsilon: number;
  /**
   * VE models: the formulation the model was trained with, so it always runs as trained
   * (src/data/entailmentPrompt.ts). Configs written before the field existed mean 'bos'.
   */
  veFormulation: VeFormulation;
}

type PresetShape = Pick<ModelConfig, 'dim' | 'ffnDim' | 'heads' | 'encoderLayers' | 'decoderLayers'>;

/** Shapes only; vocabulary and sequence sizes come from the data (see defaultSequenceConfig). */
export const PRESETS: Record<string, PresetShape> = {
  // Trains in seconds; for tests.
  tiny: { dim: 32, ffnDim: 64, heads: 2, encoderLayers: 2, decoderLayers: 2 },
  // The shipped size: OFA-Base depth (6+6), width chosen for a < 2 h CPU training.
  small: { dim: 128, ffnDim: 512, heads: 4, encoderLayers: 6, decoderLayers: 6 },
  // OFA shapes (DESIGN 2.1), for speed benchmarks with random weights.
  'ofa-tiny': { dim: 256, ffnDim: 1024, heads: 4, encoderLayers: 4, decoderLayers: 4 },
  'ofa-medium': { dim: 512, ffnDim: 2048, heads: 8, encoderLayers: 4, decoderLayers: 4 },
  'ofa-base': { dim: 768, ffnDim: 3072, heads: 12, encoderLayers: 6, decoderLayers: 6 },
};

export const DEFAULT_SEQUENCE_CONFIG: Omit<ModelConfig, keyof PresetShape | 'vocabSize'> = {
  imageSize: 64,
  patchSize: 8,
  // The longest SceneWorld hypothesis has 9 words, 16 tokens inside the VE template; the decoder
  // prompt adds <bos> (≤ 21 with this limit), captions have ≤ 20 words + <eos>.
  maxTextLength: 20,
  maxTargetLength: 24,
  encoderMode: 'decomposed',
  layerNormEpsilon: 1e-5,
  veFormulation: 'prompt',
};

export function presetConfig(
  preset: string,
  vocabSize: number,
  overrides: Partial<ModelConfig> = {},
): ModelConfig {
  const shape = PRESETS[preset];
  if (!shape) throw new Error(`unknown preset "${preset}" (known: ${Object.keys(PRESETS).join(', ')})`);
  return validateConfig({ ...DEFAULT_SEQUENCE_CONFIG, ...shape, vocabSize, ...overrides });
}

/** Refuses a config of another model family (config.json `family`; absent means mue's own). */
export function checkMueFamily(config: Record<string, unknown>): void {
  if (config.family === 'ofa') {
    throw new Error('this is an OFA-family model (written by mue convert-ofa): mue runs it (predict, eval, calibrate, serve, MuEModel.load) but does not train or export that family (docs/ofa.md)');
  }
  if (config.family !== undefined && config.family !== 'mue') throw new Error(`model config: unknown model family ${JSON.stringify(config.family)}`);
}

/** Checks a config (e.g. parsed from config.json); throws naming the first bad field. */
export function validateConfig(raw: unknown): ModelConfig {
  if (typeof raw !== 'object' || raw === null) throw new Error('model config must be a JSON object');
  const config = raw as Record<string, unknown>;
  checkMueFamily(config);
  const positiveIntegers = [
    'vocabSize', 'dim', 'ffnDim', 'heads', 'encoderLayers', 'decoderLayers',
    'imageSize', 'patchSize', 'maxTextLength', 'maxTargetLength',
  ] as const;
  for (const key of positiveIntegers) {
    const value = config[key];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
      throw new Error(`model config: "${key}" must be a positive integer (got ${JSON.stringify(value)})`);
    }
  }
  const c = config as unknown as ModelConfig;
  if (c.dim % c.heads !== 0) throw new Error(`model config: dim ${c.dim} is not divisible by heads ${c.heads}`);
  if (c.imageSize % c.patchSize !== 0) {
    throw new Error(`model config: imageSize ${c.imageSize} is not divisible by patchSize ${c.patchSize}`);
  }
  if (c.encoderMode !== 'decomposed' && c.encoderMode !== 'joint') {
    throw new Error(`model config: encoderMode must be "decomposed" or "joint" (got ${JSON.stringify(c.encoderMode)})`);
  }
  if (typeof c.layerNormEpsilon !== 'number' || !(c.layerNormEpsilon > 0)) {
    throw new Error('model config: layerNormEpsilon must be a positive number');
  }
  // Absent: a config from before the prompt formulation, whose VE models answer from <bos>.
  const veFormulation = config.veFormulation ?? 'bos';
  if (!VE_FORMULATIONS.includes(veFormulation as VeFormulation)) {
    throw new Error(`model config: veFormulation must be ${VE_FORMULATIONS.map((f) => `"${f}"`).join(' or ')} (got ${JSON.stringify(veFormulation)})`);
  }
  return {
    vocabSize: c.vocabSize, dim: c.dim, ffnDim: c.ffnDim, heads: c.heads,
    encoderLayers: c.encoderLayers, decoderLayers: c.decoderLayers,
    imageSize: c.imageSize, patchSize: c.patchSize,
    maxTextLength: c.maxTextLength, maxTargetLength: c.maxTargetLength,
    encoderMode: c.encoderMode, layerNormEpsilon: c.layerNormEpsilon, veFormulation: veFormulation as VeFormulation,
  };
}

export const headSize = (config: ModelConfig): number => config.dim / config.heads;
export const imagePatchCount = (config: ModelConfig): number => (config.imageSize / config.patchSize) ** 2;
/** Values per flattened patch: P·P·3 (RGB). */
export const patchVectorSize = (config: ModelConfig): number => config.patchSize * config.patchSize * 3;
