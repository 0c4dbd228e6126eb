// Runtime speed (issue acceptance, "Performance"): with random weights, for the `small` and
// `ofa-base` shapes at batch 1 and 16,
//   1. the per-layer ONNX runtime (one graph per encoder layer / decoder-layer step, the way
//      early exits run it) vs ONE graph holding the whole encoder / whole decoder step;
//   2. the exit decision (cosineSimilarity, per sample) vs the layer call it follows;
//   3. the ONNX runtime at full depth vs the same model's forward in TensorFlow.js (wasm);
//   4. decoding with exits under each key/value strategy for skipped layers (drop = official,
//      copy, propagate, recompute) vs decoding the same tokens at full depth.
// Variants are run interleaved (A, B, A, B, …) in one process and compared by medians, so
// machine noise (other processes on the 2 cores) hits both sides alike.
// Writes the table, the command, the machine and every raw median to results/bench-runtime.json.
// Usage: npm run bench:runtime [-- --quick] [--threads N (default: the runtime's per-model default)] [--rounds 7]
import { mkdirSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { writeFileAtomic } from '../src/model/atomicWrite.js';
import { initTensorflow, tf } from '../src/model/backend.js';
import { type ModelConfig, presetConfig } from '../src/model/config.js';
import { TfModel } from '../src/model/tfModel.js';
import { decodeNextToken, KV_STRATEGIES, newSequence, type DecoderContext, type KvStrategy } from '../src/runtime/decoderExits.js';
import { cosineSimilarity, type ExitPolicy } from '../src/runtime/exits.js';
import { defaultThreads, type KeyValue, LayerRunner } from '../src/runtime/layerRunner.js';
import { fromVariables } from '../src/train/trainer.js';
import { concatSequences } from '../src/runtime/rows.js';
import { randomFloats } from './random.js';

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    threads: { type: 'string' },
    rounds: { type: 'string', default: '7' },
    out: { type: 'string' },
  },
});
const threadsFlag = flags.threads === undefined ? undefined : Number(flags.threads);
const roundsWanted = Number(flags.rounds);
const presets = flags.quick ? ['small'] : ['small', 'ofa-base'];
const batches = [1, 16];
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outPath = flags.out ?? join(root, 'results', `bench-runtime${flags.quick ? '-quick' : ''}.json`);
const command = `npm run bench:runtime${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;

const VOCAB = 66;
const TEXT_LENGTH = 8;
const DECODE_TOKENS = 8; // teacher-forced decoder tokens (tfjs) = decoder steps (ORT)
const PAST_LENGTH = 8; // cached positions for the decoder-step comparison
const KV_DECODE_TOKENS = 16; // tokens decoded per run in the key/value strategy comparison (the official caption length)
/** A timed sample repeats its variant until it lasts at least this long (slow ofa-base full-depth cases: one call). */
const MIN_SAMPLE_MS = 40;

// ---------- helpers ----------

const randomIds = (batch: number, length: number, seed: number): number[][] => {
  const u = randomFloats(batch * length, seed, 0, 1);
  return Array.from({ length: batch }, (_, b) => Array.from({ length }, (_, t) => 4 + Math.floor(u[b * length + t]! * (VOCAB - 4))));
};


const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

type Variant = () => unknown | Promise<unknown>;

/**
 * Warms every variant up, picks a repeat count per variant so one sample lasts ≥ minSampleMs,
 * then runs `rounds` interleaved rounds (A, B, A, B, …). Returns per-call medians (ms) and raw samples.
 */
async function interleaved(variants: Record<string, Variant>, roundCount: number, minSampleMs = MIN_SAMPLE_MS, warmups = 2):
  Promise<Record<string, { medianMs: number; samplesMs: number[]; repeats: number }>> {
  const repeats: Record<string, number> = {};
  for (const [name, run] of Object.entries(variants)) {
    for (let i = 0; i < warmups - 1; i++) await run();
    const started = performance.now();
    await run();
    const once = Math.max(performance.now() - started, 1e-4);
    repeats[name] = Math.max(1, Math.ceil(minSampleMs / once));
  }
  const samples: Record<string, number[]> = Object.fromEntries(Object.keys(variants).map((name) => [name, []]));
  for (let round = 0; round < roundCount; round++) {
    for (const [name, run] of Object.entries(variants)) {
      const n = repeats[name]!;
      const started = performance.now();
      for (let i = 0; i < n; i++) await run();
      samples[name]!.push((performance.now() - started) / n);
    }
  }
  return Object.fromEntries(Object.entries(samples).map(([name, xs]) => [name, { medianMs: median(xs), samplesMs: xs, repeats: repeats[name]! }]));
}

interface Row {
  preset: string;
  batch: number;
  measure: string;
  /** The side the target is about (per-layer runtime / exit decision / ORT). */
  aLabel: string;
  aMs: number;
  /** The reference (single graph / layer call / tfjs). */
  bLabel: string;
  bMs: number;
  /** Displayed value and the target comparison. */
  value: number;
  unit: 'x' | '%';
  target: string;
  pass: boolean;
  rounds: number;
  note?: string;
  raw: Record<string, unknown>;
}
const rows: Row[] = [];
const threadsUsed: Record<string, number> = {};
const log = (message: string): void => { console.error(message); };

// ---------- benchmark ----------

const startedAt = new Date();
await initTensorflow();
const totalStarted = performance.now();

for (const preset of presets) {
  const config: ModelConfig = presetConfig(preset, VOCAB, { imageSize: 64, patchSize: 8, maxTextLength: 16, maxTargetLength: 24 });
  const { dim, encoderLayers, decoderLayers } = config;
  const patchCount = (config.imageSize / config.patchSize) ** 2; // 64
  const memoryLength = patchCount + TEXT_LENGTH; // 72
  const model = TfModel.initialise(config, 1);
  const setupStarted = performance.now();
  const threads = threadsFlag ?? defaultThreads(config);
  threadsUsed[preset] = threads;
  const runner = await LayerRunner.create(config, fromVariables(model.weights), { threads, fullStack: true });
  log(`[${preset}] sessions ready in ${((performance.now() - setupStarted) / 1000).toFixed(1)} s (ort ${ort.env.versions?.common ?? ''}, threads ${threads})`);

  for (const batch of batches) {
    // ofa-base at batch 16 takes seconds per encoder call: fewer rounds there.
    const rounds = preset === 'ofa-base' && batch === 16 ? Math.min(5, roundsWanted) : roundsWanted;
    const seed = batch * 101 + dim;
    const imageStates = randomFloats(batch * patchCount * dim, seed);
    const imageMask = new Float32Array(batch * patchCount).fill(1);
    const memoryMask = new Float32Array(batch * memoryLength).fill(1);

    // 1. Encoder: per-layer loop vs the single whole-encoder graph, same inputs.
    {
      const perLayer = async (): Promise<Float32Array> => {
        let states = imageStates;
        for (let i = 0; i < encoderLayers; i++) states = await runner.encoderLayer(i, states, imageMask, batch, patchCount);
        return states;
      };
      const single = (): Promise<Float32Array> => runner.fullEncoder(imageStates, imageMask, batch, patchCount);
      const r = await interleaved({ perLayer, single }, rounds);
      const ratio = r.single!.medianMs / r.perLayer!.medianMs;
      rows.push({
        preset, batch, measure: `encoder ${encoderLayers} layers (B,${patchCount},${dim})`,
        aLabel: 'per-layer', aMs: r.perLayer!.medianMs, bLabel: 'single graph', bMs: r.single!.medianMs,
        value: ratio, unit: 'x', target: '>= 0.90x', pass: ratio >= 0.9, rounds, raw: r,
      });
      log(`[${preset} B${batch}] encoder per-layer ${r.perLayer!.medianMs.toFixed(3)} ms, single ${r.single!.medianMs.toFixed(3)} ms, ratio ${ratio.toFixed(3)}`);
    }

    // 2. Decoder step at position PAST_LENGTH: per-layer loop vs the single whole-step graph.
    {
      const x = randomFloats(batch * dim, seed + 1);
      const past: KeyValue[] = Array.from({ length: decoderLayers }, (_, i) => ({
        key: randomFloats(batch * PAST_LENGTH * dim, seed + 10 + i), value: randomFloats(batch * PAST_LENGTH * dim, seed + 20 + i),
      }));
      const cross: KeyValue[] = Array.from({ length: decoderLayers }, (_, i) => ({
        key: randomFloats(batch * memoryLength * dim, seed + 30 + i), value: randomFloats(batch * memoryLength * dim, seed + 40 + i),
      }));
      const perLayer = async (): Promise<Float32Array> => {
        let hidden = x;
        for (let i = 0; i < decoderLayers; i++) {
          hidden = (await runner.decoderStep(i, hidden, past[i]!.key, past[i]!.value, PAST_LENGTH, cross[i]!.key, cross[i]!.value, memoryMask, batch, memoryLength)).hidden;
        }
        return hidden;
      };
      const single = async (): Promise<Float32Array> => (await runner.fullDecoderStep(x, past, PAST_LENGTH, cross, memoryMask, batch, memoryLength)).hidden;
      const r = await interleaved({ perLayer, single }, rounds);
      const ratio = r.single!.medianMs / r.perLayer!.medianMs;
      rows.push({
        preset, batch, measure: `decoder step ${decoderLayers} layers (t=${PAST_LENGTH}, M=${memoryLength})`,
        aLabel: 'per-layer', aMs: r.perLayer!.medianMs, bLabel: 'single graph', bMs: r.single!.medianMs,
        value: ratio, unit: 'x', target: '>= 0.90x', pass: ratio >= 0.9, rounds, raw: r,
      });
      log(`[${preset} B${batch}] decoder step per-layer ${r.perLayer!.medianMs.toFixed(3)} ms, single ${r.single!.medianMs.toFixed(3)} ms, ratio ${ratio.toFixed(3)}`);

      // 3. Exit decision cost: cosineSimilarity per sample (B calls) vs the layer call it follows.
      //    (Computing it inside the layer graph instead was measured slower: 4-11% of a layer.)
      const after = (await runner.encoderLayer(0, imageStates, imageMask, batch, patchCount));
      const span = patchCount * dim;
      const stepOut = await runner.decoderStep(0, x, past[0]!.key, past[0]!.value, PAST_LENGTH, cross[0]!.key, cross[0]!.value, memoryMask, batch, memoryLength);
      let sink = 0;
      const e = await interleaved({
        encoderSimilarity: () => { for (let b = 0; b < batch; b++) sink += cosineSimilarity(imageStates, after, b * span, span); },
        encoderLayerCall: () => runner.encoderLayer(1, imageStates, imageMask, batch, patchCount),
        decoderSimilarity: () => { for (let b = 0; b < batch; b++) sink += cosineSimilarity(x, stepOut.hidden, b * dim, dim); },
        decoderLayerCall: () => runner.decoderStep(1, x, past[1]!.key, past[1]!.value, PAST_LENGTH, cross[1]!.key, cross[1]!.value, memoryMask, batch, memoryLength),
      }, rounds, MIN_SAMPLE_MS, 3);
      if (Number.isNaN(sink)) log('(similarity sink is NaN)');
      for (const [kind, sim, layer, values] of [
        ['encoder', 'encoderSimilarity', 'encoderLayerCall', span], ['decoder', 'decoderSimilarity', 'decoderLayerCall', dim],
      ] as const) {
        const percent = (100 * e[sim]!.medianMs) / e[layer]!.medianMs;
        rows.push({
          preset, batch, measure: `exit decision after ${kind} layer (${batch}x cosine over ${values} values)`,
          aLabel: 'similarity', aMs: e[sim]!.medianMs, bLabel: `${kind} layer`, bMs: e[layer]!.medianMs,
          value: percent, unit: '%', target: '< 3%', pass: percent < 3, rounds,
          raw: { similarity: e[sim], layer: e[layer] },
        });
        log(`[${preset} B${batch}] ${kind} exit decision costs ${percent.toFixed(2)}% of the layer (${e[sim]!.medianMs.toFixed(4)} ms vs ${e[layer]!.medianMs.toFixed(3)} ms)`);
      }
    }

    // 4. Full depth: ORT per-layer runtime vs TfModel.forward + last-layer logits (tfjs wasm).
    {
      const pixels = randomFloats(batch * config.imageSize * config.imageSize * 3, seed + 2);
      const textIds = randomIds(batch, TEXT_LENGTH, seed + 3);
      const decoderIds = randomIds(batch, DECODE_TOKENS, seed + 4);
      const textMask = new Float32Array(batch * TEXT_LENGTH).fill(1);
      const inputs = {
        images: tf.tensor4d(pixels, [batch, config.imageSize, config.imageSize, 3]),
        textIds: tf.tensor2d(textIds.flat(), [batch, TEXT_LENGTH], 'int32'),
        textMask: tf.tensor2d(textMask, [batch, TEXT_LENGTH]),
        decoderIds: tf.tensor2d(decoderIds.flat(), [batch, DECODE_TOKENS], 'int32'),
      };
      const tfjs = (): Float32Array => {
        const logits = tf.tidy(() => model.logits(model.forward(inputs).decoderStates.at(-1)!));
        const data = logits.dataSync() as Float32Array;
        logits.dispose();
        return data;
      };
      const ortRuntime = async (): Promise<Float32Array> => {
        let image = await runner.embedImage(pixels, batch);
        let text = await runner.embedText(textIds);
        for (let i = 0; i < encoderLayers; i++) image = await runner.encoderLayer(i, image, imageMask, batch, patchCount);
        for (let i = 0; i < encoderLayers; i++) text = await runner.encoderLayer(i, text, textMask, batch, TEXT_LENGTH);
        const memory = await runner.encoderFinalNorm(concatSequences([image, text], [patchCount, TEXT_LENGTH], dim, batch), batch, memoryLength);
        const cross: KeyValue[] = [];
        for (let i = 0; i < decoderLayers; i++) cross.push(await runner.crossKeyValues(i, memory, batch, memoryLength));
        const cache: KeyValue[] = Array.from({ length: decoderLayers }, () => ({ key: new Float32Array(0), value: new Float32Array(0) }));
        let finalStates: Float32Array = new Float32Array(0);
        for (let position = 0; position < DECODE_TOKENS; position++) {
          let x = await runner.embedDecoder(decoderIds.map((row) => row[position]!), new Array<number>(batch).fill(position));
          for (let i = 0; i < decoderLayers; i++) {
            const step = await runner.decoderStep(i, x, cache[i]!.key, cache[i]!.value, position, cross[i]!.key, cross[i]!.value, memoryMask, batch, memoryLength);
            cache[i] = {
              key: concatSequences([cache[i]!.key, step.key], [position, 1], dim, batch),
              value: concatSequences([cache[i]!.value, step.value], [position, 1], dim, batch),
            };
            x = step.hidden;
          }
          finalStates = concatSequences([finalStates, x], [position, 1], dim, batch);
        }
        return runner.head(finalStates, batch, DECODE_TOKENS);
      };
      // Sanity: both sides compute the same logits (random weights, so just a loose check).
      const [a, b] = [tfjs(), await ortRuntime()];
      let worst = 0;
      let scale = 0;
      for (let i = 0; i < a.length; i++) { worst = Math.max(worst, Math.abs(a[i]! - b[i]!)); scale = Math.max(scale, Math.abs(a[i]!)); }
      const agreement = worst / scale;
      const slow = preset === 'ofa-base';
      const tfRounds = slow ? (batch === 1 ? 5 : 3) : rounds;
      const r = await interleaved({ ortRuntime, tfjs }, tfRounds, slow ? 0 : MIN_SAMPLE_MS, 1); // the sanity run above was the first warm-up
      const ratio = r.tfjs!.medianMs / r.ortRuntime!.medianMs;
      rows.push({
        preset, batch, measure: `full depth: encoder (image+text) + ${DECODE_TOKENS} decoder tokens + head`,
        aLabel: 'ORT per-layer', aMs: r.ortRuntime!.medianMs, bLabel: 'tfjs wasm', bMs: r.tfjs!.medianMs,
        value: ratio, unit: 'x', target: '>= 3x (tfjs/ORT)', pass: ratio >= 3, rounds: tfRounds,
        note: `${slow ? `slow case: ${tfRounds} rounds, 1 call per sample; ` : ''}max |logit diff| / max |logit| = ${agreement.toExponential(1)}`,
        raw: r,
      });
      log(`[${preset} B${batch}] full depth ORT ${r.ortRuntime!.medianMs.toFixed(1)} ms, tfjs ${r.tfjs!.medianMs.toFixed(1)} ms, ratio ${ratio.toFixed(2)} (logit agreement ${agreement.toExponential(1)})`);
      tf.dispose(Object.values(inputs));
    }

    // 5. Decoding KV_DECODE_TOKENS tokens (teacher-forced ids) where every odd position exits after half the
    //    layers: each key/value strategy for the skipped layers vs the same tokens at full depth.
    {
      const memory = randomFloats(batch * memoryLength * dim, seed + 5);
      const ids = randomIds(batch, KV_DECODE_TOKENS, seed + 6);
      const half = Math.ceil(decoderLayers / 2);
      const alternate: ExitPolicy = { name: 'odd positions exit at L/2', needsHead: false, needsSimilarity: false, start: () => ({}), shouldExit: ({ layer, position }) => position! % 2 === 1 && layer >= half };
      const never: ExitPolicy = { name: 'full depth', needsHead: false, needsSimilarity: false, start: () => ({}), shouldExit: () => false };
      const decode = (policy: ExitPolicy, strategy: KvStrategy) => async (): Promise<number> => {
        const context: DecoderContext = {
          runner, memory, memoryMask, memoryLength, samples: batch, policy, strategy, granularity: 'token', maxLength: KV_DECODE_TOKENS, bosId: 1,
          crossCache: [], flops: new Array<number>(batch).fill(0), fullDepthFlops: new Array<number>(batch).fill(0), recordSimilarities: false,
        };
        const sequences = Array.from({ length: batch }, (_, b) => newSequence(b, decoderLayers));
        for (let position = 0; position < KV_DECODE_TOKENS; position++) {
          await decodeNextToken(context, sequences);
          sequences.forEach((sequence, b) => sequence.tokens.push(ids[b]![position]!));
        }
        return context.flops.reduce((a, b) => a + b, 0);
      };
      const variants: Record<string, () => Promise<number>> = { fullDepth: decode(never, 'drop') };
      for (const strategy of KV_STRATEGIES) variants[strategy] = decode(alternate, strategy);
      const flops: Record<string, number> = {};
      for (const [name, run] of Object.entries(variants)) flops[name] = await run();
      const r = await interleaved(variants, rounds);
      for (const strategy of KV_STRATEGIES) {
        const ratio = r[strategy]!.medianMs / r.fullDepth!.medianMs;
        rows.push({
          preset, batch, measure: `decode ${KV_DECODE_TOKENS} tokens, odd ones exit at layer ${half}/${decoderLayers}: kv ${strategy}`,
          aLabel: strategy, aMs: r[strategy]!.medianMs, bLabel: 'full depth', bMs: r.fullDepth!.medianMs,
          value: ratio, unit: 'x', target: '—', pass: true, rounds,
          note: `kv ${strategy}: FLOPs ${(100 * flops[strategy]! / flops.fullDepth!).toFixed(1)}% of full depth`,
          raw: { method: r[strategy], fullDepth: r.fullDepth, flops: flops[strategy], fullDepthFlops: flops.fullDepth },
        });
        log(`[${preset} B${batch}] kv ${strategy}: ${r[strategy]!.medianMs.toFixed(2)} ms vs full depth ${r.fullDepth!.medianMs.toFixed(2)} ms (time ${ratio.toFixed(3)}x, FLOPs ${(100 * flops[strategy]! / flops.fullDepth!).toFixed(1)}%)`);
      }
    }
  }
  await runner.dispose();
  model.dispose();
}

// ---------- table ----------

const fmtMs = (ms: number): string => (ms < 0.01 ? `${(ms * 1000).toFixed(2)} us` : ms < 10 ? `${ms.toFixed(3)} ms` : `${ms.toFixed(1)} ms`);
const header = ['preset', 'B', 'case', 'measured side', 'reference side', 'value', 'target', 'result'];
const body = rows.map((r) => [
  r.preset, String(r.batch), r.measure,
  `${r.aLabel} ${fmtMs(r.aMs)}`, `${r.bLabel} ${fmtMs(r.bMs)}`,
  r.unit === 'x' ? `${r.value.toFixed(2)}x` : `${r.value.toFixed(2)}%`, r.target, r.target === '—' ? 'info' : r.pass ? 'PASS' : 'FAIL',
]);
const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ');
const table = [line(header), widths.map((w) => '-'.repeat(w)).join('-|-'), ...body.map(line)].join('\n');
const failures = rows.filter((r) => !r.pass).length; // 'info' rows (target '—') always pass
const cpus = os.cpus();
const summary = [
  `bench:runtime — ${command}`,
  `${startedAt.toISOString()}, ${cpus[0]?.model ?? 'unknown cpu'} x${cpus.length}, node ${process.version}, ORT ${ort.env.versions?.common ?? ''} intraOpNumThreads ${JSON.stringify(threadsUsed)} (LayerRunner options as shipped), tfjs ${tf.version_core} (${tf.getBackend()})`,
  `random weights, vocab ${VOCAB}, image 64 / patch 8 (64 tokens), text ${TEXT_LENGTH}, decoder t=${PAST_LENGTH}, memory 72; interleaved medians of ${roundsWanted} rounds (ofa-base batch 16: 5; tfjs ofa-base: fewer, see notes)`,
  `load average at end ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} (other processes share the ${cpus.length} cores)`,
  `ratios "x" for per-layer rows = per-layer throughput / single-graph throughput; full-depth rows = tfjs time / ORT time; kv rows = time with exits / time at full depth (per-layer runtime)`,
].join('\n');
console.log(`${summary}\n\n${table}\n\n${failures === 0 ? 'all targets met' : `${failures} target(s) missed`} (total ${((performance.now() - totalStarted) / 1000).toFixed(0)} s)`);
for (const r of rows.filter((x) => x.note)) console.log(`note [${r.preset} B${r.batch}]: ${r.note}`);

mkdirSync(dirname(outPath), { recursive: true });
writeFileAtomic(outPath, `${JSON.stringify({
  command,
  date: startedAt.toISOString(),
  durationSeconds: (performance.now() - totalStarted) / 1000,
  machine: { platform: os.platform(), release: os.release(), arch: os.arch(), cpuModel: cpus[0]?.model, cpuCount: cpus.length, totalMemoryBytes: os.totalmem(), loadAverageAtEnd: os.loadavg(), node: process.version },
  settings: { threads: threadsUsed, rounds: roundsWanted, presets, batches, vocab: VOCAB, imageSize: 64, patchSize: 8, textLength: TEXT_LENGTH, decodeTokens: DECODE_TOKENS, pastLength: PAST_LENGTH, memoryLength: 72, minSampleMs: MIN_SAMPLE_MS, tfjsVersion: tf.version_core, tfjsBackend: tf.getBackend() },
  table,
  allTargetsMet: failures === 0,
  rows,
}, null, 2)}\n`);
log(`wrote ${outPath}`);
