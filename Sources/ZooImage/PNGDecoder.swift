import CImageCodecs
import ZooCore

/// A PNG decoded as PIL does it (`PngImagePlugin`, then `convert("RGB")`), pixel for pixel. What PIL
/// does, checked against it by Fixtures/make_image_fixtures.py:
///
/// - Modes (PIL's `_MODES`): gray 1-bit "1", 2/4/8-bit "L", 16-bit "I;16"; RGB 8/16 "RGB"; palette
///   "P"; gray+alpha 8-bit "LA" but 16-bit "RGBA" (PIL has no "LA;16B" → "LA"); RGBA 8/16 "RGBA".
/// - 16-bit samples of RGB, RGBA and gray+alpha keep their high byte (rawmodes "RGB;16B" etc.), not
///   a rounded value; 16-bit gray ("I;16") becomes `min(value, 255)` in RGB: values above 255 clip.
/// - 1/2/4-bit gray scales to 8 bits (×255, ×85, ×17: bit replication, as libpng expands it).
/// - Alpha is dropped, not composited; tRNS is ignored (for palette, gray and RGB files alike).
/// - Palette indices past the PLTE entries are black.
///
/// Stricter than PIL (it stops reading once the image is complete): a file cut anywhere, even in
/// the chunks after the image data, is refused; so are damaged zlib data after the last row (a bad
/// Adler-32), data past the image, every CRC mismatch (libpng's benign errors are errors here), and
/// a chunk other than IDAT over 16 MiB.
/// The orientation comes from an eXIf chunk only (PIL also looks at a "Raw profile type exif" text
/// chunk and XMP).
func decodePNG(_ bytes: UnsafeRawBufferPointer, file: String, limits: ResourceLimits) throws(ImageError) -> DecodedImage {
    var message = [CChar](repeating: 0, count: Int(ZOO_CODEC_MESSAGE_SIZE))
    func failure() -> ImageError { ImageError(file: file, "cannot decode PNG: " + codecMessage(message)) }
    var header = zoo_png_header()
    guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self),
          let png = zoo_png_open(base, bytes.count, &header, &message) else { throw failure() }
    defer { zoo_png_close(png) }
    let width = Int(header.width), height = Int(header.height), depth = Int(header.bit_depth)
    try checkDimensions(width: width, height: height, maxSide: ImageSides.maxPNG, format: "PNG", file: file, limits: limits)
    let mode = pilMode(bitDepth: depth, colorType: Int(header.color_type))
    // Deflate expands at most 1032:1, so a file too small for the image's filtered rows cannot hold
    // it (Adam7 needs more bytes, not fewer): refused before anything is allocated, where libpng
    // would first size its row buffers for the claimed width.
    let channels = [0: 1, 2: 3, 3: 1, 4: 2, 6: 4][Int(header.color_type)] ?? 1
    let needed = height * (1 + (width * channels * depth + 7) / 8)
    if bytes.count < (needed + 1031) / 1032 {
        throw ImageError(file: file, "cannot decode PNG: \(width)×\(height) \(depth)-bit \(mode) pixels need at least "
                         + "\(grouped((needed + 1031) / 1032)) bytes of image data (deflate compresses at most 1032:1); "
                         + "the file has \(grouped(bytes.count))")
    }

    var failed = false
    let pixels: [UInt8]
    if mode == "I;16" {
        let samples = [UInt8](unsafeUninitializedCapacity: width * height * 2) { buffer, count in
            failed = zoo_png_read(png, buffer.baseAddress, 1, &message) != 0
            count = failed ? 0 : width * height * 2
        }
        // PIL's I;16 → RGB: each big-endian sample clipped to 255 and repeated.
        pixels = failed ? [] : [UInt8](unsafeUninitializedCapacity: width * height * 3) { buffer, count in
            for pixel in 0..<(width * height) {
                let value = samples[pixel * 2] != 0 ? 255 : samples[pixel * 2 + 1]
                buffer[pixel * 3] = value
                buffer[pixel * 3 + 1] = value
                buffer[pixel * 3 + 2] = value
            }
            count = width * height * 3
        }
    } else {
        pixels = [UInt8](unsafeUninitializedCapacity: width * height * 3) { buffer, count in
            failed = zoo_png_read(png, buffer.baseAddress, 0, &message) != 0
            count = failed ? 0 : width * height * 3
        }
    }
    var exifBytes: UnsafePointer<UInt8>?
    var exifLength = 0
    guard !failed, zoo_png_finish(png, &exifBytes, &exifLength, &message) == 0 else { throw failure() }
    let orientation = exifBytes.flatMap { exifOrientation(tiff: UnsafeBufferPointer(start: $0, count: exifLength)) }
    return DecodedImage(format: .png, mode: mode, bitDepth: depth, exifOrientation: orientation,
                        rgb: Image(width: width, height: height, channels: 3, pixels: pixels))
}

/// PIL's mode for an IHDR bit depth and colour type (libpng has refused any other combination).
func pilMode(bitDepth: Int, colorType: Int) -> String {
    switch (colorType, bitDepth) {
    case (0, 1): "1"
    case (0, 16): "I;16"
    case (0, _): "L"
    case (2, _): "RGB"
    case (3, _): "P"
    case (4, 8): "LA"
    default: "RGBA"  // RGBA 8/16, and 16-bit gray+alpha
    }
}
