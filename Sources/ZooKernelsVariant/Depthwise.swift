import ZooKernelsBase

/// `KernelTable.depthwisePlanes`: planes `planes` of [batch·channels] one after another, each with
/// its channel's taps and bias, band of output rows by band (see `DepthwiseGeometry`) in one
/// scratch, zeroed once: bands write only the inside of the phase planes' rows, or whole rows of
/// zeros, so the padding columns stay zero. Then `post` over the plane.
func depthwisePlanes(
    _ g: DepthwiseGeometry, _ input: UnsafePointer<Float>, _ taps: UnsafePointer<Float>, _ bias: UnsafePointer<Float>,
    _ low: Float, _ high: Float, _ post: Activation?, _ planes: Range<Int>, _ channels: Int,
    _ scratch: UnsafeMutablePointer<Float>, _ output: UnsafeMutablePointer<Float>
) {
    let inPixels = g.inHeight * g.inWidth, outPixels = g.outHeight * g.outWidth, count = g.offsets.count
    scratch.initialize(repeating: 0, count: g.phaseFloats)   // the phases; accumulators are written before read
    for plane in planes {
        let c = plane % channels, y = output + plane * outPixels
        var first = 0
        while first < g.outHeight {
            let rows = min(g.bandRows, g.outHeight - first)
            depthwiseBand(g, input + plane * inPixels, first, rows, taps + c * count, bias[c], low, high, scratch,
                          y + first * g.outWidth)
            first += rows
        }
        if let post { activate(post, y, y, outPixels) }
    }
}

/// Output rows `first ..< first + rows` of one channel plane, laid out by `g` (see
/// `DepthwiseGeometry`): the input rows they read are copied into zero-padded phase planes in
/// `scratch`, every tap adds `tap · input` to a flat block of outputs (64 at a time, in registers,
/// taps in (ky, kx) order from 0), then each output gets `+ bias`, is clamped to `low...high` (NaN
/// kept; ±infinity for none) and goes to `output` (the band's first row). `scratch` holds
/// `g.scratchFloats` floats, zero wherever padding columns go.
@inline(__always)
private func depthwiseBand(
    _ g: DepthwiseGeometry, _ input: UnsafePointer<Float>, _ first: Int, _ rows: Int, _ taps: UnsafePointer<Float>,
    _ bias: Float, _ low: Float, _ high: Float, _ scratch: UnsafeMutablePointer<Float>, _ output: UnsafeMutablePointer<Float>
) {
    let phases = scratch, accumulators = scratch + g.phaseFloats, plane = g.rows * g.width
    // Phase row q of phase (py, ·) is padded row r = (first + q)·strideH + py: a copy of its input
    // row, or zeros above and below the input — written only when the band is not the whole plane
    // (the scratch starts zeroed, and a lone band's padding rows never hold input). Only the rows
    // the band reads.
    let reach = g.rows - g.bandRows, start = first * g.strideH, end = start + (rows + reach) * g.strideH
    if g.bandRows < g.outHeight {
        for r in start..<end where r < g.padTop || r - g.padTop >= g.inHeight {
            let row = phases + (r % g.strideH) * g.strideW * plane + (r / g.strideH - first) * g.width
            for px in 0..<g.strideW { (row + px * plane).update(repeating: 0, count: g.width) }
        }
    }
    // Padded rows `from ..< to` hold input rows (r − padTop). With stride 1 both ways, row r is phase
    // row r − first, copied as it is (through `copyPhaseRow`'s general step the copies of 480
    // channels on 14×14 took 82 µs against 60, 1 thread); else phase r % strideH at row r / strideH −
    // first, both stepped along (no division per row).
    let from = max(start, g.padTop), to = max(from, min(end, g.padTop + g.inHeight))
    if g.strideH == 1 && g.strideW == 1 {
        let columns = min(g.inWidth, max(0, g.width - g.padLeft))
        for r in from..<to { copyRow(input + (r - g.padTop) * g.inWidth, phases + (r - first) * g.width + g.padLeft, columns) }
    } else {
        var py = from % g.strideH, q = from / g.strideH - first
        for r in from..<to {
            copyPhaseRow(g, input + (r - g.padTop) * g.inWidth, phases + py * g.strideW * plane + q * g.width, plane)
            py += 1
            if py == g.strideH { py = 0; q += 1 }
        }
    }

    g.offsets.withUnsafeBufferPointer { offsets in
        var i = 0
        while i < rows * g.width {
            var a0 = Vec(), a1 = Vec(), a2 = Vec(), a3 = Vec(), a4 = Vec(), a5 = Vec(), a6 = Vec(), a7 = Vec()
            for t in 0..<offsets.count {
                let w = Vec(repeating: taps[t]), p = UnsafePointer(phases + offsets[t] + i)
                multiplyAdd(&a0, w, load(p)); multiplyAdd(&a1, w, load(p + 8))
                multiplyAdd(&a2, w, load(p + 16)); multiplyAdd(&a3, w, load(p + 24))
                multiplyAdd(&a4, w, load(p + 32)); multiplyAdd(&a5, w, load(p + 40))
                multiplyAdd(&a6, w, load(p + 48)); multiplyAdd(&a7, w, load(p + 56))
            }
            let y = accumulators + i
            store(a0, y); store(a1, y + 8); store(a2, y + 16); store(a3, y + 24)
            store(a4, y + 32); store(a5, y + 40); store(a6, y + 48); store(a7, y + 56)
            i += DepthwiseGeometry.block
        }
    }

    // Each row's outputs 8 at a time; when a row is not whole vectors its last 8 overlap the ones
    // before (computed again from the same accumulators: the same values).
    let b = Vec(repeating: bias)
    for oy in 0..<rows {
        let source = accumulators + oy * g.width, target = output + oy * g.outWidth
        guard g.outWidth >= 8 else {
            for ox in 0..<g.outWidth {
                let v = source[ox] + bias, w = v < low ? low : v
                target[ox] = w > high ? high : w
            }
            continue
        }
        var ox = 0
        while ox < g.outWidth {
            let at = min(ox, g.outWidth - 8)
            store(clamp(load(source + at) + b, low, high), target + at)
            ox += 8
        }
    }
}

/// Input row `line` into the phase rows at `row` (phase px at `row + px · plane`): input column w is
/// padded column w + padLeft, which phase px holds at qx (padded column = qx·strideW + px) — only
/// where qx lies inside the phase row (no output reads anything else). Writes nothing else.
@inline(__always)
private func copyPhaseRow(_ g: DepthwiseGeometry, _ line: UnsafePointer<Float>, _ row: UnsafeMutablePointer<Float>, _ plane: Int) {
    if g.strideW == 1 {
        // One phase: the padded row itself, the columns that lie inside it.
        return copyRow(line, row + g.padLeft, min(g.inWidth, max(0, g.width - g.padLeft)))
    }
    let px0 = g.padLeft % g.strideW, qx0 = g.padLeft / g.strideW
    var w = 0, px = px0, qx = qx0
    if g.strideW == 2 {
        // 16 inputs from an even column w: the even lanes go to one phase from even[w / 2], the
        // odd ones to the other from odd[w / 2], 8 consecutive columns each — whole in the phase
        // rows while w / 2 ≤ room.
        let even = row + px0 * plane + qx0, odd = row + (1 - px0) * plane + qx0 + px0, room = g.width - 8 - qx0 - px0
        @inline(__always) func split(_ from: UnsafePointer<Float>, _ toEven: UnsafeMutablePointer<Float>,
                                     _ toOdd: UnsafeMutablePointer<Float>) {
            let pair = UnsafeRawPointer(from).loadUnaligned(as: SIMD16<Float>.self)
            store(pair.evenHalf, toEven)
            store(pair.oddHalf, toOdd)
        }
        // The whole 16-column steps that fit, counted once and walked by pointers (a guard and
        // index arithmetic per step cost as much as the copy).
        let steps = room < 0 ? 0 : min(g.inWidth / 16, room / 8 + 1)
        var from = line, toEven = even, toOdd = odd
        for _ in 0..<steps {
            split(from, toEven, toOdd)
            from += 16; toEven += 8; toOdd += 8
        }
        w = 16 * steps
        // A last part vector as the 16 columns from the last even one that ends within the row
        // (again over some before).
        let last = (g.inWidth - 16) & ~1
        if w < g.inWidth && last > 0 && last / 2 <= room {
            split(line + last, even + last / 2, odd + last / 2)
            w = last + 16
        }
        qx = w / 2 + qx0
    }
    // The rest one by one: stride 2's last columns, and every column of other strides across.
    while w < g.inWidth && qx < g.width {
        row[px * plane + qx] = line[w]
        w += 1
        px += 1
        if px == g.strideW { px = 0; qx += 1 }
    }
}

/// `count` floats from `line` to `target`, 8 at a time; a last part vector as the 8 floats that end
/// the row, again over some of them.
@inline(__always)
private func copyRow(_ line: UnsafePointer<Float>, _ target: UnsafeMutablePointer<Float>, _ count: Int) {
    var w = 0
    while w + 8 <= count { store(load(line + w), target + w); w += 8 }
    if w < count && count >= 8 { return store(load(line + count - 8), target + count - 8) }
    while w < count { target[w] = line[w]; w += 1 }
}

/// `KernelTable.depthwiseLanes`: groups `groups` of 8 channels (numbered over [batch, ⌈channels/8⌉])
/// one after another in one scratch (zeroed once: groups only write the inside), laid out by `g`.
/// `taps` [⌈channels/8⌉, taps, 8] and `bias` [⌈channels/8⌉, 8] hold each group's 8 channels in
/// lanes (zeros past the last channel). Per group: its channels' pixels interleaved into the
/// padded scratch (8 pixels at a time through `transpose8`), then the output pixels in flat order
/// eight at a time (eight independent chains): each sums `tap weights · pixel` over the taps in
/// (ky, kx) order from 0, gets `+ bias` and is clamped to `low...high` (NaN kept); the eight are
/// transposed back into 8 outputs of each channel's plane. Then `post` over the group's planes —
/// the same arithmetic per output as `depthwiseBand` (the planes layout).
func depthwiseLanes(
    _ g: DepthwiseLanes, _ input: UnsafePointer<Float>, _ taps: UnsafePointer<Float>, _ bias: UnsafePointer<Float>,
    _ low: Float, _ high: Float, _ post: Activation?, _ groups: Range<Int>, _ channels: Int,
    _ scratch: UnsafeMutablePointer<Float>, _ output: UnsafeMutablePointer<Float>
) {
    let count = g.offsets.count, perImage = (channels + 7) / 8
    let inPixels = g.inHeight * g.inWidth, outPixels = g.outHeight * g.outWidth
    scratch.initialize(repeating: 0, count: g.scratchFloats)
    g.offsets.withUnsafeBufferPointer { offsets in
        for group in groups {
            let image = group / perImage, index = group % perImage, first = index * 8, lanes = min(8, channels - first)
            let x = input + (image * channels + first) * inPixels
            // The input pixels into the scratch, eight at a time while all 8 channels exist.
            var pixel = 0, at = DepthwiseLaneWalk(rowStep: g.columns * 8, columnStep: 8, width: g.inWidth,
                                                  start: scratch + (g.padTop * g.columns + g.padLeft) * 8)
            if lanes == 8 {
                while pixel + 8 <= inPixels {
                    var v = (load(x + pixel), load(x + inPixels + pixel), load(x + 2 * inPixels + pixel), load(x + 3 * inPixels + pixel),
                             load(x + 4 * inPixels + pixel), load(x + 5 * inPixels + pixel), load(x + 6 * inPixels + pixel),
                             load(x + 7 * inPixels + pixel))
                    transpose8(&v)
                    store(v.0, at.next()); store(v.1, at.next()); store(v.2, at.next()); store(v.3, at.next())
                    store(v.4, at.next()); store(v.5, at.next()); store(v.6, at.next()); store(v.7, at.next())
                    pixel += 8
                }
            }
            while pixel < inPixels {
                let target = at.next()
                for c in 0..<lanes { target[c] = x[c * inPixels + pixel] }
                pixel += 1
            }

            let w = taps + index * count * 8, b = load(bias + index * 8), y = output + (image * channels + first) * outPixels
            var from = DepthwiseLaneWalk(rowStep: g.strideH * g.columns * 8, columnStep: g.strideW * 8, width: g.outWidth, start: scratch)
            var done = 0
            while done + 8 <= outPixels {
                let p0 = from.next(), p1 = from.next(), p2 = from.next(), p3 = from.next()
                let p4 = from.next(), p5 = from.next(), p6 = from.next(), p7 = from.next()
                var a = (Vec(), Vec(), Vec(), Vec(), Vec(), Vec(), Vec(), Vec())
                for t in 0..<count {
                    let wt = load(w + t * 8), o = offsets[t]
                    multiplyAdd(&a.0, wt, load(p0 + o)); multiplyAdd(&a.1, wt, load(p1 + o))
                    multiplyAdd(&a.2, wt, load(p2 + o)); multiplyAdd(&a.3, wt, load(p3 + o))
                    multiplyAdd(&a.4, wt, load(p4 + o)); multiplyAdd(&a.5, wt, load(p5 + o))
                    multiplyAdd(&a.6, wt, load(p6 + o)); multiplyAdd(&a.7, wt, load(p7 + o))
                }
                a = (clamp(a.0 + b, low, high), clamp(a.1 + b, low, high), clamp(a.2 + b, low, high), clamp(a.3 + b, low, high),
                     clamp(a.4 + b, low, high), clamp(a.5 + b, low, high), clamp(a.6 + b, low, high), clamp(a.7 + b, low, high))
                transpose8(&a)
                let target = y + done
                if lanes == 8 {
                    store(a.0, target); store(a.1, target + outPixels); store(a.2, target + 2 * outPixels)
                    store(a.3, target + 3 * outPixels); store(a.4, target + 4 * outPixels); store(a.5, target + 5 * outPixels)
                    store(a.6, target + 6 * outPixels); store(a.7, target + 7 * outPixels)
                } else {
                    withUnsafeBytes(of: a) { rows in
                        for c in 0..<lanes { store(rows.loadUnaligned(fromByteOffset: c * 32, as: Vec.self), target + c * outPixels) }
                    }
                }
                done += 8
            }
            while done < outPixels {
                let p = from.next()
                var a = Vec()
                for t in 0..<count { multiplyAdd(&a, load(w + t * 8), load(p + offsets[t])) }
                let v = clamp(a + b, low, high)
                for c in 0..<lanes { y[c * outPixels + done] = v[c] }
                done += 1
            }
            // The activation over the finished planes (kept out of the tap loops, whose size would stop
            // the optimizer from inlining their loads).
            if let post { for c in 0..<lanes { activate(post, y + c * outPixels, y + c * outPixels, outPixels) } }
        }
    }
}

/// Pixels of a plane in row order as places in an interleaved scratch: `next()` gives the current
/// pixel's place and moves on (`columnStep` floats along a row of `width` pixels, `rowStep` to the
/// next row).
struct DepthwiseLaneWalk {
    let rowStep, columnStep, width: Int
    var row: UnsafeMutablePointer<Float>, place: UnsafeMutablePointer<Float>, column = 0

    init(rowStep: Int, columnStep: Int, width: Int, start: UnsafeMutablePointer<Float>) {
        (self.rowStep, self.columnStep, self.width, row, place) = (rowStep, columnStep, width, start, start)
    }

    @inline(__always)
    mutating func next() -> UnsafeMutablePointer<Float> {
        let current = place
        column += 1
        if column == width {
            column = 0
            row += rowStep
            place = row
        } else {
            place += columnStep
        }
        return current
    }
}

/// Transposes 8 vectors of 8 lanes (`v.i[j]` becomes `v.j[i]`) in three rounds of two-vector shuffles
/// (pairs of lanes, pairs of pairs, halves).
@inline(__always)
func transpose8(_ v: inout (Vec, Vec, Vec, Vec, Vec, Vec, Vec, Vec)) {
    @inline(__always) func low(_ a: Vec, _ b: Vec) -> Vec { Vec(a[0], b[0], a[1], b[1], a[4], b[4], a[5], b[5]) }
    @inline(__always) func high(_ a: Vec, _ b: Vec) -> Vec { Vec(a[2], b[2], a[3], b[3], a[6], b[6], a[7], b[7]) }
    @inline(__always) func pairsLow(_ a: Vec, _ b: Vec) -> Vec { Vec(a[0], a[1], b[0], b[1], a[4], a[5], b[4], b[5]) }
    @inline(__always) func pairsHigh(_ a: Vec, _ b: Vec) -> Vec { Vec(a[2], a[3], b[2], b[3], a[6], a[7], b[6], b[7]) }
    @inline(__always) func halvesLow(_ a: Vec, _ b: Vec) -> Vec { Vec(a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3]) }
    @inline(__always) func halvesHigh(_ a: Vec, _ b: Vec) -> Vec { Vec(a[4], a[5], a[6], a[7], b[4], b[5], b[6], b[7]) }
    let a0 = low(v.0, v.1), a1 = high(v.0, v.1), a2 = low(v.2, v.3), a3 = high(v.2, v.3)
    let a4 = low(v.4, v.5), a5 = high(v.4, v.5), a6 = low(v.6, v.7), a7 = high(v.6, v.7)
    let b0 = pairsLow(a0, a2), b1 = pairsHigh(a0, a2), b2 = pairsLow(a1, a3), b3 = pairsHigh(a1, a3)
    let b4 = pairsLow(a4, a6), b5 = pairsHigh(a4, a6), b6 = pairsLow(a5, a7), b7 = pairsHigh(a5, a7)
    v = (halvesLow(b0, b4), halvesLow(b1, b5), halvesLow(b2, b6), halvesLow(b3, b7),
         halvesHigh(b0, b4), halvesHigh(b1, b5), halvesHigh(b2, b6), halvesHigh(b3, b7))
}
