// Rasterises a Scene with per-pixel analytic inside-tests. Each pixel averages a 3×3
// grid of sub-samples (anti-aliasing), and only the pixels of an object's bounding box
// are tested, so a 64×64 image renders in well under a millisecond.
import { Random } from './random.js';
import type { RgbImage } from './rgb-image.js';
import { GRID_SIZE, RADIUS, type Colour, type Scene, type Shape } from './scene.js';

export const COLOUR_RGB: Record<Colour, readonly [number, number, number]> = {
  red: [225, 45, 45],
  green: [50, 185, 70],
  blue: [55, 105, 245],
  yellow: [240, 215, 45],
  purple: [170, 75, 220],
  cyan: [55, 215, 220],
};
export const OCCLUDER_RGB = [135, 135, 135] as const;

const SUBSAMPLES = 3;
const NOISE_AMPLITUDE = 4;

/** A polygon as separate vertex coordinate arrays (flat arrays keep the per-sub-sample test fast). */
interface Polygon {
  us: Float64Array;
  vs: Float64Array;
}

function polygon(vertices: [number, number][]): Polygon {
  return { us: Float64Array.from(vertices, ([u]) => u), vs: Float64Array.from(vertices, ([, v]) => v) };
}

/** Star with 5 points: alternating outer (radius 1) and inner (radius 0.45) vertices, one point up. */
const STAR = polygon(
  Array.from({ length: 10 }, (_, i): [number, number] => {
    const radius = i % 2 === 0 ? 1 : 0.45;
    const angle = -Math.PI / 2 + (i * Math.PI) / 5;
    return [radius * Math.cos(angle), radius * Math.sin(angle)];
  }),
);
const TRIANGLE = polygon([
  [0, -1],
  [0.97, 0.75],
  [-0.97, 0.75],
]);

/** Even–odd ray casting; works for the non-convex star. */
function insidePolygon({ us, vs }: Polygon, u: number, v: number): boolean {
  let inside = false;
  for (let i = 0, j = us.length - 1; i < us.length; j = i++) {
    const ui = us[i]!;
    const vi = vs[i]!;
    const uj = us[j]!;
    const vj = vs[j]!;
    if (vi > v !== vj > v && u < ((uj - ui) * (v - vi)) / (vj - vi) + ui) inside = !inside;
  }
  return inside;
}

/** Is (u, v), in units of the object's radius relative to its centre (v down), inside the shape? */
function insideShape(shape: Shape, u: number, v: number): boolean {
  const au = Math.abs(u);
  const av = Math.abs(v);
  switch (shape) {
    case 'circle':
      return u * u + v * v <= 1;
    case 'square':
      return au <= 0.82 && av <= 0.82;
    case 'diamond':
      return au + av <= 1;
    case 'cross':
      return (au <= 0.3 && av <= 1) || (av <= 0.3 && au <= 1);
    case 'triangle':
      return insidePolygon(TRIANGLE, u, v);
    case 'star':
      return insidePolygon(STAR, u, v);
  }
}

function renderBackground(scene: Scene, size: number, canvas: Float32Array): void {
  const { rgb, gradientAngle, gradientAmplitude, noiseSeed } = scene.background;
  const noise = new Random([noiseSeed, size, 0x9e3779b9, 0x85ebca6b]);
  const dx = Math.cos(gradientAngle);
  const dy = Math.sin(gradientAngle);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const along = ((x + 0.5) / size - 0.5) * dx + ((y + 0.5) / size - 0.5) * dy; // in [-0.71, 0.71]
      const shade = 2 * gradientAmplitude * along + noise.uniform(-NOISE_AMPLITUDE, NOISE_AMPLITUDE);
      const offset = (y * size + x) * 3;
      for (let c = 0; c < 3; c++) canvas[offset + c] = rgb[c]! + shade;
    }
  }
}

/** Blend `rgb` into every pixel of the box [x0, x1) × [y0, y1) (image-side units) by its sub-sample coverage. */
function paint(
  canvas: Float32Array,
  size: number,
  box: { x0: number; y0: number; x1: number; y1: number },
  rgb: readonly [number, number, number],
  inside: (x: number, y: number) => boolean,
): void {
  const firstX = Math.max(0, Math.floor(box.x0 * size));
  const lastX = Math.min(size - 1, Math.ceil(box.x1 * size));
  const firstY = Math.max(0, Math.floor(box.y0 * size));
  const lastY = Math.min(size - 1, Math.ceil(box.y1 * size));
  for (let py = firstY; py <= lastY; py++) {
    for (let px = firstX; px <= lastX; px++) {
      let hits = 0;
      for (let sy = 0; sy < SUBSAMPLES; sy++) {
        for (let sx = 0; sx < SUBSAMPLES; sx++) {
          if (inside((px + (sx + 0.5) / SUBSAMPLES) / size, (py + (sy + 0.5) / SUBSAMPLES) / size)) hits++;
        }
      }
      if (hits === 0) continue;
      const coverage = hits / (SUBSAMPLES * SUBSAMPLES);
      const offset = (py * size + px) * 3;
      for (let c = 0; c < 3; c++) canvas[offset + c] = canvas[offset + c]! * (1 - coverage) + rgb[c]! * coverage;
    }
  }
}

export function renderScene(scene: Scene, size: number): RgbImage {
  const canvas = new Float32Array(size * size * 3);
  renderBackground(scene, size, canvas);
  for (const object of scene.objects) {
    const radius = RADIUS[object.size];
    const box = { x0: object.x - radius, y0: object.y - radius, x1: object.x + radius, y1: object.y + radius };
    paint(canvas, size, box, COLOUR_RGB[object.colour], (x, y) =>
      insideShape(object.shape, (x - object.x) / radius, (y - object.y) / radius),
    );
  }
  if (scene.occluder) {
    const rows = scene.occluder.cells.map((cell) => cell.row);
    const columns = scene.occluder.cells.map((cell) => cell.column);
    const box = {
      x0: Math.min(...columns) / GRID_SIZE,
      y0: Math.min(...rows) / GRID_SIZE,
      x1: (Math.max(...columns) + 1) / GRID_SIZE,
      y1: (Math.max(...rows) + 1) / GRID_SIZE,
    };
    paint(canvas, size, box, OCCLUDER_RGB, (x, y) => x >= box.x0 && x < box.x1 && y >= box.y0 && y < box.y1);
  }
  const pixels = new Uint8Array(canvas.length);
  for (let i = 0; i < canvas.length; i++) pixels[i] = Math.max(0, Math.min(255, Math.round(canvas[i]!)));
  return { width: size, height: size, pixels };
}
