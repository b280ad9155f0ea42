import ZooKernelsBase

/// `KernelTable.im2colRow`: row `kk = (channel·kH + ky)·kW + kx` of one group's im2col matrix —
/// the input value under tap (ky, kx) for each output pixel of the B panels `range` — written into
/// row `kk` of those 16-column panels (`panels[p·K·16 + kk·16 + j]` for pixel `16p + j`).
///
/// The row is first assembled in a line buffer one output-row segment at a time: taps in the
/// padding are zeros, the valid span is one contiguous copy (stride 1) or a strided walk, so no
/// per-pixel bounds checks remain; then it is copied 16 floats at a time into the panels, zero past
/// the last pixel.
func im2colRow(
    _ g: Im2colGeometry, _ kk: Int, _ input: UnsafePointer<Float>, _ panels: UnsafeMutablePointer<Float>, _ range: Range<Int>
) {
    let s = g.shape
    let taps = s.kernelH * s.kernelW
    let channel = kk / taps, tap = kk - channel * taps
    let ky = tap / s.kernelW, kx = tap - ky * s.kernelW
    let outW = g.outWidth
    let h = g.inHeight, w = g.inWidth
    let first = range.lowerBound * 16, end = min(g.pixels, range.upperBound * 16)
    let panelStride = s.reductionSize * 16
    let src = input + channel * h * w
    // Output columns whose tap lands inside the input: ix = ow·sw + ix0 ∈ [0, w).
    let sw = s.strideW
    let ix0 = kx * s.dilationW - s.padLeft
    let owLo = ix0 >= 0 ? 0 : min(outW, (-ix0 + sw - 1) / sw)
    let owHi = w - 1 - ix0 < 0 ? 0 : min(outW, (w - 1 - ix0) / sw + 1)

    withUnsafeTemporaryAllocation(of: Float.self, capacity: range.count * 16) { buffer in
        guard let line = buffer.baseAddress else { return }
        var pixel = first
        while pixel < end {
            // One segment: pixels [pixel, segmentEnd) of output row oh, columns [ow0, ow0 + count).
            let oh = pixel / outW, ow0 = pixel - oh * outW
            let count = min(outW - ow0, end - pixel)
            let row = line + (pixel - first)
            let iy = oh * s.strideH - s.padTop + ky * s.dilationH
            let lo = min(max(owLo, ow0), ow0 + count), hi = max(min(owHi, ow0 + count), lo)
            if iy < 0 || iy >= h || lo >= hi {
                row.initialize(repeating: 0, count: count)
            } else {
                row.initialize(repeating: 0, count: lo - ow0)
                let from = src + iy * w + ix0
                if sw == 1 {
                    (row + (lo - ow0)).update(from: from + lo, count: hi - lo)
                } else {
                    for ow in lo..<hi { row[ow - ow0] = from[ow * sw] }
                }
                (row + (hi - ow0)).initialize(repeating: 0, count: ow0 + count - hi)
            }
            pixel += count
        }
        (line + (end - first)).initialize(repeating: 0, count: range.count * 16 - (end - first))
        var d = panels + range.lowerBound * panelStride + kk * 16
        for p in 0..<range.count {
            store(load(line + p * 16), d)
            store(load(line + p * 16 + 8), d + 8)
            d += panelStride
        }
    }
}
