import ZooKernelsBase

/// `KernelTable.maxPool`. Per output row: the elementwise max of the window's input rows (8 lanes
/// at a time, clipped to the input), then each output the max of its columns of that row. A NaN
/// anywhere in a window wins it, as in PyTorch. Planes are split across threads.
func maxPool(
    _ shape: Pool2DShape, _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, _ planes: Int,
    _ inHeight: Int, _ inWidth: Int, _ outHeight: Int, _ outWidth: Int, _ pool: ThreadPool
) {
    @inline(__always)
    func larger(_ m: Vec, _ x: Vec) -> Vec { m.replacing(with: x, where: (x .> m) .| (x .!= x)) }
    let chunks = min(planes, 8 * pool.threadCount)
    pool.parallelFor(chunks) { item in
        withUnsafeTemporaryAllocation(of: Float.self, capacity: inWidth + 8) { buffer in
            guard let row = buffer.baseAddress else { return }
            for plane in evenSplit(planes, parts: chunks, index: item) {
                let x = input + plane * inHeight * inWidth
                let y = output + plane * outHeight * outWidth
                for oh in 0..<outHeight {
                    let h0 = oh * shape.strideH - shape.padTop
                    let hs = max(h0, 0), he = min(h0 + shape.kernelH, inHeight)
                    // Vertical pass: row[w] = max over the window's rows.
                    var w = 0
                    while w + 8 <= inWidth {
                        var m = Vec(repeating: -.infinity)
                        for h in hs..<max(he, hs) { m = larger(m, load(x + h * inWidth + w)) }
                        store(m, row + w)
                        w += 8
                    }
                    while w < inWidth {
                        var m = -Float.infinity
                        for h in hs..<max(he, hs) {
                            let v = x[h * inWidth + w]
                            if v > m || v.isNaN { m = v }
                        }
                        row[w] = m
                        w += 1
                    }
                    // Horizontal pass over the window's columns.
                    for ow in 0..<outWidth {
                        let w0 = ow * shape.strideW - shape.padLeft
                        let ws = max(w0, 0), we = min(w0 + shape.kernelW, inWidth)
                        var m = -Float.infinity
                        for c in ws..<max(we, ws) {
                            let v = row[c]
                            if v > m || v.isNaN { m = v }
                        }
                        y[oh * outWidth + ow] = m
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
        store(rectify(load(input + i)), output + i)
        i += 8
    }
    while i < count {
        let v = input[i]
        output[i] = v < 0 ? 0 : v
        i += 1
    }
}
