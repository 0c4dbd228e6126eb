// onnxruntime-web (WebAssembly CPU, SIMD; threads where the page is cross-origin isolated) as the
// runtime's backend. The .wasm file is served beside the bundle (copied from node_modules by
// scripts/build-browser.mjs), never from a CDN.
import * as ort from 'onnxruntime-web/wasm';
import type { OrtBackend } from '../runtime/ortBackend.js';

let configured = false;

/** The WebAssembly environment is global and fixed once the first session starts: set it once. */
function configureWasm(threads: number): void {
  if (configured) return;
  configured = true;
  ort.env.wasm.wasmPaths = new URL('./', import.meta.url).href;
  // Threads need SharedArrayBuffer, which browsers give only to cross-origin isolated pages.
  ort.env.wasm.numThreads = globalThis.crossOriginIsolated ? threads : 1;
  ort.env.logLevel = 'error';
}

/** The threads the wasm backend really runs with (after the first model has loaded). */
export function wasmThreads(): number {
  return ort.env.wasm.numThreads ?? 1;
}

export const webBackend: OrtBackend = {
  name: 'web',
  InferenceSession: ort.InferenceSession,
  Tensor: ort.Tensor,
  sessionOptions: (threads) => {
    configureWasm(threads);
    return { executionProviders: ['wasm'], graphOptimizationLevel: 'all', executionMode: 'sequential' };
  },
};
