// Load test: 32 concurrent clients against `mue serve` with --max-batch 1, then with dynamic
// batching, same requests and model; latency, throughput, status codes and server RSS go to
// results/serve.json ("load").
// Usage: node --import tsx scripts/load-test.ts --model DIR [--duration 60] [--warmup 10] [--connections 32] [--max-batch 16] [--threshold 0.9]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { encodePng } from '../src/data/png.js';
import { veExample, captionExample } from '../src/data/sceneworld.js';
import { describeModel, startServer, updateServeResults, type ServerProcess } from './serveHarness.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string' }, duration: { type: 'string', default: '60' }, warmup: { type: 'string', default: '10' },
    connections: { type: 'string', default: '32' }, 'max-batch': { type: 'string', default: '16' }, 'max-wait-ms': { type: 'string', default: '5' },
    threshold: { type: 'string', default: '0.9' }, examples: { type: 'string', default: '64' },
  },
});
if (!values.model) throw new Error('usage: node --import tsx scripts/load-test.ts --model DIR [--duration 60] [--connections 32] [--max-batch 16]');
const modelDirectory = values.model;
const [duration, warmup, connections, maxBatch, examples] = (['duration', 'warmup', 'connections', 'max-batch', 'examples'] as const).map((name) => {
  const value = Number(values[name]);
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} must be a positive integer (got ${values[name]})`);
  return value;
}) as [number, number, number, number, number];
const threshold = Number(values.threshold);
const maxWaitMs = Number(values['max-wait-ms']);
const model = describeModel(modelDirectory);

/** Distinct SceneWorld test requests, cycled by every client; one options set so all may batch together. */
function requestBodies(): autocannon.Request[] {
  const thresholds = { imageThreshold: threshold, textThreshold: threshold, decoderThreshold: threshold };
  const options = { split: 'test' as const, seed: 1, imageSize: model.imageSize as number };
  return Array.from({ length: examples }, (_, index) => {
    const example = model.task === 've' ? veExample(index, options) : captionExample(index, options);
    const body = { image: encodePng(example.image).toString('base64'), ...('hypothesis' in example ? { hypothesis: example.hypothesis } : {}), ...thresholds };
    return { method: 'POST', path: model.task === 've' ? '/v1/entail' : '/v1/caption', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
  });
}

function residentMegabytes(server: ServerProcess): number {
  const kilobytes = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${server.child.pid}/status`, 'utf8'))?.[1]);
  return kilobytes / 1024;
}

async function meanBatchSize(server: ServerProcess): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const read = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
  return read('mue_batch_size_sum') / read('mue_batch_size_count');
}

async function run(url: string, requests: autocannon.Request[], seconds: number): Promise<autocannon.Result> {
  return autocannon({ url, connections, duration: seconds, requests, timeout: 30 });
}

async function measure(label: string, serverArgs: string[], requests: autocannon.Request[]) {
  const server = await startServer(['--model', modelDirectory, ...serverArgs]);
  try {
    console.log(`${label}: warm-up ${warmup} s`);
    await run(server.url, requests, warmup);
    const rssAfterWarmupMb = residentMegabytes(server);
    console.log(`${label}: ${connections} clients for ${duration} s`);
    const result = await run(server.url, requests, duration);
    const rssAfterRunMb = residentMegabytes(server);
    const statusCounts: Record<string, number> = {};
    for (const [code, { count }] of Object.entries(result.statusCodeStats ?? {})) statusCounts[code] = count;
    const unintended5xx = Object.entries(statusCounts).filter(([code]) => code.startsWith('5') && code !== '503').reduce((sum, [, count]) => sum + count, 0);
    const summary = {
      serverArgs: serverArgs.join(' '),
      requests: result.requests.total, throughputPerSecond: result.requests.total / result.duration,
      latencyMs: { p50: result.latency.p50, p99: result.latency.p99, mean: result.latency.mean, max: result.latency.max },
      statusCounts, unintended5xx, errors: result.errors, timeouts: result.timeouts,
      meanBatchSize: await meanBatchSize(server),
      rssMb: { afterWarmup: rssAfterWarmupMb, afterRun: rssAfterRunMb, change: rssAfterRunMb / rssAfterWarmupMb - 1 },
    };
    console.log(`${label}: ${summary.throughputPerSecond.toFixed(1)} req/s, p50 ${summary.latencyMs.p50} ms, p99 ${summary.latencyMs.p99} ms, `
      + `mean batch ${summary.meanBatchSize.toFixed(2)}, RSS ${rssAfterWarmupMb.toFixed(0)} -> ${rssAfterRunMb.toFixed(0)} MB, status ${JSON.stringify(statusCounts)}`);
    return summary;
  } finally {
    const code = await server.stop();
    if (code !== 0) console.error(`${label}: server exited with code ${code}:\n${server.output()}`);
  }
}

async function main(): Promise<void> {
  const requests = requestBodies();
  const batch1 = await measure('batch 1', ['--max-batch', '1', '--max-wait-ms', '0'], requests);
  const batched = await measure(`batch ≤ ${maxBatch}`, ['--max-batch', String(maxBatch), '--max-wait-ms', String(maxWaitMs)], requests);
  const throughputRatio = batched.throughputPerSecond / batch1.throughputPerSecond;
  const checks = {
    noUnintended5xx: batch1.unintended5xx === 0 && batched.unintended5xx === 0,
    throughputAtLeast3x: throughputRatio >= 3,
    rssWithin10Percent: Math.abs(batched.rssMb.change) <= 0.1 && Math.abs(batch1.rssMb.change) <= 0.1,
  };
  updateServeResults('load', {
    date: new Date().toISOString(), model, connections, durationSeconds: duration, warmupSeconds: warmup, distinctRequests: examples,
    thresholds: threshold, batch1, batched, throughputRatio, target: { throughputRatio: 3, rssChange: 0.1 }, checks,
  });
  console.log(`throughput with batching / batch 1: ${throughputRatio.toFixed(2)}x (target ≥ 3x); checks ${JSON.stringify(checks)}`);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.stack : String(error));
  process.exitCode = 1;
});
