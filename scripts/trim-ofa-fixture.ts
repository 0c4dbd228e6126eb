// Makes the small test copy of an OFA reference fixture (test/fixtures/ofa/<name>, see
// test/fixtures/README.md): config.json and inputs.safetensors verbatim, weights.safetensors
// gzip'd (byte-identical after gunzip), outputs.safetensors with every logits tensor (B, T, V)
// cut to a spread of vocabulary columns (listed in the metadata as logit_columns, which
// `mue verify-ofa` honours) and every other tensor kept whole (as float32).
// Usage: node --import tsx scripts/trim-ofa-fixture.ts --from DIR --to DIR [--column-step 40]
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { decodeSafetensors, encodeSafetensors, type NamedArray } from '../src/model/safetensors.js';

const { values } = parseArgs({ options: { from: { type: 'string' }, to: { type: 'string' }, 'column-step': { type: 'string', default: '40' } } });
if (!values.from || !values.to) throw new Error('usage: trim-ofa-fixture --from DIR --to DIR [--column-step N]');
const step = Number(values['column-step']);
if (!Number.isInteger(step) || step < 1) throw new Error(`--column-step must be a positive integer (got ${values['column-step']})`);
const from = values.from;
const to = values.to;
mkdirSync(to, { recursive: true });

for (const file of ['config.json', 'inputs.safetensors']) copyFileSync(join(from, file), join(to, file));
if (existsSync(join(from, 'weights.safetensors'))) writeFileSync(join(to, 'weights.safetensors.gz'), gzipSync(readFileSync(join(from, 'weights.safetensors')), { level: 9 }));

const config = JSON.parse(readFileSync(join(from, 'config.json'), 'utf8')) as { prev_output_tokens: number[][]; src_tokens: number[][] };
const { tensors } = decodeSafetensors(readFileSync(join(from, 'outputs.safetensors')), 'outputs.safetensors');
const vocabSize = tensors.get('logits')!.shape.at(-1)!;
// A spread over the whole vocabulary plus every token of the inputs (the answer among them).
const columns = [...new Set([...Array.from({ length: Math.ceil(vocabSize / step) }, (_, i) => i * step), vocabSize - 1, ...config.src_tokens.flat(), ...config.prev_output_tokens.flat()])]
  .filter((column) => column < vocabSize).sort((a, b) => a - b);
const trimmed = new Map<string, NamedArray>();
for (const [name, tensor] of tensors) {
  if (!name.endsWith('logits') && !/logits\.layer\d+$/.test(name)) {
    trimmed.set(name, tensor);
    continue;
  }
  const rows = tensor.data.length / vocabSize;
  const data = new Float32Array(rows * columns.length);
  for (let r = 0; r < rows; r++) columns.forEach((column, k) => { data[r * columns.length + k] = tensor.data[r * vocabSize + column]!; });
  trimmed.set(name, { shape: [...tensor.shape.slice(0, -1), columns.length], data });
}
writeFileSync(join(to, 'outputs.safetensors'), encodeSafetensors(trimmed, { metadata: { logit_columns: JSON.stringify(columns), source: `${from}/outputs.safetensors, logits cut to logit_columns` } }));
console.log(`${to}: ${trimmed.size} output tensors, logits cut to ${columns.length} of ${vocabSize} columns`);
