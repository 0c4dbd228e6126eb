// Parity of the `ofa` family with a reference fixture made by the official PyTorch code
// (layout: ../shared/ofa/fixtures/README.md): every stored tensor (ResNet output, embeddings,
// biases, every layer, per-layer logits, encoder output) within a relative error
// max|ours − ref| / max|ref|, and the exit layers of every early-exit run.
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { readFileBounded } from '../data/boundedRead.js';
import { readOfaCheckpointWeights } from '../model/ofaCheckpoint.js';
import { countResnetBlocks, type OfaConfig, ofaConfigFromModelArgs } from '../model/ofaConfig.js';
import { decodeSafetensors, type NamedArray, type SafetensorsFile } from '../model/safetensors.js';
import { ofaForward, type OfaForwardInputs, type OfaThresholds } from '../runtime/ofaForward.js';
import { OfaExitRunner } from '../runtime/ofaExitRunner.js';

export const OFA_PARITY_TOLERANCE = 1e-4;

export interface StageError {
  name: string;
  shape: number[];
  /** max |ours − ref| / max |ref| (max |ours − ref| when the reference is all zero). */
  relativeError: number;
  maxAbsDifference: number;
  pass: boolean;
  /** Set when the port produced no such tensor or one of another size. */
  problem?: string;
}

export interface ExitRunResult {
  name: string;
  thresholds: OfaThresholds;
  expected: { image: number; text: number; decoder: number };
  actual: { image: number; text: number; decoder: number };
  pass: boolean;
}

export interface OfaVerification {
  fixture: string;
  weights: string;
  mode: OfaConfig['encoderMode'];
  tolerance: number;
  stages: StageError[];
  exitRuns: ExitRunResult[];
  /** Largest relative error over all stages. */
  worstRelativeError: number;
  pass: boolean;
}

/** Sizes of a fixture, needed to map its tensors onto ours. */
interface FixtureConfig {
  model_args: Record<string, unknown>;
  config?: string;
  seed?: number;
  n_weights_stored?: number;
  aliases?: Record<string, string>;
  early_exit_runs?: { name: string; img_thres: number; txt_thres: number; decoder_thres: number; 'encoder_exit_layer[image,text]': [number, number]; decoder_exit_layer: number }[];
}

/** Largest fixture file read or unpacked (OFA-Large weights are about 1.9 GB). */
const MAX_FIXTURE_FILE_BYTES = 2 ** 31 - 1;
/** Largest fixture config.json. */
const MAX_FIXTURE_JSON_BYTES = 16 * 1024 * 1024;

/** Reads FILE (gunzipped when it is gzip data) or, when only FILE.gz exists, its gunzip. */
function readMaybeGzipped(path: string): Buffer | null {
  const gunzip = (data: Buffer): Buffer => gunzipSync(data, { maxOutputLength: MAX_FIXTURE_FILE_BYTES });
  const gunzipped = (data: Buffer): Buffer => (data[0] === 0x1f && data[1] === 0x8b ? gunzip(data) : data);
  if (existsSync(path)) return gunzipped(readFileBounded(path, MAX_FIXTURE_FILE_BYTES));
  if (existsSync(`${path}.gz`)) return gunzip(readFileBounded(`${path}.gz`, MAX_FIXTURE_FILE_BYTES));
  return null;
}

function readSafetensors(path: string): SafetensorsFile {
  const buffer = readMaybeGzipped(path);
  if (!buffer) throw new Error(`${path} (or ${path}.gz) not found`);
  return decodeSafetensors(buffer, path);
}

/**
 * The fixture's weights: DIR/weights.safetensors[.gz]; else DIR/checkpoint.pt[.gz]; else a sibling
 * fixture made with the same generator config and seed (the generator writes byte-identical weights
 * for --mode mue and --mode ofa, fixtures/README.md), e.g. tiny-ofa -> ../tiny-mue.
 */
interface FixtureWeights { path: string; weights: Map<string, NamedArray>; aliases: Record<string, string> }

function locateWeights(directory: string, fixture: FixtureConfig, explicit?: string): FixtureWeights {
  const fromSafetensors = (path: string): FixtureWeights => {
    const file = readSafetensors(path);
    let aliases = fixture.aliases ?? {};
    if (file.metadata.aliases) aliases = JSON.parse(file.metadata.aliases) as Record<string, string>;
    return { path, weights: file.tensors, aliases };
  };
  /** DIR/weights.safetensors[.gz], else DIR/checkpoint.pt[.gz] (read as `mue convert-ofa` reads it). */
  const weightsIn = (dir: string): FixtureWeights | null => {
    const own = join(dir, 'weights.safetensors');
    if (existsSync(own) || existsSync(`${own}.gz`)) return fromSafetensors(own);
    for (const name of ['checkpoint.pt', 'checkpoint.pt.gz']) {
      const path = join(dir, name);
      if (existsSync(path)) {
        const { weights, aliases } = readOfaCheckpointWeights(path);
        return { path, weights, aliases };
      }
    }
    return null;
  };
  if (explicit) return fromSafetensors(explicit);
  const own = weightsIn(directory);
  if (own) return own;
  const parent = dirname(resolve(directory));
  for (const sibling of readdirSync(parent, { withFileTypes: true })) {
    if (!sibling.isDirectory() || resolve(parent, sibling.name) === resolve(directory)) continue;
    const siblingDirectory = join(parent, sibling.name);
    if (!existsSync(join(siblingDirectory, 'config.json'))) continue;
    const other = JSON.parse(readFileBounded(join(siblingDirectory, 'config.json'), MAX_FIXTURE_JSON_BYTES).toString('utf8')) as FixtureConfig;
    if (other.config === undefined || other.config !== fixture.config || other.seed !== fixture.seed) continue;
    const found = weightsIn(siblingDirectory);
    if (found) return found;
  }
  throw new Error(`${directory}: no weights.safetensors, no checkpoint.pt and no sibling fixture with generator config ${JSON.stringify(fixture.config)} and seed ${fixture.seed}`);
}

/** Stage names whose reference layout is fairseq's time-major T × B × C (ours is B × T × C). */
const TIME_MAJOR = /^(enc\.(text|image)\.(embed|layer\d+)|enc\.(embed|layer\d+|out)|dec\.(embed|layer\d+)|exit\.\w+\.enc\.out)$/;

/** (B, T, C) -> (T, B, C). */
function toTimeMajor(data: Float32Array, batch: number, length: number, width: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let b = 0; b < batch; b++) for (let t = 0; t < length; t++) out.set(data.subarray((b * length + t) * width, (b * length + t + 1) * width), (t * batch + b) * width);
  return out;
}

/** A tensor shared by every row (leading 1 or no batch axis) repeated `batch` times. */
function repeated(data: Float32Array, batch: number): Float32Array {
  const out = new Float32Array(data.length * batch);
  for (let b = 0; b < batch; b++) out.set(data, b * data.length);
  return out;
}

/** Our tensor in the reference's layout (shape from the reference). */
function inReferenceLayout(name: string, ours: Float32Array, shape: number[], batch: number): Float32Array {
  if (TIME_MAJOR.test(name)) return toTimeMajor(ours, batch, shape[0]!, shape[2]!);
  const size = shape.reduce((a, b) => a * b, 1);
  // Shared across the batch in our pieces: biases (1, nh, Tq, Tk) vs (B·nh, Tq, Tk), position embeddings (M, D) vs (B, M, D).
  if ((name.startsWith('attn_bias.') || name === 'enc.position_embeddings') && ours.length * batch === size) return repeated(ours, batch);
  return ours;
}

/** Keeps the logit columns a trimmed fixture stores (outputs metadata logit_columns), (B, T, V) -> (B, T, K). */
function trimmedColumns(ours: Float32Array, vocabSize: number, columns: number[]): Float32Array {
  const rows = ours.length / vocabSize;
  const out = new Float32Array(rows * columns.length);
  for (let r = 0; r < rows; r++) columns.forEach((column, k) => { out[r * columns.length + k] = ours[r * vocabSize + column]!; });
  return out;
}

function compare(name: string, ours: Float32Array | undefined, reference: NamedArray, tolerance: number): StageError {
  const base = { name, shape: reference.shape };
  if (!ours) return { ...base, relativeError: Infinity, maxAbsDifference: Infinity, pass: false, problem: 'not computed by the port' };
  if (ours.length !== reference.data.length) return { ...base, relativeError: Infinity, maxAbsDifference: Infinity, pass: false, problem: `port has ${ours.length} values, reference ${reference.data.length}` };
  let difference = 0;
  let scale = 0;
  for (let i = 0; i < ours.length; i++) {
    const d = Math.abs(ours[i]! - reference.data[i]!);
    if (!(d <= difference)) difference = d; // NaN-propagating max
    scale = Math.max(scale, Math.abs(reference.data[i]!));
  }
  const relativeError = scale > 0 ? difference / scale : difference;
  return { ...base, relativeError, maxAbsDifference: difference, pass: relativeError <= tolerance };
}

/** Row-major (B, 3, S, S) -> (B, S, S, 3). */
function channelsLast(images: NamedArray): Float32Array {
  const [batch, channels, height, width] = images.shape as [number, number, number, number];
  const out = new Float32Array(images.data.length);
  for (let b = 0; b < batch; b++) for (let c = 0; c < channels; c++) for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
    out[((b * height + y) * width + x) * channels + c] = images.data[((b * channels + c) * height + y) * width + x]!;
  }
  return out;
}

function rowsOf(tensor: NamedArray, name: string): number[][] {
  if (tensor.shape.length !== 2) throw new Error(`inputs: ${name} must be (B, T), got [${tensor.shape}]`);
  const [rows, columns] = tensor.shape as [number, number];
  return Array.from({ length: rows }, (_, r) => Array.from(tensor.data.subarray(r * columns, (r + 1) * columns)));
}

/** A fixture read and checked: the model config, its weights (aliases resolved), the forward inputs, the reference tensors. */
export interface OfaFixture {
  config: OfaConfig;
  weights: Map<string, NamedArray>;
  weightsPath: string;
  inputs: OfaForwardInputs;
  outputs: Map<string, NamedArray>;
  /** Vocabulary columns the reference logits keep (trimmed test copies), or null for all. */
  logitColumns: number[] | null;
  earlyExitRuns: NonNullable<FixtureConfig['early_exit_runs']>;
}

export function loadOfaFixture(directory: string, weightsOverride?: string): OfaFixture {
  const configPath = join(directory, 'config.json');
  if (!existsSync(configPath)) throw new Error(`${directory}: no config.json (not a fixture directory)`);
  let fixture: FixtureConfig;
  try {
    fixture = JSON.parse(readFileBounded(configPath, MAX_FIXTURE_JSON_BYTES).toString('utf8')) as FixtureConfig;
  } catch {
    throw new Error(`${configPath}: not valid JSON`);
  }
  if (typeof fixture.model_args !== 'object' || fixture.model_args === null) throw new Error(`${configPath}: no model_args`);
  const { path: weightsPath, weights, aliases } = locateWeights(directory, fixture, weightsOverride);
  for (const [alias, target] of Object.entries(aliases)) {
    const tensor = weights.get(target);
    if (!tensor) throw new Error(`${weightsPath}: alias ${alias} points at missing tensor ${target}`);
    weights.set(alias, tensor);
  }
  const embedding = weights.get('encoder.embed_tokens.weight');
  if (!embedding) throw new Error(`${weightsPath}: no encoder.embed_tokens.weight (not OFA weights)`);
  const config = ofaConfigFromModelArgs(fixture.model_args, embedding.shape[0]!, countResnetBlocks(weights.keys()));

  const inputs = readSafetensors(join(directory, 'inputs.safetensors')).tensors;
  const outputsFile = readSafetensors(join(directory, 'outputs.safetensors'));
  const outputs = outputsFile.tensors;
  const logitColumns = outputsFile.metadata.logit_columns ? (JSON.parse(outputsFile.metadata.logit_columns) as number[]) : null;
  const need = (name: string): NamedArray => {
    const tensor = inputs.get(name);
    if (!tensor) throw new Error(`${directory}/inputs.safetensors: no ${name}`);
    return tensor;
  };
  const images = need('patch_images');
  if (images.shape[2] !== config.imageSize || images.shape[3] !== config.imageSize) throw new Error(`inputs: patch_images [${images.shape}] do not match patch_image_size ${config.imageSize}`);
  if (inputs.get('patch_masks')?.data.some((value) => value === 0)) throw new Error('inputs: patch_masks false (an absent image) is not supported');
  const forwardInputs = { pixels: channelsLast(images), textIds: rowsOf(need('src_tokens'), 'src_tokens'), decoderIds: rowsOf(need('prev_output_tokens'), 'prev_output_tokens') };
  return { config, weights, weightsPath, inputs: forwardInputs, outputs, logitColumns, earlyExitRuns: fixture.early_exit_runs ?? [] };
}

/** Verifies the fixture in `directory` (optionally with weights from `weightsPath`). */
export async function verifyOfaFixture(directory: string, options: { weightsPath?: string; tolerance?: number; threads?: number } = {}): Promise<OfaVerification> {
  const tolerance = options.tolerance ?? OFA_PARITY_TOLERANCE;
  const { config, weights, weightsPath, inputs: forwardInputs, outputs, logitColumns, earlyExitRuns } = loadOfaFixture(directory, options.weightsPath);
  const batch = forwardInputs.textIds.length;
  const runner = await OfaExitRunner.create(config, weights, { threads: options.threads });
  const ours = new Map<string, Float32Array>();
  const exitRuns: ExitRunResult[] = [];
  try {
    await ofaForward(runner, forwardInputs, undefined, { record: (stage, data) => ours.set(stage, data), perLayerLogits: true });
    for (const run of earlyExitRuns) {
      const thresholds = { image: run.img_thres, text: run.txt_thres, decoder: run.decoder_thres };
      const result = await ofaForward(runner, forwardInputs, thresholds);
      ours.set(`exit.${run.name}.enc.out`, result.memory);
      ours.set(`exit.${run.name}.logits`, result.logits);
      const [image, text] = run['encoder_exit_layer[image,text]'];
      const expected = { image, text, decoder: run.decoder_exit_layer };
      const actual = result.exitLayers;
      exitRuns.push({ name: run.name, thresholds, expected, actual, pass: expected.image === actual.image && expected.text === actual.text && expected.decoder === actual.decoder });
    }
  } finally {
    await runner.dispose();
  }

  const stages = [...outputs.entries()].map(([name, reference]) => {
    let mine = ours.get(name);
    if (mine) {
      if (logitColumns && /logits/.test(name) && reference.shape.at(-1) === logitColumns.length) mine = trimmedColumns(mine, config.vocabSize, logitColumns);
      mine = inReferenceLayout(name, mine, reference.shape, batch);
    }
    return compare(name, mine, reference, tolerance);
  });
  const worstRelativeError = Math.max(0, ...stages.map((stage) => stage.relativeError));
  return {
    fixture: directory, weights: weightsPath, mode: config.encoderMode, tolerance, stages, exitRuns, worstRelativeError,
    pass: stages.length > 0 && stages.every((stage) => stage.pass) && exitRuns.every((run) => run.pass),
  };
}
