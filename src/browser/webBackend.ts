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

/**
 * onnxruntime-web runs every session in one WebAssembly instance, and runs that overlap in time (two
 * models, or two requests awaited together) corrupt it: seen in Chromium as "output name cannot be
 * empty", a null read inside its run, or the page crashing. Every session creation and run is
 * therefore queued behind the previous one.
 */
let queue: Promise<unknown> = Promise.resolve();
function serialised<T>(task: () => Promise<T>): Promise<T> {
  const result = queue.then(task, task);
  queue = result.catch(() => undefined);
  return result;
}

async function createSession(model: Uint8Array, options?: ort.InferenceSession.SessionOptions): Promise<ort.InferenceSession> {
  const session = await serialised(() => ort.InferenceSession.create(model, options));
  const run = session.run.bind(session) as (...args: unknown[]) => Promise<ort.InferenceSession.ReturnType>;
  (session as { run: (...args: unknown[]) => Promise<ort.InferenceSession.ReturnType> }).run = (...args) => serialised(() => run(...args));
  return session;
}

export const webBackend: OrtBackend = {
  name: 'web',
  InferenceSession: { create: createSession },
  Tensor: ort.Tensor,
  sessionOptions: (threads) => {
    configureWasm(threads);
    return { executionProviders: ['wasm'], graphOptimizationLevel: 'all', executionMode: 'sequential' };
  },
};
