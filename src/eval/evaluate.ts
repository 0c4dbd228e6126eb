// Quality against cost for one model and one method setting, on a fixed set of inputs.
// Cost is reported three ways (DESIGN 2.6), always together, each against the full-depth run of
// the same inputs (which writes its own output, of its own length):
//   layerReduction = 1 − (Σ_streams T_s·L_s + Σ_tokens L_t) / (Σ_streams T_s·N_E + (#full-depth tokens)·N_D)
//     (encoder layers weighted by the stream's real tokens, decoder layers counted per generated token;
//     a VE 'prompt' model's one decision counts once per prompt position: P·L / P·N_D);
//   flopRatio      = FLOPs executed / FLOPs the full-depth run executed;
//   timeRatio      = wall-clock time / full-depth wall-clock time, same inputs, same process
//     (fusedTimeRatio: the same against full depth through the fused whole-stack graphs).
import { openDataSource, sceneWorldRecord, takeRecords, type TaskRecord } from '../data/dataSource.js';
import type { Split } from '../data/sceneworld.js';
import type { Task } from '../model/checkpoint.js';
import type { InferenceOptions, MuEModel, Telemetry } from '../runtime/mueModel.js';
import { scoreCaptions } from './captionMetrics.js';
import type { MethodResult } from './types.js';

/** One evaluation input with its ground truth and difficulty group. */
export type EvalExample = TaskRecord;

export function sceneWorldEvalSet(task: Task, split: Split, count: number, seed: number, imageSize: number): EvalExample[] {
  return Array.from({ length: count }, (_, index) => sceneWorldRecord(task, split, index, seed, imageSize));
}

/**
 * The examples of `data` (see openDataSource) to evaluate a model on. Inputs longer than the
 * model's text limit cannot be run: they are left out and counted.
 */
export async function evaluationSet(model: MuEModel, data: string, split: Split, count: number, seed: number): Promise<{ examples: EvalExample[]; skippedTooLong: number }> {
  const records = await takeRecords(openDataSource(data, model.task, seed), split, count, model.imageResize);
  // Caption references are never encoded and the caption prompt is fixed: only VE questions can be too long.
  const fits = (record: TaskRecord): boolean => {
    if (model.task === 'caption') return true;
    try {
      model.checkQuestion(record);
      return true;
    } catch {
      return false;
    }
  };
  const examples = records.filter(fits);
  if (examples.length === 0) throw new Error(`every ${split} example is longer than the model's text limit (${model.config.maxTextLength} tokens)`);
  return { examples, skippedTooLong: records.length - examples.length };
}

/** The outputs of one pass over the set. */
export interface MethodRun { answers: string[]; telemetry: Telemetry[]; timeMs: number }

/** Runs every example at batch 1 (the latency setting the paper and the benchmark use). */
export async function runMethod(model: MuEModel, examples: EvalExample[], options: InferenceOptions, onExample?: () => void): Promise<MethodRun> {
  const run: MethodRun = { answers: [], telemetry: [], timeMs: 0 };
  for (const example of examples) {
    const started = performance.now();
    const result = await runOne(model, example, options);
    run.timeMs += performance.now() - started;
    run.answers.push(result.text);
    run.telemetry.push(result.telemetry);
    onExample?.();
  }
  return run;
}

/**
 * Runs a method and full depth (and, given `fused`, full depth through the fused graphs) on every
 * example back to back, rotating which goes first, so load from other processes hits all alike;
 * returns the method's run and the references' times.
 */
export async function runPaired(
  model: MuEModel, examples: EvalExample[], options: InferenceOptions, fullDepth: InferenceOptions, onExample?: () => void, fused?: InferenceOptions,
): Promise<{ run: MethodRun; fullTimeMs: number; fusedTimeMs?: number }> {
  const run: MethodRun = { answers: [], telemetry: [], timeMs: 0 };
  let fullTimeMs = 0;
  let fusedTimeMs = 0;
  const order: Array<'method' | 'full' | 'fused'> = fused ? ['method', 'full', 'fused'] : ['method', 'full'];
  for (const [index, example] of examples.entries()) {
    for (let k = 0; k < order.length; k++) {
      const which = order[(index + k) % order.length]!;
      const started = performance.now();
      const result = await runOne(model, example, which === 'method' ? options : which === 'full' ? fullDepth : fused!);
      const elapsed = performance.now() - started;
      if (which === 'full') {
        fullTimeMs += elapsed;
      } else if (which === 'fused') {
        fusedTimeMs += elapsed;
      } else {
        run.timeMs += elapsed;
        run.answers.push(result.text);
        run.telemetry.push(result.telemetry);
      }
    }
    onExample?.();
  }
  return fused ? { run, fullTimeMs, fusedTimeMs } : { run, fullTimeMs };
}

async function runOne(model: MuEModel, example: EvalExample, options: InferenceOptions): Promise<{ text: string; telemetry: Telemetry }> {
  if (model.task === 've') {
    const result = await model.entail({ image: example.image, hypothesis: example.hypothesis, premise: example.premise }, options);
    return { text: result.answer, telemetry: result.telemetry };
  }
  const result = await model.caption({ image: example.image }, options);
  return { text: result.caption, telemetry: result.telemetry };
}

/** Per-example quality: correctness (VE) or CIDEr-D against the references (captioning), and the set's quality. */
export function scoreRun(model: MuEModel, examples: EvalExample[], answers: string[]): { quality: number; perExample: number[]; detail: Record<string, number> } {
  if (model.task === 've') {
    const perExample = answers.map((answer, i) => Number(answer === examples[i]!.label));
    const detail: Record<string, number> = {};
    const accuracyWhere = (key: string, keep: (e: EvalExample) => boolean) => {
      const rows = examples.map((e, i) => [e, i] as const).filter(([e]) => keep(e));
      if (rows.length > 0) detail[key] = rows.reduce((n, [, i]) => n + perExample[i]!, 0) / rows.length;
    };
    for (const label of ['yes', 'no', 'maybe']) accuracyWhere(`accuracy ${label}`, (e) => e.label === label);
    // Difficulty groups: the hypothesis family (SceneWorld) or the gold label (SNLI-VE).
    for (const group of [...new Set(examples.map((e) => e.group))].sort()) accuracyWhere(`accuracy group ${group}`, (e) => e.group === group);
    for (const count of [...new Set(examples.map((e) => e.objectCount))].sort()) {
      if (count !== undefined) accuracyWhere(`accuracy ${count} objects`, (e) => e.objectCount === count);
    }
    return { quality: mean(perExample), perExample, detail };
  }
  const references = Object.fromEntries(examples.map((e) => [e.id, e.references!]));
  const candidates = Object.fromEntries(examples.map((e, i) => [e.id, answers[i]!]));
  const scores = scoreCaptions(references, candidates);
  const perExample = examples.map((e) => scores.perImage[e.id]!.ciderD);
  const { bleu1, bleu2, bleu3, bleu4, rougeL, ciderD } = scores;
  return { quality: ciderD, perExample, detail: { bleu1, bleu2, bleu3, bleu4, rougeL, ciderD } };
}

/**
 * Summarises a run against the full-depth run of the same model on the same examples: its quality,
 * its telemetry (FLOPs, output lengths) and the full-depth time measured beside this run.
 */
export function summariseRun(
  model: MuEModel, examples: EvalExample[], run: MethodRun, full: { quality: number; timeMs: number; fusedTimeMs?: number; telemetry: Telemetry[] },
  method: string, setting: string, knob: number,
): MethodResult {
  const { config } = model;
  const scored = scoreRun(model, examples, run.answers);
  const textTokens = examples.map((e) => model.encoderIds(model.task === 've' ? model.entailmentText(e) : model.captionPrompt).length);
  const patches = model.imageTokens;
  let layersRun = 0;
  let layersFull = 0;
  run.telemetry.forEach((t, i) => {
    if (t.jointLayers !== undefined) {
      layersRun += (patches + textTokens[i]!) * t.jointLayers;
    } else {
      layersRun += patches * t.imageLayers! + textTokens[i]! * t.textLayers!;
    }
    layersFull += (patches + textTokens[i]!) * config.encoderLayers;
    // A VE prompt's one decision covers all its positions, each running that many layers.
    const positionsPerDecision = t.promptLength ?? 1;
    layersRun += positionsPerDecision * t.tokenLayers.reduce((a, b) => a + b, 0);
    layersFull += positionsPerDecision * full.telemetry[i]!.tokenLayers.length * config.decoderLayers;
  });
  const histogram = (values: number[], layers: number) => {
    const counts = new Array<number>(layers).fill(0);
    for (const value of values) counts[value - 1]!++;
    return counts;
  };
  const streamValues = (key: 'imageLayers' | 'textLayers' | 'jointLayers') => run.telemetry.map((t) => t[key]).filter((v): v is number => v !== undefined);
  const decoderValues = run.telemetry.flatMap((t) => t.tokenLayers);
  const longest = Math.max(0, ...run.telemetry.map((t) => t.tokenLayers.length));
  const decoderByPosition = Array.from({ length: longest }, (_, position) =>
    mean(run.telemetry.filter((t) => t.tokenLayers.length > position).map((t) => t.tokenLayers[position]!)));
  const depthByGroup: MethodResult['depthByGroup'] = {};
  for (const group of [...new Set(examples.map((e) => e.group))].sort()) {
    const rows = examples.map((e, i) => [e, i] as const).filter(([e]) => e.group === group).map(([, i]) => i);
    depthByGroup[group] = {
      encoder: mean(rows.map((i) => encoderDepth(run.telemetry[i]!))),
      decoder: mean(rows.map((i) => mean(run.telemetry[i]!.tokenLayers))),
      quality: mean(rows.map((i) => scored.perExample[i]!)),
      count: rows.length,
    };
  }
  const meanLayers: MethodResult['meanLayers'] = { decoder: mean(decoderValues) };
  const exitHistograms: MethodResult['exitHistograms'] = { decoder: histogram(decoderValues, config.decoderLayers) };
  for (const [key, name] of [['imageLayers', 'image'], ['textLayers', 'text'], ['jointLayers', 'joint']] as const) {
    const values = streamValues(key);
    if (values.length > 0) {
      meanLayers[name] = mean(values);
      exitHistograms[name] = histogram(values, config.encoderLayers);
    }
  }
  return {
    method, setting, knob,
    quality: scored.quality,
    retention: full.quality > 0 ? scored.quality / full.quality : 0,
    layerReduction: 1 - layersRun / layersFull,
    flopRatio: sum(run.telemetry.map((t) => t.flops)) / sum(full.telemetry.map((t) => t.flops)),
    timeRatio: run.timeMs / full.timeMs,
    ...(full.fusedTimeMs !== undefined ? { fusedTimeRatio: run.timeMs / full.fusedTimeMs } : {}),
    meanLayers, exitHistograms, decoderByPosition, depthByGroup, detail: scored.detail,
  };
}

/** Mean encoder depth of one request: the streams' layers averaged (joint: its one stream). */
const encoderDepth = (t: Telemetry): number => t.jointLayers ?? (t.imageLayers! + t.textLayers!) / 2;

export const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
export const mean = (xs: number[]): number => (xs.length === 0 ? 0 : sum(xs) / xs.length);
