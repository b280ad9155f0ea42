/// NumPy's .npy format (numpy/lib/format.py, format versions 1.0–3.0): the magic "\x93NUMPY", a
/// version, a little-endian header length, a Python-literal header dict
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`, then the raw array.
///
/// zoo reads and writes f32, f64, i64 and u8 (image pixels), little-endian, C order; anything else is refused with a
/// message saying what the file holds. Reading maps the file (no copy when the data is aligned).
public enum NumPy {
    public struct FormatError: Error, CustomStringConvertible, Sendable {
        public let path: String
        public let message: String
        public var description: String { "\(path): \(message)" }
        public init(path: String, message: String) {
            self.path = path
            self.message = message
        }
    }

    private static let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)
    private static let descriptors: [String: DType] = ["<f4": .f32, "<f8": .f64, "<i8": .i64, "|u1": .u8]

    /// Maps `path` and reads its array. The header is bounded by `limits.maxNpyHeaderBytes` (numpy's
    /// own default `max_header_size`) and its shape's rank by `maxTensorRank`; the data must be
    /// exactly what the shape needs, so its size is the file's.
    public static func read(path: String, limits: ResourceLimits = .current) throws(FormatError) -> Tensor {
        if let problem = ResourceLimits.environmentProblem { throw FormatError(path: path, message: problem) }
        let file: MappedFile
        do { file = try MappedFile(path: path) } catch {
            throw FormatError(path: path, message: "cannot \(error.operation): \(error.message)")
        }
        return try read(Storage(mapping: file, range: 0..<file.bytes.count), name: path, limits: limits)
    }

    /// Reads the .npy held in `storage` (a file's mapping, or a record of an .npz); `name` is what
    /// errors call it. The array is a slice of `storage` (copied only when misaligned).
    public static func read(_ storage: Storage, name path: String, limits: ResourceLimits = .current) throws(FormatError) -> Tensor {
        func fail(_ message: String) -> FormatError { FormatError(path: path, message: message) }
        let bytes = storage.bytes
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else { throw fail("not a .npy file (no \\x93NUMPY magic)") }
        let major = bytes[6]
        let (lengthBytes, start): (Int, Int) = switch major {
        case 1: (2, 10)
        case 2, 3: (4, 12)
        default: (0, 0)
        }
        guard lengthBytes > 0 else { throw fail("unsupported .npy format version \(major).\(bytes[7])") }
        guard bytes.count >= start else { throw fail("truncated header") }
        var headerLength = 0
        for i in 0..<lengthBytes { headerLength |= Int(bytes[8 + i]) << (8 * i) }
        guard headerLength <= limits.maxNpyHeaderBytes else {
            throw fail(LimitExceeded(\.maxNpyHeaderBytes, of: limits, "a header of \(headerLength) bytes", needed: headerLength).description)
        }
        guard bytes.count - start >= headerLength else { throw fail("truncated header: declares \(headerLength) bytes") }
        let header = String(decoding: bytes[start..<(start + headerLength)], as: UTF8.self)
        guard let descr = field(header, "descr") else { throw fail("header has no 'descr'") }
        let name = descr.trimmingQuotes
        guard let dtype = descriptors[name] else {
            throw fail("dtype '\(name)' is not supported (zoo reads little-endian float32 '<f4', float64 '<f8', int64 '<i8' and uint8 '|u1')")
        }
        guard let order = field(header, "fortran_order") else { throw fail("header has no 'fortran_order'") }
        guard order == "False" else { throw fail("Fortran-order arrays are not supported; save with np.ascontiguousarray") }
        guard let shapeText = field(header, "shape"), let shape = parseShape(shapeText) else {
            throw fail("header has no readable 'shape'")
        }
        do throws(LimitExceeded) { try limits.checkRank(shape.count, "an array") } catch { throw fail(error.description) }
        guard let count = Tensor.checkedCount(shape) else { throw fail("shape \(shape) overflows") }
        let dataStart = start + headerLength
        let (byteCount, overflow) = count.multipliedReportingOverflow(by: dtype.itemSize)
        guard !overflow, bytes.count - dataStart == byteCount else {
            throw fail("shape \(shape) of \(name) needs \(byteCount) data bytes at byte \(dataStart), the file has \(bytes.count - dataStart)")
        }
        var data = Storage(slicing: storage, range: dataStart..<(dataStart + byteCount))
        if byteCount > 0, Int(bitPattern: data.bytes.baseAddress!) % dtype.itemSize != 0 {
            data = Storage(copying: data.bytes)
        }
        do { return try Tensor(dtype: dtype, shape: shape, storage: data) } catch {
            throw fail("\(error)")
        }
    }

    /// Writes `tensor` (f32, f64, i64 or u8) as a version 1.0 .npy file, atomically. A view whose dense
    /// copy would exceed `limits.maxTensorBytes` is refused before anything is written.
    public static func write(_ tensor: Tensor, to path: String, limits: ResourceLimits = .current) throws {
        let header = try preamble(for: tensor, name: path, limits: limits)
        let output = try OutputFile(path: path)
        try output.write(header)
        try tensor.withContiguousBytes { try output.write($0) }
        try output.commit()
    }

    /// The version 1.0 .npy bytes that precede `tensor`'s C-order data (magic, version, header padded
    /// to 64 bytes). `tensor` must be f32, f64, i64 or u8, its dense copy within `limits.maxTensorBytes`;
    /// `name` is what errors call the destination.
    public static func preamble(for tensor: Tensor, name path: String, limits: ResourceLimits = .current) throws(FormatError) -> [UInt8] {
        do throws(LimitExceeded) { try limits.checkDenseSize(tensor) } catch {
            throw FormatError(path: path, message: error.description)
        }
        guard let descr = descriptors.first(where: { $0.value == tensor.dtype })?.key else {
            throw FormatError(path: path, message: "cannot write \(tensor.dtype.rawValue) tensors as .npy (f32, f64, i64, u8 only)")
        }
        let shape = tensor.shape.count == 1 ? "(\(tensor.shape[0]),)" : "(" + tensor.shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shape), }"
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        let length = header.utf8.count
        return magic + [1, 0, UInt8(length & 0xFF), UInt8(length >> 8)] + Array(header.utf8)
    }

    /// The text of `key`'s value in a Python dict literal (up to the next top-level comma).
    private static func field(_ header: String, _ key: String) -> String? {
        guard let keyRange = header.firstRange(of: "'\(key)'") else { return nil }
        var rest = header[keyRange.upperBound...].drop { $0 == " " }
        guard rest.first == ":" else { return nil }
        rest = rest.dropFirst().drop { $0 == " " }
        var depth = 0
        var end = rest.startIndex
        while end < rest.endIndex {
            let c = rest[end]
            if c == "(" { depth += 1 }
            if c == ")" { depth -= 1 }
            if (c == "," && depth == 0) || c == "}" { break }
            end = rest.index(after: end)
        }
        return String(rest[..<end]).trimmingSpaces
    }

    private static func parseShape(_ text: String) -> [Int]? {
        guard text.hasPrefix("("), text.hasSuffix(")") else { return nil }
        let inner = text.dropFirst().dropLast()
        var dims: [Int] = []
        for part in inner.split(separator: ",") {
            let trimmed = String(part).trimmingSpaces
            if trimmed.isEmpty { continue }
            guard let value = Int(trimmed), value >= 0 else { return nil }
            dims.append(value)
        }
        return dims
    }
}

private extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return String(s)
    }

    var trimmingQuotes: String {
        var s = Substring(trimmingSpaces)
        if s.first == "'" || s.first == "\"" { s.removeFirst() }
        if s.last == "'" || s.last == "\"" { s.removeLast() }
        return String(s)
    }
}
