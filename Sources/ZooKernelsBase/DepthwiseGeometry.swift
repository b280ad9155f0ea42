/// How a depthwise convolution of one channel plane is laid out for `KernelTable.depthwisePlanes`.
///
/// The padded input plane is split into `strideH × strideW` phase planes (phase (py, px) holds the
/// padded pixels (qy·strideH + py, qx·strideW + px)), each `rows × width`. Then every tap (ky, kx)
/// reads one phase at a fixed offset for every output: output (oy, ox) at flat index
/// `i = oy·width + ox` sums `taps[t] · phases[i + offsets[t]]`. So the whole plane is one long
/// vector loop per tap over `outHeight · width` outputs — the columns at and past `outWidth` are
/// computed and dropped — whatever the stride, padding or dilation.
public struct DepthwiseGeometry: Sendable {
    public let inHeight, inWidth, outHeight, outWidth: Int
    public let strideH, strideW, padTop, padLeft: Int
    /// Rows and width of each phase plane.
    public let rows, width: Int
    /// Per tap in (ky, kx) order: where its first input lies in the phase planes.
    public let offsets: [Int]
    /// Floats of the phase planes, plus slack for whole-vector reads past the last output.
    public let phaseFloats: Int
    /// Floats of the flat output block (`outHeight · width`, rounded up to whole vectors).
    public let accumulatorFloats: Int
    /// Scratch floats one plane needs: phases and accumulators.
    public var scratchFloats: Int { phaseFloats + accumulatorFloats }
    /// Outputs are computed in blocks of this many floats (the widest vector block of any set).
    public static let block = 32

    public init(shape s: Conv2DShape, inHeight: Int, inWidth: Int) {
        (self.inHeight, self.inWidth) = (inHeight, inWidth)
        (outHeight, outWidth) = s.outputSize(inHeight: inHeight, inWidth: inWidth)
        (strideH, strideW, padTop, padLeft) = (s.strideH, s.strideW, s.padTop, s.padLeft)
        rows = outHeight + (s.kernelH - 1) * s.dilationH / s.strideH
        width = outWidth + (s.kernelW - 1) * s.dilationW / s.strideW
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
        let outputs = outHeight * width
        accumulatorFloats = (outputs + Self.block - 1) / Self.block * Self.block
        // A block read at the last output's block start plus the largest offset stays inside.
        phaseFloats = max(s.strideH * s.strideW * plane, accumulatorFloats + (offsets.max() ?? 0)) + Self.block
    }
}
