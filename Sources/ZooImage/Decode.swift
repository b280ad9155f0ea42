import ZooCore

/// Decodes a JPEG or PNG file to PIL's `Image.open(path).convert("RGB")` (see `decodeImage(bytes:file:)`).
/// - Throws: `ImageError` naming `path` when it cannot be read or decoded.
public func decodeImage(path: String, limits: ResourceLimits = .current) throws(ImageError) -> DecodedImage {
    if let problem = ResourceLimits.environmentProblem { throw ImageError(file: path, problem) }
    let file: MappedFile
    do { file = try MappedFile(path: path) } catch {
        throw ImageError(file: path, "cannot \(error.operation): \(error.message)")
    }
    return try decodeImage(file.bytes, file: path, limits: limits)
}

/// Decodes JPEG or PNG bytes to PIL's `Image.open(f).convert("RGB")`: PNG exactly, JPEG as PIL's
/// libjpeg-turbo does it (same algorithms: integer IDCT, fancy upsampling). The format comes from the
/// magic bytes, not the name. `file` names the source in errors.
///
/// Refused before any pixel is allocated: more than `limits.maxImagePixels` pixels (by default PIL's
/// decompression-bomb error threshold) or a side over the format's maximum.
/// - Throws: `ImageError`, one line naming `file`: not a JPEG or PNG (and what it looks like), truncated
///   (PIL's "image file is truncated"), corrupt (the codec's message and the byte offset), too large.
public func decodeImage(bytes: [UInt8], file: String, limits: ResourceLimits = .current) throws(ImageError) -> DecodedImage {
    if let problem = ResourceLimits.environmentProblem { throw ImageError(file: file, problem) }
    return try bytes.withUnsafeBytes { raw in
        Result { () throws(ImageError) in try decodeImage(raw, file: file, limits: limits) }
    }.get()
}

/// The largest side of an image in each format.
public enum ImageSides {
    /// What a JPEG frame header can state (libjpeg-turbo itself stops at 65,500).
    public static let maxJPEG = 65_535
    /// What the PNG specification allows.
    public static let maxPNG = 2_147_483_647
}

func decodeImage(_ bytes: UnsafeRawBufferPointer, file: String, limits: ResourceLimits) throws(ImageError) -> DecodedImage {
    switch ImageSignature(bytes) {
    case .jpeg: return try decodeJPEG(bytes, file: file, limits: limits)
    case .png: return try decodePNG(bytes, file: file, limits: limits)
    case .truncated(let format):
        throw ImageError(file: file, "image file is truncated (\(bytes.count) byte\(bytes.count == 1 ? "" : "s"), "
                         + "not even a whole \(format) signature)")
    case .other(let description):
        throw ImageError(file: file, "not a JPEG or PNG image" + (description.map { " (\($0))" } ?? ""))
    }
}

/// Refuses a side over the format's maximum and more pixels than `limits.maxImagePixels` (checked
/// before anything is allocated for the pixels).
func checkDimensions(width: Int, height: Int, maxSide: Int, format: String, file: String,
                     limits: ResourceLimits) throws(ImageError) {
    if width > maxSide || height > maxSide {
        throw ImageError(file: file, "\(width)×\(height) \(format) has a side above the format's maximum of \(grouped(maxSide))")
    }
    if width * height > limits.maxImagePixels {
        throw ImageError(file: file, LimitExceeded(\.maxImagePixels, of: limits,
                                                   "a \(width)×\(height) \(format) (\(grouped(width * height)) pixels)",
                                                   needed: width * height).description)
    }
}

/// 178956970 → "178,956,970".
func grouped(_ value: Int) -> String {
    var digits = String(value), out = ""
    while digits.count > 3 {
        out = "," + digits.suffix(3) + out
        digits.removeLast(3)
    }
    return digits + out
}

/// A codec's message (the C buffer) as one printable ASCII line: anything else becomes "?".
func codecMessage(_ buffer: [CChar]) -> String {
    let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
    return String(decoding: bytes.map { (0x20..<0x7F).contains($0) ? $0 : UInt8(ascii: "?") }, as: UTF8.self)
}
