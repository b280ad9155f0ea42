/// 2-D pooling over NCHW f32 tensors, PyTorch semantics (aten/src/ATen/native/Pool.h and
/// AveragePool2d.cpp): windows start at `o·stride − padTop`; padding never wins a max; average pooling
/// divides by the window clipped to the padded input (`countIncludePad`) or to the input itself.
/// Planes (n, c) are independent and split across the pool's threads; results do not depend on the
/// thread count.
public enum PoolKernels {
    /// Max pooling with the selected kernel set (`KernelTable.maxPool`).
    public static func maxPool(_ shape: Pool2DShape, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                               planes: Int, inHeight: Int, inWidth: Int, outHeight: Int, outWidth: Int, pool: ThreadPool,
                               kernels: KernelSet = .active) {
        kernels.table.maxPool(shape, input, output, planes, inHeight, inWidth, outHeight, outWidth, pool)
    }

    public static func averagePool(_ shape: Pool2DShape, countIncludePad: Bool, input: UnsafePointer<Float>,
                                   output: UnsafeMutablePointer<Float>, planes: Int, inHeight: Int, inWidth: Int,
                                   outHeight: Int, outWidth: Int, pool: ThreadPool) {
        pool.parallelFor(planes) { plane in
            let x = input + plane * inHeight * inWidth
            let y = output + plane * outHeight * outWidth
            for oh in 0..<outHeight {
                var hs = oh * shape.strideH - shape.padTop
                var he = min(hs + shape.kernelH, inHeight + shape.padBottom)
                let paddedH = he - hs
                hs = max(hs, 0)
                he = min(he, inHeight)
                for ow in 0..<outWidth {
                    var ws = ow * shape.strideW - shape.padLeft
                    var we = min(ws + shape.kernelW, inWidth + shape.padRight)
                    let paddedW = we - ws
                    ws = max(ws, 0)
                    we = min(we, inWidth)
                    var sum: Float = 0
                    for h in hs..<max(he, hs) {
                        for w in ws..<max(we, ws) { sum += x[h * inWidth + w] }
                    }
                    let divisor = countIncludePad ? paddedH * paddedW : max(he - hs, 0) * max(we - ws, 0)
                    y[oh * outWidth + ow] = divisor > 0 ? sum / Float(divisor) : 0
                }
            }
        }
    }

    /// torch.nn.AdaptiveAvgPool2d: output cell i averages input [⌊i·in/out⌋, ⌈(i+1)·in/out⌉).
    /// Global average pooling is the 1×1 case.
    public static func adaptiveAveragePool(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, planes: Int,
                                           inHeight: Int, inWidth: Int, outHeight: Int, outWidth: Int, pool: ThreadPool) {
        pool.parallelFor(planes) { plane in
            let x = input + plane * inHeight * inWidth
            let y = output + plane * outHeight * outWidth
            for oh in 0..<outHeight {
                let hs = oh * inHeight / outHeight, he = ((oh + 1) * inHeight + outHeight - 1) / outHeight
                for ow in 0..<outWidth {
                    let ws = ow * inWidth / outWidth, we = ((ow + 1) * inWidth + outWidth - 1) / outWidth
                    var sum: Float = 0
                    for h in hs..<he {
                        for w in ws..<we { sum += x[h * inWidth + w] }
                    }
                    y[oh * outWidth + ow] = sum / Float((he - hs) * (we - ws))
                }
            }
        }
    }
}
