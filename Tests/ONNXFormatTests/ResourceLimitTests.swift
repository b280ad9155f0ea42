#if canImport(Glibc)
import Glibc
#endif
import CONNX
import CProtobufC
import Foundation
@testable import ONNXFormat
import XCTest
import ZooCore
import ZooOps

/// The ONNX reader's resource budgets (`ResourceLimits`): nesting and protobuf-c's allocations are
/// checked from the wire bytes before anything is unpacked; ranks and folded constants after.
/// Each hostile file is a few bytes or megabytes; each error names its limit and how to raise it.
final class ONNXResourceLimitTests: XCTestCase {
    private static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/onnx")
    private var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-onnx-limits-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(at: folder) }

    private func write(_ bytes: [UInt8]) throws -> String {
        let path = folder.appendingPathComponent("m.onnx").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// The error `ONNX.load` throws for `path` under `limits`.
    private func loadError(_ path: String, limits: ResourceLimits = .standard) -> String? {
        do {
            _ = try ONNX.load(path: path, limits: limits)
            return nil
        } catch {
            return error.description
        }
    }

    /// A tag and length prefix for a length-delimited field of `length` bytes.
    private static func header(_ field: Int, _ length: Int) -> [UInt8] {
        var bytes: [UInt8] = [UInt8(field << 3 | 2)]
        var v = length
        while v >= 0x80 { bytes.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        bytes.append(UInt8(v))
        return bytes
    }

    /// A ModelProto whose graph holds a node whose attribute holds a graph … `levels` times:
    /// built outside-in from the lengths, since wrapping 100 000 times would copy quadratically.
    private static func nestedModel(levels: Int) -> [UInt8] {
        // From the inside out: attribute (5) in a node, node (1) in a graph, graph (6) in an attribute.
        var headers: [[UInt8]] = []
        var length = 0
        for _ in 0 ..< levels {
            for field in [5, 1, 6] {
                let h = header(field, length)
                headers.append(h)
                length += h.count
            }
        }
        for field in [5, 1] {  // the outermost attribute in a node in the model's graph
            let h = header(field, length)
            headers.append(h)
            length += h.count
        }
        var model = WireWriter()
        model.int(1, 8)  // ir_version
        model.bytes += header(7, length)
        for h in headers.reversed() { model.bytes += h }
        return model.bytes
    }

    /// A ModelProto whose one node holds `count` empty attributes: 2 bytes each on the wire, a
    /// 248-byte struct each once unpacked.
    private static func emptyAttributes(_ count: Int) -> [UInt8] {
        var node: [UInt8] = []
        node.reserveCapacity(2 * count)
        for _ in 0 ..< count { node += [0x2A, 0x00] }
        var graph = WireWriter()
        graph.bytes(1, node)
        var model = WireWriter()
        model.int(1, 8)
        model.bytes(7, graph.bytes)
        return model.bytes
    }

    /// 100 000 nested graphs in 1.2 MB overflowed protobuf-c's stack (a crash, not an error).
    func testDeepNestingIsRefusedBeforeProtobufCRecurses() throws {
        let path = try write(Self.nestedModel(levels: 100_000))
        let error = try XCTUnwrap(loadError(path))
        XCTAssertTrue(error.hasPrefix(path + ": protobuf messages nested more than 100 levels deep (at byte "), error)
        XCTAssertTrue(error.hasSuffix(" exceeds limit maxONNXNesting (100; raise with ZOO_LIMITS=maxONNXNesting=<n>)"), error)
        // The same for the initializers-only entry point and a rewrite.
        XCTAssertThrowsError(try ONNX.initializers(path: path, limits: .standard))
        XCTAssertThrowsError(try ONNX.rewrite(path: path, to: folder.appendingPathComponent("out.onnx").path, limits: .standard))

        // 30 levels (92 messages deep) are within the limit: refused later, for what they hold.
        let shallow = try write(Self.nestedModel(levels: 30))
        XCTAssertFalse(loadError(shallow)?.contains("maxONNXNesting") ?? true)
    }

    /// 1 M empty attributes: 2 MB of file, ~330 MB unpacked.
    func testUnpackedSizeIsCheckedAgainstTheFileSize() throws {
        let bytes = Self.emptyAttributes(1_000_000)
        let path = try write(bytes)
        let error = try XCTUnwrap(loadError(path))
        XCTAssertTrue(error.hasPrefix(path + ": unpacking would allocate about "), error)
        XCTAssertTrue(error.contains(" for 1.9 MiB of protobuf ("), error)
        XCTAssertTrue(error.contains("×; the limit allows 8× + 64 MiB) exceeds limit maxONNXExpansion (8×; raise with ZOO_LIMITS=maxONNXExpansion="), error)
        // A TensorProto file is checked the same way: 1 M empty dims entries would be fine (8 bytes
        // each), but 1 M empty external_data entries (a 40-byte struct each) are not.
        var tensor = WireWriter()
        for _ in 0 ..< 1_000_000 { tensor.bytes(13, []) }
        let tensorPath = folder.appendingPathComponent("t.pb").path
        try Data(tensor.bytes).write(to: URL(fileURLWithPath: tensorPath))
        XCTAssertThrowsError(try ONNX.tensor(fromTensorProtoFile: tensorPath, limits: .standard)) { error in
            XCTAssertTrue("\(error)".contains("exceeds limit maxONNXExpansion"), "\(error)")
        }
    }

    /// The estimate is an upper bound on what protobuf-c really allocates at its peak, and not a
    /// loose one: measured exactly with a counting allocator.
    func testEstimateBoundsProtobufCsAllocations() throws {
        var cases: [(String, [UInt8])] = [("200k empty attributes", Self.emptyAttributes(200_000))]
        for name in ["alexnet_small_ts_opset13.onnx", "alexnet_paper_small_opset9.onnx", "alexnet_small_dynamo_opset18.onnx"] {
            cases.append((name, [UInt8](try Data(contentsOf: Self.fixtures.appendingPathComponent(name)))))
        }
        for (name, bytes) in cases {
            let estimate = bytes.withUnsafeBytes { ProtoBudget.estimateModel($0, maxNesting: 100) }
            guard case let .bytes(estimated) = estimate else { return XCTFail("\(name): \(estimate)") }
            let peak = try XCTUnwrap(Self.peakAllocation(unpacking: bytes), name)
            print("\(name): \(bytes.count) bytes, protobuf-c's peak \(peak), estimated \(estimated)")
            XCTAssertGreaterThanOrEqual(estimated, peak, "\(name): estimated \(estimated), protobuf-c's peak \(peak)")
            // The estimate adds 16 bytes of allocator overhead per allocation and rounds the scratch up.
            XCTAssertLessThanOrEqual(estimated, peak + peak / 2 + 4096, "\(name): estimated \(estimated), protobuf-c's peak \(peak)")
        }
    }

    /// The most memory protobuf-c holds at once while unpacking `bytes` as a ModelProto (requested
    /// sizes, without the allocator's own overhead); nil when it does not unpack.
    private static func peakAllocation(unpacking bytes: [UInt8]) -> Int? {
        final class Counter {
            var live = 0, peak = 0
            var sizes: [UnsafeMutableRawPointer: Int] = [:]
        }
        let counter = Counter()
        var allocator = ProtobufCAllocator(
            alloc: { data, size in
                let counter = Unmanaged<Counter>.fromOpaque(data!).takeUnretainedValue()
                let pointer = malloc(size)!
                counter.sizes[pointer] = size
                counter.live += size
                counter.peak = max(counter.peak, counter.live)
                return pointer
            },
            free: { data, pointer in
                guard let pointer else { return }
                let counter = Unmanaged<Counter>.fromOpaque(data!).takeUnretainedValue()
                counter.live -= counter.sizes.removeValue(forKey: pointer) ?? 0
                Glibc.free(pointer)
            },
            allocator_data: Unmanaged.passUnretained(counter).toOpaque())
        return withExtendedLifetime(counter) {
            bytes.withUnsafeBufferPointer { buffer -> Int? in
                guard let model = onnx__model_proto__unpack(&allocator, buffer.count, buffer.baseAddress) else { return nil }
                onnx__model_proto__free_unpacked(model, &allocator)
                return counter.peak
            }
        }
    }

    /// A lowered limit makes a normal model fail with the limit's name (the override path).
    func testLoweredLimitsRefuseANormalModel() throws {
        let path = Self.fixtures.appendingPathComponent("alexnet_small_ts_opset13.onnx").path
        XCTAssertNil(loadError(path))
        let nesting = try ResourceLimits.parse("maxONNXNesting=3")
        // ModelProto → GraphProto → ValueInfoProto → TypeProto → Tensor → TensorShapeProto → Dimension.
        let deep = try XCTUnwrap(loadError(path, limits: nesting))
        XCTAssertTrue(deep.hasPrefix(path + ": protobuf messages nested more than 3 levels deep (at byte "), deep)
        XCTAssertTrue(deep.hasSuffix(" exceeds limit maxONNXNesting (3; raise with ZOO_LIMITS=maxONNXNesting=<n>)"), deep)
        let rank = try ResourceLimits.parse("maxTensorRank=1")
        let ranked = try XCTUnwrap(loadError(path, limits: rank))
        XCTAssertTrue(ranked.hasSuffix(": a tensor of rank 4 exceeds limit maxTensorRank (1; raise with ZOO_LIMITS=maxTensorRank=4)"), ranked)
    }

    func testRanksAreBounded() throws {
        var graph = WireWriter()
        graph.message(5) { t in
            for _ in 0 ..< 65 { t.int(1, 1) }
            t.int(2, 1)
            t.bytes(9, [0, 0, 0x80, 0x3F])
            t.string(8, "w")
        }
        var model = WireWriter()
        model.int(1, 8)
        model.bytes(7, graph.bytes)
        model.message(8) { o in o.string(1, ""); o.int(2, 17) }
        let path = try write(model.bytes)
        XCTAssertEqual(loadError(path), path + ": tensor 'w': a tensor of rank 65 exceeds limit maxTensorRank (64; raise with ZOO_LIMITS=maxTensorRank=65)")
    }
}
