// `mue eval` end to end: full depth once per model, then every method's sweep on the same
// inputs, in one process, into one EvaluationReport.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Split } from '../data/sceneworld.js';
import { describe } from './calibrate.js';
import { EXITS_FILE, MuEModel, readExitThresholds, type InferenceOptions, type Telemetry } from '../runtime/mueModel.js';
import { readExitsJson } from '../runtime/platform.js';
import { evaluationSet, mean, runMethod, runPaired, summariseRun, type MethodRun } from './evaluate.js';
import { methodSweeps, type ModelRole } from './methods.js';
import type { EvaluationReport, MethodResult } from './types.js';

export interface HarnessOptions {
  modelDir: string;
  /** Ablation models (optional): joint-encoder and last-layer-loss models of the same task. */
  jointModelDir?: string;
  lastLayerModelDir?: string;
  /** `sceneworld` (default), `snli-ve:DIR` or `coco:DIR`. */
  data?: string;
  split: Split;
  count: number;
  seed: number;
  /** Only these methods (default: all that have their model). */
  methods?: string[];
  /** Only these (method, setting) pairs of the sweeps, e.g. the settings chosen on another split. */
  settings?: Array<{ method: string; setting: string }>;
  /** Decoding options for every run (beam size, schedule, key/value strategy, granularity); a sweep's own options win. */
  decoding?: InferenceOptions;
  /** Also time full depth through the fused whole-stack graphs beside every run (MethodResult.fusedTimeRatio). */
  fusedReference?: boolean;
  threads?: number;
  command: string;
  /** Called with (done, total) after every example of every run. */
  onProgress?: (done: number, total: number, status: string) => void;
}

const FULL_DEPTH: InferenceOptions = { imageThreshold: 1, textThreshold: 1, jointThreshold: 1, decoderThreshold: 1 };

export async function evaluateModels(options: HarnessOptions): Promise<EvaluationReport> {
  const models = new Map<ModelRole, MuEModel>();
  try {
    const load = { threads: options.threads, fullStack: options.fusedReference };
    models.set('main', await MuEModel.load(options.modelDir, load));
    if (options.jointModelDir) models.set('joint', await MuEModel.load(options.jointModelDir, load));
    if (options.lastLayerModelDir) models.set('lastlayer', await MuEModel.load(options.lastLayerModelDir, load));
    const main = models.get('main')!;
    for (const [role, model] of models) {
      if (model.task !== main.task) throw new Error(`the ${role} model is a ${model.task} model but the main model is ${main.task}`);
      if (role === 'joint' && model.config.encoderMode !== 'joint') throw new Error(`--joint-model ${options.jointModelDir} was not trained with --encoder-mode joint`);
    }
    const { examples, skippedTooLong } = await evaluationSet(main, options.data ?? 'sceneworld', options.split, options.count, options.seed);
    const sweeps = methodSweeps(main.task, main.config).filter((s) => models.has(s.role) && (!options.methods || options.methods.includes(s.method))
      && (!options.settings || options.settings.some((chosen) => chosen.method === s.method && chosen.setting === s.setting)));
    const decoding = options.decoding ?? {};
    const fullDepth = { ...decoding, ...FULL_DEPTH };
    const fused = options.fusedReference ? { ...fullDepth, fused: true } : undefined;
    const total = (models.size + sweeps.length) * examples.length;
    let done = 0;
    const tick = (status: string) => () => options.onProgress?.(++done, total, status);

    // Full depth once per model (quality, similarity curve); every method is then timed
    // against full depth run back to back on the same example (runPaired).
    // One untimed example per model and path first: a session's first call pays one-off setup.
    for (const model of models.values()) {
      await runMethod(model, examples.slice(0, 1), fullDepth);
      if (fused) await runMethod(model, examples.slice(0, 1), fused);
    }
    const baselines = new Map<ModelRole, { quality: number; run: MethodRun; result: MethodResult }>();
    for (const [role, model] of models) {
      const options = { ...fullDepth, recordSimilarities: role === 'main' };
      let run: MethodRun;
      let fusedTimeMs: number | undefined;
      if (fused) ({ run, fullTimeMs: fusedTimeMs } = await runPaired(model, examples, options, fused, tick(`${role} full depth`)));
      else run = await runMethod(model, examples, options, tick(`${role} full depth`));
      const result = summariseRun(model, examples, run, { quality: 1, timeMs: run.timeMs, fusedTimeMs, telemetry: run.telemetry }, role === 'main' ? 'full-depth' : `full-depth-${role}`, 'τ=1', 1);
      baselines.set(role, { quality: result.quality, run, result: { ...result, retention: 1 } });
    }
    const reference = (role: ModelRole, timed: { fullTimeMs: number; fusedTimeMs?: number }) => {
      const baseline = baselines.get(role)!;
      return { quality: baseline.quality, timeMs: timed.fullTimeMs, fusedTimeMs: timed.fusedTimeMs, telemetry: baseline.run.telemetry };
    };
    const results: MethodResult[] = [];
    for (const sweep of sweeps) {
      const model = models.get(sweep.role)!;
      const timed = await runPaired(model, examples, { ...decoding, ...sweep.options }, fullDepth, tick(`${sweep.method} ${sweep.setting}`), fused);
      results.push(summariseRun(model, examples, timed.run, reference(sweep.role, timed), sweep.method, sweep.setting, sweep.knob));
    }
    // Thresholds from `mue calibrate` (exits.json), evaluated on this (held-out) split.
    let calibration: EvaluationReport['calibration'];
    const exitsPath = join(options.modelDir, EXITS_FILE);
    if (existsSync(exitsPath) && (!options.methods || options.methods.includes('mue-calibrated'))) {
      const thresholds = readExitThresholds(options.modelDir);
      const stored = readExitsJson(options.modelDir) as { calibration?: { target?: number; retention?: number } };
      const timed = await runPaired(main, examples, { ...decoding, ...thresholds }, fullDepth, undefined, fused);
      const result = summariseRun(main, examples, timed.run, reference('main', timed), 'mue-calibrated', describe(thresholds), thresholds.decoderThreshold);
      results.push(result);
      calibration = {
        target: stored.calibration?.target ?? Number.NaN, thresholds: { ...thresholds },
        calibrationRetention: stored.calibration?.retention ?? Number.NaN,
        testRetention: result.retention, testTimeRatio: result.timeRatio, testFlopRatio: result.flopRatio,
      };
    }
    return {
      model: options.modelDir, task: main.task, data: options.data ?? 'sceneworld', split: options.split, count: examples.length, skippedTooLong, seed: options.seed,
      command: options.command, createdAt: new Date().toISOString(),
      encoderLayers: main.config.encoderLayers, decoderLayers: main.config.decoderLayers,
      qualityName: main.task === 've' ? 'accuracy' : 'CIDEr-D',
      fullDepth: baselines.get('main')!.result, similarityCurve: similarityCurve(baselines.get('main')!.run.telemetry, main.config.encoderLayers, main.config.decoderLayers),
      methods: [...[...baselines].filter(([role]) => role !== 'main').map(([, b]) => b.result), ...results],
      ...(calibration ? { calibration } : {}),
    };
  } finally {
    for (const model of models.values()) await model.dispose();
  }
}

/** Mean cos(h_i, h_{i−1}) per layer over all examples (and all generated tokens for the decoder). */
function similarityCurve(telemetry: Telemetry[], encoderLayers: number, decoderLayers: number): EvaluationReport['similarityCurve'] {
  const perLayer = (traces: number[][], layers: number) => Array.from({ length: layers }, (_, i) => mean(traces.map((trace) => trace[i]!).filter((v) => v !== undefined)));
  const curve: EvaluationReport['similarityCurve'] = { decoder: perLayer(telemetry.flatMap((t) => t.similarities!.tokens), decoderLayers) };
  for (const stream of ['image', 'text', 'joint'] as const) {
    const traces = telemetry.map((t) => t.similarities![stream]).filter((trace): trace is number[] => trace !== undefined);
    if (traces.length > 0) curve[stream] = perLayer(traces, encoderLayers);
  }
  return curve;
}
