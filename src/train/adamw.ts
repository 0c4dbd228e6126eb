// AdamW (decoupled weight decay) with warm-up + cosine decay and global-norm clipping.
// Hand-written: tfjs-core's Adam has no decoupled weight decay, and we need its
// state as named tensors to checkpoint and resume bit-exactly.
import type { NamedArray } from '../model/safetensors.js';

export interface AdamWOptions {
  learningRate: number;
  warmupSteps: number;
  totalSteps: number;
  /** Final learning rate as a fraction of the peak. */
  minLearningRateRatio: number;
  weightDecay: number;
  clipNorm: number;
  beta1: number;
  beta2: number;
  epsilon: number;
}

/** lr(s) = peak·s/warmup while warming up, then cosine from peak down to peak·minRatio at totalSteps. */
export function learningRateAt(step: number, options: AdamWOptions): number {
  if (step < options.warmupSteps) return (options.learningRate * (step + 1)) / options.warmupSteps;
  const progress = Math.min(1, (step - options.warmupSteps) / Math.max(1, options.totalSteps - options.warmupSteps));
  const cosine = 0.5 * (1 + Math.cos(Math.PI * progress));
  return options.learningRate * (options.minLearningRateRatio + (1 - options.minLearningRateRatio) * cosine);
}

/**
 * The one AdamW of both engines, over Float32Arrays: the ORT engine's parameters are arrays,
 * and the tfjs engine reads its variables and gradients into arrays for the update.
 */
export class AdamW {
  /** Steps taken so far (the bias correction uses step + 1). */
  step = 0;
  private readonly firstMoment = new Map<string, Float32Array>();
  private readonly secondMoment = new Map<string, Float32Array>();
  private readonly shapes = new Map<string, number[]>();

  constructor(readonly options: AdamWOptions) {}

  /**
   * Applies one update to `parameters` in place (parameters without a gradient are left alone);
   * returns the gradient's global norm before clipping and the learning rate used.
   */
  apply(parameters: Map<string, NamedArray>, gradients: Map<string, Float32Array>): { gradientNorm: number; learningRate: number } {
    const { beta1, beta2, epsilon, weightDecay, clipNorm } = this.options;
    const learningRate = learningRateAt(this.step, this.options);
    // ‖g‖ = sqrt(Σ g²) over all tensors; scale = min(1, clip / ‖g‖).
    let squares = 0;
    for (const gradient of gradients.values()) for (let i = 0; i < gradient.length; i++) squares += gradient[i]! * gradient[i]!;
    const gradientNorm = Math.sqrt(squares);
    const clipScale = gradientNorm > clipNorm ? clipNorm / gradientNorm : 1;
    const correction1 = 1 - beta1 ** (this.step + 1);
    const correction2 = 1 - beta2 ** (this.step + 1);
    for (const [name, parameter] of parameters) {
      const gradient = gradients.get(name);
      if (!gradient) continue;
      const theta = parameter.data;
      if (gradient.length !== theta.length) throw new Error(`AdamW: gradient of "${name}" has ${gradient.length} values, the parameter ${theta.length}`);
      this.shapes.set(name, parameter.shape);
      const m = this.moment(this.firstMoment, name, theta.length);
      const v = this.moment(this.secondMoment, name, theta.length);
      // Decay only on matrices (not biases / norms).
      const decay = parameter.shape.length >= 2 ? weightDecay : 0;
      for (let i = 0; i < theta.length; i++) {
        const g = gradient[i]! * clipScale;
        m[i] = beta1 * m[i]! + (1 - beta1) * g;
        v[i] = beta2 * v[i]! + (1 - beta2) * g * g;
        // θ ← θ − lr·( m̂ / (sqrt(v̂) + ε) + λ·θ ).
        theta[i] = theta[i]! - learningRate * (m[i]! / correction1 / (Math.sqrt(v[i]! / correction2) + epsilon) + decay * theta[i]!);
      }
    }
    this.step++;
    return { gradientNorm, learningRate };
  }

  /** Moments as named arrays (adam.m.<param>, adam.v.<param>) for the checkpoint. */
  state(): Map<string, NamedArray> {
    const state = new Map<string, NamedArray>();
    for (const [prefix, moments] of [['adam.m.', this.firstMoment], ['adam.v.', this.secondMoment]] as const) {
      for (const [name, data] of moments) state.set(prefix + name, { shape: this.shapes.get(name)!, data: Float32Array.from(data) });
    }
    return state;
  }

  restore(state: Map<string, NamedArray>, step: number): void {
    for (const [key, { shape, data }] of state) {
      const moments = key.startsWith('adam.m.') ? this.firstMoment : key.startsWith('adam.v.') ? this.secondMoment : null;
      if (!moments) throw new Error(`optimizer state: unexpected tensor "${key}"`);
      moments.set(key.slice(7), Float32Array.from(data));
      this.shapes.set(key.slice(7), shape);
    }
    this.step = step;
  }

  private moment(moments: Map<string, Float32Array>, name: string, size: number): Float32Array {
    let moment = moments.get(name);
    if (!moment) moments.set(name, (moment = new Float32Array(size)));
    return moment;
  }
}
