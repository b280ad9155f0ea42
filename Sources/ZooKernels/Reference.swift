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
}
