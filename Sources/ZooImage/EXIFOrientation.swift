/// The EXIF orientation tag (0x0112) in IFD0 of a TIFF structure (a JPEG's APP1 "Exif" payload after
/// its 6-byte header, a PNG's eXIf chunk), or nil when absent, malformed or outside 1–8.
///
/// Read as PIL's `Image.getexif()` reads it: a leading "Exif\0\0" is skipped; the header is "II*\0"
/// (little-endian) or "MM\0*" then IFD0's offset; entries are read in order until the data ends
/// (PIL keeps the entries before a truncation) and the first entry of the tag counts; its type must
/// be SHORT, LONG, SSHORT or SLONG (PIL reads a BYTE as bytes, which `exif_transpose` ignores); with
/// a count above 1 PIL warns and takes the first value, provided all `count` values are in the
/// data. Every read is bounds-checked: any byte sequence is safe.
public func exifOrientation<Bytes: RandomAccessCollection<UInt8>>(tiff: Bytes) -> Int? where Bytes.Index == Int {
    var start = tiff.startIndex
    if tiff.count >= 6, tiff.prefix(6).elementsEqual([0x45, 0x78, 0x69, 0x66, 0, 0]) { start += 6 }  // "Exif\0\0"
    let end = tiff.endIndex
    guard end - start >= 8 else { return nil }
    let little: Bool
    switch (tiff[start], tiff[start + 1]) {
    case (0x49, 0x49): little = true
    case (0x4D, 0x4D): little = false
    default: return nil
    }
    /// The unsigned integer of `size` bytes at `offset` from the TIFF header, nil past the end.
    func read(_ offset: Int, _ size: Int) -> Int? {
        guard offset >= 0, offset <= end - start - size else { return nil }
        var value = 0
        for i in 0..<size {
            let byte = Int(tiff[start + offset + (little ? size - 1 - i : i)])
            value = value << 8 | byte
        }
        return value
    }
    guard read(2, 2) == 42, let ifd = read(4, 4), let entries = read(ifd, 2) else { return nil }
    for entry in 0..<entries {
        let at = ifd + 2 + entry * 12
        guard read(at + 8, 4) != nil, let tag = read(at, 2), let type = read(at + 2, 2), let count = read(at + 4, 4) else {
            return nil  // an entry cut short: PIL stops reading there
        }
        guard tag == 0x0112 else { continue }
        let size: Int
        switch type {
        case 3, 8: size = 2   // SHORT, SSHORT (a negative value reads above 8)
        case 4, 9: size = 4   // LONG, SLONG
        default: return nil
        }
        // The values sit in the entry when they fit in 4 bytes, else at the offset it holds.
        guard count >= 1, let values = count * size <= 4 ? at + 8 : read(at + 8, 4),
              count * size <= end - start - values,  // all of them in the data, as PIL requires
              let value = read(values, size), (1...8).contains(value) else { return nil }
        return value
    }
    return nil
}

/// `image` turned upright for an EXIF orientation tag, as PIL's `ImageOps.exif_transpose` transposes:
/// 2 mirror left-right, 3 rotate 180°, 4 mirror top-bottom, 5 transpose (mirror along the main
/// diagonal), 6 rotate 90° clockwise (PIL's ROTATE_270), 7 transverse (mirror along the other
/// diagonal), 8 rotate 90° counter-clockwise (ROTATE_90). 5–8 swap width and height. Any other value
/// (1, nil's stand-ins, out of range) returns `image` unchanged.
public func applyingEXIFOrientation(_ image: Image, _ orientation: Int) -> Image {
    guard (2...8).contains(orientation) else { return image }
    let w = image.width, h = image.height, c = image.channels
    let swaps = orientation >= 5
    let outWidth = swaps ? h : w, outHeight = swaps ? w : h
    /// The source (x, y) of output pixel (x, y).
    let source: (Int, Int) -> (Int, Int) = switch orientation {
    case 2: { x, y in (w - 1 - x, y) }
    case 3: { x, y in (w - 1 - x, h - 1 - y) }
    case 4: { x, y in (x, h - 1 - y) }
    case 5: { x, y in (y, x) }
    case 6: { x, y in (y, h - 1 - x) }
    case 7: { x, y in (w - 1 - y, h - 1 - x) }
    default: { x, y in (w - 1 - y, x) }
    }
    var pixels = [UInt8](repeating: 0, count: image.pixels.count)
    image.pixels.withUnsafeBufferPointer { input in
        pixels.withUnsafeMutableBufferPointer { output in
            for y in 0..<outHeight {
                for x in 0..<outWidth {
                    let (sx, sy) = source(x, y)
                    let from = (sy * w + sx) * c, to = (y * outWidth + x) * c
                    for k in 0..<c { output[to + k] = input[from + k] }
                }
            }
        }
    }
    return Image(width: outWidth, height: outHeight, channels: c, pixels: pixels)
}
