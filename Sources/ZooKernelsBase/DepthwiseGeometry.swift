/// How a depthwise convolution of one channel plane is laid out for `KernelTable.depthwisePlanes`,
/// band of output rows by band.
///
/// The input rows a band of `bandRows` output rows reads are copied, zero padded, into
/// `strideH × strideW` phase planes (phase (py, px) holds the padded pixels (qy·strideH + py,
/// qx·strideW + px), qy counted from the band's first), each `rows × width`. Then every tap (ky, kx)
/// reads one phase at a fixed offset for every output of the band: output (oy, ox) at flat index
/// `i = oy·width + ox` (oy from the band's first) sums `taps[t] · phases[i + offsets[t]]`. So a band
/// is one long vector loop per tap over `bandRows · width` outputs — the columns at and past
/// `outWidth` are computed and dropped — whatever the stride, padding or dilation. Bands keep the
/// phases and outputs within about 16 KB, in L1 (a whole 112×112 plane's took 100 KB, in L2); the
/// input rows two bands share are copied for each.
public struct DepthwiseGeometry: Sendable {
    public let inHeight, inWidth, outHeight, outWidth: Int
    public let strideH, strideW, padTop, padLeft: Int
    /// Output rows per band (the last band may have fewer).
    public let bandRows: Int
    /// Rows and width of each phase plane of a band.
    public let rows, width: Int
    /// Per tap in (ky, kx) order: where its first input lies in the phase planes.
    public let offsets: [Int]
    /// Floats of the phase planes, plus slack for whole-vector reads past the band's last output.
    public let phaseFloats: Int
    /// Floats of a band's flat output block (`bandRows · width`, rounded up to whole blocks).
    public let accumulatorFloats: Int
    /// Scratch floats one plane needs: phases and accumulators.
    public var scratchFloats: Int { phaseFloats + accumulatorFloats }
    /// Outputs are computed in blocks of this many floats (8 vectors of 8: the broadcast of a tap and
    /// its offset serve 8 multiply-adds).
    public static let block = 64
    /// Floats a band's phases and outputs may take (16 KB: half of a Zen 3 or Zen 4 core's L1).
    static let bandFloats = 4096

    public init(shape s: Conv2DShape, inHeight: Int, inWidth: Int) {
        (self.inHeight, self.inWidth) = (inHeight, inWidth)
        (outHeight, outWidth) = s.outputSize(inHeight: inHeight, inWidth: inWidth)
        (strideH, strideW, padTop, padLeft) = (s.strideH, s.strideW, s.padTop, s.padLeft)
        let reach = (s.kernelH - 1) * s.dilationH / s.strideH, phases = s.strideH * s.strideW
        width = outWidth + (s.kernelW - 1) * s.dilationW / s.strideW
        // The most rows that fit, then the rows spread evenly over that many bands.
        let fit = max(1, (Self.bandFloats - phases * reach * width) / ((phases + 1) * width))
        let bands = max(1, (outHeight + fit - 1) / fit)
        bandRows = max(1, (outHeight + bands - 1) / bands)
        rows = bandRows + reach
        let plane = rows * width
        var offsets: [Int] = []
        for ky in 0..<s.kernelH {
            for kx in 0..<s.kernelW {
                let (y, x) = (ky * s.dilationH, kx * s.dilationW)
                let phase = (y % s.strideH) * s.strideW + x % s.strideW
                offsets.append(phase * plane + y / s.strideH * width + x / s.strideW)
            }
        }
        self.offsets = offsets
        let outputs = bandRows * width
        accumulatorFloats = (outputs + Self.block - 1) / Self.block * Self.block
        // A block read at the last output's block start plus the largest offset stays inside.
        phaseFloats = max(phases * plane, accumulatorFloats + (offsets.max() ?? 0)) + Self.block
    }
}

/// How a depthwise convolution of 8 channels at once is laid out for `KernelTable.depthwiseLanes`
/// (small planes, where a plane's vector loops are too short): the padded input of the 8 channels
/// interleaved, pixel by pixel — `lanes[(row·columns + column)·8 + c]` is channel c's padded pixel —
/// so every tap of one output pixel is one vector multiply-add over the 8 channels, with that tap's
/// 8 weights as the other operand. Output (oy, ox) reads `lanes[(oy·strideH·columns + ox·strideW)·8
/// + offsets[t]]` for tap t.
public struct DepthwiseLanes: Sendable {
    public let inHeight, inWidth, outHeight, outWidth: Int
    public let strideH, strideW, padTop, padLeft: Int
    /// Rows and columns of the padded input: what the outputs read, and at least the whole input.
    public let rows, columns: Int
    /// Per tap in (ky, kx) order: its offset in floats from the output's first read.
    public let offsets: [Int]
    /// Scratch floats one group of 8 channels needs (whole vectors).
    public var scratchFloats: Int { rows * columns * 8 }

    public init(shape s: Conv2DShape, inHeight: Int, inWidth: Int) {
        (self.inHeight, self.inWidth) = (inHeight, inWidth)
        (outHeight, outWidth) = s.outputSize(inHeight: inHeight, inWidth: inWidth)
        (strideH, strideW, padTop, padLeft) = (s.strideH, s.strideW, s.padTop, s.padLeft)
        // The rows and columns the outputs read, or the whole input if it reaches further.
        rows = max(max(0, outHeight - 1) * s.strideH + (s.kernelH - 1) * s.dilationH + 1, s.padTop + inHeight)
        columns = max(max(0, outWidth - 1) * s.strideW + (s.kernelW - 1) * s.dilationW + 1, s.padLeft + inWidth)
        var offsets: [Int] = []
        for ky in 0..<s.kernelH {
            for kx in 0..<s.kernelW { offsets.append((ky * s.dilationH * columns + kx * s.dilationW) * 8) }
        }
        self.offsets = offsets
    }
}

