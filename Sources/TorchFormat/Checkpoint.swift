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
        /// Budgets for everything the file declares (pickle sizes, inflated records, tensor views):
        /// `ResourceLimits.current` (the defaults with `ZOO_LIMITS` applied) unless given.
        public var limits: ResourceLimits
        public init(verifyChecksums: Bool = true, limits: ResourceLimits = .current) {
            self.verifyChecksums = verifyChecksums
            self.limits = limits
        }
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
    /// A malformed `ZOO_LIMITS` is refused (`.configuration`) before the file is opened.
    public static func load(path: String, options: Options = Options()) throws(CheckpointError) -> Checkpoint {
        if let problem = ResourceLimits.environmentProblem { throw CheckpointError(.configuration(problem), file: path) }
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
        let tensors = try TreeWalker.tensors(in: root, limits: options.limits)
        return Checkpoint(path: file.path, format: format!, byteOrder: order, root: root, tensors: tensors)
    }

    /// Every tensor reachable from `value`, by dotted key path relative to it, within `limits`'
    /// `maxPickleDepth`, `maxExpandedValues` and `maxKeyPathBytes`.
    public static func tensors(in value: PyValue, limits: ResourceLimits = .current) throws(CheckpointError) -> [(path: String, tensor: TorchTensor)] {
        try TreeWalker.tensors(in: value, limits: limits)
    }

    /// Which of the three formats the bytes are, decided as torch.load decides: a zip local header
    /// at byte 0 means zip and nothing else (`_is_zipfile`); otherwise a first tar header that Python's
    /// tarfile accepts (its checksum) means tar; otherwise a pickle means the legacy format.
    public static func detectFormat(_ bytes: UnsafeRawBufferPointer) -> Format? {
        if ZipArchive.looksLikeZip(bytes) { return .zip }
        if bytes.count >= 512, TarReader.checksumMatches(UnsafeRawBufferPointer(rebasing: bytes[0..<512])) { return .tar }
        if bytes.count >= 2, bytes[0] == 0x80, bytes[1] <= 5 { return .legacy }
        return nil
    }
}

/// Walks an object graph from the unpickler, without recursion: a hostile pickle can nest values
/// arbitrarily deep (the unpickler bounds nesting as it builds, but a list can still be appended to
/// after something already holds it).
///
/// Before any walk, `checkStructure` visits every object once, in time linear in the graph's unique
/// objects, and refuses cycles, nesting deeper than `maxPickleDepth` (which bounds the recursion of
/// the pickler, the one part of zoo that descends a graph recursively) and graphs whose walk would
/// visit more than `maxExpandedValues` values. A shared object is walked once per reference, as
/// Python sees it, so the count is of expanded values: a memo bomb (references nested to expand
/// exponentially) is refused without being expanded. The walk itself builds a key path per value
/// and refuses to build more than `maxKeyPathBytes` of them.
enum TreeWalker {
    /// Every tensor reachable from `root`, by dotted key path, in pickle order. The walk enters only
    /// containers holding a tensor, so a large graph of other values (a memo bomb that stays under
    /// the limits) costs one `checkStructure` pass and no path strings.
    static func tensors(in root: PyValue, limits: ResourceLimits) throws(CheckpointError) -> [(path: String, tensor: TorchTensor)] {
        let holding = try checkStructure(root, limits: limits)
        var found: [(path: String, tensor: TorchTensor)] = []
        try walk(root, limits: limits, entering: { value in
            if case .tensor = value { return true }
            return identity(value).map(holding.contains) ?? false
        }) { path, value in
            if case let .tensor(t) = value { found.append((path, t)) }
        }
        return found
    }

    /// Calls `body` for every value reachable through dict values and list and tuple items, in
    /// pickle order, with its key path ("" for the root). Dict keys that are strings or integers
    /// become path components; list and tuple items use their index.
    static func visit(_ root: PyValue, limits: ResourceLimits = .current, _ body: (String, PyValue) throws(CheckpointError) -> Void) throws(CheckpointError) {
        try checkStructure(root, limits: limits)
        try walk(root, limits: limits, entering: { _ in true }, body)
    }

    /// The walk of `visit` over the values `entering` admits (and what they hold); `root` must have
    /// passed `checkStructure`.
    private static func walk(_ root: PyValue, limits: ResourceLimits, entering: (PyValue) -> Bool,
                             _ body: (String, PyValue) throws(CheckpointError) -> Void) throws(CheckpointError) {
        var pending: [(path: String, value: PyValue)] = entering(root) ? [("", root)] : []
        var pathBytes = 0
        while let (path, value) = pending.popLast() {
            try body(path, value)
            for (key, child) in children(value).reversed() where entering(child) {
                // Counted before the path is built: a long key shared by many references would
                // otherwise be copied once per reference.
                let length = path.utf8.count + 1 + key.utf8.count
                pathBytes += length
                guard pathBytes <= limits.maxKeyPathBytes else {
                    throw CheckpointError(.limit(LimitExceeded(\.maxKeyPathBytes, of: limits,
                        "key paths totalling more than \(ResourceLimits.bytesText(limits.maxKeyPathBytes)) (one per reference to a value; this one is \(ResourceLimits.bytesText(length)))")))
                }
                pending.append((path.isEmpty ? key : path + "." + key, child))
            }
        }
    }

    /// The error for values nested deeper than `limits.maxPickleDepth`.
    static func tooDeep(_ limits: ResourceLimits) -> LimitExceeded {
        LimitExceeded(\.maxPickleDepth, of: limits, "values nested more than \(limits.maxPickleDepth) levels deep")
    }

    /// Refuses cycles, nesting deeper than `maxPickleDepth` and more than `maxExpandedValues` values
    /// in a walk. Looks inside everything the pickler writes: dict keys, values and attributes, list
    /// and tuple items, and kept objects' arguments and state. A depth-first search over unique
    /// objects with an explicit stack; each object's expanded size is counted once.
    /// - Returns: the containers through whose dict values and list or tuple items a tensor is reached.
    @discardableResult
    static func checkStructure(_ root: PyValue, limits: ResourceLimits) throws(CheckpointError) -> Set<ObjectIdentifier> {
        struct Frame {
            let identity: ObjectIdentifier
            let parts: [PyValue]
            /// How many of `parts` are walked through (the rest are dict keys, attributes, object parts).
            let walked: Int
            var next = 0
            var size = 1
            var holdsTensor = false
        }
        let maxDepth = limits.maxPickleDepth, maxExpandedValues = limits.maxExpandedValues
        var sizes: [ObjectIdentifier: Int] = [:]
        var holding: Set<ObjectIdentifier> = []
        var open: [Frame] = []
        var onPath: Set<ObjectIdentifier> = []

        /// The expanded size of `value` when known; otherwise opens a frame for it and returns nil.
        func enter(_ value: PyValue) throws(CheckpointError) -> Int? {
            guard let identity = identity(value) else { return 1 }
            if let known = sizes[identity] { return known }
            guard onPath.insert(identity).inserted else {
                throw CheckpointError(.pickle("object graph contains a cycle"))
            }
            guard open.count < maxDepth else { throw CheckpointError(.limit(tooDeep(limits))) }
            let (parts, walked) = partsWalkedFirst(value)
            open.append(Frame(identity: identity, parts: parts, walked: walked))
            return nil
        }
        func add(_ size: Int) throws(CheckpointError) {
            open[open.count - 1].size += size
            guard open[open.count - 1].size <= maxExpandedValues else {
                throw CheckpointError(.limit(LimitExceeded(\.maxExpandedValues, of: limits,
                    "an object graph of more than \(maxExpandedValues) values (counting each reference to a shared value)")))
            }
        }
        /// Notes that the open frame's walked part `value` is or holds a tensor.
        func noteTensor(_ value: PyValue, at index: Int) {
            guard index < open[open.count - 1].walked else { return }
            let leads: Bool = if case .tensor = value { true } else { identity(value).map(holding.contains) ?? false }
            if leads { open[open.count - 1].holdsTensor = true }
        }

        guard try enter(root) == nil else { return holding }
        while let frame = open.last {
            if frame.next < frame.parts.count {
                open[open.count - 1].next += 1
                let part = frame.parts[frame.next]
                if let size = try enter(part) {
                    try add(size)
                    noteTensor(part, at: frame.next)
                }
            } else {
                open.removeLast()
                onPath.remove(frame.identity)
                sizes[frame.identity] = frame.size
                if frame.holdsTensor { holding.insert(frame.identity) }
                if let parent = open.last {
                    try add(frame.size)
                    noteTensor(parent.parts[parent.next - 1], at: parent.next - 1)
                }
            }
        }
        return holding
    }

    /// True when a cycle is reachable from any of `roots`: an iterative depth-first search over
    /// unique objects, linear in what it reaches.
    static func containsCycle(from roots: [PyValue]) -> Bool {
        var finished: Set<ObjectIdentifier> = []
        var onPath: Set<ObjectIdentifier> = []
        var open: [(identity: ObjectIdentifier, parts: [PyValue], next: Int)] = []
        for root in roots {
            guard let start = identity(root), !finished.contains(start) else { continue }
            onPath.insert(start)
            open.append((start, parts(root), 0))
            while let frame = open.last {
                guard frame.next < frame.parts.count else {
                    open.removeLast()
                    onPath.remove(frame.identity)
                    finished.insert(frame.identity)
                    continue
                }
                open[open.count - 1].next += 1
                let part = frame.parts[frame.next]
                guard let child = identity(part), !finished.contains(child) else { continue }
                guard onPath.insert(child).inserted else { return true }
                open.append((child, parts(part), 0))
            }
        }
        return false
    }

    private static func identity(_ value: PyValue) -> ObjectIdentifier? {
        switch value {
        case let .dict(d): ObjectIdentifier(d)
        case let .list(l): ObjectIdentifier(l)
        case let .tuple(t): ObjectIdentifier(t)
        case let .object(o): ObjectIdentifier(o)
        default: nil
        }
    }

    /// What a walk descends into, with path components.
    private static func children(_ value: PyValue) -> [(String, PyValue)] {
        switch value {
        case let .dict(d): d.items.map { (component($0.key), $0.value) }
        case let .list(l): l.items.enumerated().map { (String($0.offset), $0.element) }
        case let .tuple(t): t.items.enumerated().map { (String($0.offset), $0.element) }
        default: []
        }
    }

    /// Everything the pickler descends into, the parts a walk goes through first (dict values, list
    /// and tuple items), with their count.
    private static func partsWalkedFirst(_ value: PyValue) -> (parts: [PyValue], walked: Int) {
        switch value {
        case let .dict(d):
            (d.items.map(\.value) + d.items.map(\.key) + (d.attributes.map { [$0] } ?? []), d.items.count)
        case let .list(l): (l.items, l.items.count)
        case let .tuple(t): (t.items, t.items.count)
        default: (parts(value), 0)
        }
    }

    /// Everything the pickler descends into.
    private static func parts(_ value: PyValue) -> [PyValue] {
        switch value {
        case let .dict(d): d.items.flatMap { [$0.key, $0.value] } + (d.attributes.map { [$0] } ?? [])
        case let .list(l): l.items
        case let .tuple(t): t.items
        case let .object(o): o.args.items + (o.state.map { [$0] } ?? [])
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
