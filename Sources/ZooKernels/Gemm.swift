/// f32 GEMM building blocks shared by convolution and fully connected layers: packing into
/// register-tile panels, the 6×16 AVX2/FMA micro-kernel, a 1-row GEMV kernel, and a tile driver.
///
/// `C[m×n] = A[m×k] · B[k×n]`, with both operands packed, zero padded, so kernels never branch on
/// edges:
/// - A panels (6 rows): `a[(p*k + kk)*6 + r] = A[6p + r, kk]`, 0 for rows ≥ m.
/// - B panels (16 columns): `b[(p*k + kk)*16 + j] = B[kk, 16p + j]`, 0 for columns ≥ n.
///
/// **Accumulation order contract.** Every output element is one chain of fused multiply-adds over
/// `kk = 0..<k` in order, starting from +0; the bias (if any) is added after the chain, then ReLU.
/// Blocking over k only parks the partial sum in `C` (an exact f32 store and reload), so the
/// result of an element does not depend on tiling, on the batch size, or on how work is split
/// across threads — outputs are bit-for-bit identical for any thread count.
enum Gemm {
    /// Rows per register tile (A panel height). 6×16 uses 12 of the 16 AVX2 registers as
    /// accumulators, 2 for the B row and 1 for the broadcast A value.
    static let mr = 6
    /// Columns per register tile (B panel width): two 8-float vectors.
    static let nr = 16
    /// Depth of a k block: one 16-column B sliver (kc × 64 bytes = 16 KiB) stays in L1 while the
    /// A panels of the block stream past it from L2.
    static let kc = 256

    typealias Vec = SIMD8<Float>

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

    /// Packs `Bᵀ` given row-major (`n × k`, row stride `ldt`, e.g. Linear weights `[out, in]`) into
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

    // MARK: Micro-kernels

    /// One 6×16 register tile: `C (+)= A·B` over `k` steps, optionally finishing with bias and ReLU.
    ///
    /// - `accumulate`: start from the values in `C` (a previous k block) instead of +0.
    /// - `finish`: this is the last k block; add `rowBias[0..<6]` / `colBias[0..<16]` and apply ReLU.
    /// `a` and `b` point into packed panels at the block's first k; `c` has row stride `ldc`.
    @inline(never)
    static func kernel6x16(
        k: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>, ldc: Int,
        accumulate: Bool, finish: Bool, rowBias: UnsafePointer<Float>?, colBias: UnsafePointer<Float>?, relu: Bool
    ) {
        var c00 = Vec(), c01 = Vec(), c10 = Vec(), c11 = Vec(), c20 = Vec(), c21 = Vec()
        var c30 = Vec(), c31 = Vec(), c40 = Vec(), c41 = Vec(), c50 = Vec(), c51 = Vec()
        if accumulate {
            c00 = load(c); c01 = load(c + 8)
            c10 = load(c + ldc); c11 = load(c + ldc + 8)
            c20 = load(c + 2 * ldc); c21 = load(c + 2 * ldc + 8)
            c30 = load(c + 3 * ldc); c31 = load(c + 3 * ldc + 8)
            c40 = load(c + 4 * ldc); c41 = load(c + 4 * ldc + 8)
            c50 = load(c + 5 * ldc); c51 = load(c + 5 * ldc + 8)
        }
        var a = a, b = b
        for _ in 0..<k {
            let b0 = load(b), b1 = load(b + 8)
            var x = Vec(repeating: a[0])
            c00.addProduct(x, b0); c01.addProduct(x, b1)
            x = Vec(repeating: a[1])
            c10.addProduct(x, b0); c11.addProduct(x, b1)
            x = Vec(repeating: a[2])
            c20.addProduct(x, b0); c21.addProduct(x, b1)
            x = Vec(repeating: a[3])
            c30.addProduct(x, b0); c31.addProduct(x, b1)
            x = Vec(repeating: a[4])
            c40.addProduct(x, b0); c41.addProduct(x, b1)
            x = Vec(repeating: a[5])
            c50.addProduct(x, b0); c51.addProduct(x, b1)
            a += mr
            b += nr
        }
        if finish {
            if let rowBias {
                var x = Vec(repeating: rowBias[0]); c00 += x; c01 += x
                x = Vec(repeating: rowBias[1]); c10 += x; c11 += x
                x = Vec(repeating: rowBias[2]); c20 += x; c21 += x
                x = Vec(repeating: rowBias[3]); c30 += x; c31 += x
                x = Vec(repeating: rowBias[4]); c40 += x; c41 += x
                x = Vec(repeating: rowBias[5]); c50 += x; c51 += x
            }
            if let colBias {
                let b0 = load(colBias), b1 = load(colBias + 8)
                c00 += b0; c01 += b1; c10 += b0; c11 += b1; c20 += b0; c21 += b1
                c30 += b0; c31 += b1; c40 += b0; c41 += b1; c50 += b0; c51 += b1
            }
            if relu {
                c00 = rectify(c00); c01 = rectify(c01); c10 = rectify(c10); c11 = rectify(c11)
                c20 = rectify(c20); c21 = rectify(c21); c30 = rectify(c30); c31 = rectify(c31)
                c40 = rectify(c40); c41 = rectify(c41); c50 = rectify(c50); c51 = rectify(c51)
            }
        }
        store(c00, c); store(c01, c + 8)
        store(c10, c + ldc); store(c11, c + ldc + 8)
        store(c20, c + 2 * ldc); store(c21, c + 2 * ldc + 8)
        store(c30, c + 3 * ldc); store(c31, c + 3 * ldc + 8)
        store(c40, c + 4 * ldc); store(c41, c + 4 * ldc + 8)
        store(c50, c + 5 * ldc); store(c51, c + 5 * ldc + 8)
    }

    /// A tile of at most 6×16 valid elements at `c`: full tiles go straight to `kernel6x16`; edge
    /// tiles run it on a 6×16 scratch tile on the stack and copy the valid part in and out.
    /// Padded bias entries must exist (`rowBias` 6, `colBias` 16 readable floats).
    @inline(__always)
    static func tile(
        k: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>, ldc: Int,
        rows: Int, cols: Int, accumulate: Bool, finish: Bool,
        rowBias: UnsafePointer<Float>?, colBias: UnsafePointer<Float>?, relu: Bool
    ) {
        if rows == mr && cols == nr {
            kernel6x16(k: k, a: a, b: b, c: c, ldc: ldc, accumulate: accumulate, finish: finish,
                       rowBias: rowBias, colBias: colBias, relu: relu)
            return
        }
        withUnsafeTemporaryAllocation(of: Float.self, capacity: mr * nr) { scratch in
            guard let t = scratch.baseAddress else { return }
            if accumulate {
                for r in 0..<rows { for j in 0..<cols { t[r * nr + j] = c[r * ldc + j] } }
            }
            kernel6x16(k: k, a: a, b: b, c: t, ldc: nr, accumulate: accumulate, finish: finish,
                       rowBias: rowBias, colBias: colBias, relu: relu)
            for r in 0..<rows { for j in 0..<cols { c[r * ldc + j] = t[r * nr + j] } }
        }
    }

    /// `y[16p + j] = Σ_kk x[kk]·B[kk, 16p + j] (+ bias) (ReLU)` for the B panels in `panels`
    /// (one row of A, e.g. a batch-1 Linear layer). Four panels are streamed at once so each weight
    /// is read exactly once. Same accumulation order as `kernel6x16`, hence identical results.
    /// `colBias` must be padded to whole panels; only the `n` valid outputs are written.
    static func gemvRow(
        k: Int, x: UnsafePointer<Float>, b: UnsafePointer<Float>, panels: Range<Int>, n: Int,
        y: UnsafeMutablePointer<Float>, colBias: UnsafePointer<Float>?, relu: Bool
    ) {
        var p = panels.lowerBound
        while p + 4 <= panels.upperBound && (p + 4) * nr <= n {
            gemv4Panels(k: k, x: x, b: b + p * k * nr, y: y + p * nr, colBias: colBias.map { $0 + p * nr }, relu: relu)
            p += 4
        }
        while p < panels.upperBound {
            var w = b + p * k * nr
            var s0 = Vec(), s1 = Vec()
            for kk in 0..<k {
                let xv = Vec(repeating: x[kk])
                s0.addProduct(xv, load(w)); s1.addProduct(xv, load(w + 8))
                w += nr
            }
            if let colBias { s0 += load(colBias + p * nr); s1 += load(colBias + p * nr + 8) }
            if relu { s0 = rectify(s0); s1 = rectify(s1) }
            let valid = min(nr, n - p * nr)
            for j in 0..<valid { y[p * nr + j] = j < 8 ? s0[j] : s1[j - 8] }
            p += 1
        }
    }

    /// Four consecutive full B panels (64 outputs) of `gemvRow`.
    @inline(never)
    private static func gemv4Panels(
        k: Int, x: UnsafePointer<Float>, b: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
        colBias: UnsafePointer<Float>?, relu: Bool
    ) {
        let stride = k * nr
        var w0 = b, w1 = b + stride, w2 = b + 2 * stride, w3 = b + 3 * stride
        var s0 = Vec(), s1 = Vec(), s2 = Vec(), s3 = Vec(), s4 = Vec(), s5 = Vec(), s6 = Vec(), s7 = Vec()
        for kk in 0..<k {
            let xv = Vec(repeating: x[kk])
            s0.addProduct(xv, load(w0)); s1.addProduct(xv, load(w0 + 8))
            s2.addProduct(xv, load(w1)); s3.addProduct(xv, load(w1 + 8))
            s4.addProduct(xv, load(w2)); s5.addProduct(xv, load(w2 + 8))
            s6.addProduct(xv, load(w3)); s7.addProduct(xv, load(w3 + 8))
            w0 += nr; w1 += nr; w2 += nr; w3 += nr
        }
        if let colBias {
            s0 += load(colBias); s1 += load(colBias + 8); s2 += load(colBias + 16); s3 += load(colBias + 24)
            s4 += load(colBias + 32); s5 += load(colBias + 40); s6 += load(colBias + 48); s7 += load(colBias + 56)
        }
        if relu {
            s0 = rectify(s0); s1 = rectify(s1); s2 = rectify(s2); s3 = rectify(s3)
            s4 = rectify(s4); s5 = rectify(s5); s6 = rectify(s6); s7 = rectify(s7)
        }
        store(s0, y); store(s1, y + 8); store(s2, y + 16); store(s3, y + 24)
        store(s4, y + 32); store(s5, y + 40); store(s6, y + 48); store(s7, y + 56)
    }

    // MARK: Vector helpers

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> Vec { UnsafeRawPointer(p).loadUnaligned(as: Vec.self) }

    @inline(__always)
    static func load(_ p: UnsafeMutablePointer<Float>) -> Vec { UnsafeRawPointer(p).loadUnaligned(as: Vec.self) }

    @inline(__always)
    static func store(_ v: Vec, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: Vec.self)
    }

    /// ReLU that keeps NaN (like torch.relu): only lanes that compare `< 0` become +0.
    @inline(__always)
    static func rectify(_ v: Vec) -> Vec { v.replacing(with: 0, where: v .< 0) }
}

/// One packed GEMM `C = A·B (+bias)(ReLU)` whose output tiles can be computed independently.
///
/// Tiles are numbered B-panel-major (`t = np * mPanels + mp`), so a contiguous range of tiles
/// reuses each 16-column B sliver for consecutive A panels. `computeTiles` may be called for
/// disjoint tile ranges from different threads.
struct PackedGemm {
    var a: UnsafePointer<Float>
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

    var mPanels: Int { Gemm.panelCount(m, width: Gemm.mr) }
    var nPanels: Int { Gemm.panelCount(n, width: Gemm.nr) }
    var tileCount: Int { mPanels * nPanels }

    /// Computes the output tiles `tiles` (each over the whole k range, block by block).
    func computeTiles(_ tiles: Range<Int>) {
        if tiles.isEmpty { return }
        let mPanels = self.mPanels
        var k0 = 0
        while k0 < k {
            let kcur = min(Gemm.kc, k - k0)
            let finish = k0 + kcur == k
            for t in tiles {
                let np = t / mPanels, mp = t - np * mPanels
                let row = mp * Gemm.mr, col = np * Gemm.nr
                Gemm.tile(
                    k: kcur, a: a + mp * k * Gemm.mr + k0 * Gemm.mr, b: b + np * k * Gemm.nr + k0 * Gemm.nr,
                    c: c + row * ldc + col, ldc: ldc,
                    rows: min(Gemm.mr, m - row), cols: min(Gemm.nr, n - col),
                    accumulate: k0 > 0, finish: finish,
                    rowBias: rowBias.map { $0 + row }, colBias: colBias.map { $0 + col }, relu: relu)
            }
            k0 += kcur
        }
    }
}

/// Splits `total` items into `parts` contiguous, near-equal ranges; returns range `index`.
@inline(__always)
func evenSplit(_ total: Int, parts: Int, index: Int) -> Range<Int> {
    (total * index / parts)..<(total * (index + 1) / parts)
}
