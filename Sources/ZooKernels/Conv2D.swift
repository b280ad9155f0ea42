/// Convolution as implicit im2col + packed GEMM, with weights packed once at construction and an
/// optional fused bias + ReLU epilogue.
///
/// Per image and group, `C[outCh/g × outH·outW] = W[outCh/g × K] · col[K × outH·outW]` with
/// `K = inCh/g · kH · kW` ordered (channel, ky, kx) like PyTorch's weight layout. `run` works in
/// two parallel phases per image: (1) the im2col matrix of every group is written straight into
/// 16-column B panels in the workspace (zero padding included), (2) output tiles of 6 channels ×
/// 16 pixels are computed by the kernel set's tile and stored directly into NCHW output (bias and
/// ReLU applied in registers). Groups use their own weight panels and slice of the input; nothing
/// is copied per group. Threads split the output tiles only, never the reduction, so results are
/// bit-for-bit identical for any thread count.
public final class Conv2DKernel: @unchecked Sendable {
    public let shape: Conv2DShape
    public let relu: Bool
    /// The kernel set this convolution runs with.
    public let kernels: KernelSet
    private let table: KernelTable
    /// Weight A panels, group after group (`groups · mPanels · 6 · K` floats).
    private let packedWeights: UnsafeMutablePointer<Float>
    /// Bias padded to whole 6-row panels per group, or nil.
    private let packedBias: UnsafeMutablePointer<Float>?
    private let mPanels: Int

    /// - Parameters:
    ///   - weights: `[outChannels, inChannels/groups, kernelH, kernelW]`, read during init only.
    ///   - bias: `[outChannels]` or nil, read during init only.
    ///   - kernels: a set from `KernelSet.supported`.
    public init(shape: Conv2DShape, weights: UnsafePointer<Float>, bias: UnsafePointer<Float>?, relu: Bool,
                kernels: KernelSet = .active) {
        shape.validate()
        self.shape = shape
        self.relu = relu
        self.kernels = kernels
        table = kernels.table
        let k = shape.reductionSize, mg = shape.groupOutChannels
        mPanels = Gemm.panelCount(mg, width: Gemm.mr)
        let groupFloats = mPanels * Gemm.mr * k
        packedWeights = .allocate(capacity: shape.groups * groupFloats)
        for g in 0..<shape.groups {
            Gemm.packA(weights + g * mg * k, lda: k, m: mg, k: k, into: packedWeights + g * groupFloats)
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
        packedWeights.deallocate()
        packedBias?.deallocate()
    }

    /// Floats of packed im2col panels for one image (all groups).
    private func panelFloats(outPixels: Int) -> Int {
        shape.groups * Gemm.panelCount(outPixels, width: Gemm.nr) * Gemm.nr * shape.reductionSize
    }

    /// Scratch bytes `run` needs: the im2col panels of one image (plus 64 bytes of alignment slack).
    /// Independent of `batch` and `threads` (phases share the panels), which are accepted so callers
    /// need not know that.
    public func workspaceBytes(batch: Int, inHeight: Int, inWidth: Int, threads: Int) -> Int {
        let out = shape.outputSize(inHeight: inHeight, inWidth: inWidth)
        return panelFloats(outPixels: out.height * out.width) * MemoryLayout<Float>.stride + 64
    }

    /// `input [batch, inChannels, inHeight, inWidth]` → `output [batch, outChannels, outH, outW]`.
    /// `workspace` must hold `workspaceBytes(...)` bytes (any alignment). Does not allocate.
    public func run(
        input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch: Int, inHeight: Int,
        inWidth: Int, workspace: UnsafeMutableRawPointer, pool: ThreadPool
    ) {
        let (outH, outW) = shape.outputSize(inHeight: inHeight, inWidth: inWidth)
        let pixels = outH * outW
        if batch <= 0 || pixels == 0 { return }
        let groups = shape.groups, k = shape.reductionSize, mg = shape.groupOutChannels
        let nPanels = Gemm.panelCount(pixels, width: Gemm.nr)
        let panels = workspace.alignedUp(toMultipleOf: 64).assumingMemoryBound(to: Float.self)
        let groupPanelFloats = nPanels * Gemm.nr * k
        let groupWeightFloats = mPanels * Gemm.mr * k
        let tilesPerGroup = mPanels * nPanels
        // Enough items for dynamic balancing, few enough that each reuses its B slivers.
        let target = 4 * pool.threadCount
        let packChunks = max(1, min(nPanels, (target + groups - 1) / groups))
        let tileChunks = max(1, min(tilesPerGroup, (target + groups - 1) / groups))
        let geometry = Im2colGeometry(shape: shape, inHeight: inHeight, inWidth: inWidth, outWidth: outW, pixels: pixels)
        let table = self.table

        for image in 0..<batch {
            let x = input + image * shape.inChannels * inHeight * inWidth
            let y = output + image * shape.outChannels * pixels
            pool.parallelFor(groups * packChunks) { item in
                let g = item / packChunks
                let groupInput = x + g * shape.groupInChannels * inHeight * inWidth
                for p in evenSplit(nPanels, parts: packChunks, index: item % packChunks) {
                    table.im2colPanel(geometry, p, groupInput, panels + g * groupPanelFloats + p * k * Gemm.nr)
                }
            }
            pool.parallelFor(groups * tileChunks) { item in
                let g = item / tileChunks
                let gemm = PackedGemm(
                    kernels: table, a: packedWeights + g * groupWeightFloats, aRowStride: 0, b: panels + g * groupPanelFloats,
                    c: y + g * mg * pixels, ldc: pixels, m: mg, n: pixels, k: k,
                    rowBias: packedBias.map { UnsafePointer($0 + g * mPanels * Gemm.mr) }, colBias: nil, relu: relu)
                gemm.computeTiles(evenSplit(tilesPerGroup, parts: tileChunks, index: item % tileChunks))
            }
        }
    }
}
