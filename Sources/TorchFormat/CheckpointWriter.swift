import ZooCore

extension Checkpoint {
    /// Writes `root` as a zip checkpoint exactly as torch.save(obj, path) does with its defaults
    /// (pickle protocol 2, 64-byte aligned records, CRC-32, little-endian data): for an object read
    /// from a torch.save file and written under the same basename, the bytes are identical.
    ///
    /// The file appears atomically: it is written to a temporary file beside `path` and renamed
    /// over it only when complete; on any failure an existing file at `path` is left untouched.
    /// `root` must pass the checks a loaded graph passes (no cycles, at most `maxPickleDepth` levels
    /// deep, which bounds the pickler's recursion, and `maxExpandedValues` values) under
    /// `ResourceLimits.current`.
    public static func save(_ root: PyValue, to path: String) throws(CheckpointError) {
        do { try TreeWalker.checkStructure(root, limits: .current) } catch { throw error.inFile(path) }
        var pickler = Pickler()
        pickler.dump(root)
        do {
            let output = try OutputFile(path: path)
            var zip = ZipWriter(output: output, prefix: archiveName(for: path))
            try pickler.output.withUnsafeBytes { try zip.add("data.pkl", $0) }
            for (name, text) in [(".format_version", "1"), (".storage_alignment", "64"), ("byteorder", "little")] {
                try Array(text.utf8).withUnsafeBytes { try zip.add(name, $0) }
            }
            for (key, storage) in pickler.storages.enumerated() {
                try zip.add("data/\(key)", storage.storage.bytes)
            }
            try zip.finish()
            try output.commit()
        } catch let error as IOError {
            throw CheckpointError(.io(error.description))
        } catch let error as CheckpointError {
            throw error.inFile(path)
        } catch {
            throw CheckpointError(.io("\(error)"), file: path)
        }
    }

    /// Writes a state dict as torch.save(model.state_dict()) would: an OrderedDict of tensors.
    public static func save(_ stateDict: StateDict, to path: String) throws(CheckpointError) {
        let dict = PyDict(ordered: true)
        for entry in stateDict.entries { dict.set(.string(PyString(entry.name)), .tensor(entry.tensor)) }
        try save(.dict(dict), to: path)
    }

    /// The top-level folder torch gives a zip checkpoint: the file's basename without its last
    /// extension (caffe2/serialize/inline_container.cc, `basename`).
    static func archiveName(for path: String) -> String {
        let base = path.split(separator: "/", omittingEmptySubsequences: false).last.map(String.init) ?? path
        guard let dot = base.lastIndex(of: ".") else { return base.isEmpty ? "archive" : base }
        let stem = String(base[..<dot])
        return stem.isEmpty ? "archive" : stem
    }
}
