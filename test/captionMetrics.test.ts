import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';

import { scoreCaptions, type CaptionScores } from '../src/eval/captionMetrics.js';

// Reference values: test/fixtures/caption-metrics/ (see its README).
const fixtureDirectory = new URL('./fixtures/caption-metrics/', import.meta.url);
const TOLERANCE = 1e-6;

interface CaptionFixture {
  references: Record<string, string[]>;
  candidates: Record<string, string>;
  scores: Record<'BLEU-1' | 'BLEU-2' | 'BLEU-3' | 'BLEU-4' | 'ROUGE-L' | 'CIDEr-D', number>;
  per_image: { 'CIDEr-D': Record<string, number>; 'ROUGE-L': Record<string, number> };
}

async function readFixture(name: string): Promise<CaptionFixture> {
  return JSON.parse(await readFile(new URL(name, fixtureDirectory), 'utf8')) as CaptionFixture;
}

function assertClose(actual: number, expected: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= TOLERANCE, `${what}: got ${actual}, expected ${expected}`);
}

const corpusMetricFields: Array<[keyof CaptionFixture['scores'], keyof Omit<CaptionScores, 'perImage'>]> = [
  ['BLEU-1', 'bleu1'],
  ['BLEU-2', 'bleu2'],
  ['BLEU-3', 'bleu3'],
  ['BLEU-4', 'bleu4'],
  ['ROUGE-L', 'rougeL'],
  ['CIDEr-D', 'ciderD'],
];

describe('scoreCaptions matches the COCO caption evaluation reference values', () => {
  for (const fixtureName of ['set-a.json', 'set-b.json']) {
    it(`${fixtureName}: corpus and per-image scores`, async () => {
      const fixture = await readFixture(fixtureName);
      const scores = scoreCaptions(fixture.references, fixture.candidates);
      for (const [fixtureKey, scoreKey] of corpusMetricFields) {
        assertClose(scores[scoreKey], fixture.scores[fixtureKey], `${fixtureName} ${fixtureKey}`);
      }
      const expectedIds = Object.keys(fixture.per_image['CIDEr-D']).sort();
      assert.deepEqual(Object.keys(scores.perImage).sort(), expectedIds);
      assert.deepEqual(Object.keys(fixture.per_image['ROUGE-L']).sort(), expectedIds);
      for (const id of expectedIds) {
        assertClose(scores.perImage[id]!.ciderD, fixture.per_image['CIDEr-D'][id]!, `${fixtureName} image ${id} CIDEr-D`);
        assertClose(scores.perImage[id]!.rougeL, fixture.per_image['ROUGE-L'][id]!, `${fixtureName} image ${id} ROUGE-L`);
      }
    });
  }
});

describe('scoreCaptions on hand-checked cases', () => {
  it('gives BLEU 1 and ROUGE-L 1 to a candidate identical to its only reference', () => {
    const scores = scoreCaptions({ a: ['a red circle on the left'] }, { a: 'a red circle on the left' });
    assertClose(scores.bleu1, 1, 'BLEU-1');
    assertClose(scores.bleu4, 1, 'BLEU-4');
    assertClose(scores.rougeL, 1, 'ROUGE-L');
    // A single image makes every idf log(1) - log(1) = 0, so CIDEr-D is 0.
    assert.equal(scores.ciderD, 0);
  });

  it('picks the closest reference length, preferring the shorter one on ties', () => {
    // Candidate has 4 tokens; references have 3 and 5 tokens (tie), so the brevity reference is 3:
    // no brevity penalty and BLEU-1 = clipped unigrams / 4.
    const scores = scoreCaptions({ a: ['one big star', 'one big star at top'] }, { a: 'one big star here' });
    assertClose(scores.bleu1, 3 / 4, 'BLEU-1');
  });

  it('applies the brevity penalty from total lengths', () => {
    // 2 candidate tokens against a closest reference of 4 tokens: BP = exp(1 - 4/2).
    const scores = scoreCaptions({ a: ['a b c d'] }, { a: 'a b' });
    assertClose(scores.bleu1, Math.exp(1 - 2), 'BLEU-1');
  });

  it('scores an empty candidate caption 0', () => {
    const scores = scoreCaptions({ a: ['a red circle'], b: ['a blue square'] }, { a: '', b: 'a blue square' });
    assert.deepEqual(scores.perImage.a, { rougeL: 0, ciderD: 0 });
    assert.ok(scores.perImage.b!.ciderD > 0);
  });
});

describe('scoreCaptions input validation', () => {
  it('names a candidate id without references', () => {
    assert.throws(() => scoreCaptions({ a: ['x y'] }, { a: 'x y', b: 'z' }), /candidate image "b" has no references/);
  });

  it('names a reference id without a candidate', () => {
    assert.throws(() => scoreCaptions({ a: ['x y'], c: ['z'] }, { a: 'x y' }), /reference image "c" has no candidate/);
  });

  it('rejects an image with an empty reference list', () => {
    assert.throws(() => scoreCaptions({ a: [] }, { a: 'x' }), /image "a" must have a non-empty array/);
  });

  it('rejects non-string and empty captions', () => {
    const badCandidates = { a: 3 } as unknown as Record<string, string>;
    assert.throws(() => scoreCaptions({ a: ['x'] }, badCandidates), /candidate caption for image "a" must be a string/);
    const badReferences = { a: ['x', null] } as unknown as Record<string, string[]>;
    assert.throws(() => scoreCaptions(badReferences, { a: 'x' }), /reference caption 1 for image "a" must be a string/);
    assert.throws(() => scoreCaptions({ a: ['x', '  '] }, { a: 'x' }), /reference caption 1 for image "a" is empty/);
  });

  it('rejects an empty set', () => {
    assert.throws(() => scoreCaptions({}, {}), /no captions to score/);
  });
});
