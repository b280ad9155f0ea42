import ZooKernelsBase

/// `KernelTable.im2colRow`: row `kk = (channel·kH + ky)·kW + kx` of one group's im2col matrix —
/// the input value under tap (ky, kx) for each output pixel of the B panels `range` — written into
/// row `kk` of those 16-column panels (`panels[p·K·16 + kk·16 + j]` for pixel `16p + j`).
///
/// The row is first assembled in a line buffer (`Im2colGeometry.line`), then copied 16 floats at a
/// time into the panels, zero past the last pixel.
func im2colRow(
    _ g: Im2colGeometry, _ kk: Int, _ input: UnsafePointer<Float>, _ panels: UnsafeMutablePointer<Float>, _ range: Range<Int>
) {
    let first = range.lowerBound * 16, end = min(g.pixels, range.upperBound * 16)
    let panelStride = g.shape.reductionSize * 16
    withUnsafeTemporaryAllocation(of: Float.self, capacity: range.count * 16) { buffer in
        guard let line = buffer.baseAddress else { return }
        g.line(kk, input: input, into: line, pixels: first..<end)
        (line + (end - first)).initialize(repeating: 0, count: range.count * 16 - (end - first))
        var d = panels + range.lowerBound * panelStride + kk * 16
        for p in 0..<range.count {
            store(load(line + p * 16), d)
            store(load(line + p * 16 + 8), d + 8)
            d += panelStride
        }
    }
}
