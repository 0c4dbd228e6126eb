// SceneWorld: a synthetic vision-language data set of simple shapes on a textured
// background, for visual entailment (image + hypothesis -> yes / no / maybe) and
// captioning. Every example is a pure function of (index, options), so training can
// stream examples without files. See docs/sceneworld.md.
import { WordTokenizer } from './tokenizer.js';
import { sceneCaptions } from './sceneworld/captions.js';
import { drawCaptionScene, drawVeExample } from './sceneworld/draw.js';
import type { EntailmentLabel } from './sceneworld/entailment.js';
import type { HypothesisFamily } from './sceneworld/hypotheses.js';
import { hypothesisText } from './sceneworld/hypotheses.js';
import { resolveOptions, type SceneWorldOptions } from './sceneworld/options.js';
import { renderScene } from './sceneworld/render.js';
import type { RgbImage } from './sceneworld/rgb-image.js';
import { VOCABULARY } from './sceneworld/vocabulary.js';

export type { EntailmentLabel } from './sceneworld/entailment.js';
export type { HypothesisFamily } from './sceneworld/hypotheses.js';
export type { SceneWorldOptions, Split } from './sceneworld/options.js';
export type { RgbImage } from './sceneworld/rgb-image.js';
export { ENTAILMENT_LABELS } from './sceneworld/entailment.js';
export { HYPOTHESIS_FAMILIES } from './sceneworld/hypotheses.js';
export { SPLITS } from './sceneworld/options.js';
export { CAPTION_PROMPT } from './sceneworld/vocabulary.js';

export interface VeExample {
  id: string;
  sceneId: string;
  image: RgbImage;
  hypothesis: string;
  label: EntailmentLabel;
  family: HypothesisFamily;
  /** Visible objects (1–6); whatever the occluder may hide is not counted. */
  objectCount: number;
  /** Whether the image contains the grey occluder. */
  occluded: boolean;
}

export interface CaptionExample {
  id: string;
  sceneId: string;
  image: RgbImage;
  /** Six reference captions, each at most 20 words. */
  captions: string[];
  objectCount: number;
  occluded: boolean;
}

export function veExample(index: number, options: SceneWorldOptions): VeExample {
  const resolved = resolveOptions(options);
  const { id, sceneId, scene, hypothesis, label, family } = drawVeExample(index, resolved);
  return {
    id,
    sceneId,
    image: renderScene(scene, resolved.imageSize),
    hypothesis: hypothesisText(hypothesis),
    label,
    family,
    objectCount: scene.objects.length,
    occluded: scene.occluder !== null,
  };
}

export function captionExample(index: number, options: SceneWorldOptions): CaptionExample {
  const resolved = resolveOptions(options);
  const { id, sceneId, scene } = drawCaptionScene(index, resolved);
  return {
    id,
    sceneId,
    image: renderScene(scene, resolved.imageSize),
    captions: sceneCaptions(scene),
    objectCount: scene.objects.length,
    occluded: scene.occluder !== null,
  };
}

/** Examples 0..count-1. */
export function* veExamples(count: number, options: SceneWorldOptions): Generator<VeExample> {
  for (let index = 0; index < count; index++) yield veExample(index, options);
}

export function* captionExamples(count: number, options: SceneWorldOptions): Generator<CaptionExample> {
  for (let index = 0; index < count; index++) yield captionExample(index, options);
}

/** Every word a hypothesis, caption, answer or the caption prompt can contain, in a fixed order. */
export function sceneWorldVocabulary(): string[] {
  return [...VOCABULARY];
}

export function sceneWorldTokenizer(): WordTokenizer {
  return WordTokenizer.fromWords(sceneWorldVocabulary());
}
