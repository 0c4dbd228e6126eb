// `mue convert-ofa`: an OFA / MuE fairseq checkpoint.pt -> a mue model directory (family "ofa").
import type { Command } from 'commander';
import { convertOfaCheckpoint, OFA_TASKS, type OfaTask } from '../../model/ofaConvert.js';
import { parseChoice } from '../options.js';

export function registerConvertOfaCommand(program: Command): void {
  program
    .command('convert-ofa')
    .description('convert an OFA / MuE fairseq checkpoint.pt (fp32 or fp16) into a mue model directory (config.json, model.safetensors, tokenizer.json)')
    .requiredOption('--checkpoint <file>', 'fairseq checkpoint written by OFA / MuE training (.pt, or .pt.gz)')
    .requiredOption('--bpe-dir <dir>', "folder with OFA's encoder.json, vocab.bpe and dict.txt (OFA's utils/BPE); a longer dict.txt is cut to the checkpoint's vocabulary")
    .requiredOption('--out <dir>', 'model directory to write (replaced whole; other files in it are kept)')
    .option('--task <task>', `${OFA_TASKS.join(' | ')} (default: from the checkpoint's task, snli_ve -> ve, caption -> caption)`, parseChoice('--task', OFA_TASKS))
    .action((raw: { checkpoint: string; bpeDir: string; out: string; task?: OfaTask }) => {
      const result = convertOfaCheckpoint(raw);
      const tied = Object.keys(result.aliases).length;
      console.log(`wrote ${raw.out}: ${result.task} model, vocabulary ${result.vocabSize}, ${result.storedTensors} tensors (${result.floatDtype} in the checkpoint, stored float32${tied ? `, ${tied} tied copies stored once` : ''})`);
    });
}
