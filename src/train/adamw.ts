// AdamW (decoupled weight decay) with warm-up + cosine decay and global-norm clipping.
// Hand-written: tfjs-core's Adam has no decoupled weight decay, and we need its
// state as named tensors to checkpoint and resume bit-exactly.
import { tf } from '../model/backend.js';
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

export class AdamW {
  /** Steps taken so far (the bias correction uses step + 1). */
  step = 0;
  private readonly firstMoment = new Map<string, tf.Tensor>();
  private readonly secondMoment = new Map<string, tf.Tensor>();

  constructor(readonly options: AdamWOptions) {}

  /** Applies one update; returns the gradient's global norm before clipping and the learning rate used. */
  apply(variables: Map<string, tf.Variable>, gradients: Record<string, tf.Tensor>): { gradientNorm: number; learningRate: number } {
    const { beta1, beta2, epsilon, weightDecay, clipNorm } = this.options;
    const learningRate = learningRateAt(this.step, this.options);
    // ‖g‖ = sqrt(Σ g²) over all tensors; scale = min(1, clip / ‖g‖).
    const gradientNorm = tf.tidy(() => tf.sqrt(tf.addN(Object.values(gradients).map((g) => tf.sum(tf.square(g))))).dataSync()[0]!);
    const clipScale = gradientNorm > clipNorm ? clipNorm / gradientNorm : 1;
    const correction1 = 1 - beta1 ** (this.step + 1);
    const correction2 = 1 - beta2 ** (this.step + 1);
    for (const [name, variable] of variables) {
      const gradient = gradients[name];
      if (!gradient) continue;
      const [m, v] = tf.tidy(() => {
        const g = tf.mul(gradient, clipScale);
        const previousM = this.firstMoment.get(name) ?? tf.zerosLike(variable);
        const previousV = this.secondMoment.get(name) ?? tf.zerosLike(variable);
        return [tf.add(tf.mul(previousM, beta1), tf.mul(g, 1 - beta1)), tf.add(tf.mul(previousV, beta2), tf.mul(tf.square(g), 1 - beta2))];
      });
      this.firstMoment.get(name)?.dispose();
      this.secondMoment.get(name)?.dispose();
      this.firstMoment.set(name, tf.keep(m!));
      this.secondMoment.set(name, tf.keep(v!));
      tf.tidy(() => {
        // θ ← θ − lr·( m̂ / (sqrt(v̂) + ε) + λ·θ ), decay only on matrices (not biases / norms).
        const update = tf.div(tf.div(m!, correction1), tf.add(tf.sqrt(tf.div(v!, correction2)), epsilon));
        const decay = variable.rank >= 2 ? tf.mul(variable, weightDecay) : tf.zerosLike(variable);
        variable.assign(tf.sub(variable, tf.mul(tf.add(update, decay), learningRate)));
      });
    }
    this.step++;
    return { gradientNorm, learningRate };
  }

  /** Moments as named arrays (adam.m.<param>, adam.v.<param>) for the checkpoint. */
  state(): Map<string, NamedArray> {
    const state = new Map<string, NamedArray>();
    for (const [prefix, moments] of [['adam.m.', this.firstMoment], ['adam.v.', this.secondMoment]] as const) {
      for (const [name, tensor] of moments) state.set(prefix + name, { shape: tensor.shape, data: tensor.dataSync() as Float32Array });
    }
    return state;
  }

  restore(state: Map<string, NamedArray>, step: number): void {
    for (const [key, { shape, data }] of state) {
      const moments = key.startsWith('adam.m.') ? this.firstMoment : key.startsWith('adam.v.') ? this.secondMoment : null;
      if (!moments) throw new Error(`optimizer state: unexpected tensor "${key}"`);
      moments.get(key.slice(7))?.dispose();
      moments.set(key.slice(7), tf.tensor(data, shape));
    }
    this.step = step;
  }

  dispose(): void {
    for (const tensor of [...this.firstMoment.values(), ...this.secondMoment.values()]) tensor.dispose();
    this.firstMoment.clear();
    this.secondMoment.clear();
  }
}
