import XCTest
import ZooCore
import ZooOps

/// The registry is the one list of ops: every ONNX op type has exactly one importer, and every op
/// that writes ONNX writes one of the types the registry imports (so a re-export reads back).
final class OpRegistryTests: XCTestCase {
    func testEveryImportedTypeHasOneImporterFromTheRegistry() {
        let types = Op.registry.flatMap { $0.onnxImporters.map(\.opType) }
        XCTAssertEqual(types.count, Set(types).count, "an ONNX op type with two importers")
        // The registry's ops plus the three folded at import (Identity, Constant, ConstantOfShape).
        XCTAssertEqual(Set(Op.onnxImporters.keys), Set(types).union(["Identity", "Constant", "ConstantOfShape"]))
        print("ONNX op types zoo imports: \(Op.onnxImporters.count): \(Op.onnxImporters.keys.sorted().joined(separator: " "))")
        XCTAssertGreaterThanOrEqual(Op.onnxImporters.count, 80)
    }

    /// A sample of each family's ops, written to ONNX at opsets 13 and 21, uses only op types zoo reads.
    func testWrittenOpTypesAreImportedTypes() throws {
        let x = ValueInfo(name: "x", dtype: .f32, shape: [.fixed(1), .fixed(2), .fixed(4), .fixed(4)])
        let ops: [any Operator] = [
            Op.Unary(.hardSwish), Op.Unary(.gelu(tanh: false)), Op.Unary(.gelu(tanh: true)), Op.Unary(.mish), Op.Unary(.clip(min: 0, max: 6)),
            Op.LayerNormalization(axis: -1), Op.Shape(start: 1, end: 3), Op.Reduce(.mean, axes: [2, 3]), Op.Transpose(perm: [0, 1, 3, 2]),
        ]
        for opset in [13, 21] {
            for op in ops {
                var inputs = ["x"], initializers: [(name: String, tensor: Tensor)] = []
                if op is Op.LayerNormalization {
                    initializers.append(("scale", Tensor(floats: [1, 1, 1, 1], shape: [4])))
                    inputs.append("scale")
                }
                let graph = try Graph(name: "g", inputs: [x], initializers: initializers, nodes: [Node("n", op, inputs: inputs)], outputs: ["n"])
                let written = try ONNXExporter.lower(graph, opset: opset)
                for node in written.nodes {
                    XCTAssertNotNil(Op.onnxImporters[node.opType], "\(op.name) at opset \(opset) writes \(node.opType)")
                    if let since = Op.onnxImporters[node.opType]?.since { XCTAssertLessThanOrEqual(since, opset, "\(node.opType) at opset \(opset)") }
                }
            }
        }
    }
}
