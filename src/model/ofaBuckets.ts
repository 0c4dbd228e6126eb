// OFA's relative-position buckets (ARCHITECTURE.md §6), recomputed from the formulas of
// make_token_bucket_position / make_image_bucket_position (unify_transformer.py:53-81).
// The converter checks them against the int64 buffers stored in a checkpoint; the runtime
// builds the bucket indices of one attention call from them.

/** Rows of a per-layer text table: 2·bucketSize − 1 (511 for OFA). */
export const tokenBucketCount = (bucketSize: number): number => 2 * bucketSize - 1;

/** Rows of a per-layer image table: (2·bucketSize − 1)² + 3 (6892 for OFA; the last 3 are the reserved pid-0 slots). */
export const imageBucketCount = (bucketSize: number): number => (2 * bucketSize - 1) ** 2 + 3;

/**
 * Text bucket index of a query at position i and a key at position j, rel = i − j, mid = bucketSize/2:
 * |rel| ≤ mid -> rel; else sign(rel)·(⌈ln(|rel|/mid) / ln((maxPositions−1)/mid) · (mid−1)⌉ + mid); plus bucketSize − 1.
 */
export function tokenBucket(relative: number, bucketSize: number, maxPositions: number): number {
  const mid = Math.floor(bucketSize / 2);
  const magnitude = Math.abs(relative);
  const bucket = magnitude <= mid
    ? relative
    : Math.sign(relative) * (Math.ceil((Math.log(magnitude / mid) / Math.log((maxPositions - 1) / mid)) * (mid - 1)) + mid);
  return bucket + bucketSize - 1;
}

/** The stored `token_rp_bucket` buffer: (maxPositions, maxPositions) row-major, entry [i, j] = tokenBucket(i − j). */
export function tokenBucketTable(bucketSize: number, maxPositions: number): Int32Array {
  const table = new Int32Array(maxPositions * maxPositions);
  for (let i = 0; i < maxPositions; i++) for (let j = 0; j < maxPositions; j++) table[i * maxPositions + j] = tokenBucket(i - j, bucketSize, maxPositions);
  return table;
}

/** Image position id of patch (row, column): row·bucketSize + column + 1 (id 0 is the reserved "no position"). */
export const imagePositionId = (row: number, column: number, bucketSize: number): number => row * bucketSize + column + 1;

/** Image bucket index of patches (r_i, c_i), (r_j, c_j): (r_i − r_j + b − 1)·(2b − 1) + (c_i − c_j + b − 1). */
export const imageBucket = (rowI: number, columnI: number, rowJ: number, columnJ: number, bucketSize: number): number =>
  (rowI - rowJ + bucketSize - 1) * (2 * bucketSize - 1) + (columnI - columnJ + bucketSize - 1);

/**
 * The stored `image_rp_bucket` buffer: (b² + 1, b² + 1) indexed by position ids; row 0 holds
 * count − 3, column 0 count − 2 and [0, 0] count − 1 (slots no real patch reaches).
 */
export function imageBucketTable(bucketSize: number): Int32Array {
  const side = bucketSize * bucketSize + 1;
  const count = imageBucketCount(bucketSize);
  const table = new Int32Array(side * side);
  for (let i = 0; i < side; i++) {
    for (let j = 0; j < side; j++) {
      if (i === 0 && j === 0) table[0] = count - 1;
      else if (j === 0) table[i * side] = count - 2;
      else if (i === 0) table[j] = count - 3;
      else {
        const [rowI, columnI] = [Math.floor((i - 1) / bucketSize), (i - 1) % bucketSize];
        const [rowJ, columnJ] = [Math.floor((j - 1) / bucketSize), (j - 1) % bucketSize];
        table[i * side + j] = imageBucket(rowI, columnI, rowJ, columnJ, bucketSize);
      }
    }
  }
  return table;
}
