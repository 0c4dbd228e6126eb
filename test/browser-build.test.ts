// The browser build: the bundle holds the shared runtime but none of the Node-only modules, and any
// Node-only import that would reach it fails the build with a message naming the importer.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import * as esbuild from 'esbuild';
// @ts-expect-error: a plain .mjs build script without type declarations
import { browserPlatform, buildBrowser } from '../scripts/build-browser.mjs';

test('the bundle has the runtime over onnxruntime-web and nothing Node-only', async () => {
  const { metafile } = await buildBrowser({ quiet: true });
  const inputs = Object.keys(metafile.inputs as Record<string, unknown>);
  for (const shared of ['src/runtime/mueModel.ts', 'src/runtime/decoderExits.ts', 'src/runtime/generate.ts', 'src/runtime/layerRunner.ts', 'src/graph/layerGraphs.ts', 'src/browser/platform.ts']) {
    assert.ok(inputs.includes(shared), `${shared} is in the bundle`);
  }
  for (const nodeOnly of ['src/runtime/platform.ts', 'src/runtime/nodeBackend.ts', 'src/model/checkpoint.ts', 'src/data/image.ts']) {
    assert.ok(!inputs.includes(nodeOnly), `${nodeOnly} is not in the bundle`);
  }
  assert.ok(inputs.some((input) => input.includes('node_modules/onnxruntime-web/')));
  assert.ok(!inputs.some((input) => /node_modules\/(onnxruntime-node|sharp)\//.test(input)));
});

test('a Node-only import fails the browser build, naming the importer', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mue-browser-build-'));
  try {
    writeFileSync(join(dir, 'entry.ts'), "import { readFileSync } from 'node:fs';\nexport const read = readFileSync;\n");
    await assert.rejects(
      esbuild.build({ entryPoints: [join(dir, 'entry.ts')], bundle: true, write: false, platform: 'browser', format: 'esm', logLevel: 'silent', plugins: [browserPlatform] }),
      /Node-only module "node:fs" imported by .*entry\.ts: it must not reach the browser bundle/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
