// The reliability suite: runs every sub-suite in scripts/reliability/*.ts (each exports
// `run(): Promise<Record<string, unknown>>`, figures only, with `passed: false` when one of its
// checks failed) and writes their figures, merged, to results/reliability.json.
// Usage: npm run reliability [-- --only server,cli]
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { writeFileAtomic } from '../src/model/atomicWrite.js';

export const RELIABILITY_RESULTS = join(import.meta.dirname, '..', 'results', 'reliability.json');
const SUITES = join(import.meta.dirname, 'reliability');

type SubSuite = { run(): Promise<Record<string, unknown>> };

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { only: { type: 'string' } } });
  const available = readdirSync(SUITES).filter((file) => file.endsWith('.ts')).map((file) => file.slice(0, -3)).sort();
  const only = values.only?.split(',').map((name) => name.trim());
  const unknown = only?.filter((name) => !available.includes(name)) ?? [];
  if (unknown.length > 0) throw new Error(`unknown sub-suite ${unknown.join(', ')} (available: ${available.join(', ')})`);
  // Sub-suites not run this time keep their last figures.
  const results = existsSync(RELIABILITY_RESULTS) ? JSON.parse(readFileSync(RELIABILITY_RESULTS, 'utf8')) as { suites?: Record<string, unknown> } : {};
  const suites: Record<string, unknown> = results.suites ?? {};
  let failed = false;
  for (const name of only ?? available) {
    const started = performance.now();
    console.log(`reliability: ${name} …`);
    let figures: Record<string, unknown>;
    try {
      const suite = await import(pathToFileURL(join(SUITES, `${name}.ts`)).href) as SubSuite;
      figures = await suite.run();
    } catch (error) {
      figures = { passed: false, error: error instanceof Error ? error.stack ?? error.message : String(error) };
    }
    const seconds = (performance.now() - started) / 1000;
    suites[name] = { date: new Date().toISOString(), seconds, ...figures };
    if (figures.passed === false) failed = true;
    console.log(`reliability: ${name} ${figures.passed === false ? 'FAILED' : 'passed'} in ${seconds.toFixed(1)} s`);
  }
  mkdirSync(join(RELIABILITY_RESULTS, '..'), { recursive: true });
  writeFileAtomic(RELIABILITY_RESULTS, `${JSON.stringify({ command: 'npm run reliability', suites }, null, 2)}\n`);
  console.log(`reliability: figures in ${RELIABILITY_RESULTS}`);
  if (failed) process.exitCode = 1;
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.stack : String(error));
  process.exitCode = 1;
});
