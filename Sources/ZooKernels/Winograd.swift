/// Stride-1 convolution by Winograd minimal filtering (Lavin & Gray 2015): F(2×2, 3×3) for 3×3
/// kernels (16 multiplies per 2×2 output block and channel instead of 36) and F(2×2, 5×5) for 5×5
/// (36 instead of 100), as α² GEMMs over channels.
///
/// Filters are transformed once at construction, `U = G·g·Gᵀ` (in Double, rounded once), and
/// packed as α² B operands (16-output-channel panels of `U_ξᵀ`, one per position ξ of the α×α
/// transform). `run` works on chunks of 16-tile panels across the batch in three phases, each
/// split across the threads (or, for small layers with many chunks, whole chunks per thread):
/// input transforms into `V_ξ [channel][tile]` (`KernelTable.winogradInput`), the GEMMs
/// `M_ξ [tile][outChannel] = V_ξᵀ · U_ξᵀ` with tiles as the 6-row side (A read in place from V
/// at per-channel offsets, like the implicit convolution) so that a batch-1 13×13 map's 49 tiles
/// cost 9 row blocks (54 rows) rather than four 16-lane panels (64), and output transforms with
/// bias and ReLU, 16 output channels per vector (`KernelTable.winogradOutput`). Every value is
/// computed by one item with a fixed order of operations, so results are bit-for-bit identical for
/// any thread count and batch split; they differ from direct convolution by rounding only.
final class WinogradConv: @unchecked Sendable {
    let shape: Conv2DShape
    let transform: WinogradTransform
    /// `groups · α²` B operands, each `coutPad × inChannels/groups` as 16-column panels.
    private let packedFilters: UnsafeMutablePointer<Float>
    /// Bias per group padded with zeros to `coutPad`, or nil.
    private let bias: UnsafeMutablePointer<Float>?
    /// Output channels per group rounded up to whole 16-channel panels.
    private let coutPad: Int
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
        coutPad = Gemm.panelCount(cout, width: Gemm.nr) * Gemm.nr
        let operandFloats = coutPad * cin
        let packed = UnsafeMutablePointer<Float>.allocate(capacity: shape.groups * area * operandFloats)
        packed.initialize(repeating: 0, count: shape.groups * area * operandFloats)   // the padding channels
        packedFilters = packed
        let g = transform.g, nr = Gemm.nr
        var half = [Double](repeating: 0, count: alpha * r)                  // G·f
        for group in 0..<shape.groups {
            for k in 0..<cout {
                // Output channel k's place in each ξ's B panels (`Gemm.packBTransposed`'s layout),
                // written in place: no transformed copy of the filters beside the packed one.
                let column = packed + group * area * operandFloats + k / nr * cin * nr + k % nr
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
                            column[(a * alpha + b) * operandFloats + c * nr] = Float(sum)
                        }
                    }
                }
            }
        }
        if let bias {
            let padded = UnsafeMutablePointer<Float>.allocate(capacity: shape.groups * coutPad)
            padded.initialize(repeating: 0, count: shape.groups * coutPad)
            for group in 0..<shape.groups {
                (padded + group * coutPad).update(from: bias + group * cout, count: cout)
            }
            self.bias = padded
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

    /// Buffer sizes for a call: tile panels per chunk; floats between channels of V (the chunk's
    /// lanes plus room for the last 6-row block to read past them); rows of M (whole 6-row blocks);
    /// chunks in the call.
    private func layout(_ geometry: WinogradGeometry) -> (chunk: Int, laneStride: Int, rows: Int, chunks: Int) {
        let panels = Gemm.panelCount(geometry.tiles, width: 16), chunk = min(WinogradConv.chunkPanels, panels)
        return (chunk, chunk * 16 + 16, Gemm.panelCount(chunk * 16, width: Gemm.mr) * Gemm.mr, Gemm.panelCount(panels, width: chunk))
    }

    /// Floats of one chunk's transformed inputs V and GEMM results M, all groups, rounded up to
    /// whole cache lines.
    private func chunkFloats(_ geometry: WinogradGeometry) -> Int {
        let (_, laneStride, rows, _) = layout(geometry)
        let floats = shape.groups * transform.alpha * transform.alpha * (shape.groupInChannels * laneStride + rows * coutPad)
        return (floats + 15) / 16 * 16
    }

    /// How many threads `run` gives whole chunks of their own (each with its own V and M, the three
    /// phases one after another), or 1 for chunks whose phases are each split across the threads.
    /// Whole chunks where there are at least two per thread and the extra V and M stay within 8 MB:
    /// no handing of V and M between cores and no waiting between phases — SqueezeNet's 16→64 3×3
    /// on 55² (seven chunks) took 0.39 ms on two threads with split phases and 0.50 on one.
    private func slots(_ geometry: WinogradGeometry, threads: Int) -> Int {
        let chunks = layout(geometry).chunks
        let extra = (threads - 1) * chunkFloats(geometry) * MemoryLayout<Float>.stride
        return threads > 1 && chunks >= 2 * threads && extra <= 8 << 20 ? threads : 1
    }

    /// The per-channel A offsets, then V and M of one chunk per slot (see `slots`). `run` must be
    /// given a pool of at most `threads` threads.
    func workspaceBytes(batch: Int, inHeight: Int, inWidth: Int, threads: Int) -> Int {
        guard let geometry = geometry(batch: batch, inHeight: inHeight, inWidth: inWidth) else { return 64 }
        let floats = slots(geometry, threads: threads) * chunkFloats(geometry)
        return shape.groupInChannels * MemoryLayout<Int>.stride + floats * MemoryLayout<Float>.stride + 128
    }

    func run(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch: Int, inHeight: Int, inWidth: Int,
             relu: Bool, workspace: UnsafeMutableRawPointer, pool: ThreadPool, kernels table: KernelTable) {
        guard let geometry = geometry(batch: batch, inHeight: inHeight, inWidth: inWidth) else { return }
        let (outH, outW) = (geometry.outHeight, geometry.outWidth)
        let groups = shape.groups, cin = shape.groupInChannels, cout = shape.groupOutChannels, coutPad = self.coutPad
        let area = transform.alpha * transform.alpha
        let totalPanels = Gemm.panelCount(geometry.tiles, width: 16)
        let (chunk, laneStride, rows, chunks) = layout(geometry)
        // V of a group: [ξ][channel][lane] (lane = tile within the chunk); M of a group:
        // [tile][ξ][output channel], so each output transform reads one contiguous run. A of GEMM ξ:
        // 6 consecutive tiles of channel c at `offsets[c]`.
        let offsets = workspace.alignedUp(toMultipleOf: 64).assumingMemoryBound(to: Int.self)
        for c in 0..<cin { offsets[c] = c * laneStride }
        let space = UnsafeMutableRawPointer(offsets + cin).alignedUp(toMultipleOf: 64).assumingMemoryBound(to: Float.self)
        let groupV = area * cin * laneStride, groupM = area * rows * coutPad
        let operandFloats = coutPad * cin
        let nPanels = coutPad / Gemm.nr
        let (filters, bias) = (UnsafePointer(packedFilters), self.bias.map { UnsafePointer($0) })
        let readableEnd = batch * geometry.inImageStride

        // The three phases of the chunk of tile panels from `start`, with its V and M at `v` and
        // `m`, each phase's items through `forEach` (the pool's threads, or one after another).
        func runChunk(_ start: Int, _ v: UnsafeMutablePointer<Float>, _ m: UnsafeMutablePointer<Float>, splits: Int,
                   _ forEach: (Int, (Int) -> Void) -> Void) {
            let panels = min(chunk, totalPanels - start)
            let tiles = min(panels * 16, geometry.tiles - start * 16)
            forEach(groups * panels * splits) { item in
                let group = item / (panels * splits), p = item / splits % panels
                let channels = evenSplit(cin, parts: splits, index: item % splits)
                if channels.isEmpty { return }
                let first = (group * cin + channels.lowerBound) * inHeight * inWidth
                let panel = WinogradPanel(firstTile: (start + p) * 16, tiles: 16, channels: channels.count,
                                          channelStride: laneStride, positionStride: cin * laneStride,
                                          readable: -first..<(readableEnd - first))
                table.winogradInput(geometry, panel, input + first,
                                    v + group * groupV + channels.lowerBound * laneStride + p * 16)
            }
            let blocks = Gemm.panelCount(tiles, width: Gemm.mr)
            forEach(groups * area) { item in
                let group = item / area, xi = item % area
                let a = UnsafePointer(v + group * groupV + xi * cin * laneStride)
                let b = filters + (group * area + xi) * operandFloats
                let c = m + group * groupM + xi * coutPad, ldc = area * coutPad
                var np = 0, done = 1
                while np < nPanels {
                    // Output-channel panels outside, tile blocks inside: B stays in cache.
                    for block in 0..<blocks {
                        var t = TileArguments(
                            k: cin, a: a + block * Gemm.mr, aRowStride: 0, b: b + np * cin * Gemm.nr,
                            c: c + block * Gemm.mr * ldc + np * Gemm.nr, ldc: ldc, accumulate: false, finish: false,
                            rowBias: nil, colBias: nil, relu: false)
                        t.aOffsets = UnsafePointer(offsets)
                        done = table.tileOrPair(t, panel: np, of: nPanels, bPanelStride: cin * Gemm.nr)
                    }
                    np += done
                }
            }
            let parts = min(tiles, splits)
            forEach(groups * parts) { item in
                let group = item / parts
                let range = evenSplit(tiles, parts: parts, index: item % parts)
                let panel = WinogradPanel(firstTile: start * 16 + range.lowerBound, tiles: range.count, channels: cout,
                                          tileStride: area * coutPad, positionStride: coutPad)
                table.winogradOutput(geometry, panel, m + group * groupM + range.lowerBound * area * coutPad,
                                     bias.map { $0 + group * coutPad }, relu, output + group * cout * outH * outW)
            }
        }

        let slots = self.slots(geometry, threads: pool.threadCount), slotFloats = chunkFloats(geometry)
        if slots > 1 {
            // Whole chunks per thread, each slot with its own V and M.
            pool.parallelFor(slots) { slot in
                let v = space + slot * slotFloats, m = v + groups * groupV
                for index in evenSplit(chunks, parts: slots, index: slot) {
                    runChunk(index * chunk, v, m, splits: 1) { count, body in for item in 0..<count { body(item) } }
                }
            }
            return
        }
        for index in 0..<chunks {
            runChunk(index * chunk, space, space + groups * groupV, splits: max(1, 2 * pool.threadCount)) { count, body in
                pool.parallelFor(count, body)
            }
        }
    }
}
