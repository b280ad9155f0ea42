import Foundation
import XCTest
@testable import TorchFormat
import ZooCore

/// The zip container: reading every torch fixture, rewriting torch.save goldens byte for byte, and
/// refusing malformed archives made by editing the bytes of real torch.save output.
final class ZipTests: XCTestCase {
    /// Zip checkpoints written by torch.save (Fixtures/make_fixtures.py).
    static let torchSaved = ["alexnet_small", "dtypes", "views", "nested", "nested_module", "shared", "fp16_model", "ambiguous", "bigendian"]

    private var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-zip-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: scratch)
    }

    // MARK: Reading

    func testParsesEveryTorchFixture() throws {
        for name in Self.torchSaved {
            let archive = try open(Fixture.torch("\(name).pth"))
            XCTAssertEqual(archive.prefix, name)
            XCTAssertEqual(archive.archiveStart, 0)
            XCTAssertEqual(archive.entries.first?.name, "\(name)/data.pkl")
            XCTAssertEqual(archive.entry("data.pkl")?.dataOffset, 64, name)
            XCTAssertEqual(Array(archive.recordNames.suffix(2)), ["version", ".data/serialization_id"], name)
            for entry in archive.entries {
                XCTAssertEqual(entry.method, 0)
                XCTAssertEqual(entry.dataOffset % 64, 0, "\(entry.name) is not 64-byte aligned")
                let storage = try archive.contents(of: entry, verifyCRC: true)
                XCTAssertTrue(storage.isMapped, "stored entries are zero-copy")
                XCTAssertEqual(storage.byteCount, entry.size)
            }
            XCTAssertEqual(try string(archive, "version"), "3\n")
            XCTAssertEqual(try string(archive, ".format_version"), "1")
            XCTAssertEqual(try string(archive, ".storage_alignment"), "64")
        }
    }

    func testDeflatedArchiveReadsEqualToStored() throws {
        let stored = try open(Fixture.torch("alexnet_small.pth"))
        let deflated = try open(Fixture.torch("alexnet_small_deflated.pth"))
        XCTAssertEqual(deflated.recordNames, stored.recordNames)
        XCTAssertTrue(deflated.entries.contains { $0.method == 8 && $0.compressedSize < $0.size })
        for entry in stored.entries {
            let other = try XCTUnwrap(deflated.entry(String(entry.name.dropFirst("alexnet_small/".count))))
            XCTAssertEqual(other.method, 8)
            XCTAssertEqual(bytes(try deflated.contents(of: other, verifyCRC: true)), bytes(try stored.contents(of: entry, verifyCRC: true)))
        }
    }

    func testAnyFolderNameIsAccepted() throws {
        let stored = try open(Fixture.torch("alexnet_small.pth"))
        let renamed = try open(Fixture.torch("alexnet_small_renamed.pth"))
        XCTAssertEqual(renamed.prefix, "renamed_folder")
        XCTAssertEqual(renamed.recordNames, stored.recordNames)
        for name in stored.recordNames {
            let a = try stored.contents(of: try stored.requireEntry(name), verifyCRC: true)
            let b = try renamed.contents(of: try renamed.requireEntry(name), verifyCRC: true)
            XCTAssertEqual(bytes(a), bytes(b), name)
        }
    }

    /// The zip reader itself reads an archive after other bytes (torch does not, and neither does
    /// `Checkpoint.load`: see HostileInputTests.testArchiveMustStartAtByteZero).
    func testBytesBeforeTheArchiveAreReadByTheZipReader() throws {
        let original = try fixtureBytes("dtypes")
        let stub = [UInt8](repeating: 0x90, count: 1000)
        let archive = try parse(stub + original).get()
        XCTAssertEqual(archive.archiveStart, 1000)
        XCTAssertEqual(archive.entry("data.pkl")?.localHeaderOffset, 1000)
        let reference = try open(Fixture.torch("dtypes.pth"))
        for (entry, expected) in zip(archive.entries, reference.entries) {
            XCTAssertEqual(bytes(try archive.contents(of: entry, verifyCRC: true)), bytes(try reference.contents(of: expected, verifyCRC: true)))
        }
        XCTAssertTrue(original.withUnsafeBytes(ZipArchive.looksLikeZip))
        XCTAssertFalse((stub + original).withUnsafeBytes(ZipArchive.looksLikeZip), "torch needs PK\\3\\4 at byte 0")
        XCTAssertFalse(try fixtureBytes("legacy").withUnsafeBytes(ZipArchive.looksLikeZip))
        XCTAssertFalse(try fixtureBytes("tar").withUnsafeBytes(ZipArchive.looksLikeZip))
    }

    func testZip64ExtraFieldsInTheCentralDirectory() throws {
        // A hand-built archive whose central directory keeps sizes and offset in a zip64 extra field.
        let data = Array("hello zip64".utf8)
        let name = Array("folder/data/0".utf8)
        var file: [UInt8] = []
        file += le32(0x0403_4B50) + le16(45) + le16(0) + le16(0) + le32(0) + le32(crc(data))
        file += le32(UInt32(data.count)) + le32(UInt32(data.count)) + le16(UInt16(name.count)) + le16(0) + name + data
        let directoryOffset = file.count
        var extra = le16(1) + le16(24) + le64(UInt64(data.count)) + le64(UInt64(data.count)) + le64(0)
        var central = le32(0x0201_4B50) + le16(45) + le16(45) + le16(0) + le16(0) + le32(0) + le32(crc(data))
        central += le32(0xFFFF_FFFF) + le32(0xFFFF_FFFF) + le16(UInt16(name.count)) + le16(UInt16(extra.count))
        central += le16(0) + le16(0) + le16(0) + le32(0) + le32(0xFFFF_FFFF) + name + extra
        file += central
        let record = file.count
        file += le32(0x0606_4B50) + le64(44) + le16(45) + le16(45) + le32(0) + le32(0) + le64(1) + le64(1)
        file += le64(UInt64(central.count)) + le64(UInt64(directoryOffset))
        file += le32(0x0706_4B50) + le32(0) + le64(UInt64(record)) + le32(1)
        file += le32(0x0605_4B50) + le16(0) + le16(0) + le16(0xFFFF) + le16(0xFFFF) + le32(0xFFFF_FFFF) + le32(0xFFFF_FFFF) + le16(0)
        let archive = try parse(file).get()
        let entry = try XCTUnwrap(archive.entry("data/0"))
        XCTAssertEqual(entry.size, data.count)
        XCTAssertEqual(entry.localHeaderOffset, 0)
        XCTAssertEqual(bytes(try archive.contents(of: entry, verifyCRC: true)), data)

        extra = le16(1) + le16(8) + le64(UInt64(data.count)) // the compressed size and offset are missing
        var short = file
        short.replaceSubrange(directoryOffset + 46 + name.count ..< directoryOffset + 46 + name.count + 16, with: extra)
        short.replaceSubrange(directoryOffset + 30 ..< directoryOffset + 32, with: le16(UInt16(extra.count)))
        // Keep the end records consistent with the shorter central directory.
        let shrink = 16
        var fixed = Array(short[..<(record - shrink)])
        fixed += le32(0x0606_4B50) + le64(44) + le16(45) + le16(45) + le32(0) + le32(0) + le64(1) + le64(1)
        fixed += le64(UInt64(central.count - shrink)) + le64(UInt64(directoryOffset))
        fixed += le32(0x0706_4B50) + le32(0) + le64(UInt64(record - shrink)) + le32(1)
        fixed += le32(0x0605_4B50) + le16(0) + le16(0) + le16(1) + le16(1) + le32(0xFFFF_FFFF) + le32(0xFFFF_FFFF) + le16(0)
        assertZipError(fixed, "zip64 extra field is too short", record: "folder/data/0")
    }

    func testMissingRecord() throws {
        let archive = try open(Fixture.torch("dtypes.pth"))
        XCTAssertNil(archive.entry("data/99"))
        XCTAssertThrowsError(try archive.requireEntry("data/99")) { error in
            XCTAssertEqual((error as? CheckpointError)?.reason, .missingRecord("dtypes/data/99"))
        }
    }

    // MARK: Malformed input

    func testEmptyFile() {
        XCTAssertEqual(parse([]).failure?.reason, .emptyFile)
    }

    func testRandomBytes() {
        var generator = SplitMix64(seed: 7)
        let noise = (0 ..< 4096).map { _ in UInt8.random(in: 0 ... 255, using: &generator) }
        assertZipError(noise, "no end-of-central-directory record: file truncated or not a zip")
        assertZipError(Array("PK".utf8), "no end-of-central-directory record")
    }

    func testTruncatedFiles() throws {
        let original = try fixtureBytes("dtypes")
        let directory = try XCTUnwrap(find(le32(0x0201_4B50), in: original))
        for cut in [original.count / 2, original.count - 1, original.count - 22, directory + 10, 10] {
            assertZipError(Array(original[..<cut]), "no end-of-central-directory record: file truncated or not a zip")
        }
    }

    func testTrailingDataIsRefused() throws {
        assertZipError(try fixtureBytes("dtypes") + [1, 2, 3], "3 bytes of trailing data")
    }

    func testCRCMismatch() throws {
        var bytes = try fixtureBytes("dtypes")
        let entry = try XCTUnwrap(try open(Fixture.torch("dtypes.pth")).entry("data/0"))
        bytes[entry.dataOffset] ^= 0x01
        let archive = try parse(bytes).get()
        let damaged = try XCTUnwrap(archive.entry("data/0"))
        XCTAssertNoThrow(try archive.contents(of: damaged, verifyCRC: false))
        XCTAssertThrowsError(try archive.contents(of: damaged, verifyCRC: true)) { error in
            let error = error as? CheckpointError
            XCTAssertEqual(error?.record, "dtypes/data/0")
            guard case let .crcMismatch(stored, computed) = error?.reason else { return XCTFail("\(String(describing: error))") }
            XCTAssertEqual(stored, entry.crc32)
            XCTAssertNotEqual(computed, stored)
            XCTAssertTrue(error?.description.contains("dtypes/data/0") == true)
        }
    }

    func testLocalNameDisagreesWithCentralDirectory() throws {
        var bytes = try fixtureBytes("dtypes")
        let local = try localHeader("dtypes/data/1", in: bytes)
        bytes[local + 30 + "dtypes/data/".count] = UInt8(ascii: "7")
        assertZipError(bytes, "is named 'dtypes/data/7', the central directory says 'dtypes/data/1'", record: "dtypes/data/1")
    }

    func testDuplicateEntry() throws {
        var bytes = try fixtureBytes("dtypes")
        try rename("dtypes/data/1", to: "dtypes/data/0", in: &bytes)
        assertZipError(bytes, "duplicate entry name", record: "dtypes/data/0")
    }

    func testEntryOutsideTheFolder() throws {
        var bytes = try fixtureBytes("dtypes")
        try rename("dtypes/byteorder", to: "dtypez/byteorder", in: &bytes)
        assertZipError(bytes, "outside the archive's folder 'dtypes/'", record: "dtypez/byteorder")
    }

    func testUnsafeEntryNames() throws {
        for (unsafe, message) in [("dtypes/../../etc", "'..'"), ("/types/byteorder", "absolute"), ("dtypes\\byteorder", "backslash")] {
            var bytes = try fixtureBytes("dtypes")
            try rename("dtypes/byteorder", to: unsafe, in: &bytes)
            assertZipError(bytes, message, record: unsafe)
        }
    }

    func testOverlappingEntries() throws {
        // data/0 claims 200 more bytes, running over the local header of data/1.
        var bytes = try fixtureBytes("dtypes")
        let central = try centralHeader("dtypes/data/0", in: bytes)
        let size = readLE32(bytes, central + 24) + 200
        bytes.replaceSubrange(central + 20 ..< central + 28, with: le32(size) + le32(size))
        assertZipError(bytes, "lies inside 'dtypes/data/0'", record: "dtypes/data/1")
    }

    func testEntryOutOfBounds() throws {
        var bytes = try fixtureBytes("dtypes")
        let central = try centralHeader("dtypes/data/2", in: bytes)
        bytes.replaceSubrange(central + 42 ..< central + 46, with: le32(0x7FFF_0000))
        assertZipError(bytes, "outside the file's entry area", record: "dtypes/data/2")

        bytes = try fixtureBytes("dtypes")
        bytes.replaceSubrange(central + 20 ..< central + 28, with: le32(0x00FF_0000) + le32(0x00FF_0000))
        assertZipError(bytes, "runs into the central directory", record: "dtypes/data/2")
    }

    func testBadLocalHeaderSignature() throws {
        var bytes = try fixtureBytes("dtypes")
        let local = try localHeader("dtypes/data/3", in: bytes)
        bytes[local] = 0
        assertZipError(bytes, "no local header signature at byte \(local)", record: "dtypes/data/3")
    }

    func testEncryptedAndUnsupportedMethodsAreRefused() throws {
        var bytes = try fixtureBytes("dtypes")
        let central = try centralHeader("dtypes/data/0", in: bytes)
        bytes[central + 8] |= 0x01
        assertZipError(bytes, "encrypted", record: "dtypes/data/0")

        bytes = try fixtureBytes("dtypes")
        bytes.replaceSubrange(central + 10 ..< central + 12, with: le16(12))
        assertZipError(bytes, "compression method 12 is not supported", record: "dtypes/data/0")
    }

    func testImpossibleEntryCount() throws {
        var bytes = try fixtureBytes("dtypes")
        let record = try XCTUnwrap(find(le32(0x0606_4B50), in: bytes))
        bytes.replaceSubrange(record + 24 ..< record + 40, with: le64(1 << 40) + le64(1 << 40))
        let end = bytes.count - 22
        bytes.replaceSubrange(end + 8 ..< end + 12, with: le16(0xFFFF) + le16(0xFFFF))
        assertZipError(bytes, "cannot hold 1099511627776 entries")
    }

    func testDeflatedSizeLiesAreCaught() throws {
        let original = try fixtureBytes("alexnet_small_deflated")
        let reference = try open(Fixture.torch("alexnet_small_deflated.pth"))
        let entry = try XCTUnwrap(reference.entry("data/0"))
        for declared in [entry.size - 1, entry.size + 1] {
            var bytes = original
            let central = try centralHeader(entry.name, in: bytes)
            bytes.replaceSubrange(central + 24 ..< central + 28, with: le32(UInt32(declared)))
            bytes.replaceSubrange(entry.localHeaderOffset + 22 ..< entry.localHeaderOffset + 26, with: le32(UInt32(declared)))
            let archive = try parse(bytes).get()
            XCTAssertThrowsError(try archive.contents(of: try archive.requireEntry("data/0"), verifyCRC: false)) { error in
                let error = error as? CheckpointError
                XCTAssertEqual(error?.record, entry.name)
                guard case let .zip(message) = error?.reason else { return XCTFail("\(String(describing: error))") }
                XCTAssertTrue(message.contains("inflates to"), message)
            }
        }
        // A corrupt stream.
        var bytes = original
        for offset in entry.dataOffset ..< entry.dataOffset + 8 { bytes[offset] = 0xFF }
        let archive = try parse(bytes).get()
        XCTAssertThrowsError(try archive.contents(of: try archive.requireEntry("data/0"), verifyCRC: true)) { error in
            XCTAssertEqual((error as? CheckpointError)?.record, entry.name, "\(error)")
        }
    }

    /// The bytes of `storage`, copied while it is alive (an inflated entry owns its memory).
    private static func copy(_ storage: Storage) -> [UInt8] { withExtendedLifetime(storage) { Array(storage.bytes) } }

    /// Hostile input must throw, never trap: random byte edits of real archives, stored and deflated.
    /// Some edits must be refused, and whatever passes its CRC check must be the original's bytes.
    func testRandomCorruptionsNeverTrap() throws {
        var generator = SplitMix64(seed: 11)
        for (name, rounds) in [("dtypes", 1500), ("views", 1500), ("alexnet_small_deflated", 150)] {
            let original = try fixtureBytes(name)
            let pristine = try parse(original).get()
            var originalContents: [String: [UInt8]] = [:]
            for entry in pristine.entries { originalContents[entry.name] = Self.copy(try pristine.contents(of: entry, verifyCRC: true)) }
            var refused = 0
            for _ in 0 ..< rounds {
                var bytes = original
                for _ in 0 ... Int.random(in: 0 ... 3, using: &generator) {
                    // Bias edits towards the headers at the end, where the structure is.
                    let tail = Int.random(in: 0 ... 1, using: &generator) == 0
                    let at = tail ? bytes.count - 1 - Int.random(in: 0 ..< min(600, bytes.count), using: &generator)
                        : Int.random(in: 0 ..< bytes.count, using: &generator)
                    bytes[at] = UInt8.random(in: 0 ... 255, using: &generator)
                }
                if Int.random(in: 0 ..< 8, using: &generator) == 0 { bytes.removeLast(Int.random(in: 1 ... 100, using: &generator)) }
                guard case let .success(archive) = parse(bytes) else { refused += 1; continue }
                for entry in archive.entries {
                    guard let contents = try? archive.contents(of: entry, verifyCRC: true) else { refused += 1; continue }
                    if let expected = originalContents[entry.name] {
                        XCTAssertEqual(Self.copy(contents), expected, "\(name): \(entry.name) passed its CRC with other bytes")
                    }
                }
            }
            XCTAssertGreaterThan(refused, 0, "\(name): no corruption was refused")
        }
    }

    // MARK: Writing

    /// Rewriting every record of a torch.save file under its prefix gives the same bytes. Set
    /// ZOO_ZIP_GOLDENS to a colon-separated list of other torch.save outputs to check them too.
    func testWriterReproducesTorchSaveByteForByte() throws {
        var paths = Self.torchSaved.map { Fixture.torch("\($0).pth") }
        if let extra = ProcessInfo.processInfo.environment["ZOO_ZIP_GOLDENS"] {
            paths += extra.split(separator: ":").map(String.init)
        }
        for path in paths {
            let archive = try open(path)
            let destination = scratch.appendingPathComponent(URL(fileURLWithPath: path).lastPathComponent).path
            let output = try OutputFile(path: destination)
            // Same settings as the original: its storage alignment, and CRCs only if it has them.
            let alignment = archive.entry(".storage_alignment") == nil ? 64 : Int(try string(archive, ".storage_alignment")) ?? 64
            let hasCRCs = archive.entries.contains { $0.crc32 != 0 }
            var writer = ZipWriter(output: output, prefix: archive.prefix, alignment: alignment, computesCRC32: hasCRCs)
            for (name, entry) in zip(archive.recordNames, archive.entries) where name != "version" && name != ".data/serialization_id" {
                let storage = try archive.contents(of: entry, verifyCRC: true)
                try withExtendedLifetime(storage) { try writer.add(name, storage.bytes) }
            }
            try writer.finish()
            try output.commit()
            XCTAssertEqual(writer.serializationID.map { Array($0.utf8) }, try archive.entry(".data/serialization_id").map { bytes(try archive.contents(of: $0, verifyCRC: true)) }, path)
            let written = try Data(contentsOf: URL(fileURLWithPath: destination))
            let original = try Data(contentsOf: URL(fileURLWithPath: path))
            XCTAssertEqual(written.count, original.count, path)
            XCTAssertTrue(written == original, "\(path): first difference at byte \(zip(written, original).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(written.count, original.count))")
        }
    }

    func testRecordNameHashMatchesTorch() {
        // The first half of the serialization_id torch 2.9.1 wrote for a state dict of 1200 tensors:
        // enough records to go through five of libstdc++'s rehashes.
        var names = TorchRecordNameSet()
        for name in ["data.pkl", ".format_version", ".storage_alignment", "byteorder"] + (0 ..< 1200).map({ "data/\($0)" }) + ["version"] {
            names.insert(name)
        }
        XCTAssertEqual(names.combinedHash, 07006458023395743877)
        XCTAssertEqual(TorchRecordNameSet.libstdcxxHash([]), 6142509188972423790)
    }

    // MARK: CRC-32

    func testParallelCRCEqualsSerial() {
        var generator = SplitMix64(seed: 1)
        let data = (0 ..< (9 << 20) + 13).map { _ in UInt8.random(in: 0 ... 255, using: &generator) }
        data.withUnsafeBytes { raw in
            let serial = CRC32.checksum(raw)
            XCTAssertEqual(CRC32.parallelChecksum(raw), serial)
            XCTAssertEqual(CRC32.parallelChecksum(raw, threads: 3), serial)
            let half = raw.count / 2
            let first = CRC32.checksum(UnsafeRawBufferPointer(rebasing: raw[..<half]))
            XCTAssertEqual(CRC32.checksum(UnsafeRawBufferPointer(rebasing: raw[half...]), seed: first), serial)
            XCTAssertEqual(CRC32.parallelChecksum(UnsafeRawBufferPointer(rebasing: raw[half...]), seed: first), serial)
        }
        XCTAssertEqual(Array("123456789".utf8).withUnsafeBytes { CRC32.checksum($0) }, 0xCBF4_3926)
    }

    /// Throughput on 244 MB (AlexNet's size). Runs only with ZOO_BENCH=1.
    func testCRCThroughput() throws {
        try XCTSkipUnless(ProcessInfo.processInfo.environment["ZOO_BENCH"] == "1", "set ZOO_BENCH=1 to measure")
        let count = 244_000_000
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 64)
        defer { buffer.deallocate() }
        var generator = SplitMix64(seed: 3)
        for index in stride(from: 0, to: count, by: 8) { buffer.storeBytes(of: generator.next(), toByteOffset: index, as: UInt64.self) }
        let raw = UnsafeRawBufferPointer(buffer)
        func measure(_ label: String, _ body: () -> UInt32) -> UInt32 {
            var best = Double.infinity, result: UInt32 = 0
            for _ in 0 ..< 3 {
                let start = DispatchTime.now().uptimeNanoseconds
                result = body()
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            }
            print("CRC32 \(label): \(Int(Double(count) / best / 1e6)) MB/s (\(best) s for 244 MB)")
            return result
        }
        let serial = measure("single thread") { CRC32.checksum(raw) }
        let parallel = measure("2 threads") { CRC32.parallelChecksum(raw, threads: 2) }
        XCTAssertEqual(serial, parallel)
    }

    // MARK: OutputFile

    func testOutputFileFailureLeavesDestinationUntouched() throws {
        let destination = scratch.appendingPathComponent("model.pth")
        try Data("old contents".utf8).write(to: destination)
        struct Interrupted: Error {}
        do {
            let output = try OutputFile(path: destination.path)
            try output.write(Array(repeating: 7, count: 3 << 20))
            try output.write([1, 2, 3])
            XCTAssertEqual(output.position, (3 << 20) + 3)
            XCTAssertTrue(FileManager.default.fileExists(atPath: output.temporaryPath!))
            throw Interrupted()
        } catch is Interrupted {}
        XCTAssertEqual(try Data(contentsOf: destination), Data("old contents".utf8))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: scratch.path), ["model.pth"])

        let output = try OutputFile(path: destination.path, bufferSize: 4)
        try output.write(Array("new ".utf8))
        try output.write(Array("contents".utf8))
        try output.commit()
        XCTAssertEqual(try Data(contentsOf: destination), Data("new contents".utf8))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: scratch.path), ["model.pth"])
    }

    func testOutputFileErrorsNameTheDestination() {
        let path = scratch.appendingPathComponent("missing/dir/model.pth").path
        XCTAssertThrowsError(try OutputFile(path: path)) { error in
            XCTAssertEqual((error as? IOError)?.path, path)
        }
    }

    // MARK: Helpers

    private func open(_ path: String) throws -> ZipArchive {
        try ZipArchive(file: try MappedFile(path: path))
    }

    private func parse(_ bytes: [UInt8]) -> Result<ZipArchive, CheckpointError> {
        let url = scratch.appendingPathComponent(UUID().uuidString)
        do {
            try Data(bytes).write(to: url)
            let file = try MappedFile(path: url.path)
            do { return .success(try ZipArchive(file: file)) } catch { return .failure(error) }
        } catch {
            fatalError("cannot write a test file: \(error)")
        }
    }

    private func assertZipError(_ bytes: [UInt8], _ message: String, record: String? = nil, file: StaticString = #filePath, line: UInt = #line) {
        switch parse(bytes) {
        case .success:
            XCTFail("accepted a malformed archive (expected \"\(message)\")", file: file, line: line)
        case let .failure(error):
            guard case let .zip(text) = error.reason else { return XCTFail("unexpected error \(error)", file: file, line: line) }
            XCTAssertTrue(text.contains(message), "\"\(text)\" does not contain \"\(message)\"", file: file, line: line)
            XCTAssertEqual(error.record, record, file: file, line: line)
        }
    }

    private func fixtureBytes(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: Fixture.torch("\(name).pth"))))
    }

    private func string(_ archive: ZipArchive, _ name: String) throws -> String {
        String(decoding: bytes(try archive.contents(of: try archive.requireEntry(name), verifyCRC: true)), as: UTF8.self)
    }

    private func bytes(_ storage: Storage) -> [UInt8] { Array(storage.bytes) }

    /// The local header whose name is `name`, found by scanning the bytes (not with the reader).
    private func localHeader(_ name: String, in bytes: [UInt8]) throws -> Int {
        try XCTUnwrap(find(le32(0x0403_4B50), in: bytes) { start in
            self.readLE16(bytes, start + 26) == name.utf8.count && Array(bytes[start + 30 ..< start + 30 + name.utf8.count]) == Array(name.utf8)
        }, "no local header for \(name)")
    }

    /// The central directory header whose name is `name`, found by scanning the bytes.
    private func centralHeader(_ name: String, in bytes: [UInt8]) throws -> Int {
        try XCTUnwrap(find(le32(0x0201_4B50), in: bytes) { start in
            self.readLE16(bytes, start + 28) == name.utf8.count && Array(bytes[start + 46 ..< start + 46 + name.utf8.count]) == Array(name.utf8)
        }, "no central directory header for \(name)")
    }

    /// Renames an entry (to a name of the same length) in its local header and central directory.
    private func rename(_ name: String, to newName: String, in bytes: inout [UInt8]) throws {
        precondition(name.utf8.count == newName.utf8.count)
        let local = try localHeader(name, in: bytes) + 30, central = try centralHeader(name, in: bytes) + 46
        bytes.replaceSubrange(local ..< local + name.utf8.count, with: newName.utf8)
        bytes.replaceSubrange(central ..< central + name.utf8.count, with: newName.utf8)
    }

    private func find(_ pattern: [UInt8], in bytes: [UInt8], where accept: (Int) -> Bool = { _ in true }) -> Int? {
        guard bytes.count >= pattern.count else { return nil }
        return (0 ... bytes.count - pattern.count).first { start in
            bytes[start ..< start + pattern.count].elementsEqual(pattern) && accept(start)
        }
    }

    private func readLE16(_ bytes: [UInt8], _ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 }
    private func readLE32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        (0 ..< 4).reduce(0) { $0 | UInt32(bytes[at + $1]) << (8 * $1) }
    }
    private func crc(_ bytes: [UInt8]) -> UInt32 { bytes.withUnsafeBytes { CRC32.checksum($0) } }
}

private func le16(_ value: UInt16) -> [UInt8] { withUnsafeBytes(of: value.littleEndian, Array.init) }
private func le32(_ value: UInt32) -> [UInt8] { withUnsafeBytes(of: value.littleEndian, Array.init) }
private func le64(_ value: UInt64) -> [UInt8] { withUnsafeBytes(of: value.littleEndian, Array.init) }

private extension Result {
    var failure: Failure? { if case let .failure(error) = self { error } else { nil } }
}

/// A small deterministic generator for test data.
private struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
