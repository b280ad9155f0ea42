#if canImport(Glibc)
import Glibc
#endif

/// Memory for large, long-lived read-mostly arrays (fully connected weights): 2 MiB-aligned and
/// advised for transparent huge pages, so streaming through it is not slowed by a TLB miss and a
/// prefetcher restart every 4 KiB (on the reference machine a batch-1 fc6 pass takes ~15 % less
/// time than from 4 KiB pages). Where the kernel does not grant huge pages this is plain memory.
final class HugePageBuffer: @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    let byteCount: Int
    private static let hugePage = 1 << 21

    /// Copies `count` floats from `source`. With `releasingSource`, each copied 8 MiB chunk of the
    /// source is dropped from this process's memory (`MADV_DONTNEED` on its whole pages) as soon as
    /// it is copied, so the copy never holds both in full. Only pass it for a read-only private file
    /// mapping: its pages come back from the file if anything reads them again.
    init(copying source: UnsafePointer<Float>, count: Int, releasingSource: Bool) {
        byteCount = max(count * MemoryLayout<Float>.stride, 1)
        let rounded = (byteCount + Self.hugePage - 1) / Self.hugePage * Self.hugePage
        var memory: UnsafeMutableRawPointer?
        if posix_memalign(&memory, Self.hugePage, rounded) != 0 || memory == nil {
            memory = UnsafeMutableRawPointer.allocate(byteCount: rounded, alignment: 64)
        }
        base = memory!
        _ = madvise(base, rounded, 14)   // MADV_HUGEPAGE; advice only, failure is harmless
        let bytes = count * MemoryLayout<Float>.stride
        let chunk = 8 << 20
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let from = UnsafeRawPointer(source)
        var offset = 0
        while offset < bytes {
            let length = min(chunk, bytes - offset)
            (base + offset).copyMemory(from: from + offset, byteCount: length)
            if releasingSource && page > 0 {
                let start = (Int(bitPattern: from + offset) + page - 1) / page * page
                let end = Int(bitPattern: from + offset + length) / page * page
                if end > start {
                    _ = madvise(UnsafeMutableRawPointer(bitPattern: start), end - start, Int32(MADV_DONTNEED))
                }
            }
            offset += length
        }
    }

    var floats: UnsafePointer<Float> { UnsafePointer(base.assumingMemoryBound(to: Float.self)) }

    deinit { free(base) }
}
