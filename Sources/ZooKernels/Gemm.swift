/// f32 GEMM building blocks shared by convolution and fully connected layers: packing into
/// register-tile panels and a tile driver over the selected kernel set's 6×16 micro-kernel (and the
/// AVX-512 set's 6×32 pair tile).
///
/// `C[m×n] = A[m×k] · B[k×n]`, with B packed and A packed or row-major, zero padded, so kernels
/// never branch on edges:
/// - A panels (6 rows): `a[(p*k + kk)*6 + r] = A[6p + r, kk]`, 0 for rows ≥ m.
/// - B panels (16 columns): `b[(p*k + kk)*16 + j] = B[kk, 16p + j]`, 0 for columns ≥ n.
///
/// **Accumulation order contract.** Every output element is one chain of multiply-adds over
/// `kk = 0..<k` in order, starting from +0; the bias (if any) is added after the chain, then ReLU.
/// Blocking over k only parks the partial sum in `C` (an exact f32 store and reload), so the
/// result of an element does not depend on tiling, on the batch size, or on how work is split
/// across threads — outputs are bit-for-bit identical for any thread count.
enum Gemm {
    /// Rows per register tile (A panel height): 12 accumulators, 2 B vectors, 1 broadcast A value.
    static let mr = 6
    /// Columns per register tile (B panel width): two 8-float vectors.
    static let nr = 16
    /// Depth of a k block: one 16-column B sliver (kc × 64 bytes = 16 KiB; two for the AVX-512 pair
    /// tile) stays in L1 while the A panels of the block stream past it from L2.
    static let kc = 256
    /// Largest k block of a range of B panels (bytes) that `PackedGemm.computePanels` sweeps A panel
    /// by A panel: it is read once per A panel, so it must stay in L2 — half of a Zen 3 core's.
    static let sweepBytes = 256 << 10

    /// ⌈n / width⌉.
    @inline(__always)
    static func panelCount(_ n: Int, width: Int) -> Int { (n + width - 1) / width }

    // MARK: Packing

    /// Packs the row-major `m × k` matrix `src` (row stride `lda`) into 6-row A panels at `dst`
    /// (`panelCount(m, 6) * 6 * k` floats).
    static func packA(_ src: UnsafePointer<Float>, lda: Int, m: Int, k: Int, into dst: UnsafeMutablePointer<Float>) {
        for p in 0..<panelCount(m, width: mr) {
            let panel = dst + p * k * mr
            for r in 0..<mr {
                let row = p * mr + r
                if row < m {
                    let s = src + row * lda
                    for kk in 0..<k { panel[kk * mr + r] = s[kk] }
                } else {
                    for kk in 0..<k { panel[kk * mr + r] = 0 }
                }
            }
        }
    }

    /// Packs the row-major `k × n` matrix `src` (row stride `ldb`) into 16-column B panels at `dst`
    /// (`panelCount(n, 16) * 16 * k` floats).
    static func packB(_ src: UnsafePointer<Float>, ldb: Int, k: Int, n: Int, into dst: UnsafeMutablePointer<Float>) {
        for p in 0..<panelCount(n, width: nr) {
            let panel = dst + p * k * nr, first = p * nr, width = min(nr, n - first)
            for kk in 0..<k {
                let row = panel + kk * nr
                row.update(from: src + kk * ldb + first, count: width)
                if width < nr { (row + width).initialize(repeating: 0, count: nr - width) }
            }
        }
    }

    /// `PackedGemm.aTail` for the row-major `m × k` matrix `src` (row stride `k`): its last `m % 6`
    /// rows followed by zero rows up to 6, written to `dst` (`6 · k` floats); nil (nothing written)
    /// when `m` is a whole number of 6-row panels.
    static func rowTail(_ src: UnsafePointer<Float>, m: Int, k: Int, into dst: UnsafeMutablePointer<Float>) -> UnsafePointer<Float>? {
        let full = m / mr * mr
        guard full < m else { return nil }
        dst.initialize(repeating: 0, count: mr * k)
        dst.update(from: src + full * k, count: (m - full) * k)
        return UnsafePointer(dst)
    }

    /// Packs `Bᵀ` given row-major (`n × k`, row stride `ldt`, e.g. a Linear layer's input `[batch, in]`) into
    /// 16-column B panels at `dst` (`panelCount(n, 16) * 16 * k` floats).
    static func packBTransposed(_ src: UnsafePointer<Float>, ldt: Int, n: Int, k: Int, into dst: UnsafeMutablePointer<Float>) {
        for p in 0..<panelCount(n, width: nr) {
            let panel = dst + p * k * nr
            for j in 0..<nr {
                let col = p * nr + j
                if col < n {
                    let s = src + col * ldt
                    for kk in 0..<k { panel[kk * nr + j] = s[kk] }
                } else {
                    for kk in 0..<k { panel[kk * nr + j] = 0 }
                }
            }
        }
    }
}

/// One GEMM `C = A·B (+bias)(ReLU)` whose output tiles can be computed independently. A is packed
/// 6-row panels (`aRowStride == 0`) or row-major with that row stride; B is packed.
///
/// Tiles are numbered B-panel-major (`t = np * mPanels + mp`), so a contiguous range of tiles
/// reuses each 16-column B sliver for consecutive A panels. `computeTiles` may be called for
/// disjoint tile ranges from different threads.
struct PackedGemm {
    var kernels: KernelTable
    var a: UnsafePointer<Float>
    var aRowStride: Int
    /// Row-major A only, when `m % 6 != 0`: the last `m % 6` rows followed by zero rows up to 6,
    /// same row stride, so the kernel never reads past A.
    var aTail: UnsafePointer<Float>? = nil
    var b: UnsafePointer<Float>
    var c: UnsafeMutablePointer<Float>
    var ldc: Int
    var m: Int
    var n: Int
    var k: Int
    /// Per-row bias, padded to `mPanels * 6` floats.
    var rowBias: UnsafePointer<Float>?
    /// Per-column bias, padded to `nPanels * 16` floats.
    var colBias: UnsafePointer<Float>?
    var relu: Bool
    /// With `relu`, the cap (ReLU6), in registers.
    var upper: Float = .infinity
    /// Any other activation, applied to each tile as it is finished (while it is in L1).
    var post: Activation? = nil
    /// Added to each finished tile after the bias, before `relu` and `post` (ResNet's shortcut), in
    /// the tile's registers (`TileArguments.residual`): laid out like `c` (same ldc).
    var residual: UnsafePointer<Float>? = nil
    /// Depth of a k block: `Gemm.kc` keeps a B sliver in L1; a single B panel (small n) may use the
    /// whole k, so each A row streams from memory in one pass.
    var kBlock = Gemm.kc

    var mPanels: Int { Gemm.panelCount(m, width: Gemm.mr) }
    var nPanels: Int { Gemm.panelCount(n, width: Gemm.nr) }

    /// The tile at output row `row`, B panel `np`, over the k block `k0 ..< k0 + kcur`; A at `aTile`.
    @inline(__always)
    private func arguments(_ aTile: UnsafePointer<Float>, row: Int, panel np: Int, k0: Int, kcur: Int) -> TileArguments {
        let finish = k0 + kcur == k, col = np * Gemm.nr
        var t = TileArguments(
            k: kcur, a: aTile, aRowStride: aRowStride, b: b + np * k * Gemm.nr + k0 * Gemm.nr, c: c + row * ldc + col, ldc: ldc,
            accumulate: k0 > 0, finish: finish, rowBias: rowBias.map { $0 + row }, colBias: colBias.map { $0 + col },
            relu: relu, upper: upper, activation: post)
        if finish { t.residual = residual.map { $0 + row * ldc + col } }
        return t
    }

    /// A at output row `row` (a panel or, row-major, the row or the padded tail), from k index `k0`.
    @inline(__always)
    private func aTile(row: Int, k0: Int) -> UnsafePointer<Float> {
        aRowStride == 0 ? a + row * k + k0 * Gemm.mr : (m - row < Gemm.mr ? aTail! : a + row * aRowStride) + k0
    }

    /// Computes the output tiles `tiles` (each over the whole k range, block by block). A range of
    /// whole B panels (as the convolution callers use) goes through `computePanels`.
    func computeTiles(_ tiles: Range<Int>) {
        if tiles.isEmpty { return }
        let mPanels = self.mPanels
        if tiles.lowerBound % mPanels == 0, tiles.upperBound % mPanels == 0 {
            let pair = aRowStride == 0 && tiles.count >= 2 * mPanels ? kernels.tilePair : nil
            computePanels((tiles.lowerBound / mPanels)..<(tiles.upperBound / mPanels), pair)
            return
        }
        var k0 = 0
        while k0 < k {
            let kcur = min(kBlock, k - k0)
            for t in tiles {
                let np = t / mPanels, row = (t - np * mPanels) * Gemm.mr
                tile(arguments(aTile(row: row, k0: k0), row: row, panel: np, k0: k0, kcur: kcur),
                     rows: min(Gemm.mr, m - row), cols: min(Gemm.nr, n - np * Gemm.nr))
            }
            k0 += kcur
        }
    }

    /// `computeTiles` for whole B panels `panels`, two at a time through `pair` where both are full.
    /// When the range's k block fits in `Gemm.sweepBytes`, A panel by A panel, each sweeping the
    /// whole range: the output is written 6 rows at a time, left to right, instead of every row of
    /// C being touched for each B panel (96 write streams for 96 output channels) — MobileNet-V2's
    /// 16→96 1×1 on 112² at batch 16 went 15.5 → 8.9 ms at 1 thread, Zen 4. Else B panel by B
    /// panel (each panel's k block stays in L1 while the A panels stream past). Same tiles, same
    /// per-tile arithmetic either way.
    private func computePanels(_ panels: Range<Int>, _ pair: KernelTable.PairTile?) {
        let mPanels = self.mPanels
        var k0 = 0
        while k0 < k {
            let kcur = min(kBlock, k - k0)
            // The tile (or pair) of A panel `mp` at B panel `np`; how many B panels it covered.
            @inline(__always) func compute(_ mp: Int, _ np: Int) -> Int {
                let both = pair != nil && np + 1 < panels.upperBound && n - np * Gemm.nr >= 2 * Gemm.nr
                let row = mp * Gemm.mr, rows = min(Gemm.mr, m - row), a = aTile(row: row, k0: k0)
                if let pair, both && rows == Gemm.mr {
                    let t = arguments(a, row: row, panel: np, k0: k0, kcur: kcur)
                    pair(t, t.b + k * Gemm.nr, t.c + Gemm.nr, t.colBias.map { $0 + Gemm.nr })
                } else {
                    for p in np..<(both ? np + 2 : np + 1) {
                        tile(arguments(a, row: row, panel: p, k0: k0, kcur: kcur), rows: rows, cols: min(Gemm.nr, n - p * Gemm.nr))
                    }
                }
                return both ? 2 : 1
            }
            if panels.count * kcur * Gemm.nr * MemoryLayout<Float>.stride <= Gemm.sweepBytes {
                for mp in 0..<mPanels {
                    var np = panels.lowerBound
                    while np < panels.upperBound { np += compute(mp, np) }
                }
            } else {
                var np = panels.lowerBound
                while np < panels.upperBound {
                    var step = 1
                    for mp in 0..<mPanels { step = compute(mp, np) }
                    np += step
                }
            }
            k0 += kcur
        }
    }

    /// The tiles of A panels `aPanels` × B panels `bPanels`, k block by k block and A panel by A
    /// panel: each A panel's k block stays in L1 while the B panels' (in L2: callers keep `bPanels`
    /// to a few hundred KB per k block) stream past it, two at a time through the pair tile where
    /// both are full. So A is read once per call — for GEMMs with few B panels (a Linear over a
    /// few hundred rows, a convolution of a small image), where `computeTiles` over ranges of B
    /// panels would read all of A once per range. Same per-tile arithmetic as `computeTiles`.
    func computeBlock(aPanels: Range<Int>, bPanels: Range<Int>) {
        var k0 = 0
        while k0 < k {
            let kcur = min(kBlock, k - k0)
            for mp in aPanels {
                let row = mp * Gemm.mr, rows = min(Gemm.mr, m - row), a = aTile(row: row, k0: k0)
                var np = bPanels.lowerBound
                while np < bPanels.upperBound {
                    let t = arguments(a, row: row, panel: np, k0: k0, kcur: kcur)
                    if rows == Gemm.mr && np + 1 < bPanels.upperBound && n - np * Gemm.nr >= 2 * Gemm.nr, let pair = kernels.tilePair {
                        pair(t, t.b + k * Gemm.nr, t.c + Gemm.nr, t.colBias.map { $0 + Gemm.nr })
                        np += 2
                    } else {
                        tile(t, rows: rows, cols: min(Gemm.nr, n - np * Gemm.nr))
                        np += 1
                    }
                }
            }
            k0 += kcur
        }
    }

    /// B panels per `computeBlock` call so that their k block (`kBlock` × 16 floats each) stays
    /// within about 256 KB of L2.
    var blockPanels: Int { max(1, (256 << 10) / (min(kBlock, k) * Gemm.nr * MemoryLayout<Float>.stride)) }

    /// Every tile, in parallel items of (A panel range × B panel block) — `computeBlock`'s order.
    /// Enough A ranges for `pool`'s threads to balance; B blocks of `blockPanels`.
    func computeAll(pool: ThreadPool) {
        let bBlocks = Gemm.panelCount(nPanels, width: blockPanels)
        let aParts = max(1, min(mPanels, (4 * pool.threadCount + bBlocks - 1) / bBlocks))
        let width = blockPanels
        pool.parallelFor(bBlocks * aParts) { item in
            let (block, part) = (item / aParts, item % aParts)
            let panels = (block * width)..<min(nPanels, (block + 1) * width)
            computeBlock(aPanels: evenSplit(mPanels, parts: aParts, index: part), bPanels: panels)
        }
    }

    /// A tile of at most 6×16 valid elements: full tiles go straight to the kernel; edge tiles run it
    /// on a 6×16 scratch tile on the stack (the residual's valid part copied beside it) and copy the
    /// valid part in and out. Row-major A must have 6 readable rows (callers pad), and padded bias
    /// entries must exist.
    @inline(__always)
    private func tile(_ t: TileArguments, rows: Int, cols: Int) {
        if rows == Gemm.mr && cols == Gemm.nr {
            kernels.tile(t)
            return
        }
        let size = Gemm.mr * Gemm.nr
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * size) { scratch in
            guard let s = scratch.baseAddress else { return }
            if t.accumulate {
                for r in 0..<rows { for j in 0..<cols { s[r * Gemm.nr + j] = t.c[r * t.ldc + j] } }
            }
            var edge = t
            edge.c = s
            edge.ldc = Gemm.nr
            if let residual = t.residual {
                (s + size).initialize(repeating: 0, count: size)
                for r in 0..<rows { for j in 0..<cols { s[size + r * Gemm.nr + j] = residual[r * t.ldc + j] } }
                edge.residual = UnsafePointer(s + size)
            }
            kernels.tile(edge)
            for r in 0..<rows { for j in 0..<cols { t.c[r * t.ldc + j] = s[r * Gemm.nr + j] } }
        }
    }
}

extension KernelTable {
    /// The 6×16 tile `t` at output-column panel `panel` of `panels` — together with panel
    /// `panel + 1` (B `bPanelStride` floats on, C and column bias 16 columns on) through the pair
    /// tile when the set has one and that panel exists. Returns the panels computed, 1 or 2.
    @inline(__always)
    func tileOrPair(_ t: TileArguments, panel: Int, of panels: Int, bPanelStride: Int) -> Int {
        if let tilePair, panel + 1 < panels {
            tilePair(t, t.b + bPanelStride, t.c + Gemm.nr, t.colBias.map { $0 + Gemm.nr })
            return 2
        }
        tile(t)
        return 1
    }
}
