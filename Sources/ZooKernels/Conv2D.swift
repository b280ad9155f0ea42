/// Convolution as implicit im2col + packed GEMM, with weights packed once at construction and an
/// optional fused bias + ReLU epilogue.
///
/// Per image and group, `C[outCh/g × outH·outW] = W[outCh/g × K] · col[K × outH·outW]` with
/// `K = inCh/g · kH · kW` ordered (channel, ky, kx) like PyTorch's weight layout. Per image, each
/// parallel item owns a range of 16-pixel B panels: it writes their im2col rows (zero padding
/// included) into the workspace, then computes the output tiles of 6 channels × 16 pixels over them
/// with the kernel set's tile, stored directly into NCHW output (bias and ReLU applied in
/// registers) while the panels are still in cache. Groups use their own weight panels and slice of
/// the input; nothing is copied per group. Threads split output pixels only, never the reduction,
/// so results are bit-for-bit identical for any thread count. 3×3 and 5×5 stride-1 convolutions
/// with enough channels use Winograd instead (`WinogradConv`).
public final class Conv2DKernel: @unchecked Sendable {
    public let shape: Conv2DShape
    public let relu: Bool
    /// The kernel set this convolution runs with.
    public let kernels: KernelSet
    private let table: KernelTable
    /// How the convolution is computed.
    public enum Method: String, Sendable {
        /// im2col panels × packed weights (any shape).
        case im2col
        /// Winograd F(2×2, 3×3) or F(2×2, 5×5) (3×3 or 5×5, stride 1, no dilation).
        case winograd
    }
    public let method: Method
    /// The Winograd algorithm used, when `method` is `.winograd`.
    public var winogradTransform: WinogradTransform? { winograd?.transform }
    /// Weight A panels, group after group (`groups · mPanels · 6 · K` floats); im2col only.
    private let packedWeights: UnsafeMutablePointer<Float>?
    private let winograd: WinogradConv?
    /// Bias padded to whole 6-row panels per group, or nil.
    private let packedBias: UnsafeMutablePointer<Float>?
    private let mPanels: Int

    /// - Parameters:
    ///   - weights: `[outChannels, inChannels/groups, kernelH, kernelW]`, read during init only.
    ///   - bias: `[outChannels]` or nil, read during init only.
    ///   - kernels: a set from `KernelSet.supported`.
    ///   - method: nil picks Winograd for 3×3 and 5×5 stride-1 convolutions with at least 16 input channels
    ///     per group (where it does fewer multiplies than im2col and its transforms pay off), im2col
    ///     otherwise; `.winograd` on a shape it does not apply to falls back to im2col.
    public init(shape: Conv2DShape, weights: UnsafePointer<Float>, bias: UnsafePointer<Float>?, relu: Bool,
                kernels: KernelSet = .active, method: Method? = nil) {
        shape.validate()
        self.shape = shape
        self.relu = relu
        self.kernels = kernels
        table = kernels.table
        let k = shape.reductionSize, mg = shape.groupOutChannels
        mPanels = Gemm.panelCount(mg, width: Gemm.mr)
        let useWinograd = WinogradConv.applies(to: shape) && (method ?? (shape.groupInChannels >= 16 ? .winograd : .im2col)) == .winograd
        self.method = useWinograd ? .winograd : .im2col
        if useWinograd {
            winograd = WinogradConv(shape: shape, weights: weights, bias: bias)
            packedWeights = nil
        } else {
            winograd = nil
            let groupFloats = mPanels * Gemm.mr * k
            let packed = UnsafeMutablePointer<Float>.allocate(capacity: shape.groups * groupFloats)
            for g in 0..<shape.groups {
                Gemm.packA(weights + g * mg * k, lda: k, m: mg, k: k, into: packed + g * groupFloats)
            }
            packedWeights = packed
        }
        if let bias {
            let padded = UnsafeMutablePointer<Float>.allocate(capacity: shape.groups * mPanels * Gemm.mr)
            padded.initialize(repeating: 0, count: shape.groups * mPanels * Gemm.mr)
            for g in 0..<shape.groups {
                for r in 0..<mg { padded[g * mPanels * Gemm.mr + r] = bias[g * mg + r] }
            }
            packedBias = padded
        } else {
            packedBias = nil
        }
    }

    deinit {
        packedWeights?.deallocate()
        packedBias?.deallocate()
    }

    /// Floats of packed im2col panels for one image (all groups).
    private func panelFloats(outPixels: Int) -> Int {
        shape.groups * Gemm.panelCount(outPixels, width: Gemm.nr) * Gemm.nr * shape.reductionSize
    }

    /// Floats of one image's input split by column phase (horizontal stride > 1), else 0.
    private func phaseFloats(inHeight: Int, inWidth: Int) -> Int {
        shape.strideW > 1 ? shape.inChannels * shape.strideW * inHeight * Gemm.panelCount(inWidth, width: shape.strideW) : 0
    }

    /// Scratch bytes `run` needs: im2col — the panels of one image (plus 64 bytes of alignment slack),
    /// independent of `batch`; Winograd — the transformed inputs and products of one chunk of tiles.
    /// Independent of `threads`, which is accepted so callers need not know that.
    public func workspaceBytes(batch: Int, inHeight: Int, inWidth: Int, threads: Int) -> Int {
        if let winograd { return winograd.workspaceBytes(batch: batch, inHeight: inHeight, inWidth: inWidth) }
        let out = shape.outputSize(inHeight: inHeight, inWidth: inWidth)
        return (panelFloats(outPixels: out.height * out.width) + phaseFloats(inHeight: inHeight, inWidth: inWidth))
            * MemoryLayout<Float>.stride + 64
    }

    /// `input [batch, inChannels, inHeight, inWidth]` → `output [batch, outChannels, outH, outW]`.
    /// `workspace` must hold `workspaceBytes(...)` bytes (any alignment). Does not allocate.
    public func run(
        input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch: Int, inHeight: Int,
        inWidth: Int, workspace: UnsafeMutableRawPointer, pool: ThreadPool
    ) {
        if let winograd {
            winograd.run(input: input, output: output, batch: batch, inHeight: inHeight, inWidth: inWidth, relu: relu,
                         workspace: workspace, pool: pool, kernels: table)
            return
        }
        guard let packedWeights else { return }
        let (outH, outW) = shape.outputSize(inHeight: inHeight, inWidth: inWidth)
        let pixels = outH * outW
        if batch <= 0 || pixels == 0 { return }
        let groups = shape.groups, k = shape.reductionSize, mg = shape.groupOutChannels
        let nPanels = Gemm.panelCount(pixels, width: Gemm.nr)
        let panels = workspace.alignedUp(toMultipleOf: 64).assumingMemoryBound(to: Float.self)
        let groupPanelFloats = nPanels * Gemm.nr * k
        let groupWeightFloats = mPanels * Gemm.mr * k
        // Items own a range of B panels: they write those panels' im2col rows, then compute every
        // output tile over them while the panels are still in their core's cache. Enough items for
        // dynamic balancing; each at least 2 panels so the A panels are reused.
        let chunks = max(1, min(Gemm.panelCount(nPanels, width: 2), (4 * pool.threadCount + groups - 1) / groups))
        // With a horizontal stride, each image's input is first split by column phase (one pass),
        // so every im2col row is built from contiguous runs.
        let sw = shape.strideW, phaseWidth = sw > 1 ? Gemm.panelCount(inWidth, width: sw) : 0
        let phased = panels + shape.groups * groupPanelFloats
        let geometry = Im2colGeometry(shape: shape, inHeight: inHeight, inWidth: inWidth, outWidth: outW, pixels: pixels,
                                      phaseWidth: phaseWidth)
        let table = self.table

        for image in 0..<batch {
            var x = input + image * shape.inChannels * inHeight * inWidth
            let y = output + image * shape.outChannels * pixels
            if phaseWidth > 0 {
                let source = x
                pool.parallelFor(min(shape.inChannels * inHeight, 8 * pool.threadCount)) { item in
                    for r in evenSplit(shape.inChannels * inHeight, parts: min(shape.inChannels * inHeight, 8 * pool.threadCount), index: item) {
                        let c = r / inHeight, row = r - c * inHeight
                        let from = source + r * inWidth
                        for q in 0..<sw {
                            let to = phased + ((c * sw + q) * inHeight + row) * phaseWidth
                            var t = 0, column = q
                            while column < inWidth { to[t] = from[column]; t += 1; column += sw }
                            while t < phaseWidth { to[t] = 0; t += 1 }
                        }
                    }
                }
                x = UnsafePointer(phased)
            }
            let channelFloats = phaseWidth > 0 ? sw * inHeight * phaseWidth : inHeight * inWidth
            let groupStride = shape.groupInChannels * channelFloats
            let source = x
            pool.parallelFor(groups * chunks) { item in
                let g = item / chunks
                let range = evenSplit(nPanels, parts: chunks, index: item % chunks)
                if range.isEmpty { return }
                let groupInput = source + g * groupStride
                let groupPanels = panels + g * groupPanelFloats
                for kk in 0..<k {
                    table.im2colRow(geometry, kk, groupInput, groupPanels, range)
                }
                let gemm = PackedGemm(
                    kernels: table, a: packedWeights + g * groupWeightFloats, aRowStride: 0, b: groupPanels,
                    c: y + g * mg * pixels, ldc: pixels, m: mg, n: pixels, k: k,
                    rowBias: packedBias.map { UnsafePointer($0 + g * mPanels * Gemm.mr) }, colBias: nil, relu: relu)
                gemm.computeTiles((range.lowerBound * mPanels)..<(range.upperBound * mPanels))
            }
        }
    }
}
