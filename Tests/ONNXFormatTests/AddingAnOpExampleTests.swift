import Foundation
import ONNXFormat
import XCTest
import ZooCore
@testable import ZooOps
import ZooRuntime

// README-EXAMPLE-BEGIN (the README's "Adding an op" example, verbatim: AddingAnOpExampleTests checks it)
extension Op {
    /// x / (1 + |x|).
    public struct Softsign: Operator, Equatable {
        public var name: String { "Softsign" }
        // Shape and dtype rule: what it accepts, what it makes.
        public func infer(_ inputs: [ValueInfo]) throws(OpFailure) -> [ValueInfo] {
            try DTypeRules.floating(inputs)
            return [ValueInfo(dtype: inputs[0].dtype, shape: inputs[0].shape)]
        }
        // Reference semantics (Double): runs it for any dtype, folds it, and is what a fast kernel is tested against.
        public func evaluate(_ inputs: [Tensor]) throws(OpFailure) -> [Tensor] {
            [Tensor(dtype: inputs[0].dtype, shape: inputs[0].shape, doubles: inputs[0].doubles().map { $0 / (1 + abs($0)) })]
        }
        // Optional: `func lower(_:) -> Lowering?` returns a fast f32 kernel (a `StepKernel`).
        public func exportONNX(_ node: Node, to onnx: inout ONNXExporter) throws(OpFailure) { onnx.emit("Softsign") }
        public static var onnxImporters: [ONNXImporter] {
            [ONNXImporter("Softsign") { (b: inout ONNXGraphBuilder, n: ONNXNode) throws(ONNXImportError) in
                try n.allow([])                 // any attribute it does not read is refused, by name
                try n.requireInputs(1...1)
                try b.emit(n, Softsign(), [n.inputs[0]])
            }]
        }
    }
}
// README-EXAMPLE-END

/// The README's example op compiles as written, runs through a graph and the executor (its reference
/// semantics: softsign), and writes itself to ONNX — and the README shows exactly this code.
final class AddingAnOpExampleTests: XCTestCase {
    /// On the ONNX node test `test_softsign` (the onnx wheel's data, as the conformance suites read it).
    func testTheREADMEsExampleOpWorks() throws {
        let data = try BackendData.require() + "/node/test_softsign/test_data_set_0"
        let x = try ONNX.tensor(fromTensorProtoFile: data + "/input_0.pb")
        let expected = try ONNX.tensor(fromTensorProtoFile: data + "/output_0.pb")
        let graph = try Graph(name: "g", inputs: [ValueInfo(name: "x", dtype: x.dtype, shape: x.shape.map { .fixed($0) })], initializers: [],
                              nodes: [Node("s", Op.Softsign(), inputs: ["x"])], outputs: ["s"])
        let y = try Executor(graph: graph).run(x)["s"]!
        let report = ParityReport(name: "softsign", value: y, reference: expected)
        XCTAssertEqual(y.shape, expected.shape)
        XCTAssertLessThanOrEqual(report.maxAbsDifference, 1e-6 * report.maxAbsReference)
        XCTAssertEqual(try ONNXExporter.lower(graph, opset: 17).nodes.map(\.opType), ["Softsign"])
        XCTAssertEqual(Op.Softsign.onnxImporters.map(\.opType), ["Softsign"])
    }

    func testTheREADMEShowsThisCode() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        let source = try String(contentsOf: URL(fileURLWithPath: #filePath), encoding: .utf8)
        func between(_ text: String, _ start: String, _ end: String) -> String? {
            guard let a = text.range(of: start), let b = text.range(of: end, range: a.upperBound..<text.endIndex) else { return nil }
            return String(text[a.upperBound..<b.lowerBound])
        }
        let shown = between(readme, "### Adding an op", "\nIts tests are").flatMap { between($0, "```swift\n", "```\n") }
        let compiled = between(source, "README-EXAMPLE-BEGIN", "// README-EXAMPLE-END").map { String($0.drop { $0 != "\n" }.dropFirst()) }
        XCTAssertNotNil(shown)
        XCTAssertEqual(shown, compiled, "README's Adding an op example differs from the code this test compiles")
    }
}
