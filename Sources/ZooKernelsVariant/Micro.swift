// Compiled three times — into ZooKernelsPortable, ZooKernelsAVX2 and ZooKernelsAVX512 (this folder's
// files are symlinked into theirs) — each with its own target CPU; see KernelTable.

import CPrefetch
import ZooKernelsBase

typealias Vec = SIMD8<Float>

/// `c += a·b`: one fused multiply-add where the target has FMA (one rounding), else a multiply
/// and an add (two). Never the software `fma` that `addProduct` becomes without FMA hardware.
@inline(__always)
func multiplyAdd(_ c: inout Vec, _ a: Vec, _ b: Vec) {
    #if ZOO_FMA
    c.addProduct(a, b)
    #else
    c = c + a * b
    #endif
}

/// Scalar `multiplyAdd`, rounding like the vector lanes.
@inline(__always)
func multiplyAdd(_ c: inout Float, _ a: Float, _ b: Float) {
    #if ZOO_FMA
    c.addProduct(a, b)
    #else
    c = c + a * b
    #endif
}

@inline(__always)
func load(_ p: UnsafePointer<Float>) -> Vec { UnsafeRawPointer(p).loadUnaligned(as: Vec.self) }

@inline(__always)
func load(_ p: UnsafeMutablePointer<Float>) -> Vec { UnsafeRawPointer(p).loadUnaligned(as: Vec.self) }

@inline(__always)
func store(_ v: Vec, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: Vec.self) }

/// ReLU that keeps NaN (like torch.relu): only lanes that compare `< 0` become +0.
@inline(__always)
func rectify(_ v: Vec) -> Vec { v.replacing(with: 0, where: v .< 0) }

/// ReLU6's upper bound, NaN kept: only lanes that compare `> upper` become `upper`.
@inline(__always)
func cap(_ v: Vec, _ upper: Vec) -> Vec { v.replacing(with: upper, where: v .> upper) }

/// How a tile reads A (`TileArguments`): at per-step offsets (`aOffsets`: the implicit GEMM's
/// planes), column-major (`aColumnStride`: pixel tiles), row-major (`aRowStride`) or as a packed
/// 6-row panel. Each tile has one non-inlined function per layout (the pair tiles one per layout
/// and row count, `PairRows`) that calls the tile's body with the layout's distances and its
/// offsets and prefetch fixed: one copy of the body per function, so the accumulators stay in
/// registers and no layout test is left in the loop. (One copy with the layout as run-time arguments, or several inlined into one function,
/// was left to the inliner and came out with accumulators spilled to the stack in some sets: the
/// AVX-512 implicit GEMM ran at a third of the pixel tiles' speed — ResNet-50's 7×7/2 stem 3.6 ms
/// instead of 1.2, Zen 4, 2 threads.)
///
/// Column-major A (a 1×1 convolution's input planes, or an im2col matrix, read in place by pixel
/// tiles) is `k` rows far apart, read a few floats per row per tile: each k step also prefetches
/// the cache line after the one it reads, which the tiles after this one read — with the input out
/// of L2 (batch 16, or a layer's first read) too many rows are in flight for the hardware
/// prefetchers (SqueezeNet's 128→16 on 55², batch 16: 0.23 → 0.07 ms per image, Zen 4, 2 threads).
enum LayoutOfA {
    case offsets(UnsafePointer<Int>)
    /// Steps `aColumnStride` apart, the tile's rows adjacent.
    case columnMajor(step: Int)
    /// Row-major rows `aRowStride` apart, steps adjacent; or a packed panel (`aRowStride == 0`):
    /// rows adjacent, steps 6 apart.
    case rows(rowStride: Int, step: Int)

    @inline(__always)
    init(_ t: TileArguments) {
        if let offsets = t.aOffsets {
            self = .offsets(offsets)
        } else if t.aColumnStride > 0 {
            self = .columnMajor(step: t.aColumnStride)
        } else {
            self = t.aRowStride == 0 ? .rows(rowStride: 1, step: 6) : .rows(rowStride: t.aRowStride, step: 1)
        }
    }
}

/// The 6×16 tile (`KernelTable.tile`): packed, row-major, column-major or offset A (`LayoutOfA`).
func tile6x16(_ t: TileArguments) {
    switch LayoutOfA(t) {
    case let .offsets(offsets): tile6x16(t, atOffsets: offsets)
    case let .columnMajor(step): tile6x16(t, columnMajorStep: step)
    case let .rows(rowStride, step): tile6x16(t, rowStride: rowStride, step: step)
    }
}

@inline(never)
private func tile6x16(_ t: TileArguments, atOffsets offsets: UnsafePointer<Int>) {
    tile6x16Body(t, rowStride: 1, step: 0, offsets: offsets, prefetch: false)
}

@inline(never)
private func tile6x16(_ t: TileArguments, columnMajorStep step: Int) {
    tile6x16Body(t, rowStride: 1, step: step, offsets: nil, prefetch: true)
}

@inline(never)
private func tile6x16(_ t: TileArguments, rowStride: Int, step: Int) {
    tile6x16Body(t, rowStride: rowStride, step: step, offsets: nil, prefetch: false)
}

/// 12 accumulators (6 rows × two 8-lane halves), 2 B vectors and 1 broadcast A value per k step.
@inline(__always)
private func tile6x16Body(_ t: TileArguments, rowStride: Int, step: Int, offsets: UnsafePointer<Int>?, prefetch: Bool) {
    let c = t.c, ldc = t.ldc
    var c00 = Vec(), c01 = Vec(), c10 = Vec(), c11 = Vec(), c20 = Vec(), c21 = Vec()
    var c30 = Vec(), c31 = Vec(), c40 = Vec(), c41 = Vec(), c50 = Vec(), c51 = Vec()
    if t.accumulate {
        c00 = load(c); c01 = load(c + 8)
        c10 = load(c + ldc); c11 = load(c + ldc + 8)
        c20 = load(c + 2 * ldc); c21 = load(c + 2 * ldc + 8)
        c30 = load(c + 3 * ldc); c31 = load(c + 3 * ldc + 8)
        c40 = load(c + 4 * ldc); c41 = load(c + 4 * ldc + 8)
        c50 = load(c + 5 * ldc); c51 = load(c + 5 * ldc + 8)
    }
    var a = t.a, b = t.b
    let r1 = rowStride, r2 = 2 * rowStride, r3 = 3 * rowStride, r4 = 4 * rowStride, r5 = 5 * rowStride
    for kk in 0..<t.k {
        if let offsets { a = t.a + offsets[kk] }
        let b0 = load(b), b1 = load(b + 8)
        var x = Vec(repeating: a[0])
        multiplyAdd(&c00, x, b0); multiplyAdd(&c01, x, b1)
        x = Vec(repeating: a[r1])
        multiplyAdd(&c10, x, b0); multiplyAdd(&c11, x, b1)
        x = Vec(repeating: a[r2])
        multiplyAdd(&c20, x, b0); multiplyAdd(&c21, x, b1)
        x = Vec(repeating: a[r3])
        multiplyAdd(&c30, x, b0); multiplyAdd(&c31, x, b1)
        x = Vec(repeating: a[r4])
        multiplyAdd(&c40, x, b0); multiplyAdd(&c41, x, b1)
        x = Vec(repeating: a[r5])
        multiplyAdd(&c50, x, b0); multiplyAdd(&c51, x, b1)
        if prefetch { zoo_prefetch(a + 16) }
        a += step
        b += 16
    }
    if t.finish {
        if let rowBias = t.rowBias {
            var x = Vec(repeating: rowBias[0]); c00 += x; c01 += x
            x = Vec(repeating: rowBias[1]); c10 += x; c11 += x
            x = Vec(repeating: rowBias[2]); c20 += x; c21 += x
            x = Vec(repeating: rowBias[3]); c30 += x; c31 += x
            x = Vec(repeating: rowBias[4]); c40 += x; c41 += x
            x = Vec(repeating: rowBias[5]); c50 += x; c51 += x
        }
        if let colBias = t.colBias {
            let b0 = load(colBias), b1 = load(colBias + 8)
            c00 += b0; c01 += b1; c10 += b0; c11 += b1; c20 += b0; c21 += b1
            c30 += b0; c31 += b1; c40 += b0; c41 += b1; c50 += b0; c51 += b1
        }
        if let r = t.residual {
            c00 += load(r); c01 += load(r + 8)
            c10 += load(r + ldc); c11 += load(r + ldc + 8)
            c20 += load(r + 2 * ldc); c21 += load(r + 2 * ldc + 8)
            c30 += load(r + 3 * ldc); c31 += load(r + 3 * ldc + 8)
            c40 += load(r + 4 * ldc); c41 += load(r + 4 * ldc + 8)
            c50 += load(r + 5 * ldc); c51 += load(r + 5 * ldc + 8)
        }
        if t.relu {
            c00 = rectify(c00); c01 = rectify(c01); c10 = rectify(c10); c11 = rectify(c11)
            c20 = rectify(c20); c21 = rectify(c21); c30 = rectify(c30); c31 = rectify(c31)
            c40 = rectify(c40); c41 = rectify(c41); c50 = rectify(c50); c51 = rectify(c51)
            if t.upper < .infinity {
                let u = Vec(repeating: t.upper)
                c00 = cap(c00, u); c01 = cap(c01, u); c10 = cap(c10, u); c11 = cap(c11, u)
                c20 = cap(c20, u); c21 = cap(c21, u); c30 = cap(c30, u); c31 = cap(c31, u)
                c40 = cap(c40, u); c41 = cap(c41, u); c50 = cap(c50, u); c51 = cap(c51, u)
            }
        }
        if let a = t.activation {
            c00 = activateVector(a, c00); c01 = activateVector(a, c01); c10 = activateVector(a, c10); c11 = activateVector(a, c11)
            c20 = activateVector(a, c20); c21 = activateVector(a, c21); c30 = activateVector(a, c30); c31 = activateVector(a, c31)
            c40 = activateVector(a, c40); c41 = activateVector(a, c41); c50 = activateVector(a, c50); c51 = activateVector(a, c51)
        }
    }
    store(c00, c); store(c01, c + 8)
    store(c10, c + ldc); store(c11, c + ldc + 8)
    store(c20, c + 2 * ldc); store(c21, c + 2 * ldc + 8)
    store(c30, c + 3 * ldc); store(c31, c + 3 * ldc + 8)
    store(c40, c + 4 * ldc); store(c41, c + 4 * ldc + 8)
    store(c50, c + 5 * ldc); store(c51, c + 5 * ldc + 8)
}

/// `KernelTable.dotRows`. Rows go four at a time (four weight streams in flight, `x` loaded once
/// per step); a row's arithmetic is the same in a group of four or alone: two 8-lane partial sums
/// over `k` in steps of 16, summed, reduced across lanes, the scalar tail, then bias and ReLU.
func dotRows(
    k: Int, x: UnsafePointer<Float>, w: UnsafePointer<Float>, ldw: Int, rows: Range<Int>,
    y: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?, relu: Bool
) {
    let body = k / 16 * 16
    @inline(__always)
    func finish(_ s0: Vec, _ s1: Vec, _ row: Int) {
        var sum = (s0 + s1).sum()
        let wr = w + row * ldw
        for kk in body..<k { multiplyAdd(&sum, wr[kk], x[kk]) }
        if let bias { sum += bias[row] }
        if relu && sum < 0 { sum = 0 }
        y[row] = sum
    }
    var row = rows.lowerBound
    while row + 4 <= rows.upperBound {
        var w0 = w + row * ldw, w1 = w0 + ldw, w2 = w1 + ldw, w3 = w2 + ldw
        var a0 = Vec(), a1 = Vec(), b0 = Vec(), b1 = Vec(), c0 = Vec(), c1 = Vec(), d0 = Vec(), d1 = Vec()
        var xp = x
        for _ in stride(from: 0, to: body, by: 16) {
            let x0 = load(xp), x1 = load(xp + 8)
            multiplyAdd(&a0, load(w0), x0); multiplyAdd(&a1, load(w0 + 8), x1)
            multiplyAdd(&b0, load(w1), x0); multiplyAdd(&b1, load(w1 + 8), x1)
            multiplyAdd(&c0, load(w2), x0); multiplyAdd(&c1, load(w2 + 8), x1)
            multiplyAdd(&d0, load(w3), x0); multiplyAdd(&d1, load(w3 + 8), x1)
            w0 += 16; w1 += 16; w2 += 16; w3 += 16; xp += 16
        }
        finish(a0, a1, row); finish(b0, b1, row + 1); finish(c0, c1, row + 2); finish(d0, d1, row + 3)
        row += 4
    }
    while row < rows.upperBound {
        var w0 = w + row * ldw
        var a0 = Vec(), a1 = Vec()
        var xp = x
        for _ in stride(from: 0, to: body, by: 16) {
            multiplyAdd(&a0, load(w0), load(xp)); multiplyAdd(&a1, load(w0 + 8), load(xp + 8))
            w0 += 16; xp += 16
        }
        finish(a0, a1, row)
        row += 1
    }
}

/// `KernelTable.scatterTile`: 8 channels at a time, the tile's 6 or 7 pixel rows (and zero rows)
/// through one 8×8 transpose, so each channel's pixels leave as a 4-float, a 2-float (and a 1-float)
/// store (a scalar copy per float cost as much as the tile for short reductions); channels past the
/// last 8, and the channels of a part tile, the same way through a gathered vector.
func scatterTile(_ tile: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, _ channels: Int, _ count: Int,
                 _ planeStride: Int, _ shortcut: UnsafePointer<Float>?, _ post: Activation?) {
    guard count == 6 || count == 7 else {
        for c in 0..<channels {
            let y = output + c * planeStride
            var v = Vec(), r = Vec()
            for p in 0..<count { v[p] = tile[p * 32 + c] }
            if let shortcut {
                for p in 0..<count { r[p] = shortcut[c * planeStride + p] }
                v += r
                if let post { v = activateVector(post, v) }
            }
            for p in 0..<count { y[p] = v[p] }
        }
        return
    }
    let seven = count == 7
    @inline(__always) func loadRow(_ p: UnsafePointer<Float>) -> Vec { seven ? loadSeven(p) : loadSix(p) }
    @inline(__always) func storeRow(_ v: Vec, _ p: UnsafeMutablePointer<Float>) {
        storeSix(v, p)
        if seven { p[6] = v[6] }
    }
    var c = 0
    while c + 8 <= channels {
        let s = tile + c
        var v = (load(s), load(s + 32), load(s + 64), load(s + 96), load(s + 128), load(s + 160), seven ? load(s + 192) : Vec(), Vec())
        transpose8(&v)
        let y = output + c * planeStride
        if let shortcut {
            let r = shortcut + c * planeStride
            v.0 += loadRow(r); v.1 += loadRow(r + planeStride); v.2 += loadRow(r + 2 * planeStride)
            v.3 += loadRow(r + 3 * planeStride); v.4 += loadRow(r + 4 * planeStride); v.5 += loadRow(r + 5 * planeStride)
            v.6 += loadRow(r + 6 * planeStride); v.7 += loadRow(r + 7 * planeStride)
            if let post {
                v = (activateVector(post, v.0), activateVector(post, v.1), activateVector(post, v.2), activateVector(post, v.3),
                     activateVector(post, v.4), activateVector(post, v.5), activateVector(post, v.6), activateVector(post, v.7))
            }
        }
        storeRow(v.0, y); storeRow(v.1, y + planeStride); storeRow(v.2, y + 2 * planeStride); storeRow(v.3, y + 3 * planeStride)
        storeRow(v.4, y + 4 * planeStride); storeRow(v.5, y + 5 * planeStride); storeRow(v.6, y + 6 * planeStride)
        storeRow(v.7, y + 7 * planeStride)
        c += 8
    }
    while c < channels {
        var v = Vec(tile[c], tile[32 + c], tile[64 + c], tile[96 + c], tile[128 + c], tile[160 + c], seven ? tile[192 + c] : 0, 0)
        if let shortcut {
            v += loadRow(shortcut + c * planeStride)
            if let post { v = activateVector(post, v) }
        }
        storeRow(v, output + c * planeStride)
        c += 1
    }
}

/// `p[0..<6]` in lanes 0–5, zeros in 6 and 7; reads nothing past `p[5]`.
@_transparent
func loadSix(_ p: UnsafePointer<Float>) -> Vec {
    Vec(lowHalf: UnsafeRawPointer(p).loadUnaligned(as: SIMD4<Float>.self),
        highHalf: SIMD4(lowHalf: UnsafeRawPointer(p + 4).loadUnaligned(as: SIMD2<Float>.self), highHalf: SIMD2()))
}

/// `p[0..<7]` in lanes 0–6, zero in 7; reads nothing past `p[6]`.
@_transparent
func loadSeven(_ p: UnsafePointer<Float>) -> Vec {
    Vec(lowHalf: UnsafeRawPointer(p).loadUnaligned(as: SIMD4<Float>.self),
        highHalf: SIMD4(lowHalf: UnsafeRawPointer(p + 4).loadUnaligned(as: SIMD2<Float>.self), highHalf: SIMD2(p[6], 0)))
}

/// Lanes 0–5 of `v` into `p[0..<6]`; writes nothing past `p[5]`.
@_transparent
func storeSix(_ v: Vec, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v.lowHalf, as: SIMD4<Float>.self)
    UnsafeMutableRawPointer(p + 4).storeBytes(of: v.highHalf.lowHalf, as: SIMD2<Float>.self)
}

#if ZOO_AVX512
/// `activateVector` on both halves of 16 lanes, inlined into the pair tile's epilogue (an outlined
/// call per accumulator serializes the activations' long dependency chains).
@_transparent
func activate16(_ a: Activation, _ v: SIMD16<Float>) -> SIMD16<Float> {
    SIMD16(lowHalf: activateVector(a, v.lowHalf), highHalf: activateVector(a, v.highHalf))
}

/// `KernelTable.tilePair` (AVX-512 only: it needs 32 vector registers): the 6×16 tiles over two
/// adjacent B panels at once — 6×32 outputs, 24 accumulator halves — so each broadcast A value
/// feeds twice the multiply-adds and A is read half as often. A is packed, row-major, column-major
/// or at offsets (`LayoutOfA`). Each output is the same chain of fused multiply-adds as in
/// `tile6x16`, so results are bit-identical to it.
func tile6x32(_ t: TileArguments, _ bNext: UnsafePointer<Float>, _ cNext: UnsafeMutablePointer<Float>,
              _ colBiasNext: UnsafePointer<Float>?) {
    pairTile(SixRows.self, t, bNext, cNext, colBiasNext)
}

/// `KernelTable.tilePairSeven` (AVX-512 only): `tile6x32` over 7 rows of A and C — 28 accumulator
/// halves — for pixel tiles of images whose pixel count 7 divides, where 6-row tiles leave a part
/// tile (7×7: 49 = 8·6 + 1). A is column-major, row-major or at offsets, not a packed panel (whose
/// rows are 6). The same chain per output as `tile6x16`.
func tile7x32(_ t: TileArguments, _ bNext: UnsafePointer<Float>, _ cNext: UnsafeMutablePointer<Float>,
              _ colBiasNext: UnsafePointer<Float>?) {
    precondition(t.aOffsets != nil || t.aRowStride > 0 || t.aColumnStride > 0, "tile7x32: A must not be a packed 6-row panel")
    pairTile(SevenRows.self, t, bNext, cNext, colBiasNext)
}

/// The pair tile's row count as a type, so that each of `pairTile`'s per-layout functions is
/// specialized once per count with `seven` a constant in it.
protocol PairRows { static var seven: Bool { get } }
enum SixRows: PairRows { static var seven: Bool { false } }
enum SevenRows: PairRows { static var seven: Bool { true } }

/// A's layout (`LayoutOfA`) into one non-inlined function per layout and row count.
@inline(__always)
private func pairTile<Rows: PairRows>(_: Rows.Type, _ t: TileArguments, _ bNext: UnsafePointer<Float>,
                                      _ cNext: UnsafeMutablePointer<Float>, _ colBiasNext: UnsafePointer<Float>?) {
    switch LayoutOfA(t) {
    case let .offsets(offsets): pairTile(Rows.self, t, bNext, cNext, colBiasNext, atOffsets: offsets)
    case let .columnMajor(step): pairTile(Rows.self, t, bNext, cNext, colBiasNext, columnMajorStep: step)
    case let .rows(rowStride, step): pairTile(Rows.self, t, bNext, cNext, colBiasNext, rowStride: rowStride, step: step)
    }
}

@inline(never)
private func pairTile<Rows: PairRows>(_: Rows.Type, _ t: TileArguments, _ bNext: UnsafePointer<Float>,
                                      _ cNext: UnsafeMutablePointer<Float>, _ colBiasNext: UnsafePointer<Float>?,
                                      atOffsets offsets: UnsafePointer<Int>) {
    pairTileBody(t, bNext, cNext, colBiasNext, rowStride: 1, step: 0, offsets: offsets, seven: Rows.seven, prefetch: false)
}

@inline(never)
private func pairTile<Rows: PairRows>(_: Rows.Type, _ t: TileArguments, _ bNext: UnsafePointer<Float>,
                                      _ cNext: UnsafeMutablePointer<Float>, _ colBiasNext: UnsafePointer<Float>?,
                                      columnMajorStep step: Int) {
    pairTileBody(t, bNext, cNext, colBiasNext, rowStride: 1, step: step, offsets: nil, seven: Rows.seven, prefetch: true)
}

@inline(never)
private func pairTile<Rows: PairRows>(_: Rows.Type, _ t: TileArguments, _ bNext: UnsafePointer<Float>,
                                      _ cNext: UnsafeMutablePointer<Float>, _ colBiasNext: UnsafePointer<Float>?,
                                      rowStride: Int, step: Int) {
    pairTileBody(t, bNext, cNext, colBiasNext, rowStride: rowStride, step: step, offsets: nil, seven: Rows.seven, prefetch: false)
}

/// The pair tile over 6 rows, or 7 with `seven` (a constant at each call, so the seventh row's code
/// is only in `tile7x32`).
@inline(__always)
private func pairTileBody(_ t: TileArguments, _ bNext: UnsafePointer<Float>, _ cNext: UnsafeMutablePointer<Float>,
                          _ colBiasNext: UnsafePointer<Float>?, rowStride: Int, step: Int, offsets: UnsafePointer<Int>?,
                          seven: Bool, prefetch: Bool) {
    typealias V = SIMD16<Float>
    @inline(__always) func load16(_ p: UnsafePointer<Float>) -> V { UnsafeRawPointer(p).loadUnaligned(as: V.self) }
    @inline(__always) func load16(_ p: UnsafeMutablePointer<Float>) -> V { UnsafeRawPointer(p).loadUnaligned(as: V.self) }
    @inline(__always) func store16(_ v: V, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self) }
    @inline(__always) func rectify16(_ v: V) -> V { v.replacing(with: 0, where: v .< 0) }
    let c = t.c, d = cNext, ldc = t.ldc
    var c0 = V(), c1 = V(), c2 = V(), c3 = V(), c4 = V(), c5 = V(), c6 = V()
    var d0 = V(), d1 = V(), d2 = V(), d3 = V(), d4 = V(), d5 = V(), d6 = V()
    if t.accumulate {
        c0 = load16(c); c1 = load16(c + ldc); c2 = load16(c + 2 * ldc)
        c3 = load16(c + 3 * ldc); c4 = load16(c + 4 * ldc); c5 = load16(c + 5 * ldc)
        d0 = load16(d); d1 = load16(d + ldc); d2 = load16(d + 2 * ldc)
        d3 = load16(d + 3 * ldc); d4 = load16(d + 4 * ldc); d5 = load16(d + 5 * ldc)
        if seven { c6 = load16(c + 6 * ldc); d6 = load16(d + 6 * ldc) }
    }
    var a = t.a, b = t.b, e = bNext
    let r1 = rowStride, r2 = 2 * rowStride, r3 = 3 * rowStride, r4 = 4 * rowStride, r5 = 5 * rowStride, r6 = 6 * rowStride
    for kk in 0..<t.k {
        if let offsets { a = t.a + offsets[kk] }
        let b0 = load16(b), e0 = load16(e)
        var x = V(repeating: a[0])
        c0.addProduct(x, b0); d0.addProduct(x, e0)
        x = V(repeating: a[r1])
        c1.addProduct(x, b0); d1.addProduct(x, e0)
        x = V(repeating: a[r2])
        c2.addProduct(x, b0); d2.addProduct(x, e0)
        x = V(repeating: a[r3])
        c3.addProduct(x, b0); d3.addProduct(x, e0)
        x = V(repeating: a[r4])
        c4.addProduct(x, b0); d4.addProduct(x, e0)
        x = V(repeating: a[r5])
        c5.addProduct(x, b0); d5.addProduct(x, e0)
        if seven {
            x = V(repeating: a[r6])
            c6.addProduct(x, b0); d6.addProduct(x, e0)
        }
        if prefetch { zoo_prefetch(a + 16) }
        a += step
        b += 16
        e += 16
    }
    if t.finish {
        if let rowBias = t.rowBias {
            var x = V(repeating: rowBias[0]); c0 += x; d0 += x
            x = V(repeating: rowBias[1]); c1 += x; d1 += x
            x = V(repeating: rowBias[2]); c2 += x; d2 += x
            x = V(repeating: rowBias[3]); c3 += x; d3 += x
            x = V(repeating: rowBias[4]); c4 += x; d4 += x
            x = V(repeating: rowBias[5]); c5 += x; d5 += x
            if seven { x = V(repeating: rowBias[6]); c6 += x; d6 += x }
        }
        if let colBias = t.colBias, let colBiasNext {
            let x = load16(colBias), y = load16(colBiasNext)
            c0 += x; c1 += x; c2 += x; c3 += x; c4 += x; c5 += x
            d0 += y; d1 += y; d2 += y; d3 += y; d4 += y; d5 += y
            if seven { c6 += x; d6 += y }
        }
        if let r = t.residual {
            // Laid out like C: the second panel's rows sit where `cNext` sits relative to `c`.
            let s = UnsafePointer<Float>(r) + (d - c)
            c0 += load16(r); c1 += load16(r + ldc); c2 += load16(r + 2 * ldc)
            c3 += load16(r + 3 * ldc); c4 += load16(r + 4 * ldc); c5 += load16(r + 5 * ldc)
            d0 += load16(s); d1 += load16(s + ldc); d2 += load16(s + 2 * ldc)
            d3 += load16(s + 3 * ldc); d4 += load16(s + 4 * ldc); d5 += load16(s + 5 * ldc)
            if seven { c6 += load16(r + 6 * ldc); d6 += load16(s + 6 * ldc) }
        }
        if t.relu {
            c0 = rectify16(c0); c1 = rectify16(c1); c2 = rectify16(c2); c3 = rectify16(c3); c4 = rectify16(c4); c5 = rectify16(c5)
            d0 = rectify16(d0); d1 = rectify16(d1); d2 = rectify16(d2); d3 = rectify16(d3); d4 = rectify16(d4); d5 = rectify16(d5)
            if seven { c6 = rectify16(c6); d6 = rectify16(d6) }
            if t.upper < .infinity {
                let u = V(repeating: t.upper)
                @inline(__always) func cap16(_ v: V) -> V { v.replacing(with: u, where: v .> u) }
                c0 = cap16(c0); c1 = cap16(c1); c2 = cap16(c2); c3 = cap16(c3); c4 = cap16(c4); c5 = cap16(c5)
                d0 = cap16(d0); d1 = cap16(d1); d2 = cap16(d2); d3 = cap16(d3); d4 = cap16(d4); d5 = cap16(d5)
                if seven { c6 = cap16(c6); d6 = cap16(d6) }
            }
        }
        if let a = t.activation {
            c0 = activate16(a, c0); c1 = activate16(a, c1); c2 = activate16(a, c2); c3 = activate16(a, c3)
            c4 = activate16(a, c4); c5 = activate16(a, c5); d0 = activate16(a, d0); d1 = activate16(a, d1)
            d2 = activate16(a, d2); d3 = activate16(a, d3); d4 = activate16(a, d4); d5 = activate16(a, d5)
            if seven { c6 = activate16(a, c6); d6 = activate16(a, d6) }
        }
    }
    store16(c0, c); store16(c1, c + ldc); store16(c2, c + 2 * ldc)
    store16(c3, c + 3 * ldc); store16(c4, c + 4 * ldc); store16(c5, c + 5 * ldc)
    store16(d0, d); store16(d1, d + ldc); store16(d2, d + 2 * ldc)
    store16(d3, d + 3 * ldc); store16(d4, d + 4 * ldc); store16(d5, d + 5 * ldc)
    if seven { store16(c6, c + 6 * ldc); store16(d6, d + 6 * ldc) }
}
#endif
