// `mue export`: write the per-layer ONNX graphs and a manifest, for other runtimes.
import type { Command } from 'commander';
import { exportGraphs } from '../../export/exportGraphs.js';
import { loadCheckpoint } from '../../model/checkpoint.js';

export function registerExportCommand(program: Command): void {
  program
    .command('export')
    .description('write one ONNX graph per layer (plus embeddings and head) and manifest.json')
    .requiredOption('--model <dir>', 'model directory (checkpoint)')
    .requiredOption('--out <dir>', 'output directory')
    .action((raw: { model: string; out: string }) => {
      const checkpoint = loadCheckpoint(raw.model);
      const manifest = exportGraphs(checkpoint.config, checkpoint.weights, raw.out);
      console.log(`wrote ${manifest.pieces.length} graphs (opset ${manifest.opsetVersion}) and manifest.json to ${raw.out}`);
    });
}
