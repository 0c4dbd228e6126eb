// What the exit logic (encoderExits, decoderExits, promptAnswer, generate, MuEModel) needs of a
// model family's pieces: one call per layer, so exits decide in TypeScript between layers.
// LayerRunner (mue's own family) and OfaExitRunner (the real OFA / MuE architecture) implement
// it; a family's position information (mue: absolute embeddings at the inputs; OFA: attention
// biases per stream and per decoder position) stays inside its runner, which is why the calls
// name the stream and the decoder position. Shapes: B batch, T sequence, t cached decoder
// positions, M memory tokens, D width, V vocabulary; row-major float32, K/V token-major (B, T, D).

export interface KeyValue { key: Float32Array; value: Float32Array }
export interface DecoderStepOutput { hidden: Float32Array; key: Float32Array; value: Float32Array }

/** Which encoder sequence a layer runs on: the image or text stream (split encoder) or [image ; text] (joint). */
export type EncoderStream = 'image' | 'text' | 'joint';

/** The sizes the exit logic and the FLOP counts read (flops.ts). */
export interface RunnerShape {
  dim: number;
  ffnDim: number;
  vocabSize: number;
  encoderLayers: number;
  decoderLayers: number;
}

export interface ExitRunner {
  readonly config: RunnerShape;
  /** Image tokens per image (the image stream's length). */
  readonly imageTokens: number;
  /** FLOPs of embedImage for one image. */
  imageEmbeddingFlops(): number;
  /** pixels (B, S, S, 3) in [-1, 1] -> (B, N, D). */
  embedImage(pixels: Float32Array, batch: number): Promise<Float32Array>;
  /** Token ids, B rows of equal length T (padded) -> (B, T, D). */
  embedText(ids: number[][]): Promise<Float32Array>;
  /** Encoder layer `index` on a stream: states (B, T, D), keyMask (B, T) 1/0 -> (B, T, D). Joint: T = N + text length. */
  encoderLayer(index: number, states: Float32Array, keyMask: Float32Array, batch: number, length: number, stream: EncoderStream): Promise<Float32Array>;
  /** Every encoder layer in one graph (the fused reference; needs the runner's full-stack graphs). */
  fullEncoder(states: Float32Array, keyMask: Float32Array, batch: number, length: number, stream: EncoderStream): Promise<Float32Array>;
  /** states (B, M, D) -> the memory (the encoder's final norm). */
  encoderFinalNorm(states: Float32Array, batch: number, length: number): Promise<Float32Array>;
  /** memory (B, M, D) -> decoder layer `index`'s cross-attention key and value (B, M, D). */
  crossKeyValues(index: number, memory: Float32Array, batch: number, memoryLength: number): Promise<KeyValue>;
  /** One token per row: ids[b] at decoder position positions[b] -> (B, 1, D). */
  embedDecoder(ids: number[], positions: number[]): Promise<Float32Array>;
  /** Whole decoder prompts: B rows of equal length T (right-padded), positions 0..T−1 -> (B, T, D). */
  embedDecoderPrompt(ids: number[][]): Promise<Float32Array>;
  /** Decoder layer `index` over a whole prompt (positions 0..T−1, causal, no past): x (B, T, D) -> (B, T, D). */
  decoderPrompt(
    index: number, x: Float32Array, batch: number, length: number,
    crossKey: Float32Array, crossValue: Float32Array, memoryMask: Float32Array, memoryLength: number,
  ): Promise<Float32Array>;
  /**
   * Decoder layer `index` for the token at decoder position `position`: x (B, 1, D), the layer's
   * cached key/value (B, t, D) with t = pastLength ≤ position (fewer when earlier tokens skipped the
   * layer: 'drop') -> hidden (B, 1, D) and this position's key/value (B, 1, D).
   */
  decoderStep(
    index: number, x: Float32Array, pastKey: Float32Array, pastValue: Float32Array, pastLength: number,
    crossKey: Float32Array, crossValue: Float32Array, memoryMask: Float32Array, batch: number, memoryLength: number, position: number,
  ): Promise<DecoderStepOutput>;
  /** Every decoder layer in one graph for `length` new positions after pastLength cached ones (the fused reference). */
  fullDecoderStep(
    x: Float32Array, past: KeyValue[], pastLength: number, cross: KeyValue[],
    memoryMask: Float32Array, batch: number, memoryLength: number, length?: number,
  ): Promise<{ hidden: Float32Array; keyValues: KeyValue[] }>;
  /** x (B, 1, D), a layer-input state -> the self-attention key/value layer `index` computes for it ('propagate'). */
  selfKeyValues(index: number, x: Float32Array, batch: number): Promise<KeyValue>;
  /** Decoder states (B, T, D) of any layer -> logits (B, T, V) through the shared head. */
  head(x: Float32Array, batch: number, length: number): Promise<Float32Array>;
  dispose(): Promise<void>;
}
