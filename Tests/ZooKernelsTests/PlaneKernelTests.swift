import XCTest
@testable import ZooKernels

/// Every plane kernel of every supported kernel set against its plain twin in `ReferenceKernels`,
/// at random shapes whose widths straddle the 8-lane vector (1, 7, 8, 9, 15, 16, 17 and random),
/// with odd strides, pads, kernels 1–5 and PyTorch's floor/ceil output sizes.
///
/// Tolerances (u = 2⁻²⁴, the unit roundoff):
/// - max pool, ReLU: bit for bit, NaN included (every NaN here has the same bits).
/// - average and adaptive pooling: the same terms summed column-first instead of row-first, so
///   |Δ| ≤ (n + kH + kW + 2)·u·avg|x| + u·|y|, n the window's size (recursive-summation bound).
/// - LRN: |Δ| ≤ 9u·|y| (√d·√√d for beta 0.75 is within 4.5u of d^0.75, powf within 1.7u).
/// - softmax: |Δ| ≤ (L + L/8 + 12)·u·|y| for length L (the sum's order differs; all terms > 0).
/// - batch norm: |Δ| ≤ 4u·(|(x − mean)·scale/σ| + |shift|) + u·|y|.
/// Outputs start as distinct NaNs for the fast kernel and the twin, so an unwritten element fails.
final class PlaneKernelTests: XCTestCase {
    static let unwrittenFast = Float(nan: 0x11, signaling: false)
    static let unwrittenReference = Float(nan: 0x22, signaling: false)
    let pool = ThreadPool(threads: 2)

    // MARK: Shapes

    /// A size near the vector width, or a random one.
    func size(_ rng: inout SeededRandom, upTo limit: Int = 40) -> Int {
        let edges = [1, 7, 8, 9, 15, 16, 17]
        return Bool.random(using: &rng) ? edges.randomElement(using: &rng)! : Int.random(in: 1...limit, using: &rng)
    }

    /// PyTorch's pooling_output_shape (aten/src/ATen/native/Pool.h) with pads `padA`/`padB`: floor,
    /// or ceil with the last window starting inside the input or its leading pad; nil when empty.
    func pooledSize(_ input: Int, kernel: Int, stride: Int, padA: Int, padB: Int, ceil: Bool) -> Int? {
        let span = input + padA + padB - kernel
        guard span >= 0 else { return nil }
        var out = (span + (ceil ? stride - 1 : 0)) / stride + 1
        if ceil && (out - 1) * stride >= input + padA { out -= 1 }
        return out
    }

    struct PoolCase: CustomStringConvertible {
        var shape: Pool2DShape
        var planes, inHeight, inWidth, outHeight, outWidth: Int
        var inputCount: Int { planes * inHeight * inWidth }
        var outputCount: Int { planes * outHeight * outWidth }
        var description: String { "\(planes)×\(inHeight)×\(inWidth) → \(outHeight)×\(outWidth) \(shape)" }
    }

    /// Kernel 1–5, stride 1–3, pads 0…kernel/2 per side (PyTorch's limit), floor or ceil.
    func randomPoolCase(_ rng: inout SeededRandom) -> PoolCase {
        while true {
            let (inH, inW) = (size(&rng), size(&rng))
            let kH = Int.random(in: 1...5, using: &rng), kW = Int.random(in: 1...5, using: &rng)
            let sH = Int.random(in: 1...3, using: &rng), sW = Int.random(in: 1...3, using: &rng)
            let top = Int.random(in: 0...kH / 2, using: &rng), bottom = Int.random(in: 0...kH / 2, using: &rng)
            let left = Int.random(in: 0...kW / 2, using: &rng), right = Int.random(in: 0...kW / 2, using: &rng)
            let ceil = Bool.random(using: &rng)
            guard let oH = pooledSize(inH, kernel: kH, stride: sH, padA: top, padB: bottom, ceil: ceil),
                  let oW = pooledSize(inW, kernel: kW, stride: sW, padA: left, padB: right, ceil: ceil) else { continue }
            let shape = Pool2DShape(kernelH: kH, kernelW: kW, strideH: sH, strideW: sW,
                                    padTop: top, padLeft: left, padBottom: bottom, padRight: right)
            return PoolCase(shape: shape, planes: Int.random(in: 1...4, using: &rng), inHeight: inH, inWidth: inW,
                            outHeight: oH, outWidth: oW)
        }
    }

    /// Random values in [-1, 1) with about `fraction` of them NaN and as many ±∞.
    func withSpecials(_ values: [Float], fraction: Double, _ rng: inout SeededRandom) -> [Float] {
        values.map { v in
            let r = Double.random(in: 0..<1, using: &rng)
            return r < fraction ? .nan : r < 2 * fraction ? (Bool.random(using: &rng) ? .infinity : -.infinity) : v
        }
    }

    // MARK: Runners (kernels == nil: the ReferenceKernels twin)

    func output(_ count: Int, reference: Bool, _ body: (UnsafeMutablePointer<Float>) -> Void) -> [Float] {
        var out = [Float](repeating: reference ? Self.unwrittenReference : Self.unwrittenFast, count: count)
        out.withUnsafeMutableBufferPointer { body($0.baseAddress!) }
        return out
    }

    func maxPool(_ c: PoolCase, _ x: [Float], _ kernels: KernelSet?, _ pool: ThreadPool) -> [Float] {
        x.withUnsafeBufferPointer { xp in
            output(c.outputCount, reference: kernels == nil) { y in
                if let kernels {
                    PoolKernels.maxPool(c.shape, input: xp.baseAddress!, output: y, planes: c.planes, inHeight: c.inHeight,
                                        inWidth: c.inWidth, outHeight: c.outHeight, outWidth: c.outWidth, pool: pool, kernels: kernels)
                } else {
                    ReferenceKernels.maxPool(c.shape, input: xp.baseAddress!, output: y, planes: c.planes, inHeight: c.inHeight,
                                             inWidth: c.inWidth, outHeight: c.outHeight, outWidth: c.outWidth, pool: pool)
                }
            }
        }
    }

    func averagePool(_ c: PoolCase, includePad: Bool, _ x: [Float], _ kernels: KernelSet?, _ pool: ThreadPool) -> [Float] {
        x.withUnsafeBufferPointer { xp in
            output(c.outputCount, reference: kernels == nil) { y in
                if let kernels {
                    PoolKernels.averagePool(c.shape, countIncludePad: includePad, input: xp.baseAddress!, output: y, planes: c.planes,
                                            inHeight: c.inHeight, inWidth: c.inWidth, outHeight: c.outHeight, outWidth: c.outWidth,
                                            pool: pool, kernels: kernels)
                } else {
                    ReferenceKernels.averagePool(c.shape, countIncludePad: includePad, input: xp.baseAddress!, output: y,
                                                 planes: c.planes, inHeight: c.inHeight, inWidth: c.inWidth,
                                                 outHeight: c.outHeight, outWidth: c.outWidth, pool: pool)
                }
            }
        }
    }

    func adaptivePool(_ c: PoolCase, _ x: [Float], _ kernels: KernelSet?, _ pool: ThreadPool) -> [Float] {
        x.withUnsafeBufferPointer { xp in
            output(c.outputCount, reference: kernels == nil) { y in
                if let kernels {
                    PoolKernels.adaptiveAveragePool(input: xp.baseAddress!, output: y, planes: c.planes, inHeight: c.inHeight,
                                                    inWidth: c.inWidth, outHeight: c.outHeight, outWidth: c.outWidth, pool: pool,
                                                    kernels: kernels)
                } else {
                    ReferenceKernels.adaptiveAveragePool(input: xp.baseAddress!, output: y, planes: c.planes, inHeight: c.inHeight,
                                                         inWidth: c.inWidth, outHeight: c.outHeight, outWidth: c.outWidth, pool: pool)
                }
            }
        }
    }

    struct LRNCase: CustomStringConvertible {
        var batch, channels, spatial, size, low, high: Int
        var alpha, beta, bias: Float
        var count: Int { batch * channels * spatial }
        var description: String {
            "[\(batch), \(channels), \(spatial)] size \(size) window [\(low), \(high)] α \(alpha) β \(beta) k \(bias)"
        }
    }

    func lrn(_ c: LRNCase, _ x: [Float], _ kernels: KernelSet?, _ pool: ThreadPool) -> [Float] {
        x.withUnsafeBufferPointer { xp in
            output(c.count, reference: kernels == nil) { y in
                if let kernels {
                    NormalizationKernels.lrn(input: xp.baseAddress!, output: y, batch: c.batch, channels: c.channels,
                                             spatial: c.spatial, size: c.size, low: c.low, high: c.high, alpha: c.alpha,
                                             beta: c.beta, bias: c.bias, pool: pool, kernels: kernels)
                } else {
                    ReferenceKernels.lrn(input: xp.baseAddress!, output: y, batch: c.batch, channels: c.channels,
                                         spatial: c.spatial, size: c.size, low: c.low, high: c.high, alpha: c.alpha,
                                         beta: c.beta, bias: c.bias, pool: pool)
                }
            }
        }
    }

    func softmax(outer: Int, length: Int, inner: Int, _ x: [Float], _ kernels: KernelSet?, _ pool: ThreadPool) -> [Float] {
        x.withUnsafeBufferPointer { xp in
            output(x.count, reference: kernels == nil) { y in
                if let kernels {
                    NormalizationKernels.softmax(input: xp.baseAddress!, output: y, outer: outer, length: length, inner: inner,
                                                 pool: pool, kernels: kernels)
                } else {
                    ReferenceKernels.softmax(input: xp.baseAddress!, output: y, outer: outer, length: length, inner: inner, pool: pool)
                }
            }
        }
    }

    /// Per-channel parameters of batch norm: scale, shift, mean, variance (> 0).
    struct BatchNormParameters {
        var scale, shift, mean, variance: [Float]
        var epsilon: Float = 1e-5
        init(channels: Int, _ rng: inout SeededRandom) {
            scale = .random(channels, &rng); shift = .random(channels, &rng); mean = .random(channels, &rng)
            variance = (0..<channels).map { _ in Float.random(in: 0.01..<2, using: &rng) }
        }
    }

    func batchNorm(batch: Int, channels: Int, spatial: Int, _ p: BatchNormParameters, _ x: [Float], _ kernels: KernelSet?,
                   _ pool: ThreadPool) -> [Float] {
        x.withUnsafeBufferPointer { xp in
            output(x.count, reference: kernels == nil) { y in
                if let kernels {
                    NormalizationKernels.batchNorm(input: xp.baseAddress!, output: y, batch: batch, channels: channels, spatial: spatial,
                                                   scale: p.scale, shift: p.shift, mean: p.mean, variance: p.variance,
                                                   epsilon: p.epsilon, pool: pool, kernels: kernels)
                } else {
                    ReferenceKernels.batchNorm(input: xp.baseAddress!, output: y, batch: batch, channels: channels, spatial: spatial,
                                               scale: p.scale, shift: p.shift, mean: p.mean, variance: p.variance,
                                               epsilon: p.epsilon, pool: pool)
                }
            }
        }
    }

    /// Bit-for-bit equality; a failure names the first differing elements and how many differ.
    func assertIdenticalBits(_ actual: [Float], _ expected: [Float], _ what: String,
                             file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.count, expected.count, "\(what): count", file: file, line: line)
        let differing = zip(actual, expected).enumerated().filter { $0.element.0.bitPattern != $0.element.1.bitPattern }
        guard !differing.isEmpty else { return }
        let first = differing.prefix(3).map { "[\($0.offset)] \($0.element.0) vs \($0.element.1)" }.joined(separator: ", ")
        XCTFail("\(what): \(differing.count) of \(actual.count) elements differ: \(first)", file: file, line: line)
    }

    /// Both NaN at exactly the same elements.
    func assertSameNaNs(_ actual: [Float], _ expected: [Float], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.map(\.isNaN), expected.map(\.isNaN), "\(what): NaN positions", file: file, line: line)
    }

    /// A random LRN geometry: PyTorch (`low = -size/2`) or ONNX (`low = -(size-1)/2`) windows,
    /// beta 0.75 (the vector fast path) or a random power.
    func randomLRNCase(_ rng: inout SeededRandom) -> LRNCase {
        let size = Int.random(in: 1...5, using: &rng)
        let low = Bool.random(using: &rng) ? -(size / 2) : -((size - 1) / 2)
        let beta: Float = Bool.random(using: &rng) ? 0.75 : .random(in: 0.3..<1.5, using: &rng)
        return LRNCase(batch: Int.random(in: 1...3, using: &rng), channels: Int.random(in: 1...12, using: &rng),
                       spatial: self.size(&rng, upTo: 70), size: size, low: low, high: low + size - 1,
                       alpha: .random(in: 1e-4..<2, using: &rng), beta: beta, bias: .random(in: 0.5..<2, using: &rng))
    }

    // MARK: Tests

    func testMaxPoolMatchesReferenceBitForBit() {
        var rng = SeededRandom(seed: 101)
        for set in KernelSet.supported {
            for _ in 0..<80 {
                let c = randomPoolCase(&rng)
                for fraction in [0, 0.04] {
                    let x = withSpecials(.random(c.inputCount, &rng), fraction: fraction, &rng)
                    assertIdenticalBits(maxPool(c, x, set, pool), maxPool(c, x, nil, pool), "\(set) \(c) NaN \(fraction)")
                }
            }
        }
    }

    /// 3×3 windows at stride 1 with a pad of 1 on every side (GoogLeNet's inception branches; their
    /// own path on planes of 8 to 4096 pixels): heights and widths around 8, NaNs included.
    func testMaxPool3x3SameMatchesReferenceBitForBit() {
        var rng = SeededRandom(seed: 106)
        let shape = Pool2DShape(kernelH: 3, kernelW: 3, strideH: 1, strideW: 1, padTop: 1, padLeft: 1, padBottom: 1, padRight: 1)
        for set in KernelSet.supported {
            for _ in 0..<60 {
                let (h, w) = (size(&rng, upTo: 70), size(&rng, upTo: 70))
                let c = PoolCase(shape: shape, planes: Int.random(in: 1...20, using: &rng), inHeight: h, inWidth: w, outHeight: h, outWidth: w)
                for fraction in [0, 0.04] {
                    let x = withSpecials(.random(c.inputCount, &rng), fraction: fraction, &rng)
                    assertIdenticalBits(maxPool(c, x, set, pool), maxPool(c, x, nil, pool), "\(set) \(c) NaN \(fraction)")
                }
            }
        }
    }

    /// Batches of transposes, sizes around the 8×8 blocks and 32-row items: the plain twin's floats.
    func testTransposeMatchesReference() {
        var rng = SeededRandom(seed: 107)
        for set in KernelSet.supported {
            for _ in 0..<40 {
                let (batch, rows, columns) = (Int.random(in: 1...3, using: &rng), size(&rng, upTo: 100), size(&rng, upTo: 100))
                let x = [Float].random(batch * rows * columns, &rng)
                var fast = [Float](repeating: .nan, count: x.count), plain = fast
                x.withUnsafeBufferPointer { xp in
                    fast.withUnsafeMutableBufferPointer { TransposeKernels.transpose(xp.baseAddress!, $0.baseAddress!, batch: batch, rows: rows,
                                                                                     columns: columns, pool: pool, kernels: set) }
                    plain.withUnsafeMutableBufferPointer { ReferenceKernels.transpose(xp.baseAddress!, $0.baseAddress!, batch: batch,
                                                                                      rows: rows, columns: columns) }
                }
                assertIdenticalBits(fast, plain, "\(set) \(batch) × \(rows) × \(columns)")
            }
        }
    }

    func testReluMatchesReferenceBitForBit() {
        var rng = SeededRandom(seed: 102)
        for set in KernelSet.supported {
            for count in [1, 7, 8, 9, 15, 16, 17, 100, Int.random(in: 1...300, using: &rng)] {
                var x = withSpecials(.random(count, &rng), fraction: 0.1, &rng)
                x[0] = -0.0
                let run = { (fast: Bool) in
                    x.withUnsafeBufferPointer { xp in
                        self.output(count, reference: !fast) { y in
                            if fast {
                                ElementwiseKernels.relu(input: xp.baseAddress!, output: y, count: count, kernels: set)
                            } else {
                                ReferenceKernels.relu(input: xp.baseAddress!, output: y, count: count)
                            }
                        }
                    }
                }
                assertIdenticalBits(run(true), run(false), "\(set) count \(count)")
            }
        }
    }

    func testAveragePoolMatchesReference() {
        var rng = SeededRandom(seed: 103)
        for set in KernelSet.supported {
            for _ in 0..<80 {
                let c = randomPoolCase(&rng)
                let includePad = Bool.random(using: &rng)
                let x = [Float].random(c.inputCount, &rng)
                let what = "\(set) \(c) countIncludePad \(includePad)"
                let magnitude = averagePool(c, includePad: includePad, x.map(abs), nil, pool)
                assertClose(averagePool(c, includePad: includePad, x, set, pool), averagePool(c, includePad: includePad, x, nil, pool),
                            magnitude: magnitude, k: c.shape.kernelH * c.shape.kernelW + c.shape.kernelH + c.shape.kernelW, what)
                let special = withSpecials(x, fraction: 0.04, &rng)
                assertSameNaNs(averagePool(c, includePad: includePad, special, set, pool),
                               averagePool(c, includePad: includePad, special, nil, pool), what)
            }
        }
    }

    /// 2×2 windows at stride 2 without padding (DenseNet's transitions; their own path when every
    /// window is inside): widths around 8 and 16 windows, floor and ceil, many planes.
    func testAveragePool2x2MatchesReference() {
        var rng = SeededRandom(seed: 105)
        let shape = Pool2DShape(kernelH: 2, kernelW: 2, strideH: 2, strideW: 2)
        for set in KernelSet.supported {
            for _ in 0..<60 {
                let (inH, inW) = (size(&rng), size(&rng))
                let ceil = Bool.random(using: &rng)
                guard let oH = pooledSize(inH, kernel: 2, stride: 2, padA: 0, padB: 0, ceil: ceil),
                      let oW = pooledSize(inW, kernel: 2, stride: 2, padA: 0, padB: 0, ceil: ceil) else { continue }
                let c = PoolCase(shape: shape, planes: Int.random(in: 1...20, using: &rng), inHeight: inH, inWidth: inW,
                                 outHeight: oH, outWidth: oW)
                let includePad = Bool.random(using: &rng)
                let x = [Float].random(c.inputCount, &rng)
                let what = "\(set) \(c) countIncludePad \(includePad)"
                let magnitude = averagePool(c, includePad: includePad, x.map(abs), nil, pool)
                assertClose(averagePool(c, includePad: includePad, x, set, pool), averagePool(c, includePad: includePad, x, nil, pool),
                            magnitude: magnitude, k: 8, what)
                let special = withSpecials(x, fraction: 0.04, &rng)
                assertSameNaNs(averagePool(c, includePad: includePad, special, set, pool),
                               averagePool(c, includePad: includePad, special, nil, pool), what)
            }
        }
    }

    func testAdaptiveAveragePoolMatchesReference() {
        var rng = SeededRandom(seed: 104)
        for set in KernelSet.supported {
            for trial in 0..<60 {
                let (inH, inW) = (size(&rng), size(&rng))
                // The first trials are global pooling; later ones also enlarge (out > in).
                let (oH, oW) = trial < 5 ? (1, 1) : (Int.random(in: 1...inH + 2, using: &rng), Int.random(in: 1...inW + 2, using: &rng))
                let c = PoolCase(shape: Pool2DShape(kernelH: 1, kernelW: 1, strideH: 1, strideW: 1),
                                 planes: Int.random(in: 1...4, using: &rng), inHeight: inH, inWidth: inW, outHeight: oH, outWidth: oW)
                let x = [Float].random(c.inputCount, &rng)
                let (wH, wW) = (inH / oH + 2, inW / oW + 2)  // bounds on the window's size
                assertClose(adaptivePool(c, x, set, pool), adaptivePool(c, x, nil, pool), magnitude: adaptivePool(c, x.map(abs), nil, pool),
                            k: wH * wW + wH + wW, "\(set) \(c)")
                let special = withSpecials(x, fraction: 0.04, &rng)
                assertSameNaNs(adaptivePool(c, special, set, pool), adaptivePool(c, special, nil, pool), "\(set) \(c)")
            }
        }
    }

    func testLRNMatchesReference() {
        var rng = SeededRandom(seed: 105)
        for set in KernelSet.supported {
            for _ in 0..<60 {
                let c = randomLRNCase(&rng)
                let gain = Float.random(in: 1..<10, using: &rng)
                let x = [Float].random(c.count, &rng).map { $0 * gain }
                let expected = lrn(c, x, nil, pool)
                assertClose(lrn(c, x, set, pool), expected, magnitude: expected.map(abs), k: 6, "\(set) \(c)")
                let special = withSpecials(x, fraction: 0.03, &rng)
                assertSameNaNs(lrn(c, special, set, pool), lrn(c, special, nil, pool), "\(set) \(c)")
            }
        }
    }

    func testSoftmaxMatchesReference() {
        var rng = SeededRandom(seed: 106)
        for set in KernelSet.supported {
            var cases: [(outer: Int, length: Int, inner: Int)] = [(1, 1000, 1), (2, 1000, 1), (3, 10, 13)]
            for _ in 0..<40 {
                let inner = Bool.random(using: &rng) ? 1 : size(&rng, upTo: 24)
                cases.append((Int.random(in: 1...3, using: &rng), size(&rng, upTo: 200), inner))
            }
            for (outer, length, inner) in cases {
                let what = "\(set) [\(outer), \(length), \(inner)]"
                let gain = Float.random(in: 1..<30, using: &rng)
                let x = [Float].random(outer * length * inner, &rng).map { $0 * gain }
                let expected = softmax(outer: outer, length: length, inner: inner, x, nil, pool)
                assertClose(softmax(outer: outer, length: length, inner: inner, x, set, pool), expected,
                            magnitude: expected.map(abs), k: length + length / 8 + 9, what)
                let special = withSpecials(x, fraction: 0.02, &rng)
                assertSameNaNs(softmax(outer: outer, length: length, inner: inner, special, set, pool),
                               softmax(outer: outer, length: length, inner: inner, special, nil, pool), what)
            }
        }
    }

    func testBatchNormMatchesReference() {
        var rng = SeededRandom(seed: 107)
        for set in KernelSet.supported {
            for _ in 0..<40 {
                let (batch, channels, spatial) = (Int.random(in: 1...3, using: &rng), Int.random(in: 1...9, using: &rng), size(&rng, upTo: 70))
                let p = BatchNormParameters(channels: channels, &rng)
                let x = [Float].random(batch * channels * spatial, &rng)
                let magnitude = x.indices.map { i in
                    let c = i / spatial % channels
                    let sigma = (Double(p.variance[c]) + Double(p.epsilon)).squareRoot()
                    return Float(abs((Double(x[i]) - Double(p.mean[c])) * Double(p.scale[c]) / sigma) + abs(Double(p.shift[c])))
                }
                let what = "\(set) [\(batch), \(channels), \(spatial)]"
                assertClose(batchNorm(batch: batch, channels: channels, spatial: spatial, p, x, set, pool),
                            batchNorm(batch: batch, channels: channels, spatial: spatial, p, x, nil, pool),
                            magnitude: magnitude, k: 2, what)
            }
        }
    }

    /// Threads split planes, rows or column blocks only, so 1, 2 and 3 threads give the same bits.
    func testPlaneKernelsIdenticalAcrossThreadCounts() {
        var rng = SeededRandom(seed: 108)
        let pools = [1, 2, 3].map { ThreadPool(threads: $0) }
        let pooling = PoolCase(shape: Pool2DShape(kernelH: 3, kernelW: 3, strideH: 2, strideW: 2, padTop: 1, padLeft: 1,
                                                  padBottom: 1, padRight: 1),
                               planes: 14, inHeight: 27, inWidth: 27, outHeight: 14, outWidth: 14)
        let adaptive = PoolCase(shape: pooling.shape, planes: 14, inHeight: 13, inWidth: 13, outHeight: 6, outWidth: 6)
        let norm = LRNCase(batch: 2, channels: 11, spatial: 45, size: 5, low: -2, high: 2, alpha: 1e-2, beta: 0.75, bias: 2)
        let x = [Float].random(pooling.inputCount, &rng)
        let y = [Float].random(norm.count, &rng).map { $0 * 5 }
        let p = BatchNormParameters(channels: 11, &rng)
        for set in KernelSet.supported {
            let runs: [(String, (ThreadPool) -> [Float])] = [
                ("maxPool", { self.maxPool(pooling, x, set, $0) }),
                ("averagePool", { self.averagePool(pooling, includePad: false, x, set, $0) }),
                ("adaptiveAveragePool", { self.adaptivePool(adaptive, Array(x[..<adaptive.inputCount]), set, $0) }),
                ("lrn β 0.75", { self.lrn(norm, y, set, $0) }),
                ("lrn β 0.6", { var c = norm; c.beta = 0.6; return self.lrn(c, y, set, $0) }),
                ("softmax rows", { self.softmax(outer: 2, length: 495, inner: 1, y, set, $0) }),
                ("softmax columns", { self.softmax(outer: 2, length: 11, inner: 45, y, set, $0) }),
                ("batchNorm", { self.batchNorm(batch: 2, channels: 11, spatial: 45, p, y, set, $0) }),
            ]
            for (name, run) in runs {
                let results = pools.map { run($0) }
                assertIdenticalBits(results[1], results[0], "\(set) \(name): 2 vs 1 threads")
                assertIdenticalBits(results[2], results[0], "\(set) \(name): 3 vs 1 threads")
            }
        }
    }
}
