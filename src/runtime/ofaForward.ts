// One teacher-forced OFA / MuE forward through the pieces, with MuE's official exits
// (ARCHITECTURE.md §9-10): the encoder's image and text streams (split mode) each stop when
// the cosine similarity of a layer's output and input, pooled over the whole stream tensor
// (every row and position of the batch), exceeds the stream's threshold; the decoder, run over
// the whole prompt at once, stops likewise. This is the path of VE scoring and of the reference
// fixtures; incremental generation calls the same pieces step by step (decoderLayer with a cache).
// The attention biases come from OfaExitRunner, the one place that builds them for every caller.
import type { EncoderStream } from './exitRunner.js';
import { cosineSimilarity } from './exits.js';
import type { OfaExitRunner } from './ofaExitRunner.js';
import type { Bias } from './ofaRunner.js';
import { range } from './ofaPositions.js';
import { concatSequences } from './rows.js';

export interface OfaForwardInputs {
  /** (B, S, S, 3) in [-1, 1]. */
  pixels: Float32Array;
  /** Encoder token ids, B rows of equal length (pad id 1 on the right). */
  textIds: number[][];
  /** Decoder input ids (teacher forcing), B rows of equal length. */
  decoderIds: number[][];
}

/** Exit thresholds; 1 never exits (cos ≤ 1). Joint (plain OFA) mode has no encoder exits. */
export interface OfaThresholds { image: number; text: number; decoder: number }

export interface OfaForwardResult {
  /** Logits (B, Tt, V) of the layer the decoder stopped at. */
  logits: Float32Array;
  /** The encoder output (B, M, D) = encoder.layer_norm([image ; text]). */
  memory: Float32Array;
  /** Layers run: image and text streams (split; both the stack depth in joint mode) and decoder. */
  exitLayers: { image: number; text: number; decoder: number };
}

/** Receives every intermediate (stage name as in the reference fixtures, token-major data). */
export type StageRecorder = (stage: string, data: Float32Array) => void;

const NO_EXIT: OfaThresholds = { image: 1, text: 1, decoder: 1 };

/** sim = cos(flatten(after), flatten(before)) over the whole tensor; exit when sim > threshold (U:1912-1916). */
const exits = (after: Float32Array, before: Float32Array, threshold: number): boolean =>
  threshold < 1 && cosineSimilarity(after, before, 0, after.length) > threshold;

/** What the decoder needs of an encoded batch. */
export interface OfaEncoded {
  /** encoder.layer_norm([image ; text]) (B, M, D). */
  memory: Float32Array;
  /** (B, M) 1/0: image rows 1, text pads 0. */
  memoryMask: Float32Array;
  memoryLength: number;
  /** [P_img ; P_text] (M, D): the keys of the decoder's cross-attention position bias. */
  positionEmbeddings: Float32Array;
  exitLayers: { image: number; text: number };
}

/** The encoder (split: text stream, then image stream, each with its exit; joint: one stream, full depth). */
export async function ofaEncode(
  exitRunner: OfaExitRunner, inputs: Pick<OfaForwardInputs, 'pixels' | 'textIds'>, thresholds: Pick<OfaThresholds, 'image' | 'text'> = NO_EXIT,
  record: StageRecorder = () => {},
): Promise<OfaEncoded> {
  const runner = exitRunner.ofa;
  const { config } = runner;
  const batch = inputs.textIds.length;
  const textLength = inputs.textIds[0]!.length;
  const { dim } = config;

  const image = await runner.embedImage(inputs.pixels, batch);
  record('resnet_out', image.features);
  const text = await runner.embedText(inputs.textIds);
  const patchCount = exitRunner.imageTokens;
  const memoryLength = patchCount + textLength;
  const positionEmbeddings = await exitRunner.encoderPositionEmbeddings(textLength);
  record('enc.position_embeddings', positionEmbeddings);
  const textMask = Float32Array.from(inputs.textIds.flat(), (id) => (id === config.padId ? 0 : 1)); // (B, Ts)
  const imageMask = new Float32Array(batch * patchCount).fill(1); // (B, N): patch_masks all true
  const memoryMask = concatSequences([imageMask, textMask], [patchCount, textLength], 1, batch); // (B, M)
  record('enc.padding_mask', memoryMask.map((keep) => 1 - keep));

  let memoryStates: Float32Array;
  const exitLayers = { image: config.encoderLayers, text: config.encoderLayers };
  if (config.encoderMode === 'split') {
    record('enc.image.embed', image.states);
    record('enc.text.embed', text);
    // Text loop first (U:1904-1919), then the image loop with the absolute bias only (U:1921-1943).
    const textStream = await runStream(exitRunner, 'text', text, textMask, textLength, batch, thresholds.text, record, 'call0');
    const imageStream = await runStream(exitRunner, 'image', image.states, imageMask, patchCount, batch, thresholds.image, record, 'call1');
    exitLayers.text = textStream.layers;
    exitLayers.image = imageStream.layers;
    memoryStates = concatSequences([imageStream.states, textStream.states], [patchCount, textLength], dim, batch); // (B, M, D)
  } else {
    const joint = concatSequences([image.states, text], [patchCount, textLength], dim, batch); // (B, M, D)
    record('enc.embed', joint);
    const stream = await runStream(exitRunner, 'joint', joint, memoryMask, memoryLength, batch, 1, record, 'call0');
    memoryStates = stream.states;
  }
  const memory = await runner.encoderFinalNorm(memoryStates, batch, memoryLength);
  record('enc.out', memory);
  return { memory, memoryMask, memoryLength, positionEmbeddings, exitLayers };
}

export async function ofaForward(
  exitRunner: OfaExitRunner, inputs: OfaForwardInputs, thresholds: OfaThresholds = NO_EXIT,
  options: { record?: StageRecorder; perLayerLogits?: boolean } = {},
): Promise<OfaForwardResult> {
  const runner = exitRunner.ofa;
  const { config } = runner;
  const record = options.record ?? (() => {});
  const batch = inputs.textIds.length;
  const decoderLength = inputs.decoderIds[0]!.length;
  const { memory, memoryMask, memoryLength, exitLayers: encoderExits } = await ofaEncode(exitRunner, inputs, thresholds, record);
  const exitLayers = { ...encoderExits, decoder: config.decoderLayers };

  // Decoder, teacher-forced over the whole sequence: no cache (t = 0), causal mask inside the layer.
  let states = await runner.embedDecoder(inputs.decoderIds);
  record('dec.embed', states);
  const decoderPositions = range(decoderLength);
  const selfKeyMask = Float32Array.from(inputs.decoderIds.flat(), (id) => (id === config.padId ? 0 : 1)); // (B, Tt)
  const empty = new Float32Array(0);
  for (let index = 0; index < config.decoderLayers; index++) {
    const { self: selfBias, cross: crossBias } = await exitRunner.decoderBias(index, decoderPositions, decoderPositions, memoryLength);
    record(`attn_bias.dec${index}.self.call0`, selfBias.data);
    record(`attn_bias.dec${index}.cross.call0`, crossBias.data);
    const cross = await runner.crossKeyValues(index, memory, batch, memoryLength);
    const { hidden } = await runner.decoderLayer(index, states, decoderLength, { key: empty, value: empty }, 0, selfKeyMask, selfBias,
      cross, memoryMask, crossBias, batch, memoryLength);
    record(`dec.layer${index}`, hidden);
    if (options.perLayerLogits) record(`dec.logits.layer${index}`, await runner.head(hidden, batch, decoderLength));
    const stop = exits(hidden, states, thresholds.decoder);
    states = hidden;
    if (stop) {
      exitLayers.decoder = index + 1;
      break;
    }
  }
  const logits = await runner.head(states, batch, decoderLength);
  record('logits', logits);
  return { logits, memory, exitLayers };
}

/** One encoder stream through the layers with its exit. */
async function runStream(
  exitRunner: OfaExitRunner, stream: EncoderStream, embedded: Float32Array, keyMask: Float32Array, length: number, batch: number,
  threshold: number, record: StageRecorder, call: string,
): Promise<{ states: Float32Array; layers: number }> {
  const runner = exitRunner.ofa;
  let states = embedded;
  for (let index = 0; index < runner.config.encoderLayers; index++) {
    const layerBias: Bias = await exitRunner.encoderBias(stream, length, index);
    record(`attn_bias.enc${index}.${call}`, layerBias.data);
    const output = await runner.encoderLayer(index, states, keyMask, layerBias, batch, length);
    record(stream === 'joint' ? `enc.layer${index}` : `enc.${stream}.layer${index}`, output);
    const stop = exits(output, states, threshold);
    states = output;
    if (stop) return { states, layers: index + 1 };
  }
  return { states, layers: runner.config.encoderLayers };
}
