import ZooCore

/// A PyTorch checkpoint loaded without executing anything: the whole pickled object (`root`) with
/// every tensor a view over storage that is, wherever possible, a zero-copy slice of the mapped file.
///
/// Reads the three formats torch has written (see FORMATS.md beside the project): the zip format
/// (torch ≥ 1.6, any archive prefix, stored or deflated records, either byte order), the legacy
/// stacked-pickle format (torch.save(..., _use_new_zipfile_serialization=False)) and the tar format of
/// torch < 0.1.10.
public struct Checkpoint: @unchecked Sendable {
    public enum Format: String, Sendable { case zip, legacy, tar }

    public struct Options: Sendable {
        /// Verify each zip record's CRC-32 (torch itself never does). Costs one pass over the data.
        public var verifyChecksums = true
        public var limits = Unpickler.Limits()
        public init(verifyChecksums: Bool = true) { self.verifyChecksums = verifyChecksums }
    }

    public let path: String
    public let format: Format
    /// The byte order the file's tensor data was written in (tensors are always host order in memory).
    public let byteOrder: ByteOrder
    public let root: PyValue
    /// Every tensor reachable from `root`, by key path, in pickle order.
    public let tensors: [(path: String, tensor: TorchTensor)]

    public enum ByteOrder: String, Sendable { case little, big }

    /// Opens and parses `path`. Errors name the file and, where known, record, byte offset and tensor.
    public static func load(path: String, options: Options = Options()) throws(CheckpointError) -> Checkpoint {
        let file: MappedFile
        do { file = try MappedFile(path: path) } catch { throw CheckpointError(.io("cannot \(error.operation): \(error.message)"), file: path) }
        do {
            return try load(file: file, options: options)
        } catch {
            throw error.inFile(path)
        }
    }

    static func load(file: MappedFile, options: Options) throws(CheckpointError) -> Checkpoint {
        let bytes = file.bytes
        guard bytes.count > 0 else { throw CheckpointError(.emptyFile) }
        let format = detectFormat(bytes)
        let root: PyValue
        let order: ByteOrder
        switch format {
        case .zip:
            (root, order) = try ZipCheckpoint.read(file: file, options: options)
        case .legacy:
            (root, order) = try LegacyCheckpoint.read(file: file, options: options)
        case .tar:
            (root, order) = try TarCheckpoint.read(file: file, options: options)
        case nil:
            let head = bytes.prefix(8).map { byte in
                (0x20..<0x7F).contains(byte) ? String(UnicodeScalar(byte)) : "\\x" + String(byte, radix: 16)
            }.joined()
            throw CheckpointError(.notACheckpoint("no zip, tar or pickle signature; starts with \"\(head)\""), offset: 0)
        }
        let tensors = try TreeWalker.tensors(in: root)
        return Checkpoint(path: file.path, format: format!, byteOrder: order, root: root, tensors: tensors)
    }

    /// Every tensor reachable from `value`, by dotted key path relative to it.
    public static func tensors(in value: PyValue) throws(CheckpointError) -> [(path: String, tensor: TorchTensor)] {
        try TreeWalker.tensors(in: value)
    }

    /// Which of the three formats the bytes look like, from their signatures alone.
    static func detectFormat(_ bytes: UnsafeRawBufferPointer) -> Format? {
        if bytes.count > 262, Array(bytes[257..<262]) == Array("ustar".utf8) { return .tar }
        if bytes.count >= 2, bytes[0] == 0x80, bytes[1] <= 5 { return .legacy }
        if ZipArchive.looksLikeZip(bytes) { return .zip }
        return nil
    }
}

/// Walks an object graph from the unpickler. Shared references are followed (a value referenced
/// twice is listed under both paths, as Python sees it), but only after the graph's expanded size
/// has been counted over unique objects: a memo bomb (references nested to expand exponentially)
/// is refused in time linear in the file, never expanded. Cycles are refused.
enum TreeWalker {
    static let maxExpandedValues = 5_000_000

    /// Every tensor reachable from `root`, by dotted key path.
    static func tensors(in root: PyValue) throws(CheckpointError) -> [(path: String, tensor: TorchTensor)] {
        var found: [(path: String, tensor: TorchTensor)] = []
        try visit(root) { path, value in
            if case let .tensor(t) = value { found.append((path, t)) }
        }
        return found
    }

    /// Calls `body` for every value in the graph with its key path ("" for the root). Dict keys that
    /// are strings or integers become path components; list and tuple items use their index.
    static func visit(_ root: PyValue, _ body: (String, PyValue) throws(CheckpointError) -> Void) throws(CheckpointError) {
        try checkExpandedSize(root)
        func walk(_ value: PyValue, _ path: String) throws(CheckpointError) {
            try body(path, value)
            for (key, child) in children(value) {
                try walk(child, path.isEmpty ? key : path + "." + key)
            }
        }
        try walk(root, "")
    }

    /// Counts the values a full walk would visit, sharing counts between references to one object.
    private static func checkExpandedSize(_ root: PyValue) throws(CheckpointError) {
        var sizes: [ObjectIdentifier: Int] = [:]
        var inProgress: Set<ObjectIdentifier> = []
        func size(_ value: PyValue) throws(CheckpointError) -> Int {
            guard let identity = identity(value) else { return 1 }
            if let known = sizes[identity] { return known }
            guard inProgress.insert(identity).inserted else {
                throw CheckpointError(.pickle("object graph contains a cycle"))
            }
            var total = 1
            for (_, child) in children(value) {
                total += try size(child)
                guard total <= maxExpandedValues else {
                    throw CheckpointError(.limit("object graph expands to more than \(maxExpandedValues) values (shared references nested too deeply: a memo bomb?)"))
                }
            }
            inProgress.remove(identity)
            sizes[identity] = total
            return total
        }
        _ = try size(root)
    }

    private static func identity(_ value: PyValue) -> ObjectIdentifier? {
        switch value {
        case let .dict(d): ObjectIdentifier(d)
        case let .list(l): ObjectIdentifier(l)
        case let .tuple(t): ObjectIdentifier(t)
        default: nil
        }
    }

    private static func children(_ value: PyValue) -> [(String, PyValue)] {
        switch value {
        case let .dict(d): d.items.map { (component($0.key), $0.value) }
        case let .list(l): l.items.enumerated().map { (String($0.offset), $0.element) }
        case let .tuple(t): t.items.enumerated().map { (String($0.offset), $0.element) }
        default: []
        }
    }

    static func component(_ key: PyValue) -> String {
        switch key {
        case let .string(s): s.value
        case let .int(i): String(i)
        case let .bool(b): b ? "True" : "False"
        default: "<\(key.kindName)>"
        }
    }
}
