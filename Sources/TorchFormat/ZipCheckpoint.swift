import ZooCore

/// The zip checkpoint format (torch.save since 1.6): `<prefix>/data.pkl` (pickle protocol 2) whose
/// persistent ids ('storage', StorageClass, key, location, numel) name records `<prefix>/data/<key>`;
/// `<prefix>/byteorder` says the data's byte order (little when absent). The archive must start at
/// byte 0, as torch requires (`_is_zipfile`; miniz takes recorded offsets as file offsets). See
/// FORMATS.md §1 and torch/serialization.py `_load`.
///
/// Stored records are zero-copy slices of the file; deflated ones are inflated into memory, at most
/// `maxInflatedBytes` in total, checked against each record's declared size before inflating it.
enum ZipCheckpoint {
    static func read(file: MappedFile, options: Checkpoint.Options) throws(CheckpointError) -> (PyValue, Checkpoint.ByteOrder) {
        let archive = try ZipArchive(file: file)
        let limits = options.limits
        var inflated = 0
        func contents(_ entry: ZipEntry) throws(CheckpointError) -> Storage {
            if entry.method != 0 {
                let (total, overflow) = inflated.addingReportingOverflow(entry.size)
                guard !overflow, total <= limits.maxInflatedBytes else {
                    throw CheckpointError(.limit(LimitExceeded(\.maxInflatedBytes, of: limits,
                        "inflating \(ResourceLimits.bytesText(entry.size)) (deflated records total \(overflow ? "over 8 EiB" : ResourceLimits.bytesText(total)))",
                        needed: overflow ? nil : total)), record: entry.name)
                }
                inflated = total
            }
            return try archive.contents(of: entry, verifyCRC: options.verifyChecksums)
        }
        guard archive.archiveStart == 0 else {
            throw CheckpointError(.zip("\(archive.archiveStart) bytes precede the archive (torch reads only archives that start at byte 0)"), offset: 0)
        }
        let code = Array((archive.prefix + "/code/").utf8)
        if archive.entry("constants.pkl") != nil || archive.entries.contains(where: { $0.name.utf8.starts(with: code) }) {
            throw CheckpointError(.unsupported("a TorchScript archive (torch.jit.save): zoo reads saved tensors, never scripted code"))
        }
        guard let pickleEntry = archive.entry("data.pkl") else { throw CheckpointError(.missingRecord("\(archive.prefix)/data.pkl")) }
        guard pickleEntry.size <= limits.maxPickleBytes else {
            throw CheckpointError(.limit(LimitExceeded(\.maxPickleBytes, of: limits,
                "a pickle of \(ResourceLimits.bytesText(pickleEntry.size))", needed: pickleEntry.size)), record: pickleEntry.name)
        }
        let pickle = try contents(pickleEntry)

        var order = Checkpoint.ByteOrder.little
        if let entry = archive.entry("byteorder") {
            let raw = try contents(entry)
            let text = String(decoding: raw.bytes, as: UTF8.self)
            guard let parsed = Checkpoint.ByteOrder(rawValue: text) else {
                throw CheckpointError(.zip("byteorder record says \"\(text.prefix(16))\", expected little or big"), record: entry.name)
            }
            order = parsed
        }

        var storages: [ExactString: TorchStorage] = [:]
        var unpickler = Unpickler(bytes: pickle.bytes, record: pickleEntry.name, limits: limits) { id throws(CheckpointError) in
            guard case let .tuple(t) = id, t.items.count == 5, t.items[0].stringValue == "storage",
                  let key = t.items[2].stringValue, let location = t.items[3].stringValue,
                  let numel = t.items[4].intValue else {
                throw CheckpointError(.pickle("persistent id is not ('storage', type, key, location, numel)"))
            }
            let dtype = try TorchGlobals.storageDType(t.items[1]) ?? .u8
            if let known = storages[ExactString(key)] {
                guard known.dtype == dtype else {
                    throw CheckpointError(.storage("storage '\(key)' is used as both \(known.dtype.rawValue) and \(dtype.rawValue)"))
                }
                guard known.elementCount == numel else {
                    throw CheckpointError(.storage("storage '\(key)' is declared with \(known.elementCount) and \(numel) elements"))
                }
                return .storage(known)
            }
            let name = "data/\(key)"
            guard let entry = archive.entry(name) else { throw CheckpointError(.missingRecord("\(archive.prefix)/\(name)")) }
            let expected = try StorageBytes.byteCount(numel, dtype, key: key)
            guard entry.size == expected else {
                throw CheckpointError(.storage("storage '\(key)' declares \(numel) \(dtype.rawValue) elements (\(expected) bytes) but record \(entry.name) holds \(entry.size) bytes"))
            }
            let raw = try contents(entry)
            let storage = TorchStorage(key: key, dtype: dtype, location: location,
                                       storage: StorageBytes.prepare(raw, dtype: dtype, byteOrder: order), fileByteOrder: order)
            storages[ExactString(key)] = storage
            return .storage(storage)
        }
        return (try unpickler.load(), order)
    }
}
