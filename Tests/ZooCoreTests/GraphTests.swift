import Foundation
import XCTest
import ZooCore
import ZooOps

final class GraphTests: XCTestCase {
    private func weights(_ shape: [Int]) -> Tensor { Tensor(floats: [Float](repeating: 0.5, count: shape.reduce(1, *)), shape: shape) }

    private func input(_ shape: [Dim]) -> ValueInfo { ValueInfo(name: "x", dtype: .f32, shape: shape) }

    /// Fixtures made by Fixtures/make_parity_fixtures.py and make_op_fixtures.py with real PyTorch.
    private static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures")

    private func torchShape(_ relative: String) throws -> [Int] {
        try NumPy.read(path: Self.fixtures.appendingPathComponent(relative).path).shape
    }

    /// conv1 + pool1 of the reduced torchvision AlexNet, with a symbolic batch: the fixed dims are
    /// torch's (its activations for a 2×3×100×100 input), the batch stays symbolic.
    func testShapesAreInferredWithASymbolicBatch() throws {
        let conv = try torchShape("parity/alexnet_small_act/features.0.npy")
        let pool = try torchShape("parity/alexnet_small_act/features.2.npy")
        let graph = try Graph(
            name: "g", inputs: [input([.symbolic("N"), .fixed(3), .fixed(100), .fixed(100)])],
            initializers: [("w", weights([8, 3, 11, 11])), ("b", weights([8])), ("fcw", weights([10, 8 * 36]))],
            nodes: [
                Node("conv", Op.Conv(kernel: [11, 11], strides: [4, 4], pads: [2, 2, 2, 2]), inputs: ["x", "w", "b"]),
                Node("pool", Op.MaxPool(Op.Pool(kernel: [3, 3], strides: [2, 2])), inputs: ["conv"]),
                Node("avg", Op.AdaptiveAveragePool(outputHeight: 6, outputWidth: 6), inputs: ["pool"]),
                Node("flat", Op.Flatten(axis: 1), inputs: ["avg"]),
                Node("fc", Op.Gemm.linear, inputs: ["flat", "fcw"]),
            ], outputs: ["fc"])
        XCTAssertEqual(graph.values["conv"]?.shape, [.symbolic("N")] + conv.dropFirst().map { .fixed($0) })
        XCTAssertEqual(graph.values["pool"]?.shape, [.symbolic("N")] + pool.dropFirst().map { .fixed($0) })
        XCTAssertEqual(graph.values["flat"]?.shape, [.symbolic("N"), .fixed(8 * 36)])
        XCTAssertEqual(graph.values["fc"]?.shape, [.symbolic("N"), .fixed(10)])
        // Re-inferred for a concrete batch, every dim is torch's.
        let concrete = try graph.inferShapes(for: ["x": [2, 3, 100, 100]])
        XCTAssertEqual(concrete["conv"]?.fixedShape, conv)
        XCTAssertEqual(concrete["pool"]?.fixedShape, pool)
        XCTAssertEqual(concrete["fc"]?.fixedShape, [2, 10])
        let convDims = conv.dropFirst().map(String.init).joined(separator: ", ")
        XCTAssertTrue(graph.dump.contains("conv  Conv(k=11×11 s=4×4 p=2,2,2,2)  x, @w, @b -> f32 [N, \(convDims)]"), graph.dump)
        XCTAssertEqual(graph.parameterCount, 8 * 3 * 121 + 8 + 10 * 288)
    }

    /// Every Conv, MaxPool and AveragePool case torch ran (ceil mode dropping a window that would
    /// start in the padding, padded windows, strides, dilations, groups): the inferred output shape
    /// is the shape of torch's output.
    func testWindowShapesMatchTorch() throws {
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.fixtures.appendingPathComponent("ops/manifest.json"))) as! [[String: Any]]
        var checked = 0
        for c in manifest {
            let name = c["name"] as! String, a = c["attributes"] as! [String: Any], inputs = c["inputs"] as! [String]
            func ints(_ key: String, _ fallback: [Int]) -> [Int] { a[key] as? [Int] ?? fallback }
            let op: any Operator
            switch c["op"] as! String {
            case "Conv":
                op = Op.Conv(kernel: ints("kernel_shape", []), strides: ints("strides", [1, 1]), dilations: ints("dilations", [1, 1]),
                                   pads: ints("pads", [0, 0, 0, 0]), groups: a["group"] as? Int ?? 1)
            case "MaxPool", "AveragePool":
                let pool = Op.Pool(kernel: ints("kernel_shape", []), strides: ints("strides", [1, 1]), pads: ints("pads", [0, 0, 0, 0]),
                                   ceilMode: a["ceil_mode"] as? Int == 1, countIncludePad: a["count_include_pad"] as? Int == 1)
                op = c["op"] as! String == "MaxPool" ? Op.MaxPool(pool) as any Operator : Op.AveragePool(pool)
            default:
                continue
            }
            let x = try torchShape("ops/" + inputs[0])
            let extra = try inputs.dropFirst().enumerated().map { (name: "in\($0.offset)", tensor: weights(try torchShape("ops/" + $0.element))) }
            let graph = try Graph(name: name, inputs: [input(x.map { .fixed($0) })], initializers: extra,
                                  nodes: [Node(name, op, inputs: ["x"] + extra.map(\.name))], outputs: [name])
            XCTAssertEqual(graph.values[name]?.fixedShape, try torchShape("ops/" + (c["output"] as! String)), name)
            checked += 1
        }
        XCTAssertGreaterThanOrEqual(checked, 25)
    }

    func testErrorsNameTheNode() {
        func error(_ nodes: [Node], _ initializers: [(name: String, tensor: Tensor)] = [], shape: [Dim] = [.fixed(1), .fixed(3), .fixed(32), .fixed(32)]) -> GraphError? {
            do {
                _ = try Graph(name: "g", inputs: [input(shape)], initializers: initializers, nodes: nodes, outputs: [nodes.last!.output])
                return nil
            } catch { return error }
        }
        let conv = Op.Conv(kernel: [3, 3])
        let channels = error([Node("c1", conv, inputs: ["x", "w"])], [("w", weights([4, 5, 3, 3]))])
        XCTAssertEqual(channels?.node, "c1")
        XCTAssertTrue(channels?.description.hasPrefix("node 'c1' (Conv): input has 3 channels but weight 'w' expects 5") ?? false, "\(String(describing: channels))")
        XCTAssertEqual(error([Node("c1", conv, inputs: ["x", "nothing"])]), GraphError(node: "c1", op: "Conv", .undefinedInput("nothing")))
        XCTAssertEqual(error([Node("r", Op.Unary.relu, inputs: ["x"]), Node("r", Op.Unary.relu, inputs: ["r"], output: "r2")])?.reason, .nodeNameUsedTwice)
        XCTAssertEqual(error([Node("c1", conv, inputs: ["x"])])?.reason, .inputCount(accepted: 2...3, actual: 1))
        XCTAssertEqual(error([Node("r", Op.Unary.relu, inputs: ["x"], outputs: ["a", "b"])])?.reason, .outputCount(expected: 1, actual: 2))
        let small = error([Node("pool", Op.MaxPool(Op.Pool(kernel: [3, 3], strides: [2, 2])), inputs: ["x"])],
                          shape: [.fixed(1), .fixed(3), .fixed(2), .fixed(2)])
        XCTAssertTrue(small?.message.contains("smaller than the window 3") ?? false, "\(String(describing: small))")
        let gemm = error([Node("flat", Op.Flatten(axis: 1), inputs: ["x"]), Node("fc", Op.Gemm.linear, inputs: ["flat", "w"])],
                         [("w", weights([10, 7]))])
        XCTAssertEqual(gemm?.node, "fc")
        XCTAssertTrue(gemm?.message.contains("inner dimensions differ") ?? false)
        let symbolic = error([Node("r", Op.Unary.relu, inputs: ["x"])], shape: [.fixed(1), .symbolic("C"), .fixed(2), .fixed(2)])
        XCTAssertEqual(symbolic?.reason, .symbolicDimension(input: "x"))
    }

    /// Initializers may be stored in any floating dtype (the executor widens them); inputs and every
    /// node output are f32; integer values are refused.
    func testInitializerDtypes() throws {
        let conv = Op.Conv(kernel: [3, 3])
        let shape: [Dim] = [.symbolic("N"), .fixed(2), .fixed(5), .fixed(5)]
        for dtype in [DType.f16, .bf16, .f32, .f64] {
            let w = try Tensor(dtype: dtype, shape: [4, 2, 3, 3]) { $0.initializeMemory(as: UInt8.self, repeating: 0) }
            let graph = try Graph(name: "g", inputs: [input(shape)], initializers: [("w", w)],
                                  nodes: [Node("c", conv, inputs: ["x", "w"]), Node("r", Op.Unary.relu, inputs: ["c"])], outputs: ["r"])
            XCTAssertEqual(graph.values["w"]?.dtype, dtype)
            XCTAssertEqual(graph.values["c"]?.dtype, .f32, "\(dtype)")
            XCTAssertEqual(graph.values["r"]?.dtype, .f32, "\(dtype)")
            XCTAssertTrue(graph.dump.contains("  1 initializers (@name; \(dtype.rawValue)), 72 parameters"), graph.dump)
        }
        let w = try Tensor(dtype: .i64, shape: [4, 2, 3, 3]) { $0.initializeMemory(as: UInt8.self, repeating: 0) }
        XCTAssertThrowsError(try Graph(name: "g", inputs: [input(shape)], initializers: [("w", w)],
                                       nodes: [Node("c", conv, inputs: ["x", "w"])], outputs: ["c"])) { error in
            XCTAssertEqual("\(error)", "node 'c' (Conv): input 'w' is i64, not floating point")
        }
        // A graph computing in f16 keeps f16 (the executor runs it through the ops' reference semantics).
        let half = ValueInfo(name: "x", dtype: .f16, shape: shape)
        let halfGraph = try Graph(name: "g", inputs: [half], initializers: [], nodes: [Node("r", Op.Unary.relu, inputs: ["x"])], outputs: ["r"])
        XCTAssertEqual(halfGraph.values["r"]?.dtype, .f16)
    }

    func testReshapeAndFlatten() throws {
        func shape(_ op: any Operator, _ dims: [Dim]) throws -> [Dim]? {
            try Graph(name: "r", inputs: [input(dims)], initializers: [], nodes: [Node("r", op, inputs: ["x"])], outputs: ["r"]).values["r"]?.shape
        }
        let batch: [Dim] = [.symbolic("N"), .fixed(256), .fixed(6), .fixed(6)]
        XCTAssertEqual(try shape(Op.Reshape(shape: [0, -1], allowZero: false), batch), [.symbolic("N"), .fixed(9216)])
        XCTAssertEqual(try shape(Op.Flatten(axis: 1), batch), [.symbolic("N"), .fixed(9216)])
        XCTAssertEqual(try shape(Op.Reshape(shape: [2, -1], allowZero: false), [.fixed(4), .fixed(6)]), [.fixed(2), .fixed(12)])
        XCTAssertThrowsError(try shape(Op.Reshape(shape: [5, -1], allowZero: false), [.fixed(4), .fixed(6)]))
        XCTAssertEqual(try shape(Op.Reshape(shape: [-1, 36], allowZero: false), batch), [.symbolic("N*256"), .fixed(36)])
    }

    /// A -1 stands for the input's element count over the other entries', symbols included (torch's
    /// dynamo export writes Reshape(x, [-1, 9216]), allowzero=1: the -1 is then N for every N; a -1
    /// standing for N × 256 is the symbolic product N*256). One that does not divide is refused.
    func testReshapeMinusOneIsTheSymbolicBatch() throws {
        func shape(_ target: [Int], _ dims: [Dim], allowZero: Bool = false) throws -> [Dim]? {
            try Graph(name: "r", inputs: [input(dims)], initializers: [],
                      nodes: [Node("r", Op.Reshape(shape: target, allowZero: allowZero), inputs: ["x"])], outputs: ["r"]).values["r"]?.shape
        }
        func message(_ target: [Int], _ dims: [Dim], allowZero: Bool = false) -> String {
            do { _ = try shape(target, dims, allowZero: allowZero); return "" } catch { return "\(error)" }
        }
        let n = Dim.symbolic("N")
        let batch: [Dim] = [n, .fixed(256), .fixed(6), .fixed(6)]
        XCTAssertEqual(try shape([-1, 9216], batch), [n, .fixed(9216)])
        XCTAssertEqual(try shape([-1, 9216], batch, allowZero: true), [n, .fixed(9216)])
        XCTAssertEqual(try shape([-1, 256, 36], batch), [n, .fixed(256), .fixed(36)])
        XCTAssertEqual(try shape([-1, 36, 256], batch), [n, .fixed(36), .fixed(256)], "the fixed sizes, not their layout, decide")
        XCTAssertEqual(try shape([9216, -1], batch), [.fixed(9216), n], "the -1 need not be first")
        XCTAssertEqual(try shape([-1], [n]), [n])
        XCTAssertEqual(try shape([0, 16, -1], [n, .fixed(4), .fixed(4)]), [n, .fixed(16), .fixed(1)], "a copied N leaves the -1 fixed")
        // Concrete shapes re-inferred for a batch of 3 agree.
        let graph = try Graph(name: "r", inputs: [input(batch)], initializers: [],
                              nodes: [Node("r", Op.Reshape(shape: [-1, 9216], allowZero: true), inputs: ["x"])], outputs: ["r"])
        XCTAssertEqual(try graph.inferShapes(for: ["x": [3, 256, 6, 6]])["r"]?.fixedShape, [3, 9216])

        XCTAssertEqual(try shape([-1, 36], batch), [.symbolic("N*256"), .fixed(36)])
        XCTAssertEqual(try shape([-1], [n, .fixed(24)]), [.symbolic("N*24")])
        let flat = try Graph(name: "r", inputs: [input([n, .fixed(24)])], initializers: [],
                             nodes: [Node("f", Op.Reshape(shape: [-1], allowZero: false), inputs: ["x"]),
                                     Node("r", Op.Reshape(shape: [-1, 24, 1, 1], allowZero: false), inputs: ["f"])], outputs: ["r"])
        XCTAssertEqual(flat.values["r"]?.shape, [n, .fixed(24), .fixed(1), .fixed(1)], "N*24 divides back into N")
        // Impossible: the -1 would be N / 2, or there is no -1 and the counts differ.
        XCTAssertTrue(message([-1, 18432], batch).contains("the -1 would be N*9216 / 18432, not a dimension"), message([-1, 18432], batch))
        XCTAssertTrue(message([1, 9216], batch).contains("cannot reshape [N, 256, 6, 6] (N*9216 elements) to [1, 9216]"), message([1, 9216], batch))
        XCTAssertThrowsError(try shape([-1, 9216], batch.map { $0 == .fixed(6) ? .fixed(3) : $0 }))
    }
}
