import XCTest
import ZooCore
import ZooModels
import ZooOps

/// Binding state dicts the way torch's load_state_dict(strict=True) accepts them: what old
/// checkpoints lack or name differently is accepted, everything else is refused.
final class BindingTests: XCTestCase {
    private func stateDict(_ name: String) -> [(name: String, tensor: Tensor)] {
        WeightGenerator(seed: 1).stateDict(Architecture.named(name)!)
    }

    /// torchvision's 2017 weight files (resnet50-0676ba61.pth, …) were saved before torch 0.4.1 added
    /// BatchNorm's num_batches_tracked; torch fills it in, so zoo accepts them too.
    func testCheckpointsWithoutNumBatchesTrackedBind() throws {
        let full = stateDict("resnet18")
        let old = full.filter { !$0.name.hasSuffix(".num_batches_tracked") }
        XCTAssertEqual(full.count - old.count, 20)
        let model = try Model.bind(tensors: old)
        XCTAssertEqual(model.architecture.name, "resnet18")
        XCTAssertEqual(model.graph.nodes.map(\.name), try Model.bind(tensors: full).graph.nodes.map(\.name))
    }

    /// torchvision renames DenseNet's pre-0.3 keys (`denselayer1.norm.1.weight`) when it loads them;
    /// files that old have no num_batches_tracked either.
    func testDenseNetLegacyKeyNamesBind() throws {
        let legacy = stateDict("densenet121").filter { !$0.name.hasSuffix("num_batches_tracked") }.map { entry -> (name: String, tensor: Tensor) in
            var name = entry.name
            for part in ["norm", "relu", "conv"] {
                for k in ["1", "2"] { name = name.replacingOccurrences(of: ".\(part)\(k).", with: ".\(part).\(k).") }
            }
            return (name, entry.tensor)
        }
        XCTAssertTrue(legacy.contains { $0.name == "features.denseblock1.denselayer1.norm.1.weight" })
        XCTAssertEqual(try Model.bind(tensors: legacy).architecture.name, "densenet121")
    }

    /// A shape past the resource limits (an expanded view: one stored element claiming 2^40) is
    /// refused before detection sizes anything from it — Swin's index buffers are sized by the
    /// window a file's relative_position_index implies.
    func testShapesPastTheLimitsAreRefusedBeforeDetection() throws {
        var entries = stateDict("swin_t")
        let i = entries.firstIndex { $0.name.hasSuffix("relative_position_index") }!
        let huge = try Tensor(dtype: .i64, shape: [1 << 40], strides: [0], offset: 0, storage: try Storage(byteCount: 8))
        entries[i].tensor = huge
        XCTAssertThrowsError(try Model.bind(tensors: entries)) { error in
            XCTAssertTrue("\(error)".hasPrefix("state dict does not fit any architecture: '\(entries[i].name)': "), "\(error)")
        }
    }

    /// A floating-point buffer where torch has an integer (or the reverse) is refused, naming it.
    func testIntegerBuffersMustBeIntegers() throws {
        var entries = stateDict("resnet18")
        let i = entries.firstIndex { $0.name == "bn1.num_batches_tracked" }!
        entries[i].tensor = Tensor(floats: [0], shape: [])
        XCTAssertThrowsError(try Model.bind(tensors: entries)) { error in
            XCTAssertEqual("\(error)", "state dict does not fit resnet18: 'bn1.num_batches_tracked' is f32, expected an integer type")
        }
    }
}
