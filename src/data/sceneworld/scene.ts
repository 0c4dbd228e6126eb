// The symbolic description of a SceneWorld image, independent of resolution.
//
// Objects sit in the cells of a 3×3 grid (at most one per cell, with a little jitter),
// which guarantees non-overlapping placement and makes spatial relations crisp: "left
// of" compares grid columns, which are ≥ 18 px apart at 64×64 while objects in the
// same column differ by at most a few pixels. The optional grey occluder covers whole
// cells, so every object is either fully visible or fully hidden. Only the visible
// objects are modelled: what is behind the occluder is deliberately undetermined,
// which is exactly what makes "maybe" answers decidable from the image.
import { Random } from './random.js';

export const SHAPES = ['circle', 'square', 'triangle', 'diamond', 'cross', 'star'] as const;
export const COLOURS = ['red', 'green', 'blue', 'yellow', 'purple', 'cyan'] as const;
export const SIZES = ['small', 'large'] as const;

export type Shape = (typeof SHAPES)[number];
export type Colour = (typeof COLOURS)[number];
export type Size = (typeof SIZES)[number];

export const GRID_SIZE = 3;
export const MAX_OBJECTS = 6;

/** Object radius as a fraction of the image side. Clearly distinct: 9 px vs 16 px wide at 64×64. */
export const RADIUS: Record<Size, number> = { small: 0.07, large: 0.125 };
/** Maximum offset of an object's centre from its cell centre; radius + jitter stays inside the cell. */
export const MAX_JITTER = 0.025;

export interface Cell {
  row: number; // 0 = top
  column: number; // 0 = left
}

export interface SceneObject {
  shape: Shape;
  colour: Colour;
  size: Size;
  cell: Cell;
  /** Centre in image-side units, [0, 1]² with y pointing down. */
  x: number;
  y: number;
}

/** An opaque grey block over one cell or two adjacent cells; each covered cell could hide one object. */
export interface Occluder {
  cells: Cell[];
}

/** Gentle, deterministic background texture: a tinted tone, a linear gradient and pixel noise. */
export interface Background {
  rgb: [number, number, number];
  gradientAngle: number; // radians
  gradientAmplitude: number; // ± intensity levels across the image
  noiseSeed: number; // uint32 seeding the per-pixel noise stream
}

export interface Scene {
  /** The visible objects, in sampling order. */
  objects: SceneObject[];
  occluder: Occluder | null;
  background: Background;
}

export function sameCell(a: Cell, b: Cell): boolean {
  return a.row === b.row && a.column === b.column;
}

/** How many objects the occluder could hide: one per covered cell. */
export function hiddenCapacity(scene: Scene): number {
  return scene.occluder?.cells.length ?? 0;
}

const ALL_CELLS: Cell[] = Array.from({ length: GRID_SIZE * GRID_SIZE }, (_, i) => ({
  row: Math.floor(i / GRID_SIZE),
  column: i % GRID_SIZE,
}));

function sampleOccluder(random: Random): Occluder {
  const first = random.pick(ALL_CELLS);
  const neighbours = ALL_CELLS.filter(
    (cell) => Math.abs(cell.row - first.row) + Math.abs(cell.column - first.column) === 1,
  );
  return { cells: random.chance(0.5) ? [first] : [first, random.pick(neighbours)] };
}

function sampleBackground(random: Random): Background {
  const base = random.uniform(40, 60);
  return {
    rgb: [base + random.uniform(-6, 6), base + random.uniform(-6, 6), base + random.uniform(0, 10)],
    gradientAngle: random.uniform(0, 2 * Math.PI),
    gradientAmplitude: random.uniform(4, 12),
    noiseSeed: random.nextUint32(),
  };
}

/** 1–6 visible objects with independent uniform attributes, in distinct free cells. */
export function sampleScene(random: Random, withOccluder: boolean): Scene {
  const occluder = withOccluder ? sampleOccluder(random) : null;
  const freeCells = ALL_CELLS.filter((cell) => !occluder?.cells.some((covered) => sameCell(covered, cell)));
  const objectCount = 1 + random.int(MAX_OBJECTS);
  const cells = random.shuffled(freeCells).slice(0, objectCount);
  const objects = cells.map((cell): SceneObject => {
    const size = random.pick(SIZES);
    return {
      shape: random.pick(SHAPES),
      colour: random.pick(COLOURS),
      size,
      cell,
      x: (cell.column + 0.5) / GRID_SIZE + random.uniform(-MAX_JITTER, MAX_JITTER),
      y: (cell.row + 0.5) / GRID_SIZE + random.uniform(-MAX_JITTER, MAX_JITTER),
    };
  });
  return { objects, occluder, background: sampleBackground(random) };
}
