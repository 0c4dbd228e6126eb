// The training loop (nanoGPT-style, top to bottom): data stream -> forward -> layer-wise
// loss -> AdamW, with periodic validation, atomic checkpoints, resume and a JSONL log.
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { readFileBounded } from '../data/boundedRead.js';
import { endlessRecords, openDataSource, takeRecords } from '../data/dataSource.js';
import { entailmentAnswerIds, VE_FORMULATIONS, type VeFormulation } from '../data/entailmentPrompt.js';
import { tokenizerFromJSON } from '../data/hfTokenizer.js';
import { sceneWorldTokenizer } from '../data/sceneworld.js';
import type { TextTokenizer } from '../data/tokenizer.js';
import { initTensorflow, tf } from '../model/backend.js';
import { writeFileAtomic } from '../model/atomicWrite.js';
import { FILES, loadCheckpoint, MAX_CHECKPOINT_JSON_BYTES, recoverCheckpoint, saveCheckpoint, type Task } from '../model/checkpoint.js';
import { type EncoderMode, type ModelConfig, presetConfig, validateConfig } from '../model/config.js';
import { parseJsonObject } from '../model/modelFiles.js';
import type { NamedArray } from '../model/safetensors.js';
import { TfModel } from '../model/tfModel.js';
import { AdamW } from './adamw.js';
import { disposeBatch, fitsModel, fromTaskRecord, makeBatch, type Seq2SeqExample } from './batch.js';
import { type EngineName, TfjsEngine, type TrainingEngine } from './engine.js';
import { layerwiseTaskLoss, type LossMode } from './loss.js';
import { DEFAULT_LENGTH_BUCKET, MAX_THREADS, OrtEngine } from './ortEngine.js';

export interface TrainOptions {
  task: Task;
  preset: string;
  encoderMode: EncoderMode;
  lossMode: LossMode;
  steps: number;
  batchSize: number;
  learningRate: number;
  warmupSteps: number;
  weightDecay: number;
  clipNorm: number;
  /** Label smoothing ε; default: a resume keeps the run's, a fresh run takes the task's (DEFAULT_LABEL_SMOOTHING). */
  labelSmoothing?: number;
  /** VE: how the model reads the question and where it answers (recorded in config.json); default as labelSmoothing, fresh runs 'prompt'. */
  veFormulation?: VeFormulation;
  seed: number;
  imageSize: number;
  validationEvery: number;
  validationSize: number;
  checkpointEvery: number;
  /** Checkpoint directory; the JSONL log is written beside the weights as train-log.jsonl. */
  outDir: string;
  /** `sceneworld`, `snli-ve:DIR` or `coco:DIR` (see openDataSource). */
  data: string;
  /** Fine-tune: start from this checkpoint's weights, config and tokenizer instead of a fresh model. */
  initFrom?: string;
  /** Fresh model on real text: the Hugging Face tokenizer.json to use instead of SceneWorld's word list. */
  tokenizerFile?: string;
  /** Pause after this step (a checkpoint is saved); continue later with resume. Not part of the run's definition. */
  stopAtStep?: number;
  /** Training engine (default ort); not part of the run's definition. */
  engine?: EngineName;
  /** ORT intra-op threads (default DEFAULT_THREADS, at most MAX_THREADS); not part of the run's definition. */
  threads?: number;
}

/** Every core (both on the development machine), at most MAX_THREADS. */
export const DEFAULT_THREADS = Math.min(MAX_THREADS, availableParallelism());

/** Label smoothing of the official runs: none for VE (a 3-way answer), 0.1 for captions. */
export const DEFAULT_LABEL_SMOOTHING: Record<Task, number> = { ve: 0, caption: 0.1 };

/** Options after defaults are resolved (what a run saves and a resume compares). */
type ResolvedTrainOptions = TrainOptions & Required<Pick<TrainOptions, 'labelSmoothing' | 'veFormulation'>>;

export const DEFAULT_TRAIN_OPTIONS: Omit<TrainOptions, 'task' | 'outDir'> = {
  preset: 'small',
  encoderMode: 'decomposed',
  lossMode: 'layerwise',
  steps: 2000,
  batchSize: 32,
  learningRate: 1e-3,
  warmupSteps: 100,
  weightDecay: 0.01,
  clipNorm: 1.0,
  veFormulation: 'prompt',
  seed: 1,
  imageSize: 64,
  validationEvery: 200,
  validationSize: 256,
  checkpointEvery: 200,
  data: 'sceneworld',
};

/** Upper bounds of the numeric options (the CLI shows them in --help); a run beyond them is a typo, not a plan. */
export const TRAIN_OPTION_LIMITS = {
  steps: 10_000_000, batchSize: 4096, warmupSteps: 10_000_000, validationEvery: 10_000_000, validationSize: 1_000_000,
  checkpointEvery: 10_000_000, imageSize: 1024, seed: 2 ** 32 - 1, learningRate: 1, weightDecay: 1, clipNorm: 1e6,
} as const;

/** Options that must not change across a resume (they define the run). */
const RUN_DEFINING: readonly (keyof TrainOptions)[] = [
  'task', 'preset', 'encoderMode', 'lossMode', 'steps', 'batchSize', 'learningRate', 'warmupSteps',
  'weightDecay', 'clipNorm', 'labelSmoothing', 'veFormulation', 'seed', 'imageSize', 'data', 'initFrom', 'tokenizerFile',
];
/** What runs saved before an option existed used, so they still resume. */
const BEFORE_OPTION_EXISTED: Partial<TrainOptions> = { data: 'sceneworld', veFormulation: 'bos' };

export interface StepRecord {
  type: 'train';
  step: number;
  loss: number;
  layerLosses: number[];
  learningRate: number;
  gradientNorm: number;
  samplesPerSecond: number;
  /** Examples skipped so far in this run for exceeding the model's sequence limits (absent when none). */
  skippedTooLong?: number;
}
export interface ValidationRecord {
  type: 'validation';
  step: number;
  loss: number;
  layerLosses: number[];
  /** VE: answer accuracy (argmax over yes/no/maybe at the answer position: the last prompt position, or 0 for 'bos' models); caption: next-token accuracy. One per decoder layer. */
  layerAccuracy: number[];
  accuracy: number;
}

export interface TrainCallbacks {
  onStep?: (record: StepRecord) => void;
  onValidation?: (record: ValidationRecord) => void;
  onStart?: (info: { startStep: number; totalSteps: number; parameters: number; data: string }) => void;
}

export interface TrainResult { finalStep: number; lastValidation?: ValidationRecord; model: TfModel; tokenizer: TextTokenizer; config: ModelConfig }

/** fresh: refuse to touch an existing checkpoint; resume: continue it; overwrite: start again over it. */
export type TrainStart = 'fresh' | 'resume' | 'overwrite';

export async function train(given: TrainOptions, callbacks: TrainCallbacks = {}, start: TrainStart = 'fresh'): Promise<TrainResult> {
  // A crash during a checkpoint swap may have left the newest checkpoint in a leftover folder;
  // recovered first, so a resume reads that checkpoint's options.
  recoverCheckpoint(given.outDir);
  const options = withDefaults(given, start);
  validateTrainOptions(options);
  if (start === 'fresh' && existsSync(join(options.outDir, FILES.config))) {
    throw new Error(`${options.outDir} already holds a checkpoint: pass --resume to continue it or --overwrite to start again`);
  }
  await initTensorflow();
  const source = openDataSource(options.data, options.task, options.seed);
  const initial = startingPoint(options);
  const { tokenizer, config } = initial;
  const optimizer = new AdamW({
    learningRate: options.learningRate, warmupSteps: options.warmupSteps, totalSteps: options.steps,
    minLearningRateRatio: 0.1, weightDecay: options.weightDecay, clipNorm: options.clipNorm,
    beta1: 0.9, beta2: 0.999, epsilon: 1e-8,
  });
  let startStep = 0;
  let weights: Map<string, NamedArray>;
  if (start === 'resume') {
    const checkpoint = loadCheckpoint(options.outDir);
    const state = checkpoint.trainingState;
    if (!state || !checkpoint.optimizerState) throw new Error(`${options.outDir} holds no training state to resume from (was it saved by mue train?)`);
    const saved = state.options as Partial<TrainOptions>;
    for (const key of RUN_DEFINING) {
      if ((key in saved ? saved[key] : BEFORE_OPTION_EXISTED[key]) !== options[key]) throw new Error(`cannot resume: option ${key} was ${JSON.stringify(saved[key])}, now ${JSON.stringify(options[key])}`);
    }
    weights = checkpoint.weights;
    startStep = state.step as number;
    optimizer.restore(checkpoint.optimizerState, startStep);
  } else {
    weights = initial.weights ?? initialWeights(config, options.seed);
  }
  const lossOptions = { smoothing: options.labelSmoothing, mode: options.lossMode };
  const engine: TrainingEngine = (options.engine ?? 'ort') === 'ort'
    ? new OrtEngine(config, weights, optimizer, { loss: lossOptions, threads: options.threads ?? DEFAULT_THREADS, lengthBucket: DEFAULT_LENGTH_BUCKET })
    : new TfjsEngine(TfModel.fromTensors(config, toTensors(weights)), optimizer, lossOptions);
  mkdirSync(options.outDir, { recursive: true });
  const logPath = join(options.outDir, 'train-log.jsonl');
  const log = (record: object) => appendFileSync(logPath, `${JSON.stringify(record)}\n`);
  keepLogUpTo(logPath, startStep);
  callbacks.onStart?.({ startStep, totalSteps: options.steps, data: source.name, parameters: [...weights.values()].reduce((n, v) => n + v.data.length, 0) });

  const validationExamples = (await takeRecords(source, 'validation', options.validationSize, options.imageSize))
    .map((record, visit) => fromTaskRecord(record, visit, config.veFormulation))
    .filter((example) => fitsModel(example, tokenizer, config));
  if (validationExamples.length === 0) throw new Error(`every validation example of ${source.name} is longer than the model's limits (text ${config.maxTextLength}, target ${config.maxTargetLength} tokens)`);
  const answerIds = options.task === 've' ? entailmentAnswerIds(tokenizer, config.veFormulation) : [];
  let lastValidation: ValidationRecord | undefined;
  const save = (step: number) =>
    saveCheckpoint(options.outDir, {
      task: options.task, config, tokenizer, weights: engine.weights(),
      optimizerState: optimizer.state(), trainingState: { step, options },
    });

  const lastStep = Math.min(options.steps, options.stopAtStep ?? options.steps);
  // Stream position = step × batch size, so a resumed run sees the examples an unbroken run would.
  let position = startStep * options.batchSize;
  /** Training examples skipped because they exceed the model's sequence limits (logged with each step). */
  let skippedTooLong = 0;
  const stream = endlessRecords(source, 'train', options.imageSize, position);
  for (let step = startStep; step < lastStep; step++) {
    const started = performance.now();
    const examples: Seq2SeqExample[] = [];
    while (examples.length < options.batchSize) {
      const example = fromTaskRecord((await stream.next()).value!, position++, config.veFormulation);
      if (fitsModel(example, tokenizer, config)) examples.push(example);
      else skippedTooLong++;
      if (skippedTooLong > 1000 && skippedTooLong > 10 * (position - skippedTooLong)) {
        throw new Error(`almost every training example of ${source.name} is longer than the model's limits (text ${config.maxTextLength}, target ${config.maxTargetLength} tokens): use a larger config`);
      }
    }
    const batch = makeBatch(examples, tokenizer, config);
    const result = await engine.step(batch);
    const record: StepRecord = {
      type: 'train', step: step + 1, loss: result.loss, layerLosses: result.layerLosses,
      learningRate: result.learningRate, gradientNorm: result.gradientNorm, samplesPerSecond: (options.batchSize * 1000) / (performance.now() - started),
      ...(skippedTooLong > 0 ? { skippedTooLong } : {}),
    };
    disposeBatch(batch);
    if (!Number.isFinite(record.loss)) throw new Error(`training diverged at step ${step + 1} (loss ${record.loss}); lower --learning-rate`);
    log(record);
    callbacks.onStep?.(record);
    const isLast = step + 1 === lastStep;
    if ((step + 1) % options.validationEvery === 0 || isLast) {
      lastValidation = engine.withModel((model) => validate(model, validationExamples, tokenizer, options, answerIds, step + 1));
      log(lastValidation);
      callbacks.onValidation?.(lastValidation);
    }
    if ((step + 1) % options.checkpointEvery === 0 || isLast) save(step + 1);
  }
  await stream.return(undefined);
  return { finalStep: Math.max(startStep, lastStep), lastValidation, model: await engine.finish(), tokenizer, config };
}

/**
 * Fills the options left unset: a resume takes the saved run's values (or what runs used before
 * the option existed); a fine-tune keeps its checkpoint's formulation (as --encoder-mode); a fresh
 * run takes the defaults. Resolved before anything is saved, so a resume compares, and the log
 * records, the values in use.
 */
function withDefaults(given: TrainOptions, start: TrainStart): ResolvedTrainOptions {
  const readJson = (path: string): Record<string, unknown> | undefined => (existsSync(path) ? parseJsonObject(readFileBounded(path, MAX_CHECKPOINT_JSON_BYTES).toString('utf8'), path) : undefined);
  const saved = start === 'resume' ? (readJson(join(given.outDir, FILES.trainingState))?.options as Partial<TrainOptions> | undefined) : undefined;
  const savedValue = <K extends keyof TrainOptions>(key: K): TrainOptions[K] | undefined => (saved && key in saved ? saved[key] : BEFORE_OPTION_EXISTED[key]);
  const initConfig = given.initFrom ? readJson(join(given.initFrom, FILES.config)) : undefined;
  return {
    ...given,
    labelSmoothing: given.labelSmoothing ?? (saved ? savedValue('labelSmoothing') : undefined) ?? DEFAULT_LABEL_SMOOTHING[given.task],
    veFormulation: given.veFormulation ?? (saved ? savedValue('veFormulation') : undefined)
      ?? (initConfig ? validateConfig(initConfig).veFormulation : undefined) ?? DEFAULT_TRAIN_OPTIONS.veFormulation!,
  };
}

/**
 * Drops the log records after `step` (the checkpoint the run continues from): a crash after
 * logging a step but before checkpointing it would otherwise leave those steps twice in the log.
 * A torn last line (killed mid-append) is dropped too; other unreadable lines are kept as they are.
 */
export function keepLogUpTo(logPath: string, step: number): void {
  if (!existsSync(logPath)) return;
  if (step === 0) {
    rmSync(logPath, { force: true });
    return;
  }
  const text = readFileSync(logPath, 'utf8');
  const lines = text.split('\n');
  const complete = lines.slice(0, -1); // what follows the last newline is empty or a torn record
  const kept = complete.filter((line) => {
    try {
      const record = JSON.parse(line) as { step?: unknown };
      return !(typeof record.step === 'number' && record.step > step);
    } catch {
      return true;
    }
  });
  if (kept.length !== lines.length - 1 || !text.endsWith('\n')) writeFileAtomic(logPath, kept.map((line) => `${line}\n`).join(''));
}

/** Teacher-forced validation of every decoder layer through the shared head. */
export function validate(model: TfModel, examples: Seq2SeqExample[], tokenizer: TextTokenizer, options: Required<Pick<TrainOptions, 'labelSmoothing' | 'lossMode' | 'task'>>, answerIds: number[], step: number): ValidationRecord {
  const layers = model.config.decoderLayers;
  const lossSums = new Array<number>(layers).fill(0);
  const correct = new Array<number>(layers).fill(0);
  let counted = 0;
  const chunk = 64;
  for (let start = 0; start < examples.length; start += chunk) {
    const part = examples.slice(start, start + chunk);
    const batch = makeBatch(part, tokenizer, model.config);
    tf.tidy(() => {
      const { decoderStates } = model.forward(batch.inputs);
      const { perLayer } = layerwiseTaskLoss(model, decoderStates, batch.targets, batch.targetMask, { smoothing: options.labelSmoothing, mode: options.lossMode, allowedTokens: batch.allowedTokens });
      perLayer.forEach((loss, i) => (lossSums[i]! += loss.dataSync()[0]! * part.length));
      // VE: the answer position of each row (the last prompt position, or 0 for 'bos' models), as flat indices into (B·T).
      const length = batch.targets.shape[1];
      const answerIndices = tf.tensor1d(batch.answerPositions.map((position, row) => row * length + position), 'int32');
      decoderStates.slice(1).forEach((state, i) => {
        const logits = model.logits(state); // (B, T, V)
        if (options.task === 've') {
          // Answer accuracy: argmax over the three label words at the answer position.
          const atAnswer = tf.gather(logits.reshape([part.length * length, -1]), answerIndices); // (B, V)
          const predicted = tf.gather(tf.tensor1d(answerIds, 'int32'), tf.argMax(tf.gather(atAnswer, answerIds, 1), 1));
          const truth = tf.gather(batch.targets.reshape([-1]), answerIndices); // (B)
          correct[i]! += tf.sum(tf.cast(tf.equal(predicted, truth), 'float32')).dataSync()[0]!;
        } else {
          const hits = tf.mul(tf.cast(tf.equal(tf.argMax(logits, -1), batch.targets), 'float32'), batch.targetMask);
          correct[i]! += tf.sum(hits).dataSync()[0]!;
        }
      });
    });
    counted += options.task === 've' ? part.length : batch.targetMask.sum().dataSync()[0]!;
    disposeBatch(batch);
  }
  const layerLosses = lossSums.map((sum) => sum / examples.length);
  const layerAccuracy = correct.map((hits) => hits / counted);
  const loss = options.lossMode === 'layerwise' ? layerLosses.reduce((a, b) => a + b, 0) : layerLosses.at(-1)!;
  return { type: 'validation', step, loss, layerLosses, layerAccuracy, accuracy: layerAccuracy.at(-1)! };
}

/** Config, tokenizer and (fine-tuning) weights the run starts from. */
function startingPoint(options: ResolvedTrainOptions): { config: ModelConfig; tokenizer: TextTokenizer; weights?: Map<string, NamedArray> } {
  if (options.initFrom) {
    const checkpoint = loadCheckpoint(options.initFrom);
    const { config } = checkpoint;
    if (config.imageSize !== options.imageSize) throw new Error(`--init-from ${options.initFrom} takes ${config.imageSize}-pixel images; pass --image-size ${config.imageSize}`);
    // The joint and decomposed encoders share every parameter (they differ only in which tokens
    // attend to which), so a fine-tune may switch modes, e.g. the joint ablation from the same start.
    return { config: { ...config, encoderMode: options.encoderMode, veFormulation: options.veFormulation }, tokenizer: checkpoint.tokenizer, weights: checkpoint.weights };
  }
  const tokenizer = options.tokenizerFile ? readTokenizerFile(options.tokenizerFile) : sceneWorldTokenizer();
  return { tokenizer, config: presetConfig(options.preset, tokenizer.vocabSize, { encoderMode: options.encoderMode, imageSize: options.imageSize, veFormulation: options.veFormulation }) };
}

function readTokenizerFile(path: string): TextTokenizer {
  let json: unknown;
  try {
    json = JSON.parse(readFileBounded(path, MAX_CHECKPOINT_JSON_BYTES).toString('utf8'));
  } catch (error) {
    throw new Error(`--tokenizer ${path}: cannot read it as JSON (${(error as Error).message})`);
  }
  return tokenizerFromJSON(json);
}

export function validateTrainOptions(options: ResolvedTrainOptions): void {
  const limits = TRAIN_OPTION_LIMITS;
  const positiveIntegers = ['steps', 'batchSize', 'validationEvery', 'validationSize', 'checkpointEvery', 'imageSize'] as const;
  for (const key of positiveIntegers) {
    if (!Number.isInteger(options[key]) || options[key] < 1 || options[key] > limits[key]) throw new Error(`--${kebab(key)} must be an integer from 1 to ${limits[key]} (got ${options[key]})`);
  }
  if (!Number.isInteger(options.warmupSteps) || options.warmupSteps < 0 || options.warmupSteps > limits.warmupSteps) throw new Error(`--warmup-steps must be an integer from 0 to ${limits.warmupSteps} (got ${options.warmupSteps})`);
  if (!Number.isInteger(options.seed) || options.seed < 0 || options.seed > limits.seed) throw new Error(`--seed must be an integer from 0 to ${limits.seed} (got ${options.seed})`);
  if (options.stopAtStep !== undefined && (!Number.isInteger(options.stopAtStep) || options.stopAtStep < 1 || options.stopAtStep > limits.steps)) throw new Error(`--stop-at must be an integer from 1 to ${limits.steps} (got ${options.stopAtStep})`);
  if (!(options.learningRate > 0 && options.learningRate <= limits.learningRate)) throw new Error(`--learning-rate must be in (0, ${limits.learningRate}] (got ${options.learningRate})`);
  if (!(options.weightDecay >= 0 && options.weightDecay <= limits.weightDecay)) throw new Error(`--weight-decay must be in [0, ${limits.weightDecay}] (got ${options.weightDecay})`);
  if (!(options.clipNorm > 0 && options.clipNorm <= limits.clipNorm)) throw new Error(`--clip-norm must be in (0, ${limits.clipNorm}] (got ${options.clipNorm})`);
  if (options.initFrom && options.tokenizerFile) throw new Error('--init-from brings its own tokenizer; drop --tokenizer');
  if (!(options.labelSmoothing >= 0 && options.labelSmoothing < 1)) throw new Error(`--label-smoothing must be in [0, 1) (got ${options.labelSmoothing})`);
  if (options.engine !== undefined && options.engine !== 'ort' && options.engine !== 'tfjs') throw new Error(`--engine must be ort or tfjs (got ${options.engine})`);
  if (options.threads !== undefined && (!Number.isInteger(options.threads) || options.threads < 1 || options.threads > MAX_THREADS)) {
    throw new Error(`--threads must be an integer from 1 to ${MAX_THREADS} (got ${options.threads})`);
  }
  if (!VE_FORMULATIONS.includes(options.veFormulation)) throw new Error(`--ve-formulation must be ${VE_FORMULATIONS.join(' or ')} (got ${options.veFormulation})`);
}

/** Fresh weights as arrays, deterministic in the seed (TfModel.initialise's). */
function initialWeights(config: ModelConfig, seed: number): Map<string, NamedArray> {
  const model = TfModel.initialise(config, seed);
  const weights = fromVariables(model.weights);
  model.dispose();
  return weights;
}

const kebab = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

export function toTensors(arrays: Map<string, NamedArray>): Map<string, tf.Tensor> {
  return new Map([...arrays].map(([name, { shape, data }]) => [name, tf.tensor(data, shape)]));
}

export function fromVariables(variables: Map<string, tf.Variable>): Map<string, NamedArray> {
  return new Map([...variables].map(([name, variable]) => [name, { shape: variable.shape, data: variable.dataSync() as Float32Array }]));
}
