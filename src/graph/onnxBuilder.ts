// A small ONNX graph builder: the one place that creates nodes, initialisers and
// value-infos. Hand-written because onnx-proto only provides the raw protobuf classes
// (ModelProto, GraphProto, NodeProto, ...) and no builder API.
// Graphs use the default domain at opset 17 (LayerNormalization needs 17).
import onnxProto from 'onnx-proto';
import type { NamedArray } from '../model/safetensors.js';

const { onnx } = onnxProto;

export const OPSET_VERSION = 17;
/** IR version 8 is the newest this onnx-proto knows and is sufficient for opset 17. */
const IR_VERSION = 8;

export type ElementType = 'float32' | 'int64';
/** A dimension: a fixed size or a symbolic name (dynamic). */
export type Dimension = number | string;

export interface TensorSignature { name: string; type: ElementType; dims: Dimension[] }

const DATA_TYPE: Record<ElementType, number> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  int64: onnx.TensorProto.DataType.INT64,
};

/** Typed node attributes (ONNX distinguishes int and float attributes, JavaScript numbers do not). */
export type Attribute =
  | { type: 'int'; value: number }
  | { type: 'ints'; value: number[] }
  | { type: 'float'; value: number };
export const intAttribute = (value: number): Attribute => ({ type: 'int', value });
export const intsAttribute = (value: number[]): Attribute => ({ type: 'ints', value });
export const floatAttribute = (value: number): Attribute => ({ type: 'float', value });

function attributeProto(name: string, attribute: Attribute): onnxProto.onnx.IAttributeProto {
  const { AttributeType } = onnx.AttributeProto;
  switch (attribute.type) {
    case 'int': return { name, type: AttributeType.INT, i: attribute.value };
    case 'ints': return { name, type: AttributeType.INTS, ints: attribute.value };
    case 'float': return { name, type: AttributeType.FLOAT, f: attribute.value };
  }
}

function valueInfo({ name, type, dims }: TensorSignature): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: DATA_TYPE[type],
        shape: { dim: dims.map((dim) => (typeof dim === 'number' ? { dimValue: dim } : { dimParam: dim })) },
      },
    },
  };
}

const bytesOf = (array: Float32Array | BigInt64Array): Uint8Array => new Uint8Array(array.buffer, array.byteOffset, array.byteLength);

/**
 * Accumulates one graph. Every method returns the name of the tensor it produced, so
 * graph code reads like the math: `builder.node('Add', [x, y])`.
 */
export class GraphBuilder {
  private readonly nodes: onnxProto.onnx.INodeProto[] = [];
  private readonly initializers = new Map<string, onnxProto.onnx.ITensorProto>();
  private readonly inputs: TensorSignature[] = [];
  private readonly outputs: TensorSignature[] = [];
  private nodeCount = 0;

  constructor(private readonly weights: Map<string, NamedArray>) {}

  input(signature: TensorSignature): string {
    this.inputs.push(signature);
    return signature.name;
  }

  /** Declares `tensor` a graph output named `signature.name` (via Identity when the names differ). */
  output(tensor: string, signature: TensorSignature): void {
    if (tensor !== signature.name) this.nodes.push({ opType: 'Identity', input: [tensor], output: [signature.name], name: `output_${signature.name}` });
    this.outputs.push(signature);
  }

  /** A model weight by its parameter name, added once as an initialiser. */
  weight(name: string): string {
    if (!this.initializers.has(name)) {
      const tensor = this.weights.get(name);
      if (!tensor) throw new Error(`weights have no tensor "${name}"`);
      this.addInitializer(name, 'float32', tensor.shape, bytesOf(tensor.data));
    }
    return name;
  }

  /** A float32 initialiser computed from the weights (e.g. a transposed or sliced weight). */
  derivedWeight(name: string, dims: number[], data: Float32Array): string {
    if (!this.initializers.has(name)) this.addInitializer(name, 'float32', dims, bytesOf(data));
    return name;
  }

  floatConstant(values: number[], dims: number[] = [values.length]): string {
    return this.addInitializer(this.uniqueName('const'), 'float32', dims, bytesOf(Float32Array.from(values)));
  }

  int64Constant(values: number[]): string {
    return this.addInitializer(this.uniqueName('const'), 'int64', [values.length], bytesOf(BigInt64Array.from(values.map(BigInt))));
  }

  /** A single-output node; its output tensor is named like the node. */
  node(opType: string, inputs: string[], attributes: Record<string, Attribute> = {}): string {
    const name = this.uniqueName(opType);
    this.nodes.push({
      opType, name, input: inputs, output: [name],
      attribute: Object.entries(attributes).map(([key, attribute]) => attributeProto(key, attribute)),
    });
    return name;
  }

  get signature(): { inputs: TensorSignature[]; outputs: TensorSignature[] } {
    return { inputs: [...this.inputs], outputs: [...this.outputs] };
  }

  /** The serialised ModelProto. */
  build(graphName: string): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: IR_VERSION,
      producerName: 'mue',
      opsetImport: [{ domain: '', version: OPSET_VERSION }],
      graph: {
        name: graphName,
        node: this.nodes,
        initializer: [...this.initializers.values()],
        input: this.inputs.map(valueInfo),
        output: this.outputs.map(valueInfo),
      },
    });
    return onnx.ModelProto.encode(model).finish();
  }

  private addInitializer(name: string, type: ElementType, dims: number[], rawData: Uint8Array): string {
    this.initializers.set(name, { name, dataType: DATA_TYPE[type], dims, rawData });
    return name;
  }

  private uniqueName(prefix: string): string {
    return `${prefix}_${this.nodeCount++}`;
  }
}
