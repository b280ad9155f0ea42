import ZooKernelsBase

/// `KernelTable.im2colPanel`: for each kernel tap (ky, kx) the 16 lanes' input offsets and padding
/// masks are computed once and reused for every channel: a fully valid, unit-stride tap is a
/// 16-float vector copy, anything else a masked gather writing zeros where the tap falls into
/// padding. Lanes past the last pixel are zero.
func im2colPanel(_ g: Im2colGeometry, _ p: Int, _ input: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>) {
    let nr = 16
    let shape = g.shape
    let first = p * nr
    let cols = min(nr, g.pixels - first)
    let h = g.inHeight, w = g.inWidth, plane = h * w
    let taps = shape.kernelH * shape.kernelW
    let channels = shape.groupInChannels

    withUnsafeTemporaryAllocation(of: Int.self, capacity: 4 * nr) { scratch in
        guard let iy0 = scratch.baseAddress else { return }
        let ix0 = iy0 + nr, offset = iy0 + 2 * nr, valid = iy0 + 3 * nr
        for j in 0..<nr {
            let pixel = first + min(j, cols - 1)
            let oh = pixel / g.outWidth
            iy0[j] = oh * shape.strideH - shape.padTop
            ix0[j] = (pixel - oh * g.outWidth) * shape.strideW - shape.padLeft
        }
        for ky in 0..<shape.kernelH {
            for kx in 0..<shape.kernelW {
                var allValid = true
                for j in 0..<nr {
                    let iy = iy0[j] + ky * shape.dilationH, ix = ix0[j] + kx * shape.dilationW
                    let ok = j < cols && iy >= 0 && iy < h && ix >= 0 && ix < w
                    valid[j] = ok ? 1 : 0
                    offset[j] = ok ? iy * w + ix : 0   // masked lanes load in bounds, store 0
                    allValid = allValid && ok
                }
                let contiguous = allValid && offset[nr - 1] - offset[0] == nr - 1
                var d = dst + (ky * shape.kernelW + kx) * nr
                var src = input
                if contiguous {
                    let o = offset[0]
                    for _ in 0..<channels {
                        store(load(src + o), d)
                        store(load(src + o + 8), d + 8)
                        src += plane; d += taps * nr
                    }
                } else {
                    for _ in 0..<channels {
                        for j in 0..<nr {
                            let x = src[offset[j]]
                            d[j] = valid[j] != 0 ? x : 0
                        }
                        src += plane; d += taps * nr
                    }
                }
            }
        }
    }
}
