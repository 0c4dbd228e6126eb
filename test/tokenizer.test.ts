import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { HuggingFaceTokenizer, tokenizerFromJSON } from '../src/data/hfTokenizer.js';
import { WordTokenizer } from '../src/data/tokenizer.js';

describe('WordTokenizer', () => {
  const tokenizer = WordTokenizer.fromWords(['there', 'is', 'a', 'red', 'circle', 'red', 'yes']);

  it('gives the specials ids 0..3 and then the words in order, without duplicates', () => {
    assert.deepEqual([tokenizer.padId, tokenizer.bosId, tokenizer.eosId, tokenizer.unkId], [0, 1, 2, 3]);
    assert.equal(tokenizer.idOf(WordTokenizer.PAD), 0);
    assert.equal(tokenizer.idOf(WordTokenizer.UNK), 3);
    assert.deepEqual(['there', 'is', 'a', 'red', 'circle', 'yes'].map((word) => tokenizer.idOf(word)), [4, 5, 6, 7, 8, 9]);
    assert.equal(tokenizer.vocabSize, 10);
  });

  it('encodes lower-cased words without punctuation, unknown words as <unk>, and no bos/eos', () => {
    assert.deepEqual(tokenizer.encode('There is a RED circle.'), [4, 5, 6, 7, 8]);
    assert.deepEqual(tokenizer.encode('  is a,circle ?  yes!'), [5, 6, 8, 9]);
    assert.deepEqual(tokenizer.encode('there is a blue star'), [4, 5, 6, 3, 3]);
    assert.deepEqual(tokenizer.encode(' . '), []);
    assert.equal(tokenizer.idOf('blue'), tokenizer.unkId);
  });

  it('decodes up to the first <eos>, skipping <pad> and <bos>', () => {
    assert.equal(tokenizer.decode([1, 4, 5, 0, 6, 7, 8, 2, 9, 9]), 'there is a red circle');
    assert.equal(tokenizer.decode([3, 8]), '<unk> circle');
    assert.equal(tokenizer.decode([]), '');
    assert.throws(() => tokenizer.decode([4, 99]), /outside the vocabulary/);
  });

  it('round-trips through a Hugging Face tokenizer.json', () => {
    const json = JSON.parse(JSON.stringify(tokenizer.toJSON())) as Record<string, unknown>;
    assert.equal(json.version, '1.0');
    assert.deepEqual(json.model, {
      type: 'WordLevel',
      vocab: { '<pad>': 0, '<bos>': 1, '<eos>': 2, '<unk>': 3, there: 4, is: 5, a: 6, red: 7, circle: 8, yes: 9 },
      unk_token: '<unk>',
    });
    assert.deepEqual(
      (json.added_tokens as { id: number; content: string; special: boolean }[]).map(({ id, content, special }) => [id, content, special]),
      [
        [0, '<pad>', true],
        [1, '<bos>', true],
        [2, '<eos>', true],
        [3, '<unk>', true],
      ],
    );
    for (const key of ['truncation', 'padding', 'post_processor', 'decoder']) assert.equal(json[key], null);
    assert.deepEqual(json.pre_tokenizer, { type: 'WhitespaceSplit' });
    const reread = WordTokenizer.fromJSON(json);
    assert.equal(reread.vocabSize, tokenizer.vocabSize);
    assert.deepEqual(reread.encode('there is a red circle, yes?'), tokenizer.encode('there is a red circle, yes?'));
    assert.deepEqual(reread.toJSON(), tokenizer.toJSON());
  });

  it('rejects JSON that is not a WordLevel tokenizer with clear messages', () => {
    assert.throws(() => WordTokenizer.fromJSON(null), /expected a JSON object/);
    assert.throws(() => WordTokenizer.fromJSON({}), /missing "model"/);
    assert.throws(() => WordTokenizer.fromJSON({ model: { type: 'BPE', vocab: {} } }), /model.type is "BPE", expected "WordLevel"/);
    assert.throws(() => WordTokenizer.fromJSON({ model: { type: 'WordLevel', vocab: [] } }), /model.vocab must map words to ids/);
    const gap = { '<pad>': 0, '<bos>': 1, '<eos>': 2, '<unk>': 3, red: 5 };
    assert.throws(() => WordTokenizer.fromJSON({ model: { type: 'WordLevel', vocab: gap } }), /distinct integers 0..4/);
    const noUnk = { '<pad>': 0, '<bos>': 1, '<eos>': 2, red: 3 };
    assert.throws(() => WordTokenizer.fromJSON({ model: { type: 'WordLevel', vocab: noUnk } }), /lacks the special token <unk>/);
  });

  it('keeps punctuation marks that are vocabulary words as their own tokens, and the Hugging Face library agrees', () => {
    const marked = WordTokenizer.fromWords(['does', 'the', 'image', 'describe', 'red', 'circle', '"', '?']);
    const [quote, question] = [marked.idOf('"'), marked.idOf('?')];
    // ` does the image describe " red circle "?` (the VE template): `"?` splits into two tokens; `.` and `!` are still dropped.
    assert.deepEqual(marked.encode(' does the image describe " Red circle. "?'), [4, 5, 6, 7, quote, 8, 9, quote, question]);
    assert.deepEqual(marked.encode('red!circle?'), [8, 9, question]);
    assert.equal(marked.decode(marked.encode('describe "red"?')), 'describe " red " ?');
    const library = new HuggingFaceTokenizer(marked.toJSON());
    for (const text of [' does the image describe " red circle "?', 'red!circle?', '"?"', 'the, image. describe!']) {
      assert.deepEqual(library.encode(text), marked.encode(text), text);
    }
    // Without marks in the vocabulary (the first shipped models) all of them are dropped, as before.
    assert.deepEqual(tokenizer.encode('"there" is a red circle?'), [4, 5, 6, 7, 8]);
    assert.deepEqual(new HuggingFaceTokenizer(tokenizer.toJSON()).encode('"there" is a red circle?'), [4, 5, 6, 7, 8]);
  });

  it('rejects words that encode could never produce', () => {
    assert.throws(() => WordTokenizer.fromWords(['Red']), /lower-case/);
    assert.throws(() => WordTokenizer.fromWords(['red circle']), /without spaces/);
    assert.throws(() => WordTokenizer.fromWords(['circle.']), /without spaces or/);
    assert.throws(() => WordTokenizer.fromWords(['"circle']), /without spaces or/);
    assert.throws(() => WordTokenizer.fromWords(['']), /non-empty/);
  });
});

describe('Hugging Face tokenizer.json (BPE, WordPiece) for real text', () => {
  const fixture = (name: string) => JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', 'tokenizers', name), 'utf8')) as object;

  it('WordPiece: BERT normalisation and ## continuation pieces give the fixture vocabulary\'s ids', () => {
    const tokenizer = tokenizerFromJSON(fixture('wordpiece.json'));
    assert.ok(tokenizer instanceof HuggingFaceTokenizer);
    // a=4 dog=5 runs=6 on=7 the=8 grass=9 ##es=10 .=15
    assert.deepEqual(tokenizer.encode('A dog RUNS on the grasses.'), [4, 5, 6, 7, 8, 9, 10, 15]);
    assert.deepEqual(tokenizer.encode('a cat'), [4, 1]);
    assert.deepEqual([tokenizer.padId, tokenizer.bosId, tokenizer.eosId, tokenizer.unkId, tokenizer.vocabSize], [0, 2, 3, 1, 21]);
    assert.equal(tokenizer.decode([2, 5, 9, 10, 3, 5]), 'dog grasses');
    assert.equal(tokenizer.idOf('maybe'), 13);
    assert.throws(() => tokenizer.decode([5, 99]), /outside the vocabulary/);
  });

  it('byte-level BPE: merges applied in rank order, Ġ marks a leading space', () => {
    const tokenizer = tokenizerFromJSON(fixture('bpe.json'));
    // a=4 Ġdog=11 Ġruns=27 Ġyes=17 Ġno=20
    assert.deepEqual(tokenizer.encode('a dog runs yes no'), [4, 11, 27, 17, 20]);
    assert.deepEqual([tokenizer.padId, tokenizer.bosId, tokenizer.eosId, tokenizer.unkId, tokenizer.vocabSize], [1, 0, 2, 3, 28]);
    assert.equal(tokenizer.decode([0, 4, 11, 26, 2, 4]), 'a dog run');
  });

  it('a checkpoint keeps whichever tokenizer.json it was saved with; bad tokenizer.json files are refused', async () => {
    const { saveCheckpoint, loadCheckpoint } = await import('../src/model/checkpoint.js');
    const { presetConfig } = await import('../src/model/config.js');
    const { initTensorflow } = await import('../src/model/backend.js');
    const { TfModel } = await import('../src/model/tfModel.js');
    const { fromVariables } = await import('../src/train/trainer.js');
    await initTensorflow();
    const tokenizer = tokenizerFromJSON(fixture('wordpiece.json'));
    const config = presetConfig('tiny', tokenizer.vocabSize, { imageSize: 16, patchSize: 8 });
    const model = TfModel.initialise(config, 1);
    const directory = join(mkdtempSync(join(tmpdir(), 'mue-hf-')), 'model');
    saveCheckpoint(directory, { task: 've', config, tokenizer, weights: fromVariables(model.weights) });
    model.dispose();
    const loaded = loadCheckpoint(directory).tokenizer;
    assert.ok(loaded instanceof HuggingFaceTokenizer);
    assert.deepEqual(loaded.encode('A dog RUNS on the grasses.'), [4, 5, 6, 7, 8, 9, 10, 15]);
    assert.throws(() => tokenizerFromJSON([]), /must hold a JSON object/);
    const noSpecials = { ...fixture('wordpiece.json'), added_tokens: [], model: { type: 'WordPiece', unk_token: '[UNK]', vocab: { '[UNK]': 0, a: 1 } } };
    assert.throws(() => tokenizerFromJSON(noSpecials), /has no pad token \(looked for <pad>, \[PAD\]\)/);
    rmSync(dirname(directory), { recursive: true, force: true });
  });
});
