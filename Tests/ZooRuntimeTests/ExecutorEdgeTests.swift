import XCTest
import ZooCore
import ZooOps
import ZooRuntime

/// Unusual but valid graphs run correctly; graphs that would need absurd memory are refused.
final class ExecutorEdgeTests: XCTestCase {
    private func tensor(_ values: [Float], _ shape: [Int]) -> Tensor { Tensor(floats: values, shape: shape) }

    /// A Conv whose data input is an initializer gives the same bytes as the same Conv fed by the
    /// graph input (the path checked against PyTorch elsewhere).
    func testConstantDataInputs() throws {
        let image = tensor((0..<16).map { Float($0) / 7 }, [1, 1, 4, 4])
        let weight = tensor([1, -0.5, 0.25, 2], [1, 1, 2, 2])
        let offset = tensor([Float](repeating: 0.125, count: 9), [1, 1, 3, 3])
        func graph(input: String, constant: String, _ constantTensor: Tensor, shape: [Int]) throws -> Graph {
            try Graph(name: "g", inputs: [ValueInfo(name: input, dtype: .f32, shape: shape.map { .fixed($0) })],
                      initializers: [(constant, constantTensor), ("w", weight)],
                      nodes: [Node("conv", Op.Conv(kernel: [2, 2]), inputs: ["image", "w"]), Node("sum", Op.Binary.add, inputs: ["conv", "offset"])],
                      outputs: ["sum"])
        }
        let constantImage = try Executor(graph: try graph(input: "offset", constant: "image", image, shape: [1, 1, 3, 3])).run(offset)["sum"]!
        let inputImage = try Executor(graph: try graph(input: "image", constant: "offset", offset, shape: [1, 1, 4, 4])).run(image)["sum"]!
        XCTAssertEqual(constantImage.shape, [1, 1, 3, 3])
        XCTAssertEqual(constantImage.floats(), inputImage.floats())
    }

    /// A value computed from constants alone (Expand of a scalar to a declared shape) is computed
    /// once when the plan is made, not at every run — and refused, before anything is allocated,
    /// when its size passes the activation limit, as a kernel output would be.
    func testConstantResultsAreComputedOnceAndBounded() throws {
        func graph(_ shape: [Int]) throws -> Graph {
            try Graph(name: "g", inputs: [ValueInfo(name: "x", dtype: .f32, shape: [.fixed(1)])],
                      initializers: [("one", tensor([1], [])), ("shape", Tensor(int64s: shape, shape: [shape.count]))],
                      nodes: [Node("big", Op.Expand(), inputs: ["one", "shape"]), Node("y", Op.Binary.add, inputs: ["x", "big"])],
                      outputs: ["y"])
        }
        // 300 × 300 = 90,000 elements: more than inference folds (65,536), so the plan computes it.
        let y = try Executor(graph: try graph([300, 300])).run(tensor([2], [1]))["y"]!
        XCTAssertEqual(y.shape, [300, 300])
        XCTAssertEqual(Set(y.floats()), [3])
        XCTAssertThrowsError(try Executor(graph: try graph([1 << 20, 1 << 20])).run(tensor([2], [1]))) { error in
            XCTAssertEqual((error as? ExecutionError)?.node, "big")
            XCTAssertTrue("\(error)".contains("is too large to compute") && "\(error)".contains("maxActivationBytes"), "\(error)")
        }
    }

    /// A graph may name an initializer as an output; it comes back unchanged.
    func testInitializerAsOutput() throws {
        let bias = tensor([1.5, -2], [2])
        let graph = try Graph(name: "g", inputs: [ValueInfo(name: "x", dtype: .f32, shape: [.fixed(2)])], initializers: [("bias", bias)],
                              nodes: [Node("r", Op.Unary.relu, inputs: ["x"])], outputs: ["r", "bias"])
        let outputs = try Executor(graph: graph).run(tensor([3, -3], [2]))
        XCTAssertEqual(outputs["bias"]?.floats(), bias.floats())
    }

    /// A rank-0 input runs, giving what the same value gives as a rank-1 tensor (the path the op
    /// fixtures check against torch).
    func testRankZeroInput() throws {
        func relu(_ shape: [Int]) throws -> [Float] {
            let graph = try Graph(name: "g", inputs: [ValueInfo(name: "x", dtype: .f32, shape: shape.map { .fixed($0) })], initializers: [],
                                  nodes: [Node("r", Op.Unary.relu, inputs: ["x"])], outputs: ["r"])
            let y = try Executor(graph: graph).run(tensor([-2], shape))["r"]!
            XCTAssertEqual(y.shape, shape)
            return y.floats()
        }
        XCTAssertEqual(try relu([]), try relu([1]))
    }

    func testAbsurdOutputsAreRefusedBeforeAllocating() throws {
        let graph = try Graph(
            name: "g", inputs: [ValueInfo(name: "x", dtype: .f32, shape: [.symbolic("N"), .fixed(1), .fixed(4), .fixed(4)])],
            initializers: [("w", tensor([1], [1, 1, 1, 1]))],
            nodes: [Node("conv", Op.Conv(kernel: [1, 1], pads: [100_000, 100_000, 100_000, 100_000]), inputs: ["x", "w"])],
            outputs: ["conv"])
        XCTAssertThrowsError(try Executor(graph: graph).run(tensor([Float](repeating: 1, count: 16), [1, 1, 4, 4]))) { error in
            XCTAssertTrue("\(error)".contains("node 'conv'") && "\(error)".contains("too large"), "\(error)")
        }
    }

    func testEmptyWeightsAreRefused() throws {
        let graph = try Graph(
            name: "g", inputs: [ValueInfo(name: "x", dtype: .f32, shape: [.fixed(1), .fixed(4)])],
            initializers: [("w", Tensor(floats: [], shape: [0, 4]))],
            nodes: [Node("fc", Op.Gemm.linear, inputs: ["x", "w"])], outputs: ["fc"])
        XCTAssertThrowsError(try Executor(graph: graph)) { XCTAssertTrue("\($0)".contains("is empty"), "\($0)") }
    }
}
