// The in-browser demo under /browser/: the bundle built by scripts/build-browser.mjs (dist/browser),
// and the served models' files under /browser/models/<name>/, so the page runs the model itself
// (onnxruntime-web) with nothing fetched from elsewhere. Only a fixed list of files is served (the
// bundle directory's own files and the four model files): request paths never reach the file system.
// The page is cross-origin isolated (COOP/COEP) so onnxruntime-web may use threads.
import { createReadStream, existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { FILES } from '../model/modelFiles.js';
import { EXITS_FILE } from '../runtime/modelSource.js';

/** dist/browser from src/serve (tsx) and from dist/serve (built) alike. */
export const BROWSER_BUNDLE_DIR = fileURLToPath(new URL('../../dist/browser/', import.meta.url));

export interface BrowserModel { name: string; directory: string }

const MODEL_FILES = [FILES.config, FILES.weights, FILES.tokenizer, EXITS_FILE];
const CONTENT_TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8', js: 'text/javascript; charset=utf-8', mjs: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8', map: 'application/json',
  json: 'application/json', wasm: 'application/wasm', safetensors: 'application/octet-stream',
};
const ISOLATION_HEADERS = { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' };

export function registerBrowserPage(app: FastifyInstance, models: BrowserModel[], bundleDir = BROWSER_BUNDLE_DIR): void {
  const bundleFiles = existsSync(bundleDir) ? readdirSync(bundleDir).filter((file) => statSync(join(bundleDir, file)).isFile()) : [];
  const send = (path: string) => async (_request: unknown, reply: import('fastify').FastifyReply) => {
    if (!existsSync(path)) return reply.code(404).send({ error: `no file ${path.split('/').pop()}` });
    return reply.headers(ISOLATION_HEADERS).type(CONTENT_TYPES[path.split('.').pop()!] ?? 'application/octet-stream')
      .header('content-length', statSync(path).size).send(createReadStream(path));
  };
  if (bundleFiles.length === 0) {
    app.get('/browser/', async (_request, reply) => reply.code(503).send({ error: 'the browser bundle is not built: run "npm run build"' }));
  } else {
    app.get('/browser', async (_request, reply) => reply.redirect('/browser/'));
    app.get('/browser/', send(join(bundleDir, 'index.html')));
    for (const file of bundleFiles) app.get(`/browser/${file}`, send(join(bundleDir, file)));
  }
  app.get('/browser/models.json', async (_request, reply) => reply.headers(ISOLATION_HEADERS).send(models.map(({ name }) => ({ name, url: `models/${encodeURIComponent(name)}/` }))));
  for (const { name, directory } of models) {
    for (const file of MODEL_FILES) app.get(`/browser/models/${encodeURIComponent(name)}/${file}`, send(join(directory, file)));
  }
}
