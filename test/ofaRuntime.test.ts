// A converted OFA / MuE checkpoint runs wherever a mue model does (issue #16 item 4): MuEModel
// (VE constrained answers, beam captions, exits, fused reference), the CLI (predict, eval on the
// SNLI-VE and COCO loaders) and the server. The runtime's results are checked against
// ofaForward, the teacher-forced path that `mue verify-ofa` checks against the official code's
// fixtures, so the step-by-step decoding with its caches and per-step biases is tied to them.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { encodePng } from '../src/data/png.js';
import { cleanOfaCaption, normaliseOfaText } from '../src/data/ofaText.js';
import { normaliseImage, type RgbPixels } from '../src/data/preprocess.js';
import { entailmentAnswerIds } from '../src/data/entailmentPrompt.js';
import { loadModelDirectory } from '../src/model/checkpoint.js';
import { convertOfaCheckpoint } from '../src/model/ofaConvert.js';
import type { ParsedOfaModel } from '../src/model/ofaModelFiles.js';
import type { ExitPolicy } from '../src/runtime/exits.js';
import { ofaStemFlops } from '../src/runtime/flops.js';
import { MuEModel } from '../src/runtime/mueModel.js';
import { OfaExitRunner } from '../src/runtime/ofaExitRunner.js';
import { ofaEncode, ofaForward } from '../src/runtime/ofaForward.js';
import type { OfaRunner } from '../src/runtime/ofaRunner.js';
import { range, textBuckets } from '../src/runtime/ofaPositions.js';
import { buildServer, DEFAULT_LIMITS } from '../src/serve/app.js';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..');
const mue = (...args: string[]) => run(process.execPath, ['--import', 'tsx', join(root, 'src', 'cli', 'main.ts'), ...args], { cwd: root });
const fixtures = join(import.meta.dirname, 'fixtures', 'ofa');
const workDir = mkdtempSync(join(tmpdir(), 'mue-ofa-runtime-'));
const veDir = join(workDir, 'ofa-ve');
const captionDir = join(workDir, 'ofa-caption');
const HYPOTHESIS = 'A man is playing a guitar on stage';

/** A deterministic 64×64 RGB test card (the tiny fixture model's input size). */
function testImage(size = 64): RgbPixels {
  const pixels = new Uint8Array(size * size * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 37 + Math.floor(i / 97) * 11) % 256;
  return { width: size, height: size, pixels };
}

const softmax = (values: number[]): number[] => {
  const max = Math.max(...values);
  const exps = values.map((v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
};

let ve: MuEModel;
let captioner: MuEModel;
let parsed: ParsedOfaModel;
let forwardRunner: OfaExitRunner;
let reference: OfaRunner;

before(async () => {
  const checkpoint = join(fixtures, 'tiny-mue', 'checkpoint.pt.gz');
  convertOfaCheckpoint({ checkpoint, bpeDir: join(fixtures, 'vocab'), out: veDir, task: 've' });
  convertOfaCheckpoint({ checkpoint, bpeDir: join(fixtures, 'vocab'), out: captionDir, task: 'caption' });
  ve = await MuEModel.load(veDir, { fullStack: true });
  captioner = await MuEModel.load(captionDir, { fullStack: true });
  parsed = loadModelDirectory(veDir) as ParsedOfaModel;
  forwardRunner = await OfaExitRunner.create(parsed.config, parsed.weights);
  reference = forwardRunner.ofa;
});
after(async () => {
  await ve?.dispose();
  await captioner?.dispose();
  await forwardRunner?.dispose();
  rmSync(workDir, { recursive: true, force: true });
});

describe('OFA conventions', () => {
  it('reads the question, the caption prompt and the answers as the official code tokenises them', () => {
    assert.equal(ve.config.family, 'ofa');
    assert.equal(ve.imageTokens, 16); // 64 px -> a 4×4 stem grid
    const fixture = { src: [0, 473, 5, 2274, 6190, 22, 10, 313, 16, 816, 10, 8669, 15, 1289, 22, 116, 2] }; // tiny-mue/config.json src_tokens
    assert.deepEqual(ve.encoderIds(ve.entailmentText({ hypothesis: HYPOTHESIS })), fixture.src);
    assert.deepEqual(captioner.encoderIds(captioner.captionPrompt), [0, 99, 473, 5, 2274, 6190, 116, 2]);
    assert.deepEqual(entailmentAnswerIds(ve.tokenizer, 'prompt'), [4420, 117, 2085]);
    assert.deepEqual(ve.imageResize, { size: 64, fit: 'fill', kernel: 'cubic' });
  });

  it('counts the ResNet stem\'s FLOPs as torchvision counts ResNet-101 (7.80 GMAC at 224 px) minus stage 4 and the classifier', () => {
    // torchvision documents resnet101 at 7.80 GFLOPS (multiply-adds). Stage 4 at 7×7 (v1.5) and fc, by hand:
    const stage4 = 14 * 14 * 1024 * 512 + 7 * 7 * 512 * 512 * 9 + 7 * 7 * 512 * 2048 + 7 * 7 * 1024 * 2048 + 2 * (7 * 7 * 2048 * 512 + 7 * 7 * 512 * 512 * 9 + 7 * 7 * 512 * 2048);
    const classifier = 2048 * 1000;
    const patchProjection = 14 * 14 * 1024 * 768; // 196 patches, 1024 -> D
    const expectedMacs = 7.80e9 - stage4 - classifier + patchProjection;
    const macs = ofaStemFlops({ imageSize: 224, dim: 768, resnetBlocks: [3, 4, 23] }) / 2;
    assert.ok(Math.abs(macs / expectedMacs - 1) < 0.01, `${macs} vs ${expectedMacs}`);
  });

  it('cleans text as pre_caption does and captions as the caption evaluation does', () => {
    assert.equal(normaliseOfaText('..A Dog-walker/runner  <person>\n'), 'a dog walker runner person');
    assert.equal(normaliseOfaText('  ..kept'), '..kept'); // Python's lstrip of the marks stops at the first space, as pre_caption
    assert.equal(normaliseOfaText('one two three four', 2), 'one two');
    assert.equal(cleanOfaCaption(' a man, riding a "bike". '), 'a man riding a bike');
  });
});

describe('MuEModel on a converted OFA checkpoint, against the teacher-forced forward', () => {
  const image = testImage();
  const pixels = normaliseImage(image, 64);
  const textIds = () => [ve.encoderIds(ve.entailmentText({ hypothesis: HYPOTHESIS }))];
  const promptIds = () => [textIds()[0]!.slice(0, -1)]; // <s> + question, without </s>

  it('VE: the answer distribution at every decoder layer equals the forward\'s logits at the last prompt position (< 1e-4)', async () => {
    const captured: number[][] = [];
    const probe: ExitPolicy = {
      name: 'probe', needsHead: true, needsSimilarity: false, start: () => ({}),
      shouldExit: (signal) => { captured.push([...signal.probabilities!]); return false; },
    };
    const result = await ve.entail({ image, hypothesis: HYPOTHESIS }, { decoderPolicy: probe });
    const layerLogits = new Map<string, Float32Array>();
    const forward = await ofaForward(forwardRunner, { pixels, textIds: textIds(), decoderIds: promptIds() }, undefined,
      { perLayerLogits: true, record: (stage, data) => { if (stage.startsWith('dec.logits.layer')) layerLogits.set(stage, data); } });
    const answers = entailmentAnswerIds(ve.tokenizer, 'prompt');
    const length = promptIds()[0]!.length;
    const vocab = parsed.config.vocabSize;
    const at = (logits: Float32Array) => softmax(answers.map((id) => logits[(length - 1) * vocab + id]!));
    assert.equal(captured.length, parsed.config.decoderLayers - 1); // the last layer answers without asking the policy
    captured.forEach((probabilities, layer) => {
      const expected = at(layerLogits.get(`dec.logits.layer${layer}`)!);
      probabilities.forEach((p, i) => assert.ok(Math.abs(p - expected[i]!) < 1e-4, `layer ${layer + 1} answer ${i}: ${p} vs ${expected[i]}`));
    });
    const final = at(forward.logits);
    assert.equal(result.answer, ['yes', 'no', 'maybe'][final.indexOf(Math.max(...final))]);
    assert.deepEqual(result.telemetry.tokenLayers, [parsed.config.decoderLayers]);
  });

  it('VE exits: thresholds just below / above each stream\'s first similarity stop at the layers the forward stops at', async () => {
    const full = await ve.entail({ image, hypothesis: HYPOTHESIS }, { recordSimilarities: true });
    const sims = full.telemetry.similarities!;
    for (const delta of [-1e-3, 1e-3]) {
      const thresholds = { imageThreshold: sims.image![0]! + delta, textThreshold: sims.text![0]! + delta, decoderThreshold: sims.tokens[0]![0]! + delta };
      const ours = await ve.entail({ image, hypothesis: HYPOTHESIS }, thresholds);
      const theirs = await ofaForward(forwardRunner, { pixels, textIds: textIds(), decoderIds: promptIds() },
        { image: thresholds.imageThreshold, text: thresholds.textThreshold, decoder: thresholds.decoderThreshold });
      const expectedLayer = delta < 0 ? 1 : 2;
      assert.deepEqual([ours.telemetry.imageLayers, ours.telemetry.textLayers, ours.telemetry.tokenLayers[0]], [expectedLayer, expectedLayer, expectedLayer]);
      assert.deepEqual([theirs.exitLayers.image, theirs.exitLayers.text, theirs.exitLayers.decoder], [expectedLayer, expectedLayer, expectedLayer]);
      if (delta < 0) assert.ok(ours.telemetry.flops < ours.telemetry.fullDepthFlops);
    }
  });

  it('captions: greedy step-by-step decoding with caches and per-step biases equals greedy over the teacher-forced forward', async () => {
    const maxLength = 6;
    const ours = await captioner.caption({ image }, { beamSize: 1, noRepeatNgramSize: 0, maxLength });
    const encoderIds = [captioner.encoderIds(captioner.captionPrompt)];
    const { bosId, eosId, padId } = captioner.tokenizer;
    const tokens: number[] = [];
    for (let step = 0; step <= maxLength; step++) {
      const decoderIds = [[bosId, ...tokens]];
      const { logits } = await ofaForward(forwardRunner, { pixels, textIds: encoderIds, decoderIds });
      const vocab = parsed.config.vocabSize;
      const row = logits.subarray(tokens.length * vocab, (tokens.length + 1) * vocab);
      let best = -1;
      for (let id = 0; id < vocab; id++) {
        if (id === padId || (step === 0 && id === eosId) || (step === maxLength && id !== eosId)) continue;
        if (best < 0 || row[id]! > row[best]!) best = id;
      }
      tokens.push(best);
      if (best === eosId) break;
    }
    assert.equal(ours.caption, cleanOfaCaption(captioner.tokenizer.decode(tokens.filter((id) => id !== eosId))));
    assert.equal(ours.telemetry.tokenLayers.length, tokens.length);
  });

  it('the fused whole-stack graphs give the per-layer pipeline\'s answer and beam-5 caption', async () => {
    assert.equal((await ve.entail({ image, hypothesis: HYPOTHESIS }, { fused: true })).answer, (await ve.entail({ image, hypothesis: HYPOTHESIS })).answer);
    const pipeline = await captioner.caption({ image });
    const fused = await captioner.caption({ image }, { fused: true });
    assert.equal(fused.caption, pipeline.caption);
    assert.ok(pipeline.caption.length > 0);
  });

  it('a layer whose cache missed earlier steps gets the bias of the most recent positions, right-aligned (ARCHITECTURE.md §10.3)', async () => {
    const runner = await OfaExitRunner.create(parsed.config, parsed.weights);
    try {
      const { dim, decoderHeads: nh } = parsed.config;
      const encoded = await ofaEncode(forwardRunner, { pixels, textIds: textIds() });
      const { memory, memoryMask, memoryLength, positionEmbeddings } = encoded;
      const random = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 1000 + i * 12.9898) * 0.5);
      const position = 4;
      const pastLength = 2; // two of the four earlier steps ran this layer
      const x = random(dim, 1);
      const past = { key: random(pastLength * dim, 2), value: random(pastLength * dim, 3) };
      const cross = await reference.crossKeyValues(1, memory, 1, memoryLength);
      const ours = await runner.decoderStep(1, x, past.key, past.value, pastLength, cross.key, cross.value, memoryMask, 1, memoryLength, position);
      // The official bias row for query 4 covers positions 0..4; the layer's 3 keys take its last 3 columns.
      const full = await reference.decoderPositionBias([position], range(position + 1), positionEmbeddings, memoryLength);
      const row = await reference.relativeBias('decoder', 1, full.self, textBuckets(parsed.config, [position], range(position + 1), parsed.config.maxTargetPositions), 1, position + 1);
      const keys = pastLength + 1;
      const rightAligned = new Float32Array(nh * keys);
      for (let h = 0; h < nh; h++) rightAligned.set(row.data.subarray(h * (position + 1) + position + 1 - keys, (h + 1) * (position + 1)), h * keys);
      const expected = await reference.decoderLayer(1, x, 1, past, pastLength, new Float32Array(keys).fill(1), { data: rightAligned, batch: 1 },
        cross, memoryMask, full.cross, 1, memoryLength);
      const maxDiff = Math.max(...ours.hidden.map((v, i) => Math.abs(v - expected.hidden[i]!)));
      assert.ok(maxDiff < 1e-5, `max |diff| ${maxDiff}`);
      // And it differs from giving the keys their true-position biases 0..2, so the test can tell the two apart.
      const leftAligned = new Float32Array(nh * keys);
      for (let h = 0; h < nh; h++) leftAligned.set(row.data.subarray(h * (position + 1), h * (position + 1) + keys), h * keys);
      const other = await reference.decoderLayer(1, x, 1, past, pastLength, new Float32Array(keys).fill(1), { data: leftAligned, batch: 1 },
        cross, memoryMask, full.cross, 1, memoryLength);
      assert.ok(Math.max(...other.hidden.map((v, i) => Math.abs(v - expected.hidden[i]!))) > 1e-4);
    } finally {
      await runner.dispose();
    }
  });

  it('decoding with skipped layers runs every K/V strategy the family has (later tokens read shorter caches), and refuses "propagate"', async () => {
    // Odd positions leave after layer 1, so layer 2 misses them and later tokens read its gappy cache.
    const alternate: ExitPolicy = { name: 'alternate', needsHead: false, needsSimilarity: false, start: () => ({}), shouldExit: (signal) => signal.position! % 2 === 1 };
    const captions = new Map<string, string>();
    for (const kvStrategy of ['drop', 'copy', 'recompute'] as const) {
      const result = await captioner.caption({ image }, { decoderPolicy: alternate, kvStrategy, beamSize: 1, noRepeatNgramSize: 0, maxLength: 8 });
      assert.deepEqual(result.telemetry.tokenLayers.slice(0, 4), [2, 1, 2, 1]);
      captions.set(kvStrategy, result.caption);
    }
    assert.ok(captions.get('drop')!.length > 0);
    await assert.rejects(captioner.caption({ image }, { decoderPolicy: alternate, kvStrategy: 'propagate' }), /ofa family .*"propagate" is not available/);
    await assert.rejects(forwardRunner.decoderBias(0, [3], [0, 2, 3], 20), /contiguous ranges/);
  });
});

describe('task settings and premises', () => {
  it('reads the task settings convert-ofa stored, and refuses a VE checkpoint of another prompt set-up', async () => {
    assert.equal(ve.config.expectsPremise, true); // the fixture was made with --add-caption, as the MuE VE script
    const text = ve.entailmentText({ hypothesis: 'Two dogs', premise: 'Dogs on grass' });
    assert.equal(text, ' can image and text1 " dogs on grass " imply text2 " two dogs "?');
    const other = join(workDir, 'ofa-ve-none');
    convertOfaCheckpoint({ checkpoint: join(fixtures, 'tiny-mue', 'checkpoint.pt.gz'), bpeDir: join(fixtures, 'vocab'), out: other, task: 've' });
    const configPath = join(other, 'config.json');
    const config = JSON.parse(readFileSync(configPath, 'utf8')) as { taskArgs: Record<string, unknown> };
    config.taskArgs.prompt_type = 'none';
    writeFileSync(configPath, JSON.stringify(config));
    await assert.rejects(MuEModel.load(other), /prompt_type "none"; mue runs the MuE set-up, prompt_type "prev_output", only/);
  });
});

describe('a converted OFA directory through the CLI and the server', () => {
  const imagePath = join(workDir, 'card.png');
  before(() => writeFileSync(imagePath, encodePng(testImage(90))));

  it('mue predict answers a VE question and writes a caption', async () => {
    const answer = await mue('predict', '--model', veDir, '--image', imagePath, '--text', HYPOTHESIS, '--premise', 'A person with an instrument');
    assert.match(answer.stdout, /^(yes|no|maybe)\n/);
    const caption = JSON.parse((await mue('predict', '--model', captionDir, '--image', imagePath, '--json')).stdout);
    assert.equal(caption.task, 'caption');
    assert.equal(typeof caption.answer, 'string');
    assert.equal(caption.telemetry.tokenLayers.length > 0, true);
  });

  it('mue eval runs on the SNLI-VE and COCO loaders', async () => {
    for (const [model, data, count] of [[veDir, `snli-ve:${join(fixtures, '..', 'datasets', 'snli-ve-jsonl')}`, '3'], [captionDir, `coco:${join(fixtures, '..', 'datasets', 'coco')}`, '2']] as const) {
      const out = join(workDir, `${count}.json`);
      await mue('eval', '--model', model, '--data', data, '--count', count, '--methods', 'mue', '--out', out);
      const report = JSON.parse(readFileSync(out, 'utf8')) as { count: number; fullDepth: { quality: number }; methods: Array<{ method: string }> };
      assert.equal(report.count, Number(count));
      assert.ok(Number.isFinite(report.fullDepth.quality));
      assert.ok(report.methods.some((r) => r.method === 'mue'));
    }
  });

  it('mue serve answers /v1/entail', async () => {
    const { app } = await buildServer(ve, DEFAULT_LIMITS);
    try {
      const image = encodePng(testImage(90)).toString('base64');
      for (const payload of [{ image, hypothesis: HYPOTHESIS }, { image, hypothesis: HYPOTHESIS, premise: 'A person with an instrument' }]) {
        const response = await app.inject({ method: 'POST', url: '/v1/entail', payload });
        assert.equal(response.statusCode, 200, response.body);
        assert.match(JSON.parse(response.body).answer, /^(yes|no|maybe)$/);
      }
      const bad = await app.inject({ method: 'POST', url: '/v1/entail', payload: { image, hypothesis: HYPOTHESIS, premise: 7 } });
      assert.equal(bad.statusCode, 400);
      assert.match(JSON.parse(bad.body).error, /premise must be a string/);
    } finally {
      await app.close();
    }
  });

  it('training refuses an OFA directory with a clear message', async () => {
    await assert.rejects(mue('train', '--task', 've', '--init-from', veDir, '--steps', '1', '--out', join(workDir, 'never')),
      (error: { stderr: string }) => /OFA-family model .*does not train/.test(error.stderr));
  });
});
