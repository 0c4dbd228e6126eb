// safetensors encode/decode. Hand-written: the format is 30 lines of spec
// (8-byte little-endian header size, JSON header {name: {dtype, shape, data_offsets}},
// raw little-endian data) and no maintained npm package implements it.
// F16 is stored for shipped models; everything is returned as float32. Integer and bool
// tensors (I64, BOOL: token ids, masks and counters in reference dumps) are read as float32
// too, refusing values float32 cannot hold exactly (|v| > 2^24).
// Integrity: every file mue writes carries in the header's __metadata__.sha256 the SHA-256 of its
// tensor table (names, dtypes, shapes, offsets) followed by its data section, verified on load, and the tensors must tile the data section exactly
// (no gap, no overlap, nothing after the last tensor), so flipped bits and shifted offsets are
// errors, not silently different weights. Files without a checksum (written by other tools)
// still get every structural check; only bit flips inside their data cannot be detected.
// The hash function is passed in (Node: nodeSha256 in sha256.ts), so this module uses no
// platform API; a caller that passes none writes and verifies no checksum.

export type StoredDtype = 'F32' | 'F16';
export interface NamedArray { shape: number[]; data: Float32Array }
export interface SafetensorsFile { tensors: Map<string, NamedArray>; metadata: Record<string, string> }

const ALIGNMENT = 8;
const BYTES_PER_VALUE: Record<string, number> = { F32: 4, F16: 2, I64: 8, BOOL: 1 };
const EXACT_FLOAT32_INTEGER = 2n ** 24n;
/** Metadata key of the data section's SHA-256 (hex). */
export const CHECKSUM_KEY = 'sha256';

interface TensorEntry { dtype: string; shape: number[]; data_offsets: [number, number] }

/** SHA-256 (lower-case hex) of the byte chunks, in order. */
export type Sha256 = (chunks: Uint8Array[]) => string;

/** The checksum: SHA-256 of the tensor table in name order, then the data; a changed offset, shape or byte all change it. */
export function tensorChecksum(sha256: Sha256, entries: Record<string, TensorEntry>, dataSection: Uint8Array): string {
  const table = Object.keys(entries).sort().map((name) => [name, entries[name]!.dtype, entries[name]!.shape, entries[name]!.data_offsets]);
  return sha256([new TextEncoder().encode(JSON.stringify(table)), dataSection]);
}

export function encodeSafetensors(
  tensors: Map<string, NamedArray>,
  options: { dtype?: StoredDtype; metadata?: Record<string, string>; sha256?: Sha256 } = {},
): Buffer {
  const dtype = options.dtype ?? 'F32';
  const bytesPerValue = dtype === 'F32' ? 4 : 2;
  const entries: Record<string, TensorEntry> = {};
  let offset = 0;
  const names = [...tensors.keys()].sort();
  for (const name of names) {
    const { shape, data } = tensors.get(name)!;
    if (data.length !== shape.reduce((a, b) => a * b, 1)) throw new Error(`tensor "${name}": data length ${data.length} does not match shape [${shape}]`);
    entries[name] = { dtype, shape, data_offsets: [offset, offset + data.length * bytesPerValue] };
    offset += data.length * bytesPerValue;
  }
  const dataSection = Buffer.alloc(offset);
  let position = 0;
  for (const name of names) {
    const { data } = tensors.get(name)!;
    if (dtype === 'F32') {
      for (let i = 0; i < data.length; i++, position += 4) dataSection.writeFloatLE(data[i]!, position);
    } else {
      for (let i = 0; i < data.length; i++, position += 2) dataSection.writeUInt16LE(float32ToFloat16Bits(data[i]!), position);
    }
  }
  const checksum: Record<string, string> = options.sha256 ? { [CHECKSUM_KEY]: tensorChecksum(options.sha256, entries, dataSection) } : {};
  return assembleSafetensors(entries, { ...options.metadata, ...checksum }, dataSection);
}

/** Header size, JSON header (metadata first), data: the file layout of the format. */
function assembleSafetensors(entries: Record<string, TensorEntry>, metadata: Record<string, string>, dataSection: Uint8Array): Buffer {
  let headerJson = JSON.stringify({ __metadata__: metadata, ...entries });
  // Pad the header with spaces so the data section starts 8-byte aligned (as the spec recommends).
  headerJson += ' '.repeat((ALIGNMENT - ((8 + Buffer.byteLength(headerJson)) % ALIGNMENT)) % ALIGNMENT);
  const headerBytes = Buffer.from(headerJson, 'utf8');
  const out = Buffer.alloc(8 + headerBytes.length + dataSection.length);
  out.writeBigUInt64LE(BigInt(headerBytes.length), 0);
  headerBytes.copy(out, 8);
  out.set(dataSection, 8 + headerBytes.length);
  return out;
}

/**
 * Adds (or replaces) the checksum and metadata of an existing file without touching its tensor
 * bytes: how files written before checksums existed are upgraded bit-identically.
 */
export function withChecksum(buffer: Uint8Array, sha256: Sha256, metadata: Record<string, string> = {}, source = 'safetensors file'): Buffer {
  decodeSafetensors(buffer, source, sha256); // only a well-formed file gets a checksum
  const { header, dataStart } = readHeader(buffer, source);
  const { __metadata__: oldMetadata, ...entries } = header as Record<string, TensorEntry> & { __metadata__?: Record<string, string> };
  const dataSection = buffer.subarray(dataStart);
  return assembleSafetensors(entries, { ...oldMetadata, ...metadata, [CHECKSUM_KEY]: tensorChecksum(sha256, entries, dataSection) }, dataSection);
}

function readHeader(buffer: Uint8Array, source: string): { header: Record<string, unknown>; dataStart: number } {
  if (buffer.length < 8) throw new Error(`${source}: truncated (${buffer.length} bytes, no header size)`);
  const headerSize = Number(new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength).getBigUint64(0, true));
  if (headerSize > buffer.length - 8) throw new Error(`${source}: truncated (header says ${headerSize} bytes, file has ${buffer.length - 8})`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder().decode(buffer.subarray(8, 8 + headerSize)));
  } catch {
    throw new Error(`${source}: header is not valid JSON`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new Error(`${source}: header is not a JSON object`);
  return { header: header as Record<string, unknown>, dataStart: 8 + headerSize };
}

const isIndex = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;

/**
 * Parses and validates safetensors bytes (any Uint8Array: Node Buffer or fetched) and, given
 * `sha256`, their checksum; every problem is reported with what is wrong.
 */
export function decodeSafetensors(buffer: Uint8Array, source = 'safetensors file', sha256?: Sha256): SafetensorsFile {
  const { header, dataStart } = readHeader(buffer, source);
  const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  const dataLength = buffer.length - dataStart;
  const metadataEntry = header.__metadata__ ?? {};
  if (typeof metadataEntry !== 'object' || metadataEntry === null || Object.values(metadataEntry).some((value) => typeof value !== 'string')) {
    throw new Error(`${source}: __metadata__ must map names to strings`);
  }
  const metadata = metadataEntry as Record<string, string>;
  const layout: Array<{ name: string; dtype: string; shape: number[]; begin: number; end: number }> = [];
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const { dtype, shape, data_offsets: offsets } = (entry ?? {}) as { dtype: unknown; shape: unknown; data_offsets: unknown };
    const bytesPerValue = typeof dtype === 'string' ? BYTES_PER_VALUE[dtype] : undefined;
    if (bytesPerValue === undefined) throw new Error(`${source}: tensor "${name}" has unsupported dtype ${JSON.stringify(dtype)}`);
    if (!Array.isArray(shape) || !shape.every(isIndex)) throw new Error(`${source}: tensor "${name}" has a malformed shape`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isIndex)) throw new Error(`${source}: tensor "${name}" has malformed data_offsets`);
    const [begin, end] = offsets as [number, number];
    const count = shape.reduce((a: number, b: number) => a * b, 1);
    if (end - begin !== count * bytesPerValue) throw new Error(`${source}: tensor "${name}" byte range does not match its shape [${shape}]`);
    if (end > dataLength) throw new Error(`${source}: truncated (tensor "${name}" ends at byte ${end}, data has ${dataLength})`);
    layout.push({ name, dtype: dtype as string, shape, begin, end });
  }
  // The tensors must tile the data section: a shifted offset leaves a gap or an overlap.
  layout.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expectedBegin = 0;
  for (const { name, begin, end } of layout) {
    if (begin !== expectedBegin) {
      throw new Error(`${source}: tensor "${name}" data_offsets [${begin}, ${end}] ${begin < expectedBegin ? 'overlap the previous tensor' : 'leave a gap after the previous tensor'} (shifted or corrupted offsets)`);
    }
    expectedBegin = end;
  }
  if (expectedBegin !== dataLength) throw new Error(`${source}: ${dataLength - expectedBegin} bytes after the last tensor (corrupted offsets or appended data)`);
  const storedChecksum = metadata[CHECKSUM_KEY];
  if (storedChecksum !== undefined && sha256) {
    const entries = Object.fromEntries(layout.map(({ name, dtype, shape, begin, end }) => [name, { dtype, shape, data_offsets: [begin, end] as [number, number] }]));
    const actual = tensorChecksum(sha256, entries, buffer.subarray(dataStart));
    if (actual !== storedChecksum) throw new Error(`${source}: checksum mismatch, the tensors or their table are corrupted (SHA-256 ${actual.slice(0, 12)}…, header says ${storedChecksum.slice(0, 12)}…)`);
  }
  const tensors = new Map<string, NamedArray>();
  for (const { name, dtype, shape, begin } of layout) {
    const count = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(count);
    const base = dataStart + begin;
    if (dtype === 'F32') for (let i = 0; i < count; i++) data[i] = view.getFloat32(base + 4 * i, true);
    else if (dtype === 'F16') for (let i = 0; i < count; i++) data[i] = float16BitsToFloat32(view.getUint16(base + 2 * i, true));
    else if (dtype === 'BOOL') for (let i = 0; i < count; i++) data[i] = view.getUint8(base + i) ? 1 : 0;
    else {
      for (let i = 0; i < count; i++) {
        const value = view.getBigInt64(base + 8 * i, true);
        if (value > EXACT_FLOAT32_INTEGER || value < -EXACT_FLOAT32_INTEGER) throw new Error(`${source}: tensor "${name}" holds ${value}, beyond float32's exact integers`);
        data[i] = Number(value);
      }
    }
    tensors.set(name, { shape, data });
  }
  return { tensors, metadata };
}

// IEEE-754 half precision conversion (Node 20 has no Float16Array).
const conversionView = new DataView(new ArrayBuffer(4));

export function float32ToFloat16Bits(value: number): number {
  conversionView.setFloat32(0, value);
  const bits = conversionView.getUint32(0);
  const sign = (bits >>> 16) & 0x8000;
  const exponent = ((bits >>> 23) & 0xff) - 127 + 15;
  let mantissa = bits & 0x7fffff;
  if (((bits >>> 23) & 0xff) === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0); // inf / NaN
  if (exponent >= 0x1f) return sign | 0x7c00; // overflow -> inf
  if (exponent <= 0) {
    if (exponent < -10) return sign; // underflow -> 0
    mantissa |= 0x800000; // subnormal half
    const shift = 14 - exponent;
    const rounded = (mantissa >> shift) + ((mantissa >> (shift - 1)) & 1);
    return sign | rounded;
  }
  const rounded = (exponent << 10) | (mantissa >> 13);
  return sign | (rounded + ((mantissa >> 12) & 1)); // round half up; carry into the exponent is correct
}

export function float16BitsToFloat32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}
