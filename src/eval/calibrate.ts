// Threshold calibration, which the paper leaves to hand-tuning: find the cheapest exit
// thresholds whose quality retention on a calibration split meets a target.
//  - search (default): coordinate descent over a grid, decoder first, then each encoder stream;
//    each threshold is lowered while retention stays ≥ target. Cost = FLOP ratio.
//  - guarantee (Learn-then-Test, fixed-sequence testing): thresholds move together down a
//    data-independent sequence; each step is accepted only if a binomial (VE) or Hoeffding
//    (captions) test rejects "risk > 1 − target" at level δ, and the walk stops at the first failure.
import { join } from 'node:path';
import type { Split } from '../data/sceneworld.js';
import { writeFileAtomic } from '../model/atomicWrite.js';
import { EXITS_FILE, MuEModel, type ExitThresholds, type InferenceOptions } from '../runtime/mueModel.js';
import { evaluationSet, mean, runMethod, scoreRun, sum, type EvalExample, type MethodRun } from './evaluate.js';

export const CALIBRATION_GRID = [0.999, 0.995, 0.99, 0.98, 0.97, 0.96, 0.95, 0.93, 0.9, 0.87, 0.85, 0.8, 0.75, 0.7];

export interface CalibrationOptions {
  modelDir: string;
  /** `sceneworld` (default), `snli-ve:DIR` or `coco:DIR`. */
  data?: string;
  split: Split;
  count: number;
  seed: number;
  targetRetention: number;
  /** Learn-then-Test with this δ (probability that the guarantee fails); undefined = plain search. */
  delta?: number;
  threads?: number;
  /** Decoding options for every run (beam size, schedule, key/value strategy, granularity). */
  decoding?: InferenceOptions;
  onProgress?: (done: number, status: string) => void;
}

export interface CalibrationStep { thresholds: ExitThresholds; retention: number; flopRatio: number; accepted: boolean; pValue?: number }
export interface CalibrationResult {
  thresholds: ExitThresholds;
  retention: number;
  flopRatio: number;
  target: number;
  method: 'search' | 'learn-then-test';
  delta?: number;
  steps: CalibrationStep[];
}

const FULL: ExitThresholds = { imageThreshold: 1, textThreshold: 1, jointThreshold: 1, decoderThreshold: 1 };

export async function calibrate(options: CalibrationOptions): Promise<CalibrationResult> {
  if (!(options.targetRetention > 0 && options.targetRetention <= 1)) throw new Error(`--target-retention must be in (0, 1] (got ${options.targetRetention})`);
  if (options.delta !== undefined && !(options.delta > 0 && options.delta < 1)) throw new Error(`--delta must be in (0, 1) (got ${options.delta})`);
  const model = await MuEModel.load(options.modelDir, { threads: options.threads });
  try {
    const { examples } = await evaluationSet(model, options.data ?? 'sceneworld', options.split, options.count, options.seed);
    let runs = 0;
    const evaluate = async (thresholds: ExitThresholds) => {
      const run = await runMethod(model, examples, { ...options.decoding, ...thresholds });
      options.onProgress?.(++runs, describe(thresholds));
      return run;
    };
    const full = await evaluate(FULL);
    const fullScore = scoreRun(model, examples, full.answers);
    const measure = (thresholds: ExitThresholds, run: MethodRun) => ({
      thresholds, retention: fullScore.quality > 0 ? scoreRun(model, examples, run.answers).quality / fullScore.quality : 0,
      // Against the full-depth run of the same inputs (its own output lengths).
      flopRatio: sum(run.telemetry.map((t) => t.flops)) / sum(full.telemetry.map((t) => t.flops)),
    });
    const knobs: (keyof ExitThresholds)[] = model.config.encoderMode === 'joint'
      ? ['decoderThreshold', 'jointThreshold'] : ['decoderThreshold', 'imageThreshold', 'textThreshold'];
    const steps: CalibrationStep[] = [];
    let chosen = { thresholds: { ...FULL }, retention: 1, flopRatio: measure(FULL, full).flopRatio };

    if (options.delta === undefined) {
      for (const knob of knobs) {
        for (const value of CALIBRATION_GRID) {
          const thresholds = { ...chosen.thresholds, [knob]: value };
          const step = measure(thresholds, await evaluate(thresholds));
          const accepted = step.retention >= options.targetRetention;
          steps.push({ ...step, accepted });
          if (!accepted) break; // lowering this threshold further only exits earlier
          if (step.flopRatio <= chosen.flopRatio) chosen = step;
        }
      }
      return { ...chosen, target: options.targetRetention, method: 'search', steps };
    }

    // Learn-then-Test: H0(τ): risk(τ) > α with α = 1 − target, tested in a fixed order.
    const alpha = 1 - options.targetRetention;
    for (const value of CALIBRATION_GRID) {
      const thresholds = { ...FULL };
      for (const knob of knobs) thresholds[knob] = value;
      const run = await evaluate(thresholds);
      const pValue = riskPValue(model, examples, full, run, fullScore.perExample, alpha);
      const accepted = pValue < options.delta;
      const step = measure(thresholds, run);
      steps.push({ ...step, accepted, pValue });
      if (!accepted) break;
      chosen = step;
    }
    return { ...chosen, target: options.targetRetention, method: 'learn-then-test', delta: options.delta, steps };
  } finally {
    await model.dispose();
  }
}

/**
 * p-value of H0 "risk > α". VE: loss_i = 1[answer differs from full depth], which bounds the
 * accuracy lost; p = P(Binomial(n, α) ≤ k). Captions: loss_i = max(0, c_full,i − c_i) / 10
 * (per-image CIDEr-D ≤ 10), α scaled by mean c_full / 10; Hoeffding p = exp(−2n(α − R̂)²).
 * Approximate: α is scaled by full-depth quality measured on the same calibration sample, and
 * per-image CIDEr-D shares document frequencies across the split (not independent losses).
 */
function riskPValue(model: MuEModel, examples: EvalExample[], full: MethodRun, run: MethodRun, fullPerExample: number[], alpha: number): number {
  const n = examples.length;
  if (model.task === 've') {
    const disagreements = run.answers.filter((answer, i) => answer !== full.answers[i]).length;
    return binomialCdf(disagreements, n, alpha * mean(fullPerExample));
  }
  const perExample = scoreRun(model, examples, run.answers).perExample;
  const risk = mean(perExample.map((c, i) => Math.max(0, fullPerExample[i]! - c) / 10));
  const scaledAlpha = (alpha * mean(fullPerExample)) / 10;
  return risk < scaledAlpha ? Math.exp(-2 * n * (scaledAlpha - risk) ** 2) : 1;
}

/** P(X ≤ k) for X ~ Binomial(n, p), summed in log space. */
export function binomialCdf(k: number, n: number, p: number): number {
  if (p <= 0) return 1;
  if (p >= 1) return k >= n ? 1 : 0;
  let total = 0;
  for (let i = 0; i <= k; i++) total += Math.exp(logChoose(n, i) + i * Math.log(p) + (n - i) * Math.log(1 - p));
  return Math.min(1, total);
}

function logChoose(n: number, k: number): number {
  let value = 0;
  for (let i = 1; i <= k; i++) value += Math.log((n - k + i) / i);
  return value;
}

/** Writes the chosen thresholds (and how they were found) to DIR/exits.json, which MuEModel.load uses by default. */
export function writeExitsFile(modelDir: string, result: CalibrationResult, provenance: Record<string, unknown>): string {
  const path = join(modelDir, EXITS_FILE);
  const body = { ...result.thresholds, calibration: { target: result.target, retention: result.retention, flopRatio: result.flopRatio, method: result.method, delta: result.delta, ...provenance } };
  writeFileAtomic(path, `${JSON.stringify(body, null, 2)}\n`);
  return path;
}

export const describe = (t: ExitThresholds): string =>
  `τ_img=${t.imageThreshold} τ_txt=${t.textThreshold} τ_joint=${t.jointThreshold} τ_dec=${t.decoderThreshold}`;
