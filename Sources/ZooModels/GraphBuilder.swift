import ZooCore
import ZooOps

/// Builds a sequential graph whose nodes are named after module paths and whose weights are the
/// state-dict entries `<node>.weight` / `<node>.bias`.
struct GraphBuilder {
    private(set) var nodes: [Node] = []
    private var last: String
    private let input: ValueInfo
    private var parameters: [String] = []

    init(input: String, channels: Int, size: Int) {
        self.input = ValueInfo(name: input, dtype: .f32, shape: [.symbolic("N"), .fixed(channels), .fixed(size), .fixed(size)])
        last = input
    }

    mutating func add(_ name: String, _ op: any Operator, inputs extra: [String] = []) {
        nodes.append(Node(name, op, inputs: [last] + extra))
        last = name
    }

    mutating func conv(_ name: String, kernel: Int, stride: Int = 1, pad: Int, groups: Int = 1) {
        parameters += [name + ".weight", name + ".bias"]
        add(name, Op.Conv(kernel: [kernel, kernel], strides: [stride, stride], pads: [pad, pad, pad, pad], groups: groups),
            inputs: [name + ".weight", name + ".bias"])
    }

    mutating func linear(_ name: String) {
        parameters += [name + ".weight", name + ".bias"]
        add(name, Op.Gemm.linear, inputs: [name + ".weight", name + ".bias"])
    }

    /// The AlexNet family's classifier: Dropout, Linear, ReLU, Dropout, Linear, ReLU, Linear as
    /// `classifier.0`…`classifier.6`.
    mutating func alexNetClassifier() {
        add("classifier.0", Op.Dropout(ratio: 0.5))
        linear("classifier.1")
        add("classifier.2", Op.Unary.relu)
        add("classifier.3", Op.Dropout(ratio: 0.5))
        linear("classifier.4")
        add("classifier.5", Op.Unary.relu)
        linear("classifier.6")
    }

    func build(name: String, weights: [String: Tensor]) throws(GraphError) -> Graph {
        var initializers: [(name: String, tensor: Tensor)] = []
        for parameter in parameters {
            guard let tensor = weights[parameter] else { throw GraphError(.missingWeight(parameter)) }
            initializers.append((parameter, tensor))
        }
        return try Graph(name: name, inputs: [input], initializers: initializers, nodes: nodes, outputs: [last])
    }
}
