import ZooCore

/// The tar checkpoint format of torch < 0.1.10 (probably the original alexnet-owt-4df8aa71.pth): a
/// POSIX tar with members
/// - `sys_info`: a pickle (`little_endian`, type sizes);
/// - `storages`: a pickled count, then per storage a pickle of (key, location, StorageClass), an
///   int64 element count and the raw bytes; finally a pickled list of views
///   (view_key, root_key, offset, numel);
/// - `tensors`: a pickled count, then per tensor a pickle of (key, storage_key, TensorClass), an int32
///   rank, 4 padding bytes, rank int64 sizes, rank int64 strides and an int64 storage offset;
/// - `pickle`: the object, whose persistent ids are tensor or storage keys as decimal strings.
/// See FORMATS.md §3 and torch/serialization.py `legacy_load`.
enum TarCheckpoint {
    static func read(file: MappedFile, options: Checkpoint.Options) throws(CheckpointError) -> (PyValue, Checkpoint.ByteOrder) {
        let members = try TarReader.members(of: file.bytes)
        func member(_ name: String) throws(CheckpointError) -> Range<Int> {
            guard let range = members[ExactString(name)] else { throw CheckpointError(.missingRecord(name)) }
            return range
        }
        var reader = MemberReader(file: file, options: options)

        var order = Checkpoint.ByteOrder.little
        reader.begin("sys_info", try member("sys_info"))
        if case let .dict(info) = try reader.pickle(), case let .bool(little)? = info["little_endian"] {
            order = little ? .little : .big
        }

        // Storages, then views of them.
        var objects: [ExactString: PyValue] = [:]
        reader.begin("storages", try member("storages"))
        let storageCount = try reader.count()
        for _ in 0..<storageCount {
            guard case let .tuple(t) = try reader.pickle(), t.items.count == 3, let key = objectKey(t.items[0]),
                  let location = t.items[1].stringValue else {
                throw reader.fail(.pickle("storage header is not (key, location, type)"))
            }
            guard let dtype = try TorchGlobals.storageDType(t.items[2]) else {
                throw reader.fail(.unsupported("untyped storage in a tar checkpoint"))
            }
            let count = try reader.int64("element count of storage '\(key)'")
            let length = try StorageBytes.byteCount(count, dtype, key: key)
            let raw = try reader.bytes(length, "storage '\(key)'")
            objects[ExactString(key)] = .storage(TorchStorage(key: key, dtype: dtype, location: location,
                                                 storage: StorageBytes.prepare(raw, dtype: dtype, byteOrder: order),
                                                 fileByteOrder: order))
        }
        guard let views = try reader.pickle().sequenceItems else { throw reader.fail(.pickle("storage views are not a list")) }
        for view in views {
            guard let v = view.sequenceItems, v.count == 4, let viewKey = objectKey(v[0]), let rootKey = objectKey(v[1]),
                  let offset = v[2].intValue, let numel = v[3].intValue else {
                throw reader.fail(.pickle("storage view is not (key, root, offset, numel)"))
            }
            guard case let .storage(root)? = objects[ExactString(rootKey)] else {
                throw reader.fail(.storage("view '\(viewKey)' of unknown storage '\(rootKey)'"))
            }
            let start = try StorageBytes.byteCount(offset, root.dtype, key: viewKey)
            let length = try StorageBytes.byteCount(numel, root.dtype, key: viewKey)
            guard start <= root.storage.byteCount, length <= root.storage.byteCount - start else {
                throw reader.fail(.storage("view '\(viewKey)' reaches past storage '\(rootKey)'"))
            }
            objects[ExactString(viewKey)] = .storage(TorchStorage(key: viewKey, dtype: root.dtype, location: root.location,
                                                     storage: Storage(slicing: root.storage, range: start..<(start + length)),
                                                     fileByteOrder: root.fileByteOrder))
        }

        // Tensors over those storages.
        reader.begin("tensors", try member("tensors"))
        let tensorCount = try reader.count()
        for _ in 0..<tensorCount {
            guard case let .tuple(t) = try reader.pickle(), t.items.count == 3, let key = objectKey(t.items[0]),
                  let storageKey = objectKey(t.items[1]) else {
                throw reader.fail(.pickle("tensor header is not (key, storage, type)"))
            }
            guard case let .storage(source)? = objects[ExactString(storageKey)] else {
                throw reader.fail(.storage("tensor '\(key)' uses unknown storage '\(storageKey)'"))
            }
            let rank = Int(Int32(truncatingIfNeeded: try reader.int64("rank of tensor '\(key)'", width: 4)))
            _ = try reader.bytes(4, "padding")
            guard rank >= 0 else { throw reader.fail(.tar("tensor '\(key)' has negative rank \(rank)")) }
            do throws(LimitExceeded) { try options.limits.checkRank(rank, "tensor '\(key)'") } catch { throw reader.fail(.limit(error)) }
            var shape: [Int] = [], strides: [Int] = []
            for _ in 0..<rank { shape.append(try reader.int64("size of tensor '\(key)'")) }
            for _ in 0..<rank { strides.append(try reader.int64("stride of tensor '\(key)'")) }
            let offset = try reader.int64("offset of tensor '\(key)'")
            let tensor: Tensor
            do {
                tensor = try Tensor(dtype: source.dtype, shape: shape, strides: strides, offset: offset, storage: source.storage)
            } catch {
                throw reader.fail(.tensor(error))
            }
            objects[ExactString(key)] = .tensor(TorchTensor(tensor: tensor, source: source))
        }

        // The object itself.
        reader.begin("pickle", try member("pickle"))
        let root = try reader.pickle { id throws(CheckpointError) in
            guard let key = id.stringValue else {
                throw CheckpointError(.unsupported("a pickled nn.Module (module source persistent id); save its state_dict() instead"))
            }
            guard let object = objects[ExactString(key)] else { throw CheckpointError(.storage("persistent id '\(key)' names no tensor or storage")) }
            return object
        }
        return (root, order)
    }

    /// Keys are Python ints (object ids) in the members and decimal strings in persistent ids.
    private static func objectKey(_ value: PyValue) -> String? {
        if let i = value.intValue { return String(i) }
        return value.stringValue
    }

    /// Sequential reads inside one tar member, with errors naming the member and offset.
    private struct MemberReader {
        let file: MappedFile
        let options: Checkpoint.Options
        var name = ""
        var range = 0..<0
        var position = 0

        init(file: MappedFile, options: Checkpoint.Options) {
            self.file = file
            self.options = options
        }

        mutating func begin(_ name: String, _ range: Range<Int>) {
            self.name = name
            self.range = range
            position = range.lowerBound
        }

        func fail(_ reason: CheckpointError.Reason) -> CheckpointError {
            CheckpointError(reason, record: name, offset: position - range.lowerBound)
        }

        mutating func pickle(_ load: @escaping Unpickler.PersistentLoad = { _ throws(CheckpointError) in
            throw CheckpointError(.pickle("unexpected persistent id"))
        }) throws(CheckpointError) -> PyValue {
            let bytes = UnsafeRawBufferPointer(rebasing: file.bytes[range])
            var unpickler = Unpickler(bytes: bytes, record: name, startOffset: position - range.lowerBound,
                                      limits: options.limits, persistentLoad: load)
            let value = try unpickler.load()
            position = range.lowerBound + unpickler.endPosition
            return value
        }

        /// A member's leading record count. Every record takes bytes of the member, so a count
        /// beyond the bytes that remain is a lie (and would drive a loop the file cannot feed).
        mutating func count() throws(CheckpointError) -> Int {
            guard let count = try pickle().intValue, count >= 0 else {
                throw fail(.pickle("member does not start with a count"))
            }
            guard count <= range.upperBound - position else {
                throw fail(.truncated("member declares \(count) records but only \(range.upperBound - position) bytes remain"))
            }
            return count
        }

        mutating func int64(_ what: String, width: Int = 8) throws(CheckpointError) -> Int {
            let raw = try bytes(width, what)
            return width == 8 ? Int(Int64(littleEndian: raw.bytes.loadUnaligned(as: Int64.self)))
                : Int(Int32(littleEndian: raw.bytes.loadUnaligned(as: Int32.self)))
        }

        mutating func bytes(_ count: Int, _ what: String) throws(CheckpointError) -> Storage {
            guard count >= 0, range.upperBound - position >= count else {
                throw fail(.truncated("\(what) needs \(count) bytes, \(range.upperBound - position) remain in member"))
            }
            defer { position += count }
            return Storage(mapping: file, range: position..<(position + count))
        }
    }
}

/// A minimal POSIX (ustar / pax) tar reader: member name → byte range of its data. Every header's
/// checksum is verified, as Python's tarfile (which torch uses) does.
enum TarReader {
    static func members(of bytes: UnsafeRawBufferPointer) throws(CheckpointError) -> [ExactString: Range<Int>] {
        var members: [ExactString: Range<Int>] = [:]
        var position = 0
        var paxPath: String?
        var paxSize: Int?
        while true {
            guard bytes.count - position >= 512 else {
                throw CheckpointError(.truncated("tar header cut short"), record: "tar", offset: position)
            }
            let header = UnsafeRawBufferPointer(rebasing: bytes[position..<(position + 512)])
            if header.allSatisfy({ $0 == 0 }) { break }
            guard checksumMatches(header) else {
                throw CheckpointError(.tar("header checksum does not match its bytes"), record: "tar", offset: position)
            }
            guard Array(header[257..<262]) == Array("ustar".utf8) else {
                throw CheckpointError(.tar("header without ustar magic"), record: "tar", offset: position)
            }
            var name = field(header, 0, 100)
            let prefix = field(header, 345, 155)
            if !prefix.isEmpty { name = prefix + "/" + name }
            guard var size = octal(header, 124, 12) else {
                throw CheckpointError(.tar("header with a bad size field"), record: "tar", offset: position)
            }
            let type = header[156]
            let dataStart = position + 512
            if let override = paxSize { size = override }
            guard size >= 0, bytes.count - dataStart >= size else {
                throw CheckpointError(.truncated("tar member '\(name)' needs \(size) bytes"), record: "tar", offset: position)
            }
            let data = dataStart..<(dataStart + size)
            if type == UInt8(ascii: "x") {
                (paxPath, paxSize) = pax(UnsafeRawBufferPointer(rebasing: bytes[data]))
            } else {
                if let override = paxPath { name = override }
                paxPath = nil
                paxSize = nil
                if type == UInt8(ascii: "0") || type == 0 {
                    guard members.updateValue(data, forKey: ExactString(name)) == nil else {
                        throw CheckpointError(.tar("duplicate member '\(name)'"), record: "tar", offset: position)
                    }
                }
            }
            position = dataStart + (size + 511) / 512 * 512
        }
        return members
    }

    /// Whether the 512-byte `header`'s checksum field (octal, bytes 148..<156) equals the sum of
    /// its bytes with that field counted as spaces — as unsigned bytes, or as signed bytes like some
    /// old tars (tarfile accepts both).
    static func checksumMatches(_ header: UnsafeRawBufferPointer) -> Bool {
        guard header.count == 512, let recorded = octal(header, 148, 8) else { return false }
        var unsigned = 8 * 0x20, signed = 8 * 0x20
        for (i, byte) in header.enumerated() where !(148..<156).contains(i) {
            unsigned += Int(byte)
            signed += Int(Int8(bitPattern: byte))
        }
        return recorded == unsigned || recorded == signed
    }

    private static func field(_ header: UnsafeRawBufferPointer, _ start: Int, _ length: Int) -> String {
        let raw = header[start..<(start + length)]
        let end = raw.firstIndex(of: 0) ?? raw.endIndex
        return String(decoding: header[start..<end], as: UTF8.self)
    }

    private static func octal(_ header: UnsafeRawBufferPointer, _ start: Int, _ length: Int) -> Int? {
        let text = field(header, start, length).trimmingCharacters(in: " ")
        return text.isEmpty ? 0 : Int(text, radix: 8)
    }

    /// The `path` and `size` records of a pax extended header.
    private static func pax(_ data: UnsafeRawBufferPointer) -> (String?, Int?) {
        var path: String?, size: Int?
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            guard let space = line.firstIndex(of: " ") else { continue }
            let record = line[line.index(after: space)...]
            guard let equals = record.firstIndex(of: "=") else { continue }
            let key = record[..<equals], value = String(record[record.index(after: equals)...])
            if key == "path" { path = value }
            if key == "size" { size = Int(value) }
        }
        return (path, size)
    }
}

private extension String {
    func trimmingCharacters(in set: Character) -> String {
        var s = Substring(self)
        while s.first == set { s.removeFirst() }
        while s.last == set { s.removeLast() }
        return String(s)
    }
}
