// Draws the symbolic content of the index-th example of a split: the scene and, for
// visual entailment, the hypothesis and its label. Every example has its own random
// stream, hashed from (task, split, seed, index), so examples can be generated in any
// order, and the splits never share a scene. The hex spelling of the scene's 128-bit
// seed is its id.
import { entailmentLabel, ENTAILMENT_LABELS, type EntailmentLabel } from './entailment.js';
import {
  candidateHypotheses,
  HYPOTHESIS_FAMILIES,
  HYPOTHESIS_FORMS,
  hypothesisForm,
  type Hypothesis,
  type HypothesisFamily,
} from './hypotheses.js';
import { checkIndex, type ResolvedOptions } from './options.js';
import { hash128, Random, seedToHex } from './random.js';
import { sampleScene, type Scene } from './scene.js';

export interface DrawnScene {
  id: string;
  sceneId: string;
  scene: Scene;
}

export interface DrawnVeExample extends DrawnScene {
  hypothesis: Hypothesis;
  label: EntailmentLabel;
  family: HypothesisFamily;
}

/** Enough for every (label, family) pair: the rarest (e.g. spatial "yes") succeeds in about one in three scenes. */
const MAX_SCENE_ATTEMPTS = 200;

function streamKey(task: string, options: ResolvedOptions, index: number): string {
  return `sceneworld|${task}|${options.split}|${options.seed}|${index}`;
}

/**
 * The label, family and sentence form are chosen first, uniformly, so they are balanced
 * and independent by construction; then scenes are drawn until one admits a hypothesis
 * of that family and form with that label.
 */
export function drawVeExample(index: number, options: ResolvedOptions): DrawnVeExample {
  checkIndex(index);
  const key = streamKey('ve', options, index);
  const choice = new Random(hash128(key));
  const label = choice.pick(ENTAILMENT_LABELS);
  const family = choice.pick(HYPOTHESIS_FAMILIES);
  const form: string = choice.pick(HYPOTHESIS_FORMS[family]);
  for (let attempt = 0; attempt < MAX_SCENE_ATTEMPTS; attempt++) {
    const seed = hash128(`${key}|${attempt}`);
    const random = new Random(seed);
    const scene = sampleScene(random, label === 'maybe' || random.chance(options.occluderProbability));
    const hypotheses = candidateHypotheses(family, scene).filter(
      (hypothesis) => hypothesisForm(hypothesis) === form && entailmentLabel(hypothesis, scene) === label,
    );
    if (hypotheses.length > 0) {
      return { id: `ve-${options.split}-${index}`, sceneId: seedToHex(seed), scene, hypothesis: random.pick(hypotheses), label, family };
    }
  }
  throw new Error(`SceneWorld found no scene with a "${label}" ${family} hypothesis of form "${form}" in ${MAX_SCENE_ATTEMPTS} attempts (${key})`);
}

export function drawCaptionScene(index: number, options: ResolvedOptions): DrawnScene {
  checkIndex(index);
  const seed = hash128(streamKey('caption', options, index));
  const random = new Random(seed);
  const scene = sampleScene(random, random.chance(options.occluderProbability));
  return { id: `caption-${options.split}-${index}`, sceneId: seedToHex(seed), scene };
}
