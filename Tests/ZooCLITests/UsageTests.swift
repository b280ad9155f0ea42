import Foundation
import ONNXFormat
import Safetensors
import TorchFormat
import XCTest
import ZooCore
import ZooOps
import ZooRuntime

/// A parity tool must never mislead: every usage mistake a new user makes is named (exact message,
/// exit status 64 for the command line, 1 for a failure), nothing is dropped silently, and every
/// command is scriptable (--json, --quiet, --version).
final class UsageTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures")
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-usage-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    private func fixture(_ name: String) -> String { Self.root.appendingPathComponent(name).path }
    private func temp(_ name: String) -> String { directory.appendingPathComponent(name).path }
    private func zoo(_ arguments: String...) throws -> CLITests.Result { try CLITests.run(arguments) }

    private var onnx: String { fixture("onnx/alexnet_small_ts_opset17.onnx") }
    private var input: String { fixture("onnx/alexnet_small_input.npy") }
    private var reference: String { fixture("onnx/alexnet_small_ts_opset17.expected.npy") }
    private var pth: String { fixture("torch/alexnet_small.pth") }

    /// Exit status 64 and ArgumentParser's usage error: `Error: <message>`, then the command's usage.
    private func assertUsageError(_ result: CLITests.Result, _ message: String, command: String,
                                  file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(result.status, 64, result.stderr, file: file, line: line)
        XCTAssertTrue(result.stderr.hasPrefix("Error: \(message)\nUsage: zoo \(command) "), result.stderr, file: file, line: line)
        XCTAssertEqual(result.stdout, "", file: file, line: line)
    }

    /// Exit status `status` and exactly one line on stderr, nothing on stdout.
    private func assertError(_ result: CLITests.Result, _ message: String, status: Int32 = 1,
                             file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(result.status, status, result.stderr, file: file, line: line)
        XCTAssertEqual(result.stderr, "Error: \(message)\n", file: file, line: line)
        XCTAssertEqual(result.stdout, "", file: file, line: line)
    }

    private func zeros(_ shape: [Int]) throws -> Tensor {
        try Tensor(dtype: .f32, shape: shape) { raw in raw.initializeMemory(as: UInt8.self, repeating: 0) }
    }

    private func object(_ text: String, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        let value = try JSONSerialization.jsonObject(with: Data(text.utf8))
        return try XCTUnwrap(value as? [String: Any], "not a JSON object: \(text)", file: file, line: line)
    }

    // MARK: parity never misleads

    /// A reference .npy without its input used to run on a generated input and report "parity FAILS".
    func testReferenceWithoutItsInputIsAUsageError() throws {
        assertUsageError(try zoo("parity", onnx, reference),
                         "\(reference) holds reference outputs, which were computed for one particular input: give that "
                            + "input with --input (or --seed when they were computed for zoo's generated input)", command: "parity")
        let withInput = try zoo("parity", onnx, reference, "--input", input)
        XCTAssertEqual(withInput.status, 0, withInput.stderr)
        // --batch and --seed shape a generated input only.
        assertUsageError(try zoo("parity", onnx, reference, "--input", input, "--seed", "3"),
                         "--batch and --seed shape a generated input; they do not apply with --input", command: "parity")
    }

    /// Different shapes used to print max|Δ| inf, cosine 1.000000000 and "NO": now an error naming both.
    func testMismatchedShapesAreAnErrorNamingBoth() throws {
        let full = try NumPy.read(path: reference)
        let row = try Tensor(dtype: .f32, shape: [10]) { raw in
            full.withContiguousBytes { raw.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0.prefix(40))) }
        }
        try NumPy.write(row, to: temp("row.npy"))
        assertError(try zoo("parity", onnx, temp("row.npy"), "--input", input),
                    "cannot compare: output 'logits' of \(onnx) has shape [2, 10], the reference \(temp("row.npy")) has shape [10]")
        assertError(try zoo("parity", onnx, input, "--input", input),
                    "cannot compare: output 'logits' of \(onnx) has shape [2, 10], the reference \(input) has shape "
                        + "[2, 3, 224, 224] — the input's shape: was the input given as the reference?")
    }

    /// The report names the input's source, both sides (B the reference), the shape, the tolerance,
    /// and the success line names the graph, its opset and the tolerance.
    func testParityStatesWhatItCompared() throws {
        let fromFile = try zoo("parity", onnx, reference, "--input", input)
        XCTAssertEqual(fromFile.status, 0, fromFile.stderr)
        let lines = fromFile.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        XCTAssertEqual(Array(lines.prefix(5)), [
            "parity \(onnx) vs \(reference)",
            "  A:         \(onnx) (onnx graph 'main_graph', opset 17)",
            "  B:         \(reference) (reference outputs) — the reference",
            "  input:     [2, 3, 224, 224] from \(input)",
            "  pass if:   max|Δ| ≤ 0 + 0.0001·max|ref| and identical top-5 in every row",
        ])
        guard lines.count >= 10 else { return XCTFail("a short report: \(fromFile.stdout)") }
        XCTAssertTrue(lines[7].hasPrefix("  logits  [2, 10]    "), lines[7])
        XCTAssertTrue(lines[7].hasSuffix("2/2     2/2     yes"), lines[7])
        XCTAssertEqual(lines[lines.count - 2], "parity OK: A (onnx graph 'main_graph', opset 17) matches B (reference outputs) "
            + "within max|Δ| ≤ 0 + 0.0001·max|ref| and identical top-5 in every row")

        let generated = try zoo("parity", onnx, pth, "--seed", "7", "--batch", "3", "--atol", "1e-6")
        XCTAssertEqual(generated.status, 0, generated.stderr)
        XCTAssertTrue(generated.stdout.contains("\n  B:         \(pth) (alexnet (8-16-24-16-16 / 64-64-10)) — the reference\n"), generated.stdout)
        XCTAssertTrue(generated.stdout.contains("\n  input:     [3, 3, 224, 224] generated by zoo's generator, seed 7\n"), generated.stdout)
        XCTAssertTrue(generated.stdout.contains("\nparity OK: A (onnx graph 'main_graph', opset 17) matches B (alexnet (8-16-24-16-16 / 64-64-10)) within "
            + "max|Δ| ≤ 1e-06 + 0.0001·max|ref| and identical top-5 in every row\n"), generated.stdout)
    }

    /// A failed parity exits 1 and says why; --json still prints the whole report.
    func testFailedParityExitsOneAndSaysWhy() throws {
        let full = try NumPy.read(path: reference)
        let shifted = try Tensor(dtype: .f32, shape: full.shape) { raw in
            full.withContiguousBytes { source in
                for k in 0..<full.count {
                    raw.storeBytes(of: source.loadUnaligned(fromByteOffset: 4 * k, as: Float.self) * 1.01, toByteOffset: 4 * k, as: Float.self)
                }
            }
        }
        try NumPy.write(shifted, to: temp("shifted.npy"))
        let result = try zoo("parity", onnx, temp("shifted.npy"), "--input", input)
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stdout.contains("  NO\n"), result.stdout)
        XCTAssertTrue(result.stderr.hasPrefix("Error: parity FAILS for output 'logits': max|Δ| "), result.stderr)
        XCTAssertTrue(result.stderr.hasSuffix(" allowed\n"), result.stderr)
        let json = try zoo("parity", onnx, temp("shifted.npy"), "--input", input, "--json")
        XCTAssertEqual(json.status, 1)
        let report = try object(json.stdout)
        XCTAssertEqual(report["ok"] as? Bool, false)
        XCTAssertEqual(report["first_failure"] as? String, "logits")
    }

    /// `zoo run` with another image size used to fail deep in a Gemm ("A has 896 columns but B has 576
    /// rows"); channels-last input gets the transpose named.
    func testWrongInputSizeNamesTheSizeTheModelTakes() throws {
        try NumPy.write(zeros([1, 3, 256, 288]), to: temp("x288.npy"))
        assertError(try zoo("run", onnx, "--input", temp("x288.npy"), "--output", temp("y.npy")),
                    "\(temp("x288.npy")): input has shape [1, 3, 256, 288]: the model takes f32 [batch, 3, 224, 224] and cannot run "
                        + "at 256 × 288 (node '/classifier/classifier.1/Gemm': A has 896 columns but B has 576 rows (inner dimensions differ))")
        try NumPy.write(zeros([1, 224, 224, 3]), to: temp("nhwc.npy"))
        assertError(try zoo("run", onnx, "--input", temp("nhwc.npy"), "--output", temp("y.npy")),
                    "\(temp("nhwc.npy")): input has shape [1, 224, 224, 3] (224 channels); the model takes f32 [batch, 3, 224, 224]; "
                        + "channels last? zoo takes NCHW: transpose it to [1, 3, 224, 224]")
        // torchvision's AlexNet (adaptive pooling) takes any size ≥ 63×63, as in PyTorch.
        let any = try zoo("run", pth, "--input", temp("x288.npy"), "--output", temp("y.npy"))
        XCTAssertEqual(any.status, 0, any.stderr)
    }

    /// A model with two inputs and two outputs (Fixtures/make_onnx_reader_cases.py, onnxruntime's
    /// outputs): inputs and outputs by name; parity over every output.
    func testSeveralInputsAndOutputsByName() throws {
        let model = fixture("onnx/reader/two_in_two_out.onnx")
        func file(_ name: String) -> String { fixture("onnx/reader/two_in_two_out.\(name).npy") }
        let run = try zoo("run", model, "--input", "x=" + file("x"), "--input", "z=" + file("z"),
                          "--output", "sum=" + temp("sum.npy"), "--output", "relu=" + temp("relu.npy"), "--json")
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual((try object(run.stdout)["outputs"] as? [[String: Any]])?.map { $0["name"] as? String }, ["sum", "relu"])
        for name in ["sum", "relu"] {
            let report = ParityReport(name: name, value: try NumPy.read(path: temp("\(name).npy")), reference: try NumPy.read(path: file(name)))
            XCTAssertEqual(report.maxAbsDifference, 0, name)
        }
        assertError(try zoo("run", model, "--input", file("x"), "--output", temp("y.npy")),
                    "--input \(file("x")): the model has 2 inputs ('x', 'z'): write --input NAME=FILE.npy", status: 64)
        assertError(try zoo("run", model, "--input", "x=" + file("x"), "--output", "sum=" + temp("y.npy")),
                    "the model takes 2 inputs ('x', 'z'): give each as --input NAME=FILE.npy or in an .npz; missing 'z'", status: 64)
        assertError(try zoo("run", model, "--input", "x=" + file("x"), "--input", "z=" + file("z"), "--output", temp("y.npy")),
                    "--output \(temp("y.npy")): the model has 2 outputs ('sum', 'relu'): write --output NAME=FILE.npy", status: 64)
        assertError(try zoo("run", onnx, "--input", "image=" + input, "--output", temp("y.npy")),
                    "--input image=\(input): the model has no input 'image' (its input: 'input')", status: 64)

        let parity = try zoo("parity", model, model, "--input", "x=" + file("x"), "--input", "z=" + file("z"), "--json")
        XCTAssertEqual(parity.status, 0, parity.stderr)
        let results = try XCTUnwrap(try object(parity.stdout)["results"] as? [[String: Any]])
        XCTAssertEqual(results.map { $0["name"] as? String }, ["sum", "relu"])
        let generated = try zoo("parity", model, model, "--batch", "2")
        XCTAssertEqual(generated.status, 0, generated.stderr)
        XCTAssertTrue(generated.stdout.contains("\n  input:     [2, 4] 'x', [2, 4] 'z' generated by zoo's generator, seed 0\n"), generated.stdout)
        assertError(try zoo("parity", model, file("sum"), "--input", "x=" + file("x"), "--input", "z=" + file("z")),
                    "\(file("sum")) holds one array, but \(model) has 2 outputs ('sum', 'relu'): compare with a model or an .npz", status: 64)
    }

    /// .npz (numpy's savez) in and out: every input from one archive by name, every output into one,
    /// and an .npz of reference outputs compared by name.
    func testNpzInputsOutputsAndReferences() throws {
        let model = fixture("onnx/reader/two_in_two_out.onnx")
        func file(_ name: String) -> String { fixture("onnx/reader/two_in_two_out.\(name).npy") }
        try NumPyArchive.write([("x", try NumPy.read(path: file("x"))), ("z", try NumPy.read(path: file("z")))], to: temp("in.npz"))
        let run = try zoo("run", model, "--input", temp("in.npz"), "--output", temp("out.npz"))
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(run.stdout.components(separatedBy: " from ")[0], "\(temp("out.npz")): 'sum' [3, 4], 'relu' [3, 4]")
        let outputs = try NumPyArchive.read(path: temp("out.npz"))
        XCTAssertEqual(outputs.map(\.name), ["sum", "relu"])
        for (name, tensor) in outputs {
            // onnxruntime's outputs (Fixtures/make_onnx_reader_cases.py).
            XCTAssertEqual(ParityReport(name: name, value: tensor, reference: try NumPy.read(path: file(name))).maxAbsDifference, 0, name)
        }
        let parity = try zoo("parity", model, temp("out.npz"), "--input", temp("in.npz"))
        XCTAssertEqual(parity.status, 0, parity.stderr)
        XCTAssertTrue(parity.stdout.contains("\n  input:     [3, 4] 'x' from \(temp("in.npz")):x, [3, 4] 'z' from \(temp("in.npz")):z\n"), parity.stdout)
        try NumPyArchive.write([("sum", outputs[0].tensor)], to: temp("partial.npz"))
        assertError(try zoo("parity", model, temp("partial.npz"), "--input", temp("in.npz")),
                    "cannot compare: \(temp("partial.npz")) has no array 'relu' (A's outputs: 'sum', 'relu'; its arrays: 'sum')")
        try NumPyArchive.write([("x", outputs[0].tensor), ("w", outputs[0].tensor)], to: temp("odd.npz"))
        assertError(try zoo("run", model, "--input", temp("odd.npz"), "--output", temp("o.npz")),
                    "\(temp("odd.npz")) holds an array 'w', which is not an input of the model (its inputs: 'x', 'z')", status: 64)
    }

    // MARK: nothing dropped silently

    /// A training checkpoint (state dict + optimizer + epoch …) to safetensors used to drop the rest silently.
    func testExtraEntriesAreRefusedUnlessDropped() throws {
        let nested = fixture("torch/nested.pth")
        let refused = try zoo("convert", nested, temp("n.safetensors"))
        XCTAssertEqual(refused.status, 64)
        XCTAssertEqual(refused.stderr, "Error: \(nested) holds more than a state dict — optimizer (dict of 2, 18 tensors inside), "
            + "epoch (5), best_acc (0.91 (numpy f8)), lr (0.1), arch ('tinynet'), tags (set of 2), blob (bytes (7)), "
            + "history (list of 2), args (dict of 3) — which \(temp("n.safetensors")) cannot keep: add --drop-extra to write "
            + "the state dict alone, or convert to .pth to keep everything\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: temp("n.safetensors")))
        let dropped = try zoo("convert", nested, temp("n.safetensors"), "--drop-extra")
        XCTAssertEqual(dropped.status, 0, dropped.stderr)
        XCTAssertEqual(dropped.stdout, "wrote \(temp("n.safetensors")): 9 tensors, read back bit-identical\n"
            + "left out (--drop-extra): optimizer (dict of 2, 18 tensors inside), epoch (5), best_acc (0.91 (numpy f8)), lr (0.1), "
            + "arch ('tinynet'), tags (set of 2), blob (bytes (7)), history (list of 2), args (dict of 3)\n")
        // pth → pth keeps the whole object; --key writes that state dict alone and says what it left.
        let whole = try zoo("convert", nested, temp("whole.pth"), "--json")
        XCTAssertEqual((try object(whole.stdout)["left_out"] as? [Any])?.count, 0)
        let key = try zoo("convert", nested, temp("model.pth"), "--key", "model", "--json")
        XCTAssertEqual(key.status, 0, key.stderr)
        let leftOut = try XCTUnwrap(try object(key.stdout)["left_out"] as? [[String: String]])
        XCTAssertEqual(leftOut.map { $0["name"]! }, ["optimizer", "epoch", "best_acc", "lr", "arch", "tags", "blob", "history", "args"])
        XCTAssertEqual(Set(leftOut.map { $0["reason"]! }), ["outside --key"])
        XCTAssertEqual(try Checkpoint.load(path: temp("model.pth")).stateDict().entries.count, 9)
    }

    /// safetensors metadata goes to safetensors; a .pth has no place for it, so it is refused unless dropped.
    func testSafetensorsMetadataIsKeptOrDroppedOutLoud() throws {
        let source = fixture("safetensors/metadata.safetensors")
        let metadata = try Safetensors.load(path: source).metadata
        XCTAssertEqual(try zoo("convert", source, temp("m.safetensors")).status, 0)
        XCTAssertEqual(try Safetensors.load(path: temp("m.safetensors")).metadata, metadata)
        let refused = try zoo("convert", source, temp("m.pth"))
        XCTAssertEqual(refused.status, 64)
        XCTAssertTrue(refused.stderr.hasPrefix("Error: \(source) holds more than a state dict — metadata 'empty' (''), "), refused.stderr)
        let dropped = try object(try zoo("convert", source, temp("m.pth"), "--drop-extra", "--json").stdout)
        // Every key but "format" (safetensors' own tag for the writing library, not data) is listed.
        XCTAssertEqual((dropped["left_out"] as? [[String: String]])?.map { $0["name"]! },
                       metadata.keys.filter { $0 != "format" }.sorted().map { "metadata '\($0)'" })
    }

    /// Options that do not apply to the chosen files used to be ignored.
    func testOptionsThatDoNotApplyAreUsageErrors() throws {
        try Data(try Data(contentsOf: URL(fileURLWithPath: fixture("safetensors/alexnet_small.safetensors")))).write(to: URL(fileURLWithPath: temp("a.safetensors")))
        let st = temp("a.safetensors")
        assertUsageError(try zoo("convert", pth, temp("x.pth"), "--opset", "13"), "--opset applies only to an .onnx output, not \(temp("x.pth"))", command: "convert")
        assertUsageError(try zoo("convert", pth, temp("x.safetensors"), "--external-data"),
                         "--external-data applies only to an .onnx output, not \(temp("x.safetensors"))", command: "convert")
        assertUsageError(try zoo("convert", st, temp("x.onnx"), "--key", "model"),
                         "--key applies only to a PyTorch checkpoint input, not \(st)", command: "convert")
        assertUsageError(try zoo("convert", onnx, temp("x.pth"), "--arch", "alexnet"),
                         "--arch applies only when writing .onnx from a state dict (.pth or .safetensors)", command: "convert")
        assertUsageError(try zoo("inspect", st, "--key", "model"), "--key applies only to a PyTorch checkpoint, not \(st)", command: "inspect")
        assertUsageError(try zoo("inspect", onnx, "--key", "model"), "--key applies only to a PyTorch checkpoint, not \(onnx)", command: "inspect")
        assertUsageError(try zoo("inspect", onnx, "--graph"),
                         "--graph does not apply to \(onnx): an ONNX model's graph is shown whenever zoo imports it", command: "inspect")
        assertUsageError(try zoo("inspect", pth, "--arch", "alexnet"), "--arch applies only with --graph", command: "inspect")
        for command in [["run", onnx, "--input", input, "--output", temp("y.npy")], ["parity", onnx, pth], ["bench", onnx]] {
            let result = try CLITests.run(command + ["--arch", "alexnet"])
            assertError(result, "--arch alexnet does not apply to \(onnx): an ONNX model is already a graph", status: 64)
        }
        // inspect --graph on safetensors used to be ignored: it binds and shows the graph now.
        let graph = try zoo("inspect", st, "--graph")
        XCTAssertEqual(graph.status, 0, graph.stderr)
        XCTAssertTrue(graph.stdout.contains("\ngraph alexnet (8-16-24-16-16 / 64-64-10)\n"), graph.stdout)
    }

    /// `zoo init alexnet -o i.onnx` used to write a zip checkpoint named .onnx: the extension chooses
    /// the format, and every format holds the same tensors bit for bit.
    func testInitWritesTheFormatItsExtensionNames() throws {
        for name in ["i.pth", "i.safetensors", "i.onnx"] {
            let result = try zoo("init", "alexnet-paper", "-o", temp(name), "--seed", "3")
            XCTAssertEqual(result.status, 0, result.stderr)
        }
        let torch = try Checkpoint.load(path: temp("i.pth")).stateDict().entries.map { ($0.name, $0.tensor.tensor) }
        let safetensors = Dictionary(uniqueKeysWithValues: try Safetensors.load(path: temp("i.safetensors")).tensors.map { ($0.name, $0.tensor) })
        let onnx = Dictionary(uniqueKeysWithValues: try ONNX.load(path: temp("i.onnx")).initializers.map { ($0.name, $0.tensor) })
        XCTAssertEqual(Set(onnx.keys), Set(torch.map(\.0)))
        for (name, tensor) in torch {
            for (format, other) in [("safetensors", safetensors[name]), ("onnx", onnx[name])] {
                let same = other.map { o in tensor.withContiguousBytes { a in o.withContiguousBytes { b in a.elementsEqual(b) } } } ?? false
                XCTAssertTrue(same && other?.shape == tensor.shape, "\(format) '\(name)'")
            }
        }
        assertError(try zoo("init", "alexnet", "-o", temp("i.txt")),
                    "\(temp("i.txt")): unsupported extension '.txt' (supported: .pth, .pt, .bin, .onnx, .safetensors)")
    }

    /// ONNX → ONNX used to be refused: any graph zoo imports is written again at --opset (default: the
    /// source's within 13–21), initializer names kept, and still computes onnxruntime's outputs.
    func testONNXReexportKeepsNamesAndNumbers() throws {
        for (source, x, expected, opset, written) in [
            ("onnx/alexnet_small_ts_opset17.onnx", input, "onnx/alexnet_small_ts_opset17.expected.npy", "13", 13),
            ("onnx/alexnet_small_dynamo_opset18.onnx", input, "onnx/alexnet_small_dynamo_opset18.expected.npy", "21", 21),
            ("onnx/alexnet_paper_small_opset9.onnx", fixture("parity/alexnet_paper_small_input.npy"),
             "onnx/alexnet_paper_small_opset9.expected.npy", nil, 13),
        ] as [(String, String, String, String?, Int)] {
            let output = temp("re-\(written).onnx")
            let result = try CLITests.run(["convert", fixture(source), output, "--json"] + (opset.map { ["--opset", $0] } ?? []))
            XCTAssertEqual(result.status, 0, result.stderr)
            XCTAssertEqual(try object(result.stdout)["opset"] as? Int, written, source)
            let original = try ONNX.load(path: fixture(source)), copy = try ONNX.load(path: output)
            XCTAssertEqual(copy.opset, written)
            XCTAssertEqual(copy.graph.initializers.map(\.name), original.graph.initializers.map(\.name))
            // onnxruntime's outputs for the source (Fixtures/make_onnx_fixtures.py), from the copy.
            let y = try XCTUnwrap(try Executor(graph: copy.graph).run(try NumPy.read(path: x))[copy.graph.outputs[0]])
            let report = ParityReport(name: source, value: y, reference: try NumPy.read(path: fixture(expected)))
            XCTAssertTrue(report.passes(atol: 0, rtol: 1e-4), "\(source): max|Δ| \(report.maxAbsDifference)")
            try? FileManager.default.removeItem(atPath: output)
        }
    }

    /// Files zoo reads are told apart by their bytes: PyTorch's ImageNet example's .pth.tar, a .ckpt
    /// or no extension at all work; an extension naming another of zoo's formats is named.
    func testFormatsAreToldApartByContent() throws {
        let onnx = fixture("onnx/alexnet_small_ts_opset17.onnx")
        for (source, name) in [(pth, "checkpoint.pth.tar"), (pth, "last.ckpt"), (pth, "weights"), (onnx, "exported"),
                               (fixture("safetensors/alexnet_small.safetensors"), "model.st")] {
            try? FileManager.default.removeItem(atPath: temp(name))
            try FileManager.default.copyItem(atPath: source, toPath: temp(name))
            let result = try zoo("inspect", temp(name), "--json")
            XCTAssertEqual(result.status, 0, "\(name): \(result.stderr)")
        }
        try? FileManager.default.removeItem(atPath: temp("m.pth"))
        try FileManager.default.copyItem(atPath: onnx, toPath: temp("m.pth"))
        assertError(try zoo("bench", temp("m.pth"), "--runs", "1"),
                    "\(temp("m.pth")): this .pth is an ONNX model (by its bytes): give it the extension .onnx")
        try? FileManager.default.removeItem(atPath: temp("s.onnx"))
        try FileManager.default.copyItem(atPath: pth, toPath: temp("s.onnx"))
        assertError(try zoo("inspect", temp("s.onnx")),
                    "\(temp("s.onnx")): this .onnx is a PyTorch checkpoint (by its bytes): give it the extension .pth")
    }

    // MARK: messages

    func testMessagesNameTheMistakeOnce() throws {
        assertError(try zoo("inspect", directory.path), "\(directory.path): is a directory, not a model file (.pth, .pt, .bin, .onnx or .safetensors)")
        try Data().write(to: URL(fileURLWithPath: temp("model")))
        assertError(try zoo("inspect", temp("model")),
                    "\(temp("model")): not a model file zoo reads: not a PyTorch checkpoint (zip, tar or pickle), safetensors or ONNX file by its first bytes")
        assertError(try zoo("inspect", pth, "--key", "foo"),
                    "\(pth): no entry 'foo': the file is itself a state dict (of 16 tensors); drop --key")
        // The path used to be repeated ("out.onnx: out.onnx: …") or the message ended in "for:".
        for ext in ["onnx", "safetensors"] {
            XCTAssertEqual(symlink("/dev/full", temp("full.\(ext)")), 0)
            assertError(try zoo("convert", pth, temp("full.\(ext)"), "--no-verify", "--quiet"),
                        "\(temp("full.\(ext)")): cannot write: No space left on device")
        }
        assertError(try zoo("convert", pth, temp("missing/out.onnx")),
                    "\(temp("missing/out.onnx")): cannot create a staging folder beside it: No such file or directory")
        let help = try zoo("init", "--help")
        XCTAssertEqual(help.status, 0)
        XCTAssertFalse(help.stdout.contains("Fixtures/"), "help cites a path inside zoo's source tree: \(help.stdout)")
    }

    /// Negative numbers used to read as options ("Missing value for '--rtol <rtol>'"); bench --runs 0
    /// printed the top-level usage.
    func testNumbersAreCheckedWithTheirOption() throws {
        assertUsageError(try zoo("parity", onnx, pth, "--rtol", "-1"), "--rtol must be a non-negative number, got -1.0", command: "parity")
        let seed = try zoo("parity", onnx, pth, "--seed", "-5")
        XCTAssertEqual(seed.status, 64)
        XCTAssertTrue(seed.stderr.hasPrefix("Error: The value '-5' is invalid for '--seed <seed>': a seed is an integer from 0 to "
            + "18446744073709551615\n"), seed.stderr)
        assertUsageError(try zoo("bench", onnx, "--runs", "0"), "--runs must be at least 1, got 0", command: "bench")
        assertUsageError(try zoo("run", onnx, "--input", input, "--output", temp("y.npy"), "--threads", "-2"),
                         "--threads must be at least 1, got -2", command: "run")
    }

    // MARK: scriptable

    func testVersionAndExitCodes() throws {
        let version = try zoo("--version")
        XCTAssertEqual(version.status, 0, version.stderr)
        XCTAssertTrue(version.stdout.hasPrefix("zoo "), version.stdout)
        XCTAssertEqual(version.stdout.split(separator: "\n").count, 1)
        XCTAssertEqual(try zoo("models").status, 0)
        XCTAssertEqual(try zoo("inspect", temp("absent.pth")).status, 1)
        XCTAssertEqual(try zoo("inspect").status, 64)
        XCTAssertEqual(try zoo("frobnicate").status, 64)
        assertUsageError(try zoo("models", "--json", "--quiet"), "--json and --quiet exclude each other", command: "models")
    }

    /// --quiet: nothing on stdout on success; errors still on stderr.
    func testQuietPrintsNothingOnSuccess() throws {
        for arguments in [["convert", pth, temp("q.onnx"), "--quiet"], ["parity", onnx, pth, "-q"], ["models", "-q"],
                          ["inspect", pth, "-q"], ["run", onnx, "--input", input, "--output", temp("q.npy"), "-q"],
                          ["init", "alexnet-paper", "-o", temp("q.pth"), "-q"], ["bench", onnx, "--runs", "1", "-q"]] {
            let result = try CLITests.run(arguments)
            XCTAssertEqual(result.status, 0, "\(arguments): \(result.stderr)")
            XCTAssertEqual(result.stdout, "", "\(arguments)")
            XCTAssertEqual(result.stderr, "", "\(arguments)")
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: temp("q.onnx")))
        let failed = try zoo("inspect", temp("absent.pth"), "-q")
        XCTAssertEqual(failed.status, 1)
        XCTAssertTrue(failed.stderr.hasPrefix("Error: \(temp("absent.pth")): "), failed.stderr)
    }

    /// `inspect --json --graph` used to print JSON followed by the text graph; every command has --json.
    func testEveryCommandPrintsOneJSONObject() throws {
        let inspect = try object(try zoo("inspect", pth, "--json", "--graph").stdout)
        let graph = try XCTUnwrap(inspect["graph"] as? [String: Any])
        XCTAssertEqual(graph["architecture"] as? String, "alexnet (custom)")
        let nodes = try XCTUnwrap(graph["nodes"] as? [[String: Any]])
        XCTAssertEqual(nodes.first?["op"] as? String, "Conv")
        XCTAssertEqual((graph["outputs"] as? [[String: Any]])?.first?["shape"] as? [AnyHashable], ["N", 10])
        let onnxGraph = try XCTUnwrap(try object(try zoo("inspect", onnx, "--json").stdout)["graph"] as? [String: Any])
        XCTAssertEqual(onnxGraph["name"] as? String, "main_graph")

        let convert = try object(try zoo("convert", pth, temp("j.onnx"), "--json").stdout)
        XCTAssertEqual(convert["to"] as? String, "onnx")
        XCTAssertEqual(convert["opset"] as? Int, 17)
        XCTAssertEqual(convert["verified"] as? Bool, true)
        XCTAssertEqual((convert["parity"] as? [String: Any])?["top5_agree"] as? Int, 2)

        let run = try object(try zoo("run", onnx, "--input", input, "--output", temp("j.npy"), "--json").stdout)
        XCTAssertEqual((run["outputs"] as? [[String: Any]])?.first?["shape"] as? [Int], [2, 10])
        XCTAssertEqual((run["inputs"] as? [[String: Any]])?.first?["file"] as? String, input)
        XCTAssertEqual((run["model"] as? [String: Any])?["opset"] as? Int, 17)
        XCTAssertEqual(try NumPy.read(path: temp("j.npy")).shape, [2, 10])

        let parity = try object(try zoo("parity", onnx, pth, "--json", "--batch", "2").stdout)
        XCTAssertEqual(parity["ok"] as? Bool, true)
        XCTAssertEqual((parity["inputs"] as? [[String: Any]])?.first?["source"] as? String, "generated")
        XCTAssertEqual(((parity["results"] as? [[String: Any]])?.first)?["reference_shape"] as? [Int], [2, 10])

        let bench = try object(try zoo("bench", onnx, "--runs", "2", "--json").stdout)
        XCTAssertEqual((bench["times_ms"] as? [Double])?.count, 2)
        XCTAssertEqual(bench["batch"] as? Int, 1)

        let models = try object(try zoo("models", "--json").stdout)
        let families = try XCTUnwrap(models["families"] as? [[String: Any]])
        XCTAssertEqual(Array(families.prefix(3)).map { $0["name"] as? String }, ["alexnet", "alexnet-paper", "resnet"])
        let resnet50 = try XCTUnwrap((families[2]["variants"] as? [[String: Any]])?.first { $0["name"] as? String == "resnet50" })
        // torchvision's own figures for resnet50's default weights (Fixtures/torchvision/keys.json.gz).
        let gunzip = Process()
        gunzip.executableURL = URL(fileURLWithPath: "/bin/gzip")
        gunzip.arguments = ["-dc", fixture("torchvision/keys.json.gz")]
        let pipe = Pipe()
        gunzip.standardOutput = pipe
        try gunzip.run()
        let keys = try object(String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
        gunzip.waitUntilExit()
        let torchvision = try XCTUnwrap((keys["models"] as? [[String: Any]])?.first { $0["name"] as? String == "resnet50" })
        let weights = try XCTUnwrap(torchvision["weights"] as? [String: Any])
        XCTAssertEqual(resnet50["parameters"] as? Int, weights["num_params"] as? Int)
        XCTAssertEqual((resnet50["transform"] as? [String: Any])?["resize"] as? Int,
                       (weights["transforms"] as? [String: Any])?["resize_size"] as? Int)
        let initialized = try object(try zoo("init", "alexnet-paper", "-o", temp("j.pth"), "--json").stdout)
        XCTAssertEqual(initialized["format"] as? String, "torch")
    }
}
