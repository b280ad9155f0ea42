import Foundation
import XCTest
@testable import TorchFormat
import ZooCore

/// Every checkpoint fixture made by Fixtures/make_fixtures.py is read and compared with what
/// torch.load returned for it: tensor paths in order, dtype, shape, strides, storage offset, which
/// tensors share a storage, every element's bytes, and every non-tensor entry.
final class FixtureValueTests: XCTestCase {
    static var expectedFiles: [String] {
        let directory = Fixture.torch("")
        return ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { $0.hasSuffix(".expected.json") }.sorted()
    }

    func testEveryFixtureMatchesTorch() throws {
        let files = Self.expectedFiles
        XCTAssertGreaterThanOrEqual(files.count, 13, "fixtures missing: run Fixtures/make_fixtures.py")
        for name in files {
            try check(name)
        }
    }

    func testTheThreeAlexNetFormatsAgree() throws {
        let zip = try Checkpoint.load(path: Fixture.torch("alexnet_small.pth"))
        XCTAssertEqual(zip.format, .zip)
        XCTAssertEqual(try Checkpoint.load(path: Fixture.torch("alexnet_small_legacy.pth")).format, .legacy)
        XCTAssertEqual(try Checkpoint.load(path: Fixture.torch("alexnet_small_tar.pth")).format, .tar)
        let names = ["features.0", "features.3", "features.6", "features.8", "features.10",
                     "classifier.1", "classifier.4", "classifier.6"].flatMap { [$0 + ".weight", $0 + ".bias"] }
        for file in ["alexnet_small.pth", "alexnet_small_legacy.pth", "alexnet_small_tar.pth", "alexnet_small_deflated.pth"] {
            let stateDict = try Checkpoint.load(path: Fixture.torch(file)).stateDict()
            XCTAssertEqual(stateDict.entries.map(\.name), names, file)
            XCTAssertEqual(stateDict.entries.map(\.tensor.tensor.dtype), Array(repeating: .f32, count: 16), file)
        }
    }

    func testZipTensorsAreMappedNotCopied() throws {
        let checkpoint = try Checkpoint.load(path: Fixture.torch("alexnet_small.pth"))
        for (path, t) in checkpoint.tensors {
            XCTAssertTrue(t.tensor.storage.isMapped, "\(path) was copied")
        }
    }

    private func check(_ jsonName: String) throws {
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Fixture.torch(jsonName)))) as! [String: Any]
        let binName = jsonName.replacingOccurrences(of: ".json", with: ".bin")
        let expectedBytes = try Data(contentsOf: URL(fileURLWithPath: Fixture.torch(binName)))
        let file = json["file"] as! String
        let checkpoint = try Checkpoint.load(path: Fixture.torch(file))
        XCTAssertEqual(checkpoint.format.rawValue, json["format"] as? String, file)

        let expected = json["tensors"] as! [[String: Any]]
        XCTAssertEqual(checkpoint.tensors.map(\.path), expected.map { $0["path"] as! String }, file)
        var groups: [Int: ObjectIdentifier] = [:]
        for (entry, (path, t)) in zip(expected, checkpoint.tensors) {
            let where_ = "\(file) \(path)"
            XCTAssertEqual(t.tensor.dtype.rawValue, entry["dtype"] as? String, where_)
            XCTAssertEqual(t.tensor.shape, entry["shape"] as? [Int], where_)
            XCTAssertEqual(t.tensor.strides, entry["stride"] as? [Int], where_)
            XCTAssertEqual(t.tensor.offset, entry["storage_offset"] as? Int, where_)
            XCTAssertEqual(t.source.elementCount, entry["storage_numel"] as? Int, where_)
            XCTAssertEqual(t.isParameter, entry["is_parameter"] as? Bool, where_)
            XCTAssertEqual(t.requiresGrad, entry["requires_grad"] as? Bool, where_)
            // Tensors torch shows sharing a storage share one here, and no others do.
            let group = entry["storage_group"] as! Int
            let identity = ObjectIdentifier(t.tensor.storage)
            if let known = groups[group] {
                XCTAssertEqual(known, identity, "\(where_) should share storage group \(group)")
            } else {
                XCTAssertFalse(groups.values.contains(identity), "\(where_) shares a storage torch keeps separate")
                groups[group] = identity
            }
            let offset = entry["bin_offset"] as! Int, count = entry["nbytes"] as! Int
            let want = expectedBytes[offset..<(offset + count)]
            t.tensor.withContiguousBytes { got in
                XCTAssertTrue(got.elementsEqual(want), "\(where_): values differ from torch's")
            }
        }
        try checkOthers(json["others"] as? [String: Any] ?? [:], checkpoint, file)
    }

    /// Non-tensor leaves, encoded by the fixture script as JSON (sets as {"set": […]}, bytes as
    /// {"bytes_hex": "…"}, numpy scalars as their value).
    private func checkOthers(_ others: [String: Any], _ checkpoint: Checkpoint, _ file: String) throws {
        var leaves: [String: PyValue] = [:]
        try TreeWalker.visit(checkpoint.root) { path, value in leaves[path] = value }
        for (path, want) in others {
            guard let got = leaves[path] else {
                XCTFail("\(file): entry \(path) missing")
                continue
            }
            let where_ = "\(file) \(path)"
            switch want {
            case is NSNull:
                guard case .none = got else { return XCTFail("\(where_): \(got.kindName) is not None") }
            case let number as NSNumber:
                switch got {
                case let .bool(b): XCTAssertEqual(b, number.boolValue, where_)
                case let .int(i): XCTAssertEqual(Double(i), number.doubleValue, where_)
                case let .float(f): XCTAssertEqual(f, number.doubleValue, where_)
                case let .object(o) where o.callable.name == "scalar":
                    let raw = o.args.items[1].bytesValue!
                    XCTAssertEqual(raw.withUnsafeBytes { $0.loadUnaligned(as: Double.self) }, number.doubleValue, where_)
                default: XCTFail("\(where_): \(got.kindName) is not a number")
                }
            case let text as String:
                XCTAssertEqual(got.stringValue, text, where_)
            case let object as [String: Any]:
                if let hex = object["bytes_hex"] as? String {
                    let bytes = got.bytesValue ?? []
                    XCTAssertEqual(bytes.map { String(format: "%02x", $0) }.joined(), hex, where_)
                } else if let items = object["set"] as? [String] {
                    guard case let .object(o) = got, o.callable.name == "set",
                          let list = o.args.items.first?.sequenceItems else { return XCTFail("\(where_): not a set") }
                    XCTAssertEqual(Set(list.compactMap(\.stringValue)), Set(items), where_)
                } else {
                    XCTFail("\(where_): unknown encoding \(object)")
                }
            default:
                XCTFail("\(where_): unknown expected value \(want)")
            }
        }
    }
}
