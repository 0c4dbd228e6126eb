// Writes every ONNX graph of the model to a folder: <piece>.onnx per piece plus
// manifest.json (pieces with their input/output signatures, and the model config).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ModelConfig } from '../model/config.js';
import type { NamedArray } from '../model/safetensors.js';
import { writeFileAtomic } from '../model/atomicWrite.js';
import { fullStackPieces, layerPieces } from '../graph/layerGraphs.js';
import { OPSET_VERSION, type TensorSignature } from '../graph/onnxBuilder.js';

export const MANIFEST_FILE = 'manifest.json';

export interface GraphManifest {
  opsetVersion: number;
  config: ModelConfig;
  pieces: { name: string; file: string; inputs: TensorSignature[]; outputs: TensorSignature[] }[];
}

/** Writes the per-layer and whole-stack graphs, each atomically, then the manifest; returns the manifest. */
export function exportGraphs(config: ModelConfig, weights: Map<string, NamedArray>, outDir: string): GraphManifest {
  mkdirSync(outDir, { recursive: true });
  const manifest: GraphManifest = { opsetVersion: OPSET_VERSION, config, pieces: [] };
  for (const generator of [layerPieces(config, weights), fullStackPieces(config, weights)]) {
    for (const piece of generator) {
      const file = `${piece.name}.onnx`;
      writeFileAtomic(join(outDir, file), piece.model);
      manifest.pieces.push({ name: piece.name, file, inputs: piece.inputs, outputs: piece.outputs });
    }
  }
  writeFileAtomic(join(outDir, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}
