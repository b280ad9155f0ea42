import CImageCodecs
import ZooCore

/// A JPEG decoded as PIL does it (`JpegImagePlugin` over libjpeg-turbo, then `convert("RGB")`):
///
/// - Mode from the frame's component count, as PIL's SOF handler: 1 → "L", 3 → "RGB" (YCbCr or
///   Adobe RGB, libjpeg converts), 4 → "CMYK" (libjpeg turns YCCK into CMYK); any other count is
///   refused, as PIL does ("cannot handle N-layer images"). Only 8-bit samples (libjpeg's build).
/// - Gray becomes RGB by repeating the sample (libjpeg's gray → RGB equals PIL's "L" → "RGB").
/// - CMYK: PIL always reads it as Adobe-inverted ("CMYK;I", whatever the Adobe marker says), then
///   converts with `cmyk2rgb`; see `pilRGB(fromStoredCMYK:into:)`.
/// - Data ending before the last row is decoded is an error ("image file is truncated"), as PIL
///   raises, although libjpeg would go on with gray rows; after it (a file cut in its end marker, when
///   the last rows needed no more data) the image is returned, as PIL does. Other libjpeg warnings
///   (e.g. extraneous bytes before a marker, a scan ending early at a marker) are not errors either.
/// - Libjpeg-turbo's defaults, as PIL's: integer slow DCT, fancy upsampling; PIL ships libjpeg-turbo
///   3.x, zoo links the system's (2.1.5 on Debian 12), the same algorithms.
func decodeJPEG(_ bytes: UnsafeRawBufferPointer, file: String, limits: ResourceLimits) throws(ImageError) -> DecodedImage {
    var message = [CChar](repeating: 0, count: Int(ZOO_CODEC_MESSAGE_SIZE))
    func failure() -> ImageError { ImageError(file: file, "cannot decode JPEG: " + codecMessage(message)) }
    var header = zoo_jpeg_header()
    guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self),
          let jpeg = zoo_jpeg_open(base, bytes.count, &header, &message) else { throw failure() }
    defer { zoo_jpeg_close(jpeg) }
    let width = Int(header.width), height = Int(header.height), components = Int(header.components)
    let mode: String
    switch components {
    case 1: mode = "L"
    case 3: mode = "RGB"
    case 4: mode = "CMYK"
    default: throw ImageError(file: file, "cannot decode JPEG: \(components) components (PIL reads 1, 3 or 4)")
    }
    try checkDimensions(width: width, height: height, maxSide: ImageSides.maxJPEG, format: "JPEG", file: file, limits: limits)
    let exif = header.exif.map { UnsafeBufferPointer(start: $0, count: header.exif_length) }
    let orientation = exif.flatMap { exifOrientation(tiff: $0) }

    let cmyk = components == 4
    guard zoo_jpeg_start(jpeg, cmyk ? 1 : 0, &message) == 0 else { throw failure() }
    var failed = false
    let pixels = [UInt8](unsafeUninitializedCapacity: width * height * 3) { buffer, count in
        count = 0
        guard let out = buffer.baseAddress else { return }
        if !cmyk {
            failed = zoo_jpeg_read_rows(jpeg, out, UInt32(height), &message) != 0
        } else {
            // A band of rows at a time, so the 4-sample rows never exist for the whole image.
            let band = 16
            var stored = [UInt8](repeating: 0, count: band * width * 4)
            var y = 0
            while y < height, !failed {
                let rows = min(band, height - y)
                failed = zoo_jpeg_read_rows(jpeg, &stored, UInt32(rows), &message) != 0
                if !failed {
                    stored.withUnsafeBufferPointer { cmyk in
                        pilRGB(fromStoredCMYK: UnsafeBufferPointer(rebasing: cmyk[..<(rows * width * 4)]),
                               into: out + y * width * 3)
                    }
                }
                y += rows
            }
        }
        if !failed { count = width * height * 3 }
    }
    guard !failed, zoo_jpeg_finish(jpeg, &message) == 0 else { throw failure() }
    return DecodedImage(format: .jpeg, mode: mode, bitDepth: 8, exifOrientation: orientation,
                        rgb: Image(width: width, height: height, channels: 3, pixels: pixels))
}

/// PIL's RGB for the CMYK samples libjpeg returns (the file's values; YCCK already converted):
/// PIL unpacks them as "CMYK;I" (every sample inverted, `c = 255 - stored`), then `cmyk2rgb` gives
/// `R = nk - MULDIV255(c, nk)` with `nk = 255 - k` (so `nk` is the stored K) and
/// `MULDIV255(a, b) = (t + (t >> 8)) >> 8`, `t = a * b + 128`; likewise G from M and B from Y.
/// `out` takes 3 samples for every 4 of `cmyk`.
func pilRGB(fromStoredCMYK cmyk: UnsafeBufferPointer<UInt8>, into out: UnsafeMutablePointer<UInt8>) {
    pilCMYKTable.withUnsafeBufferPointer { table in
        for pixel in 0..<(cmyk.count / 4) {
            let k = Int(cmyk[pixel * 4 + 3])
            for channel in 0..<3 { out[pixel * 3 + channel] = table[Int(cmyk[pixel * 4 + channel]) << 8 | k] }
        }
    }
}

/// `pilRGB`'s result for each stored sample `s` and stored K `k`, at `s << 8 | k`.
let pilCMYKTable: [UInt8] = (0..<65536).map { index in
    let nk = index & 255, t = (255 - index >> 8) * nk + 128
    return UInt8(nk - ((t + (t >> 8)) >> 8))
}
