// What the host platform provides to the runtime, browser version (the bundle uses this module in
// place of src/runtime/platform.ts): onnxruntime-web, and a model's files fetched from its URL.
import { FILES, parseJsonObject, parseModelFiles, type ParsedModel } from '../model/modelFiles.js';
import { EXITS_FILE, type LoadOptions } from '../runtime/modelSource.js';
import type { OrtBackend } from '../runtime/ortBackend.js';
import { webBackend } from './webBackend.js';

export async function defaultBackend(): Promise<OrtBackend> {
  return webBackend;
}

/**
 * A model folder's URL (relative to the page, or absolute) -> its validated checkpoint, and exits.json
 * (parsed; undefined when the server answers 404, so the model runs at full depth).
 */
export async function openModelSource(url: string, options: LoadOptions): Promise<{ model: ParsedModel; exits: unknown }> {
  const base = new URL(url.endsWith('/') ? url : `${url}/`, globalThis.location?.href);
  const fetchFile = (file: string, optional = false) => fetchWithProgress(new URL(file, base), url, file, optional, options);
  const [config, tokenizer, weights, exits] = await Promise.all([
    fetchFile(FILES.config), fetchFile(FILES.tokenizer), fetchFile(FILES.weights), fetchFile(EXITS_FILE, true),
  ]);
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  const model = parseModelFiles({
    config: parseJsonObject(text(config!), FILES.config),
    tokenizer: parseJsonObject(text(tokenizer!), FILES.tokenizer),
    weights: weights!,
  });
  return { model, exits: exits === undefined ? undefined : parseJsonObject(text(exits), EXITS_FILE) };
}

export function readExitsJson(directory: string): never {
  throw new Error(`readExitThresholds(${JSON.stringify(directory)}) reads a directory, which only Node can: in the browser, MuEModel.load(url) fetches ${EXITS_FILE}`);
}

/** The file's bytes, reporting progress as they arrive; undefined for an optional file the server does not have (404). */
async function fetchWithProgress(url: URL, name: string, file: string, optional: boolean, options: LoadOptions): Promise<Uint8Array | undefined> {
  const report = options.progress_callback ?? (() => {});
  report({ status: 'initiate', name, file });
  let response: Response;
  try {
    response = await fetch(url);
  } catch (error) {
    throw new Error(`cannot fetch ${url.href}: ${(error as Error).message}`);
  }
  if (optional && response.status === 404) {
    report({ status: 'done', name, file, loaded: 0, total: 0 });
    return undefined;
  }
  if (!response.ok) throw new Error(`${url.href} is not a model file: the server answered ${response.status} ${response.statusText}`);
  const header = response.headers.get('content-length');
  const total = header === null ? undefined : Number(header);
  const chunks: Uint8Array[] = [];
  let loaded = 0;
  const reader = response.body!.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.length;
    report({ status: 'progress', name, file, loaded, total, progress: total ? (100 * loaded) / total : undefined });
  }
  const bytes = new Uint8Array(loaded);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  report({ status: 'done', name, file, loaded, total: loaded });
  return bytes;
}
