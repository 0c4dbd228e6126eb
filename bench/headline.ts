// The headline benchmark (`npm run bench`): each shipped model, batch 1, one process. Every method's
// setting (each baseline, uniform MuE, the ablations) is chosen on the VALIDATION split — its fastest
// setting keeping the target retention, or its best retention if none does — and that one setting is
// then run on the held-out TEST split, with MuE's calibrated thresholds (exits.json, themselves chosen
// on validation by `mue calibrate`). On test, every run is timed back to back with full depth through
// the per-layer runtime (the "speed-up" column) and through the fused whole-stack graphs ("vs fused").
// Writes results/headline-<model>.json (both splits' reports) and an HTML report of the test run.
// Usage: npm run bench [-- --models models --count N --validation-count N --seed 2026]
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { METHODS } from '../src/cli/commands/eval.js';
import { progressBar } from '../src/cli/progress.js';
import { evaluateModels, type HarnessOptions } from '../src/eval/harness.js';
import { bestPerMethod, chosenSettings, formatHeadline, reportChosen } from '../src/eval/headline.js';
import { renderReport } from '../src/eval/report.js';
import { writeFileAtomic } from '../src/model/atomicWrite.js';

const { values } = parseArgs({
  options: { models: { type: 'string', default: 'models' }, count: { type: 'string' }, 'validation-count': { type: 'string' }, seed: { type: 'string', default: '2026' } },
});
/** The retention each task's MuE must keep (issue: VE ≥ 99%, captions ≥ 96%), used for every method alike. */
const TARGETS: Array<{ name: string; target: number; count: number; validationCount: number }> = [
  { name: 've-small', target: 0.99, count: 1000, validationCount: 500 },
  { name: 'caption-small', target: 0.96, count: 200, validationCount: 100 },
];
const seed = Number(values.seed);
let ran = 0;

async function withProgress(options: Omit<HarnessOptions, 'onProgress'>) {
  const bar = progressBar('examples');
  let started = false;
  const report = await evaluateModels({
    ...options,
    onProgress: (done, total, status) => {
      if (!started) bar.start(total, 0, { rate: '', status: `${options.split}: ${status}` });
      started = true;
      bar.update(done, { status: `${options.split}: ${status}` });
    },
  });
  bar.stop();
  return report;
}

for (const { name, target, count: defaultCount, validationCount: defaultValidationCount } of TARGETS) {
  const modelDir = join(values.models!, name);
  if (!existsSync(join(modelDir, 'config.json'))) {
    console.error(`skipping ${name}: ${modelDir} does not exist`);
    continue;
  }
  const ablation = (suffix: string) => (existsSync(join(`${modelDir}-${suffix}`, 'config.json')) ? `${modelDir}-${suffix}` : undefined);
  const count = values.count ? Number(values.count) : defaultCount;
  const validationCount = values['validation-count'] ? Number(values['validation-count']) : defaultValidationCount;
  const command = `npm run bench -- --models ${values.models} --count ${count} --validation-count ${validationCount} --seed ${seed}`;
  const models = { modelDir, jointModelDir: ablation('joint'), lastLayerModelDir: ablation('lastlayer'), seed, command };

  // 1. Every setting of every method on validation; each method's setting is chosen there.
  const validation = await withProgress({ ...models, split: 'validation', count: validationCount, methods: METHODS.filter((m) => m !== 'mue-calibrated') });
  const chosen = bestPerMethod(validation, target);
  // 2. Only the chosen settings (and the calibrated thresholds) on test, beside both full-depth references.
  const test = await withProgress({ ...models, split: 'test', count, settings: chosenSettings(chosen), fusedReference: true });
  const rows = reportChosen(chosen, test, target);

  console.log(`\n== ${name}: settings chosen on ${validation.count} validation examples, reported on ${test.count} held-out test examples (seed ${seed}), batch 1; target ${(100 * target).toFixed(0)}% of full-depth ${test.qualityName} ==`);
  console.log(formatHeadline(test, rows, target));
  mkdirSync('results', { recursive: true });
  writeFileAtomic(join('results', `headline-${name}.json`), `${JSON.stringify({ target, rows, report: test, validation }, null, 2)}\n`);
  const { htmlPath } = await renderReport(test, join('results', 'headline', name));
  // The trade-off curves (every setting) come from the validation sweep.
  const { htmlPath: sweepPath } = await renderReport(validation, join('results', 'headline', name, 'validation'));
  console.log(`wrote results/headline-${name}.json, ${htmlPath} (test) and ${sweepPath} (validation sweep)`);
  ran++;
}
if (ran === 0) {
  console.error(`no shipped models under ${values.models}/: nothing to benchmark`);
  process.exitCode = 1;
}
