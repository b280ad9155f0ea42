/// The op-facing half of the ONNX importer: what an op's importer reads (`ONNXNode`, typed
/// attribute getters whose errors name the node and op) and the graph it grows (`ONNXGraphBuilder`).
/// The protobuf half — the import loop, tensor decoding — is ONNXFormat's; it calls each node's
/// importer from `Op.onnxImporters`.
import ZooCore

/// One ONNX op type an operator imports, from the opset it appeared in (a model importing an
/// earlier opset cannot hold it).
public struct ONNXImporter: Sendable {
    public typealias Build = @Sendable (inout ONNXGraphBuilder, ONNXNode) throws(ONNXImportError) -> Void
    public let opType: String
    public let since: Int
    public let build: Build
    public init(_ opType: String, since: Int = 1, _ build: @escaping Build) {
        self.opType = opType
        self.since = since
        self.build = build
    }
}

extension ONNXImporter {
    /// The importer of an op type without attributes: the node is `op` on its inputs (`inputs` of them).
    public static func plain(_ opType: String, since: Int = 1, inputs: ClosedRange<Int>, _ op: any Operator) -> ONNXImporter {
        ONNXImporter(opType, since: since) { (b: inout ONNXGraphBuilder, n: ONNXNode) throws(ONNXImportError) in
            try n.allow([])
            try n.requireInputs(inputs)
            try b.emit(n, op, Array(n.inputs.prefix(inputs.upperBound)))
        }
    }
}

/// Why a node could not be imported.
public struct ONNXImportError: Error, Sendable, Equatable, CustomStringConvertible {
    public var node: String
    public var opType: String
    public var message: String
    public init(node: String, opType: String, _ message: String) {
        self.node = node
        self.opType = opType
        self.message = message
    }
    public var description: String { "node '\(node)' (\(opType)): \(message)" }
}

/// An attribute's value as a NodeProto holds it (read by importers, written by `ONNXExporter`).
public enum ONNXAttributeValue: Sendable {
    case int(Int)
    case ints([Int])
    case float(Float)
    case floats([Float])
    case string(String)
    /// A TENSOR attribute, decoded (Constant's `value`, ConstantOfShape's fill).
    case tensor(Tensor)
    /// Any other type (GRAPH, SPARSE_TENSOR, …), by its AttributeProto type name.
    case other(String)

    var typeName: String {
        switch self {
        case .int: "INT"
        case .ints: "INTS"
        case .float: "FLOAT"
        case .floats: "FLOATS"
        case .string: "STRING"
        case .tensor: "TENSOR"
        case let .other(name): name
        }
    }
}

/// One NodeProto being imported.
public struct ONNXNode: Sendable {
    /// The node's name (made unique by the reader), for the IR node and for messages.
    public let name: String
    public let opType: String
    /// Input names with aliases (Identity, widening Cast) resolved: the values the IR reads; "" for
    /// an omitted optional input.
    public let inputs: [String]
    /// Input names as the file writes them.
    public let onnxInputs: [String]
    public let outputs: [String]
    public let attributes: [String: ONNXAttributeValue]

    public init(name: String, opType: String, inputs: [String], onnxInputs: [String], outputs: [String],
                attributes: [String: ONNXAttributeValue]) {
        self.name = name
        self.opType = opType
        self.inputs = inputs
        self.onnxInputs = onnxInputs
        self.outputs = outputs
        self.attributes = attributes
    }

    public func error(_ message: String) -> ONNXImportError { ONNXImportError(node: name, opType: opType, message) }

    /// Refuses attributes the importer does not read: their meaning would be silently lost.
    public func allow(_ names: Set<String>) throws(ONNXImportError) {
        let unknown = attributes.keys.filter { !names.contains($0) }.sorted()
        guard unknown.isEmpty else { throw error("unsupported attribute\(unknown.count > 1 ? "s" : "") \(unknown.map { "'\($0)'" }.joined(separator: ", "))") }
    }

    private func mismatch(_ key: String, _ value: ONNXAttributeValue, _ expected: String) -> ONNXImportError {
        error("attribute '\(key)' is \(value.typeName), expected \(expected)")
    }

    public func int(_ key: String) throws(ONNXImportError) -> Int? {
        guard let value = attributes[key] else { return nil }
        guard case let .int(v) = value else { throw mismatch(key, value, "INT") }
        return v
    }
    public func int(_ key: String, default value: Int) throws(ONNXImportError) -> Int { try int(key) ?? value }
    public func float(_ key: String) throws(ONNXImportError) -> Float? {
        guard let value = attributes[key] else { return nil }
        guard case let .float(v) = value else { throw mismatch(key, value, "FLOAT") }
        return v
    }
    public func float(_ key: String, default value: Float) throws(ONNXImportError) -> Float { try float(key) ?? value }
    public func ints(_ key: String) throws(ONNXImportError) -> [Int]? {
        guard let value = attributes[key] else { return nil }
        guard case let .ints(v) = value else { throw mismatch(key, value, "INTS") }
        return v
    }
    public func floats(_ key: String) throws(ONNXImportError) -> [Float]? {
        guard let value = attributes[key] else { return nil }
        guard case let .floats(v) = value else { throw mismatch(key, value, "FLOATS") }
        return v
    }
    public func string(_ key: String) throws(ONNXImportError) -> String? {
        guard let value = attributes[key] else { return nil }
        guard case let .string(v) = value else { throw mismatch(key, value, "STRING") }
        return v
    }
    public func string(_ key: String, default value: String) throws(ONNXImportError) -> String { try string(key) ?? value }
    public func tensor(_ key: String) throws(ONNXImportError) -> Tensor? {
        guard let value = attributes[key] else { return nil }
        guard case let .tensor(v) = value else { throw mismatch(key, value, "TENSOR") }
        return v
    }

    /// The input at `index`, nil when absent or named "" (an omitted optional input).
    public func input(_ index: Int) -> String? { index < inputs.count && !inputs[index].isEmpty ? inputs[index] : nil }

    public func requireInputs(_ range: ClosedRange<Int>) throws(ONNXImportError) {
        let present = inputs.lastIndex { !$0.isEmpty }.map { $0 + 1 } ?? 0
        guard range.contains(present) else { throw error("takes \(range.lowerBound)…\(range.upperBound) inputs, has \(present)") }
    }

    /// The first output's name (every op zoo imports computes its first output).
    public var output: String { outputs[0] }
}

/// The graph an ONNX import grows node by node: known constants, aliases, the IR nodes so far and
/// their inferred shapes.
public struct ONNXGraphBuilder {
    /// The default-domain opset the model imports.
    public let opset: Int
    public let limits: ResourceLimits
    /// Graph inputs (runtime values).
    public let inputs: [ValueInfo]
    /// Initializers, folded Constants and constant results, by value name.
    public private(set) var constants: [String: Tensor] = [:]
    /// Constant names in the order they became known.
    public private(set) var constantOrder: [String] = []
    public var nodes: [Node] = []
    /// Identity outputs and widening Casts → the value they forward.
    public var aliases: [String: String] = [:]
    /// Values the model types FLOAT whose constant is stored in another floating dtype: the outputs
    /// of widening Casts, and Identity copies of them. Only through these may an op read such a constant.
    public var widened: Set<String> = []
    /// Every value some node or the graph reads (to check that dropped extra outputs are unused).
    public let consumed: Set<String>
    /// Graph inputs and the outputs of `nodes[..<inferredNodes]`, inferred as importers ask for
    /// shapes, so a lookup costs the nodes appended since the last.
    private var inferred: [String: ValueInfo] = [:]
    private var inferredNodes = 0

    public init(opset: Int, limits: ResourceLimits, inputs: [ValueInfo], consumed: Set<String>) {
        self.opset = opset
        self.limits = limits
        self.inputs = inputs
        self.consumed = consumed
        for input in inputs { inferred[input.name] = input }
    }

    public mutating func addConstant(_ name: String, _ tensor: Tensor) {
        if constants[name] == nil { constantOrder.append(name) }
        constants[name] = tensor
    }

    /// Appends an IR node computing `n`'s outputs (the first `op.outputCount`; any further ONNX
    /// outputs must be absent or unused).
    public mutating func emit(_ n: ONNXNode, _ op: any Operator, _ inputs: [String]) throws(ONNXImportError) {
        guard let output = n.outputs.first, !output.isEmpty else { throw n.error("has no output") }
        let computed = Array(n.outputs.prefix(op.outputCount))
        for extra in n.outputs.dropFirst(computed.count) where !extra.isEmpty && consumed.contains(extra) {
            throw n.error("output '\(extra)' is used, but zoo computes only the first \(computed.count == 1 ? "output" : "\(computed.count) outputs") of \(n.opType)")
        }
        // With an f32 graph input every computed value is f32, and the ops take one element type for
        // all their inputs (BatchNormalization-15's scale, bias, mean and var excepted): a constant
        // stored in another dtype must come through a widening Cast. Read directly, the model is
        // ill-typed (onnx.checker and onnxruntime refuse it), and so refused here too.
        if self.inputs.first?.dtype == .f32, !(n.opType == "BatchNormalization" && opset >= 15) {
            for name in n.onnxInputs where !name.isEmpty && !widened.contains(name) {
                let value = aliases[name] ?? name
                guard inputs.contains(value), let t = constants[value], t.dtype.isFloatingPoint, t.dtype != .f32 else { continue }
                throw n.error("input '\(name)' is stored as \(t.dtype.rawValue) and read without a Cast: \(n.opType) takes one element "
                    + "type for all its inputs, here f32 (a weight stored in another precision is read through a Cast to FLOAT)")
            }
        }
        nodes.append(Node(n.name, op, inputs: inputs, outputs: computed))
    }

    /// Appends an IR node of the builder's own making (a node an import expands into several).
    public mutating func append(_ node: Node) { nodes.append(node) }

    /// A constant integer input (Reshape's shape, ConstantOfShape's shape), from an initializer or a
    /// folded Constant.
    public func constantInts(_ value: String, _ n: ONNXNode, _ role: String) throws(ONNXImportError) -> [Int] {
        guard let tensor = constants[value] else { throw n.error("\(role) '\(value)' must be a constant (initializer or Constant)") }
        guard tensor.dtype == .i64 || tensor.dtype == .i32, tensor.rank <= 1 else {
            throw n.error("\(role) '\(value)' must be a 1-D int64 tensor, is \(tensor.dtype.rawValue) \(tensor.shape)")
        }
        // As a shape, its length is a rank.
        do throws(LimitExceeded) { try limits.checkRank(tensor.count, "\(role) '\(value)'") } catch { throw n.error(error.description) }
        return tensor.integers()
    }

    /// The shape of a value built so far: a constant's, or a graph input's or node output's as the
    /// IR infers it. Nodes appended since the last lookup are inferred now, so importing stays linear.
    public mutating func shape(of value: String, _ n: ONNXNode) throws(ONNXImportError) -> [Dim] {
        try info(of: value, n).shape
    }

    /// The type of a value built so far (see `shape(of:)`), with its value when it is a constant.
    public mutating func info(of value: String, _ n: ONNXNode) throws(ONNXImportError) -> ValueInfo {
        if let tensor = constants[value] { return ValueInfo(name: value, known: tensor) }
        while inferredNodes < nodes.count {
            let node = nodes[inferredNodes]
            do throws(GraphError) {
                var infos: [ValueInfo] = []
                for input in node.inputs {
                    if let tensor = constants[input] {
                        infos.append(ValueInfo(name: input, dtype: tensor.dtype, shape: tensor.shape.map { .fixed($0) }, value: tensor))
                    } else if let info = inferred[input] {
                        infos.append(info)
                    } else {
                        throw GraphError(node: node.name, op: node.op.name, .undefinedInput(input))
                    }
                }
                for (name, info) in zip(node.outputs, try Graph.inferOutputs(of: node, inputs: infos)) {
                    guard inferred[name] == nil else {
                        throw GraphError(node: node.name, op: node.op.name, .outputDefinedTwice(name))
                    }
                    inferred[name] = info
                }
            } catch {
                throw n.error("cannot infer the shape of input '\(value)': \(error)")
            }
            inferredNodes += 1
        }
        guard let info = inferred[value] else { throw n.error("input '\(value)' is not defined before this node") }
        return info
    }

    /// `value` reshaped to `target` (0 copies a dim): a constant is refolded under a new name, any
    /// other value gets an IR Reshape node named after `n`.
    public mutating func reshaped(_ n: ONNXNode, _ value: String, to target: [Int], role: String) throws(ONNXImportError) -> String {
        guard let output = n.outputs.first, !output.isEmpty else { throw n.error("has no output") }
        let name = "\(output)/\(role)_reshaped"
        if let constant = constants[value] {
            let shape = target.enumerated().map { $0.element == 0 ? constant.shape[$0.offset] : $0.element }
            do throws(OpFailure) { addConstant(name, try constant.reshaped(shape)) } catch { throw n.error(error.message) }
        } else {
            nodes.append(Node("\(n.name)/\(role)_reshape", Op.Reshape(shape: target, allowZero: false), inputs: [value], output: name))
        }
        return name
    }

    /// Legacy (opset < 7) broadcasting of `value` (shape `b`) to shape `a`: `b` must be a contiguous
    /// run of `a`'s dims starting at `axis` (suffix matching when nil), or hold one element. The
    /// changelog says "1-dim expansion doesn't work yet"; exporters relied on it anyway (torch's
    /// [2, 1] + axis=0 onto [2, 3]), so a dim of 1 in `b` broadcasts, as it does from opset 7.
    /// Returns what the IR's right-aligned NumPy broadcasting reads: `value` itself when the run
    /// ends at `a`'s last dim, else `value` reshaped with trailing 1s (the constant refolded, or an
    /// IR Reshape).
    public mutating func legacyBroadcast(_ n: ONNXNode, _ value: String, shape b: [Dim], to a: [Dim], axis: Int?,
                                         role: String) throws(ONNXImportError) -> String {
        guard b.count <= a.count else {
            throw n.error("\(role) \(Dim.text(b)) has a higher rank than \(Dim.text(a)); legacy broadcasting (broadcast=1) only extends \(role)")
        }
        if b.allSatisfy({ $0 == .fixed(1) }) { return value }  // one element (a scalar included) broadcasts from anywhere
        let start: Int
        if let axis {
            guard axis >= 0, axis <= a.count - b.count else {
                throw n.error("axis \(axis) does not place \(role) \(Dim.text(b)) inside \(Dim.text(a)) (legacy broadcasting needs 0 ≤ axis ≤ \(a.count - b.count))")
            }
            start = axis
        } else {
            start = a.count - b.count
        }
        for (k, dim) in b.enumerated() where dim != a[start + k] && dim != .fixed(1) {
            throw n.error("\(role) \(Dim.text(b)) does not broadcast to \(Dim.text(a)) from axis \(start): its dimension \(k) is \(dim), not \(a[start + k]) or 1")
        }
        let trailing = a.count - start - b.count
        guard trailing > 0 else { return value }
        return try reshaped(n, value, to: [Int](repeating: 0, count: b.count) + [Int](repeating: 1, count: trailing), role: role)
    }

    /// Explicit pads [begin…, end…] (one per spatial dim; [top, left, bottom, right] in 2-D) for
    /// `auto_pad` and `pads`, resolved for the input's declared spatial size when auto_pad is SAME_*.
    public mutating func pads(_ n: ONNXNode, kernel: [Int], strides: [Int], dilations: [Int]) throws(ONNXImportError) -> [Int] {
        // Validated before any arithmetic: SAME_* divides by the strides and multiplies by the dilations.
        let s = kernel.count
        guard s >= 1, strides.count == s, dilations.count == s else {
            throw n.error("kernel_shape \(kernel), strides \(strides) and dilations \(dilations) must have one value per spatial dim")
        }
        guard kernel.allSatisfy({ $0 >= 1 }) else { throw n.error("kernel_shape \(kernel) must be positive") }
        guard strides.allSatisfy({ $0 >= 1 }) else { throw n.error("strides \(strides) must be positive") }
        guard dilations.allSatisfy({ $0 >= 1 }) else { throw n.error("dilations \(dilations) must be positive") }
        if let pads = try n.ints("pads") {
            guard pads.count == 2 * s else { throw n.error("pads \(pads) must have \(2 * s) values for a \(s)-D op") }
            guard pads.allSatisfy({ $0 >= 0 }) else { throw n.error("pads \(pads) must be non-negative") }
        }
        let autoPad = try n.string("auto_pad", default: "NOTSET")
        switch autoPad {
        case "NOTSET":
            return try n.ints("pads") ?? [Int](repeating: 0, count: 2 * s)
        case "VALID":
            if let pads = try n.ints("pads"), pads.contains(where: { $0 != 0 }) { throw n.error("auto_pad VALID with nonzero pads \(pads)") }
            return [Int](repeating: 0, count: 2 * s)
        case "SAME_UPPER", "SAME_LOWER":
            let x = try shape(of: n.inputs[0], n)
            let sizes = x.dropFirst(2).compactMap(\.value)
            guard x.count == s + 2, sizes.count == s else {
                throw n.error("auto_pad \(autoPad) needs a fixed-size \(s + 2)-D input, '\(n.inputs[0])' is \(Dim.text(x))")
            }
            var begin = [Int](repeating: 0, count: s), end = [Int](repeating: 0, count: s)
            for (axis, size) in sizes.enumerated() {
                // out = ceil(size / stride); total = (out - 1) * stride + (kernel - 1) * dilation + 1 - size.
                let out = size / strides[axis] + (size % strides[axis] == 0 ? 0 : 1)
                let (reach, o1) = (out - 1).multipliedReportingOverflow(by: strides[axis])  // ≤ size: cannot overflow
                let (span, o2) = (kernel[axis] - 1).multipliedReportingOverflow(by: dilations[axis])
                let (extent, o3) = reach.addingReportingOverflow(span)
                guard !o1, !o2, !o3, extent < Int.max else {
                    throw n.error("auto_pad \(autoPad): the window (kernel_shape \(kernel), dilations \(dilations)) is too large")
                }
                let total = max(0, extent + 1 - size)
                begin[axis] = autoPad == "SAME_UPPER" ? total / 2 : total - total / 2
                end[axis] = total - begin[axis]
            }
            return begin + end
        default:
            throw n.error("attribute 'auto_pad': unknown value '\(autoPad)'")
        }
    }
}

extension Dim {
    /// "[N, 3, 224, 224]".
    public static func text(_ dims: [Dim]) -> String { "[" + dims.map(\.description).joined(separator: ", ") + "]" }
}
