// `mue calibrate`: choose exit thresholds for a target retention and store them in exits.json.
import type { Command } from 'commander';
import { DATA_SPEC_HELP } from '../../data/dataSource.js';
import { SPLITS } from '../../data/sceneworld.js';
import { calibrate, describe, writeExitsFile } from '../../eval/calibrate.js';
import { CAPTION_DECODING } from '../../runtime/mueModel.js';
import { addDecodingOptions, decodingFrom } from '../decodingOptions.js';
import { integerOption, MAX_EXAMPLES, MAX_THREADS, numberOption, parseChoice, SEED_MAX } from '../options.js';
import { progressBar } from '../progress.js';

export function registerCalibrateCommand(program: Command): void {
  addDecodingOptions(program
    .command('calibrate')
    .description('find the cheapest exit thresholds that keep a target retention; writes MODEL/exits.json')
    .requiredOption('--model <dir>', 'model directory')
    .addOption(numberOption('--target-retention <x>', 'quality to keep, relative to full depth', { min: 0, minExclusive: true, max: 1 }, 0.99))
    .option('--data <spec>', DATA_SPEC_HELP, 'sceneworld')
    .option('--split <split>', 'calibration split', parseChoice('--split', SPLITS), 'validation')
    .addOption(integerOption('--count <n>', 'calibration examples', 1, MAX_EXAMPLES, 500))
    .addOption(integerOption('--seed <n>', 'SceneWorld seed', 0, SEED_MAX, 1))
    .addOption(numberOption('--delta <x>', 'statistical guarantee (Learn-then-Test): retention ≥ target with probability ≥ 1 − δ', { min: 0, minExclusive: true, max: 1, maxExclusive: true }))
    .addOption(integerOption('--threads <n>', 'ONNX Runtime intra-op threads', 1, MAX_THREADS))
    .option('--dry-run', 'print the thresholds without writing exits.json'))
    .action(async (raw: Record<string, unknown>) => {
      const bar = progressBar('runs');
      bar.start(1, 0, { rate: '', status: 'full depth' });
      const result = await calibrate({
        modelDir: raw.model as string, data: raw.data as string, split: raw.split as (typeof SPLITS)[number], count: raw.count as number, seed: raw.seed as number,
        targetRetention: raw.targetRetention as number, delta: raw.delta as number | undefined, threads: raw.threads as number | undefined,
        decoding: decodingFrom(raw),
        onProgress: (done, status) => {
          bar.setTotal(done + 1);
          bar.update(done, { status });
        },
      });
      bar.stop();
      for (const step of result.steps) {
        console.log(`${step.accepted ? 'accept' : 'reject'}  ${describe(step.thresholds)}  retention ${(100 * step.retention).toFixed(2)}%  FLOPs ${(100 * step.flopRatio).toFixed(1)}%${step.pValue !== undefined ? `  p=${step.pValue.toExponential(2)}` : ''}`);
      }
      console.log(`\nchosen (${result.method}${result.delta !== undefined ? `, δ=${result.delta}` : ''}): ${describe(result.thresholds)}`);
      console.log(`${raw.split as string} retention ${(100 * result.retention).toFixed(2)}% (target ${(100 * result.target).toFixed(1)}%), FLOPs ${(100 * result.flopRatio).toFixed(1)}% of full depth`);
      if (!raw.dryRun) {
        // The caption decoding the thresholds were chosen under (a VE answer is one constrained step either way).
        const captionDecoding = { ...CAPTION_DECODING, ...decodingFrom(raw) };
        const path = writeExitsFile(raw.model as string, result, { data: raw.data, split: raw.split, count: raw.count, seed: raw.seed, captionDecoding });
        console.log(`wrote ${path}`);
      }
    });
}
