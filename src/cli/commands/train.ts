// `mue train`: MuE training with the layer-wise task loss on SceneWorld or a real data set (--data).
import type { Command } from 'commander';
import { DATA_SPEC_HELP } from '../../data/dataSource.js';
import { loadCheckpoint, TASKS } from '../../model/checkpoint.js';
import { PRESETS } from '../../model/config.js';
import { ENGINES } from '../../train/engine.js';
import { LOSS_MODES } from '../../train/loss.js';
import { VE_FORMULATIONS } from '../../data/entailmentPrompt.js';
import { MAX_THREADS } from '../../train/ortEngine.js';
import { DEFAULT_LABEL_SMOOTHING, DEFAULT_THREADS, DEFAULT_TRAIN_OPTIONS, TRAIN_OPTION_LIMITS, train, type TrainOptions } from '../../train/trainer.js';
import { integerOption, numberOption, parseChoice } from '../options.js';
import { progressBar } from '../progress.js';

export function registerTrainCommand(program: Command): void {
  const d = DEFAULT_TRAIN_OPTIONS;
  const max = TRAIN_OPTION_LIMITS;
  program
    .command('train')
    .description('train a model with the layer-wise task loss; writes a checkpoint directory and train-log.jsonl')
    .requiredOption('--task <task>', `task: ${TASKS.join(' | ')}`, parseChoice('--task', TASKS))
    .requiredOption('--out <dir>', 'checkpoint directory')
    .option('--preset <name>', `model size: ${Object.keys(PRESETS).join(' | ')}`, parseChoice('--preset', Object.keys(PRESETS)), d.preset)
    .option('--encoder-mode <mode>', `decomposed (MuE) | joint (ablation) (default: the --init-from checkpoint's, else "${d.encoderMode}")`, parseChoice('--encoder-mode', ['decomposed', 'joint'] as const))
    .option('--loss <mode>', `${LOSS_MODES.join(' | ')} (ablation)`, parseChoice('--loss', LOSS_MODES), d.lossMode)
    .addOption(integerOption('--steps <n>', 'optimizer steps', 1, max.steps, d.steps))
    .addOption(integerOption('--batch-size <n>', 'examples per step', 1, max.batchSize, d.batchSize))
    .addOption(numberOption('--learning-rate <x>', 'peak learning rate', { min: 0, minExclusive: true, max: max.learningRate }, d.learningRate))
    .addOption(integerOption('--warmup-steps <n>', 'linear warm-up steps', 0, max.warmupSteps, d.warmupSteps))
    .addOption(numberOption('--weight-decay <x>', 'AdamW decoupled weight decay', { min: 0, max: max.weightDecay }, d.weightDecay))
    .addOption(numberOption('--clip-norm <x>', 'global gradient-norm clip', { min: 0, minExclusive: true, max: max.clipNorm }, d.clipNorm))
    .addOption(numberOption('--label-smoothing <x>', `label smoothing ε (default: ${Object.entries(DEFAULT_LABEL_SMOOTHING).map(([task, value]) => `${value} for ${task}`).join(', ')}, as the official runs; --resume keeps the run's)`, { min: 0, max: 1, maxExclusive: true }))
    .option('--ve-formulation <form>', `VE only: prompt (official: the decoder reads <bos> + the question template and answers at its end, constrained to yes/no/maybe) | bos (the decoder answers from <bos> alone; ablation, and how the first shipped models were trained) (default: "${d.veFormulation}"; --init-from keeps the checkpoint's, --resume the run's)`, parseChoice('--ve-formulation', VE_FORMULATIONS))
    .addOption(integerOption('--seed <n>', 'seed for weights and data', 0, max.seed, d.seed))
    .addOption(integerOption('--image-size <n>', 'image side in pixels', 1, max.imageSize, d.imageSize))
    .addOption(integerOption('--validation-every <n>', 'validate every n steps', 1, max.validationEvery, d.validationEvery))
    .addOption(integerOption('--validation-size <n>', 'validation examples', 1, max.validationSize, d.validationSize))
    .addOption(integerOption('--checkpoint-every <n>', 'checkpoint every n steps', 1, max.checkpointEvery, d.checkpointEvery))
    .option('--data <spec>', DATA_SPEC_HELP, d.data)
    .option('--init-from <dir>', 'fine-tune: start from this checkpoint (its config and tokenizer; --image-size must match, --encoder-mode may differ)')
    .option('--tokenizer <file>', 'Hugging Face tokenizer.json (BPE, WordPiece, …) for a fresh model on real text (default: SceneWorld words)')
    .addOption(integerOption('--stop-at <step>', 'pause after this step (checkpoint saved); continue later with --resume', 1, max.steps))
    .option('--engine <name>', 'ort: ONNX Runtime, generated gradients, multi-threaded | tfjs: TensorFlow.js wasm, single-threaded (reference)', parseChoice('--engine', ENGINES), 'ort')
    .addOption(integerOption('--threads <n>', 'ONNX Runtime threads (default: every core)', 1, MAX_THREADS, DEFAULT_THREADS))
    .option('--resume', 'continue the run saved in --out')
    .option('--overwrite', 'start again, replacing the checkpoint in --out')
    .action(async (raw: Record<string, unknown>) => {
      if (raw.resume && raw.overwrite) throw new Error('--resume and --overwrite exclude each other');
      const options: TrainOptions = {
        task: raw.task as TrainOptions['task'], outDir: raw.out as string, preset: raw.preset as string,
        encoderMode: (raw.encoderMode as TrainOptions['encoderMode'] | undefined)
          ?? (raw.initFrom ? loadCheckpoint(raw.initFrom as string).config.encoderMode : d.encoderMode),
        lossMode: raw.loss as TrainOptions['lossMode'],
        steps: raw.steps as number, batchSize: raw.batchSize as number, learningRate: raw.learningRate as number,
        warmupSteps: raw.warmupSteps as number, weightDecay: raw.weightDecay as number, clipNorm: raw.clipNorm as number,
        labelSmoothing: raw.labelSmoothing as number | undefined,
        veFormulation: raw.veFormulation as TrainOptions['veFormulation'] | undefined, seed: raw.seed as number, imageSize: raw.imageSize as number,
        validationEvery: raw.validationEvery as number, validationSize: raw.validationSize as number,
        checkpointEvery: raw.checkpointEvery as number, stopAtStep: raw.stopAt as number | undefined,
        data: raw.data as string, initFrom: raw.initFrom as string | undefined, tokenizerFile: raw.tokenizer as string | undefined,
        engine: raw.engine as TrainOptions['engine'], threads: raw.threads as number,
      };
      const bar = progressBar('steps');
      let lastLoss = NaN;
      let validationText = '';
      const result = await train(
        options,
        {
          onStart: ({ startStep, totalSteps, parameters, data }) => {
            const what = options.initFrom ? `fine-tuning ${options.initFrom}` : `training ${options.preset}`;
            console.error(`${what} (${(parameters / 1e6).toFixed(2)}M parameters) on ${data} ${options.task}, steps ${startStep}→${totalSteps}, engine ${options.engine}${options.engine === 'ort' ? ` (${options.threads} threads)` : ''}`);
            bar.start(totalSteps, startStep, { rate: '', status: '' });
          },
          onStep: (record) => {
            lastLoss = record.loss;
            bar.update(record.step, { rate: `${record.samplesPerSecond.toFixed(1)} samples/s`, status: `loss ${lastLoss.toFixed(3)}${validationText}` });
          },
          onValidation: (record) => {
            validationText = ` | val acc ${(record.accuracy * 100).toFixed(1)}%`;
            if (!process.stderr.isTTY) console.error(`step ${record.step}: validation loss ${record.loss.toFixed(3)}, accuracy per decoder layer ${record.layerAccuracy.map((a) => (a * 100).toFixed(1)).join(' / ')}%`);
          },
        },
        raw.resume ? 'resume' : raw.overwrite ? 'overwrite' : 'fresh',
      );
      bar.stop();
      const validation = result.lastValidation;
      if (validation) {
        const what = options.task === 've' ? 'answer accuracy' : 'next-token accuracy';
        console.log(`validation ${what} (last decoder layer): ${(validation.accuracy * 100).toFixed(1)}%`);
        console.log(`per decoder layer: ${validation.layerAccuracy.map((a, i) => `L${i + 1} ${(a * 100).toFixed(1)}%`).join('  ')}`);
      }
      console.log(`checkpoint: ${options.outDir}  (log: ${options.outDir}/train-log.jsonl)`);
      result.model.dispose();
    });
}
