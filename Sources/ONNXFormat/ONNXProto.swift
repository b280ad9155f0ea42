/// Thin, safe Swift access to the protoc-c code generated from Schemas/onnx.proto (module CONNX),
/// shared by the ONNX reader and writer.
///
/// protobuf-c conventions this file relies on (protobuf-c 1.4.1):
/// - `onnx__model_proto__unpack` copies every string, bytes and repeated field out of the input, so
///   the input buffer may be unmapped afterwards; the whole tree is freed by `__free_unpacked`.
/// - An absent optional string is NULL; repeated fields are `n_x` + `x` (NULL when `n_x` is 0);
///   repeated messages are arrays of pointers.
/// - Unknown fields are kept in `base.unknown_fields` and written back by pack, so unpack → pack is
///   byte-identical for files produced by the usual protobuf serializers.
import CONNX
import CProtobufC
import ZooCore

/// An unpacked ModelProto and the owner of its memory: `deinit` frees the whole message tree.
/// Pointers read from `model` are valid only while this object is alive.
public final class ONNXModelProto: @unchecked Sendable {
    public let model: UnsafeMutablePointer<Onnx__ModelProto>
    /// The file it came from (for error messages); empty when unpacked from bytes.
    public let path: String
    /// The mapped file, when unpacked from one: tensors' raw_data can be zero-copy slices of it.
    public let file: MappedFile?

    /// Maps the file and unpacks it, once `ProtoBudget` has checked its bytes against `limits`.
    /// - Throws: `ONNXError` naming the file when it cannot be read, is not protobuf, is truncated,
    ///   is a protobuf message that is not an ONNX model, exceeds `limits` or holds a string field
    ///   that is not UTF-8 text without NUL.
    public convenience init(path: String, limits: ResourceLimits = .current) throws(ONNXError) {
        let file: MappedFile
        do { file = try MappedFile(path: path) } catch { throw ONNXError(file: path, error.description) }
        try self.init(bytes: file.bytes, path: path, file: file, limits: limits)
    }

    /// Unpacks `bytes` (copied; the buffer need not outlive this object).
    public convenience init(bytes: UnsafeRawBufferPointer, path: String, limits: ResourceLimits = .current) throws(ONNXError) {
        try self.init(bytes: bytes, path: path, file: nil, limits: limits)
    }

    private init(bytes: UnsafeRawBufferPointer, path: String, file: MappedFile?, limits: ResourceLimits) throws(ONNXError) {
        self.path = path
        self.file = file
        guard bytes.count > 0, let base = bytes.baseAddress else {
            throw ONNXError(file: path, "not an ONNX model: the file is empty")
        }
        // protobuf-c allocates the whole tree, recurses once per nesting level and keeps strings as
        // C strings: allocation bombs, nesting bombs and names with a NUL or invalid UTF-8 are
        // refused here, before unpack; malformed bytes are left to protobuf-c to refuse.
        let verdict = ProtoBudget.check(bytes, onnx__model_proto__descriptor, limits: limits)
        if case let .refused(reason) = verdict { throw ONNXError(file: path, reason) }
        guard let model = onnx__model_proto__unpack(nil, bytes.count, base.assumingMemoryBound(to: UInt8.self)) else {
            throw ONNXError(file: path, ProtoWire.diagnose(bytes))
        }
        // Every stored property is set, so from here on a throw runs `deinit`, which frees `model`:
        // freeing it here as well was a double free.
        self.model = model
        // The walk agrees with protobuf-c on what is malformed; should they ever differ, the
        // strings were not all checked.
        guard verdict == .valid else { throw ONNXError(file: path, ProtoBudget.unchecked) }
        // Any byte string that parses as protobuf "is" a ModelProto of unknown fields; a real one
        // has a graph and an IR version.
        guard model.pointee.has_ir_version != 0, model.pointee.graph != nil else {
            let missing = model.pointee.has_ir_version == 0 ? "ir_version" : "graph"
            throw ONNXError(file: path, "not an ONNX model: protobuf message without \(missing)")
        }
    }

    deinit { onnx__model_proto__free_unpacked(model, nil) }

    /// `metadata_props` in file order, every entry (see `ONNXModel.metadataProps`).
    public var metadataProps: [(key: String, value: String)] {
        ONNXProto.entries(model.pointee.metadata_props, model.pointee.n_metadata_props)
    }

    /// Where each graph initializer's raw_data lies in the mapped file (nil entries: no raw_data), in
    /// initializer order — or nil when there is no file or the layout is not the plain one (a
    /// repeated graph field, which protobuf merges). Callers still check each range's length.
    public private(set) lazy var initializerRawData: [Range<Int>?]? = file.flatMap { ProtoWire.initializerRawData($0.bytes) }
}

/// Accessors over protobuf-c's C representation. Every array read checks its pointer against its count.
public enum ONNXProto {
    /// A C string field (`char *`, NULL when absent) as a Swift string; absent → "".
    public static func string(_ pointer: UnsafePointer<CChar>?) -> String {
        guard let pointer else { return "" }
        return String(cString: pointer)
    }

    /// A bytes field's contents (valid while its message is alive).
    public static func bytes(_ data: ProtobufCBinaryData) -> UnsafeRawBufferPointer {
        guard data.len > 0, let pointer = data.data else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: pointer, count: data.len)
    }

    /// A repeated scalar field as a buffer. A NULL pointer with a nonzero count is a broken
    /// message (protobuf-c never produces one) and traps.
    public static func buffer<T>(_ pointer: UnsafeMutablePointer<T>?, _ count: Int) -> UnsafeBufferPointer<T> {
        guard count > 0 else { return UnsafeBufferPointer(start: nil, count: 0) }
        guard let pointer else { preconditionFailure("repeated field with \(count) elements but no storage") }
        return UnsafeBufferPointer(start: pointer, count: count)
    }

    /// A repeated message field (array of pointers) as an array of non-NULL pointers.
    public static func messages<T>(_ pointer: UnsafeMutablePointer<UnsafeMutablePointer<T>?>?, _ count: Int)
        -> [UnsafeMutablePointer<T>] {
        buffer(pointer, count).map { element in
            guard let element else { preconditionFailure("repeated message field holds a NULL element") }
            return element
        }
    }

    /// Repeated string fields (`char **`).
    public static func strings(_ pointer: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, _ count: Int) -> [String] {
        buffer(pointer, count).map { string($0) }
    }

    /// `repeated StringStringEntryProto` as ordered pairs.
    public static func entries(_ pointer: UnsafeMutablePointer<UnsafeMutablePointer<Onnx__StringStringEntryProto>?>?,
                               _ count: Int) -> [(key: String, value: String)] {
        messages(pointer, count).map { (string($0.pointee.key), string($0.pointee.value)) }
    }

    /// Packs `message` chunk by chunk into `append` without building it in memory (bytes fields are
    /// passed straight from the message). Returns the byte count. Protobuf's 2 GiB limit is not
    /// enforced here — the caller must check `protobuf_c_message_get_packed_size` first.
    @discardableResult
    public static func packStreaming(_ message: UnsafePointer<ProtobufCMessage>,
                                     _ append: (UnsafeRawBufferPointer) -> Void) -> Int {
        withoutActuallyEscaping(append) { append in
            var box = StreamContext(append: append)
            return withUnsafeMutablePointer(to: &box) { context in
                connx_pack_streaming(message, { context, bytes, count in
                    let box = context!.assumingMemoryBound(to: StreamContext.self)
                    box.pointee.append(UnsafeRawBufferPointer(start: bytes, count: count))
                }, context)
            }
        }
    }

    private struct StreamContext {
        var append: (UnsafeRawBufferPointer) -> Void
    }
}

/// Just enough of the protobuf wire format to find fields by number (the one field reader,
/// `nextField`, which the pre-unpack walk `ProtoBudget` uses too) and to say *why* bytes are not a
/// ModelProto: the generated unpack only answers NULL.
enum ProtoWire {
    /// The base-128 varint at `at` (advanced past it), or nil when it runs past `end` or 64 bits.
    static func readVarint(_ bytes: UnsafeRawBufferPointer, _ at: inout Int, end: Int) -> UInt64? {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while at < end, shift < 64 {
            let byte = bytes[at]
            at += 1
            value |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
        return nil
    }

    /// The field at `at` (advanced past it) by protobuf-c 1.4.1's rules — a tag of at most 5 bytes
    /// whose first byte holds a field number, varints of at most 10 bytes, a length prefix of at
    /// most 5 bytes and `Int32.max` — or nil when malformed.
    static func nextField(_ bytes: UnsafeRawBufferPointer, _ at: inout Int, end: Int) -> (number: UInt64, wire: UInt64, payload: Range<Int>)? {
        guard at < end, bytes[at] & 0xF8 != 0, let tag = readVarint(bytes, &at, end: min(end, at + 5)) else { return nil }
        let start: Int
        switch tag & 7 {
        case 0: start = at; guard readVarint(bytes, &at, end: min(end, at + 10)) != nil else { return nil }
        case 1, 5:
            let width = tag & 7 == 1 ? 8 : 4
            guard end - at >= width else { return nil }
            start = at
            at += width
        case 2:
            guard let length = readVarint(bytes, &at, end: min(end, at + 5)), length <= UInt64(Int32.max),
                  length <= UInt64(end - at) else { return nil }
            start = at
            at += Int(length)
        default: return nil
        }
        return (tag >> 3, tag & 7, start..<at)
    }

    /// Calls `body` with (field number, wire type, payload range) for each field of the message in
    /// `range`; false when the bytes are malformed.
    static func forEachField(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>,
                             _ body: (UInt64, UInt64, Range<Int>) -> Void) -> Bool {
        var at = range.lowerBound
        while at < range.upperBound {
            guard let field = nextField(bytes, &at, end: range.upperBound) else { return false }
            body(field.number, field.wire, field.payload)
        }
        return true
    }

    /// ModelProto.graph (7) → GraphProto.initializer (5) → TensorProto.raw_data (9), by wire order.
    static func initializerRawData(_ bytes: UnsafeRawBufferPointer) -> [Range<Int>?]? {
        var graphs: [Range<Int>] = []
        guard forEachField(bytes, 0..<bytes.count, { field, wire, payload in
            if field == 7 && wire == 2 { graphs.append(payload) }
        }), graphs.count == 1 else { return nil }
        var tensors: [Range<Int>] = []
        guard forEachField(bytes, graphs[0], { field, wire, payload in
            if field == 5 && wire == 2 { tensors.append(payload) }
        }) else { return nil }
        var result: [Range<Int>?] = []
        for tensor in tensors {
            var raw: Range<Int>?
            guard forEachField(bytes, tensor, { field, wire, payload in
                if field == 9 && wire == 2 { raw = payload }  // the last occurrence wins, as in protobuf
            }) else { return nil }
            result.append(raw)
        }
        return result
    }

    /// ModelProto's field numbers (Schemas/onnx.proto).
    static let modelFields: Set<UInt64> = [1, 2, 3, 4, 5, 6, 7, 8, 14, 20, 25, 26]

    /// A one-line reason: truncation (with the byte offset), bytes that are not protobuf, or a
    /// protobuf message that is not a ModelProto.
    static func diagnose(_ bytes: UnsafeRawBufferPointer) -> String {
        if bytes.count >= 2, bytes[0] == 0x50, bytes[1] == 0x4B { return "not an ONNX model: this is a zip archive (a PyTorch checkpoint?)" }
        var at = 0
        var sawModelField = false
        func varint() -> UInt64? { readVarint(bytes, &at, end: bytes.count) }
        while at < bytes.count {
            let start = at
            guard let tag = varint() else { return "truncated protobuf: field tag at byte \(start) runs past the end" }
            let field = tag >> 3
            guard field >= 1 else { return "not an ONNX model: byte \(start) is not a protobuf field" }
            let known = modelFields.contains(field)
            switch tag & 7 {
            case 0:
                guard varint() != nil else { return "truncated protobuf: field \(field) at byte \(start) runs past the end of the file (\(bytes.count) bytes)" }
            case 1, 5:
                let width = tag & 7 == 1 ? 8 : 4
                guard at + width <= bytes.count else { return "truncated protobuf: field \(field) at byte \(start) runs past the end of the file (\(bytes.count) bytes)" }
                at += width
            case 2:
                guard let length = varint() else { return "truncated protobuf: field \(field) at byte \(start) runs past the end of the file" }
                guard length <= UInt64(bytes.count - at) else {
                    return known || sawModelField
                        ? "truncated protobuf: field \(field) at byte \(start) declares \(length) bytes, only \(bytes.count - at) remain"
                        : "not an ONNX model: byte \(start) does not start a protobuf field of a ModelProto"
                }
                at += Int(length)
            default:
                return sawModelField
                    ? "malformed protobuf: invalid wire type \(tag & 7) at byte \(start)"
                    : "not an ONNX model: byte \(start) is not a protobuf field"
            }
            sawModelField = sawModelField || known
        }
        return "malformed ONNX model: a nested message is truncated or invalid"
    }
}
