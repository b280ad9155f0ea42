import Foundation
import ONNXFormat
import Testing
import TorchFormat
import ZooCore
import ZooModels
import ZooOps

/// `ModelProto.metadata_props`: written by `ONNX.save` (`ONNXWriteOptions.metadataProps`) and read
/// back by the reader and the description in order, whole; refused when ONNX cannot hold them
/// (a key twice, a NUL byte) and, in a hostile file, before protobuf-c unpacks it (invalid UTF-8,
/// more entries than the file's size allows). That the onnx package reads zoo's entries
/// (`onnx.load(f).metadata_props`) was checked by hand with the oracle's onnx 1.23.2.
@Suite struct MetadataPropsTests {
    private let directory: String
    private let source: Graph

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-onnx-metadata-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Fixtures")
        source = try Model.bind(try Checkpoint.load(path: fixtures.appendingPathComponent("torch/alexnet_small.pth").path).stateDict()).graph
    }

    private func cleanUp() { try? FileManager.default.removeItem(atPath: directory) }

    /// Entries no exporter would think of: non-ASCII, control characters, JSON, empty strings.
    private let props: [(key: String, value: String)] = [
        ("zoo.architecture", "alexnet"),
        ("zoo.evaluation_transform", #"{"resize": 256, "crop": 224, "interpolation": "bilinear", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}"#),
        ("auteur ✓", "ligne 1\nligne 2\t\u{1B}[31m"),
        ("", ""),
        ("a", String(repeating: "x", count: 100_000)),
    ]

    private func pairs(_ entries: [(key: String, value: String)]) -> [[String]] { entries.map { [$0.key, $0.value] } }

    @Test func writtenPropsAreReadBackInOrder() throws {
        defer { cleanUp() }
        for (opset, external) in [(17, false), (13, true), (21, false)] {
            let path = directory + "/m\(opset).onnx"
            try ONNX.save(source, to: path, options: ONNXWriteOptions(opset: opset, externalData: external, metadataProps: props))
            #expect(pairs(try ONNX.load(path: path).metadataProps) == pairs(props), "opset \(opset)")
            #expect(try ONNX.describe(path: path).metadataProps.map { [$0.key, $0.value] } == pairs(props), "opset \(opset)")
        }
        // None given: none written (ModelProto field 14, tag 0x72, nowhere at the top level).
        let plain = directory + "/plain.onnx"
        try ONNX.save(source, to: plain)
        #expect(try ONNX.load(path: plain).metadataProps.isEmpty)
        #expect(try ONNX.describe(path: plain).metadataProps.isEmpty)
        #expect(try topLevelFields(plain).contains(14) == false)
        #expect(try topLevelFields(directory + "/m17.onnx").filter { $0 == 14 }.count == props.count)
    }

    @Test func propsONNXCannotHoldAreRefusedBeforeWriting() throws {
        defer { cleanUp() }
        let path = directory + "/x.onnx"
        let twice = ONNXWriteOptions(metadataProps: [("k", "1"), ("j", "2"), ("k", "3")])
        #expect(throws: ONNXError(file: path, "metadata_props: key 'k' given twice (ONNX allows each key once)")) {
            try ONNX.save(source, to: path, options: twice)
        }
        let nul = ONNXWriteOptions(metadataProps: [("k", "a\0b")])
        #expect(throws: ONNXError(file: path, "metadata_props: key 'k': a NUL byte cannot be written in an ONNX string")) {
            try ONNX.save(source, to: path, options: nul)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).isEmpty)
    }

    /// A zoo-written model with `extra` appended: more top-level ModelProto fields.
    private func model(appending extra: [UInt8]) throws -> String {
        let plain = directory + "/plain.onnx", path = directory + "/hostile.onnx"
        try ONNX.save(source, to: plain)
        try (Data(contentsOf: URL(fileURLWithPath: plain)) + extra).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// One metadata entry (ModelProto field 14: StringStringEntryProto key 1, value 2) of any bytes.
    private func entry(key: [UInt8], value: [UInt8]) -> [UInt8] {
        var message = WireWriter()
        message.bytes(1, key)
        message.bytes(2, value)
        var model = WireWriter()
        model.bytes(14, message.bytes)
        return model.bytes
    }

    @Test func hostileStringsAreRefusedBeforeUnpacking() throws {
        defer { cleanUp() }
        let good = entry(key: Array("k".utf8), value: Array("v".utf8))
        for (bad, fault) in [([0x61, 0xFF], "is not valid UTF-8"), ([0x61, 0x00, 0x62], "contains a NUL byte"),
                             ([0xED, 0xA0, 0x80], "is not valid UTF-8")] as [([UInt8], String)] {
            let path = try model(appending: good + entry(key: Array("k2".utf8), value: bad))
            let size = try Data(contentsOf: URL(fileURLWithPath: path)).count
            let at = size - bad.count + (bad[0] == 0x61 ? 1 : 0)
            let expected = ONNXError(file: path, "byte \(at): metadata_props[1].value: string field \(fault) (ONNX names are UTF-8 text)")
            #expect(throws: expected) { try ONNX.load(path: path) }
            #expect(throws: expected) { try ONNX.describe(path: path) }
        }
    }

    @Test func entriesAreBoundedByTheFileSize() throws {
        defer { cleanUp() }
        // A thousand entries load, every one kept, a repeated key included (onnx.checker would refuse it).
        var many: [UInt8] = []
        for i in 0..<1000 { many += entry(key: Array("k\(i % 999)".utf8), value: Array("v\(i)".utf8)) }
        let loaded = try ONNX.load(path: try model(appending: many)).metadataProps
        #expect(loaded.count == 1000)
        #expect(loaded.last.map { [$0.key, $0.value] } == ["k0", "v999"])
        // A million empty entries (2 bytes each) would unpack to ~64 bytes each, plus protobuf-c's scratch.
        let bomb = try model(appending: Array(repeating: [0x72, 0x00], count: 1_000_000).flatMap { $0 })
        do throws(ONNXError) {
            _ = try ONNX.load(path: bomb)
            Issue.record("a million metadata entries loaded")
        } catch {
            #expect(error.file == bomb)
            #expect(error.message.contains("maxONNXExpansion"), "\(error)")
            #expect(!error.description.contains("\n"))
        }
    }

    /// The field numbers of the file's top-level (ModelProto) fields, in order.
    private func topLevelFields(_ path: String) throws -> [Int] {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        var fields: [Int] = [], at = 0
        func varint() -> UInt64 {
            var value: UInt64 = 0, shift: UInt64 = 0
            while true {
                let byte = bytes[at]
                at += 1
                value |= UInt64(byte & 0x7F) << shift
                if byte & 0x80 == 0 { return value }
                shift += 7
            }
        }
        while at < bytes.count {
            let tag = varint()
            fields.append(Int(tag >> 3))
            switch tag & 7 {
            case 0: _ = varint()
            case 1: at += 8
            case 5: at += 4
            default: at += Int(varint())
            }
        }
        return fields
    }
}
