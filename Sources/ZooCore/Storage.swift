#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only memory mapping of a whole file. The mapping lives as long as any `Storage` sliced
/// from it; pages are loaded by the kernel on first touch, so opening a large file costs nothing
/// until its bytes are read.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    /// The file's bytes. Empty (with a nil base) for an empty file.
    public let bytes: UnsafeRawBufferPointer
    /// The file's device and inode; registered in `InputFiles` while this mapping lives.
    public let identity: FileIdentity

    /// Maps `path` read-only.
    /// - Throws: `IOError` naming the file when it cannot be opened, stat'ed or mapped.
    public init(path: String) throws(IOError) {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw IOError(path: path, operation: "open", errno: errno) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw IOError(path: path, operation: "stat", errno: errno) }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw IOError(path: path, operation: "open", message: "not a regular file")
        }
        let size = Int(info.st_size)
        identity = FileIdentity(info)
        if size == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
        } else {
            let base = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
            guard let base, base != MAP_FAILED else { throw IOError(path: path, operation: "mmap", errno: errno) }
            bytes = UnsafeRawBufferPointer(start: base, count: size)
        }
        InputFiles.add(identity)
    }

    deinit {
        InputFiles.remove(identity)
        if let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) }
    }
}

/// A failed file-system operation, rendered as one line naming the file.
public struct IOError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let operation: String
    public let message: String

    public init(path: String, operation: String, errno code: Int32) {
        self.init(path: path, operation: operation, message: String(cString: strerror(code)))
    }

    public init(path: String, operation: String, message: String) {
        self.path = path
        self.operation = operation
        self.message = message
    }

    public var description: String { "\(path): cannot \(operation): \(message)" }
}

/// A contiguous run of bytes that tensors view. Either a zero-copy slice of a `MappedFile` (kept
/// alive by the storage) or memory this storage owns (64-byte aligned). Immutable once built.
public final class Storage: @unchecked Sendable {
    public let bytes: UnsafeRawBufferPointer
    /// The mapping the bytes live in, if they were not copied.
    public let mapping: MappedFile?
    private let owned: UnsafeMutableRawPointer?
    /// The storage this one is a slice of, kept alive by it.
    private let parent: Storage?

    public var byteCount: Int { bytes.count }
    public var isMapped: Bool { mapping != nil }

    /// For a mapped storage: drops the whole pages of its bytes from this process's memory
    /// (`MADV_DONTNEED`; the mapping is read-only and private, so they are read back from the file
    /// if anything touches them again). Lowers resident memory once a consumer has made its own
    /// copy (e.g. packed weights). Does nothing for owned memory.
    public func releasePages() {
        guard isMapped, let base = bytes.baseAddress else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        guard page > 0 else { return }
        let start = (Int(bitPattern: base) + page - 1) / page * page
        let end = (Int(bitPattern: base) + bytes.count) / page * page
        if end > start { _ = madvise(UnsafeMutableRawPointer(bitPattern: start), end - start, Int32(MADV_DONTNEED)) }
    }

    /// A zero-copy view of `range` of a mapped file. `range` must lie inside the file (checked).
    public init(mapping file: MappedFile, range: Range<Int>) {
        precondition(range.lowerBound >= 0 && range.upperBound <= file.bytes.count, "slice outside the mapping")
        mapping = file
        owned = nil
        parent = nil
        bytes = UnsafeRawBufferPointer(rebasing: file.bytes[range])
    }

    /// A zero-copy view of `range` of another storage. `range` must lie inside it (checked).
    public init(slicing base: Storage, range: Range<Int>) {
        precondition(range.lowerBound >= 0 && range.upperBound <= base.byteCount, "slice outside the storage")
        mapping = base.mapping
        owned = nil
        parent = base
        bytes = UnsafeRawBufferPointer(rebasing: base.bytes[range])
    }

    /// Allocates `byteCount` bytes (zeroed) and lets `initialize` fill them.
    public init(byteCount: Int, initialize: (UnsafeMutableRawBufferPointer) throws -> Void = { _ in }) rethrows {
        precondition(byteCount >= 0)
        let memory = UnsafeMutableRawPointer.allocate(byteCount: max(byteCount, 1), alignment: 64)
        memory.initializeMemory(as: UInt8.self, repeating: 0, count: max(byteCount, 1))
        let buffer = UnsafeMutableRawBufferPointer(start: memory, count: byteCount)
        do { try initialize(buffer) } catch {
            memory.deallocate()
            throw error
        }
        owned = memory
        mapping = nil
        parent = nil
        bytes = UnsafeRawBufferPointer(buffer)
    }

    /// A copy of `source` in memory this storage owns.
    public convenience init(copying source: UnsafeRawBufferPointer) {
        self.init(byteCount: source.count) { destination in
            if source.count > 0 { destination.copyMemory(from: source) }
        }
    }

    /// A copy of `source` in memory this storage owns.
    public convenience init(copying source: [UInt8]) {
        self.init(byteCount: source.count) { destination in
            source.withUnsafeBytes { if $0.count > 0 { destination.copyMemory(from: $0) } }
        }
    }

    deinit { owned?.deallocate() }
}
