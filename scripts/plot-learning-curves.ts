// Learning curves of the shipped models (and the VE recipe probes): validation accuracy of the
// last decoder layer against the training step, from each run's train-log.jsonl.
// Usage: npm run plot:curves  → results/learning-curves.svg
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import { writeFileAtomic } from '../src/model/atomicWrite.js';
import { renderSvg } from '../src/eval/report.js';

interface CurvePoint {
  run: string;
  task: string;
  step: number;
  accuracyPercent: number;
}

function validationPoints(run: string, logPath: string): CurvePoint[] {
  return readFileSync(logPath, 'utf8')
    .split('\n')
    .map((line, index) => ({ line, number: index + 1 }))
    .filter(({ line }) => line.trim() !== '')
    .map(({ line, number }) => {
      try {
        return JSON.parse(line) as { type: string; step: number; accuracy?: number };
      } catch {
        throw new Error(`${logPath}:${number} is not a JSON record (a truncated or edited log?)`);
      }
    })
    .filter((record) => record.type === 'validation' && typeof record.accuracy === 'number')
    .map((record) => ({ run, task: run.includes('caption') ? 'captioning (next-token accuracy)' : 'visual entailment (answer accuracy)', step: record.step, accuracyPercent: 100 * record.accuracy! }));
}

const points: CurvePoint[] = [];
for (const name of existsSync('models') ? readdirSync('models').sort() : []) {
  const log = join('models', name, 'train-log.jsonl');
  if (existsSync(log)) points.push(...validationPoints(`models/${name}`, log));
}
const probes = join('results', 'probes');
for (const file of existsSync(probes) ? readdirSync(probes).sort() : []) {
  if (file.endsWith('.train-log.jsonl')) points.push(...validationPoints(`probe: ${file.replace('.train-log.jsonl', '')}`, join(probes, file)));
}
if (points.length === 0) throw new Error('no train-log.jsonl under models/ or results/probes/');

const spec: TopLevelSpec = {
  $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
  title: 'Validation accuracy of the last decoder layer',
  data: { values: points as unknown as Record<string, unknown>[] },
  facet: { column: { field: 'task', type: 'nominal', title: null } },
  resolve: { scale: { x: 'independent', y: 'independent' } },
  spec: {
    width: 360,
    height: 280,
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'step', type: 'quantitative', title: 'Training step (optimizer steps, batch 32)' },
      y: { field: 'accuracyPercent', type: 'quantitative', title: 'Validation accuracy (%)', scale: { zero: false } },
      color: { field: 'run', type: 'nominal', title: 'run', legend: { labelLimit: 400 } },
    },
  },
};
writeFileAtomic(join('results', 'learning-curves.svg'), await renderSvg(spec));
console.log(`wrote results/learning-curves.svg (${new Set(points.map((p) => p.run)).size} runs, ${points.length} points)`);
