// TensorFlow.js set-up shared by training and the reference forward pass:
// the wasm backend (SIMD, single-threaded in Node) with every gradient registered.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { useFastMatMulGradient } from '../train/fastMatMulGradient.js';

let ready: Promise<void> | undefined;

/** Initialises the wasm backend once per process; training uses the fast BatchMatMul gradient by default. */
export function initTensorflow(): Promise<void> {
  ready ??= (async () => {
    tf.env().set('IS_TEST', false);
    const ok = await tf.setBackend('wasm');
    if (!ok) throw new Error('TensorFlow.js wasm backend failed to initialise');
    await tf.ready();
    useFastMatMulGradient(true);
  })();
  return ready;
}

export { tf };
