import Foundation
import XCTest
@testable import TorchFormat
import ZooCore

/// Hostile and broken checkpoints are refused with an error naming what is wrong and where; nothing
/// is executed. The crafted files come from Fixtures/make_fixtures.py (Fixtures/torch/bad/README.md
/// says what each holds); truncations and corruptions are made here from valid fixtures.
final class BadInputTests: XCTestCase {
    private func error(_ path: String) -> CheckpointError? {
        do {
            _ = try Checkpoint.load(path: path)
            return nil
        } catch {
            return error
        }
    }

    private func bad(_ name: String) -> CheckpointError? { error(Fixture.torch("bad/\(name)")) }

    private func temporary(_ bytes: [UInt8], _ name: String = "broken.pth") throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-bad-\(UUID().uuidString)-\(name)")
        try Data(bytes).write(to: url)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url.path
    }

    private func fixtureBytes(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: Fixture.torch(name))))
    }

    func testDangerousGlobalsAreRefusedByName() {
        let posix = bad("os_system.pth")
        XCTAssertEqual(posix?.reason, .forbiddenGlobal(module: "posix", name: "system"))
        XCTAssertEqual(posix?.record, "os_system/data.pkl")
        XCTAssertNotNil(posix?.offset)
        XCTAssertEqual(bad("builtins_eval.pth")?.reason, .forbiddenGlobal(module: "__builtin__", name: "eval"))
        XCTAssertEqual(bad("global_unknown.pth")?.reason, .forbiddenGlobal(module: "mypkg.evil", name: "Thing"))
        // A whole pickled nn.Module: its class is the first global met.
        XCTAssertEqual(bad("module.pth")?.reason, .forbiddenGlobal(module: "__main__", name: "TinyNet"))
        XCTAssertTrue("\(bad("os_system.pth")!)".hasPrefix(Fixture.torch("bad/os_system.pth") + ": os_system/data.pkl byte "))
    }

    func testContainerOpcodesOnlyApplyToTheirContainers() {
        guard case let .pickle(message)? = bad("setitem_list.pth")?.reason else { return XCTFail("expected a pickle error") }
        XCTAssertTrue(message.contains("SETITEM on list"), message)
    }

    func testMemoBombIsRefusedWithoutExpanding() {
        let start = ContinuousClock.now
        guard case .limit? = bad("memo_bomb.pth")?.reason else { return XCTFail("expected a limit error") }
        XCTAssertLessThan(ContinuousClock.now - start, .seconds(2))
    }

    func testStorageAndGeometryChecks() {
        guard case let .storage(message)? = bad("numel_mismatch.pth")?.reason else { return XCTFail("numel mismatch") }
        XCTAssertTrue(message.contains("declares 4 f32 elements (16 bytes)") && message.contains("holds 8 bytes"), message)
        XCTAssertEqual(bad("offset_past.pth")?.reason, .tensor(.outOfBounds(offset: 100, extent: 4, storageElements: 4)))
        XCTAssertEqual(bad("offset_past.pth")?.path, "weight")
        XCTAssertEqual(bad("negative_stride.pth")?.reason, .tensor(.negativeStride(dim: 0, stride: -1)))
        XCTAssertEqual(bad("huge_shape.pth")?.reason, .tensor(.overflow))
    }

    func testEmptyRandomAndMissingFiles() throws {
        XCTAssertEqual(error(try temporary([]))?.reason, .emptyFile)
        var generator = SystemRandomNumberGenerator()
        let noise = (0..<4096).map { _ in UInt8.random(in: 0x20...0x7E, using: &generator) }
        guard case .notACheckpoint? = error(try temporary(noise))?.reason else { return XCTFail("random bytes") }
        guard case .io? = error("/nonexistent/zoo.pth")?.reason else { return XCTFail("missing file") }
    }

    func testTruncationIsDetectedInEveryFormat() throws {
        for name in ["alexnet_small.pth", "alexnet_small_legacy.pth", "alexnet_small_tar.pth"] {
            let bytes = try fixtureBytes(name)
            // A tar ends in zero padding that holds nothing: cut at its last data byte instead.
            let lastData = bytes.lastIndex(where: { $0 != 0 })!
            for cut in [bytes.count / 2, lastData, 700] {
                let failure = error(try temporary(Array(bytes[..<cut])))
                XCTAssertNotNil(failure, "\(name) cut at \(cut) was accepted")
            }
        }
        // The legacy format says which storage ran short, and where.
        let legacy = try fixtureBytes("alexnet_small_legacy.pth")
        let failure = error(try temporary(Array(legacy[..<(legacy.count - 100)])))
        guard case .truncated? = failure?.reason else { return XCTFail("\(String(describing: failure))") }
        XCTAssertNotNil(failure?.offset)
    }

    /// A zip whose pickle names a data record that is not in the archive.
    func testMissingDataRecord() throws {
        var bytes = try fixtureBytes("alexnet_small.pth")
        // Rename every "alexnet_small/data/15" entry name (local and central) to ".../data/x5".
        let needle = Array("alexnet_small/data/15".utf8)
        var renamed = 0
        var i = 0
        while i + needle.count <= bytes.count {
            if Array(bytes[i..<(i + needle.count)]) == needle {
                bytes[i + needle.count - 2] = UInt8(ascii: "x")
                renamed += 1
            }
            i += 1
        }
        XCTAssertEqual(renamed, 2)
        XCTAssertEqual(error(try temporary(bytes))?.reason, .missingRecord("alexnet_small/data/15"))
    }

    func testCRCMismatchNamesTheRecord() throws {
        var bytes = try fixtureBytes("alexnet_small.pth")
        let checkpoint = try Checkpoint.load(path: Fixture.torch("alexnet_small.pth"))
        // Flip a byte inside the first weight's data: find its offset in the file through the mapping.
        let storage = checkpoint.tensors[0].tensor.tensor.storage
        let offset = storage.bytes.baseAddress! - storage.mapping!.bytes.baseAddress!
        bytes[offset + 5] ^= 0xFF
        let failure = error(try temporary(bytes))
        guard case .crcMismatch? = failure?.reason else { return XCTFail("\(String(describing: failure))") }
        XCTAssertEqual(failure?.record, "alexnet_small/data/0")
        // Without verification torch's behaviour is kept: the file loads.
        XCTAssertNoThrow(try Checkpoint.load(path: try temporary(bytes), options: .init(verifyChecksums: false)))
    }

    func testLegacyCountHeaderMustMatchTheDeclaredSize() throws {
        var bytes = try fixtureBytes("alexnet_small_legacy.pth")
        let checkpoint = try Checkpoint.load(path: Fixture.torch("alexnet_small_legacy.pth"))
        let storage = checkpoint.tensors[0].tensor.tensor.storage
        let offset = storage.bytes.baseAddress! - storage.mapping!.bytes.baseAddress!
        bytes[offset - 8] &+= 1  // the int64 element count before the data
        guard case let .storage(message)? = error(try temporary(bytes))?.reason else { return XCTFail("count header") }
        XCTAssertTrue(message.contains("elements but the pickle declares"), message)
    }

    func testStateDictSelection() throws {
        let ambiguous = try Checkpoint.load(path: Fixture.torch("ambiguous.pth"))
        XCTAssertThrowsError(try ambiguous.stateDict()) { error in
            guard case let .ambiguous(message) = (error as! CheckpointError).reason else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("model, ema") && message.contains("--key"), message)
        }
        XCTAssertEqual(try ambiguous.stateDict(key: "ema").key, "ema")
        XCTAssertThrowsError(try ambiguous.stateDict(key: "step"))
        XCTAssertThrowsError(try ambiguous.stateDict(key: "nothing"))

        let nested = try Checkpoint.load(path: Fixture.torch("nested_module.pth"))
        let stateDict = try nested.stateDict()
        XCTAssertEqual(stateDict.key, "state_dict")
        XCTAssertEqual(stateDict.strippedPrefix, "module.")
        XCTAssertEqual(stateDict.entries.first?.name, "conv.weight")
        XCTAssertEqual(nested.otherEntries(excluding: "state_dict").map(\.key), ["epoch"])
    }
}
