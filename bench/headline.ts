// The headline benchmark (`npm run bench`): each shipped model on the held-out test split,
// batch 1, one process; MuE with its calibrated thresholds and every baseline at its fastest
// setting that keeps the same retention. Writes results/headline-<model>.json and an HTML report.
// Usage: npm run bench [-- --models models --count 1000 --seed 2026]
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { progressBar } from '../src/cli/progress.js';
import { evaluateModels } from '../src/eval/harness.js';
import { bestPerMethod, formatHeadline } from '../src/eval/headline.js';
import { renderReport } from '../src/eval/report.js';
import { writeFileAtomic } from '../src/model/atomicWrite.js';

const { values } = parseArgs({ options: { models: { type: 'string', default: 'models' }, count: { type: 'string' }, seed: { type: 'string', default: '2026' } } });
/** The retention each task's MuE must keep (issue: VE ≥ 99%, captions ≥ 96%), used for every method alike. */
const TARGETS: Array<{ name: string; target: number; count: number }> = [
  { name: 've-small', target: 0.99, count: 1000 },
  { name: 'caption-small', target: 0.96, count: 200 },
];
const seed = Number(values.seed);
let ran = 0;
for (const { name, target, count: defaultCount } of TARGETS) {
  const modelDir = join(values.models!, name);
  if (!existsSync(join(modelDir, 'config.json'))) {
    console.error(`skipping ${name}: ${modelDir} does not exist`);
    continue;
  }
  const ablation = (suffix: string) => (existsSync(join(`${modelDir}-${suffix}`, 'config.json')) ? `${modelDir}-${suffix}` : undefined);
  const count = values.count ? Number(values.count) : defaultCount;
  const command = `npm run bench -- --models ${values.models} --count ${count} --seed ${seed}`;
  const bar = progressBar('examples');
  let started = false;
  const report = await evaluateModels({
    modelDir, jointModelDir: ablation('joint'), lastLayerModelDir: ablation('lastlayer'), split: 'test', count, seed, command,
    onProgress: (done, total, status) => {
      if (!started) bar.start(total, 0, { rate: '', status });
      started = true;
      bar.update(done, { status });
    },
  });
  bar.stop();
  const rows = bestPerMethod(report, target);
  console.log(`\n== ${name}: ${count} held-out test examples (seed ${seed}), batch 1; every method at its fastest setting keeping ${(100 * target).toFixed(0)}% of full-depth ${report.qualityName} ==`);
  console.log(formatHeadline(report, rows, target));
  mkdirSync('results', { recursive: true });
  writeFileAtomic(join('results', `headline-${name}.json`), `${JSON.stringify({ target, rows, report }, null, 2)}\n`);
  const { htmlPath } = await renderReport(report, join('results', 'headline', name));
  console.log(`wrote results/headline-${name}.json and ${htmlPath}`);
  ran++;
}
if (ran === 0) {
  console.error(`no shipped models under ${values.models}/: nothing to benchmark`);
  process.exitCode = 1;
}
