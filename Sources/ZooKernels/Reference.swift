#if canImport(Glibc)
import Glibc
#endif

/// Plain-loop twins of the fast kernels, written for obviousness rather than speed: the semantics
/// the fast kernels are tested against. Convolution and Linear accumulate each output in Double
/// over the same terms (bias included), round to Float once, then ReLU; the pooling and
/// normalization twins are the straightforward Float loops (PyTorch's semantics, NaN included).
public enum ReferenceKernels {
    /// `batch` row-major `rows × columns` matrices into their transposes, element by element.
    public static func transpose(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int, rows: Int, columns: Int) {
        for m in 0..<batch {
            let source = x + m * rows * columns, target = y + m * rows * columns
            for r in 0..<rows {
                for c in 0..<columns { target[c * rows + r] = source[r * columns + c] }
            }
        }
    }

    /// Direct convolution (PyTorch `nn.Conv2d` semantics). `weights [outCh, inCh/groups, kH, kW]`,
    /// `input [batch, inCh, inHeight, inWidth]` → `output [batch, outCh, outH, outW]`.
    public static func conv2d(
        shape: Conv2DShape, input: UnsafePointer<Float>, weights: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
        relu: Bool, output: UnsafeMutablePointer<Float>, batch: Int, inHeight: Int, inWidth: Int
    ) {
        shape.validate()
        let (outH, outW) = shape.outputSize(inHeight: inHeight, inWidth: inWidth)
        let cinG = shape.groupInChannels, coutG = shape.groupOutChannels
        for n in 0..<batch {
            for oc in 0..<shape.outChannels {
                let g = oc / coutG
                for oy in 0..<outH {
                    for ox in 0..<outW {
                        var sum = Double(bias?[oc] ?? 0)
                        for c in 0..<cinG {
                            let ic = g * cinG + c
                            for ky in 0..<shape.kernelH {
                                let iy = oy * shape.strideH - shape.padTop + ky * shape.dilationH
                                if iy < 0 || iy >= inHeight { continue }
                                for kx in 0..<shape.kernelW {
                                    let ix = ox * shape.strideW - shape.padLeft + kx * shape.dilationW
                                    if ix < 0 || ix >= inWidth { continue }
                                    let x = input[((n * shape.inChannels + ic) * inHeight + iy) * inWidth + ix]
                                    let w = weights[((oc * cinG + c) * shape.kernelH + ky) * shape.kernelW + kx]
                                    sum += Double(x) * Double(w)
                                }
                            }
                        }
                        output[((n * shape.outChannels + oc) * outH + oy) * outW + ox] = activate(Float(sum), relu)
                    }
                }
            }
        }
    }

    /// `y[b, o] = Σ_i x[b, i]·W[o, i] + bias[o]` (torch.nn.Linear), `weights [out, in]`.
    public static func linear(
        inFeatures: Int, outFeatures: Int, input: UnsafePointer<Float>, weights: UnsafePointer<Float>,
        bias: UnsafePointer<Float>?, relu: Bool, output: UnsafeMutablePointer<Float>, batch: Int
    ) {
        for b in 0..<batch {
            for o in 0..<outFeatures {
                var sum = Double(bias?[o] ?? 0)
                for i in 0..<inFeatures {
                    sum += Double(input[b * inFeatures + i]) * Double(weights[o * inFeatures + i])
                }
                output[b * outFeatures + o] = activate(Float(sum), relu)
            }
        }
    }

    /// ReLU that keeps NaN, like torch.relu.
    @inline(__always)
    static func activate(_ v: Float, _ relu: Bool) -> Float { relu && v < 0 ? 0 : v }

    /// Max pooling, one window at a time; NaN wins (PyTorch).
    public static func maxPool(_ shape: Pool2DShape, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                               planes: Int, inHeight: Int, inWidth: Int, outHeight: Int, outWidth: Int, pool: ThreadPool) {
        pool.parallelFor(planes) { plane in
            let x = input + plane * inHeight * inWidth
            let y = output + plane * outHeight * outWidth
            for oh in 0..<outHeight {
                let h0 = oh * shape.strideH - shape.padTop
                let hs = max(h0, 0), he = min(h0 + shape.kernelH, inHeight)
                for ow in 0..<outWidth {
                    let w0 = ow * shape.strideW - shape.padLeft
                    let ws = max(w0, 0), we = min(w0 + shape.kernelW, inWidth)
                    var best = -Float.infinity
                    for h in hs..<max(he, hs) {
                        for w in ws..<max(we, ws) {
                            let v = x[h * inWidth + w]
                            if v > best || v.isNaN { best = v }
                        }
                    }
                    y[oh * outWidth + ow] = best
                }
            }
        }
    }

    /// `y = max(x, 0)` one element at a time; NaN stays NaN (torch.relu).
    public static func relu(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { output[i] = activate(input[i], true) }
    }

    /// Average pooling, one window at a time in row-major order. The divisor is the window clipped
    /// to the padded input (`countIncludePad`, PyTorch's default) or to the input itself; a window
    /// with divisor 0 gives 0.
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

    /// torch.nn.AdaptiveAvgPool2d: output cell i averages input [⌊i·in/out⌋, ⌈(i+1)·in/out⌉) on each
    /// axis, summed in row-major order.
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

    /// Local response normalization across channels of [batch, channels, spatial]:
    /// y = x / powf(bias + alpha/size · Σ_{c' ∈ [c+low, c+high] ∩ [0, C)} x_{c'}², beta), the
    /// squares summed in channel order.
    public static func lrn(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch: Int, channels: Int,
                           spatial: Int, size: Int, low: Int, high: Int, alpha: Float, beta: Float, bias: Float, pool: ThreadPool) {
        let scale = alpha / Float(size)
        pool.parallelFor(batch * channels) { index in
            let n = index / channels, c = index % channels
            let base = input + n * channels * spatial
            let y = output + index * spatial
            let first = max(c + low, 0), last = min(c + high, channels - 1)
            for s in 0..<spatial {
                var sum: Float = 0
                if first <= last {
                    for k in first...last {
                        let v = base[k * spatial + s]
                        sum += v * v
                    }
                }
                y[s] = base[c * spatial + s] / powf(bias + scale * sum, beta)
            }
        }
    }

    /// Inference batch normalization of [batch, channels, spatial]:
    /// y = (x − mean) · (1/√(var + ε)) · scale + shift, evaluated left to right.
    public static func batchNorm(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch: Int, channels: Int,
                                 spatial: Int, scale: UnsafePointer<Float>, shift: UnsafePointer<Float>, mean: UnsafePointer<Float>,
                                 variance: UnsafePointer<Float>, epsilon: Float, pool: ThreadPool) {
        pool.parallelFor(batch * channels) { index in
            let c = index % channels
            let inverse = 1 / sqrtf(variance[c] + epsilon)
            let x = input + index * spatial, y = output + index * spatial
            for s in 0..<spatial { y[s] = (x[s] - mean[c]) * inverse * scale[c] + shift[c] }
        }
    }

    /// Softmax along the middle axis of [outer, length, inner]: exp(x − max) / Σ exp(x − max), the
    /// sum taken in order. A NaN (or +∞) in a column makes the whole column NaN, as in PyTorch.
    public static func softmax(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, outer: Int, length: Int,
                               inner: Int, pool: ThreadPool) {
        pool.parallelFor(outer) { o in
            let x = input + o * length * inner, y = output + o * length * inner
            for i in 0..<inner { softmaxColumn(x + i, y + i, length: length, stride: inner) }
        }
    }
}
