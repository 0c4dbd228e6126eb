// What the load, fuzz and reliability scripts (and the server tests) share: `mue serve` as a child
// process on 127.0.0.1 and a free port, the model they serve, results/serve.json, and raw-socket
// HTTP exchanges (for what fetch cannot send: stalled, malformed or unusual requests).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
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

export interface RawAnswer {
  /** 0 when no status line came back. */
  status: number;
  headers: string;
  body: string;
  /** Milliseconds from connecting until the response was complete (undefined: it never was). */
  answeredAfterMs: number | undefined;
  /** Milliseconds until the server closed the connection (undefined: still open after waitMs). */
  closedAfterMs: number | undefined;
  /** The connection failed with an error (ECONNRESET, EPIPE, ECONNREFUSED, …). */
  errorCode: string | undefined;
}

/** Splits what arrived into headers and body; `complete` once Content-Length bytes (or the last chunk) arrived. */
function parseResponse(bytes: Buffer): { headers: string; body: string; complete: boolean } {
  const text = bytes.toString('latin1');
  const split = text.indexOf('\r\n\r\n');
  if (split < 0) return { headers: text, body: '', complete: false };
  const headers = text.slice(0, split);
  const body = text.slice(split + 4);
  const length = /^content-length: *(\d+)/im.exec(headers)?.[1];
  const complete = length !== undefined ? Buffer.byteLength(body, 'latin1') >= Number(length) : /^transfer-encoding: *chunked/im.test(headers) && body.endsWith('0\r\n\r\n');
  return { headers, body, complete };
}

/**
 * Writes `data` (whole, or the bytes a test wants a stalled client to have sent) on a fresh
 * connection to 127.0.0.1:port and collects the answer until the server closes the connection or
 * `waitMs` passes; with `untilClose` false, until the response is complete. `onWritten` runs once
 * the bytes are handed to the kernel.
 */
export function rawExchange(port: number, data: string | Buffer, options: { waitMs?: number; untilClose?: boolean; onWritten?: () => void } = {}): Promise<RawAnswer> {
  const { waitMs = 2000, untilClose = true, onWritten } = options;
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const started = performance.now();
    const chunks: Buffer[] = [];
    let answeredAfterMs: number | undefined;
    let errorCode: string | undefined;
    let finished = false;
    const finish = (closedAfterMs: number | undefined) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      const { headers, body } = parseResponse(Buffer.concat(chunks));
      resolve({ status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(headers)?.[1] ?? 0), headers, body, answeredAfterMs, closedAfterMs, errorCode });
      socket.destroy();
    };
    const timer = setTimeout(() => finish(undefined), waitMs);
    socket.on('data', (chunk) => {
      chunks.push(chunk);
      if (answeredAfterMs === undefined && parseResponse(Buffer.concat(chunks)).complete) {
        answeredAfterMs = performance.now() - started;
        if (!untilClose) finish(undefined);
      }
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      errorCode ??= error.code ?? error.message;
    });
    socket.on('close', () => finish(performance.now() - started));
    socket.write(data, () => onWritten?.());
  });
}

/** The JSON {error} message of a raw answer, or undefined when the body is not such JSON. */
export function jsonError(answer: RawAnswer): string | undefined {
  const body = /^transfer-encoding: *chunked/im.test(answer.headers) ? answer.body.split('\r\n')[1] ?? '' : answer.body;
  try {
    const message = (JSON.parse(body) as { error?: unknown }).error;
    return typeof message === 'string' && message.length > 0 ? message : undefined;
  } catch {
    return undefined;
  }
}

/** An HTTP/1.1 request as raw bytes, with Host and Content-Length. */
export function rawRequest(method: string, path: string, body?: string | Buffer, headers: Record<string, string> = {}): Buffer {
  const lines = [`${method} ${path} HTTP/1.1`, 'host: 127.0.0.1', ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`)];
  if (body !== undefined) lines.push(`content-length: ${Buffer.byteLength(body)}`);
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), body === undefined ? Buffer.alloc(0) : Buffer.from(body)]);
}
