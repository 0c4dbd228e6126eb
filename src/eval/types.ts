// The evaluation report's JSON shape: written by `mue eval`, read by `mue report`.

/** One method at one setting (e.g. MuE at τ = 0.95), evaluated on the whole set. */
export interface MethodResult {
  /** Method family: full-depth, static, deebert, pabee, calm, encoder-only, mue, mue-joint, mue-lastlayer. */
  method: string;
  /** Human-readable setting, e.g. "τ=0.95" or "k=3". */
  setting: string;
  /** The numeric knob swept for this method (threshold, patience or depth), for plotting. */
  knob: number;
  /** Accuracy (VE) or CIDEr-D (captioning) on the set. */
  quality: number;
  /** quality / quality of the same model at full depth. */
  retention: number;
  /** 1 − (layers run) / (layers of the full-depth run), encoder layers weighted by stream tokens, decoder layers per generated token. */
  layerReduction: number;
  /** FLOPs executed / FLOPs the full-depth run of the same inputs executed. */
  flopRatio: number;
  /** Wall-clock time / full-depth wall-clock time on the same inputs in the same process. */
  timeRatio: number;
  /** The same against full depth through the fused whole-stack graphs (one graph per encoder stream and per decoder step), when measured. */
  fusedTimeRatio?: number;
  /** Mean encoder layers per stream and decoder layers per token. */
  meanLayers: { image?: number; text?: number; joint?: number; decoder: number };
  /** Histograms: counts of samples (or tokens) exiting at layer 1..N (index 0 = layer 1). */
  exitHistograms: { image?: number[]; text?: number[]; joint?: number[]; decoder: number[] };
  /** decoderByPosition[t] = mean decoder layers used by generated token t. */
  decoderByPosition: number[];
  /** Mean encoder / decoder depth per difficulty group (VE: hypothesis family; captions: object count). */
  depthByGroup: Record<string, { encoder: number; decoder: number; quality: number; count: number }>;
  /** Extra quality detail: per class for VE, all caption scores for captioning. */
  detail: Record<string, number>;
}

export interface EvaluationReport {
  model: string;
  task: 've' | 'caption';
  /** Data set spec (`sceneworld`, `snli-ve:DIR`, `coco:DIR`); absent in reports written before real data sets. */
  data?: string;
  split: string;
  count: number;
  /** Examples of the requested count left out because their text exceeds the model's limit. */
  skippedTooLong?: number;
  seed: number;
  command: string;
  createdAt: string;
  encoderLayers: number;
  decoderLayers: number;
  qualityName: 'accuracy' | 'CIDEr-D';
  fullDepth: MethodResult;
  /** Mean cos(h_i, h_{i−1}) per layer at full depth: the "saturation" curve. */
  similarityCurve: { image?: number[]; text?: number[]; joint?: number[]; decoder: number[] };
  methods: MethodResult[];
  /** Present when thresholds were calibrated: calibration vs held-out test retention. */
  calibration?: { target: number; thresholds: Record<string, number>; calibrationRetention: number; testRetention: number; testTimeRatio: number; testFlopRatio: number };
}
