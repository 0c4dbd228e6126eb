// The `ofa` family against the official PyTorch code: every shipped reference fixture
// (test/fixtures/ofa, trimmed copies of ../shared/ofa/fixtures, see test/fixtures/README.md)
// through `mue verify-ofa`'s checks, a tampered weight that must fail, incremental decoding
// with a K/V cache equal to the teacher-forced decoder, the bucket tables against the
// buffers stored in a real checkpoint, and the config's validation.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it, mock } from 'node:test';
import { promisify } from 'node:util';
import { Command } from 'commander';
import { registerVerifyOfaCommand } from '../src/cli/commands/verify-ofa.js';
import { loadOfaFixture, verifyOfaFixture } from '../src/eval/ofaVerify.js';
import { imageBucketTable, tokenBucket, tokenBucketTable } from '../src/model/ofaBuckets.js';
import { countResnetBlocks, type OfaConfig, ofaConfigFromModelArgs, ofaImageGrid } from '../src/model/ofaConfig.js';
import { checkOfaWeights, ofaParameterSpecs } from '../src/model/ofaParameters.js';
import { encodeSafetensors, type NamedArray } from '../src/model/safetensors.js';
import { ofaEncode, ofaForward, type OfaForwardInputs } from '../src/runtime/ofaForward.js';
import { OfaExitRunner } from '../src/runtime/ofaExitRunner.js';
import { range, textBuckets } from '../src/runtime/ofaPositions.js';
import { concatSequences } from '../src/runtime/rows.js';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..');
const cli = join(root, 'src', 'cli', 'main.ts');
const mue = (...args: string[]) => run(process.execPath, ['--import', 'tsx', cli, ...args], { cwd: root });

/** `mue verify-ofa <args>` on an in-process commander program (a subprocess loads the whole CLI): what it printed and the exit code it set. */
async function verifyOfa(...args: string[]): Promise<{ stdout: string; exitCode: number }> {
  const program = new Command().exitOverride().configureOutput({ writeErr: () => {} });
  registerVerifyOfaCommand(program);
  const log = mock.method(console, 'log', () => {});
  const previousExitCode = process.exitCode;
  process.exitCode = 0;
  try {
    await program.parseAsync(['verify-ofa', ...args], { from: 'user' });
    return { stdout: log.mock.calls.map((call) => String(call.arguments[0])).join('\n'), exitCode: Number(process.exitCode ?? 0) };
  } finally {
    log.mock.restore();
    process.exitCode = previousExitCode;
  }
}
const fixtures = join(root, 'test', 'fixtures', 'ofa');
const scratch = mkdtempSync(join(tmpdir(), 'mue-ofa-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

describe('parity with the official OFA / MuE code (reference fixtures)', () => {
  for (const name of ['tiny-mue', 'tiny-b2-mue']) {
    it(`${name}: every stored tensor within 1e-4 and every early-exit run's exit layers`, async () => {
      const result = await verifyOfaFixture(join(fixtures, name));
      const failing = result.stages.filter((stage) => !stage.pass).map((stage) => `${stage.name} ${stage.relativeError} ${stage.problem ?? ''}`);
      assert.deepEqual(failing, []);
      assert.ok(result.stages.length >= 30, `${result.stages.length} tensors compared`);
      for (const stage of ['resnet_out', 'enc.image.embed', 'enc.text.embed', 'attn_bias.enc0.call1', 'enc.out', 'attn_bias.dec0.cross.call0', 'dec.logits.layer0', 'exit.first.logits']) {
        assert.ok(result.stages.some((s) => s.name === stage), `${stage} compared`);
      }
      assert.equal(result.exitRuns.length, 4);
      for (const exitRun of result.exitRuns) assert.deepEqual(exitRun.actual, exitRun.expected, exitRun.name);
      assert.ok(result.worstRelativeError < 1e-4);
      assert.equal(result.pass, true);
    });
  }

  it('tiny-ofa (joint encoder; weights from the sibling tiny-mue) through the CLI, --json, exit code 0', async () => {
    const { stdout, exitCode } = await verifyOfa('--fixture', join(fixtures, 'tiny-ofa'), '--json');
    assert.equal(exitCode, 0);
    const result = JSON.parse(stdout) as { pass: boolean; mode: string; weights: string; stages: { name: string; pass: boolean }[] };
    assert.equal(result.mode, 'joint');
    assert.match(result.weights, /tiny-mue/);
    assert.ok(result.stages.some((stage) => stage.name === 'enc.layer1'));
    assert.ok(result.stages.every((stage) => stage.pass));
    assert.equal(result.pass, true);
  });

  it('a tampered c_attn of encoder layer 0 fails from that layer on, exit code 1', async () => {
    const { weights } = loadOfaFixture(join(fixtures, 'tiny-mue'));
    const cAttn = weights.get('encoder.layers.0.self_attn.c_attn')!;
    cAttn.data[0] = cAttn.data[0]! * 1.01;
    for (const alias of ['decoder.embed_tokens.weight', 'decoder.output_projection.weight']) weights.delete(alias);
    const path = join(scratch, 'tampered.safetensors');
    writeFileSync(path, encodeSafetensors(weights, { metadata: { aliases: JSON.stringify({ 'decoder.embed_tokens.weight': 'encoder.embed_tokens.weight', 'decoder.output_projection.weight': 'encoder.embed_tokens.weight' }) } }));
    const result = await verifyOfaFixture(join(fixtures, 'tiny-mue'), { weightsPath: path });
    const status = new Map(result.stages.map((stage) => [stage.name, stage.pass]));
    assert.equal(status.get('resnet_out'), true);
    assert.equal(status.get('enc.text.embed'), true);
    assert.equal(status.get('attn_bias.enc0.call0'), true);
    assert.equal(status.get('enc.text.layer0'), false);
    assert.equal(status.get('logits'), false);
    assert.equal(result.pass, false);
    const cliRun = await verifyOfa('--fixture', join(fixtures, 'tiny-mue'), '--weights', path);
    assert.equal(cliRun.exitCode, 1);
    assert.match(cliRun.stdout, /^enc\.text\.layer0 .* FAIL$/m);
    assert.match(cliRun.stdout, /^FAIL: 32 tensors/m);
  });

  it('refuses a bad fixture directory with one line', async () => {
    await assert.rejects(mue('verify-ofa', '--fixture', join(scratch, 'nowhere')), (error: { code: number; stderr: string }) => {
      assert.equal(error.code, 1);
      assert.match(error.stderr, /^mue: .*no config\.json \(not a fixture directory\)\n$/);
      return true;
    });
    const checkpointOnly = join(scratch, 'checkpoint-only', 'only');
    mkdirSync(checkpointOnly, { recursive: true });
    copyFileSync(join(fixtures, 'tiny-mue', 'config.json'), join(checkpointOnly, 'config.json'));
    writeFileSync(join(checkpointOnly, 'checkpoint.pt'), 'not read');
    await assert.rejects(verifyOfa('--fixture', checkpointOnly), /checkpoint\.pt is not a PyTorch checkpoint/);
    await assert.rejects(verifyOfa('--fixture', join(fixtures, 'tiny-mue'), '--tolerance', '0'), /--tolerance must be a number in \(0, 1\]/);
  });
});

/** Random weights for any config: uniform(−0.1, 0.1) where the spec says normal, its constant otherwise (LCG; values only need to be generic). */
function randomOfaWeights(config: OfaConfig): Map<string, NamedArray> {
  let state = 12345;
  const weights = new Map<string, NamedArray>();
  for (const spec of ofaParameterSpecs(config)) {
    const data = new Float32Array(spec.shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      data[i] = spec.init === 'normal' ? (state / 2 ** 32 - 0.5) * 0.2 : spec.init === 'ones' ? 1 + (state / 2 ** 32 - 0.5) * 0.2 : (state / 2 ** 32 - 0.5) * 0.2;
    }
    weights.set(spec.name, { shape: spec.shape, data });
  }
  return weights;
}

/**
 * Runs the decoder one position at a time with each layer's K/V cache and returns the largest
 * |difference| to the teacher-forced decoder at every layer and position.
 */
async function incrementalDecodingError(config: OfaConfig, weights: Map<string, NamedArray>, inputs: OfaForwardInputs): Promise<number> {
  const exitRunner = await OfaExitRunner.create(config, weights);
  const runner = exitRunner.ofa;
  try {
    const layers: Float32Array[] = [];
    const full = await ofaForward(exitRunner, inputs, undefined, { record: (stage, data) => { if (/^dec\.layer\d+$/.test(stage)) layers.push(data); } });
    const batch = inputs.decoderIds.length;
    const length = inputs.decoderIds[0]!.length;
    const { memory, memoryMask, memoryLength, positionEmbeddings } = await ofaEncode(exitRunner, inputs);
    assert.deepEqual(memory, full.memory);
    const cross = await Promise.all(range(config.decoderLayers).map((index) => runner.crossKeyValues(index, memory, batch, memoryLength)));
    const cache = range(config.decoderLayers).map(() => ({ key: [] as Float32Array[], value: [] as Float32Array[] }));
    const stacked = (parts: Float32Array[], steps: number) => concatSequences(parts, parts.map(() => 1), config.dim, batch).subarray(0, batch * steps * config.dim); // (B, t, D)
    let worst = 0;
    for (let step = 0; step < length; step++) {
      let x = await runner.embedDecoder(inputs.decoderIds.map((row) => [row[step]!]));
      const biases = await runner.decoderPositionBias([step], range(step + 1), positionEmbeddings, memoryLength);
      const selfKeyMask = Float32Array.from(inputs.decoderIds.flatMap((row) => row.slice(0, step + 1)), (id) => (id === 1 ? 0 : 1)); // (B, t + 1)
      for (let index = 0; index < config.decoderLayers; index++) {
        const selfBias = await runner.relativeBias('decoder', index, biases.self, textBuckets(config, [step], range(step + 1), config.maxTargetPositions), 1, step + 1);
        const past = { key: stacked(cache[index]!.key, step), value: stacked(cache[index]!.value, step) };
        const output = await runner.decoderLayer(index, x, 1, past, step, selfKeyMask, selfBias, cross[index]!, memoryMask, biases.cross, batch, memoryLength);
        cache[index]!.key.push(output.key);
        cache[index]!.value.push(output.value);
        x = output.hidden;
        const reference = layers[index]!;
        for (let row = 0; row < batch; row++) {
          for (let d = 0; d < config.dim; d++) worst = Math.max(worst, Math.abs(x[row * config.dim + d]! - reference[(row * length + step) * config.dim + d]!));
        }
      }
    }
    return worst;
  } finally {
    await runner.dispose();
  }
}

describe('incremental decoding', () => {
  it('one position at a time with a K/V cache equals the teacher-forced decoder (tiny-b2-mue, padded rows)', async () => {
    const { config, weights, inputs } = loadOfaFixture(join(fixtures, 'tiny-b2-mue'));
    const worst = await incrementalDecodingError(config, weights, inputs);
    assert.ok(worst < 1e-4, `max |step − teacher-forced| = ${worst}`);
  });

  it('the same for another shape: joint encoder, 4 encoder / 2 decoder heads, no attn_ln / ffn_layernorm / c_attn, 2-block stem, 48 px', async () => {
    const { config: fixtureConfig } = loadOfaFixture(join(fixtures, 'tiny-ofa'));
    const config: OfaConfig = { ...fixtureConfig, vocabSize: 40, dim: 32, encoderFfnDim: 48, decoderFfnDim: 24, encoderHeads: 4, decoderHeads: 2, encoderLayers: 1, decoderLayers: 3,
      resnetBlocks: [2, 1, 2], imageSize: 48, encoderMode: 'joint', scaleAttention: false, scaleFeedForward: false, scaleHeads: false };
    const pixels = Float32Array.from({ length: 2 * 48 * 48 * 3 }, (_, i) => Math.sin(i));
    const inputs = { pixels, textIds: [[0, 5, 6, 7, 2], [0, 8, 2, 1, 1]], decoderIds: [[0, 5, 6, 7, 9, 10], [0, 8, 11, 1, 1, 1]] };
    const worst = await incrementalDecodingError(config, randomOfaWeights(config), inputs);
    assert.ok(worst < 1e-4, `max |step − teacher-forced| = ${worst}`);
  });
});

describe('relative position buckets', () => {
  // sha256 of the int32 little-endian bytes of the int64 buffers stored in the reference
  // checkpoint (../shared/ofa/fixtures/tiny-mue/checkpoint.pt.gz: encoder/decoder token_rp_bucket
  // 1024², image_rp_bucket 1765², identical in encoder and decoder), read with the reference reader.
  const sha256 = (table: Int32Array): string => createHash('sha256').update(new Uint8Array(table.buffer)).digest('hex');

  it('the recomputed tables equal the buffers a real checkpoint stores', () => {
    assert.equal(sha256(tokenBucketTable(256, 1024)), '314e040cb7799ed9ec783affc122724b9d78605b2b5a1d795086e63f194888ae');
    assert.equal(sha256(imageBucketTable(42)), 'dbdb60c8347d965c0efc0bfa1e5e49cf8e3f52f27de68e481efb2e9b210adf27');
  });

  it('text buckets: linear up to ±128, logarithmic beyond, 511 rows', () => {
    assert.equal(tokenBucket(0, 256, 1024), 255);
    assert.equal(tokenBucket(128, 256, 1024), 383);
    assert.equal(tokenBucket(-128, 256, 1024), 127);
    assert.equal(tokenBucket(129, 256, 1024), 384); // ⌈ln(129/128)/ln(1023/128)·127⌉ + 128 = 129
    assert.equal(tokenBucket(1023, 256, 1024), 510);
    assert.equal(tokenBucket(-1023, 256, 1024), 0);
  });
});

describe('ofa config', () => {
  const { config } = loadOfaFixture(join(fixtures, 'tiny-ofa'));
  const modelArgs = (overrides: Record<string, unknown>) => ({ ...baseArgs, ...overrides });
  const baseArgs: Record<string, unknown> = {
    encoder_embed_dim: 768, decoder_embed_dim: 768, encoder_ffn_embed_dim: 3072, decoder_ffn_embed_dim: 3072,
    encoder_layers: 6, decoder_layers: 6, encoder_attention_heads: 12, decoder_attention_heads: 12, resnet_type: 'resnet101',
    patch_image_size: 480, train_mue: true, attn_scale_factor: 2, token_bucket_size: 256, image_bucket_size: 42,
    max_source_positions: 1024, max_target_positions: 1024, scale_attn: true, scale_fc: true, scale_heads: true,
    encoder_normalize_before: true, decoder_normalize_before: true, share_all_embeddings: true, layernorm_embedding: true,
    patch_layernorm_embedding: true, add_type_embedding: true, no_scale_embedding: true, entangle_position_embedding: false,
    disable_entangle: true, scale_resids: false, activation_fn: 'gelu',
  };

  it('reads OFA-Base (MuE) model args', () => {
    const base = ofaConfigFromModelArgs(modelArgs({}), 59457);
    assert.deepEqual(base.resnetBlocks, [3, 4, 23]);
    assert.equal(base.encoderMode, 'split');
    assert.deepEqual(ofaImageGrid(base), [30, 30]);
    assert.equal(ofaConfigFromModelArgs(modelArgs({ train_mue: false }), 59457).encoderMode, 'joint');
    assert.equal(config.encoderMode, 'joint');
    assert.deepEqual(config.resnetBlocks, [1, 1, 1]);
  });

  it('refuses what is not the OFA architecture, naming the field', () => {
    assert.throws(() => ofaConfigFromModelArgs(modelArgs({ encoder_layers: undefined }), 59457), /modelArgs\.encoder_layers must be an integer/);
    assert.throws(() => ofaConfigFromModelArgs(modelArgs({ disable_entangle: false }), 59457), /modelArgs\.disable_entangle is false/);
    assert.throws(() => ofaConfigFromModelArgs(modelArgs({ encoder_attention_heads: 7 }), 59457), /not divisible by 7/);
    assert.throws(() => ofaConfigFromModelArgs(modelArgs({ resnet_type: 'resnet18' }), 59457), /resnet_type "resnet18"/);
    assert.throws(() => ofaConfigFromModelArgs(modelArgs({ patch_image_size: 1024 }), 59457), /64×64 patch grid, larger than image_bucket_size 42/);
    assert.throws(() => ofaConfigFromModelArgs('ofa_base', 59457), /modelArgs must be a JSON object/);
  });

  it('weights are checked against every tensor the forward reads', () => {
    const { config: mue, weights } = loadOfaFixture(join(fixtures, 'tiny-mue'));
    assert.doesNotThrow(() => checkOfaWeights(mue, weights));
    weights.delete('encoder.layers.1.ffn_layernorm.weight');
    weights.set('decoder.layers.0.self_attn.c_attn', { shape: [5], data: new Float32Array(5) });
    assert.throws(() => checkOfaWeights(mue, weights), /missing encoder\.layers\.1\.ffn_layernorm\.weight; decoder\.layers\.0\.self_attn\.c_attn is \[5\], the config needs \[4\]/);
  });

  it('counts ResNet blocks from state-dict names', () => {
    assert.deepEqual(countResnetBlocks(['encoder.embed_images.layer1.0.conv1.weight', 'encoder.embed_images.layer1.2.bn1.bias', 'encoder.embed_images.layer2.3.conv2.weight', 'encoder.embed_images.layer3.22.conv3.weight', 'encoder.embed_tokens.weight']), [3, 4, 23]);
  });
});
