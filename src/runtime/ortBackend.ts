// The ONNX Runtime API the runtime needs, typed by onnxruntime-common (the package both
// onnxruntime-node and onnxruntime-web implement), so one LayerRunner serves Node and the browser.
// Which implementation is used is chosen at load time (src/runtime/platform.ts for Node,
// src/browser/platform.ts in the browser bundle).
import type { InferenceSession, Tensor } from 'onnxruntime-common';

export interface OrtBackend {
  /** 'node' (onnxruntime-node, native CPU) or 'web' (onnxruntime-web, WebAssembly). */
  readonly name: 'node' | 'web';
  readonly InferenceSession: { create(model: Uint8Array, options?: InferenceSession.SessionOptions): Promise<InferenceSession> };
  readonly Tensor: typeof Tensor;
  /** Session options of every piece for this backend, given the intra-op threads wanted. */
  sessionOptions(threads: number): InferenceSession.SessionOptions;
}

export type OrtSession = InferenceSession;
export type OrtTensor = Tensor;
/** What a session run returns: output name -> tensor. */
export type OrtOutputs = InferenceSession.ReturnType;
