import Foundation
import ONNXFormat
import XCTest

/// `zoo inspect` describes every well-formed ONNX model, runnable or not (exit 0), naming what zoo
/// cannot run; only a file that is not a whole ONNX model is an error. Files and expected values
/// from Fixtures/make_onnx_inspect_cases.py (onnx's reading of each file, `<name>.expected.json`).
final class InspectONNXTests: XCTestCase {
    static let fixtures = CLITests.fixtures.deletingLastPathComponent().appendingPathComponent("onnx/inspect")

    private func path(_ name: String) -> String { Self.fixtures.appendingPathComponent("\(name).onnx").path }

    private func expected(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: Self.fixtures.appendingPathComponent("\(name).expected.json"))
        return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    private func object(_ result: CLITests.Result, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        XCTAssertEqual(result.status, 0, result.stderr, file: file, line: line)
        XCTAssertEqual(result.stderr, "", file: file, line: line)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], file: file, line: line)
    }

    /// `Shrink ×2, com.example.FancyOp ×1` for op counts as the script writes them.
    private func opList(_ counts: Any?) -> String {
        (counts as! [[String: Any]]).map { op in
            let domain = op["domain"] as! String
            return (domain.isEmpty ? "" : domain + ".") + (op["op"] as! String) + " ×\(op["count"] as! Int)"
        }.joined(separator: ", ")
    }

    /// `x: FLOAT [N, 3, ?, 8]` for a value as the script writes it (a null dimension is unknown).
    private func valueText(_ value: [String: Any]) -> String {
        let dims = (value["shape"] as! [Any]).map { ($0 as? String) ?? ($0 as? Int).map(String.init) ?? "?" }
        return "\(value["name"] as! String): \(value["elem_type"] as! String) [\(dims.joined(separator: ", "))]"
    }

    private func ops(_ list: Any?) -> [[String]] {
        (list as! [[String: Any]]).map { [$0["domain"] as! String, $0["op"] as! String, "\($0["count"] as! Int)"] }
    }

    func testTextDescribesAModelZooCannotRunAndListsExactlyItsOps() throws {
        let e = try expected("unrunnable")
        let result = try CLITests.run(["inspect", path("unrunnable")])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stderr, "")
        let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let producer = "\(e["producer_name"] as! String) \(e["producer_version"] as! String)"
        let opset = (e["opset_imports"] as! [[String: Any]]).first { $0["domain"] as? String == "" }!["version"] as! Int
        let opsets = (e["opset_imports"] as! [[String: Any]]).map { o in
            "\((o["domain"] as! String).isEmpty ? "ai.onnx" : o["domain"] as! String) \(o["version"] as! Int)"
        }
        let inputs = (e["inputs"] as! [[String: Any]]).map { "input:     " + valueText($0) }
        let outputs = (e["outputs"] as! [[String: Any]]).map { "output:    " + valueText($0) }
        XCTAssertEqual(lines, [
            "file:      \(path("unrunnable"))",
            "format:    onnx (IR \(e["ir_version"] as! Int), opset \(opset), producer '\(producer)')",
            "opsets:    " + opsets.joined(separator: ", "),
            "graph:     '\(e["graph_name"] as! String)'",
            "doc:       '\(e["doc_string"] as! String)'",
        ] + inputs + outputs + [
            "ops:       \((e["nodes"] as! [Any]).count) nodes: " + opList(e["op_counts"]),
            "tensors:   \(e["initializer_count"] as! Int) initializers, \(e["parameter_count"] as! Int) parameters, "
                + "\(e["initializer_bytes"] as! Int) bytes (\(e["external_initializers"] as! Int) in external data)",
            "zoo cannot run: " + opList(e["zoo_cannot_run"]),
            "",
        ])

        // A truncated copy is no ONNX model: still exit 1 with one line.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path("unrunnable")))
        let cut = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-inspect-cut-\(UUID().uuidString).onnx")
        try bytes.prefix(bytes.count - 20).write(to: cut)
        addTeardownBlock { try? FileManager.default.removeItem(at: cut) }
        let truncated = try CLITests.run(["inspect", cut.path])
        XCTAssertEqual(truncated.status, 1)
        XCTAssertEqual(truncated.stdout, "")
        XCTAssertTrue(truncated.stderr.hasPrefix("Error: \(cut.path): truncated protobuf: "), truncated.stderr)
        XCTAssertEqual(truncated.stderr.filter { $0 == "\n" }.count, 1, truncated.stderr)
    }

    func testJSONHasEveryDescriptionFieldAndTheInitializers() throws {
        let e = try expected("unrunnable")
        let json = try object(try CLITests.run(["inspect", path("unrunnable"), "--json"]))
        for key in ["ir_version", "producer_name", "producer_version", "graph_name", "doc_string", "initializer_count",
                    "parameter_count", "initializer_bytes", "external_initializers"] {
            XCTAssertEqual(json[key] as? NSObject, e[key] as? NSObject, key)
        }
        XCTAssertEqual(json["opset"] as? Int, (e["opset_imports"] as! [[String: Any]]).first { $0["domain"] as? String == "" }?["version"] as? Int)
        XCTAssertEqual(json["opset_imports"] as? NSArray, e["opset_imports"] as? NSArray)
        for key in ["inputs", "outputs"] {
            let values = try XCTUnwrap(json[key] as? [[String: Any]], key)
            XCTAssertEqual(values.map { $0["type"] as? String }, values.map { _ in "tensor" }, key)
            XCTAssertEqual(values.map { NSDictionary(dictionary: $0.filter { $0.key != "type" }) }, (e[key] as! [[String: Any]]).map(NSDictionary.init), key)
        }
        XCTAssertEqual(ops(json["op_counts"]), ops(e["op_counts"]))
        XCTAssertEqual(ops(json["unsupported_ops"]), ops(e["zoo_cannot_run"]))
        XCTAssertEqual(json["nodes"] as? NSArray, e["nodes"] as? NSArray)
        let tensors = try XCTUnwrap(json["tensors"] as? [[String: Any]])
        let initializers = e["initializers"] as! [[String: Any]]
        XCTAssertEqual(tensors.map { $0["name"] as! String }, initializers.map { $0["name"] as! String })
        XCTAssertEqual(tensors.map { $0["shape"] as! [Int] }, initializers.map { $0["dims"] as! [Int] })
        XCTAssertEqual(tensors.map { $0["bytes"] as! Int }, initializers.map { $0["bytes"] as! Int })
        XCTAssertTrue(json["tensors_error"] is NSNull)
        XCTAssertTrue(json["graph"] is NSNull)
        XCTAssertTrue((json["import_error"] as? String)?.hasPrefix("unsupported ops: ") == true, "\(json["import_error"] ?? "none")")
    }

    /// Every op has a builder, but the import refuses an attribute value: the error is a note, exit 0.
    func testAModelWhoseOpsAllHaveBuildersShowsItsImportErrorAsANote() throws {
        let e = try expected("unsupported_attribute")
        XCTAssertEqual((e["zoo_cannot_run"] as! [Any]).count, 0)
        let pool = (e["nodes"] as! [[String: Any]]).first { $0["op"] as? String == "MaxPool" }!["name"] as! String
        let text = try CLITests.run(["inspect", path("unsupported_attribute")])
        XCTAssertEqual(text.status, 0, text.stderr)
        let lines = text.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.last, "zoo cannot import it: node '\(pool)' (MaxPool): storage_order 1 (column-major indices) is not supported")
        XCTAssertFalse(text.stdout.contains("zoo cannot run:"), text.stdout)
        XCTAssertTrue(lines.contains("ops:       \((e["nodes"] as! [Any]).count) nodes: " + opList(e["op_counts"])), text.stdout)

        let json = try object(try CLITests.run(["inspect", path("unsupported_attribute"), "--json"]))
        XCTAssertEqual((json["unsupported_ops"] as? [Any])?.count, 0)
        XCTAssertTrue((json["import_error"] as? String)?.hasPrefix("node '\(pool)' (MaxPool): ") == true, "\(json["import_error"] ?? "none")")
        XCTAssertTrue(json["graph"] is NSNull)
    }

    /// An INT4 weight zoo cannot hold: counted with its packed bytes, left out of `tensors`, saying why.
    func testInitializersZooCannotHoldAreCountedAndTheReasonGiven() throws {
        let e = try expected("int4_weights")
        let weight = (e["initializers"] as! [[String: Any]]).first { $0["data_type"] as? String == "INT4" }!["name"] as! String
        let json = try object(try CLITests.run(["inspect", path("int4_weights"), "--json"]))
        XCTAssertEqual(json["initializer_bytes"] as? Int, e["initializer_bytes"] as? Int)
        XCTAssertEqual(json["parameter_count"] as? Int, e["parameter_count"] as? Int)
        XCTAssertEqual(ops(json["unsupported_ops"]), ops(e["zoo_cannot_run"]))
        XCTAssertEqual((json["tensors"] as? [Any])?.count, 0)
        XCTAssertTrue((json["tensors_error"] as? String)?.hasPrefix("tensor '\(weight)': data type INT4 is not supported") == true,
                      "\(json["tensors_error"] ?? "none")")
        let text = try CLITests.run(["inspect", path("int4_weights")])
        XCTAssertEqual(text.status, 0, text.stderr)
        XCTAssertTrue(text.stdout.contains("\n           not read: tensor '\(weight)': data type INT4 is not supported"), text.stdout)
        XCTAssertTrue(text.stdout.hasSuffix("\nzoo cannot run: " + opList(e["zoo_cannot_run"]) + "\n"), text.stdout)
    }

    /// A model zoo runs: the summary, then the imported graph's dump as before; nothing unsupported.
    func testARunnableModelKeepsItsGraphDump() throws {
        let file = CLITests.fixtures.deletingLastPathComponent().appendingPathComponent("onnx/alexnet_small_ts_opset17.onnx").path
        let model = try ONNX.load(path: file)
        let text = try CLITests.run(["inspect", file])
        XCTAssertEqual(text.status, 0, text.stderr)
        XCTAssertTrue(text.stdout.hasSuffix("\n\n" + model.graph.dump + "\n"), text.stdout)
        XCTAssertFalse(text.stdout.contains("zoo cannot"), text.stdout)
        XCTAssertTrue(text.stdout.contains("\ntensors:   \(model.initializers.count) initializers, "), text.stdout)

        let json = try object(try CLITests.run(["inspect", file, "--json"]))
        XCTAssertEqual((json["unsupported_ops"] as? [Any])?.count, 0)
        XCTAssertTrue(json["import_error"] is NSNull)
        XCTAssertEqual(((json["graph"] as? [String: Any])?["nodes"] as? [Any])?.count, model.graph.nodes.count)
        XCTAssertEqual((json["tensors"] as? [[String: Any]])?.map { $0["name"] as! String }, model.initializers.map(\.name))
    }
}
