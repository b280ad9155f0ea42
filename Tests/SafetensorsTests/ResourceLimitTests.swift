import Foundation
import Safetensors
import XCTest
import ZooCore

/// The safetensors reader's budgets: everything a header declares is bounded by the file, except
/// the header's own size (`maxSafetensorsHeaderBytes`, the format's limit) and ranks.
final class SafetensorsResourceLimitTests: XCTestCase {
    private static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/safetensors")

    private func loadError(_ path: String, limits: ResourceLimits = .standard) -> String? {
        do {
            _ = try Safetensors.load(path: path, limits: limits)
            return nil
        } catch {
            return error.description
        }
    }

    func testLoweredHeaderLimitRefusesANormalFile() throws {
        let path = Self.fixtures.appendingPathComponent("alexnet_small.safetensors").path
        XCTAssertNil(loadError(path))
        let header = try Data(contentsOf: URL(fileURLWithPath: path)).prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        XCTAssertEqual(loadError(path, limits: try ResourceLimits.parse("maxSafetensorsHeaderBytes=64")),
                       path + ": byte 0: a header of \(header) bytes exceeds limit maxSafetensorsHeaderBytes (64 bytes; raise with ZOO_LIMITS=maxSafetensorsHeaderBytes=\(header <= 1024 ? "\(header)" : "\((header + 1023) / 1024)K"))")
    }

    func testRanksAreBounded() throws {
        let shape = Array(repeating: "1", count: 65).joined(separator: ",")
        var json = Array("{\"a\":{\"dtype\":\"F32\",\"shape\":[\(shape)],\"data_offsets\":[0,4]}}".utf8)
        json += [UInt8](repeating: 0x20, count: (8 - json.count % 8) % 8)
        let bytes = withUnsafeBytes(of: UInt64(json.count).littleEndian, Array.init) + json + [0, 0, 0x80, 0x3F]
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-st-rank-\(UUID().uuidString).safetensors").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        XCTAssertEqual(loadError(path), path + ": tensor 'a' byte 9: a tensor of rank 65 exceeds limit maxTensorRank (64; raise with ZOO_LIMITS=maxTensorRank=65)")
        var raised = ResourceLimits.standard
        raised.maxTensorRank = 65
        XCTAssertEqual(try Safetensors.load(path: path, limits: raised).tensors.first?.tensor.floats(), [1])
    }

    /// Views are written densely: an expansion whose copy would exceed `maxTensorBytes` is refused
    /// before anything is written (or allocated).
    func testExpandedViewsAreBoundedWhenWritten() throws {
        let storage = Storage(copying: [Float](repeating: 1, count: 4).withUnsafeBytes(Array.init))
        let huge = try Tensor(dtype: .f32, shape: [1 << 40, 4], strides: [0, 1], offset: 0, storage: storage)
        let small = try Tensor(dtype: .f32, shape: [3, 4], strides: [0, 1], offset: 0, storage: storage)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-st-view-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        XCTAssertThrowsError(try Safetensors.save([("small", small), ("huge", huge)], to: path)) { error in
            XCTAssertEqual("\(error)", path + ": tensor 'huge': a view of shape [1099511627776, 4] (16 TiB when dense) over 16 bytes of storage exceeds limit maxTensorBytes (4 GiB; raise with ZOO_LIMITS=maxTensorBytes=16T)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path))
        try Safetensors.save([("small", small)], to: path)
        XCTAssertEqual(try Safetensors.load(path: path)["small"]?.floats(), [Float](repeating: 1, count: 12))
    }
}
