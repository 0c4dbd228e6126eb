// SNLI-VE (OFA TSV, JSONL + Flickr30k) and COCO Karpathy loaders on the fixtures that
// scripts/make-dataset-fixtures.ts packs, read back against the images they were made from.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { endlessRecords, openDataSource, sceneWorldRecord, takeRecords, type TaskRecord } from '../src/data/dataSource.js';
import { cocoFixtureImages, FIXTURE_IMAGE_SIZE, snliFixtureRows } from '../scripts/make-dataset-fixtures.js';

const fixtures = join(import.meta.dirname, 'fixtures', 'datasets');
const workDir = mkdtempSync(join(tmpdir(), 'mue-datasets-'));
after(() => rmSync(workDir, { recursive: true, force: true }));

const all = async (generator: AsyncGenerator<TaskRecord>) => {
  const records: TaskRecord[] = [];
  for await (const record of generator) records.push(record);
  return records;
};
const rejection = async (work: () => Promise<unknown>): Promise<string> => {
  try {
    await work();
  } catch (error) {
    return (error as Error).message;
  }
  return assert.fail('expected an error');
};

test('SNLI-VE OFA TSV: every split read back exactly, labels mapped to yes / maybe / no', async () => {
  const source = openDataSource(`snli-ve:${join(fixtures, 'snli-ve-tsv')}`, 've', 1);
  assert.match(source.name, /OFA TSV/);
  for (const split of ['train', 'validation', 'test'] as const) {
    const expected = snliFixtureRows().filter((row) => row.split === split);
    const records = await all(source.records(split, FIXTURE_IMAGE_SIZE));
    assert.equal(records.length, expected.length);
    assert.equal(await source.size(split), expected.length);
    records.forEach((record, i) => {
      const { example } = expected[i]!;
      assert.equal(record.id, example.id);
      assert.equal(record.hypothesis, example.hypothesis);
      assert.equal(record.premise, 'a picture of shapes'); // the caption column (scripts/make-dataset-fixtures.ts)
      assert.equal(record.label, example.label);
      assert.equal(record.group, { yes: 'entailment', maybe: 'neutral', no: 'contradiction' }[example.label]);
      assert.deepEqual(record.image, example.image);
    });
  }
});

test('SNLI-VE JSONL + Flickr30k images: same examples (JPEG within compression error), skip without decoding', async () => {
  const source = openDataSource(`snli-ve:${join(fixtures, 'snli-ve-jsonl')}`, 've', 1);
  assert.match(source.name, /JSONL/);
  const expected = snliFixtureRows().filter((row) => row.split === 'train');
  const records = await all(source.records('train', FIXTURE_IMAGE_SIZE, 2));
  assert.deepEqual(records.map((r) => r.id), expected.slice(2).map((row) => row.example.id));
  records.forEach((record, i) => {
    const { example } = expected[i + 2]!;
    assert.equal(record.label, example.label);
    assert.equal(record.premise, 'a picture of shapes'); // sentence1
    const meanError = record.image.pixels.reduce((sum, v, p) => sum + Math.abs(v - example.image.pixels[p]!), 0) / record.image.pixels.length;
    assert.ok(meanError < 4, `${record.id}: mean absolute error ${meanError}`);
  });
});

test('COCO Karpathy: one record per image with all its references; restval trains; images exact', async () => {
  const source = openDataSource(`coco:${join(fixtures, 'coco')}`, 'caption', 1);
  for (const split of ['train', 'validation', 'test'] as const) {
    const expected = cocoFixtureImages().filter((image) => image.split === split);
    const records = await all(source.records(split, FIXTURE_IMAGE_SIZE));
    assert.deepEqual(records.map((r) => r.id), expected.map((image) => String(image.cocoId)));
    records.forEach((record, i) => {
      assert.deepEqual(record.references, expected[i]!.example.captions);
      assert.deepEqual(record.image, expected[i]!.example.image);
    });
  }
  assert.equal(await source.size('train'), 5);
});

test('training streams cycle over a file data set from any position (resume); SceneWorld records match the generator', async () => {
  const source = openDataSource(`snli-ve:${join(fixtures, 'snli-ve-tsv')}`, 've', 1);
  const ids = snliFixtureRows().filter((row) => row.split === 'train').map((row) => row.example.id);
  const stream = endlessRecords(source, 'train', FIXTURE_IMAGE_SIZE, 10);
  const seen: string[] = [];
  for await (const record of stream) if (seen.push(record.id) === 8) break;
  assert.deepEqual(seen, [10, 11, 12, 13, 14, 15, 16, 17].map((p) => ids[p % ids.length]));
  const first = await takeRecords(openDataSource('sceneworld', 'caption', 3), 'test', 2, 32);
  assert.deepEqual(first, [0, 1].map((i) => sceneWorldRecord('caption', 'test', i, 3, 32)));
});

test('bad data specs and malformed files are refused with the file, line and problem', async () => {
  assert.throws(() => openDataSource('imagenet:/x', 've', 1), /--data must be sceneworld \| snli-ve:DIR/);
  assert.throws(() => openDataSource('snli-ve:', 've', 1), /needs the data set's directory/);
  assert.throws(() => openDataSource('coco:/x', 've', 1), /--data coco is a caption data set but the task is ve/);
  assert.throws(() => openDataSource('sceneworld:/x', 've', 1), /takes no path/);
  assert.match(await rejection(() => takeRecords(openDataSource(`snli-ve:${workDir}`, 've', 1), 'test', 1, 32)), /snli_ve_test\.jsonl does not exist/);
  assert.match(await rejection(() => takeRecords(openDataSource(`coco:${workDir}`, 'caption', 1), 'test', 1, 32)), /dataset_coco\.json does not exist/);

  const tsvDir = join(workDir, 'tsv');
  cpSync(join(fixtures, 'snli-ve-tsv'), tsvDir, { recursive: true });
  const tsv = (text: string) => {
    writeFileSync(join(tsvDir, 'snli_ve_test.tsv'), text);
    return rejection(() => takeRecords(openDataSource(`snli-ve:${tsvDir}`, 've', 1), 'test', 5, 32));
  };
  assert.match(await tsv('1\t2\tiVBOR\tthere is a cat\n'), /snli_ve_test\.tsv:1: expected 6 tab-separated columns .* got 4/);
  assert.match(await tsv('1\t2\tiVBOR\tthere is a cat\tcaption\tyes\n'), /snli_ve_test\.tsv:1: label "yes" is not entailment, neutral or contradiction/);
  assert.match(await tsv('\n1\t2\tnot base64!\tthere is a cat\tcaption\tneutral\n'), /snli_ve_test\.tsv:2: the image column is not base64/);
  assert.match(await tsv('1\t2\taGVsbG8=\tthere is a cat\tcaption\tneutral\n'), /snli_ve_test\.tsv:1 \(image 2\): not a readable image/);

  const jsonlDir = join(workDir, 'jsonl');
  cpSync(join(fixtures, 'snli-ve-jsonl'), jsonlDir, { recursive: true });
  const jsonl = (text: string) => {
    writeFileSync(join(jsonlDir, 'snli_ve_test.jsonl'), text);
    return rejection(() => takeRecords(openDataSource(`snli-ve:${jsonlDir}`, 've', 1), 'test', 5, 32));
  };
  assert.match(await jsonl('{"Flikr30kID": "1.jpg", '), /snli_ve_test\.jsonl:1: not valid JSON/);
  assert.match(await jsonl('{"sentence2": "a", "gold_label": "neutral"}'), /missing Flikr30kID \/ Flickr30K_ID/);
  assert.match(await jsonl('{"Flickr30K_ID": 77, "sentence2": "a", "gold_label": "neutral"}'), /missing sentence1 \(the premise\)/);
  assert.match(await jsonl('{"Flickr30K_ID": 77, "sentence1": "p", "sentence2": "a", "gold_label": "neutral"}'), /cannot read image .*flickr30k_images\/77\.jpg: file not found/);

  const cocoDir = join(workDir, 'coco');
  cpSync(join(fixtures, 'coco'), cocoDir, { recursive: true });
  const coco = (json: string) => {
    writeFileSync(join(cocoDir, 'dataset_coco.json'), json);
    return rejection(() => takeRecords(openDataSource(`coco:${cocoDir}`, 'caption', 1), 'test', 5, 32));
  };
  assert.match(await coco('{"images": ['), /dataset_coco\.json is not valid JSON/);
  assert.match(await coco('{"dataset": "coco"}'), /has no "images" array/);
  assert.match(await coco('{"images": [{"filename": "x.jpg", "split": "test", "sentences": []}]}'), /images\[0\] needs "sentences"/);
  assert.match(await coco('{"images": [{"filename": "x.jpg", "split": "val", "sentences": [{"raw": "a"}]}]}'), /has no test examples/);
});

test('a reader stopped early closes its file (no descriptor left open)', async () => {
  const { readdirSync } = await import('node:fs');
  const { readLines } = await import('../src/data/snliVe.js');
  const { join } = await import('node:path');
  const file = join(import.meta.dirname, 'fixtures', 'datasets', 'snli-ve-tsv', 'snli_ve_train.tsv');
  const openDescriptors = () => readdirSync('/proc/self/fd').length;
  const before = openDescriptors();
  for (let i = 0; i < 20; i++) {
    for await (const _line of readLines(file)) break;
  }
  await new Promise((resolve) => setTimeout(resolve, 50)); // stream destruction completes asynchronously
  assert.ok(openDescriptors() - before < 5, `${openDescriptors() - before} descriptors left open after 20 early stops`);
});
