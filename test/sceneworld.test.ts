import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Command } from 'commander';

import { registerDataCommand } from '../src/cli/commands/data.js';
import { decodePng, encodePng } from '../src/data/png.js';
import {
  CAPTION_PROMPT,
  captionExample,
  captionExamples,
  sceneWorldTokenizer,
  sceneWorldVocabulary,
  veExample,
  veExamples,
  type Split,
} from '../src/data/sceneworld.js';
import { sceneCaptions } from '../src/data/sceneworld/captions.js';
import { drawCaptionScene, drawVeExample } from '../src/data/sceneworld/draw.js';
import { entailmentLabel } from '../src/data/sceneworld/entailment.js';
import { hypothesisText, type Hypothesis } from '../src/data/sceneworld/hypotheses.js';
import { resolveOptions } from '../src/data/sceneworld/options.js';
import { COLOUR_RGB, OCCLUDER_RGB, renderScene } from '../src/data/sceneworld/render.js';
import { COLOURS, GRID_SIZE, SHAPES, SIZES, type Cell, type Colour, type Scene, type Shape, type Size } from '../src/data/sceneworld/scene.js';
import { WordTokenizer } from '../src/data/tokenizer.js';

const TRAIN = { split: 'train', seed: 7 } as const;

// ---------------------------------------------------------------------------------------
// An independent checker: parse the hypothesis sentence, then decide it by brute force
// over every way the occluded cells could be filled (empty, or any object).

interface WorldObject {
  shape: Shape;
  colour: Colour;
  size: Size;
  cell: Cell;
  visible: boolean;
}
type Statement = (world: WorldObject[]) => boolean;
type Noun = Partial<Pick<WorldObject, 'shape' | 'colour' | 'size'>>;

const SINGULAR: Record<string, Shape> = Object.fromEntries(
  SHAPES.flatMap((shape) => [
    [shape, shape],
    [shape === 'cross' ? 'crosses' : `${shape}s`, shape],
  ]),
);

function parseNoun(words: string[]): Noun {
  const noun: Noun = {};
  for (const word of words) {
    if ((SIZES as readonly string[]).includes(word)) noun.size = word as Size;
    else if ((COLOURS as readonly string[]).includes(word)) noun.colour = word as Colour;
    else if (SINGULAR[word]) noun.shape = SINGULAR[word];
    else assert.ok(word === 'shape' || word === 'shapes', `unexpected word ${word}`);
  }
  return noun;
}

const isA = (object: WorldObject, noun: Noun): boolean =>
  (noun.shape ?? object.shape) === object.shape &&
  (noun.colour ?? object.colour) === object.colour &&
  (noun.size ?? object.size) === object.size;
const count = (world: WorldObject[], noun: Noun): number => world.filter((object) => isA(object, noun)).length;

/** "the X": the single visible X, else the single X anywhere, else nothing (the statement is then false). */
function theOne(world: WorldObject[], noun: Noun): WorldObject | undefined {
  const visible = world.filter((object) => object.visible && isA(object, noun));
  const candidates = visible.length > 0 ? visible : world.filter((object) => isA(object, noun));
  return candidates.length === 1 ? candidates[0] : undefined;
}

const NUMBERS = ['one', 'two', 'three', 'four', 'five', 'six'];

function parseHypothesis(text: string): Statement {
  const words = text.split(' ');
  let match: RegExpMatchArray | null;
  if ((match = text.match(/^there is no (.+)$/))) {
    const noun = parseNoun(match[1]!.split(' '));
    return (world) => count(world, noun) === 0;
  }
  if ((match = text.match(/^there is a (.+)$/))) {
    const noun = parseNoun(match[1]!.split(' '));
    return (world) => count(world, noun) > 0;
  }
  if ((match = text.match(/^there are more (.+) than (.+)$/))) {
    const [more, than] = [parseNoun(match[1]!.split(' ')), parseNoun(match[2]!.split(' '))];
    return (world) => count(world, more) > count(world, than);
  }
  if ((match = text.match(/^there (?:is|are) (\w+) (.+)$/))) {
    const expected = NUMBERS.indexOf(match[1]!) + 1;
    assert.ok(expected > 0, text);
    const noun = parseNoun(match[2]!.split(' '));
    return (world) => count(world, noun) === expected;
  }
  if ((match = text.match(/^all (\w+) are (\w+)$/))) {
    const [subject, property] = [parseNoun([match[1]!]), parseNoun([match[2]!])];
    return (world) => world.every((object) => !isA(object, subject) || isA(object, property));
  }
  if ((match = text.match(/^the (\w+) is (\w+)$/))) {
    const [subject, property] = [parseNoun([match[1]!]), parseNoun([match[2]!])];
    return (world) => {
      const referent = theOne(world, subject);
      return referent !== undefined && isA(referent, property);
    };
  }
  if ((match = text.match(/^the (\w+ \w+) is (left of|right of|above|below) the (\w+ \w+)$/))) {
    const [subject, object] = [parseNoun(match[1]!.split(' ')), parseNoun(match[3]!.split(' '))];
    const relation = match[2]!;
    return (world) => {
      const [a, b] = [theOne(world, subject), theOne(world, object)];
      if (!a || !b) return false;
      if (relation === 'left of') return a.cell.column < b.cell.column;
      if (relation === 'right of') return a.cell.column > b.cell.column;
      if (relation === 'above') return a.cell.row < b.cell.row;
      return a.cell.row > b.cell.row;
    };
  }
  assert.fail(`cannot parse hypothesis "${text}" (${words.length} words)`);
}

const ANY_OBJECT = SHAPES.flatMap((shape) => COLOURS.flatMap((colour) => SIZES.map((size) => ({ shape, colour, size }))));

function bruteForceLabel(text: string, scene: Scene): string {
  const statement = parseHypothesis(text);
  const visible: WorldObject[] = scene.objects.map((object) => ({ ...object, visible: true }));
  let canBeTrue = false;
  let canBeFalse = false;
  const fill = (cells: Cell[], world: WorldObject[]): void => {
    if (canBeTrue && canBeFalse) return;
    if (cells.length === 0) {
      if (statement(world)) canBeTrue = true;
      else canBeFalse = true;
      return;
    }
    const [cell, ...rest] = cells as [Cell, ...Cell[]];
    fill(rest, world);
    for (const object of ANY_OBJECT) fill(rest, [...world, { ...object, cell, visible: false }]);
  };
  fill(scene.occluder?.cells ?? [], visible);
  return canBeTrue && canBeFalse ? 'maybe' : canBeTrue ? 'yes' : 'no';
}

// ---------------------------------------------------------------------------------------
// Hand-made scenes.

function object(shape: Shape, colour: Colour, size: Size, row: number, column: number): Scene['objects'][number] {
  return { shape, colour, size, cell: { row, column }, x: (column + 0.5) / GRID_SIZE, y: (row + 0.5) / GRID_SIZE };
}
function scene(objects: Scene['objects'], occludedCells: [number, number][] = []): Scene {
  return {
    objects,
    occluder: occludedCells.length > 0 ? { cells: occludedCells.map(([row, column]) => ({ row, column })) } : null,
    background: { rgb: [50, 50, 55], gradientAngle: 0.3, gradientAmplitude: 8, noiseSeed: 1 },
  };
}

// . = empty, # = occluded.   row 0: small red circle . large blue square
//                            row 1: small green triangle # #
//                            row 2: . large red circle .
const objects = [
  object('circle', 'red', 'small', 0, 0),
  object('square', 'blue', 'large', 0, 2),
  object('triangle', 'green', 'small', 1, 0),
  object('circle', 'red', 'large', 2, 1),
];
const open = scene(objects);
const occluded = scene(objects, [
  [1, 1],
  [1, 2],
]);
const lonely = scene([object('circle', 'red', 'small', 0, 0)], [[1, 1]]);

const red = { colour: 'red' } as const;
/** [hypothesis, label without occluder, label with the two-cell occluder] */
const HAND_MADE: [Hypothesis, string, string][] = [
  [{ family: 'existence', target: { shape: 'circle', colour: 'red' } }, 'yes', 'yes'],
  [{ family: 'existence', target: { shape: 'circle', colour: 'red', size: 'small' } }, 'yes', 'yes'],
  [{ family: 'existence', target: { shape: 'square', size: 'small' } }, 'no', 'maybe'],
  [{ family: 'negation', target: { shape: 'star', colour: 'green' } }, 'yes', 'maybe'],
  [{ family: 'negation', target: { shape: 'triangle' } }, 'no', 'no'],
  [{ family: 'attribute', shape: 'square', property: { colour: 'blue' } }, 'yes', 'yes'],
  [{ family: 'attribute', shape: 'square', property: { size: 'small' } }, 'no', 'no'],
  [{ family: 'attribute', shape: 'star', property: { colour: 'green' } }, 'no', 'maybe'],
  [{ family: 'counting', target: { shape: 'circle', ...red }, count: 2 }, 'yes', 'maybe'],
  [{ family: 'counting', target: { shape: 'circle', ...red }, count: 1 }, 'no', 'no'],
  [{ family: 'counting', target: { shape: 'circle', ...red }, count: 4 }, 'no', 'maybe'],
  [{ family: 'counting', target: { shape: 'circle', ...red }, count: 5 }, 'no', 'no'],
  [{ family: 'spatial', subject: { shape: 'triangle', colour: 'green' }, relation: 'left of', object: { shape: 'square', colour: 'blue' } }, 'yes', 'yes'],
  [{ family: 'spatial', subject: { shape: 'triangle', colour: 'green' }, relation: 'above', object: { shape: 'square', colour: 'blue' } }, 'no', 'no'],
  [{ family: 'spatial', subject: { shape: 'square', colour: 'blue' }, relation: 'above', object: { shape: 'triangle', colour: 'green' } }, 'yes', 'yes'],
  // The yellow star can only hide in row 1, columns 1–2: right of column 0, never left of column 2.
  [{ family: 'spatial', subject: { shape: 'triangle', colour: 'green' }, relation: 'left of', object: { shape: 'star', colour: 'yellow' } }, 'no', 'maybe'],
  [{ family: 'spatial', subject: { shape: 'square', colour: 'blue' }, relation: 'left of', object: { shape: 'star', colour: 'yellow' } }, 'no', 'no'],
  [{ family: 'spatial', subject: { shape: 'square', colour: 'blue' }, relation: 'above', object: { shape: 'star', colour: 'yellow' } }, 'no', 'maybe'],
  [{ family: 'comparison', quantifier: 'more', more: { shape: 'circle' }, than: { shape: 'square' } }, 'yes', 'maybe'],
  [{ family: 'comparison', quantifier: 'more', more: { shape: 'square' }, than: { shape: 'circle' } }, 'no', 'maybe'],
  [{ family: 'comparison', quantifier: 'more', more: { colour: 'yellow' }, than: { colour: 'red' } }, 'no', 'no'],
  [{ family: 'comparison', quantifier: 'all', shape: 'circle', property: red }, 'yes', 'maybe'],
  [{ family: 'comparison', quantifier: 'all', shape: 'circle', property: { size: 'large' } }, 'no', 'no'],
];

describe('SceneWorld entailment labels', () => {
  for (const [hypothesis, openLabel, occludedLabel] of HAND_MADE) {
    const text = hypothesisText(hypothesis);
    it(`"${text}": ${openLabel} in the open scene, ${occludedLabel} with the occluder`, () => {
      assert.equal(entailmentLabel(hypothesis, open), openLabel);
      assert.equal(entailmentLabel(hypothesis, occluded), occludedLabel);
      assert.equal(bruteForceLabel(text, open), openLabel);
      assert.equal(bruteForceLabel(text, occluded), occludedLabel);
    });
  }

  it('knows a one-cell occluder hides at most one object', () => {
    const twoHidden: Hypothesis = { family: 'spatial', subject: { shape: 'star', colour: 'yellow' }, relation: 'left of', object: { shape: 'cross', colour: 'green' } };
    const oneHidden: Hypothesis = { family: 'spatial', subject: { shape: 'circle', colour: 'red' }, relation: 'left of', object: { shape: 'cross', colour: 'green' } };
    const cases: [Hypothesis, string][] = [
      [twoHidden, 'no'],
      [oneHidden, 'maybe'],
      [{ family: 'counting', target: { shape: 'circle' }, count: 2 }, 'maybe'],
      [{ family: 'counting', target: { shape: 'circle' }, count: 3 }, 'no'],
      [{ family: 'comparison', quantifier: 'more', more: { shape: 'square' }, than: { shape: 'circle' } }, 'no'],
    ];
    for (const [hypothesis, expected] of cases) {
      assert.equal(entailmentLabel(hypothesis, lonely), expected, hypothesisText(hypothesis));
      assert.equal(bruteForceLabel(hypothesisText(hypothesis), lonely), expected, hypothesisText(hypothesis));
    }
  });

  it('labels generated examples as the brute-force checker does', () => {
    const options = resolveOptions(TRAIN);
    for (let index = 0; index < 1000; index++) {
      const { scene, hypothesis, label } = drawVeExample(index, options);
      assert.equal(bruteForceLabel(hypothesisText(hypothesis), scene), label, `example ${index}: ${hypothesisText(hypothesis)}`);
    }
  });
});

describe('SceneWorld visual entailment examples', () => {
  const examples = [...veExamples(3000, TRAIN)];

  it('balances labels and families by construction', () => {
    const share = (key: (e: (typeof examples)[number]) => string, value: string): number =>
      examples.filter((example) => key(example) === value).length / examples.length;
    for (const label of ['yes', 'no', 'maybe']) assert.ok(Math.abs(share((e) => e.label, label) - 1 / 3) < 0.03, label);
    for (const family of ['existence', 'attribute', 'counting', 'spatial', 'comparison', 'negation']) {
      assert.ok(Math.abs(share((e) => e.family, family) - 1 / 6) < 0.03, family);
    }
    assert.ok(examples.every((example) => example.label !== 'maybe' || example.occluded), 'maybe needs an occluder');
    assert.ok(share((e) => String(e.occluded && e.label !== 'maybe'), 'true') > 0.15, 'occluders also appear in yes/no examples');
  });

  it('uses short hypotheses made of the vocabulary, and scenes of 1–6 visible objects', () => {
    const tokenizer = sceneWorldTokenizer();
    for (const example of examples) {
      assert.ok(example.hypothesis.split(' ').length <= 12, example.hypothesis);
      assert.ok(!tokenizer.encode(example.hypothesis).includes(tokenizer.unkId), example.hypothesis);
      assert.ok(example.objectCount >= 1 && example.objectCount <= 6);
    }
    const objectCounts = new Set(examples.map((example) => example.objectCount));
    assert.equal(objectCounts.size, 6);
  });

  it('is a deterministic function of (index, options)', () => {
    const again = veExample(1234, TRAIN);
    assert.deepEqual(again, examples[1234]);
    assert.notEqual(veExample(1234, { ...TRAIN, seed: 8 }).sceneId, again.sceneId);
    const large = veExample(1234, { ...TRAIN, imageSize: 96 });
    assert.equal(large.image.pixels.length, 96 * 96 * 3);
    assert.deepEqual({ ...large, image: null }, { ...again, image: null }, 'image size does not change the scene');
  });

  it('never shares a scene between splits', () => {
    const splits: Split[] = ['train', 'validation', 'test'];
    const seen = new Map<string, Split>();
    for (const split of splits) {
      const options = resolveOptions({ split, seed: 7 });
      for (let index = 0; index < 3000; index++) {
        for (const { sceneId } of [drawCaptionScene(index, options), ...(index < 500 ? [drawVeExample(index, options)] : [])]) {
          assert.equal(seen.get(sceneId), undefined, `scene ${sceneId} of ${split} already in ${seen.get(sceneId)}`);
          seen.set(sceneId, split);
        }
      }
    }
  });

  it('rejects bad options with clear messages', () => {
    assert.throws(() => veExample(0, { split: 'dev' as Split, seed: 1 }), /split must be one of train, validation, test/);
    assert.throws(() => veExample(0, { ...TRAIN, seed: 1.5 }), /seed must be an integer/);
    assert.throws(() => veExample(0, { ...TRAIN, imageSize: 8 }), /image size must be an integer of at least 32/);
    assert.throws(() => veExample(0, { ...TRAIN, occluderProbability: 2 }), /occluder probability/);
    assert.throws(() => veExample(-1, TRAIN), /non-negative integer/);
  });
});

describe('SceneWorld captions', () => {
  const options = resolveOptions(TRAIN);

  it('gives every image at least five different short captions of the visible scene', () => {
    const tokenizer = sceneWorldTokenizer();
    for (let index = 0; index < 1500; index++) {
      const { scene } = drawCaptionScene(index, options);
      const captions = sceneCaptions(scene);
      assert.ok(new Set(captions).size >= 5, captions.join(' | '));
      const visibleWords = new Set(scene.objects.flatMap((o) => [o.colour, o.shape, o.shape === 'cross' ? 'crosses' : `${o.shape}s`]));
      for (const caption of captions) {
        const words = caption.split(' ');
        assert.ok(words.length <= 20, caption);
        assert.ok(!tokenizer.encode(caption).includes(tokenizer.unkId), caption);
        assert.equal(caption.includes('grey block'), scene.occluder !== null, caption);
        for (const word of words) {
          const namesSomething = (COLOURS as readonly string[]).includes(word) || Object.hasOwn(SINGULAR, word);
          assert.ok(!namesSomething || visibleWords.has(word), `"${word}" is not visible: ${caption}`);
        }
      }
    }
  });

  it('describes a hand-made scene', () => {
    assert.deepEqual(sceneCaptions(occluded), [
      'a small red circle a large blue square a small green triangle a large red circle and a grey block',
      'there are two red circles a green triangle and a blue square next to a grey block',
      'four shapes on a dark background with a grey block',
      'a picture with two circles a square a triangle and a grey block',
      'a small red circle left of a large blue square and two other shapes near a grey block',
      'the image shows a blue square two red circles a green triangle and a grey block', // 20 words with sizes: too long
    ]);
  });

  it('is deterministic and matches captionExamples', () => {
    const [first] = captionExamples(1, TRAIN);
    assert.deepEqual(captionExample(0, TRAIN), first);
  });
});

describe('SceneWorld images', () => {
  const pixel = (image: { width: number; pixels: Uint8Array }, x: number, y: number): number[] =>
    Array.from(image.pixels.subarray((y * image.width + x) * 3, (y * image.width + x) * 3 + 3));

  it('paints objects in their colours, the occluder grey and a gently textured background', () => {
    const image = renderScene(occluded, 64);
    assert.equal(image.pixels.length, 64 * 64 * 3);
    assert.deepEqual(pixel(image, 10, 10), [...COLOUR_RGB.red]); // small red circle, cell (0, 0)
    assert.deepEqual(pixel(image, 53, 10), [...COLOUR_RGB.blue]); // large blue square, cell (0, 2)
    assert.deepEqual(pixel(image, 42, 32), [...OCCLUDER_RGB]); // occluder over cells (1, 1) and (1, 2)
    const background = [pixel(image, 32, 2), pixel(image, 2, 60), pixel(image, 60, 60)].flat();
    assert.ok(background.every((value) => value > 25 && value < 80), `background ${background}`);
    assert.ok(new Set(background).size > 1, 'background is textured');
  });

  it('round-trips through PNG', () => {
    const { image } = veExample(3, TRAIN);
    const png = encodePng(image);
    assert.deepEqual(png.subarray(1, 4).toString(), 'PNG');
    assert.deepEqual(decodePng(png), image);
  });
});

describe('SceneWorld vocabulary', () => {
  it('is small, duplicate-free and covers the prompt and the answers', () => {
    const vocabulary = sceneWorldVocabulary();
    assert.ok(vocabulary.length < 100, `${vocabulary.length} words`);
    assert.equal(new Set(vocabulary).size, vocabulary.length);
    const tokenizer = sceneWorldTokenizer();
    assert.equal(tokenizer.vocabSize, vocabulary.length + 4);
    // The official prompt ' what does the image describe?': the word tokenizer keeps its five words.
    assert.equal(tokenizer.decode(tokenizer.encode(CAPTION_PROMPT)), 'what does the image describe');
    assert.equal(tokenizer.encode(CAPTION_PROMPT).includes(tokenizer.unkId), false);
    assert.deepEqual(tokenizer.encode('yes no maybe').includes(tokenizer.unkId), false);
  });
});

describe('mue data generate', () => {
  const run = async (args: string[]): Promise<void> => {
    const program = new Command().exitOverride();
    registerDataCommand(program);
    await program.parseAsync(['data', 'generate', ...args], { from: 'user' });
  };

  it('writes PNG images, a JSONL file and tokenizer.json', async (t) => {
    const out = await mkdtemp(join(tmpdir(), 'mue-data-'));
    t.after(() => rm(out, { recursive: true, force: true }));
    t.mock.method(console, 'log', () => {});
    await run(['--task', 've', '--count', '3', '--seed', '7', '--split', 'train', '--out', out, '--image-size', '48']);
    const lines = (await readFile(join(out, 've-train.jsonl'), 'utf8')).trim().split('\n');
    assert.equal(lines.length, 3);
    const first = JSON.parse(lines[0]!) as Record<string, unknown>;
    const expected = veExample(0, { ...TRAIN, imageSize: 48 });
    assert.deepEqual(first, { ...expected, image: 'images/ve-train-0.png' });
    assert.deepEqual(decodePng(await readFile(join(out, first.image as string))), expected.image);
    assert.equal((await readdir(join(out, 'images'))).length, 3);
    const tokenizer = WordTokenizer.fromJSON(JSON.parse(await readFile(join(out, 'tokenizer.json'), 'utf8')));
    assert.deepEqual(tokenizer.toJSON(), sceneWorldTokenizer().toJSON());

    await run(['--task', 'caption', '--count', '2', '--seed', '7', '--split', 'test', '--out', out]);
    const references = JSON.parse(await readFile(join(out, 'caption-test-references.json'), 'utf8')) as Record<string, string[]>;
    assert.deepEqual(references['caption-test-1'], captionExample(1, { split: 'test', seed: 7 }).captions);
  });

  it('explains bad option values', async () => {
    const base = { '--task': 've', '--count': '3', '--seed': '7', '--split': 'train', '--out': tmpdir() };
    const attempt = (overrides: Record<string, string>): Promise<void> =>
      run(Object.entries({ ...base, ...overrides }).flat());
    await assert.rejects(attempt({ '--task': 'vqa' }), /--task must be one of ve, caption, got "vqa"/);
    await assert.rejects(attempt({ '--count': '0' }), /--count must be an integer from 1/);
    await assert.rejects(attempt({ '--count': '2.5' }), /--count must be an integer/);
    await assert.rejects(attempt({ '--seed': 'abc' }), /--seed must be an integer/);
    await assert.rejects(attempt({ '--split': 'dev' }), /--split must be one of train, validation, test/);
    await assert.rejects(attempt({ '--image-size': '16' }), /--image-size must be an integer from 32 to 1024/);
  });
});
