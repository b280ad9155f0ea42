// The plane kernels: pooling, ReLU, LRN, batch norm and softmax over NCHW-like f32 planes. Each
// has a plain twin in ReferenceKernels; threads split planes, rows or column blocks only, so
// results never depend on the thread count.

#if canImport(Glibc)
import Glibc
#endif
#if arch(x86_64)
import _Builtin_intrinsics.intel
#endif
import ZooKernelsBase

// Debug builds compile each file of a module on its own, and then Swift inlines nothing across
// files, not even `@inline(__always)` functions: Micro.swift's `load`/`store` would be calls here,
// each passing a vector in two halves. These file-local copies are inlined in every build.
@inline(__always)
private func load8(_ p: UnsafePointer<Float>) -> Vec { UnsafeRawPointer(p).loadUnaligned(as: Vec.self) }

@inline(__always)
private func store8(_ v: Vec, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: Vec.self) }

/// The first `count` lanes of `v` into `p`: a whole vector when `count` ≥ 8, else lane by lane.
@inline(__always)
private func storeFirst(_ v: Vec, _ count: Int, _ p: UnsafeMutablePointer<Float>) {
    if count >= 8 { return store8(v, p) }
    for lane in 0..<count { p[lane] = v[lane] }
}

/// Column `j` of 8 windows with stride 2 starting at `row`: `row[2i + j]` for i < 8, the even or
/// odd lanes of one 16-float load from `row + j − j % 2`.
@inline(__always)
private func stride2Column(_ row: UnsafePointer<Float>, _ j: Int) -> Vec {
    let pair = UnsafeRawPointer(row + j - j % 2).loadUnaligned(as: SIMD16<Float>.self)
    return j % 2 == 0 ? pair.evenHalf : pair.oddHalf
}

/// Lane-wise IEEE square root (correctly rounded, like `Float.squareRoot()`) in vector registers;
/// `Vec.squareRoot()` goes lane by lane through libm's errno-setting `sqrtf`.
@inline(__always)
private func squareRoot(_ v: Vec) -> Vec {
    #if arch(x86_64)
    Vec(lowHalf: _mm_sqrt_ps(v.lowHalf), highHalf: _mm_sqrt_ps(v.highHalf))
    #else
    v.squareRoot()
    #endif
}

/// The running max of a window as PyTorch takes it: a larger value, or any NaN, replaces `m`;
/// once NaN, `m` stays NaN.
@inline(__always)
private func larger(_ m: Float, _ v: Float) -> Float { v > m || v.isNaN ? v : m }

/// `larger` lane-wise.
@inline(__always)
private func larger(_ m: Vec, _ v: Vec) -> Vec { m.replacing(with: v, where: (v .> m) .| (v .!= v)) }

/// The running max (`larger`) from −∞ over `count` vectors of 8 floats from `p`, `stride` floats
/// apart: a window's rows (vertical pass) or columns (stride-1 horizontal pass). Three (a 3-wide
/// window inside the input) are unrolled; `larger(−∞, v)` is `v` bit for bit, so the result is the
/// loop's.
@_transparent
private func windowMax(_ p: UnsafePointer<Float>, count: Int, stride: Int) -> Vec {
    if count == 3 { return larger(larger(load8(p), load8(p + stride)), load8(p + 2 * stride)) }
    var m = Vec(repeating: -.infinity)
    for i in 0..<count { m = larger(m, load8(p + i * stride)) }
    return m
}

/// `KernelTable.maxPool`. Per output row: the elementwise max of the window's input rows (8 lanes
/// at a time, clipped to the input) into a row buffer with −∞ in the pads, the max over every
/// `kernelW` adjacent columns of that (8 positions at a time), then output `ow` takes position
/// `ow·strideW` — with stride 1 that max is the output, with stride 2 8 outputs at once come from
/// the even and odd lanes of 16-float loads, straight into the output (a scalar gather cost 3× the
/// pass). A NaN anywhere in a window wins it, as in PyTorch. Planes are split across threads.
func maxPool(
    _ shape: Pool2DShape, _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, _ planes: Int,
    _ inHeight: Int, _ inWidth: Int, _ outHeight: Int, _ outWidth: Int, _ pool: ThreadPool
) {
    let area = inHeight * inWidth
    if shape == Pool2DShape(kernelH: 3, kernelW: 3, strideH: 1, strideW: 1, padTop: 1, padLeft: 1, padBottom: 1, padRight: 1),
       outHeight == inHeight, outWidth == inWidth, inHeight >= 2, inWidth >= 2, area >= 8, area <= 4096 {
        return maxPool3x3Same(input, output, planes, inHeight, inWidth, pool)
    }
    // padded[lead + w] is input column w; windows start at padded[ow·strideW]; the sliding max
    // runs over whole vectors of positions, reading up to padded[rounded + kernelW − 2].
    let lead = shape.padLeft
    let positions = max((outWidth - 1) * shape.strideW + 1, 0), rounded = (positions + 7) / 8 * 8
    // Stride 2 reads 16 floats from padded[2·ow + j − j % 2] for every 8 outputs from ow.
    let span = max(lead + inWidth, rounded + shape.kernelW, shape.strideW == 2 ? 2 * outWidth + shape.kernelW + 16 : 0)
    let chunks = min(planes, 8 * pool.threadCount)
    pool.parallelFor(chunks) { item in
        withUnsafeTemporaryAllocation(of: Float.self, capacity: span + rounded) { buffer in
            guard let padded = buffer.baseAddress else { return }
            padded.initialize(repeating: -.infinity, count: span)
            let row = padded + lead, slid = padded + span
            for plane in evenSplit(planes, parts: chunks, index: item) {
                let x = input + plane * inHeight * inWidth
                let y = output + plane * outHeight * outWidth
                for oh in 0..<outHeight {
                    let h0 = oh * shape.strideH - shape.padTop
                    let hs = max(h0, 0), he = min(h0 + shape.kernelH, inHeight)
                    // Vertical pass: row[w] = max over the window's rows.
                    var w = 0
                    let top = x + hs * inWidth, rows = max(he, hs) - hs
                    while w + 8 <= inWidth {
                        store8(windowMax(top + w, count: rows, stride: inWidth), row + w)
                        w += 8
                    }
                    if w < inWidth && inWidth >= 8 {
                        // The last 8 columns as one (overlapping) vector instead of a scalar tail.
                        w = inWidth - 8
                        store8(windowMax(top + w, count: rows, stride: inWidth), row + w)
                        w = inWidth
                    }
                    while w < inWidth {
                        var m = -Float.infinity
                        for h in hs..<max(he, hs) { m = larger(m, x[h * inWidth + w]) }
                        row[w] = m
                        w += 1
                    }
                    let target = y + oh * outWidth
                    if shape.strideW == 2 {
                        // Horizontal pass straight into the output, 8 at a time: window ow's column j
                        // is an even or odd lane of the 16 floats from padded[2·ow + j − j % 2].
                        // Three columns (the common 3×3/2) unrolled: with j constant no parity test is
                        // left, and columns 0 and 1 share one load.
                        var ow = 0
                        while ow < outWidth {
                            var m: Vec
                            if shape.kernelW == 3 {
                                let p = padded + 2 * ow
                                m = larger(larger(stride2Column(p, 0), stride2Column(p, 1)), stride2Column(p, 2))
                            } else {
                                m = Vec(repeating: -.infinity)
                                for j in 0..<shape.kernelW { m = larger(m, stride2Column(padded + 2 * ow, j)) }
                            }
                            storeFirst(m, outWidth - ow, target + ow)
                            ow += 8
                        }
                        continue
                    }
                    // Horizontal pass: slid[p] = max of padded[p ..< p + kernelW] — with stride 1 the
                    // output itself (whole vectors, the last one's valid lanes).
                    var p = 0
                    while p < positions {
                        let m = windowMax(padded + p, count: shape.kernelW, stride: 1)
                        if shape.strideW == 1 { storeFirst(m, outWidth - p, target + p) } else { store8(m, slid + p) }
                        p += 8
                    }
                    if shape.strideW != 1 {
                        for ow in 0..<outWidth { target[ow] = slid[ow * shape.strideW] }
                    }
                }
            }
        }
    }
}

/// `KernelTable.relu`: 8 lanes at a time, NaN kept.
func relu(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, _ count: Int) {
    var i = 0
    while i + 8 <= count {
        let v = load8(input + i)
        store8(v.replacing(with: 0, where: v .< 0), output + i)
        i += 8
    }
    while i < count {
        let v = input[i]
        output[i] = v < 0 ? 0 : v
        i += 1
    }
}

/// Column sums of rows `rows` of a row-major image `width` floats wide: `row[w] = Σ_h x[h, w]`,
/// 8 lanes at a time, rows added in order (0 for an empty range).
@inline(__always)
private func sumRows(_ x: UnsafePointer<Float>, _ rows: Range<Int>, _ width: Int, into row: UnsafeMutablePointer<Float>) {
    var w = 0
    while w + 8 <= width {
        var s = Vec()
        for h in rows { s += load8(x + h * width + w) }
        store8(s, row + w)
        w += 8
    }
    while w < width {
        var s: Float = 0
        for h in rows { s += x[h * width + w] }
        row[w] = s
        w += 1
    }
}

/// Runs `body(plane, row)` for every plane in `0..<planes`, planes split across threads; `row` is
/// scratch for `width` floats owned by the calling thread.
@inline(__always)
private func forEachPlane(_ planes: Int, width: Int, _ pool: ThreadPool,
                          _ body: (_ plane: Int, _ row: UnsafeMutablePointer<Float>) -> Void) {
    let chunks = min(planes, 8 * pool.threadCount)
    pool.parallelFor(chunks) { item in
        withUnsafeTemporaryAllocation(of: Float.self, capacity: max(width, 1)) { buffer in
            guard let row = buffer.baseAddress else { return }
            for plane in evenSplit(planes, parts: chunks, index: item) { body(plane, row) }
        }
    }
}

/// `maxPool` of 3×3 windows at stride 1 with one column and row of padding on every side, on small
/// planes (GoogLeNet's inception branches on 28×28 to 7×7, where rows of 7 or 14 columns left the
/// row passes mostly scalar): each pass runs over the whole plane as one flat array, 8 positions at
/// a time (the last 8 again over some). Vertical: the max of each pixel's row above, its own and
/// the one below (the first and last rows' ranges without the missing one). Horizontal: the max of
/// the left neighbour, the pixel and the right neighbour — flat, so each row's first and last pixel
/// take a neighbour from across the row's end, and are then redone with −∞ there, as the padding.
/// The same `larger` steps in the same order as the row passes, so bit-identical to them.
private func maxPool3x3Same(
    _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, _ planes: Int, _ height: Int, _ width: Int, _ pool: ThreadPool
) {
    let count = height * width
    let chunks = min(planes, 8 * pool.threadCount)
    pool.parallelFor(chunks) { item in
        // The vertical maxima with one slack float before and after (read, never used).
        withUnsafeTemporaryAllocation(of: Float.self, capacity: count + 2) { buffer in
            guard let base = buffer.baseAddress else { return }
            base[0] = -.infinity
            base[count + 1] = -.infinity
            let v = base + 1
            // `body(i)` for the 8 positions from i over `range` (8 or more long), the last 8 ending at its end.
            @inline(__always) func flat(_ range: Range<Int>, _ body: (Int) -> Void) {
                var i = range.lowerBound
                while i + 8 <= range.upperBound { body(i); i += 8 }
                if i < range.upperBound { body(range.upperBound - 8) }
            }
            for plane in evenSplit(planes, parts: chunks, index: item) {
                let x = input + plane * count, y = output + plane * count
                // Vertical: over each range, the `rows` input rows from `offset` floats off each
                // position (`windowMax`); ranges under 8 positions (rows of fewer than 8 columns)
                // one by one, the same steps.
                @inline(__always) func vertical(_ range: Range<Int>, offset: Int, rows: Int) {
                    guard range.count >= 8 else {
                        for i in range {
                            var m = -Float.infinity
                            for r in 0..<rows { m = larger(m, x[i + offset + r * width]) }
                            v[i] = m
                        }
                        return
                    }
                    flat(range) { i in store8(windowMax(x + i + offset, count: rows, stride: width), v + i) }
                }
                vertical(0..<width, offset: 0, rows: 2)
                vertical(width..<(count - width), offset: -width, rows: 3)
                vertical((count - width)..<count, offset: -width, rows: 2)
                // Horizontal, straight into the output; then each row's ends with −∞ beyond them.
                flat(0..<count) { i in store8(larger(larger(load8(v + i - 1), load8(v + i)), load8(v + i + 1)), y + i) }
                for first in stride(from: 0, to: count, by: width) {
                    let last = first + width - 1
                    y[first] = larger(larger(-.infinity, v[first]), v[first + 1])
                    y[last] = larger(larger(v[last - 1], v[last]), -.infinity)
                }
            }
        }
    }
}

/// `KernelTable.transpose`: items of 32 rows of one matrix, in parallel; each as 8×8 blocks, 8
/// rows' 8 columns loaded, turned by `transpose8` and stored as 8 columns' 8 rows, then the columns
/// past the last whole block and the rows past the last whole 8 one by one. Copies only: the same
/// floats as `ReferenceKernels.transpose`.
func transpose(
    _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ batch: Int, _ rows: Int, _ columns: Int, _ pool: ThreadPool
) {
    let rowBlocks = (rows + 31) / 32
    pool.parallelFor(batch * rowBlocks) { task in
        let matrix = task / rowBlocks, r0 = task % rowBlocks * 32, r1 = min(rows, r0 + 32)
        let source = x + matrix * rows * columns, target = y + matrix * rows * columns
        var r = r0
        while r + 8 <= r1 {
            let s = source + r * columns
            var c = 0
            while c + 8 <= columns {
                let p = s + c
                var v = (load8(p), load8(p + columns), load8(p + 2 * columns), load8(p + 3 * columns),
                         load8(p + 4 * columns), load8(p + 5 * columns), load8(p + 6 * columns), load8(p + 7 * columns))
                transpose8(&v)
                let t = target + c * rows + r
                store8(v.0, t); store8(v.1, t + rows); store8(v.2, t + 2 * rows); store8(v.3, t + 3 * rows)
                store8(v.4, t + 4 * rows); store8(v.5, t + 5 * rows); store8(v.6, t + 6 * rows); store8(v.7, t + 7 * rows)
                c += 8
            }
            for column in c..<columns {
                for row in r..<(r + 8) { target[column * rows + row] = source[row * columns + column] }
            }
            r += 8
        }
        for row in r..<r1 {
            for column in 0..<columns { target[column * rows + row] = source[row * columns + column] }
        }
    }
}

/// `KernelTable.averagePool`. Per output row: the column sums of the window's input rows (clipped
/// to the input; `sumRows`), then each output the sum of its columns of those, divided by the
/// window's size clipped to the padded input (`countIncludePad`) or to the input (0 when empty).
/// Same terms as the twin, added column-first instead of row-first. With stride 2, the windows
/// inside the row go 8 at a time, their columns the even and odd lanes of 16-float loads (the same
/// sums and divisions: DenseNet's 2×2 transitions were scalar), the last few of them too (the
/// scratch row's slack is read for the lanes not stored). Planes are split across threads.
func averagePool(
    _ shape: Pool2DShape, _ countIncludePad: Bool, _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>,
    _ planes: Int, _ inHeight: Int, _ inWidth: Int, _ outHeight: Int, _ outWidth: Int, _ pool: ThreadPool
) {
    if shape == Pool2DShape(kernelH: 2, kernelW: 2, strideH: 2, strideW: 2), 2 * outHeight <= inHeight, 2 * outWidth <= inWidth {
        return averagePool2x2(input, output, planes, inHeight, inWidth, outHeight, outWidth, pool)
    }
    // Outputs whose window lies inside the row: 0 ≤ 2·ow − padLeft and 2·ow − padLeft + kernelW ≤ inWidth.
    let inside = shape.strideW != 2 || inWidth < shape.kernelW ? 0..<0
        : (shape.padLeft + 1) / 2..<max((shape.padLeft + 1) / 2, min(outWidth, (inWidth - shape.kernelW + shape.padLeft) / 2 + 1))
    // The row has 16 floats of slack: a vector of windows reads up to 15 past its last column.
    forEachPlane(planes, width: inWidth + 16, pool) { plane, row in
        let x = input + plane * inHeight * inWidth
        let y = output + plane * outHeight * outWidth
        for oh in 0..<outHeight {
            let h0 = oh * shape.strideH - shape.padTop
            let paddedH = min(h0 + shape.kernelH, inHeight + shape.padBottom) - h0
            let hs = max(h0, 0), he = max(min(h0 + shape.kernelH, inHeight), hs)
            sumRows(x, hs..<he, inWidth, into: row)
            var ow = 0
            while ow < outWidth {
                if ow >= inside.lowerBound && ow < inside.upperBound {
                    // Up to 8 windows; lanes past the last inside window read the row's slack, unstored.
                    let count = min(8, inside.upperBound - ow)
                    var sum = Vec()
                    for j in 0..<shape.kernelW { sum += stride2Column(row + 2 * ow - shape.padLeft, j) }
                    let divisor = countIncludePad ? paddedH * shape.kernelW : (he - hs) * shape.kernelW
                    storeFirst(divisor > 0 ? sum / Vec(repeating: Float(divisor)) : Vec(), count, y + oh * outWidth + ow)
                    ow += count
                    continue
                }
                let w0 = ow * shape.strideW - shape.padLeft
                let paddedW = min(w0 + shape.kernelW, inWidth + shape.padRight) - w0
                let ws = max(w0, 0), we = max(min(w0 + shape.kernelW, inWidth), ws)
                var sum: Float = 0
                for w in ws..<we { sum += row[w] }
                let divisor = countIncludePad ? paddedH * paddedW : (he - hs) * (we - ws)
                y[oh * outWidth + ow] = divisor > 0 ? sum / Float(divisor) : 0
                ow += 1
            }
        }
    }
}

/// `averagePool` of 2×2 windows at stride 2 without padding, every window inside the input
/// (DenseNet's transitions): each output the quarter of (the sum of its two rows' columns) — the
/// twin's four terms, the columns added first. Eight windows from two 16-float loads per row pair,
/// then four from two 8-float loads, the last few one by one (no load past the input's rows: the
/// last plane ends the tensor).
private func averagePool2x2(
    _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, _ planes: Int,
    _ inHeight: Int, _ inWidth: Int, _ outHeight: Int, _ outWidth: Int, _ pool: ThreadPool
) {
    forEachPlane(planes, width: 0, pool) { plane, _ in
        let x = input + plane * inHeight * inWidth
        let y = output + plane * outHeight * outWidth
        for oh in 0..<outHeight {
            let top = x + 2 * oh * inWidth, bottom = top + inWidth, out = y + oh * outWidth
            var ow = 0
            while ow + 8 <= outWidth {
                let sum = UnsafeRawPointer(top + 2 * ow).loadUnaligned(as: SIMD16<Float>.self)
                    + UnsafeRawPointer(bottom + 2 * ow).loadUnaligned(as: SIMD16<Float>.self)
                store8((sum.evenHalf + sum.oddHalf) * 0.25, out + ow)
                ow += 8
            }
            if ow + 4 <= outWidth {
                let sum = load8(top + 2 * ow) + load8(bottom + 2 * ow)
                UnsafeMutableRawPointer(out + ow).storeBytes(of: (sum.evenHalf + sum.oddHalf) * 0.25, as: SIMD4<Float>.self)
                ow += 4
            }
            while ow < outWidth {
                out[ow] = ((top[2 * ow] + bottom[2 * ow]) + (top[2 * ow + 1] + bottom[2 * ow + 1])) * 0.25
                ow += 1
            }
        }
    }
}

/// `KernelTable.adaptiveAveragePool`: output cell (i, j) averages input rows
/// [⌊i·inH/outH⌋, ⌈(i+1)·inH/outH⌉) × the same for columns, summed like `averagePool`. A 1×1
/// output (global pooling: squeeze-excite, classifier heads) sums the plane as one flat array in
/// four 8-lane partial sums instead (planes of 7×7 have no whole 8-column rows).
func adaptiveAveragePool(
    _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, _ planes: Int,
    _ inHeight: Int, _ inWidth: Int, _ outHeight: Int, _ outWidth: Int, _ pool: ThreadPool
) {
    if outHeight == 1 && outWidth == 1 {
        let count = inHeight * inWidth
        forEachPlane(planes, width: 0, pool) { plane, _ in
            let x = input + plane * count
            var s0 = Vec(), s1 = Vec(), s2 = Vec(), s3 = Vec()
            var i = 0
            while i + 32 <= count {
                s0 += load8(x + i); s1 += load8(x + i + 8); s2 += load8(x + i + 16); s3 += load8(x + i + 24)
                i += 32
            }
            while i + 8 <= count {
                s0 += load8(x + i)
                i += 8
            }
            var sum = ((s0 + s1) + (s2 + s3)).sum()
            while i < count {
                sum += x[i]
                i += 1
            }
            output[plane] = sum / Float(count)
        }
        return
    }
    forEachPlane(planes, width: inWidth, pool) { plane, row in
        let x = input + plane * inHeight * inWidth
        let y = output + plane * outHeight * outWidth
        for oh in 0..<outHeight {
            let hs = oh * inHeight / outHeight, he = ((oh + 1) * inHeight + outHeight - 1) / outHeight
            sumRows(x, hs..<he, inWidth, into: row)
            for ow in 0..<outWidth {
                let ws = ow * inWidth / outWidth, we = ((ow + 1) * inWidth + outWidth - 1) / outWidth
                var sum: Float = 0
                for w in ws..<we { sum += row[w] }
                y[oh * outWidth + ow] = sum / Float((he - hs) * (we - ws))
            }
        }
    }
}

/// `KernelTable.lrn`. Each output plane (n, c) is one item; along it, 8 spatial lanes at a time,
/// the window's squares are summed directly (in channel order, like the twin, so NaN and ∞ reach
/// exactly the outputs whose window holds them), giving `d = bias + alpha/size · Σ x²`.
/// `d^beta` is `powf` per element — bit-identical to the twin — except for beta = 0.75 (AlexNet),
/// where it is `√d · √√d` in vector registers (~10× faster): each output within 9·2⁻²⁴ relative
/// of the twin (4.5·2⁻²⁴ for the roots, product and division, the rest powf's own error).
func lrn(
    _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, _ batch: Int, _ channels: Int, _ spatial: Int,
    _ size: Int, _ low: Int, _ high: Int, _ alpha: Float, _ beta: Float, _ bias: Float, _ pool: ThreadPool
) {
    let scale = alpha / Float(size)
    let threeQuarters = beta == 0.75
    @inline(__always)
    func power(_ d: Vec) -> Vec {
        if threeQuarters {
            let root = squareRoot(d)
            return root * squareRoot(root)
        }
        var p = Vec()
        for lane in 0..<8 { p[lane] = powf(d[lane], beta) }
        return p
    }
    @inline(__always)
    func power(_ d: Float) -> Float {
        if threeQuarters {
            let root = d.squareRoot()
            return root * root.squareRoot()
        }
        return powf(d, beta)
    }
    let planes = batch * channels
    let chunks = min(planes, 8 * pool.threadCount)
    pool.parallelFor(chunks) { item in
        for index in evenSplit(planes, parts: chunks, index: item) {
            let n = index / channels, c = index % channels
            let base = input + n * channels * spatial
            let x = base + c * spatial, y = output + index * spatial
            let first = max(c + low, 0), window = first..<max(min(c + high, channels - 1) + 1, first)
            var s = 0
            while s + 8 <= spatial {
                var sum = Vec()
                for k in window {
                    let v = load8(base + k * spatial + s)
                    sum += v * v
                }
                let d = Vec(repeating: bias) + Vec(repeating: scale) * sum
                store8(load8(x + s) / power(d), y + s)
                s += 8
            }
            while s < spatial {
                var sum: Float = 0
                for k in window {
                    let v = base[k * spatial + s]
                    sum += v * v
                }
                y[s] = x[s] / power(bias + scale * sum)
                s += 1
            }
        }
    }
}

/// `KernelTable.batchNorm`: `((x − mean) · 1/√(var + ε)) · scale + shift`, in that order and
/// without fused multiply-adds, 8 lanes at a time: bit-identical to the twin; the activation in
/// the same registers (`activateVector`, what `activate` computes), not in a second pass. Planes
/// (n, c) are split across threads.
func batchNorm(
    _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, _ batch: Int, _ channels: Int, _ spatial: Int,
    _ scale: UnsafePointer<Float>, _ shift: UnsafePointer<Float>, _ mean: UnsafePointer<Float>,
    _ variance: UnsafePointer<Float>, _ epsilon: Float, _ activation: Activation?, _ pool: ThreadPool
) {
    let planes = batch * channels
    let chunks = min(planes, 8 * pool.threadCount)
    pool.parallelFor(chunks) { item in
        for index in evenSplit(planes, parts: chunks, index: item) {
            let c = index % channels
            let m = mean[c], inverse = 1 / sqrtf(variance[c] + epsilon), a = scale[c], b = shift[c]
            let x = input + index * spatial, y = output + index * spatial
            let mv = Vec(repeating: m), iv = Vec(repeating: inverse), av = Vec(repeating: a), bv = Vec(repeating: b)
            var s = 0
            if let activation {
                while s + 8 <= spatial {
                    store8(activateVector(activation, (load8(x + s) - mv) * iv * av + bv), y + s)
                    s += 8
                }
            } else {
                while s + 8 <= spatial {
                    store8((load8(x + s) - mv) * iv * av + bv, y + s)
                    s += 8
                }
            }
            let tail = s
            while s < spatial {
                y[s] = (x[s] - m) * inverse * a + b
                s += 1
            }
            if let activation, tail < spatial { activate(activation, y + tail, y + tail, spatial - tail) }
        }
    }
}

/// `KernelTable.layerNorm`: per row, the Double sum and sum of squared deviations in 8 lanes
/// (converted from Float exactly), the lanes added in order, then the tail in order; the output
/// `(x − mean) · inverse · scale + bias` in Double, rounded once. Items of whole rows.
func layerNorm(
    _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, _ rows: Int, _ inner: Int,
    _ scale: UnsafePointer<Double>, _ bias: UnsafePointer<Double>?, _ epsilon: Double, _ pool: ThreadPool
) {
    typealias D = SIMD8<Double>
    @inline(__always) func wide(_ p: UnsafePointer<Float>) -> D { D(load8(p)) }
    @inline(__always) func loadD(_ p: UnsafePointer<Double>) -> D { UnsafeRawPointer(p).loadUnaligned(as: D.self) }
    let body = inner / 8 * 8
    let chunks = min(rows, 8 * pool.threadCount)
    pool.parallelFor(chunks) { item in
        for r in evenSplit(rows, parts: chunks, index: item) {
            let x = input + r * inner, y = output + r * inner
            var lanes = D()
            var i = 0
            while i < body { lanes += wide(x + i); i += 8 }
            var sum = lanes.sum()
            for j in body..<inner { sum += Double(x[j]) }
            let mean = sum / Double(inner), m = D(repeating: mean)
            var squares = D()
            i = 0
            while i < body { let d = wide(x + i) - m; squares += d * d; i += 8 }
            var total = squares.sum()
            for j in body..<inner { let d = Double(x[j]) - mean; total += d * d }
            let inverse = 1 / (total / Double(inner) + epsilon).squareRoot(), v = D(repeating: inverse)
            i = 0
            while i < body {
                var z = (wide(x + i) - m) * v * loadD(scale + i)
                if let bias { z += loadD(bias + i) }
                store8(SIMD8<Float>(z), y + i)
                i += 8
            }
            for j in body..<inner { y[j] = Float((Double(x[j]) - mean) * inverse * scale[j] + (bias?[j] ?? 0)) }
        }
    }
}

/// `KernelTable.softmax` along the middle axis of [outer, length, inner]. With `inner == 1`
/// (rows, e.g. [batch, 1000] logits, attention scores) each row is one item: vector max, e^x by
/// `expVector` (expf for the last `length % 8`), the sum in 8 lane-wise partial sums, then one
/// division per element. With `inner > 1` each item is 8 adjacent columns (o, i..<i+8) computed
/// lane-wise (`expVector`; within an ulp or two of the twin's expf).
/// A NaN anywhere in a row or column makes all of it NaN, like the twin and PyTorch.
func softmax(
    _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, _ outer: Int, _ length: Int, _ inner: Int,
    _ pool: ThreadPool
) {
    /// max that skips NaN (like `Swift.max` in the twin); a NaN reaches the sum instead.
    @inline(__always)
    func maxSkippingNaN(_ m: Vec, _ v: Vec) -> Vec { m.replacing(with: v, where: v .> m) }
    let blocks = inner == 1 ? 1 : (inner + 7) / 8
    let items = outer * blocks
    let chunks = min(items, 8 * pool.threadCount)
    pool.parallelFor(chunks) { chunk in
        for item in evenSplit(items, parts: chunks, index: chunk) {
            let o = item / blocks, i0 = item % blocks * 8
            let x = input + o * length * inner + i0, y = output + o * length * inner + i0
            if inner == 1 {
                var l = 0, m = Vec(repeating: -.infinity)
                while l + 8 <= length { m = maxSkippingNaN(m, load8(x + l)); l += 8 }
                var maximum = m.max()
                while l < length { maximum = max(maximum, x[l]); l += 1 }
                l = 0
                var partial = Vec()
                let shift = Vec(repeating: maximum)
                while l + 8 <= length {
                    let e = expVector(load8(x + l) - shift)
                    store8(e, y + l)
                    partial += e
                    l += 8
                }
                var sum = partial.sum()
                while l < length {
                    let e = expf(x[l] - maximum)
                    y[l] = e
                    sum += e
                    l += 1
                }
                l = 0
                let total = Vec(repeating: sum)
                while l + 8 <= length { store8(load8(y + l) / total, y + l); l += 8 }
                while l < length { y[l] /= sum; l += 1 }
            } else if i0 + 8 <= inner {
                var m = Vec(repeating: -.infinity)
                for l in 0..<length { m = maxSkippingNaN(m, load8(x + l * inner)) }
                var sum = Vec()
                for l in 0..<length {
                    let e = expVector(load8(x + l * inner) - m)
                    store8(e, y + l * inner)
                    sum += e
                }
                for l in 0..<length { store8(load8(y + l * inner) / sum, y + l * inner) }
            } else {
                for i in 0..<(inner - i0) { softmaxColumn(x + i, y + i, length: length, stride: inner) }
            }
        }
    }
}
