import CZlib
import ZooCore

/// `image` encoded as a PNG file: 8-bit gray (colour type 0), RGB (2) or RGBA (6), not interlaced.
///
/// Chunks: IHDR, then the zlib stream of the filtered rows in IDAT chunks of at most 1 MiB, then
/// IEND — nothing else (no gamma, no text). Each row gets the filter (None, Sub, Up, Average,
/// Paeth) whose output has the smallest sum of absolute values read as signed bytes, libpng's
/// heuristic; a tie goes to the lower filter number. Compression is zlib's default level.
///
/// Precondition: width and height at most 2^31 − 1 (the format's limit).
public func pngData(_ image: Image) -> [UInt8] {
    precondition(image.width <= Int(Int32.max) && image.height <= Int(Int32.max), "PNG dimensions are at most 2^31 - 1")
    let colourType: UInt8 = image.channels == 1 ? 0 : image.channels == 3 ? 2 : 6
    var file: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
    appendChunk("IHDR", bigEndian(UInt32(image.width)) + bigEndian(UInt32(image.height)) + [8, colourType, 0, 0, 0], to: &file)
    let stream = zlibCompressed(filteredRows(image))
    var start = 0
    repeat {
        let end = min(start + (1 << 20), stream.count)
        appendChunk("IDAT", stream[start..<end], to: &file)
        start = end
    } while start < stream.count
    appendChunk("IEND", [], to: &file)
    return file
}

/// Writes `image` as a PNG file (`pngData`) to `path` through `OutputFile`: a temporary file beside
/// it renamed over it once complete, so `path` is never left half-written.
/// - Throws: `IOError` naming `path` when it cannot be written (a directory, an input, no space).
public func writePNG(_ image: Image, to path: String) throws(IOError) {
    let file = try OutputFile(path: path)
    try file.write(pngData(image))
    try file.commit()
}

/// The rows as PNG stores them before compression: each row is its filter-type byte followed by the
/// row filtered with it (PNG 1.2 §6, "Filter Algorithms"; bytes per pixel = channels).
private func filteredRows(_ image: Image) -> [UInt8] {
    let stride = image.width * image.channels, bpp = image.channels
    var out = [UInt8](repeating: 0, count: (stride + 1) * image.height)
    // The five candidate rows side by side: filter f's row at f * stride.
    var candidates = [UInt8](repeating: 0, count: 5 * stride)
    let zeros = [UInt8](repeating: 0, count: stride)
    image.pixels.withUnsafeBufferPointer { pixels in
        zeros.withUnsafeBufferPointer { zero in
            candidates.withUnsafeMutableBufferPointer { candidate in
                out.withUnsafeMutableBufferPointer { out in
                    for y in 0..<image.height {
                        let row = pixels.baseAddress! + y * stride
                        let above = y == 0 ? zero.baseAddress! : row - stride
                        for i in 0..<stride {
                            let x = row[i], a = i >= bpp ? row[i - bpp] : 0, b = above[i], c = i >= bpp ? above[i - bpp] : 0
                            candidate[i] = x
                            candidate[stride + i] = x &- a
                            candidate[2 * stride + i] = x &- b
                            candidate[3 * stride + i] = x &- UInt8((Int(a) + Int(b)) / 2)
                            candidate[4 * stride + i] = x &- paethPredictor(a, b, c)
                        }
                        var best = 0, bestSum = Int.max
                        for filter in 0..<5 {
                            var sum = 0
                            for byte in candidate[(filter * stride)..<((filter + 1) * stride)] {
                                sum += byte < 128 ? Int(byte) : 256 - Int(byte)
                            }
                            if sum < bestSum { (best, bestSum) = (filter, sum) }
                        }
                        let base = y * (stride + 1)
                        out[base] = UInt8(best)
                        for i in 0..<stride { out[base + 1 + i] = candidate[best * stride + i] }
                    }
                }
            }
        }
    }
    return out
}

/// PNG's Paeth predictor: whichever of left (`a`), above (`b`) and upper-left (`c`) is closest to
/// a + b − c, ties in that order.
private func paethPredictor(_ a: UInt8, _ b: UInt8, _ c: UInt8) -> UInt8 {
    let p = Int(a) + Int(b) - Int(c)
    let pa = abs(p - Int(a)), pb = abs(p - Int(b)), pc = abs(p - Int(c))
    if pa <= pb && pa <= pc { return a }
    return pb <= pc ? b : c
}

/// `bytes` as one zlib stream (RFC 1950) at zlib's default compression level.
private func zlibCompressed(_ bytes: [UInt8]) -> [UInt8] {
    var capacity = compressBound(uLong(bytes.count))
    var out = [UInt8](repeating: 0, count: Int(capacity))
    let status = compress2(&out, &capacity, bytes, uLong(bytes.count), Z_DEFAULT_COMPRESSION)
    // compressBound guarantees room; only an allocation failure inside zlib can fail.
    precondition(status == Z_OK, "zlib compress2 failed (\(status)): out of memory")
    out.removeLast(out.count - Int(capacity))
    return out
}

/// Length, type, data and the CRC-32 of type and data.
private func appendChunk<Data: Collection<UInt8>>(_ type: String, _ data: Data, to file: inout [UInt8]) {
    let typeBytes = Array(type.utf8)
    file += bigEndian(UInt32(data.count))
    let start = file.count
    file += typeBytes
    file += data
    let crc = file[start...].withUnsafeBufferPointer { crc32(0, $0.baseAddress, uInt($0.count)) }
    file += bigEndian(UInt32(crc))
}

private func bigEndian(_ value: UInt32) -> [UInt8] {
    [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
}
