import Foundation
import ONNXFormat
import XCTest
import ZooCore
import ZooOps
import ZooRuntime

/// One model per torchvision classification family as torch's two ONNX exporters write it
/// (Fixtures/make_family_exports.py: reduced widths, random weights with randomized BatchNorm
/// statistics, dynamic batch): each runs in zoo and matches torch within 1e-4 × max|ref| with
/// identical top-5 in every row — and so does its re-export by zoo's writer at opsets 13 and 21,
/// which onnx.checker(full_check=True) accepts (the pinned onnx of scripts/conformance-data).
final class FamilyExportTests: XCTestCase {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/families")

    struct Export {
        let family: String, exporter: String, file: String, input: String, output: String
    }

    static func exports() throws -> [Export] {
        let data = try Data(contentsOf: folder.appendingPathComponent("manifest.json"))
        let manifest = try JSONSerialization.jsonObject(with: data)
        let entries = (manifest as? [[String: Any]]) ?? ((manifest as? [String: Any])?["exports"] as? [[String: Any]]) ?? []
        return entries.compactMap { e in
            guard let family = e["family"] as? String, let exporter = e["exporter"] as? String, let file = e["file"] as? String,
                  let input = e["input"] as? String, let output = e["output"] as? String else { return nil }
            return Export(family: family, exporter: exporter, file: file, input: input, output: output)
        }
    }

    /// The report for `graph` on the export's input against torch's output.
    func report(_ graph: Graph, _ e: Export, _ label: String) throws -> ParityReport {
        let input = try NumPy.read(path: Self.folder.appendingPathComponent(e.input).path)
        let reference = try NumPy.read(path: Self.folder.appendingPathComponent(e.output).path)
        let output = try Executor(graph: graph).run(input)[graph.outputs[0]]!
        return ParityReport(name: label, value: output, reference: reference)
    }

    func testEveryFamilyMatchesTorchWithBothExporters() throws {
        let exports = try Self.exports()
        XCTAssertGreaterThanOrEqual(Set(exports.map(\.family)).count, 18, "families in the manifest")
        var lines: [String] = []
        for e in exports {
            let label = "\(e.family) (\(e.exporter))"
            let graph = try ONNX.load(path: Self.folder.appendingPathComponent(e.file).path).graph
            let report = try report(graph, e, label)
            XCTAssertTrue(report.passes(atol: 0, rtol: 1e-4), "\(label): max|Δ| \(report.maxAbsDifference), max|ref| \(report.maxAbsReference), top-5 \(report.top5Agreement ?? -1)/\(report.rows)")
            lines.append("\(label): \(String(format: "%.1e", report.relativeDifference)) of max|ref|, top-5 \(report.top5Agreement ?? 0)/\(report.rows)")
        }
        print("family exports vs torch:\n  " + lines.joined(separator: "\n  "))
    }

    func testReexportsAtOpsets13And21PassTheCheckerAndMatchTorch() throws {
        let python = Self.folder.deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".build-conformance/venv/bin/python").path
        guard FileManager.default.isExecutableFile(atPath: python) else {
            if ProcessInfo.processInfo.environment["ZOO_REQUIRE_CONFORMANCE"] == "1" { XCTFail("no \(python): run scripts/conformance-data") }
            throw XCTSkip("no onnx venv at \(python) (scripts/conformance-data makes it)")
        }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-family-reexport-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        var written: [String] = []
        for e in try Self.exports() {
            let graph = try ONNX.load(path: Self.folder.appendingPathComponent(e.file).path).graph
            for opset in [13, 21] {
                let label = "\(e.family) (\(e.exporter)) at opset \(opset)"
                let path = folder.appendingPathComponent("\(e.family).\(e.exporter).\(opset).onnx").path
                do {
                    try ONNX.save(graph, to: path, options: ONNXWriteOptions(opset: opset))
                } catch {
                    XCTFail("\(label): \(error)")
                    continue
                }
                written.append(path)
                let report = try report(try ONNX.load(path: path).graph, e, label)
                XCTAssertTrue(report.passes(atol: 0, rtol: 1e-4), "\(label): max|Δ| \(report.maxAbsDifference), max|ref| \(report.maxAbsReference)")
            }
        }
        let check = """
            import onnx, sys
            bad = []
            for path in sys.argv[1:]:
                try:
                    onnx.checker.check_model(onnx.load(path), full_check=True)
                except Exception as e:
                    bad.append(path + ": " + str(e).splitlines()[0])
            print("\\n".join(bad) if bad else "ok")
            sys.exit(1 if bad else 0)
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["-c", check] + written
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, text)
        XCTAssertGreaterThanOrEqual(written.count, 2 * 36)
    }
}
