// Turning task examples into padded model inputs and targets (teacher forcing).
import type { TaskRecord } from '../data/dataSource.js';
import { CAPTION_PROMPT } from '../data/sceneworld.js';
import { encodeText, normaliseImage, type RgbPixels } from '../data/preprocess.js';
import type { TextTokenizer } from '../data/tokenizer.js';
import { tf } from '../model/backend.js';
import type { ModelConfig } from '../model/config.js';
import type { ModelInputs } from '../model/tfModel.js';

/** One supervised pair: image + text-stream input -> target text. */
export interface Seq2SeqExample { image: RgbPixels; text: string; target: string }

/** VE: hypothesis -> label. Captioning trains on one reference per visit; which one rotates with `visit` so all are seen. */
export function fromTaskRecord(record: TaskRecord, visit: number): Seq2SeqExample {
  if (record.label !== undefined) return { image: record.image, text: record.hypothesis, target: record.label };
  const references = record.references ?? [];
  if (references.length === 0) throw new Error(`example ${record.id} has neither a label nor reference captions`);
  return { image: record.image, text: CAPTION_PROMPT, target: references[visit % references.length]! };
}

/**
 * Whether the example fits the model's sequence limits (text ≤ maxTextLength tokens, target +
 * <eos> ≤ maxTargetLength). Real data sets hold longer sentences; training and evaluation skip
 * those and report how many, rather than failing on the first.
 */
export function fitsModel(example: Seq2SeqExample, tokenizer: TextTokenizer, config: ModelConfig): boolean {
  const textLength = tokenizer.encode(example.text).length;
  return textLength >= 1 && textLength <= config.maxTextLength && tokenizer.encode(example.target).length + 1 <= config.maxTargetLength;
}

export interface TrainingBatch {
  inputs: ModelInputs;
  targets: tf.Tensor2D; // (B, T) int32: the target followed by <eos>, padded
  targetMask: tf.Tensor2D; // (B, T) 1 for real target tokens
  /** When set, the loss scores only these token ids (the others' logits are masked). */
  allowedTokens?: number[];
}

/** Pads text to the batch's longest, and decoder sequences ([bos] + target | target + [eos]) likewise. */
export function makeBatch(examples: Seq2SeqExample[], tokenizer: TextTokenizer, config: ModelConfig): TrainingBatch {
  const batch = examples.length;
  const pixelsPerImage = config.imageSize * config.imageSize * 3;
  const images = new Float32Array(batch * pixelsPerImage);
  const textIds = examples.map((example) => encodeText(tokenizer, example.text, config.maxTextLength));
  const targetIds = examples.map((example) => [...tokenizer.encode(example.target), tokenizer.eosId]);
  const textLength = Math.max(...textIds.map((ids) => ids.length));
  const targetLength = Math.max(...targetIds.map((ids) => ids.length));
  if (targetLength > config.maxTargetLength) throw new Error(`target has ${targetLength} tokens (with <eos>) but the model takes at most ${config.maxTargetLength}`);
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
    const target = targetIds[row]!;
    target.forEach((id, t) => {
      decoderFlat[row * targetLength + t] = t === 0 ? tokenizer.bosId : target[t - 1]!; // shifted right
      targetFlat[row * targetLength + t] = id;
      targetMask[row * targetLength + t] = 1;
    });
  });
  return {
    inputs: {
      images: tf.tensor4d(images, [batch, config.imageSize, config.imageSize, 3]),
      textIds: tf.tensor2d(textFlat, [batch, textLength], 'int32'),
      textMask: tf.tensor2d(textMask, [batch, textLength]),
      decoderIds: tf.tensor2d(decoderFlat, [batch, targetLength], 'int32'),
    },
    targets: tf.tensor2d(targetFlat, [batch, targetLength], 'int32'),
    targetMask: tf.tensor2d(targetMask, [batch, targetLength]),
  };
}

export function disposeBatch(batch: TrainingBatch): void {
  tf.dispose([batch.inputs.images, batch.inputs.textIds, batch.inputs.textMask, batch.inputs.decoderIds, batch.targets, batch.targetMask]);
}
