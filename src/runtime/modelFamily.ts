// What differs between the two model families outside their layers: how a question or prompt
// becomes encoder and decoder ids, how ids become a caption, how images are resized, and the
// runner of their pieces. MuEModel drives either through this and the ExitRunner interface.
//   mue — mue's own models: text tokens without specials, the SceneWorld caption prompt, the
//         VE formulation the model was trained with, images centre-cropped (src/data/image.ts);
//   ofa — converted OFA / MuE checkpoints (ARCHITECTURE.md §11, §14): text cleaned by pre_caption
//         and wrapped in <s> … </s>, the decoder prompt is the encoder ids without </s>, the caption
//         prompt " what does the image describe?", captions stripped of punctuation, images
//         stretched to the square input with a bicubic filter.
import { entailmentText, type VeFormulation } from '../data/entailmentPrompt.js';
import { cleanOfaCaption, normaliseOfaText, OFA_CAPTION_PROMPT } from '../data/ofaText.js';
import { encodeText, type ImageResize, ofaImageResize, resizeOf } from '../data/preprocess.js';
import { CAPTION_PROMPT } from '../data/sceneworld.js';
import type { EncoderMode } from '../model/config.js';
import type { ParsedModel } from '../model/modelFiles.js';
import type { ExitRunner } from './exitRunner.js';
import { LayerRunner } from './layerRunner.js';
import type { LoadOptions } from './modelSource.js';
import { OfaExitRunner } from './ofaExitRunner.js';

export type ModelFamily = 'mue' | 'ofa';

/** The sizes and modes callers read of any loaded model (`MuEModel.config`). */
export interface RuntimeConfig {
  family: ModelFamily;
  vocabSize: number;
  dim: number;
  encoderLayers: number;
  decoderLayers: number;
  /** Square input side in pixels. */
  imageSize: number;
  /** Longest encoder text in tokens (OFA: with <s> and </s>). */
  maxTextLength: number;
  /** Decoder positions the model has. */
  maxTargetLength: number;
  /** decomposed: image and text streams exit on their own (MuE); joint: one sequence. */
  encoderMode: EncoderMode;
  veFormulation: VeFormulation;
  /** VE: trained with a premise (a caption of the image, SNLI-VE's sentence1) in the question; without one the model reads the hypothesis-only template. */
  expectsPremise: boolean;
}

export interface FamilyIo {
  /** The encoder text of a VE question. */
  entailmentText(hypothesis: string, premise?: string): string;
  /** Encoder ids of a text; throws when it is empty or longer than the model takes. */
  encoderIds(text: string): number[];
  /** The decoder prompt of a VE 'prompt' model: <bos> + the text's tokens. */
  promptIds(text: string): number[];
  captionPrompt: string;
  /** Generated ids (without the end token) -> the caption text. */
  decodeCaption(ids: number[]): string;
  imageResize: ImageResize;
}

export interface LoadedFamily { config: RuntimeConfig; io: FamilyIo; runner: ExitRunner }

export async function loadFamily(model: ParsedModel, options: LoadOptions): Promise<LoadedFamily> {
  const runnerOptions = { threads: options.threads, backend: options.backend, fullStack: options.fullStack };
  const { tokenizer } = model;
  if (model.family === 'mue') {
    const { config } = model;
    const encoderIds = (text: string): number[] => encodeText(tokenizer, text, config.maxTextLength);
    return {
      config: { family: 'mue', ...config, expectsPremise: false },
      io: {
        entailmentText: (hypothesis, premise) => entailmentText(config.veFormulation, hypothesis, premise),
        encoderIds,
        promptIds: (text) => [tokenizer.bosId, ...encoderIds(text)],
        captionPrompt: CAPTION_PROMPT,
        decodeCaption: (ids) => tokenizer.decode(ids),
        imageResize: resizeOf(config.imageSize),
      },
      runner: await LayerRunner.create(config, model.weights, runnerOptions),
    };
  }
  const { config, settings } = model;
  const normalise = (text: string): string => normaliseOfaText(text, settings.maxWords);
  const ofaText = (text: string): number[] => {
    const ids = tokenizer.encode(text);
    if (ids.length === 0) throw new Error('text is empty');
    if (ids.length + 2 > config.maxSourcePositions) throw new Error(`text has ${ids.length} tokens but the model takes at most ${config.maxSourcePositions - 2} (with <s> and </s>)`);
    return ids;
  };
  return {
    config: {
      family: 'ofa', vocabSize: config.vocabSize, dim: config.dim, encoderLayers: config.encoderLayers, decoderLayers: config.decoderLayers,
      imageSize: config.imageSize, maxTextLength: config.maxSourcePositions, maxTargetLength: config.maxTargetPositions,
      encoderMode: config.encoderMode === 'split' ? 'decomposed' : 'joint', veFormulation: 'prompt', expectsPremise: settings.addCaption,
    },
    io: {
      entailmentText: (hypothesis, premise) => entailmentText('prompt', normalise(hypothesis), premise === undefined ? undefined : normalise(premise)),
      encoderIds: (text) => [tokenizer.bosId, ...ofaText(text), tokenizer.eosId],
      promptIds: (text) => [tokenizer.bosId, ...ofaText(text)],
      captionPrompt: OFA_CAPTION_PROMPT,
      decodeCaption: (ids) => cleanOfaCaption(tokenizer.decode(ids)),
      imageResize: ofaImageResize(config.imageSize),
    },
    runner: await OfaExitRunner.create(config, model.weights, runnerOptions),
  };
}
