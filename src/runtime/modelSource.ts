// What MuEModel.load reads and how it reports progress; shared by the Node loader (a directory,
// src/runtime/platform.ts) and the browser loader (a URL, src/browser/platform.ts).
import type { OrtBackend } from './ortBackend.js';

/** Calibrated thresholds stored beside the weights (written by `mue calibrate`); optional. */
export const EXITS_FILE = 'exits.json';

/**
 * Loading progress, in the shape transformers.js reports it: per file 'initiate', then
 * 'progress' (bytes so far of total when known), then 'done'; 'ready' once the graphs are built.
 */
export interface LoadProgress {
  status: 'initiate' | 'progress' | 'done' | 'ready';
  /** The model's directory or URL. */
  name: string;
  /** config.json, model.safetensors, tokenizer.json or exits.json (absent for 'ready'). */
  file?: string;
  loaded?: number;
  /** Bytes of the file when the server said (Content-Length), else undefined. */
  total?: number;
  /** loaded / total in percent, when total is known. */
  progress?: number;
}

export interface LoadOptions {
  /** Intra-op threads per session (Node) or WebAssembly threads (browser, cross-origin isolated pages only); default by model width. */
  threads?: number;
  /** ONNX Runtime implementation (default: onnxruntime-node in Node, onnxruntime-web in the browser bundle). */
  backend?: OrtBackend;
  /** Also build the fused whole-stack graphs (for `fused: true` runs, the benchmark's reference). */
  fullStack?: boolean;
  progress_callback?: (progress: LoadProgress) => void;
}
