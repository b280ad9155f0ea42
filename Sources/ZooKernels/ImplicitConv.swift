/// Where an implicit-GEMM convolution reads its input: each image's input is copied once into
/// zero-padded, column-phase-split planes, after which the values a tile needs for reduction index
/// `kk = (channel·kH + ky)·kW + kx` and consecutive output columns are contiguous, at a fixed offset
/// from the tile's base. So the GEMM's pixel operand is read in place — no im2col matrix.
///
/// Plane `(c, q)` (input channel c, column phase q of the horizontal stride s) has `rows` rows —
/// input rows −padTop ..< inHeight + padBottom — of `width` floats: element t holds input column
/// `(t − margin)·s + q`, or 0 where that column or row is outside the input.
struct ImplicitLayout {
    let shape: Conv2DShape
    let inHeight, inWidth: Int
    let rows, width, margin: Int

    init(shape: Conv2DShape, inHeight: Int, inWidth: Int, outWidth: Int) {
        self.shape = shape
        self.inHeight = inHeight; self.inWidth = inWidth
        let s = shape.strideW
        rows = inHeight + shape.padTop + shape.padBottom
        margin = (shape.padLeft + s - 1) / s
        // A row's last tile of 6 pixels may run past the output row: keep its reads inside the plane.
        let lastShift = ImplicitLayout.floorDivide((shape.kernelW - 1) * shape.dilationW - shape.padLeft, s)
        width = margin + Gemm.panelCount(outWidth, width: Gemm.mr) * Gemm.mr + max(lastShift, 0)
    }

    static func floorDivide(_ a: Int, _ b: Int) -> Int { a >= 0 ? a / b : -((-a + b - 1) / b) }

    /// Floats of one image's planes (all channels).
    var floats: Int { shape.inChannels * shape.strideW * rows * width }

    /// Offset of reduction row `kk` (channel relative to its group) from a tile's base.
    func offset(_ kk: Int) -> Int {
        let s = shape.strideW, taps = shape.kernelH * shape.kernelW
        let channel = kk / taps, ky = (kk - channel * taps) / shape.kernelW, kx = kk % shape.kernelW
        let column = kx * shape.dilationW - shape.padLeft
        let shift = ImplicitLayout.floorDivide(column, s), phase = column - shift * s
        return ((channel * s + phase) * rows + ky * shape.dilationH) * width + shift + margin
    }

    /// A tile's base: output row `oh`, first output column `ow0`, in the planes of one group.
    func base(outputRow oh: Int, column ow0: Int) -> Int { oh * shape.strideH * width + ow0 }

    /// Fills plane row `r` (over all channels and phases: `r = (c·s + q)·rows + row`) from one image.
    func fill(planeRow r: Int, image: UnsafePointer<Float>, planes: UnsafeMutablePointer<Float>) {
        let s = shape.strideW
        let plane = r / rows, row = r - plane * rows
        let channel = plane / s, phase = plane - channel * s
        let iy = row - shape.padTop
        let to = planes + r * width
        guard iy >= 0 && iy < inHeight else {
            to.initialize(repeating: 0, count: width)
            return
        }
        // Columns t with 0 ≤ (t − margin)·s + phase < inWidth are copied, the rest are zero.
        let from = image + (channel * inHeight + iy) * inWidth
        let first = min(width, margin)   // t = margin is column `phase`, the first ≥ 0
        let end = max(first, min(width, margin + (inWidth - phase + s - 1) / s))
        to.initialize(repeating: 0, count: first)
        var ix = (first - margin) * s + phase, t = first
        if s == 2 {
            // Eight columns from the even lanes of 16 consecutive floats while those lie inside the row.
            while t + 8 <= end && ix + 16 <= inWidth {
                let pair = UnsafeRawPointer(from + ix).loadUnaligned(as: SIMD16<Float>.self)
                UnsafeMutableRawPointer(to + t).storeBytes(of: pair.evenHalf, as: SIMD8<Float>.self)
                t += 8
                ix += 16
            }
        }
        while t < end {
            to[t] = from[ix]
            ix += s
            t += 1
        }
        (to + end).initialize(repeating: 0, count: width - end)
    }
}
