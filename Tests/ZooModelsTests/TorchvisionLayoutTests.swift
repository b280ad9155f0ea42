import Foundation
import XCTest
import ZooCore
import ZooModels
import ZooOps

/// Every torchvision classification layout as torchvision itself writes it
/// (Fixtures/torchvision/keys.json.gz, made by Fixtures/make_torchvision_keys.py with torchvision
/// 0.24.1: the 80 models plus the layouts of real weight files): zoo detects each from keys and
/// shapes alone, names the variant, records the same keys, shapes and dtypes in the same order,
/// counts the same parameters, and builds its graph; each variant's evaluation transform is its
/// default weights'.
final class TorchvisionLayoutTests: XCTestCase {
    struct Layout {
        let name: String
        let model: String
        let entries: [(key: String, shape: [Int], dtype: String)]
        let parameters: Int
        let defaultWeights: [String: Any]
    }

    static func layouts() throws -> [Layout] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Fixtures/torchvision/keys.json.gz")
        // gzip, as Debian ships it, inflates the fixture.
        let gunzip = Process()
        gunzip.executableURL = URL(fileURLWithPath: "/bin/gzip")
        gunzip.arguments = ["-dc", url.path]
        let pipe = Pipe()
        gunzip.standardOutput = pipe
        try gunzip.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        gunzip.waitUntilExit()
        let json = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        return (json["models"] as! [[String: Any]]).map { m in
            Layout(name: m["name"] as! String, model: m["model"] as! String,
                   entries: (m["state_dict"] as! [[Any]]).map { ($0[0] as! String, $0[1] as! [Int], $0[2] as! String) },
                   parameters: m["parameters"] as! Int, defaultWeights: m["weights"] as? [String: Any] ?? [:])
        }
    }

    func testEveryTorchvisionLayoutIsDetectedNamedAndBuilt() throws {
        let layouts = try Self.layouts()
        XCTAssertEqual(Set(layouts.map(\.model)).count, 80, "torchvision 0.24's classification models")
        var built = 0
        for layout in layouts {
            var shapes: [String: [Int]] = [:]
            for entry in layout.entries { shapes[entry.key] = entry.shape }
            guard let architecture = Architecture.detect(shapes) else {
                XCTFail("\(layout.name): not detected: \(Architecture.diagnose(shapes, first: layout.entries.first?.key))")
                continue
            }
            XCTAssertEqual(architecture.name, layout.model, layout.name)
            let parameters = architecture.parameters
            XCTAssertEqual(parameters.map(\.name), layout.entries.map(\.key), "\(layout.name): keys in torchvision's order")
            XCTAssertEqual(parameters.map(\.shape), layout.entries.map(\.shape), layout.name)
            XCTAssertEqual(parameters.map { $0.dtype == .i64 ? "int64" : "float32" }, layout.entries.map(\.dtype), layout.name)
            XCTAssertEqual(Architecture.parameterCount(parameters), layout.parameters, layout.name)
            // The graph, over placeholder weights: small ones real (shape arithmetic may fold them), large
            // ones a single element repeated (a stride-0 view), so vit_h_14's 2.5 GB cost nothing.
            let weights = try parameters.map { p -> (name: String, tensor: Tensor) in
                if case .fixed(let value) = p.role { return (p.name, value) }
                let count = p.shape.reduce(1, *)
                let dtype: DType = p.dtype
                if count <= Graph.maxFoldedElements {
                    return (p.name, try Tensor(dtype: dtype, shape: p.shape) { $0.initializeMemory(as: UInt8.self, repeating: 0) })
                }
                let storage = try Storage(byteCount: dtype.itemSize)
                return (p.name, try Tensor(dtype: dtype, shape: p.shape, strides: p.shape.map { _ in 0 }, offset: 0, storage: storage))
            }
            do {
                let graph = try architecture.graph(weights: weights)
                XCTAssertEqual(graph.values[graph.outputs[0]]?.shape, [.symbolic("N"), .fixed(architecture.classes)], layout.name)
                built += 1
            } catch {
                XCTFail("\(layout.name): \(error)")
            }
        }
        XCTAssertEqual(built, layouts.count)
    }

    /// Each named variant's evaluation transform and input size are those of torchvision's default
    /// weights for it (where the default weights have the plain build's layout).
    func testEveryVariantHasItsDefaultWeightsTransform() throws {
        for layout in try Self.layouts() where layout.name == layout.model {
            guard let architecture = Architecture.named(layout.model) else { XCTFail("\(layout.model) is not a named variant"); continue }
            let weights = layout.defaultWeights["transforms"] as? [String: Any] ?? [:]
            guard layout.defaultWeights["num_params"] as? Int == layout.parameters else { continue }
            let t = architecture.transform
            XCTAssertEqual(t.crop, weights["crop_size"] as? Int, layout.name)
            XCTAssertEqual(t.resize, weights["resize_size"] as? Int, layout.name)
            XCTAssertEqual(t.interpolation.rawValue, weights["interpolation"] as? String, layout.name)
            XCTAssertEqual(t.mean, (weights["mean"] as? [Double])?.map(Float.init), layout.name)
            XCTAssertEqual(t.std, (weights["std"] as? [Double])?.map(Float.init), layout.name)
            XCTAssertEqual(architecture.inputSize, t.crop, layout.name)
        }
    }
}
