// `mue serve`: the HTTP API with dynamic batching, metrics and the demo page; SIGTERM finishes in-flight requests.
import type { Command } from 'commander';
import { MuEModel } from '../../runtime/mueModel.js';
import { DEFAULT_LIMITS, buildServer } from '../../serve/app.js';
import { addDecodingOptions, decodingFrom } from '../decodingOptions.js';
import { parseInteger } from '../options.js';

export function registerServeCommand(program: Command): void {
  addDecodingOptions(program
    .command('serve')
    .description('serve a model over HTTP (POST /v1/entail, /v1/caption; GET /, /browser/ (the model run in the page), /healthz, /readyz, /metrics)')
    .requiredOption('--model <dir>', 'model directory (checkpoint)')
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--port <n>', 'port (0 = any free port; the address is printed)', parseInteger('--port', 0), 8080)
    .option('--max-batch <n>', 'requests run together at most', parseInteger('--max-batch', 1), DEFAULT_LIMITS.maxBatch)
    .option('--max-wait-ms <ms>', 'how long a request waits for others to join its batch', parseInteger('--max-wait-ms', 0), DEFAULT_LIMITS.maxWaitMs)
    .option('--max-queue <n>', 'requests waiting at most; more get 503 + Retry-After', parseInteger('--max-queue', 1), DEFAULT_LIMITS.maxQueue)
    .option('--timeout-ms <ms>', 'per-request deadline (queue + inference); then 503', parseInteger('--timeout-ms', 1), DEFAULT_LIMITS.timeoutMs)
    .option('--max-body-bytes <n>', 'largest request body / uploaded image', parseInteger('--max-body-bytes', 1024), DEFAULT_LIMITS.maxBodyBytes)
    .option('--max-pixels <n>', 'largest image (width × height) before resizing', parseInteger('--max-pixels', 1), DEFAULT_LIMITS.maxPixels)
    .option('--threads <n>', 'ONNX Runtime intra-op threads', parseInteger('--threads', 1)))
    .action(async (raw: Record<string, unknown>) => {
      if ((raw.port as number) > 65535) throw new Error(`--port must be at most 65535 (got ${raw.port as number})`);
      const model = await MuEModel.load(raw.model as string, { threads: raw.threads as number | undefined });
      const { app, batcher } = await buildServer(model, {
        maxBatch: raw.maxBatch as number, maxWaitMs: raw.maxWaitMs as number, maxQueue: raw.maxQueue as number,
        timeoutMs: raw.timeoutMs as number, maxBodyBytes: raw.maxBodyBytes as number, maxPixels: raw.maxPixels as number,
      }, { decoding: decodingFrom(raw), modelDirectory: raw.model as string });
      const address = await app.listen({ host: raw.host as string, port: raw.port as number });
      console.log(`mue serve: ${model.task} model ${raw.model as string} listening on ${address}`);
      await new Promise<void>((resolve) => {
        let stopping = false;
        const shutDown = (signal: string) => {
          if (stopping) return;
          stopping = true;
          console.log(`mue serve: ${signal}, finishing in-flight requests`);
          // close() stops accepting, answers new requests on open connections with 503 and waits for
          // unanswered ones; drain() then waits for a batch still running (e.g. for a timed-out request)
          // so the model is never disposed under it.
          app.close().then(() => batcher.drain()).then(() => model.dispose()).then(resolve, (error: unknown) => {
            console.error(`mue serve: shutdown failed: ${error instanceof Error ? error.message : String(error)}`);
            process.exitCode = 1;
            resolve();
          });
        };
        process.once('SIGTERM', shutDown);
        process.once('SIGINT', shutDown);
      });
      console.log('mue serve: stopped');
    });
}
