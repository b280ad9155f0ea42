import ZooKernelsBase

typealias Vec16 = SIMD16<Float>

@inline(__always)
private func load16(_ p: UnsafePointer<Float>) -> Vec16 { UnsafeRawPointer(p).loadUnaligned(as: Vec16.self) }

@inline(__always)
private func load16(_ p: UnsafeMutablePointer<Float>) -> Vec16 { UnsafeRawPointer(p).loadUnaligned(as: Vec16.self) }

@inline(__always)
private func store16(_ v: Vec16, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: Vec16.self) }

/// The 1-D transforms of one Winograd algorithm on lane vectors (16 tiles at once), written out
/// with their constant coefficients. `x` holds α vectors of 16 floats, vector i at `x + i·xs·16`;
/// `y` receives α (input) or m (output) vectors at stride `ys·16`.
protocol Winograd1D {
    static var alpha: Int { get }
    static var m: Int { get }
    /// `y = Bᵀ·x`.
    static func input(_ x: UnsafePointer<Float>, _ xs: Int, _ y: UnsafeMutablePointer<Float>, _ ys: Int)
    /// `y = Aᵀ·x`.
    static func output(_ x: UnsafePointer<Float>, _ xs: Int, _ y: UnsafeMutablePointer<Float>, _ ys: Int)
}

/// F(2, 3): `Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, −1, 0, 1]]`,
/// `Aᵀ = [[1, 1, 1, 0], [0, 1, −1, 1]]`.
enum F2x3: Winograd1D {
    static var alpha: Int { 4 }
    static var m: Int { 2 }
    /// `Bᵀ·(d0, d1, d2, d3)` on vectors in registers.
    @inline(__always)
    static func input(_ d0: Vec16, _ d1: Vec16, _ d2: Vec16, _ d3: Vec16) -> (Vec16, Vec16, Vec16, Vec16) {
        (d0 - d2, d1 + d2, d2 - d1, d3 - d1)
    }
    @inline(__always)
    static func input(_ x: UnsafePointer<Float>, _ xs: Int, _ y: UnsafeMutablePointer<Float>, _ ys: Int) {
        let s = 16 * xs, t = 16 * ys
        let v = input(load16(x), load16(x + s), load16(x + 2 * s), load16(x + 3 * s))
        store16(v.0, y); store16(v.1, y + t); store16(v.2, y + 2 * t); store16(v.3, y + 3 * t)
    }
    @inline(__always)
    static func output(_ x: UnsafePointer<Float>, _ xs: Int, _ y: UnsafeMutablePointer<Float>, _ ys: Int) {
        let s = 16 * xs
        let m1 = load16(x + s), m2 = load16(x + 2 * s)
        store16(load16(x) + m1 + m2, y); store16(m1 - m2 + load16(x + 3 * s), y + 16 * ys)
    }
}

/// F(2, 5): `Bᵀ` rows `[4, 0, −5, 0, 1, 0]`, `[0, 4, 4, −1, −1, 0]`, `[0, −4, 4, 1, −1, 0]`,
/// `[0, −2, −1, 2, 1, 0]`, `[0, 2, −1, −2, 1, 0]`, `[0, 4, 0, −5, 0, 1]`;
/// `Aᵀ = [[1, 1, 1, 1, 1, 0], [0, 1, −1, 2, −2, 1]]`.
enum F2x5: Winograd1D {
    static var alpha: Int { 6 }
    static var m: Int { 2 }
    @inline(__always)
    static func input(_ x: UnsafePointer<Float>, _ xs: Int, _ y: UnsafeMutablePointer<Float>, _ ys: Int) {
        let s = 16 * xs, t = 16 * ys
        let d0 = load16(x), d1 = load16(x + s), d2 = load16(x + 2 * s)
        let d3 = load16(x + 3 * s), d4 = load16(x + 4 * s), d5 = load16(x + 5 * s)
        store16(4 * d0 - 5 * d2 + d4, y)
        store16(4 * (d1 + d2) - (d3 + d4), y + t)
        store16(4 * (d2 - d1) + (d3 - d4), y + 2 * t)
        store16(2 * (d3 - d1) + (d4 - d2), y + 3 * t)
        store16(2 * (d1 - d3) + (d4 - d2), y + 4 * t)
        store16(4 * d1 - 5 * d3 + d5, y + 5 * t)
    }
    @inline(__always)
    static func output(_ x: UnsafePointer<Float>, _ xs: Int, _ y: UnsafeMutablePointer<Float>, _ ys: Int) {
        let s = 16 * xs
        let m1 = load16(x + s), m2 = load16(x + 2 * s), m3 = load16(x + 3 * s), m4 = load16(x + 4 * s)
        store16(load16(x) + m1 + m2 + m3 + m4, y)
        store16((m1 - m2) + 2 * (m3 - m4) + load16(x + 5 * s), y + 16 * ys)
    }
}

/// `KernelTable.winogradInput`: for the 16 tiles of one panel (one per lane) and `channels`
/// consecutive input channels, the input transform `V = Bᵀ·d·B` of each tile's α×α patch `d`
/// (zeros outside the input). `input` is channel 0's plane in image 0; position ξ = α·row + column
/// of channel c goes to `v[ξ·positionStride + c·channelStride ..< +16]`. Lanes past the last tile
/// are zero. Reads stay inside `panel.readable`.
func winogradInput(_ g: WinogradGeometry, _ panel: WinogradPanel, _ input: UnsafePointer<Float>, _ v: UnsafeMutablePointer<Float>) {
    if g.r == 3 {
        winogradInput(F2x3.self, g, panel, input, v)
    } else {
        winogradInput(F2x5.self, g, panel, input, v)
    }
}

private let laneIndex = SIMD16<Int32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)

/// The patches are built with vector loads: the panel's tiles fall into segments — runs of
/// consecutive tiles in one tile row of one image — and since tiles are m = 2 columns apart, lane
/// j's patch column c in a segment is element 2j + c of a 32-float window of the input row, so
/// the even and odd halves of windows at columns 0, 2, 4 of the patch give all α columns for 16
/// lanes at once. Each segment's lanes are merged in by mask, together with a mask that zeroes
/// the window's columns outside the row (padding). A window that would cross `panel.readable`
/// (the tensor's first or last floats) is filled column by column instead.
@inline(__always)
private func winogradInput<T: Winograd1D>(
    _: T.Type, _ g: WinogradGeometry, _ panel: WinogradPanel, _ input: UnsafePointer<Float>, _ v: UnsafeMutablePointer<Float>
) {
    typealias Mask = SIMDMask<SIMD16<Int32>>
    precondition(T.m == 2, "the window deinterleave needs tiles 2 columns apart")
    precondition(panel.tiles <= 16, "one tile per lane")
    let plane = g.inHeight * g.inWidth, w = g.inWidth
    let alpha = T.alpha, area = alpha * alpha, windows = alpha / 2
    withUnsafeTemporaryAllocation(of: Int.self, capacity: 3 * 16) { info in
        withUnsafeTemporaryAllocation(of: Mask.self, capacity: 16 * 2 * windows) { maskBuffer in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: (2 * area + alpha) * 16) { scratch in
                guard let segment = info.baseAddress, let masks = maskBuffer.baseAddress, let patch = scratch.baseAddress else { return }
                let rowStart = segment, topRow = segment + 16, baseColumn = segment + 32
                let rowsDone = patch + area * 16, row = rowsDone + area * 16
                // Per segment: offset of its patch row 0 at lane 0's column 0, that row's index
                // (may lie in the padding), lane 0's column 0; per window, the even and odd masks.
                var segments = 0, j = 0
                let end = min(panel.tiles, g.tiles - panel.firstTile), width = Int32(clamping: w)
                while j < end {
                    let t = panel.firstTile + j
                    let image = t / g.tilesPerImage, r = t - image * g.tilesPerImage
                    let ty = r / g.tilesW, tx = r - ty * g.tilesW
                    let n = min(end - j, g.tilesW - tx)
                    let top = 2 * ty - g.padTop, base = 2 * (tx - j) - g.padLeft
                    rowStart[segments] = image * g.inImageStride + top * w + base
                    topRow[segments] = top
                    baseColumn[segments] = base
                    let lanes = (laneIndex .>= Int32(j)) .& (laneIndex .< Int32(j + n))
                    for o in 0..<windows {
                        let even = Int32(clamping: base + 2 * o) &+ 2 &* laneIndex, odd = even &+ 1
                        masks[(segments * windows + o) * 2] = lanes .& (even .>= 0) .& (even .< width)
                        masks[(segments * windows + o) * 2 + 1] = lanes .& (odd .>= 0) .& (odd .< width)
                    }
                    segments += 1
                    j += n
                }
                // The 32-float window of segment s's patch row i from patch column 2·o (zeros past
                // the row's ends are masked later; columns outside `readable` are never read).
                @inline(__always) func window(_ s: Int, _ i: Int, _ o: Int, _ src: UnsafePointer<Float>, _ readable: Range<Int>) -> SIMD32<Float> {
                    let at = rowStart[s] + i * w + 2 * o
                    if at >= readable.lowerBound && at + 32 <= readable.upperBound {
                        return UnsafeRawPointer(src + at).loadUnaligned(as: SIMD32<Float>.self)
                    }
                    var window = SIMD32<Float>()
                    let first = baseColumn[s] + 2 * o
                    let (lo, hi) = (max(0, -first), min(32, w - first))
                    if lo < hi { for u in lo..<hi { window[u] = src[at + u] } }
                    return window
                }
                // Patch columns 2·o and 2·o + 1 of row i for the 16 lanes (zeros outside the input).
                @inline(__always) func columns(_ i: Int, _ o: Int, _ src: UnsafePointer<Float>, _ readable: Range<Int>) -> (Vec16, Vec16) {
                    var even = Vec16(), odd = Vec16()
                    for s in 0..<segments {
                        let y = topRow[s] + i
                        if y < 0 || y >= g.inHeight { continue }
                        let window = window(s, i, o, src, readable)
                        even = even.replacing(with: window.evenHalf, where: masks[(s * windows + o) * 2])
                        odd = odd.replacing(with: window.oddHalf, where: masks[(s * windows + o) * 2 + 1])
                    }
                    return (even, odd)
                }
                var src = input, dst = v, readable = panel.readable
                for _ in 0..<panel.channels {
                    if T.self == F2x3.self {
                        // F(2, 3) in registers: the 4×4 patch (row i: `columns(i, 0)`, `columns(i, 1)`),
                        // Bᵀ down its columns, then along each row of the result into the positions.
                        let (d00, d01) = columns(0, 0, src, readable), (d02, d03) = columns(0, 1, src, readable)
                        let (d10, d11) = columns(1, 0, src, readable), (d12, d13) = columns(1, 1, src, readable)
                        let (d20, d21) = columns(2, 0, src, readable), (d22, d23) = columns(2, 1, src, readable)
                        let (d30, d31) = columns(3, 0, src, readable), (d32, d33) = columns(3, 1, src, readable)
                        let c0 = F2x3.input(d00, d10, d20, d30), c1 = F2x3.input(d01, d11, d21, d31)
                        let c2 = F2x3.input(d02, d12, d22, d32), c3 = F2x3.input(d03, d13, d23, d33)
                        @inline(__always) func store(_ r: Int, _ t0: Vec16, _ t1: Vec16, _ t2: Vec16, _ t3: Vec16) {
                            let p = dst + 4 * r * panel.positionStride, q = panel.positionStride
                            let v = F2x3.input(t0, t1, t2, t3)
                            store16(v.0, p); store16(v.1, p + q); store16(v.2, p + 2 * q); store16(v.3, p + 3 * q)
                        }
                        store(0, c0.0, c1.0, c2.0, c3.0)
                        store(1, c0.1, c1.1, c2.1, c3.1)
                        store(2, c0.2, c1.2, c2.2, c3.2)
                        store(3, c0.3, c1.3, c2.3, c3.3)
                    } else {
                        for i in 0..<alpha {
                            for o in 0..<windows {
                                let (even, odd) = columns(i, o, src, readable)
                                store16(even, patch + (i * alpha + 2 * o) * 16)
                                store16(odd, patch + (i * alpha + 2 * o + 1) * 16)
                            }
                        }
                        // Columns (t = Bᵀ·d), then rows (V = t·B), straight into the positions.
                        for c in 0..<alpha { T.input(patch + c * 16, alpha, rowsDone + c * 16, alpha) }
                        for r in 0..<alpha {
                            T.input(rowsDone + r * alpha * 16, 1, row, 1)
                            for c in 0..<alpha { store16(load16(row + c * 16), dst + (r * alpha + c) * panel.positionStride) }
                        }
                    }
                    src += plane
                    dst += panel.channelStride
                    readable = (readable.lowerBound - plane)..<(readable.upperBound - plane)
                }
            }
        }
    }
}

/// `KernelTable.winogradOutput`: for `panel.tiles` consecutive tiles from `panel.firstTile` and
/// output channels `0 ..< panel.channels`, the output transform `Y = Aᵀ·M·A`, then `+ bias[c]` and
/// ReLU (NaN kept), stored to the m×m output pixels of each tile that lie inside the output.
/// `m` holds position ξ of tile `firstTile + t` at `m[ξ·positionStride + t·tileStride ..< +channels]`
/// (channels contiguous, `positionStride` a multiple of 16, readable in whole 16-channel vectors);
/// `bias`, when given, is readable in whole 16-channel vectors too; `output` is channel 0's plane
/// in image 0.
func winogradOutput(
    _ g: WinogradGeometry, _ panel: WinogradPanel, _ m: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?, _ relu: Bool,
    _ output: UnsafeMutablePointer<Float>
) {
    if g.r == 3 {
        winogradOutput(F2x3.self, g, panel, m, bias, relu, output)
    } else {
        winogradOutput(F2x5.self, g, panel, m, bias, relu, output)
    }
}

@inline(__always)
private func winogradOutput<T: Winograd1D>(
    _: T.Type, _ g: WinogradGeometry, _ panel: WinogradPanel, _ m: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
    _ relu: Bool, _ output: UnsafeMutablePointer<Float>
) {
    let plane = g.outHeight * g.outWidth
    let size = T.m, alpha = T.alpha
    precondition(panel.positionStride % 16 == 0, "positions must be whole vectors apart")
    precondition(size == 2, "the grouped store assumes 2×2 output blocks")
    let xs = alpha * panel.positionStride / 16
    // Tiles whose 2×2 block lies inside the output: tile columns below `fullColumns`, rows below
    // `fullRows`. Four such tiles side by side in one tile row form a group, stored 8 columns at once.
    let fullColumns = g.outWidth / size, fullRows = g.outHeight / size
    let groupTiles = 4
    withUnsafeTemporaryAllocation(of: Float.self, capacity: (size * alpha + groupTiles * size * size) * 16) { scratch in
        guard let rowsDone = scratch.baseAddress else { return }
        let y = rowsDone + size * alpha * 16
        // Y of tile `t` (relative to the panel), channels c0 ..< c0 + 16, into `to` (size² vectors of
        // 16): columns (s = Aᵀ·M), then rows (Y = s·A), then bias and ReLU.
        @inline(__always) func transform(_ t: Int, _ c0: Int, _ to: UnsafeMutablePointer<Float>) {
            let src = m + t * panel.tileStride
            for col in 0..<alpha { T.output(src + c0 + col * panel.positionStride, xs, rowsDone + col * 16, alpha) }
            for i in 0..<size { T.output(rowsDone + i * alpha * 16, 1, to + i * size * 16, 1) }
            for e in 0..<size * size {
                var value = load16(to + e * 16)
                if let bias { value += load16(bias + c0) }
                if relu { value = value.replacing(with: 0, where: value .< 0) }
                store16(value, to + e * 16)
            }
        }
        var t = panel.firstTile
        let end = panel.firstTile + panel.tiles
        while t < end {
            let image = t / g.tilesPerImage, r = t - image * g.tilesPerImage
            let ty = r / g.tilesW, tx = r - ty * g.tilesW
            let oy = size * ty, ox = size * tx
            let out = output + image * g.outImageStride + oy * g.outWidth + ox
            if t + groupTiles <= end && tx + groupTiles <= fullColumns && ty < fullRows {
                // Four tiles: per output row, their 8 columns × 16 channels transposed (two 8×8) so
                // each channel's 8 pixels leave in one store.
                for c0 in stride(from: 0, to: panel.channels, by: 16) {
                    for j in 0..<groupTiles { transform(t - panel.firstTile + j, c0, y + j * size * size * 16) }
                    let count = min(16, panel.channels - c0)
                    for i in 0..<size {
                        // Column 2j + k of row i is y[j][i·2 + k].
                        @inline(__always) func column(_ c: Int) -> Vec16 { load16(y + ((c / 2) * size * size + i * size + c % 2) * 16) }
                        let v = (column(0), column(1), column(2), column(3), column(4), column(5), column(6), column(7))
                        var low = (v.0.lowHalf, v.1.lowHalf, v.2.lowHalf, v.3.lowHalf, v.4.lowHalf, v.5.lowHalf, v.6.lowHalf, v.7.lowHalf)
                        var high = (v.0.highHalf, v.1.highHalf, v.2.highHalf, v.3.highHalf, v.4.highHalf, v.5.highHalf, v.6.highHalf,
                                    v.7.highHalf)
                        transpose8(&low)
                        transpose8(&high)
                        let row = out + c0 * plane + i * g.outWidth
                        withUnsafeBytes(of: (low, high)) { channels in
                            for l in 0..<count {
                                store(channels.loadUnaligned(fromByteOffset: l * MemoryLayout<Vec>.stride, as: Vec.self), row + l * plane)
                            }
                        }
                    }
                }
                t += groupTiles
                continue
            }
            let rows = min(size, g.outHeight - oy), columns = min(size, g.outWidth - ox)
            for c0 in stride(from: 0, to: panel.channels, by: 16) {
                transform(t - panel.firstTile, c0, y)
                let count = min(16, panel.channels - c0)
                for i in 0..<rows {
                    for k in 0..<columns {
                        let to = out + c0 * plane + i * g.outWidth + k, from = y + (i * size + k) * 16
                        for l in 0..<count { to[l * plane] = from[l] }
                    }
                }
            }
            t += 1
        }
    }
}
