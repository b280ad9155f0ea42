import Foundation
import XCTest
import ZooCore
@testable import Safetensors

/// Fixtures/safetensors/ was written by the real `safetensors` library (0.8.0) through
/// Fixtures/make_safetensors_fixtures.py; NAME.expected.json says what the library reads back.
private enum Fixture {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures").appendingPathComponent("safetensors")

    static func path(_ name: String) -> String { root.appendingPathComponent(name).path }

    /// Every good fixture's basename (without extension).
    static var goodNames: [String] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
        return files.filter { $0.hasSuffix(".expected.json") }.map { String($0.dropLast(".expected.json".count)) }.sorted()
    }

    struct Expected {
        var metadata: [String: String]
        var tensors: [(name: String, dtype: String, shape: [Int], bytes: [UInt8])]
    }

    static func expected(_ name: String) throws -> Expected {
        let data = try Data(contentsOf: root.appendingPathComponent("\(name).expected.json"))
        let doc = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        let metadata = try XCTUnwrap(doc["metadata"] as? [String: String])
        var bin: [UInt8] = []
        if let reference = doc["bin"] as? String {
            bin = [UInt8](try Data(contentsOf: root.appendingPathComponent(reference)))
        }
        let rows = try XCTUnwrap(doc["tensors"] as? [[String: Any]])
        let tensors = try rows.map { row in
            let bytes: [UInt8]
            if let hex = row["hex"] as? String {
                bytes = try hexBytes(hex)
            } else {
                let offset = try XCTUnwrap(row["bin_offset"] as? Int), count = try XCTUnwrap(row["nbytes"] as? Int)
                bytes = Array(bin[offset..<(offset + count)])
            }
            return (name: try XCTUnwrap(row["name"] as? String), dtype: try XCTUnwrap(row["dtype"] as? String),
                    shape: try XCTUnwrap(row["shape"] as? [Int]), bytes: bytes)
        }
        return Expected(metadata: metadata, tensors: tensors)
    }

    static func hexBytes(_ hex: String) throws -> [UInt8] {
        let digits = Array(hex.utf8)
        guard digits.count % 2 == 0 else { throw CocoaError(.coderInvalidValue) }
        return try stride(from: 0, to: digits.count, by: 2).map { i in
            guard let byte = UInt8(String(decoding: digits[i..<(i + 2)], as: UTF8.self), radix: 16) else {
                throw CocoaError(.coderInvalidValue)
            }
            return byte
        }
    }
}

private func bytes(of tensor: Tensor) -> [UInt8] { tensor.withContiguousBytes { Array($0) } }

private func temporaryDirectory() throws -> String {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-st-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url.path
}

final class SafetensorsReadTests: XCTestCase {
    func testEveryLibraryFileReadsAsTheLibraryReadsIt() throws {
        let names = Fixture.goodNames
        XCTAssertEqual(names, ["alexnet_small", "dtypes", "metadata", "misaligned", "names", "no_tensors", "pretty_header"])
        for name in names {
            let file = try Safetensors.load(path: Fixture.path("\(name).safetensors"))
            let expected = try Fixture.expected(name)
            XCTAssertEqual(file.metadata, expected.metadata, name)
            XCTAssertEqual(file.tensors.map(\.name), expected.tensors.map(\.name), "\(name): names in file order")
            for ((tensorName, tensor), want) in zip(file.tensors, expected.tensors) {
                XCTAssertEqual(SafetensorsDType(tensor.dtype).name, want.dtype, "\(name) \(tensorName)")
                XCTAssertEqual(tensor.shape, want.shape, "\(name) \(tensorName)")
                XCTAssertEqual(bytes(of: tensor), want.bytes, "\(name) \(tensorName)")
                XCTAssertTrue(tensor.isContiguous)
            }
        }
    }

    func testEdgeCases() throws {
        let file = try Safetensors.load(path: Fixture.path("dtypes.safetensors"))
        XCTAssertEqual(file["scalar"]?.shape, [])
        XCTAssertEqual(file["scalar"]?.floats(), [2.5])
        XCTAssertEqual(file["empty"]?.shape, [0, 3])
        XCTAssertEqual(file["empty_i64"]?.shape, [2, 0])
        XCTAssertEqual(file["cube"]?.floats(), (0..<24).map { Float($0) / 8 })
        XCTAssertEqual(file["i64"]?.doubles().prefix(2), [-9.223372036854775808e18, 9.223372036854775807e18])
        XCTAssertEqual(file.metadata, ["format": "pt"])
        XCTAssertEqual(file.headerSize % 8, 0)
        let none = try Safetensors.load(path: Fixture.path("no_tensors.safetensors"))
        XCTAssertTrue(none.tensors.isEmpty)
        XCTAssertTrue(none.metadata.isEmpty)
    }

    /// Tensors are views of the mapping; only those misaligned for their dtype are copied.
    func testZeroCopyUnlessMisaligned() throws {
        let file = try Safetensors.load(path: Fixture.path("alexnet_small.safetensors"))
        XCTAssertEqual(file.copiedTensorCount, 0)
        XCTAssertTrue(file.tensors.allSatisfy { $0.tensor.storage.isMapped })
        let misaligned = try Safetensors.load(path: Fixture.path("misaligned.safetensors"))
        XCTAssertEqual(misaligned.copiedTensorCount, 2)
        XCTAssertEqual(misaligned.tensors.map { $0.tensor.storage.isMapped }, [true, false, false])
        XCTAssertEqual(misaligned["f32"]?.floats(), [1.5, -2.25])
        XCTAssertEqual(misaligned["i64"]?.doubles(), [-3, 1_099_511_627_776])
        for (_, tensor) in misaligned.tensors {
            XCTAssertEqual(Int(bitPattern: tensor.storage.bytes.baseAddress) % tensor.dtype.itemSize, 0)
        }
    }

    /// Every file in bad/ is refused with one line naming the file, the byte offset and (where one
    /// is concerned) the tensor; bad/expected.json holds the phrase each error must contain and what
    /// the library itself says.
    func testBadFilesAreRefused() throws {
        let bad = Fixture.root.appendingPathComponent("bad")
        let data = try Data(contentsOf: bad.appendingPathComponent("expected.json"))
        let notes = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: [String: String]])
        XCTAssertGreaterThanOrEqual(notes.count, 25)
        for (file, note) in notes.sorted(by: { $0.key < $1.key }) {
            let path = bad.appendingPathComponent(file).path
            do {
                let loaded = try Safetensors.load(path: path)
                XCTFail("\(file) loaded (\(loaded.tensors.count) tensors); expected: \(note["zoo_error"]!)")
            } catch {
                let line = error.description
                print("refused as expected: \(line)")
                XCTAssertTrue(line.hasPrefix(path + ": "), line)
                XCTAssertTrue(line.contains(note["zoo_error"]!), "\(file): \(line)")
                XCTAssertTrue(line.contains("byte "), line)
                XCTAssertFalse(line.contains("\n"), line)
            }
        }
    }

    func testErrorNamesTensorAndOffset() throws {
        do {
            _ = try Safetensors.load(path: Fixture.path("bad/size_mismatch.safetensors"))
            XCTFail("loaded")
        } catch {
            XCTAssertEqual(error.tensor, "a")
            XCTAssertEqual(error.offset, 8 + 1)  // the key "a" sits right after '{'
            XCTAssertEqual(error.reason, .sizeMismatch(shape: [3], dtype: "F32", expected: 12, actual: 8))
            XCTAssertTrue(error.description.hasSuffix(
                "size_mismatch.safetensors: tensor 'a' byte 9: shape [3] of F32 needs 12 bytes but data_offsets span 8"),
                          error.description)
        }
    }

    /// A valid file cut at every length is refused, never read out of bounds.
    func testEveryTruncationIsRefused() throws {
        let whole = try Data(contentsOf: Fixture.root.appendingPathComponent("dtypes.safetensors"))
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/cut.safetensors"
        for length in 0..<whole.count {
            try whole.prefix(length).write(to: URL(fileURLWithPath: path))
            XCTAssertThrowsError(try Safetensors.load(path: path), "length \(length)")
        }
        XCTAssertThrowsError(try Safetensors.load(path: directory + "/missing.safetensors")) { error in
            XCTAssertTrue("\(error)".contains("missing.safetensors"), "\(error)")
        }
    }
}

final class SafetensorsWriteTests: XCTestCase {
    /// Where written files go: $ZOO_SAFETENSORS_OUT when set (for Fixtures/check_safetensors_writer.py),
    /// else a temporary directory.
    private func outputDirectory() throws -> (path: String, temporary: Bool) {
        if let directory = ProcessInfo.processInfo.environment["ZOO_SAFETENSORS_OUT"], !directory.isEmpty {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            return (directory, false)
        }
        return (try temporaryDirectory(), true)
    }

    /// Reading a library-written file and writing its tensors back gives the library's bytes.
    func testRewritingLibraryFilesIsByteIdentical() throws {
        let (directory, temporary) = try outputDirectory()
        defer { if temporary { try? FileManager.default.removeItem(atPath: directory) } }
        // misaligned and pretty_header were written by hand, not by the library.
        for name in ["alexnet_small", "dtypes", "metadata", "names", "no_tensors"] {
            let source = Fixture.path("\(name).safetensors")
            let file = try Safetensors.load(path: source)
            let out = directory + "/\(name).safetensors"
            // Reverse the input order: the writer's order must not depend on it.
            try Safetensors.save(file.tensors.reversed(), metadata: file.metadata, to: out)
            let written = try Data(contentsOf: URL(fileURLWithPath: out))
            let library = try Data(contentsOf: URL(fileURLWithPath: source))
            XCTAssertEqual(written.count, library.count, name)
            XCTAssertTrue(written == library, "\(name): zoo's file differs from the library's")
        }
        // Files the library did not write come out in the library's layout (checked against the
        // library by Fixtures/check_safetensors_writer.py).
        for name in ["misaligned", "pretty_header"] {
            let file = try Safetensors.load(path: Fixture.path("\(name).safetensors"))
            let out = directory + "/\(name).safetensors"
            try Safetensors.save(file.tensors, metadata: file.metadata, to: out)
            let back = try Safetensors.load(path: out)
            XCTAssertEqual(back.copiedTensorCount, 0, name)
            XCTAssertEqual(back.metadata, file.metadata)
            XCTAssertEqual(Set(back.tensors.map(\.name)), Set(file.tensors.map(\.name)))
            for (tensorName, tensor) in back.tensors {
                XCTAssertEqual(bytes(of: tensor), bytes(of: try XCTUnwrap(file[tensorName])), "\(name) \(tensorName)")
            }
        }
        // Views are written densely.
        let matrix = Tensor(floats: (0..<6).map(Float.init), shape: [2, 3])
        let transposed = try Tensor(dtype: .f32, shape: [3, 2], strides: [1, 3], offset: 0, storage: matrix.storage)
        let out = directory + "/views.safetensors"
        try Safetensors.save([("t", transposed), ("m", matrix)], metadata: ["format": "pt"], to: out)
        let back = try Safetensors.load(path: out)
        XCTAssertEqual(back["t"]?.floats(), [0, 3, 1, 4, 2, 5])
        XCTAssertEqual(back.tensors.map(\.name), ["m", "t"])
    }

    func testHeaderLayoutAndEscapes() throws {
        let header = Safetensors.headerBytes(
            tensors: [("a\"\\\n\u{1}é", Tensor(floats: [1], shape: []))], metadata: ["k": "v/\t"])
        let text = String(decoding: header, as: UTF8.self)
        XCTAssertEqual(text, #"{"__metadata__":{"k":"v/\t"},"a\"\\\n\u0001é":{"dtype":"F32","shape":[],"data_offsets":[0,4]}} "#)
        XCTAssertEqual(header.count % 8, 0)
    }

    func testSaveRefusesDuplicateAndReservedNames() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let t = Tensor(floats: [1], shape: [1])
        XCTAssertThrowsError(try Safetensors.save([("a", t), ("a", t)], to: directory + "/x.safetensors")) { error in
            XCTAssertEqual((error as? SafetensorsError)?.reason, .duplicateKey)
        }
        XCTAssertThrowsError(try Safetensors.save([("__metadata__", t)], to: directory + "/x.safetensors"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory + "/x.safetensors"))
        XCTAssertThrowsError(try Safetensors.save([("a", t)], to: directory + "/no/such/dir/x.safetensors")) { error in
            XCTAssertTrue("\(error)".contains("no/such/dir/x.safetensors"), "\(error)")
        }
    }
}
