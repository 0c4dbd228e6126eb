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
  | { type: 'float'; value: number }
  | { type: 'string'; value: string };
export const intAttribute = (value: number): Attribute => ({ type: 'int', value });
export const intsAttribute = (value: number[]): Attribute => ({ type: 'ints', value });
export const floatAttribute = (value: number): Attribute => ({ type: 'float', value });
export const stringAttribute = (value: string): Attribute => ({ type: 'string', value });

/** A node as recorded by the builder, for passes over the graph (e.g. autodiff). */
export interface RecordedNode { opType: string; inputs: string[]; outputs: string[]; attributes: Record<string, Attribute> }

function attributeProto(name: string, attribute: Attribute): onnxProto.onnx.IAttributeProto {
  const { AttributeType } = onnx.AttributeProto;
  switch (attribute.type) {
    case 'int': return { name, type: AttributeType.INT, i: attribute.value };
    case 'ints': return { name, type: AttributeType.INTS, ints: attribute.value };
    case 'float': return { name, type: AttributeType.FLOAT, f: attribute.value };
    case 'string': return { name, type: AttributeType.STRING, s: new TextEncoder().encode(attribute.value) };
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
 * Weights are initialisers (inference) or, with `parametersAsInputs`, graph inputs of the
 * weights' shapes (training: the parameters change every step and gradients flow to them).
 */
export class GraphBuilder {
  private readonly nodes: onnxProto.onnx.INodeProto[] = [];
  private readonly recorded: RecordedNode[] = [];
  private readonly initializers = new Map<string, onnxProto.onnx.ITensorProto>();
  private readonly constants = new Map<string, { dims: number[]; values: number[] }>();
  private readonly inputs: TensorSignature[] = [];
  private readonly outputs: TensorSignature[] = [];
  private readonly parameterNames = new Set<string>();
  private nodeCount = 0;

  constructor(private readonly weights: Map<string, NamedArray>, readonly parametersAsInputs = false) {}

  input(signature: TensorSignature): string {
    this.inputs.push(signature);
    return signature.name;
  }

  /** Declares `tensor` a graph output named `signature.name` (via Identity when the names differ). */
  output(tensor: string, signature: TensorSignature): void {
    if (tensor !== signature.name) this.record('Identity', [tensor], [signature.name], {}, `output_${signature.name}`);
    this.outputs.push(signature);
  }

  /** A model weight by its parameter name, added once as an initialiser (or graph input, see the class). */
  weight(name: string): string {
    if (this.initializers.has(name) || this.parameterNames.has(name)) return name;
    const tensor = this.weights.get(name);
    if (!tensor) throw new Error(`weights have no tensor "${name}"`);
    if (this.parametersAsInputs) {
      this.parameterNames.add(name);
      this.input({ name, type: 'float32', dims: tensor.shape });
    } else {
      this.addInitializer(name, 'float32', tensor.shape, bytesOf(tensor.data));
    }
    return name;
  }

  /** The parameters declared as graph inputs so far, in order of first use. */
  get parameters(): string[] {
    return [...this.parameterNames];
  }

  /** A float32 initialiser computed from the weights (e.g. a transposed or sliced weight). */
  derivedWeight(name: string, dims: number[], data: Float32Array): string {
    if (!this.initializers.has(name)) this.addInitializer(name, 'float32', dims, bytesOf(data));
    return name;
  }

  floatConstant(values: number[], dims: number[] = [values.length]): string {
    const name = this.addInitializer(this.uniqueName('const'), 'float32', dims, bytesOf(Float32Array.from(values)));
    this.constants.set(name, { dims, values });
    return name;
  }

  int64Constant(values: number[], dims: number[] = [values.length]): string {
    const name = this.addInitializer(this.uniqueName('const'), 'int64', dims, bytesOf(BigInt64Array.from(values.map(BigInt))));
    this.constants.set(name, { dims, values });
    return name;
  }

  /** The dims and values of a constant made by floatConstant / int64Constant, if `name` is one. */
  constant(name: string): { dims: number[]; values: number[] } | undefined {
    return this.constants.get(name);
  }

  /** A single-output node; its output tensor is named like the node. */
  node(opType: string, inputs: string[], attributes: Record<string, Attribute> = {}): string {
    return this.nodeWithOutputs(opType, inputs, 1, attributes)[0]!;
  }

  /** A node with `outputCount` outputs, named `<node>` and `<node>_1`, `<node>_2`, ... */
  nodeWithOutputs(opType: string, inputs: string[], outputCount: number, attributes: Record<string, Attribute> = {}): string[] {
    const name = this.uniqueName(opType);
    const outputs = Array.from({ length: outputCount }, (_, i) => (i === 0 ? name : `${name}_${i}`));
    this.record(opType, inputs, outputs, attributes, name);
    return outputs;
  }

  /** Every node so far, in graph (topological) order. */
  get recordedNodes(): readonly RecordedNode[] {
    return this.recorded;
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

  private record(opType: string, inputs: string[], outputs: string[], attributes: Record<string, Attribute>, name: string): void {
    this.recorded.push({ opType, inputs, outputs, attributes });
    this.nodes.push({
      opType, name, input: inputs, output: outputs,
      attribute: Object.entries(attributes).map(([key, attribute]) => attributeProto(key, attribute)),
    });
  }

  private addInitializer(name: string, type: ElementType, dims: number[], rawData: Uint8Array): string {
    this.initializers.set(name, { name, dataType: DATA_TYPE[type], dims, rawData });
    return name;
  }

  private uniqueName(prefix: string): string {
    return `${prefix}_${this.nodeCount++}`;
  }
}
