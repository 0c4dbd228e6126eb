// Server hardening (issue 14): connection timeouts with short configured values, the bounded
// shutdown drain (in-flight requests answered, stalled clients closed, queued ones 503 at the
// deadline), JSON errors for malformed requests at the HTTP level (over raw sockets, since
// inject() bypasses Node's parser), strict thresholds and multipart parts, `mue serve` bounds.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Command } from 'commander';
import { registerServeCommand } from '../src/cli/commands/serve.js';
import { encodePng } from '../src/data/png.js';
import { veExample } from '../src/data/sceneworld.js';
import { MuEModel } from '../src/runtime/mueModel.js';
import { DEFAULT_LIMITS, buildServer, type MueServer, type ServeLimits } from '../src/serve/app.js';
import { protocolRequests, sendRaw, stillHealthy } from '../scripts/fuzz.js';
import { jsonError, rawExchange, startServer, type RawAnswer } from '../scripts/serveHarness.js';
import { saveRandomCheckpoint } from './helpers.js';

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The JSON {error} message of a raw answer (anything else fails the test). */
function errorOf(answer: RawAnswer): string {
  const message = jsonError(answer);
  assert.ok(message !== undefined, `a JSON {error} body: ${answer.headers}\n${answer.body}`);
  return message;
}

describe('server hardening', () => {
  const workDir = mkdtempSync(join(tmpdir(), 'mue-serve-hardening-'));
  const veDir = join(workDir, 've');
  let model: MuEModel;
  const servers: MueServer[] = [];
  const example = veExample(0, { split: 'test', seed: 1, imageSize: 32 });
  const png = encodePng(example.image);
  const jsonBody = JSON.stringify({ image: png.toString('base64'), hypothesis: 'a circle' });
  const post = (body: string, extraHeaders = '') => `POST /v1/entail HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extraHeaders}\r\n${body}`;

  const serve = async (limits: Partial<ServeLimits> = {}) => {
    const server = await buildServer(model, { ...DEFAULT_LIMITS, ...limits });
    servers.push(server);
    const url = await server.app.listen({ host: '127.0.0.1', port: 0 });
    return { server, url, port: Number(new URL(url).port) };
  };
  const queueDepth = async (url: string) => Number(/^mue_queue_depth (\d+)$/m.exec(await (await fetch(`${url}/metrics`)).text())?.[1]);

  before(async () => {
    await saveRandomCheckpoint(veDir, 've');
    model = await MuEModel.load(veDir);
  });
  after(async () => {
    for (const { app } of servers) await app.close();
    await model.dispose();
    rmSync(workDir, { recursive: true, force: true });
  });

  test('a client that stalls in its headers, its body or sends nothing gets a JSON 408 within the configured time; idle keep-alive connections close', async () => {
    const { port } = await serve({ headersTimeoutMs: 300, bodyTimeoutMs: 600, idleTimeoutMs: 200 });
    const slack = 600; // the timeout check runs every 15 ms here; the rest is event-loop latency on a busy, shared machine
    const [nothing, halfHeaders, halfBody] = await Promise.all([
      rawExchange(port, ''),
      rawExchange(port, 'POST /v1/entail HTTP/1.1\r\nHost: test\r\nContent-Ty'),
      rawExchange(port, post(jsonBody).slice(0, -100)),
    ]);
    for (const [name, answer, limitMs] of [['nothing sent', nothing, 300], ['half the headers', halfHeaders, 300], ['half the body', halfBody, 600]] as const) {
      assert.equal(answer.status, 408, `${name}: ${answer.headers}`);
      assert.match(errorOf(answer), /request not received in time \(headers within 300 ms, the whole request within 600 ms\)/);
      assert.ok(answer.closedAfterMs !== undefined && answer.closedAfterMs >= limitMs - 20 && answer.closedAfterMs <= limitMs + slack, `${name}: closed after ${answer.closedAfterMs} ms`);
    }
    // A complete request is answered; its keep-alive connection then closes after the idle timeout.
    const idle = await rawExchange(port, post(jsonBody));
    assert.equal(idle.status, 200, idle.body);
    // Node keeps an idle socket 1 s past the advertised keep-alive timeout, so a client reusing it at the last moment is not cut off.
    const idleMs = idle.closedAfterMs! - idle.answeredAfterMs!;
    assert.ok(idleMs >= 180 && idleMs <= 200 + 1000 + slack, `closed ${idleMs} ms after the answer`);
  });

  test('malformed requests get JSON errors: no Host, Expect: teapot, CONNECT, target *, unknown Content-Encoding, bad HTTP', async () => {
    const { port } = await serve();
    const cases: Array<[string, string, number, RegExp]> = [
      ['no Host', 'GET /healthz HTTP/1.1\r\n\r\n', 400, /Host header is missing/],
      ['Expect: teapot', 'GET /healthz HTTP/1.1\r\nHost: test\r\nExpect: teapot\r\n\r\n', 417, /unsupported Expect: "teapot"/],
      ['CONNECT', 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n', 405, /CONNECT is not supported/],
      ['GET *', 'GET * HTTP/1.1\r\nHost: test\r\n\r\n', 400, /request target must be a path starting with "\/" \(got "\*"\)/],
      ['OPTIONS *', 'OPTIONS * HTTP/1.1\r\nHost: test\r\n\r\n', 400, /request target must be a path/],
      ['absolute URL', 'GET http://elsewhere/ HTTP/1.1\r\nHost: test\r\n\r\n', 400, /request target must be a path/],
      ['gzip body', post(jsonBody, 'Content-Encoding: gzip\r\n'), 415, /content-encoding "gzip" is not supported/],
      ['unknown encoding', post(jsonBody, 'Content-Encoding: br, zstd\r\n'), 415, /content-encoding "br, zstd"/],
      ['not HTTP', 'HELLO THERE\r\n\r\n', 400, /malformed HTTP request/],
      ['bad Content-Length', 'POST /v1/entail HTTP/1.1\r\nHost: test\r\nContent-Length: abc\r\n\r\n', 400, /malformed HTTP request/],
      ['bad URL escape', 'GET /v1/example?index=%zz HTTP/1.1\r\nHost: test\r\n\r\n', 400, /index must be an integer/],
    ];
    for (const [name, request, status, message] of cases) {
      const answer = await rawExchange(port, request, { untilClose: false });
      assert.equal(answer.status, status, `${name}: ${answer.headers}\n${answer.body}`);
      assert.match(answer.headers, /content-type: application\/json/i, name);
      assert.match(errorOf(answer), message, name);
    }
    const identity = await rawExchange(port, post(jsonBody, 'Content-Encoding: identity\r\n'), { untilClose: false });
    assert.equal(identity.status, 200, `identity encoding is accepted: ${identity.body}`);
  });

  test('protocol-level fuzz cases (broken framing, huge headers, HTTP/2 preface, …) all get a JSON 4xx', async () => {
    const { url } = await serve();
    const outcome = await sendRaw(url, protocolRequests());
    assert.deepEqual(outcome.failures, []);
    assert.ok(await stillHealthy(url));
  });

  test('thresholds accept only plain decimals; a deeply nested value is a 400, not a stack overflow', async () => {
    const { server } = await serve();
    const image = png.toString('base64');
    // Bodies are written as text: JSON.stringify itself overflows on 100,000 levels of nesting.
    const nested = `${'['.repeat(100_000)}0.5${']'.repeat(100_000)}`;
    const entail = (fields: string) => server.app.inject({
      method: 'POST', url: '/v1/entail', headers: { 'content-type': 'application/json' }, payload: `{"image":"${image}",${fields}}`,
    });
    for (const value of ['"0x1"', '"0b1"', '"  0.5  "', '"1e-1"', '"Infinity"', '"+0.5"', '"0.5.1"', '""', '"."', nested, '{"value":0.5}', 'true', 'null']) {
      const response = await entail(`"hypothesis":"a circle","decoderThreshold":${value}`);
      assert.equal(response.statusCode, 400, `${value.slice(0, 30)}: ${response.body}`);
      assert.match(response.json().error, /decoderThreshold must be a number in \[-1, 1\] in plain decimal notation/);
    }
    const deep = await entail(`"hypothesis":${nested}`);
    assert.equal(deep.statusCode, 400, deep.body);
    assert.match(deep.json().error, /hypothesis must be a string/);
    for (const value of ['"0.5"', '"-1"', '"1"', '".25"', '0.5', '1e-1']) {
      const response = await entail(`"hypothesis":"a circle","decoderThreshold":${value}`);
      assert.equal(response.statusCode, 200, `${value}: ${response.body}`);
      assert.equal(response.json().telemetry.thresholds.decoderThreshold, Number(JSON.parse(value)));
    }
  });

  test('multipart: an image part without a filename is the image; a file part named hypothesis or a second image is a clear 400', async () => {
    const { server } = await serve();
    const form = (parts: Array<{ name: string; value: Buffer | string; filename?: string; type?: string }>) => {
      const boundary = 'hardening';
      const chunks = parts.flatMap(({ name, value, filename, type }) => [
        Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="${name}"${filename ? `; filename="${filename}"` : ''}${type ? `\r\ncontent-type: ${type}` : ''}\r\n\r\n`),
        Buffer.from(value), Buffer.from('\r\n'),
      ]);
      return server.app.inject({ method: 'POST', url: '/v1/entail', headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, payload: Buffer.concat([...chunks, Buffer.from(`--${boundary}--\r\n`)]) });
    };
    for (const type of ['image/png', undefined]) {
      const response = await form([{ name: 'image', value: png, type }, { name: 'hypothesis', value: 'a circle' }]);
      assert.equal(response.statusCode, 200, `image without filename, content-type ${type}: ${response.body}`);
    }
    const fileHypothesis = await form([{ name: 'image', value: png, filename: 'a.png' }, { name: 'hypothesis', value: 'a circle', filename: 'h.txt' }]);
    assert.equal(fileHypothesis.statusCode, 400, fileHypothesis.body);
    assert.match(fileHypothesis.json().error, /"hypothesis" must be a text field, not a file/);
    const twoImages = await form([{ name: 'image', value: png, filename: 'a.png' }, { name: 'image', value: png, filename: 'b.png' }, { name: 'hypothesis', value: 'a circle' }]);
    assert.equal(twoImages.statusCode, 400, twoImages.body);
    assert.match(twoImages.json().error, /more than one "image" part/);
  });

  test('shutdown: requests received before it are answered, later ones get 503 + Retry-After, a stalled upload is closed without holding the drain', async () => {
    const { server, url, port } = await serve({ maxWaitMs: 400, drainTimeoutMs: 2000, headersTimeoutMs: 60_000, bodyTimeoutMs: 60_000 });
    const stalled = rawExchange(port, post(jsonBody).slice(0, -50), { waitMs: 10_000 });
    const received = Array.from({ length: 3 }, () => rawExchange(port, post(jsonBody), { waitMs: 10_000 }));
    while (await queueDepth(url) < 3) await delay(5);
    const started = performance.now();
    const shutdown = server.shutDown();
    await delay(50);
    const late = await rawExchange(port, post(jsonBody), { waitMs: 5000 });
    const report = await shutdown;
    const seconds = (performance.now() - started) / 1000;
    for (const answer of await Promise.all(received)) {
      assert.equal(answer.status, 200, answer.body);
      assert.match(answer.headers, /connection: close/i);
    }
    assert.equal(late.status, 503);
    assert.match(late.headers, /retry-after: 1/i);
    assert.match(errorOf(late), /shutting down/);
    const stalledAnswer = await stalled;
    assert.ok(stalledAnswer.closedAfterMs !== undefined, 'the stalled client was disconnected');
    assert.equal(report.timedOut, false, 'a stalled upload does not hold the drain');
    assert.equal(report.forcedConnections, 1);
    assert.ok(seconds < 2, `shutdown took ${seconds.toFixed(2)} s (drain bound 2 s)`);
  });

  test('shutdown deadline: requests still queued get 503 + Retry-After, none is reset', async () => {
    const { server, url, port } = await serve({ maxWaitMs: 5000, drainTimeoutMs: 300 });
    const queued = Array.from({ length: 3 }, () => rawExchange(port, post(jsonBody), { waitMs: 10_000 }));
    while (await queueDepth(url) < 3) await delay(5);
    const report = await server.shutDown();
    assert.equal(report.abandonedQueued, 3);
    for (const answer of await Promise.all(queued)) {
      assert.equal(answer.status, 503, answer.headers);
      assert.match(answer.headers, /retry-after: 1/i);
      assert.match(errorOf(answer), /shutting down; this request was not run/);
    }
    assert.ok(report.timeMs < 300 + 1000, `drained in ${report.timeMs} ms`);
  });

  test('SIGTERM right after requests were written to a paused server: each is answered or gets 503 + Retry-After, none is reset', async () => {
    const server = await startServer(['--model', veDir]);
    const port = Number(new URL(server.url).port);
    const pid = server.child.pid!;
    // While the server is stopped, the kernel completes the connections and buffers their bytes in the accept queue.
    process.kill(pid, 'SIGSTOP');
    let written = 0;
    let allWritten!: () => void;
    const writtenPromise = new Promise<void>((resolve) => { allWritten = resolve; });
    const answers = Array.from({ length: 40 }, () => rawExchange(port, post(jsonBody), { waitMs: 30_000, untilClose: false, onWritten: () => { if (++written === 40) allWritten(); } }));
    await writtenPromise;
    process.kill(pid, 'SIGTERM');
    process.kill(pid, 'SIGCONT');
    const exitCode = await server.stop();
    const statuses = (await Promise.all(answers)).map((answer) => (answer.answeredAfterMs === undefined ? `no answer (${answer.errorCode})` : answer.status === 503 && /retry-after: 1/i.test(answer.headers) ? '503' : String(answer.status)));
    assert.deepEqual(statuses.filter((status) => status !== '200' && status !== '503'), [], `${statuses.join(', ')}\n${server.output()}`);
    assert.equal(exitCode, 0, server.output());
  });

  test('mue serve refuses out-of-range and non-decimal numeric options with one line and exit code 1', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--max-body-bytes', '1e20'], /^--max-body-bytes must be an integer in \[1024, 268435456\] \(got "1e20"\)$/],
      [['--threads', '1e9'], /^--threads must be an integer in \[1, 256\] \(got "1e9"\)$/],
      [['--port', '0x50'], /^--port must be an integer in \[0, 65535\]/],
      [['--port', '65536'], /^--port must be an integer in \[0, 65535\]/],
      [['--max-batch', '1025'], /^--max-batch must be an integer in \[1, 1024\]/],
      [['--max-queue', '-1'], /^--max-queue must be an integer in \[1, 100000\]/],
      [['--drain-timeout-ms', '600001'], /^--drain-timeout-ms must be an integer in \[0, 600000\]/],
      [['--idle-timeout-ms', '0'], /^--idle-timeout-ms must be an integer in \[1, 600000\]/],
      [['--headers-timeout-ms', '20000', '--body-timeout-ms', '10000'], /^--headers-timeout-ms \(20000\) must not exceed --body-timeout-ms \(10000\)$/],
    ];
    for (const [args, message] of cases) {
      const program = new Command().exitOverride();
      registerServeCommand(program);
      await assert.rejects(program.parseAsync(['serve', '--model', veDir, ...args], { from: 'user' }), { message }, args.join(' '));
    }
    // The real CLI: one `mue: …` line, exit code 1 (one process; each start costs seconds).
    const cli = join(import.meta.dirname, '..', 'src', 'cli', 'main.ts');
    const result = spawnSync(process.execPath, ['--import', 'tsx', cli, 'serve', '--model', veDir, '--max-body-bytes', '1e20'], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(result.status, 1, result.stderr);
    assert.equal(result.stderr.trim(), 'mue: --max-body-bytes must be an integer in [1024, 268435456] (got "1e20")');
  });
});
