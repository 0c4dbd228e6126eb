// The library's public API.
export { MuEModel, ENTAILMENT_ANSWERS, EXITS_FILE } from './runtime/mueModel.js';
export type { EntailInput, EntailResult, CaptionInput, CaptionResult, InferenceOptions, ExitThresholds, Telemetry } from './runtime/mueModel.js';
export { similarityExit, entropyExit, marginExit, patienceExit, fixedDepthExit, fullDepth, cosineSimilarity } from './runtime/exits.js';
export type { ExitPolicy, LayerSignal } from './runtime/exits.js';
export { KV_STRATEGIES, type KvStrategy } from './runtime/decoderExits.js';
export { LayerRunner } from './runtime/layerRunner.js';
export { exportGraphs } from './export/exportGraphs.js';
export { train, DEFAULT_TRAIN_OPTIONS, type TrainOptions } from './train/trainer.js';
export { TfModel } from './model/tfModel.js';
export { presetConfig, PRESETS, type ModelConfig } from './model/config.js';
export { loadCheckpoint, saveCheckpoint, type Checkpoint, type Task } from './model/checkpoint.js';
export { veExample, captionExample, veExamples, captionExamples, sceneWorldTokenizer, CAPTION_PROMPT } from './data/sceneworld.js';
export type { VeExample, CaptionExample, RgbImage } from './data/sceneworld.js';
export { WordTokenizer } from './data/tokenizer.js';
export { encodePng, decodePng } from './data/png.js';
export { scoreCaptions, type CaptionScores } from './eval/captionMetrics.js';
export { accuracyReport } from './eval/accuracy.js';
