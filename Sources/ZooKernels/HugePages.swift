#if canImport(Glibc)
import Glibc
#endif

/// Memory for large, long-lived arrays (fully connected weights, activation arenas, workspaces),
/// mapped on its own: from 2 MiB on, 2 MiB-aligned and advised for transparent huge pages, so
/// streaming through it is not slowed by a TLB miss and a prefetcher restart every 4 KiB (on the
/// reference machine a batch-1 fc6 pass takes ~15 % less time than from 4 KiB pages). Where the
/// kernel does not grant huge pages this is plain memory. Page-aligned at least; unmapped with the
/// buffer.
public final class HugePageBuffer: @unchecked Sendable {
    public let base: UnsafeMutableRawPointer
    public let byteCount: Int
    /// The mapping's length: `byteCount` rounded up to whole pages.
    private let mappedCount: Int
    private static let hugePage = 1 << 21
    private static let page = max(Int(sysconf(Int32(_SC_PAGESIZE))), 4096)

    /// `byteCount` bytes (at least 1), zero-filled.
    public init(byteCount: Int) {
        self.byteCount = max(byteCount, 1)
        (base, mappedCount) = Self.allocate(self.byteCount)
    }

    /// A private anonymous mapping of `byteCount` bytes rounded up to whole pages, 2 MiB-aligned
    /// when it is at least that long. The mapping ends where the buffer ends, so a huge page is
    /// never faulted in past the last byte in use (with transparent huge pages on, a buffer rounded
    /// up to 2 MiB would take its whole last huge page once its last byte is written).
    private static func allocate(_ byteCount: Int) -> (UnsafeMutableRawPointer, Int) {
        let length = (byteCount + page - 1) / page * page
        let slack = length >= hugePage ? hugePage : 0
        guard let raw = mmap(nil, length + slack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              raw != MAP_FAILED else {
            fatalError("out of memory allocating \(length) bytes")
        }
        let alignment = slack > 0 ? hugePage : page
        let start = (Int(bitPattern: raw) + alignment - 1) / alignment * alignment
        let head = start - Int(bitPattern: raw), tail = slack - head
        if head > 0 { munmap(raw, head) }
        if tail > 0 { munmap(UnsafeMutableRawPointer(bitPattern: start + length), tail) }
        let memory = UnsafeMutableRawPointer(bitPattern: start)!
        if slack > 0 { _ = madvise(memory, length, 14) }   // MADV_HUGEPAGE; advice only, failure is harmless
        return (memory, length)
    }

    /// Copies `count` floats from `source`. With `releasingSource`, each copied 8 MiB chunk of the
    /// source is dropped from this process's memory (`MADV_DONTNEED` on its whole pages) as soon as
    /// it is copied, so the copy never holds both in full. Only pass it for a read-only private file
    /// mapping: its pages come back from the file if anything reads them again.
    public init(copying source: UnsafePointer<Float>, count: Int, releasingSource: Bool) {
        byteCount = max(count * MemoryLayout<Float>.stride, 1)
        (base, mappedCount) = Self.allocate(byteCount)
        let bytes = count * MemoryLayout<Float>.stride
        let (chunk, page) = (8 << 20, Self.page)
        let from = UnsafeRawPointer(source)
        var offset = 0
        while offset < bytes {
            let length = min(chunk, bytes - offset)
            (base + offset).copyMemory(from: from + offset, byteCount: length)
            if releasingSource {
                let start = (Int(bitPattern: from + offset) + page - 1) / page * page
                let end = Int(bitPattern: from + offset + length) / page * page
                if end > start {
                    _ = madvise(UnsafeMutableRawPointer(bitPattern: start), end - start, Int32(MADV_DONTNEED))
                }
            }
            offset += length
        }
    }

    public var floats: UnsafePointer<Float> { UnsafePointer(base.assumingMemoryBound(to: Float.self)) }

    deinit { munmap(base, mappedCount) }
}
