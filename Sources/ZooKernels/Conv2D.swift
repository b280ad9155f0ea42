/// Geometry of a 2-D convolution (PyTorch `nn.Conv2d` / ONNX `Conv` semantics, NCHW).
public struct Conv2DShape: Hashable, Sendable {
    public var inChannels, outChannels, kernelH, kernelW, strideH, strideW, dilationH, dilationW: Int
    public var padTop, padLeft, padBottom, padRight, groups: Int

    /// Channels must be divisible by `groups`; sizes, strides and dilations ≥ 1; pads ≥ 0.
    public init(
        inChannels: Int, outChannels: Int, kernelH: Int, kernelW: Int,
        strideH: Int = 1, strideW: Int = 1, dilationH: Int = 1, dilationW: Int = 1,
        padTop: Int = 0, padLeft: Int = 0, padBottom: Int = 0, padRight: Int = 0, groups: Int = 1
    ) {
        self.inChannels = inChannels; self.outChannels = outChannels
        self.kernelH = kernelH; self.kernelW = kernelW
        self.strideH = strideH; self.strideW = strideW
        self.dilationH = dilationH; self.dilationW = dilationW
        self.padTop = padTop; self.padLeft = padLeft; self.padBottom = padBottom; self.padRight = padRight
        self.groups = groups
    }

    /// `floor((in + pads - dilation·(k-1) - 1) / stride) + 1` per axis; 0 when the padded input
    /// is smaller than the dilated kernel.
    public func outputSize(inHeight: Int, inWidth: Int) -> (height: Int, width: Int) {
        func axis(_ size: Int, _ padA: Int, _ padB: Int, _ k: Int, _ stride: Int, _ dilation: Int) -> Int {
            let span = size + padA + padB - dilation * (k - 1) - 1
            return span < 0 ? 0 : span / stride + 1
        }
        return (axis(inHeight, padTop, padBottom, kernelH, strideH, dilationH),
                axis(inWidth, padLeft, padRight, kernelW, strideW, dilationW))
    }

    /// Input channels per group.
    public var groupInChannels: Int { inChannels / groups }
    /// Output channels per group.
    public var groupOutChannels: Int { outChannels / groups }
    /// GEMM depth of one group: `inChannels/groups · kernelH · kernelW`.
    public var reductionSize: Int { groupInChannels * kernelH * kernelW }

    func validate() {
        precondition(inChannels >= 1 && outChannels >= 1 && groups >= 1, "Conv2DShape: channels and groups must be ≥ 1")
        precondition(inChannels % groups == 0 && outChannels % groups == 0, "Conv2DShape: channels not divisible by groups")
        precondition(kernelH >= 1 && kernelW >= 1 && strideH >= 1 && strideW >= 1 && dilationH >= 1 && dilationW >= 1,
                     "Conv2DShape: kernel, stride and dilation must be ≥ 1")
        precondition(padTop >= 0 && padLeft >= 0 && padBottom >= 0 && padRight >= 0, "Conv2DShape: pads must be ≥ 0")
    }
}

/// Convolution as implicit im2col + packed GEMM, with weights packed once at construction and an
/// optional fused bias + ReLU epilogue.
///
/// Per image and group, `C[outCh/g × outH·outW] = W[outCh/g × K] · col[K × outH·outW]` with
/// `K = inCh/g · kH · kW` ordered (channel, ky, kx) like PyTorch's weight layout. `run` works in
/// two parallel phases per image: (1) the im2col matrix of every group is written straight into
/// 16-column B panels in the workspace (zero padding included), (2) output tiles of 6 channels ×
/// 16 pixels are computed by `Gemm.kernel6x16` and stored directly into NCHW output (bias and
/// ReLU applied in registers). Groups use their own weight panels and slice of the input; nothing
/// is copied per group. Threads split the output tiles only, never the reduction, so results are
/// bit-for-bit identical for any thread count.
public final class Conv2DKernel: @unchecked Sendable {
    public let shape: Conv2DShape
    public let relu: Bool
    /// Weight A panels, group after group (`groups · mPanels · 6 · K` floats).
    private let packedWeights: UnsafeMutablePointer<Float>
    /// Bias padded to whole 6-row panels per group, or nil.
    private let packedBias: UnsafeMutablePointer<Float>?
    private let mPanels: Int

    /// - Parameters:
    ///   - weights: `[outChannels, inChannels/groups, kernelH, kernelW]`, read during init only.
    ///   - bias: `[outChannels]` or nil, read during init only.
    public init(shape: Conv2DShape, weights: UnsafePointer<Float>, bias: UnsafePointer<Float>?, relu: Bool) {
        shape.validate()
        self.shape = shape
        self.relu = relu
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
        let im2col = Im2col(shape: shape, inHeight: inHeight, inWidth: inWidth, outWidth: outW, pixels: pixels)

        for image in 0..<batch {
            let x = input + image * shape.inChannels * inHeight * inWidth
            let y = output + image * shape.outChannels * pixels
            pool.parallelFor(groups * packChunks) { item in
                let g = item / packChunks
                let groupInput = x + g * shape.groupInChannels * inHeight * inWidth
                for p in evenSplit(nPanels, parts: packChunks, index: item % packChunks) {
                    im2col.packPanel(p, input: groupInput, into: panels + g * groupPanelFloats + p * k * Gemm.nr)
                }
            }
            pool.parallelFor(groups * tileChunks) { item in
                let g = item / tileChunks
                let gemm = PackedGemm(
                    a: packedWeights + g * groupWeightFloats, b: panels + g * groupPanelFloats,
                    c: y + g * mg * pixels, ldc: pixels, m: mg, n: pixels, k: k,
                    rowBias: packedBias.map { UnsafePointer($0 + g * mPanels * Gemm.mr) }, colBias: nil, relu: relu)
                gemm.computeTiles(evenSplit(tilesPerGroup, parts: tileChunks, index: item % tileChunks))
            }
        }
    }
}

/// Writes im2col columns of one group directly into 16-column B panels.
///
/// Panel `p` covers output pixels `16p ..< 16p+16` (row-major over outH × outW); row `kk` of the
/// panel is reduction index `kk = (channel·kH + ky)·kW + kx`. For each kernel tap (ky, kx) the 16
/// lanes' input offsets and padding masks are computed once and reused for every channel: a
/// fully valid, unit-stride tap is a 16-float vector copy, anything else a masked gather writing
/// zeros where the tap falls into padding. Lanes past the last pixel are zero.
struct Im2col {
    let shape: Conv2DShape
    let inHeight: Int
    let inWidth: Int
    let outWidth: Int
    let pixels: Int

    func packPanel(_ p: Int, input: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>) {
        let nr = Gemm.nr
        let first = p * nr
        let cols = min(nr, pixels - first)
        let h = inHeight, w = inWidth, plane = h * w
        let taps = shape.kernelH * shape.kernelW
        let channels = shape.groupInChannels

        withUnsafeTemporaryAllocation(of: Int.self, capacity: 4 * nr) { scratch in
            guard let iy0 = scratch.baseAddress else { return }
            let ix0 = iy0 + nr, offset = iy0 + 2 * nr, valid = iy0 + 3 * nr
            for j in 0..<nr {
                let pixel = first + min(j, cols - 1)
                let oh = pixel / outWidth
                iy0[j] = oh * shape.strideH - shape.padTop
                ix0[j] = (pixel - oh * outWidth) * shape.strideW - shape.padLeft
            }
            for ky in 0..<shape.kernelH {
                for kx in 0..<shape.kernelW {
                    var allValid = true
                    for j in 0..<nr {
                        let iy = iy0[j] + ky * shape.dilationH, ix = ix0[j] + kx * shape.dilationW
                        let ok = j < cols && iy >= 0 && iy < h && ix >= 0 && ix < w
                        valid[j] = ok ? 1 : 0
                        offset[j] = ok ? iy * w + ix : 0   // masked lanes load in bounds, store 0
                        allValid = allValid && ok
                    }
                    let contiguous = allValid && offset[nr - 1] - offset[0] == nr - 1
                    var d = dst + (ky * shape.kernelW + kx) * nr
                    var src = input
                    if contiguous {
                        let o = offset[0]
                        for _ in 0..<channels {
                            Gemm.store(Gemm.load(src + o), d)
                            Gemm.store(Gemm.load(src + o + 8), d + 8)
                            src += plane; d += taps * nr
                        }
                    } else {
                        for _ in 0..<channels {
                            for j in 0..<nr {
                                let x = src[offset[j]]
                                d[j] = valid[j] != 0 ? x : 0
                            }
                            src += plane; d += taps * nr
                        }
                    }
                }
            }
        }
    }
}
