import ZooCore

/// A dimension: a fixed size, or a named symbolic one (the batch, `N`).
public enum Dim: Hashable, Sendable, CustomStringConvertible {
    case fixed(Int)
    case symbolic(String)

    public var value: Int? {
        if case let .fixed(n) = self { return n }
        return nil
    }

    public var description: String {
        switch self {
        case let .fixed(n): String(n)
        case let .symbolic(name): name
        }
    }
}

/// A named value flowing through the graph: a graph input, an initializer or a node output.
public struct ValueInfo: Sendable, CustomStringConvertible {
    public var name: String
    public var dtype: DType
    public var shape: [Dim]
    /// The value itself when it is known without running the graph: an initializer, or a small
    /// result computed from known values (shape arithmetic, folded while shapes are inferred).
    public var value: Tensor?
    /// For a 1-D or scalar integer value computed from shapes (Shape, and Gather, Concat, Unsqueeze,
    /// Slice over it), its elements when known only up to symbolic dimensions (`[N, 512]` for the
    /// shape of a batch of any size); see `knownDims`.
    public var dimsValue: [Dim]?

    public init(name: String = "", dtype: DType, shape: [Dim], value: Tensor? = nil) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.value = value
    }

    /// A known value's type.
    public init(name: String = "", known tensor: Tensor) {
        self.init(name: name, dtype: tensor.dtype, shape: tensor.shape.map { .fixed($0) }, value: tensor)
    }

    /// The shape with every dimension fixed, if it is.
    public var fixedShape: [Int]? {
        let values = shape.compactMap(\.value)
        return values.count == shape.count ? values : nil
    }

    public var description: String { "\(dtype.rawValue) [\(shape.map(\.description).joined(separator: ", "))]" }
}

extension ValueInfo: Equatable {
    /// Names, dtypes and shapes equal; known values, when both have one, bit-identical.
    public static func == (a: ValueInfo, b: ValueInfo) -> Bool {
        guard a.name == b.name, a.dtype == b.dtype, a.shape == b.shape, a.dimsValue == b.dimsValue else { return false }
        switch (a.value, b.value) {
        case (nil, nil): return true
        case let (x?, y?): return x.isBitIdentical(y)
        default: return false
        }
    }
}

/// One operation: reads `inputs` (value names, in the op's order), writes `outputs`.
public struct Node: Sendable {
    /// Unique within the graph; for models built from a state dict, the module path
    /// (`features.0`), so a node traces back to its weights and to PyTorch's activations.
    public var name: String
    public var op: any Operator
    public var inputs: [String]
    public var outputs: [String]

    public init(_ name: String, _ op: any Operator, inputs: [String], output: String? = nil) {
        self.init(name, op, inputs: inputs, outputs: [output ?? name])
    }

    public init(_ name: String, _ op: any Operator, inputs: [String], outputs: [String]) {
        self.name = name
        self.op = op
        self.inputs = inputs
        self.outputs = outputs
    }

    /// The first (for most ops the only) output.
    public var output: String {
        get { outputs[0] }
        set { outputs[0] = newValue }
    }
}

extension Node: Equatable {
    public static func == (a: Node, b: Node) -> Bool {
        a.name == b.name && a.op.isEqual(to: b.op) && a.inputs == b.inputs && a.outputs == b.outputs
    }
}

/// Why a graph was refused, naming the node (and op) when one is at fault.
public struct GraphError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What is wrong, with the names and sizes involved (tests match these; users read `description`).
    public enum Reason: Sendable, Equatable {
        case initializerDefinedTwice(String)
        case valueDefinedTwice(String)
        case inputIsInitializer(String)
        /// A graph input with a symbolic dimension other than the batch.
        case symbolicDimension(input: String)
        case nodeNameUsedTwice
        case inputCount(accepted: ClosedRange<Int>, actual: Int)
        case outputCount(expected: Int, actual: Int)
        case undefinedInput(String)
        case outputDefinedTwice(String)
        case outputNotProduced(String)
        /// An output whose element count or byte size does not fit an Int.
        case outputTooLarge([Dim])
        case missingWeight(String)
        /// The op refused its inputs or attributes (`OpFailure`), or ONNX cannot express them.
        case op(String)
    }

    public var node: String?
    public var op: String?
    public var reason: Reason

    public init(node: String? = nil, op: String? = nil, _ reason: Reason) {
        self.node = node
        self.op = op
        self.reason = reason
    }

    public var message: String {
        switch reason {
        case let .initializerDefinedTwice(name): "initializer '\(name)' is defined twice"
        case let .valueDefinedTwice(name): "value '\(name)' is defined twice"
        case let .inputIsInitializer(name): "value '\(name)' is both an input and an initializer"
        case let .symbolicDimension(input): "input '\(input)': only the batch dimension may be symbolic"
        case .nodeNameUsedTwice: "node name used twice"
        case let .inputCount(accepted, actual):
            "takes \(accepted.lowerBound)…\(accepted.upperBound == Int.max ? "n" : String(accepted.upperBound)) inputs, has \(actual)"
        case let .outputCount(expected, actual): "has \(actual) outputs, \(op ?? "the op") makes \(expected)"
        case let .undefinedInput(name): "input '\(name)' is not defined before this node"
        case let .outputDefinedTwice(name): "output '\(name)' is already defined"
        case let .outputNotProduced(name): "graph output '\(name)' is not produced by any node"
        case let .outputTooLarge(shape): "output \(Dim.text(shape)) is larger than memory can address"
        case let .missingWeight(name): "weight '\(name)' is missing"
        case let .op(message): message
        }
    }

    public var description: String {
        guard let node else { return message }
        return "node '\(node)'" + (op.map { " (\($0))" } ?? "") + ": " + message
    }
}

/// A validated computation graph: inputs, constant initializers (tensors referenced, never copied),
/// nodes in topological order, outputs — with every value's dtype and shape inferred when it is built.
///
/// Values may be of any dtype (`Shape` makes int64, `Equal` bool). Initializers keep the dtype they
/// were stored in: a weight in f16, bf16 or f64 read by a floating-point op is widened to f32 by the
/// executor when it plans (ops take any floating width where f32 is computed), and writers store it
/// as it is.
///
/// Only the batch dimension of an input may be symbolic. A graph built for one input size can be
/// re-inferred for another (`inferShapes(for:)`), which is how AlexNet takes any input ≥ 63×63; shape
/// arithmetic on known values (Shape → Gather → Concat → Reshape) is folded while inferring.
public struct Graph: Sendable {
    public let name: String
    public let inputs: [ValueInfo]
    public let initializers: [(name: String, tensor: Tensor)]
    public let nodes: [Node]
    public let outputs: [String]
    /// Every value's dtype and shape, as inferred for the declared inputs.
    public let values: [String: ValueInfo]
    private let initializerIndex: [String: Int]

    /// Known values of at most this many elements are computed while shapes are inferred (so shape
    /// arithmetic folds); larger constant results are computed when the graph runs.
    public static let maxFoldedElements = 1 << 16

    public init(name: String, inputs: [ValueInfo], initializers: [(name: String, tensor: Tensor)], nodes: [Node],
                outputs: [String]) throws(GraphError) {
        self.name = name
        self.inputs = inputs
        self.initializers = initializers
        self.nodes = nodes
        self.outputs = outputs
        var index: [String: Int] = [:]
        for (i, initializer) in initializers.enumerated() {
            guard index[initializer.name] == nil else { throw GraphError(.initializerDefinedTwice(initializer.name)) }
            index[initializer.name] = i
        }
        initializerIndex = index
        for input in inputs {
            for (axis, dim) in input.shape.enumerated() where axis > 0 {
                if case .symbolic = dim { throw GraphError(.symbolicDimension(input: input.name)) }
            }
        }
        values = try Graph.infer(inputs: inputs, initializers: initializers, nodes: nodes, outputs: outputs)
    }

    public func initializer(_ name: String) -> Tensor? { initializerIndex[name].map { initializers[$0].tensor } }

    /// Elements over all initializers.
    public var parameterCount: Int { initializers.reduce(0) { $0 + $1.tensor.count } }

    /// Types of every value for concrete input shapes (by input name; missing inputs keep their
    /// declared shape), with the values known for them (folded shape arithmetic).
    public func inferShapes(for inputShapes: [String: [Int]]) throws(GraphError) -> [String: ValueInfo] {
        let concrete = inputs.map { input in
            ValueInfo(name: input.name, dtype: input.dtype, shape: (inputShapes[input.name] ?? []).map { .fixed($0) }.nonEmpty ?? input.shape)
        }
        return try Graph.infer(inputs: concrete, initializers: initializers, nodes: nodes, outputs: outputs)
    }

    private static func infer(inputs: [ValueInfo], initializers: [(name: String, tensor: Tensor)], nodes: [Node],
                              outputs: [String]) throws(GraphError) -> [String: ValueInfo] {
        var values: [String: ValueInfo] = [:]
        for input in inputs {
            guard values[input.name] == nil else { throw GraphError(.valueDefinedTwice(input.name)) }
            values[input.name] = input
        }
        for (name, tensor) in initializers {
            guard values[name] == nil else { throw GraphError(.inputIsInitializer(name)) }
            values[name] = ValueInfo(name: name, known: tensor)
        }
        var nodeNames: Set<String> = []
        for node in nodes {
            guard nodeNames.insert(node.name).inserted else { throw GraphError(node: node.name, .nodeNameUsedTwice) }
            var infos: [ValueInfo] = []
            for input in node.inputs {
                guard let info = values[input] else {
                    throw GraphError(node: node.name, op: node.op.name, .undefinedInput(input))
                }
                infos.append(info)
            }
            for (name, info) in zip(node.outputs, try Graph.inferOutputs(of: node, inputs: infos)) {
                guard values[name] == nil else {
                    throw GraphError(node: node.name, op: node.op.name, .outputDefinedTwice(name))
                }
                values[name] = info
            }
        }
        for output in outputs where values[output] == nil {
            throw GraphError(.outputNotProduced(output))
        }
        return values
    }

    /// The dtypes and shapes of `node`'s outputs for its inputs' (in the node's order), named after
    /// the node's outputs — and their values when every input's is known and the outputs are small
    /// (`maxFoldedElements`). Refused when an output's element count or size in bytes does not fit
    /// an `Int` (symbolic dims counted as 1). For a caller growing a graph node by node (the ONNX
    /// importer) as for building one.
    public static func inferOutputs(of node: Node, inputs: [ValueInfo]) throws(GraphError) -> [ValueInfo] {
        let op = node.op
        func fail(_ reason: GraphError.Reason) -> GraphError { GraphError(node: node.name, op: op.name, reason) }
        func fail(_ message: String) -> GraphError { fail(.op(message)) }
        guard op.inputArity.contains(inputs.count) else { throw fail(.inputCount(accepted: op.inputArity, actual: inputs.count)) }
        guard node.outputs.count == op.outputCount else { throw fail(.outputCount(expected: op.outputCount, actual: node.outputs.count)) }
        var outputs: [ValueInfo]
        do throws(OpFailure) { outputs = try op.infer(inputs) } catch { throw fail(error.message) }
        precondition(outputs.count == op.outputCount, "\(op.name).infer returned \(outputs.count) outputs")
        for k in outputs.indices {
            outputs[k].name = node.outputs[k]
            var count = 1
            for dim in outputs[k].shape {
                let (product, overflow) = count.multipliedReportingOverflow(by: dim.value ?? 1)
                guard !overflow, product >= 0 else { throw fail(.outputTooLarge(outputs[k].shape)) }
                count = product
            }
            guard !count.multipliedReportingOverflow(by: max(outputs[k].dtype.itemSize, 8)).overflow else { throw fail(.outputTooLarge(outputs[k].shape)) }
        }
        // Fold: every input known, every output fixed and small, and not already known.
        let known = inputs.compactMap(\.value)
        if known.count == inputs.count, outputs.contains(where: { $0.value == nil }),
           outputs.allSatisfy({ ($0.fixedShape.flatMap(Tensor.checkedCount) ?? Int.max) <= maxFoldedElements }) {
            let results: [Tensor]
            do throws(OpFailure) { results = try op.evaluate(known) } catch { throw fail(error.message) }
            for k in outputs.indices where outputs[k].value == nil {
                guard results[k].shape == outputs[k].fixedShape, results[k].dtype == outputs[k].dtype else {
                    throw fail("internal: evaluate made \(results[k].dtype.rawValue) \(results[k].shape), the shape rule said \(outputs[k])")
                }
                outputs[k].value = results[k]
            }
        }
        return outputs
    }

    /// A readable listing: inputs, one line per node (op, attributes, inputs → output and its shape),
    /// initializer count and dtypes, outputs. Names come from the file: they are escaped
    /// (`String.escapedForTerminal`), so each entry is one line and safe to print.
    public var dump: String {
        func info(_ value: String) -> String { values[value].map(\.description.escapedForTerminal) ?? "?" }
        var lines = ["graph \(name.escapedForTerminal)"]
        for input in inputs { lines.append("  input  \(input.name.escapedForTerminal): \(input.description.escapedForTerminal)") }
        let names = nodes.map(\.name.escapedForTerminal)
        let width = names.map(\.count).max() ?? 0
        for (name, node) in zip(names, nodes) {
            let attributes = node.op.summary
            let op = node.op.name + (attributes.isEmpty ? "" : "(\(attributes))")
            let inputs = node.inputs.map { (initializerIndex[$0] != nil ? "@" : "") + $0.escapedForTerminal }.joined(separator: ", ")
            let outputs = node.outputs.map(info).joined(separator: ", ")
            lines.append("  " + name + String(repeating: " ", count: width - name.count) + "  \(op)  \(inputs) -> \(outputs)")
        }
        var dtypes: [String] = []
        for (_, tensor) in initializers where !dtypes.contains(tensor.dtype.rawValue) { dtypes.append(tensor.dtype.rawValue) }
        lines.append("  \(initializers.count) initializers (@name\(dtypes.isEmpty ? "" : "; " + dtypes.joined(separator: ", "))), "
            + "\(parameterCount) parameters")
        for output in outputs { lines.append("  output \(output.escapedForTerminal): \(info(output))") }
        return lines.joined(separator: "\n")
    }
}

private extension Array {
    var nonEmpty: Self? { isEmpty ? nil : self }
}
