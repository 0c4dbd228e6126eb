// Reading real fairseq/OFA checkpoint.pt files in TypeScript and converting them to a mue model
// directory: exact weights (fp32) / fp16-rounded weights (fp16 file), the stored bucket tables
// against their formulas, OFA's text -> dictionary ids, and the refusals. Fixtures: test/fixtures/README.md.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { after, describe, it } from 'node:test';
import { tokenizerFromJSON } from '../src/data/hfTokenizer.js';
import { buildOfaTokenizerJson } from '../src/data/ofaTokenizer.js';
import { checkOfaArchitecture, readOfaCheckpointWeights, type OfaCheckpointWeights } from '../src/model/ofaCheckpoint.js';
import { convertOfaCheckpoint } from '../src/model/ofaConvert.js';
import { decodeSafetensors, float32ToFloat16Bits, type NamedArray } from '../src/model/safetensors.js';
import { isFloatingDtype, tensorToFloat32, tensorToInt64, toPlainData, TorchFile, TorchTensor } from '../src/model/torchCheckpoint.js';

const fixtures = join(import.meta.dirname, 'fixtures', 'ofa');
const checkpointFp32 = join(fixtures, 'tiny-mue', 'checkpoint.pt.gz');
const checkpointFp16 = join(fixtures, 'tiny-mue', 'checkpoint-fp16.pt.gz');
const bpeDir = join(fixtures, 'vocab');
const workDir = mkdtempSync(join(tmpdir(), 'mue-ofa-convert-'));
after(() => rmSync(workDir, { recursive: true, force: true }));

interface ReferenceHashes {
  aliases: Record<string, string>;
  tensors: Record<string, { dtype: 'F32' | 'I64'; shape: number[]; sha256: string; sha256_f16?: string }>;
}
const reference = JSON.parse(readFileSync(join(fixtures, 'tiny-mue', 'weights.sha256.json'), 'utf8')) as ReferenceHashes;
const fixtureConfig = JSON.parse(readFileSync(join(fixtures, 'tiny-mue', 'config.json'), 'utf8')) as {
  model_args: Record<string, unknown>;
  vocab: { size: number; mask: number; first_code: number; first_bin: number };
};

const sha256 = (bytes: ArrayBufferView): string => createHash('sha256').update(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)).digest('hex');

/** Hashes a float32 tensor as the reference stored it: F32 bytes, F16 bytes (fp16 files), or I64 bytes (integer buffers). */
function hashAs(tensor: NamedArray, dtype: 'F32' | 'F16' | 'I64'): string {
  if (dtype === 'F32') return sha256(tensor.data);
  if (dtype === 'I64') return sha256(BigInt64Array.from(tensor.data, (value) => BigInt(value)));
  // Every value of an fp16 checkpoint is a float16, so this conversion is exact (no rounding involved).
  return sha256(Uint16Array.from(tensor.data, (value) => float32ToFloat16Bits(value)));
}

/** Compares converted weights with the official weights.safetensors, tensor by tensor (names, shapes, bytes); tied copies included. */
function assertMatchesReference(weights: Map<string, NamedArray>, floatAs: 'F32' | 'F16'): void {
  assert.deepEqual([...weights.keys()].sort(), [...Object.keys(reference.tensors), ...Object.keys(reference.aliases)].sort());
  const expectations = [...Object.entries(reference.tensors), ...Object.entries(reference.aliases).map(([copy, original]) => [copy, reference.tensors[original]!] as const)];
  const mismatched = expectations.filter(([name, expected]) => {
    const tensor = weights.get(name)!;
    const hash = expected.dtype === 'I64' ? hashAs(tensor, 'I64') : hashAs(tensor, floatAs);
    return tensor.shape.join() !== expected.shape.join() || hash !== (floatAs === 'F16' && expected.dtype === 'F32' ? expected.sha256_f16 : expected.sha256);
  });
  assert.deepEqual(mismatched.map(([name]) => name), []);
}

/** OFA's make_token_bucket_position (ARCHITECTURE.md §6), float64. */
function tokenBucket(i: number, j: number, bucketSize: number, maxPosition: number): number {
  const mid = bucketSize / 2;
  const relative = i - j;
  const distance = Math.abs(relative);
  const bucket = distance <= mid ? relative : Math.sign(relative) * (Math.ceil((Math.log(distance / mid) / Math.log((maxPosition - 1) / mid)) * (mid - 1)) + mid);
  return bucket + bucketSize - 1;
}

/** OFA's make_image_bucket_position: patches p, q on a bucketSize grid, entry [1 + p, 1 + q]; row/column 0 reserved. */
function imageBucket(row: number, column: number, bucketSize: number): number {
  const relativeDistances = (2 * bucketSize - 1) ** 2 + 3;
  if (row === 0 && column === 0) return relativeDistances - 1;
  if (column === 0) return relativeDistances - 2;
  if (row === 0) return relativeDistances - 3;
  const [p, q] = [row - 1, column - 1];
  const dRow = Math.floor(p / bucketSize) - Math.floor(q / bucketSize) + bucketSize - 1;
  const dColumn = (p % bucketSize) - (q % bucketSize) + bucketSize - 1;
  return dRow * (2 * bucketSize - 1) + dColumn;
}

describe('TorchFile: the torch zip + pickle reader on small real torch.save files', () => {
  const read = (file: string) => TorchFile.read(join(fixtures, 'other', file));
  const values = (file: TorchFile, tensor: TorchTensor) => {
    const bytes = file.storageBytes([tensor.storage]).get(tensor.storage.key)!;
    return isFloatingDtype(tensor.dtype) ? [...tensorToFloat32(tensor, bytes, 'x')] : [...tensorToInt64(tensor, bytes, 'x')].map(Number);
  };

  it('honours strides: a permuted (non-contiguous) int64 tensor comes out row-major', () => {
    const file = read('noncontiguous-tensor.pt');
    const tensor = file.root as TorchTensor;
    assert.deepEqual([tensor.shape, tensor.stride], [[2, 2, 3], [1, 6, 2]]);
    assert.deepEqual(values(file, tensor), [1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6]); // permute(2, 0, 1) of [[[1,1],[2,2],[3,3]],[[4,4],[5,5],[6,6]]]
  });

  it('reads every storage type a state dict can hold; unsupported ones (complex) stay opaque instead of failing', () => {
    const file = read('dtypes.pt');
    const list = file.root as unknown[];
    const tensors = list.filter((item): item is TorchTensor => item instanceof TorchTensor);
    assert.deepEqual(tensors.map((tensor) => tensor.dtype), ['float64', 'float32', 'float16', 'int64', 'int32', 'int16', 'int8', 'uint8', 'bool', 'bfloat16']);
    assert.deepEqual(tensors.map((tensor) => values(file, tensor)), [[-1, 1], [-1, 1], [-1, 1], [-1, 1], [-1, 1], [-1, 1], [-1, 1], [0, 1], [0, 1, 0, 1], [-1, 1]]);
    assert.deepEqual(toPlainData(list.slice(-2)), ['<tensor of unsupported storage <torch.ComplexDoubleStorage>>', '<tensor of unsupported storage <torch.ComplexFloatStorage>>']);
  });
});

/** The fp32 fixture, read once by the first test and reused. */
let checkpoint: OfaCheckpointWeights;

describe('readOfaCheckpointWeights on a real fairseq checkpoint (fp32)', () => {
  it('reads the state dict: every tensor equals the official weights.safetensors bit for bit', () => {
    checkpoint = readOfaCheckpointWeights(checkpointFp32);
    assert.equal(checkpoint.floatDtype, 'float32');
    assert.equal(checkpoint.vocabSize, 10037);
    assert.deepEqual(checkpoint.aliases, reference.aliases);
    // The three saved copies of the tied embedding are one array after reading.
    for (const [copy, original] of Object.entries(checkpoint.aliases)) assert.equal(checkpoint.weights.get(copy), checkpoint.weights.get(original));
    assertMatchesReference(checkpoint.weights, 'F32');
  });

  it('reads cfg["model"] (an argparse.Namespace) as plain data equal to the arguments the model was built with', () => {
    assert.equal(Object.keys(checkpoint.modelArgs).length > 200, true); // every command-line argument
    const differing = Object.entries(fixtureConfig.model_args).filter(([key, value]) => JSON.stringify(checkpoint.modelArgs[key]) !== JSON.stringify(value));
    assert.deepEqual(differing, []);
    assert.equal(checkpoint.taskArgs._name, 'snli_ve');
    // The rest of cfg is plain data too (dicts with a _name per group).
    assert.deepEqual([checkpoint.cfg.criterion, checkpoint.cfg.optimizer].map((group) => (group as { _name: string })._name), ['MuE_Task_Loss', 'adam']);
    assert.equal((checkpoint.cfg.common as { fp16: boolean }).fp16, false);
    assert.equal(checkpoint.modelArgs.code_dict_size, 16);
  });

  it('returns the int64 bucket tables, and they equal their formulas', () => {
    const tokenBucketSize = checkpoint.modelArgs.token_bucket_size as number;
    const imageBucketSize = checkpoint.modelArgs.image_bucket_size as number;
    assert.deepEqual([...checkpoint.bucketTables.keys()].sort(), ['decoder.image_rp_bucket', 'decoder.token_rp_bucket', 'encoder.image_rp_bucket', 'encoder.token_rp_bucket']);
    for (const stream of ['encoder', 'decoder']) {
      const token = checkpoint.bucketTables.get(`${stream}.token_rp_bucket`)!;
      const size = token.shape[0]!;
      assert.deepEqual(token.shape, [1024, 1024]);
      let wrong = 0;
      for (let i = 0; i < size; i++) for (let j = 0; j < size; j++) if (token.data[i * size + j] !== BigInt(tokenBucket(i, j, tokenBucketSize, size))) wrong++;
      assert.equal(wrong, 0, `${stream}.token_rp_bucket`);
      const image = checkpoint.bucketTables.get(`${stream}.image_rp_bucket`)!;
      const side = imageBucketSize ** 2 + 1;
      assert.deepEqual(image.shape, [side, side]);
      for (let i = 0; i < side; i++) for (let j = 0; j < side; j++) if (image.data[i * side + j] !== BigInt(imageBucket(i, j, imageBucketSize))) wrong++;
      assert.equal(wrong, 0, `${stream}.image_rp_bucket`);
    }
  });
});

describe('convert-ofa', () => {
  it('converts the fp16 checkpoint: weights equal the reference rounded to float16, tied embedding stored once; --task overrides', () => {
    const out = join(workDir, 'fp16');
    const result = convertOfaCheckpoint({ checkpoint: checkpointFp16, bpeDir, out, task: 'caption' });
    assert.deepEqual([result.task, result.vocabSize, result.floatDtype, result.storedTensors], ['caption', 10037, 'float16', 239]);
    assert.equal((JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as { task: string }).task, 'caption');
    const stored = decodeSafetensors(readFileSync(join(out, 'model.safetensors')));
    const aliases = JSON.parse(stored.metadata.aliases!) as Record<string, string>;
    assert.deepEqual(aliases, reference.aliases);
    for (const name of Object.keys(aliases)) assert.equal(stored.tensors.has(name), false);
    assert.equal([...stored.tensors.keys()].some((name) => name.endsWith('_rp_bucket')), false);
    for (const [copy, original] of Object.entries(aliases)) stored.tensors.set(copy, stored.tensors.get(original)!);
    assertMatchesReference(stored.tensors, 'F16');
  });

  it('runs from the CLI on the fp32 checkpoint: exact weights, config.json in the agreed format, tokenizer.json', async () => {
    const out = join(workDir, 'fp32');
    mkdirSync(out);
    writeFileSync(join(out, 'exits.json'), '{}'); // an unrelated file already there is kept
    const { stdout } = await mue('convert-ofa', '--checkpoint', checkpointFp32, '--bpe-dir', bpeDir, '--out', out);
    assert.match(stdout, /ve model, vocabulary 10037, 239 tensors \(float32 in the checkpoint/);
    assert.equal(readFileSync(join(out, 'exits.json'), 'utf8'), '{}');
    const stored = decodeSafetensors(readFileSync(join(out, 'model.safetensors')));
    for (const [copy, original] of Object.entries(JSON.parse(stored.metadata.aliases!) as Record<string, string>)) stored.tensors.set(copy, stored.tensors.get(original)!);
    assertMatchesReference(stored.tensors, 'F32');
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual(Object.keys(config), ['family', 'task', 'vocabSize', 'modelArgs', 'taskArgs']);
    assert.deepEqual(config.taskArgs, { prompt_type: 'prev_output', add_caption: true, max_src_length: 80 }); // the fixture's cfg["task"]
    assert.deepEqual([config.family, config.task, config.vocabSize], ['ofa', 've', 10037]);
    const modelArgs = config.modelArgs as Record<string, unknown>;
    assert.deepEqual([modelArgs.arch, modelArgs.encoder_embed_dim, modelArgs.patch_image_size, modelArgs.train_mue], ['ofa_base', 64, 64, true]);
    const tokenizer = tokenizerFromJSON(JSON.parse(readFileSync(join(out, 'tokenizer.json'), 'utf8')));
    assert.equal(tokenizer.vocabSize, 10037);
    assert.deepEqual(tokenizer.encode(' yes'), [4420]);
    // The converted directory runs (test/ofaRuntime.test.ts checks the runtime in depth).
    const predicted = await mue('predict', '--model', out, '--image', join(import.meta.dirname, 'fixtures', 'datasets', 'snli-ve-jsonl', 'flickr30k_images', '1000.jpg'), '--text', 'a dog');
    assert.match(predicted.stdout, /^(yes|no|maybe)\n/);
  });

  it('refuses an unknown --task with one line', async () => {
    assert.match(await failure('convert-ofa', '--checkpoint', checkpointFp16, '--bpe-dir', bpeDir, '--out', join(workDir, 'vqa'), '--task', 'vqa'), /^mue: .*--task must be one of ve, caption/m);
  });
});

describe('refusals', () => {
  it('refuses a legacy (pre-zip) torch file (a real torch.save(..., _use_new_zipfile_serialization=False) file)', () => {
    assert.throws(() => readOfaCheckpointWeights(join(fixtures, 'other', 'legacy-state-dict.pt')), /legacy \(pre-1\.6, non-zip\) torch\.save file/);
  });

  it('refuses a checkpoint of another architecture (a real torch 2.x checkpoint of a small MLP)', async () => {
    const mlp = join(fixtures, 'other', 'mlp-checkpoint.pt');
    // The torch reader itself reads it (prefix "checkpoint/", byteorder entry, newer torch)…
    const file = TorchFile.read(mlp);
    assert.deepEqual([...(file.root as Map<string, unknown>).keys()], ['model_state_dict', 'optimizer_state_dict', 'epoch', 'loss']);
    // …but it is no OFA model, and the CLI says so in one line.
    const message = await failure('convert-ofa', '--checkpoint', mlp, '--bpe-dir', bpeDir, '--out', join(workDir, 'never'));
    assert.match(message, /^mue: .*is not a fairseq\/OFA checkpoint: it has no "model" state dict \(top-level keys: model_state_dict/m);
    assert.equal(message.trim().split('\n').length, 1);
    assert.equal(existsSync(join(workDir, 'never')), false);
  });

  it('refuses a fairseq checkpoint whose arch or state dict is not OFA', () => {
    const { modelArgs, weights } = checkpoint;
    const names = [...weights.keys()];
    assert.doesNotThrow(() => checkOfaArchitecture(modelArgs, names, 'ofa.pt'));
    assert.throws(() => checkOfaArchitecture({ ...modelArgs, arch: 'bart_base' }, names, 'bart.pt'), /bart\.pt is a checkpoint of another architecture \(arch "bart_base"\)/);
    assert.throws(() => checkOfaArchitecture(modelArgs, names.filter((name) => !name.startsWith('encoder.embed_images.')), 'text.pt'), /lacks encoder\.embed_images\.conv1\.weight: not an OFA model/);
  });

  it('refuses truncated files: a cut checkpoint.pt and a cut .pt.gz', () => {
    const full = gunzipSync(readFileSync(checkpointFp16));
    const cut = join(workDir, 'cut.pt');
    writeFileSync(cut, full.subarray(0, Math.floor(full.length * 0.6)));
    assert.throws(() => readOfaCheckpointWeights(cut), /cut\.pt is truncated or damaged: its zip directory cannot be read/);
    const cutGzip = join(workDir, 'cut.pt.gz');
    const gzip = readFileSync(checkpointFp16);
    writeFileSync(cutGzip, gzip.subarray(0, gzip.length - 1000));
    assert.throws(() => readOfaCheckpointWeights(cutGzip), /cut\.pt\.gz: the gzip data is truncated or damaged/);
    assert.throws(() => readOfaCheckpointWeights(join(workDir, 'missing.pt')), /cannot read .*missing\.pt: file not found/);
  });
});

describe('OFA tokenizer.json (BPE -> dictionary ids)', () => {
  const sizes = { vocabSize: 10037, codeDictSize: 16, numBins: 16 };
  const tokenizer = tokenizerFromJSON(JSON.parse(JSON.stringify(buildOfaTokenizerJson(bpeDir, sizes).json)));

  it("gives the fixture texts exactly the official src_tokens, piece by piece", () => {
    for (const fixture of ['tiny-mue', 'tiny-b2-mue']) {
      const config = JSON.parse(readFileSync(join(fixtures, fixture, 'config.json'), 'utf8')) as {
        texts: string[]; src_tokens: number[][]; token_pieces: { src_tokens: [number, string, string | null][][] };
      };
      config.texts.forEach((text, row) => {
        const ids = config.src_tokens[row]!.filter((id) => id > 3); // without <s>, </s>, <pad>
        assert.deepEqual(tokenizer.encode(text), ids, text);
        const pieces = config.token_pieces.src_tokens[row]!.filter(([id]) => id > 3);
        assert.deepEqual(pieces.map(([id]) => tokenizer.decode([id])), pieces.map(([, , piece]) => piece!.trim()));
        assert.equal(tokenizer.decode(ids), text.trim());
      });
    }
  });

  it("equals fairseq's own GPT-2 BPE + Dictionary on tricky texts (case, accents, CJK, emoji, digits, whitespace runs)", () => {
    const { cases } = JSON.parse(readFileSync(join(fixtures, 'tokenizer-cases.json'), 'utf8')) as { cases: { text: string; ids: number[]; ids_12000_lines: number[] }[] };
    const larger = tokenizerFromJSON(buildOfaTokenizerJson(bpeDir, { vocabSize: 12037, codeDictSize: 16, numBins: 16 }).json);
    for (const { text, ids, ids_12000_lines: ids12000 } of cases) {
      assert.deepEqual(tokenizer.encode(text), ids, JSON.stringify(text));
      assert.deepEqual(larger.encode(text), ids12000, JSON.stringify(text));
    }
  });

  it('matches the documented ids: answers, caption prompt, specials', () => {
    assert.deepEqual([' yes', ' no', ' maybe'].map((text) => tokenizer.encode(text)), [[4420], [117], [2085]]);
    assert.deepEqual(tokenizer.encode(' what does the image describe?'), [99, 473, 5, 2274, 6190, 116]);
    assert.deepEqual([tokenizer.bosId, tokenizer.padId, tokenizer.eosId, tokenizer.unkId], [0, 1, 2, 3]);
    assert.deepEqual([tokenizer.idOf('<mask>'), tokenizer.idOf('<code_0>'), tokenizer.idOf('<bin_0>'), tokenizer.idOf('<bin_15>')],
      [fixtureConfig.vocab.mask, fixtureConfig.vocab.first_code, fixtureConfig.vocab.first_bin, 10036]);
    assert.equal(tokenizer.vocabSize, fixtureConfig.vocab.size);
  });

  it('cuts a longer dict.txt to the checkpoint: pieces beyond the cut become <unk>, as in fairseq', () => {
    // dict.txt here has 12,000 lines; the checkpoint's 10,037 rows take 10,000 of them.
    assert.deepEqual(tokenizer.encode(' imply'), [3]); // GPT-2 20135: full-dictionary row 25,696
    const line10000 = readFileSync(join(bpeDir, 'dict.txt'), 'utf8').split('\n')[10000]!.split(' ')[0]!;
    const encoder = JSON.parse(readFileSync(join(bpeDir, 'encoder.json'), 'utf8')) as Record<string, number>;
    const piece = Object.keys(encoder).find((key) => encoder[key] === Number(line10000))!;
    assert.equal(tokenizer.idOf(piece), tokenizer.unkId);
    const full = tokenizerFromJSON(buildOfaTokenizerJson(bpeDir, { vocabSize: 12037, codeDictSize: 16, numBins: 16 }).json);
    assert.equal(full.idOf(piece), 10004);
  });

  it('refuses a dict.txt shorter than the checkpoint needs, and a missing file', () => {
    const shortDir = join(workDir, 'short-bpe');
    mkdirSync(shortDir);
    for (const file of ['encoder.json', 'vocab.bpe']) copyFileSync(join(bpeDir, file), join(shortDir, file));
    writeFileSync(join(shortDir, 'dict.txt'), readFileSync(join(bpeDir, 'dict.txt'), 'utf8').split('\n').slice(0, 9000).join('\n'));
    assert.throws(() => buildOfaTokenizerJson(shortDir, sizes), /dict\.txt has 9000 entries but the checkpoint's embedding \(10037 rows, code_dict_size 16, num_bins 16\) needs 10000/);
    assert.throws(() => buildOfaTokenizerJson(workDir, sizes), /cannot read .*encoder\.json: file not found/);
  });
});

const run = promisify(execFile);
const cli = join(import.meta.dirname, '..', 'src', 'cli', 'main.ts');
function mue(...args: string[]) {
  return run(process.execPath, ['--import', 'tsx', cli, ...args], { cwd: join(import.meta.dirname, '..') });
}
async function failure(...args: string[]): Promise<string> {
  try {
    await mue(...args);
  } catch (error) {
    const { stderr, code } = error as { stderr: string; code: number };
    assert.equal(code, 1);
    return stderr;
  }
  return assert.fail(`mue ${args.join(' ')} should have failed`);
}
