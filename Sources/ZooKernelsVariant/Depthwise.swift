import ZooKernelsBase

/// `KernelTable.depthwisePlanes`: planes `planes` of [batch·channels] one after another in one
/// scratch (zeroed for the first only), each with its channel's taps and bias, then `post`.
func depthwisePlanes(
    _ g: DepthwiseGeometry, _ input: UnsafePointer<Float>, _ taps: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
    _ low: Float, _ high: Float, _ post: Activation?, _ planes: Range<Int>, _ channels: Int,
    _ scratch: UnsafeMutablePointer<Float>, _ output: UnsafeMutablePointer<Float>
) {
    let inPixels = g.inHeight * g.inWidth, outPixels = g.outHeight * g.outWidth, count = g.offsets.count
    for plane in planes {
        let c = plane % channels, y = output + plane * outPixels
        depthwisePlane(g, input + plane * inPixels, taps + c * count, bias?[c] ?? 0, low, high, scratch, plane != planes.lowerBound, y)
        if let post { activate(post, y, y, outPixels) }
    }
}

/// One channel plane of a depthwise convolution, laid out by `g` (see `DepthwiseGeometry`): the
/// input is copied into zero-padded phase planes in `scratch` (zeroed first unless `zeroed`: a
/// scratch that already held a plane of this geometry has zeros wherever padding goes, since
/// planes only ever write the inside), every tap adds `tap · input` to a
/// flat block of outputs (32 at a time, in registers, taps in (ky, kx) order from 0), then each
/// output gets `+ bias`, is clamped to `low...high` (NaN kept; ±infinity for none) and goes to
/// `output` (`outHeight × outWidth`).
/// `scratch` holds `g.scratchFloats` floats.
@inline(__always)
func depthwisePlane(
    _ g: DepthwiseGeometry, _ input: UnsafePointer<Float>, _ taps: UnsafePointer<Float>, _ bias: Float, _ low: Float, _ high: Float,
    _ scratch: UnsafeMutablePointer<Float>, _ zeroed: Bool, _ output: UnsafeMutablePointer<Float>
) {
    let plane = g.rows * g.width
    let phases = scratch, accumulators = scratch + g.phaseFloats
    if !zeroed { phases.initialize(repeating: 0, count: g.phaseFloats) }
    for py in 0..<g.strideH {
        for px in 0..<g.strideW {
            let base = phases + (py * g.strideW + px) * plane
            // Columns qx whose input column qx·strideW + px − padLeft lies inside the row.
            let first = min(g.width, max(0, (g.padLeft - px + g.strideW - 1) / g.strideW))
            let end = max(first, min(g.width, (g.inWidth + g.padLeft - px + g.strideW - 1) / g.strideW))
            guard first < end else { continue }
            // Rows qy whose input row qy·strideH + py − padTop lies inside the plane.
            let top = max(0, (g.padTop - py + g.strideH - 1) / g.strideH)
            let bottom = min(g.rows, max(top, (g.inHeight + g.padTop - py + g.strideH - 1) / g.strideH))
            for qy in top..<bottom {
                let row = base + qy * g.width
                let line = input + (qy * g.strideH + py - g.padTop) * g.inWidth + first * g.strideW + px - g.padLeft
                let count = end - first
                if g.strideW == 1 {
                    var j = 0
                    while j + 8 <= count {
                        store(load(line + j), row + first + j)
                        j += 8
                    }
                    while j < count { row[first + j] = line[j]; j += 1 }
                } else if g.strideW == 2 {
                    // Every other input: the even lanes of 16 consecutive floats (never read past the last one used).
                    var j = 0
                    while j + 8 < count {
                        let pair = UnsafeRawPointer(line + 2 * j).loadUnaligned(as: SIMD16<Float>.self)
                        UnsafeMutableRawPointer(row + first + j).storeBytes(of: pair.evenHalf, as: SIMD8<Float>.self)
                        j += 8
                    }
                    while j < count { row[first + j] = line[2 * j]; j += 1 }
                } else {
                    for j in 0..<count { row[first + j] = line[j * g.strideW] }
                }
            }
        }
    }

    g.offsets.withUnsafeBufferPointer { offsets in
        var i = 0
        while i < g.accumulatorFloats {
            var a0 = Vec(), a1 = Vec(), a2 = Vec(), a3 = Vec()
            for t in 0..<offsets.count {
                let w = Vec(repeating: taps[t]), p = UnsafePointer(phases + offsets[t] + i)
                multiplyAdd(&a0, w, load(p))
                multiplyAdd(&a1, w, load(p + 8))
                multiplyAdd(&a2, w, load(p + 16))
                multiplyAdd(&a3, w, load(p + 24))
            }
            store(a0, accumulators + i)
            store(a1, accumulators + i + 8)
            store(a2, accumulators + i + 16)
            store(a3, accumulators + i + 24)
            i += DepthwiseGeometry.block
        }
    }

    for oy in 0..<g.outHeight {
        let source = accumulators + oy * g.width, target = output + oy * g.outWidth
        for ox in 0..<g.outWidth {
            let v = source[ox] + bias, w = v < low ? low : v
            target[ox] = w > high ? high : w
        }
    }
}
