// Reverse-mode differentiation over the nodes a GraphBuilder recorded: for every node on a
// path from a parameter to the loss, its vector–Jacobian product (VJP) is appended to the
// same graph as ONNX nodes, so one graph computes the loss and every parameter's gradient.
// Hand-written: onnxruntime's npm packages have no training API and no library emits
// gradient graphs for ONNX in JavaScript. Shapes are static: the graph's inputs have fixed
// dims, and the pass infers every tensor's shape (and the values of small int64 tensors such
// as Shape outputs) to know which axes a broadcast gradient must be summed over.
import { type Attribute, floatAttribute, type GraphBuilder, intAttribute, intsAttribute, type RecordedNode, stringAttribute } from './onnxBuilder.js';

export type Shape = number[];

/** Tensor shapes and the values of small integer tensors, inferred node by node. */
interface Inferred { shapes: Map<string, Shape>; values: Map<string, number[]> }

const product = (dims: number[]): number => dims.reduce((a, b) => a * b, 1);
const normaliseAxis = (axis: number, rank: number): number => (axis < 0 ? axis + rank : axis);

function attributeInt(node: RecordedNode, name: string, fallback: number): number {
  const attribute = node.attributes[name];
  return attribute && attribute.type === 'int' ? attribute.value : fallback;
}
function attributeInts(node: RecordedNode, name: string): number[] | undefined {
  const attribute = node.attributes[name];
  return attribute && attribute.type === 'ints' ? attribute.value : undefined;
}

/** NumPy broadcasting of two shapes. */
function broadcast(a: Shape, b: Shape, where: string): Shape {
  const rank = Math.max(a.length, b.length);
  const out: Shape = [];
  for (let i = 0; i < rank; i++) {
    const x = a[i - rank + a.length] ?? 1;
    const y = b[i - rank + b.length] ?? 1;
    if (x !== y && x !== 1 && y !== 1) throw new Error(`autodiff: shapes [${a}] and [${b}] do not broadcast at ${where}`);
    out.push(x === 1 ? y : x);
  }
  return out;
}

/** Shape-preserving ops and broadcasting binary ops the model's graphs use (Sqrt: the unsupported-op test). */
const ELEMENTWISE_UNARY = new Set(['Erf', 'Neg', 'Exp', 'Sqrt', 'Softmax', 'LogSoftmax', 'Identity']);
const ELEMENTWISE_BINARY = new Set(['Add', 'Sub', 'Mul', 'Div']);

/** Infers the output shapes (and small int64 values) of one node from its inputs'. */
function inferNode(node: RecordedNode, known: Inferred): void {
  const shapeOf = (name: string): Shape => {
    const shape = known.shapes.get(name);
    if (!shape) throw new Error(`autodiff: no shape known for tensor "${name}" (input of ${node.opType})`);
    return shape;
  };
  const valuesOf = (name: string): number[] => {
    const values = known.values.get(name);
    if (!values) throw new Error(`autodiff: ${node.opType} needs the value of "${name}" at build time`);
    return values;
  };
  const [first, second] = node.inputs;
  const set = (shape: Shape, index = 0): void => void known.shapes.set(node.outputs[index]!, shape);
  const op = node.opType;
  if (ELEMENTWISE_UNARY.has(op)) return set(shapeOf(first!));
  if (ELEMENTWISE_BINARY.has(op)) return set(broadcast(shapeOf(first!), shapeOf(second!), op));
  switch (op) {
    case 'Sum': return set(node.inputs.map(shapeOf).reduce((a, b) => broadcast(a, b, op)));
    case 'MatMul': {
      const a = shapeOf(first!);
      const b = shapeOf(second!);
      if (a.length < 2 || b.length < 2) throw new Error('autodiff: MatMul of a rank-1 operand is not supported');
      if (a.at(-1) !== b.at(-2)) throw new Error(`autodiff: MatMul of [${a}] and [${b}]`);
      return set([...broadcast(a.slice(0, -2), b.slice(0, -2), op), a.at(-2)!, b.at(-1)!]);
    }
    case 'LayerNormalization': {
      const x = shapeOf(first!);
      const axis = normaliseAxis(attributeInt(node, 'axis', -1), x.length);
      set(x);
      const reduced = x.map((d, i) => (i < axis ? d : 1));
      for (let i = 1; i < node.outputs.length; i++) set(reduced, i);
      return;
    }
    case 'Reshape': {
      const x = shapeOf(first!);
      const target = valuesOf(second!).map((d, i) => (d === 0 ? x[i]! : d));
      const unknown = target.indexOf(-1);
      if (unknown >= 0) target[unknown] = product(x) / -product(target);
      if (product(target) !== product(x)) throw new Error(`autodiff: Reshape of [${x}] to [${target}]`);
      return set(target);
    }
    case 'Transpose': {
      const x = shapeOf(first!);
      const perm = attributeInts(node, 'perm') ?? x.map((_, i) => x.length - 1 - i);
      return set(perm.map((p) => x[p]!));
    }
    case 'Concat': {
      const shapes = node.inputs.map(shapeOf);
      const axis = normaliseAxis(attributeInt(node, 'axis', 0), shapes[0]!.length);
      const out = [...shapes[0]!];
      out[axis] = shapes.reduce((sum, s) => sum + s[axis]!, 0);
      return set(out);
    }
    case 'Slice': {
      const x = shapeOf(first!);
      const { begins, ends } = sliceBounds(node, x, valuesOf);
      return set(x.map((_, i) => ends[i]! - begins[i]!));
    }
    case 'Gather': {
      const data = shapeOf(first!);
      const axis = normaliseAxis(attributeInt(node, 'axis', 0), data.length);
      return set([...data.slice(0, axis), ...shapeOf(second!), ...data.slice(axis + 1)]);
    }
    case 'Unsqueeze': {
      const x = shapeOf(first!);
      const out = [...x];
      const rank = x.length + valuesOf(second!).length;
      for (const axis of valuesOf(second!).map((a) => normaliseAxis(a, rank)).sort((a, b) => a - b)) out.splice(axis, 0, 1);
      return set(out);
    }
    case 'Shape': {
      const x = shapeOf(first!);
      const start = normaliseAxis(attributeInt(node, 'start', 0), x.length);
      const end = normaliseAxis(attributeInt(node, 'end', x.length), x.length);
      known.values.set(node.outputs[0]!, x.slice(start, end));
      return set([end - start]);
    }
    case 'ReduceSum': {
      const x = shapeOf(first!);
      const axes = (second ? valuesOf(second) : x.map((_, i) => i)).map((a) => normaliseAxis(a, x.length));
      const keep = attributeInt(node, 'keepdims', 1) === 1;
      return set(keep ? x.map((d, i) => (axes.includes(i) ? 1 : d)) : x.filter((_, i) => !axes.includes(i)));
    }
    default:
      throw new Error(`autodiff: cannot infer the shape of ONNX op "${op}"`);
  }
}

/** Per-axis [begin, end) of a Slice with unit steps, clamped like ONNX. */
function sliceBounds(node: RecordedNode, x: Shape, valuesOf: (name: string) => number[]): { begins: number[]; ends: number[] } {
  const [, starts, ends, axesName, steps] = node.inputs;
  const axes = axesName ? valuesOf(axesName).map((a) => normaliseAxis(a, x.length)) : x.map((_, i) => i);
  if (steps && valuesOf(steps).some((s) => s !== 1)) throw new Error('autodiff: Slice with steps ≠ 1 is not supported');
  const begins = x.map(() => 0);
  const finishes = [...x];
  axes.forEach((axis, i) => {
    const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + x[axis]! : v, 0), x[axis]!);
    begins[axis] = clamp(valuesOf(starts!)[i]!);
    finishes[axis] = clamp(valuesOf(ends!)[i]!);
  });
  return { begins, ends: finishes };
}

/** What a VJP may use: the builder to emit nodes, the forward shapes and values. */
class Emitter {
  constructor(readonly builder: GraphBuilder, readonly known: Inferred) {}

  shape(tensor: string): Shape {
    const shape = this.known.shapes.get(tensor) ?? this.builder.constant(tensor)?.dims;
    if (!shape) throw new Error(`autodiff: no shape for "${tensor}"`);
    return shape;
  }

  values(tensor: string): number[] {
    const values = this.known.values.get(tensor);
    if (!values) throw new Error(`autodiff: no build-time value for "${tensor}"`);
    return values;
  }

  node(opType: string, inputs: string[], attributes?: Record<string, Attribute>, shape?: Shape): string {
    const out = this.builder.node(opType, inputs, attributes);
    if (shape) this.known.shapes.set(out, shape);
    return out;
  }

  reshape(x: string, shape: Shape): string {
    return this.node('Reshape', [x, this.builder.int64Constant(shape)], {}, shape);
  }

  transposeLastTwo(x: string): string {
    const shape = this.shape(x);
    const perm = shape.map((_, i) => i);
    [perm[shape.length - 2], perm[shape.length - 1]] = [perm[shape.length - 1]!, perm[shape.length - 2]!];
    return this.node('Transpose', [x], { perm: intsAttribute(perm) }, perm.map((p) => shape[p]!));
  }

  /** Σ over the axes along which `target` was broadcast to `from`: the gradient of a broadcast. */
  reduceTo(gradient: string, from: Shape, target: Shape): string {
    if (from.length === target.length && from.every((d, i) => d === target[i])) return gradient;
    const leading = from.length - target.length;
    const axes = from.map((_, i) => i).filter((i) => i < leading || (target[i - leading] === 1 && from[i] !== 1));
    const summed = axes.length === 0 ? gradient
      : this.node('ReduceSum', [gradient, this.builder.int64Constant(axes)], { keepdims: intAttribute(1) }, from.map((d, i) => (axes.includes(i) ? 1 : d)));
    return this.reshape(summed, target);
  }

  /** Σ over the last axis, kept: (..., n) -> (..., 1). */
  sumLast(x: string): string {
    const shape = this.shape(x);
    return this.node('ReduceSum', [x, this.builder.int64Constant([-1])], { keepdims: intAttribute(1) }, [...shape.slice(0, -1), 1]);
  }

  scalar(value: number): string {
    return this.builder.floatConstant([value], []);
  }
}

/** A VJP: given the node and the gradient of its (first) output, the gradient of each input (null: none needed). */
type VectorJacobianProduct = (node: RecordedNode, gradient: string, emit: Emitter, needed: boolean[]) => (string | null)[];

const binaryReduced = (node: RecordedNode, emit: Emitter, gradients: [() => string, () => string], needed: boolean[]): (string | null)[] => {
  const outShape = emit.shape(node.outputs[0]!);
  return gradients.map((make, i) => (needed[i] ? emit.reduceTo(make(), outShape, emit.shape(node.inputs[i]!)) : null));
};

const VJPS: Record<string, VectorJacobianProduct> = {
  Identity: (_node, g) => [g],
  // d(a ± b) = g, ±g summed over broadcast axes.
  Add: (node, g, emit, needed) => binaryReduced(node, emit, [() => g, () => g], needed),
  Sub: (node, g, emit, needed) => binaryReduced(node, emit, [() => g, () => emit.node('Neg', [g], {}, emit.shape(node.outputs[0]!))], needed),
  // d(a·b) = g·b, g·a.
  Mul: (node, g, emit, needed) => {
    const [a, b] = node.inputs as [string, string];
    const shape = emit.shape(node.outputs[0]!);
    return binaryReduced(node, emit, [() => emit.node('Mul', [g, b], {}, shape), () => emit.node('Mul', [g, a], {}, shape)], needed);
  },
  // d(a/b) = g/b, −g·(a/b)/b.
  Div: (node, g, emit, needed) => {
    const [, b] = node.inputs as [string, string];
    const y = node.outputs[0]!;
    const shape = emit.shape(y);
    return binaryReduced(node, emit, [
      () => emit.node('Div', [g, b], {}, shape),
      () => emit.node('Neg', [emit.node('Mul', [g, emit.node('Div', [y, b], {}, shape)], {}, shape)], {}, shape),
    ], needed);
  },
  Sum: (node, g, emit, needed) => node.inputs.map((input, i) => (needed[i] ? emit.reduceTo(g, emit.shape(node.outputs[0]!), emit.shape(input)) : null)),
  Neg: (node, g, emit) => [emit.node('Neg', [g], {}, emit.shape(node.outputs[0]!))],
  // d erf(x) = g · 2/√π · exp(−x²) = g · exp(ln(2/√π) − x²) (one pass fewer over x).
  Erf: (node, g, emit) => {
    const x = node.inputs[0]!;
    const shape = emit.shape(x);
    const exponent = emit.node('Sub', [emit.scalar(Math.log(2 / Math.sqrt(Math.PI))), emit.node('Mul', [x, x], {}, shape)], {}, shape);
    return [emit.node('Mul', [g, emit.node('Exp', [exponent], {}, shape)], {}, shape)];
  },
  // y = softmax(x): dx = y·(g − Σ g·y).
  Softmax: (node, g, emit) => {
    assertLastAxis(node, emit);
    const y = node.outputs[0]!;
    const shape = emit.shape(y);
    const inner = emit.sumLast(emit.node('Mul', [g, y], {}, shape));
    return [emit.node('Mul', [y, emit.node('Sub', [g, inner], {}, shape)], {}, shape)];
  },
  // y = log softmax(x): dx = g − exp(y)·Σ g.
  LogSoftmax: (node, g, emit) => {
    assertLastAxis(node, emit);
    const y = node.outputs[0]!;
    const shape = emit.shape(y);
    return [emit.node('Sub', [g, emit.node('Mul', [emit.node('Exp', [y], {}, shape), emit.sumLast(g)], {}, shape)], {}, shape)];
  },
  // Y = A·B: dA = g·Bᵀ, dB = Aᵀ·g, each summed over broadcast batch axes.
  MatMul: (node, g, emit, needed) => {
    const [a, b] = node.inputs as [string, string];
    const aShape = emit.shape(a);
    const bShape = emit.shape(b);
    const gShape = emit.shape(g);
    const batch = gShape.slice(0, -2);
    const gradA = () => emit.reduceTo(emit.node('MatMul', [g, emit.transposeLastTwo(b)], {}, [...batch, aShape.at(-2)!, aShape.at(-1)!]), [...batch, aShape.at(-2)!, aShape.at(-1)!], aShape);
    const gradB = () => {
      if (bShape.length === 2) {
        // A weight shared by every row: flatten (…, m, k) to (N, k) so dB is one product.
        const k = aShape.at(-1)!;
        const n = gShape.at(-1)!;
        const rows = product(aShape) / k;
        return emit.node('MatMul', [emit.transposeLastTwo(emit.reshape(a, [rows, k])), emit.reshape(g, [rows, n])], {}, [k, n]);
      }
      const full = [...batch, bShape.at(-2)!, bShape.at(-1)!];
      return emit.reduceTo(emit.node('MatMul', [emit.transposeLastTwo(a), g], {}, full), full, bShape);
    };
    return [needed[0] ? gradA() : null, needed[1] ? gradB() : null];
  },
  // y = x̂·γ + β with x̂ = (x − μ)·r, r = 1/sqrt(σ² + ε):
  // dx = r·(gγ − mean(gγ) − x̂·mean(gγ·x̂)), dγ = Σ g·x̂, dβ = Σ g.
  LayerNormalization: (node, g, emit, needed) => {
    const [x, scale, bias] = node.inputs as [string, string, string];
    const shape = emit.shape(x);
    const axis = normaliseAxis(attributeInt(node, 'axis', -1), shape.length);
    if (axis !== shape.length - 1) throw new Error('autodiff: LayerNormalization over other than the last axis is not supported');
    const width = shape.at(-1)!;
    const epsilon = node.attributes.epsilon?.type === 'float' ? node.attributes.epsilon.value : 1e-5;
    const reduced = [...shape.slice(0, -1), 1];
    // x̂ and r from one unit-scale LayerNormalization (its optional outputs are mean and 1/std).
    const [normalised, , inverseStd] = emit.builder.nodeWithOutputs('LayerNormalization', [
      x, emit.builder.floatConstant(new Array(width).fill(1), [width]), emit.builder.floatConstant(new Array(width).fill(0), [width]),
    ], 3, { axis: intAttribute(-1), epsilon: floatAttribute(epsilon) });
    emit.known.shapes.set(normalised!, shape);
    emit.known.shapes.set(inverseStd!, reduced);
    const mean = (t: string) => emit.node('Mul', [emit.sumLast(t), emit.scalar(1 / width)], {}, reduced);
    const gradX = () => {
      const scaled = emit.node('Mul', [g, scale], {}, shape);
      const centred = emit.node('Sub', [scaled, mean(scaled)], {}, shape);
      const projected = emit.node('Mul', [normalised!, mean(emit.node('Mul', [scaled, normalised!], {}, shape))], {}, shape);
      return emit.node('Mul', [emit.node('Sub', [centred, projected], {}, shape), inverseStd!], {}, shape);
    };
    return [
      needed[0] ? gradX() : null,
      needed[1] ? emit.reduceTo(emit.node('Mul', [g, normalised!], {}, shape), shape, emit.shape(scale)) : null,
      needed[2] ? emit.reduceTo(g, shape, emit.shape(bias)) : null,
    ];
  },
  Reshape: (node, g, emit) => [emit.reshape(g, emit.shape(node.inputs[0]!)), null],
  Unsqueeze: (node, g, emit) => [emit.reshape(g, emit.shape(node.inputs[0]!)), null],
  Transpose: (node, g, emit) => {
    const perm = attributeInts(node, 'perm') ?? emit.shape(node.inputs[0]!).map((_, i, all) => all.length - 1 - i);
    const inverse = perm.map((_, i) => perm.indexOf(i));
    return [emit.node('Transpose', [g], { perm: intsAttribute(inverse) }, emit.shape(node.inputs[0]!))];
  },
  // Concat: each input's gradient is its slice of g.
  Concat: (node, g, emit, needed) => {
    const shapes = node.inputs.map((input) => emit.shape(input));
    const axis = normaliseAxis(attributeInt(node, 'axis', 0), shapes[0]!.length);
    let offset = 0;
    return node.inputs.map((_, i) => {
      const begin = offset;
      offset += shapes[i]![axis]!;
      if (!needed[i]) return null;
      const b = emit.builder;
      return emit.node('Slice', [g, b.int64Constant([begin]), b.int64Constant([offset]), b.int64Constant([axis])], {}, shapes[i]);
    });
  },
  // Slice: g padded with zeros back to the input's extent.
  Slice: (node, g, emit) => {
    const x = node.inputs[0]!;
    const shape = emit.shape(x);
    const { begins, ends } = sliceBounds(node, shape, (name) => emit.values(name));
    const pads = [...begins, ...shape.map((d, i) => d - ends[i]!)];
    return [emit.node('Pad', [g, emit.builder.int64Constant(pads)], {}, shape), null, null, null, null];
  },
  // Gather along axis 0 (embedding lookup): dData = zeros with g's rows added at the indices (repeats add up).
  Gather: (node, g, emit, needed) => {
    if (attributeInt(node, 'axis', 0) !== 0) throw new Error('autodiff: Gather along an axis other than 0 is not supported');
    if (needed[1]) throw new Error('autodiff: Gather indices are not differentiable');
    const [data, indices] = node.inputs as [string, string];
    const dataShape = emit.shape(data);
    const count = product(emit.shape(indices));
    const zeros = emit.node('ConstantOfShape', [emit.builder.int64Constant(dataShape)], {}, dataShape);
    const rows = emit.reshape(indices, [count, 1]); // (N, 1)
    const updates = emit.reshape(g, [count, ...dataShape.slice(1)]); // (N, D)
    return [emit.node('ScatterND', [zeros, rows, updates], { reduction: stringAttribute('add') }, dataShape), null];
  },
  // y = Σ_axes x: dx = g broadcast back over the summed axes.
  ReduceSum: (node, g, emit) => {
    const [x, axesName] = node.inputs as [string, string | undefined];
    const shape = emit.shape(x);
    const axes = (axesName ? emit.values(axesName) : shape.map((_, i) => i)).map((a) => normaliseAxis(a, shape.length));
    const kept = emit.reshape(g, shape.map((d, i) => (axes.includes(i) ? 1 : d)));
    return [emit.node('Expand', [kept, emit.builder.int64Constant(shape)], {}, shape), null];
  },
};

function assertLastAxis(node: RecordedNode, emit: Emitter): void {
  const rank = emit.shape(node.inputs[0]!).length;
  if (normaliseAxis(attributeInt(node, 'axis', -1), rank) !== rank - 1) throw new Error(`autodiff: ${node.opType} over other than the last axis is not supported`);
}

/** Ops whose outputs never carry a gradient (shapes). */
const NOT_DIFFERENTIABLE = new Set(['Shape']);

/**
 * Appends to `builder` the gradient of the scalar `loss` with respect to each of `parameters`
 * (graph inputs). `inputShapes` gives every graph input's fixed shape. Returns parameter ->
 * gradient tensor; a parameter the loss does not depend on gets an explicit zero gradient.
 * An op on the path from a parameter to the loss without a VJP is a build-time error naming it.
 */
export function appendGradients(builder: GraphBuilder, loss: string, parameters: string[], inputShapes: Map<string, Shape>): Map<string, string> {
  const nodes = [...builder.recordedNodes];
  const known: Inferred = { shapes: new Map(inputShapes), values: new Map() };
  const constantOrInput = (name: string) => {
    if (known.shapes.has(name) || name === '') return;
    const constant = builder.constant(name);
    if (!constant) return;
    known.shapes.set(name, constant.dims);
    known.values.set(name, constant.values);
  };
  for (const node of nodes) {
    node.inputs.forEach(constantOrInput);
    inferNode(node, known);
  }
  if (product(known.shapes.get(loss) ?? [0]) !== 1) throw new Error(`autodiff: the loss "${loss}" is not a scalar`);

  // Forward: which tensors depend on a parameter.
  const dependsOnParameter = new Set(parameters);
  for (const node of nodes) {
    if (NOT_DIFFERENTIABLE.has(node.opType)) continue;
    if (node.inputs.some((input) => dependsOnParameter.has(input))) node.outputs.forEach((output) => dependsOnParameter.add(output));
  }

  // Reverse: accumulate each tensor's gradient contributions, then pass them through its producer's VJP.
  const emit = new Emitter(builder, known);
  const contributions = new Map<string, string[]>([[loss, [builder.floatConstant([1], known.shapes.get(loss)!)]]]);
  const gradientOf = (tensor: string): string | undefined => {
    const parts = contributions.get(tensor);
    if (!parts) return undefined;
    const total = parts.length === 1 ? parts[0]! : emit.node('Sum', parts, {}, known.shapes.get(tensor));
    contributions.set(tensor, [total]);
    return total;
  };
  for (let i = nodes.length - 1; i >= 0; i--) {
    const node = nodes[i]!;
    const needed = node.inputs.map((input) => dependsOnParameter.has(input));
    if (!needed.some(Boolean)) continue;
    const gradient = gradientOf(node.outputs[0]!);
    if (!gradient) continue;
    if (node.outputs.slice(1).some((output) => contributions.has(output))) throw new Error(`autodiff: ${node.opType}: only the first output may carry a gradient`);
    const vjp = VJPS[node.opType];
    if (!vjp) throw new Error(`autodiff: no vector-Jacobian product for ONNX op "${node.opType}" (it produces "${node.outputs[0]}")`);
    vjp(node, gradient, emit, needed).forEach((inputGradient, j) => {
      if (!inputGradient || !needed[j]) return;
      const input = node.inputs[j]!;
      contributions.set(input, [...(contributions.get(input) ?? []), inputGradient]);
    });
  }
  return new Map(parameters.map((parameter) => {
    const gradient = gradientOf(parameter);
    const shape = known.shapes.get(parameter)!;
    return [parameter, gradient ?? emit.node('ConstantOfShape', [builder.int64Constant(shape)], {}, shape)];
  }));
}
