import XCTest
import TorchFormat
import ZooCore
import ZooOps
import ZooModels
import ZooRuntime

/// zoo's executor against PyTorch: logits and every intermediate activation (torch forward hooks),
/// tolerance max|Δ| ≤ 1e-4 · max|ref| with identical top-5 per row; the figures are printed.
final class ParityTests: XCTestCase {
    private func model(_ relative: String) throws -> Model {
        try Model.bind(try Checkpoint.load(path: Fixture.path(relative)).stateDict())
    }

    /// Runs unfused so every node has its own output, and compares each with torch's activation.
    private func checkEveryLayer(_ model: Model, input: String, activations: String, logits: String) throws {
        let executor = try Executor(graph: model.graph, options: .init(threads: 2, fuse: false))
        let captured = try executor.runCapturingEveryNode(try Fixture.npy(input))
        XCTAssertEqual(captured.map(\.node), model.graph.nodes.map(\.name), "every node is captured, in order")
        for (node, value) in captured {
            let reference = try Fixture.npy("\(activations)/\(node).npy")
            assertParity(ParityReport(name: node, value: value, reference: reference), "\(model.architecture.name) layer")
        }
        let output = try Executor(graph: model.graph, options: .init(threads: 2)).run(try Fixture.npy(input))
        assertParity(ParityReport(name: "logits", value: output[model.graph.outputs[0]]!, reference: try Fixture.npy(logits)),
                     model.architecture.name)
    }

    func testReducedTorchvisionAlexNetEveryLayer() throws {
        let alexnet = try model("torch/alexnet_small.pth")
        XCTAssertEqual(alexnet.architecture.name, "alexnet (custom)")
        XCTAssertEqual(alexnet.architecture.summary, "8-16-24-16-16 / 64-64-10")
        try checkEveryLayer(alexnet, input: "parity/alexnet_small_input.npy", activations: "parity/alexnet_small_act",
                            logits: "parity/alexnet_small_logits.npy")
    }

    func testReducedPaperAlexNetEveryLayer() throws {
        let paper = try model("parity/alexnet_paper_small.pth")
        XCTAssertEqual(paper.architecture.family, "alexnet-paper")
        try checkEveryLayer(paper, input: "parity/alexnet_paper_small_input.npy", activations: "parity/alexnet_paper_small_act",
                            logits: "parity/alexnet_paper_small_logits.npy")
    }

    /// Other input sizes through the same graphs, with inputs regenerated (they are not committed):
    /// 224×224 for both (ceil-mode pooling keeps the paper model at 6×6) and 256×288, where the
    /// adaptive pool has uneven windows (7×8 → 6×6).
    func testOtherInputSizes() throws {
        let manifest = try Fixture.json("parity/manifest.json") as! [String: Any]
        var checked = 0
        for fixture in manifest["fixtures"] as! [[String: Any]] {
            guard let weights = fixture["weights"] as? String, let runs = fixture["runs"] as? [[String: Any]] else { continue }
            let m = try model(weights.hasPrefix("Fixtures/") ? String(weights.dropFirst("Fixtures/".count)) : "parity/" + weights)
            for run in runs where run["input_committed"] as? Bool == false {
                let generator = run["input_generator"] as! [String: Any]
                let shape = generator["shape"] as! [Int]
                let input = WeightGenerator(seed: UInt64(generator["seed"] as! Int)).input(batch: shape[0], height: shape[2], width: shape[3])
                let first = (run["input_first"] as! [Double]).map { Float($0) }
                XCTAssertEqual(Array(input.floats().prefix(first.count)), first, "generated input differs from torch's")
                let logits = (run["logits"] as! [String: Any])["file"] as! String
                let output = try Executor(graph: m.graph).run(input)[m.graph.outputs[0]]!
                assertParity(ParityReport(name: "logits", value: output, reference: try Fixture.npy("parity/" + logits)),
                             "\(m.architecture.name) \(run["name"]!)")
                checked += 1
            }
        }
        XCTAssertEqual(checked, 3)
    }

    /// Full-size torchvision AlexNet with weights from the deterministic generator, against torch's
    /// logits for the generated input (no 244 MB fixture needed).
    func testFullSizeAlexNetFromGenerator() throws {
        let generator = WeightGenerator(seed: 0)
        let alexnet = try Model.bind(tensors: generator.stateDict(Architecture.named("alexnet")!))
        // torch's parameter count: the shapes torch recorded for this model in the parity manifest.
        let manifest = try Fixture.json("parity/manifest.json") as! [String: Any]
        let full = (manifest["fixtures"] as! [[String: Any]]).first { $0["model"] as? String == "alexnet_full_seed0" }!
        let torchCount = (full["tensors"] as! [[String: Any]]).reduce(0) { $0 + ($1["shape"] as! [Int]).reduce(1, *) }
        XCTAssertEqual(alexnet.graph.parameterCount, torchCount)
        let input = generator.input(batch: 2, height: 224, width: 224)
        let output = try Executor(graph: alexnet.graph).run(input)[alexnet.graph.outputs[0]]!
        let report = ParityReport(name: "logits", value: output, reference: try Fixture.npy("parity/alexnet_full_seed0_logits.npy"))
        assertParity(report, "full-size alexnet")
        XCTAssertEqual(report.top5Agreement, 2)
        let top5 = try Fixture.npy("parity/alexnet_full_seed0_top5.npy").doubles().map { Int($0) }
        XCTAssertEqual(ParityReport.top(5, Array(output.doubles()[0..<1000])), Array(top5[0..<5]))
    }

    /// A half-precision checkpoint binds without widening: every weight stays f16, bit for bit the
    /// checkpoint's, and the executor (which widens when it plans) computes torch's logits for the
    /// f16 weights widened to f32 — not the f32 model's, which differ by more than the tolerance.
    func testHalfPrecisionWeightsStayHalf() throws {
        let checkpoint = try Checkpoint.load(path: Fixture.path("torch/fp16_model.pth")).stateDict()
        let half = try Model.bind(checkpoint)
        XCTAssertEqual(half.architecture.family, "alexnet")
        XCTAssertEqual(half.graph.initializers.count, 16)
        for entry in checkpoint.entries {
            let bound = try XCTUnwrap(half.graph.initializer(entry.name), entry.name)
            XCTAssertEqual(bound.dtype, .f16, entry.name)
            XCTAssertTrue(bytesEqual(bound, entry.tensor.tensor), entry.name)
        }
        XCTAssertTrue(half.graph.nodes.allSatisfy { half.graph.values[$0.output]?.dtype == .f32 }, "nodes compute in f32")
        let input = try Fixture.npy("onnx/alexnet_small_input.npy")
        let output = try XCTUnwrap(Executor(graph: half.graph).run(input)[half.graph.outputs[0]])
        assertParity(ParityReport(name: "logits", value: output, reference: try Fixture.npy("onnx/fp16_model_logits.npy")), "f16 alexnet")
        let f32Logits = ParityReport(name: "logits", value: output, reference: try Fixture.npy("onnx/alexnet_small_ts_opset17.expected.npy"))
        XCTAssertFalse(f32Logits.passes(atol: 0, rtol: 1e-4), "the f16 reference must tell f16 weights from f32 ones: \(f32Logits.maxAbsDifference)")
    }

    /// Identical outputs pass whatever they hold: ∞ − ∞ is NaN, which made convert's check fail on
    /// a model whose weights hold infinities, copied exactly (found by the CLI mutation run).
    func testIdenticalNonFiniteOutputsPass() {
        let values: [Float] = [.infinity, -.infinity, .nan, 1, 2, 3, 4, 5]
        let report = ParityReport(name: "y", value: Tensor(floats: values, shape: [1, 8]), reference: Tensor(floats: values, shape: [1, 8]))
        XCTAssertEqual(report.maxAbsDifference, 0)
        XCTAssertEqual(report.cosine, 1)
        XCTAssertTrue(report.passes(atol: 0, rtol: 1e-4))
        // One different value still fails: a NaN against a number, or an infinity of the other sign.
        for changed in [Float(7), .nan, -.infinity] where !(changed.isNaN && values[3].isNaN) {
            var other = values
            other[3] = changed
            XCTAssertFalse(ParityReport(name: "y", value: Tensor(floats: other, shape: [1, 8]),
                                        reference: Tensor(floats: values, shape: [1, 8])).passes(atol: 0, rtol: 1e-4), "\(changed)")
        }
    }

    func testGeneratorMatchesPython() throws {
        let expected = try Fixture.npy("parity/generator_check.npy").floats()
        XCTAssertEqual(WeightGenerator(seed: 7).values(stream: 3, count: 64, shift: 25), expected)
        let manifest = try Fixture.json("parity/manifest.json") as! [String: Any]
        let cases = (manifest["generator_check"] as! [String: Any])["cases"] as! [[String: Any]]
        for c in cases {
            let seed = UInt64(c["seed"] as! Int), stream = UInt64(c["stream"] as! Int)
            let shift = c["shift"] as! Int, index = c["index"] as! Int
            let value = WeightGenerator(seed: seed).values(stream: stream, count: index + 1, shift: shift)[index]
            XCTAssertEqual(String(value.bitPattern, radix: 16), (c["value_bits_hex"] as! String).lowercased().trimmingPrefix("0x").description, "\(c)")
        }
        let shifts = (manifest["generator_check"] as! [String: Any])["weight_shift_by_fan_in"] as! [String: Int]
        XCTAssertFalse(shifts.isEmpty)
        for (fanIn, shift) in shifts { XCTAssertEqual(WeightGenerator.shift(fanIn: Int(fanIn)!), shift, "fan_in \(fanIn)") }
    }

    /// The same bytes for 1, 2 and 3 threads, and fused or not.
    func testResultsDoNotDependOnThreadsOrFusion() throws {
        for weights in ["torch/alexnet_small.pth", "parity/alexnet_paper_small.pth"] {
            let m = try model(weights)
            let input = WeightGenerator(seed: 5).input(batch: 3, height: 227, width: 227)
            let reference = try Executor(graph: m.graph, options: .init(threads: 1)).run(input)[m.graph.outputs[0]]!
            for (threads, fuse) in [(2, true), (3, true), (2, false)] {
                let output = try Executor(graph: m.graph, options: .init(threads: threads, fuse: fuse)).run(input)[m.graph.outputs[0]]!
                XCTAssertTrue(bytesEqual(reference, output), "\(weights): \(threads) threads, fuse \(fuse) differs from 1 thread")
            }
        }
    }
}
