import XCTest
import ZooCore
import ZooOps
import ZooRuntime

/// Conv → BatchNormalization (→ ReLU) runs as one convolution with the normalization folded into its
/// weights and bias. The unfused run (`fuse: false`, every node on its own, the path checked against
/// PyTorch layer by layer) is the reference twin: randomized graphs agree to f32 rounding, and a
/// Conv whose output something else also reads is left alone.
final class BatchNormFoldingTests: XCTestCase {
    private struct Generator {
        var state: UInt64
        mutating func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(state >> 40) / Float(1 << 24) * 2 - 1   // [-1, 1)
        }
        mutating func values(_ count: Int, plus offset: Float = 0) -> [Float] { (0..<count).map { _ in next() + offset } }
    }

    private func graph(channels: Int, out: Int, groups: Int, bias: Bool, relu: Bool, alsoReadConv: Bool, seed: UInt64) throws -> Graph {
        var g = Generator(state: seed)
        let weight = Tensor(floats: g.values(out * channels / groups * 9), shape: [out, channels / groups, 3, 3])
        var initializers: [(name: String, tensor: Tensor)] = [("w", weight)]
        if bias { initializers.append(("b", Tensor(floats: g.values(out), shape: [out]))) }
        initializers += [("scale", Tensor(floats: g.values(out, plus: 1.5), shape: [out])), ("shift", Tensor(floats: g.values(out), shape: [out])),
                         ("mean", Tensor(floats: g.values(out), shape: [out])), ("var", Tensor(floats: g.values(out, plus: 1.5), shape: [out]))]
        var nodes = [Node("conv", Op.Conv(kernel: [3, 3], pads: [1, 1, 1, 1], groups: groups), inputs: ["x", "w"] + (bias ? ["b"] : [])),
                     Node("bn", Op.BatchNormalization(epsilon: 1e-5), inputs: ["conv", "scale", "shift", "mean", "var"])]
        var output = "bn"
        if relu { nodes.append(Node("relu", Op.Unary.relu, inputs: ["bn"])); output = "relu" }
        if alsoReadConv { nodes.append(Node("sum", Op.Binary.add, inputs: [output, "conv"])); output = "sum" }
        return try Graph(name: "g", inputs: [ValueInfo(name: "x", dtype: .f32, shape: [.fixed(2), .fixed(channels), .fixed(9), .fixed(7)])],
                         initializers: initializers, nodes: nodes, outputs: [output])
    }

    func testFoldedEqualsConvThenBatchNorm() throws {
        var seed: UInt64 = 1
        for (channels, out, groups) in [(3, 8, 1), (16, 24, 1), (12, 12, 12), (8, 16, 4)] {
            for bias in [false, true] {
                for relu in [false, true] {
                    for alsoReadConv in [false, true] {
                        seed += 1
                        let graph = try graph(channels: channels, out: out, groups: groups, bias: bias, relu: relu, alsoReadConv: alsoReadConv, seed: seed)
                        var g = Generator(state: seed ^ 0xABCDEF)
                        let x = Tensor(floats: g.values(2 * channels * 63), shape: [2, channels, 9, 7])
                        let fused = try Executor(graph: graph, options: .init(threads: 2, fuse: true))
                        let reference = try Executor(graph: graph, options: .init(threads: 2, fuse: false))
                        let a = try fused.run(x)[graph.outputs[0]]!.floats(), b = try reference.run(x)[graph.outputs[0]]!.floats()
                        let scale = b.map(abs).max()!
                        let worst = zip(a, b).map { abs($0 - $1) }.max()!
                        let context = "\(channels)→\(out) groups \(groups) bias \(bias) relu \(relu) conv read twice \(alsoReadConv)"
                        XCTAssertLessThanOrEqual(worst, 1e-5 * scale, context)
                        // The first step computes the BatchNormalization too, unless the Conv's output is read elsewhere.
                        let first = try fused.profile(x, runs: 1)[0].nodes
                        XCTAssertEqual(first, alsoReadConv ? ["conv"] : ["conv", "bn"] + (relu ? ["relu"] : []), context)
                    }
                }
            }
        }
    }
}
