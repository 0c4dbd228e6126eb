// What the load and fuzz scripts (and the server tests) share: `mue serve` as a child process on
// 127.0.0.1 and a free port, the model they serve, and results/serve.json.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../src/model/atomicWrite.js';

export interface ServerProcess {
  url: string;
  child: ChildProcess;
  /** Everything the server printed so far (stdout and stderr). */
  output(): string;
  /** SIGTERM, then the exit code once the server has finished its in-flight requests. */
  stop(): Promise<number | null>;
}

const CLI = join(import.meta.dirname, '..', 'src', 'cli', 'main.ts');

export async function startServer(args: string[], startTimeoutMs = 60_000): Promise<ServerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'serve', '--host', '127.0.0.1', '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`mue serve did not start within ${startTimeoutMs} ms:\n${output}`)), startTimeoutMs);
    const read = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listening on (http:\/\/\S+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    };
    child.stdout!.on('data', read);
    child.stderr!.on('data', read);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`mue serve exited with code ${code} before listening:\n${output}`));
    });
  });
  return {
    url, child, output: () => output,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

export const SERVE_RESULTS = join(import.meta.dirname, '..', 'results', 'serve.json');

/** Sets one section of results/serve.json, keeping the others; the file is replaced atomically. */
export function updateServeResults(section: string, value: unknown): void {
  const results = existsSync(SERVE_RESULTS) ? JSON.parse(readFileSync(SERVE_RESULTS, 'utf8')) as Record<string, unknown> : {};
  results[section] = value;
  mkdirSync(join(SERVE_RESULTS, '..'), { recursive: true });
  writeFileAtomic(SERVE_RESULTS, `${JSON.stringify(results, null, 2)}\n`);
}

/** What a results file needs to say about the model served. */
export function describeModel(directory: string): Record<string, unknown> {
  const config = JSON.parse(readFileSync(join(directory, 'config.json'), 'utf8')) as Record<string, unknown>;
  const logPath = join(directory, 'train-log.jsonl');
  const weights = existsSync(logPath) ? `trained (${readFileSync(logPath, 'utf8').trim().split('\n').length} training log lines)` : 'random weights';
  const { task, dim, encoderLayers, decoderLayers, imageSize } = config;
  return { directory, task, weights, dim, encoderLayers, decoderLayers, imageSize };
}
