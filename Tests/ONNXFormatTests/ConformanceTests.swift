import CONNX
import Foundation
import ONNXFormat
import XCTest
import ZooCore
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

/// What a model file holds, read with the protobuf-c API before zoo imports it: the reasons a model
/// is out of scope are stated from the file, not from the reader's first complaint.
private struct ModelSurvey {
    var opset: Int
    var opTypes: [String]
    var runtimeInputs: [String]
    var outputs: [String]

    /// ONNX ops the IR represents (and those the reader folds away).
    static let irOps: Set<String> = [
        "Conv", "Relu", "MaxPool", "AveragePool", "GlobalAveragePool", "LRN", "Flatten", "Reshape", "Gemm",
        "Dropout", "Softmax", "Add", "BatchNormalization", "Concat", "Constant", "ConstantOfShape", "Identity",
    ]

    init(path: String) throws {
        let proto = try ONNXModelProto(path: path)
        let model = proto.model.pointee
        opset = ONNXProto.messages(model.opset_import, model.n_opset_import)
            .first { ["", "ai.onnx"].contains(ONNXProto.string($0.pointee.domain)) }.map { Int($0.pointee.version) } ?? 0
        let graph = model.graph!.pointee
        var seen: [String] = []
        for node in ONNXProto.messages(graph.node, graph.n_node) {
            let op = ONNXProto.string(node.pointee.op_type)
            if !seen.contains(op) { seen.append(op) }
        }
        opTypes = seen
        let initializers = Set(ONNXProto.messages(graph.initializer, graph.n_initializer).map { ONNXProto.string($0.pointee.name) })
        runtimeInputs = ONNXProto.messages(graph.input, graph.n_input).map { ONNXProto.string($0.pointee.name) }
            .filter { !initializers.contains($0) }
        outputs = ONNXProto.messages(graph.output, graph.n_output).map { ONNXProto.string($0.pointee.name) }
    }

    var opsOutsideIR: [String] { opTypes.filter { !ModelSurvey.irOps.contains($0) } }
}

private func compare(_ value: Tensor, _ reference: Tensor, name: String, rtol: Double = 1e-4, atol: Double = 0,
                     top5: Bool = true) -> (passed: Bool, report: ParityReport) {
    let report = ParityReport(name: name, value: value, reference: reference)
    let withinTolerance = report.maxAbsDifference <= atol + rtol * report.maxAbsReference
    return (withinTolerance && (!top5 || (report.top5Agreement ?? report.rows) == report.rows), report)
}

private func describe(_ report: ParityReport) -> String {
    var line = String(format: "max|Δ| %.3g (%.3g of max|ref| %.3g), cosine %.9f", report.maxAbsDifference,
                      report.relativeDifference, report.maxAbsReference, report.cosine)
    if let top5 = report.top5Agreement { line += ", top-5 \(top5)/\(report.rows)" }
    return line
}

final class BackendConformanceTests: XCTestCase {
    /// Reader refusals that are out of scope, by a phrase of the reader's message, with the reason.
    /// A model whose ops are all in the IR but which the reader refuses for anything else fails the
    /// suite test: that is a reader bug until it is understood and recorded here.
    static let acceptedRefusals: [(phrase: String, reason: String)] = [
        ("only 2-D convolution", "the IR's Conv is 2-D (1-D and 3-D convolutions are out of scope)"),
        ("only 2-D pooling", "the IR's pooling is 2-D (1-D and 3-D pooling are out of scope)"),
        ("dilations [10, 10] are not supported", "the IR's MaxPool has no dilation"),
        ("the executor computes in f32", "the executor computes in f32 (a double-precision graph is out of scope)"),
    ]

    /// The model zoo's bvlc_alexnet with its weights replaced by ConstantOfShape(0.02). The light/
    /// folder ships only the model and light_bvlc_alexnet_output_0.pb; the input is the one the onnx
    /// backend runner generates for light models (runner/__init__.py, generate_dummy_data with
    /// random=False): arange(n).reshape(shape) / n in float64, cast to float32.
    func testLightBVLCAlexNet() throws {
        let root = try BackendData.require()
        let path = root + "/light/light_bvlc_alexnet.onnx"
        let model = try ONNX.load(path: path)
        XCTAssertEqual(model.opset, 9)
        XCTAssertEqual(model.irVersion, 3)
        XCTAssertEqual(model.graph.inputs.map(\.name), ["data_0"])
        let shape = [1, 3, 224, 224]
        let n = shape.reduce(1, *)
        let input = Tensor(floats: (0..<n).map { Float(Double($0) / Double(n)) }, shape: shape)
        let expected = try ONNX.tensor(fromTensorProtoFile: root + "/light/light_bvlc_alexnet_output_0.pb")
        let executor = try Executor(graph: model.graph)
        let outputs = try executor.run(input)
        let output = try XCTUnwrap(outputs[model.graph.outputs[0]])
        // Every weight is 0.02, so all 1000 logits are equal and the softmax is uniform (0.001): the
        // values are compared, not the order of equal values.
        let (passed, report) = compare(output, expected, name: "prob_1", top5: false)
        print("light_bvlc_alexnet: \(describe(report))")
        XCTAssertTrue(passed, describe(report))
    }

    /// Every model of pytorch-converted/ and pytorch-operator/ that zoo can import runs against each
    /// of its test data sets; the rest are listed with the reason.
    func testPyTorchSuites() throws {
        let root = try BackendData.require()
        var total = 0, supported = 0, passing = 0
        var exclusions: [(String, String)] = []
        var passed: [String] = []
        var failures: [String] = []
        for suite in ["pytorch-converted", "pytorch-operator"] {
            let folder = "\(root)/\(suite)"
            for name in try FileManager.default.contentsOfDirectory(atPath: folder).sorted() {
                let directory = "\(folder)/\(name)"
                let modelPath = "\(directory)/model.onnx"
                guard FileManager.default.fileExists(atPath: modelPath) else { continue }
                total += 1
                let label = "\(suite)/\(name)"
                let survey: ModelSurvey
                do { survey = try ModelSurvey(path: modelPath) } catch {
                    failures.append("\(label): cannot parse: \(error)")
                    continue
                }
                if !survey.opsOutsideIR.isEmpty {
                    exclusions.append((label, "ops outside zoo's IR: \(survey.opsOutsideIR.joined(separator: ", "))"))
                    continue
                }
                if survey.runtimeInputs.count != 1 {
                    exclusions.append((label, "\(survey.runtimeInputs.count) graph inputs (the executor runs graphs with one)"))
                    continue
                }
                let model: ONNXModel
                do { model = try ONNX.load(path: modelPath) } catch {
                    let message = error.description.replacingOccurrences(of: modelPath + ": ", with: "")
                    exclusions.append((label, "reader: " + message))
                    if !Self.acceptedRefusals.contains(where: { message.contains($0.phrase) }) {
                        failures.append("\(label): ops \(survey.opTypes) are all in the IR, but the reader refuses it for an unrecorded reason: \(message)")
                    }
                    continue
                }
                let executor: Executor
                do { executor = try Executor(graph: model.graph) } catch {
                    exclusions.append((label, "executor: \(error)"))
                    continue
                }
                supported += 1
                let sets = try FileManager.default.contentsOfDirectory(atPath: directory)
                    .filter { $0.hasPrefix("test_data_set_") }.sorted()
                var ok = !sets.isEmpty
                var notes: [String] = []
                for set in sets {
                    do {
                        let input = try ONNX.tensor(fromTensorProtoFile: "\(directory)/\(set)/input_0.pb")
                        let outputs = try executor.run(input)
                        for (index, outputName) in model.graph.outputs.enumerated() {
                            let reference = try ONNX.tensor(fromTensorProtoFile: "\(directory)/\(set)/output_\(index).pb")
                            let value = try XCTUnwrap(outputs[outputName])
                            let (passed, report) = compare(value, reference, name: outputName, atol: 1e-6)
                            if !passed {
                                ok = false
                                notes.append("\(set) output \(index): \(describe(report))")
                            }
                        }
                    } catch {
                        ok = false
                        notes.append("\(set): \(error)")
                    }
                }
                if ok { passing += 1; passed.append(label) } else { failures.append("\(label): " + notes.joined(separator: "; ")) }
            }
        }
        print("onnx backend pytorch suites: \(supported) of \(total) supported, \(passing) pass")
        print("  pass: " + passed.map { $0.split(separator: "/").last.map(String.init) ?? $0 }.joined(separator: ", "))
        for (label, reason) in exclusions { print("  excluded \(label): \(reason)") }
        // The exclusions grouped: reader refusals by their recorded reason, the rest by what they say.
        var groups: [(reason: String, labels: [String])] = []
        for (label, reason) in exclusions {
            let key = Self.acceptedRefusals.first { reason.contains($0.phrase) }.map { "reader: \($0.reason)" } ?? reason
            let name = label.split(separator: "/").last.map(String.init) ?? label
            if let k = groups.firstIndex(where: { $0.reason == key }) { groups[k].labels.append(name) } else { groups.append((key, [name])) }
        }
        for (reason, labels) in groups.sorted(by: { ($0.labels.count, $1.reason) > ($1.labels.count, $0.reason) }) {
            print("  \(labels.count) excluded — \(reason): \(labels.joined(separator: ", "))")
        }
        for failure in failures { print("  FAILED \(failure)") }
        XCTAssertGreaterThan(total, 100, "expected the pytorch-converted and pytorch-operator suites")
        XCTAssertEqual(failures, [], "every supported model must match its test data")
    }
}

/// The ONNX node tests (onnx/backend/test/case/node, generated by scripts/conformance-data): every one
/// runs, or is excluded with the reason, and the outcome of each is the line recorded for it in
/// Tests/Conformance/node-tests.txt — a diff of that file shows coverage move, as tract's node.txt
/// does. A test that runs and gives numbers other than onnx's reference outputs is a bug whatever the
/// list says. `ZOO_CONFORMANCE_UPDATE=1 swift test --filter NodeConformanceTests` rewrites the list.
final class NodeConformanceTests: XCTestCase {
    static let list = BackendData.package.appendingPathComponent("Tests/Conformance/node-tests.txt")

    /// onnx's backend runner defaults for node tests.
    static let rtol = 1e-3, atol = 1e-7

    func testEveryNodeTestRunsOrIsExcludedAsRecorded() throws {
        let root = try BackendData.require()
        let folder = root + "/node"
        guard FileManager.default.fileExists(atPath: folder) else {
            throw XCTSkip("\(root) has no generated node tests (scripts/conformance-data makes them)")
        }
        var outcomes: [(name: String, status: String)] = []
        for name in try FileManager.default.contentsOfDirectory(atPath: folder).sorted() {
            outcomes.append((name, Self.status(of: "\(folder)/\(name)")))
        }
        XCTAssertGreaterThan(outcomes.count, 1800, "expected onnx 1.23.2's 1,884 node tests")
        let passing = outcomes.filter { $0.status == "pass" }.count
        let wrong = outcomes.filter { $0.status.hasPrefix("WRONG") }
        print("onnx node tests: \(passing) of \(outcomes.count) pass, \(outcomes.count - passing - wrong.count) excluded, \(wrong.count) wrong")
        XCTAssertEqual(wrong.map { "\($0.name): \($0.status)" }, [], "zoo ran these node tests and computed other numbers")

        let text = outcomes.map { "\($0.name)\t\($0.status)" }.joined(separator: "\n") + "\n"
        if ProcessInfo.processInfo.environment["ZOO_CONFORMANCE_UPDATE"] == "1" {
            try text.write(to: Self.list, atomically: true, encoding: .utf8)
            return
        }
        let recorded = (try? String(contentsOf: Self.list, encoding: .utf8)) ?? ""
        var expected: [String: String] = [:]
        for line in recorded.split(separator: "\n") {
            let parts = line.split(separator: "\t", maxSplits: 1).map(String.init)
            if parts.count == 2 { expected[parts[0]] = parts[1] }
        }
        var changes: [String] = []
        for (name, status) in outcomes where expected[name] != status {
            changes.append("\(name): recorded '\(expected[name] ?? "(absent)")', now '\(status)'")
        }
        for name in Set(expected.keys).subtracting(outcomes.map(\.name)).sorted() { changes.append("\(name): recorded, no longer generated") }
        XCTAssertEqual(changes, [], "node test outcomes differ from Tests/Conformance/node-tests.txt "
            + "(when intended: ZOO_CONFORMANCE_UPDATE=1 swift test --filter NodeConformanceTests)")
    }

    /// "pass", "excluded: <why>", or "WRONG: <what differs>" for the node test in `directory`.
    static func status(of directory: String) -> String {
        let modelPath = directory + "/model.onnx"
        let survey: ModelSurvey
        do { survey = try ModelSurvey(path: modelPath) } catch { return "excluded: cannot parse: \(error)" }
        if !survey.opsOutsideIR.isEmpty { return "excluded: ops outside zoo's IR: \(survey.opsOutsideIR.joined(separator: ", "))" }
        let sets = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasPrefix("test_data_set_") }.sorted()
        let files = sets.flatMap { set in ((try? FileManager.default.contentsOfDirectory(atPath: "\(directory)/\(set)")) ?? []) }
        if files.contains(where: { $0.hasSuffix(".skip") }) { return "excluded: sequence, map or optional values (zoo runs tensors)" }
        if survey.runtimeInputs.count != 1 { return "excluded: \(survey.runtimeInputs.count) graph inputs (the executor runs graphs with one)" }
        let model: ONNXModel
        do { model = try ONNX.load(path: modelPath) } catch {
            return "excluded: reader: " + error.description.replacingOccurrences(of: modelPath + ": ", with: "")
        }
        let executor: Executor
        do { executor = try Executor(graph: model.graph) } catch { return "excluded: executor: \(error)" }
        for set in sets {
            let outputs: [String: Tensor]
            do {
                outputs = try executor.run(try ONNX.tensor(fromTensorProtoFile: "\(directory)/\(set)/input_0.pb"))
            } catch { return "excluded: executor: \(error)" }
            for (index, name) in model.graph.outputs.enumerated() {
                guard let reference = try? ONNX.tensor(fromTensorProtoFile: "\(directory)/\(set)/output_\(index).pb"),
                      let value = outputs[name] else { return "WRONG: \(set) output \(index) missing" }
                let (passed, report) = compare(value, reference, name: name, rtol: rtol, atol: atol, top5: false)
                if !passed { return "WRONG: \(set) output \(index): \(describe(report))" }
            }
        }
        return sets.isEmpty ? "excluded: no test data" : "pass"
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
