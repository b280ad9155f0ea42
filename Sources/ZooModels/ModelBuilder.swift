import ZooCore
import ZooOps

/// What a state-dict entry is for. The role decides the entry's dtype, how `zoo init` generates it
/// (`WeightGenerator`) and, for buffers the architecture fixes, its value.
public enum ParameterRole: Sendable {
    /// A convolution or Linear weight; `fanIn` inputs feed each output.
    case weight(fanIn: Int)
    /// The bias of a convolution or Linear layer with `fanIn` inputs per output.
    case bias(fanIn: Int)
    /// A multiplicative parameter near 1: BatchNorm / LayerNorm weight, ConvNeXt's layer scale.
    case scale
    /// An additive normalization parameter: BatchNorm / LayerNorm bias.
    case shift
    /// BatchNorm's running_mean buffer.
    case runningMean
    /// BatchNorm's running_var buffer (positive).
    case runningVariance
    /// BatchNorm's num_batches_tracked buffer (int64, a scalar; unused at inference).
    case batchCount
    /// A learned embedding or table: class token, position embedding, relative position bias table.
    case embedding
    /// A buffer whose value the architecture fixes (Swin's relative_position_index, int64).
    case fixed(Tensor)

    /// The dtype the entry has in torchvision's state dicts.
    public var isInteger: Bool {
        switch self {
        case .batchCount: true
        case .fixed(let t): !t.dtype.isFloatingPoint
        default: false
        }
    }
}

/// One state-dict entry an architecture expects: its key, shape and role.
public struct Parameter: Sendable {
    public let name: String
    public let shape: [Int]
    public let role: ParameterRole
    /// A learned parameter (torch's `parameters()`), not a buffer.
    public var isLearned: Bool {
        switch role {
        case .weight, .bias, .scale, .shift, .embedding: true
        case .runningMean, .runningVariance, .batchCount, .fixed: false
        }
    }
    /// An entry a state dict may lack: num_batches_tracked, which checkpoints saved before torch
    /// 0.4.1 do not have (torch fills it in when it loads them).
    public var isOptional: Bool {
        if case .batchCount = role { return true }
        return false
    }
    public var dtype: DType {
        if case .fixed(let t) = role { return t.dtype }
        return role.isInteger ? .i64 : .f32
    }
}

/// A value in the graph being built (an activation, a parameter or a constant), by name.
public struct Value: Sendable, Hashable {
    public let name: String
}

/// Everything one build of an architecture produced: the state-dict layout (in torchvision's order)
/// and the graph's nodes over it. The one description of an architecture: binding, `zoo init` and
/// the graph all come from here.
struct Blueprint {
    /// Why the layer calls describe no real model, when they do not: a custom configuration read
    /// from a file's shapes (a hostile one) asked for groups that do not divide the channels, or no
    /// channels at all.
    let impossible: String?
    let parameters: [Parameter]
    let constants: [(name: String, tensor: Tensor)]
    let nodes: [Node]
    let input: ValueInfo
    let output: String
}

/// Records a model as its PyTorch `forward` would run it: parameters under module paths, nodes named
/// after the module that computes them. Use it through `Module`, which carries the key prefix.
final class ModelBuilder {
    private(set) var parameters: [Parameter] = []
    private(set) var constants: [(name: String, tensor: Tensor)] = []
    private(set) var nodes: [Node] = []
    private var names: Set<String> = []
    /// The input's height (= width): the graph is built for one size.
    private(set) var inputSize = 0
    /// The first impossible layer call (`Blueprint.impossible`).
    private(set) var impossible: String?
    /// False while declaring modules that exist in the state dict but do not run at inference
    /// (GoogLeNet's auxiliary heads): their parameters are recorded, their nodes dropped.
    var recordsNodes = true

    /// Builds `body` over an input [N, 3, size, size] and returns the blueprint.
    static func build(inputSize: Int, _ body: (Module, Value) -> Value) -> Blueprint {
        let builder = ModelBuilder()
        builder.inputSize = inputSize
        let input = ValueInfo(name: "input", dtype: .f32, shape: [.symbolic("N"), .fixed(3), .fixed(inputSize), .fixed(inputSize)])
        builder.names.insert(input.name)
        let output = body(Module(builder: builder, path: ""), Value(name: input.name))
        return Blueprint(impossible: builder.impossible, parameters: stateDictOrder(builder.parameters), constants: builder.constants,
                         nodes: builder.nodes, input: input, output: output.name)
    }

    /// A fresh name for a node or constant: `base`, else `base_1`, `base_2`, … (as torch names a
    /// module's second call).
    func unique(_ base: String) -> String {
        var name = base
        var k = 0
        while names.contains(name) {
            k += 1
            name = "\(base)_\(k)"
        }
        names.insert(name)
        return name
    }

    func record(_ parameter: Parameter) {
        precondition(!names.contains(parameter.name), "parameter '\(parameter.name)' declared twice")
        names.insert(parameter.name)
        parameters.append(parameter)
    }

    func constant(_ base: String, _ tensor: Tensor) -> Value {
        let name = unique(base)
        constants.append((name, tensor))
        return Value(name: name)
    }

    /// Records that a layer call cannot exist (the first reason is kept); the build goes on with
    /// harmless values so that nothing traps.
    func reject(_ reason: String) {
        if impossible == nil { impossible = reason }
    }

    func add(_ node: Node) {
        if recordsNodes { nodes.append(node) }
    }

    /// torch's `state_dict()` order: a module's own entries (in declaration order), then its children
    /// in the order they first appear. Builders may declare entries in `forward` order; a module whose
    /// own parameter is used after a child's (Swin's bias table) still lists it first.
    static func stateDictOrder(_ parameters: [Parameter]) -> [Parameter] {
        final class Tree {
            var own: [Parameter] = []
            var children: [(String, Tree)] = []
            func child(_ name: String) -> Tree {
                if let found = children.first(where: { $0.0 == name }) { return found.1 }
                let tree = Tree()
                children.append((name, tree))
                return tree
            }
            func flatten(into out: inout [Parameter]) {
                out += own
                for (_, child) in children { child.flatten(into: &out) }
            }
        }
        let root = Tree()
        for parameter in parameters {
            var node = root
            for component in parameter.name.split(separator: ".").dropLast() { node = node.child(String(component)) }
            node.own.append(parameter)
        }
        var ordered: [Parameter] = []
        root.flatten(into: &ordered)
        return ordered
    }
}

/// A module path in the model being built (`layer1.0.conv1`), as candle's VarBuilder or PyTorch's
/// named_modules see it. Layer calls (`conv2d`, `batchNorm2d`, `linear`, …) declare the layer's
/// parameters under this path and add a node named after it; functional calls (`add`, `cat`,
/// `flatten`) on a module name their node `<path>.<op>`. A second call of the same module gets
/// `_1`, `_2`, … appended to its node name.
struct Module {
    let builder: ModelBuilder
    let path: String

    subscript(_ child: String) -> Module { Module(builder: builder, path: path.isEmpty ? child : path + "." + child) }
    subscript(_ index: Int) -> Module { self[String(index)] }

    private func key(_ name: String) -> String { path.isEmpty ? name : path + "." + name }

    /// The height (= width) of the input the graph is being built for, for architectures whose graph
    /// depends on it (Swin's padding, shifts and masks).
    var inputSize: Int { builder.inputSize }

    /// Declares the entry `<path>.<name>`.
    @discardableResult
    func parameter(_ name: String, _ shape: [Int], _ role: ParameterRole) -> Value {
        let entry = Parameter(name: key(name), shape: shape, role: role)
        builder.record(entry)
        return Value(name: entry.name)
    }

    /// Marks the build impossible (`Blueprint.impossible`): a family's own check of a configuration
    /// or input size, before arithmetic that would trap on it.
    func reject(_ reason: String) { builder.reject(path.isEmpty ? reason : "\(path): \(reason)") }

    /// A constant the graph needs (a shape, an index) that is not part of the state dict.
    func constant(_ name: String, _ tensor: Tensor) -> Value { builder.constant(key(name), tensor) }

    /// A node named after this module (or `<path>.<function>` when `function` is given).
    func node(_ op: any Operator, _ inputs: [Value], function: String? = nil) -> Value {
        precondition(!path.isEmpty || function != nil, "a node at the root needs a function name")
        let name = builder.unique(function.map(key) ?? path)
        builder.add(Node(name, op, inputs: inputs.map(\.name)))
        return Value(name: name)
    }

    /// A node with several outputs, named `<node>.0`, `<node>.1`, ….
    func nodes(_ op: any Operator, _ inputs: [Value], outputs count: Int, function: String) -> [Value] {
        let name = builder.unique(key(function))
        let outputs = (0..<count).map { "\(name).\($0)" }
        builder.add(Node(name, op, inputs: inputs.map(\.name), outputs: outputs))
        return outputs.map(Value.init)
    }

    /// Declares the parameters of this path without running it (modules present in the state dict
    /// that inference does not use: GoogLeNet's aux1/aux2, Inception v3's AuxLogits).
    func declareOnly(_ body: (Module) -> Void) {
        let saved = builder.recordsNodes
        builder.recordsNodes = false
        body(self)
        builder.recordsNodes = saved
    }
}

// MARK: - Layers, named as torch.nn's

extension Module {
    /// nn.Conv2d (square kernel, symmetric padding).
    func conv2d(_ x: Value, _ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
                dilation: Int = 1, groups: Int = 1, bias: Bool = true) -> Value {
        conv2d(x, inChannels, outChannels, kernel: (kernel, kernel), stride: stride, padding: (padding, padding),
               dilation: dilation, groups: groups, bias: bias)
    }

    /// nn.Conv2d with a rectangular kernel (Inception's 1×7 and 7×1) and per-axis padding.
    func conv2d(_ x: Value, _ inChannels: Int, _ outChannels: Int, kernel: (Int, Int), stride: Int = 1,
                padding: (Int, Int), dilation: Int = 1, groups requested: Int = 1, bias: Bool = true) -> Value {
        var groups = requested
        if !(inChannels > 0 && outChannels > 0 && groups > 0 && inChannels % groups == 0 && outChannels % groups == 0
             && kernel.0 > 0 && kernel.1 > 0 && stride > 0 && dilation > 0) {
            builder.reject("\(path): Conv2d(\(inChannels), \(outChannels), kernel \(kernel.0)×\(kernel.1), stride \(stride), groups \(groups))")
            groups = 1
        }
        let fanIn = inChannels / groups * kernel.0 * kernel.1
        let weight = parameter("weight", [outChannels, inChannels / groups, kernel.0, kernel.1], .weight(fanIn: fanIn))
        let b = bias ? [parameter("bias", [outChannels], .bias(fanIn: fanIn))] : []
        let op = Op.Conv(kernel: [kernel.0, kernel.1], strides: [stride, stride], dilations: [dilation, dilation],
                         pads: [padding.0, padding.1, padding.0, padding.1], groups: groups)
        return node(op, [x, weight] + b)
    }

    /// nn.BatchNorm2d in eval mode (running statistics).
    func batchNorm2d(_ x: Value, _ features: Int, epsilon: Float = 1e-5) -> Value {
        let scale = parameter("weight", [features], .scale)
        let shift = parameter("bias", [features], .shift)
        let mean = parameter("running_mean", [features], .runningMean)
        let variance = parameter("running_var", [features], .runningVariance)
        parameter("num_batches_tracked", [], .batchCount)
        return node(Op.BatchNormalization(epsilon: epsilon), [x, scale, shift, mean, variance])
    }

    /// nn.Linear: y = x Wᵀ + b over the last dimension.
    func linear(_ x: Value, _ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, rank2: Bool = true) -> Value {
        let weight = parameter("weight", [outFeatures, inFeatures], .weight(fanIn: inFeatures))
        let b = bias ? [parameter("bias", [outFeatures], .bias(fanIn: inFeatures))] : []
        return rank2 ? node(Op.Gemm.linear, [x, weight] + b) : tokenLinear(x, weight, b.first, inFeatures, outFeatures)
    }

    /// F.linear on tokens [N, …, in]: the same Gemm over the rows of a [N·…, in] view, reshaped back
    /// to [N, …, out] — so the weight stays as stored (no transposed copy) and runs in the packed
    /// Linear kernel. The module's output is the node named after it.
    func tokenLinear(_ x: Value, _ weight: Value, _ bias: Value?, _ inFeatures: Int, _ outFeatures: Int) -> Value {
        let rows = node(Op.Reshape(shape: [-1, inFeatures]), [x], function: "rows")
        let product = node(Op.Gemm.linear, [rows, weight] + (bias.map { [$0] } ?? []), function: "gemm")
        let leading = node(Op.Shape(start: 0, end: -1), [x], function: "shape")
        let outShape = node(Op.Concat(axis: 0), [leading, constant("features", Tensor(int64s: [outFeatures], shape: [1]))],
                            function: "out_shape")
        return node(Op.Reshape(shape: nil), [product, outShape])
    }

    /// nn.LayerNorm over the last dimension (a node named `<path>.<function>` when the module does
    /// more than normalize, as LayerNorm2d's permutes).
    func layerNorm(_ x: Value, _ features: Int, epsilon: Float = 1e-5, function: String? = nil) -> Value {
        let scale = parameter("weight", [features], .scale)
        let shift = parameter("bias", [features], .shift)
        return node(Op.LayerNormalization(axis: -1, epsilon: epsilon), [x, scale, shift], function: function)
    }

    func relu(_ x: Value) -> Value { node(Op.Unary.relu, [x]) }
    func relu6(_ x: Value) -> Value { node(Op.Unary(.clip(min: 0, max: 6)), [x]) }
    func sigmoid(_ x: Value) -> Value { node(Op.Unary(.sigmoid), [x]) }
    func hardswish(_ x: Value) -> Value { node(Op.Unary(.hardSwish), [x]) }
    /// nn.Hardsigmoid: relu6(x + 3) / 6.
    func hardsigmoid(_ x: Value) -> Value { node(Op.Unary(.hardSigmoid(alpha: 1 / 6, beta: 0.5)), [x]) }
    func gelu(_ x: Value) -> Value { node(Op.Unary(.gelu(tanh: false)), [x]) }
    /// nn.SiLU: x · sigmoid(x).
    func silu(_ x: Value) -> Value {
        let s = node(Op.Unary(.sigmoid), [x], function: "sigmoid")
        return node(Op.Binary(.mul), [x, s])
    }

    func maxPool2d(_ x: Value, kernel: Int, stride: Int, padding: Int = 0, ceilMode: Bool = false) -> Value {
        node(Op.MaxPool(Op.Pool(kernel: [kernel, kernel], strides: [stride, stride], pads: [padding, padding, padding, padding],
                                ceilMode: ceilMode)), [x])
    }

    /// nn.AvgPool2d (count_include_pad=True, torch's default).
    func avgPool2d(_ x: Value, kernel: Int, stride: Int, padding: Int = 0, ceilMode: Bool = false) -> Value {
        node(Op.AveragePool(Op.Pool(kernel: [kernel, kernel], strides: [stride, stride], pads: [padding, padding, padding, padding],
                                    ceilMode: ceilMode, countIncludePad: true)), [x])
    }

    /// nn.AdaptiveAvgPool2d; (1, 1) is a global average.
    func adaptiveAvgPool2d(_ x: Value, _ height: Int, _ width: Int) -> Value {
        if height == 1, width == 1 { return node(Op.GlobalAveragePool(), [x]) }
        return node(Op.AdaptiveAveragePool(outputHeight: height, outputWidth: width), [x])
    }

    // Functional calls: the node is `<path>.<function>`.

    func add(_ a: Value, _ b: Value, function: String = "add") -> Value { node(Op.Binary.add, [a, b], function: function) }
    func mul(_ a: Value, _ b: Value, function: String = "mul") -> Value { node(Op.Binary(.mul), [a, b], function: function) }
    func cat(_ values: [Value], axis: Int, function: String = "cat") -> Value { node(Op.Concat(axis: axis), values, function: function) }
    func flatten(_ x: Value, axis: Int = 1, function: String = "flatten") -> Value { node(Op.Flatten(axis: axis), [x], function: function) }
    func reshape(_ x: Value, _ shape: [Int], function: String = "reshape") -> Value { node(Op.Reshape(shape: shape), [x], function: function) }
    func permute(_ x: Value, _ perm: [Int], function: String = "permute") -> Value { node(Op.Transpose(perm: perm), [x], function: function) }
    func matmul(_ a: Value, _ b: Value, function: String = "matmul") -> Value { node(Op.MatMul(), [a, b], function: function) }
    func softmax(_ x: Value, axis: Int, function: String = "softmax") -> Value { node(Op.Softmax(axis: axis), [x], function: function) }
    /// x[i] along the first axis (q, k or v of a packed [3, …] projection); the node is `<path>.<function>`.
    func pick(_ x: Value, _ i: Int, function: String) -> Value {
        node(Op.Gather(axis: 0), [x, constant("\(function)_index", Tensor(int64s: [i], shape: []))], function: function)
    }
}
