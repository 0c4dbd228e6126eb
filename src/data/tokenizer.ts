// A word-level tokenizer that reads and writes the Hugging Face `tokenizer.json` format
// (WordLevel model), so exported models can be served with the `tokenizers` library.
// TextTokenizer is what training, the runtime and evaluation need from any tokenizer; the
// BPE / WordPiece implementation for real text is in hfTokenizer.ts.

/** Text <-> ids, the four special ids and the Hugging Face tokenizer.json it is saved as. */
export interface TextTokenizer {
  readonly padId: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly unkId: number;
  readonly vocabSize: number;
  /** Ids of the text, without <bos>/<eos>. */
  encode(text: string): number[];
  /** Text of the ids up to the first <eos>, special tokens left out. */
  decode(ids: number[]): string;
  /** Id of one vocabulary token; <unk> when it is not in the vocabulary. */
  idOf(token: string): number;
  /** The tokenizer.json object a checkpoint stores. */
  toJSON(): object;
}

/**
 * Punctuation marks. A mark that is itself a vocabulary word (the VE template's `"` and `?`)
 * becomes its own token wherever it stands; the others carry no meaning here and are dropped.
 * Vocabularies without marks (the first SceneWorld models) tokenise their text as they always
 * did; only a `"`, which used to stay glued to its word (making it <unk>), is now dropped for them.
 */
const PUNCTUATION_MARKS = ['.', ',', '?', '!', '"'] as const;
const isPunctuationMark = (word: string): boolean => (PUNCTUATION_MARKS as readonly string[]).includes(word);
/** A regex character class of the given marks, e.g. [.,?!] (none of the marks needs escaping inside one). */
const characterClass = (marks: readonly string[]): string => `[${marks.join('')}]`;

export class WordTokenizer implements TextTokenizer {
  static readonly PAD = '<pad>';
  static readonly BOS = '<bos>';
  static readonly EOS = '<eos>';
  static readonly UNK = '<unk>';
  static readonly SPECIALS = [WordTokenizer.PAD, WordTokenizer.BOS, WordTokenizer.EOS, WordTokenizer.UNK] as const;

  readonly padId: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly unkId: number;
  readonly vocabSize: number;

  private readonly ids: ReadonlyMap<string, number>;
  private readonly words: readonly string[];
  /** Punctuation marks in the vocabulary (kept as tokens) and the rest (dropped). */
  private readonly keptMarks: readonly string[];
  private readonly droppedMarks: readonly string[];

  /** `words[id]` is the token with that id; the four special tokens must be among them. */
  private constructor(words: readonly string[]) {
    this.words = words;
    this.ids = new Map(words.map((word, id) => [word, id]));
    const idOfSpecial = (token: string): number => {
      const id = this.ids.get(token);
      if (id === undefined) throw new Error(`tokenizer vocabulary lacks the special token ${token}`);
      return id;
    };
    this.padId = idOfSpecial(WordTokenizer.PAD);
    this.bosId = idOfSpecial(WordTokenizer.BOS);
    this.eosId = idOfSpecial(WordTokenizer.EOS);
    this.unkId = idOfSpecial(WordTokenizer.UNK);
    this.vocabSize = words.length;
    this.keptMarks = PUNCTUATION_MARKS.filter((mark) => this.ids.has(mark));
    this.droppedMarks = PUNCTUATION_MARKS.filter((mark) => !this.ids.has(mark));
  }

  /** Specials get ids 0..3, then the words in the given order (duplicates and specials skipped). */
  static fromWords(words: string[]): WordTokenizer {
    const unique = new Set<string>(WordTokenizer.SPECIALS);
    for (const word of words) {
      const valid = isPunctuationMark(word)
        || (word.length > 0 && word === word.toLowerCase() && !/\s/.test(word) && !new RegExp(characterClass(PUNCTUATION_MARKS)).test(word));
      if (!valid) throw new Error(`tokenizer word ${JSON.stringify(word)} must be non-empty, lower-case, without spaces or . , ? ! " (or be one such mark alone)`);
      unique.add(word);
    }
    return new WordTokenizer([...unique]);
  }

  /** Read a Hugging Face tokenizer.json with a WordLevel model whose ids are 0..n-1. */
  static fromJSON(json: unknown): WordTokenizer {
    const fail = (problem: string): never => {
      throw new Error(`not a Hugging Face WordLevel tokenizer.json: ${problem}`);
    };
    if (typeof json !== 'object' || json === null) return fail('expected a JSON object');
    const model = (json as { model?: unknown }).model;
    if (typeof model !== 'object' || model === null) return fail('missing "model" object');
    const { type, vocab } = model as { type?: unknown; vocab?: unknown };
    if (type !== 'WordLevel') return fail(`model.type is ${JSON.stringify(type)}, expected "WordLevel"`);
    if (typeof vocab !== 'object' || vocab === null || Array.isArray(vocab)) return fail('model.vocab must map words to ids');
    const entries = Object.entries(vocab as Record<string, unknown>);
    const words: string[] = new Array(entries.length);
    for (const [word, id] of entries) {
      if (!Number.isInteger(id) || (id as number) < 0 || (id as number) >= entries.length || words[id as number] !== undefined) {
        return fail(`model.vocab ids must be the distinct integers 0..${entries.length - 1} (bad id for ${JSON.stringify(word)})`);
      }
      words[id as number] = word;
    }
    return new WordTokenizer(words);
  }

  /** A Hugging Face tokenizer.json whose normalizer and pre-tokenizer reproduce `encode`. */
  toJSON(): object {
    return {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: WordTokenizer.SPECIALS.map((token) => ({
        id: this.idOf(token),
        content: token,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: true,
      })),
      normalizer: {
        type: 'Sequence',
        normalizers: [
          { type: 'Lowercase' },
          ...(this.droppedMarks.length > 0 ? [{ type: 'Replace', pattern: { Regex: characterClass(this.droppedMarks) }, content: ' ' }] : []),
        ],
      },
      pre_tokenizer: this.keptMarks.length === 0
        ? { type: 'WhitespaceSplit' }
        : {
          type: 'Sequence',
          pretokenizers: [
            { type: 'WhitespaceSplit' },
            { type: 'Split', pattern: { Regex: characterClass(this.keptMarks) }, behavior: 'Isolated', invert: false },
          ],
        },
      post_processor: null,
      decoder: null,
      model: { type: 'WordLevel', vocab: Object.fromEntries(this.ids), unk_token: WordTokenizer.UNK },
    };
  }

  /** Lower-case, drop the marks outside the vocabulary, isolate those in it, split on whitespace; unknown words become <unk>. No <bos>/<eos> are added. */
  encode(text: string): number[] {
    let normalised = text.toLowerCase();
    if (this.droppedMarks.length > 0) normalised = normalised.replace(new RegExp(characterClass(this.droppedMarks), 'g'), ' ');
    if (this.keptMarks.length > 0) normalised = normalised.replace(new RegExp(characterClass(this.keptMarks), 'g'), ' $& ');
    return normalised
      .split(/\s+/)
      .filter((word) => word.length > 0)
      .map((word) => this.idOf(word));
  }

  /** Words up to the first <eos>, without <pad> and <bos>, joined by single spaces. */
  decode(ids: number[]): string {
    const words: string[] = [];
    for (const id of ids) {
      if (id === this.eosId) break;
      if (id === this.padId || id === this.bosId) continue;
      const word = this.words[id];
      if (word === undefined) throw new RangeError(`token id ${id} is outside the vocabulary (size ${this.vocabSize})`);
      words.push(word);
    }
    return words.join(' ');
  }

  idOf(word: string): number {
    return this.ids.get(word) ?? this.unkId;
  }
}
