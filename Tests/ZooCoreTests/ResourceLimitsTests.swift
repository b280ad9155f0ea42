import Foundation
import XCTest
import ZooCore

/// `ResourceLimits`: the override syntax, its errors, the one-line messages, and the .npy reader's
/// budgets.
final class ResourceLimitsTests: XCTestCase {
    func testEveryLimitHasAUniqueNameAndField() {
        let all = ResourceLimits.all
        XCTAssertEqual(Set(all.map(\.name)).count, all.count)
        XCTAssertEqual(Set(all.map { $0.keyPath as AnyKeyPath }).count, all.count)
        // Every Int field of the struct is a named limit.
        let fields = Mirror(reflecting: ResourceLimits.standard).children.compactMap(\.label)
        XCTAssertEqual(Set(fields), Set(all.map(\.name)))
        for limit in all { XCTAssertTrue(limit.allowed.contains(ResourceLimits.standard[keyPath: limit.keyPath]), limit.name) }
    }

    func testOverrideSyntax() throws {
        let limits = try ResourceLimits.parse(" maxInflatedBytes=8G, maxpickledepth = 2000,,maxTensorRank=3,maxPickleBytes=512k,maxTensorBytes=1T,maxKeyPathBytes=7M ")
        XCTAssertEqual(limits.maxInflatedBytes, 8 << 30)
        XCTAssertEqual(limits.maxPickleDepth, 2000)
        XCTAssertEqual(limits.maxTensorRank, 3)
        XCTAssertEqual(limits.maxPickleBytes, 512 << 10)
        XCTAssertEqual(limits.maxTensorBytes, 1 << 40)
        XCTAssertEqual(limits.maxKeyPathBytes, 7 << 20)
        XCTAssertEqual(limits.maxPickleValues, ResourceLimits.standard.maxPickleValues, "untouched limits keep their defaults")
        XCTAssertEqual(try ResourceLimits.parse(""), .standard)
        // Applied over a base other than the defaults.
        var base = ResourceLimits.standard
        base.maxPickleMemo = 5
        XCTAssertEqual(try ResourceLimits.parse("maxPickleStack=9", over: base).maxPickleMemo, 5)
    }

    func testMalformedOverridesAreClearErrors() {
        func problem(_ text: String) -> String? {
            do {
                _ = try ResourceLimits.parse(text)
                return nil
            } catch {
                return error.description
            }
        }
        XCTAssertEqual(problem("maxFoo=1")?.hasPrefix("ZOO_LIMITS: 'maxFoo' is not a limit (limits: maxPickleBytes, maxPickleStack, "), true)
        XCTAssertEqual(problem("maxPickleDepth"), "ZOO_LIMITS: 'maxPickleDepth' is not name=value")
        XCTAssertEqual(problem("maxPickleDepth=lots"), "ZOO_LIMITS: maxPickleDepth=lots is not a number (digits with an optional K, M, G or T suffix)")
        XCTAssertEqual(problem("maxPickleDepth=-1"), "ZOO_LIMITS: maxPickleDepth=-1 is not a number (digits with an optional K, M, G or T suffix)")
        XCTAssertEqual(problem("maxInflatedBytes=99999999999T"), "ZOO_LIMITS: maxInflatedBytes=99999999999T is not a number (digits with an optional K, M, G or T suffix)")
        XCTAssertEqual(problem("maxPickleDepth=20000"), "ZOO_LIMITS: maxPickleDepth=20000 must be between 1 and 10000 (zoo's pickler recurses once per level)")
        XCTAssertEqual(problem("maxONNXNesting=5000"), "ZOO_LIMITS: maxONNXNesting=5000 must be between 1 and 1000 (protobuf-c unpacks recursively)")
        XCTAssertEqual(problem("maxPickleValues=0"), "ZOO_LIMITS: maxPickleValues=0 must be at least 1")
        XCTAssertEqual(problem("maxTensorRank=3,MAXTENSORRANK=4"), "ZOO_LIMITS: maxTensorRank is given twice")
    }

    func testMessagesNameTheLimitItsValueAndTheOverride() {
        var limits = ResourceLimits.standard
        XCTAssertEqual(LimitExceeded(\.maxInflatedBytes, of: limits, "inflating 3.1 GiB", needed: 3_328_599_654).description,
                       "inflating 3.1 GiB exceeds limit maxInflatedBytes (4 GiB; raise with ZOO_LIMITS=maxInflatedBytes=4G)")
        XCTAssertEqual(LimitExceeded(\.maxPickleMemo, of: limits, "a memo of 10000001 entries").description,
                       "a memo of 10000001 entries exceeds limit maxPickleMemo (10000000; raise with ZOO_LIMITS=maxPickleMemo=<n>)")
        XCTAssertEqual(LimitExceeded(\.maxSafetensorsHeaderBytes, of: limits, "a header of 100000001 bytes", needed: 100_000_001).description,
                       "a header of 100000001 bytes exceeds limit maxSafetensorsHeaderBytes (100000000 bytes, 95.4 MiB; raise with ZOO_LIMITS=maxSafetensorsHeaderBytes=96M)")
        XCTAssertEqual(LimitExceeded(\.maxONNXExpansion, of: limits, "x", needed: 124).description,
                       "x exceeds limit maxONNXExpansion (8×; raise with ZOO_LIMITS=maxONNXExpansion=124)")
        limits.maxPickleBytes = 100
        XCTAssertEqual(LimitExceeded(\.maxPickleBytes, of: limits, "a pickle of 180 bytes", needed: 180).description,
                       "a pickle of 180 bytes exceeds limit maxPickleBytes (100 bytes; raise with ZOO_LIMITS=maxPickleBytes=180)")
        XCTAssertEqual(ResourceLimits.bytesText(3 << 29), "1.5 GiB")
        XCTAssertEqual(ResourceLimits.bytesText(1023), "1023 bytes")
    }

    func testViewsBeyondTheirStorageAreBounded() throws {
        let storage = Storage(copying: [UInt8](repeating: 0, count: 8))
        var limits = ResourceLimits.standard
        limits.maxTensorBytes = 1000
        // Within its storage: never bounded.
        XCTAssertNoThrow(try limits.checkDenseSize(try Tensor(dtype: .f32, shape: [2], storage: storage)))
        // Expanded: 1000 bytes dense is fine, 1004 is not.
        XCTAssertNoThrow(try limits.checkDenseSize(try Tensor(dtype: .f32, shape: [250], strides: [0], offset: 0, storage: storage)))
        let wide = try Tensor(dtype: .f32, shape: [251], strides: [0], offset: 0, storage: storage)
        XCTAssertThrowsError(try limits.checkDenseSize(wide)) { error in
            XCTAssertEqual("\(error)", "a view of shape [251] (1004 bytes when dense) over 8 bytes of storage exceeds limit maxTensorBytes (1000 bytes; raise with ZOO_LIMITS=maxTensorBytes=1004)")
        }
        XCTAssertThrowsError(try limits.checkRank(65)) { error in
            XCTAssertEqual("\(error)", "a tensor of rank 65 exceeds limit maxTensorRank (64; raise with ZOO_LIMITS=maxTensorRank=65)")
        }
    }

    // MARK: .npy

    private func npy(header: String, major: UInt8 = 1, data: [UInt8] = []) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-limits-\(UUID().uuidString).npy").path
        let text = Array(header.utf8)
        let length = major == 1 ? withUnsafeBytes(of: UInt16(text.count).littleEndian, Array.init)
            : withUnsafeBytes(of: UInt32(text.count).littleEndian, Array.init)
        try Data([0x93] + Array("NUMPY".utf8) + [major, 0] + length + text + data).write(to: URL(fileURLWithPath: path))
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    private func npyError(_ path: String, limits: ResourceLimits = .standard) -> String? {
        do {
            _ = try NumPy.read(path: path, limits: limits)
            return nil
        } catch {
            return error.description
        }
    }

    func testNpyHeaderAndRankAreBounded() throws {
        // A version 2 header may declare 4 GiB; numpy refuses more than 10000 bytes by default, as zoo does.
        let padded = "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }" + String(repeating: " ", count: 20_000) + "\n"
        let big = try npy(header: padded, major: 2, data: [0, 0, 0x80, 0x3F])
        XCTAssertEqual(npyError(big), big + ": a header of 20058 bytes exceeds limit maxNpyHeaderBytes (10000 bytes, 9.8 KiB; raise with ZOO_LIMITS=maxNpyHeaderBytes=20K)")
        var raised = ResourceLimits.standard
        raised.maxNpyHeaderBytes = 1 << 20
        XCTAssertEqual(try NumPy.read(path: big, limits: raised).floats(), [1])

        let dims = Array(repeating: "1", count: 65).joined(separator: ", ")
        let deep = try npy(header: "{'descr': '<f4', 'fortran_order': False, 'shape': (\(dims)), }\n", data: [0, 0, 0x80, 0x3F])
        XCTAssertEqual(npyError(deep), deep + ": an array of rank 65 exceeds limit maxTensorRank (64; raise with ZOO_LIMITS=maxTensorRank=65)")
    }

    func testNpyWriteBoundsExpandedViews() throws {
        let storage = Storage(copying: [Float](repeating: 1, count: 4).withUnsafeBytes(Array.init))
        let huge = try Tensor(dtype: .f32, shape: [1 << 40, 4], strides: [0, 1], offset: 0, storage: storage)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-limits-\(UUID().uuidString).npy").path
        XCTAssertThrowsError(try NumPy.write(huge, to: path)) { error in
            XCTAssertEqual("\(error)", path + ": a view of shape [1099511627776, 4] (16 TiB when dense) over 16 bytes of storage exceeds limit maxTensorBytes (4 GiB; raise with ZOO_LIMITS=maxTensorBytes=16T)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path))
    }
}
