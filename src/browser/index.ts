// The browser library entry (dist/browser/mue.js): the same MuEModel as in Node, loading from a URL
// over onnxruntime-web, and readImage for page images.
export { MuEModel, ENTAILMENT_ANSWERS, EXITS_FILE, parseExitThresholds } from '../runtime/mueModel.js';
export type {
  EntailInput, EntailResult, CaptionInput, CaptionResult, InferenceOptions, ExitThresholds, Telemetry, LoadOptions, LoadProgress,
} from '../runtime/mueModel.js';
export { readImage, type ImageInput } from './image.js';
export { wasmThreads } from './webBackend.js';
export type { RgbPixels } from '../data/preprocess.js';
