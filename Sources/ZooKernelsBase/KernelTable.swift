/// The hot loops of one kernel set (portable, AVX2+FMA or AVX-512), as function values.
///
/// The same source files (Sources/ZooKernelsVariant) are compiled once per set, each with its own
/// target CPU, into the modules ZooKernelsPortable, ZooKernelsAVX2 and ZooKernelsAVX512; each
/// exports one `KernelTable`. ZooKernels picks a table at start-up and its drivers (packing, tiling,
/// threading) call through it. Every entry computes exactly what its plain twin in
/// `ReferenceKernels` computes, to rounding.
///
/// Register tiles are 6 rows × 16 columns in every set (plus the AVX-512 set's 6×32 and 7×32 pair tiles). The AVX2 and AVX-512 sets contract each
/// multiply-add to one FMA in the same order, so their results are bit-for-bit identical; the
/// portable set rounds the product and the sum separately.
public struct KernelTable: Sendable {
    /// "portable", "avx2" or "avx512".
    public var name: String

    /// One 6×16 register tile of `C (+)= A·B`, with its epilogue (see `TileArguments`).
    public var tile: @Sendable (TileArguments) -> Void

    /// Two horizontally adjacent full 6×16 tiles at once: `tile(t)` plus the tile whose B panel is
    /// at `bNext`, C at `cNext` and column bias at `colBiasNext` (same A, k and epilogue). A may be
    /// packed, row-major or at offsets (`TileArguments.aOffsets`). Bit-identical to two `tile` calls; nil in
    /// sets without the registers for it.
    public typealias PairTile = @Sendable (
        _ t: TileArguments, _ bNext: UnsafePointer<Float>, _ cNext: UnsafeMutablePointer<Float>, _ colBiasNext: UnsafePointer<Float>?
    ) -> Void
    public var tilePair: PairTile?

    /// `tilePair` over 7 rows of A and C (7×32 outputs) for pixel tiles of images whose pixel count
    /// 7 divides (a 7×7 image: 7 tiles with no part tile). A is column-major, row-major or at
    /// offsets, never a packed 6-row panel. Bit-identical to `tile` on the same rows; nil in
    /// sets without the registers for it.
    public var tilePairSeven: PairTile?

    /// `y[r] = W[r, 0..<k] · x (+ bias[r]) (ReLU)` for `rows`, W row-major with row stride `ldw`:
    /// the batch-1 fully connected layer, streaming each weight row once.
    public var dotRows: @Sendable (
        _ k: Int, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ ldw: Int, _ rows: Range<Int>,
        _ y: UnsafeMutablePointer<Float>, _ bias: UnsafePointer<Float>?, _ relu: Bool
    ) -> Void

    /// Writes row `kk` of one group's im2col matrix into the group's 16-column B panels `range`
    /// (see `Im2colGeometry`). Rows and panel ranges are independent: threads may write different
    /// ones at once.
    public var im2colRow: @Sendable (
        _ geometry: Im2colGeometry, _ kk: Int, _ input: UnsafePointer<Float>, _ panels: UnsafeMutablePointer<Float>,
        _ range: Range<Int>
    ) -> Void

    /// Winograd F(2×2, 3×3) or F(2×2, 5×5) (`geometry.transform`) input transform of one 16-tile panel for a range of channels (see
    /// `WinogradGeometry`, `WinogradPanel`): `(geometry, panel, input channel plane, V)`.
    public var winogradInput: @Sendable (
        _ geometry: WinogradGeometry, _ panel: WinogradPanel, _ input: UnsafePointer<Float>, _ v: UnsafeMutablePointer<Float>
    ) -> Void

    /// Winograd F(2×2, 3×3) or F(2×2, 5×5) output transform of a range of tiles for the first `panel.channels`
    /// channels, 16 channels per vector, with bias and ReLU: `(geometry, panel, M, bias, relu, output channel plane)`.
    public var winogradOutput: @Sendable (
        _ geometry: WinogradGeometry, _ panel: WinogradPanel, _ m: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
        _ relu: Bool, _ output: UnsafeMutablePointer<Float>
    ) -> Void

    /// Max pooling of `planes` NCHW planes; NaN wins a window like in PyTorch.
    public var maxPool: @Sendable (
        _ shape: Pool2DShape, _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, _ planes: Int,
        _ inHeight: Int, _ inWidth: Int, _ outHeight: Int, _ outWidth: Int, _ pool: ThreadPool
    ) -> Void

    /// `y = max(x, 0)` elementwise, NaN kept.
    public var relu: @Sendable (_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, _ count: Int) -> Void

    /// Average pooling of `planes` NCHW planes; each window's sum is divided by its size clipped to
    /// the padded input (`countIncludePad`) or to the input.
    public var averagePool: @Sendable (
        _ shape: Pool2DShape, _ countIncludePad: Bool, _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>,
        _ planes: Int, _ inHeight: Int, _ inWidth: Int, _ outHeight: Int, _ outWidth: Int, _ pool: ThreadPool
    ) -> Void

    /// Adaptive average pooling (torch.nn.AdaptiveAvgPool2d) of `planes` NCHW planes.
    public var adaptiveAveragePool: @Sendable (
        _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, _ planes: Int,
        _ inHeight: Int, _ inWidth: Int, _ outHeight: Int, _ outWidth: Int, _ pool: ThreadPool
    ) -> Void

    /// Local response normalization across the channels of [batch, channels, spatial], window
    /// `[c + low, c + high]`: `y = x / (bias + alpha/size · Σ x²)^beta`.
    public var lrn: @Sendable (
        _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, _ batch: Int, _ channels: Int, _ spatial: Int,
        _ size: Int, _ low: Int, _ high: Int, _ alpha: Float, _ beta: Float, _ bias: Float, _ pool: ThreadPool
    ) -> Void

    /// Softmax along the middle axis of [outer, length, inner].
    public var softmax: @Sendable (
        _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, _ outer: Int, _ length: Int, _ inner: Int,
        _ pool: ThreadPool
    ) -> Void

    /// Inference batch normalization of [batch, channels, spatial] with per-channel parameters, then
    /// `activation` (or none) on each plane.
    public var batchNorm: @Sendable (
        _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, _ batch: Int, _ channels: Int, _ spatial: Int,
        _ scale: UnsafePointer<Float>, _ shift: UnsafePointer<Float>, _ mean: UnsafePointer<Float>,
        _ variance: UnsafePointer<Float>, _ epsilon: Float, _ activation: Activation?, _ pool: ThreadPool
    ) -> Void

    /// Depthwise convolution of planes `planes` of a [batch·channels] stack (see `DepthwiseGeometry`):
    /// `(geometry, input, taps [channels, kH·kW], bias [channels], clamp bounds low and high
    /// (ReLU, ReLU6; ±infinity for none), then `post` or nil, planes, channels, scratch of
    /// `scratchFloats`, output)`. Per output the taps are summed in (ky, kx) order from 0, then the
    /// bias is added, the result clamped (NaN kept) and `post` applied.
    public typealias DepthwisePlanes = @Sendable (
        _ geometry: DepthwiseGeometry, _ input: UnsafePointer<Float>, _ taps: UnsafePointer<Float>, _ bias: UnsafePointer<Float>,
        _ low: Float, _ high: Float, _ post: Activation?, _ planes: Range<Int>, _ channels: Int,
        _ scratch: UnsafeMutablePointer<Float>, _ output: UnsafeMutablePointer<Float>
    ) -> Void
    public var depthwisePlanes: DepthwisePlanes

    /// Depthwise convolution of groups of 8 channels (see `DepthwiseLanes`): `(geometry, input,
    /// taps [⌈channels/8⌉, kH·kW, 8], bias [⌈channels/8⌉, 8], clamp bounds, post, groups of
    /// [batch·⌈channels/8⌉], channels, scratch of `scratchFloats`, output)`; each output the same
    /// arithmetic as `depthwisePlanes`'.
    public typealias DepthwiseLaneGroups = @Sendable (
        _ geometry: DepthwiseLanes, _ input: UnsafePointer<Float>, _ taps: UnsafePointer<Float>, _ bias: UnsafePointer<Float>,
        _ low: Float, _ high: Float, _ post: Activation?, _ groups: Range<Int>, _ channels: Int,
        _ scratch: UnsafeMutablePointer<Float>, _ output: UnsafeMutablePointer<Float>
    ) -> Void
    public var depthwiseLanes: DepthwiseLaneGroups

    /// Layer normalization of `rows` rows of `inner` floats: per row, the mean and the biased
    /// variance in Double, then `y = Float((x − mean) · 1/√(variance + ε) · scale[i] (+ bias[i]))`
    /// with scale and bias in Double. The sums run in 8 Double lanes (then the lanes, then the
    /// last `inner % 8` in order), so a result may differ from a sequential Double sum's by the
    /// final rounding to Float (1 ulp) at most. Rows are split across threads.
    public typealias LayerNorm = @Sendable (
        _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, _ rows: Int, _ inner: Int,
        _ scale: UnsafePointer<Double>, _ bias: UnsafePointer<Double>?, _ epsilon: Double, _ pool: ThreadPool
    ) -> Void
    public var layerNorm: LayerNorm

    /// `y[i] = activation(x[i])` for `count` elements (`y` may be `x`); each element's value does not
    /// depend on where it lies in the array. Within a few ulp of `Activation.callAsFunction`.
    public var activate: @Sendable (_ activation: Activation, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ count: Int) -> Void

    /// The first `count` (1…7) pixels of a finished tile of 6 (or 7) output pixels × `channels` (≤ 32)
    /// output channels — `tile[p·32 + c]`, as the pixel-tile and implicit-GEMM paths leave it in
    /// their scratch — into NCHW planes: `output[c·planeStride + p] = tile[p·32 + c]` for
    /// `p < count`; with a `shortcut` (laid out like `output`), `post(tile + shortcut)` instead
    /// (`post` is ignored without one). Writes those floats and nothing else; each value is what
    /// `activate` gives for it.
    public typealias ScatterTile = @Sendable (
        _ tile: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, _ channels: Int, _ count: Int, _ planeStride: Int,
        _ shortcut: UnsafePointer<Float>?, _ post: Activation?
    ) -> Void
    public var scatterTile: ScatterTile

    /// `(x, y, batch, rows, columns, pool)`: `batch` row-major `rows × columns` matrices, one after
    /// another, into their transposes: `y[m·rows·columns + c·rows + r] = x[m·rows·columns + r·columns + c]`.
    public typealias Transpose = @Sendable (
        _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ batch: Int, _ rows: Int, _ columns: Int, _ pool: ThreadPool
    ) -> Void
    public var transpose: Transpose

    public init(
        name: String,
        tile: @escaping @Sendable (TileArguments) -> Void,
        tilePair: PairTile?,
        tilePairSeven: PairTile?,
        dotRows: @escaping @Sendable (Int, UnsafePointer<Float>, UnsafePointer<Float>, Int, Range<Int>,
                                      UnsafeMutablePointer<Float>, UnsafePointer<Float>?, Bool) -> Void,
        im2colRow: @escaping @Sendable (Im2colGeometry, Int, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Range<Int>) -> Void,
        winogradInput: @escaping @Sendable (WinogradGeometry, WinogradPanel, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void,
        winogradOutput: @escaping @Sendable (WinogradGeometry, WinogradPanel, UnsafePointer<Float>, UnsafePointer<Float>?, Bool,
                                             UnsafeMutablePointer<Float>) -> Void,
        maxPool: @escaping @Sendable (Pool2DShape, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int, Int, Int, Int, Int,
                                      ThreadPool) -> Void,
        relu: @escaping @Sendable (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void,
        averagePool: @escaping @Sendable (Pool2DShape, Bool, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int, Int, Int,
                                          Int, Int, ThreadPool) -> Void,
        adaptiveAveragePool: @escaping @Sendable (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int, Int, Int, Int, Int,
                                                  ThreadPool) -> Void,
        lrn: @escaping @Sendable (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int, Int, Int, Int, Int, Int, Float, Float,
                                  Float, ThreadPool) -> Void,
        softmax: @escaping @Sendable (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int, Int, Int, ThreadPool) -> Void,
        batchNorm: @escaping @Sendable (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int, Int, Int, UnsafePointer<Float>,
                                        UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, Float, Activation?,
                                        ThreadPool) -> Void,
        depthwisePlanes: @escaping DepthwisePlanes,
        depthwiseLanes: @escaping DepthwiseLaneGroups,
        layerNorm: @escaping LayerNorm,
        activate: @escaping @Sendable (Activation, UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void,
        scatterTile: @escaping ScatterTile,
        transpose: @escaping Transpose
    ) {
        self.name = name
        self.tile = tile
        self.tilePair = tilePair
        self.tilePairSeven = tilePairSeven
        self.dotRows = dotRows
        self.im2colRow = im2colRow
        self.winogradInput = winogradInput
        self.winogradOutput = winogradOutput
        self.maxPool = maxPool
        self.relu = relu
        self.averagePool = averagePool
        self.adaptiveAveragePool = adaptiveAveragePool
        self.lrn = lrn
        self.softmax = softmax
        self.batchNorm = batchNorm
        self.depthwisePlanes = depthwisePlanes
        self.depthwiseLanes = depthwiseLanes
        self.layerNorm = layerNorm
        self.activate = activate
        self.scatterTile = scatterTile
        self.transpose = transpose
    }
}

/// Operands of one 6×16 register tile.
///
/// - A: with `aRowStride == 0`, a packed 6-row panel (`a[kk*6 + r]`); otherwise row-major rows
///   `a[r*aRowStride + kk]` (e.g. unpacked Linear weights); or, with `aOffsets`, `a[aOffsets[kk] + r]`.
///   All 6 rows must be readable.
/// - B: a packed 16-column panel, `b[kk*16 + j]`.
/// - C: 6 rows of 16 floats at row stride `ldc`.
///
/// **Accumulation order.** Each element is one chain of multiply-adds over `kk = 0..<k` in order,
/// starting from +0 or, with `accumulate`, from the value in C (a previous k block, parked exactly).
/// With `finish`, `rowBias[0..<6]` / `colBias[0..<16]` are added after the chain, then `residual`,
/// then ReLU (which keeps NaN) and, with it, the cap at `upper` (ReLU6; NaN kept), then `activation`.
/// So an element's value does not depend on tiling or on how threads split the tiles.
public struct TileArguments {
    public var k: Int
    public var a: UnsafePointer<Float>
    public var aRowStride: Int
    public var b: UnsafePointer<Float>
    public var c: UnsafeMutablePointer<Float>
    public var ldc: Int
    public var accumulate: Bool
    public var finish: Bool
    public var rowBias: UnsafePointer<Float>?
    public var colBias: UnsafePointer<Float>?
    public var relu: Bool
    /// With `relu`: values above it become it (ReLU6 is `relu` with `upper` 6).
    public var upper: Float = .infinity
    /// With `finish`, after the bias (and ReLU): any activation, on the accumulators before they are
    /// stored — the same values as `KernelTable.activate` on the stored tile.
    public var activation: Activation? = nil
    /// When set, A is not a panel: the 6 values of reduction index `kk` are contiguous at
    /// `a + aOffsets[kk]` (an implicit GEMM reading a convolution's input in place). `aRowStride`
    /// is ignored.
    public var aOffsets: UnsafePointer<Int>? = nil
    /// When positive (and no `aOffsets`), A is column-major: the 6 values of reduction index `kk`
    /// are contiguous at `a + kk · aColumnStride` (a 1×1 convolution's input planes read in place).
    /// `aRowStride` is ignored.
    public var aColumnStride = 0
    /// With `finish`: 6 rows of 16 floats laid out like C (row stride `ldc`), added after the bias
    /// and before the activations (ResNet's shortcut) — `(chain + bias) + residual`, one rounding
    /// each, as an Add node after the convolution computes it.
    public var residual: UnsafePointer<Float>? = nil

    @inlinable
    public init(k: Int, a: UnsafePointer<Float>, aRowStride: Int, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>,
                ldc: Int, accumulate: Bool, finish: Bool, rowBias: UnsafePointer<Float>?, colBias: UnsafePointer<Float>?,
                relu: Bool, upper: Float = .infinity, activation: Activation? = nil) {
        self.k = k; self.a = a; self.aRowStride = aRowStride; self.b = b; self.c = c; self.ldc = ldc
        self.accumulate = accumulate; self.finish = finish; self.rowBias = rowBias; self.colBias = colBias; self.relu = relu
        self.upper = upper; self.activation = activation
    }
}

/// Where im2col reads for one convolution group.
///
/// B panel `p` covers output pixels `16p ..< 16p+16` (row-major over outH × outW); row `kk` of a
/// panel is reduction index `kk = (channel·kH + ky)·kW + kx`, for the group's `inChannels/groups`
/// channels starting at the `input` pointer given. Taps in the padding and lanes past the last
/// pixel are written as 0.
public struct Im2colGeometry: Sendable {
    public var shape: Conv2DShape
    public var inHeight: Int
    public var inWidth: Int
    public var outWidth: Int
    public var pixels: Int

    public init(shape: Conv2DShape, inHeight: Int, inWidth: Int, outWidth: Int, pixels: Int) {
        self.shape = shape; self.inHeight = inHeight; self.inWidth = inWidth; self.outWidth = outWidth; self.pixels = pixels
    }

    /// Row `kk = (channel·kH + ky)·kW + kx` of the group's im2col matrix for output pixels `pixels`
    /// (a range within `0..<self.pixels`) into `row[0..<pixels.count]`: the input value under tap
    /// (ky, kx) for each pixel, 0 in the padding. Assembled one output-row segment at a time — the
    /// zeros, then the valid span as one contiguous copy (stride 1), even lanes of vectors (stride 2)
    /// or a strided walk — so no per-pixel bounds checks remain.
    public func line(_ kk: Int, input: UnsafePointer<Float>, into row: UnsafeMutablePointer<Float>, pixels: Range<Int>) {
        let s = shape
        let taps = s.kernelH * s.kernelW
        let channel = kk / taps, tap = kk - channel * taps
        let ky = tap / s.kernelW, kx = tap - ky * s.kernelW
        let h = inHeight, w = inWidth, outW = outWidth
        let src = input + channel * h * w
        // Output columns whose tap lands inside the input: ix = ow·sw + ix0 ∈ [0, w).
        let sw = s.strideW
        let ix0 = kx * s.dilationW - s.padLeft
        let owLo = ix0 >= 0 ? 0 : min(outW, (-ix0 + sw - 1) / sw)
        let owHi = w - 1 - ix0 < 0 ? 0 : min(outW, (w - 1 - ix0) / sw + 1)
        var pixel = pixels.lowerBound
        while pixel < pixels.upperBound {
            // One segment: output row oh, columns [ow0, ow0 + count).
            let oh = pixel / outW, ow0 = pixel - oh * outW
            let count = min(outW - ow0, pixels.upperBound - pixel)
            let out = row + (pixel - pixels.lowerBound)
            let iy = oh * s.strideH - s.padTop + ky * s.dilationH
            let lo = min(max(owLo, ow0), ow0 + count), hi = max(min(owHi, ow0 + count), lo)
            if iy < 0 || iy >= h || lo >= hi {
                out.initialize(repeating: 0, count: count)
            } else {
                out.initialize(repeating: 0, count: lo - ow0)
                let from = src + iy * w + ix0
                if sw == 1 {
                    (out + (lo - ow0)).update(from: from + lo, count: hi - lo)
                } else if sw == 2 {
                    // Every other input: the even lanes of 16 consecutive floats (never read past the last one used).
                    var ow = lo
                    while ow + 8 < hi {
                        let pair = UnsafeRawPointer(from + 2 * ow).loadUnaligned(as: SIMD16<Float>.self)
                        UnsafeMutableRawPointer(out + (ow - ow0)).storeBytes(of: pair.evenHalf, as: SIMD8<Float>.self)
                        ow += 8
                    }
                    while ow < hi { out[ow - ow0] = from[2 * ow]; ow += 1 }
                } else {
                    for ow in lo..<hi { out[ow - ow0] = from[ow * sw] }
                }
                (out + (hi - ow0)).initialize(repeating: 0, count: ow0 + count - hi)
            }
            pixel += count
        }
    }
}
