/// Plain-loop twins of the fast kernels, written for obviousness rather than speed. Each output is
/// accumulated in Double over the same terms (bias included), rounded to Float once, then ReLU'd
/// — the semantics the fast kernels are tested against.
public enum ReferenceKernels {
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
}
