// `mue serve`: the HTTP API with dynamic batching, metrics and the demo page; SIGTERM drains within a bounded time.
import type { Command } from 'commander';
import { MuEModel } from '../../runtime/mueModel.js';
import { DEFAULT_LIMITS, buildServer } from '../../serve/app.js';
import { addDecodingOptions, decodingFrom } from '../decodingOptions.js';

/** Upper bounds of the numeric options: past them a value is a typo or a resource hazard. */
export const SERVE_OPTION_BOUNDS = {
  port: [0, 65_535], maxBatch: [1, 1024], maxWaitMs: [0, 10_000], maxQueue: [1, 100_000], timeoutMs: [1, 600_000],
  maxBodyBytes: [1024, 256 * 1024 * 1024], maxPixels: [1, 100_000_000], threads: [1, 256],
  headersTimeoutMs: [1, 600_000], bodyTimeoutMs: [1, 3_600_000], idleTimeoutMs: [1, 600_000], drainTimeoutMs: [0, 600_000],
} as const satisfies Record<string, readonly [number, number]>;

/** A whole number in plain decimal digits within [minimum, maximum]: "0x10", "1e3" and "1e20" are refused. */
function boundedInteger(flag: string, [minimum, maximum]: readonly [number, number]) {
  return (value: string): number => {
    const parsed = Number(value);
    if (!/^\d{1,16}$/.test(value) || parsed < minimum || parsed > maximum) throw new Error(`${flag} must be an integer in [${minimum}, ${maximum}] (got "${value}")`);
    return parsed;
  };
}

const range = ([minimum, maximum]: readonly [number, number]) => `${minimum}–${maximum}`;

export function registerServeCommand(program: Command): void {
  const b = SERVE_OPTION_BOUNDS;
  addDecodingOptions(program
    .command('serve')
    .description('serve a model over HTTP (POST /v1/entail, /v1/caption; GET /, /browser/ (the model run in the page), /healthz, /readyz, /metrics)')
    .requiredOption('--model <dir>', 'model directory (checkpoint)')
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--port <n>', `port, ${range(b.port)} (0 = any free port; the address is printed)`, boundedInteger('--port', b.port), 8080)
    .option('--max-batch <n>', `requests run together at most, ${range(b.maxBatch)}`, boundedInteger('--max-batch', b.maxBatch), DEFAULT_LIMITS.maxBatch)
    .option('--max-wait-ms <ms>', `how long a request waits for others to join its batch, ${range(b.maxWaitMs)}`, boundedInteger('--max-wait-ms', b.maxWaitMs), DEFAULT_LIMITS.maxWaitMs)
    .option('--max-queue <n>', `requests waiting at most, ${range(b.maxQueue)}; more get 503 + Retry-After`, boundedInteger('--max-queue', b.maxQueue), DEFAULT_LIMITS.maxQueue)
    .option('--timeout-ms <ms>', `per-request deadline (queue + inference), ${range(b.timeoutMs)}; then 503`, boundedInteger('--timeout-ms', b.timeoutMs), DEFAULT_LIMITS.timeoutMs)
    .option('--max-body-bytes <n>', `largest request body / uploaded image, ${range(b.maxBodyBytes)}`, boundedInteger('--max-body-bytes', b.maxBodyBytes), DEFAULT_LIMITS.maxBodyBytes)
    .option('--max-pixels <n>', `largest image (width × height) before resizing, ${range(b.maxPixels)}`, boundedInteger('--max-pixels', b.maxPixels), DEFAULT_LIMITS.maxPixels)
    .option('--headers-timeout-ms <ms>', `a client must send its request headers within this time, ${range(b.headersTimeoutMs)}; else 408`, boundedInteger('--headers-timeout-ms', b.headersTimeoutMs), DEFAULT_LIMITS.headersTimeoutMs)
    .option('--body-timeout-ms <ms>', `a client must send its whole request (body included) within this time, ${range(b.bodyTimeoutMs)}; else 408`, boundedInteger('--body-timeout-ms', b.bodyTimeoutMs), DEFAULT_LIMITS.bodyTimeoutMs)
    .option('--idle-timeout-ms <ms>', `an idle keep-alive connection is closed after this time, ${range(b.idleTimeoutMs)}`, boundedInteger('--idle-timeout-ms', b.idleTimeoutMs), DEFAULT_LIMITS.idleTimeoutMs)
    .option('--drain-timeout-ms <ms>', `on SIGTERM/SIGINT, how long received requests may take to finish, ${range(b.drainTimeoutMs)}; then queued ones get 503 and stalled connections are closed`, boundedInteger('--drain-timeout-ms', b.drainTimeoutMs), DEFAULT_LIMITS.drainTimeoutMs)
    .option('--threads <n>', `ONNX Runtime intra-op threads, ${range(b.threads)}`, boundedInteger('--threads', b.threads)))
    .action(async (raw: Record<string, unknown>) => {
      const limits = {
        maxBatch: raw.maxBatch as number, maxWaitMs: raw.maxWaitMs as number, maxQueue: raw.maxQueue as number,
        timeoutMs: raw.timeoutMs as number, maxBodyBytes: raw.maxBodyBytes as number, maxPixels: raw.maxPixels as number,
        headersTimeoutMs: raw.headersTimeoutMs as number, bodyTimeoutMs: raw.bodyTimeoutMs as number,
        idleTimeoutMs: raw.idleTimeoutMs as number, drainTimeoutMs: raw.drainTimeoutMs as number,
      };
      if (limits.headersTimeoutMs > limits.bodyTimeoutMs) {
        throw new Error(`--headers-timeout-ms (${limits.headersTimeoutMs}) must not exceed --body-timeout-ms (${limits.bodyTimeoutMs})`);
      }
      // Signals are caught from here on: one arriving while the model loads, or between the
      // "listening" line and the end of this function, must start the drain, not kill the process.
      // A repeated signal must not kill the drain half-way either, so the listeners stay.
      let signalled: string | undefined;
      let onSignal = (signal: string) => { signalled ??= signal; };
      process.on('SIGTERM', (signal) => onSignal(signal));
      process.on('SIGINT', (signal) => onSignal(signal));
      const model = await MuEModel.load(raw.model as string, { threads: raw.threads as number | undefined });
      const { app, shutDown } = await buildServer(model, limits, { decoding: decodingFrom(raw), modelDirectory: raw.model as string });
      const address = await app.listen({ host: raw.host as string, port: raw.port as number });
      console.log(`mue serve: ${model.task} model ${raw.model as string} listening on ${address}`);
      await new Promise<void>((resolve) => {
        let stopping = false;
        onSignal = (signal: string) => {
          if (stopping) {
            console.log(`mue serve: ${signal} again, still draining (bounded by --drain-timeout-ms)`);
            return;
          }
          stopping = true;
          console.log(`mue serve: ${signal}, finishing in-flight requests (at most ${limits.drainTimeoutMs} ms)`);
          // shutDown() waits for the batch still running, so the model is never disposed under it.
          shutDown().then((report) => {
            console.log(`mue serve: drained in ${report.timeMs.toFixed(0)} ms${report.timedOut ? ` (deadline reached: ${report.abandonedQueued} queued requests answered 503)` : ''}`
              + `${report.forcedConnections > 0 ? `; closed ${report.forcedConnections} stalled connections` : ''}`);
            return model.dispose();
          }).then(resolve, (error: unknown) => {
            console.error(`mue serve: shutdown failed: ${error instanceof Error ? error.message : String(error)}`);
            process.exitCode = 1;
            resolve();
          });
        };
        if (signalled !== undefined) onSignal(signalled);
      });
      console.log('mue serve: stopped');
    });
}
