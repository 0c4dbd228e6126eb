// OFA's text -> dictionary ids as one Hugging Face tokenizer.json. OFA runs two steps (GPT-2 byte-level
// BPE -> GPT-2 ids, then the fairseq dictionary maps each id's decimal string to its row); the
// tokenizer.json folds them into one BPE model whose vocabulary maps each GPT-2 piece straight to its
// dictionary row. Dictionary layout (OFA tasks/ofa_task.py): <s> <pad> </s> <unk>, the dict.txt lines
// in file order, <mask>, <code_0..C-1>, <bin_0..B-1>. Source files: ../shared/ofa/vocab/README.md.
import { readFileBounded } from './boundedRead.js';
import { join } from 'node:path';

export const OFA_BPE_FILES = { encoder: 'encoder.json', merges: 'vocab.bpe', dictionary: 'dict.txt' } as const;
const FAIRSEQ_SPECIALS = ['<s>', '<pad>', '</s>', '<unk>'] as const;
const UNK = '<unk>';

export interface OfaDictionarySizes {
  /** Rows of the checkpoint's token embedding. */
  vocabSize: number;
  /** Image-generation code symbols (`code_dict_size`, 8192 in the releases). */
  codeDictSize: number;
  /** Box-coordinate symbols (`num_bins`, 1000 in the releases). */
  numBins: number;
}

export interface OfaDictionaryLayout {
  /** dict.txt lines used (a longer file is cut to fit the checkpoint). */
  dictionaryLines: number;
  maskId: number;
  firstCodeId: number;
  firstBinId: number;
}

/** Where each symbol group starts for a checkpoint of this size; throws when the sizes cannot fit. */
export function ofaDictionaryLayout(sizes: OfaDictionarySizes, dictionaryFileLines: number): OfaDictionaryLayout {
  const { vocabSize, codeDictSize, numBins } = sizes;
  const specialCount = FAIRSEQ_SPECIALS.length + 1 + codeDictSize + numBins; // + <mask>
  const dictionaryLines = vocabSize - specialCount;
  if (dictionaryLines < 0) throw new Error(`the checkpoint's ${vocabSize} embedding rows cannot hold ${specialCount} special symbols (code_dict_size ${codeDictSize}, num_bins ${numBins})`);
  if (dictionaryFileLines < dictionaryLines) {
    throw new Error(`dict.txt has ${dictionaryFileLines} entries but the checkpoint's embedding (${vocabSize} rows, code_dict_size ${codeDictSize}, num_bins ${numBins}) needs ${dictionaryLines}: wrong --bpe-dir for this checkpoint`);
  }
  const maskId = FAIRSEQ_SPECIALS.length + dictionaryLines;
  return { dictionaryLines, maskId, firstCodeId: maskId + 1, firstBinId: maskId + 1 + codeDictSize };
}

/**
 * The tokenizer.json for a checkpoint: the BPE model's vocabulary holds only pieces that are in the
 * (possibly cut) dictionary, so a piece outside it becomes <unk> exactly as fairseq's encode_line does;
 * all 50,000 merges are kept so segmentation equals GPT-2's. <mask>, <code_i>, <bin_i> are special added
 * tokens: a literal "<bin_12>" in the text maps to that symbol, as OFA's encode_text(use_bpe=False) does.
 */
export function buildOfaTokenizerJson(bpeDir: string, sizes: OfaDictionarySizes): { json: object; layout: OfaDictionaryLayout } {
  const encoder = readEncoder(join(bpeDir, OFA_BPE_FILES.encoder));
  const merges = readMerges(join(bpeDir, OFA_BPE_FILES.merges));
  const symbols = readDictionarySymbols(join(bpeDir, OFA_BPE_FILES.dictionary));
  const layout = ofaDictionaryLayout(sizes, symbols.length);

  const pieceOfGpt2Id = new Map<number, string>();
  for (const [piece, id] of Object.entries(encoder)) pieceOfGpt2Id.set(id, piece);
  const vocab: Record<string, number> = {};
  FAIRSEQ_SPECIALS.forEach((symbol, id) => (vocab[symbol] = id));
  for (let line = 0; line < layout.dictionaryLines; line++) {
    const symbol = symbols[line]!;
    // A symbol is a GPT-2 id written in decimal; the three "madeupword" paddings are kept as they are.
    const piece = /^\d+$/.test(symbol) ? pieceOfGpt2Id.get(Number(symbol)) : symbol;
    if (piece === undefined) throw new Error(`dict.txt line ${line + 1} names GPT-2 id ${symbol}, which encoder.json lacks`);
    if (piece in vocab) throw new Error(`dict.txt line ${line + 1}: symbol ${symbol} appears twice`);
    vocab[piece] = FAIRSEQ_SPECIALS.length + line;
  }

  const added: [id: number, content: string][] = FAIRSEQ_SPECIALS.map((symbol, id) => [id, symbol]);
  added.push([layout.maskId, '<mask>']);
  for (let i = 0; i < sizes.codeDictSize; i++) added.push([layout.firstCodeId + i, `<code_${i}>`]);
  for (let i = 0; i < sizes.numBins; i++) added.push([layout.firstBinId + i, `<bin_${i}>`]);
  const byteLevel = { add_prefix_space: false, trim_offsets: true, use_regex: true };
  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added.map(([id, content]) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: null,
    // fairseq's GPT2BPE adds no prefix space: OFA's prompts start with their own " ".
    pre_tokenizer: { type: 'ByteLevel', ...byteLevel },
    post_processor: null,
    decoder: { type: 'ByteLevel', ...byteLevel },
    model: {
      type: 'BPE', dropout: null, unk_token: UNK, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, vocab, merges,
    },
  };
  return { json, layout };
}

/** OFA's BPE files are a few MB; anything near this is not one. */
const MAX_BPE_FILE_BYTES = 64 * 1024 * 1024;

function readText(path: string): string {
  try {
    return readFileBounded(path, MAX_BPE_FILE_BYTES).toString('utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (error as Error).message;
    throw new Error(`cannot read ${path}: ${reason} (--bpe-dir must hold OFA's ${Object.values(OFA_BPE_FILES).join(', ')})`);
  }
}

function readEncoder(path: string): Record<string, number> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readText(path));
  } catch (error) {
    if ((error as Error).message.startsWith('cannot read')) throw error;
    throw new Error(`${path} is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || !Object.values(parsed).every(Number.isInteger)) {
    throw new Error(`${path} must map GPT-2 pieces to integer ids`);
  }
  return parsed as Record<string, number>;
}

/** vocab.bpe: "#version: 0.2" then one "left right" merge per line, highest priority first. */
function readMerges(path: string): string[] {
  const lines = readText(path).split('\n');
  const merges: string[] = [];
  lines.forEach((line, index) => {
    if ((index === 0 && line.startsWith('#version')) || line.trim() === '') return;
    if (line.split(' ').length !== 2) throw new Error(`${path} line ${index + 1} is not a "left right" merge: ${JSON.stringify(line)}`);
    merges.push(line);
  });
  return merges;
}

/** dict.txt: "<symbol> <count>[ #fairseq:overwrite]" per line (fairseq Dictionary.add_from_file). */
function readDictionarySymbols(path: string): string[] {
  const lines = readText(path).split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines.map((line, index) => {
    const fields = line.trimEnd().split(' ');
    if (fields.at(-1) === '#fairseq:overwrite') fields.pop();
    if (fields.length < 2 || !/^\d+$/.test(fields.at(-1)!)) throw new Error(`${path} line ${index + 1} is not "<symbol> <count>": ${JSON.stringify(line)}`);
    return fields.slice(0, -1).join(' ');
  });
}
