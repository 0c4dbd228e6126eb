// Position ids and relative-bucket indices of one OFA attention call, addressing the combined
// per-layer tables of src/graph/ofaGraphs.ts (relativeTableLayout): which pairs get the text
// table, the image table or no relative bias (ARCHITECTURE.md §6).
import type { OfaConfig } from '../model/ofaConfig.js';
import { ofaImageGrid } from '../model/ofaConfig.js';
import { imageBucket, imagePositionId, tokenBucket } from '../model/ofaBuckets.js';
import { relativeTableLayout } from '../graph/ofaGraphs.js';

/** Position ids of the image patches, row-major (pid = r·b + c + 1). */
export function imagePositionIds(config: OfaConfig): number[] {
  const [rows, columns] = ofaImageGrid(config);
  const ids: number[] = [];
  for (let r = 0; r < rows; r++) for (let c = 0; c < columns; c++) ids.push(imagePositionId(r, c, config.imageBucketSize));
  return ids;
}

export const range = (length: number, start = 0): number[] => Array.from({ length }, (_, i) => start + i);

/** Text self-attention buckets (Tq, Tk) of query positions × key positions (1-D table; encoder or decoder). */
export function textBuckets(config: OfaConfig, queryPositions: number[], keyPositions: number[], maxPositions: number): BigInt64Array {
  const buckets = new BigInt64Array(queryPositions.length * keyPositions.length);
  queryPositions.forEach((i, q) => keyPositions.forEach((j, k) => {
    buckets[q * keyPositions.length + k] = BigInt(tokenBucket(i - j, config.tokenBucketSize, maxPositions));
  }));
  return buckets;
}

/** Image stream buckets (N, N) into the encoder's combined table (after the text rows). */
export function imageBuckets(config: OfaConfig): BigInt64Array {
  const [rows, columns] = ofaImageGrid(config);
  const count = rows * columns;
  const offset = relativeTableLayout(config, 'encoder').image;
  const buckets = new BigInt64Array(count * count);
  for (let i = 0; i < count; i++) {
    for (let j = 0; j < count; j++) {
      buckets[i * count + j] = BigInt(offset + imageBucket(Math.floor(i / columns), i % columns, Math.floor(j / columns), j % columns, config.imageBucketSize));
    }
  }
  return buckets;
}

/**
 * OFA's fused encoder over [image (N); text (Ts)]: image table on the image block, text table on the
 * text block (text positions from 0), no relative bias (the zero row) between them (U:930-938). (M, M).
 */
export function jointBuckets(config: OfaConfig, textLength: number): BigInt64Array {
  const patches = imageBuckets(config);
  const text = textBuckets(config, range(textLength), range(textLength), config.maxSourcePositions);
  const patchCount = Math.round(Math.sqrt(patches.length));
  const length = patchCount + textLength;
  const buckets = new BigInt64Array(length * length).fill(BigInt(relativeTableLayout(config, 'encoder').zero));
  for (let i = 0; i < patchCount; i++) buckets.set(patches.subarray(i * patchCount, (i + 1) * patchCount), i * length);
  for (let i = 0; i < textLength; i++) buckets.set(text.subarray(i * textLength, (i + 1) * textLength), (patchCount + i) * length + patchCount);
  return buckets;
}
