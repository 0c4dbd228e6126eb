// A fairseq/OFA (or MuE) `checkpoint.pt` read as mue needs it: the state dict under its official names
// (float32; fp16 files convert exactly), the model hyper-parameters from `cfg["model"]` (an
// argparse.Namespace) as a plain object, the tied embedding stored once, and the four int64
// relative-position bucket tables kept apart (they are deterministic and recomputed by the graphs).
// Format: ../shared/ofa/CHECKPOINT.md; everything but `model`, `cfg`/`args` is skipped unread.
import type { NamedArray } from './safetensors.js';
import {
  isFloatingDtype, PickledNamespace, tensorToFloat32, tensorToInt64, toPlainData, type TorchDtype, TorchFile, TorchTensor,
} from './torchCheckpoint.js';

export const TIED_EMBEDDING = 'encoder.embed_tokens.weight';
export const BUCKET_TABLES = ['encoder.token_rp_bucket', 'encoder.image_rp_bucket', 'decoder.token_rp_bucket', 'decoder.image_rp_bucket'] as const;
/** Entries every OFA model has (token, image stem, patch projection, decoder head); their absence means another architecture. */
const OFA_SIGNATURE = [TIED_EMBEDDING, 'encoder.embed_images.conv1.weight', 'encoder.image_proj.weight', 'encoder.type_embedding.weight', 'decoder.output_projection.weight'];
/** Integers above this are not exact in float32. */
const EXACT_FLOAT32_INTEGER = 2 ** 24;

export interface OfaCheckpointWeights {
  /** Every state-dict entry except the bucket tables, row-major float32; the tied copies map to the same array as TIED_EMBEDDING. */
  weights: Map<string, NamedArray>;
  /** Tied copy name -> the name whose data it shares (as the fixtures' `__metadata__.aliases`). */
  aliases: Record<string, string>;
  /** The int64 relative-position bucket tables as stored, for checking against their formulas. */
  bucketTables: Map<string, { shape: number[]; data: BigInt64Array }>;
  /** `cfg["model"]` (or a pre-hydra file's `args`) fields verbatim as plain data. */
  modelArgs: Record<string, unknown>;
  /** `cfg["task"]` as plain data ({} when the file has none). */
  taskArgs: Record<string, unknown>;
  /** The whole `cfg` as plain data ({} for pre-hydra files, which only have `args`). */
  cfg: Record<string, unknown>;
  /** Rows of the token embedding = dictionary size. */
  vocabSize: number;
  /** Storage type of the floating tensors in the file ('mixed' when they differ). */
  floatDtype: TorchDtype | 'mixed';
}

/** Reads an OFA/MuE `checkpoint.pt` (or `.pt.gz`); refuses other files with a message naming the problem. */
export function readOfaCheckpointWeights(path: string): OfaCheckpointWeights {
  const file = TorchFile.read(path);
  const { stateDict, modelArgs, taskArgs, cfg } = fairseqParts(file.root, path);
  checkOfaArchitecture(modelArgs, [...stateDict.keys()], path);

  const storages = file.storageBytes([...stateDict.values()].map((tensor) => tensor.storage));
  const weights = new Map<string, NamedArray>();
  const bucketTables = new Map<string, { shape: number[]; data: BigInt64Array }>();
  const floatDtypes = new Set<TorchDtype>();
  for (const [name, tensor] of stateDict) {
    const bytes = storages.get(tensor.storage.key)!;
    if ((BUCKET_TABLES as readonly string[]).includes(name)) {
      bucketTables.set(name, { shape: tensor.shape, data: tensorToInt64(tensor, bytes, name) });
    } else if (isFloatingDtype(tensor.dtype)) {
      floatDtypes.add(tensor.dtype);
      weights.set(name, { shape: tensor.shape, data: tensorToFloat32(tensor, bytes, name) });
    } else {
      // num_batches_tracked counters and decoder.image_position_idx: small integers, exact in float32.
      const values = tensorToInt64(tensor, bytes, name);
      const data = new Float32Array(values.length);
      for (let i = 0; i < values.length; i++) {
        const value = Number(values[i]);
        if (Math.abs(value) > EXACT_FLOAT32_INTEGER) throw new Error(`${path}: buffer "${name}" holds ${value}, beyond float32's exact integers`);
        data[i] = value;
      }
      weights.set(name, { shape: tensor.shape, data });
    }
  }

  const aliases = tieEmbeddings(weights, modelArgs, path);
  const embedding = weights.get(TIED_EMBEDDING)!;
  return {
    weights, aliases, bucketTables, modelArgs, taskArgs, cfg,
    vocabSize: embedding.shape[0]!,
    floatDtype: floatDtypes.size === 1 ? [...floatDtypes][0]! : 'mixed',
  };
}

interface FairseqParts { stateDict: Map<string, TorchTensor>; modelArgs: Record<string, unknown>; taskArgs: Record<string, unknown>; cfg: Record<string, unknown> }

function fairseqParts(root: unknown, source: string): FairseqParts {
  if (!(root instanceof Map)) throw new Error(`${source} is a torch file but not a fairseq checkpoint (it holds ${describe(root)}, not a dict with "model" and "cfg")`);
  const model = root.get('model');
  if (!(model instanceof Map)) {
    throw new Error(`${source} is not a fairseq/OFA checkpoint: it has no "model" state dict (top-level keys: ${[...root.keys()].map(String).join(', ')})`);
  }
  const stateDict = new Map<string, TorchTensor>();
  for (const [name, value] of model) {
    if (!(value instanceof TorchTensor)) throw new Error(`${source}: state-dict entry "${String(name)}" is ${describe(value)}, not a tensor`);
    stateDict.set(String(name), value);
  }
  // Hydra-era fairseq keeps the model's argparse.Namespace at cfg["model"]; older files have it at "args".
  const cfg = root.get('cfg');
  const namespace = cfg instanceof Map && cfg.get('model') !== undefined && cfg.get('model') !== null ? cfg.get('model') : root.get('args');
  if (!(namespace instanceof PickledNamespace) && !(namespace instanceof Map)) {
    throw new Error(`${source}: no model hyper-parameters (cfg["model"] or args) in the checkpoint`);
  }
  const modelArgs = toPlainData(namespace) as Record<string, unknown>;
  const task = cfg instanceof Map ? cfg.get('task') : undefined;
  const taskArgs = task instanceof Map || task instanceof PickledNamespace ? (toPlainData(task) as Record<string, unknown>) : {};
  return { stateDict, modelArgs, taskArgs, cfg: cfg instanceof Map ? (toPlainData(cfg) as Record<string, unknown>) : {} };
}

/** Refuses checkpoints of other architectures: the arch name must be an OFA one and the OFA-specific entries present. */
export function checkOfaArchitecture(modelArgs: Record<string, unknown>, stateDictNames: string[], source: string): void {
  const arch = modelArgs.arch ?? modelArgs._name;
  if (typeof arch !== 'string' || !/^ofa(_|$)/.test(arch)) {
    throw new Error(`${source} is a checkpoint of another architecture (arch ${JSON.stringify(arch ?? null)}); convert-ofa reads OFA / MuE checkpoints (arch ofa_tiny, ofa_medium, ofa_base, ofa_large, ofa_huge)`);
  }
  const names = new Set(stateDictNames);
  const missing = OFA_SIGNATURE.filter((name) => !names.has(name));
  if (missing.length > 0) throw new Error(`${source} says arch ${arch} but its state dict lacks ${missing.join(', ')}: not an OFA model`);
}

/** Checks that the saved copies of a shared embedding are equal, then makes them one array (stored once). */
function tieEmbeddings(weights: Map<string, NamedArray>, modelArgs: Record<string, unknown>, source: string): Record<string, string> {
  const shareAll = modelArgs.share_all_embeddings === true;
  const decoderInput = shareAll ? TIED_EMBEDDING : 'decoder.embed_tokens.weight';
  const ties: [copy: string, original: string, tied: boolean][] = [
    ['decoder.embed_tokens.weight', TIED_EMBEDDING, shareAll],
    ['decoder.output_projection.weight', decoderInput, shareAll || modelArgs.share_decoder_input_output_embed === true],
  ];
  const aliases: Record<string, string> = {};
  for (const [copy, originalName, tied] of ties) {
    const original = weights.get(originalName);
    const duplicate = weights.get(copy);
    if (!tied || original === undefined || duplicate === undefined) continue;
    const equal = duplicate.shape.join() === original.shape.join() && duplicate.data.every((value, i) => Object.is(value, original.data[i]));
    if (!equal) throw new Error(`${source}: "${copy}" should be the shared embedding "${originalName}" (tied weights) but its values differ`);
    weights.set(copy, original);
    aliases[copy] = originalName;
  }
  return aliases;
}

function describe(value: unknown): string {
  if (value instanceof TorchTensor) return `a tensor ${value.dtype} [${value.shape.join(', ')}]`;
  if (Array.isArray(value)) return `a list of ${value.length}`;
  if (value instanceof Map) return 'a dict';
  return value === null ? 'None' : typeof value === 'object' ? String(toPlainData(value)) : typeof value;
}
