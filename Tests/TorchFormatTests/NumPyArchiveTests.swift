import Foundation
import TorchFormat
import XCTest
import ZooCore

/// .npz files numpy wrote (Fixtures/make_npz_fixtures.py): every record reads as the array np.save
/// wrote alone; zoo's own .npz reads back the same.
final class NumPyArchiveTests: XCTestCase {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/npz")

    private func path(_ name: String) -> String { Self.folder.appendingPathComponent(name).path }

    private func assertSame(_ a: Tensor, _ b: Tensor, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.dtype, b.dtype, what, file: file, line: line)
        XCTAssertEqual(a.shape, b.shape, what, file: file, line: line)
        XCTAssertTrue(a.withContiguousBytes { x in b.withContiguousBytes { y in x.elementsEqual(y) } }, what, file: file, line: line)
    }

    func testStoredAndDeflatedArchivesReadAsNumpysArrays() throws {
        for archive in ["arrays.npz", "arrays_compressed.npz"] {
            let arrays = try NumPyArchive.read(path: path(archive))
            XCTAssertEqual(arrays.map(\.name), ["x", "y", "i", "e", "s"], archive)
            for (name, tensor) in arrays {
                assertSame(tensor, try NumPy.read(path: path("arrays.\(name).npy")), "\(archive): \(name)")
            }
        }
        XCTAssertEqual(try NumPyArchive.read(path: path("positional.npz")).map(\.name), ["arr_0", "arr_1"])
    }

    func testWrittenArchiveReadsBack() throws {
        let source = try NumPyArchive.read(path: path("arrays.npz"))
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-npz-\(UUID().uuidString).npz").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        try NumPyArchive.write(source, to: out)
        let back = try NumPyArchive.read(path: out)
        XCTAssertEqual(back.map(\.name), source.map(\.name))
        for ((name, a), (_, b)) in zip(source, back) { assertSame(a, b, name) }
        XCTAssertThrowsError(try NumPyArchive.write([("a", source[0].tensor), ("a", source[1].tensor)], to: out)) { error in
            XCTAssertEqual("\(error)", "\(out): two arrays named 'a'")
        }
    }

    /// numpy itself (the pinned venv scripts/conformance-data makes, which scripts/test always has)
    /// loads zoo's .npz: the same names, in order, and arrays equal to those np.save wrote.
    func testNumpyLoadsWhatZooWrites() throws {
        let python = Self.folder.deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".build-conformance/venv/bin/python").path
        guard FileManager.default.isExecutableFile(atPath: python) else {
            if ProcessInfo.processInfo.environment["ZOO_REQUIRE_CONFORMANCE"] == "1" { XCTFail("no \(python): run scripts/conformance-data") }
            throw XCTSkip("no numpy venv at \(python) (scripts/conformance-data makes it)")
        }
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-npz-numpy-\(UUID().uuidString).npz").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        try NumPyArchive.write(try NumPyArchive.read(path: path("arrays.npz")), to: out)
        let check = """
            import numpy as np, sys
            z = np.load(sys.argv[1])
            names = list(z.keys())
            assert names == ["x", "y", "i", "e", "s"], names
            for n in names:
                ref = np.load(sys.argv[2] + "/arrays." + n + ".npy")
                assert z[n].dtype == ref.dtype and z[n].shape == ref.shape and z[n].tobytes() == ref.tobytes(), n
            print("ok")
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["-c", check, out, Self.folder.path]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, text)
        XCTAssertEqual(text, "ok\n")
    }

    func testWhatIsNotAnNpzIsRefused() throws {
        let torch = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Fixtures/torch/alexnet_small.pth").path
        XCTAssertThrowsError(try NumPyArchive.read(path: torch)) { error in
            XCTAssertEqual("\(error)", "\(torch): record 'alexnet_small/data.pkl' is not NAME.npy (an .npz holds one .npy per array)")
        }
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path("arrays.npz")))
        let cut = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-npz-cut-\(UUID().uuidString).npz")
        defer { try? FileManager.default.removeItem(at: cut) }
        try bytes.prefix(bytes.count - 30).write(to: cut)
        XCTAssertThrowsError(try NumPyArchive.read(path: cut.path)) { error in
            XCTAssertTrue("\(error)".hasPrefix("\(cut.path): not an .npz: "), "\(error)")
        }
        var corrupt = bytes
        corrupt[200] ^= 0xFF   // inside the first record's data: the CRC no longer matches
        try corrupt.write(to: cut)
        XCTAssertThrowsError(try NumPyArchive.read(path: cut.path)) { error in
            XCTAssertTrue("\(error)".contains("CRC-32 mismatch"), "\(error)")
        }
    }
}
