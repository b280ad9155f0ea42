import ZooCore
import ZooOps

/// Graph rewrites the executor makes before it compiles, when it fuses (`Executor.Options.fuse`):
/// each computes every graph output the same up to rounding (the same sums in another order) and
/// leaves the graph's inputs, outputs and node names as they were.
enum Rewrite {
    /// An AveragePool without padding that is the only reader of a pointwise convolution (1×1
    /// kernel, stride 1, no padding, any groups, optional bias) runs before it instead of after:
    /// a pointwise convolution is one affine map per pixel and every output of such a pool is the
    /// mean of a non-empty set of input pixels, so pool(conv(x)) = conv(pool(x)) — and the
    /// convolution then runs on the pooled pixels only (DenseNet's transitions: a 1×1 convolution,
    /// then a 2×2/2 average, on a quarter of the pixels). Taken only where the pool has fewer
    /// output pixels than input pixels. The pool keeps its node name and writes a new value
    /// (`<pool output>:pooled-input`); the convolution keeps its name and writes the pool's
    /// output, both at the pool's place in the node order.
    static func poolBeforePointwiseConvolution(_ graph: Graph) throws(GraphError) -> Graph {
        var producers: [String: Int] = [:], readers: [String: Int] = [:]
        for (index, node) in graph.nodes.enumerated() {
            for output in node.outputs { producers[output] = index }
            for input in node.inputs { readers[input, default: 0] += 1 }
        }
        for output in graph.outputs { readers[output, default: 0] += 1 }

        // Each such pool's index, with its convolution's index.
        var convolutionOf: [Int: Int] = [:]
        for (index, node) in graph.nodes.enumerated() {
            guard let average = node.op as? Op.AveragePool, node.inputs.count == 1, node.outputs.count == 1,
                  average.pool.pads.allSatisfy({ $0 == 0 }),
                  let at = producers[node.inputs[0]], readers[node.inputs[0]] == 1,
                  let conv = graph.nodes[at].op as? Op.Conv, graph.nodes[at].outputs.count == 1,
                  conv.kernel.count == average.pool.kernel.count, conv.kernel.allSatisfy({ $0 == 1 }),
                  conv.strides.allSatisfy({ $0 == 1 }), conv.pads.allSatisfy({ $0 == 0 }),
                  let before = graph.values[node.inputs[0]], let after = graph.values[node.output], before.dtype.isFloatingPoint,
                  let inPixels = pixels(before), let outPixels = pixels(after), outPixels < inPixels
            else { continue }
            convolutionOf[index] = at
        }
        guard !convolutionOf.isEmpty else { return graph }
        let moved = Set(convolutionOf.values)
        var nodes: [Node] = []
        for (index, node) in graph.nodes.enumerated() where !moved.contains(index) {
            guard let at = convolutionOf[index] else {
                nodes.append(node)
                continue
            }
            var pooled = "\(node.output):pooled-input"
            while graph.values[pooled] != nil { pooled += "'" }
            let conv = graph.nodes[at]
            nodes.append(Node(node.name, node.op, inputs: [conv.inputs[0]], output: pooled))
            nodes.append(Node(conv.name, conv.op, inputs: [pooled] + conv.inputs.dropFirst(), output: node.output))
        }
        return try Graph(name: graph.name, inputs: graph.inputs, initializers: graph.initializers, nodes: nodes, outputs: graph.outputs)
    }

    /// The spatial element count of a value (nil when a spatial size is not fixed).
    private static func pixels(_ value: ValueInfo) -> Int? {
        guard value.shape.count >= 3 else { return nil }
        var count = 1
        for dim in value.shape.dropFirst(2) {
            guard let size = dim.value else { return nil }
            count *= size
        }
        return count
    }
}
