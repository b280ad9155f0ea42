/// safetensors files — https://github.com/huggingface/safetensors (README "Format"), checked
/// against the `safetensors` library 0.8.0 (Rust core, `safetensors/src/tensor.rs`).
///
/// Layout: 8 bytes little-endian header size N; N bytes of UTF-8 JSON
/// `{"__metadata__": {str: str}, "name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, …}`
/// (the reference writer pads it with spaces to a multiple of 8); then the byte buffer. Offsets are
/// relative to the buffer; tensors are dense, little-endian, C order.
///
/// The reader is stricter than the library, as the spec asks ("duplicate keys are disallowed", "the
/// byte buffer needs to be entirely indexed, and cannot contain holes"): it refuses duplicate keys,
/// unknown fields, non-integer or negative numbers, overflow, overlapping tensors, gaps and trailing
/// bytes, and any byte count that is not shape × dtype. It maps the file and hands out zero-copy
/// tensors (a tensor whose bytes are misaligned for its dtype is copied).
///
/// The writer reproduces the library's layout byte for byte: tensors sorted by dtype (the library's
/// `Dtype` order, largest alignment first) then by name (UTF-8 bytes), serde_json's compact output
/// and escapes, `__metadata__` first, space padding to 8 bytes. The library stores metadata in a
/// hash map and writes its keys in a random order; zoo sorts them, so files with more than one
/// metadata key match the library's only up to that order.
import ZooCore

public enum Safetensors {
    /// Maps `path` and parses and validates its header. Every tensor is a view of the mapping (or a
    /// copy when its bytes are misaligned for its dtype). Everything the header declares is bounded
    /// by the file's size, except the header size itself (`maxSafetensorsHeaderBytes`, the format's
    /// own limit) and tensor ranks (`maxTensorRank`), from `limits`.
    public static func load(path: String, limits: ResourceLimits = .current) throws(SafetensorsError) -> SafetensorsFile {
        if let problem = ResourceLimits.environmentProblem { throw SafetensorsError(.configuration(problem), file: path) }
        let file: MappedFile
        do { file = try MappedFile(path: path) } catch {
            throw SafetensorsError(.io(error.message), file: path)
        }
        do {
            return try parse(file, limits: limits)
        } catch {
            var located = error
            located.file = path
            throw located
        }
    }

    /// Writes `tensors` (any layout; views are written densely) and `metadata` to `path`
    /// atomically, in the reference library's order and format.
    /// - Throws: `SafetensorsError` for a duplicate or reserved name, a view whose dense copy would
    ///   exceed `limits.maxTensorBytes` (checked before anything is written), or an I/O failure.
    public static func save(_ tensors: [(name: String, tensor: Tensor)], metadata: [String: String] = [:],
                            to path: String, limits: ResourceLimits = .current) throws(SafetensorsError) {
        var seen: Set<String> = []
        for (name, tensor) in tensors {
            do throws(LimitExceeded) { try limits.checkDenseSize(tensor) } catch {
                throw SafetensorsError(.limit(error), file: path, tensor: name)
            }
            guard name != "__metadata__" else {
                throw SafetensorsError(.reservedName, file: path, tensor: name)
            }
            guard seen.insert(name).inserted else {
                throw SafetensorsError(.duplicateKey, file: path, tensor: name)
            }
        }
        let order = tensors.indices.sorted { a, b in
            let (x, y) = (tensors[a], tensors[b])
            let (rx, ry) = (SafetensorsDType(x.tensor.dtype).rank, SafetensorsDType(y.tensor.dtype).rank)
            if rx != ry { return rx > ry }
            return x.name.utf8.lexicographicallyPrecedes(y.name.utf8)
        }
        let header = headerBytes(tensors: order.map { tensors[$0] }, metadata: metadata)
        do {
            let output = try OutputFile(path: path)
            var size = UInt64(header.count).littleEndian
            try withUnsafeBytes(of: &size) { (raw) throws(IOError) in try output.write(raw) }
            try output.write(header)
            for index in order {
                let tensor = tensors[index].tensor
                let result: Result<Void, IOError> = tensor.withContiguousBytes { bytes in
                    do throws(IOError) { try output.write(bytes); return .success(()) } catch { return .failure(error) }
                }
                try result.get()
            }
            try output.commit()
        } catch {
            throw SafetensorsError(.io("cannot \(error.operation): \(error.message)"), file: path)
        }
    }

    /// The header bytes (JSON and padding) the reference writer produces for `tensors` in this order.
    static func headerBytes(tensors: [(name: String, tensor: Tensor)], metadata: [String: String]) -> [UInt8] {
        var json: [UInt8] = []
        json.append(UInt8(ascii: "{"))
        var first = true
        if !metadata.isEmpty {
            appendString("__metadata__", to: &json)
            json.append(contentsOf: Array(":{".utf8))
            for (i, key) in metadata.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }).enumerated() {
                if i > 0 { json.append(UInt8(ascii: ",")) }
                appendString(key, to: &json)
                json.append(UInt8(ascii: ":"))
                appendString(metadata[key]!, to: &json)
            }
            json.append(UInt8(ascii: "}"))
            first = false
        }
        var offset = 0
        for (name, tensor) in tensors {
            if !first { json.append(UInt8(ascii: ",")) }
            first = false
            appendString(name, to: &json)
            let end = offset + tensor.byteCount
            let shape = tensor.shape.map(String.init).joined(separator: ",")
            json.append(contentsOf: Array(
                ":{\"dtype\":\"\(SafetensorsDType(tensor.dtype).name)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(end)]}".utf8))
            offset = end
        }
        json.append(UInt8(ascii: "}"))
        json.append(contentsOf: [UInt8](repeating: UInt8(ascii: " "), count: (8 - json.count % 8) % 8))
        return json
    }

    /// serde_json's string encoding: `"` `\` and control characters escaped (`\b \t \n \f \r`,
    /// others as lowercase `\u00xx`); everything else, non-ASCII included, as raw UTF-8.
    private static func appendString(_ string: String, to out: inout [UInt8]) {
        let hex = Array("0123456789abcdef".utf8)
        out.append(UInt8(ascii: "\""))
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: [0x5C, byte])
            case UInt8(ascii: "\\"): out.append(contentsOf: [0x5C, byte])
            case 0x08: out.append(contentsOf: [0x5C, UInt8(ascii: "b")])
            case 0x09: out.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0x0A: out.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0C: out.append(contentsOf: [0x5C, UInt8(ascii: "f")])
            case 0x0D: out.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0..<0x20: out.append(contentsOf: Array("\\u00".utf8) + [hex[Int(byte >> 4)], hex[Int(byte & 15)]])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    // MARK: Reading

    private struct Entry {
        var name: String
        var keyOffset: Int
        var dtype: DType
        var shape: [Int]
        var begin: Int
        var end: Int
        var headerOrder: Int
    }

    private static func parse(_ file: MappedFile, limits: ResourceLimits) throws(SafetensorsError) -> SafetensorsFile {
        let bytes = file.bytes
        guard bytes.count >= 8 else { throw SafetensorsError(.fileTooSmall(bytes.count), offset: 0) }
        let declared = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        guard declared <= UInt64(limits.maxSafetensorsHeaderBytes) else {
            throw SafetensorsError(.limit(LimitExceeded(\.maxSafetensorsHeaderBytes, of: limits, "a header of \(declared) bytes",
                                                        needed: Int(exactly: declared))), offset: 0)
        }
        let headerSize = Int(declared)
        guard 8 + headerSize <= bytes.count else {
            throw SafetensorsError(.headerPastEnd(size: headerSize, fileSize: bytes.count), offset: 0)
        }
        let header = UnsafeRawBufferPointer(rebasing: bytes[8..<(8 + headerSize)])
        var parser = HeaderParser(bytes: header)
        let (entries, metadata) = try parser.parseHeader()

        // Validate the layout: sorted by offsets, the tensors must tile the buffer exactly.
        let bufferStart = 8 + headerSize
        let bufferSize = bytes.count - bufferStart
        let sorted = entries.sorted { ($0.begin, $0.end, $0.headerOrder) < ($1.begin, $1.end, $1.headerOrder) }
        var expected = 0
        var previous: Entry?
        for entry in sorted {
            let at = 8 + entry.keyOffset
            guard entry.begin <= entry.end else {
                throw SafetensorsError(.badOffsets(begin: entry.begin, end: entry.end), tensor: entry.name, offset: at)
            }
            guard entry.end <= bufferSize else {
                throw SafetensorsError(.outOfBounds(end: entry.end, bufferSize: bufferSize), tensor: entry.name, offset: at)
            }
            if entry.begin < expected, let previous {
                throw SafetensorsError(.overlap(with: previous.name, begin: entry.begin, previousEnd: expected),
                                       tensor: entry.name, offset: at)
            }
            if entry.begin > expected {
                throw SafetensorsError(.gap(from: expected, to: entry.begin), tensor: entry.name, offset: at)
            }
            do throws(LimitExceeded) { try limits.checkRank(entry.shape.count) } catch {
                throw SafetensorsError(.limit(error), tensor: entry.name, offset: at)
            }
            guard let count = Tensor.checkedCount(entry.shape) else {
                throw SafetensorsError(.overflow, tensor: entry.name, offset: at)
            }
            let (byteCount, overflow) = count.multipliedReportingOverflow(by: entry.dtype.itemSize)
            guard !overflow else { throw SafetensorsError(.overflow, tensor: entry.name, offset: at) }
            guard byteCount == entry.end - entry.begin else {
                throw SafetensorsError(.sizeMismatch(shape: entry.shape, dtype: SafetensorsDType(entry.dtype).name,
                                                     expected: byteCount, actual: entry.end - entry.begin),
                                       tensor: entry.name, offset: at)
            }
            expected = entry.end
            previous = entry
        }
        guard expected == bufferSize else {
            throw SafetensorsError(.trailingBytes(used: expected, bufferSize: bufferSize), offset: bufferStart + expected)
        }

        var tensors: [(name: String, tensor: Tensor)] = []
        tensors.reserveCapacity(sorted.count)
        var copied = 0
        for entry in sorted {
            let range = (bufferStart + entry.begin)..<(bufferStart + entry.end)
            let storage: Storage
            let address = Int(bitPattern: bytes.baseAddress) &+ range.lowerBound
            if range.isEmpty || address % entry.dtype.itemSize == 0 {
                storage = Storage(mapping: file, range: range)
            } else {
                storage = Storage(copying: UnsafeRawBufferPointer(rebasing: bytes[range]))
                copied += 1
            }
            do {
                tensors.append((entry.name, try Tensor(dtype: entry.dtype, shape: entry.shape, storage: storage)))
            } catch {
                throw SafetensorsError(.tensor(error), tensor: entry.name, offset: range.lowerBound)
            }
        }
        return SafetensorsFile(path: file.path, headerSize: headerSize, tensors: tensors, metadata: metadata,
                               copiedTensorCount: copied)
    }

    /// A strict parser for exactly the header's JSON: an object whose values are tensor entries or
    /// the `__metadata__` string map. Positions in errors are offsets into the header.
    private struct HeaderParser {
        let bytes: UnsafeRawBufferPointer
        var position = 0

        init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

        func fail(_ message: String, at: Int? = nil, tensor: String? = nil) -> SafetensorsError {
            SafetensorsError(.badHeader(message), tensor: tensor, offset: 8 + (at ?? position))
        }

        mutating func parseHeader() throws(SafetensorsError) -> ([Entry], [String: String]) {
            guard bytes.first == UInt8(ascii: "{") else {
                throw fail(bytes.isEmpty ? "the header is empty; expected a JSON object" : "the header does not start with '{'")
            }
            var entries: [Entry] = []
            var metadata: [String: String]?
            var keys: Set<String> = []
            try parseObject { (parser, key, keyOffset) throws(SafetensorsError) in
                guard keys.insert(key).inserted else {
                    throw SafetensorsError(.duplicateKey, tensor: key, offset: 8 + keyOffset)
                }
                if key == "__metadata__" {
                    metadata = try parser.parseMetadata()
                } else {
                    entries.append(try parser.parseEntry(name: key, keyOffset: keyOffset, order: entries.count))
                }
            }
            skipWhitespace()
            guard position == bytes.count else { throw fail("unexpected bytes after the header's JSON object") }
            return (entries, metadata ?? [:])
        }

        mutating func parseEntry(name: String, keyOffset: Int, order: Int) throws(SafetensorsError) -> Entry {
            var dtype: DType?
            var shape: [Int]?
            var offsets: [Int]?
            var fields: Set<String> = []
            skipWhitespace()
            guard peek == UInt8(ascii: "{") else { throw fail("tensor entry must be an object", tensor: name) }
            try parseObject { (parser, field, fieldOffset) throws(SafetensorsError) in
                guard fields.insert(field).inserted else {
                    throw parser.fail("field '\(field)' appears twice", at: fieldOffset, tensor: name)
                }
                switch field {
                case "dtype":
                    parser.skipWhitespace()
                    let at = parser.position
                    guard parser.peek == UInt8(ascii: "\"") else { throw parser.fail("'dtype' must be a string", tensor: name) }
                    let code = try parser.parseString()
                    guard let known = SafetensorsDType(name: code) else {
                        throw SafetensorsError(.unknownDType(code), tensor: name, offset: 8 + at)
                    }
                    dtype = known.dtype
                case "shape":
                    shape = try parser.parseIntegerArray(field: "shape", tensor: name)
                case "data_offsets":
                    let at = parser.position
                    let values = try parser.parseIntegerArray(field: "data_offsets", tensor: name)
                    guard values.count == 2 else {
                        throw parser.fail("'data_offsets' must hold 2 integers, not \(values.count)", at: at, tensor: name)
                    }
                    offsets = values
                default:
                    throw parser.fail("unknown field '\(field)' (expected dtype, shape, data_offsets)", at: fieldOffset, tensor: name)
                }
            }
            guard let dtype, let shape, let offsets else {
                let missing = [("dtype", dtype == nil), ("shape", shape == nil), ("data_offsets", offsets == nil)]
                    .filter(\.1).map(\.0).joined(separator: ", ")
                throw fail("tensor entry lacks \(missing)", at: keyOffset, tensor: name)
            }
            return Entry(name: name, keyOffset: keyOffset, dtype: dtype, shape: shape, begin: offsets[0], end: offsets[1],
                         headerOrder: order)
        }

        mutating func parseMetadata() throws(SafetensorsError) -> [String: String] {
            skipWhitespace()
            guard peek == UInt8(ascii: "{") else { throw fail("'__metadata__' must be an object of strings") }
            var map: [String: String] = [:]
            try parseObject { (parser, key, keyOffset) throws(SafetensorsError) in
                guard map[key] == nil else {
                    throw parser.fail("'__metadata__' has the key '\(key)' twice", at: keyOffset)
                }
                parser.skipWhitespace()
                guard parser.peek == UInt8(ascii: "\"") else {
                    throw parser.fail("'__metadata__' value of '\(key)' must be a string")
                }
                map[key] = try parser.parseString()
            }
            return map
        }

        /// Parses `{ "key": <value>, … }`, calling `member` positioned at each value.
        mutating func parseObject(_ member: (inout HeaderParser, String, Int) throws(SafetensorsError) -> Void) throws(SafetensorsError) {
            skipWhitespace()
            try expect(UInt8(ascii: "{"))
            skipWhitespace()
            if peek == UInt8(ascii: "}") { position += 1; return }
            while true {
                skipWhitespace()
                let keyOffset = position
                guard peek == UInt8(ascii: "\"") else { throw fail("expected a string key") }
                let key = try parseString()
                skipWhitespace()
                try expect(UInt8(ascii: ":"))
                try member(&self, key, keyOffset)
                skipWhitespace()
                if peek == UInt8(ascii: ",") { position += 1; continue }
                try expect(UInt8(ascii: "}"))
                return
            }
        }

        mutating func parseIntegerArray(field: String, tensor: String) throws(SafetensorsError) -> [Int] {
            skipWhitespace()
            guard peek == UInt8(ascii: "[") else { throw fail("'\(field)' must be an array of integers", tensor: tensor) }
            position += 1
            var values: [Int] = []
            skipWhitespace()
            if peek == UInt8(ascii: "]") { position += 1; return values }
            while true {
                skipWhitespace()
                values.append(try parseNonNegativeInteger(field: field, tensor: tensor))
                skipWhitespace()
                if peek == UInt8(ascii: ",") { position += 1; continue }
                guard peek == UInt8(ascii: "]") else { throw fail("expected ',' or ']' in '\(field)'", tensor: tensor) }
                position += 1
                return values
            }
        }

        /// A JSON integer without sign, fraction or exponent that fits in `Int`.
        mutating func parseNonNegativeInteger(field: String, tensor: String) throws(SafetensorsError) -> Int {
            let start = position
            var value = 0
            while let byte = peek, byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") {
                let (times10, o1) = value.multipliedReportingOverflow(by: 10)
                let (sum, o2) = times10.addingReportingOverflow(Int(byte - UInt8(ascii: "0")))
                guard !o1, !o2 else {
                    throw SafetensorsError(.badHeader("'\(field)' value overflows 64 bits"), tensor: tensor, offset: 8 + start)
                }
                value = sum
                position += 1
            }
            let digits = position - start
            if digits == 0 || [UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E")].contains(peek ?? 0) {
                let what = peek == UInt8(ascii: "-") ? "a negative number" : "a value that is not an integer (no fraction, no exponent)"
                throw SafetensorsError(.badHeader("'\(field)' holds \(what)"), tensor: tensor, offset: 8 + start)
            }
            if digits > 1 && bytes[start] == UInt8(ascii: "0") {
                throw SafetensorsError(.badHeader("'\(field)' holds a number with a leading zero"), tensor: tensor, offset: 8 + start)
            }
            return value
        }

        /// A JSON string: escapes decoded (surrogate pairs joined), raw control characters and
        /// invalid UTF-8 refused.
        mutating func parseString() throws(SafetensorsError) -> String {
            let start = position
            try expect(UInt8(ascii: "\""))
            var out: [UInt8] = []
            while true {
                guard let byte = peek else { throw fail("unterminated string", at: start) }
                position += 1
                switch byte {
                case UInt8(ascii: "\""):
                    guard let string = String(validating: out, as: UTF8.self) else {
                        throw fail("string is not valid UTF-8", at: start)
                    }
                    return string
                case UInt8(ascii: "\\"):
                    guard let escape = peek else { throw fail("unterminated string", at: start) }
                    position += 1
                    switch escape {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(escape)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "u"):
                        var scalar = try parseHex4()
                        if (0xD800..<0xDC00).contains(scalar) {
                            guard peek == UInt8(ascii: "\\"), position + 1 < bytes.count, bytes[position + 1] == UInt8(ascii: "u") else {
                                throw fail("unpaired surrogate in string", at: position - 6)
                            }
                            position += 2
                            let low = try parseHex4()
                            guard (0xDC00..<0xE000).contains(low) else { throw fail("unpaired surrogate in string", at: position - 6) }
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        } else if (0xDC00..<0xE000).contains(scalar) {
                            throw fail("unpaired surrogate in string", at: position - 6)
                        }
                        out.append(contentsOf: Array(String(Character(Unicode.Scalar(scalar)!)).utf8))
                    default:
                        throw fail("invalid escape in string", at: position - 2)
                    }
                case 0..<0x20:
                    throw fail("control character in string", at: position - 1)
                default:
                    out.append(byte)
                }
            }
        }

        mutating func parseHex4() throws(SafetensorsError) -> UInt32 {
            guard position + 4 <= bytes.count else { throw fail("truncated \\u escape") }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = bytes[position]
                let digit: UInt8
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
                default: throw fail("invalid \\u escape")
                }
                value = value << 4 | UInt32(digit)
                position += 1
            }
            return value
        }

        var peek: UInt8? { position < bytes.count ? bytes[position] : nil }

        mutating func skipWhitespace() {
            while let byte = peek, byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D { position += 1 }
        }

        mutating func expect(_ byte: UInt8) throws(SafetensorsError) {
            guard peek == byte else {
                let found = peek.map { $0 >= 0x20 && $0 < 0x7F ? "'\(Character(Unicode.Scalar($0)))'" : "byte 0x\(String($0, radix: 16))" }
                    ?? "the end of the header"
                throw fail("expected '\(Character(Unicode.Scalar(byte)))', found \(found)")
            }
            position += 1
        }
    }
}

/// A parsed safetensors file: its tensors in file (offset) order and its metadata.
public struct SafetensorsFile: Sendable {
    public let path: String
    /// N, the JSON header's size in bytes (the buffer starts at 8 + N).
    public let headerSize: Int
    /// The tensors in the order of their data in the file.
    public let tensors: [(name: String, tensor: Tensor)]
    /// The `__metadata__` map (empty when the file has none).
    public let metadata: [String: String]
    /// Tensors whose bytes were misaligned for their dtype in the file and so were copied.
    public let copiedTensorCount: Int

    public subscript(name: String) -> Tensor? { tensors.first { $0.name == name }?.tensor }
}

/// The safetensors dtype codes zoo reads and writes, with the library's sort rank.
struct SafetensorsDType {
    let dtype: DType

    init(_ dtype: DType) { self.dtype = dtype }

    init?(name: String) {
        guard let match = DType.allCases.first(where: { SafetensorsDType($0).name == name }) else { return nil }
        dtype = match
    }

    var name: String {
        switch dtype {
        case .f64: "F64"
        case .f32: "F32"
        case .f16: "F16"
        case .bf16: "BF16"
        case .i64: "I64"
        case .i32: "I32"
        case .i16: "I16"
        case .i8: "I8"
        case .u8: "U8"
        case .bool: "BOOL"
        }
    }

    /// Position in the library's `Dtype` enum (BOOL, F4, F6_E2M3, F6_E3M2, U8, I8, F8_E5M2, F8_E4M3,
    /// F8_E8M0, I16, U16, F16, BF16, I32, U32, F32, C64, F64, I64, U64), whose derived order the
    /// writer sorts by, descending. Only the relative order of zoo's dtypes matters.
    var rank: Int {
        switch dtype {
        case .bool: 0
        case .u8: 4
        case .i8: 5
        case .i16: 9
        case .f16: 11
        case .bf16: 12
        case .i32: 13
        case .f32: 15
        case .f64: 17
        case .i64: 18
        }
    }
}

/// Why a safetensors file was refused or could not be written: one line naming the file, the tensor
/// (header key) and the byte offset in the file.
public struct SafetensorsError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Reason: Sendable, Equatable {
        case io(String)
        case fileTooSmall(Int)
        /// A resource limit (`ResourceLimits`) the file exceeds.
        case limit(LimitExceeded)
        /// The environment asks for something impossible (a malformed `ZOO_LIMITS`).
        case configuration(String)
        case headerPastEnd(size: Int, fileSize: Int)
        /// Malformed JSON or a header that is not the format's shape.
        case badHeader(String)
        case duplicateKey
        case reservedName
        case unknownDType(String)
        case badOffsets(begin: Int, end: Int)
        case outOfBounds(end: Int, bufferSize: Int)
        case overlap(with: String, begin: Int, previousEnd: Int)
        case gap(from: Int, to: Int)
        case trailingBytes(used: Int, bufferSize: Int)
        case sizeMismatch(shape: [Int], dtype: String, expected: Int, actual: Int)
        case overflow
        case tensor(TensorError)
    }

    public var reason: Reason
    public var file: String?
    /// The header key concerned.
    public var tensor: String?
    /// Byte offset in the file (header positions count from the file's start, i.e. 8 + JSON offset).
    public var offset: Int?

    public init(_ reason: Reason, file: String? = nil, tensor: String? = nil, offset: Int? = nil) {
        self.reason = reason
        self.file = file
        self.tensor = tensor
        self.offset = offset
    }

    public var description: String {
        var location: [String] = []
        if let tensor { location.append("tensor '\(tensor)'") }
        if let offset { location.append("byte \(offset)") }
        var line = file.map { "\($0): " } ?? ""
        if !location.isEmpty { line += location.joined(separator: " ") + ": " }
        return line + reason.description
    }
}

extension SafetensorsError.Reason: CustomStringConvertible {
    public var description: String {
        switch self {
        case let .io(message): message
        case let .fileTooSmall(size): "file holds \(size) bytes; a safetensors file starts with an 8-byte header size"
        case let .limit(exceeded): exceeded.description
        case let .configuration(problem): problem
        case let .headerPastEnd(size, fileSize): "header size \(size) reaches past the end of the \(fileSize)-byte file (truncated?)"
        case let .badHeader(message): "bad header: \(message)"
        case .duplicateKey: "the name appears twice in the header"
        case .reservedName: "'__metadata__' is reserved and cannot name a tensor"
        case let .unknownDType(code): "unsupported dtype '\(code)' (zoo reads F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL)"
        case let .badOffsets(begin, end): "data_offsets [\(begin), \(end)] end before they begin"
        case let .outOfBounds(end, bufferSize): "data ends at buffer byte \(end), past the end of the \(bufferSize)-byte buffer"
        case let .overlap(other, begin, previousEnd):
            "data starts at buffer byte \(begin), inside tensor '\(other)' (which ends at \(previousEnd))"
        case let .gap(from, to): "buffer bytes \(from)..<\(to) before this tensor belong to no tensor"
        case let .trailingBytes(used, bufferSize): "tensors cover \(used) bytes of the \(bufferSize)-byte buffer; the rest belongs to no tensor"
        case let .sizeMismatch(shape, dtype, expected, actual):
            "shape \(shape) of \(dtype) needs \(expected) bytes but data_offsets span \(actual)"
        case .overflow: "shape × dtype size overflows 64 bits"
        case let .tensor(error): "bad tensor: \(error)"
        }
    }
}
