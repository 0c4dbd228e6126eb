// Upgrades checkpoints written before integrity checks existed: adds the SHA-256 checksum and the
// recorded task + config to the metadata of model.safetensors (and optimizer.safetensors) without
// changing a single tensor byte, then verifies the checkpoint loads with identical tensors.
// Usage: node --import tsx scripts/add-checksums.ts DIR [DIR…]   (e.g. models/*)
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../src/model/atomicWrite.js';
import { FILES, loadCheckpoint } from '../src/model/checkpoint.js';
import { CHECKSUM_KEY, decodeSafetensors, withChecksum } from '../src/model/safetensors.js';
import { nodeSha256 } from '../src/model/sha256.js';

for (const directory of process.argv.slice(2)) {
  const before = loadCheckpoint(directory);
  const described = JSON.stringify({ task: before.task, ...before.config });
  for (const [file, metadata] of [[FILES.weights, { format: 'mue', mue_config: described }], [FILES.optimizer, { format: 'mue' }]] as const) {
    const path = join(directory, file);
    if (!existsSync(path)) continue;
    const bytes = readFileSync(path);
    if (decodeSafetensors(bytes, path).metadata[CHECKSUM_KEY]) {
      console.log(`${path}: already has a checksum`);
      continue;
    }
    const upgraded = withChecksum(bytes, nodeSha256, metadata, path);
    const dataBefore = bytes.subarray(8 + Number(bytes.readBigUInt64LE(0)));
    const dataAfter = upgraded.subarray(8 + Number(upgraded.readBigUInt64LE(0)));
    if (!dataBefore.equals(dataAfter)) throw new Error(`${path}: tensor bytes would change; not written`);
    writeFileAtomic(path, upgraded);
    console.log(`${path}: checksum added (${dataAfter.length} tensor bytes unchanged)`);
  }
  const after = loadCheckpoint(directory);
  for (const [name, tensor] of before.weights) {
    if (!Buffer.from(after.weights.get(name)!.data.buffer).equals(Buffer.from(tensor.data.buffer))) throw new Error(`${directory}: tensor ${name} changed`);
  }
}
