// The wasm backend's matrix product is ~10x slower when an operand is flagged as
// transposed, and tfjs' stock BatchMatMul gradient always flags one (dA = dY·Bᵀ,
// dB = Aᵀ·dY). This gradient materialises the transposes first so every product
// runs on the fast path. Measured by `npm run bench:train`.
import * as tf from '@tensorflow/tfjs';

const stockGradient = tf.getGradient('BatchMatMul');

/** Swaps the two innermost axes: (..., m, n) -> (..., n, m). */
export function transposeLastTwo(x: tf.Tensor): tf.Tensor {
  const axes = [...Array(x.rank).keys()];
  [axes[x.rank - 2], axes[x.rank - 1]] = [axes[x.rank - 1]!, axes[x.rank - 2]!];
  return tf.transpose(x, axes);
}

const fastGradient: tf.GradConfig = {
  kernelName: 'BatchMatMul',
  inputsToSave: ['a', 'b'],
  gradFunc: (dy, saved, attrs) => {
    const [a, b] = saved as [tf.Tensor, tf.Tensor];
    const { transposeA, transposeB } = attrs as unknown as { transposeA: boolean; transposeB: boolean };
    const dyTensor = dy as tf.Tensor;
    // With A' = op(a), B' = op(b) and Y = A'·B': dA' = dY·B'ᵀ, dB' = A'ᵀ·dY.
    const effectiveA = () => (transposeA ? transposeLastTwo(a) : a);
    const effectiveB = () => (transposeB ? transposeLastTwo(b) : b);
    return {
      a: () => {
        const gradEffectiveA = tf.matMul(dyTensor, transposeLastTwo(effectiveB()));
        return transposeA ? transposeLastTwo(gradEffectiveA) : gradEffectiveA;
      },
      b: () => {
        const gradEffectiveB = tf.matMul(transposeLastTwo(effectiveA()), dyTensor);
        return transposeB ? transposeLastTwo(gradEffectiveB) : gradEffectiveB;
      },
    };
  },
};

let fastActive = false;

/** Switches between the fast gradient (default) and tfjs' stock one (for the benchmark). */
export function useFastMatMulGradient(enabled: boolean): void {
  if (enabled === fastActive) return;
  tf.unregisterGradient('BatchMatMul');
  tf.registerGradient(enabled ? fastGradient : stockGradient);
  fastActive = enabled;
}
