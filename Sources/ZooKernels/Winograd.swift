/// Stride-1 convolution by Winograd minimal filtering (Lavin & Gray 2015): F(2×2, 3×3) for 3×3
/// kernels (16 multiplies per 2×2 output block and channel instead of 36) and F(2×2, 5×5) for 5×5
/// (36 instead of 100), as α² GEMMs over channels.
///
/// Filters are transformed once at construction, `U = G·g·Gᵀ` (in Double, rounded once), and
/// packed as α² A operands (one per position ξ of the α×α transform). `run` works on chunks of
/// 16-tile panels across the batch in three parallel phases: input transforms into α² B operands
/// (`KernelTable.winogradInput`), the GEMMs `M_ξ = U_ξ · V_ξ` (the kernel set's 6×16 tile), and
/// output transforms with bias and ReLU (`KernelTable.winogradOutput`). Every value is computed by
/// one item with a fixed order of operations, so results are bit-for-bit identical for any thread
/// count and batch split; they differ from direct convolution by rounding only.
final class WinogradConv: @unchecked Sendable {
    let shape: Conv2DShape
    let transform: WinogradTransform
    /// `groups · α²` A operands, each `mPanels · 6 × inChannels/groups`.
    private let packedFilters: UnsafeMutablePointer<Float>
    private let bias: UnsafeMutablePointer<Float>?
    private let mPanels: Int
    /// Tile panels transformed and multiplied per chunk (bounds the workspace to a few MB).
    static let chunkPanels = 8

    /// The transform for a convolution: 3×3 or 5×5, stride 1, dilation 1 (any padding, any groups).
    static func transform(for s: Conv2DShape) -> WinogradTransform? {
        guard s.strideH == 1 && s.strideW == 1 && s.dilationH == 1 && s.dilationW == 1 && s.kernelH == s.kernelW else { return nil }
        switch s.kernelH {
        case 3: return .f2x3
        case 5: return .f2x5
        default: return nil
        }
    }

    static func applies(to s: Conv2DShape) -> Bool { transform(for: s) != nil }

    /// `weights [outChannels, inChannels/groups, r, r]` (r = 3 or 5) and `bias [outChannels]` are read
    /// during init only.
    init(shape: Conv2DShape, weights: UnsafePointer<Float>, bias: UnsafePointer<Float>?) {
        guard let transform = WinogradConv.transform(for: shape) else {
            preconditionFailure("WinogradConv needs a 3×3 or 5×5 stride-1 undilated convolution")
        }
        self.shape = shape
        self.transform = transform
        let cin = shape.groupInChannels, cout = shape.groupOutChannels
        let (alpha, r) = (transform.alpha, transform.r), area = alpha * alpha
        mPanels = Gemm.panelCount(cout, width: Gemm.mr)
        let operandFloats = mPanels * Gemm.mr * cin
        let packed = UnsafeMutablePointer<Float>.allocate(capacity: shape.groups * area * operandFloats)
        packedFilters = packed
        let g = transform.g
        var transformed = [Float](repeating: 0, count: area * cout * cin)   // [ξ][k][c] of one group
        var half = [Double](repeating: 0, count: alpha * r)                  // G·f
        for group in 0..<shape.groups {
            for k in 0..<cout {
                for c in 0..<cin {
                    let f = weights + ((group * cout + k) * cin + c) * r * r
                    for a in 0..<alpha {
                        for j in 0..<r {
                            var sum = 0.0
                            for i in 0..<r { sum += g[a * r + i] * Double(f[i * r + j]) }
                            half[a * r + j] = sum
                        }
                    }
                    for a in 0..<alpha {
                        for b in 0..<alpha {
                            var sum = 0.0
                            for j in 0..<r { sum += half[a * r + j] * g[b * r + j] }
                            transformed[((a * alpha + b) * cout + k) * cin + c] = Float(sum)
                        }
                    }
                }
            }
            transformed.withUnsafeBufferPointer { t in
                for xi in 0..<area {
                    Gemm.packA(t.baseAddress! + xi * cout * cin, lda: cin, m: cout, k: cin,
                               into: packed + (group * area + xi) * operandFloats)
                }
            }
        }
        if let bias {
            let copy = UnsafeMutablePointer<Float>.allocate(capacity: shape.outChannels)
            copy.update(from: bias, count: shape.outChannels)
            self.bias = copy
        } else {
            self.bias = nil
        }
    }

    deinit {
        packedFilters.deallocate()
        bias?.deallocate()
    }

    /// The tiling of a call; nil when the output is empty.
    private func geometry(batch: Int, inHeight: Int, inWidth: Int) -> WinogradGeometry? {
        let (outH, outW) = shape.outputSize(inHeight: inHeight, inWidth: inWidth)
        if batch <= 0 || outH == 0 || outW == 0 { return nil }
        return WinogradGeometry(transform: transform, inHeight: inHeight, inWidth: inWidth, outHeight: outH, outWidth: outW,
                                padTop: shape.padTop, padLeft: shape.padLeft, inChannels: shape.inChannels,
                                outChannels: shape.outChannels, batch: batch)
    }

    /// Tile panels per chunk.
    private func chunk(_ geometry: WinogradGeometry) -> Int {
        min(WinogradConv.chunkPanels, Gemm.panelCount(geometry.tiles, width: 16))
    }

    /// Transformed inputs then GEMM results of one chunk, all groups.
    func workspaceBytes(batch: Int, inHeight: Int, inWidth: Int) -> Int {
        guard let geometry = geometry(batch: batch, inHeight: inHeight, inWidth: inWidth) else { return 64 }
        let lanes = chunk(geometry) * 16
        let floats = shape.groups * transform.alpha * transform.alpha * lanes * (shape.groupInChannels + mPanels * Gemm.mr)
        return floats * MemoryLayout<Float>.stride + 64
    }

    func run(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch: Int, inHeight: Int, inWidth: Int,
             relu: Bool, workspace: UnsafeMutableRawPointer, pool: ThreadPool, kernels table: KernelTable) {
        guard let geometry = geometry(batch: batch, inHeight: inHeight, inWidth: inWidth) else { return }
        let (outH, outW) = (geometry.outHeight, geometry.outWidth)
        let groups = shape.groups, cin = shape.groupInChannels, cout = shape.groupOutChannels
        let rows = mPanels * Gemm.mr
        let area = transform.alpha * transform.alpha
        let totalPanels = Gemm.panelCount(geometry.tiles, width: 16)
        let chunk = self.chunk(geometry)
        let space = workspace.alignedUp(toMultipleOf: 64).assumingMemoryBound(to: Float.self)
        let groupV = area * chunk * 16 * cin, groupM = area * rows * chunk * 16
        let v = space, m = space + groups * groupV
        let operandFloats = rows * cin
        let (filters, bias) = (UnsafePointer(packedFilters), self.bias.map { UnsafePointer($0) })
        let splits = max(1, 2 * pool.threadCount)

        var start = 0
        while start < totalPanels {
            let panels = min(chunk, totalPanels - start)
            // V of a group: [panel][ξ][channel][16] (B operand ξ's panels `vPanel` apart); M of a
            // group: [row][panel][ξ][16] (C of GEMM ξ with 16-column blocks `area·16` apart), so each
            // output transform reads its α² positions from one contiguous run.
            let vPanel = area * cin * 16, mRow = panels * area * 16
            pool.parallelFor(groups * panels * splits) { item in
                let group = item / (panels * splits), p = item / splits % panels
                let channels = evenSplit(cin, parts: splits, index: item % splits)
                if channels.isEmpty { return }
                let panel = WinogradPanel(firstTile: (start + p) * 16, channels: channels.count, channelStride: 16,
                                          positionStride: cin * 16)
                table.winogradInput(geometry, panel, input + (group * cin + channels.lowerBound) * inHeight * inWidth,
                                    v + group * groupV + p * vPanel + channels.lowerBound * 16)
            }
            pool.parallelFor(groups * area) { item in
                let group = item / area, xi = item % area
                var gemm = PackedGemm(
                    kernels: table, a: filters + (group * area + xi) * operandFloats, aRowStride: 0,
                    b: v + group * groupV + xi * cin * 16, c: m + group * groupM + xi * 16, ldc: mRow,
                    m: rows, n: panels * 16, k: cin, rowBias: nil, colBias: nil, relu: false)
                gemm.bPanelStride = vPanel
                gemm.cPanelStride = area * 16
                gemm.computeTiles(0..<gemm.tileCount)
            }
            pool.parallelFor(groups * panels * splits) { item in
                let group = item / (panels * splits), p = item / splits % panels
                let channels = evenSplit(cout, parts: splits, index: item % splits)
                if channels.isEmpty { return }
                let k0 = group * cout + channels.lowerBound
                let panel = WinogradPanel(firstTile: (start + p) * 16, channels: channels.count, channelStride: mRow,
                                          positionStride: 16)
                table.winogradOutput(geometry, panel, m + group * groupM + channels.lowerBound * mRow + p * area * 16,
                                     bias.map { $0 + k0 }, relu, output + k0 * outH * outW)
            }
            start += panels
        }
    }
}
