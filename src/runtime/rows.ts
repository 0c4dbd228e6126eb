// Row-major batch arrays (B, T, D) flattened in Float32Arrays: the two reshapes the runtime needs.

/** Rows `rows` of a row-major (N, rowSize) array -> (rows.length, rowSize): compacts the active batch. */
export function gatherRows(source: Float32Array, rows: number[], rowSize: number): Float32Array {
  const out = new Float32Array(rows.length * rowSize);
  rows.forEach((row, i) => out.set(source.subarray(row * rowSize, (row + 1) * rowSize), i * rowSize));
  return out;
}

/** Per row, concatenates (B, T_k, D) arrays along the sequence axis -> (B, ΣT_k, D). */
export function concatSequences(parts: Float32Array[], lengths: number[], dim: number, batch: number): Float32Array {
  const total = lengths.reduce((a, b) => a + b, 0);
  const out = new Float32Array(batch * total * dim);
  for (let row = 0; row < batch; row++) {
    let offset = row * total * dim;
    parts.forEach((part, k) => {
      const size = lengths[k]! * dim;
      out.set(part.subarray(row * size, (row + 1) * size), offset);
      offset += size;
    });
  }
  return out;
}
