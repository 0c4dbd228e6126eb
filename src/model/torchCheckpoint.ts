// Reading PyTorch `torch.save` files (the zip format of torch >= 1.6) without PyTorch: fflate opens
// the zip, pickleparser runs the pickle, and the small stand-ins below give the torch / collections /
// argparse globals a meaning. Tensors stay lazy references into the zip until asked for, so a
// checkpoint's optimizer state (often 2x the model) is never copied out of the file.
import { gunzipSync } from 'node:zlib';
import { constants } from 'node:buffer';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { endianness } from 'node:os';
import { unzipSync } from 'fflate';
import { NameRegistry, Parser } from 'pickleparser';
import { float16BitsToFloat32 } from './safetensors.js';

export type TorchDtype = 'float64' | 'float32' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

const STORAGE_DTYPES: Record<string, TorchDtype> = {
  DoubleStorage: 'float64', FloatStorage: 'float32', HalfStorage: 'float16', BFloat16Storage: 'bfloat16',
  LongStorage: 'int64', IntStorage: 'int32', ShortStorage: 'int16', CharStorage: 'int8', ByteStorage: 'uint8', BoolStorage: 'bool',
};
const BYTES_PER_ELEMENT: Record<TorchDtype, number> = {
  float64: 8, float32: 4, float16: 2, bfloat16: 2, int64: 8, int32: 4, int16: 2, int8: 1, uint8: 1, bool: 1,
};

/** A `torch.XStorage` class named in the pickle (what the persistent id says the bytes hold). */
class StorageClass {
  constructor(readonly dtype: TorchDtype) {}
}

/** A storage of a type this reader does not convert; tensors on it stay this marker. */
export class UnsupportedStorage {
  constructor(readonly storageType: string) {}
}

/** One storage = one zip entry `<prefix>/data/<key>`. */
export interface StorageRef { key: string; dtype: TorchDtype; numel: number }

/** A tensor as `_rebuild_tensor_v2` describes it: a strided view of a storage (offset and strides in elements). */
export class TorchTensor {
  constructor(
    readonly storage: StorageRef,
    readonly storageOffset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}

  get dtype(): TorchDtype {
    return this.storage.dtype;
  }

  get numel(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }
}

/** `collections.OrderedDict`: a Map that also keeps the BUILD state (a state dict's `_metadata`). */
export class PickledOrderedDict extends Map<unknown, unknown> {
  state: unknown = undefined;

  __setstate__(state: unknown): void {
    this.state = state;
  }
}

/** `argparse.Namespace` (fairseq's `cfg["model"]`): NEWOBJ with no arguments, then BUILD with the attribute dict. */
export class PickledNamespace {
  readonly fields = new Map<string, unknown>();

  __setstate__(state: unknown): void {
    if (!(state instanceof Map)) throw new Error('argparse.Namespace state is not a dict');
    for (const [key, value] of state) this.fields.set(String(key), value);
  }
}

/** torch.save's legacy (pre-1.6) format starts with a pickled magic number: PROTO 2, LONG1 10 bytes 0x1950a86a20f9469cfc6c. */
const LEGACY_MAGIC = Uint8Array.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]);
const ZIP_LOCAL_HEADER = Uint8Array.from([0x50, 0x4b, 0x03, 0x04]);
const GZIP_MAGIC = Uint8Array.from([0x1f, 0x8b]);

function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  return bytes.length >= prefix.length && prefix.every((byte, i) => bytes[i] === byte);
}

/** An opened torch.save zip: the unpickled object, and the raw bytes of any storage on request. */
export class TorchFile {
  private constructor(
    readonly source: string,
    private readonly zip: Uint8Array,
    private readonly prefix: string,
    readonly root: unknown,
  ) {}

  /** Reads `path` (a `.pt` file, or a gzip of one); refuses legacy, truncated and non-torch files by name. */
  static read(path: string): TorchFile {
    let bytes: Uint8Array;
    try {
      bytes = readWholeFile(path);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new Error(`cannot read ${path}: ${code === 'ENOENT' ? 'file not found' : (error as Error).message}`);
    }
    if (startsWith(bytes, GZIP_MAGIC)) {
      try {
        bytes = gunzipSync(bytes);
      } catch (error) {
        throw new Error(`${path}: the gzip data is truncated or damaged (${(error as Error).message})`);
      }
    }
    return TorchFile.fromBytes(bytes, path);
  }

  static fromBytes(bytes: Uint8Array, source: string): TorchFile {
    if (startsWith(bytes, LEGACY_MAGIC)) {
      throw new Error(`${source} is a legacy (pre-1.6, non-zip) torch.save file; re-save it with torch >= 1.6 (torch.save(torch.load(f), f)) and convert that`);
    }
    if (!startsWith(bytes, ZIP_LOCAL_HEADER)) throw new Error(`${source} is not a PyTorch checkpoint (neither torch's zip format nor its legacy format)`);
    const names: string[] = [];
    try {
      unzipSync(bytes, { filter: (entry) => (names.push(entry.name), false) });
    } catch (error) {
      throw new Error(`${source} is truncated or damaged: its zip directory cannot be read (${(error as Error).message})`);
    }
    const pickles = names.filter((name) => name.endsWith('/data.pkl'));
    if (pickles.length !== 1) throw new Error(`${source} is a zip but not a torch.save file (${pickles.length} */data.pkl entries, expected 1)`);
    const prefix = pickles[0]!.slice(0, -'/data.pkl'.length);
    const pickle = unzipSync(bytes, { filter: (entry) => entry.name === pickles[0] })[pickles[0]!]!;
    return new TorchFile(source, bytes, prefix, unpickle(pickle, source));
  }

  /** The raw little-endian bytes of the given storages, checked against the sizes the pickle declares. */
  storageBytes(storages: Iterable<StorageRef>): Map<string, Uint8Array> {
    const wanted = new Map<string, StorageRef>();
    for (const storage of storages) wanted.set(`${this.prefix}/data/${storage.key}`, storage);
    const entries = unzipSync(this.zip, { filter: (entry) => wanted.has(entry.name) });
    const result = new Map<string, Uint8Array>();
    for (const [name, storage] of wanted) {
      const bytes = entries[name];
      if (bytes === undefined) throw new Error(`${this.source} is damaged: storage ${storage.key} (${name}) is missing from the zip`);
      const expected = storage.numel * BYTES_PER_ELEMENT[storage.dtype];
      if (bytes.length < expected) throw new Error(`${this.source} is truncated or damaged: storage ${storage.key} has ${bytes.length} bytes, the pickle declares ${expected}`);
      result.set(storage.key, bytes);
    }
    return result;
  }
}

/** readFileSync stops at 2 GiB; OFA-Large files are bigger, so read in chunks into one buffer (up to buffer.constants.MAX_LENGTH). */
function readWholeFile(path: string): Uint8Array {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size > constants.MAX_LENGTH) throw new Error(`${size} bytes is more than one Node.js buffer holds (${constants.MAX_LENGTH})`);
    const bytes = Buffer.allocUnsafe(size);
    const chunkBytes = 1 << 30;
    for (let at = 0; at < size;) {
      const read = readSync(fd, bytes, at, Math.min(chunkBytes, size - at), at);
      if (read === 0) throw new Error(`the file shrank while being read (${at} of ${size} bytes)`);
      at += read;
    }
    return bytes;
  } finally {
    closeSync(fd);
  }
}

/**
 * Runs the pickle with torch's globals mapped to the stand-ins above; any other global becomes an opaque object.
 * pickleparser 0.2.1 serves protocol 2 as torch writes it: BINPERSID hands the pid tuple to persistentResolver,
 * REDUCE calls the resolved global as a function (so OrderedDict is registered as a factory, not a class), NEWOBJ
 * constructs it (argparse.Namespace is a class). Two gaps are wrapped here: BUILD on a Map drops a state that has no
 * __dict__, so the OrderedDict stand-in takes it through __setstate__; and LONG1 (below).
 */
function unpickle(pickle: Uint8Array, source: string): unknown {
  const storageClasses = new Map(Object.entries(STORAGE_DTYPES).map(([className, dtype]) => [className, new StorageClass(dtype)]));
  const names = new NameRegistry()
    .register('collections', 'OrderedDict', () => new PickledOrderedDict())
    .register('argparse', 'Namespace', PickledNamespace)
    // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
    .register('torch._utils', '_rebuild_tensor_v2', (storage: StorageRef | UnsupportedStorage, offset: number, shape: number[], stride: number[]) =>
      storage instanceof UnsupportedStorage ? storage : new TorchTensor(storage, offset, [...shape], [...stride]))
    // _rebuild_parameter(data, requires_grad, backward_hooks): a Parameter is its data for reading
    .register('torch._utils', '_rebuild_parameter', (data: TorchTensor) => data);
  const parser = new Parser({
    nameResolver: {
      // GLOBAL torch.FloatStorage pushes a marker: it is data inside the persistent id, never called.
      resolve: (module, name) => (module === 'torch' && storageClasses.has(name) ? (storageClasses.get(name) as never) : names.resolve(module, name)),
    },
    // BINPERSID ('storage', <torch.XStorage>, key, location, numel): the storage's zip entry. A storage type
    // without a mapping here (complex, quantized…) stays opaque: it only matters if the state dict uses it.
    persistentResolver: {
      resolve: (pid: unknown) => {
        if (!Array.isArray(pid) || pid[0] !== 'storage') throw new Error(`unsupported persistent id ${JSON.stringify(toPlainData(pid))}`);
        if (!(pid[1] instanceof StorageClass)) return new UnsupportedStorage(String(toPlainData(pid[1])));
        return { key: String(pid[2]), dtype: pid[1].dtype, numel: Number(pid[4]) } satisfies StorageRef;
      },
    },
    unpicklingTypeOfDictionary: 'Map',
    unpicklingTypeOfSet: 'array',
  });
  // pickleparser 0.2.1 reads LONG1 as an unsigned Number and console.warns beyond 2^53; fairseq's cfg holds
  // sys.maxsize (dataset.softmax_batch), which would print a warning on every read. Tensor metadata never uses
  // LONG1 at these sizes, so the approximate value is harmless; the warning is kept off the user's terminal.
  const warn = console.warn;
  console.warn = () => {};
  try {
    return parser.parse(pickle);
  } catch (error) {
    throw new Error(`${source}: its pickle (data.pkl) cannot be read: ${(error as Error).message}`);
  } finally {
    console.warn = warn;
  }
}

/** Element i of a strided view, as a storage element index. */
function storageIndices(tensor: TorchTensor): Int32Array | Float64Array {
  const count = tensor.numel;
  const indices = count < 2 ** 31 ? new Int32Array(count) : new Float64Array(count);
  const rank = tensor.shape.length;
  const position = new Array<number>(rank).fill(0);
  let index = tensor.storageOffset;
  for (let i = 0; i < count; i++) {
    indices[i] = index;
    // Odometer over the shape, last dimension fastest (row-major output).
    for (let d = rank - 1; d >= 0; d--) {
      position[d]! += 1;
      index += tensor.stride[d]!;
      if (position[d]! < tensor.shape[d]!) break;
      index -= tensor.stride[d]! * tensor.shape[d]!;
      position[d] = 0;
    }
  }
  return indices;
}

function checkBounds(tensor: TorchTensor, storage: Uint8Array, name: string): void {
  if (tensor.numel === 0) return;
  let last = tensor.storageOffset;
  for (let d = 0; d < tensor.shape.length; d++) last += (tensor.shape[d]! - 1) * tensor.stride[d]!;
  const available = storage.length / BYTES_PER_ELEMENT[tensor.dtype];
  if (tensor.storageOffset < 0 || last >= available) throw new Error(`tensor "${name}" reaches element ${last} of a storage with ${available}`);
}

/** Whether the view is the storage's elements [offset, offset + numel) in row-major order (state dicts always are). */
function isContiguous(tensor: TorchTensor): boolean {
  let expected = 1;
  for (let d = tensor.shape.length - 1; d >= 0; d--) {
    if (tensor.shape[d]! !== 1 && tensor.stride[d]! !== expected) return false;
    expected *= tensor.shape[d]!;
  }
  return true;
}

/** A contiguous view's bytes as a typed-array source: the storage itself when aligned (no copy), else an aligned copy. */
function contiguousBytes(tensor: TorchTensor, storage: Uint8Array): { buffer: ArrayBuffer; byteOffset: number; length: number } {
  const bytes = BYTES_PER_ELEMENT[tensor.dtype];
  const begin = storage.byteOffset + tensor.storageOffset * bytes;
  if (begin % bytes === 0) return { buffer: storage.buffer as ArrayBuffer, byteOffset: begin, length: tensor.numel };
  return { buffer: storage.slice(tensor.storageOffset * bytes, (tensor.storageOffset + tensor.numel) * bytes).buffer, byteOffset: 0, length: tensor.numel };
}

/** Typed arrays read the host's byte order; torch files are little-endian. */
const LITTLE_ENDIAN_HOST = endianness() === 'LE';

/** A floating tensor (f16, bf16, f32, f64) as row-major float32; f16/bf16 convert exactly, f64 rounds. May share memory with `storage`. */
export function tensorToFloat32(tensor: TorchTensor, storage: Uint8Array, name: string): Float32Array {
  checkBounds(tensor, storage, name);
  if (tensor.dtype === 'float32' && LITTLE_ENDIAN_HOST && isContiguous(tensor)) {
    const { buffer, byteOffset, length } = contiguousBytes(tensor, storage);
    return new Float32Array(buffer, byteOffset, length);
  }
  const view = new DataView(storage.buffer, storage.byteOffset, storage.byteLength);
  const indices = storageIndices(tensor);
  const out = new Float32Array(indices.length);
  switch (tensor.dtype) {
    case 'float32':
      for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(4 * indices[i]!, true);
      break;
    case 'float16':
      for (let i = 0; i < out.length; i++) out[i] = float16BitsToFloat32(view.getUint16(2 * indices[i]!, true));
      break;
    case 'bfloat16': { // the upper half of a float32
      const scratch = new DataView(new ArrayBuffer(4));
      for (let i = 0; i < out.length; i++) {
        scratch.setUint32(0, view.getUint16(2 * indices[i]!, true) << 16);
        out[i] = scratch.getFloat32(0);
      }
      break;
    }
    case 'float64':
      for (let i = 0; i < out.length; i++) out[i] = view.getFloat64(8 * indices[i]!, true);
      break;
    default:
      throw new Error(`tensor "${name}" is ${tensor.dtype}, not floating point`);
  }
  return out;
}

/** An integer tensor as row-major int64. May share memory with `storage`. */
export function tensorToInt64(tensor: TorchTensor, storage: Uint8Array, name: string): BigInt64Array {
  checkBounds(tensor, storage, name);
  if (tensor.dtype === 'int64' && LITTLE_ENDIAN_HOST && isContiguous(tensor)) {
    const { buffer, byteOffset, length } = contiguousBytes(tensor, storage);
    return new BigInt64Array(buffer, byteOffset, length);
  }
  const view = new DataView(storage.buffer, storage.byteOffset, storage.byteLength);
  const indices = storageIndices(tensor);
  const out = new BigInt64Array(indices.length);
  const bytes = BYTES_PER_ELEMENT[tensor.dtype];
  for (let i = 0; i < out.length; i++) {
    const at = bytes * indices[i]!;
    switch (tensor.dtype) {
      case 'int64': out[i] = view.getBigInt64(at, true); break;
      case 'int32': out[i] = BigInt(view.getInt32(at, true)); break;
      case 'int16': out[i] = BigInt(view.getInt16(at, true)); break;
      case 'int8': out[i] = BigInt(view.getInt8(at)); break;
      case 'uint8': case 'bool': out[i] = BigInt(view.getUint8(at)); break;
      default: throw new Error(`tensor "${name}" is ${tensor.dtype}, not an integer type`);
    }
  }
  return out;
}

export function isFloatingDtype(dtype: TorchDtype): boolean {
  return dtype === 'float64' || dtype === 'float32' || dtype === 'float16' || dtype === 'bfloat16';
}

/**
 * Pickled data as plain JSON-able values: dicts and Namespaces become objects, tuples arrays;
 * tensors and unknown objects (meters, numpy scalars…) become a short description string.
 */
export function toPlainData(value: unknown): unknown {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  if (typeof value === 'bigint') return Number(value);
  if (Array.isArray(value)) return value.map(toPlainData);
  if (value instanceof Map) return Object.fromEntries([...value].map(([key, item]) => [String(key), toPlainData(item)]));
  if (value instanceof PickledNamespace) return toPlainData(value.fields);
  if (value instanceof TorchTensor) return `<tensor ${value.dtype} [${value.shape.join(', ')}]>`;
  if (value instanceof UnsupportedStorage) return `<tensor of unsupported storage ${value.storageType}>`;
  if (value instanceof Uint8Array) return `<${value.length} bytes>`;
  // pickleparser's stand-in for an unknown global: a class (or instance) carrying __module__/__name__.
  const named = (typeof value === 'function' ? value.prototype : value) as { __module__?: string; __name__?: string };
  return `<${named.__module__ ?? 'object'}.${named.__name__ ?? '?'}>`;
}
