import Foundation
@testable import TorchFormat
import ZooCore

/// Hostile checkpoints built byte by byte: hand-written pickle opcodes (protocol 2, as
/// Fixtures/make_fixtures.py writes them) in a zip made by the project's own `ZipWriter`.
enum Pickle {
    static let proto: [UInt8] = [0x80, 0x02]
    static let stop: [UInt8] = [0x2E]
    static let mark: [UInt8] = [0x28]
    static let none: [UInt8] = [0x4E]

    static func global(_ module: String, _ name: String) -> [UInt8] { [0x63] + Array("\(module)\n\(name)\n".utf8) }

    static func string(_ text: String) -> [UInt8] {
        let utf8 = Array(text.utf8)
        return [0x58] + withUnsafeBytes(of: UInt32(utf8.count).littleEndian, Array.init) + utf8
    }

    /// LONG1 with 8 bytes: any Int.
    static func int(_ value: Int) -> [UInt8] { [0x8A, 8] + withUnsafeBytes(of: Int64(value).littleEndian, Array.init) }

    static func ints(_ values: [Int]) -> [UInt8] { mark + values.flatMap(int) + [0x74] }

    static let emptyOrderedDict = global("collections", "OrderedDict") + [0x29, 0x52]

    /// The persistent id of a storage: zip format (5 items) or legacy (6, with no view).
    static func storage(_ key: String, _ type: String = "FloatStorage", numel: Int = 4, legacy: Bool = false) -> [UInt8] {
        mark + string("storage") + global("torch", type) + string(key) + string("cpu") + int(numel)
            + (legacy ? none : []) + [0x74, 0x51]
    }

    /// The argument tuple of `_rebuild_tensor_v2` (without its MARK and TUPLE).
    static func tensorArgs(_ key: String, offset: Int = 0, size: [Int] = [4], stride: [Int] = [1], type: String = "FloatStorage",
                           numel: Int = 4, legacy: Bool = false) -> [UInt8] {
        storage(key, type, numel: numel, legacy: legacy) + int(offset) + ints(size) + ints(stride) + [0x89] + emptyOrderedDict
    }

    static func tensor(_ key: String, offset: Int = 0, size: [Int] = [4], stride: [Int] = [1], type: String = "FloatStorage",
                       numel: Int = 4, legacy: Bool = false) -> [UInt8] {
        global("torch._utils", "_rebuild_tensor_v2") + mark
            + tensorArgs(key, offset: offset, size: size, stride: stride, type: type, numel: numel, legacy: legacy) + [0x74, 0x52]
    }

    /// A whole pickle of a dict of `items`.
    static func dict(_ items: [(String, [UInt8])]) -> [UInt8] {
        proto + [0x7D] + mark + items.flatMap { string($0.0) + $0.1 } + [0x75] + stop
    }

    static func floats(_ values: [Float]) -> [UInt8] { values.withUnsafeBytes(Array.init) }
}

extension FileManager {
    /// A fresh file path in a temporary directory removed by `cleanup`.
    static func scratchPath(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("zoo-hostile-\(UUID().uuidString)-\(name)").path
    }
}

/// Writes a zip checkpoint (folder "archive") holding `pickle` as data.pkl and `records` as data/<key>.
func writeZipCheckpoint(_ pickle: [UInt8], records: [(String, [UInt8])] = [], alignment: Int = 64,
                        to path: String = FileManager.scratchPath("archive.pth")) throws -> String {
    let output = try OutputFile(path: path)
    var zip = ZipWriter(output: output, prefix: "archive", alignment: alignment)
    try zip.add("data.pkl", pickle)
    for (key, bytes) in records { try zip.add("data/" + key, bytes) }
    try zip.finish()
    try output.commit()
    return path
}

/// The error `Checkpoint.load` throws for `path`, or nil when it loads.
func loadError(_ path: String, options: Checkpoint.Options = Checkpoint.Options()) -> CheckpointError? {
    do {
        _ = try Checkpoint.load(path: path, options: options)
        return nil
    } catch {
        return error
    }
}
