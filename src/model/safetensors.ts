// safetensors encode/decode. Hand-written: the format is 30 lines of spec
// (8-byte little-endian header size, JSON header {name: {dtype, shape, data_offsets}},
// raw little-endian data) and no maintained npm package implements it.
// F16 is stored for shipped models; everything is returned as float32. Integer and bool
// tensors (I64, BOOL: token ids, masks and counters in reference dumps) are read as float32
// too, refusing values float32 cannot hold exactly (|v| > 2^24).

export type StoredDtype = 'F32' | 'F16';
export interface NamedArray { shape: number[]; data: Float32Array }
export interface SafetensorsFile { tensors: Map<string, NamedArray>; metadata: Record<string, string> }

const ALIGNMENT = 8;
const BYTES_PER_VALUE: Record<string, number> = { F32: 4, F16: 2, I64: 8, BOOL: 1 };
const EXACT_FLOAT32_INTEGER = 2n ** 24n;

export function encodeSafetensors(
  tensors: Map<string, NamedArray>,
  options: { dtype?: StoredDtype; metadata?: Record<string, string> } = {},
): Buffer {
  const dtype = options.dtype ?? 'F32';
  const bytesPerValue = dtype === 'F32' ? 4 : 2;
  const header: Record<string, unknown> = {};
  if (options.metadata) header.__metadata__ = options.metadata;
  let offset = 0;
  const names = [...tensors.keys()].sort();
  for (const name of names) {
    const { shape, data } = tensors.get(name)!;
    if (data.length !== shape.reduce((a, b) => a * b, 1)) throw new Error(`tensor "${name}": data length ${data.length} does not match shape [${shape}]`);
    header[name] = { dtype, shape, data_offsets: [offset, offset + data.length * bytesPerValue] };
    offset += data.length * bytesPerValue;
  }
  let headerJson = JSON.stringify(header);
  // Pad the header with spaces so the data section starts 8-byte aligned (as the spec recommends).
  headerJson += ' '.repeat((ALIGNMENT - ((8 + Buffer.byteLength(headerJson)) % ALIGNMENT)) % ALIGNMENT);
  const headerBytes = Buffer.from(headerJson, 'utf8');
  const out = Buffer.alloc(8 + headerBytes.length + offset);
  out.writeBigUInt64LE(BigInt(headerBytes.length), 0);
  headerBytes.copy(out, 8);
  let position = 8 + headerBytes.length;
  for (const name of names) {
    const { data } = tensors.get(name)!;
    if (dtype === 'F32') {
      for (let i = 0; i < data.length; i++, position += 4) out.writeFloatLE(data[i]!, position);
    } else {
      for (let i = 0; i < data.length; i++, position += 2) out.writeUInt16LE(float32ToFloat16Bits(data[i]!), position);
    }
  }
  return out;
}

/** Parses and validates safetensors bytes (any Uint8Array: Node Buffer or fetched); every problem is reported with what is wrong. */
export function decodeSafetensors(buffer: Uint8Array, source = 'safetensors file'): SafetensorsFile {
  if (buffer.length < 8) throw new Error(`${source}: truncated (${buffer.length} bytes, no header size)`);
  const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  const headerSize = Number(view.getBigUint64(0, true));
  if (headerSize > buffer.length - 8) throw new Error(`${source}: truncated (header says ${headerSize} bytes, file has ${buffer.length - 8})`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(buffer.subarray(8, 8 + headerSize)));
  } catch {
    throw new Error(`${source}: header is not valid JSON`);
  }
  const dataStart = 8 + headerSize;
  const dataLength = buffer.length - dataStart;
  const tensors = new Map<string, NamedArray>();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = entry as Record<string, string>;
      continue;
    }
    const { dtype, shape, data_offsets: offsets } = entry as { dtype: string; shape: number[]; data_offsets: [number, number] };
    const bytesPerValue = BYTES_PER_VALUE[dtype];
    if (bytesPerValue === undefined) throw new Error(`${source}: tensor "${name}" has unsupported dtype ${dtype}`);
    const count = shape.reduce((a, b) => a * b, 1);
    const [begin, end] = offsets;
    if (end - begin !== count * bytesPerValue) throw new Error(`${source}: tensor "${name}" byte range does not match its shape [${shape}]`);
    if (end > dataLength) throw new Error(`${source}: truncated (tensor "${name}" ends at byte ${end}, data has ${dataLength})`);
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
