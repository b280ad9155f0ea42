import CSignalCleanup
import Synchronization
#if canImport(Glibc)
import Glibc
private let systemWrite = Glibc.write
#elseif canImport(Darwin)
import Darwin
private let systemWrite = Darwin.write
#endif

/// A file written atomically, used by every writer — and never one of the files being read.
///
/// Bytes go to a temporary file beside the destination (`.<basename>.zoo-tmp-<pid>-<random>`),
/// through a buffer (writes at least as large as the buffer go straight to the file). Only `commit()`
/// makes them visible: it flushes, fsyncs and renames the temporary file over the destination. Until
/// then the destination is untouched; an instance that is discarded, or deinitialized without a
/// commit (a writer threw half-way), removes its temporary file, and so does SIGINT, SIGTERM, SIGHUP
/// or SIGQUIT ending the process (CSignalCleanup).
///
/// The destination is resolved first:
/// - a symbolic link is written through: the temporary file goes beside the link's final target,
///   which the rename replaces (the link stays a link);
/// - `-`, a character device, a FIFO or a socket (`/dev/stdout`, `/dev/null`, a named pipe) is
///   streamed to, never replaced: bytes are written to it as they come, and `discard()` cannot take
///   them back (`isStreamed`);
/// - a directory is refused, and so is a file that is one of the process's inputs — mapped by a
///   live `MappedFile` (same device and inode, through any path or hard link).
///
/// The new file gets the default permissions (0666 minus the umask), not the old file's.
/// Errors are `IOError`s naming the destination path.
public final class OutputFile {
    /// The destination as given.
    public let path: String
    /// Where the bytes go until `commit()`; nil when streamed.
    public let temporaryPath: String?
    /// Where `commit()` renames the temporary file to: `path` with symbolic links resolved.
    public let finalPath: String
    /// Bytes written so far (buffered or not): the offset the next write lands at.
    public private(set) var position = 0
    /// True when the destination is streamed to (`-`, a device, FIFO or socket), not replaced.
    public var isStreamed: Bool { temporaryPath == nil }

    private enum State { case open, committed, discarded }
    private var state = State.open
    private var descriptor: Int32
    /// Whether `descriptor` is ours to close (standard output is not).
    private let ownsDescriptor: Bool
    private let cleanupSlot: Int32
    private let buffer: UnsafeMutableRawBufferPointer
    private var buffered = 0

    /// Resolves the destination and creates the temporary file beside it (or opens the stream).
    /// - Throws: `IOError` when `path` names no file, a directory or an input, or cannot be created.
    public init(path: String, bufferSize: Int = 1 << 20) throws(IOError) {
        precondition(bufferSize > 0, "buffer size must be positive")
        self.path = path
        if path == "-" {
            (temporaryPath, finalPath, descriptor, ownsDescriptor, cleanupSlot) = (nil, path, STDOUT_FILENO, false, -1)
            buffer = .allocate(byteCount: bufferSize, alignment: 64)
            return
        }
        var info = stat()
        if stat(path, &info) == 0 {
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                throw IOError(path: path, operation: "write", message: "it is a directory")
            case S_IFREG:
                if InputFiles.contains(FileIdentity(info)) {
                    throw IOError(path: path, operation: "write", message: "it is one of the files being read (same file); refusing to overwrite an input")
                }
            default:
                let fd = open(path, O_WRONLY | O_CLOEXEC)
                guard fd >= 0 else { throw IOError(path: path, operation: "open", errno: errno) }
                (temporaryPath, finalPath, descriptor, ownsDescriptor, cleanupSlot) = (nil, path, fd, true, -1)
                buffer = .allocate(byteCount: bufferSize, alignment: 64)
                return
            }
        }
        let (target, temporary) = try OutputFile.sibling(of: path, kind: "tmp")
        // Registered before it exists: a signal between open and registration would leave it behind.
        cleanupSlot = zoo_cleanup_add(temporary)
        descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
        guard descriptor >= 0 else {
            let code = errno
            zoo_cleanup_remove(cleanupSlot)
            throw IOError(path: path, operation: "create a temporary file beside it", errno: code)
        }
        (temporaryPath, finalPath, ownsDescriptor) = (temporary, target, true)
        buffer = .allocate(byteCount: bufferSize, alignment: 64)
    }

    /// `path`'s final target (`resolvingLinks`) and a fresh hidden name beside it,
    /// `.<basename>.zoo-<kind>-<pid>-<random>`, in the same directory so a rename stays atomic.
    static func sibling(of path: String, kind: String) throws(IOError) -> (target: String, sibling: String) {
        let target = try resolvingLinks(path)
        let slash = target.lastIndex(of: "/")
        let directory = slash.map { String(target[...$0]) } ?? ""
        let basename = slash.map { String(target[target.index(after: $0)...]) } ?? target
        guard !basename.isEmpty else { throw IOError(path: path, operation: "create", message: "not a file path") }
        let tag = String(UInt64.random(in: 0 ... .max), radix: 16)
        return (target, "\(directory).\(basename).zoo-\(kind)-\(getpid())-\(tag)")
    }

    /// `path` with a symbolic link in its last component followed to the file it finally names
    /// (which need not exist yet), as many links deep as the system allows.
    static func resolvingLinks(_ path: String) throws(IOError) -> String {
        var current = path
        for _ in 0..<40 {
            var info = stat()
            guard lstat(current, &info) == 0, info.st_mode & S_IFMT == S_IFLNK else { return current }
            var target = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let count = readlink(current, &target, target.count - 1)
            guard count > 0 else { throw IOError(path: path, operation: "read the symbolic link", errno: errno) }
            let link = String(decoding: target[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if link.hasPrefix("/") {
                current = link
            } else {
                current = (current.lastIndex(of: "/").map { String(current[...$0]) } ?? "") + link
            }
        }
        throw IOError(path: path, operation: "resolve", message: "too many levels of symbolic links")
    }

    deinit {
        discard()
        buffer.deallocate()
    }

    /// Appends `bytes`.
    public func write(_ bytes: UnsafeRawBufferPointer) throws(IOError) {
        precondition(state == .open, "write after commit or discard")
        guard let source = bytes.baseAddress, bytes.count > 0 else { return }
        if bytes.count >= buffer.count {
            try flush()
            try writeAll(source, count: bytes.count)
        } else {
            if buffered + bytes.count > buffer.count { try flush() }
            UnsafeMutableRawBufferPointer(rebasing: buffer[buffered...]).copyMemory(from: bytes)
            buffered += bytes.count
        }
        position += bytes.count
    }

    /// Appends `bytes`.
    public func write(_ bytes: [UInt8]) throws(IOError) {
        let result: Result<Void, IOError> = bytes.withUnsafeBytes { raw in
            do throws(IOError) { try write(raw); return .success(()) } catch { return .failure(error) }
        }
        try result.get()
    }

    /// Flushes, fsyncs and renames the temporary file over the destination (a stream: flushes it).
    /// On failure the temporary file is removed and the destination is left as it was.
    public func commit() throws(IOError) {
        precondition(state == .open, "commit after commit or discard")
        do throws(IOError) {
            try flush()
            if let temporaryPath {
                guard fsync(descriptor) == 0 else { throw IOError(path: path, operation: "fsync", errno: errno) }
                let closed = close(descriptor)
                descriptor = -1
                guard closed == 0 else { throw IOError(path: path, operation: "close", errno: errno) }
                guard rename(temporaryPath, finalPath) == 0 else { throw IOError(path: path, operation: "rename into place", errno: errno) }
                zoo_cleanup_remove(cleanupSlot)
            } else if ownsDescriptor {
                let closed = close(descriptor)
                descriptor = -1
                guard closed == 0 else { throw IOError(path: path, operation: "close", errno: errno) }
            }
        } catch {
            discard()
            throw error
        }
        state = .committed
        if temporaryPath != nil { syncDirectory() }
    }

    /// Abandons the output: closes and removes the temporary file (a stream is only closed: what
    /// was written to it stays written). Does nothing after `commit()`.
    public func discard() {
        guard state == .open else { return }
        state = .discarded
        if descriptor >= 0, ownsDescriptor { close(descriptor) }
        descriptor = -1
        if let temporaryPath {
            unlink(temporaryPath)
            zoo_cleanup_remove(cleanupSlot)
        }
    }

    private func flush() throws(IOError) {
        guard buffered > 0, let base = buffer.baseAddress else { return }
        try writeAll(base, count: buffered)
        buffered = 0
    }

    private func writeAll(_ start: UnsafeRawPointer, count: Int) throws(IOError) {
        var done = 0
        while done < count {
            let written = systemWrite(descriptor, start + done, count - done)
            if written < 0 {
                if errno == EINTR { continue }
                throw IOError(path: path, operation: "write", errno: errno)
            }
            done += written
        }
    }

    /// Makes the rename durable. Best effort: some file systems refuse fsync on directories.
    private func syncDirectory() {
        let directory = finalPath.lastIndex(of: "/").map { String(finalPath[...$0]) } ?? "."
        let fd = open(directory, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        close(fd)
    }
}

/// A private folder beside a destination, for files a command must check before they count: a
/// converter writes its result here under the destination's own name (an ONNX model's external
/// data keeps the name the model refers to), reads it back, and only `commit()` moves the files
/// over the destination. Until then the destination is untouched; a failure, `discard()`, deinit
/// or a terminating signal removes the folder and what is in it.
///
/// The destination is resolved as `OutputFile` resolves it (a symbolic link is written through; a
/// directory is refused). It must be a file path, not a stream.
public final class StagingFolder {
    /// The destination as given.
    public let destination: String
    /// The folder, `.<basename>.zoo-staging-<pid>-<random>` beside the destination's final target.
    public let folder: String
    /// Where to write the file that becomes the destination.
    public let path: String
    private let target: String
    private let suffixes: [String]
    private var slots: [Int32] = []
    private var open = true

    /// Creates the folder. `suffixes` name the companion files that move with the destination
    /// (`".data"` for ONNX external data).
    public init(for destination: String, suffixes: [String] = []) throws(IOError) {
        self.destination = destination
        self.suffixes = suffixes
        var info = stat()
        if stat(destination, &info) == 0, info.st_mode & S_IFMT == S_IFDIR {
            throw IOError(path: destination, operation: "write", message: "it is a directory")
        }
        let (target, folder) = try OutputFile.sibling(of: destination, kind: "staging")
        self.target = target
        let path = "\(folder)/\(target.split(separator: "/").last.map(String.init) ?? target)"
        (self.folder, self.path) = (folder, path)
        // The signal handler unlinks every registered path, then removes registered folders.
        for file in [path] + suffixes.map({ path + $0 }) + [folder] { slots.append(zoo_cleanup_add(file)) }
        guard mkdir(folder, 0o700) == 0 else {
            let code = errno
            discard()
            throw IOError(path: destination, operation: "create a staging folder beside it", errno: code)
        }
    }

    deinit { discard() }

    /// Moves the staged file, then its companions that exist, over the destination and its
    /// companions, and removes the folder. A failure discards what is left.
    public func commit() throws(IOError) {
        precondition(open, "commit after commit or discard")
        for suffix in [""] + suffixes {
            let staged = path + suffix
            guard suffix.isEmpty || access(staged, F_OK) == 0 else { continue }
            guard rename(staged, target + suffix) == 0 else {
                let code = errno
                discard()
                throw IOError(path: destination + suffix, operation: "move into place", errno: code)
            }
        }
        discard()
    }

    /// Removes the folder and whatever is still in it. Does nothing once done.
    public func discard() {
        guard open else { return }
        open = false
        for suffix in [""] + suffixes { unlink(path + suffix) }
        rmdir(folder)
        for slot in slots { zoo_cleanup_remove(slot) }
    }

    /// `text` (an error message) with the staged path replaced by the destination.
    public func mentioningDestination(_ text: String) -> String {
        text.replacing(path, with: destination)
    }
}

/// A file's identity: its device and inode, the same through every path, link and hard link.
public struct FileIdentity: Hashable, Sendable {
    public let device: UInt64
    public let inode: UInt64

    init(_ info: stat) {
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
    }

    /// The identity of the file `path` names (following links), or nil when there is none.
    public init?(path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        self.init(info)
    }
}

/// The files this process has open for reading: every live `MappedFile` registers its file here, and
/// `OutputFile` refuses to replace one of them.
public enum InputFiles {
    private static let open = Mutex<[FileIdentity: Int]>([:])

    static func add(_ identity: FileIdentity) {
        open.withLock { $0[identity, default: 0] += 1 }
    }

    static func remove(_ identity: FileIdentity) {
        open.withLock { files in
            if let count = files[identity], count > 1 { files[identity] = count - 1 } else { files[identity] = nil }
        }
    }

    /// True when `identity` is a file some live `MappedFile` maps.
    public static func contains(_ identity: FileIdentity) -> Bool {
        open.withLock { $0[identity] != nil }
    }
}
