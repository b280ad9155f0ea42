import Foundation
import XCTest
@testable import TorchFormat
import ZooCore

/// The writer against torch.save's own files: reading a torch.save output and writing it back
/// under the same basename must give the same bytes.
final class WriterTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-writer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    private func rewrite(_ name: String) throws -> (original: Checkpoint, written: Checkpoint, path: String) {
        let original = try Checkpoint.load(path: Fixture.torch(name))
        let output = directory.appendingPathComponent(name).path
        try Checkpoint.save(original.root, to: output)
        return (original, try Checkpoint.load(path: output), output)
    }

    func testRewritingTorchSaveOutputIsByteIdentical() throws {
        for name in ["dtypes.pth", "views.pth", "alexnet_small.pth", "nested.pth", "shared.pth", "nested_module.pth",
                     "ambiguous.pth", "fp16_model.pth"] {
            let (_, _, path) = try rewrite(name)
            let ours = try Data(contentsOf: URL(fileURLWithPath: path))
            let torch = try Data(contentsOf: URL(fileURLWithPath: Fixture.torch(name)))
            XCTAssertEqual(ours.count, torch.count, name)
            if let first = zip(ours, torch).enumerated().first(where: { $0.element.0 != $0.element.1 }) {
                XCTFail("\(name): first difference from torch.save at byte \(first.offset)")
            }
        }
    }

    /// Other formats and byte orders come out as little-endian zip checkpoints with equal values.
    func testLegacyTarAndBigEndianConvertWithEqualValues() throws {
        for name in ["legacy.pth", "tar.pth", "alexnet_small_legacy.pth", "alexnet_small_tar.pth", "bigendian.pth",
                     "alexnet_small_deflated.pth"] {
            let (original, written, _) = try rewrite(name)
            XCTAssertEqual(written.format, .zip, name)
            XCTAssertEqual(written.byteOrder, .little, name)
            XCTAssertEqual(written.tensors.map(\.path), original.tensors.map(\.path), name)
            for (a, b) in zip(original.tensors, written.tensors) {
                XCTAssertEqual(a.tensor.tensor.shape, b.tensor.tensor.shape, "\(name) \(a.path)")
                XCTAssertEqual(a.tensor.tensor.strides, b.tensor.tensor.strides, "\(name) \(a.path)")
                XCTAssertEqual(a.tensor.tensor.dtype, b.tensor.tensor.dtype, "\(name) \(a.path)")
                let equal = a.tensor.tensor.withContiguousBytes { x in b.tensor.tensor.withContiguousBytes { y in x.elementsEqual(y) } }
                XCTAssertTrue(equal, "\(name) \(a.path) changed value")
            }
        }
    }

    func testArchiveNameFollowsTorch() {
        XCTAssertEqual(Checkpoint.archiveName(for: "/a/b/alexnet-owt-7be5be79.pth"), "alexnet-owt-7be5be79")
        XCTAssertEqual(Checkpoint.archiveName(for: "model.tar.pth"), "model.tar")
        XCTAssertEqual(Checkpoint.archiveName(for: "weights"), "weights")
    }

    /// A failed save leaves an existing destination as it was and no temporary file behind.
    func testFailedSaveKeepsTheExistingFile() throws {
        let checkpoint = try Checkpoint.load(path: Fixture.torch("dtypes.pth"))
        // A destination that is a non-empty directory cannot be replaced by rename.
        let destination = directory.appendingPathComponent("taken.pth")
        try FileManager.default.createDirectory(at: destination, withIntermediateDirectories: false)
        try Data("keep".utf8).write(to: destination.appendingPathComponent("inside"))
        XCTAssertThrowsError(try Checkpoint.save(checkpoint.root, to: destination.path)) { error in
            XCTAssertTrue("\(error)".contains("taken.pth"), "\(error)")
        }
        XCTAssertEqual(try Data(contentsOf: destination.appendingPathComponent("inside")), Data("keep".utf8))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path), ["taken.pth"])
    }
}
