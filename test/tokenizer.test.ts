import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

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

  it('rejects words that encode could never produce', () => {
    assert.throws(() => WordTokenizer.fromWords(['Red']), /lower-case/);
    assert.throws(() => WordTokenizer.fromWords(['red circle']), /without spaces/);
    assert.throws(() => WordTokenizer.fromWords(['circle.']), /without spaces or/);
    assert.throws(() => WordTokenizer.fromWords(['']), /non-empty/);
  });
});
