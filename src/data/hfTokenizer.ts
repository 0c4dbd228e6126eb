// Real-text tokenizers (BPE, WordPiece, Unigram…) from any Hugging Face tokenizer.json, through
// @huggingface/tokenizers (a pure-JS reader of that format), behind the TextTokenizer interface.
import { Tokenizer } from '@huggingface/tokenizers';
import { type TextTokenizer, WordTokenizer } from './tokenizer.js';

/** Spellings of the special tokens in common vocabularies: mue/SceneWorld, BART/RoBERTa/OFA BPE, BERT WordPiece. */
const SPECIAL_SPELLINGS = {
  pad: ['<pad>', '[PAD]'],
  bos: ['<bos>', '<s>', '[CLS]'],
  eos: ['<eos>', '</s>', '[SEP]'],
  unk: ['<unk>', '[UNK]'],
} as const;

export class HuggingFaceTokenizer implements TextTokenizer {
  readonly padId: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly unkId: number;
  readonly vocabSize: number;
  private readonly tokenizer: Tokenizer;

  constructor(private readonly json: object) {
    try {
      this.tokenizer = new Tokenizer(json, {});
    } catch (error) {
      throw new Error(`tokenizer.json cannot be read by @huggingface/tokenizers: ${(error as Error).message}`);
    }
    const special = (kind: keyof typeof SPECIAL_SPELLINGS): number => {
      for (const spelling of SPECIAL_SPELLINGS[kind]) {
        const id = this.tokenizer.token_to_id(spelling);
        if (id !== undefined) return id;
      }
      throw new Error(`tokenizer.json has no ${kind} token (looked for ${SPECIAL_SPELLINGS[kind].join(', ')})`);
    };
    this.padId = special('pad');
    this.bosId = special('bos');
    this.eosId = special('eos');
    this.unkId = special('unk');
    // Ids need not be dense, so the embedding table must reach the largest one.
    let largestId = -1; // a loop, not Math.max(...ids): spreading 130k+ ids overflows the call stack
    for (const id of this.tokenizer.get_vocab(true).values()) if (id > largestId) largestId = id;
    this.vocabSize = largestId + 1;
  }

  encode(text: string): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: false }).ids;
  }

  decode(ids: number[]): string {
    const end = ids.indexOf(this.eosId);
    const kept = end === -1 ? ids : ids.slice(0, end);
    const outside = kept.find((id) => !Number.isInteger(id) || id < 0 || id >= this.vocabSize);
    if (outside !== undefined) throw new RangeError(`token id ${outside} is outside the vocabulary (size ${this.vocabSize})`);
    return this.tokenizer.decode(kept, { skip_special_tokens: true }).trim();
  }

  idOf(token: string): number {
    return this.tokenizer.token_to_id(token) ?? this.unkId;
  }

  toJSON(): object {
    return this.json;
  }
}

/** The tokenizer a tokenizer.json describes: mue's own WordLevel format exactly, anything else through the library. */
export function tokenizerFromJSON(json: unknown): TextTokenizer {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error('tokenizer.json must hold a JSON object');
  const model = (json as { model?: { type?: unknown } }).model;
  return model?.type === 'WordLevel' ? WordTokenizer.fromJSON(json) : new HuggingFaceTokenizer(json);
}
