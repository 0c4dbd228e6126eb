// Caption metrics computed the way the COCO caption evaluation code (pycocoevalcap:
// bleu_scorer.py, rouge.py, ciderD_scorer.py) computes them, including its numerical quirks,
// so that scores are comparable with published numbers.
//
// Captions must already be lower-cased and tokenized: tokens are separated by whitespace.
// An empty candidate caption is allowed: it contributes no n-grams, so its ROUGE-L and
// CIDEr-D are 0 and it adds nothing but (closest) reference length to the BLEU totals.
// Reference captions must not be empty.

export interface CaptionScores {
  bleu1: number;
  bleu2: number;
  bleu3: number;
  bleu4: number;
  rougeL: number;
  ciderD: number;
  perImage: Record<string, { rougeL: number; ciderD: number }>;
}

/** Longest n-gram length used by BLEU and CIDEr-D. */
const MAX_NGRAM = 4;
/** bleu_scorer.py smoothing constants: added to numerators (TINY) and denominators (SMALL). */
const BLEU_TINY = 1e-15;
const BLEU_SMALL = 1e-9;
/** rouge.py: weight of recall relative to precision in the F-measure. */
const ROUGE_BETA = 1.2;
/** ciderD_scorer.py: standard deviation of the gaussian length penalty. */
const CIDER_SIGMA = 6;
/** ciderD_scorer.py: final scale factor. */
const CIDER_SCALE = 10;

/** N-gram key: tokens joined by a space (tokens never contain whitespace). */
type NgramCounts = Map<string, number>;

function tokenize(caption: string): string[] {
  return caption.split(/\s+/).filter((token) => token.length > 0);
}

/** Counts of every n-gram with 1 ≤ n ≤ MAX_NGRAM, indexed by n - 1. */
function countNgrams(tokens: readonly string[]): NgramCounts[] {
  const countsByOrder: NgramCounts[] = [];
  for (let order = 1; order <= MAX_NGRAM; order++) {
    const counts: NgramCounts = new Map();
    for (let start = 0; start + order <= tokens.length; start++) {
      const ngram = tokens.slice(start, start + order).join(' ');
      counts.set(ngram, (counts.get(ngram) ?? 0) + 1);
    }
    countsByOrder.push(counts);
  }
  return countsByOrder;
}

function mean(values: readonly number[]): number {
  return values.reduce((sum, value) => sum + value, 0) / values.length;
}

function validateInput(references: Record<string, string[]>, candidates: Record<string, string>): void {
  for (const [id, caption] of Object.entries(candidates)) {
    if (typeof caption !== 'string') {
      throw new Error(`candidate caption for image "${id}" must be a string, got ${typeof caption}`);
    }
    if (!Object.hasOwn(references, id)) {
      throw new Error(`candidate image "${id}" has no references`);
    }
  }
  for (const [id, captions] of Object.entries(references)) {
    if (!Array.isArray(captions) || captions.length === 0) {
      throw new Error(`image "${id}" must have a non-empty array of reference captions`);
    }
    captions.forEach((caption, index) => {
      if (typeof caption !== 'string') {
        throw new Error(`reference caption ${index} for image "${id}" must be a string, got ${typeof caption}`);
      }
      if (tokenize(caption).length === 0) {
        throw new Error(`reference caption ${index} for image "${id}" is empty`);
      }
    });
    if (!Object.hasOwn(candidates, id)) {
      throw new Error(`reference image "${id}" has no candidate caption`);
    }
  }
  if (Object.keys(candidates).length === 0) {
    throw new Error('no captions to score');
  }
}

interface TokenizedImage {
  id: string;
  candidate: string[];
  references: string[][];
}

/**
 * Corpus BLEU-n = BP · (Π_{k≤n} (clipped_k + tiny) / (guessed_k + small))^(1/n),
 * BP = exp(1 − refLength/testLength) when testLength < refLength, where refLength sums, per image,
 * the reference length closest to the candidate length (ties → the shorter reference).
 */
function corpusBleu(images: readonly TokenizedImage[]): number[] {
  let testLength = 0;
  let closestReferenceLength = 0;
  const guessedByOrder = new Array<number>(MAX_NGRAM).fill(0);
  const clippedByOrder = new Array<number>(MAX_NGRAM).fill(0);
  for (const image of images) {
    const candidateLength = image.candidate.length;
    testLength += candidateLength;
    let closest = Infinity;
    for (const reference of image.references) {
      const distance = Math.abs(reference.length - candidateLength);
      const closestDistance = Math.abs(closest - candidateLength);
      if (distance < closestDistance || (distance === closestDistance && reference.length < closest)) {
        closest = reference.length;
      }
    }
    closestReferenceLength += closest;

    const maxReferenceCounts: NgramCounts[] = Array.from({ length: MAX_NGRAM }, () => new Map());
    for (const reference of image.references) {
      countNgrams(reference).forEach((counts, orderIndex) => {
        const maxCounts = maxReferenceCounts[orderIndex]!;
        for (const [ngram, count] of counts) maxCounts.set(ngram, Math.max(maxCounts.get(ngram) ?? 0, count));
      });
    }
    countNgrams(image.candidate).forEach((counts, orderIndex) => {
      guessedByOrder[orderIndex]! += Math.max(0, candidateLength - orderIndex);
      for (const [ngram, count] of counts) {
        clippedByOrder[orderIndex]! += Math.min(maxReferenceCounts[orderIndex]!.get(ngram) ?? 0, count);
      }
    });
  }

  const lengthRatio = (testLength + BLEU_TINY) / (closestReferenceLength + BLEU_SMALL);
  const brevityPenalty = lengthRatio < 1 ? Math.exp(1 - 1 / lengthRatio) : 1;
  const bleuByOrder: number[] = [];
  let precisionProduct = 1;
  for (let orderIndex = 0; orderIndex < MAX_NGRAM; orderIndex++) {
    precisionProduct *= (clippedByOrder[orderIndex]! + BLEU_TINY) / (guessedByOrder[orderIndex]! + BLEU_SMALL);
    bleuByOrder.push(precisionProduct ** (1 / (orderIndex + 1)) * brevityPenalty);
  }
  return bleuByOrder;
}

function longestCommonSubsequenceLength(a: readonly string[], b: readonly string[]): number {
  let previousRow = new Array<number>(b.length + 1).fill(0);
  for (const tokenA of a) {
    const row = [0];
    for (let j = 1; j <= b.length; j++) {
      row.push(tokenA === b[j - 1] ? previousRow[j - 1]! + 1 : Math.max(previousRow[j]!, row[j - 1]!));
    }
    previousRow = row;
  }
  return previousRow[b.length]!;
}

/** ROUGE-L = (1 + β²)·P·R / (R + β²·P), P and R the max LCS precision and recall over references. */
function rougeL(candidate: readonly string[], references: readonly string[][]): number {
  if (candidate.length === 0) return 0;
  let maxPrecision = 0;
  let maxRecall = 0;
  for (const reference of references) {
    const lcs = longestCommonSubsequenceLength(reference, candidate);
    maxPrecision = Math.max(maxPrecision, lcs / candidate.length);
    maxRecall = Math.max(maxRecall, lcs / reference.length);
  }
  if (maxPrecision === 0 || maxRecall === 0) return 0;
  const betaSquared = ROUGE_BETA ** 2;
  return ((1 + betaSquared) * maxPrecision * maxRecall) / (maxRecall + betaSquared * maxPrecision);
}

interface TfIdfVector {
  /** Per n-gram order: n-gram → term count × (log(#images) − log(max(1, df))). */
  weights: Map<string, number>[];
  norms: number[];
  /** ciderD_scorer.py measures length as the number of bigrams, not tokens. */
  length: number;
}

function tfIdfVector(countsByOrder: readonly NgramCounts[], documentFrequency: NgramCounts, logImageCount: number): TfIdfVector {
  const weights = countsByOrder.map((counts) => {
    const orderWeights = new Map<string, number>();
    for (const [ngram, termCount] of counts) {
      orderWeights.set(ngram, termCount * (logImageCount - Math.log(Math.max(1, documentFrequency.get(ngram) ?? 0))));
    }
    return orderWeights;
  });
  const norms = weights.map((orderWeights) => Math.sqrt([...orderWeights.values()].reduce((sum, w) => sum + w * w, 0)));
  const length = [...countsByOrder[1]!.values()].reduce((sum, count) => sum + count, 0);
  return { weights, norms, length };
}

/**
 * CIDEr-D = 10 · mean_n mean_refs [ Σ_g min(c_g, r_g)·r_g / (‖c‖‖r‖) · exp(−(len_c − len_r)² / 2σ²) ]
 * with c, r the candidate and reference tf-idf vectors of n-grams g of order n.
 */
function ciderD(candidate: TfIdfVector, references: readonly TfIdfVector[]): number {
  const similaritySumByOrder = new Array<number>(MAX_NGRAM).fill(0);
  for (const reference of references) {
    const lengthDelta = candidate.length - reference.length;
    const lengthPenalty = Math.exp(-(lengthDelta ** 2) / (2 * CIDER_SIGMA ** 2));
    for (let orderIndex = 0; orderIndex < MAX_NGRAM; orderIndex++) {
      const referenceWeights = reference.weights[orderIndex]!;
      let similarity = 0;
      for (const [ngram, candidateWeight] of candidate.weights[orderIndex]!) {
        const referenceWeight = referenceWeights.get(ngram) ?? 0;
        similarity += Math.min(candidateWeight, referenceWeight) * referenceWeight;
      }
      const normProduct = candidate.norms[orderIndex]! * reference.norms[orderIndex]!;
      if (normProduct !== 0) similarity /= normProduct;
      similaritySumByOrder[orderIndex]! += similarity * lengthPenalty;
    }
  }
  return (mean(similaritySumByOrder) / references.length) * CIDER_SCALE;
}

/**
 * Scores one candidate caption per image against that image's reference captions.
 * Throws if an id has a candidate but no references (or the reverse), or a caption is not a string.
 */
export function scoreCaptions(references: Record<string, string[]>, candidates: Record<string, string>): CaptionScores {
  validateInput(references, candidates);
  const images: TokenizedImage[] = Object.keys(candidates).map((id) => ({
    id,
    candidate: tokenize(candidates[id]!),
    references: references[id]!.map(tokenize),
  }));

  const [bleu1, bleu2, bleu3, bleu4] = corpusBleu(images) as [number, number, number, number];

  // CIDEr-D document frequency: number of images whose references contain the n-gram.
  const referenceCountsByImage = images.map((image) => image.references.map(countNgrams));
  const documentFrequency: NgramCounts = new Map();
  for (const referenceCounts of referenceCountsByImage) {
    const ngramsOfImage = new Set(referenceCounts.flatMap((countsByOrder) => countsByOrder.flatMap((counts) => [...counts.keys()])));
    for (const ngram of ngramsOfImage) documentFrequency.set(ngram, (documentFrequency.get(ngram) ?? 0) + 1);
  }
  const logImageCount = Math.log(images.length);

  const perImage: CaptionScores['perImage'] = {};
  images.forEach((image, imageIndex) => {
    const candidateVector = tfIdfVector(countNgrams(image.candidate), documentFrequency, logImageCount);
    const referenceVectors = referenceCountsByImage[imageIndex]!.map((counts) => tfIdfVector(counts, documentFrequency, logImageCount));
    perImage[image.id] = { rougeL: rougeL(image.candidate, image.references), ciderD: ciderD(candidateVector, referenceVectors) };
  });

  const imageScores = Object.values(perImage);
  return {
    bleu1,
    bleu2,
    bleu3,
    bleu4,
    rougeL: mean(imageScores.map((score) => score.rougeL)),
    ciderD: mean(imageScores.map((score) => score.ciderD)),
    perImage,
  };
}
