import CONNX
import Foundation
import ONNXFormat
import XCTest
import ZooCore
import ZooOps
import ZooRuntime

// Conformance: ONNX models zoo did not write, run on zoo's executor and compared with outputs other
// runtimes computed.
//
// 1. The onnx wheel's backend test data (onnx/backend/test/data): light/light_bvlc_alexnet.onnx and
//    every model of pytorch-converted/ and pytorch-operator/ with its test_data_set_N/*.pb. Found
//    through $ZOO_ONNX_BACKEND_DATA, else the oracle venv ($ZOO_ORACLE or ~/.cache/zoo-oracle); the
//    tests skip, saying so, when neither exists (CI has no oracle venv).
// 2. Fixtures/onnx (Fixtures/make_onnx_fixtures.py): AlexNets from both torch exporters and the
//    2012-paper layout built with onnx.helper, against onnxruntime's outputs.

/// Where the onnx wheel's backend test data lives, if anywhere: $ZOO_ONNX_BACKEND_DATA, else
/// .build-conformance/data (scripts/conformance-data, which scripts/test runs: a small pinned venv with
/// onnx and numpy, plus the generated node tests), else the oracle venv's wheel (no node tests).
enum BackendData {
    static let package = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static let root: String? = {
        let environment = ProcessInfo.processInfo.environment
        if let explicit = environment["ZOO_ONNX_BACKEND_DATA"], !explicit.isEmpty { return explicit }
        let built = package.appendingPathComponent(".build-conformance/data").path
        if FileManager.default.fileExists(atPath: built + "/node") { return built }
        let venv = environment["ZOO_ORACLE"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory() + "/.cache/zoo-oracle"
        let lib = venv + "/lib"
        for python in ((try? FileManager.default.contentsOfDirectory(atPath: lib)) ?? []).sorted() where python.hasPrefix("python3") {
            let path = "\(lib)/\(python)/site-packages/onnx/backend/test/data"
            if FileManager.default.fileExists(atPath: path) { return path }
        }
        return nil
    }()

    /// With ZOO_REQUIRE_CONFORMANCE=1 (scripts/test sets it: CI runs these suites, never skips them),
    /// missing data fails the test instead of skipping it.
    static func require() throws -> String {
        guard let root else {
            if ProcessInfo.processInfo.environment["ZOO_REQUIRE_CONFORMANCE"] == "1" {
                XCTFail("onnx backend test data not found although ZOO_REQUIRE_CONFORMANCE=1: run scripts/conformance-data")
            }
            throw XCTSkip("onnx backend test data not found: set ZOO_ONNX_BACKEND_DATA or create the oracle venv (../shared/oracle/setup)")
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDirectory), isDirectory.boolValue else {
            XCTFail("ZOO_ONNX_BACKEND_DATA=\(root) is not a directory")
            throw XCTSkip("no backend data at \(root)")
        }
        return root
    }
}

/// What a model file declares, from the reader's own description (`ONNX.describe`) before zoo
/// imports it: the reasons a model is out of scope are stated from the file, not from the reader's
/// first complaint, and the ops zoo lacks are the reader's answer, so this cannot drift from it.
struct ModelSurvey {
    /// The graph inputs that are not initializers, in order.
    let runtimeInputs: [String]
    /// Each runtime input's declared dims (0 for a symbolic or unknown one).
    let runtimeInputShapes: [[Int]]
    /// Op types (first-seen order; another domain's written domain.op) the reader has no builder for.
    let opsOutsideIR: [String]

    init(path: String) throws {
        let description = try ONNX.describe(path: path)
        runtimeInputs = description.inputs.map(\.name)
        runtimeInputShapes = description.inputs.map { input in
            (input.shape ?? []).map { if case let .value(n) = $0 { n } else { 0 } }
        }
        opsOutsideIR = description.unsupportedOps.map { $0.domain.isEmpty ? $0.opType : "\($0.domain).\($0.opType)" }
    }
}

private func compare(_ value: Tensor, _ reference: Tensor, name: String, rtol: Double = 1e-4, atol: Double = 0,
                     top5: Bool = true) -> (passed: Bool, report: ParityReport) {
    let report = ParityReport(name: name, value: value, reference: reference)
    // A half-precision output cannot be closer than its own last place: zoo's reference semantics
    // accumulate in Double and round once per op, the onnx reference in the narrow type; allow one
    // unit in the last place of max|ref| (bf16 2^-7, f16 2^-10 relative) where that exceeds rtol.
    let ulp = reference.dtype == .bf16 ? 1.0 / 128 : reference.dtype == .f16 ? 1.0 / 1024 : 0
    let rtol = max(rtol, ulp)
    let withinTolerance = report.maxAbsDifference <= atol + rtol * report.maxAbsReference
    return (withinTolerance && (!top5 || (report.top5Agreement ?? report.rows) == report.rows), report)
}

private func describe(_ report: ParityReport) -> String {
    var line = String(format: "max|Δ| %.3g (%.3g of max|ref| %.3g), cosine %.9f", report.maxAbsDifference,
                      report.relativeDifference, report.maxAbsReference, report.cosine)
    if let top5 = report.top5Agreement { line += ", top-5 \(top5)/\(report.rows)" }
    return line
}

/// The conformance suites made by others, each with the outcome of every model recorded in a list
/// under Tests/Conformance/ (as tract's node.txt): "pass", or "excluded: <why>". The test compares
/// what happens now with the list, so a diff of the list shows coverage move; a model zoo runs and
/// gets wrong ("WRONG: …") fails whatever the list says. `ZOO_CONFORMANCE_UPDATE=1 swift test
/// --filter ConformanceSuiteTests` rewrites the lists.
final class ConformanceSuiteTests: XCTestCase {
    static let lists = BackendData.package.appendingPathComponent("Tests/Conformance")

    /// One data set: how to make the runtime inputs (in graph order), and the expected output files
    /// in graph order.
    struct DataSet {
        var name: String
        /// Given what the model declares.
        var inputs: (ModelSurvey) throws -> [Tensor]
        var outputs: [String]
    }

    /// The onnx wheel's light/ models: the ONNX model zoo's classic graphs (IR 3, opset 9) with their
    /// weights replaced by ConstantOfShape(0.02). Only the expected output ships; the input is the one
    /// onnx's backend runner makes for light models (runner/__init__.py, generate_dummy_data with
    /// random=False): arange(n).reshape(shape) / n in float64, cast to float32. Tolerance from the
    /// suite's real/*/data.json: rtol 1e-3, atol 1e-7.
    func testLightModelZooGraphs() throws {
        let folder = try BackendData.require() + "/light"
        var outcomes: [(String, String)] = []
        for file in try FileManager.default.contentsOfDirectory(atPath: folder).sorted() where file.hasSuffix(".onnx") {
            let name = String(file.dropLast(5))
            let path = "\(folder)/\(file)"
            let set = DataSet(name: "output_0", inputs: { survey in
                survey.runtimeInputShapes.map { declared in
                    let n = declared.reduce(1, *)
                    return Tensor(floats: (0..<n).map { Float(Double($0) / Double(n)) }, shape: declared)
                }
            }, outputs: ["\(folder)/\(name)_output_0.pb"])
            outcomes.append((name, Self.outcome(model: path, sets: [set], rtol: 1e-3, atol: 1e-7)))
        }
        try Self.check(outcomes, list: "light.txt", minimum: 9, label: "onnx light model-zoo graphs")
    }

    /// pytorch-converted/ and pytorch-operator/: small models torch exported, with test data sets.
    func testPyTorchSuites() throws {
        let root = try BackendData.require()
        var outcomes: [(String, String)] = []
        for suite in ["pytorch-converted", "pytorch-operator"] {
            for name in try FileManager.default.contentsOfDirectory(atPath: "\(root)/\(suite)").sorted() {
                let directory = "\(root)/\(suite)/\(name)"
                guard FileManager.default.fileExists(atPath: directory + "/model.onnx") else { continue }
                outcomes.append(("\(suite)/\(name)", Self.outcome(model: directory + "/model.onnx", sets: Self.dataSets(directory),
                                                                   rtol: 1e-4, atol: 1e-6)))
            }
        }
        try Self.check(outcomes, list: "pytorch.txt", minimum: 100, label: "onnx backend pytorch suites")
    }

    /// The ONNX node tests (onnx/backend/test/case/node), generated by scripts/conformance-data.
    func testNodeTests() throws {
        let folder = try BackendData.require() + "/node"
        guard FileManager.default.fileExists(atPath: folder) else {
            throw XCTSkip("no generated node tests in \(folder) (scripts/conformance-data makes them)")
        }
        var outcomes: [(String, String)] = []
        for name in try FileManager.default.contentsOfDirectory(atPath: folder).sorted() {
            let directory = "\(folder)/\(name)"
            let files = (try? FileManager.default.subpathsOfDirectory(atPath: directory)) ?? []
            if files.contains(where: { $0.hasSuffix(".skip") }) {
                outcomes.append((name, "excluded: sequence, map or optional values (zoo runs tensors)"))
                continue
            }
            // onnx's backend runner defaults for node tests.
            outcomes.append((name, Self.outcome(model: directory + "/model.onnx", sets: Self.dataSets(directory), rtol: 1e-3, atol: 1e-7)))
        }
        try Self.check(outcomes, list: "node-tests.txt", minimum: 1800, label: "onnx node tests")
    }

    /// The test_data_set_N folders of a suite directory: input_0.pb and every output_K.pb.
    static func dataSets(_ directory: String) -> [DataSet] {
        let sets = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasPrefix("test_data_set_") }.sorted()
        return sets.map { set in
            let files = ((try? FileManager.default.contentsOfDirectory(atPath: "\(directory)/\(set)")) ?? [])
            func numbered(_ prefix: String) -> [String] {
                files.filter { $0.hasPrefix(prefix) && $0.hasSuffix(".pb") }
                    .sorted { Int($0.dropFirst(prefix.count).dropLast(3)) ?? 0 < Int($1.dropFirst(prefix.count).dropLast(3)) ?? 0 }
                    .map { "\(directory)/\(set)/\($0)" }
            }
            let inputs = numbered("input_")
            return DataSet(name: set, inputs: { _ in try inputs.map { try ONNX.tensor(fromTensorProtoFile: $0) } }, outputs: numbered("output_"))
        }
    }

    /// "pass", "excluded: <why>", or "WRONG: <what differs>" for one model and its data sets.
    static func outcome(model path: String, sets: [DataSet], rtol: Double, atol: Double) -> String {
        let survey: ModelSurvey
        do { survey = try ModelSurvey(path: path) } catch { return "excluded: cannot parse: \(error)" }
        if !survey.opsOutsideIR.isEmpty { return "excluded: ops outside zoo's IR: \(survey.opsOutsideIR.joined(separator: ", "))" }
        let model: ONNXModel
        do { model = try ONNX.load(path: path) } catch {
            return "excluded: reader: " + error.description.replacingOccurrences(of: path + ": ", with: "")
        }
        let executor: Executor
        do { executor = try Executor(graph: model.graph) } catch { return "excluded: executor: \(error)" }
        guard !sets.isEmpty else { return "excluded: no test data" }
        for set in sets {
            let outputs: [String: Tensor]
            do {
                let values = try set.inputs(survey)
                guard values.count == survey.runtimeInputs.count else {
                    return "excluded: \(values.count) input files for \(survey.runtimeInputs.count) graph inputs"
                }
                outputs = try executor.run(Dictionary(uniqueKeysWithValues: zip(survey.runtimeInputs, values)))
            } catch { return "excluded: executor: \(error)" }
            guard set.outputs.count == model.graph.outputs.count else {
                return "excluded: \(set.outputs.count) expected outputs for \(model.graph.outputs.count) graph outputs"
            }
            for (index, (file, name)) in zip(set.outputs, model.graph.outputs).enumerated() {
                guard let reference = try? ONNX.tensor(fromTensorProtoFile: file), let value = outputs[name] else {
                    return "WRONG: \(set.name) output \(index) missing"
                }
                let (passed, report) = compare(value, reference, name: name, rtol: rtol, atol: atol, top5: false)
                if !passed { return "WRONG: \(set.name) output \(index): \(describe(report))" }
            }
        }
        return "pass"
    }

    /// Compares `outcomes` with the recorded list (or rewrites it with ZOO_CONFORMANCE_UPDATE=1).
    static func check(_ outcomes: [(name: String, status: String)], list: String, minimum: Int, label: String) throws {
        XCTAssertGreaterThanOrEqual(outcomes.count, minimum, "expected the whole \(label) suite")
        let passing = outcomes.filter { $0.status == "pass" }.count
        let wrong = outcomes.filter { $0.status.hasPrefix("WRONG") }
        print("\(label): \(passing) of \(outcomes.count) pass, \(outcomes.count - passing - wrong.count) excluded, \(wrong.count) wrong")
        XCTAssertEqual(wrong.map { "\($0.name): \($0.status)" }, [], "\(label): zoo ran these and computed other numbers")
        let url = lists.appendingPathComponent(list)
        let text = outcomes.map { "\($0.name)\t\($0.status)" }.joined(separator: "\n") + "\n"
        if ProcessInfo.processInfo.environment["ZOO_CONFORMANCE_UPDATE"] == "1" {
            try text.write(to: url, atomically: true, encoding: .utf8)
            return
        }
        var recorded: [String: String] = [:]
        for line in ((try? String(contentsOf: url, encoding: .utf8)) ?? "").split(separator: "\n") {
            let parts = line.split(separator: "\t", maxSplits: 1).map(String.init)
            if parts.count == 2 { recorded[parts[0]] = parts[1] }
        }
        var changes: [String] = []
        for (name, status) in outcomes where recorded[name] != status {
            changes.append("\(name): recorded '\(recorded[name] ?? "(absent)")', now '\(status)'")
        }
        for name in Set(recorded.keys).subtracting(outcomes.map(\.name)).sorted() { changes.append("\(name): recorded, no longer present") }
        XCTAssertEqual(changes, [], "\(label): outcomes differ from Tests/Conformance/\(list) "
            + "(when intended: ZOO_CONFORMANCE_UPDATE=1 swift test --filter ConformanceSuiteTests)")
    }
}

/// Fixtures/onnx/manifest.json's models: each imports and matches onnxruntime's outputs
/// (max |Δ| ≤ 1e-4 · max |ref|, identical top-5 per row).
final class ONNXFixtureModelTests: XCTestCase {
    static let folder = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures").appendingPathComponent("onnx")

    func testEveryFixtureModelMatchesOnnxruntime() throws {
        let manifest = try XCTUnwrap(JSONSerialization.jsonObject(
            with: Data(contentsOf: Self.folder.appendingPathComponent("manifest.json"))) as? [String: Any])
        let models = try XCTUnwrap(manifest["models"] as? [[String: Any]])
        XCTAssertEqual(models.count, 5)
        for entry in models {
            let file = try XCTUnwrap(entry["file"] as? String)
            let path = Self.folder.appendingPathComponent(file).path
            let model = try ONNX.load(path: path)
            XCTAssertEqual(model.opset, entry["opset"] as? Int, file)
            XCTAssertEqual(model.irVersion, entry["ir_version"] as? Int, file)
            XCTAssertEqual(model.graph.inputs.map(\.name), [try XCTUnwrap(entry["input_name"] as? String)], file)
            XCTAssertEqual(model.graph.outputs.count, 1, file)
            let input = try NumPy.read(path: Self.folder.appendingPathComponent(try XCTUnwrap(entry["input"] as? String)).path)
            let expected = try NumPy.read(path: Self.folder.appendingPathComponent(try XCTUnwrap(entry["expected"] as? String)).path)
            let executor = try Executor(graph: model.graph)
            let output = try XCTUnwrap(executor.run(input)[model.graph.outputs[0]])
            let (passed, report) = compare(output, expected, name: file)
            print("\(file): \(describe(report))")
            XCTAssertTrue(passed, "\(file): \(describe(report))")
            // The batch is dynamic: one image alone gives its row.
            let first = try Tensor(dtype: .f32, shape: [1] + Array(input.shape.dropFirst()), storage: input.contiguous().storage)
            let row = try XCTUnwrap(executor.run(first)[model.graph.outputs[0]])
            let rowReference = Tensor(floats: Array(expected.floats().prefix(expected.count / expected.shape[0])),
                                      shape: [1] + Array(expected.shape.dropFirst()))
            let (rowPassed, rowReport) = compare(row, rowReference, name: file + " row 0")
            XCTAssertTrue(rowPassed, "\(file) batch 1: \(describe(rowReport))")
        }
    }

    /// The dynamo export keeps its weights in alexnet_small_dynamo_opset18.onnx.data: the reader maps
    /// them from there, and they equal the TorchScript export's inline ones.
    func testExternalDataMatchesInlineWeights() throws {
        let external = try ONNX.load(path: Self.folder.appendingPathComponent("alexnet_small_dynamo_opset18.onnx").path)
        let inline = try ONNX.load(path: Self.folder.appendingPathComponent("alexnet_small_ts_opset17.onnx").path)
        for name in ["features.0.weight", "features.10.weight", "classifier.1.weight", "classifier.6.bias"] {
            let a = try XCTUnwrap(external.graph.initializer(name), name)
            let b = try XCTUnwrap(inline.graph.initializer(name), name)
            XCTAssertEqual(a.shape, b.shape, name)
            XCTAssertEqual(a.floats(), b.floats(), name)
        }
    }
}
