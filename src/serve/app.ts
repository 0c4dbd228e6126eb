// The HTTP API (Fastify): entailment and captioning through the dynamic batcher, health and
// readiness, Prometheus metrics, SceneWorld examples and the static demo page.
import { readFileSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import multipart from '@fastify/multipart';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { encodePng } from '../data/png.js';
import { captionExample, veExample } from '../data/sceneworld.js';
import type { CaptionResult, EntailResult, ExitThresholds, InferenceOptions, MuEModel } from '../runtime/mueModel.js';
import { DynamicBatcher, QueueFullError, RequestTimeoutError, ShuttingDownError, type BatcherLimits } from './batcher.js';
import { registerBrowserPage } from './browserPage.js';
import { ServerMetrics } from './metrics.js';
import { guardProtocol, protocolOptions, type ConnectionTimeouts } from './protocol.js';
import { ConnectionTracker, drainAndClose, type DrainReport } from './shutdown.js';
import { FORM_LIMITS, HttpError, fromJsonBody, fromMultipart, validateRequest, type InferenceRequest, type ServeTask } from './requests.js';

export interface ServeLimits extends BatcherLimits, ConnectionTimeouts {
  /** Largest accepted request body (JSON) or image file (multipart), in bytes. */
  maxBodyBytes: number;
  /** Largest image accepted (width × height), checked from its header before decoding; it is then resized to the model's input size. */
  maxPixels: number;
  /** On shutdown, how long requests already received may take to finish; then the queued ones get 503 and stalled connections are closed. */
  drainTimeoutMs: number;
}

export const DEFAULT_LIMITS: ServeLimits = {
  maxBatch: 16, maxWaitMs: 5, maxQueue: 256, timeoutMs: 30_000, maxBodyBytes: 1 << 20, maxPixels: 4096 * 4096,
  headersTimeoutMs: 10_000, bodyTimeoutMs: 30_000, idleTimeoutMs: 5_000, drainTimeoutMs: 10_000,
};

/** After a shutdown signal the server keeps accepting at least this long (answering 503), so requests already on their way are read, not reset. */
export const SHUTDOWN_GRACE_MS = 300;

/** Seconds a client should wait after a 503 before retrying. */
const RETRY_AFTER_SECONDS = '1';

/** Routes still answered while shutting down (a load balancer polls them). */
const HEALTH_ROUTES = new Set(['/healthz', '/readyz', '/metrics']);

const PAGE_FILES: Record<string, string> = { '/': 'index.html', '/app.js': 'app.js', '/style.css': 'style.css' };
const CONTENT_TYPES: Record<string, string> = { html: 'text/html; charset=utf-8', js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8' };

type Answer = EntailResult | CaptionResult;

export interface MueServer {
  app: FastifyInstance;
  batcher: DynamicBatcher<ExitThresholds, InferenceRequest, Answer>;
  metrics: ServerMetrics;
  /** Graceful, bounded shutdown: refuse new requests, finish the received ones, close (see shutdown.ts). */
  shutDown(): Promise<DrainReport>;
}

export interface ServerOptions {
  /** The server's decoding options (default: the runtime's official ones); each request's thresholds join them. */
  decoding?: InferenceOptions;
  /** The served model's folder, whose files the in-browser demo (/browser/) fetches. */
  modelDirectory?: string;
}

export async function buildServer(model: MuEModel, limits: ServeLimits = DEFAULT_LIMITS, { decoding = {}, modelDirectory }: ServerOptions = {}): Promise<MueServer> {
  const { maxBodyBytes, maxPixels, headersTimeoutMs, bodyTimeoutMs, idleTimeoutMs, drainTimeoutMs, ...batcherLimits } = limits;
  const { config } = model;
  // The gauge reads the batcher lazily (at scrape time), so the two can refer to each other.
  const metrics = new ServerMetrics(config, () => batcher.queueDepth, batchSizeBuckets(limits.maxBatch));
  const batcher = new DynamicBatcher<ExitThresholds, InferenceRequest, Answer>(
    (thresholds, requests) => model.task === 've'
      ? model.entailBatch(requests.map(({ image, hypothesis, premise }) => ({ image, hypothesis: hypothesis!, premise })), { ...decoding, ...thresholds })
      : model.captionBatch(requests.map(({ image }) => ({ image })), { ...decoding, ...thresholds }),
    batcherLimits,
    (size) => metrics.batchSize.observe(size),
  );
  const facts = { checkQuestion: (question: { hypothesis: string; premise?: string }) => model.checkQuestion(question), imageResize: model.imageResize, defaultThresholds: model.defaultThresholds };
  const page = Object.fromEntries(Object.values(PAGE_FILES).map((file) => [file, readFileSync(new URL(`./page/${file}`, import.meta.url), 'utf8')]));

  const app = Fastify({ bodyLimit: maxBodyBytes, logger: false, ...protocolOptions({ headersTimeoutMs, bodyTimeoutMs, idleTimeoutMs }) });
  // Only JSON and multipart bodies: anything else is a 415, not a string the handlers must reject.
  app.removeContentTypeParser('text/plain');
  // A part named "image" is the image even without a filename (busboy would make it a text field).
  await app.register(multipart, {
    limits: { ...FORM_LIMITS, fileSize: maxBodyBytes },
    isPartAFile: (fieldName: string | undefined, contentType: string | undefined, fileName: string | undefined) => fieldName === 'image' || fileName !== undefined || contentType === 'application/octet-stream',
  });

  const connections = new ConnectionTracker(app.server);
  // Requests started and not yet answered, for the shutdown drain; tracked before any other hook can answer.
  const unanswered = new Set<FastifyRequest['raw']>();
  app.addHook('onRequest', async (request, reply) => {
    unanswered.add(request.raw);
    // 'close' comes once the response is sent or the connection is gone.
    reply.raw.once('close', () => unanswered.delete(request.raw));
  });
  /** Unanswered requests whose bytes all arrived (`complete`: the body too); a stalled upload does not hold the drain. */
  const receivedUnanswered = () => {
    let count = 0;
    for (const raw of unanswered) if (raw.complete) count++;
    return count;
  };
  guardProtocol(app);

  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onRequest', async (request, reply) => {
    if (closing && !HEALTH_ROUTES.has(request.url)) {
      return reply.code(503).header('retry-after', RETRY_AFTER_SECONDS).send({ error: 'the server is shutting down' });
    }
    return undefined;
  });
  // While shutting down, close each connection after its response: an idle keep-alive socket would hold close() for its whole timeout.
  app.addHook('onSend', async (_request, reply) => {
    if (closing) void reply.header('connection', 'close');
  });
  app.addHook('onResponse', async (request, reply) => {
    metrics.requestDuration.observe({ route: request.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) }, reply.elapsedTime / 1000);
  });
  app.setErrorHandler((error: Error & { statusCode?: number }, request, reply) => {
    const status = error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 600 ? error.statusCode : 500;
    if (status >= 500 && status !== 503) console.error(error);
    if (error instanceof HttpError) void reply.headers(error.headers);
    const message = status === 415 ? `content-type must be application/json or multipart/form-data (got ${request.headers['content-type'] ?? 'none'})`
      : status >= 500 && status !== 503 ? 'internal error' : error.message;
    void reply.code(status).send({ error: message });
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({ error: `no route ${request.method} ${request.url.split('?')[0]}` });
  });

  for (const [path, file] of Object.entries(PAGE_FILES)) {
    app.get(path, async (_request, reply) => reply.type(CONTENT_TYPES[file.split('.').pop()!]!).send(page[file]));
  }
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    const reason = closing ? 'shutting down' : batcher.queueDepth >= limits.maxQueue ? 'queue full' : undefined;
    if (reason) return reply.code(503).header('retry-after', RETRY_AFTER_SECONDS).send({ status: reason });
    return { status: 'ready' };
  });
  app.get('/metrics', async (_request, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()));
  app.get('/v1/model', async () => ({
    task: model.task, imageSize: config.imageSize, maxTextLength: config.maxTextLength, encoderMode: config.encoderMode,
    encoderLayers: config.encoderLayers, decoderLayers: config.decoderLayers, defaultThresholds: model.defaultThresholds,
  }));
  app.get('/v1/example', async (request) => {
    const raw = (request.query as Record<string, unknown>).index ?? '0';
    const index = Number(raw);
    if (typeof raw !== 'string' || !/^\d{1,9}$/.test(raw)) throw new HttpError(400, `index must be an integer in [0, 999999999] (got ${JSON.stringify(raw)})`);
    const options = { split: 'test' as const, seed: 1, imageSize: config.imageSize };
    const example = model.task === 've' ? veExample(index, options) : captionExample(index, options);
    const image = `data:image/png;base64,${encodePng(example.image).toString('base64')}`;
    return 'hypothesis' in example ? { index, image, hypothesis: example.hypothesis, label: example.label } : { index, image, captions: example.captions };
  });

  const infer = (task: ServeTask) => async (request: FastifyRequest, reply: FastifyReply) => {
    if ((task === 'entail') !== (model.task === 've')) {
      throw new HttpError(400, `this server's model is a ${model.task} model: use POST ${model.task === 've' ? '/v1/entail' : '/v1/caption'}`);
    }
    // Refuse before decoding anything when the queue is already full (decoding would only add load).
    if (batcher.queueDepth >= limits.maxQueue) throw new HttpError(503, `the queue is full (${limits.maxQueue} requests waiting)`, { 'retry-after': RETRY_AFTER_SECONDS });
    const raw = request.isMultipart() ? await fromMultipart(request.parts()) : fromJsonBody(request.body);
    const inference = await validateRequest(raw, task, facts, { maxBytes: maxBodyBytes, maxPixels });
    let batched;
    try {
      batched = await batcher.submit(inference.thresholds, inference);
    } catch (error) {
      if (error instanceof QueueFullError || error instanceof RequestTimeoutError || error instanceof ShuttingDownError) {
        throw new HttpError(503, error.message, { 'retry-after': RETRY_AFTER_SECONDS });
      }
      throw error;
    }
    const { output, batchSize, queueMs } = batched;
    metrics.observeTelemetry(output.telemetry);
    return reply.send({ ...output, batchSize, queueMs });
  };
  app.post('/v1/entail', infer('entail'));
  app.post('/v1/caption', infer('caption'));
  registerBrowserPage(app, modelDirectory === undefined ? [] : [{ name: basename(resolve(modelDirectory)), directory: modelDirectory }]);
  const shutDown = () => drainAndClose({
    server: app.server,
    refuseNewRequests: () => { closing = true; },
    receivedUnanswered,
    stopQueue: () => batcher.stop(new ShuttingDownError('the server is shutting down; this request was not run')),
    batchesDone: () => batcher.drain(),
    close: () => app.close(),
  }, connections, { graceMs: SHUTDOWN_GRACE_MS, drainTimeoutMs });
  return { app, batcher, metrics, shutDown };
}

/** Powers of two below maxBatch, and maxBatch itself. */
function batchSizeBuckets(maxBatch: number): number[] {
  const buckets = [];
  for (let size = 1; size < maxBatch; size *= 2) buckets.push(size);
  return [...buckets, maxBatch];
}
