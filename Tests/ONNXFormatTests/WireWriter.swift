/// Protobuf wire-format writer for ONNX models built inside tests (field numbers from
/// Schemas/onnx.proto): models an exporter would never write — hostile values, legacy attributes.
struct WireWriter {
    var bytes: [UInt8] = []

    private mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 { bytes.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        bytes.append(UInt8(v))
    }
    mutating func int(_ field: Int, _ value: Int) { varint(UInt64(field << 3)); varint(UInt64(bitPattern: Int64(value))) }
    mutating func bytes(_ field: Int, _ payload: [UInt8]) { varint(UInt64(field << 3 | 2)); varint(UInt64(payload.count)); bytes += payload }
    mutating func string(_ field: Int, _ value: String) { bytes(field, Array(value.utf8)) }
    mutating func message(_ field: Int, _ build: (inout WireWriter) -> Void) { var m = WireWriter(); build(&m); bytes(field, m.bytes) }
    mutating func float(_ field: Int, _ value: Float) {
        varint(UInt64(field << 3 | 5)); withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes += $0 }
    }
}
