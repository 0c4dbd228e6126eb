// The models committed under models/: complete, small enough, better than chance, and usable
// through `mue predict` on real photo formats (JPEG with EXIF rotation, PNG with alpha).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { sceneWorldEvalSet } from '../src/eval/evaluate.js';
import { EXITS_FILE, MuEModel } from '../src/runtime/mueModel.js';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..');
const cli = join(root, 'src', 'cli', 'main.ts');
const mue = (...args: string[]) => run(process.execPath, ['--import', 'tsx', cli, ...args], { cwd: root });
const SHIPPED = ['ve-small', 'caption-small'] as const;
const MAX_MODEL_BYTES = 25 * 1024 * 1024;

const workDir = mkdtempSync(join(tmpdir(), 'mue-shipped-'));
const jpegPath = join(workDir, 'photo.jpg');
const pngPath = join(workDir, 'photo.png');

before(async () => {
  // A 640×480 "photo": colour gradients, stored rotated with EXIF orientation 6 as cameras do.
  const width = 640;
  const height = 480;
  const pixels = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) pixels.set([(x * 255) / width, (y * 255) / height, 128], (y * width + x) * 3);
  }
  await sharp(pixels, { raw: { width, height, channels: 3 } }).jpeg({ quality: 85 }).withMetadata({ orientation: 6 }).toFile(jpegPath);
  // A PNG with an alpha channel (dropped by the pipeline).
  writeFileSync(pngPath, await sharp(pixels, { raw: { width, height, channels: 3 } }).ensureAlpha(0.5).png().toBuffer());
});
after(() => rmSync(workDir, { recursive: true, force: true }));

for (const name of SHIPPED) {
  const modelDir = join(root, 'models', name);

  test(`models/${name} is complete and under 25 MB`, () => {
    const files = readdirSync(modelDir);
    for (const file of ['config.json', 'model.safetensors', 'tokenizer.json', 'train-log.jsonl', EXITS_FILE]) assert.ok(files.includes(file), `${name} lacks ${file}`);
    const bytes = files.reduce((sum, file) => sum + statSync(join(modelDir, file)).size, 0);
    assert.ok(bytes < MAX_MODEL_BYTES, `${name} is ${(bytes / 1e6).toFixed(1)} MB`);
  });

  test(`mue predict runs models/${name} on a JPEG and a PNG photo`, async () => {
    for (const image of [jpegPath, pngPath]) {
      const args = name.startsWith('ve') ? ['--text', 'there is a red circle'] : [];
      const { stdout } = await mue('predict', '--model', modelDir, '--image', image, ...args, '--json');
      const result = JSON.parse(stdout);
      if (name.startsWith('ve')) assert.ok(['yes', 'no', 'maybe'].includes(result.answer), stdout);
      else assert.match(result.answer, /^[a-z]+( [a-z]+)*$/, stdout);
      assert.ok(result.telemetry.imageLayers >= 1 && result.telemetry.imageLayers <= 6, stdout);
    }
  });
}

test('models/ve-small beats chance (33%) at full depth on 90 held-out test questions', async () => {
  const model = await MuEModel.load(join(root, 'models', 've-small'));
  try {
    const examples = sceneWorldEvalSet('ve', 'test', 90, 11, model.config.imageSize);
    let correct = 0;
    for (const example of examples) {
      const { answer } = await model.entail({ image: example.image, hypothesis: example.hypothesis! }, { imageThreshold: 1, textThreshold: 1, decoderThreshold: 1 });
      if (answer === example.label) correct++;
    }
    assert.ok(correct / examples.length > 0.45, `accuracy ${correct}/${examples.length}`);
  } finally {
    await model.dispose();
  }
});

test('models/ve-small (a \'bos\' model from before the prompt formulation) answers exactly as before', async () => {
  const model = await MuEModel.load(join(root, 'models', 've-small'));
  try {
    assert.equal(model.config.veFormulation, 'bos'); // its config.json has no veFormulation
    // Recorded with the code before the VE prompt formulation existed (commit 42c6aeb), on SceneWorld test 0..23, seed 11.
    const full = 'yes maybe maybe yes maybe maybe maybe maybe maybe maybe maybe yes maybe yes yes maybe maybe maybe maybe yes maybe no maybe maybe';
    const calibrated = 'yes maybe maybe yes maybe maybe maybe maybe maybe maybe maybe yes maybe yes no maybe maybe maybe maybe yes maybe no maybe maybe';
    const layers = [[6, 6, 2], [5, 5, 2], [5, 3, 2], [6, 6, 2], [5, 6, 2], [5, 6, 2], [5, 6, 2], [5, 6, 2], [5, 3, 2], [5, 3, 2], [5, 3, 2], [6, 6, 2],
      [5, 6, 2], [6, 6, 2], [6, 3, 2], [3, 6, 2], [5, 3, 2], [5, 3, 2], [5, 6, 2], [6, 6, 2], [5, 6, 2], [6, 6, 2], [5, 6, 2], [5, 6, 2]];
    const examples = sceneWorldEvalSet('ve', 'test', 24, 11, model.config.imageSize);
    const answers = { full: [] as string[], calibrated: [] as string[], layers: [] as number[][] };
    for (const example of examples) {
      answers.full.push((await model.entail({ image: example.image, hypothesis: example.hypothesis }, { imageThreshold: 1, textThreshold: 1, decoderThreshold: 1 })).answer);
      const { answer, telemetry } = await model.entail({ image: example.image, hypothesis: example.hypothesis }); // exits.json thresholds
      answers.calibrated.push(answer);
      answers.layers.push([telemetry.imageLayers!, telemetry.textLayers!, ...telemetry.tokenLayers]);
    }
    assert.deepEqual(answers, { full: full.split(' '), calibrated: calibrated.split(' '), layers });
  } finally {
    await model.dispose();
  }
});

test('models/caption-small reads the official caption prompt as the words it was trained on (its tokenizer has no "?")', async () => {
  const { loadCheckpoint } = await import('../src/model/checkpoint.js');
  const { CAPTION_PROMPT } = await import('../src/data/sceneworld.js');
  const { tokenizer } = loadCheckpoint(join(root, 'models', 'caption-small'));
  assert.equal(CAPTION_PROMPT, ' what does the image describe?');
  assert.deepEqual(tokenizer.encode(CAPTION_PROMPT), tokenizer.encode('what does the image describe'));
});
