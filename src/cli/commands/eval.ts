// `mue eval`: every method's quality-vs-cost sweep on SceneWorld or a real data set, as a table and JSON.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Command } from 'commander';
import { DATA_SPEC_HELP } from '../../data/dataSource.js';
import { SPLITS } from '../../data/sceneworld.js';
import { evaluateModels } from '../../eval/harness.js';
import type { EvaluationReport, MethodResult } from '../../eval/types.js';
import { writeFileAtomic } from '../../model/atomicWrite.js';
import { addDecodingOptions, decodingFrom } from '../decodingOptions.js';
import { integerOption, MAX_EXAMPLES, MAX_THREADS, parseChoice, SEED_MAX } from '../options.js';
import { progressBar } from '../progress.js';

export const METHODS = ['static', 'deebert', 'pabee', 'calm', 'encoder-only', 'mue', 'mue-copy', 'mue-propagate', 'mue-recompute', 'mue-joint', 'mue-lastlayer', 'mue-calibrated'] as const;

export function registerEvalCommand(program: Command): void {
  addDecodingOptions(program
    .command('eval')
    .description('measure quality vs cost (layers, FLOPs, wall clock) for MuE and the baselines')
    .requiredOption('--model <dir>', 'model directory')
    .option('--joint-model <dir>', 'same task, trained with --encoder-mode joint (for the mue-joint ablation)')
    .option('--lastlayer-model <dir>', 'same task, trained with --loss last-layer (for the mue-lastlayer ablation)')
    .option('--data <spec>', DATA_SPEC_HELP, 'sceneworld')
    .option('--split <split>', SPLITS.join(' | '), parseChoice('--split', SPLITS), 'test')
    .addOption(integerOption('--count <n>', 'examples', 1, MAX_EXAMPLES, 500))
    .addOption(integerOption('--seed <n>', 'SceneWorld seed', 0, SEED_MAX, 1))
    .option('--methods <list>', `comma-separated subset of ${METHODS.join(',')}`, (value: string) => {
      const methods = value.split(',').map((m) => m.trim());
      const unknown = methods.find((m) => !(METHODS as readonly string[]).includes(m));
      if (unknown) throw new Error(`--methods: unknown method "${unknown}" (known: ${METHODS.join(', ')})`);
      return methods;
    })
    .addOption(integerOption('--threads <n>', 'ONNX Runtime intra-op threads', 1, MAX_THREADS))
    .option('--out <file>', 'where to write the JSON report', 'results/eval.json')
    .option('--fused-reference', 'also time full depth through the fused whole-stack graphs beside every run (column "vs fused")'))
    .action(async (raw: Record<string, unknown>) => {
      const bar = progressBar('examples');
      let started = false;
      const report = await evaluateModels({
        modelDir: raw.model as string, jointModelDir: raw.jointModel as string | undefined, lastLayerModelDir: raw.lastlayerModel as string | undefined,
        data: raw.data as string, split: raw.split as (typeof SPLITS)[number], count: raw.count as number, seed: raw.seed as number,
        methods: raw.methods as string[] | undefined, threads: raw.threads as number | undefined, decoding: decodingFrom(raw),
        fusedReference: Boolean(raw.fusedReference),
        command: `mue ${process.argv.slice(2).join(' ')}`,
        onProgress: (done, total, status) => {
          if (!started) bar.start(total, 0, { rate: '', status });
          started = true;
          bar.update(done, { status });
        },
      });
      bar.stop();
      mkdirSync(dirname(raw.out as string), { recursive: true });
      writeFileAtomic(raw.out as string, `${JSON.stringify(report, null, 2)}\n`);
      console.log(formatReportTable(report));
      if (report.skippedTooLong) console.log(`(${report.skippedTooLong} of the requested examples were left out: their text is longer than the model's limit)`);
      if (report.calibration) {
        const c = report.calibration;
        console.log(`\ncalibrated thresholds (target ${(100 * c.target).toFixed(1)}%): calibration retention ${(100 * c.calibrationRetention).toFixed(2)}%, ${report.split} retention ${(100 * c.testRetention).toFixed(2)}%, time ${(100 * c.testTimeRatio).toFixed(1)}%, FLOPs ${(100 * c.testFlopRatio).toFixed(1)}%`);
      }
      console.log(`\nwrote ${raw.out as string}`);
    });
}

export function formatReportTable(report: EvaluationReport): string {
  const fused = report.fullDepth.fusedTimeRatio !== undefined;
  const header = ['method', 'setting', report.qualityName, 'retention', 'layer red.', 'FLOPs', 'time', 'speed-up', ...(fused ? ['vs fused'] : [])];
  const row = (r: MethodResult) => [
    r.method, r.setting, report.task === 've' ? `${(100 * r.quality).toFixed(1)}%` : r.quality.toFixed(3),
    `${(100 * r.retention).toFixed(1)}%`, `${(100 * r.layerReduction).toFixed(1)}%`, `${(100 * r.flopRatio).toFixed(1)}%`,
    `${(100 * r.timeRatio).toFixed(1)}%`, `${(1 / r.timeRatio).toFixed(2)}x`, ...(fused ? [r.fusedTimeRatio !== undefined ? `${(1 / r.fusedTimeRatio).toFixed(2)}x` : '—'] : []),
  ];
  const rows = [header, row(report.fullDepth), ...report.methods.map(row)];
  const widths = header.map((_, column) => Math.max(...rows.map((r) => r[column]!.length)));
  const lines = rows.map((r) => r.map((cell, column) => (column < 2 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('  '));
  return [`${report.count} ${report.split} examples, batch 1; cost relative to full depth of the same model`, ...lines].join('\n');
}
