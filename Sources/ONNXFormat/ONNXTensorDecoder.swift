/// TensorProto decoding for the reader (ONNXReader.swift): raw_data, typed fields, external data.
import CONNX
import CProtobufC
import ZooCore
import ZooOps

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Decodes TensorProtos — for the importer (initializers, Constant, ConstantOfShape) and for
/// `ONNX.tensor(fromTensorProtoFile:)` — into zoo tensors: raw_data (little-endian), the typed field
/// the data type uses, or external data from files inside `folder` only.
struct TensorDecoder {
    /// The file being read (for error messages).
    let path: String
    /// Where external data must live: the file's folder; nil when decoding bytes without a file.
    let folder: String?
    /// The mapped file the TensorProtos were unpacked from, when there is one.
    let file: MappedFile?
    /// Where raw_data fields lie in `file`, by the index callers pass to `decode` (graph initializers
    /// in wire order for a model, the one message for a TensorProto file).
    let rawData: [Range<Int>?]?
    /// `maxTensorRank` bounds every tensor's dims.
    let limits: ResourceLimits
    var externalFiles: [String: MappedFile] = [:]

    init(path: String, file: MappedFile?, rawData: [Range<Int>?]?, externalData: Bool = true, limits: ResourceLimits) {
        self.path = path
        self.file = file
        self.rawData = rawData
        self.limits = limits
        let slash = path.lastIndex(of: "/")
        folder = externalData ? slash.map { String(path[..<$0]) } ?? "." : nil
    }

    /// A TensorProto's contents as a zoo tensor: raw_data (little-endian), the typed field its data
    /// type uses, or external data. raw_data is a zero-copy slice of the mapped file when
    /// `rawData[rawDataIndex]` locates it there, aligned to its element size.
    mutating func decode(_ pointer: UnsafeMutablePointer<Onnx__TensorProto>, rawDataIndex initializer: Int? = nil) throws(ONNXError) -> Tensor {
        let t = pointer.pointee
        let name = ONNXProto.string(t.name)
        let path = self.path
        func refuse(_ message: String) -> ONNXError { name.isEmpty ? ONNXError(file: path, message) : ONNXError(file: path, .tensor(name), message) }
        let type = ONNXDataType(rawValue: t.data_type)
        guard let dtype = type.dtype else { throw refuse("data type \(type) is not supported (zoo holds \(DType.allCases.map(\.rawValue).joined(separator: ", ")))") }
        do throws(LimitExceeded) { try limits.checkRank(t.n_dims) } catch { throw refuse(error.description) }
        let dims = ONNXProto.buffer(t.dims, t.n_dims).map { Int($0) }
        guard dims.allSatisfy({ $0 >= 0 }) else { throw refuse("negative dimension in \(dims)") }
        guard let count = Tensor.checkedCount(dims), case let (bytes, false) = count.multipliedReportingOverflow(by: dtype.itemSize) else {
            throw refuse("shape \(dims) is too large")
        }
        if t.segment != nil { throw refuse("segmented tensors are not supported") }
        func make(_ storage: Storage) throws(ONNXError) -> Tensor {
            do { return try Tensor(dtype: dtype, shape: dims, storage: storage) } catch { throw refuse("\(error)") }
        }

        if t.has_data_location != 0, t.data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL {
            return try make(external(t, name: name, bytes: bytes))
        }
        if t.has_raw_data != 0 {
            let raw = ONNXProto.bytes(t.raw_data)
            guard raw.count == bytes else { throw refuse("raw_data holds \(raw.count) bytes, \(dtype.rawValue) \(dims) needs \(bytes)") }
            if raw.count > 0, let initializer, let file, let ranges = rawData, initializer < ranges.count,
               let range = ranges[initializer], range.count == raw.count, range.lowerBound % dtype.itemSize == 0,
               memcmp(file.bytes.baseAddress! + range.lowerBound, raw.baseAddress!, min(raw.count, 64)) == 0 {
                return try make(Storage(mapping: file, range: range))
            }
            return try make(Storage(copying: raw))
        }
        func typed<T>(_ values: UnsafeBufferPointer<T>, _ field: String) throws(ONNXError) -> UnsafeBufferPointer<T> {
            guard values.count == count else { throw refuse("\(field) holds \(values.count) values, shape \(dims) needs \(count)") }
            return values
        }
        switch dtype {
        case .f32: return try make(Storage(copying: UnsafeRawBufferPointer(try typed(ONNXProto.buffer(t.float_data, t.n_float_data), "float_data"))))
        case .f64: return try make(Storage(copying: UnsafeRawBufferPointer(try typed(ONNXProto.buffer(t.double_data, t.n_double_data), "double_data"))))
        case .i64: return try make(Storage(copying: UnsafeRawBufferPointer(try typed(ONNXProto.buffer(t.int64_data, t.n_int64_data), "int64_data"))))
        case .i32: return try make(Storage(copying: UnsafeRawBufferPointer(try typed(ONNXProto.buffer(t.int32_data, t.n_int32_data), "int32_data"))))
        case .i16, .i8, .u8, .bool, .f16, .bf16:
            // Every type of 16 bits or fewer travels widened in int32_data (f16/bf16 as bit patterns).
            let values = try typed(ONNXProto.buffer(t.int32_data, t.n_int32_data), "int32_data")
            let range: ClosedRange<Int32> = switch dtype {
            case .i16: Int32(Int16.min)...Int32(Int16.max)
            case .i8: Int32(Int8.min)...Int32(Int8.max)
            case .u8: 0...255
            case .bool: 0...1
            default: 0...0xFFFF
            }
            if let bad = values.firstIndex(where: { !range.contains($0) }) {
                throw refuse("int32_data[\(bad)] = \(values[bad]) is out of range for \(dtype.rawValue)")
            }
            return try make(Storage(byteCount: bytes) { out in
                for (i, v) in values.enumerated() {
                    if dtype.itemSize == 2 { out.storeBytes(of: UInt16(truncatingIfNeeded: v), toByteOffset: 2 * i, as: UInt16.self) }
                    else { out.storeBytes(of: UInt8(truncatingIfNeeded: v), toByteOffset: i, as: UInt8.self) }
                }
            })
        }
    }

    /// External data: `location` relative to the file's folder (never absolute, never leaving it,
    /// symlinks included), `offset` / `length` checked against the file; the bytes are a zero-copy
    /// slice of the mapped file when the offset suits the element alignment.
    mutating func external(_ t: Onnx__TensorProto, name: String, bytes: Int) throws(ONNXError) -> Storage {
        let path = self.path
        func refuse(_ message: String) -> ONNXError { name.isEmpty ? ONNXError(file: path, message) : ONNXError(file: path, .tensor(name), message) }
        guard let folder else { throw refuse("external data needs the file's folder; these bytes have none") }
        var location: String?
        var offset = 0
        var length: Int?
        for (key, value) in ONNXProto.entries(t.external_data, t.n_external_data) {
            switch key {
            case "location": location = value
            case "offset", "length":
                guard let number = Int(value), number >= 0 else { throw refuse("external data \(key) '\(value)' is not a byte count") }
                if key == "offset" { offset = number } else { length = number }
            case "checksum": break
            default: throw refuse("unknown external data key '\(key)'")
            }
        }
        guard let location, !location.isEmpty else { throw refuse("external data has no location") }
        guard !location.hasPrefix("/") else { throw refuse("external data location '\(location)' is an absolute path; it must be relative to the model's folder") }
        guard !location.split(separator: "/").contains("..") else { throw refuse("external data location '\(location)' escapes the model's folder") }
        let file = folder + "/" + location
        if externalFiles[file] == nil {
            guard let realFolder = realpath(folder, nil) else { throw refuse("cannot resolve the model's folder") }
            defer { free(realFolder) }
            guard let realFile = realpath(file, nil) else {
                throw refuse("external data file '\(location)' is missing (\(String(cString: strerror(errno))))")
            }
            defer { free(realFile) }
            let base = String(cString: realFolder), target = String(cString: realFile)
            guard target.hasPrefix(base.hasSuffix("/") ? base : base + "/") else {
                throw refuse("external data location '\(location)' escapes the model's folder (resolves to \(target))")
            }
            do { externalFiles[file] = try MappedFile(path: file) } catch { throw refuse("external data: \(error)") }
        }
        let mapped = externalFiles[file]!
        let size = mapped.bytes.count
        if let length, length != bytes { throw refuse("external data length \(length) but the tensor needs \(bytes) bytes") }
        guard offset <= size, bytes <= size - offset else {
            throw refuse("external data '\(location)': \(bytes) bytes at offset \(offset) lie outside the file (\(size) bytes)")
        }
        let range = offset..<(offset + bytes)
        let alignment = max(1, ONNXDataType(rawValue: t.data_type).dtype?.itemSize ?? 1)
        if offset % alignment == 0 { return Storage(mapping: mapped, range: range) }
        return Storage(copying: UnsafeRawBufferPointer(rebasing: mapped.bytes[range]))
    }
}
