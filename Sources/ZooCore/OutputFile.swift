#if canImport(Glibc)
import Glibc
private let systemWrite = Glibc.write
#elseif canImport(Darwin)
import Darwin
private let systemWrite = Darwin.write
#endif

/// A file written atomically, used by every writer.
///
/// Bytes go to a temporary file in the destination's directory (`.<basename>.zoo-tmp-<pid>-<random>`),
/// through a buffer (writes at least as large as the buffer go straight to the file). Only `commit()`
/// makes them visible: it flushes, fsyncs and renames the temporary file over the destination. Until
/// then the destination is untouched; an instance that is discarded, or deinitialized without a
/// commit (a writer threw half-way), removes its temporary file.
///
/// The new file gets the default permissions (0666 minus the umask), not the old file's.
/// Errors are `IOError`s naming the destination path.
public final class OutputFile {
    /// The destination.
    public let path: String
    /// Where the bytes go until `commit()`.
    public let temporaryPath: String
    /// Bytes written so far (buffered or not): the offset the next write lands at.
    public private(set) var position = 0

    private enum State { case open, committed, discarded }
    private var state = State.open
    private var descriptor: Int32
    private let buffer: UnsafeMutableRawBufferPointer
    private var buffered = 0

    /// Creates the temporary file beside `path`.
    /// - Throws: `IOError` when `path` names no file or the temporary file cannot be created.
    public init(path: String, bufferSize: Int = 1 << 20) throws(IOError) {
        precondition(bufferSize > 0, "buffer size must be positive")
        self.path = path
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { String(path[...$0]) } ?? ""
        let basename = slash.map { String(path[path.index(after: $0)...]) } ?? path
        guard !basename.isEmpty else { throw IOError(path: path, operation: "create", message: "not a file path") }
        let tag = String(UInt64.random(in: 0 ... .max), radix: 16)
        temporaryPath = "\(directory).\(basename).zoo-tmp-\(getpid())-\(tag)"
        descriptor = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
        guard descriptor >= 0 else {
            throw IOError(path: path, operation: "create a temporary file for", errno: errno)
        }
        buffer = .allocate(byteCount: bufferSize, alignment: 64)
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

    /// Flushes, fsyncs and renames the temporary file over the destination. On failure the temporary
    /// file is removed and the destination is left as it was.
    public func commit() throws(IOError) {
        precondition(state == .open, "commit after commit or discard")
        do throws(IOError) {
            try flush()
            guard fsync(descriptor) == 0 else { throw IOError(path: path, operation: "fsync", errno: errno) }
            let closed = close(descriptor)
            descriptor = -1
            guard closed == 0 else { throw IOError(path: path, operation: "close", errno: errno) }
            guard rename(temporaryPath, path) == 0 else { throw IOError(path: path, operation: "rename into place", errno: errno) }
        } catch {
            discard()
            throw error
        }
        state = .committed
        syncDirectory()
    }

    /// Abandons the output: closes and removes the temporary file. Does nothing after `commit()`.
    public func discard() {
        guard state == .open else { return }
        state = .discarded
        if descriptor >= 0 { close(descriptor) }
        descriptor = -1
        unlink(temporaryPath)
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
        let directory = path.lastIndex(of: "/").map { String(path[...$0]) } ?? "."
        let fd = open(directory, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        close(fd)
    }
}
