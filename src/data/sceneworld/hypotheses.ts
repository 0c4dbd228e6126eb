// Visual-entailment hypotheses: their structure, their sentence, and every hypothesis
// of a family that makes sense for a scene (the generator then picks one whose label
// is the example's target label).
import { COLOURS, MAX_OBJECTS, SHAPES, SIZES, type Colour, type Scene, type Shape, type Size } from './scene.js';
import { countWord, nounPhrase, pluralShape, type Descriptor } from './words.js';

export const HYPOTHESIS_FAMILIES = ['existence', 'attribute', 'counting', 'spatial', 'comparison', 'negation'] as const;
export type HypothesisFamily = (typeof HYPOTHESIS_FAMILIES)[number];

export const RELATIONS = ['left of', 'right of', 'above', 'below'] as const;
export type Relation = (typeof RELATIONS)[number];

/** A colour or a size, as said of an object ("the square is blue", "all stars are large"). */
export type Property = { colour: Colour } | { size: Size };

/** An object named by colour and shape: how spatial hypotheses refer to objects. */
export interface NamedObject {
  shape: Shape;
  colour: Colour;
}

export type Hypothesis =
  | { family: 'existence'; target: Descriptor } // there is a small red circle
  | { family: 'negation'; target: Descriptor } // there is no small red circle
  | { family: 'attribute'; shape: Shape; property: Property } // the square is blue
  | { family: 'counting'; target: Descriptor; count: number } // there are two red circles
  | { family: 'spatial'; subject: NamedObject; relation: Relation; object: NamedObject } // the red circle is left of the blue square
  | { family: 'comparison'; quantifier: 'more'; more: Descriptor; than: Descriptor } // there are more circles than squares
  | { family: 'comparison'; quantifier: 'all'; shape: Shape; property: Property }; // all circles are red

function propertyWord(property: Property): string {
  return 'colour' in property ? property.colour : property.size;
}

export function hypothesisText(hypothesis: Hypothesis): string {
  switch (hypothesis.family) {
    case 'existence':
      return `there is a ${nounPhrase(hypothesis.target)}`;
    case 'negation':
      return `there is no ${nounPhrase(hypothesis.target)}`;
    case 'attribute':
      return `the ${hypothesis.shape} is ${propertyWord(hypothesis.property)}`;
    case 'counting':
      return hypothesis.count === 1
        ? `there is one ${nounPhrase(hypothesis.target)}`
        : `there are ${countWord(hypothesis.count)} ${nounPhrase(hypothesis.target, true)}`;
    case 'spatial':
      return `the ${nounPhrase(hypothesis.subject)} is ${hypothesis.relation} the ${nounPhrase(hypothesis.object)}`;
    case 'comparison':
      return hypothesis.quantifier === 'more'
        ? `there are more ${nounPhrase(hypothesis.more, true)} than ${nounPhrase(hypothesis.than, true)}`
        : `all ${pluralShape(hypothesis.shape)} are ${propertyWord(hypothesis.property)}`;
  }
}

/**
 * The sentence pattern of a hypothesis, ignoring which shapes, colours and numbers fill it.
 * Examples choose their form before their label is realised, so every form is equally
 * common under each label and the wording alone does not give the answer away (without
 * this, "there is a circle" would almost always be true).
 */
export const HYPOTHESIS_FORMS = {
  existence: ['shape', 'size shape', 'colour shape', 'size colour shape'],
  negation: ['shape', 'size shape', 'colour shape', 'size colour shape'],
  attribute: ['colour', 'size'],
  counting: ['shape', 'colour shape'],
  spatial: ['colour shape'],
  comparison: ['more shapes', 'more colours', 'all colour', 'all size'],
} as const satisfies Record<HypothesisFamily, readonly string[]>;

function descriptorForm(descriptor: Descriptor): string {
  return [descriptor.size && 'size', descriptor.colour && 'colour', descriptor.shape ? 'shape' : 'shapes'].filter(Boolean).join(' ');
}

export function hypothesisForm(hypothesis: Hypothesis): string {
  switch (hypothesis.family) {
    case 'existence':
    case 'negation':
    case 'counting':
      return descriptorForm(hypothesis.target);
    case 'attribute':
      return 'colour' in hypothesis.property ? 'colour' : 'size';
    case 'spatial':
      return 'colour shape';
    case 'comparison':
      if (hypothesis.quantifier === 'more') return hypothesis.more.shape ? 'more shapes' : 'more colours';
      return 'colour' in hypothesis.property ? 'all colour' : 'all size';
  }
}

export function matches(object: Descriptor, descriptor: Descriptor): boolean {
  return (
    (descriptor.shape === undefined || object.shape === descriptor.shape) &&
    (descriptor.colour === undefined || object.colour === descriptor.colour) &&
    (descriptor.size === undefined || object.size === descriptor.size)
  );
}

export function visibleCount(scene: Scene, descriptor: Descriptor): number {
  return scene.objects.filter((object) => matches(object, descriptor)).length;
}

const PROPERTIES: Property[] = [...COLOURS.map((colour) => ({ colour })), ...SIZES.map((size) => ({ size }))];
const NAMED_OBJECTS: NamedObject[] = SHAPES.flatMap((shape) => COLOURS.map((colour) => ({ shape, colour })));

/** Every shape, optionally narrowed by colour and/or size: "circle", "red circle", "small red circle", ... */
function shapeDescriptors(withSize: boolean): Descriptor[] {
  const colours = [undefined, ...COLOURS];
  const sizes = withSize ? [undefined, ...SIZES] : [undefined];
  return SHAPES.flatMap((shape) => colours.flatMap((colour) => sizes.map((size) => ({ shape, colour, size }))));
}
const EXISTENCE_TARGETS = shapeDescriptors(true);
const COUNTING_TARGETS = shapeDescriptors(false);

/** Two disjoint classes of the same kind: two shapes, or two colours. */
const COMPARED_CLASSES: [Descriptor, Descriptor][] = [
  ...SHAPES.flatMap((a) => SHAPES.filter((b) => b !== a).map((b): [Descriptor, Descriptor] => [{ shape: a }, { shape: b }])),
  ...COLOURS.flatMap((a) => COLOURS.filter((b) => b !== a).map((b): [Descriptor, Descriptor] => [{ colour: a }, { colour: b }])),
];

/**
 * The hypotheses of `family` that are sensible for `scene`. Definite descriptions ("the
 * square") must not be ambiguous among the visible objects, and "all" is never vacuous.
 */
export function candidateHypotheses(family: HypothesisFamily, scene: Scene): Hypothesis[] {
  const occluded = scene.occluder !== null;
  // "the X" can refer to the single visible X, or, when none is visible, to one the occluder may hide.
  const canRefer = (descriptor: Descriptor): boolean => {
    const count = visibleCount(scene, descriptor);
    return count === 1 || (count === 0 && occluded);
  };
  switch (family) {
    case 'existence':
    case 'negation':
      return EXISTENCE_TARGETS.map((target) => ({ family, target }));
    case 'counting':
      return COUNTING_TARGETS.flatMap((target) =>
        Array.from({ length: MAX_OBJECTS }, (_, i) => ({ family, target, count: i + 1 })),
      );
    case 'attribute':
      return SHAPES.filter((shape) => canRefer({ shape })).flatMap((shape) =>
        PROPERTIES.map((property) => ({ family, shape, property })),
      );
    case 'spatial':
      // At least one of the two objects must be visible, so the hypothesis is anchored in the image.
      return NAMED_OBJECTS.filter((subject) => canRefer(subject)).flatMap((subject) =>
        NAMED_OBJECTS.filter(
          (object) =>
            canRefer(object) &&
            !matches(object, subject) &&
            (visibleCount(scene, subject) === 1 || visibleCount(scene, object) === 1),
        ).flatMap((object) => RELATIONS.map((relation) => ({ family, subject, relation, object }))),
      );
    case 'comparison':
      return [
        ...COMPARED_CLASSES.map(([more, than]): Hypothesis => ({ family, quantifier: 'more', more, than })),
        ...SHAPES.filter((shape) => visibleCount(scene, { shape }) > 0).flatMap((shape) =>
          PROPERTIES.map((property): Hypothesis => ({ family, quantifier: 'all', shape, property })),
        ),
      ];
  }
}
