// onnxruntime-node as the runtime's backend (Node only: native binaries).
import * as ort from 'onnxruntime-node';
import type { OrtBackend } from './ortBackend.js';

export const nodeBackend: OrtBackend = {
  name: 'node',
  InferenceSession: ort.InferenceSession,
  Tensor: ort.Tensor,
  sessionOptions: (threads) => ({
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    // The runtime calls ~20 small sessions in turn; idle pools that spin after each run steal
    // the cores from the next session (measured 2-14x slower end to end by bench:runtime).
    extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
  }),
};
