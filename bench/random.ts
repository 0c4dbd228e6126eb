// Deterministic random inputs for the benchmarks (no seeded RNG in Node's standard library).

/** Deterministic uniform floats in [lo, hi) (mulberry32). */
export function randomFloats(count: number, seed: number, lo = -1, hi = 1): Float32Array {
  let state = seed >>> 0;
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = lo + (hi - lo) * (((t ^ (t >>> 14)) >>> 0) / 4294967296);
  }
  return out;
}
