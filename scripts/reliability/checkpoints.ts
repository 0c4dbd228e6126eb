// Reliability sub-suite: checkpoints. (1) Crash injection: a checkpoint save is made to fail
// after every one of its file operations in turn (over an existing checkpoint, into a folder that
// holds only a training log, and into nothing), then the checkpoint is loaded: it must be the
// newest complete one (the new one exactly when its config.json, written last, was written)
// and no leftover may remain. (2) Corruption: each case damages a saved checkpoint; loading must
// refuse it with a one-line error that names the problem. (3) Real crashes: a process saving
// checkpoints in a loop is killed with SIGKILL at random moments; the next load must find the
// newest complete checkpoint and leave no leftover.
// Run alone: node --import tsx scripts/reliability/checkpoints.ts   (prints JSON)
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { sceneWorldTokenizer } from '../../src/data/sceneworld.js';
import { type FileOps, NODE_FILE_OPS } from '../../src/model/atomicWrite.js';
import { type Checkpoint, FILES, loadCheckpoint, saveCheckpoint } from '../../src/model/checkpoint.js';
import { type ModelConfig, presetConfig } from '../../src/model/config.js';
import { parameterSpecs } from '../../src/model/parameters.js';
import { nodeSha256 } from '../../src/model/sha256.js';
import { decodeSafetensors, encodeSafetensors, type NamedArray } from '../../src/model/safetensors.js';

const TOTAL_STEPS = 10;

/** A training checkpoint of the tiny preset with deterministic pseudo-random weights (no TensorFlow needed). */
export function syntheticCheckpoint(step: number, seed = 1, totalSteps = TOTAL_STEPS): Checkpoint {
  const tokenizer = sceneWorldTokenizer();
  const config: ModelConfig = presetConfig('tiny', tokenizer.vocabSize, { imageSize: 16, patchSize: 8, maxTextLength: 8, maxTargetLength: 6 });
  let state = seed * 2654435761;
  const random = () => ((state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5) * 0.04;
  const weights = new Map<string, NamedArray>(parameterSpecs(config).map(({ name, shape, init }) => {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = init === 'ones' ? 1 : init === 'zeros' ? 0 : random();
    return [name, { shape, data }];
  }));
  const optimizerState = new Map<string, NamedArray>([['step_moments', { shape: [4], data: new Float32Array([step, 0.1, 0.2, 0.3]) }]]);
  const options = { task: 've', steps: totalSteps, encoderMode: config.encoderMode, imageSize: config.imageSize };
  return { task: 've', config, tokenizer, weights, optimizerState, trainingState: { step, options } };
}

/** Real file operations that throw before operation number `failAt` (0-based) and record what ran. */
function failingOps(failAt: number): { ops: FileOps; performed: string[] } {
  const performed: string[] = [];
  const wrap = <K extends keyof FileOps>(name: K) => ((...args: string[]) => {
    if (performed.length === failAt) throw new Error(`injected failure before operation ${failAt} (${name})`);
    performed.push(`${name} ${name === 'writeFile' ? args[0] : args.join(' ')}`);
    return (NODE_FILE_OPS[name] as (...a: string[]) => void)(...args);
  }) as FileOps[K];
  const ops = Object.fromEntries((Object.keys(NODE_FILE_OPS) as (keyof FileOps)[]).map((name) => [name, wrap(name)])) as unknown as FileOps;
  return { ops, performed };
}

export type CrashScenario = 'over-checkpoint' | 'over-log-only' | 'into-nothing';
export interface CrashOutcome { scenario: CrashScenario; failAt: number; operations: number; expectedStep: number | null; loadedStep: number | null; error?: string; leftovers: string[]; logKept: boolean }

/** Saves step 2 over `scenario`'s starting state, failing before operation k, for every k; then loads. */
export const CRASH_SCENARIOS: CrashScenario[] = ['over-checkpoint', 'over-log-only', 'into-nothing'];

export function crashInjection(workDir: string, scenarios = CRASH_SCENARIOS): CrashOutcome[] {
  const outcomes: CrashOutcome[] = [];
  for (const scenario of scenarios) {
    const total = failingOps(Number.POSITIVE_INFINITY);
    const probe = join(workDir, `probe-${scenario}`, 'run');
    prepare(probe, scenario);
    saveCheckpoint(probe, syntheticCheckpoint(2), { fileOps: total.ops });
    const operations = total.performed.length;
    for (let failAt = 0; failAt <= operations; failAt++) {
      const directory = join(workDir, `${scenario}-${failAt}`, 'run');
      prepare(directory, scenario);
      const { ops, performed } = failingOps(failAt);
      try {
        saveCheckpoint(directory, syntheticCheckpoint(2), { fileOps: ops });
      } catch {
        // the injected crash
      }
      const newWritten = performed.some((operation) => operation.startsWith('writeFile') && operation.endsWith(`writing-${process.pid}/${FILES.config}`));
      const expectedStep = newWritten ? 2 : scenario === 'over-checkpoint' ? 1 : null;
      const outcome: CrashOutcome = { scenario, failAt, operations, expectedStep, loadedStep: null, leftovers: [], logKept: true };
      try {
        outcome.loadedStep = loadCheckpoint(directory).trainingState!.step as number;
      } catch (error) {
        outcome.error = (error as Error).message;
      }
      outcome.leftovers = readdirSync(dirname(directory)).filter((entry) => entry !== basename(directory));
      if (scenario !== 'into-nothing') outcome.logKept = existsSync(join(directory, 'train-log.jsonl'));
      outcomes.push(outcome);
    }
  }
  return outcomes;
}

function prepare(directory: string, scenario: CrashScenario): void {
  rmSync(dirname(directory), { recursive: true, force: true });
  mkdirSync(dirname(directory), { recursive: true });
  if (scenario === 'over-checkpoint') saveCheckpoint(directory, syntheticCheckpoint(1));
  if (scenario !== 'into-nothing') {
    mkdirSync(directory, { recursive: true });
    writeFileSync(join(directory, 'train-log.jsonl'), '{"type":"train","step":1}\n');
  }
}

export const crashRecovered = (outcome: CrashOutcome) =>
  outcome.loadedStep === outcome.expectedStep && outcome.leftovers.length === 0 && outcome.logKept
  && (outcome.expectedStep !== null || /not a model directory/.test(outcome.error ?? ''));

export interface CorruptionCase { name: string; corrupt: (directory: string) => void; expected: RegExp }

const weightsPath = (directory: string) => join(directory, FILES.weights);

/** Rewrites a safetensors header (the data section and its checksum stay as they are). */
function editHeader(path: string, edit: (header: Record<string, { data_offsets: [number, number] } & Record<string, unknown>>) => void): void {
  const bytes = readFileSync(path);
  const size = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + size).toString('utf8'));
  edit(header);
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + json.length) % 8)) % 8);
  const out = Buffer.alloc(8 + json.length + bytes.length - 8 - size);
  out.writeBigUInt64LE(BigInt(json.length), 0);
  out.write(json, 8);
  bytes.copy(out, 8 + json.length, 8 + size);
  writeFileSync(path, out);
}

/** Re-encodes weights after `edit`, with a valid checksum: damage a checksum cannot see. */
function rewriteWeights(directory: string, edit: (tensors: Map<string, NamedArray>) => void): void {
  const { tensors, metadata } = decodeSafetensors(readFileSync(weightsPath(directory)));
  edit(tensors);
  const { sha256: _checksum, ...rest } = metadata;
  writeFileSync(weightsPath(directory), encodeSafetensors(tensors, { metadata: rest, sha256: nodeSha256 }));
}

const flipBit = (path: string, fromEnd: number) => {
  const bytes = readFileSync(path);
  bytes[bytes.length - fromEnd]! ^= 0x10;
  writeFileSync(path, bytes);
};
const editJson = (path: string, edit: (json: Record<string, unknown>) => void) => {
  const json = JSON.parse(readFileSync(path, 'utf8'));
  edit(json);
  writeFileSync(path, JSON.stringify(json));
};
const config = (directory: string) => join(directory, FILES.config);
const state = (directory: string) => join(directory, FILES.trainingState);

export const CORRUPTION_CASES: CorruptionCase[] = [
  { name: 'weights bit flip (last byte)', corrupt: (d) => flipBit(weightsPath(d), 1), expected: /model\.safetensors: checksum mismatch/ },
  { name: 'weights bit flip (middle)', corrupt: (d) => flipBit(weightsPath(d), 20_000), expected: /model\.safetensors: checksum mismatch/ },
  { name: 'optimizer bit flip', corrupt: (d) => flipBit(join(d, FILES.optimizer), 3), expected: /optimizer\.safetensors: checksum mismatch/ },
  { name: 'checksum edited', corrupt: (d) => editHeader(weightsPath(d), (h) => { (h.__metadata__ as unknown as Record<string, string>).sha256 = '0'.repeat(64); }), expected: /checksum mismatch/ },
  { name: 'truncated weights', corrupt: (d) => writeFileSync(weightsPath(d), readFileSync(weightsPath(d)).subarray(0, 5000)), expected: /model\.safetensors: truncated/ },
  { name: 'truncated to 4 bytes', corrupt: (d) => writeFileSync(weightsPath(d), readFileSync(weightsPath(d)).subarray(0, 4)), expected: /model\.safetensors: truncated/ },
  { name: 'appended bytes', corrupt: (d) => writeFileSync(weightsPath(d), Buffer.concat([readFileSync(weightsPath(d)), Buffer.alloc(16)])), expected: /bytes after the last tensor/ },
  { name: 'shifted data offsets', corrupt: (d) => editHeader(weightsPath(d), (h) => { h['token_embedding']!.data_offsets = h['token_embedding']!.data_offsets.map((x) => x + 4) as [number, number]; }), expected: /data_offsets .* (overlap|leave a gap)/ },
  { name: 'swapped tensor offsets', corrupt: (d) => editHeader(weightsPath(d), (h) => { const a = h['encoder.0.attention.query.weight']!; const b = h['encoder.0.attention.key.weight']!; [a.data_offsets, b.data_offsets] = [b.data_offsets, a.data_offsets]; }), expected: /checksum mismatch|gap|overlap/ },
  { name: 'zeroed weights (checksum recomputed)', corrupt: (d) => rewriteWeights(d, (t) => t.get('encoder.0.ffn.fc1.weight')!.data.fill(0)), expected: /"encoder\.0\.ffn\.fc1\.weight" is all zeros/ },
  { name: 'all weights zeroed (checksum recomputed)', corrupt: (d) => rewriteWeights(d, (t) => t.forEach((tensor) => tensor.data.fill(0))), expected: /is all zeros/ },
  { name: 'NaN weight (checksum recomputed)', corrupt: (d) => rewriteWeights(d, (t) => { t.get('decoder.final_norm.weight')!.data[3] = NaN; }), expected: /"decoder\.final_norm\.weight" holds NaN/ },
  { name: 'infinite weight (checksum recomputed)', corrupt: (d) => rewriteWeights(d, (t) => { t.get('token_embedding')!.data[0] = Infinity; }), expected: /holds Infinity/ },
  { name: 'NaN optimizer state (checksum recomputed)', corrupt: (d) => writeFileSync(join(d, FILES.optimizer), encodeSafetensors(new Map([['step_moments', { shape: [1], data: new Float32Array([NaN]) }]]), { sha256: nodeSha256 })), expected: /optimizer\.safetensors: tensor "step_moments" holds NaN/ },
  { name: 'header not JSON', corrupt: (d) => { const b = readFileSync(weightsPath(d)); b.write('#', 8); writeFileSync(weightsPath(d), b); }, expected: /header is not valid JSON/ },
  { name: 'header size huge', corrupt: (d) => { const b = readFileSync(weightsPath(d)); b.writeBigUInt64LE(2n ** 60n, 0); writeFileSync(weightsPath(d), b); }, expected: /truncated/ },
  { name: 'malformed shape', corrupt: (d) => editHeader(weightsPath(d), (h) => { h['token_embedding']!.shape = 'big'; }), expected: /malformed shape/ },
  { name: 'model.safetensors is a directory', corrupt: (d) => { rmSync(weightsPath(d)); mkdirSync(weightsPath(d)); }, expected: /model\.safetensors: cannot read it: it is a directory/ },
  { name: 'model.safetensors missing', corrupt: (d) => rmSync(weightsPath(d)), expected: /model\.safetensors is missing/ },
  { name: 'config heads changed (shapes equal)', corrupt: (d) => editJson(config(d), (c) => { c.heads = 4; }), expected: /config\.json says heads 4 but model\.safetensors was saved with heads 2/ },
  { name: 'config heads do not divide width', corrupt: (d) => editJson(config(d), (c) => { c.heads = 3; }), expected: /not divisible by heads 3/ },
  { name: 'config encoder mode changed', corrupt: (d) => editJson(config(d), (c) => { c.encoderMode = 'joint'; }), expected: /says encoderMode "joint" but model\.safetensors was saved with encoderMode "decomposed"/ },
  { name: 'config encoder mode unknown', corrupt: (d) => editJson(config(d), (c) => { c.encoderMode = 'sideways'; }), expected: /encoderMode must be/ },
  { name: 'config task changed', corrupt: (d) => editJson(config(d), (c) => { c.task = 'caption'; }), expected: /says task "caption" but model\.safetensors was saved with task "ve"/ },
  { name: 'config task unknown', corrupt: (d) => editJson(config(d), (c) => { c.task = 'vqa'; }), expected: /"task" must be one of/ },
  { name: 'config epsilon changed', corrupt: (d) => editJson(config(d), (c) => { c.layerNormEpsilon = 0.1; }), expected: /says layerNormEpsilon 0\.1 but/ },
  { name: 'config layers changed', corrupt: (d) => editJson(config(d), (c) => { c.encoderLayers = 3; }), expected: /missing tensor "encoder\.2\./ },
  { name: 'config not JSON', corrupt: (d) => writeFileSync(config(d), '{"task": "ve", "dim": '), expected: /config\.json is not valid JSON/ },
  { name: 'training step 1e9', corrupt: (d) => editJson(state(d), (s) => { s.step = 1e9; }), expected: /training_state\.json: "step" must be an integer from 0 to the run's 10 steps \(got 1000000000\)/ },
  { name: 'training step "abc"', corrupt: (d) => editJson(state(d), (s) => { s.step = 'abc'; }), expected: /training_state\.json: "step" must be an integer .*"abc"/ },
  { name: 'training step negative', corrupt: (d) => editJson(state(d), (s) => { s.step = -3; }), expected: /training_state\.json: "step" must be an integer .*-3/ },
  { name: 'training step fractional', corrupt: (d) => editJson(state(d), (s) => { s.step = 2.5; }), expected: /training_state\.json: "step" must be an integer/ },
  { name: 'training step beyond the run', corrupt: (d) => editJson(state(d), (s) => { s.step = TOTAL_STEPS + 1; }), expected: /training_state\.json: "step" must be an integer from 0 to the run's 10 steps/ },
  { name: 'training options missing', corrupt: (d) => editJson(state(d), (s) => { delete s.options; }), expected: /training_state\.json: "options" must be an object/ },
  { name: 'training task disagrees', corrupt: (d) => editJson(state(d), (s) => { (s.options as Record<string, unknown>).task = 'caption'; }), expected: /training_state\.json: the run's task was "caption" but config\.json says "ve"/ },
  { name: 'training encoder mode disagrees', corrupt: (d) => editJson(state(d), (s) => { (s.options as Record<string, unknown>).encoderMode = 'joint'; }), expected: /the run's encoderMode was "joint"/ },
  { name: 'training state not JSON', corrupt: (d) => writeFileSync(state(d), 'step=3'), expected: /training_state\.json is not valid JSON/ },
];

export interface CorruptionOutcome { name: string; result: 'refused-clear' | 'refused-unclear' | 'accepted'; message?: string }

export function corruptionOutcomes(workDir: string): CorruptionOutcome[] {
  return CORRUPTION_CASES.map(({ name, corrupt, expected }, index) => {
    const directory = join(workDir, `corrupt-${index}`);
    saveCheckpoint(directory, syntheticCheckpoint(3));
    corrupt(directory);
    try {
      loadCheckpoint(directory);
      return { name, result: 'accepted' };
    } catch (error) {
      const message = (error as Error).message;
      return { name, result: expected.test(message) && !message.includes('\n') ? 'refused-clear' : 'refused-unclear', message };
    }
  });
}

const SAVE_LOOP_FLAG = '--save-loop';
const LOOP_STEPS = 1_000_000;

export interface KillOutcome { kill: number; lastReported: number; leftoversBeforeLoad: string[]; loadedStep: number | null; error?: string; leftovers: string[] }

/**
 * Real crashes: a child process saves checkpoints of steps 1, 2, 3… in a loop, printing each step
 * once its save returned; it is killed with SIGKILL at a random moment. The checkpoint then loaded
 * must be the last reported step or the one being saved (one more), with no leftover.
 */
export async function killDuringSaves(workDir: string, kills: number): Promise<KillOutcome[]> {
  const outcomes: KillOutcome[] = [];
  for (let kill = 0; kill < kills; kill++) {
    const directory = join(workDir, `kill-${kill}`, 'run');
    mkdirSync(dirname(directory), { recursive: true });
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), SAVE_LOOP_FLAG, directory], { stdio: ['ignore', 'pipe', 'inherit'] });
    let lastReported = 0;
    const exited = new Promise((resolve) => child.on('close', resolve));
    await new Promise<void>((resolve) => {
      child.stdout!.on('data', (chunk: Buffer) => {
        const steps = chunk.toString().trim().split('\n').map(Number);
        lastReported = Math.max(lastReported, ...steps);
        // After the first few saves, at a random moment within about one save.
        if (lastReported >= 3) setTimeout(resolve, Math.random() * 40);
      });
    });
    child.kill('SIGKILL');
    await exited;
    const leftoversBeforeLoad = readdirSync(dirname(directory)).filter((entry) => entry !== basename(directory));
    const outcome: KillOutcome = { kill, lastReported, leftoversBeforeLoad, loadedStep: null, leftovers: [] };
    try {
      outcome.loadedStep = loadCheckpoint(directory).trainingState!.step as number;
    } catch (error) {
      outcome.error = (error as Error).message;
    }
    outcome.leftovers = readdirSync(dirname(directory)).filter((entry) => entry !== basename(directory));
    outcomes.push(outcome);
  }
  return outcomes;
}

export const killRecovered = (outcome: KillOutcome) =>
  outcome.loadedStep !== null && outcome.loadedStep >= outcome.lastReported && outcome.loadedStep <= outcome.lastReported + 1 && outcome.leftovers.length === 0;

function saveLoop(directory: string): void {
  for (let step = 1; step <= LOOP_STEPS; step++) {
    saveCheckpoint(directory, syntheticCheckpoint(step, 1, LOOP_STEPS));
    writeSync(1, `${step}\n`);
  }
}

export async function run(): Promise<Record<string, unknown>> {
  const workDir = mkdtempSync(join(tmpdir(), 'mue-reliability-checkpoints-'));
  try {
    const kills = await killDuringSaves(workDir, 20);
    const crashes = crashInjection(workDir);
    const corruption = corruptionOutcomes(workDir);
    const count = (result: CorruptionOutcome['result']) => corruption.filter((c) => c.result === result).length;
    return {
      checkpoints: {
        crashInjection: {
          scenarios: CRASH_SCENARIOS,
          failurePoints: crashes.length,
          recoveredNewestComplete: crashes.filter(crashRecovered).length,
          notRecovered: crashes.filter((c) => !crashRecovered(c)).map((c) => ({ scenario: c.scenario, failAt: c.failAt, loadedStep: c.loadedStep, expectedStep: c.expectedStep, leftovers: c.leftovers, error: c.error })),
        },
        killDuringSaves: {
          kills: kills.length,
          killedMidSwapOrWrite: kills.filter((k) => k.leftoversBeforeLoad.length > 0).length,
          recoveredNewestComplete: kills.filter(killRecovered).length,
          notRecovered: kills.filter((k) => !killRecovered(k)),
        },
        corruption: {
          cases: corruption.length,
          refusedWithClearError: count('refused-clear'),
          refusedUnclear: count('refused-unclear'),
          accepted: count('accepted'),
          details: corruption,
        },
      },
    };
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (process.argv[2] === SAVE_LOOP_FLAG) saveLoop(process.argv[3]!);
  else console.log(JSON.stringify(await run(), null, 2));
}
