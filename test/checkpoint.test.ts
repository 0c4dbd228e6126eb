import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { sceneWorldTokenizer } from '../src/data/sceneworld.js';
import { FILES, loadCheckpoint, saveCheckpoint, type Checkpoint } from '../src/model/checkpoint.js';
import { decodeSafetensors, encodeSafetensors, float16BitsToFloat32, float32ToFloat16Bits } from '../src/model/safetensors.js';
import { TfModel } from '../src/model/tfModel.js';
import { fromVariables } from '../src/train/trainer.js';
import { initTensorflow, tinyConfig } from './helpers.js';

const workDir = mkdtempSync(join(tmpdir(), 'mue-checkpoint-'));
let checkpoint: Checkpoint;

before(async () => {
  await initTensorflow();
  const tokenizer = sceneWorldTokenizer();
  const config = tinyConfig({ vocabSize: tokenizer.vocabSize });
  const model = TfModel.initialise(config, 5);
  checkpoint = { task: 've', config, tokenizer, weights: fromVariables(model.weights) };
  model.dispose();
});
after(() => rmSync(workDir, { recursive: true, force: true }));

/** Saves a fresh copy of the checkpoint, lets `corrupt` damage it, and returns the load error. */
function loadErrorAfter(name: string, corrupt: (directory: string) => void): string {
  const directory = join(workDir, name);
  saveCheckpoint(directory, checkpoint);
  corrupt(directory);
  try {
    loadCheckpoint(directory);
  } catch (error) {
    return (error as Error).message;
  }
  assert.fail(`${name}: a damaged checkpoint was accepted`);
}

test('checkpoint round trip is exact (weights, config, tokenizer) and leaves no temporary files', () => {
  const directory = join(workDir, 'round-trip');
  saveCheckpoint(directory, checkpoint);
  saveCheckpoint(directory, checkpoint); // overwriting an existing checkpoint works
  const loaded = loadCheckpoint(directory);
  assert.deepEqual(loaded.config, checkpoint.config);
  assert.equal(loaded.task, 've');
  assert.deepEqual(loaded.tokenizer.toJSON(), checkpoint.tokenizer.toJSON());
  for (const [name, tensor] of checkpoint.weights) {
    assert.deepEqual(loaded.weights.get(name)!.shape, tensor.shape);
    assert.deepEqual(Array.from(loaded.weights.get(name)!.data), Array.from(tensor.data), name);
  }
  assert.deepEqual(readdirSync(workDir).filter((entry) => entry.startsWith('.')), []);
});

test('safetensors header follows the format: 8-byte LE size, JSON header, aligned data', () => {
  const bytes = readFileSync(join(workDir, 'round-trip', FILES.weights));
  const headerSize = Number(bytes.readBigUInt64LE(0));
  assert.equal((8 + headerSize) % 8, 0);
  const header = JSON.parse(bytes.subarray(8, 8 + headerSize).toString('utf8'));
  assert.deepEqual(header.token_embedding.shape, [checkpoint.config.vocabSize, checkpoint.config.dim]);
  assert.equal(header.token_embedding.dtype, 'F32');
  assert.equal(header.__metadata__.format, 'mue');
  assert.match(header.__metadata__.sha256, /^[0-9a-f]{64}$/);
  // Every tensor: F32, data_offsets matching its shape, packed contiguously from 0 with no gap or
  // overlap up to the end of the file (what Python's safetensors checks before it loads).
  const entries = Object.entries(header).filter(([name]) => name !== '__metadata__') as Array<[string, { dtype: string; shape: number[]; data_offsets: [number, number] }]>;
  assert.deepEqual(new Set(entries.map(([name]) => name)), new Set(checkpoint.weights.keys()));
  let expectedBegin = 0;
  for (const [name, { dtype, shape, data_offsets: [begin, end] }] of entries.sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0])) {
    assert.equal(dtype, 'F32', name);
    assert.equal(begin, expectedBegin, `${name} starts where the previous tensor ends`);
    assert.equal(end - begin, 4 * shape.reduce((a, b) => a * b, 1), `${name} byte length matches its shape`);
    const stored = new Float32Array(bytes.buffer.slice(bytes.byteOffset + 8 + headerSize + begin, bytes.byteOffset + 8 + headerSize + end));
    assert.deepEqual(Array.from(stored), Array.from(checkpoint.weights.get(name)!.data), `${name} data, little-endian row-major`);
    expectedBegin = end;
  }
  assert.equal(8 + headerSize + expectedBegin, bytes.length, 'the data ends at the end of the file');
});

test('float16 storage round-trips within half precision', () => {
  for (const value of [0, 1, -2.5, 0.1234, 65504, 1e-5, -1e-7]) {
    const restored = float16BitsToFloat32(float32ToFloat16Bits(value));
    assert.ok(Math.abs(restored - value) <= Math.max(Math.abs(value) * 1e-3, 6e-8), `${value} -> ${restored}`);
  }
  const data = new Float32Array([0.5, -0.25, 3]);
  const decoded = decodeSafetensors(encodeSafetensors(new Map([['x', { shape: [3], data }]]), { dtype: 'F16' }));
  assert.deepEqual(Array.from(decoded.tensors.get('x')!.data), [0.5, -0.25, 3]);
});

test('every corrupted or mismatched checkpoint is refused with a message naming the problem', () => {
  const weightsPath = (directory: string) => join(directory, FILES.weights);
  const rewriteWeights = (directory: string, edit: (tensors: Map<string, { shape: number[]; data: Float32Array }>) => void) => {
    const { tensors } = decodeSafetensors(readFileSync(weightsPath(directory)));
    edit(tensors);
    writeFileSync(weightsPath(directory), encodeSafetensors(tensors));
  };
  const cases: Array<[string, (directory: string) => void, RegExp]> = [
    ['truncated', (d) => writeFileSync(weightsPath(d), readFileSync(weightsPath(d)).subarray(0, 5000)), /truncated/],
    ['missing-tensor', (d) => rewriteWeights(d, (t) => t.delete('encoder.1.ffn.fc2.weight')), /missing tensor "encoder\.1\.ffn\.fc2\.weight"/],
    ['wrong-shape', (d) => rewriteWeights(d, (t) => t.set('decoder.final_norm.weight', { shape: [7], data: new Float32Array(7) })), /"decoder\.final_norm\.weight" has shape \[7\]/],
    ['extra-tensor', (d) => rewriteWeights(d, (t) => t.set('encoder.9.attention.query.weight', { shape: [1], data: new Float32Array(1) })), /unexpected tensor/],
    ['config-disagrees', (d) => {
      const config = JSON.parse(readFileSync(join(d, FILES.config), 'utf8'));
      writeFileSync(join(d, FILES.config), JSON.stringify({ ...config, encoderLayers: 3 }));
    }, /missing tensor "encoder\.2\./],
    ['config-vocabulary', (d) => {
      const config = JSON.parse(readFileSync(join(d, FILES.config), 'utf8'));
      writeFileSync(join(d, FILES.config), JSON.stringify({ ...config, vocabSize: config.vocabSize + 1 }));
    }, /config\/tokenizer disagree/],
    ['bad-config', (d) => writeFileSync(join(d, FILES.config), '{"task": "ve", "dim": '), /config\.json is not valid JSON/],
    ['bad-header', (d) => {
      const bytes = readFileSync(weightsPath(d));
      bytes.write('#', 8);
      writeFileSync(weightsPath(d), bytes);
    }, /header is not valid JSON/],
    ['no-weights', (d) => rmSync(weightsPath(d)), /model\.safetensors is missing/],
  ];
  for (const [name, corrupt, expected] of cases) assert.match(loadErrorAfter(name, corrupt), expected, name);
  assert.match((() => { try { loadCheckpoint(join(workDir, 'nothing-here')); } catch (e) { return (e as Error).message; } return ''; })(), /not a model directory/);
  assert.ok(existsSync(join(workDir, 'round-trip', FILES.weights)));
});
