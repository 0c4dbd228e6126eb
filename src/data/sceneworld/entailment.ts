// The label of a hypothesis, decided from what the image shows: the visible objects and
// the occluder. Each cell under the occluder may hide at most one object of any shape,
// colour and size, or nothing. The label is
//   yes   if the hypothesis is true however the hidden cells are filled,
//   no    if it is false however they are filled,
//   maybe otherwise (its truth depends on what the occluder hides).
// "the X" denotes the single visible X; when no X is visible it denotes the single X in
// the whole scene (possibly hidden), and if there is no such single X the statement is false.
// Each family is decided in closed form here; the tests check these rules against a
// brute-force enumeration of all possible hidden contents.
import { matches, visibleCount, type Hypothesis, type NamedObject, type Relation } from './hypotheses.js';
import { hiddenCapacity, sameCell, type Cell, type Scene } from './scene.js';

export const ENTAILMENT_LABELS = ['yes', 'no', 'maybe'] as const;
export type EntailmentLabel = (typeof ENTAILMENT_LABELS)[number];

function label(canBeTrue: boolean, canBeFalse: boolean): EntailmentLabel {
  if (canBeTrue && canBeFalse) return 'maybe';
  return canBeTrue ? 'yes' : 'no';
}

function holds(relation: Relation, subject: Cell, object: Cell): boolean {
  switch (relation) {
    case 'left of':
      return subject.column < object.column;
    case 'right of':
      return subject.column > object.column;
    case 'above':
      return subject.row < object.row;
    case 'below':
      return subject.row > object.row;
  }
}

/** Where "the X" can be: the cell of the single visible X, else any hidden cell; `certain` if it surely exists. */
function referentCells(scene: Scene, named: NamedObject): { cells: Cell[]; certain: boolean } {
  const visible = scene.objects.filter((object) => matches(object, named));
  if (visible.length === 1) return { cells: [visible[0]!.cell], certain: true };
  return { cells: visible.length === 0 ? (scene.occluder?.cells ?? []) : [], certain: false };
}

function spatialLabel(scene: Scene, subject: NamedObject, relation: Relation, object: NamedObject): EntailmentLabel {
  const subjects = referentCells(scene, subject);
  const objects = referentCells(scene, object);
  const placements = subjects.cells.flatMap((s) => objects.cells.filter((o) => !sameCell(s, o)).map((o) => [s, o] as const));
  const canBeTrue = placements.some(([s, o]) => holds(relation, s, o));
  const canBeFalse = !subjects.certain || !objects.certain || placements.some(([s, o]) => !holds(relation, s, o));
  return label(canBeTrue, canBeFalse);
}

export function entailmentLabel(hypothesis: Hypothesis, scene: Scene): EntailmentLabel {
  const hidden = hiddenCapacity(scene);
  switch (hypothesis.family) {
    case 'existence':
      return visibleCount(scene, hypothesis.target) > 0 ? 'yes' : label(hidden > 0, true);
    case 'negation':
      return visibleCount(scene, hypothesis.target) > 0 ? 'no' : label(true, hidden > 0);
    case 'counting': {
      const count = visibleCount(scene, hypothesis.target);
      return label(count <= hypothesis.count && hypothesis.count <= count + hidden, count !== hypothesis.count || hidden > 0);
    }
    case 'attribute': {
      const referents = scene.objects.filter((object) => object.shape === hypothesis.shape);
      if (referents.length === 1) return matches(referents[0]!, hypothesis.property) ? 'yes' : 'no';
      return label(referents.length === 0 && hidden > 0, true);
    }
    case 'spatial':
      return spatialLabel(scene, hypothesis.subject, hypothesis.relation, hypothesis.object);
    case 'comparison': {
      if (hypothesis.quantifier === 'more') {
        const more = visibleCount(scene, hypothesis.more);
        const than = visibleCount(scene, hypothesis.than);
        return label(more + hidden > than, more <= than + hidden);
      }
      const { shape, property } = hypothesis;
      const allVisible = scene.objects.every((object) => object.shape !== shape || matches(object, property));
      return label(allVisible, !allVisible || hidden > 0);
    }
  }
}
