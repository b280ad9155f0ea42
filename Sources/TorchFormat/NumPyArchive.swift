import ZooCore

/// numpy's .npz (numpy/lib/_npyio_impl.py `savez` / `savez_compressed`, `load`): a zip archive with
/// one record `NAME.npy` per array, stored or deflated, no folder. It lives beside the torch formats
/// because it shares their validated zip reader (`ZipArchive`, `.flat` layout) and CRC-32.
///
/// Reading validates the archive as `ZipArchive` does, verifies every record's CRC-32, budgets the
/// deflated records' declared sizes against `maxInflatedBytes` before inflating any, and reads each
/// record as a .npy (`NumPy.read`). Writing stores the records uncompressed, as `np.savez` does,
/// through an `OutputFile` (temporary file, then rename).
public enum NumPyArchive {
    /// The arrays of the .npz at `path`, in archive order, named without `.npy`.
    public static func read(path: String, limits: ResourceLimits = .current) throws(NumPy.FormatError) -> [(name: String, tensor: Tensor)] {
        func fail(_ message: String) -> NumPy.FormatError { NumPy.FormatError(path: path, message: message) }
        if let problem = ResourceLimits.environmentProblem { throw fail(problem) }
        let file: MappedFile
        do { file = try MappedFile(path: path) } catch { throw fail("cannot \(error.operation): \(error.message)") }
        let archive: ZipArchive
        do { archive = try ZipArchive(file: file, layout: .flat) } catch { throw fail("not an .npz: \(error)") }
        var inflated = 0
        for entry in archive.entries where entry.method != 0 {
            let (total, overflow) = inflated.addingReportingOverflow(entry.size)
            guard !overflow, total <= limits.maxInflatedBytes else {
                throw fail(LimitExceeded(\.maxInflatedBytes, of: limits, "deflated records of \(overflow ? "over 8 EiB" : ResourceLimits.bytesText(total))",
                                         needed: overflow ? nil : total).description)
            }
            inflated = total
        }
        var arrays: [(name: String, tensor: Tensor)] = []
        for entry in archive.entries {
            guard entry.name.hasSuffix(".npy"), entry.name.count > 4 else {
                throw fail("record '\(entry.name)' is not NAME.npy (an .npz holds one .npy per array)")
            }
            let storage: Storage
            do { storage = try archive.contents(of: entry, verifyCRC: true) } catch { throw fail("\(error)") }
            arrays.append((String(entry.name.dropLast(4)), try NumPy.read(storage, name: "\(path): \(entry.name)", limits: limits)))
        }
        return arrays
    }

    /// Writes `arrays` (f32, f64 or i64; names unique, not empty, without "/") as an .npz of stored
    /// records, atomically. Records and the archive stay under 4 GiB (no zip64).
    public static func write(_ arrays: [(name: String, tensor: Tensor)], to path: String, limits: ResourceLimits = .current) throws {
        func fail(_ message: String) -> NumPy.FormatError { NumPy.FormatError(path: path, message: message) }
        var seen: Set<String> = []
        for (name, _) in arrays {
            guard !name.isEmpty, !name.contains("/"), name.utf8.count < 0xFF00 else { throw fail("cannot name an array '\(name)' in an .npz") }
            guard seen.insert(name).inserted else { throw fail("two arrays named '\(name)'") }
        }
        let output = try OutputFile(path: path)
        var central: [UInt8] = []
        for (name, tensor) in arrays {
            let preamble = try NumPy.preamble(for: tensor, name: path, limits: limits)
            let record = Array((name + ".npy").utf8)
            let offset = output.position
            let crc: UInt32 = tensor.withContiguousBytes { data in
                preamble.withUnsafeBytes { CRC32.checksum(data, seed: CRC32.checksum($0)) }
            }
            let size = preamble.count + tensor.byteCount
            guard size < 0xFFFF_FFFF, offset < 0xFFFF_FFFF else { throw fail("array '\(name)' would reach past 4 GiB (zoo writes .npz without zip64)") }
            var local = LittleEndianBytes()
            local.u32(0x0403_4B50); local.u16(20); local.u16(0x0800); local.u16(0); local.u16(0); local.u16(0x21)
            local.u32(crc); local.u32(UInt32(size)); local.u32(UInt32(size)); local.u16(UInt16(record.count)); local.u16(0)
            try output.write(local.bytes + record + preamble)
            try tensor.withContiguousBytes { try output.write($0) }
            var entry = LittleEndianBytes()
            entry.u32(0x0201_4B50); entry.u16(20); entry.u16(20); entry.u16(0x0800); entry.u16(0); entry.u16(0); entry.u16(0x21)
            entry.u32(crc); entry.u32(UInt32(size)); entry.u32(UInt32(size)); entry.u16(UInt16(record.count)); entry.u16(0); entry.u16(0)
            entry.u16(0); entry.u16(0); entry.u32(0o100644 << 16); entry.u32(UInt32(offset))
            central += entry.bytes + record
        }
        let directoryOffset = output.position
        guard directoryOffset < 0xFFFF_FFFF, arrays.count < 0xFFFF else { throw fail("the archive would reach past 4 GiB (zoo writes .npz without zip64)") }
        var end = LittleEndianBytes()
        end.u32(0x0605_4B50); end.u16(0); end.u16(0); end.u16(UInt16(arrays.count)); end.u16(UInt16(arrays.count))
        end.u32(UInt32(central.count)); end.u32(UInt32(directoryOffset)); end.u16(0)
        try output.write(central + end.bytes)
        try output.commit()
    }
}
