// Fuzz: thousands of malformed requests against `mue serve` (plus protocol-level ones over raw
// sockets); every one must get a 4xx JSON error and the server must still answer a valid request
// afterwards. Results go to results/serve.json ("fuzz").
// Usage: node --import tsx scripts/fuzz.ts --model DIR [--count 10000] [--seed 1] [--concurrency 16]
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { encodePng } from '../src/data/png.js';
import { veExample } from '../src/data/sceneworld.js';
import { describeModel, jsonError, rawExchange, startServer, updateServeResults } from './serveHarness.js';

export interface FuzzRequest { kind: string; method: string; path: string; headers: Record<string, string>; body?: Buffer }

/** The server's --max-body-bytes during fuzzing: small, so oversized bodies are cheap to send. */
export const FUZZ_MAX_BODY_BYTES = 64 * 1024;

/** Deterministic 32-bit generator (mulberry32), so a failing request can be reproduced from its seed. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A PNG header declaring width × height, followed by junk: the pixel limit must refuse it before decoding. */
function pngHeader(width: number, height: number): Buffer {
  const header = Buffer.alloc(33);
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(header);
  header.writeUInt32BE(13, 8);
  header.write('IHDR', 12, 'latin1');
  header.writeUInt32BE(width, 16);
  header.writeUInt32BE(height, 20);
  header.set([8, 2, 0, 0, 0], 24);
  return header;
}

/** `count` malformed requests for a ve server, a mix of every kind of bad input. */
export function malformedRequests(count: number, seed: number): FuzzRequest[] {
  const next = random(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
  const bytes = (length: number) => Buffer.from(Array.from({ length }, () => Math.floor(next() * 256)));
  const png = encodePng(veExample(0, { split: 'test', seed: 1 }).image);
  const hypothesis = 'there is a red circle';
  const json = (kind: string, body: unknown, path = '/v1/entail'): FuzzRequest => ({ kind, method: 'POST', path, headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify(body)) });
  const image = (data: Buffer) => data.toString('base64');
  const form = (kind: string, parts: Array<{ name: string; value: Buffer | string; filename?: string }>, boundary = 'fuzzboundary'): FuzzRequest => {
    const chunks = parts.flatMap(({ name, value, filename }) => [
      Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="${name}"${filename ? `; filename="${filename}"\r\ncontent-type: image/png` : ''}\r\n\r\n`),
      Buffer.from(value), Buffer.from('\r\n'),
    ]);
    return { kind, method: 'POST', path: '/v1/entail', headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, body: Buffer.concat([...chunks, Buffer.from(`--${boundary}--\r\n`)]) };
  };
  const badThresholds = [2, -1.5, 1e9, 'abc', '', null, true, [], {}, 'NaN', '1e400', '0x1', '0b1', '  0.5  ', '1e-1', 'Infinity', '+0.5'];
  const generators: Array<() => FuzzRequest> = [
    () => json('not an image', { image: image(bytes(1 + Math.floor(next() * 2000))), hypothesis }),
    () => json('truncated image', { image: image(png.subarray(0, 1 + Math.floor(next() * (png.length - 20)))), hypothesis }),
    () => {
      const corrupt = Buffer.from(png);
      for (let flips = 0; flips < 8; flips++) corrupt[33 + Math.floor(next() * (corrupt.length - 33))] ^= 0xff;
      return json('corrupted image', { image: image(corrupt), hypothesis });
    },
    () => json('image with a huge declared size', { image: image(Buffer.concat([pngHeader(60000 + Math.floor(next() * 1e5), 60000), bytes(64)])), hypothesis }),
    () => json('oversized body', { image: 'A'.repeat(FUZZ_MAX_BODY_BYTES + Math.floor(next() * 1000)), hypothesis }),
    () => form('oversized upload', [{ name: 'hypothesis', value: hypothesis }, { name: 'image', value: bytes(FUZZ_MAX_BODY_BYTES + 1 + Math.floor(next() * 1000)), filename: 'big.png' }]),
    () => json('missing image', { hypothesis }),
    () => json('missing hypothesis', { image: image(png) }),
    () => json('empty hypothesis', { image: image(png), hypothesis: pick(['', '   ', '...', '?!']) }),
    () => json('overlong hypothesis', { image: image(png), hypothesis: Array.from({ length: 17 + Math.floor(next() * 200) }, () => 'circle').join(' ') }),
    () => json('hypothesis not a string', { image: image(png), hypothesis: pick([42, null, [], {}, true]) }),
    () => json('threshold out of range', { image: image(png), hypothesis, [pick(['imageThreshold', 'textThreshold', 'jointThreshold', 'decoderThreshold'])]: pick(badThresholds) }),
    () => json('unknown field', { image: image(png), hypothesis, [pick(['threshold', 'imagethreshold', '__proto__x', 'beamSize'])]: 1 }),
    () => json('bad base64', { image: pick(['***', 'abc', 'data:image/png;base64,@@@@', 'aGVsbG8=garbage']), hypothesis }),
    () => json('image not a string', { image: pick([1, [1, 2], { data: 'x' }, true]), hypothesis }),
    () => json('body not an object', pick([[1, 2], 'text', 3, null, true])),
    () => ({ kind: 'malformed JSON', method: 'POST', path: '/v1/entail', headers: { 'content-type': 'application/json' }, body: Buffer.from(pick(['{', '{"image":', '{"a":1,}', 'nul', '{"hypothesis": "x"']) + bytes(Math.floor(next() * 8)).toString('latin1')) }),
    () => ({ kind: 'prototype poisoning', method: 'POST', path: '/v1/entail', headers: { 'content-type': 'application/json' }, body: Buffer.from('{"__proto__": {"x": 1}, "hypothesis": "a"}') }),
    () => ({ kind: 'empty JSON body', method: 'POST', path: '/v1/entail', headers: { 'content-type': 'application/json' }, body: Buffer.alloc(0) }),
    () => ({ kind: 'wrong content type', method: 'POST', path: '/v1/entail', headers: { 'content-type': pick(['text/plain', 'application/xml', 'image/png', 'application/x-www-form-urlencoded', 'application/octet-stream']) }, body: png }),
    () => ({ kind: 'no content type', method: 'POST', path: '/v1/entail', headers: {}, body: bytes(100) }),
    () => ({ kind: 'multipart without boundary', method: 'POST', path: '/v1/entail', headers: { 'content-type': 'multipart/form-data' }, body: bytes(200) }),
    () => ({ kind: 'truncated multipart', method: 'POST', path: '/v1/entail', headers: { 'content-type': 'multipart/form-data; boundary=b' }, body: Buffer.from(`--b\r\ncontent-disposition: form-data; name="image"; filename="x.png"\r\n\r\n${png.subarray(0, 100).toString('latin1')}`, 'latin1') }),
    () => form('multipart file under the wrong name', [{ name: 'picture', value: png, filename: 'x.png' }, { name: 'hypothesis', value: hypothesis }]),
    () => form('multipart with two files', [{ name: 'image', value: png, filename: 'a.png' }, { name: 'image', value: png, filename: 'b.png' }, { name: 'hypothesis', value: hypothesis }]),
    () => form('multipart threshold out of range', [{ name: 'image', value: png, filename: 'a.png' }, { name: 'hypothesis', value: hypothesis }, { name: 'textThreshold', value: String(pick(badThresholds)) }]),
    () => form('multipart hypothesis sent as a file', [{ name: 'image', value: png, filename: 'a.png' }, { name: 'hypothesis', value: hypothesis, filename: 'h.txt' }]),
    () => {
      // Written as text: JSON.stringify would itself overflow on deep nesting.
      const depth = 1000 + Math.floor(next() * 50_000);
      const field = pick(['imageThreshold', 'decoderThreshold', 'hypothesis']);
      const body = `{"image":"${image(png)}",${field === 'hypothesis' ? '' : `"hypothesis":"${hypothesis}",`}"${field}":${'['.repeat(depth)}0.5${']'.repeat(depth)}}`;
      return { kind: 'deeply nested value', method: 'POST', path: '/v1/entail', headers: { 'content-type': 'application/json' }, body: Buffer.from(body) };
    },
    () => ({ ...json('compressed body', { image: image(png), hypothesis }), headers: { 'content-type': 'application/json', 'content-encoding': pick(['gzip', 'br', 'deflate', 'zstd', 'x-unknown', 'gzip, identity']) } }),
    () => form('multipart overlong field', [{ name: 'image', value: png, filename: 'a.png' }, { name: 'hypothesis', value: 'x'.repeat(2000) }]),
    () => form('multipart not an image', [{ name: 'image', value: bytes(500), filename: 'a.png' }, { name: 'hypothesis', value: hypothesis }]),
    () => json('caption on a ve model', { image: image(png) }, '/v1/caption'),
    () => ({ kind: 'bad example index', method: 'GET', path: `/v1/example?index=${encodeURIComponent(pick(['-1', 'abc', '1e3', '99999999999', '', '1.5']))}`, headers: {} }),
    () => ({ kind: 'unknown route', method: pick(['GET', 'POST', 'PUT', 'DELETE']), path: pick(['/v1/entails', '/v2/entail', '/admin', '/v1/entail/../../etc/passwd']), headers: {} }),
    () => ({ kind: 'wrong method', method: pick(['GET', 'PUT', 'DELETE', 'PATCH']), path: pick(['/v1/entail', '/v1/caption']), headers: {} }),
  ];
  return Array.from({ length: count }, (_, index) => generators[index % generators.length]!());
}

/** Requests fetch cannot send (no Host, CONNECT, `*`, broken framing, …), as raw bytes; each must get a JSON 4xx. */
export function protocolRequests(): Array<{ kind: string; bytes: Buffer }> {
  const raw = (kind: string, text: string) => ({ kind, bytes: Buffer.from(text, 'latin1') });
  const json = '{"hypothesis":"a"}';
  return [
    raw('no Host', 'GET /healthz HTTP/1.1\r\n\r\n'),
    raw('no Host on a POST', `POST /v1/entail HTTP/1.1\r\ncontent-type: application/json\r\ncontent-length: ${json.length}\r\n\r\n${json}`),
    raw('Expect: teapot', 'GET /healthz HTTP/1.1\r\nhost: x\r\nexpect: teapot\r\n\r\n'),
    raw('Expect: 200-ok', `POST /v1/entail HTTP/1.1\r\nhost: x\r\nexpect: 200-ok\r\ncontent-type: application/json\r\ncontent-length: ${json.length}\r\n\r\n${json}`),
    raw('CONNECT', 'CONNECT example.com:443 HTTP/1.1\r\nhost: example.com:443\r\n\r\n'),
    raw('target *', 'GET * HTTP/1.1\r\nhost: x\r\n\r\n'),
    raw('OPTIONS *', 'OPTIONS * HTTP/1.1\r\nhost: x\r\n\r\n'),
    raw('absolute-form target', 'GET http://example.com/ HTTP/1.1\r\nhost: example.com\r\n\r\n'),
    raw('not HTTP', 'HELLO\r\n\r\n'),
    raw('HTTP/2 preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
    raw('unknown HTTP version', 'GET / HTTP/9.9\r\nhost: x\r\n\r\n'),
    raw('bad Content-Length', 'POST /v1/entail HTTP/1.1\r\nhost: x\r\ncontent-length: abc\r\n\r\n'),
    raw('two different Content-Lengths', `POST /v1/entail HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 5\r\ncontent-length: ${json.length}\r\n\r\n${json}`),
    raw('Content-Length and chunked', `POST /v1/entail HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${json.length}\r\ntransfer-encoding: chunked\r\n\r\n${json}`),
    raw('bad chunk size', 'POST /v1/entail HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n'),
    raw('header without colon', 'GET /healthz HTTP/1.1\r\nhost: x\r\nbroken header\r\n\r\n'),
    raw('control character in a header', 'GET /healthz HTTP/1.1\r\nhost: x\r\nx-a: b\x01c\r\n\r\n'),
    raw('huge headers', `GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`),
    raw('bad percent escape', 'GET /v1/example?index=%zz HTTP/1.1\r\nhost: x\r\n\r\n'),
    raw('gzip body', `POST /v1/entail HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-encoding: gzip\r\ncontent-length: ${json.length}\r\n\r\n${json}`),
  ];
}

/** Sends each protocol-level case on its own connection; a failure is anything but a 4xx with a JSON {error} body. */
export async function sendRaw(url: string, requests: Array<{ kind: string; bytes: Buffer }>): Promise<FuzzOutcome> {
  const port = Number(new URL(url).port);
  const outcome: FuzzOutcome = { byStatus: {}, byKind: {}, failures: [] };
  for (const request of requests) {
    const answer = await rawExchange(port, request.bytes, { waitMs: 5000, untilClose: false });
    outcome.byStatus[answer.status] = (outcome.byStatus[answer.status] ?? 0) + 1;
    outcome.byKind[request.kind] = { [answer.status]: 1 };
    if (answer.status < 400 || answer.status >= 500 || jsonError(answer) === undefined) {
      outcome.failures.push({ kind: request.kind, status: answer.status, body: `${answer.headers}\n${answer.body}`.slice(0, 300) });
    }
  }
  return outcome;
}

export interface FuzzOutcome { byStatus: Record<string, number>; byKind: Record<string, Record<string, number>>; failures: Array<{ kind: string; status: number; body: string }> }

/** Sends every request (`concurrency` at a time); a failure is anything but a 4xx with a JSON {error} body. */
export async function sendAll(url: string, requests: FuzzRequest[], concurrency: number): Promise<FuzzOutcome> {
  const outcome: FuzzOutcome = { byStatus: {}, byKind: {}, failures: [] };
  let nextIndex = 0;
  const worker = async () => {
    while (nextIndex < requests.length) {
      const request = requests[nextIndex++]!;
      let status = 0;
      let text = '';
      try {
        const response = await fetch(url + request.path, { method: request.method, headers: request.headers, body: request.body });
        status = response.status;
        text = await response.text();
      } catch (error) {
        text = `request failed: ${(error as Error).message}`;
      }
      outcome.byStatus[status] = (outcome.byStatus[status] ?? 0) + 1;
      const kind = (outcome.byKind[request.kind] ??= {});
      kind[status] = (kind[status] ?? 0) + 1;
      let message: unknown;
      try {
        message = (JSON.parse(text) as { error?: unknown }).error;
      } catch {
        message = undefined;
      }
      if (status < 400 || status >= 500 || typeof message !== 'string' || message.length === 0) outcome.failures.push({ kind: request.kind, status, body: text.slice(0, 300) });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return outcome;
}

/** After fuzzing: /healthz is ok and a valid request is answered. */
export async function stillHealthy(url: string): Promise<boolean> {
  const health = await fetch(`${url}/healthz`);
  const example = veExample(1, { split: 'test', seed: 1 });
  const answer = await fetch(`${url}/v1/entail`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ image: encodePng(example.image).toString('base64'), hypothesis: example.hypothesis }),
  });
  return health.ok && answer.ok && ['yes', 'no', 'maybe'].includes(((await answer.json()) as { answer: string }).answer);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { model: { type: 'string' }, count: { type: 'string', default: '10000' }, seed: { type: 'string', default: '1' }, concurrency: { type: 'string', default: '16' } } });
  if (!values.model) throw new Error('usage: node --import tsx scripts/fuzz.ts --model DIR (a ve model) [--count 10000] [--seed 1] [--concurrency 16]');
  const [count, seed, concurrency] = [Number(values.count), Number(values.seed), Number(values.concurrency)];
  const server = await startServer(['--model', values.model, '--max-body-bytes', String(FUZZ_MAX_BODY_BYTES)]);
  try {
    const started = performance.now();
    const outcome = await sendAll(server.url, malformedRequests(count, seed), concurrency);
    const seconds = (performance.now() - started) / 1000;
    const protocol = await sendRaw(server.url, protocolRequests());
    const healthyAfter = await stillHealthy(server.url);
    const exitCode = await server.stop();
    const summary = {
      date: new Date().toISOString(), model: describeModel(values.model), requests: count, seed, concurrency, seconds,
      all4xx: outcome.failures.length === 0, failures: outcome.failures.length, firstFailures: outcome.failures.slice(0, 10),
      byStatus: outcome.byStatus, byKind: outcome.byKind,
      protocolCases: { requests: protocolRequests().length, failures: protocol.failures, byKind: protocol.byKind },
      healthyAfter, gracefulExitCode: exitCode,
    };
    updateServeResults('fuzz', summary);
    console.log(`${count} malformed requests in ${seconds.toFixed(1)} s: status ${JSON.stringify(outcome.byStatus)}; `
      + `${outcome.failures.length} not answered with a 4xx JSON error; healthy afterwards: ${healthyAfter}; exit code ${exitCode}`);
    console.log(`${protocolRequests().length} protocol-level malformed requests: ${protocol.failures.length} not answered with a 4xx JSON error`);
    for (const failure of [...outcome.failures.slice(0, 10), ...protocol.failures]) console.log(`  ${failure.kind}: ${failure.status} ${failure.body}`);
    if (outcome.failures.length > 0 || protocol.failures.length > 0 || !healthyAfter) process.exitCode = 1;
  } finally {
    await server.stop();
  }
}

// Run only as a script: the server test imports the generator for a short fuzz run.
if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.stack : String(error));
    process.exitCode = 1;
  });
}
