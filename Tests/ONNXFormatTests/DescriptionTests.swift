import Foundation
import ONNXFormat
import XCTest
import ZooCore

/// `ONNX.describe` against well-formed models zoo cannot run, made by
/// Fixtures/make_onnx_inspect_cases.py: every field agrees with onnx's own reading of the file
/// (`<name>.expected.json`, written by the script from `onnx.load`).
final class DescriptionTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/onnx/inspect")
    static let cases = ["unrunnable", "unsupported_attribute", "int4_weights"]

    static func path(_ name: String) -> String { fixtures.appendingPathComponent("\(name).onnx").path }

    static func expected(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: fixtures.appendingPathComponent("\(name).expected.json"))
        return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// A graph input or output, comparable: a dimension as "8", "param N" or "?" (the script writes
    /// 8, "N" and null); shape nil when none is declared.
    private struct Value: Equatable {
        let name: String, elementType: String, shape: [String]?
    }

    private func values(_ values: [ONNXDescription.Value]) -> [Value] {
        values.map { v in
            Value(name: v.name, elementType: v.elementType?.description ?? "none", shape: v.shape?.map { dimension in
                switch dimension {
                case let .value(size): "\(size)"
                case let .param(name): "param \(name)"
                case .unknown: "?"
                }
            })
        }
    }

    private func expectedValues(_ list: Any?) -> [Value] {
        (list as! [[String: Any]]).map { v in
            let shape = (v["shape"] as? [Any])?.map { dimension -> String in
                if let name = dimension as? String { return "param \(name)" }
                return (dimension as? Int).map { "\($0)" } ?? "?"
            }
            return Value(name: v["name"] as! String, elementType: v["elem_type"] as! String, shape: shape)
        }
    }

    private func opCounts(_ counts: [ONNXDescription.OpCount]) -> [[String: AnyHashable]] {
        counts.map { ["domain": $0.domain, "op": $0.opType, "count": $0.count] }
    }

    private func expectedOpCounts(_ list: Any?) -> [[String: AnyHashable]] {
        (list as! [[String: Any]]).map { ["domain": $0["domain"] as! String, "op": $0["op"] as! String, "count": $0["count"] as! Int] }
    }

    func testEveryFieldAgreesWithONNX() throws {
        for name in Self.cases {
            let d = try ONNX.describe(path: Self.path(name)), e = try Self.expected(name)
            XCTAssertEqual(d.irVersion, e["ir_version"] as? Int, name)
            XCTAssertEqual(d.opsetImports.map { [$0.domain: $0.version] },
                           (e["opset_imports"] as! [[String: Any]]).map { [$0["domain"] as! String: $0["version"] as! Int] }, name)
            XCTAssertEqual(d.opset, (e["opset_imports"] as! [[String: Any]]).first { $0["domain"] as? String == "" }?["version"] as? Int, name)
            XCTAssertEqual(d.producerName, e["producer_name"] as? String, name)
            XCTAssertEqual(d.producerVersion, e["producer_version"] as? String, name)
            XCTAssertEqual(d.graphName, e["graph_name"] as? String, name)
            XCTAssertEqual(d.docString, e["doc_string"] as? String, name)
            XCTAssertEqual(values(d.inputs), expectedValues(e["inputs"]), name)
            XCTAssertEqual(values(d.outputs), expectedValues(e["outputs"]), name)
            XCTAssertEqual(d.nodes.map { [$0.name, $0.opType, $0.domain] },
                           (e["nodes"] as! [[String: Any]]).map { [$0["name"] as! String, $0["op"] as! String, $0["domain"] as! String] }, name)
            XCTAssertEqual(opCounts(d.opCounts), expectedOpCounts(e["op_counts"]), name)
            XCTAssertEqual(d.initializerCount, e["initializer_count"] as? Int, name)
            XCTAssertEqual(d.parameterCount, e["parameter_count"] as? Int, name)
            XCTAssertEqual(d.initializerBytes, e["initializer_bytes"] as? Int, name)
            XCTAssertEqual(d.externalInitializers, e["external_initializers"] as? Int, name)
        }
    }

    /// `unsupportedOps` is the op types the script built each file to hold for zoo to lack, counted
    /// as onnx counts them — and the importer refuses exactly those, or (every op having a builder)
    /// refuses the model for another reason.
    func testUnsupportedOpsAreTheOnesTheImporterRefuses() throws {
        for name in Self.cases {
            let d = try ONNX.describe(path: Self.path(name)), e = try Self.expected(name)
            XCTAssertEqual(opCounts(d.unsupportedOps), expectedOpCounts(e["zoo_cannot_run"]), name)
            XCTAssertThrowsError(try ONNX.load(path: Self.path(name)), name) { error in
                let message = "\(error)"
                let listed = message.hasPrefix("\(Self.path(name)): unsupported ops: ")
                XCTAssertEqual(listed, !d.unsupportedOps.isEmpty, message)
                for op in d.opCounts where listed {
                    let named = (op.domain.isEmpty ? "" : op.domain + ".") + op.opType
                    XCTAssertEqual(message.contains("(\(named))"), d.unsupportedOps.contains(op), "\(name): \(named) in '\(message)'")
                }
            }
        }
        // Every op of unsupported_attribute has a builder; its MaxPool's storage_order=1 is refused.
        XCTAssertThrowsError(try ONNX.load(path: Self.path("unsupported_attribute"))) { error in
            XCTAssertTrue("\(error)".contains("node 'pool' (MaxPool): storage_order 1"), "\(error)")
        }
    }

    /// A model of one node `op` at `opset`, with one FLOAT initializer of `dims` (no data) read by
    /// nothing, written to a scratch file.
    private func model(opset: Int, op: String, dims: [Int] = [1]) throws -> String {
        var graph = WireWriter()
        graph.message(1) { n in n.string(1, "x"); n.string(2, "y"); n.string(3, "node"); n.string(4, op) }
        graph.string(2, "g")
        graph.message(5) { t in for d in dims { t.int(1, d) }; t.int(2, 1); t.string(8, "w") }
        graph.message(11) { v in v.string(1, "x") }
        graph.message(12) { v in v.string(1, "y") }
        var model = WireWriter()
        model.int(1, 8)
        model.message(7) { $0.bytes = graph.bytes }
        model.message(8) { o in o.string(1, ""); o.int(2, opset) }
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-describe-\(UUID().uuidString).onnx")
        try Data(model.bytes).write(to: url)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url.path
    }

    /// The table the importer checks: ConstantOfShape has a builder but first appeared in opset 9.
    func testAnOpNewerThanTheModelsOpsetIsUnsupported() throws {
        let old = try ONNX.describe(path: try model(opset: 8, op: "ConstantOfShape"))
        XCTAssertEqual(opCounts(old.unsupportedOps), [["domain": "", "op": "ConstantOfShape", "count": 1]])
        XCTAssertEqual(try ONNX.describe(path: try model(opset: 9, op: "ConstantOfShape")).unsupportedOps, [])
    }

    /// A description reads no tensor data, but a declared shape must still be countable and within
    /// `maxTensorRank`, and the file a whole ModelProto: otherwise one line naming what is wrong.
    func testMalformedFilesAreRefusedInOneLine() throws {
        func refusal(_ path: String, limits: ResourceLimits = .standard) -> String {
            do { _ = try ONNX.describe(path: path, limits: limits); return "described" } catch { return error.description }
        }
        let negative = refusal(try model(opset: 13, op: "Relu", dims: [2, -1]))
        XCTAssertTrue(negative.hasSuffix(": tensor 'w': negative dimension in [2, -1]"), negative)
        let huge = refusal(try model(opset: 13, op: "Relu", dims: [1 << 40, 1 << 40]))
        XCTAssertTrue(huge.hasSuffix(": tensor 'w': shape [1099511627776, 1099511627776] is too large"), huge)
        let lowRank = try ResourceLimits.parse("maxTensorRank=2")
        let rank = refusal(Self.path("unrunnable"), limits: lowRank)
        XCTAssertTrue(rank.contains(": tensor 'w': a tensor of rank 4 exceeds limit maxTensorRank (2;"), rank)
        let declared = refusal(Self.path("unsupported_attribute"), limits: lowRank)  // no initializers; x is [N, 3, 4, 4]
        XCTAssertTrue(declared.contains(": value 'x': a declared shape of rank 4 exceeds limit maxTensorRank (2;"), declared)

        let bytes = try Data(contentsOf: URL(fileURLWithPath: Self.path("unrunnable")))
        let cut = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-describe-cut-\(UUID().uuidString).onnx")
        try bytes.prefix(bytes.count / 2).write(to: cut)
        addTeardownBlock { try? FileManager.default.removeItem(at: cut) }
        let truncated = refusal(cut.path)
        XCTAssertTrue(truncated.hasPrefix("\(cut.path): truncated protobuf: "), truncated)
        for message in [negative, huge, rank, declared, truncated] { XCTAssertFalse(message.contains("\n"), message) }
    }
}
