// What the trainer asks of a training engine: one optimisation step on a batch (forward,
// backward, AdamW update), the current weights, and a TfModel view for validation.
// Two engines: ONNX Runtime (src/train/ortEngine.ts, the default) and TensorFlow.js (below).
import { tf } from '../model/backend.js';
import type { NamedArray } from '../model/safetensors.js';
import type { TfModel } from '../model/tfModel.js';
import type { AdamW } from './adamw.js';
import type { TrainingBatch } from './batch.js';
import { layerwiseTaskLoss, type LossMode } from './loss.js';

export type EngineName = 'ort' | 'tfjs';
export const ENGINES: readonly EngineName[] = ['ort', 'tfjs'];

export interface LossOptions { smoothing: number; mode: LossMode }

export interface StepResult { loss: number; layerLosses: number[]; gradientNorm: number; learningRate: number }

export interface TrainingEngine {
  /** Forward + backward on the batch, then one AdamW update of the weights. */
  step(batch: TrainingBatch): Promise<StepResult>;
  /** The current weights (copies, safe to save while training continues). */
  weights(): Map<string, NamedArray>;
  /** Runs `use` with a TfModel holding the current weights (validation); the model is only valid inside. */
  withModel<T>(use: (model: TfModel) => T): T;
  /** The final model; the engine is released. */
  finish(): Promise<TfModel>;
}

/** Loss and per-parameter gradients from tfjs autodiff (the gradient oracle of the tests). */
export function tfjsLossAndGradients(model: TfModel, batch: TrainingBatch, loss: LossOptions): { loss: number; layerLosses: number[]; gradients: Map<string, Float32Array> } {
  let layerLosses: tf.Scalar[] = [];
  const { value, grads } = tf.variableGrads(() => {
    const { decoderStates } = model.forward(batch.inputs);
    const result = layerwiseTaskLoss(model, decoderStates, batch.targets, batch.targetMask, { ...loss, allowedTokens: batch.allowedTokens });
    layerLosses = result.perLayer.map((layerLoss) => tf.keep(layerLoss));
    return result.total;
  });
  const gradients = new Map(Object.entries(grads).map(([name, gradient]) => [name, gradient.dataSync() as Float32Array]));
  const out = { loss: value.dataSync()[0]!, layerLosses: layerLosses.map((l) => l.dataSync()[0]!), gradients };
  tf.dispose([value, ...Object.values(grads), ...layerLosses]);
  return out;
}

/** TensorFlow.js: tfjs autodiff for the gradients; the shared AdamW over arrays for the update. */
export class TfjsEngine implements TrainingEngine {
  constructor(private readonly model: TfModel, private readonly optimizer: AdamW, private readonly loss: LossOptions) {}

  async step(batch: TrainingBatch): Promise<StepResult> {
    const { loss, layerLosses, gradients } = tfjsLossAndGradients(this.model, batch, this.loss);
    const parameters = this.weights();
    const update = this.optimizer.apply(parameters, gradients);
    tf.tidy(() => {
      for (const [name, { data, shape }] of parameters) this.model.weights.get(name)!.assign(tf.tensor(data, shape));
    });
    return { loss, layerLosses, ...update };
  }

  weights(): Map<string, NamedArray> {
    return new Map([...this.model.weights].map(([name, variable]) => [name, { shape: variable.shape, data: Float32Array.from(variable.dataSync() as Float32Array) }]));
  }

  withModel<T>(use: (model: TfModel) => T): T {
    return use(this.model);
  }

  async finish(): Promise<TfModel> {
    return this.model;
  }
}
