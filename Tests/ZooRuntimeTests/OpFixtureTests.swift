import XCTest
import ZooCore
import ZooOps
import ZooRuntime

/// Every op case from Fixtures/make_op_fixtures.py (torch, and onnx.reference for ONNX-only
/// semantics) as a one-node graph through the executor (the fast kernel): the first input is the
/// graph input, the others constants; and through the op's reference `evaluate`. Tolerance
/// max|Δ| ≤ 1e-5 · max|ref|.
final class OpFixtureTests: XCTestCase {
    func testEveryOpCaseMatchesItsReference() throws {
        let cases = try Fixture.json("ops/manifest.json") as! [[String: Any]]
        XCTAssertGreaterThanOrEqual(cases.count, 60)
        XCTAssertFalse(cases.isEmpty, "the op manifest lists no cases")
        for c in cases {
            let name = c["name"] as! String
            let files = c["inputs"] as! [String]
            let tensors = try files.map { try Fixture.npy("ops/" + $0) }
            let op = try self.op(c["op"] as! String, c["attributes"] as! [String: Any], name)
            let initializers = tensors.dropFirst().enumerated().map { (name: "in\($0.offset + 1)", tensor: $0.element) }
            let input = ValueInfo(name: "x", dtype: .f32, shape: tensors[0].shape.map { .fixed($0) })
            let graph = try Graph(name: name, inputs: [input], initializers: initializers,
                                  nodes: [Node(name, op, inputs: ["x"] + initializers.map(\.name))], outputs: [name])
            let reference = try op.evaluate(tensors)[0]
            let referenceReport = ParityReport(name: name, value: reference, reference: try Fixture.npy("ops/" + (c["output"] as! String)))
            XCTAssertEqual(reference.shape, referenceReport.shape, name)
            XCTAssertLessThanOrEqual(referenceReport.maxAbsDifference, 1e-5 * referenceReport.maxAbsReference + 1e-7,
                                     "\(name) reference: max|Δ| \(referenceReport.maxAbsDifference), max|ref| \(referenceReport.maxAbsReference)")
            for threads in [1, 2] {
                let output = try Executor(graph: graph, options: .init(threads: threads)).run(tensors[0])[name]!
                let report = ParityReport(name: name, value: output, reference: try Fixture.npy("ops/" + (c["output"] as! String)))
                XCTAssertEqual(output.shape, report.shape, name)
                XCTAssertLessThanOrEqual(report.maxAbsDifference, 1e-5 * report.maxAbsReference + 1e-7,
                                         "\(name) (\(c["source"]!)): max|Δ| \(report.maxAbsDifference), max|ref| \(report.maxAbsReference)")
            }
        }
    }

    /// The IR op for a manifest case (ONNX attribute names; LocalResponseNorm is torch's LRN window).
    private func op(_ name: String, _ a: [String: Any], _ caseName: String) throws -> any Operator {
        func ints(_ key: String, _ fallback: [Int]) -> [Int] { a[key] as? [Int] ?? fallback }
        func int(_ key: String, _ fallback: Int) -> Int { a[key] as? Int ?? fallback }
        func float(_ key: String, _ fallback: Float) -> Float { (a[key] as? Double).map(Float.init) ?? fallback }
        func pool() -> Op.Pool {
            Op.Pool(kernel: ints("kernel_shape", []), strides: ints("strides", [1, 1]), pads: ints("pads", [0, 0, 0, 0]),
                    ceilMode: int("ceil_mode", 0) == 1, countIncludePad: int("count_include_pad", 0) == 1)
        }
        switch name {
        case "Conv":
            return Op.Conv(kernel: ints("kernel_shape", []), strides: ints("strides", [1, 1]), dilations: ints("dilations", [1, 1]),
                                 pads: ints("pads", [0, 0, 0, 0]), groups: int("group", 1))
        case "MaxPool": return Op.MaxPool(pool())
        case "AveragePool": return Op.AveragePool(pool())
        case "AdaptiveAvgPool2d":
            let size = ints("output_size", [])
            return Op.AdaptiveAveragePool(outputHeight: size[0], outputWidth: size[1])
        case "GlobalAveragePool": return Op.GlobalAveragePool()
        case "LRN", "LocalResponseNorm":
            return Op.LRN(size: int("size", 5), alpha: float("alpha", 1e-4), beta: float("beta", 0.75), bias: float("bias", 1),
                               window: name == "LRN" ? .onnx : .pytorch)
        case "Softmax": return Op.Softmax(axis: int("axis", -1))
        case "BatchNormalization": return Op.BatchNormalization(epsilon: float("epsilon", 1e-5))
        case "Gemm":
            return Op.Gemm(alpha: float("alpha", 1), beta: float("beta", 1), transA: int("transA", 0) == 1, transB: int("transB", 0) == 1)
        case "Flatten": return Op.Flatten(axis: int("axis", 1))
        case "Relu": return Op.Unary.relu
        case "Add": return Op.Binary.add
        case "Concat": return Op.Concat(axis: int("axis", 0))
        case "Dropout": return Op.Dropout(ratio: float("ratio", 0.5))
        default:
            XCTFail("\(caseName): op \(name) has no IR mapping")
            throw ExecutionError("unmapped op")
        }
    }

    /// torch's LRN and ONNX's differ for even sizes; zoo must reproduce each.
    func testEvenSizeLRNDefinitionsDiffer() throws {
        let torch = try Fixture.npy("ops/lrn_torch_size4.out.npy").doubles()
        let onnx = try Fixture.npy("ops/lrn_onnx_size4.out.npy").doubles()
        XCTAssertGreaterThan(zip(torch, onnx).map { abs($0 - $1) }.max()!, 0.1)
        XCTAssertEqual(Op.LRN(size: 4, window: .pytorch).offsets.low, -2)
        XCTAssertEqual(Op.LRN(size: 4, window: .onnx).offsets.low, -1)
    }
}
