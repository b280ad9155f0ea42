/// The one pass over a protobuf message's wire bytes that runs before protobuf-c unpacks it.
///
/// `onnx__model_proto__unpack` (and `onnx__tensor_proto__unpack`) allocate the whole message tree
/// in one call, recurse once per nesting level and keep every `string` field as a C string without
/// looking at it. So whatever must be refused is refused here, from the bytes, with the generated
/// descriptors (Sources/CONNX) as the schema. Contract of `check(bytes, descriptor, limits:)`:
/// - It reads every field once, in wire order, with `ProtoWire.nextField` (protobuf-c 1.4.1's rules
///   for tags, varints and length prefixes), descending into message fields without recursion:
///   time linear in the bytes, memory of the order of the nesting depth.
/// - `.refused(reason)`: protobuf-c must not be called. The reason is, by precedence:
///   1. messages nested more than `limits.maxONNXNesting` levels deep (protobuf-c would exhaust the
///      stack), refused as soon as the walk reaches one — a `LimitExceeded` naming the byte offset;
///   2. an allocation estimate above `maxONNXExpansion` × the byte count + `allowance` — a
///      `LimitExceeded`;
///   3. (only when the bytes are well-formed, see `.malformed`) the first string field holding a
///      NUL byte or invalid UTF-8 — "\0bias" would unpack as "", a silently wrong model — as
///      `byte 412: graph.node[2].input[1]: string field contains a NUL byte (…)`.
/// - `.malformed`: the walk could not follow every field — the bytes break the wire format, or give
///   a string or message field another wire type — so not every string was checked. protobuf-c
///   refuses such bytes too, and the caller lets it say why; should it accept them after all, the
///   caller refuses the result with `unchecked` (and frees it).
/// - `.valid`: within the limits and every string is UTF-8 text without NUL.
///
/// The estimate follows protobuf-c 1.4's `protobuf_c_message_unpack` (protobuf-c.c) field by field:
/// - every message: its struct (`sizeof_message`), allocated before its fields;
/// - a repeated field: one array of `count × element size` (8 for a message or string pointer,
///   16 for bytes, 4 or 8 for scalars; a packed run counts its elements);
/// - a string: its bytes + 1; bytes: its bytes; an unknown field (or one whose wire type its type
///   does not take, which protobuf-c fails on only once it has scanned the whole message): a
///   24-byte record and a copy;
/// - while a message is unpacked, a scratch record of 32 bytes per field occurrence beyond the
///   first 16 (in slabs that double, so at most 64 bytes per occurrence), live while its children
///   unpack — counted along the costliest path;
/// - 16 bytes of allocator overhead per allocation.
/// Bytes that break the wire format stop the walk; what was counted up to there is still checked
/// (protobuf-c unpacks the fields before the bad one).
import CONNX
import CProtobufC
import ZooCore

enum ProtoBudget {
    /// The fixed allowance on top of `maxONNXExpansion × file size`: the structs of a small model
    /// outweigh its bytes many times over.
    static let allowance = 64 << 20

    /// The refusal when the walk said `.malformed` but protobuf-c unpacked the bytes anyway.
    static let unchecked = "malformed protobuf: the bytes do not follow the wire format"

    enum Verdict: Equatable {
        case valid
        /// Not protobuf-c's wire format: not every string was checked; unpack refuses it (and says why).
        case malformed
        /// A one-line reason: a limit exceeded, or a string field's byte offset, path and fault.
        case refused(String)
    }

    /// Whether the message of type `descriptor` in `bytes` may be unpacked under `limits` (see the
    /// contract above).
    static func check(_ bytes: UnsafeRawBufferPointer, _ descriptor: ProtobufCMessageDescriptor,
                      limits: ResourceLimits) -> Verdict {
        let found = withUnsafePointer(to: descriptor) { scan(bytes, $0, maxNesting: limits.maxONNXNesting) }
        if let exceeded = exceeded(found.estimate, bytes.count, limits) { return .refused(exceeded.description) }
        guard found.complete else { return .malformed }
        return found.badString.map(Verdict.refused) ?? .valid
    }

    /// The limit `estimate` exceeds for a message of `count` bytes, or nil.
    private static func exceeded(_ estimate: Estimate, _ count: Int, _ limits: ResourceLimits) -> LimitExceeded? {
        let total: Int
        switch estimate {
        case let .tooDeep(offset):
            return LimitExceeded(\.maxONNXNesting, of: limits,
                                 "protobuf messages nested more than \(limits.maxONNXNesting) levels deep (at byte \(offset))")
        case let .bytes(bytes):
            total = bytes
        }
        let (scaled, o1) = limits.maxONNXExpansion.multipliedReportingOverflow(by: count)
        let (allowed, o2) = scaled.addingReportingOverflow(allowance)
        guard !o1, !o2, total > allowed else { return nil }
        let ratio = Double(total) / Double(max(count, 1))
        let needed = (total - allowance + count - 1) / max(count, 1)
        return LimitExceeded(\.maxONNXExpansion, of: limits,
                             "unpacking would allocate about \(ResourceLimits.bytesText(total)) for \(ResourceLimits.bytesText(count)) of protobuf (\(Int(ratio.rounded(.up)))×; the limit allows \(limits.maxONNXExpansion)× + \(ResourceLimits.bytesText(allowance)))",
                             needed: needed)
    }

    /// The allocation estimate for a ModelProto.
    static func estimateModel(_ bytes: UnsafeRawBufferPointer, maxNesting: Int) -> Estimate {
        withUnsafePointer(to: onnx__model_proto__descriptor) { scan(bytes, $0, maxNesting: maxNesting).estimate }
    }

    enum Estimate: Equatable {
        /// What protobuf-c would allocate at its peak, in bytes.
        case bytes(Int)
        /// A message nested deeper than allowed starts at this byte offset.
        case tooDeep(at: Int)
    }

    /// What the walk found.
    struct Scan {
        var estimate: Estimate
        /// The first string field with a NUL byte or invalid UTF-8: offset, field path, fault.
        var badString: String?
        /// Whether every field was followed (so every string checked): false for malformed bytes.
        var complete: Bool
    }

    /// A message being walked.
    private struct Frame {
        let descriptor: UnsafePointer<ProtobufCMessageDescriptor>
        /// Where its bytes start and end.
        let start: Int, end: Int
        /// The field of the enclosing message that holds it, and where that field's tag is (nil for
        /// the outermost message).
        let field: UnsafePointer<ProtobufCFieldDescriptor>?, tag: Int
        /// Field occurrences: protobuf-c's scanned members.
        var fields = 0
        /// The costliest child's scratch, which is live while this message's own is.
        var childScratch = 0
        var scratch: Int { (fields > 16 ? 64 * fields : 0) + childScratch }
    }

    /// The walk: the allocation estimate (or where messages nest more than `maxNesting` levels
    /// deep, which stops it at once), the first bad string, and whether the bytes were well-formed.
    static func scan(_ bytes: UnsafeRawBufferPointer, _ descriptor: UnsafePointer<ProtobufCMessageDescriptor>,
                     maxNesting: Int) -> Scan {
        let overhead = 16
        var allocated = size(of: descriptor) + overhead
        var frames = [Frame(descriptor: descriptor, start: 0, end: bytes.count, field: nil, tag: 0)]
        frames.reserveCapacity(min(maxNesting, 1000) + 1)
        var scratch = 0
        var badString: String?
        var complete = true
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
            let tag = at
            guard let next = ProtoWire.nextField(bytes, &at, end: frame.end) else {
                complete = false
                break walk
            }
            frames[frames.count - 1].fields += 1
            let payload = next.payload
            guard let field = protobuf_c_message_descriptor_get_field(frame.descriptor, UInt32(next.number)) else {
                allocated += 24 + payload.count + 10 + overhead  // unknown: a record and a copy
                continue
            }
            let type = field.pointee.type
            guard wireMatches(field.pointee, next.wire) else {
                // protobuf-c scans the message on, then fails on this field: counted as unknown. A
                // string or message field that is not length-delimited cannot be checked.
                allocated += 24 + payload.count + 10 + overhead
                if type == PROTOBUF_C_TYPE_STRING || type == PROTOBUF_C_TYPE_MESSAGE { complete = false }
                continue
            }
            let repeated = field.pointee.label == PROTOBUF_C_LABEL_REPEATED
            switch type {
            case PROTOBUF_C_TYPE_MESSAGE:
                guard frames.count <= maxNesting else {
                    return Scan(estimate: .tooDeep(at: payload.lowerBound), badString: badString, complete: complete)
                }
                let child = field.pointee.descriptor.assumingMemoryBound(to: ProtobufCMessageDescriptor.self)
                allocated += size(of: child) + overhead + (repeated ? 8 : 0)
                frames.append(Frame(descriptor: child, start: payload.lowerBound, end: payload.upperBound, field: field, tag: tag))
                at = payload.lowerBound
            case PROTOBUF_C_TYPE_STRING:
                allocated += payload.count + 1 + overhead + (repeated ? 8 : 0)
                if badString == nil, let found = textProblem(bytes, payload) {
                    badString = "byte \(found.offset): \(path(bytes, frames, field, tag)): string field \(found.problem) (ONNX names are UTF-8 text)"
                }
            case PROTOBUF_C_TYPE_BYTES:
                allocated += (payload.isEmpty ? 0 : payload.count + overhead) + (repeated ? 16 : 0)
            default:
                guard repeated else { continue }
                allocated += scalarSize(type) * (next.wire == 2 ? packedCount(type, bytes, payload) : 1)
            }
        }
        // Malformed: protobuf-c fails inside the messages still open, with their scratch live.
        for frame in frames { scratch += frame.scratch }

        return Scan(estimate: .bytes(allocated + scratch), badString: badString, complete: complete)
    }

    /// `graph.node[2].input[1]` for `field` (its tag at `tag`) in the innermost of `frames`; the
    /// middle of a very deep path is elided.
    private static func path(_ bytes: UnsafeRawBufferPointer, _ frames: [Frame],
                             _ field: UnsafePointer<ProtobufCFieldDescriptor>, _ tag: Int) -> String {
        // Each step: where the enclosing message starts, the field, where its tag is.
        let steps = zip(frames, frames.dropFirst()).map { ($0.start, $1.field!, $1.tag) } + [(frames.last!.start, field, tag)]
        let parts = steps.map { message, field, tag in
            let name = String(cString: field.pointee.name)
            guard field.pointee.label == PROTOBUF_C_LABEL_REPEATED else { return name }
            // The index: the same field's earlier occurrences in the message (all well-formed).
            var at = message, index = 0
            while at < tag, let earlier = ProtoWire.nextField(bytes, &at, end: tag) {
                if earlier.number == UInt64(field.pointee.id) { index += 1 }
            }
            return "\(name)[\(index)]"
        }
        guard parts.count > 8 else { return parts.joined(separator: ".") }
        return parts.prefix(4).joined(separator: ".") + " ... " + parts.suffix(3).joined(separator: ".")
    }

    /// The offset and nature of the first NUL byte or invalid UTF-8 in `range`, or nil.
    static func textProblem(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> (offset: Int, problem: String)? {
        var iterator = UnsafeRawBufferPointer(rebasing: bytes[range]).makeIterator()
        var parser = Unicode.UTF8.ForwardParser()
        var offset = range.lowerBound
        while true {
            switch parser.parseScalar(from: &iterator) {
            case let .valid(scalar):
                if scalar.count == 1 && scalar.first == 0 { return (offset, "contains a NUL byte") }
                offset += scalar.count
            case .emptyInput: return nil
            case .error: return (offset, "is not valid UTF-8")
            }
        }
    }

    private static func size(of descriptor: UnsafePointer<ProtobufCMessageDescriptor>) -> Int {
        Int(descriptor.pointee.sizeof_message)
    }

    /// Whether protobuf-c accepts `wire` for `field` (else it fails the unpack).
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
