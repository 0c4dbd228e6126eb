// End to end through the real CLI: train a tiny model, predict with telemetry, refuse bad input.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { veExample } from '../src/data/sceneworld.js';
import sharp from 'sharp';
import { encodePng } from '../src/data/png.js';
import { MuEModel } from '../src/runtime/mueModel.js';

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

test('mue predict reads JPEG and PNG photos of any size (resized and centre-cropped to the model\'s input)', async () => {
  // A 64×48 photo-like image: the pipeline must accept it whatever the model answers.
  const photo = sharp(Buffer.from(veExample(1, { split: 'test', seed: 1, imageSize: 64 }).image.pixels), { raw: { width: 64, height: 64, channels: 3 } }).resize(64, 48, { fit: 'fill' });
  for (const [name, bytes] of [['photo.jpg', await photo.clone().jpeg().toBuffer()], ['photo.png', await photo.clone().png().toBuffer()]] as const) {
    writeFileSync(join(workDir, name), bytes);
    const { stdout } = await mue('predict', '--model', modelDir, '--image', join(workDir, name), '--text', 'there is a red circle', '--json');
    assert.ok(['yes', 'no', 'maybe'].includes(JSON.parse(stdout).answer), name);
  }
  // A PNG at the model's size is not resampled: the CLI sees exactly the in-memory scene's pixels.
  const fromFile = JSON.parse((await mue('predict', '--model', modelDir, '--image', imagePath, '--text', example.hypothesis, '--json')).stdout);
  const model = await MuEModel.load(modelDir);
  const inMemory = await model.entail({ image: example.image, hypothesis: example.hypothesis }, { recordSimilarities: true });
  await model.dispose();
  assert.equal(fromFile.answer, inMemory.answer);
  assert.deepEqual(fromFile.telemetry.similarities.image, inMemory.telemetry.similarities!.image);
});

test('fine-tune from a checkpoint on an SNLI-VE fixture (--init-from, --data snli-ve:DIR), then evaluate on it', async () => {
  const tuned = join(workDir, 've-tuned');
  const data = `snli-ve:${join(import.meta.dirname, 'fixtures', 'datasets', 'snli-ve-tsv')}`;
  const { stderr } = await mue('train', '--task', 've', '--init-from', modelDir, '--data', data, '--image-size', '32', '--steps', '3', '--batch-size', '4',
    '--learning-rate', '1e-4', '--warmup-steps', '0', '--validation-size', '3', '--out', tuned);
  assert.match(stderr, /fine-tuning .*ve-tiny .* on SNLI-VE \(OFA TSV\)/);
  const log = readFileSync(join(tuned, 'train-log.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line));
  assert.equal(log.filter((record) => record.type === 'train').length, 3);
  const state = JSON.parse(readFileSync(join(tuned, 'training_state.json'), 'utf8'));
  assert.equal(state.options.data, data);
  const config = (dir: string) => JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  assert.deepEqual(config(tuned), config(modelDir), 'the fine-tuned model keeps the checkpoint\'s config');
  const out = join(workDir, 'eval-snli.json');
  await mue('eval', '--model', tuned, '--data', data, '--split', 'test', '--count', '10', '--methods', 'mue', '--out', out);
  const report = JSON.parse(readFileSync(out, 'utf8'));
  assert.equal(report.data, data);
  // The premise template (` can image and text1 " {premise} " imply text2 " {hypothesis} "?`) makes one hypothesis longer than the 20-token limit: skipped and counted.
  assert.equal(report.count + report.skippedTooLong, 3, 'the fixture test split has 3 examples');
  assert.ok(report.count >= 1);
  const { stdout: calibrated } = await mue('calibrate', '--model', tuned, '--data', data, '--split', 'validation', '--count', '10', '--target-retention', '0.9');
  assert.match(calibrated, /wrote .*exits\.json/);
  assert.equal(JSON.parse(readFileSync(join(tuned, 'exits.json'), 'utf8')).calibration.data, data);
  assert.match(await failure('train', '--task', 'caption', '--data', data, '--preset', 'tiny', '--out', join(workDir, 'x')), /snli-ve is a ve data set but the task is caption/);
  assert.match(await failure('train', '--task', 've', '--init-from', modelDir, '--data', data, '--out', join(workDir, 'y')), /takes 32-pixel images; pass --image-size 32/);
  // The joint ablation can start from the same (decomposed) checkpoint: both modes share every parameter.
  const joint = join(workDir, 've-tuned-joint');
  await mue('train', '--task', 've', '--init-from', tuned, '--encoder-mode', 'joint', '--data', data, '--image-size', '32', '--steps', '1', '--batch-size', '4',
    '--warmup-steps', '0', '--validation-size', '3', '--out', joint);
  assert.deepEqual(config(joint), { ...config(tuned), encoderMode: 'joint' });
  const fromJoint = join(workDir, 've-tuned-from-joint');
  await mue('train', '--task', 've', '--init-from', joint, '--data', data, '--image-size', '32', '--steps', '1', '--batch-size', '4',
    '--warmup-steps', '0', '--validation-size', '3', '--out', fromJoint);
  assert.equal(config(fromJoint).encoderMode, 'joint', 'without --encoder-mode a fine-tune keeps the checkpoint\'s mode');
});

test('bad input to mue predict gets a one-line error and exit code 1', async () => {
  const base = ['predict', '--model', modelDir, '--image', imagePath];
  assert.match(await failure(...base, '--text', 'there is a red circle', '--decoder-threshold', '2'), /mue: --decoder-threshold must be a number in \[-1, 1\] \(got "2"\)/);
  assert.match(await failure(...base, '--text', 'there is a red circle', '--image-threshold', 'high'), /--image-threshold must be a number/);
  assert.match(await failure(...base), /--text "<hypothesis>" is required/);
  assert.match(await failure(...base, '--text', 'there is a red circle', '--task', 'caption'), /is a ve model/);
  assert.match(await failure('predict', '--model', workDir, '--image', imagePath, '--text', 'x'), /not a model directory: config\.json is missing/);
  writeFileSync(join(workDir, 'not.png'), 'hello');
  assert.match(await failure(...base.slice(0, 3), '--image', join(workDir, 'not.png'), '--text', 'x'), /not\.png: not a readable image/);
  writeFileSync(join(workDir, 'cut.jpg'), (await sharp(Buffer.from(example.image.pixels), { raw: { width: 32, height: 32, channels: 3 } }).jpeg().toBuffer()).subarray(0, 300));
  assert.match(await failure(...base.slice(0, 3), '--image', join(workDir, 'cut.jpg'), '--text', 'x'), /cut\.jpg: .*premature end of JPEG/);
  assert.match(await failure(...base.slice(0, 3), '--image', join(workDir, 'missing.png'), '--text', 'x'), /cannot read image .*missing\.png: file not found/);
});
