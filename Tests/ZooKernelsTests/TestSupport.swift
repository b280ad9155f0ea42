import XCTest
@testable import ZooKernels

/// SplitMix64: a tiny seeded generator so every randomized test is reproducible.
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension Array where Element == Float {
    /// `count` values uniform in [-1, 1).
    static func random(_ count: Int, _ rng: inout SeededRandom) -> [Float] {
        (0..<count).map { _ in Float.random(in: -1..<1, using: &rng) }
    }
}

/// Floats of workspace for `bytes` bytes (run() aligns the pointer itself).
func workspaceFloats(_ bytes: Int) -> Int { (bytes + 3) / 4 }

/// Checks `actual` against `expected` (the Double-accumulated reference, rounded once).
///
/// Tolerance: the fast kernel evaluates each output as one f32 fused-multiply-add chain over the
/// K products, then adds the bias: K+1 roundings. The classic bound for recursive summation gives
/// |Δ| ≤ γ_{K+1}·Σ|terms| with γ_n ≈ n·2⁻²⁴, plus 2⁻²⁴·|result| for the reference's own final
/// rounding. `magnitude` is Σ|w·x| + |b| per output (the reference run on absolute values). This is
/// a rigorous worst case, typically ~√K looser than actual errors, yet any indexing error (a wrong
/// or missing term) is O(|term|) and is caught. A tiny absolute term covers denormal flushing.
///
/// `scale` widens the bound for algorithms that round more than one chain per output (Winograd's
/// transforms add and subtract up to 16 transformed terms per output before and after the chain).
func assertClose(
    _ actual: [Float], _ expected: [Float], magnitude: [Float], k: Int, _ what: String, scale: Double = 1,
    file: StaticString = #filePath, line: UInt = #line
) {
    XCTAssertEqual(actual.count, expected.count, what, file: file, line: line)
    let u = Double(Float.ulpOfOne) / 2
    var failures = 0
    for i in 0..<min(actual.count, expected.count) {
        let a = Double(actual[i]), e = Double(expected[i])
        let tolerance = scale * Double(k + 2) * u * Double(magnitude[i]) + u * abs(e) + 1e-30
        if !(abs(a - e) <= tolerance) {
            failures += 1
            if failures <= 5 {
                XCTFail("\(what): element \(i): got \(a), expected \(e), |Δ| \(abs(a - e)) > \(tolerance)", file: file, line: line)
            }
        }
    }
    if failures > 5 { XCTFail("\(what): \(failures) elements out of tolerance", file: file, line: line) }
}

/// Runs `Conv2DKernel` and returns its output.
func fastConv(_ shape: Conv2DShape, input: [Float], weights: [Float], bias: [Float]?, relu: Bool,
              batch: Int, h: Int, w: Int, pool: ThreadPool, kernels: KernelSet,
              method: Conv2DKernel.Method? = nil, residual: [Float]? = nil, activation: Activation? = nil) -> [Float] {
    let kernel = weights.withUnsafeBufferPointer { wp in
        withOptionalPointer(bias) { bp in
            Conv2DKernel(shape: shape, weights: wp.baseAddress!, bias: bp, activation: activation ?? (relu ? .relu : nil),
                         residual: residual != nil, kernels: kernels, method: method)
        }
    }
    let (oh, ow) = shape.outputSize(inHeight: h, inWidth: w)
    var out = [Float](repeating: .nan, count: batch * shape.outChannels * oh * ow)
    var ws = [Float](repeating: .nan, count: workspaceFloats(kernel.workspaceBytes(batch: batch, inHeight: h, inWidth: w, threads: pool.threadCount)))
    input.withUnsafeBufferPointer { ip in
        out.withUnsafeMutableBufferPointer { op in
            ws.withUnsafeMutableBytes { wsp in
                withOptionalPointer(residual) { rp in
                    kernel.run(input: ip.baseAddress!, output: op.baseAddress!, batch: batch, inHeight: h, inWidth: w,
                               workspace: wsp.baseAddress!, pool: pool, residual: rp)
                }
            }
        }
    }
    return out
}

/// Runs `ReferenceKernels.conv2d`; with `absolute`, on |input|, |weights|, |bias| without ReLU
/// (the per-output magnitude Σ|w·x| + |b| used by the tolerance).
func referenceConv(_ shape: Conv2DShape, input: [Float], weights: [Float], bias: [Float]?, relu: Bool,
                   batch: Int, h: Int, w: Int, absolute: Bool = false) -> [Float] {
    let (oh, ow) = shape.outputSize(inHeight: h, inWidth: w)
    var out = [Float](repeating: .nan, count: batch * shape.outChannels * oh * ow)
    let (x, wt, b) = operands(input, weights, bias, absolute: absolute)
    x.withUnsafeBufferPointer { ip in
        wt.withUnsafeBufferPointer { wp in
            withOptionalPointer(b) { bp in
                out.withUnsafeMutableBufferPointer { op in
                    ReferenceKernels.conv2d(shape: shape, input: ip.baseAddress!, weights: wp.baseAddress!, bias: bp,
                                            relu: relu && !absolute, output: op.baseAddress!, batch: batch,
                                            inHeight: h, inWidth: w)
                }
            }
        }
    }
    return out
}

func fastLinear(inFeatures: Int, outFeatures: Int, input: [Float], weights: [Float], bias: [Float]?, relu: Bool,
                batch: Int, pool: ThreadPool, kernels: KernelSet, tokens: Bool = false, activation: Activation? = nil) -> [Float] {
    var out = [Float](repeating: .nan, count: batch * outFeatures)
    // The kernel reads `weights` in place: it lives and runs inside the pointer's scope.
    weights.withUnsafeBufferPointer { wp in
        let kernel = withOptionalPointer(bias) { bp in
            LinearKernel(inFeatures: inFeatures, outFeatures: outFeatures, weights: wp.baseAddress!, owner: nil, bias: bp,
                         activation: activation ?? (relu ? .relu : nil), kernels: kernels, tokens: tokens)
        }
        var ws = [Float](repeating: .nan, count: workspaceFloats(kernel.workspaceBytes(batch: batch, threads: pool.threadCount)))
        input.withUnsafeBufferPointer { ip in
            out.withUnsafeMutableBufferPointer { op in
                ws.withUnsafeMutableBytes { wsp in
                    kernel.run(input: ip.baseAddress!, output: op.baseAddress!, batch: batch, workspace: wsp.baseAddress!, pool: pool)
                }
            }
        }
    }
    return out
}

func referenceLinear(inFeatures: Int, outFeatures: Int, input: [Float], weights: [Float], bias: [Float]?, relu: Bool,
                     batch: Int, absolute: Bool = false) -> [Float] {
    var out = [Float](repeating: .nan, count: batch * outFeatures)
    let (x, wt, b) = operands(input, weights, bias, absolute: absolute)
    x.withUnsafeBufferPointer { ip in
        wt.withUnsafeBufferPointer { wp in
            withOptionalPointer(b) { bp in
                out.withUnsafeMutableBufferPointer { op in
                    ReferenceKernels.linear(inFeatures: inFeatures, outFeatures: outFeatures, input: ip.baseAddress!,
                                            weights: wp.baseAddress!, bias: bp, relu: relu && !absolute,
                                            output: op.baseAddress!, batch: batch)
                }
            }
        }
    }
    return out
}

/// The operands as given, or their absolute values (for the magnitude Σ|w·x| + |b| the tolerance uses).
func operands(_ input: [Float], _ weights: [Float], _ bias: [Float]?, absolute: Bool) -> ([Float], [Float], [Float]?) {
    absolute ? (input.map(abs), weights.map(abs), bias?.map(abs)) : (input, weights, bias)
}

func withOptionalPointer<R>(_ array: [Float]?, _ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let array else { return body(nil) }
    return array.withUnsafeBufferPointer { body($0.baseAddress) }
}
