import Foundation
import XCTest
@testable import TorchFormat
import ZooCore

/// Every allocation a checkpoint sizes is checked against the file or a `ResourceLimits` limit
/// before it is made; each hostile file here is a few bytes to a megabyte, and each error names
/// its limit, the limit's value and the override that raises it.
final class CheckpointResourceLimitTests: XCTestCase {
    private typealias P = Pickle

    private func zip(_ pickle: [UInt8], _ records: [(String, [UInt8])] = []) throws -> String {
        let path = try writeZipCheckpoint(pickle, records: records)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    private func options(_ overrides: String) throws -> Checkpoint.Options {
        Checkpoint.Options(limits: try ResourceLimits.parse(overrides))
    }

    private let four = P.floats([1, 2, 3, 4])

    // MARK: Pickle

    func testPickleLimitsNameThemselves() throws {
        func refusal(_ pickle: [UInt8], _ overrides: String = "") throws -> String? {
            loadError(try zip(pickle), options: try options(overrides)).map { "\($0.reason)" }
        }
        let duplicates = P.proto + P.none + [UInt8](repeating: 0x32, count: 200) + P.stop  // DUP × 200
        XCTAssertEqual(try refusal(duplicates, "maxPickleStack=100"),
                       "a pickle stack of 101 entries exceeds limit maxPickleStack (100; raise with ZOO_LIMITS=maxPickleStack=<n>)")
        let puts = P.proto + P.none + (0 ..< 20).flatMap { [0x71, UInt8($0)] } + P.stop  // BINPUT 0…19
        XCTAssertEqual(try refusal(puts, "maxPickleMemo=10"),
                       "a memo of 11 entries exceeds limit maxPickleMemo (10; raise with ZOO_LIMITS=maxPickleMemo=<n>)")
        let marks = P.proto + [UInt8](repeating: 0x28, count: 20) + P.stop
        XCTAssertEqual(try refusal(marks, "maxPickleMarks=10"),
                       "a pickle with 11 open MARKs exceeds limit maxPickleMarks (10; raise with ZOO_LIMITS=maxPickleMarks=<n>)")

        // Declared sizes are checked before anything is allocated (or the file is read that far).
        let text = P.proto + [0x58, 0xFF, 0xFF, 0xFF, 0xFF] + P.stop  // BINUNICODE of 4 GiB - 1
        XCTAssertEqual(try refusal(text),
                       "a string of 4294967295 bytes exceeds limit maxPickleStringBytes (1 GiB; raise with ZOO_LIMITS=maxPickleStringBytes=4G)")
        let bytes = P.proto + [0x8E] + withUnsafeBytes(of: UInt64(1 << 62).littleEndian, Array.init) + P.stop  // BINBYTES8
        XCTAssertEqual(try refusal(bytes),
                       "a string of 4611686018427387904 bytes exceeds limit maxPickleStringBytes (1 GiB; raise with ZOO_LIMITS=maxPickleStringBytes=4194304T)")
        // Under the limit, a length is still checked against the bytes that are there.
        let short = P.proto + [0x58, 0x40, 0x42, 0x0F, 0x00] + P.stop  // 1 000 000 bytes declared
        XCTAssertEqual(try refusal(short), "file is truncated: pickle declares 1000000 bytes but 1 remain")
        let long = P.proto + [0x8B] + withUnsafeBytes(of: UInt32(5000).littleEndian, Array.init) + P.stop  // LONG4
        XCTAssertEqual(try refusal(long),
                       "a 5000-byte integer exceeds limit maxPickleLongBytes (4 KiB; raise with ZOO_LIMITS=maxPickleLongBytes=5K)")
        let line = P.proto + [0x63] + [UInt8](repeating: 0x61, count: 5000) + [0x0A] + P.stop  // GLOBAL
        XCTAssertEqual(try refusal(line),
                       "a text argument longer than 4096 bytes exceeds limit maxPickleLineBytes (4 KiB; raise with ZOO_LIMITS=maxPickleLineBytes=<n>)")
    }

    /// One 1 MB key above a list of 20 000 references to a tensor: building every tensor's key path
    /// would copy the key 20 000 times (20 GB). The walk counts the bytes before building each path.
    /// (Values that lead to no tensor get no path at all: the same list of None loads at once.)
    func testKeyPathsAreBudgetedBeforeTheyAreBuilt() throws {
        let key = String(repeating: "k", count: 1 << 20)
        func pickle(references: Int) -> [UInt8] {
            P.proto + [0x7D] + P.string(key) + [0x5D, 0x28] + P.tensor("0") + [0x71, 0xF0]
                + Array([[UInt8]](repeating: [0x68, 0xF0], count: references - 1).joined()) + [0x65, 0x73] + P.stop
        }
        let records = [("0", P.floats([1, 2, 3, 4]))]
        let start = ContinuousClock.now
        let failure = loadError(try zip(pickle(references: 20_000), records))
        XCTAssertEqual(failure.map { "\($0.reason)" },
                       "key paths totalling more than 1 GiB (one per reference to a value; this one is 1.0 MiB) exceeds limit maxKeyPathBytes (1 GiB; raise with ZOO_LIMITS=maxKeyPathBytes=<n>)")
        XCTAssertLessThan(ContinuousClock.now - start, .seconds(10))
        let nones = P.proto + [0x7D] + P.string(key) + [0x5D, 0x28] + [UInt8](repeating: 0x4E, count: 20_000) + [0x65, 0x73] + P.stop
        XCTAssertNil(loadError(try zip(nones)))
        // 100 references take 100 MB of paths: over a lowered limit, within the default.
        let hundred = pickle(references: 100)
        XCTAssertNil(loadError(try zip(hundred, records)))
        XCTAssertEqual(loadError(try zip(hundred, records), options: try options("maxKeyPathBytes=64M")).map { "\($0.reason)" },
                       "key paths totalling more than 64 MiB (one per reference to a value; this one is 1.0 MiB) exceeds limit maxKeyPathBytes (64 MiB; raise with ZOO_LIMITS=maxKeyPathBytes=<n>)")
    }

    // MARK: Containers

    /// A record declaring 100 MB inflated from 100 KB (within deflate's 1032:1) is refused by the
    /// inflation budget before its memory is allocated; under the default budget it is allocated
    /// and found to be corrupt.
    func testInflatedBytesAreBudgetedBeforeInflating() throws {
        let numel = 25_000_000
        let pickle = P.dict([("w", P.tensor("0", size: [numel], numel: numel))])
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: try zip(pickle, [("0", [UInt8](repeating: 0, count: 100_000))]))))
        let name = Array("archive/data/0".utf8)
        func matches(_ at: Int, _ nameOffset: Int, _ signature: [UInt8]) -> Bool {
            Array(bytes[at ..< at + 4]) == signature && bytes.count >= at + nameOffset + name.count
                && Array(bytes[(at + nameOffset) ..< (at + nameOffset + name.count)]) == name
        }
        let local = try XCTUnwrap((0 ..< bytes.count - 4).first { matches($0, 30, [0x50, 0x4B, 0x03, 0x04]) })
        let central = try XCTUnwrap((0 ..< bytes.count - 4).first { matches($0, 46, [0x50, 0x4B, 0x01, 0x02]) })
        bytes[local + 8] = 8  // method: deflated
        bytes[central + 10] = 8
        bytes.replaceSubrange((central + 24) ..< (central + 28), with: withUnsafeBytes(of: UInt32(4 * numel).littleEndian, Array.init))
        let path = FileManager.scratchPath("bomb.pth")
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }

        let refused = try XCTUnwrap(loadError(path, options: try options("maxInflatedBytes=64M")))
        XCTAssertEqual(refused.record, "archive/data/0")
        XCTAssertEqual("\(refused.reason)", "inflating 95.4 MiB (deflated records total 95.4 MiB) exceeds limit maxInflatedBytes (64 MiB; raise with ZOO_LIMITS=maxInflatedBytes=96M)")
        XCTAssertEqual(loadError(path)?.reason, .zip("deflated data: corrupt deflate stream: invalid stored block lengths"))
    }

    /// A limit lowered through the override syntax makes torch's own files fail with its name.
    func testLoweredLimitsRefuseNormalFixtures() throws {
        let stored = Fixture.torch("alexnet_small.pth")
        XCTAssertNil(loadError(stored))
        let pickle = try ZipArchive(file: try MappedFile(path: stored)).requireEntry("data.pkl").size
        let small = try XCTUnwrap(loadError(stored, options: try options("maxPickleBytes=100")))
        XCTAssertEqual(small.description, stored + ": alexnet_small/data.pkl: a pickle of \(ResourceLimits.bytesText(pickle)) exceeds limit maxPickleBytes (100 bytes; raise with ZOO_LIMITS=maxPickleBytes=\(ResourceLimits.parseText(pickle)))")

        // Deflated records count against maxInflatedBytes: data.pkl and byteorder fit, data/0 does not.
        let deflated = Fixture.torch("alexnet_small_deflated.pth")
        let archive = try ZipArchive(file: try MappedFile(path: deflated))
        let before = try archive.requireEntry("data.pkl").size + archive.requireEntry("byteorder").size
        let first = try archive.requireEntry("data/0").size
        XCTAssertLessThan(before, 2048)
        let tight = try XCTUnwrap(loadError(deflated, options: try options("maxInflatedBytes=2K")))
        XCTAssertEqual(tight.record, "alexnet_small/data/0")
        XCTAssertEqual("\(tight.reason)", "inflating \(ResourceLimits.bytesText(first)) (deflated records total \(ResourceLimits.bytesText(before + first))) exceeds limit maxInflatedBytes (2 KiB; raise with ZOO_LIMITS=maxInflatedBytes=\(ResourceLimits.parseText(before + first)))")

        // Every tensor format checks ranks.
        for name in ["alexnet_small.pth", "alexnet_small_legacy.pth", "alexnet_small_tar.pth"] {
            let failure = try XCTUnwrap(loadError(Fixture.torch(name), options: try options("maxTensorRank=1")), name)
            XCTAssertTrue("\(failure.reason)".hasSuffix("of rank 4 exceeds limit maxTensorRank (1; raise with ZOO_LIMITS=maxTensorRank=4)"), "\(failure)")
        }
    }

    // MARK: Tensors

    func testRanksAreBounded() throws {
        let ones = [Int](repeating: 1, count: 65)
        let deep = loadError(try zip(P.dict([("w", P.tensor("0", size: ones, stride: ones))]), [("0", four)]))
        XCTAssertEqual(deep?.path, "w")
        XCTAssertEqual(deep.map { "\($0.reason)" }, "a tensor of rank 65 exceeds limit maxTensorRank (64; raise with ZOO_LIMITS=maxTensorRank=65)")
    }

    /// An expanded view of 8 GiB over 16 bytes loads as a view (torch loads it, and zoo's torch
    /// writer keeps it one); materializing it is what `maxTensorBytes` bounds.
    func testExpandedViewsLoadAndAreBoundedWhenMaterialized() throws {
        let checkpoint = try Checkpoint.load(path: try zip(P.dict([("ids", P.tensor("0", size: [1 << 29, 4], stride: [0, 1]))]), [("0", four)]))
        let view = try XCTUnwrap(checkpoint.tensors.first?.tensor.tensor)
        XCTAssertThrowsError(try ResourceLimits.standard.checkDenseSize(view)) { error in
            XCTAssertEqual("\(error)", "a view of shape [536870912, 4] (8 GiB when dense) over 16 bytes of storage exceeds limit maxTensorBytes (4 GiB; raise with ZOO_LIMITS=maxTensorBytes=8G)")
        }
        XCTAssertNoThrow(try ResourceLimits.standard.checkDenseSize(try Tensor(dtype: .f32, shape: [1000, 4], strides: [0, 1], offset: 0, storage: view.storage)))
    }
}

extension ResourceLimits {
    /// What `LimitExceeded` suggests for `needed` bytes (the test's copy of its rounding).
    static func parseText(_ needed: Int) -> String {
        for (suffix, shift) in [("T", 40), ("G", 30), ("M", 20), ("K", 10)] where needed >= 1 << shift && needed > 1024 {
            return "\((needed + (1 << shift) - 1) >> shift)\(suffix)"
        }
        return "\(needed)"
    }
}
