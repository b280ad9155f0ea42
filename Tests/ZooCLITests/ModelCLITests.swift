import Foundation
import ONNXFormat
import Safetensors
import TorchFormat
import XCTest
import ZooCore
import ZooOps

/// The model commands (run, parity, init, bench, models) as a user meets them, bad input included.
final class ModelCLITests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-model-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    private func temp(_ name: String) -> String { directory.appendingPathComponent(name).path }

    private func run(_ arguments: String...) throws -> (status: Int32, stdout: String, stderr: String) {
        try run(arguments)
    }

    private func run(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let result = try CLITests.run(arguments)
        return (result.status, result.stdout, result.stderr)
    }

    private func fixture(_ relative: String) -> String {
        CLITests.fixtures.deletingLastPathComponent().appendingPathComponent(relative).path
    }

    /// The reduced AlexNet with its entries changed by `edit` (name → tensor, nil to drop), plus extras.
    private func editedCheckpoint(_ name: String, source: String? = nil, edit: (String, Tensor) -> Tensor?,
                                  extra: [(String, Tensor)] = []) throws -> String {
        let stateDict = try Checkpoint.load(path: source ?? fixture("torch/alexnet_small.pth")).stateDict()
        var entries: [(name: String, tensor: TorchTensor)] = []
        for (entryName, t) in stateDict.entries.map({ ($0.name, $0.tensor.tensor) }) + extra {
            guard let edited = edit(entryName, t) else { continue }
            let storage = TorchStorage(key: entryName, dtype: edited.dtype, location: "cpu", storage: edited.contiguous().storage)
            entries.append((entryName, TorchTensor(tensor: edited.contiguous(), source: storage)))
        }
        let path = temp(name)
        try Checkpoint.save(StateDict(entries: entries), to: path)
        return path
    }

    /// One weight element changed: parity fails and names the first node computed from it.
    /// Swin's graph holds constants of its input size (padding to window multiples, shifted-window
    /// masks): `zoo run` and `zoo parity` build a state-dict model again for a square input of
    /// another size, as PyTorch runs it at any size. It used to refuse 160×160.
    func testSwinRunsAtAnotherSize() throws {
        XCTAssertEqual(try run("init", "swin_t", "-o", temp("swin.pth")).status, 0)
        let x = Tensor(floats: (0..<(3 * 160 * 160)).map { Float($0 % 17) / 17 - 0.5 }, shape: [1, 3, 160, 160])
        try NumPy.write(x, to: temp("x160.npy"))
        let result = try run("run", temp("swin.pth"), "--input", temp("x160.npy"), "--output", temp("y160.npy"))
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(try NumPy.read(path: temp("y160.npy")).shape, [1, 1000])
        // The same model from the same file, both rebuilt: identical outputs.
        let parity = try run("parity", temp("swin.pth"), temp("swin.pth"), "--input", temp("x160.npy"))
        XCTAssertEqual(parity.status, 0, parity.stderr)
        XCTAssertTrue(parity.stdout.contains("[1, 3, 160, 160] from"), parity.stdout)
    }

    func testParityLayersNamesTheFirstDivergingNode() throws {
        let changed = try editedCheckpoint("changed.pth") { name, t in
            guard name == "features.3.weight" else { return t }
            var values = t.floats()
            values[17] += 0.25
            return Tensor(floats: values, shape: t.shape)
        }
        let input = fixture("parity/alexnet_small_input.npy")
        let same = try run("parity", fixture("torch/alexnet_small.pth"), fixture("torch/alexnet_small.pth"), "--layers", "--input", input)
        XCTAssertEqual(same.status, 0, same.stdout + same.stderr)
        XCTAssertTrue(same.stdout.contains("features.3 ") && same.stdout.contains("classifier.6"), same.stdout)

        let result = try run("parity", fixture("torch/alexnet_small.pth"), changed, "--layers", "--input", input)
        XCTAssertEqual(result.status, 1, result.stdout)
        XCTAssertTrue(result.stderr.contains("first diverging node is 'features.3'"), result.stderr)
        // Layers before it still agree.
        let lines = result.stdout.split(separator: "\n")
        XCTAssertTrue(lines.contains { $0.contains("features.2 ") && $0.hasSuffix("yes") }, result.stdout)
        XCTAssertTrue(lines.contains { $0.contains("features.3 ") && $0.hasSuffix("NO") }, result.stdout)

        let outputs = try run("parity", fixture("torch/alexnet_small.pth"), changed, "--input", input)
        XCTAssertEqual(outputs.status, 1)
        XCTAssertTrue(outputs.stderr.contains("parity FAILS"), outputs.stderr)
    }

    func testRunWritesTorchEqualLogits() throws {
        let output = temp("logits.npy")
        let result = try run("run", fixture("torch/alexnet_small.pth"), "--input", fixture("parity/alexnet_small_input.npy"), "--output", output)
        XCTAssertEqual(result.status, 0, result.stderr)
        let parity = try run("parity", fixture("torch/alexnet_small.pth"), fixture("parity/alexnet_small_logits.npy"),
                             "--input", fixture("parity/alexnet_small_input.npy"))
        XCTAssertEqual(parity.status, 0, parity.stdout + parity.stderr)
        let written = try NumPy.read(path: output)
        XCTAssertEqual(written.shape, [2, 10])
        let reference = try NumPy.read(path: fixture("parity/alexnet_small_logits.npy")).doubles()
        XCTAssertLessThan(zip(written.doubles(), reference).map { abs($0 - $1) }.max()!, 1e-6)
    }

    func testMismatchedStateDictReportsEveryProblem() throws {
        let broken = try editedCheckpoint("broken.pth", edit: { name, t in
            switch name {
            case "features.6.bias": return nil
            case "classifier.4.weight": return Tensor(floats: Array(t.floats().prefix(64 * 63)), shape: [64, 63])
            default: return t
            }
        }, extra: [("features.99.weight", Tensor(floats: [1], shape: [1]))])
        // Detected: the nearest layout is AlexNet at the widths the file has, and all three differences show.
        let result = try run("run", broken, "--input", fixture("parity/alexnet_small_input.npy"), "--output", temp("y.npy"))
        XCTAssertEqual(result.status, 1)
        XCTAssertEqual(result.stderr, "Error: \(broken): looks like torchvision alexnet (8-16-24-16-16 / 64-64-10) but missing 'features.6.bias' [24]; "
            + "'classifier.4.weight' is [64, 63], expected [64, 64]; unexpected 'features.99.weight' [1] (16 tensors, first 'features.0.weight') "
            + "— zoo can still inspect it and convert it to .pth or .safetensors\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: temp("y.npy")))
        // Named: strict against that variant, every problem counted.
        let named = try run("run", broken, "--arch", "alexnet", "--input", fixture("parity/alexnet_small_input.npy"), "--output", temp("y.npy"))
        XCTAssertEqual(named.status, 1)
        XCTAssertEqual(named.stderr.split(separator: "\n").count, 1, named.stderr)
        for part in ["state dict does not fit alexnet: 'features.0.weight' is [8, 3, 11, 11], expected [64, 3, 11, 11]", "; and 8 more"] {
            XCTAssertTrue(named.stderr.contains(part), "\(part) not in: \(named.stderr)")
        }
    }

    func testUnknownArchitecture() throws {
        let result = try run("init", "resnet5", "-o", temp("r.pth"))
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.hasPrefix("Error: unknown architecture 'resnet5' (nearest: resnet50)"), result.stderr)
        let detect = try run("run", fixture("torch/nested.pth"), "--input", fixture("parity/alexnet_small_input.npy"), "--output", temp("y.npy"))
        XCTAssertEqual(detect.status, 1)
        XCTAssertEqual(detect.stderr, "Error: \(fixture("torch/nested.pth")): not a torchvision classification layout: 9 tensors, first 'conv.weight' "
            + "— zoo can still inspect it and convert it to .pth or .safetensors\n")
        // A layout zoo does not know (a MobileNetV2-like one, sharing one key name with AlexNet) is one
        // short line — it used to list every missing and unexpected key (17 KB).
        var mobile: [(name: String, tensor: Tensor)] = []
        for block in 0..<40 { mobile.append(("features.\(block).0.weight", Tensor(floats: [Float](repeating: 0, count: 9), shape: [1, 1, 3, 3]))) }
        mobile.append(("classifier.1.weight", Tensor(floats: [Float](repeating: 0, count: 10), shape: [10, 1])))
        try Safetensors.save(mobile, to: temp("mobile.safetensors"))
        let unknown = try run("convert", temp("mobile.safetensors"), temp("mobile.onnx"))
        XCTAssertEqual(unknown.status, 1)
        XCTAssertEqual(unknown.stderr, "Error: \(temp("mobile.safetensors")): not a torchvision classification layout: 41 tensors, "
            + "first 'classifier.1.weight' — zoo can still inspect it and convert it to .pth or .safetensors\n")
        // One tensor off a real layout names the architecture and the tensor.
        XCTAssertEqual(try run("init", "resnet18", "-o", temp("r18.pth")).status, 0)
        let edited = try editedCheckpoint("r18-edited.pth", source: temp("r18.pth"), edit: { name, t in
            name == "layer4.1.conv2.weight" ? Tensor(floats: Array(t.floats().prefix(512 * 256 * 9)), shape: [512, 256, 3, 3]) : t
        })
        let near = try run("convert", edited, temp("r18.onnx"))
        XCTAssertEqual(near.status, 1)
        XCTAssertEqual(near.stderr, "Error: \(edited): looks like torchvision resnet18 but 'layer4.1.conv2.weight' is [512, 256, 3, 3], "
            + "expected [512, 512, 3, 3] (122 tensors, first 'conv1.weight') — zoo can still inspect it and convert it to .pth or .safetensors\n")
    }

    private func npy(_ name: String, descr: String, fortran: Bool = false, shape: String, data: [UInt8]) throws -> String {
        var header = "{'descr': '\(descr)', 'fortran_order': \(fortran ? "True" : "False"), 'shape': \(shape), }"
        header += String(repeating: " ", count: (64 - (10 + header.utf8.count + 1) % 64) % 64) + "\n"
        let bytes = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)] + Array(header.utf8) + data
        let path = temp(name)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    func testBadInputsToRun() throws {
        let model = fixture("torch/alexnet_small.pth")
        func check(_ input: String, _ expected: String, file: StaticString = #filePath, line: UInt = #line) throws {
            let result = try run("run", model, "--input", input, "--output", temp("y.npy"))
            XCTAssertEqual(result.status, 1, file: file, line: line)
            XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr, file: file, line: line)
            XCTAssertTrue(result.stderr.contains(expected), "expected '\(expected)' in: \(result.stderr)", file: file, line: line)
        }
        try check(try npy("channels.npy", descr: "<f4", shape: "(1, 4, 80, 80)", data: [UInt8](repeating: 0, count: 4 * 4 * 6400)), "4 channels")
        try check(try npy("small.npy", descr: "<f4", shape: "(1, 3, 50, 50)", data: [UInt8](repeating: 0, count: 4 * 3 * 2500)), "features.12")
        try check(try npy("ints.npy", descr: "<i8", shape: "(1, 3, 2, 2)", data: [UInt8](repeating: 0, count: 96)), "i64")
        try check(try npy("big.npy", descr: ">f4", shape: "(1, 3, 2, 2)", data: [UInt8](repeating: 0, count: 48)), "'>f4' is not supported")
        try check(try npy("half.npy", descr: "<f2", shape: "(1, 3, 2, 2)", data: [UInt8](repeating: 0, count: 24)), "'<f2' is not supported")
        try check(try npy("fortran.npy", descr: "<f4", fortran: true, shape: "(1, 3, 2, 2)", data: [UInt8](repeating: 0, count: 48)), "Fortran")
        try check(try npy("short.npy", descr: "<f4", shape: "(1, 3, 64, 64)", data: [UInt8](repeating: 0, count: 100)), "needs 49152 data bytes")
        let text = temp("text.npy")
        try Data("not numpy".utf8).write(to: URL(fileURLWithPath: text))
        try check(text, "not a .npy file")
        try check(temp("missing.npy"), "cannot open")
        try check(try npy("rank.npy", descr: "<f4", shape: "(3, 64, 64)", data: [UInt8](repeating: 0, count: 4 * 3 * 4096)), "rank")
    }

    func testInspectGraphDumpsTheModel() throws {
        let result = try run("inspect", fixture("parity/alexnet_paper_small.pth"), "--graph")
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("graph alexnet-paper (16-32-48-48-32 / 64-64-10)"), result.stdout)
        XCTAssertTrue(result.stdout.contains("features.4    Conv(k=5×5 s=1×1 p=2,2,2,2 g=2)  features.3, @features.4.weight, @features.4.bias -> f32 [N, 32, 27, 27]"), result.stdout)
        XCTAssertTrue(result.stdout.contains("features.14   MaxPool(k=3×3 s=2×2 ceil)  features.13 -> f32 [N, 32, 6, 6]"), result.stdout)
        let unbound = try run("inspect", fixture("torch/nested.pth"), "--graph")
        XCTAssertEqual(unbound.status, 1)
        XCTAssertTrue(unbound.stderr.contains("not a torchvision classification layout"), unbound.stderr)
    }

    /// pth → onnx → pth and pth → safetensors → pth keep every tensor bit for bit; convert's own
    /// verification runs both models.
    func testConvertRoundTripsThroughONNXAndSafetensors() throws {
        let source = fixture("torch/alexnet_small.pth")
        let onnx = temp("alexnet_small.onnx"), back = temp("back.pth"), st = temp("alexnet_small.safetensors"), back2 = temp("back2.pth")
        for (input, output, extra) in [(source, onnx, ["--opset", "13"]), (onnx, back, []), (source, st, []), (st, back2, [])] {
            let result = try run(["convert", input, output] + extra)
            XCTAssertEqual(result.status, 0, result.stderr)
            XCTAssertTrue(result.stdout.contains("top-5 2/2"), "\(input) → \(output): \(result.stdout)")
        }
        let original = try Checkpoint.load(path: source).stateDict()
        for path in [back, back2] {
            let copy = try Checkpoint.load(path: path).stateDict()
            XCTAssertEqual(copy.entries.map(\.name), original.entries.map(\.name))
            for (a, b) in zip(original.entries, copy.entries) {
                XCTAssertTrue(a.tensor.tensor.withContiguousBytes { x in b.tensor.tensor.withContiguousBytes { y in x.elementsEqual(y) } }, a.name)
            }
        }
        let inspect = try run("inspect", onnx)
        XCTAssertTrue(inspect.stdout.contains("format:    onnx (IR 7, opset 13, producer 'zoo "), inspect.stdout)
        XCTAssertTrue(inspect.stdout.contains("features.3"), inspect.stdout)
    }

    /// An f16 checkpoint (alexnet_small's state dict `.half()`, saved by torch) converts to an ONNX file
    /// of f16 initializers, about half the f32 conversion's size, which passes convert's own parity
    /// check; onnx → pth and onnx → safetensors give back the f16 tensors bit for bit.
    func testConvertKeepsHalfPrecision() throws {
        let source = fixture("torch/fp16_model.pth")
        let half = temp("f16.onnx"), full = temp("f32.onnx"), back = temp("back.pth"), st = temp("back.safetensors")
        for (input, output) in [(source, half), (fixture("torch/alexnet_small.pth"), full), (half, back), (half, st)] {
            let result = try run("convert", input, output)
            XCTAssertEqual(result.status, 0, result.stderr)
            XCTAssertTrue(result.stdout.contains("top-5 2/2"), "\(input) → \(output): \(result.stdout)")
        }
        func size(_ path: String) throws -> Double { Double(try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int) }
        let inspect = try run("inspect", half)
        XCTAssertTrue(inspect.stdout.contains("16 initializers (@name; f16), 57138 parameters"), inspect.stdout)
        let ratio = try size(half) / size(full)
        XCTAssertTrue((0.45...0.55).contains(ratio), "f16 file is \(ratio) of the f32 one")
        let original = try Checkpoint.load(path: source).stateDict().entries.map { ($0.name, $0.tensor.tensor) }
        XCTAssertTrue(original.allSatisfy { $0.1.dtype == .f16 })
        let copies = [
            ("onnx", try ONNX.initializers(path: half)),
            ("pth", try Checkpoint.load(path: back).stateDict().entries.map { ($0.name, $0.tensor.tensor) }),
            ("safetensors", try Safetensors.load(path: st).tensors.map { ($0.name, $0.tensor) }),
        ]
        for (format, copy) in copies {
            XCTAssertEqual(Set(copy.map(\.0)), Set(original.map(\.0)), format)
            let byName = Dictionary(uniqueKeysWithValues: copy)
            for (name, tensor) in original {
                let other = try XCTUnwrap(byName[name], "\(format): \(name)")
                XCTAssertEqual(other.dtype, .f16, "\(format): \(name)")
                XCTAssertEqual(other.shape, tensor.shape, "\(format): \(name)")
                XCTAssertTrue(tensor.withContiguousBytes { x in other.withContiguousBytes { y in x.elementsEqual(y) } }, "\(format): \(name)")
            }
        }
    }

    /// onnx → safetensors keeps the weights and leaves out, naming it, the dynamo export's Reshape
    /// shape `val_8` (i64 [2]): a graph constant the reader folds into the Reshape, which no state dict
    /// has (torchvision's load_state_dict refuses it; converting back failed on "unexpected 'val_8'").
    func testConvertFromONNXLeavesOutGraphConstants() throws {
        let source = fixture("onnx/alexnet_small_dynamo_opset18.onnx")
        let output = temp("dynamo.safetensors")
        let result = try run("convert", source, output)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.hasSuffix("\nleft out (graph constants, not weights): val_8 (i64 [2])\n"), result.stdout)
        let inFile = try ONNX.initializers(path: source).map(\.name)
        XCTAssertEqual(Set(try Safetensors.load(path: output).tensors.map(\.name)), Set(inFile).subtracting(["val_8"]))
        // The state dict converts back to a model: same weights, same graph outputs.
        let back = try run("convert", output, temp("back.onnx"))
        XCTAssertEqual(back.status, 0, back.stderr)
        let json = try run("convert", source, temp("dynamo.pth"), "--json")
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(object["left_out"] as? [[String: String]], [["name": "val_8", "what": "i64 [2]", "reason": "graph constants, not weights"]])
    }

    func testONNXExternalDataAndBadFiles() throws {
        let onnx = temp("ext.onnx")
        let written = try run("convert", fixture("torch/alexnet_small.pth"), onnx, "--external-data")
        XCTAssertEqual(written.status, 0, written.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: onnx + ".data"))
        let runs = try run("parity", onnx, fixture("torch/alexnet_small.pth"), "--batch", "2")
        XCTAssertEqual(runs.status, 0, runs.stdout + runs.stderr)

        func refused(_ arguments: [String], _ expected: String, file: StaticString = #filePath, line: UInt = #line) throws {
            let result = try run(arguments)
            XCTAssertEqual(result.status, 1, file: file, line: line)
            XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr, file: file, line: line)
            XCTAssertTrue(result.stderr.contains(expected), "expected '\(expected)' in: \(result.stderr)", file: file, line: line)
        }
        let opset = try run("convert", fixture("torch/alexnet_small.pth"), temp("x.onnx"), "--opset", "12")
        XCTAssertEqual(opset.status, 64)
        XCTAssertTrue(opset.stderr.hasPrefix("Error: --opset 12 is not one zoo writes (13–21)\nUsage: zoo convert "), opset.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: temp("x.onnx")))
        let bytes = try Data(contentsOf: URL(fileURLWithPath: fixture("onnx/alexnet_small_ts_opset17.onnx")))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: temp("cut.onnx")))
        try refused(["inspect", temp("cut.onnx")], "cut.onnx")
        try Data("not a model".utf8).write(to: URL(fileURLWithPath: temp("text.onnx")))
        try refused(["inspect", temp("text.onnx")], "text.onnx")
        try FileManager.default.copyItem(atPath: fixture("onnx/alexnet_small_dynamo_opset18.onnx"), toPath: temp("lonely.onnx"))
        try refused(["run", temp("lonely.onnx"), "--input", fixture("onnx/alexnet_small_input.npy"), "--output", temp("y.npy")], "alexnet_small_dynamo_opset18.onnx.data")
    }

    func testModelsInitAndBench() throws {
        let models = try run("models")
        XCTAssertTrue(models.stdout.contains("alexnet ") && models.stdout.contains("alexnet-paper"), models.stdout)
        let path = temp("paper.pth")
        let written = try run("init", "alexnet-paper", "-o", path, "--seed", "3")
        XCTAssertEqual(written.status, 0, written.stderr)
        let inspect = try run("inspect", path, "--json")
        let json = try JSONSerialization.jsonObject(with: Data(inspect.stdout.utf8)) as! [String: Any]
        let tensors = json["tensors"] as! [[String: Any]]
        XCTAssertEqual(tensors.count, 16)
        // conv2 of the paper layout is grouped: 256 filters over 96 / 2 input channels.
        XCTAssertEqual(tensors.first { $0["name"] as? String == "features.4.weight" }?["shape"] as? [Int], [256, 48, 5, 5])
        let bench = try run("bench", fixture("torch/alexnet_small.pth"), "--batch", "2", "--runs", "2")
        XCTAssertEqual(bench.status, 0, bench.stderr)
        XCTAssertTrue(bench.stdout.contains("images/s"), bench.stdout)
    }
}
