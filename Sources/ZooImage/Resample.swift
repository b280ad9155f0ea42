import ZooCore

/// PIL 13's `image.resize((width, height), filter)` (no box, no reducing_gap) on an 8-bit gray, RGB or
/// RGBA image, mirroring Pillow's algorithm so the bytes are the same:
///
/// - Same size: a copy. Nearest: `ImagingScaleAffine` (source position accumulated in double from
///   half a step, truncated). Other filters: `ImagingResample` (src/libImaging/Resample.c) — per axis,
///   the filter's support is widened by the reduction factor, each output's weights are evaluated in
///   double, normalized to sum 1, and rounded to fixed point with 22 fraction bits; a horizontal pass
///   over only the source rows the vertical pass reads, rounded and clipped to 8 bits, then a vertical
///   pass. An axis whose size does not change is not resampled.
/// - RGBA (not with nearest) is premultiplied by alpha first and divided back after, as PIL's
///   `Image.resize` does through its "RGBa" mode.
///
/// Verified bit-exact against PIL 13.0.0 (Fixtures/make_preprocess_fixtures.py, PreprocessTests): all six
/// filters on L, RGB and RGBA photo crops and synthetic images (noise, 0/255 edges, 1×N, N×1, odd and
/// prime sizes) at non-integer downscales, downscales of 4–9×, upscales, one axis only and identity.
/// Precondition: `width` and `height` are positive.
public func resized(_ image: Image, width: Int, height: Int, filter: EvaluationTransform.Interpolation) -> Image {
    precondition(width > 0 && height > 0, "cannot resize to \(width)×\(height)")
    return resized(image, width: width, height: height, filter: filter, columns: 0..<width, rows: 0..<height)
}

/// The part `columns` × `rows` of `resized(image, width:height:filter:)`, the same bytes, computed without
/// the rest (each output sample depends only on its own row's and column's weights).
func resized(_ image: Image, width: Int, height: Int, filter: EvaluationTransform.Interpolation,
             columns: Range<Int>, rows: Range<Int>) -> Image {
    precondition(width > 0 && height > 0 && !columns.isEmpty && !rows.isEmpty
                 && columns.clamped(to: 0..<width) == columns && rows.clamped(to: 0..<height) == rows,
                 "window \(columns) × \(rows) of \(width)×\(height)")
    if width == image.width && height == image.height {
        return region(of: image, columns: columns, rows: rows)
    }
    guard let kernel = ResampleKernel(filter) else {
        return nearestResized(image, width: width, height: height, columns: columns, rows: rows)
    }
    if image.channels == 4 {
        let result = convolved(premultiplied(image), width: width, height: height, kernel: kernel,
                               columns: columns, rows: rows)
        return unpremultiplied(result)
    }
    return convolved(image, width: width, height: height, kernel: kernel, columns: columns, rows: rows)
}

/// PIL's `clip8`: the fixed-point sum (which started at one half) to a byte.
@inline(__always) private func clip8(_ sum: Int32) -> UInt8 {
    let value = sum >> Int32(AxisWeights.fractionBits)
    return value < 0 ? 0 : value > 255 ? 255 : UInt8(truncatingIfNeeded: value)
}

private let half = Int32(1) << Int32(AxisWeights.fractionBits - 1)

/// PIL's two-pass convolution, for the window `columns` × `rows` of the `width`×`height` result.
private func convolved(_ image: Image, width: Int, height: Int, kernel: ResampleKernel,
                       columns: Range<Int>, rows: Range<Int>) -> Image {
    let channels = image.channels
    let vertical = height != image.height ? AxisWeights(inSize: image.height, outSize: height, kernel: kernel) : nil
    let sourceRows = vertical?.inputs(of: rows) ?? rows
    // The horizontal pass (or, when the width stays, the source itself): sourceRows × columns.
    var pass: [UInt8]
    if width != image.width {
        let horizontal = AxisWeights(inSize: image.width, outSize: width, kernel: kernel)
        pass = [UInt8](repeating: 0, count: sourceRows.count * columns.count * channels)
        image.pixels.withUnsafeBufferPointer { source in
            pass.withUnsafeMutableBufferPointer { target in
                horizontalPass(source.baseAddress!, width: image.width, channels: channels, rows: sourceRows,
                               weights: horizontal, columns: columns, into: target.baseAddress!)
            }
        }
    } else {
        pass = region(of: image, columns: columns, rows: sourceRows).pixels
    }
    guard let vertical else { return Image(width: columns.count, height: rows.count, channels: channels, pixels: pass) }
    var result = [UInt8](repeating: 0, count: rows.count * columns.count * channels)
    pass.withUnsafeBufferPointer { source in
        result.withUnsafeMutableBufferPointer { target in
            verticalPass(source.baseAddress!, rowLength: columns.count * channels, firstRow: sourceRows.lowerBound,
                         weights: vertical, rows: rows, into: target.baseAddress!)
        }
    }
    return Image(width: columns.count, height: rows.count, channels: channels, pixels: result)
}

/// PIL's horizontal pass over the source rows `rows`, output columns `columns`, into a packed buffer.
private func horizontalPass(_ source: UnsafePointer<UInt8>, width: Int, channels: Int, rows: Range<Int>,
                            weights: AxisWeights, columns: Range<Int>, into target: UnsafeMutablePointer<UInt8>) {
    let stride = weights.stride
    weights.weights.withUnsafeBufferPointer { table in
        let table = table.baseAddress!
        var out = target
        for y in rows {
            let line = source + y * width * channels
            for x in columns {
                let k = table + x * stride
                let n = weights.count[x]
                let pixel = line + weights.first[x] * channels
                switch channels {
                case 1:
                    var s0 = half
                    for j in 0..<n { s0 &+= Int32(pixel[j]) &* k[j] }
                    out[0] = clip8(s0)
                case 3:
                    var s0 = half, s1 = half, s2 = half
                    for j in 0..<n {
                        let w = k[j], p = pixel + 3 * j
                        s0 &+= Int32(p[0]) &* w
                        s1 &+= Int32(p[1]) &* w
                        s2 &+= Int32(p[2]) &* w
                    }
                    out[0] = clip8(s0); out[1] = clip8(s1); out[2] = clip8(s2)
                default:
                    var s0 = half, s1 = half, s2 = half, s3 = half
                    for j in 0..<n {
                        let w = k[j], p = pixel + 4 * j
                        s0 &+= Int32(p[0]) &* w
                        s1 &+= Int32(p[1]) &* w
                        s2 &+= Int32(p[2]) &* w
                        s3 &+= Int32(p[3]) &* w
                    }
                    out[0] = clip8(s0); out[1] = clip8(s1); out[2] = clip8(s2); out[3] = clip8(s3)
                }
                out += channels
            }
        }
    }
}

/// PIL's vertical pass for the output rows `rows`, from `source`, whose rows (of `rowLength` samples)
/// start at row `firstRow` of what `weights` index, into a packed buffer. The loops run in another
/// order than PIL's, row by row; the sums are integers, so they are the same.
private func verticalPass(_ source: UnsafePointer<UInt8>, rowLength: Int, firstRow: Int, weights: AxisWeights,
                          rows: Range<Int>, into target: UnsafeMutablePointer<UInt8>) {
    var sums = [Int32](repeating: 0, count: rowLength)
    sums.withUnsafeMutableBufferPointer { sums in
        weights.weights.withUnsafeBufferPointer { table in
            for (r, y) in rows.enumerated() {
                for i in 0..<rowLength { sums[i] = half }
                let k = weights.stride * y
                for j in 0..<weights.count[y] {
                    let w = table[k + j]
                    let line = source + (weights.first[y] - firstRow + j) * rowLength
                    for i in 0..<rowLength { sums[i] &+= Int32(line[i]) &* w }
                }
                let out = target + r * rowLength
                for i in 0..<rowLength { out[i] = clip8(sums[i]) }
            }
        }
    }
}

/// PIL's nearest resize (`ImagingScaleAffine`): output x reads source `Int(a * 0.5 + x * a)`, the sum
/// accumulated in double as PIL does, a = inSize / outSize; a position past the source is 0.
private func nearestResized(_ image: Image, width: Int, height: Int, columns: Range<Int>, rows: Range<Int>) -> Image {
    func positions(inSize: Int, outSize: Int) -> [Int] {
        let step = Double(Float(inSize)) / Double(outSize)
        var position = step * 0.5
        var result = [Int](repeating: -1, count: outSize)
        for i in 0..<outSize {
            let index = position < 0 ? -1 : Int(position)
            if index < inSize { result[i] = index }
            position += step
        }
        return result
    }
    let xs = positions(inSize: image.width, outSize: width), ys = positions(inSize: image.height, outSize: height)
    let channels = image.channels
    var pixels = [UInt8](repeating: 0, count: columns.count * rows.count * channels)
    var out = 0
    for y in rows {
        for x in columns {
            if ys[y] >= 0 && xs[x] >= 0 {
                let source = (ys[y] * image.width + xs[x]) * channels
                for c in 0..<channels { pixels[out + c] = image.pixels[source + c] }
            }
            out += channels
        }
    }
    return Image(width: columns.count, height: rows.count, channels: channels, pixels: pixels)
}

/// The part `columns` × `rows` of `image`.
private func region(of image: Image, columns: Range<Int>, rows: Range<Int>) -> Image {
    if columns == 0..<image.width && rows == 0..<image.height { return image }
    let channels = image.channels
    var pixels: [UInt8] = []
    pixels.reserveCapacity(columns.count * rows.count * channels)
    for y in rows {
        let start = (y * image.width + columns.lowerBound) * channels
        pixels += image.pixels[start..<(start + columns.count * channels)]
    }
    return Image(width: columns.count, height: rows.count, channels: channels, pixels: pixels)
}

/// PIL's RGBA → RGBa: each colour times alpha / 255, rounded (`MULDIV255`).
private func premultiplied(_ image: Image) -> Image {
    var pixels = image.pixels
    for i in Swift.stride(from: 0, to: pixels.count, by: 4) {
        let alpha = UInt32(pixels[i + 3])
        for c in i..<(i + 3) {
            let t = UInt32(pixels[c]) * alpha + 128
            pixels[c] = UInt8(((t >> 8) + t) >> 8)
        }
    }
    return Image(width: image.width, height: image.height, channels: 4, pixels: pixels)
}

/// PIL's RGBa → RGBA: each colour times 255 / alpha, truncated and clipped; alpha 0 and 255 leave it.
private func unpremultiplied(_ image: Image) -> Image {
    var pixels = image.pixels
    for i in Swift.stride(from: 0, to: pixels.count, by: 4) {
        let alpha = Int(pixels[i + 3])
        guard alpha != 0 && alpha != 255 else { continue }
        for c in i..<(i + 3) { pixels[c] = UInt8(min(255 * Int(pixels[c]) / alpha, 255)) }
    }
    return Image(width: image.width, height: image.height, channels: 4, pixels: pixels)
}
