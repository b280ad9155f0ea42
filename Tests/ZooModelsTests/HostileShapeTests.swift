import XCTest
import ZooCore
import ZooModels

/// Detection reads widths, depths, heads and windows from a file's shapes and builds a layout from
/// them; a hostile file chooses those shapes. Every family that reads a custom configuration is fed
/// its own layout with one dimension of one early entry changed to 0, 1 or a prime that divides
/// nothing: detection must answer (a custom layout or none) and the diagnosis must be one line — no
/// division by zero, no trap.
final class HostileShapeTests: XCTestCase {
    func testOddShapesNeverTrapDetection() {
        let variants = ["alexnet", "alexnet-paper", "resnet50", "densenet121", "regnet_y_400mf", "mnasnet0_5", "convnext_tiny",
                        "swin_t", "swin_v2_t", "maxvit_t"]
        var cases = 0
        for name in variants {
            let layout = Architecture.named(name)!.parameters
            var shapes: [String: [Int]] = [:]
            for p in layout { shapes[p.name] = p.shape }
            for p in layout.prefix(16) where !p.shape.isEmpty {
                for axis in p.shape.indices.prefix(2) {
                    for value in [0, 1009] {
                        var mutated = shapes
                        mutated[p.name]![axis] = value
                        _ = Architecture.detect(mutated)
                        let line = Architecture.diagnose(mutated, first: layout.first?.name)
                        XCTAssertFalse(line.contains("\n"), "\(name) \(p.name)[\(axis)] = \(value): \(line)")
                        cases += 1
                    }
                }
            }
        }
        XCTAssertGreaterThanOrEqual(cases, 400)
    }

    /// `zoo run` builds MaxViT again for its input's size; at 64×64 the last stages are smaller than a
    /// partition, which is a refusal, not a division by zero.
    func testMaxVitAtATooSmallSizeIsRefused() {
        XCTAssertThrowsError(try Architecture.named("maxvit_t")!.graph(weights: [], inputSize: 64)) { error in
            XCTAssertTrue("\(error)".contains("does not divide into 7×7 partitions"), "\(error)")
        }
    }
}
