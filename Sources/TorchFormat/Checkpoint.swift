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
        do { file = try MappedFile(path: path) } catch { throw CheckpointError(.io(error.message), file: path) }
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
/// twice is listed under both paths, as Python sees it) within a budget, so a memo bomb is refused
/// instead of expanded; cycles are refused.
enum TreeWalker {
    static let maxVisits = 10_000_000

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
        var visits = 0
        var ancestors: Set<ObjectIdentifier> = []
        func walk(_ value: PyValue, _ path: String) throws(CheckpointError) {
            visits += 1
            guard visits <= maxVisits else {
                throw CheckpointError(.limit("object graph expands to more than \(maxVisits) values (shared references nested too deeply)"), path: path)
            }
            try body(path, value)
            let children: [(String, PyValue)]
            let identity: ObjectIdentifier
            switch value {
            case let .dict(d):
                identity = ObjectIdentifier(d)
                children = d.items.map { (component($0.key), $0.value) }
            case let .list(l):
                identity = ObjectIdentifier(l)
                children = l.items.enumerated().map { (String($0.offset), $0.element) }
            case let .tuple(t):
                identity = ObjectIdentifier(t)
                children = t.items.enumerated().map { (String($0.offset), $0.element) }
            default:
                return
            }
            guard ancestors.insert(identity).inserted else {
                throw CheckpointError(.pickle("object graph contains a cycle"), path: path)
            }
            for (key, child) in children {
                try walk(child, path.isEmpty ? key : path + "." + key)
            }
            ancestors.remove(identity)
        }
        try walk(root, "")
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
