import XCTest
@testable import ZooKernels

/// Fast convolution vs the Double-accumulating reference over edge cases and seeded random shapes,
/// for every kernel set this CPU supports.
final class Conv2DTests: XCTestCase {
    static let pool = ThreadPool(threads: 2)

    /// Runs one case against the reference; input/weights/bias drawn from `rng`.
    func check(_ shape: Conv2DShape, batch: Int, h: Int, w: Int, bias: Bool = true, relu: Bool = true,
               method: Conv2DKernel.Method? = nil, rng: inout SeededRandom, file: StaticString = #filePath, line: UInt = #line) {
        let input = [Float].random(batch * shape.inChannels * h * w, &rng)
        let weights = [Float].random(shape.outChannels * shape.reductionSize, &rng)
        let b: [Float]? = bias ? .random(shape.outChannels, &rng) : nil
        let expected = referenceConv(shape, input: input, weights: weights, bias: b, relu: relu, batch: batch, h: h, w: w)
        let magnitude = referenceConv(shape, input: input, weights: weights, bias: b, relu: relu, batch: batch, h: h, w: w, absolute: true)
        let usesWinograd = WinogradConv.applies(to: shape) && (method ?? (shape.groupInChannels >= 16 ? .winograd : .im2col)) == .winograd
        for set in KernelSet.supported {
            let fast = fastConv(shape, input: input, weights: weights, bias: b, relu: relu, batch: batch, h: h, w: w,
                                pool: Self.pool, kernels: set, method: method)
            assertClose(fast, expected, magnitude: magnitude, k: shape.reductionSize,
                        "\(set) \(method?.rawValue ?? "auto") \(shape) batch \(batch) \(h)×\(w) bias \(bias) relu \(relu)",
                        scale: usesWinograd ? 4 : 1, file: file, line: line)
        }
    }

    /// The im2col path's two schedules: a small image (every B panel in one block, items over the
    /// weights' row panels) and a large one (items over ranges of B panels), with k beyond one block.
    func testSmallAndLargeImageSchedules() {
        var rng = SeededRandom(seed: 71)
        let pointwise = Conv2DShape(inChannels: 300, outChannels: 50, kernelH: 1, kernelW: 1)
        check(pointwise, batch: 2, h: 7, w: 7, method: .im2col, rng: &rng)
        check(pointwise, batch: 1, h: 41, w: 37, method: .im2col, rng: &rng)
        let grouped = Conv2DShape(inChannels: 64, outChannels: 40, kernelH: 3, kernelW: 3, padTop: 1, padLeft: 1,
                                  padBottom: 1, padRight: 1, groups: 2)
        check(grouped, batch: 2, h: 9, w: 9, method: .im2col, rng: &rng)
        check(grouped, batch: 1, h: 40, w: 33, method: .im2col, rng: &rng)
    }

    /// `.pixelTiles`: the reference's values, bit-identical to im2col (the same chain of multiply-adds
    /// per output), last partial 6-pixel tiles and 16-channel panels included, groups too — reading
    /// 1×1 inputs in place and any other shape (padded, strided, dilated, 3×3) from its im2col matrix;
    /// small images that 7 divides (7×7, 3×7) take the AVX-512 set's 7-pixel tiles where the channel
    /// panels pair up (50 and 64 channels: 4 panels, the last of 50 part-filled), 6-pixel ones where
    /// they do not (70: 5 panels).
    func testPixelTiles() {
        var rng = SeededRandom(seed: 79)
        for (shape, h, w) in [(Conv2DShape(inChannels: 300, outChannels: 50, kernelH: 1, kernelW: 1), 7, 7),
                              (Conv2DShape(inChannels: 40, outChannels: 70, kernelH: 1, kernelW: 1), 7, 7),
                              (Conv2DShape(inChannels: 40, outChannels: 64, kernelH: 1, kernelW: 1), 3, 7),
                              (Conv2DShape(inChannels: 24, outChannels: 32, kernelH: 3, kernelW: 3, strideH: 2, strideW: 2,
                                           padTop: 1, padLeft: 1, padBottom: 1, padRight: 1), 14, 14),
                              (Conv2DShape(inChannels: 24, outChannels: 70, kernelH: 1, kernelW: 1, groups: 2), 5, 11),
                              (Conv2DShape(inChannels: 16, outChannels: 16, kernelH: 1, kernelW: 1), 1, 1),
                              (Conv2DShape(inChannels: 4, outChannels: 4, kernelH: 1, kernelW: 1, padTop: 1, padLeft: 1,
                                           padBottom: 1, padRight: 1), 6, 5),
                              (Conv2DShape(inChannels: 40, outChannels: 37, kernelH: 3, kernelW: 3, strideH: 2, strideW: 2,
                                           padTop: 1, padLeft: 1, padBottom: 1, padRight: 1), 14, 13),
                              (Conv2DShape(inChannels: 12, outChannels: 40, kernelH: 3, kernelW: 2, strideH: 1, strideW: 3, dilationH: 2,
                                           padTop: 2, padLeft: 0, padBottom: 1, padRight: 2, groups: 2), 9, 16)] {
            check(shape, batch: 2, h: h, w: w, method: .pixelTiles, rng: &rng)
            let x = [Float].random(2 * shape.inChannels * h * w, &rng), weights = [Float].random(shape.outChannels * shape.reductionSize, &rng)
            let bias = [Float].random(shape.outChannels, &rng)
            for set in KernelSet.supported {
                let tiles = fastConv(shape, input: x, weights: weights, bias: bias, relu: true, batch: 2, h: h, w: w, pool: Self.pool,
                                     kernels: set, method: .pixelTiles)
                let panels = fastConv(shape, input: x, weights: weights, bias: bias, relu: true, batch: 2, h: h, w: w, pool: Self.pool,
                                      kernels: set, method: .im2col)
                XCTAssertEqual(tiles, panels, "\(set) \(shape) \(h)×\(w)")
            }
        }
    }

    /// The size-dependent choice (`Conv2DKernel.preferredMethod`): pixel tiles for expanding 1×1
    /// convolutions of small images (≤ 14×14), nothing for larger or unknown sizes.
    func testPreferredMethod() {
        let expand = Conv2DShape(inChannels: 16, outChannels: 64, kernelH: 1, kernelW: 1)
        XCTAssertEqual(Conv2DKernel.preferredMethod(for: expand, inHeight: 7, inWidth: 7), .pixelTiles)
        XCTAssertEqual(Conv2DKernel.preferredMethod(for: expand, inHeight: 13, inWidth: 14), .pixelTiles)
        XCTAssertNil(Conv2DKernel.preferredMethod(for: expand, inHeight: 15, inWidth: 14))
        XCTAssertNil(Conv2DKernel.preferredMethod(for: expand, inHeight: 28, inWidth: 28))
        XCTAssertNil(Conv2DKernel.preferredMethod(for: expand, inHeight: nil, inWidth: 7))
        let padded = Conv2DShape(inChannels: 16, outChannels: 64, kernelH: 1, kernelW: 1, padTop: 1, padLeft: 1, padBottom: 1, padRight: 1)
        XCTAssertNil(Conv2DKernel.preferredMethod(for: padded, inHeight: 7, inWidth: 7))
    }

    /// A residual added before the activation (ResNet's shortcut), by every method — in the tile's
    /// registers (im2col, edge tiles included) or after the scatter (pixel tiles, implicit GEMM) or
    /// the output transform (Winograd): the reference conv, then `+ residual` and the activation in
    /// Float; and bit-identical between methods that share the chain of multiply-adds.
    func testResidualBeforeActivation() {
        var rng = SeededRandom(seed: 83)
        let cases: [(Conv2DShape, Int, Int, [Conv2DKernel.Method])] = [
            (Conv2DShape(inChannels: 40, outChannels: 70, kernelH: 1, kernelW: 1), 9, 11, [.im2col, .pixelTiles]),
            (Conv2DShape(inChannels: 40, outChannels: 50, kernelH: 1, kernelW: 1), 7, 7, [.im2col, .pixelTiles]),  // 7-pixel tiles
            (Conv2DShape(inChannels: 300, outChannels: 13, kernelH: 1, kernelW: 1), 5, 7, [.im2col, .pixelTiles]),
            (Conv2DShape(inChannels: 300, outChannels: 13, kernelH: 1, kernelW: 1), 41, 37, [.im2col, .pixelTiles]),  // large-image schedule
            (Conv2DShape(inChannels: 24, outChannels: 37, kernelH: 3, kernelW: 3, strideH: 2, strideW: 2, padTop: 1,
                         padLeft: 1, padBottom: 1, padRight: 1), 13, 10, [.im2col, .implicitGemm]),
            (Conv2DShape(inChannels: 20, outChannels: 18, kernelH: 3, kernelW: 3, padTop: 1, padLeft: 1, padBottom: 1,
                         padRight: 1), 8, 9, [.winograd]),
        ]
        let activations: [Activation?] = [nil, .relu, .clip(low: 0, high: 6), .sigmoid, .silu]
        for (index, (shape, h, w, methods)) in cases.enumerated() {
            let batch = 2
            let (oh, ow) = shape.outputSize(inHeight: h, inWidth: w)
            let input = [Float].random(batch * shape.inChannels * h * w, &rng)
            let weights = [Float].random(shape.outChannels * shape.reductionSize, &rng)
            let bias = [Float].random(shape.outChannels, &rng)
            let residual = [Float].random(batch * shape.outChannels * oh * ow, &rng).map { $0 * 8 }
            let conv = referenceConv(shape, input: input, weights: weights, bias: bias, relu: false, batch: batch, h: h, w: w)
            let magnitude = zip(referenceConv(shape, input: input, weights: weights, bias: bias, relu: false, batch: batch, h: h, w: w,
                                              absolute: true), residual).map { $0 + abs($1) }
            for (a, activation) in activations.enumerated() {
                let expected = zip(conv, residual).map { (y, r) in activation.map { f in f(y + r) } ?? y + r }
                for set in KernelSet.supported {
                    var first: [Float]?
                    for method in methods {
                        let fast = fastConv(shape, input: input, weights: weights, bias: bias, relu: false, batch: batch, h: h, w: w,
                                            pool: Self.pool, kernels: set, method: method, residual: residual, activation: activation)
                        assertClose(fast, expected, magnitude: magnitude, k: shape.reductionSize,
                                    "case \(index) \(set) \(method) activation \(a)", scale: method == .winograd ? 4 : 1)
                        if let first { XCTAssertEqual(fast, first, "case \(index) \(set) \(method) vs \(methods[0]) activation \(a)") }
                        first = first ?? fast
                    }
                }
            }
        }
    }

    /// `KernelTable.scatterTile` of every set against a plain copy: random channel counts (whole
    /// and partial groups of 8), whole tiles of 6 and 7 pixels and partial ones (1–5) and plane strides, with and
    /// without a shortcut, every activation (through the same set's `activate`, which the contract
    /// promises to match bit for bit). The output starts as NaN with a payload no result has, so a
    /// missed float fails and a float written outside the `count` per plane shows up as changed.
    func testScatterTileMatchesPlainCopy() {
        var rng = SeededRandom(seed: 29)
        let unwritten = Float(nan: 0x5A, signaling: false)
        let activations: [Activation?] = [nil, .relu, .clip(low: 0, high: 6), .sigmoid, .silu, .hardSwish, .gelu]
        for trial in 0..<80 {
            let channels = trial < 4 ? [32, 8, 1, 16][trial] : Int.random(in: 1...32, using: &rng)
            let count = trial % 4 == 3 ? Int.random(in: 1...5, using: &rng) : trial % 4 == 1 ? 7 : 6
            let planeStride = Int.random(in: 7...20, using: &rng)
            let tile = [Float].random(7 * 32, &rng).map { $0 * 8 }
            let shortcut = trial % 2 == 0 ? nil : [Float].random(channels * planeStride, &rng).map { $0 * 8 }
            let post = activations[trial % activations.count]
            for set in KernelSet.supported {
                var expected = [Float](repeating: unwritten, count: channels * planeStride)
                for c in 0..<channels {
                    var values = (0..<count).map { p in shortcut.map { tile[p * 32 + c] + $0[c * planeStride + p] } ?? tile[p * 32 + c] }
                    if shortcut != nil, let post { set.table.activate(post, values, &values, count) }
                    for p in 0..<count { expected[c * planeStride + p] = values[p] }
                }
                var output = [Float](repeating: unwritten, count: channels * planeStride)
                withOptionalPointer(shortcut) { sc in
                    set.table.scatterTile(tile, &output, channels, count, planeStride, sc, post)
                }
                XCTAssertEqual(output.map(\.bitPattern), expected.map(\.bitPattern),
                               "\(set) trial \(trial): \(channels) channels × \(count) pixels, stride \(planeStride), post \(String(describing: post))")
            }
        }
    }

    func testOutputSize() {
        let alex1 = Conv2DShape(inChannels: 3, outChannels: 64, kernelH: 11, kernelW: 11, strideH: 4, strideW: 4,
                                padTop: 2, padLeft: 2, padBottom: 2, padRight: 2)
        XCTAssert(alex1.outputSize(inHeight: 224, inWidth: 224) == (55, 55))
        XCTAssert(alex1.outputSize(inHeight: 63, inWidth: 64) == (15, 15))
        let asym = Conv2DShape(inChannels: 1, outChannels: 1, kernelH: 3, kernelW: 2, strideH: 2, dilationW: 3,
                               padTop: 1, padLeft: 0, padBottom: 0, padRight: 2)
        XCTAssert(asym.outputSize(inHeight: 7, inWidth: 5) == (3, 4))   // (7+1-2-1)/2+1, (5+2-3-1)/1+1
        XCTAssert(asym.outputSize(inHeight: 1, inWidth: 1) == (0, 0))
    }

    /// Output channels around the 6-row tile and pixel counts around the 16-column tile, with 1×1
    /// kernels and reductions around the vector width (8) and the k block (256).
    func testTileEdges() {
        var rng = SeededRandom(seed: 1)
        for cout in [1, 5, 6, 7, 12, 13] {
            for (h, w) in [(4, 4), (3, 5), (1, 17), (4, 8), (3, 11), (1, 1)] {   // 16, 15, 17, 32, 33, 1 pixels
                check(Conv2DShape(inChannels: 3, outChannels: cout, kernelH: 1, kernelW: 1), batch: 1, h: h, w: w, rng: &rng)
            }
        }
        for cin in [1, 7, 8, 9, 255, 256, 257, 513] {
            check(Conv2DShape(inChannels: cin, outChannels: 7, kernelH: 1, kernelW: 1), batch: 1, h: 4, w: 5, rng: &rng)
        }
        // K = 3·9·... spanning several k blocks with 3×3 taps.
        check(Conv2DShape(inChannels: 61, outChannels: 13, kernelH: 3, kernelW: 3, padTop: 1, padLeft: 1, padBottom: 1, padRight: 1),
              batch: 1, h: 7, w: 6, rng: &rng)
    }

    func testNoBiasNoReLU() {
        var rng = SeededRandom(seed: 2)
        let shape = Conv2DShape(inChannels: 5, outChannels: 9, kernelH: 3, kernelW: 3, padTop: 1, padLeft: 1, padBottom: 1, padRight: 1)
        check(shape, batch: 2, h: 9, w: 7, bias: false, relu: false, rng: &rng)
        check(shape, batch: 2, h: 9, w: 7, bias: true, relu: false, rng: &rng)
        check(shape, batch: 2, h: 9, w: 7, bias: false, relu: true, rng: &rng)
    }

    func testGroupsAndDepthwise() {
        var rng = SeededRandom(seed: 3)
        let pad1 = (padTop: 1, padLeft: 1, padBottom: 1, padRight: 1)
        check(Conv2DShape(inChannels: 8, outChannels: 14, kernelH: 3, kernelW: 3, padTop: pad1.padTop, padLeft: pad1.padLeft,
                          padBottom: pad1.padBottom, padRight: pad1.padRight, groups: 2), batch: 3, h: 6, w: 7, rng: &rng)
        check(Conv2DShape(inChannels: 12, outChannels: 12, kernelH: 3, kernelW: 3, strideH: 2, strideW: 2,
                          padTop: 1, padLeft: 1, padBottom: 1, padRight: 1, groups: 12), batch: 1, h: 11, w: 10, rng: &rng)
        check(Conv2DShape(inChannels: 5, outChannels: 10, kernelH: 5, kernelW: 5, padTop: 2, padLeft: 2, padBottom: 2,
                          padRight: 2, groups: 5), batch: 2, h: 9, w: 9, rng: &rng)   // depth multiplier 2
        check(Conv2DShape(inChannels: 6, outChannels: 9, kernelH: 1, kernelW: 1, groups: 3), batch: 1, h: 5, w: 5, rng: &rng)
    }

    func testStridesDilationAsymmetricPads() {
        var rng = SeededRandom(seed: 4)
        check(Conv2DShape(inChannels: 3, outChannels: 8, kernelH: 11, kernelW: 11, strideH: 4, strideW: 4,
                          padTop: 2, padLeft: 2, padBottom: 2, padRight: 2), batch: 1, h: 63, w: 67, rng: &rng)  // AlexNet conv1 geometry
        check(Conv2DShape(inChannels: 4, outChannels: 7, kernelH: 3, kernelW: 3, dilationH: 2, dilationW: 3,
                          padTop: 2, padLeft: 3, padBottom: 2, padRight: 3), batch: 2, h: 10, w: 12, rng: &rng)
        check(Conv2DShape(inChannels: 3, outChannels: 5, kernelH: 2, kernelW: 4, strideH: 3, strideW: 2,
                          padTop: 0, padLeft: 3, padBottom: 2, padRight: 1), batch: 3, h: 13, w: 9, rng: &rng)
        check(Conv2DShape(inChannels: 2, outChannels: 6, kernelH: 5, kernelW: 5, padTop: 4, padLeft: 4, padBottom: 4, padRight: 4),
              batch: 1, h: 2, w: 3, rng: &rng)   // kernel mostly in padding
    }

    /// Seeded random geometries: every parameter drawn independently.
    func testRandomShapes() {
        var rng = SeededRandom(seed: 5)
        var done = 0
        while done < 40 {
            let groups = [1, 1, 1, 2, 3].randomElement(using: &rng) ?? 1
            let cin = groups * Int.random(in: 1...9, using: &rng)
            let cout = groups * Int.random(in: 1...11, using: &rng)
            let shape = Conv2DShape(
                inChannels: cin, outChannels: cout,
                kernelH: Int.random(in: 1...5, using: &rng), kernelW: Int.random(in: 1...5, using: &rng),
                strideH: Int.random(in: 1...3, using: &rng), strideW: Int.random(in: 1...3, using: &rng),
                dilationH: Int.random(in: 1...2, using: &rng), dilationW: Int.random(in: 1...2, using: &rng),
                padTop: Int.random(in: 0...2, using: &rng), padLeft: Int.random(in: 0...2, using: &rng),
                padBottom: Int.random(in: 0...2, using: &rng), padRight: Int.random(in: 0...2, using: &rng),
                groups: groups)
            let h = Int.random(in: 1...20, using: &rng), w = Int.random(in: 1...20, using: &rng)
            let out = shape.outputSize(inHeight: h, inWidth: w)
            if out.height == 0 || out.width == 0 { continue }
            check(shape, batch: Int.random(in: 1...3, using: &rng), h: h, w: w,
                  bias: Bool.random(using: &rng), relu: Bool.random(using: &rng), rng: &rng)
            done += 1
        }
    }

    /// Winograd F(2×2, 3×3) and F(2×2, 5×5) on seeded random stride-1 shapes: odd and even sizes (partial 2×2
    /// tiles), pads 0–2 and asymmetric, groups, batches whose tiles cross 16-tile panels and
    /// 8-panel chunks, tile counts around the 6-row block, output channels around 16-channel
    /// vectors and 32-channel pair tiles, narrow and wide rows — for every kernel set.
    func testWinogradRandomShapes() {
        var rng = SeededRandom(seed: 6)
        for _ in 0..<40 {
            let groups = [1, 1, 2].randomElement(using: &rng) ?? 1
            let size = [3, 5].randomElement(using: &rng) ?? 3
            let shape = Conv2DShape(
                inChannels: groups * Int.random(in: 1...20, using: &rng), outChannels: groups * Int.random(in: 1...14, using: &rng),
                kernelH: size, kernelW: size,
                padTop: Int.random(in: 0...2, using: &rng), padLeft: Int.random(in: 0...2, using: &rng),
                padBottom: Int.random(in: 0...2, using: &rng), padRight: Int.random(in: 0...2, using: &rng), groups: groups)
            let h = Int.random(in: 1...16, using: &rng), w = Int.random(in: 1...16, using: &rng)
            let out = shape.outputSize(inHeight: h, inWidth: w)
            if out.height == 0 || out.width == 0 { continue }
            check(shape, batch: Int.random(in: 1...4, using: &rng), h: h, w: w, bias: Bool.random(using: &rng),
                  relu: Bool.random(using: &rng), method: .winograd, rng: &rng)
        }
        // Wide rows: 16-tile panels inside one tile row, input windows read in place rather than
        // through the tensor-edge path.
        for _ in 0..<8 {
            let size = [3, 5].randomElement(using: &rng) ?? 3
            let pad = Int.random(in: 0...2, using: &rng)
            let shape = Conv2DShape(inChannels: Int.random(in: 1...20, using: &rng), outChannels: Int.random(in: 1...40, using: &rng),
                                    kernelH: size, kernelW: size, padTop: pad, padLeft: pad, padBottom: pad, padRight: pad)
            check(shape, batch: Int.random(in: 1...2, using: &rng), h: Int.random(in: 5...8, using: &rng),
                  w: Int.random(in: 33...80, using: &rng), bias: true, relu: Bool.random(using: &rng), method: .winograd, rng: &rng)
        }
        // AlexNet conv3 geometry at batch 16: 784 tiles = 49 panels, several chunks; conv2 geometry.
        check(Conv2DShape(inChannels: 24, outChannels: 13, kernelH: 3, kernelW: 3, padTop: 1, padLeft: 1, padBottom: 1, padRight: 1),
              batch: 16, h: 13, w: 13, method: .winograd, rng: &rng)
        check(Conv2DShape(inChannels: 64, outChannels: 8, kernelH: 5, kernelW: 5, padTop: 2, padLeft: 2, padBottom: 2, padRight: 2),
              batch: 2, h: 27, w: 27, method: .winograd, rng: &rng)
        // Seven chunks: on two threads each thread takes whole chunks (`WinogradConv.slots`), on one
        // every phase runs in turn — the same bits either way.
        let shape = Conv2DShape(inChannels: 24, outChannels: 40, kernelH: 3, kernelW: 3, padTop: 1, padLeft: 1, padBottom: 1, padRight: 1)
        let x = [Float].random(16 * 24 * 13 * 13, &rng), weights = [Float].random(40 * 24 * 9, &rng), bias = [Float].random(40, &rng)
        let one = ThreadPool(threads: 1)
        for set in KernelSet.supported {
            let split = fastConv(shape, input: x, weights: weights, bias: bias, relu: true, batch: 16, h: 13, w: 13, pool: one,
                                 kernels: set, method: .winograd)
            let whole = fastConv(shape, input: x, weights: weights, bias: bias, relu: true, batch: 16, h: 13, w: 13, pool: Self.pool,
                                 kernels: set, method: .winograd)
            XCTAssertEqual(split.map(\.bitPattern), whole.map(\.bitPattern), "\(set) Winograd, whole chunks per thread vs one thread")
        }
    }

    /// The implicit GEMM (input read in place from phase-split planes) on seeded random geometries:
    /// within tolerance of the reference, and bit-identical to im2col (same multiply-add chains).
    func testImplicitGemmRandomShapes() {
        var rng = SeededRandom(seed: 7)
        var done = 0
        while done < 30 {
            let groups = [1, 1, 2].randomElement(using: &rng) ?? 1
            let shape = Conv2DShape(
                inChannels: groups * Int.random(in: 1...6, using: &rng), outChannels: groups * Int.random(in: 1...13, using: &rng),
                kernelH: Int.random(in: 1...11, using: &rng), kernelW: Int.random(in: 1...11, using: &rng),
                strideH: Int.random(in: 1...4, using: &rng), strideW: Int.random(in: 1...4, using: &rng),
                dilationH: Int.random(in: 1...2, using: &rng), dilationW: Int.random(in: 1...2, using: &rng),
                padTop: Int.random(in: 0...3, using: &rng), padLeft: Int.random(in: 0...3, using: &rng),
                padBottom: Int.random(in: 0...3, using: &rng), padRight: Int.random(in: 0...3, using: &rng), groups: groups)
            let h = Int.random(in: 1...40, using: &rng), w = Int.random(in: 1...40, using: &rng)
            let out = shape.outputSize(inHeight: h, inWidth: w)
            if out.height == 0 || out.width == 0 { continue }
            let batch = Int.random(in: 1...2, using: &rng)
            check(shape, batch: batch, h: h, w: w, method: .implicitGemm, rng: &rng)
            let x = [Float].random(batch * shape.inChannels * h * w, &rng)
            let wt = [Float].random(shape.outChannels * shape.reductionSize, &rng)
            let b = [Float].random(shape.outChannels, &rng)
            for set in KernelSet.supported {
                let implicit = fastConv(shape, input: x, weights: wt, bias: b, relu: true, batch: batch, h: h, w: w,
                                        pool: Self.pool, kernels: set, method: .implicitGemm)
                let im2col = fastConv(shape, input: x, weights: wt, bias: b, relu: true, batch: batch, h: h, w: w,
                                      pool: Self.pool, kernels: set, method: .im2col)
                XCTAssertEqual(implicit.map(\.bitPattern), im2col.map(\.bitPattern), "\(set) \(shape) \(h)×\(w)")
            }
            done += 1
        }
        // AlexNet conv1 geometry.
        check(Conv2DShape(inChannels: 3, outChannels: 64, kernelH: 11, kernelW: 11, strideH: 4, strideW: 4,
                          padTop: 2, padLeft: 2, padBottom: 2, padRight: 2), batch: 1, h: 67, w: 71, method: .implicitGemm, rng: &rng)
    }

    /// Which method a shape gets by default, and that forcing works both ways.
    func testMethodChoice() {
        let alex3 = Conv2DShape(inChannels: 192, outChannels: 384, kernelH: 3, kernelW: 3, padTop: 1, padLeft: 1, padBottom: 1, padRight: 1)
        let weights = [Float](repeating: 0.5, count: alex3.outChannels * alex3.reductionSize)
        weights.withUnsafeBufferPointer { w in
            XCTAssertEqual(Conv2DKernel(shape: alex3, weights: w.baseAddress!, bias: nil, activation: .relu).method, .winograd)
            XCTAssertEqual(Conv2DKernel(shape: alex3, weights: w.baseAddress!, bias: nil, activation: .relu, method: .im2col).method, .im2col)
            var strided = alex3
            strided.strideH = 2
            let tallStrided = strided
            strided.strideW = 2
            XCTAssertEqual(Conv2DKernel(shape: strided, weights: w.baseAddress!, bias: nil, activation: .relu, method: .im2col).method, .im2col)
            for set in KernelSet.supported {
                // Strided convolutions (but RGB stems) take pixel tiles with the AVX-512 set (its pair
                // tile), im2col with the others (6×16 tiles alone).
                let stridedMethod: Conv2DKernel.Method = set == .avx512 ? .pixelTiles : .im2col
                XCTAssertEqual(Conv2DKernel(shape: strided, weights: w.baseAddress!, bias: nil, activation: .relu, kernels: set).method,
                               stridedMethod, "\(set)")
                // Winograd asked for where it does not apply: the default of the others.
                XCTAssertEqual(Conv2DKernel(shape: tallStrided, weights: w.baseAddress!, bias: nil, activation: .relu, kernels: set,
                                            method: .winograd).method, stridedMethod, "\(set)")
                func method(_ cin: Int, _ cout: Int, _ k: Int, _ stride: Int) -> Conv2DKernel.Method {
                    let pad = k / 2
                    let shape = Conv2DShape(inChannels: cin, outChannels: cout, kernelH: k, kernelW: k, strideH: stride, strideW: stride,
                                            padTop: pad, padLeft: pad, padBottom: pad, padRight: pad)
                    return Conv2DKernel(shape: shape, weights: w.baseAddress!, bias: nil, activation: nil, kernels: set).method
                }
                XCTAssertEqual(method(3, 64, 7, 2), .implicitGemm, "\(set)")       // ResNet's stem
                XCTAssertEqual(method(3, 32, 3, 2), .implicitGemm, "\(set)")       // MobileNet's stem
                XCTAssertEqual(method(256, 512, 1, 2), stridedMethod, "\(set)")    // a downsampling shortcut
                XCTAssertEqual(method(256, 64, 1, 1), .pixelTiles, "\(set)")       // reducing 1×1
                XCTAssertEqual(method(64, 256, 1, 1), .im2col, "\(set)")           // expanding 1×1
            }
        }
    }

    /// A kernel larger than the padded input has no output: run must not write anything.
    func testEmptyOutputIsANoOp() {
        let shape = Conv2DShape(inChannels: 1, outChannels: 2, kernelH: 5, kernelW: 5)
        XCTAssert(shape.outputSize(inHeight: 2, inWidth: 2) == (0, 0))
        let weights = [Float](repeating: 1, count: 50), input: [Float] = [1, 2, 3, 4]
        for set in KernelSet.supported {
            let kernel = weights.withUnsafeBufferPointer {
                Conv2DKernel(shape: shape, weights: $0.baseAddress!, bias: nil, activation: nil, kernels: set)
            }
            var canary: [Float] = [-7]
            var ws = [Float](repeating: 0, count: workspaceFloats(kernel.workspaceBytes(batch: 1, inHeight: 2, inWidth: 2, threads: 2)) + 16)
            input.withUnsafeBufferPointer { ip in
                canary.withUnsafeMutableBufferPointer { op in
                    ws.withUnsafeMutableBytes { kernel.run(input: ip.baseAddress!, output: op.baseAddress!, batch: 1, inHeight: 2,
                                                           inWidth: 2, workspace: $0.baseAddress!, pool: Self.pool) }
                }
            }
            XCTAssertEqual(canary, [-7], "\(set): wrote to an empty output")
        }
    }
}
