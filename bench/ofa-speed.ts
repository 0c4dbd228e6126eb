// OFA-Base speed on this machine (issue #16 item 5): the `ofa` family with random weights at the
// OFA-Base / MuE shape (width 768, 6+6 layers, 12 heads, ResNet-101 stages 1-3, 480 px → 30×30
// patches, vocabulary 59,457), batch 1, full depth (no exits):
//   - one VE question: encoder (image + 17-token prompt), decoder teacher-forced over the 17-token
//     prompt + answer, logits at every position (the scoring pass of MuE's VE evaluation);
//   - one caption: encoder (image + 8-token prompt), then 16 decoding steps at beam width 5
//     (decoder batch 5, K/V cache; the token fed back is the argmax of row 0: the cost does not
//     depend on which token it is);
// each run two ways, interleaved (A, B, A, B, …) and compared by medians: the per-layer pipeline
// (one graph per layer, the way early exits run) and one fused graph per encoder stream and per
// decoder call (ofa_full_encoder, ofa_full_decoder). Embeddings, position biases and the head are
// the same pieces in both. Peak RSS of the process is reported.
// The official PyTorch forward is measured only when `python3 -c "import torch"` works.
// Usage: npm run bench:ofa [-- --rounds 3 --threads 2 --out FILE]
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { writeFileAtomic } from '../src/model/atomicWrite.js';
import { type OfaConfig, ofaConfigFromModelArgs } from '../src/model/ofaConfig.js';
import { ofaParameterSpecs } from '../src/model/ofaParameters.js';
import type { NamedArray } from '../src/model/safetensors.js';
import { ofaEncode, ofaForward, type OfaForwardInputs } from '../src/runtime/ofaForward.js';
import { OfaExitRunner } from '../src/runtime/ofaExitRunner.js';
import { range } from '../src/runtime/ofaPositions.js';
import type { KeyValue } from '../src/runtime/exitRunner.js';
import { concatSequences } from '../src/runtime/rows.js';
import { randomFloats } from './random.js';

const { values: flags } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, threads: { type: 'string' }, out: { type: 'string' } } });
const rounds = Number(flags.rounds);
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds must be a positive integer (got ${flags.rounds})`);
const threads = flags.threads === undefined ? undefined : Number(flags.threads);
if (threads !== undefined && (!Number.isInteger(threads) || threads < 1)) throw new Error(`--threads must be a positive integer (got ${flags.threads})`);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outPath = flags.out ?? join(root, 'results', 'bench-ofa.json');
const command = `npm run bench:ofa${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;

/** OFA-Base as the MuE scripts build it (ARCHITECTURE.md §1). */
const OFA_BASE_MODEL_ARGS = {
  encoder_embed_dim: 768, decoder_embed_dim: 768, encoder_ffn_embed_dim: 3072, decoder_ffn_embed_dim: 3072,
  encoder_layers: 6, decoder_layers: 6, encoder_attention_heads: 12, decoder_attention_heads: 12, resnet_type: 'resnet101',
  patch_image_size: 480, train_mue: true, attn_scale_factor: 2, token_bucket_size: 256, image_bucket_size: 42,
  max_source_positions: 1024, max_target_positions: 1024, scale_attn: true, scale_fc: true, scale_heads: true,
  encoder_normalize_before: true, decoder_normalize_before: true, share_all_embeddings: true, layernorm_embedding: true,
  patch_layernorm_embedding: true, add_type_embedding: true, no_scale_embedding: true, entangle_position_embedding: false,
  disable_entangle: true, scale_resids: false, activation_fn: 'gelu',
};
const VOCAB = 59457;
const VE_PROMPT = [0, 473, 5, 2274, 6190, 22, 10, 313, 16, 816, 10, 8669, 15, 1289, 22, 116, 2]; // ' does the image describe " a man is playing a guitar on stage "?'
const CAPTION_PROMPT = [0, 99, 473, 5, 2274, 6190, 116, 2]; // ' what does the image describe?'
const CAPTION_STEPS = 16;
const BEAM = 5;


/** Random weights of every tensor the forward reads: uniform with std 0.02 for 'normal', constants otherwise; the three tied embeddings are one tensor. */
function randomWeights(config: OfaConfig): Map<string, NamedArray> {
  const weights = new Map<string, NamedArray>();
  const limit = 0.02 * Math.sqrt(3); // uniform(−a, a) has std a/√3
  ofaParameterSpecs(config).forEach((spec, i) => {
    if (spec.name === 'decoder.embed_tokens.weight' || spec.name === 'decoder.output_projection.weight') return;
    const count = spec.shape.reduce((a, b) => a * b, 1);
    const data = spec.init === 'normal' ? randomFloats(count, 1000 + i, -limit, limit) : new Float32Array(count).fill(spec.init === 'ones' ? 1 : 0);
    weights.set(spec.name, { shape: spec.shape, data });
  });
  const embedding = weights.get('encoder.embed_tokens.weight')!;
  weights.set('decoder.embed_tokens.weight', embedding);
  weights.set('decoder.output_projection.weight', embedding);
  return weights;
}

const median = (xs: number[]): number => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

/** Repeats a row-major (1, …) array `times` along the batch. */
function repeatRows(data: Float32Array, times: number): Float32Array {
  const out = new Float32Array(data.length * times);
  for (let i = 0; i < times; i++) out.set(data, i * data.length);
  return out;
}

/** The encoder with one fused graph per stream; returns the memory (B, M, D) and its length. */
async function fusedEncoder(runner: OfaExitRunner, inputs: OfaForwardInputs): Promise<{ memory: Float32Array; memoryLength: number }> {
  const textLength = inputs.textIds[0]!.length;
  const patches = runner.imageTokens;
  const imageStates = await runner.fullEncoder(await runner.embedImage(inputs.pixels, 1), new Float32Array(patches).fill(1), 1, patches, 'image');
  const textStates = await runner.fullEncoder(await runner.embedText(inputs.textIds), new Float32Array(textLength).fill(1), 1, textLength, 'text');
  const memoryLength = patches + textLength;
  const memory = await runner.encoderFinalNorm(concatSequences([imageStates, textStates], [patches, textLength], runner.config.dim, 1), 1, memoryLength);
  return { memory, memoryLength };
}

/** VE scoring pass, fused: encoder per stream, decoder over the whole prompt in one graph, head. */
async function fusedVe(runner: OfaExitRunner, inputs: OfaForwardInputs): Promise<Float32Array> {
  const { memory, memoryLength } = await fusedEncoder(runner, inputs);
  const length = inputs.decoderIds[0]!.length;
  const states = await runner.embedDecoderPrompt(inputs.decoderIds);
  const cross: KeyValue[] = [];
  for (let l = 0; l < runner.config.decoderLayers; l++) cross.push(await runner.crossKeyValues(l, memory, 1, memoryLength));
  const empty = new Float32Array(0);
  const { hidden } = await runner.fullDecoderStep(states, cross.map(() => ({ key: empty, value: empty })), 0, cross, new Float32Array(memoryLength).fill(1), 1, memoryLength, length);
  return runner.head(hidden, 1, length);
}

/** 16 beam-shaped decoding steps (decoder batch 5) after the encoder; `fused` picks one graph per step or one per layer. */
async function caption(runner: OfaExitRunner, inputs: OfaForwardInputs, fused: boolean): Promise<number[]> {
  const { dim, decoderLayers, vocabSize } = runner.config;
  const encoded = fused ? await fusedEncoder(runner, inputs) : await ofaEncode(runner, inputs);
  const { memoryLength } = encoded;
  const memoryMask = new Float32Array(BEAM * memoryLength).fill(1);
  // Cross K/V of the one image, repeated for the beams (the beams share the encoder output).
  const cross: KeyValue[] = [];
  for (let l = 0; l < decoderLayers; l++) {
    const { key, value } = await runner.crossKeyValues(l, encoded.memory, 1, memoryLength);
    cross.push({ key: repeatRows(key, BEAM), value: repeatRows(value, BEAM) }); // (5, M, D)
  }
  const cache: KeyValue[] = range(decoderLayers).map(() => ({ key: new Float32Array(0), value: new Float32Array(0) }));
  const append = (past: Float32Array, current: Float32Array, step: number) => concatSequences([past, current], [step, 1], dim, BEAM); // (5, t + 1, D)
  const tokens: number[] = [];
  let token = 0;
  for (let step = 0; step < CAPTION_STEPS; step++) {
    let x = await runner.embedDecoder(range(BEAM).map(() => token));
    if (fused) {
      const result = await runner.fullDecoderStep(x, cache, step, cross, memoryMask, BEAM, memoryLength);
      result.keyValues.forEach((kv, l) => { cache[l] = { key: append(cache[l]!.key, kv.key, step), value: append(cache[l]!.value, kv.value, step) }; });
      x = result.hidden;
    } else {
      for (let l = 0; l < decoderLayers; l++) {
        const output = await runner.decoderStep(l, x, cache[l]!.key, cache[l]!.value, step, cross[l]!.key, cross[l]!.value, memoryMask, BEAM, memoryLength, step);
        cache[l] = { key: append(cache[l]!.key, output.key, step), value: append(cache[l]!.value, output.value, step) };
        x = output.hidden;
      }
    }
    const logits = await runner.head(x, BEAM, 1);
    let best = 0;
    for (let v = 1; v < vocabSize; v++) if (logits[v]! > logits[best]!) best = v;
    token = best;
    tokens.push(token);
  }
  return tokens;
}

async function timed(run: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await run();
  return performance.now() - start;
}

function torchStatus(): string {
  const probe = spawnSync('python3', ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
  return probe.status === 0 ? `torch ${probe.stdout.trim()}` : 'not available: python3 has no torch module (Debian python3-torch is not installed on this machine), so the official PyTorch forward was not measured';
}

async function main(): Promise<void> {
  const config = ofaConfigFromModelArgs(OFA_BASE_MODEL_ARGS, VOCAB);
  const buildStart = performance.now();
  const weights = randomWeights(config);
  const runner = await OfaExitRunner.create(config, weights, { fullStack: true, threads });
  const buildMs = performance.now() - buildStart;
  console.log(`OFA-Base pieces built in ${(buildMs / 1000).toFixed(1)} s`);
  const pixels = randomFloats(config.imageSize * config.imageSize * 3, 7, -1, 1);
  const ve: OfaForwardInputs = { pixels, textIds: [VE_PROMPT], decoderIds: [[...VE_PROMPT.slice(0, -1), 4420]] };
  const captionInputs: OfaForwardInputs = { pixels, textIds: [CAPTION_PROMPT], decoderIds: [[0]] };
  const variants: Record<string, () => Promise<unknown>> = {
    've.pipeline': () => ofaForward(runner, ve),
    've.fused': () => fusedVe(runner, ve),
    'caption.pipeline': () => caption(runner, captionInputs, false),
    'caption.fused': () => caption(runner, captionInputs, true),
    'stem.only': () => runner.ofa.embedImage(pixels, 1),
  };
  // Same results both ways (a benchmark of two different computations would mean nothing).
  const [pipelineTokens, fusedTokens] = [await caption(runner, captionInputs, false), await caption(runner, captionInputs, true)];
  if (pipelineTokens.join() !== fusedTokens.join()) throw new Error(`pipeline and fused captions differ: ${pipelineTokens} vs ${fusedTokens}`);
  const samples: Record<string, number[]> = Object.fromEntries(Object.keys(variants).map((name) => [name, []]));
  for (const name of Object.keys(variants)) await variants[name]!(); // warm-up
  for (let round = 0; round < rounds; round++) {
    for (const [name, variant] of Object.entries(variants)) samples[name]!.push(await timed(variant));
    console.log(`round ${round + 1}/${rounds}: ${Object.entries(samples).map(([name, xs]) => `${name} ${xs.at(-1)!.toFixed(0)} ms`).join(', ')}`);
  }
  const medians = Object.fromEntries(Object.entries(samples).map(([name, xs]) => [name, median(xs)]));
  const result = {
    command,
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, loadAverage1m: os.loadavg()[0], memoryGB: Math.round(os.totalmem() / 2 ** 30) },
    model: { shape: 'OFA-Base (MuE): width 768, FFN 3072, 12 heads, 6+6 layers, ResNet-101 stages 1-3, vocabulary 59457', imageSize: config.imageSize, patches: runner.imageTokens, weights: 'random (uniform, std 0.02)', batch: 1, threads: threads ?? 2 },
    tasks: {
      ve: `encoder (image + ${VE_PROMPT.length}-token prompt) + decoder teacher-forced over ${VE_PROMPT.length} positions + logits, full depth`,
      caption: `encoder (image + ${CAPTION_PROMPT.length}-token prompt) + cross K/V once + ${CAPTION_STEPS} decoding steps at beam width ${BEAM} (decoder batch ${BEAM}, K/V cache) + head per step, full depth`,
    },
    rounds,
    medianMs: medians,
    pipelineSpeedVsFused: { ve: medians['ve.fused']! / medians['ve.pipeline']!, caption: medians['caption.fused']! / medians['caption.pipeline']! },
    speedGoal: 'per-layer pipeline ≥ 0.9x the fused graph (pipelineSpeedVsFused = fused ms / pipeline ms)',
    samplesMs: samples,
    buildSeconds: buildMs / 1000,
    peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
    officialPyTorch: torchStatus(),
  };
  await runner.dispose();
  mkdirSync(dirname(outPath), { recursive: true });
  writeFileAtomic(outPath, `${JSON.stringify(result, null, 2)}\n`);
  console.table(Object.fromEntries(Object.entries(medians).map(([name, ms]) => [name, { medianMs: Math.round(ms) }])));
  console.log(`pipeline speed vs fused: VE ${result.pipelineSpeedVsFused.ve.toFixed(2)}x, caption ${result.pipelineSpeedVsFused.caption.toFixed(2)}x; peak RSS ${result.peakRssMB} MB; PyTorch: ${result.officialPyTorch}`);
  console.log(`wrote ${outPath}`);
}

await main();
