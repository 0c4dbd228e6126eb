// `mue demo`: the main job. Shipped models on fresh SceneWorld test scenes, full depth vs MuE
// with the calibrated thresholds on the same inputs, a table, a few examples with their exit
// layers, and the HTML report.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { sceneWorldEvalSet } from '../../eval/evaluate.js';
import { evaluateModels } from '../../eval/harness.js';
import { renderReport } from '../../eval/report.js';
import { EXITS_FILE, MuEModel, type InferenceOptions, type Telemetry } from '../../runtime/mueModel.js';
import { addDecodingOptions, decodingFrom } from '../decodingOptions.js';
import { integerOption, MAX_EXAMPLES, SEED_MAX } from '../options.js';
import { progressBar } from '../progress.js';
import { formatReportTable } from './eval.js';

/** The shipped models the demo looks for, with how many test scenes each gets (both run in < 2 min). */
export const DEMO_MODELS: ReadonlyArray<{ name: string; count: number }> = [
  { name: 've-small', count: 300 },
  { name: 'caption-small', count: 60 },
];

export function registerDemoCommand(program: Command): void {
  addDecodingOptions(program
    .command('demo')
    .description('run the shipped models on fresh test scenes: full depth vs MuE, examples, HTML report')
    .option('--models <dir>', 'folder holding the shipped models', 'models')
    .addOption(integerOption('--seed <n>', 'SceneWorld seed for the fresh scenes (default: from the clock, printed)', 0, SEED_MAX))
    .addOption(integerOption('--count <n>', 'test scenes per model (default: 300 VE, 60 captions)', 1, MAX_EXAMPLES))
    .option('--out <dir>', 'where the HTML reports go', 'results/demo'))
    .action(async (raw: { models: string; seed?: number; count?: number; out: string } & Record<string, unknown>) => {
      const decoding = decodingFrom(raw);
      const available = DEMO_MODELS.filter(({ name }) => existsSync(join(raw.models, name, 'config.json')));
      if (available.length === 0) {
        throw new Error(`no shipped models in ${raw.models}/ (expected ${DEMO_MODELS.map((m) => m.name).join(', ')}); train and calibrate them as the README describes`);
      }
      const seed = raw.seed ?? Date.now() % 1_000_000;
      console.log(`fresh SceneWorld test scenes, seed ${seed} (rerun with --seed ${seed})`);
      for (const { name, count: defaultCount } of available) {
        const modelDir = join(raw.models, name);
        if (!existsSync(join(modelDir, EXITS_FILE))) throw new Error(`${modelDir} has no ${EXITS_FILE}: run mue calibrate --model ${modelDir}`);
        const count = raw.count ?? defaultCount;
        const bar = progressBar('examples');
        let started = false;
        const report = await evaluateModels({
          modelDir, split: 'test', count, seed, methods: ['mue-calibrated'], decoding, command: `mue demo --seed ${seed}`,
          onProgress: (done, total, status) => {
            if (!started) bar.start(total, 0, { rate: '', status });
            started = true;
            bar.update(done, { status });
          },
        });
        bar.stop();
        console.log(`\n== ${name} ==`);
        console.log(formatReportTable(report));
        await printExamples(modelDir, seed, decoding);
        const { htmlPath } = await renderReport(report, join(raw.out, name));
        console.log(`report: ${htmlPath}`);
      }
    });
}

/** Three test scenes with their answers and where each stream and token exited. */
async function printExamples(modelDir: string, seed: number, decoding: InferenceOptions): Promise<void> {
  const model = await MuEModel.load(modelDir);
  try {
    const { encoderLayers, decoderLayers } = model.config;
    const layers = (t: Telemetry) =>
      `${t.jointLayers !== undefined ? `joint ${t.jointLayers}` : `image ${t.imageLayers}, text ${t.textLayers}`}/${encoderLayers} encoder layers; decoder ${t.tokenLayers.join(' ')} (of ${decoderLayers}) per token`;
    console.log('\nexamples (MuE with the calibrated thresholds):');
    for (const example of sceneWorldEvalSet(model.task, 'test', 3, seed + 1, model.config.imageSize)) {
      if (model.task === 've') {
        const full = await model.entail({ image: example.image, hypothesis: example.hypothesis }, { imageThreshold: 1, textThreshold: 1, jointThreshold: 1, decoderThreshold: 1 });
        const fast = await model.entail({ image: example.image, hypothesis: example.hypothesis });
        console.log(`  "${example.hypothesis}" → ${fast.answer} (full depth: ${full.answer}, truth: ${example.label}); ${layers(fast.telemetry)}`);
      } else {
        const fast = await model.caption({ image: example.image }, decoding);
        console.log(`  "${fast.caption}"; ${layers(fast.telemetry)}\n    reference: "${example.references![0]}"`);
      }
    }
  } finally {
    await model.dispose();
  }
}
