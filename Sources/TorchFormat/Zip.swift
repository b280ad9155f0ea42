/// Torch's zip container: a strict reader for archives that may be hostile, and a writer that
/// reproduces torch.save's container byte for byte.
///
/// Spec: PKWARE APPNOTE.TXT 6.3 — local file header (4.3.7), data descriptor (4.3.9), central
/// directory header (4.3.12), zip64 end of central directory record and locator (4.3.14, 4.3.15),
/// end of central directory record (4.3.16), zip64 extended information extra field (4.5.3).
///
/// Torch's writer: caffe2/serialize/inline_container.cc (`PyTorchStreamWriter`: `getPadding`,
/// `writeRecord`, `writeEndOfFile`, `writeSerializationId`, `ostream_write_func`) on top of miniz
/// (third_party/miniz-3.0.2/miniz.c: `mz_zip_writer_add_mem_ex_v2`, `mz_zip_writer_finalize_archive`).
/// What it writes, record by record:
/// - local header: version 0, flags 0x0808 (0x0800 for an empty record), method 0, time/date 0, CRC
///   and sizes 0; extra field = [zip64 extra (0x0001) when size or offset ≥ 0xFFFFFFFF: uncompressed
///   size and a compressed size of 0 if size is big, offset if offset is big] + ["FB" extra filled
///   with 'Z' so the data starts at a multiple of the alignment];
/// - the data, then (non-empty records only) a data descriptor: PK 07 08, CRC, sizes — 8-byte sizes
///   when the local header has a zip64 extra;
/// - central directory entries (no "FB" padding; a zip64 extra with the real sizes/offset when big),
///   a zip64 end record and locator (always), and the classic end record.
import CZlib
import Dispatch
import ZooCore

// MARK: - Entries and archive

/// One entry of a zip archive, as its central directory and local header describe it.
public struct ZipEntry: Sendable, Equatable {
    /// Full name, including the archive's top-level folder ("archive/data/0").
    public let name: String
    /// 0 (stored) or 8 (deflated); the reader refuses anything else.
    public let method: UInt16
    public let crc32: UInt32
    public let compressedSize: Int
    /// Uncompressed size.
    public let size: Int
    /// Absolute file offset of the local header.
    public let localHeaderOffset: Int
    /// Absolute file offset of the (compressed) data.
    public let dataOffset: Int

    /// The file bytes holding the (compressed) data.
    public var dataRange: Range<Int> { dataOffset ..< dataOffset + compressedSize }
}

/// A zip archive in a mapped file, fully validated when opened.
///
/// Opening checks everything a hostile file could get wrong and names the entry and byte offset of
/// the first problem: the end records (classic, and zip64 when present), every central directory
/// entry and the local header it points to (signature, name and method must agree), entries inside
/// the file and before the central directory, no overlapping entries, no duplicate names, no
/// encrypted entries, methods 0 and 8 only, names without "..", leading "/" or backslashes, and (for
/// torch's layout) every entry inside one top-level folder (`prefix`, taken from the first entry as
/// torch does — any folder name is accepted); a `.flat` archive (numpy's .npz) has no folder and an
/// empty `prefix`. Bytes before the first entry (e.g. a self-extractor stub) are allowed
/// here: offsets recorded in the archive are taken relative to the start the end record implies.
/// Torch refuses such files, and so does `Checkpoint.load` (it requires `archiveStart == 0`).
/// Bytes after the end record are refused. Names are compared by their bytes (`ExactString`).
///
/// Entry offsets (`ZipEntry.localHeaderOffset`, `dataOffset`) are absolute file offsets.
public struct ZipArchive: Sendable {
    public let file: MappedFile
    /// How entries are laid out: torch's one top-level folder, or numpy's flat .npz.
    public enum Layout: Sendable { case folder, flat }

    /// The top-level folder every entry lives in (without the trailing "/"); empty for `.flat`.
    public let prefix: String
    /// Entries in central directory order.
    public let entries: [ZipEntry]
    /// File offset of the archive's first byte: non-zero when other bytes precede it.
    public let archiveStart: Int
    private let indexByName: [ExactString: Int]

    /// Opens and validates the archive in `file`.
    /// - Throws: `CheckpointError` (`.emptyFile`, `.zip`) naming the entry and offset of the problem.
    public init(file: MappedFile, layout: Layout = .folder) throws(CheckpointError) {
        let bytes = ByteView(file.bytes)
        guard bytes.count > 0 else { throw CheckpointError(.emptyFile) }
        let directory = try CentralDirectoryLocation(bytes)
        var parsed: [ZipEntry] = []
        parsed.reserveCapacity(directory.entryCount)
        var position = directory.start
        for _ in 0 ..< directory.entryCount {
            let (entry, next) = try Self.parseEntry(at: position, in: bytes, directory: directory)
            parsed.append(entry)
            position = next
        }
        guard position == directory.end else {
            throw CheckpointError(.zip("central directory holds \(directory.end - position) bytes after its \(directory.entryCount) entries"), offset: position)
        }
        guard let first = parsed.first else { throw CheckpointError(.zip("archive has no entries")) }
        let prefix: String
        switch layout {
        case .folder:
            guard let slash = first.name.firstIndex(of: "/"), slash != first.name.startIndex else {
                throw CheckpointError(.zip("first entry is not inside a folder"), record: first.name)
            }
            prefix = String(first.name[..<slash])
        case .flat:
            prefix = ""
        }
        let folder = prefix.isEmpty ? [] : Array((prefix + "/").utf8)
        var index: [ExactString: Int] = [:]
        for (position, entry) in parsed.enumerated() {
            guard entry.name.utf8.starts(with: folder) else {
                throw CheckpointError(.zip("entry is outside the archive's folder '\(prefix)/'"), record: entry.name)
            }
            guard index.updateValue(position, forKey: ExactString(entry.name)) == nil else {
                throw CheckpointError(.zip("duplicate entry name"), record: entry.name)
            }
        }
        try Self.checkNoOverlap(parsed)
        self.file = file
        self.prefix = prefix
        self.entries = parsed
        self.archiveStart = directory.archiveStart
        self.indexByName = index
    }

    /// The entry named `relativeName` inside the folder ("data.pkl", "data/0", "byteorder").
    public func entry(_ relativeName: String) -> ZipEntry? {
        indexByName[ExactString(prefix.isEmpty ? relativeName : prefix + "/" + relativeName)].map { entries[$0] }
    }

    /// The entry named `relativeName`, or a `.missingRecord` error naming it.
    public func requireEntry(_ relativeName: String) throws(CheckpointError) -> ZipEntry {
        guard let entry = entry(relativeName) else {
            throw CheckpointError(.missingRecord(prefix + "/" + relativeName))
        }
        return entry
    }

    /// Entry names relative to the folder, in central directory order.
    public var recordNames: [String] {
        entries.map { prefix.isEmpty ? $0.name : String($0.name.utf8.dropFirst(prefix.utf8.count + 1)) ?? $0.name }
    }

    /// The uncompressed bytes of `entry`: a zero-copy slice of the mapping when stored, an owned
    /// inflated copy when deflated (its size must equal the declared size).
    ///
    /// With `verifyCRC`, the CRC-32 of the bytes must equal the recorded one. A recorded CRC of 0 on
    /// non-empty data means "not computed" (torch.save with compute_crc32 off) and is not checked.
    /// `entry` must be one of this archive's entries. A deflated entry's declared size is only held
    /// to what deflate can produce (1032:1) here; a reader inflating several records budgets their
    /// total first (`ZipCheckpoint` against `ResourceLimits.maxInflatedBytes`).
    public func contents(of entry: ZipEntry, verifyCRC: Bool) throws(CheckpointError) -> Storage {
        let storage: Storage
        switch entry.method {
        case 0:
            storage = Storage(mapping: file, range: entry.dataRange)
        case 8:
            storage = try Self.inflate(entry, from: UnsafeRawBufferPointer(rebasing: file.bytes[entry.dataRange]))
        default:
            throw CheckpointError(.zip("compression method \(entry.method) is not supported"), record: entry.name)
        }
        if verifyCRC, !(entry.crc32 == 0 && entry.size > 0) {
            let computed = CRC32.parallelChecksum(storage.bytes)
            guard computed == entry.crc32 else {
                throw CheckpointError(.crcMismatch(stored: entry.crc32, computed: computed), record: entry.name)
            }
            // The checksum read every page of the record: give them back (they are read again from
            // the page cache when used), so verifying a checkpoint does not hold all of it resident.
            storage.releasePages()
        }
        return storage
    }

    /// Whether `bytes` start with a local file header ("PK\u{3}\u{4}"): torch's test for a zip
    /// checkpoint (`_is_zipfile`), so the only zip archives it reads.
    public static func looksLikeZip(_ bytes: UnsafeRawBufferPointer) -> Bool {
        ByteView(bytes).u32(0) == Signature.localHeader
    }

    // MARK: Parsing

    /// Parses the central directory entry at `position` and the local header it points to.
    private static func parseEntry(at position: Int, in bytes: ByteView, directory: CentralDirectoryLocation) throws(CheckpointError) -> (ZipEntry, next: Int) {
        func fail(_ message: String, _ name: String? = nil, offset: Int? = nil) -> CheckpointError {
            CheckpointError(.zip(message), record: name, offset: name == nil ? offset : nil)
        }
        guard position <= directory.end - 46 else {
            throw fail("central directory entry at byte \(position) runs past the end of the central directory", offset: position)
        }
        guard bytes.u32(position) == Signature.centralHeader else {
            throw fail("no central directory entry signature at byte \(position)", offset: position)
        }
        let flags = bytes.u16(position + 8)
        let method = bytes.u16(position + 10)
        let crc = bytes.u32(position + 16)
        var compressedSize = UInt64(bytes.u32(position + 20))
        var size = UInt64(bytes.u32(position + 24))
        let nameLength = Int(bytes.u16(position + 28))
        let extraLength = Int(bytes.u16(position + 30))
        let commentLength = Int(bytes.u16(position + 32))
        var disk = UInt32(bytes.u16(position + 34))
        var headerOffset = UInt64(bytes.u32(position + 42))
        let nameStart = position + 46
        let next = nameStart + nameLength + extraLength + commentLength
        guard next <= directory.end else {
            throw fail("central directory entry at byte \(position) runs past the end of the central directory", offset: position)
        }
        guard let name = String(validating: bytes.slice(nameStart, nameLength), as: UTF8.self) else {
            throw fail("entry name at byte \(nameStart) is not valid UTF-8", offset: nameStart)
        }
        try checkName(name)
        guard flags & 0x41 == 0 else { throw fail("entry is encrypted", name) }
        guard method == 0 || method == 8 else { throw fail("compression method \(method) is not supported (only stored and deflated)", name) }

        // Zip64 extra: each field is present only when its classic field holds the sentinel.
        var extra = nameStart + nameLength
        let extraEnd = extra + extraLength
        while extra < extraEnd {
            guard extraEnd - extra >= 4 else { throw fail("malformed extra field in central directory entry", name) }
            let id = bytes.u16(extra), length = Int(bytes.u16(extra + 2))
            let fieldEnd = extra + 4 + length
            guard fieldEnd <= extraEnd else { throw fail("extra field 0x\(String(id, radix: 16)) runs past its entry", name) }
            if id == 0x0001 {
                var field = extra + 4
                func take() throws(CheckpointError) -> UInt64 {
                    guard fieldEnd - field >= 8 else { throw fail("zip64 extra field is too short", name) }
                    defer { field += 8 }
                    return bytes.u64(field)
                }
                if size == 0xFFFF_FFFF { size = try take() }
                if compressedSize == 0xFFFF_FFFF { compressedSize = try take() }
                if headerOffset == 0xFFFF_FFFF { headerOffset = try take() }
                if disk == 0xFFFF {
                    guard fieldEnd - field >= 4 else { throw fail("zip64 extra field is too short", name) }
                    disk = bytes.u32(field)
                }
            }
            extra = fieldEnd
        }
        guard disk == 0 else { throw fail("entry is on disk \(disk): multi-disk archives are not supported", name) }
        guard let size = Int(exactly: size), let compressedSize = Int(exactly: compressedSize),
              let relativeOffset = Int(exactly: headerOffset)
        else { throw fail("entry size or offset exceeds 2^63", name) }
        if method == 0, size != compressedSize {
            throw fail("stored entry has compressed size \(compressedSize) but size \(size)", name)
        }
        if name.hasSuffix("/"), size != 0 { throw fail("directory entry holds \(size) bytes", name) }

        // The local header must lie before the central directory and agree with it.
        let (local, overflow) = directory.archiveStart.addingReportingOverflow(relativeOffset)
        guard !overflow, local <= directory.start - 30 else {
            throw fail("local header offset \(relativeOffset) is outside the file's entry area (central directory at byte \(directory.start))", name)
        }
        guard bytes.u32(local) == Signature.localHeader else {
            throw fail("no local header signature at byte \(local)", name)
        }
        let localFlags = bytes.u16(local + 6)
        let localMethod = bytes.u16(local + 8)
        let localNameLength = Int(bytes.u16(local + 26))
        let localExtraLength = Int(bytes.u16(local + 28))
        let dataOffset = local + 30 + localNameLength + localExtraLength
        guard dataOffset <= directory.start, compressedSize <= directory.start - dataOffset else {
            throw fail("data (\(compressedSize) bytes from local header at byte \(local)) runs into the central directory at byte \(directory.start)", name)
        }
        let localName = bytes.slice(local + 30, localNameLength)
        guard localName.elementsEqual(bytes.slice(nameStart, nameLength)) else {
            let shown = String(decoding: localName, as: UTF8.self)
            throw fail("local header at byte \(local) is named '\(shown)', the central directory says '\(name)'", name)
        }
        guard localMethod == method, localFlags & 0x41 == 0 else {
            throw fail("local header at byte \(local) disagrees with the central directory on method or encryption", name)
        }
        if localFlags & 0x08 == 0 {
            // No data descriptor: the local header carries CRC and sizes (or zip64 sentinels).
            let localCRC = bytes.u32(local + 14)
            let localCompressed = bytes.u32(local + 18), localSize = bytes.u32(local + 22)
            let sizesAgree = (localCompressed == 0xFFFF_FFFF || Int(localCompressed) == compressedSize)
                && (localSize == 0xFFFF_FFFF || Int(localSize) == size)
            guard localCRC == crc, sizesAgree else {
                throw fail("local header at byte \(local) disagrees with the central directory on CRC or sizes", name)
            }
        }
        let entry = ZipEntry(name: name, method: method, crc32: crc, compressedSize: compressedSize, size: size,
                             localHeaderOffset: local, dataOffset: dataOffset)
        return (entry, next)
    }

    /// Refuses names that could escape a directory if extracted, or are not plain relative paths.
    private static func checkName(_ name: String) throws(CheckpointError) {
        let problem: String? =
            if name.isEmpty { "empty entry name" }
            else if name.hasPrefix("/") { "absolute entry name" }
            else if name.contains("\\") { "entry name contains a backslash" }
            else if name.utf8.contains(0) { "entry name contains a NUL byte" }
            else if name.split(separator: "/", omittingEmptySubsequences: false).contains("..") { "entry name contains '..'" }
            else { nil }
        if let problem { throw CheckpointError(.zip(problem), record: name) }
    }

    /// Entries, from local header to end of data, must not share bytes.
    private static func checkNoOverlap(_ entries: [ZipEntry]) throws(CheckpointError) {
        let ordered = entries.sorted { $0.localHeaderOffset < $1.localHeaderOffset }
        for (previous, next) in zip(ordered, ordered.dropFirst()) where next.localHeaderOffset < previous.dataRange.upperBound {
            throw CheckpointError(.zip("local header at byte \(next.localHeaderOffset) lies inside '\(previous.name)' (bytes \(previous.localHeaderOffset)..<\(previous.dataRange.upperBound))"), record: next.name)
        }
    }

    /// Inflates a raw-deflate entry into owned memory of exactly its declared size.
    private static func inflate(_ entry: ZipEntry, from source: UnsafeRawBufferPointer) throws(CheckpointError) -> Storage {
        // Deflate expands at most 1032:1; a larger declared size is a lie (and a memory bomb).
        let (limit, overflow) = (entry.compressedSize + 1).multipliedReportingOverflow(by: 1032)
        guard !overflow, entry.size <= limit else {
            throw CheckpointError(.zip("declares \(entry.size) bytes inflated from \(entry.compressedSize): more than deflate can produce"), record: entry.name)
        }
        var failure: String?
        let storage = Storage(byteCount: entry.size) { destination in failure = inflateRaw(source, into: destination) }
        if let failure { throw CheckpointError(.zip("deflated data: \(failure)"), record: entry.name) }
        return storage
    }

    /// Inflates all of `source` into all of `destination`; returns what went wrong, if anything.
    private static func inflateRaw(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer) -> String? {
        var stream = z_stream()
        guard inflateInit2_(&stream, -MAX_WBITS, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            return "cannot initialize zlib"
        }
        defer { inflateEnd(&stream) }
        let scratch = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)
        defer { scratch.deallocate() }
        let input = source.baseAddress?.assumingMemoryBound(to: UInt8.self)
        let output = destination.baseAddress?.assumingMemoryBound(to: UInt8.self)
        var consumed = 0, produced = 0
        while true {
            let inChunk = min(source.count - consumed, Int(UInt32.max))
            let outChunk = min(destination.count - produced, Int(UInt32.max))
            stream.next_in = UnsafeMutablePointer(mutating: input.map { $0 + consumed })
            stream.avail_in = UInt32(inChunk)
            // With the destination full, a 1-byte scratch buffer catches data beyond the declared size.
            stream.next_out = outChunk > 0 ? output.map { $0 + produced } : scratch
            stream.avail_out = outChunk > 0 ? UInt32(outChunk) : 1
            let status = CZlib.inflate(&stream, Z_NO_FLUSH)
            let read = inChunk - Int(stream.avail_in)
            let wrote = (outChunk > 0 ? outChunk : 1) - Int(stream.avail_out)
            consumed += read
            if outChunk == 0, wrote > 0 { return "inflates to more than the declared \(destination.count) bytes" }
            produced += wrote
            switch status {
            case Z_STREAM_END:
                guard produced == destination.count else {
                    return "inflates to \(produced) bytes, the central directory says \(destination.count)"
                }
                guard consumed == source.count else {
                    return "\(source.count - consumed) bytes follow the end of the deflate stream"
                }
                return nil
            case Z_OK:
                continue
            case Z_BUF_ERROR where read == 0 && wrote == 0:
                return consumed == source.count ? "deflate stream is truncated" : "deflate stream makes no progress"
            case Z_BUF_ERROR:
                continue
            default:
                let message = stream.msg.map { String(cString: $0) } ?? "zlib error \(status)"
                return "corrupt deflate stream: \(message)"
            }
        }
    }
}

// MARK: - End records

/// Where the central directory is, from the end record (and the zip64 end record when present).
private struct CentralDirectoryLocation {
    var start: Int
    var end: Int
    var entryCount: Int
    /// File offset that the archive's recorded offsets are relative to.
    var archiveStart: Int

    enum Search { case found(Int), trailingData(Int), missing }

    /// The end record that ends exactly at the end of the file; or one followed by other bytes.
    static func findEndRecord(_ bytes: ByteView) -> Search {
        guard bytes.count >= 22 else { return .missing }
        var trailing: Int?
        var position = bytes.count - 22
        let lowest = max(0, bytes.count - 22 - 0xFFFF)
        while position >= lowest {
            if bytes.u32(position) == Signature.endRecord {
                let end = position + 22 + Int(bytes.u16(position + 20))
                if end == bytes.count { return .found(position) }
                if end < bytes.count, trailing == nil { trailing = position }
            }
            position -= 1
        }
        return trailing.map { .trailingData($0) } ?? .missing
    }

    init(_ bytes: ByteView) throws(CheckpointError) {
        let end: Int
        switch Self.findEndRecord(bytes) {
        case let .found(position): end = position
        case let .trailingData(position):
            let after = position + 22 + Int(bytes.u16(position + 20))
            throw CheckpointError(.zip("\(bytes.count - after) bytes of trailing data after the end-of-central-directory record"), offset: after)
        case .missing:
            throw CheckpointError(.zip("no end-of-central-directory record: file truncated or not a zip"))
        }
        let disk = bytes.u16(end + 4), directoryDisk = bytes.u16(end + 6)
        let entriesOnDisk = bytes.u16(end + 8), entries = bytes.u16(end + 10)
        let size = bytes.u32(end + 12), offset = bytes.u32(end + 16)

        var entryCount = UInt64(entries), directorySize = UInt64(size), directoryOffset = UInt64(offset)
        var directoryEnd = end
        let locator = end - 20
        if locator >= 0, bytes.u32(locator) == Signature.zip64Locator {
            // Zip64: the locator gives the zip64 end record's offset, relative to the archive start.
            let recordDisk = bytes.u32(locator + 4), recordOffset = bytes.u64(locator + 8), disks = bytes.u32(locator + 16)
            guard recordDisk == 0, disks <= 1 else {
                throw CheckpointError(.zip("multi-disk archives are not supported"), offset: locator)
            }
            // The record normally sits right before the locator; else trust the offset as absolute.
            let record: Int
            if locator >= 56, bytes.u32(locator - 56) == Signature.zip64EndRecord {
                record = locator - 56
            } else if let absolute = Int(exactly: recordOffset), absolute <= locator - 56, bytes.u32(absolute) == Signature.zip64EndRecord {
                record = absolute
            } else {
                throw CheckpointError(.zip("zip64 end-of-central-directory record not found (locator says byte \(recordOffset))"), offset: locator)
            }
            guard bytes.u32(record + 16) == 0, bytes.u32(record + 20) == 0, bytes.u64(record + 24) == bytes.u64(record + 32) else {
                throw CheckpointError(.zip("multi-disk archives are not supported"), offset: record)
            }
            let count64 = bytes.u64(record + 32), size64 = bytes.u64(record + 40), offset64 = bytes.u64(record + 48)
            // The classic record holds the same values or the 0xFFFF… sentinels.
            guard entries == 0xFFFF || UInt64(entries) == count64,
                  size == 0xFFFF_FFFF || UInt64(size) == size64,
                  offset == 0xFFFF_FFFF || UInt64(offset) == offset64
            else {
                throw CheckpointError(.zip("end-of-central-directory record and zip64 end record disagree"), offset: end)
            }
            guard let relative = Int(exactly: recordOffset), relative <= record else {
                throw CheckpointError(.zip("zip64 locator points past its record (byte \(recordOffset))"), offset: locator)
            }
            archiveStart = record - relative
            entryCount = count64; directorySize = size64; directoryOffset = offset64
            directoryEnd = record
        } else {
            guard disk == 0, directoryDisk == 0, entriesOnDisk == entries else {
                throw CheckpointError(.zip("multi-disk archives are not supported"), offset: end)
            }
            archiveStart = 0 // fixed below, once the central directory size is known
        }
        guard let directorySize = Int(exactly: directorySize), directorySize <= directoryEnd,
              let directoryOffset = Int(exactly: directoryOffset)
        else {
            throw CheckpointError(.zip("central directory of \(directorySize) bytes does not fit before its end record at byte \(directoryEnd)"), offset: directoryEnd)
        }
        start = directoryEnd - directorySize
        self.end = directoryEnd
        if directoryEnd == end {
            // Classic: whatever precedes the archive shifts every recorded offset by the same amount.
            guard directoryOffset <= start else {
                throw CheckpointError(.zip("central directory offset \(directoryOffset) lies past its end record: file truncated or not a zip"), offset: end)
            }
            archiveStart = start - directoryOffset
        } else {
            let (recorded, overflow) = archiveStart.addingReportingOverflow(directoryOffset)
            guard !overflow, recorded == start else {
                throw CheckpointError(.zip("central directory offset \(directoryOffset) disagrees with its size \(directorySize) and the zip64 end record at byte \(directoryEnd)"), offset: directoryEnd)
            }
        }
        // Every central directory entry takes at least 46 bytes.
        guard entryCount <= UInt64(directorySize / 46) else {
            throw CheckpointError(.zip("central directory of \(directorySize) bytes cannot hold \(entryCount) entries"), offset: start)
        }
        self.entryCount = Int(entryCount)
    }
}

private enum Signature {
    static let localHeader: UInt32 = 0x0403_4B50
    static let dataDescriptor: UInt32 = 0x0807_4B50
    static let centralHeader: UInt32 = 0x0201_4B50
    static let zip64EndRecord: UInt32 = 0x0606_4B50
    static let zip64Locator: UInt32 = 0x0706_4B50
    static let endRecord: UInt32 = 0x0605_4B50
}

/// Little-endian reads from a byte buffer. Reads past the end return 0 (so a signature check fails
/// cleanly); callers check bounds before trusting lengths.
private struct ByteView {
    let raw: UnsafeRawBufferPointer
    init(_ raw: UnsafeRawBufferPointer) { self.raw = raw }
    var count: Int { raw.count }

    func has(_ offset: Int, _ length: Int) -> Bool {
        offset >= 0 && length >= 0 && offset <= raw.count && length <= raw.count - offset
    }
    func u16(_ offset: Int) -> UInt16 {
        has(offset, 2) ? UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt16.self)) : 0
    }
    func u32(_ offset: Int) -> UInt32 {
        has(offset, 4) ? UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self)) : 0
    }
    func u64(_ offset: Int) -> UInt64 {
        has(offset, 8) ? UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) : 0
    }
    /// The bytes `offset ..< offset + length`, clamped to the buffer.
    func slice(_ offset: Int, _ length: Int) -> UnsafeRawBufferPointer {
        let lower = min(max(offset, 0), raw.count)
        let upper = length <= raw.count - lower ? lower + length : raw.count
        return UnsafeRawBufferPointer(rebasing: raw[lower ..< upper])
    }
}

// MARK: - CRC-32

/// CRC-32 (ISO-HDLC, the zip polynomial) via zlib.
public enum CRC32 {
    /// The CRC of `bytes`, continuing from `seed` (the CRC of the bytes before them).
    public static func checksum(_ bytes: UnsafeRawBufferPointer, seed: UInt32 = 0) -> UInt32 {
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return seed }
        var crc = UInt(seed)
        var done = 0
        while done < bytes.count {
            let chunk = min(bytes.count - done, 1 << 30) // zlib's length is a 32-bit uInt
            crc = CZlib.crc32(crc, base + done, UInt32(chunk))
            done += chunk
        }
        return UInt32(truncatingIfNeeded: crc)
    }

    /// The CRC of A followed by B, from the CRC of A, the CRC of B and B's length.
    public static func combine(_ first: UInt32, _ second: UInt32, secondLength: Int) -> UInt32 {
        UInt32(truncatingIfNeeded: crc32_combine(UInt(first), UInt(second), secondLength))
    }

    /// `checksum` split over `threads` threads and combined with zlib's crc32_combine. Inputs under
    /// 4 MiB per thread are checksummed on the calling thread.
    public static func parallelChecksum(_ bytes: UnsafeRawBufferPointer, seed: UInt32 = 0, threads: Int = 2) -> UInt32 {
        let parts = min(max(threads, 1), bytes.count / (4 << 20))
        guard parts > 1 else { return checksum(bytes, seed: seed) }
        let partSize = (bytes.count + parts - 1) / parts
        let results = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: parts)
        defer { results.deallocate() }
        nonisolated(unsafe) let input = bytes, output = results
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            let lower = part * partSize, upper = min(lower + partSize, input.count)
            output[part] = checksum(UnsafeRawBufferPointer(rebasing: input[lower ..< upper]))
        }
        var crc = seed
        for part in 0 ..< parts {
            crc = combine(crc, results[part], secondLength: min(partSize, bytes.count - part * partSize))
        }
        return crc
    }
}

// MARK: - Writer

/// Writes a zip archive exactly as torch.save does (PyTorchStreamWriter over miniz), so that the
/// same records under the same prefix give a byte-identical file.
///
/// The caller adds records in torch's order (data.pkl, .format_version, .storage_alignment,
/// byteorder, data/0 …); the writer does not reorder. `finish()` adds what torch's writeEndOfFile
/// adds — `version` ("3\n") unless a `version` or `.data/version` record was added, `byteorder`
/// unless one was added, then `.data/serialization_id` — and the central directory and end records.
/// It does not commit the output file: call `output.commit()` after `finish()`.
///
/// Misuse traps: adding a record twice, an empty name or one ending in "/", a name too long for
/// zip, adding after `finish()`. Adding `.data/serialization_id` is ignored, as in torch (the id is
/// always the writer's own).
public struct ZipWriter {
    public let output: OutputFile
    public let prefix: String
    public let alignment: Int
    /// false writes CRC 0 everywhere, like torch with `compute_crc32` off.
    public let computesCRC32: Bool
    /// The id `finish()` wrote.
    public private(set) var serializationID: String?

    private let start: Int
    private var centralDirectory: [UInt8] = []
    private var entryCount = 0
    private var written = Set<ExactString>()
    private var names = TorchRecordNameSet()
    private var combinedCRC: UInt64 = 0
    private var finished = false

    /// A writer appending to `output` from its current position, which becomes offset 0 of the
    /// archive (alignment is counted from there). `prefix` is the top-level folder: torch uses the
    /// destination's basename without its extension, or "archive" for a buffer.
    public init(output: OutputFile, prefix: String, alignment: Int = 64, computesCRC32: Bool = true) {
        precondition(alignment >= 1 && alignment <= 0x8000, "alignment must be in 1...32768")
        precondition(!prefix.isEmpty, "empty archive folder name")
        self.output = output
        self.prefix = prefix
        self.alignment = alignment
        self.computesCRC32 = computesCRC32
        start = output.position
    }

    /// Adds the record `name` (relative to the prefix) holding `bytes`, stored and aligned.
    public mutating func add(_ name: String, _ bytes: UnsafeRawBufferPointer) throws(IOError) {
        precondition(!finished, "record added after finish()")
        if name == Self.serializationIDName { return }
        try write(name, bytes)
    }

    /// Adds the record `name` holding `bytes`.
    public mutating func add(_ name: String, _ bytes: [UInt8]) throws(IOError) {
        try withBytes(bytes) { (raw) throws(IOError) in try add(name, raw) }
    }

    /// Writes the records torch adds at the end, the central directory and the end records.
    public mutating func finish() throws(IOError) {
        precondition(!finished, "finish() called twice")
        if !written.contains(ExactString("version")), !written.contains(ExactString(".data/version")) {
            try withBytes(Array("3\n".utf8)) { (raw) throws(IOError) in try write("version", raw) }
        }
        if !written.contains(ExactString("byteorder")) {
            #if _endian(little)
            let order = "little"
            #else
            let order = "big"
            #endif
            try withBytes(Array(order.utf8)) { (raw) throws(IOError) in try write("byteorder", raw) }
        }
        let id = Self.zeroPadded(names.combinedHash) + Self.zeroPadded(combinedCRC)
        try withBytes(Array(id.utf8)) { (raw) throws(IOError) in try write(Self.serializationIDName, raw) }
        serializationID = id
        finished = true

        let directoryOffset = UInt64(output.position - start)
        let directorySize = UInt64(centralDirectory.count)
        try output.write(centralDirectory)
        var end = LittleEndianBytes()
        let zip64RecordOffset = UInt64(output.position - start)
        end.u32(0x0606_4B50); end.u64(44); end.u16(0x031E); end.u16(0x002D); end.u32(0); end.u32(0)
        end.u64(UInt64(entryCount)); end.u64(UInt64(entryCount)); end.u64(directorySize); end.u64(directoryOffset)
        end.u32(0x0706_4B50); end.u32(0); end.u64(zip64RecordOffset); end.u32(1)
        end.u32(0x0605_4B50); end.u16(0); end.u16(0)
        end.u16(UInt16(clamping: entryCount)); end.u16(UInt16(clamping: entryCount))
        end.u32(UInt32(clamping: directorySize)); end.u32(UInt32(clamping: directoryOffset)); end.u16(0)
        try output.write(end.bytes)
    }

    private static let serializationIDName = ".data/serialization_id"

    /// One record, as mz_zip_writer_add_mem_ex_v2 writes it with torch's padding.
    private mutating func write(_ name: String, _ bytes: UnsafeRawBufferPointer) throws(IOError) {
        precondition(!written.contains(ExactString(name)), "record '\(name)' added twice")
        precondition(!name.isEmpty && !name.hasSuffix("/"), "invalid record name '\(name)'")
        let fullName = Array((prefix + "/" + name).utf8)
        precondition(fullName.count <= 0xFFFF, "record name too long for zip")
        let offset = UInt64(output.position - start)
        let size = UInt64(bytes.count)
        let bigSize = size >= 0xFFFF_FFFF, bigOffset = offset >= 0xFFFF_FFFF
        let crc = computesCRC32 ? CRC32.parallelChecksum(bytes) : 0

        // torch's getPadding: data starts after header, name, zip64 extra and the 4-byte "FB" header.
        var zip64Length = 0
        if bigSize || bigOffset { zip64Length = 4 + (bigSize ? 16 : 0) + (bigOffset ? 8 : 0) }
        let unpadded = Int(offset) + 30 + fullName.count + zip64Length + 4
        let padding = (alignment - unpadded % alignment) % alignment
        let flags: UInt16 = size > 0 ? 0x0808 : 0x0800

        var local = LittleEndianBytes()
        local.u32(Signature.localHeader); local.u16(0); local.u16(flags); local.u16(0); local.u32(0)
        local.u32(0); local.u32(0); local.u32(0)
        local.u16(UInt16(fullName.count)); local.u16(UInt16(zip64Length + 4 + padding))
        local.bytes += fullName
        if zip64Length > 0 {
            local.u16(0x0001); local.u16(UInt16(zip64Length - 4))
            if bigSize { local.u64(size); local.u64(0) } // miniz writes the compressed size before it is known
            if bigOffset { local.u64(offset) }
        }
        local.bytes += [0x46, 0x42]; local.u16(UInt16(padding))
        local.bytes += repeatElement(0x5A, count: padding)
        try output.write(local.bytes)
        try output.write(bytes)

        // torch folds into the id every CRC that passes through its write callback as a descriptor —
        // including any name or data write that happens to start with the descriptor signature.
        foldSpuriousDescriptor(fullName)
        foldSpuriousDescriptor(bytes)
        if size > 0 {
            var descriptor = LittleEndianBytes()
            descriptor.u32(Signature.dataDescriptor); descriptor.u32(crc)
            if zip64Length > 0 { descriptor.u64(size); descriptor.u64(size) } else { descriptor.u32(UInt32(size)); descriptor.u32(UInt32(size)) }
            try output.write(descriptor.bytes)
            combinedCRC = hashCombine(combinedCRC, UInt64(crc))
        }

        var central = LittleEndianBytes()
        central.u32(Signature.centralHeader); central.u16(0); central.u16(0); central.u16(flags); central.u16(0)
        central.u32(0); central.u32(crc); central.u32(UInt32(clamping: size)); central.u32(UInt32(clamping: size))
        central.u16(UInt16(fullName.count)); central.u16(UInt16(zip64Length)); central.u16(0)
        central.u16(0); central.u16(0); central.u32(0); central.u32(UInt32(clamping: offset))
        central.bytes += fullName
        if zip64Length > 0 {
            central.u16(0x0001); central.u16(UInt16(zip64Length - 4))
            if bigSize { central.u64(size); central.u64(size) }
            if bigOffset { central.u64(offset) }
        }
        centralDirectory += central.bytes
        entryCount += 1
        written.insert(ExactString(name))
        names.insert(name)
    }

    private mutating func foldSpuriousDescriptor(_ bytes: UnsafeRawBufferPointer) {
        let view = ByteView(bytes)
        if view.count >= 8, view.u32(0) == Signature.dataDescriptor {
            combinedCRC = hashCombine(combinedCRC, UInt64(view.u32(4)))
        }
    }

    private mutating func foldSpuriousDescriptor(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { foldSpuriousDescriptor($0) }
    }

    private static func zeroPadded(_ value: UInt64) -> String {
        let digits = String(value)
        return String(repeating: "0", count: 20 - digits.count) + digits
    }
}

private func withBytes(_ bytes: [UInt8], _ body: (UnsafeRawBufferPointer) throws(IOError) -> Void) throws(IOError) {
    let result: Result<Void, IOError> = bytes.withUnsafeBytes { raw in
        do throws(IOError) { try body(raw); return .success(()) } catch { return .failure(error) }
    }
    try result.get()
}

struct LittleEndianBytes {
    var bytes: [UInt8] = []
    mutating func u16(_ value: UInt16) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
    mutating func u32(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
    mutating func u64(_ value: UInt64) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
}

// MARK: - torch's serialization id

/// c10::hash_combine (boost's), on 64-bit size_t.
private func hashCombine(_ seed: UInt64, _ value: UInt64) -> UInt64 {
    seed ^ (value &+ 0x9E37_79B9 &+ (seed << 6) &+ (seed >> 2))
}

/// The record-name half of torch's `.data/serialization_id`.
///
/// torch (`writeSerializationId`) folds `c10::hash_combine` over the names in the iteration order of
/// its `std::unordered_set<std::string> files_written_`, each hashed with `std::hash<std::string>`.
/// Both are libstdc++'s on Linux: `_Hash_bytes` (a 64-bit Murmur variant, seed 0xc70f6907), and a
/// hash table whose iteration order depends on insertion order and bucket count. This type replays
/// that table: a singly linked node list where buckets point at the node before their first node;
/// a new node goes to the front of its bucket, or to the front of the list if its bucket is empty;
/// a rehash relinks nodes in list order the same way. Bucket counts follow libstdc++'s
/// `_Prime_rehash_policy` (max load factor 1): 13 at the first insertion, then, whenever the count
/// would exceed the bucket count, the first prime in its table ≥ twice the bucket count.
struct TorchRecordNameSet {
    /// libstdc++'s successive bucket counts (from `__prime_list`, as described above).
    private static let bucketCounts: [UInt64] = [
        13, 29, 59, 127, 257, 541, 1109, 2357, 5087, 10273, 20753, 42043, 85229, 172933, 351061, 712697,
        1447153, 2938679, 5967347, 12117689, 24607243, 49969847, 101473717, 206062531, 418451333,
        849749479, 1725587117, 3504151727, 8589934583,
    ]
    private static let none = -1
    private static let beforeBegin = 0

    /// Node 0 is the list head ("before begin"); nodes 1… are the names in insertion order.
    private var hashes: [UInt64] = [0]
    private var next: [Int] = [none]
    /// For each bucket: the node before its first node, or `none`.
    private var buckets: [Int] = []
    private var growth = -1

    mutating func insert(_ name: String) {
        let hash = Self.libstdcxxHash(Array(name.utf8))
        let count = hashes.count - 1
        if count + 1 > buckets.count {
            growth += 1
            precondition(growth < Self.bucketCounts.count, "too many records")
            rehash(Int(Self.bucketCounts[growth]))
        }
        let node = hashes.count
        hashes.append(hash)
        next.append(Self.none)
        let home = bucket(of: node)
        if buckets[home] != Self.none {
            let before = buckets[home]
            next[node] = next[before]
            next[before] = node
        } else {
            next[node] = next[Self.beforeBegin]
            next[Self.beforeBegin] = node
            if next[node] != Self.none { buckets[bucket(of: next[node])] = node }
            buckets[home] = Self.beforeBegin
        }
    }

    /// hash_combine folded over the name hashes in iteration order, from 0.
    var combinedHash: UInt64 {
        var combined: UInt64 = 0
        var node = next[Self.beforeBegin]
        while node != Self.none {
            combined = hashCombine(combined, hashes[node])
            node = next[node]
        }
        return combined
    }

    private func bucket(of node: Int) -> Int { Int(hashes[node] % UInt64(buckets.count)) }

    private mutating func rehash(_ count: Int) {
        var newBuckets = [Int](repeating: Self.none, count: count)
        var node = next[Self.beforeBegin]
        next[Self.beforeBegin] = Self.none
        var firstBucket = 0
        while node != Self.none {
            let following = next[node]
            let bucket = Int(hashes[node] % UInt64(count))
            if newBuckets[bucket] == Self.none {
                next[node] = next[Self.beforeBegin]
                next[Self.beforeBegin] = node
                newBuckets[bucket] = Self.beforeBegin
                if next[node] != Self.none { newBuckets[firstBucket] = node }
                firstBucket = bucket
            } else {
                next[node] = next[newBuckets[bucket]]
                next[newBuckets[bucket]] = node
            }
            node = following
        }
        buckets = newBuckets
    }

    /// libstdc++'s `std::_Hash_bytes(data, length, 0xc70f6907)` for 64-bit size_t.
    static func libstdcxxHash(_ bytes: [UInt8]) -> UInt64 {
        let multiplier: UInt64 = 0xC6A4_A793_5BD1_E995
        func shiftMix(_ value: UInt64) -> UInt64 { value ^ (value >> 47) }
        func load(_ start: Int, _ count: Int) -> UInt64 {
            var value: UInt64 = 0
            for index in stride(from: start + count - 1, through: start, by: -1) { value = value << 8 | UInt64(bytes[index]) }
            return value
        }
        let aligned = bytes.count & ~7
        var hash = 0xC70F_6907 ^ (UInt64(bytes.count) &* multiplier)
        for start in stride(from: 0, to: aligned, by: 8) {
            hash ^= shiftMix(load(start, 8) &* multiplier) &* multiplier
            hash = hash &* multiplier
        }
        if bytes.count & 7 != 0 {
            hash ^= load(aligned, bytes.count & 7)
            hash = hash &* multiplier
        }
        return shiftMix(shiftMix(hash) &* multiplier)
    }
}
