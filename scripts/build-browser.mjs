// The browser build (part of `npm run build`): bundles the runtime with esbuild for the browser into
// dist/browser/ — mue.js (the library), demo.js (the demo page's script), their shared chunks, the
// demo page, and onnxruntime-web's WebAssembly file copied from node_modules (nothing from a CDN).
// The runtime's platform module (src/runtime/platform.ts: onnxruntime-node, fs) is replaced by
// src/browser/platform.ts (onnxruntime-web, fetch), and any Node-only import fails the build.
import { copyFileSync, cpSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = join(root, 'dist', 'browser');
const NODE_ONLY = /^(node:.*|fs|path|os|url|crypto|stream|zlib|sharp|onnxruntime-node|pngjs|fastify|@tensorflow\/.*)$/;

/** The platform swap and the Node-only guard. */
export const browserPlatform = {
  name: 'mue-browser-platform',
  setup(build) {
    build.onResolve({ filter: /\/platform\.js$/ }, (args) => {
      if (args.importer.startsWith(join(root, 'src', 'runtime'))) return { path: join(root, 'src', 'browser', 'platform.ts') };
      return undefined;
    });
    build.onResolve({ filter: NODE_ONLY }, (args) => ({
      errors: [{ text: `Node-only module "${args.path}" imported by ${args.importer.replace(`${root}/`, '')}: it must not reach the browser bundle` }],
    }));
  },
};

export async function buildBrowser({ quiet = false } = {}) {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const result = await esbuild.build({
    entryPoints: { mue: join(root, 'src/browser/index.ts'), demo: join(root, 'src/browser/demo.ts') },
    outdir: outDir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    sourcemap: 'linked',
    metafile: true,
    logLevel: quiet ? 'error' : 'warning',
    plugins: [browserPlatform],
  });
  // The WebAssembly runtime and its loader, which onnxruntime-web imports from env.wasm.wasmPaths.
  const wasm = 'ort-wasm-simd-threaded.wasm';
  for (const file of [wasm, 'ort-wasm-simd-threaded.mjs']) copyFileSync(join(root, 'node_modules/onnxruntime-web/dist', file), join(outDir, file));
  cpSync(join(root, 'src/serve/page-browser'), outDir, { recursive: true });
  // The library is mue.js and the chunks it shares with the demo (the demo's own script is reported apart).
  const jsOutputs = Object.entries(result.metafile.outputs).filter(([file]) => file.endsWith('.js'));
  const kib = (bytes) => `${(bytes / 1024).toFixed(0)} KiB`;
  const demoBytes = jsOutputs.filter(([file]) => file.endsWith('/demo.js')).reduce((sum, [, output]) => sum + output.bytes, 0);
  const libraryBytes = jsOutputs.reduce((sum, [, output]) => sum + output.bytes, 0) - demoBytes;
  if (!quiet) console.log(`dist/browser: library ${kib(libraryBytes)} of JavaScript, demo page ${kib(demoBytes)}, ${(statSync(join(outDir, wasm)).size / 1024 / 1024).toFixed(1)} MiB ${wasm}`);
  return result;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await buildBrowser();
