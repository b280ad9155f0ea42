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
    @inline(__always)
    static func input(_ x: UnsafePointer<Float>, _ xs: Int, _ y: UnsafeMutablePointer<Float>, _ ys: Int) {
        let s = 16 * xs, t = 16 * ys
        let d0 = load16(x), d1 = load16(x + s), d2 = load16(x + 2 * s), d3 = load16(x + 3 * s)
        store16(d0 - d2, y); store16(d1 + d2, y + t); store16(d2 - d1, y + 2 * t); store16(d3 - d1, y + 3 * t)
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
/// are zero.
func winogradInput(_ g: WinogradGeometry, _ panel: WinogradPanel, _ input: UnsafePointer<Float>, _ v: UnsafeMutablePointer<Float>) {
    if g.r == 3 {
        winogradInput(F2x3.self, g, panel, input, v)
    } else {
        winogradInput(F2x5.self, g, panel, input, v)
    }
}

@inline(__always)
private func winogradInput<T: Winograd1D>(
    _: T.Type, _ g: WinogradGeometry, _ panel: WinogradPanel, _ input: UnsafePointer<Float>, _ v: UnsafeMutablePointer<Float>
) {
    let plane = g.inHeight * g.inWidth, w = g.inWidth
    let m = T.m, alpha = T.alpha, area = alpha * alpha
    withUnsafeTemporaryAllocation(of: Int.self, capacity: 5 * 16) { info in
        withUnsafeTemporaryAllocation(of: Float.self, capacity: (2 * area + alpha) * 16) { scratch in
            guard let lane = info.baseAddress, let patch = scratch.baseAddress else { return }
            let rowsDone = patch + area * 16, row = rowsDone + area * 16
            // Per lane: offset of the patch's top-left corner (may lie in the padding), and the
            // rows [rowLo, rowHi) and columns [colLo, colHi) of the patch inside the input
            // (an empty range past the last tile).
            let corner = lane, rowLo = lane + 16, rowHi = lane + 32, colLo = lane + 48, colHi = lane + 64
            var allInside = true
            for j in 0..<16 {
                let t = panel.firstTile + j
                guard t < g.tiles else {
                    corner[j] = 0; rowLo[j] = 0; rowHi[j] = 0; colLo[j] = 0; colHi[j] = 0
                    allInside = false
                    continue
                }
                let image = t / g.tilesPerImage, r = t - image * g.tilesPerImage
                let ty = r / g.tilesW, tx = r - ty * g.tilesW
                let top = m * ty - g.padTop, left = m * tx - g.padLeft
                corner[j] = image * g.inImageStride + top * w + left
                rowLo[j] = max(0, -top); rowHi[j] = min(alpha, g.inHeight - top)
                colLo[j] = max(0, -left); colHi[j] = min(alpha, w - left)
                allInside = allInside && rowLo[j] == 0 && rowHi[j] == alpha && colLo[j] == 0 && colHi[j] == alpha
            }
            if !allInside { patch.initialize(repeating: 0, count: area * 16) }
            var src = input, dst = v
            for _ in 0..<panel.channels {
                // Gather: lane j gets its patch's inside part; the rest stays zero (set once above:
                // every channel writes the same inside positions).
                for j in 0..<16 {
                    var from = src + corner[j]
                    if rowHi[j] - rowLo[j] == alpha && colHi[j] - colLo[j] == alpha {
                        for i in 0..<alpha {
                            for c in 0..<alpha { patch[(i * alpha + c) * 16 + j] = from[c] }
                            from += w
                        }
                    } else {
                        for i in rowLo[j]..<max(rowLo[j], rowHi[j]) {
                            for c in colLo[j]..<max(colLo[j], colHi[j]) { patch[(i * alpha + c) * 16 + j] = from[i * w + c] }
                        }
                    }
                }
                // Columns (t = Bᵀ·d), then rows (V = t·B), straight into the positions.
                for c in 0..<alpha { T.input(patch + c * 16, alpha, rowsDone + c * 16, alpha) }
                for r in 0..<alpha {
                    T.input(rowsDone + r * alpha * 16, 1, row, 1)
                    for c in 0..<alpha { store16(load16(row + c * 16), dst + (r * alpha + c) * panel.positionStride) }
                }
                src += plane
                dst += panel.channelStride
            }
        }
    }
}

/// `KernelTable.winogradOutput`: for the 16 tiles of one panel and `channels` consecutive output
/// channels, the output transform `Y = Aᵀ·M·A`, then `+ bias[c]` and ReLU (NaN kept), stored to
/// the m×m output pixels of each tile that lie inside the output. `m` holds position ξ of channel c
/// at `m[ξ·positionStride + c·channelStride]`; `output` is channel 0's plane in image 0.
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
    let size = T.m, alpha = T.alpha, area = alpha * alpha
    withUnsafeTemporaryAllocation(of: Int.self, capacity: 3 * 16) { info in
        withUnsafeTemporaryAllocation(of: Float.self, capacity: (area + size * alpha + size * size) * 16) { scratch in
            guard let lane = info.baseAddress, let gathered = scratch.baseAddress else { return }
            let rowsDone = gathered + area * 16, y = rowsDone + size * alpha * 16
            let base = lane, top = lane + 16, left = lane + 32
            var lanes = 0
            for j in 0..<16 {
                let t = panel.firstTile + j
                guard t < g.tiles else { break }
                let image = t / g.tilesPerImage, r = t - image * g.tilesPerImage
                let ty = r / g.tilesW, tx = r - ty * g.tilesW
                top[j] = size * ty
                left[j] = size * tx
                base[j] = image * g.outImageStride
                lanes = j + 1
            }
            var src = m, dst = output
            for c in 0..<panel.channels {
                for xi in 0..<area { store16(load16(src + xi * panel.positionStride), gathered + xi * 16) }
                // Columns (s = Aᵀ·M), then rows (Y = s·A), then bias and ReLU.
                for col in 0..<alpha { T.output(gathered + col * 16, alpha, rowsDone + col * 16, alpha) }
                for i in 0..<size { T.output(rowsDone + i * alpha * 16, 1, y + i * size * 16, 1) }
                for e in 0..<size * size {
                    var value = load16(y + e * 16)
                    if let bias { value += Vec16(repeating: bias[c]) }
                    if relu { value = value.replacing(with: 0, where: value .< 0) }
                    store16(value, y + e * 16)
                }
                for j in 0..<lanes {
                    let oy = top[j], ox = left[j]
                    let rows = min(size, g.outHeight - oy), columns = min(size, g.outWidth - ox)
                    let out = dst + base[j] + oy * g.outWidth + ox
                    for i in 0..<rows {
                        for k in 0..<columns { out[i * g.outWidth + k] = y[(i * size + k) * 16 + j] }
                    }
                }
                src += panel.channelStride
                dst += plane
            }
        }
    }
}
