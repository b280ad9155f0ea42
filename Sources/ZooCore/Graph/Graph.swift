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
public struct ValueInfo: Sendable, Equatable, CustomStringConvertible {
    public var name: String
    public var dtype: DType
    public var shape: [Dim]

    public init(name: String, dtype: DType, shape: [Dim]) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
    }

    /// The shape with every dimension fixed, if it is.
    public var fixedShape: [Int]? {
        let values = shape.compactMap(\.value)
        return values.count == shape.count ? values : nil
    }

    public var description: String { "\(dtype.rawValue) [\(shape.map(\.description).joined(separator: ", "))]" }
}

/// One operation: reads `inputs` (value names, in the op's order), writes `output`.
public struct Node: Sendable, Equatable {
    /// Unique within the graph; for models built from a state dict, the module path
    /// (`features.0`), so a node traces back to its weights and to PyTorch's activations.
    public var name: String
    public var op: Op
    public var inputs: [String]
    public var output: String

    public init(_ name: String, _ op: Op, inputs: [String], output: String? = nil) {
        self.name = name
        self.op = op
        self.inputs = inputs
        self.output = output ?? name
    }
}

/// Why a graph was refused, naming the node (and op) when one is at fault.
public struct GraphError: Error, Sendable, Equatable, CustomStringConvertible {
    public var node: String?
    public var op: String?
    public var message: String

    public init(node: String? = nil, op: String? = nil, _ message: String) {
        self.node = node
        self.op = op
        self.message = message
    }

    public var description: String {
        guard let node else { return message }
        return "node '\(node)'" + (op.map { " (\($0))" } ?? "") + ": " + message
    }
}

/// A validated computation graph: inputs, constant initializers (tensors referenced, never copied),
/// nodes in topological order, outputs — with every value's dtype and shape inferred when it is built.
///
/// Computation is f32: inputs are f32 and every node output is f32. Initializers keep the
/// floating-point dtype they were stored in (f16, bf16, f32, f64) — the executor widens them when it
/// plans, and writers store them as they are.
///
/// Only the batch dimension of an input may be symbolic. A graph built for one input size can be
/// re-inferred for another (`inferShapes(for:)`), which is how AlexNet takes any input ≥ 63×63.
public struct Graph: Sendable {
    public let name: String
    public let inputs: [ValueInfo]
    public let initializers: [(name: String, tensor: Tensor)]
    public let nodes: [Node]
    public let outputs: [String]
    /// Every value's dtype and shape, as inferred for the declared inputs.
    public let values: [String: ValueInfo]
    private let initializerIndex: [String: Int]

    public init(name: String, inputs: [ValueInfo], initializers: [(name: String, tensor: Tensor)], nodes: [Node],
                outputs: [String]) throws(GraphError) {
        self.name = name
        self.inputs = inputs
        self.initializers = initializers
        self.nodes = nodes
        self.outputs = outputs
        var index: [String: Int] = [:]
        for (i, initializer) in initializers.enumerated() {
            guard index[initializer.name] == nil else { throw GraphError("initializer '\(initializer.name)' is defined twice") }
            index[initializer.name] = i
        }
        initializerIndex = index
        for input in inputs {
            guard input.dtype == .f32 else { throw GraphError("input '\(input.name)' is \(input.dtype.rawValue); the executor computes in f32") }
            for (axis, dim) in input.shape.enumerated() where axis > 0 {
                if case .symbolic = dim { throw GraphError("input '\(input.name)': only the batch dimension may be symbolic") }
            }
        }
        values = try Graph.infer(inputs: inputs, initializers: initializers, nodes: nodes, outputs: outputs)
    }

    public func initializer(_ name: String) -> Tensor? { initializerIndex[name].map { initializers[$0].tensor } }

    /// Elements over all initializers.
    public var parameterCount: Int { initializers.reduce(0) { $0 + $1.tensor.count } }

    /// Shapes of every value for concrete input shapes (by input name; missing inputs keep their declared shape).
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
            guard values[input.name] == nil else { throw GraphError("value '\(input.name)' is defined twice") }
            values[input.name] = input
        }
        for (name, tensor) in initializers {
            guard values[name] == nil else { throw GraphError("value '\(name)' is both an input and an initializer") }
            values[name] = ValueInfo(name: name, dtype: tensor.dtype, shape: tensor.shape.map { .fixed($0) })
        }
        var nodeNames: Set<String> = []
        for node in nodes {
            guard nodeNames.insert(node.name).inserted else { throw GraphError(node: node.name, "node name used twice") }
            guard node.op.inputArity.contains(node.inputs.count) else {
                throw GraphError(node: node.name, op: node.op.name, "takes \(node.op.inputArity.lowerBound)…\(node.op.inputArity.upperBound == Int.max ? "n" : String(node.op.inputArity.upperBound)) inputs, has \(node.inputs.count)")
            }
            var infos: [ValueInfo] = []
            for input in node.inputs {
                guard let info = values[input] else {
                    throw GraphError(node: node.name, op: node.op.name, "input '\(input)' is not defined before this node")
                }
                infos.append(info)
            }
            guard values[node.output] == nil else {
                throw GraphError(node: node.name, op: node.op.name, "output '\(node.output)' is already defined")
            }
            values[node.output] = try Graph.inferOutput(of: node, inputs: infos)
        }
        for output in outputs where values[output] == nil {
            throw GraphError("graph output '\(output)' is not produced by any node")
        }
        return values
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
            let attributes = node.op.attributeSummary
            let op = node.op.name + (attributes.isEmpty ? "" : "(\(attributes))")
            let inputs = node.inputs.map { (initializerIndex[$0] != nil ? "@" : "") + $0.escapedForTerminal }.joined(separator: ", ")
            lines.append("  " + name + String(repeating: " ", count: width - name.count) + "  \(op)  \(inputs) -> \(info(node.output))")
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
