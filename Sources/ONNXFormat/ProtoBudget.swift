/// What protobuf-c will allocate to unpack a message, worked out from the wire bytes before it
/// unpacks anything — the only place a file's repeated fields (nodes, initializers, attributes,
/// dims, ints/floats lists, strings) can be checked before the memory is taken, since
/// `onnx__model_proto__unpack` allocates the whole tree in one call.
///
/// The walk follows protobuf-c 1.4's `protobuf_c_message_unpack` (protobuf-c.c), field by field,
/// with the generated descriptors (Sources/CONNX) as the schema:
/// - every message: its struct (`sizeof_message`), allocated before its fields;
/// - a repeated field: one array of `count × element size` (8 for a message or string pointer,
///   16 for bytes, 4 or 8 for scalars; a packed run counts its elements);
/// - a string: its bytes + 1; bytes: its bytes; an unknown field: a 24-byte record and a copy;
/// - while a message is unpacked, a scratch record of 32 bytes per field occurrence beyond the
///   first 16 (in slabs that double, so at most 64 bytes per occurrence), live while its children
///   unpack — counted along the costliest path;
/// - 16 bytes of allocator overhead per allocation.
/// Messages nest by recursion in protobuf-c: the walk (which does not recurse) refuses nesting
/// deeper than `maxONNXNesting` before protobuf-c could exhaust the stack.
///
/// A malformed message stops the walk; what was counted up to there is still checked (protobuf-c
/// unpacks the fields before the bad one), and protobuf-c then reports the malformation itself.
import CONNX
import CProtobufC
import ZooCore

enum ProtoBudget {
    /// The fixed allowance on top of `maxONNXExpansion × file size`: the structs of a small model
    /// outweigh its bytes many times over.
    static let allowance = 64 << 20

    /// Why unpacking `bytes` as a `descriptor` message would exceed `limits`, or nil.
    static func check(_ bytes: UnsafeRawBufferPointer, _ descriptor: UnsafePointer<ProtobufCMessageDescriptor>,
                      limits: ResourceLimits) -> LimitExceeded? {
        let total: Int
        switch estimate(bytes, descriptor, maxNesting: limits.maxONNXNesting) {
        case let .tooDeep(offset):
            return LimitExceeded(\.maxONNXNesting, of: limits,
                                 "protobuf messages nested more than \(limits.maxONNXNesting) levels deep (at byte \(offset))")
        case let .bytes(bytes):
            total = bytes
        }
        let (scaled, o1) = limits.maxONNXExpansion.multipliedReportingOverflow(by: bytes.count)
        let (allowed, o2) = scaled.addingReportingOverflow(allowance)
        guard !o1, !o2, total > allowed else { return nil }
        let ratio = Double(total) / Double(max(bytes.count, 1))
        let needed = (total - allowance + bytes.count - 1) / max(bytes.count, 1)
        return LimitExceeded(\.maxONNXExpansion, of: limits,
                             "unpacking would allocate about \(ResourceLimits.bytesText(total)) for \(ResourceLimits.bytesText(bytes.count)) of protobuf (\(Int(ratio.rounded(.up)))×; the limit allows \(limits.maxONNXExpansion)× + \(ResourceLimits.bytesText(allowance)))",
                             needed: needed)
    }

    /// `estimate` for a ModelProto.
    static func estimateModel(_ bytes: UnsafeRawBufferPointer, maxNesting: Int) -> Estimate {
        withUnsafePointer(to: onnx__model_proto__descriptor) { estimate(bytes, $0, maxNesting: maxNesting) }
    }

    enum Estimate: Equatable {
        /// What protobuf-c would allocate at its peak, in bytes.
        case bytes(Int)
        /// A message nested deeper than allowed starts at this byte offset.
        case tooDeep(at: Int)
    }

    /// What unpacking `bytes` as a `descriptor` message would allocate at its peak, or where it
    /// nests messages more than `maxNesting` levels deep.
    static func estimate(_ bytes: UnsafeRawBufferPointer, _ descriptor: UnsafePointer<ProtobufCMessageDescriptor>,
                         maxNesting: Int) -> Estimate {
        struct Frame {
            let descriptor: UnsafePointer<ProtobufCMessageDescriptor>
            let end: Int
            /// Field occurrences: protobuf-c's scanned members.
            var fields = 0
            /// The costliest child's scratch, which is live while this message's own is.
            var childScratch = 0
            var scratch: Int { (fields > 16 ? 64 * fields : 0) + childScratch }
        }
        let overhead = 16
        var allocated = Self.size(of: descriptor) + overhead
        var frames = [Frame(descriptor: descriptor, end: bytes.count)]
        var scratch = 0
        var at = 0

        walk: while let frame = frames.last {
            if at >= frame.end {
                frames.removeLast()
                if frames.isEmpty {
                    scratch = frame.scratch
                } else {
                    frames[frames.count - 1].childScratch = max(frames[frames.count - 1].childScratch, frame.scratch)
                }
                continue
            }
            guard let tag = ProtoWire.readVarint(bytes, &at, end: frame.end), tag >> 3 >= 1, tag >> 3 <= UInt64(UInt32.max) else {
                break walk
            }
            frames[frames.count - 1].fields += 1
            let wire = tag & 7
            let payload: Range<Int>
            switch wire {
            case 0:
                let start = at
                guard ProtoWire.readVarint(bytes, &at, end: frame.end) != nil else { break walk }
                payload = start ..< at
            case 1, 5:
                let width = wire == 1 ? 8 : 4
                guard frame.end - at >= width else { break walk }
                payload = at ..< at + width
                at += width
            case 2:
                guard let length = ProtoWire.readVarint(bytes, &at, end: frame.end), length <= UInt64(frame.end - at) else { break walk }
                payload = at ..< at + Int(length)
                at += Int(length)
            default:
                break walk
            }
            guard let field = protobuf_c_message_descriptor_get_field(frame.descriptor, UInt32(tag >> 3)),
                  Self.wireMatches(field.pointee, wire) else {
                // Unknown (or, for protobuf-c, an error it finds later): a record and a copy.
                allocated += 24 + payload.count + 10 + overhead
                continue
            }
            let repeated = field.pointee.label == PROTOBUF_C_LABEL_REPEATED
            switch field.pointee.type {
            case PROTOBUF_C_TYPE_MESSAGE:
                guard frames.count <= maxNesting else { return .tooDeep(at: payload.lowerBound) }
                let child = field.pointee.descriptor.assumingMemoryBound(to: ProtobufCMessageDescriptor.self)
                allocated += Self.size(of: child) + overhead + (repeated ? 8 : 0)
                frames.append(Frame(descriptor: child, end: payload.upperBound))
                at = payload.lowerBound
            case PROTOBUF_C_TYPE_STRING:
                allocated += payload.count + 1 + overhead + (repeated ? 8 : 0)
            case PROTOBUF_C_TYPE_BYTES:
                allocated += (payload.isEmpty ? 0 : payload.count + overhead) + (repeated ? 16 : 0)
            default:
                guard repeated else { continue }
                let type = field.pointee.type
                allocated += Self.scalarSize(type) * (wire == 2 ? Self.packedCount(type, bytes, payload) : 1)
            }
        }
        // A malformed message: protobuf-c fails inside the frames still open, with their scratch live.
        for frame in frames { scratch += frame.scratch }

        return .bytes(allocated + scratch)
    }

    private static func size(of descriptor: UnsafePointer<ProtobufCMessageDescriptor>) -> Int {
        Int(descriptor.pointee.sizeof_message)
    }

    /// Whether protobuf-c accepts `wire` for `field` (else it fails the unpack; counted as unknown).
    private static func wireMatches(_ field: ProtobufCFieldDescriptor, _ wire: UInt64) -> Bool {
        switch field.type {
        case PROTOBUF_C_TYPE_MESSAGE, PROTOBUF_C_TYPE_STRING, PROTOBUF_C_TYPE_BYTES:
            return wire == 2
        default:
            if wire == 2 { return field.label == PROTOBUF_C_LABEL_REPEATED }
            return wire == nativeWire(field.type)
        }
    }

    private static func nativeWire(_ type: ProtobufCType) -> UInt64 {
        switch type {
        case PROTOBUF_C_TYPE_SFIXED32, PROTOBUF_C_TYPE_FIXED32, PROTOBUF_C_TYPE_FLOAT: 5
        case PROTOBUF_C_TYPE_SFIXED64, PROTOBUF_C_TYPE_FIXED64, PROTOBUF_C_TYPE_DOUBLE: 1
        default: 0
        }
    }

    /// protobuf-c's `sizeof_elt_in_repeated_array` for scalar types.
    private static func scalarSize(_ type: ProtobufCType) -> Int {
        switch type {
        case PROTOBUF_C_TYPE_INT64, PROTOBUF_C_TYPE_SINT64, PROTOBUF_C_TYPE_SFIXED64, PROTOBUF_C_TYPE_UINT64,
             PROTOBUF_C_TYPE_FIXED64, PROTOBUF_C_TYPE_DOUBLE: 8
        default: 4
        }
    }

    /// Elements in a packed run: one per varint, or per 4 / 8 bytes.
    private static func packedCount(_ type: ProtobufCType, _ bytes: UnsafeRawBufferPointer, _ payload: Range<Int>) -> Int {
        switch nativeWire(type) {
        case 5: return payload.count / 4
        case 1: return payload.count / 8
        default:
            var count = 0
            for i in payload where bytes[i] & 0x80 == 0 { count += 1 }
            return count
        }
    }
}
