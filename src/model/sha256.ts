// SHA-256 for safetensors checksums on Node (node:crypto); safetensors.ts itself stays free of
// platform APIs so the browser bundle can share it.
import { createHash } from 'node:crypto';
import type { Sha256 } from './safetensors.js';

export const nodeSha256: Sha256 = (chunks) => {
  const hash = createHash('sha256');
  for (const chunk of chunks) hash.update(chunk);
  return hash.digest('hex');
};
