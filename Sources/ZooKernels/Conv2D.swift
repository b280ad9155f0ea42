/// Convolution as a packed GEMM, with weights packed (or Winograd-transformed) once at
/// construction and an optional fused epilogue: bias, a residual, an activation (on the tile's
/// accumulators, after the residual where the tile adds it — im2col). Four methods (`Method`):
/// - **im2col**: per image and group, `C[outCh/g × outH·outW] = W[outCh/g × K] · col[K × outH·outW]`
///   with `K = inCh/g · kH · kW` ordered (channel, ky, kx) like PyTorch's weight layout. Per image, each
///   parallel item owns a range of 16-pixel B panels: it writes their im2col rows (zero padding
///   included) into the workspace, then computes the output tiles of 6 channels × 16 pixels over
///   them with the kernel set's tile, stored directly into NCHW output (bias, residual and ReLU
///   applied in registers) while the panels are still in cache.
/// - **pixel tiles** (default for reducing 1×1 convolutions and for strided ones but RGB stems): the
///   transposed products, 6 output pixels (AVX-512: 7 on small images that 7 divides) × 32 output
///   channels per tile, the weights as B panels; bit-identical to im2col.
/// - **implicit GEMM** (default for strided RGB stems): tiles of 6 pixels of one output row,
///   A read in place from padded, column-phase-split input planes (`ImplicitLayout`); bit-identical.
/// - **Winograd** (default for 3×3 and 5×5 stride-1 convolutions with enough channels; `WinogradConv`).
/// Groups use their own weight panels and slice of the input; nothing is copied per group. Threads
/// split output pixels only, never the reduction, so results are bit-for-bit identical for any
/// thread count.
public final class Conv2DKernel: @unchecked Sendable {
    public let shape: Conv2DShape
    /// The activation applied to every output, or nil.
    public let activation: Activation?
    /// `run` adds a residual of the output's shape before the activation (ResNet's shortcut).
    public let residual: Bool

    /// Whether `run` may be given the residual's own buffer as its output: each output element is
    /// written once, from the tile's registers, after its residual element was read — the pixel
    /// tiles and the implicit GEMM (their scatter adds it), im2col when its whole reduction is one k
    /// block (a deeper one stores partial sums before the last block adds the residual). Not
    /// Winograd, which adds the residual in a pass after writing the output.
    public var addsResidualInPlace: Bool {
        residual && (method == .pixelTiles || method == .implicitGemm || method == .im2col && shape.reductionSize <= Gemm.kc)
    }
    /// ReLU (and ReLU6's cap, `upper`) in the tile's registers.
    private let relu: Bool
    private let upper: Float
    /// Any other activation, applied to each finished output block.
    private let post: Activation?
    /// The kernel set this convolution runs with.
    public let kernels: KernelSet
    private let table: KernelTable
    /// How the convolution is computed.
    public enum Method: String, Sendable {
        /// im2col panels × packed weights (any shape).
        case im2col
        /// Packed weights × the input read in place from padded, phase-split planes (any shape;
        /// `ImplicitLayout`). Bit-identical to im2col.
        case implicitGemm
        /// Winograd F(2×2, 3×3) or F(2×2, 5×5) (3×3 or 5×5, stride 1, no dilation).
        case winograd
        /// Tiles of 6 (or 7) output pixels × 16 (or 32) output channels, B the packed weights, A the
        /// im2col matrix read column-major: in place in the input planes for 1×1, stride-1,
        /// unpadded convolutions, else the image's im2col matrix (K rows of all output pixels)
        /// written to the workspace first (`runPixelTiles`). For 1×1 convolutions that reduce
        /// channels (the scatter to NCHW is cheap next to the reduction), tiny images (7×7), where
        /// im2col's 16-pixel panels waste columns (49 = 3·16 + 1), and strided convolutions, where
        /// the implicit GEMM's tiles stay within one output row (7 columns = two tiles, 12
        /// computed). Bit-identical to im2col.
        case pixelTiles

        /// Whether pixel tiles read `shape`'s input in place (1×1, stride 1, unpadded).
        static func readsInPlace(_ shape: Conv2DShape) -> Bool {
            shape.kernelH == 1 && shape.kernelW == 1 && shape.strideH == 1 && shape.strideW == 1
                && shape.padTop == 0 && shape.padLeft == 0 && shape.padBottom == 0 && shape.padRight == 0
        }
    }
    public let method: Method

    /// The method for `shape` on images of about `inHeight × inWidth` (as a graph declares them; nil
    /// when unknown) where the size changes the choice, else nil (`init`'s default): pixel tiles for
    /// expanding 1×1 convolutions of small images (≤ 14×14), where im2col's 16-pixel panels waste
    /// columns (49 = 3·16 + 1, 169 = 10·16 + 9) and its packing is not paid back by a long image:
    /// `BenchmarkTests.testPointwiseShapes` on Zen 4 — 320→1280 on 7×7 0.254 → 0.205 ms, SqueezeNet's
    /// 512→1000 on 13×13 0.872 → 0.835, 256→1024 on 14×14 0.526 → 0.512, 96→576 on 14×14 even; on
    /// 28×28 im2col wins (32→192: 0.055 against 0.067).
    public static func preferredMethod(for shape: Conv2DShape, inHeight: Int?, inWidth: Int?) -> Method? {
        guard let inHeight, let inWidth else { return nil }
        return Method.readsInPlace(shape) && inHeight <= 14 && inWidth <= 14 ? .pixelTiles : nil
    }
    /// The Winograd algorithm used, when `method` is `.winograd`.
    public var winogradTransform: WinogradTransform? { winograd?.transform }
    /// Weights, group after group: im2col — 6-row A panels (`mPanels · 6 · K` floats per group);
    /// implicit GEMM — 16-column B panels (`⌈outCh/g / 16⌉ · 16 · K`). Nil for Winograd.
    private let packedWeights: UnsafeMutablePointer<Float>?
    private let winograd: WinogradConv?
    /// Bias padded per group to `biasStride` floats (whole 6-row and 16-column panels), or nil.
    private let packedBias: UnsafeMutablePointer<Float>?
    private let biasStride: Int
    private let mPanels: Int

    /// - Parameters:
    ///   - weights: `[outChannels, inChannels/groups, kernelH, kernelW]`, read during init only.
    ///   - bias: `[outChannels]` or nil, read during init only.
    ///   - activation: applied to every output after the bias (and the residual), or nil.
    ///   - residual: `run` takes a tensor of the output's shape to add before the activation.
    ///   - kernels: a set from `KernelSet.supported`.
    ///   - method: nil picks Winograd for 3×3 and 5×5 stride-1 convolutions with at least 16 input channels
    ///     per group (where it does fewer multiplies than im2col and its transforms pay off), pixel
    ///     tiles for 1×1 stride-1 unpadded ones with no more output than input channels per group and
    ///     (with a set that has the pair tile; im2col otherwise) for strided ones but RGB stems, the
    ///     implicit GEMM for strided RGB stems,
    ///     im2col otherwise (see `preferredMethod` for what the image size adds); `.winograd` on a
    ///     shape it does not apply to falls back to the default of the others.
    public init(shape: Conv2DShape, weights: UnsafePointer<Float>, bias: UnsafePointer<Float>?, activation: Activation?,
                residual: Bool = false, kernels: KernelSet = .active, method: Method? = nil) {
        shape.validate()
        self.shape = shape
        self.residual = residual
        self.activation = activation
        self.kernels = kernels
        table = kernels.table
        let k = shape.reductionSize, mg = shape.groupOutChannels
        mPanels = Gemm.panelCount(mg, width: Gemm.mr)
        // Measured on Zen 4 (BenchmarkTests.testPointwiseShapes, testStridedShapes):
        // - 1×1 convolutions that reduce at least as many channels as they produce (ResNet's and
        //   MobileNet's bottleneck entries and projections) take pixel tiles: their weights are the
        //   tile's B panels and the scatter to NCHW costs little next to the long reduction;
        //   expanding ones write im2col's channel rows directly;
        // - strided convolutions but RGB stems take pixel tiles over their im2col matrix (ResNet's
        //   3×3/2: 170-180 GFLOP/s against the implicit GEMM's 100-157, whose tiles stay within one
        //   output row); so do strided 1×1 ones (ResNet's downsampling shortcuts): with caches
        //   flushed between runs (ZOO_BENCH_COLD=1), 1.11 against im2col's 1.18 ms on 56×56, 1.02
        //   against 1.13 on 28×28, 1.21-1.35 against 1.42 on 14×14 (whose 7×7 output wastes a
        //   quarter of im2col's 16-pixel panels), 2 threads; in ResNet-50 the three took 3.5-4.2 ms
        //   against 4.0-5.0. That holds with the AVX-512 pair tile only: on Zen 3 (AVX2, 6×16 tiles
        //   alone) im2col is faster — BenchmarkTests.testMethodsInterleaved, 2 threads, minimum
        //   of 12 rounds: ResNet-50's 3×3/2 1.74 against 1.88 ms on 56×56, 2.06 against 2.55 on 28×28,
        //   2.17 against 2.42 on 14×14; its 1×1/2 1.65 against 2.72 on 56×56, 1.55 against 1.72 on
        //   28×28 (1.96 against 1.82 on 14×14);
        // - RGB stems (3×3/2, 7×7/2, AlexNet's 11×11/4) the implicit GEMM: no im2col matrix to
        //   write and read back — with the image coming from memory, as it does in a model, not
        //   from cache, MobileNet-V2's 3×3/2 stem took 0.43 ms against im2col's 0.61 at batch 1
        //   (7.1 against 10.0 ms at batch 16), 1 thread.
        let strided = shape.strideW > 1 || shape.strideH > 1
        let direct: Method = if Method.readsInPlace(shape) && shape.groupInChannels >= shape.groupOutChannels {
            .pixelTiles
        } else if !strided {
            .im2col
        } else if shape.groupInChannels > 3 {
            table.tilePair == nil ? .im2col : .pixelTiles
        } else {
            .implicitGemm
        }
        let winogradApplies = WinogradConv.applies(to: shape)
        let automatic: Method = winogradApplies && shape.groupInChannels >= 16 ? .winograd : direct
        switch method ?? automatic {
        case .winograd where !winogradApplies: self.method = direct
        case let chosen: self.method = chosen
        }
        // ReLU and ReLU6 in the tile's registers (Winograd's output transform has ReLU only), unless a
        // residual must be added first outside the tile (im2col's tiles add it in their registers);
        // any other activation after the bias (and residual).
        if !residual || self.method == .im2col, let b = activation?.bounds, b.low == 0, b.high > 0, b.high == .infinity || self.method != .winograd {
            (relu, upper, post) = (true, b.high, nil)
        } else {
            (relu, upper, post) = (false, .infinity, activation)
        }
        if self.method == .winograd {
            winograd = WinogradConv(shape: shape, weights: weights, bias: bias)
            packedWeights = nil
        } else if self.method == .implicitGemm || self.method == .pixelTiles {
            // Output channels are the GEMM's columns here: weights as 16-column B panels.
            winograd = nil
            let groupFloats = Gemm.panelCount(mg, width: Gemm.nr) * Gemm.nr * k
            let packed = UnsafeMutablePointer<Float>.allocate(capacity: shape.groups * groupFloats)
            for g in 0..<shape.groups {
                Gemm.packBTransposed(weights + g * mg * k, ldt: k, n: mg, k: k, into: packed + g * groupFloats)
            }
            packedWeights = packed
        } else {
            winograd = nil
            let groupFloats = mPanels * Gemm.mr * k
            let packed = UnsafeMutablePointer<Float>.allocate(capacity: shape.groups * groupFloats)
            for g in 0..<shape.groups {
                Gemm.packA(weights + g * mg * k, lda: k, m: mg, k: k, into: packed + g * groupFloats)
            }
            packedWeights = packed
        }
        biasStride = max(mPanels * Gemm.mr, Gemm.panelCount(mg, width: Gemm.nr) * Gemm.nr)
        if let bias {
            let padded = UnsafeMutablePointer<Float>.allocate(capacity: shape.groups * biasStride)
            padded.initialize(repeating: 0, count: shape.groups * biasStride)
            for g in 0..<shape.groups {
                for r in 0..<mg { padded[g * biasStride + r] = bias[g * mg + r] }
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

    /// Scratch bytes `run` needs: im2col — the panels of one image (plus 64 bytes of alignment slack),
    /// independent of `batch`; implicit GEMM — one image's `ImplicitLayout` planes and the B
    /// offsets; Winograd — the transformed inputs and products of one chunk of tiles, or of one per
    /// thread for small layers (`WinogradConv.slots`), so `run` must be given a pool of at most
    /// `threads` threads.
    public func workspaceBytes(batch: Int, inHeight: Int, inWidth: Int, threads: Int) -> Int {
        if let winograd { return winograd.workspaceBytes(batch: batch, inHeight: inHeight, inWidth: inWidth, threads: threads) }
        let out = shape.outputSize(inHeight: inHeight, inWidth: inWidth)
        if method == .implicitGemm {
            let layout = ImplicitLayout(shape: shape, inHeight: inHeight, inWidth: inWidth, outWidth: out.width)
            return layout.floats * MemoryLayout<Float>.stride + shape.reductionSize * MemoryLayout<Int>.stride + 128
        }
        if method == .pixelTiles {
            let matrix = Method.readsInPlace(shape) ? 0 : shape.reductionSize * out.height * out.width + 16
            return (shape.reductionSize * Gemm.mr + matrix) * MemoryLayout<Float>.stride + 64
        }
        return panelFloats(outPixels: out.height * out.width) * MemoryLayout<Float>.stride + 64
    }

    /// `input [batch, inChannels, inHeight, inWidth]` → `output [batch, outChannels, outH, outW]`,
    /// plus `residual` (same shape as the output; required when the kernel was made with `residual`)
    /// before the activation. `workspace` must hold `workspaceBytes(...)` bytes (any alignment),
    /// asked for at least `pool.threadCount` threads. Does not allocate.
    public func run(
        input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch: Int, inHeight: Int,
        inWidth: Int, workspace: UnsafeMutableRawPointer, pool: ThreadPool, residual: UnsafePointer<Float>? = nil
    ) {
        precondition(residual != nil || !self.residual, "Conv2DKernel: made for a residual, run without one")
        let residual = self.residual ? residual : nil
        if let winograd {
            winograd.run(input: input, output: output, batch: batch, inHeight: inHeight, inWidth: inWidth, relu: relu,
                         workspace: workspace, pool: pool, kernels: table)
            if post != nil || residual != nil {
                let (outH, outW) = shape.outputSize(inHeight: inHeight, inWidth: inWidth)
                let (count, table, post) = (batch * shape.outChannels * outH * outW, table, post)
                pool.parallelChunks(count) { range in
                    let start = range.lowerBound, n = range.count
                    if let residual {
                        table.addResidual(output + start, residual + start, count: n, then: post)
                    } else if let post {
                        table.activate(post, output + start, output + start, n)
                    }
                }
            }
            return
        }
        guard let packedWeights else { return }
        if method == .pixelTiles {
            runPixelTiles(input: input, output: output, batch: batch, inHeight: inHeight, inWidth: inWidth, workspace: workspace,
                          pool: pool, weights: packedWeights, residual: residual)
            return
        }
        if method == .implicitGemm {
            runImplicit(input: input, output: output, batch: batch, inHeight: inHeight, inWidth: inWidth,
                        workspace: workspace, pool: pool, weights: packedWeights, residual: residual)
            return
        }
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
        let geometry = Im2colGeometry(shape: shape, inHeight: inHeight, inWidth: inWidth, outWidth: outW, pixels: pixels)
        let (table, relu, upper, post) = (self.table, self.relu, self.upper, self.post)

        func gemm(_ g: Int, _ y: UnsafeMutablePointer<Float>) -> PackedGemm {
            var gemm = PackedGemm(
                kernels: table, a: packedWeights + g * groupWeightFloats, aRowStride: 0, b: panels + g * groupPanelFloats,
                c: y + g * mg * pixels, ldc: pixels, m: mg, n: pixels, k: k,
                rowBias: packedBias.map { UnsafePointer($0 + g * biasStride) }, colBias: nil, relu: relu, upper: upper, post: post)
            gemm.residual = residual.map { $0 + (y - output) + g * mg * pixels }
            return gemm
        }
        // A small image (every B panel in one L2 block) against many weights (ResNet's and
        // MobileNet's 14×14 and 7×7 stages): all panels first, then items of A panel ranges
        // (`PackedGemm.computeAll`), so the weights are read once, not once per panel range.
        let small = nPanels <= gemm(0, output).blockPanels && chunks < 4 * pool.threadCount && mPanels > 1
        for image in 0..<batch where small {
            let x = input + image * shape.inChannels * inHeight * inWidth
            let rows = min(k, 4 * pool.threadCount)
            pool.parallelFor(groups * rows) { item in
                let g = item / rows
                for kk in evenSplit(k, parts: rows, index: item % rows) {
                    table.im2colRow(geometry, kk, x + g * shape.groupInChannels * inHeight * inWidth, panels + g * groupPanelFloats,
                                    0..<nPanels)
                }
            }
            for g in 0..<groups { gemm(g, output + image * shape.outChannels * pixels).computeAll(pool: pool) }
        }
        for image in 0..<batch where !small {
            let x = input + image * shape.inChannels * inHeight * inWidth
            let y = output + image * shape.outChannels * pixels
            pool.parallelFor(groups * chunks) { item in
                let g = item / chunks
                let range = evenSplit(nPanels, parts: chunks, index: item % chunks)
                if range.isEmpty { return }
                let groupInput = x + g * shape.groupInChannels * inHeight * inWidth
                let groupPanels = panels + g * groupPanelFloats
                for kk in 0..<k {
                    table.im2colRow(geometry, kk, groupInput, groupPanels, range)
                }
                gemm(g, y).computeTiles((range.lowerBound * mPanels)..<(range.upperBound * mPanels))
            }
        }
    }

    /// The implicit GEMM: per image, the input is copied into `ImplicitLayout` planes, then items
    /// (ranges of output rows) compute tiles of 6 output pixels × 16 (or, with the pair tile, 32)
    /// output channels: A is read in place from the planes at per-k offsets, B is the packed
    /// weights; each tile goes through a stack scratch into NCHW. Same multiply-add chain per
    /// output as im2col, so bit-identical to it.
    private func runImplicit(
        input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch: Int, inHeight: Int, inWidth: Int,
        workspace: UnsafeMutableRawPointer, pool: ThreadPool, weights: UnsafeMutablePointer<Float>, residual: UnsafePointer<Float>?
    ) {
        let (outH, outW) = shape.outputSize(inHeight: inHeight, inWidth: inWidth)
        let pixels = outH * outW
        if batch <= 0 || pixels == 0 { return }
        let layout = ImplicitLayout(shape: shape, inHeight: inHeight, inWidth: inWidth, outWidth: outW)
        let groups = shape.groups, k = shape.reductionSize, mg = shape.groupOutChannels
        let offsets = workspace.alignedUp(toMultipleOf: 64).assumingMemoryBound(to: Int.self)
        for kk in 0..<k { offsets[kk] = layout.offset(kk) }
        let planes = (UnsafeMutableRawPointer(offsets + k)).alignedUp(toMultipleOf: 64).assumingMemoryBound(to: Float.self)
        let groupPlanes = shape.groupInChannels * shape.strideW * layout.rows * layout.width
        let nPanels = Gemm.panelCount(mg, width: Gemm.nr)
        let groupWeightFloats = nPanels * Gemm.nr * k
        let planeRows = shape.inChannels * shape.strideW * layout.rows
        let fillItems = min(planeRows, 8 * pool.threadCount)
        let rowChunks = max(1, min(outH, (4 * pool.threadCount + groups - 1) / groups))
        let (table, bias, relu, upper, post, biasStride) = (self.table, packedBias.map { UnsafePointer($0) }, self.relu, self.upper,
                                                            self.post, self.biasStride)

        for image in 0..<batch {
            let x = input + image * shape.inChannels * inHeight * inWidth
            let y = output + image * shape.outChannels * pixels
            pool.parallelFor(fillItems) { item in
                for r in evenSplit(planeRows, parts: fillItems, index: item) { layout.fill(planeRow: r, image: x, planes: planes) }
            }
            pool.parallelFor(groups * rowChunks) { item in
                let g = item / rowChunks
                let b = UnsafePointer(weights + g * groupWeightFloats)
                withUnsafeTemporaryAllocation(of: Float.self, capacity: Gemm.mr * 2 * Gemm.nr) { scratch in
                    guard let s = scratch.baseAddress else { return }
                    for oh in evenSplit(outH, parts: rowChunks, index: item % rowChunks) {
                        for ow0 in stride(from: 0, to: outW, by: Gemm.mr) {
                            let count = min(Gemm.mr, outW - ow0)
                            let base = UnsafePointer(planes + g * groupPlanes + layout.base(outputRow: oh, column: ow0))
                            var np = 0
                            while np < nPanels {
                                var t = TileArguments(
                                    k: k, a: base, aRowStride: 0, b: b + np * k * Gemm.nr, c: s, ldc: 2 * Gemm.nr,
                                    accumulate: false, finish: true, rowBias: nil,
                                    colBias: bias.map { $0 + g * biasStride + np * Gemm.nr }, relu: relu, upper: upper,
                                    activation: residual == nil ? post : nil)
                                t.aOffsets = UnsafePointer(offsets)
                                let done = table.tileOrPair(t, panel: np, of: nPanels, bPanelStride: k * Gemm.nr)
                                // Scatter the 6 pixels × 16 or 32 channels into NCHW.
                                let channels = min(done * Gemm.nr, mg - np * Gemm.nr)
                                let out = y + (g * mg + np * Gemm.nr) * pixels + oh * outW + ow0
                                table.scatterTile(s, out, channels, count, pixels, residual.map { $0 + (out - output) }, post)
                                np += done
                            }
                        }
                    }
                }
            }
        }
    }

    /// `Method.pixelTiles`: per image and group, items of (output-channel panel range × pixel tile
    /// range); each item runs its channel panels (two at a time with the pair tile) over its tiles of
    /// 6 flat pixels — A column-major (`TileArguments.aColumnStride`) in the input planes or the
    /// im2col matrix, a zero-padded 6-row panel for a last partial tile — through a stack scratch into
    /// NCHW (`KernelTable.scatterTile`). With `KernelTable.tilePairSeven`, tiles of 7 pixels instead
    /// on small images that 7 divides (7×7: 7 tiles, not 9 with 5 wasted rows) — 10–20 % faster there
    /// (BenchmarkTests.testPointwiseShapes, Zen 4, 2 threads: 2048→512 0.50 → 0.45 ms, 960→160
    /// 0.08 → 0.07 warm; 0.58 → 0.52 and 0.10 → 0.08 cold). The tiles prefetch the next cache line
    /// of each row of A they read (see `LayoutOfA`). Each output is the im2col path's chain of
    /// multiply-adds, so the results are bit-identical.
    private func runPixelTiles(
        input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch: Int, inHeight: Int, inWidth: Int,
        workspace: UnsafeMutableRawPointer, pool: ThreadPool, weights: UnsafeMutablePointer<Float>, residual: UnsafePointer<Float>?
    ) {
        let (outH, outW) = shape.outputSize(inHeight: inHeight, inWidth: inWidth)
        let pixels = outH * outW
        if batch <= 0 || pixels == 0 { return }
        let groups = shape.groups, k = shape.reductionSize, mg = shape.groupOutChannels
        let tail = workspace.alignedUp(toMultipleOf: 64).assumingMemoryBound(to: Float.self)
        // Other shapes than 1×1/1 unpadded: A is the im2col matrix, K rows of `pixels`, after the tail.
        let matrix: UnsafeMutablePointer<Float>? = Method.readsInPlace(shape) ? nil : tail + k * Gemm.mr
        let geometry = Im2colGeometry(shape: shape, inHeight: inHeight, inWidth: inWidth, outWidth: outW, pixels: pixels)
        let fillItems = min(k, 4 * pool.threadCount)
        let nPanels = Gemm.panelCount(mg, width: Gemm.nr), groupWeightFloats = nPanels * Gemm.nr * k
        // 7-pixel tiles where the set has them, they divide the image, 6-pixel ones would waste 5 % or
        // more of their rows in a part tile (a 7×7 image: 9 tiles, 5 of 54 rows wasted) and the channel
        // panels pair up (the 7-row tile is a pair only); else 6. On larger images (waste ≤ 1 %) 7-pixel
        // tiles measured even with caches warm and slower cold (BenchmarkTests.testPointwiseShapes,
        // ZOO_BENCH_COLD=1, 2 threads: 144→24 on 56×56 0.16 → 0.22 ms, 576→96 on 14×14 0.12 → 0.15).
        let waste = Gemm.panelCount(pixels, width: Gemm.mr) * Gemm.mr - pixels
        let seven = table.tilePairSeven.flatMap { pixels % 7 == 0 && 20 * waste >= pixels && nPanels % 2 == 0 ? $0 : nil }
        let rows = seven == nil ? Gemm.mr : 7
        let tiles = Gemm.panelCount(pixels, width: rows), fullTiles = pixels / rows
        // Channel ranges first (each reads its weights once), then pixel ranges to fill the threads.
        // Ranges hold whole pairs of panels (a lone panel only at the end of an odd count), so pair
        // tiles run wherever the set has them.
        let channelParts = max(1, min(nPanels / 2, 4 * pool.threadCount))
        let pixelParts = max(1, min(tiles, (4 * pool.threadCount + channelParts - 1) / channelParts))
        let (table, bias, relu, upper, post, biasStride) = (self.table, packedBias.map { UnsafePointer($0) }, self.relu, self.upper,
                                                            self.post, self.biasStride)
        for image in 0..<batch {
            for g in 0..<groups {
                let groupInput = input + (image * shape.inChannels + g * shape.groupInChannels) * inHeight * inWidth
                let x = UnsafePointer(matrix) ?? groupInput
                if let matrix {
                    pool.parallelFor(fillItems) { item in
                        for kk in evenSplit(k, parts: fillItems, index: item) {
                            geometry.line(kk, input: groupInput, into: matrix + kk * pixels, pixels: 0..<pixels)
                        }
                    }
                }
                let y = output + (image * shape.outChannels + g * mg) * pixels
                if fullTiles < tiles {
                    let first = fullTiles * Gemm.mr
                    for kk in 0..<k {
                        for r in 0..<Gemm.mr { tail[kk * Gemm.mr + r] = first + r < pixels ? x[kk * pixels + first + r] : 0 }
                    }
                }
                let b = UnsafePointer(weights + g * groupWeightFloats)
                pool.parallelFor(channelParts * pixelParts) { item in
                    let pairs = evenSplit((nPanels + 1) / 2, parts: channelParts, index: item / pixelParts)
                    let channels = 2 * pairs.lowerBound..<min(2 * pairs.upperBound, nPanels)
                    let range = evenSplit(tiles, parts: pixelParts, index: item % pixelParts)
                    withUnsafeTemporaryAllocation(of: Float.self, capacity: rows * 2 * Gemm.nr) { scratch in
                        guard let s = scratch.baseAddress else { return }
                        var np = channels.lowerBound
                        while np < channels.upperBound {
                            var done = 1
                            for tile in range {
                                let last = tile >= fullTiles
                                var t = TileArguments(
                                    k: k, a: last ? UnsafePointer(tail) : x + tile * rows, aRowStride: 0, b: b + np * k * Gemm.nr,
                                    c: s, ldc: 2 * Gemm.nr, accumulate: false, finish: true, rowBias: nil,
                                    colBias: bias.map { $0 + g * biasStride + np * Gemm.nr }, relu: relu, upper: upper,
                                    activation: residual == nil ? post : nil)
                                t.aColumnStride = last ? 0 : pixels  // the tail is a packed 6-row panel
                                if let seven {
                                    seven(t, t.b + k * Gemm.nr, s + Gemm.nr, t.colBias.map { $0 + Gemm.nr })
                                    done = 2
                                } else {
                                    done = table.tileOrPair(t, panel: np - channels.lowerBound, of: channels.count, bPanelStride: k * Gemm.nr)
                                }
                                let out = y + np * Gemm.nr * pixels + tile * rows
                                table.scatterTile(s, out, min(done * Gemm.nr, mg - np * Gemm.nr), min(rows, pixels - tile * rows),
                                                  pixels, residual.map { $0 + (out - output) }, post)
                            }
                            np += done
                        }
                    }
                }
            }
        }
    }
}
