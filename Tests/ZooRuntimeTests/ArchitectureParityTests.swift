import XCTest
import TorchFormat
import ZooCore
import ZooModels
import ZooOps
import ZooRuntime

/// One full-size variant of every family zoo builds from a state dict, against real torchvision
/// (Fixtures/architectures, made by Fixtures/make_architecture_parity.py): zoo's weight generator
/// writes the weights torchvision loaded strictly, zoo runs them on the generator's input, and the
/// logits must match torch's within 1e-4 · max|ref| with identical top-5 in every row. For one family
/// per block type, every convolution, norm and Linear is checked too, at the sampled positions the
/// fixture holds, within 1e-4 · that layer's max |output|.
final class ArchitectureParityTests: XCTestCase {
    func testOneVariantOfEveryFamilyMatchesTorchvision() throws {
        let manifest = try Fixture.json("architectures/manifest.json") as! [String: Any]
        var families: Set<String> = []
        for c in manifest["cases"] as! [[String: Any]] {
            let variant = c["variant"] as! String
            guard let architecture = Architecture.named(variant) else { XCTFail("\(variant) is not a zoo architecture"); continue }
            families.insert(architecture.family)
            let seed = UInt64(c["seed"] as! Int)
            let shape = c["input_shape"] as! [Int]
            let options = BuildOptions(transformInput: (c["options"] as? [String: Any])?["transform_input"] as? Bool)
            let generator = WeightGenerator(seed: seed)
            let model = try Model.bind(tensors: generator.stateDict(architecture), architecture: architecture, options: options,
                                       inputSize: shape[2])
            let input = generator.input(shape: shape)
            var arrays: [String: Tensor] = [:]
            for (name, tensor) in try NumPyArchive.read(path: Fixture.path("architectures/\(variant).npz")) { arrays[name] = tensor }

            let layers = c["layers"] as! Int
            if layers > 0 {
                let executor = try Executor(graph: model.graph, options: .init(threads: 2, fuse: false))
                var captured: [String: Tensor] = [:]
                for (node, value) in try executor.runCapturingEveryNode(input) { captured[node] = value }
                var checked = 0
                for name in arrays.keys.sorted() where name != "logits" && !name.hasSuffix(".index") && !name.hasSuffix(".max") {
                    guard let value = captured[name] else { XCTFail("\(variant): no node '\(name)' (torch's module path)"); continue }
                    let values = value.floats()
                    let expected = arrays[name]!.floats()
                    let bound = 1e-4 * Double(arrays[name + ".max"]!.floats()[0])
                    let worst = zip(arrays[name + ".index"]!.integers(), expected).map { abs(Double(values[$0]) - Double($1)) }.max() ?? 0
                    XCTAssertLessThanOrEqual(worst, bound, "\(variant) layer \(name)")
                    checked += 1
                }
                XCTAssertEqual(checked, layers, "\(variant): every recorded layer checked")
                print("parity \(variant): \(checked) layers within 1e-4 · max|layer|")
            }
            let output = try Executor(graph: model.graph, options: .init(threads: 2)).run(input)
            let report = ParityReport(name: "logits", value: output[model.graph.outputs[0]]!, reference: arrays["logits"]!)
            assertParity(report, "\(variant) [\(shape.map(String.init).joined(separator: ", "))]")
            XCTAssertEqual(report.top5Agreement, report.rows, "\(variant): identical top-5 in every row")
        }
        // alexnet-paper is not torchvision's: ParityTests checks it against its reduced PyTorch twin.
        XCTAssertEqual(families, Set(Architecture.families.map(\.name)).subtracting(["alexnet-paper"]), "one variant of every family")
    }
}
