import ZooCore

/// The legacy stacked-pickle format (torch.save(..., _use_new_zipfile_serialization=False), and every
/// torch before 1.6): five protocol-2 pickles — magic number, protocol version 1001, sys_info, the
/// object, the list of storage keys — then, per key in that list's order, an int64 element count and
/// the storage's raw bytes, unaligned. Persistent ids are ('storage', StorageClass, root_key, location,
/// numel, view_metadata) with view_metadata None or (view_key, offset, numel). See FORMATS.md §2 and
/// torch/serialization.py `_legacy_load`.
enum LegacyCheckpoint {
    /// 0x1950a86a20f9469cfc6c as pickle's little-endian LONG1 bytes.
    static let magic: [UInt8] = [0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19]
    static let protocolVersion = 1001

    private struct Declared {
        let dtype: DType
        let numel: Int
        let location: String
    }

    static func read(file: MappedFile, options: Checkpoint.Options) throws(CheckpointError) -> (PyValue, Checkpoint.ByteOrder) {
        let bytes = file.bytes
        let record = "legacy pickle"
        func next(at offset: Int, dryRun: Bool = false,
                  _ load: @escaping Unpickler.PersistentLoad = { _ throws(CheckpointError) in
                      throw CheckpointError(.pickle("unexpected persistent id"))
                  }) throws(CheckpointError) -> (PyValue, Int) {
            var unpickler = Unpickler(bytes: bytes, record: record, startOffset: offset, limits: options.limits, persistentLoad: load)
            unpickler.dryRun = dryRun
            return (try unpickler.load(), unpickler.endPosition)
        }

        let (magicValue, afterMagic) = try next(at: 0)
        guard case let .bigInt(digits) = magicValue, digits == magic else {
            throw CheckpointError(.notACheckpoint("a pickle, but without torch's legacy magic number"), offset: 0)
        }
        let (version, afterVersion) = try next(at: afterMagic)
        guard version.intValue == protocolVersion else {
            throw CheckpointError(.unsupported("legacy protocol version \(version.intValue.map(String.init) ?? version.kindName)"), offset: afterMagic)
        }
        let (sysInfo, afterSysInfo) = try next(at: afterVersion)
        var order = Checkpoint.ByteOrder.little
        if case let .dict(info) = sysInfo, case let .bool(little)? = info["little_endian"] { order = little ? .little : .big }

        // Pass 1: learn each storage's element type and count; tensors are not built yet.
        var declared: [ExactString: Declared] = [:]
        let (_, afterObject) = try next(at: afterSysInfo, dryRun: true) { id throws(CheckpointError) in
            let (key, dtype, numel, location, _) = try parse(id)
            if let known = declared[ExactString(key)] {
                guard known.dtype == dtype else {
                    throw CheckpointError(.storage("storage '\(key)' is used as both \(known.dtype.rawValue) and \(dtype.rawValue)"))
                }
                guard known.numel == numel else {
                    throw CheckpointError(.storage("storage '\(key)' is declared with \(known.numel) and \(numel) elements"))
                }
            }
            declared[ExactString(key)] = Declared(dtype: dtype, numel: numel, location: location)
            return .none
        }
        let (keyList, dataStart) = try next(at: afterObject)
        guard let keys = keyList.sequenceItems?.compactMap(\.stringValue), keys.count == keyList.sequenceItems?.count else {
            throw CheckpointError(.pickle("storage key list is not a list of strings"), offset: afterObject)
        }

        // The data section: per key, an int64 element count and the bytes.
        var roots: [ExactString: TorchStorage] = [:]
        var position = dataStart
        for key in keys {
            guard let info = declared[ExactString(key)] else {
                throw CheckpointError(.storage("storage '\(key)' has data but no tensor uses it"), offset: position)
            }
            guard bytes.count - position >= 8 else { throw CheckpointError(.truncated("storage '\(key)' count header"), offset: position) }
            let count = Int(Int64(littleEndian: bytes.loadUnaligned(fromByteOffset: position, as: Int64.self)))
            guard count == info.numel else {
                throw CheckpointError(.storage("storage '\(key)' holds \(count) elements but the pickle declares \(info.numel)"), offset: position)
            }
            let length = try StorageBytes.byteCount(count, info.dtype, key: key)
            position += 8
            guard bytes.count - position >= length else {
                throw CheckpointError(.truncated("storage '\(key)' needs \(length) bytes, \(bytes.count - position) remain"), offset: position)
            }
            let raw = Storage(mapping: file, range: position..<(position + length))
            roots[ExactString(key)] = TorchStorage(key: key, dtype: info.dtype, location: info.location,
                                      storage: StorageBytes.prepare(raw, dtype: info.dtype, byteOrder: order), fileByteOrder: order)
            position += length
        }
        if let missing = declared.keys.map(\.value).sorted().first(where: { roots[ExactString($0)] == nil }) {
            throw CheckpointError(.storage("storage '\(missing)' is used but has no data"), offset: dataStart)
        }

        // Pass 2: build the object over the located storages.
        var views: [ExactString: TorchStorage] = [:]
        let (object, _) = try next(at: afterSysInfo) { id throws(CheckpointError) in
            let (key, _, _, _, view) = try parse(id)
            // Pass 1 read the same pickle, so every storage it names has been located.
            guard let root = roots[ExactString(key)] else { throw CheckpointError(.storage("storage '\(key)' has no data")) }
            guard let (viewKey, offset, numel) = view else { return .storage(root) }
            if let known = views[ExactString(viewKey)] { return .storage(known) }
            let start = try StorageBytes.byteCount(offset, root.dtype, key: viewKey)
            let length = try StorageBytes.byteCount(numel, root.dtype, key: viewKey)
            guard start <= root.storage.byteCount, length <= root.storage.byteCount - start else {
                throw CheckpointError(.storage("view '\(viewKey)' of storage '\(key)' reaches past its end"))
            }
            let slice = Storage(slicing: root.storage, range: start..<(start + length))
            let storage = TorchStorage(key: viewKey, dtype: root.dtype, location: root.location, storage: slice,
                                       fileByteOrder: root.fileByteOrder)
            views[ExactString(viewKey)] = storage
            return .storage(storage)
        }
        return (object, order)
    }

    /// Splits a legacy persistent id into its parts.
    private static func parse(_ id: PyValue) throws(CheckpointError)
        -> (key: String, dtype: DType, numel: Int, location: String, view: (String, Int, Int)?) {
        guard case let .tuple(t) = id, t.items.count == 6, t.items[0].stringValue == "storage",
              let key = t.items[2].stringValue, let location = t.items[3].stringValue, let numel = t.items[4].intValue else {
            if case let .tuple(t) = id, t.items.first?.stringValue == "module" {
                throw CheckpointError(.unsupported("a pickled nn.Module (module source persistent id); save its state_dict() instead"))
            }
            throw CheckpointError(.pickle("persistent id is not ('storage', type, key, location, numel, view)"))
        }
        guard let dtype = try TorchGlobals.storageDType(t.items[1]) else {
            throw CheckpointError(.unsupported("untyped storage in a legacy checkpoint"))
        }
        guard numel >= 0 else { throw CheckpointError(.storage("storage '\(key)' declares \(numel) elements")) }
        switch t.items[5] {
        case .none:
            return (key, dtype, numel, location, nil)
        case let .tuple(v) where v.items.count == 3:
            guard let viewKey = v.items[0].stringValue, let offset = v.items[1].intValue, let size = v.items[2].intValue,
                  offset >= 0, size >= 0 else {
                throw CheckpointError(.pickle("malformed storage view metadata"))
            }
            return (key, dtype, numel, location, (viewKey, offset, size))
        default:
            throw CheckpointError(.pickle("malformed storage view metadata"))
        }
    }
}
