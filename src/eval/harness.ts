// `mue eval` end to end: full depth once per model, then every method's sweep on the same
// inputs, in one process, into one EvaluationReport.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Split } from '../data/sceneworld.js';
import { describe } from './calibrate.js';
import { EXITS_FILE, MuEModel, readExitThresholds, type InferenceOptions, type Telemetry } from '../runtime/mueModel.js';
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
  threads?: number;
  command: string;
  /** Called with (done, total) after every example of every run. */
  onProgress?: (done: number, total: number, status: string) => void;
}

const FULL_DEPTH: InferenceOptions = { imageThreshold: 1, textThreshold: 1, jointThreshold: 1, decoderThreshold: 1 };

export async function evaluateModels(options: HarnessOptions): Promise<EvaluationReport> {
  const models = new Map<ModelRole, MuEModel>();
  try {
    models.set('main', await MuEModel.load(options.modelDir, { threads: options.threads }));
    if (options.jointModelDir) models.set('joint', await MuEModel.load(options.jointModelDir, { threads: options.threads }));
    if (options.lastLayerModelDir) models.set('lastlayer', await MuEModel.load(options.lastLayerModelDir, { threads: options.threads }));
    const main = models.get('main')!;
    for (const [role, model] of models) {
      if (model.task !== main.task) throw new Error(`the ${role} model is a ${model.task} model but the main model is ${main.task}`);
      if (role === 'joint' && model.config.encoderMode !== 'joint') throw new Error(`--joint-model ${options.jointModelDir} was not trained with --encoder-mode joint`);
    }
    const { examples, skippedTooLong } = await evaluationSet(main, options.data ?? 'sceneworld', options.split, options.count, options.seed);
    const sweeps = methodSweeps(main.task, main.config).filter((s) => models.has(s.role) && (!options.methods || options.methods.includes(s.method)));
    const total = (models.size + sweeps.length) * examples.length;
    let done = 0;
    const tick = (status: string) => () => options.onProgress?.(++done, total, status);

    // Full depth once per model (quality, similarity curve); every method is then timed
    // against full depth run back to back on the same example (runPaired).
    const baselines = new Map<ModelRole, { quality: number; run: MethodRun; result: MethodResult }>();
    for (const [role, model] of models) {
      const run = await runMethod(model, examples, { ...FULL_DEPTH, recordSimilarities: role === 'main' }, tick(`${role} full depth`));
      const result = summariseRun(model, examples, run, { quality: 1, timeMs: run.timeMs }, role === 'main' ? 'full-depth' : `full-depth-${role}`, 'τ=1', 1);
      baselines.set(role, { quality: result.quality, run, result: { ...result, retention: 1 } });
    }
    const results: MethodResult[] = [];
    for (const sweep of sweeps) {
      const model = models.get(sweep.role)!;
      const { run, fullTimeMs } = await runPaired(model, examples, sweep.options, FULL_DEPTH, tick(`${sweep.method} ${sweep.setting}`));
      results.push(summariseRun(model, examples, run, { quality: baselines.get(sweep.role)!.quality, timeMs: fullTimeMs }, sweep.method, sweep.setting, sweep.knob));
    }
    // Thresholds from `mue calibrate` (exits.json), evaluated on this (held-out) split.
    let calibration: EvaluationReport['calibration'];
    const exitsPath = join(options.modelDir, EXITS_FILE);
    if (existsSync(exitsPath) && (!options.methods || options.methods.includes('mue-calibrated'))) {
      const stored = JSON.parse(readFileSync(exitsPath, 'utf8')) as { calibration?: { target?: number; retention?: number } };
      const thresholds = readExitThresholds(options.modelDir);
      const { run, fullTimeMs } = await runPaired(main, examples, thresholds, FULL_DEPTH);
      const result = summariseRun(main, examples, run, { quality: baselines.get('main')!.quality, timeMs: fullTimeMs }, 'mue-calibrated', describe(thresholds), thresholds.decoderThreshold);
      results.push(result);
      calibration = {
        target: stored.calibration?.target ?? Number.NaN, thresholds: { ...thresholds },
        calibrationRetention: stored.calibration?.retention ?? Number.NaN,
        testRetention: result.retention, testTimeRatio: result.timeRatio, testFlopRatio: result.flopRatio,
      };
    }
    const fullDepth = baselines.get('main')!.result;
    return {
      model: options.modelDir, task: main.task, data: options.data ?? 'sceneworld', split: options.split, count: examples.length, skippedTooLong, seed: options.seed,
      command: options.command, createdAt: new Date().toISOString(),
      encoderLayers: main.config.encoderLayers, decoderLayers: main.config.decoderLayers,
      qualityName: main.task === 've' ? 'accuracy' : 'CIDEr-D',
      fullDepth, similarityCurve: similarityCurve(baselines.get('main')!.run.telemetry, main.config.encoderLayers, main.config.decoderLayers),
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
