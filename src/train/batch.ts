// Turning task examples into padded model inputs and targets (teacher forcing).
import type { TaskRecord } from '../data/dataSource.js';
import { entailmentAnswerIds, entailmentText, type VeFormulation } from '../data/entailmentPrompt.js';
import { CAPTION_PROMPT, ENTAILMENT_LABELS } from '../data/sceneworld.js';
import { encodeText, normaliseImage, type RgbPixels } from '../data/preprocess.js';
import type { TextTokenizer } from '../data/tokenizer.js';
import { tf } from '../model/backend.js';
import type { ModelConfig } from '../model/config.js';
import type { ModelInputs } from '../model/tfModel.js';

/** One supervised pair: image + text-stream input -> target text. */
export interface Seq2SeqExample {
  image: RgbPixels;
  text: string;
  target: string;
  /**
   * VE 'prompt' formulation: the decoder reads <bos> + the text's tokens and the target (one
   * answer word) is predicted at the last of them. Otherwise the decoder reads <bos> + target.
   */
  answersAtPrompt?: boolean;
}

/**
 * VE: the formulation's text (src/data/entailmentPrompt.ts) -> label. Captioning trains on one
 * reference per visit; which one rotates with `visit` so all are seen.
 */
export function fromTaskRecord(record: TaskRecord, visit: number, veFormulation: VeFormulation): Seq2SeqExample {
  if (record.label !== undefined) {
    const text = entailmentText(veFormulation, record.hypothesis, record.premise);
    return { image: record.image, text, target: record.label, answersAtPrompt: veFormulation === 'prompt' };
  }
  const references = record.references ?? [];
  if (references.length === 0) throw new Error(`example ${record.id} has neither a label nor reference captions`);
  return { image: record.image, text: CAPTION_PROMPT, target: references[visit % references.length]! };
}

/** Decoder positions an example needs: <bos> + text ('prompt' VE), else <bos> + target (= target + <eos>). */
function decoderLength(example: Seq2SeqExample, tokenizer: TextTokenizer): number {
  return 1 + tokenizer.encode(example.answersAtPrompt ? example.text : example.target).length;
}

/**
 * Whether the example fits the model's sequence limits (text ≤ maxTextLength tokens, decoder
 * sequence ≤ maxTargetLength). Real data sets hold longer sentences; training and evaluation skip
 * those and report how many, rather than failing on the first.
 */
export function fitsModel(example: Seq2SeqExample, tokenizer: TextTokenizer, config: ModelConfig): boolean {
  const textLength = tokenizer.encode(example.text).length;
  return textLength >= 1 && textLength <= config.maxTextLength && decoderLength(example, tokenizer) <= config.maxTargetLength;
}

export interface TrainingBatch {
  inputs: ModelInputs;
  targets: tf.Tensor2D; // (B, T) int32: the token each decoder position must predict, <pad> where unsupervised
  targetMask: tf.Tensor2D; // (B, T) 1 where supervised
  /** Per row, the decoder position whose prediction is the (first) answer token: the last prompt position ('prompt' VE), else 0. */
  answerPositions: number[];
  /** 'prompt' VE: the answer ids (yes / no / maybe); the loss restricts the logits to them. */
  allowedTokens?: number[];
}

/**
 * Pads text to the batch's longest, and decoder sequences likewise (right padding: the causal
 * decoder never lets a real position see a pad). Decoder input and targets per row:
 *   generation / 'bos' VE: [bos] + target  ->  target + [eos], every position supervised;
 *   'prompt' VE:           [bos] + text    ->  <pad>… answer, only the last position supervised.
 */
export function makeBatch(examples: Seq2SeqExample[], tokenizer: TextTokenizer, config: ModelConfig): TrainingBatch {
  const batch = examples.length;
  const atPrompt = examples[0]?.answersAtPrompt ?? false;
  if (examples.some((example) => (example.answersAtPrompt ?? false) !== atPrompt)) throw new Error('a batch cannot mix the prompt and the generation formulation');
  const allowedTokens = atPrompt ? entailmentAnswerIds(tokenizer, 'prompt') : undefined;
  const pixelsPerImage = config.imageSize * config.imageSize * 3;
  const images = new Float32Array(batch * pixelsPerImage);
  const textIds = examples.map((example) => encodeText(tokenizer, example.text, config.maxTextLength));
  // Per row: decoder input ids and, per position, the supervised target (undefined = none).
  const decoderRows = examples.map((example, row): { input: number[]; targets: (number | undefined)[] } => {
    if (atPrompt) {
      const answer = (ENTAILMENT_LABELS as readonly string[]).indexOf(example.target);
      if (answer === -1) throw new Error(`answer "${example.target}" is not one of ${ENTAILMENT_LABELS.join(', ')}`);
      const input = [tokenizer.bosId, ...textIds[row]!];
      return { input, targets: input.map((_, t) => (t === input.length - 1 ? allowedTokens![answer] : undefined)) };
    }
    const target = tokenizer.encode(example.target);
    const output = [...target, tokenizer.eosId];
    return { input: [tokenizer.bosId, ...target], targets: output }; // shifted right
  });
  const textLength = Math.max(...textIds.map((ids) => ids.length));
  const targetLength = Math.max(...decoderRows.map((row) => row.input.length));
  if (targetLength > config.maxTargetLength) throw new Error(`decoder sequence has ${targetLength} tokens but the model takes at most ${config.maxTargetLength}`);
  const textFlat = new Int32Array(batch * textLength).fill(tokenizer.padId);
  const textMask = new Float32Array(batch * textLength);
  const decoderFlat = new Int32Array(batch * targetLength).fill(tokenizer.padId);
  const targetFlat = new Int32Array(batch * targetLength).fill(tokenizer.padId);
  const targetMask = new Float32Array(batch * targetLength);
  examples.forEach((example, row) => {
    images.set(normaliseImage(example.image, config.imageSize), row * pixelsPerImage);
    textIds[row]!.forEach((id, t) => {
      textFlat[row * textLength + t] = id;
      textMask[row * textLength + t] = 1;
    });
    const { input, targets } = decoderRows[row]!;
    input.forEach((id, t) => {
      decoderFlat[row * targetLength + t] = id;
      const target = targets[t];
      if (target !== undefined) {
        targetFlat[row * targetLength + t] = target;
        targetMask[row * targetLength + t] = 1;
      }
    });
  });
  const answerPositions = decoderRows.map((row) => (atPrompt ? row.input.length - 1 : 0));
  return {
    inputs: {
      images: tf.tensor4d(images, [batch, config.imageSize, config.imageSize, 3]),
      textIds: tf.tensor2d(textFlat, [batch, textLength], 'int32'),
      textMask: tf.tensor2d(textMask, [batch, textLength]),
      decoderIds: tf.tensor2d(decoderFlat, [batch, targetLength], 'int32'),
    },
    targets: tf.tensor2d(targetFlat, [batch, targetLength], 'int32'),
    targetMask: tf.tensor2d(targetMask, [batch, targetLength]),
    answerPositions,
    ...(allowedTokens ? { allowedTokens } : {}),
  };
}

export function disposeBatch(batch: TrainingBatch): void {
  tf.dispose([batch.inputs.images, batch.inputs.textIds, batch.inputs.textMask, batch.inputs.decoderIds, batch.targets, batch.targetMask]);
}
