// End to end through the real CLI: train a tiny model, predict with telemetry, refuse bad input.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { veExample } from '../src/data/sceneworld.js';
import { encodePng } from '../src/data/png.js';

const run = promisify(execFile);
const cli = join(import.meta.dirname, '..', 'src', 'cli', 'main.ts');
const mue = (...args: string[]) => run(process.execPath, ['--import', 'tsx', cli, ...args], { cwd: join(import.meta.dirname, '..') });
const failure = async (...args: string[]): Promise<string> => {
  try {
    await mue(...args);
  } catch (error) {
    const { stderr, code } = error as { stderr: string; code: number };
    assert.equal(code, 1);
    return stderr;
  }
  assert.fail(`mue ${args.join(' ')} should have failed`);
};

const workDir = mkdtempSync(join(tmpdir(), 'mue-cli-'));
const modelDir = join(workDir, 've-tiny');
const imagePath = join(workDir, 'scene.png');
const example = veExample(0, { split: 'test', seed: 1, imageSize: 32 });

before(async () => {
  writeFileSync(imagePath, encodePng(example.image));
  const { stdout } = await mue('train', '--preset', 'tiny', '--task', 've', '--image-size', '32', '--steps', '20', '--batch-size', '16',
    '--validation-size', '32', '--out', modelDir);
  assert.match(stdout, /validation answer accuracy/);
});
after(() => rmSync(workDir, { recursive: true, force: true }));

test('mue --help lists the commands', async () => {
  const { stdout } = await mue('--help');
  for (const command of ['data', 'train', 'predict', 'export', 'score']) assert.match(stdout, new RegExp(`\\n  ${command}\\b`));
});

test('mue predict --json prints the answer and the per-stream / per-token exit layers', async () => {
  const { stdout } = await mue('predict', '--model', modelDir, '--image', imagePath, '--text', example.hypothesis,
    '--image-threshold', '0.5', '--text-threshold', '0.5', '--decoder-threshold', '0.5', '--json');
  const result = JSON.parse(stdout);
  assert.ok(['yes', 'no', 'maybe'].includes(result.answer));
  assert.ok(result.telemetry.imageLayers >= 1 && result.telemetry.imageLayers <= 2);
  assert.ok(result.telemetry.textLayers >= 1 && result.telemetry.textLayers <= 2);
  assert.equal(result.telemetry.tokenLayers.length, 1);
  assert.equal(result.telemetry.similarities.image.length, result.telemetry.imageLayers);
  assert.ok(result.telemetry.flops <= result.telemetry.fullDepthFlops);
  const plain = await mue('predict', '--model', modelDir, '--image', imagePath, '--text', example.hypothesis);
  assert.match(plain.stdout, /^(yes|no|maybe)\nencoder layers: image 2, text 2 of 2; decoder layers per token: 2 of 2/);
});

test('mue export writes the per-layer graphs and a manifest', async () => {
  const out = join(workDir, 'onnx');
  await mue('export', '--model', modelDir, '--out', out);
  const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
  for (const piece of manifest.pieces) assert.ok(existsSync(join(out, piece.file)), piece.file);
  assert.ok(manifest.pieces.some((piece: { name: string }) => piece.name === 'decoder_step_1'));
});

test('bad input to mue predict gets a one-line error and exit code 1', async () => {
  const base = ['predict', '--model', modelDir, '--image', imagePath];
  assert.match(await failure(...base, '--text', 'there is a red circle', '--decoder-threshold', '2'), /mue: decoderThreshold must be a number in \[-1, 1\]/);
  assert.match(await failure(...base, '--text', 'there is a red circle', '--image-threshold', 'high'), /--image-threshold must be a number/);
  assert.match(await failure(...base), /--text "<hypothesis>" is required/);
  assert.match(await failure(...base, '--text', 'there is a red circle', '--task', 'caption'), /is a ve model/);
  assert.match(await failure('predict', '--model', workDir, '--image', imagePath, '--text', 'x'), /not a model directory: config\.json is missing/);
  const big = join(workDir, 'big.png');
  writeFileSync(big, encodePng(veExample(0, { split: 'test', seed: 1, imageSize: 64 }).image));
  assert.match(await failure(...base.slice(0, 3), '--image', big, '--text', 'there is a red circle'), /image is 64×64 but the model expects 32×32/);
  writeFileSync(join(workDir, 'not.png'), 'hello');
  assert.match(await failure(...base.slice(0, 3), '--image', join(workDir, 'not.png'), '--text', 'x'), /is not a readable PNG image/);
  assert.match(await failure(...base.slice(0, 3), '--image', join(workDir, 'missing.png'), '--text', 'x'), /cannot read image .*ENOENT/);
});
