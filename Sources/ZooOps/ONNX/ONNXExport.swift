/// The op-facing half of the ONNX writer: a `Graph` lowered to ONNX nodes, attributes and extra
/// initializers, before ONNXFormat packs them as protobuf. Each op writes itself (`exportONNX`);
/// this file holds what is common: names, the widening Casts of non-f32 weights, aliases.
import ZooCore

/// The ONNX form of a graph, built op by op.
public struct ONNXExporter {
    /// An attribute as the reader decodes it; a `.tensor` written must be dense (its bytes are written
    /// as they are and must live as long as the exporter), and `.other` is never written.
    public typealias Attribute = ONNXAttributeValue

    public struct Node: Sendable {
        public var name: String
        public var opType: String
        public var inputs: [String]
        public var outputs: [String]
        public var attributes: [(name: String, value: Attribute)]
    }

    /// The default-domain opset being written.
    public let opset: Int
    /// The graph's name (GraphProto.name).
    public let name: String
    public private(set) var nodes: [Node] = []
    /// The graph's initializers in order, then the constants ops added (Reshape shapes).
    public private(set) var initializers: [(name: String, tensor: Tensor)] = []
    public private(set) var inputs: [ValueInfo] = []
    public private(set) var outputs: [ValueInfo] = []
    /// Every intermediate value the ONNX nodes produce (graph outputs excluded).
    public private(set) var valueInfo: [ValueInfo] = []
    /// Every value's type in the graph being written.
    public let values: [String: ValueInfo]
    private let graphOutputs: Set<String>
    /// Names the export may not give to a value or node it adds.
    private var taken: Set<String>
    /// Values an op forwarded without a node (Dropout): its output → the value passed through; and
    /// initializers not stored as f32: their name → the Cast output that widens them.
    private var alias: [String: String] = [:]
    /// The IR node being written (`emit` names the ONNX node after it).
    private var current: ZooOps.Node?

    /// Lowers `graph` for `opset`; the opset must be one the caller writes (the ops check what it
    /// can express). Throws `GraphError` naming the node an op refused.
    public static func lower(_ graph: Graph, opset: Int) throws(GraphError) -> ONNXExporter {
        var export = ONNXExporter(graph: graph, opset: opset)
        for node in graph.nodes {
            export.current = node
            do throws(OpFailure) { try node.op.exportONNX(node, to: &export) } catch {
                throw GraphError(node: node.name, op: node.op.name, .op(error.message))
            }
        }
        for output in graph.outputs {
            guard let info = graph.values[output] else { throw GraphError(.outputNotProduced(output)) }
            export.outputs.append(info)
        }
        for node in export.nodes {
            for output in node.outputs where !export.graphOutputs.contains(output) {
                if let info = graph.values[output] { export.valueInfo.append(info) }
            }
        }
        return export
    }

    private init(graph: Graph, opset: Int) {
        self.opset = opset
        name = graph.name.isEmpty ? "main_graph" : graph.name
        values = graph.values
        graphOutputs = Set(graph.outputs)
        taken = Set(graph.values.keys).union(graph.nodes.map(\.name))
        initializers = graph.initializers
        inputs = graph.inputs
        let read = Set(graph.nodes.flatMap(\.inputs))
        for (name, tensor) in graph.initializers where tensor.dtype.isFloatingPoint && tensor.dtype != .f32 && read.contains(name) {
            let widened = fresh(name + ".f32")
            alias[name] = widened
            nodes.append(Node(name: widened, opType: "Cast", inputs: [name], outputs: [widened],
                              attributes: [("to", .int(1))]))  // TensorProto.FLOAT
            valueInfo.append(ValueInfo(name: widened, dtype: .f32, shape: tensor.shape.map { .fixed($0) }))
        }
    }

    /// `base`, or `base_1`, `base_2`… — the first name not taken, which it then takes.
    public mutating func fresh(_ base: String) -> String {
        var name = base
        var suffix = 1
        while taken.contains(name) {
            name = base + "_\(suffix)"
            suffix += 1
        }
        taken.insert(name)
        return name
    }

    /// The name ONNX nodes read for the IR value `name` (through a widening Cast or a dropped node).
    public func resolve(_ name: String) -> String { alias[name] ?? name }

    public func isGraphOutput(_ name: String) -> Bool { graphOutputs.contains(name) }

    /// Writes one ONNX node for the current IR node: its name and outputs, its inputs resolved (or
    /// `inputs`, already resolved, when given).
    public mutating func emit(_ opType: String, _ attributes: [(name: String, value: Attribute)] = [], inputs: [String]? = nil) {
        let node = current!
        nodes.append(Node(name: node.name, opType: opType, inputs: inputs ?? node.inputs.map(resolve), outputs: node.outputs,
                          attributes: attributes))
    }

    /// Writes one ONNX node of a decomposition of the current IR node (an op the target opset lacks,
    /// written with older ones): named after it, with a fresh output unless `final` (then the IR
    /// node's own output). Returns the output's name.
    @discardableResult
    public mutating func emitStep(_ opType: String, _ attributes: [(name: String, value: Attribute)] = [], inputs: [String],
                                  final: Bool = false) -> String {
        let node = current!
        let output = final ? node.outputs[0] : fresh(node.outputs[0] + "/" + opType)
        nodes.append(Node(name: fresh(node.name + "/" + opType), opType: opType, inputs: inputs, outputs: [output], attributes: attributes))
        return output
    }

    /// A scalar constant of `dtype` as an initializer named after the current node and `role`.
    public mutating func scalar(_ value: Double, _ dtype: DType, _ role: String) -> String {
        addInitializer(current!.name + "." + role, Tensor(dtype: dtype, shape: [], doubles: [value]))
    }

    /// Makes readers of the current node's output read `value` instead (an op that is the identity in ONNX).
    public mutating func forward(to value: String) { alias[current!.outputs[0]] = value }

    /// Adds an initializer named after `base` (made unique) and returns its name.
    public mutating func addInitializer(_ base: String, _ tensor: Tensor) -> String {
        let name = fresh(base)
        initializers.append((name, tensor))
        return name
    }
}
