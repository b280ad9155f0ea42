import ZooCore

/// Turns a storage's raw bytes from a file into bytes tensors can use directly: host (little-endian)
/// byte order, and aligned to the element size. A mapped slice is returned as is when it already is
/// both — the common case, which copies nothing.
enum StorageBytes {
    static func prepare(_ storage: Storage, dtype: DType, byteOrder: Checkpoint.ByteOrder) -> Storage {
        let item = dtype.itemSize
        let swap = byteOrder == .big && item > 1
        let aligned = storage.bytes.count == 0 || Int(bitPattern: storage.bytes.baseAddress!) % item == 0
        if !swap && aligned { return storage }
        let source = storage.bytes
        return Storage(byteCount: source.count) { destination in
            guard source.count > 0 else { return }
            destination.copyMemory(from: source)
            if swap {
                let d = destination.baseAddress!.assumingMemoryBound(to: UInt8.self)
                var i = 0
                while i + item <= source.count {
                    var lo = i, hi = i + item - 1
                    while lo < hi {
                        let t = d[lo]
                        d[lo] = d[hi]
                        d[hi] = t
                        lo += 1
                        hi -= 1
                    }
                    i += item
                }
            }
        }
    }

    /// `count × itemSize`, or an error naming the storage when it overflows.
    static func byteCount(_ count: Int, _ dtype: DType, key: String) throws(CheckpointError) -> Int {
        guard count >= 0 else { throw CheckpointError(.storage("storage '\(key)' declares \(count) elements")) }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: dtype.itemSize)
        guard !overflow else { throw CheckpointError(.storage("storage '\(key)' size overflows: \(count) elements")) }
        return bytes
    }
}
