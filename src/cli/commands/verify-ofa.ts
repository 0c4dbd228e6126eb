// `mue verify-ofa`: parity of the OFA / MuE port with a reference fixture of the official PyTorch code.
import type { Command } from 'commander';

import { OFA_PARITY_TOLERANCE, type OfaVerification, verifyOfaFixture } from '../../eval/ofaVerify.js';
import { integerOption, MAX_THREADS, numberOption } from '../options.js';

interface VerifyOfaOptions {
  fixture: string;
  weights?: string;
  tolerance: number;
  threads?: number;
  json?: boolean;
}

function formatReport(result: OfaVerification): string {
  const nameWidth = Math.max(5, ...result.stages.map((stage) => stage.name.length));
  const lines = [
    `fixture ${result.fixture} (${result.mode} encoder), weights ${result.weights}`,
    `${'stage'.padEnd(nameWidth)}  ${'shape'.padEnd(14)}  rel. error   `,
    ...result.stages.map((stage) => `${stage.name.padEnd(nameWidth)}  ${stage.shape.join('x').padEnd(14)}  ${stage.relativeError.toExponential(2).padStart(9)}  ${stage.pass ? 'ok' : `FAIL${stage.problem ? ` (${stage.problem})` : ''}`}`),
  ];
  if (result.exitRuns.length > 0) {
    lines.push('early-exit run  thresholds (image/text/decoder)  exit layers expected -> ours');
    for (const run of result.exitRuns) {
      const { image, text, decoder } = run.thresholds;
      const layers = (l: { image: number; text: number; decoder: number }): string => `${l.image}/${l.text}/${l.decoder}`;
      lines.push(`${run.name.padEnd(14)}  ${[image, text, decoder].map((t) => t.toFixed(4)).join('/').padEnd(30)}  ${layers(run.expected)} -> ${layers(run.actual)}  ${run.pass ? 'ok' : 'FAIL'}`);
    }
  }
  const failed = result.stages.filter((stage) => !stage.pass).length + result.exitRuns.filter((run) => !run.pass).length;
  lines.push(`${result.pass ? 'PASS' : 'FAIL'}: ${result.stages.length} tensors, worst relative error ${result.worstRelativeError.toExponential(2)} (tolerance ${result.tolerance}), ${result.exitRuns.length} early-exit runs${failed ? `, ${failed} failing` : ''}`);
  return lines.join('\n');
}

export function registerVerifyOfaCommand(program: Command): void {
  program
    .command('verify-ofa')
    .description('Check the OFA/MuE port against a reference fixture of the official PyTorch code: every stored tensor and the exit layers of every early-exit run (exit code 0 only when all pass)')
    .requiredOption('--fixture <dir>', 'fixture directory: config.json, inputs.safetensors, outputs.safetensors and weights.safetensors (or checkpoint.pt, or a sibling fixture of the same generator config and seed); the .safetensors files may be gzip\'d (FILE.gz)')
    .option('--weights <file>', 'weights.safetensors (or .safetensors.gz) to use instead of the fixture\'s own')
    .addOption(numberOption('--tolerance <x>', 'largest accepted relative error max|ours - ref| / max|ref| per tensor', { min: 0, minExclusive: true, max: 1 }, OFA_PARITY_TOLERANCE))
    .addOption(integerOption('--threads <n>', 'onnxruntime intra-op threads per piece (default 1 below width 512, else 2)', 1, MAX_THREADS))
    .option('--json', 'print the full result (every tensor\'s error, every exit run) as JSON')
    .action(async (options: VerifyOfaOptions) => {
      const result = await verifyOfaFixture(options.fixture, { weightsPath: options.weights, tolerance: options.tolerance, threads: options.threads });
      console.log(options.json ? JSON.stringify(result, null, 2) : formatReport(result));
      if (!result.pass) process.exitCode = 1;
    });
}
