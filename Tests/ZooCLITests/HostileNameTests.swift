import Foundation
import XCTest
@testable import ZooCLI
import ZooCore
import ZooOps

/// Names that would attack a terminal (escape sequences, newlines, bidi overrides), in files made by
/// the real tools (Fixtures/make_hostile_name_fixtures.py): text output and errors print them
/// escaped, each on its one line; JSON gives them back exactly.
final class HostileNameTests: XCTestCase {
    static let hostile = CLITests.fixtures.deletingLastPathComponent().appendingPathComponent("hostile")

    private func fixture(_ name: String) -> String { Self.hostile.appendingPathComponent(name).path }

    /// What the reference libraries read from each file (expected.json, written by the script).
    private lazy var expected: [String: Any] = {
        let data = try! Data(contentsOf: Self.hostile.appendingPathComponent("expected.json"))
        return try! JSONSerialization.jsonObject(with: data) as! [String: Any]
    }()

    /// Scalars that must never reach a terminal from a file, listed independently of the escaper:
    /// C0 controls but the newline ending each line, DEL, C1, line/paragraph separators, bidi controls.
    private func assertTerminalSafe(_ text: String, _ context: String, file: StaticString = #filePath, line: UInt = #line) {
        let unsafe = text.unicodeScalars.filter { s in
            (s.value < 0x20 && s != "\n") || (0x7F...0x9F).contains(s.value) || [0x2028, 0x2029, 0x200E, 0x200F, 0x061C].contains(s.value)
                || (0x202A...0x202E).contains(s.value) || (0x2066...0x2069).contains(s.value)
        }
        XCTAssertTrue(unsafe.isEmpty, "\(context): raw \(unsafe.map { "U+" + String($0.value, radix: 16) }) in output",
                      file: file, line: line)
    }

    /// Exit status 1, nothing on stdout, and exactly one line on stderr: `Error: ...`, terminal-safe.
    private func assertOneLineError(_ result: CLITests.Result, _ context: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(result.status, 1, context, file: file, line: line)
        XCTAssertEqual(result.stdout, "", context, file: file, line: line)
        XCTAssertTrue(result.stderr.hasPrefix("Error: "), "\(context): \(result.stderr)", file: file, line: line)
        XCTAssertTrue(result.stderr.hasSuffix("\n"), "\(context): \(result.stderr)", file: file, line: line)
        XCTAssertEqual(result.stderr.filter { $0 == "\n" }.count, 1, "\(context): \(result.stderr)", file: file, line: line)
        assertTerminalSafe(result.stderr, context, file: file, line: line)
    }

    private func json(_ result: CLITests.Result) throws -> [String: Any] {
        XCTAssertEqual(result.status, 0, result.stderr)
        return try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
    }

    /// Scalar by scalar: Swift's `==` on String is canonical equivalence, names are compared exactly.
    private func assertSameScalars(_ a: [String], _ b: [String], _ context: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.map { Array($0.unicodeScalars) }, b.map { Array($0.unicodeScalars) }, context, file: file, line: line)
    }

    func testInspectTextPrintsEachHostileTensorNameEscapedOnItsLine() throws {
        let result = try CLITests.run(["inspect", fixture("names.pth")])
        XCTAssertEqual(result.status, 0, result.stderr)
        assertTerminalSafe(result.stdout, "names.pth")
        let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        // file, format, state dict, blank, table header, 6 rows, and the final newline.
        XCTAssertEqual(lines.count, 12, result.stdout)
        XCTAssertTrue(lines.contains("  evil\\u{1B}]0;pwned\\u{07}\\nname  f32    [1]        4"), result.stdout)
        XCTAssertTrue(lines.contains { $0.hasPrefix("  \\u{1B}[31mred ") }, result.stdout)
        XCTAssertTrue(lines.contains { $0.hasPrefix("  rtl\\u{202E}override.weight ") }, result.stdout)
        XCTAssertTrue(lines.contains { $0.hasPrefix("  line\\u{2028}separator ") }, result.stdout)
        XCTAssertTrue(lines.contains { $0.hasPrefix("  c1\\u{9B}2Jdel\\u{7F} ") }, result.stdout)
    }

    func testInspectTextEscapesOtherEntriesSafetensorsMetadataAndTheONNXGraph() throws {
        let nested = try CLITests.run(["inspect", fixture("nested.pth")])
        XCTAssertEqual(nested.status, 0, nested.stderr)
        assertTerminalSafe(nested.stdout, "nested.pth")
        XCTAssertTrue(nested.stdout.contains("\n  note\\u{1B}[8m  'hidden\\u{1B}[2J\\nforged line\\u{202E}'\n"), nested.stdout)

        let safetensors = try CLITests.run(["inspect", fixture("names.safetensors")])
        XCTAssertEqual(safetensors.status, 0, safetensors.stderr)
        assertTerminalSafe(safetensors.stdout, "names.safetensors")
        XCTAssertTrue(safetensors.stdout.contains("\nmetadata:  title\\u{1B}]0;x\\u{07} = a\\nb\\u{2066}c\n"), safetensors.stdout)
        XCTAssertTrue(safetensors.stdout.contains("\n  evil\\u{1B}]0;pwned\\u{07}\\nname  f32"), safetensors.stdout)

        let onnx = try CLITests.run(["inspect", fixture("names.onnx")])
        XCTAssertEqual(onnx.status, 0, onnx.stderr)
        assertTerminalSafe(onnx.stdout, "names.onnx")
        XCTAssertEqual(onnx.stdout.split(separator: "\n").count, 14, onnx.stdout)  // blank line not counted
        for line in ["format:    onnx (IR 8, opset 17, producer 'zoo\\u{1B}[5m')", "graph:     'graph\\u{1B}]0;t\\u{07}'",
                     "input:     in\\u{1B}[31mput: FLOAT [batch\\nsize, 3]", "output:    out\\u{2028}put: FLOAT [batch\\nsize, 4]",
                     "graph graph\\u{1B}]0;t\\u{07}",
                     "  input  in\\u{1B}[31mput: f32 [batch\\nsize, 3]",
                     "  fc\\u{2067}          Gemm(transB)  in\\u{1B}[31mput, @fc.weight\\u{07}, @fc.bias\\u{202E} -> f32 [batch\\nsize, 4]",
                     "  relu\\nforged: line  Relu  hidden\\u{1B}[2J -> f32 [batch\\nsize, 4]",
                     "  output out\\u{2028}put: f32 [batch\\nsize, 4]"] {
            XCTAssertTrue(onnx.stdout.split(separator: "\n").contains(Substring(line)), "\(line)\n\(onnx.stdout)")
        }
    }

    /// `zoo parity --layers` lists every node by name.
    func testParityTableEscapesNodeNames() throws {
        let result = try CLITests.run(["parity", fixture("names.onnx"), fixture("names.onnx"), "--layers"])
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        assertTerminalSafe(result.stdout, "parity")
        XCTAssertTrue(result.stdout.contains("\n  fc\\u{2067}          [1, 4]  "), result.stdout)
        XCTAssertTrue(result.stdout.contains("\n  relu\\nforged: line  [1, 4]  "), result.stdout)
    }

    func testInspectJSONGivesBackTheExactNames() throws {
        let names = expected["names.pth"] as! [String]
        for file in ["names.pth", "nested.pth"] {
            let result = try CLITests.run(["inspect", fixture(file), "--json"])
            assertTerminalSafe(result.stdout, file)
            let tensors = try json(result)["tensors"] as! [[String: Any]]
            assertSameScalars(tensors.map { $0["name"] as! String }, names, file)
        }
        let nested = try json(try CLITests.run(["inspect", fixture("nested.pth"), "--json"]))
        let other = (expected["nested.pth"] as! [String: Any])["other"] as! [String]
        let entry = (nested["others"] as! [[String: Any]])[0]
        assertSameScalars([entry["key"] as! String], [other[0]], "other entry key")
        XCTAssertTrue((entry["summary"] as! String).unicodeScalars.elementsEqual(("'" + other[1] + "'").unicodeScalars))

        let safetensors = try CLITests.run(["inspect", fixture("names.safetensors"), "--json"])
        assertTerminalSafe(safetensors.stdout, "names.safetensors")
        let st = try json(safetensors), stExpected = expected["names.safetensors"] as! [String: Any]
        assertSameScalars((st["tensors"] as! [[String: Any]]).map { $0["name"] as! String }.sorted(),
                          stExpected["tensors"] as! [String], "safetensors names")
        let metadata = st["metadata"] as! [String: String], metadataExpected = stExpected["metadata"] as! [String: String]
        assertSameScalars(metadata.keys.sorted(), metadataExpected.keys.sorted(), "metadata keys")
        assertSameScalars(metadata.keys.sorted().map { metadata[$0]! }, metadataExpected.keys.sorted().map { metadataExpected[$0]! }, "metadata values")

        let onnx = try CLITests.run(["inspect", fixture("names.onnx"), "--json"])
        assertTerminalSafe(onnx.stdout, "names.onnx")
        let model = try json(onnx), modelExpected = expected["names.onnx"] as! [String: Any]
        assertSameScalars([model["producer"] as! String], [modelExpected["producer"] as! String], "producer")
        assertSameScalars((model["nodes"] as! [[String: Any]]).map { $0["name"] as! String },
                          (modelExpected["nodes"] as! [[String]]).map { $0[0] }, "node names")
        assertSameScalars((model["tensors"] as! [[String: Any]]).map { $0["name"] as! String },
                          modelExpected["initializers"] as! [String], "initializer names")
    }

    /// Errors quoting a hostile name (an unsupported ONNX op, a refused pickle global): one escaped line.
    func testErrorsNamingHostileNamesAreOneEscapedLine() throws {
        let run = try CLITests.run(["run", fixture("unsupported_op.onnx"), "--input", "x.npy", "--output", "y.npy"])
        assertOneLineError(run, "run unsupported_op.onnx")
        XCTAssertTrue(run.stderr.contains("unsupported ops: node 'evil\\nnode\\u{1B}]0;t\\u{07}' (Evil\\nOp\\u{1B}[0m)"), run.stderr)

        let global = try CLITests.run(["inspect", fixture("global.pth")])
        assertOneLineError(global, "global.pth")
        let module = (expected["global.pth"] as! [String: String])["module"]!
        XCTAssertTrue(global.stderr.contains("refused global '\(module.escapedForTerminal).Thing'"), global.stderr)
        XCTAssertTrue(global.stderr.contains("refused global 'evil\\nmodule\\u{1B}[2J.Thing'"), global.stderr)
    }

    /// `inspect` describes a model zoo cannot run (exit 0): the hostile op type is printed escaped in
    /// the op lists, and given back exactly in JSON.
    func testInspectNamesAHostileUnsupportedOpEscaped() throws {
        let names = expected["unsupported_op.onnx"] as! [String: String]
        let text = try CLITests.run(["inspect", fixture("unsupported_op.onnx")])
        XCTAssertEqual(text.status, 0, text.stderr)
        assertTerminalSafe(text.stdout, "unsupported_op.onnx")
        let op = names["op_type"]!.escapedForTerminal
        XCTAssertTrue(text.stdout.contains("\nops:       1 node: \(op) ×1\n"), text.stdout)
        XCTAssertTrue(text.stdout.hasSuffix("\nzoo cannot run: \(op) ×1\n"), text.stdout)

        let result = try CLITests.run(["inspect", fixture("unsupported_op.onnx"), "--json"])
        assertTerminalSafe(result.stdout, "unsupported_op.onnx --json")
        let model = try json(result)
        let unsupported = try XCTUnwrap(model["unsupported_ops"] as? [[String: Any]])
        assertSameScalars(unsupported.map { $0["op"] as! String }, [names["op_type"]!], "unsupported op")
        assertSameScalars((model["nodes"] as! [[String: Any]]).map { $0["name"] as! String }, [names["node"]!], "node name")
        assertSameScalars([model["producer_name"] as! String], [names["producer"]!], "producer")
    }

    /// ArgumentParser's own errors keep their text and exit codes.
    func testUsageErrorsAndHelpKeepArgumentParsersBehaviour() throws {
        let missing = try CLITests.run(["inspect"])
        XCTAssertEqual(missing.status, 64, missing.stderr)
        XCTAssertTrue(missing.stderr.contains("Usage: zoo inspect"), missing.stderr)
        let validation = try CLITests.run(["parity", fixture("names.onnx"), fixture("names.onnx"), "--batch", "0"])
        XCTAssertEqual(validation.status, 64, validation.stderr)
        XCTAssertTrue(validation.stderr.hasPrefix("Error: --batch must be at least 1, got 0\n"), validation.stderr)
        for arguments in [["inspect", "--help"], ["help", "inspect"]] {
            let help = try CLITests.run(arguments)
            XCTAssertEqual(help.status, 0, "\(arguments)")
            XCTAssertEqual(help.stderr, "", "\(arguments)")
            XCTAssertTrue(help.stdout.contains("\nUSAGE: zoo inspect <file>"), help.stdout)
            XCTAssertTrue(help.stdout.contains("\n  --json "), help.stdout)
        }
    }

    /// JSON strings of every scalar the terminal escaping covers: valid JSON, terminal-safe, and
    /// parsed back by Foundation to exactly the original.
    func testJSONQuotingRoundTripsAndIsTerminalSafe() throws {
        var samples = (0..<0x20).map { String(Unicode.Scalar(UInt8($0))) } + ["\u{7F}", "\u{80}", "\u{85}", "\u{9B}", "\u{9F}"]
        samples += ["\u{202E}", "\u{2028}", "\u{2029}", "\u{2066}", "\u{2069}", "\u{200E}", "\u{200F}", "\u{FEFF}", "\u{E0001}"]
        samples += ["é", "日本語", "👍🏽", "👨‍👩‍👧", "\"", "\\", "/", "evil\u{1B}]0;pwned\u{07}\nname"]
        for sample in samples + [samples.joined()] {
            let quoted = JSON.quote(sample)
            assertTerminalSafe(quoted, "quote(\(Array(sample.unicodeScalars)))")
            let parsed = try JSONSerialization.jsonObject(with: Data("[\(quoted)]".utf8)) as! [String]
            assertSameScalars(parsed, [sample], "round trip of \(Array(sample.unicodeScalars))")
        }
        XCTAssertEqual(JSON.quote("\u{1B}\u{7F}\u{9B}\u{2028}\u{202E}\u{E0001}"), "\"\\u001b\\u007f\\u009b\\u2028\\u202e\\udb40\\udc01\"")
    }
}
