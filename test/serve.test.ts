// The server: the dynamic batcher on its own, then the HTTP API on tiny random-weight models
// (answers, batching equals one-by-one, every bad input, back-pressure, metrics, a short fuzz,
// graceful shutdown of the real `mue serve` process).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { encodePng } from '../src/data/png.js';
import { veExample } from '../src/data/sceneworld.js';
import { MuEModel } from '../src/runtime/mueModel.js';
import { DEFAULT_LIMITS, buildServer, type ServeLimits } from '../src/serve/app.js';
import { DynamicBatcher, QueueFullError, RequestTimeoutError } from '../src/serve/batcher.js';
import { malformedRequests, sendAll, stillHealthy, FUZZ_MAX_BODY_BYTES } from '../scripts/fuzz.js';
import { startServer } from '../scripts/serveHarness.js';
import { saveRandomCheckpoint } from './helpers.js';

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('DynamicBatcher', () => {
  const recordingBatcher = (limits: Partial<ConstructorParameters<typeof DynamicBatcher>[1]> = {}, runMs = 0) => {
    const batches: Array<{ options: string; inputs: number[] }> = [];
    const batcher = new DynamicBatcher<{ t: number }, number, number>(async (options, inputs) => {
      batches.push({ options: JSON.stringify(options), inputs });
      await delay(runMs);
      return inputs.map((input) => input * 10);
    }, { maxBatch: 4, maxWaitMs: 20, maxQueue: 100, timeoutMs: 5000, ...limits });
    return { batcher, batches };
  };

  test('requests arriving together run as one batch, capped at maxBatch, each gets its own output', async () => {
    const { batcher, batches } = recordingBatcher();
    const results = await Promise.all([1, 2, 3, 4, 5, 6].map((input) => batcher.submit({ t: 1 }, input)));
    assert.deepEqual(results.map((result) => result.output), [10, 20, 30, 40, 50, 60]);
    assert.deepEqual(batches.map((batch) => batch.inputs), [[1, 2, 3, 4], [5, 6]]);
    assert.deepEqual(results.map((result) => result.batchSize), [4, 4, 4, 4, 2, 2]);
  });

  test('only requests with identical options share a batch', async () => {
    const { batcher, batches } = recordingBatcher();
    await Promise.all([batcher.submit({ t: 1 }, 1), batcher.submit({ t: 2 }, 2), batcher.submit({ t: 1 }, 3)]);
    assert.deepEqual(batches, [{ options: '{"t":1}', inputs: [1, 3] }, { options: '{"t":2}', inputs: [2] }]);
  });

  test('a lone request waits maxWaitMs for company, then runs alone', async () => {
    const { batcher } = recordingBatcher({ maxWaitMs: 40 });
    const started = performance.now();
    const result = await batcher.submit({ t: 1 }, 7);
    assert.ok(performance.now() - started >= 35, 'waited for the batching window');
    assert.equal(result.batchSize, 1);
  });

  test('a full queue refuses, a request past its deadline is rejected and removed from the queue', async () => {
    const { batcher, batches } = recordingBatcher({ maxBatch: 1, maxWaitMs: 0, maxQueue: 2, timeoutMs: 30 }, 60);
    const running = batcher.submit({ t: 1 }, 1); // starts at once and takes 60 ms, past its own deadline
    const queued = [batcher.submit({ t: 1 }, 2), batcher.submit({ t: 1 }, 3)];
    await assert.rejects(batcher.submit({ t: 1 }, 4), QueueFullError);
    await assert.rejects(running, RequestTimeoutError);
    for (const request of queued) await assert.rejects(request, RequestTimeoutError);
    assert.equal(batcher.queueDepth, 0);
    await delay(80);
    assert.deepEqual(batches.map((batch) => batch.inputs), [[1]], 'timed-out requests never ran');
  });

  test('a failing batch rejects its requests and the batcher keeps serving', async () => {
    let calls = 0;
    const batcher = new DynamicBatcher<object, number, number>(async (_options, inputs) => {
      if (calls++ === 0) throw new Error('model failed');
      return inputs;
    }, { maxBatch: 2, maxWaitMs: 0, maxQueue: 10, timeoutMs: 1000 });
    await assert.rejects(batcher.submit({}, 1), /model failed/);
    assert.equal((await batcher.submit({}, 2)).output, 2);
  });

  test('a busy options group cannot starve another: the group with the oldest request runs first', async () => {
    const { batcher, batches } = recordingBatcher({ maxBatch: 2, maxWaitMs: 0 }, 20);
    const busy = [1, 2, 3, 4, 5, 6].map((input) => batcher.submit({ t: 1 }, input));
    await delay(5); // the first busy batch is running; the rest of group 1 keeps its queue full
    const lone = batcher.submit({ t: 2 }, 7);
    const moreBusy = [8, 9].map((input) => batcher.submit({ t: 1 }, input));
    await Promise.all([...busy, lone, ...moreBusy]);
    // First come, first served across groups: the lone request runs before request 9, which came after it.
    const loneBatch = batches.findIndex((batch) => batch.options === '{"t":2}');
    const laterBatch = batches.findIndex((batch) => batch.inputs.includes(9));
    assert.ok(loneBatch < laterBatch, `batches ran as ${JSON.stringify(batches.map((b) => b.inputs))}`);
  });

  test('drain() waits for the batch that is running', async () => {
    const { batcher } = recordingBatcher({ maxWaitMs: 0 }, 50);
    let finished = false;
    void batcher.submit({ t: 1 }, 1).then(() => { finished = true; });
    await delay(5);
    await batcher.drain();
    assert.equal(finished, true);
  });

  test('stop() rejects the queued requests and later submits, and lets the running batch finish', async () => {
    const { batcher, batches } = recordingBatcher({ maxBatch: 1, maxWaitMs: 0 }, 40);
    const running = batcher.submit({ t: 1 }, 1);
    const queued = [batcher.submit({ t: 1 }, 2), batcher.submit({ t: 1 }, 3)].map((request) => request.then(() => 'answered', (error: Error) => error.message));
    await delay(5);
    assert.equal(batcher.stop(new Error('stopping')), 2);
    assert.equal((await running).output, 10);
    assert.deepEqual(await Promise.all(queued), ['stopping', 'stopping']);
    await assert.rejects(batcher.submit({ t: 1 }, 4), /stopping/);
    await batcher.drain();
    assert.deepEqual(batches.map((batch) => batch.inputs), [[1]]);
  });

  test('limits are validated', () => {
    assert.throws(() => new DynamicBatcher(async () => [], { maxBatch: 0, maxWaitMs: 0, maxQueue: 1, timeoutMs: 1 }), /maxBatch must be ≥ 1/);
  });
});

describe('HTTP API', () => {
  const workDir = mkdtempSync(join(tmpdir(), 'mue-serve-'));
  const veDir = join(workDir, 've');
  const captionDir = join(workDir, 'caption');
  let ve: MuEModel;
  let captioner: MuEModel;
  const servers: FastifyInstance[] = [];
  const serve = async (model: MuEModel, limits: Partial<ServeLimits> = {}) => {
    const { app } = await buildServer(model, { ...DEFAULT_LIMITS, ...limits });
    servers.push(app);
    return app;
  };
  const example = (index: number) => veExample(index, { split: 'test', seed: 1, imageSize: 32 });
  const png = encodePng(example(0).image);
  const thresholds = { imageThreshold: 0.5, textThreshold: 0.5, decoderThreshold: 0.5 };
  const entailJson = (body: Record<string, unknown>) => ({ method: 'POST' as const, url: '/v1/entail', payload: body });
  const multipart = (parts: Array<[string, string | Buffer]>, boundary = 'testboundary') => {
    const chunks = parts.flatMap(([name, value]) => [
      Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="${name}"${typeof value === 'string' ? '' : '; filename="scene.png"\r\ncontent-type: image/png'}\r\n\r\n`),
      Buffer.from(value), Buffer.from('\r\n'),
    ]);
    return { headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, payload: Buffer.concat([...chunks, Buffer.from(`--${boundary}--\r\n`)]) };
  };

  before(async () => {
    await saveRandomCheckpoint(veDir, 've');
    await saveRandomCheckpoint(captionDir, 'caption');
    [ve, captioner] = await Promise.all([MuEModel.load(veDir), MuEModel.load(captionDir)]);
  });
  after(async () => {
    for (const app of servers) await app.close();
    await ve.dispose();
    await captioner.dispose();
    rmSync(workDir, { recursive: true, force: true });
  });

  test('POST /v1/entail answers JSON and multipart requests with exit telemetry; the same input gives the same answer', async () => {
    const app = await serve(ve);
    const json = await app.inject(entailJson({ image: png.toString('base64'), hypothesis: example(0).hypothesis, ...thresholds }));
    assert.equal(json.statusCode, 200, json.body);
    const answer = json.json();
    assert.ok(['yes', 'no', 'maybe'].includes(answer.answer));
    assert.ok(answer.telemetry.imageLayers >= 1 && answer.telemetry.imageLayers <= 2);
    assert.equal(answer.telemetry.tokenLayers.length, 1);
    assert.equal(answer.telemetry.thresholds.decoderThreshold, 0.5);
    assert.ok(answer.telemetry.flops <= answer.telemetry.fullDepthFlops);
    assert.equal(answer.batchSize, 1);
    const form = await app.inject({ method: 'POST', url: '/v1/entail', ...multipart([['image', png], ['hypothesis', example(0).hypothesis], ['imageThreshold', '0.5'], ['textThreshold', '0.5'], ['decoderThreshold', '0.5']]) });
    assert.equal(form.statusCode, 200, form.body);
    assert.equal(form.json().answer, answer.answer);
    assert.deepEqual({ ...form.json().telemetry, timeMs: 0 }, { ...answer.telemetry, timeMs: 0 });
  });

  test('POST /v1/caption writes a caption; a data: URL image is accepted', async () => {
    const app = await serve(captioner);
    const response = await app.inject({ method: 'POST', url: '/v1/caption', payload: { image: `data:image/png;base64,${png.toString('base64')}`, decoderThreshold: 0.5 } });
    assert.equal(response.statusCode, 200, response.body);
    assert.equal(typeof response.json().caption, 'string');
    assert.ok(response.json().telemetry.tokenLayers.length >= 1);
    const wrongTask = await app.inject(entailJson({ image: png.toString('base64'), hypothesis: 'a circle' }));
    assert.equal(wrongTask.statusCode, 400);
    assert.match(wrongTask.json().error, /caption model: use POST \/v1\/caption/);
  });

  test('concurrent requests are batched and give the same answers and exit layers as sequential single requests', async () => {
    const app = await serve(ve, { maxBatch: 8, maxWaitMs: 50 });
    // Thresholds at the median similarity of these inputs, so that samples exit at different layers.
    const traces = await Promise.all(Array.from({ length: 8 }, async (_, index) =>
      (await ve.entail({ image: example(index).image, hypothesis: example(index).hypothesis }, { recordSimilarities: true })).telemetry.similarities!));
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    const medianThresholds = {
      imageThreshold: median(traces.flatMap((trace) => trace.image!)), textThreshold: median(traces.flatMap((trace) => trace.text!)),
      decoderThreshold: median(traces.flatMap((trace) => trace.tokens.flat())),
    };
    const bodies = Array.from({ length: 8 }, (_, index) => ({ image: encodePng(example(index).image).toString('base64'), hypothesis: example(index).hypothesis, ...medianThresholds }));
    const concurrent = await Promise.all(bodies.map((body) => app.inject(entailJson(body))));
    const sequential = [];
    for (const body of bodies) sequential.push(await app.inject(entailJson(body)));
    assert.ok(concurrent.every((response) => response.json().batchSize === 8), 'the concurrent requests ran as one batch');
    assert.ok(sequential.every((response) => response.json().batchSize === 1));
    // FLOPs are not compared: in a batch, cross-attention also runs over the padding up to the longest hypothesis.
    const exits = (response: { json(): { answer: string; telemetry: { imageLayers: number; textLayers: number; tokenLayers: number[] } } }) => {
      const { answer, telemetry: { imageLayers, textLayers, tokenLayers } } = response.json();
      return { answer, imageLayers, textLayers, tokenLayers };
    };
    assert.deepEqual(concurrent.map(exits), sequential.map(exits));
    assert.ok(new Set(concurrent.map((response) => `${exits(response).imageLayers}/${exits(response).textLayers}`)).size > 1, 'samples exit at different layers');
  });

  test('every bad input gets a 4xx JSON error that says what is wrong, and the server keeps serving', async () => {
    const app = await serve(ve, { maxBodyBytes: 32 * 1024, maxPixels: 40 * 40 });
    const image = png.toString('base64');
    const cases: Array<[string, InjectOptions, number, RegExp]> = [
      ['not an image', entailJson({ image: Buffer.from('hello world').toString('base64'), hypothesis: 'a circle' }), 400, /not a readable image/],
      ['truncated image', entailJson({ image: png.subarray(0, png.length - 30).toString('base64'), hypothesis: 'a circle' }), 400, /image/],
      ['too many pixels', entailJson({ image: encodePng(veExample(0, { split: 'test', seed: 1, imageSize: 64 }).image).toString('base64'), hypothesis: 'a circle' }), 400, /64×64 = 4096 pixels, more than the limit of 1600/],
      ['oversized body', entailJson({ image: 'A'.repeat(40 * 1024), hypothesis: 'a circle' }), 413, /too large/i],
      ['oversized upload', { method: 'POST', url: '/v1/entail', ...multipart([['hypothesis', 'a circle'], ['image', Buffer.alloc(40 * 1024)]]) }, 413, /file too large/i],
      ['missing image', entailJson({ hypothesis: 'a circle' }), 400, /image is missing/],
      ['missing hypothesis', entailJson({ image }), 400, /hypothesis is missing/],
      ['empty hypothesis', entailJson({ image, hypothesis: '  ' }), 400, /hypothesis: text is empty/],
      ['overlong hypothesis', entailJson({ image, hypothesis: 'circle '.repeat(40) }), 400, /hypothesis: text has 47 \w+ but the model takes at most 20/],
      ['hypothesis not a string', entailJson({ image, hypothesis: 42 }), 400, /hypothesis must be a string/],
      ['threshold out of range', entailJson({ image, hypothesis: 'a circle', decoderThreshold: 2 }), 400, /decoderThreshold must be a number in \[-1, 1\] \(got 2\)/],
      ['threshold not a number', entailJson({ image, hypothesis: 'a circle', imageThreshold: 'high' }), 400, /imageThreshold must be a number in \[-1, 1\]/],
      ['form threshold out of range', { method: 'POST', url: '/v1/entail', ...multipart([['image', png], ['hypothesis', 'a circle'], ['textThreshold', '-3']]) }, 400, /textThreshold must be a number/],
      ['unknown field', entailJson({ image, hypothesis: 'a circle', threshold: 0.5 }), 400, /unknown field "threshold"/],
      ['bad base64', entailJson({ image: '@@@', hypothesis: 'a circle' }), 400, /not valid base64/],
      ['body not an object', entailJson([1, 2] as unknown as Record<string, unknown>), 400, /must be a JSON object/],
      ['malformed JSON', { method: 'POST', url: '/v1/entail', headers: { 'content-type': 'application/json' }, payload: '{"image": ' }, 400, /not valid JSON/],
      ['wrong content type', { method: 'POST', url: '/v1/entail', headers: { 'content-type': 'text/plain' }, payload: 'hello' }, 415, /content-type must be application\/json or multipart\/form-data \(got text\/plain\)/],
      ['malformed multipart', { method: 'POST', url: '/v1/entail', headers: { 'content-type': 'multipart/form-data' }, payload: 'garbage' }, 400, /malformed multipart body/],
      ['file under the wrong name', { method: 'POST', url: '/v1/entail', ...multipart([['picture', png]]) }, 400, /unexpected file field "picture"/],
      ['bad example index', { method: 'GET', url: '/v1/example?index=-1' }, 400, /index must be an integer/],
      ['unknown route', { method: 'GET', url: '/v2/entail' }, 404, /no route GET \/v2\/entail/],
    ];
    for (const [name, request, status, message] of cases) {
      const response = await app.inject(request);
      assert.equal(response.statusCode, status, `${name}: ${response.body}`);
      assert.match(response.json().error, message, name);
    }
    const healthy = await app.inject(entailJson({ image, hypothesis: 'a circle' }));
    assert.equal(healthy.statusCode, 200);
  });

  test('a full queue answers 503 with Retry-After; readiness reports it', async () => {
    const app = await serve(ve, { maxBatch: 1, maxWaitMs: 0, maxQueue: 1 });
    const body = { image: png.toString('base64'), hypothesis: 'a circle' };
    const responses = await Promise.all(Array.from({ length: 12 }, () => app.inject(entailJson(body))));
    const refused = responses.filter((response) => response.statusCode === 503);
    assert.ok(refused.length > 0, 'some requests are refused');
    assert.ok(responses.every((response) => response.statusCode === 200 || response.statusCode === 503));
    assert.equal(refused[0]!.headers['retry-after'], '1');
    assert.match(refused[0]!.json().error, /queue is full/);
    assert.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 200);
  });

  test('a request past its deadline gets 503', async () => {
    const app = await serve(ve, { maxWaitMs: 200, timeoutMs: 20 });
    const response = await app.inject(entailJson({ image: png.toString('base64'), hypothesis: 'a circle' }));
    assert.equal(response.statusCode, 503);
    assert.match(response.json().error, /no answer within 20 ms/);
  });

  test('/healthz, /readyz, /metrics and the demo page', async () => {
    const app = await serve(ve);
    await app.inject(entailJson({ image: png.toString('base64'), hypothesis: 'a circle', ...thresholds }));
    assert.deepEqual((await app.inject({ method: 'GET', url: '/healthz' })).json(), { status: 'ok' });
    assert.deepEqual((await app.inject({ method: 'GET', url: '/readyz' })).json(), { status: 'ready' });
    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    for (const name of ['mue_request_duration_seconds_bucket{le="0.001",route="/v1/entail",status="200"}', 'mue_batch_size_count 1', 'mue_queue_depth 0',
      'mue_encoder_exit_layer_count{stream="image"} 1', 'mue_encoder_exit_layer_count{stream="text"} 1', 'mue_decoder_token_exit_layer_count 1', 'mue_flops_saved_ratio_count 1']) {
      assert.ok(metrics.includes(name), `metrics include ${name}`);
    }
    const page = await app.inject({ method: 'GET', url: '/' });
    assert.match(page.headers['content-type'] as string, /text\/html/);
    assert.match(page.body, /<script type="module" src="\/app.js">/);
    assert.match((await app.inject({ method: 'GET', url: '/app.js' })).headers['content-type'] as string, /javascript/);
    const generated = (await app.inject({ method: 'GET', url: '/v1/example?index=3' })).json();
    assert.equal(generated.hypothesis, example(3).hypothesis);
    assert.match(generated.image, /^data:image\/png;base64,/);
  });

  test('300 fuzzed malformed requests all get 4xx and the server stays healthy', async () => {
    const app = await serve(ve, { maxBodyBytes: FUZZ_MAX_BODY_BYTES });
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    const outcome = await sendAll(url, malformedRequests(300, 7), 8);
    assert.deepEqual(outcome.failures, []);
    assert.ok(await stillHealthy(url));
  });

  test('mue serve finishes in-flight requests on SIGTERM, then exits 0', async () => {
    const server = await startServer(['--model', veDir, '--max-wait-ms', '1000']);
    const body = JSON.stringify({ image: png.toString('base64'), hypothesis: 'a circle' });
    const inFlight = Array.from({ length: 4 }, () => fetch(`${server.url}/v1/entail`, { method: 'POST', headers: { 'content-type': 'application/json' }, body }));
    // SIGTERM once all four wait in the 1 s batching window (received in full, so each must get its answer).
    while (!/^mue_queue_depth 4$/m.test(await (await fetch(`${server.url}/metrics`)).text())) await delay(5);
    const exitCode = server.stop();
    const responses = await Promise.all(inFlight);
    assert.deepEqual(responses.map((response) => response.status), [200, 200, 200, 200]);
    assert.equal(await exitCode, 0, server.output());
    assert.match(server.output(), /SIGTERM, finishing in-flight requests[\s\S]*stopped/);
  });
});
