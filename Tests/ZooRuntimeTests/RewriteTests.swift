import XCTest
import ZooCore
import ZooOps
import ZooRuntime

/// The executor's graph rewrites (`Rewrite`): the rewritten graph computes what the graph computes
/// node by node (`fuse: false`, nothing rewritten), and a rewrite is taken exactly where its
/// conditions hold. DenseNet's transitions run through it against torchvision in
/// ArchitectureParityTests.
final class RewriteTests: XCTestCase {
    /// A pointwise convolution read only by an unpadded average pool: the pool runs first (the
    /// profile's first step), at random channels, groups, bias, pool windows (2×2/2, 3×3/2 with
    /// ceil mode, 2×1, 3×3/1) and sizes — the same values as node by node within rounding.
    func testAveragePoolRunsBeforeAPointwiseConvolution() throws {
        var g = KernelTwinTests.Generator(state: 7)
        let pools: [Op.Pool] = [
            Op.Pool(kernel: [2, 2], strides: [2, 2]), Op.Pool(kernel: [3, 3], strides: [2, 2], ceilMode: true),
            Op.Pool(kernel: [2, 1], strides: [2, 1]), Op.Pool(kernel: [3, 3], strides: [1, 1], countIncludePad: true),
        ]
        for trial in 0..<24 {
            let groups = [1, 1, 2][trial % 3], bias = trial % 2 == 0
            let cin = groups * g.int(1...12), cout = groups * g.int(1...20)
            let shape = [g.int(1...2), cin, g.int(3...17), g.int(3...17)]
            let pool = pools[trial % pools.count]
            var initializers: [(name: String, tensor: Tensor)] = [("w", g.tensor([cout, cin / groups, 1, 1]))]
            if bias { initializers.append(("b", g.tensor([cout]))) }
            let graph = try Graph(
                name: "g", inputs: [ValueInfo(name: "x", dtype: .f32, shape: shape.map { .fixed($0) })], initializers: initializers,
                nodes: [Node("conv", Op.Conv(kernel: [1, 1], groups: groups), inputs: bias ? ["x", "w", "b"] : ["x", "w"]),
                        Node("pool", Op.AveragePool(pool), inputs: ["conv"])],
                outputs: ["pool"])
            let x = g.tensor(shape)
            let executor = try Executor(graph: graph, options: .init(threads: 2))
            let rewritten = try executor.run(x)["pool"]!
            let plain = try Executor(graph: graph, options: .init(threads: 2, fuse: false)).run(x)["pool"]!
            let label = "x \(shape) \(cin)→\(cout) g\(groups) bias \(bias) pool \(Op.AveragePool(pool).summary)"
            let report = ParityReport(name: label, value: rewritten, reference: plain)
            XCTAssertEqual(rewritten.shape, plain.shape, label)
            XCTAssertLessThanOrEqual(report.maxAbsDifference, 1e-5 * max(report.maxAbsReference, 1), label)
            let steps = try executor.profile(x, runs: 1)
            XCTAssertEqual(steps.map(\.nodes), [["pool"], ["conv"]], label)
            XCTAssertTrue(steps[0].kernel.hasPrefix("averagePool"), "\(label): \(steps[0].kernel)")
        }
    }

    /// Where pooling first would change the result or gain nothing, the graph runs as written: a
    /// padded pool (its zeros are not the convolution's bias), a 3×3 or strided convolution, a
    /// convolution another node also reads, a pool that keeps every pixel, a max pool.
    func testNoRewriteWhereItWouldNotHold() throws {
        var g = KernelTwinTests.Generator(state: 11)
        let x = g.tensor([1, 4, 8, 8])
        let w1 = g.tensor([6, 4, 1, 1]), w3 = g.tensor([6, 4, 3, 3])
        let plain = Op.Pool(kernel: [2, 2], strides: [2, 2])
        let cases: [(String, [Node], [String])] = [
            ("padded pool", [Node("conv", Op.Conv(kernel: [1, 1]), inputs: ["x", "w1"]),
                             Node("pool", Op.AveragePool(Op.Pool(kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1])), inputs: ["conv"])], ["pool"]),
            ("3×3 convolution", [Node("conv", Op.Conv(kernel: [3, 3], pads: [1, 1, 1, 1]), inputs: ["x", "w3"]),
                                 Node("pool", Op.AveragePool(plain), inputs: ["conv"])], ["pool"]),
            ("strided convolution", [Node("conv", Op.Conv(kernel: [1, 1], strides: [2, 2]), inputs: ["x", "w1"]),
                                     Node("pool", Op.AveragePool(plain), inputs: ["conv"])], ["pool"]),
            ("convolution read twice", [Node("conv", Op.Conv(kernel: [1, 1]), inputs: ["x", "w1"]),
                                        Node("pool", Op.AveragePool(plain), inputs: ["conv"])], ["pool", "conv"]),
            ("pool keeping every pixel", [Node("conv", Op.Conv(kernel: [1, 1]), inputs: ["x", "w1"]),
                                          Node("pool", Op.AveragePool(Op.Pool(kernel: [1, 1], strides: [1, 1])), inputs: ["conv"])], ["pool"]),
            ("max pool", [Node("conv", Op.Conv(kernel: [1, 1]), inputs: ["x", "w1"]),
                          Node("pool", Op.MaxPool(plain), inputs: ["conv"])], ["pool"]),
        ]
        for (label, nodes, outputs) in cases {
            let graph = try Graph(name: "g", inputs: [ValueInfo(name: "x", dtype: .f32, shape: [1, 4, 8, 8].map { .fixed($0) })],
                                  initializers: [("w1", w1), ("w3", w3)], nodes: nodes, outputs: outputs)
            let steps = try Executor(graph: graph, options: .init(threads: 2)).profile(x, runs: 1)
            XCTAssertEqual(steps.map(\.nodes), [["conv"], ["pool"]], label)
        }
    }
}
