// Reliability of `mue serve` (issue 14), each part against its own server process:
// - fuzz: malformed requests (scripts/fuzz.ts) and protocol-level ones; all must get a JSON 4xx;
// - slow clients: 200 stalled connections of five kinds; all must get 408 or be closed within the
//   configured header/body timeout while the server keeps answering;
// - SIGTERM under load: a burst of requests fully written before the signal (plus stalled clients),
//   and keep-alive clients sending continuously; answered / 503 / no answer (reset) are counted,
//   and the drain must end within its bound.
// The model is models/ve-small (MUE_RELIABILITY_MODEL overrides it).
import { connect, type Socket } from 'node:net';
import { encodePng } from '../../src/data/png.js';
import { veExample } from '../../src/data/sceneworld.js';
import { FUZZ_MAX_BODY_BYTES, malformedRequests, protocolRequests, sendAll, sendRaw, stillHealthy } from '../fuzz.js';
import { describeModel, jsonError, rawExchange, rawRequest, startServer, type RawAnswer } from '../serveHarness.js';

const MODEL = process.env.MUE_RELIABILITY_MODEL ?? 'models/ve-small';
const FUZZ_COUNT = 10_000;
const STALLED_CLIENTS = 200;
const HEADERS_TIMEOUT_MS = 2000;
const BODY_TIMEOUT_MS = 4000;
/** A 408 may come this much after the deadline: the timeout check interval (100 ms here) plus event-loop latency on two shared cores. */
const LATENESS_ALLOWED_MS = 1000;
const BURST_REQUESTS = 172;
const BURST_ROUNDS = 3;
const LOAD_CLIENTS = 32;
const DRAIN_TIMEOUT_MS = 10_000;

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function entailBody(index: number): string {
  const example = veExample(index, { split: 'test', seed: 1, imageSize: 64 });
  return JSON.stringify({ image: encodePng(example.image).toString('base64'), hypothesis: example.hypothesis });
}

const entailRequest = (body: string) => rawRequest('POST', '/v1/entail', body, { 'content-type': 'application/json' });

/** How an answer counts: answered (2xx), refused with 503 + Retry-After, another status, or none (reset / closed unanswered). */
function outcomeOf(answer: RawAnswer): 'answered' | 'refused503' | 'otherStatus' | 'noAnswer' {
  if (answer.answeredAfterMs === undefined) return 'noAnswer';
  if (answer.status >= 200 && answer.status < 300) return 'answered';
  if (answer.status === 503 && /^retry-after:/im.test(answer.headers) && jsonError(answer) !== undefined) return 'refused503';
  return 'otherStatus';
}

function tally<T extends string>(items: T[]): Record<T, number> {
  const counts = {} as Record<T, number>;
  for (const item of items) counts[item] = (counts[item] ?? 0) + 1;
  return counts;
}

export async function fuzz(): Promise<Record<string, unknown>> {
  const server = await startServer(['--model', MODEL, '--max-body-bytes', String(FUZZ_MAX_BODY_BYTES)]);
  try {
    const started = performance.now();
    const outcome = await sendAll(server.url, malformedRequests(FUZZ_COUNT, 1), 16);
    const protocol = await sendRaw(server.url, protocolRequests());
    const seconds = (performance.now() - started) / 1000;
    const healthyAfter = await stillHealthy(server.url);
    const exitCode = await server.stop();
    const failures = outcome.failures.length + protocol.failures.length;
    return {
      requests: FUZZ_COUNT, protocolRequests: protocolRequests().length, seconds, byStatus: outcome.byStatus, protocolByKind: protocol.byKind,
      notJson4xx: failures, firstFailures: [...outcome.failures, ...protocol.failures].slice(0, 10), healthyAfter, exitCode,
      passed: failures === 0 && healthyAfter && exitCode === 0,
    };
  } finally {
    await server.stop();
  }
}

/** The five ways a client can stall, with the deadline that must end each. */
function stalledRequests(): Array<{ kind: string; bytes: Buffer; deadlineMs: number }> {
  const body = entailBody(0);
  const json = entailRequest(body);
  const boundary = 'stalled';
  const multipart = rawRequest('POST', '/v1/entail', `--${boundary}\r\ncontent-disposition: form-data; name="image"; filename="a.png"\r\ncontent-type: image/png\r\n\r\n${'x'.repeat(2000)}`, { 'content-type': `multipart/form-data; boundary=${boundary}` });
  return [
    { kind: 'nothing sent', bytes: Buffer.alloc(0), deadlineMs: HEADERS_TIMEOUT_MS },
    { kind: 'half the headers', bytes: Buffer.from('POST /v1/entail HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-ty'), deadlineMs: HEADERS_TIMEOUT_MS },
    { kind: 'half a JSON body', bytes: json.subarray(0, json.length - Math.floor(body.length / 2)), deadlineMs: BODY_TIMEOUT_MS },
    { kind: 'unfinished chunked body', bytes: Buffer.from('POST /v1/entail HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n10\r\n{"hypothesis":"a\r\n'), deadlineMs: BODY_TIMEOUT_MS },
    // Content-Length promises more than is sent: the multipart parser waits inside the handler.
    { kind: 'unfinished multipart', bytes: Buffer.concat([multipart.subarray(0, multipart.indexOf('content-length:')), Buffer.from(`content-length: 100000\r\n\r\n`), multipart.subarray(multipart.indexOf('\r\n\r\n') + 4)]), deadlineMs: BODY_TIMEOUT_MS },
  ];
}

export async function slowClients(): Promise<Record<string, unknown>> {
  const server = await startServer(['--model', MODEL, '--headers-timeout-ms', String(HEADERS_TIMEOUT_MS), '--body-timeout-ms', String(BODY_TIMEOUT_MS)]);
  try {
    const port = Number(new URL(server.url).port);
    const kinds = stalledRequests();
    const stalled = Array.from({ length: STALLED_CLIENTS }, (_, index) => {
      const { kind, bytes, deadlineMs } = kinds[index % kinds.length]!;
      return rawExchange(port, bytes, { waitMs: deadlineMs + 10_000 }).then((answer) => ({ kind, deadlineMs, answer }));
    });
    await delay(500);
    // While 200 clients stall, a normal request is answered.
    const during = await rawExchange(port, entailRequest(entailBody(1)), { untilClose: false, waitMs: 10_000 });
    const results = await Promise.all(stalled);
    const byKind: Record<string, Record<string, unknown>> = {};
    let late = 0;
    for (const kind of kinds) {
      const mine = results.filter((result) => result.kind === kind.kind);
      const closedAfter = mine.map((result) => result.answer.closedAfterMs ?? Infinity);
      const lateHere = closedAfter.filter((ms) => ms > kind.deadlineMs + LATENESS_ALLOWED_MS).length;
      late += lateHere;
      byKind[kind.kind] = {
        clients: mine.length, deadlineMs: kind.deadlineMs, json408: mine.filter((result) => result.answer.status === 408 && jsonError(result.answer) !== undefined).length,
        closedWithoutAnswer: mine.filter((result) => result.answer.status === 0 && result.answer.closedAfterMs !== undefined).length,
        closedAfterMs: { min: Math.min(...closedAfter), max: Math.max(...closedAfter) }, lateOrOpen: lateHere,
      };
    }
    const healthyAfter = await stillHealthy(server.url);
    const stopStarted = performance.now();
    const exitCode = await server.stop();
    return {
      stalledClients: STALLED_CLIENTS, headersTimeoutMs: HEADERS_TIMEOUT_MS, bodyTimeoutMs: BODY_TIMEOUT_MS, latenessAllowedMs: LATENESS_ALLOWED_MS, byKind,
      normalRequestWhileStalled: { status: during.status, timeMs: during.answeredAfterMs }, healthyAfter, exitCode, stopMs: performance.now() - stopStarted,
      passed: late === 0 && during.status === 200 && healthyAfter && exitCode === 0,
    };
  } finally {
    await server.stop();
  }
}

/** SIGTERM after a burst of requests has been fully written, with stalled clients connected; BURST_ROUNDS rounds, a fresh server each. */
export async function sigtermBurst(): Promise<Record<string, unknown>> {
  const rounds: Array<Awaited<ReturnType<typeof sigtermBurstRound>>> = [];
  for (let round = 0; round < BURST_ROUNDS; round++) rounds.push(await sigtermBurstRound());
  const total = (outcome: string) => rounds.reduce((sum, round) => sum + ((round.outcomes as Record<string, number>)[outcome] ?? 0), 0);
  return {
    rounds: BURST_ROUNDS, requestsPerRound: BURST_REQUESTS,
    total: { answered: total('answered'), refused503: total('refused503'), otherStatus: total('otherStatus'), noAnswer: total('noAnswer') },
    maxShutdownMs: Math.max(...rounds.map((round) => round.shutdownMs)), perRound: rounds,
    passed: rounds.every((round) => round.passed),
  };
}

async function sigtermBurstRound() {
  const server = await startServer(['--model', MODEL, '--drain-timeout-ms', String(DRAIN_TIMEOUT_MS)]);
  const port = Number(new URL(server.url).port);
  const bodies = Array.from({ length: 16 }, (_, index) => entailRequest(entailBody(index)));
  const stalledRequest = bodies[0]!.subarray(0, bodies[0]!.length - 100);
  const stalled = Array.from({ length: 20 }, () => rawExchange(port, stalledRequest, { waitMs: DRAIN_TIMEOUT_MS + 30_000 }));
  let written = 0;
  let allWritten!: () => void;
  const writtenPromise = new Promise<void>((resolve) => { allWritten = resolve; });
  const burst = Array.from({ length: BURST_REQUESTS }, (_, index) => rawExchange(port, bodies[index % bodies.length]!, {
    waitMs: DRAIN_TIMEOUT_MS + 30_000, untilClose: false, onWritten: () => { if (++written === BURST_REQUESTS) allWritten(); },
  }));
  await writtenPromise;
  await delay(20); // loopback: the bytes are in the server's socket buffers
  const signalled = performance.now();
  const exitCode = await server.stop();
  const shutdownMs = performance.now() - signalled;
  const answers = await Promise.all(burst);
  const stalledAnswers = await Promise.all(stalled);
  const outcomes = tally(answers.map(outcomeOf));
  return {
    outcomes, stalledClients: stalled.length,
    stalledClosed: stalledAnswers.filter((answer) => answer.closedAfterMs !== undefined).length,
    drainTimeoutMs: DRAIN_TIMEOUT_MS, shutdownMs, exitCode, serverLog: server.output().split('\n').filter((line) => /drained|stopped/.test(line)),
    passed: (outcomes.noAnswer ?? 0) === 0 && (outcomes.otherStatus ?? 0) === 0 && shutdownMs < DRAIN_TIMEOUT_MS + 3000 && exitCode === 0,
  };
}

interface LoadRecord { beforeSignal: boolean; outcome: ReturnType<typeof outcomeOf> | 'refused'; status?: number }

/** One keep-alive client: sends requests back to back, reconnecting after `connection: close` (after Retry-After seconds when told so), until told to stop. */
async function keepAliveClient(port: number, requests: Buffer[], state: { signalledAt: number; stop: boolean }, records: LoadRecord[]): Promise<void> {
  let next = 0;
  while (!state.stop) {
    const socket: Socket = connect(port, '127.0.0.1');
    socket.on('error', () => {});
    let buffered = Buffer.alloc(0);
    let waiter: (() => void) | undefined;
    let closed = false;
    socket.on('data', (chunk) => { buffered = Buffer.concat([buffered, chunk]); waiter?.(); });
    socket.on('close', () => { closed = true; waiter?.(); });
    const connected = await new Promise<boolean>((resolve) => { socket.once('connect', () => resolve(true)); socket.once('close', () => resolve(false)); });
    if (!connected) {
      records.push({ beforeSignal: performance.now() < state.signalledAt, outcome: 'refused' });
      if (performance.now() >= state.signalledAt) return;
      continue;
    }
    while (!state.stop && !closed) {
      const writtenAt = await new Promise<number>((resolve) => socket.write(requests[next++ % requests.length]!, () => resolve(performance.now())));
      const beforeSignal = writtenAt < state.signalledAt;
      // Wait for one complete response (no pipelining, so nothing follows it).
      let answer: { status: number; headers: string; complete: boolean } = { status: 0, headers: '', complete: false };
      for (;;) {
        const text = buffered.toString('latin1');
        const split = text.indexOf('\r\n\r\n');
        if (split >= 0) {
          const headers = text.slice(0, split);
          const length = Number(/^content-length: *(\d+)/im.exec(headers)?.[1] ?? 0);
          if (Buffer.byteLength(text.slice(split + 4), 'latin1') >= length) {
            answer = { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(headers)?.[1] ?? 0), headers, complete: true };
            buffered = Buffer.alloc(0);
            break;
          }
        }
        if (closed) break;
        await new Promise<void>((resolve) => { waiter = resolve; });
        waiter = undefined;
      }
      const outcome = !answer.complete ? 'noAnswer' : answer.status >= 200 && answer.status < 300 ? 'answered'
        : answer.status === 503 && /^retry-after:/im.test(answer.headers) ? 'refused503' : 'otherStatus';
      records.push({ beforeSignal, outcome, ...(outcome === 'otherStatus' ? { status: answer.status } : {}) });
      const retryAfterSeconds = Number(/^retry-after: *(\d+)/im.exec(answer.headers)?.[1] ?? 0);
      if (retryAfterSeconds > 0) await delay(retryAfterSeconds * 1000);
      if (!answer.complete || /^connection: *close/im.test(answer.headers)) break;
    }
    socket.destroy();
  }
}

/** SIGTERM while keep-alive clients send continuously; requests are split by whether their bytes were written before the signal. */
export async function sigtermContinuous(): Promise<Record<string, unknown>> {
  const server = await startServer(['--model', MODEL, '--drain-timeout-ms', String(DRAIN_TIMEOUT_MS)]);
  const port = Number(new URL(server.url).port);
  const requests = Array.from({ length: 16 }, (_, index) => entailRequest(entailBody(index)));
  const state = { signalledAt: Infinity, stop: false };
  const records: LoadRecord[] = [];
  const clients = Array.from({ length: LOAD_CLIENTS }, () => keepAliveClient(port, requests, state, records));
  await delay(3000);
  state.signalledAt = performance.now();
  const exitCode = await server.stop();
  const shutdownMs = performance.now() - state.signalledAt;
  state.stop = true;
  await Promise.all(clients);
  const before = tally(records.filter((record) => record.beforeSignal).map((record) => record.outcome));
  const after = tally(records.filter((record) => !record.beforeSignal).map((record) => record.outcome));
  return {
    clients: LOAD_CLIENTS, loadSecondsBeforeSignal: 3, writtenBeforeSignal: before, writtenAfterSignal: after,
    otherStatuses: tally(records.filter((record) => record.status !== undefined).map((record) => String(record.status))), drainTimeoutMs: DRAIN_TIMEOUT_MS, shutdownMs, exitCode,
    passed: (before.noAnswer ?? 0) === 0 && (before.otherStatus ?? 0) === 0 && (before.refused ?? 0) === 0 && shutdownMs < DRAIN_TIMEOUT_MS + 3000 && exitCode === 0,
  };
}

export async function run(): Promise<Record<string, unknown>> {
  const parts = { fuzz: await fuzz(), slowClients: await slowClients(), sigtermBurst: await sigtermBurst(), sigtermContinuous: await sigtermContinuous() };
  return { model: describeModel(MODEL), ...parts, passed: Object.values(parts).every((part) => part.passed === true) };
}
