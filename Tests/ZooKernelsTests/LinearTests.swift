import XCTest
@testable import ZooKernels

/// Fast Linear (row dot products for batch 1, GEMM otherwise) vs the Double-accumulating reference,
/// for every kernel set this CPU supports.
final class LinearTests: XCTestCase {
    static let pool = ThreadPool(threads: 2)

    func check(inFeatures: Int, outFeatures: Int, batch: Int, bias: Bool = true, relu: Bool = true,
               rng: inout SeededRandom, file: StaticString = #filePath, line: UInt = #line) {
        let x = [Float].random(batch * inFeatures, &rng)
        let w = [Float].random(outFeatures * inFeatures, &rng)
        let b: [Float]? = bias ? .random(outFeatures, &rng) : nil
        let expected = referenceLinear(inFeatures: inFeatures, outFeatures: outFeatures, input: x, weights: w, bias: b,
                                       relu: relu, batch: batch)
        let magnitude = referenceLinear(inFeatures: inFeatures, outFeatures: outFeatures, input: x, weights: w, bias: b,
                                        relu: relu, batch: batch, absolute: true)
        for set in KernelSet.supported {
            let fast = fastLinear(inFeatures: inFeatures, outFeatures: outFeatures, input: x, weights: w, bias: b, relu: relu,
                                  batch: batch, pool: Self.pool, kernels: set)
            assertClose(fast, expected, magnitude: magnitude, k: inFeatures,
                        "\(set) linear \(inFeatures)→\(outFeatures) batch \(batch) bias \(bias) relu \(relu)", file: file, line: line)
            // The tokens layout: the reference's values, and for batch > 1 the rows layout's bits.
            let tokens = fastLinear(inFeatures: inFeatures, outFeatures: outFeatures, input: x, weights: w, bias: b, relu: relu,
                                    batch: batch, pool: Self.pool, kernels: set, tokens: true)
            assertClose(tokens, expected, magnitude: magnitude, k: inFeatures,
                        "\(set) tokens linear \(inFeatures)→\(outFeatures) batch \(batch) bias \(bias) relu \(relu)", file: file, line: line)
            if batch > 1 { XCTAssertEqual(tokens, fast, "\(set) tokens vs rows \(inFeatures)→\(outFeatures) batch \(batch)", file: file, line: line) }
        }
    }

    /// Batches around the 16-column tile, outputs around the 6-row tile and the 4-row dot-product
    /// group, inputs around the 16-float dot-product step and the k block.
    func testTileEdges() {
        var rng = SeededRandom(seed: 11)
        for batch in [1, 2, 15, 16, 17, 33] {
            for outFeatures in [1, 3, 4, 5, 6, 7, 12, 13, 129] {
                check(inFeatures: 37, outFeatures: outFeatures, batch: batch, rng: &rng)
            }
        }
        for inFeatures in [1, 7, 8, 15, 16, 17, 255, 256, 257, 600] {
            check(inFeatures: inFeatures, outFeatures: 70, batch: 1, rng: &rng)
            check(inFeatures: inFeatures, outFeatures: 70, batch: 3, rng: &rng)
        }
    }

    /// Batches over many 16-row B panels and several B blocks, k beyond one k block: items of the
    /// weights' row panels × B blocks (`PackedGemm.computeAll`).
    func testLargeBatches() {
        var rng = SeededRandom(seed: 73)
        check(inFeatures: 300, outFeatures: 70, batch: 197, rng: &rng)
        check(inFeatures: 40, outFeatures: 13, batch: 700, relu: false, rng: &rng)
    }

    /// The tokens layout with the activations on the tile's accumulators (GELU after ViT's and
    /// ConvNeXt's first MLP Linear), bit-identical to the rows layout for batch > 1.
    func testTokensWithActivations() {
        var rng = SeededRandom(seed: 89)
        for activation in [Activation.gelu, .clip(low: 0, high: 6), .silu, .sigmoid] {
            let (inF, outF, batch) = (70, 45, 53)
            let x = [Float].random(batch * inF, &rng), w = [Float].random(outF * inF, &rng), b = [Float].random(outF, &rng)
            let plain = referenceLinear(inFeatures: inF, outFeatures: outF, input: x, weights: w, bias: b, relu: false, batch: batch)
            let magnitude = referenceLinear(inFeatures: inF, outFeatures: outF, input: x, weights: w, bias: b, relu: false, batch: batch,
                                            absolute: true)
            for set in KernelSet.supported {
                let tokens = fastLinear(inFeatures: inF, outFeatures: outF, input: x, weights: w, bias: b, relu: false, batch: batch,
                                        pool: Self.pool, kernels: set, tokens: true, activation: activation)
                let rows = fastLinear(inFeatures: inF, outFeatures: outF, input: x, weights: w, bias: b, relu: false, batch: batch,
                                      pool: Self.pool, kernels: set, activation: activation)
                assertClose(tokens, plain.map { activation($0) }, magnitude: magnitude, k: inF, "\(set) tokens \(activation)")
                XCTAssertEqual(tokens, rows, "\(set) tokens vs rows \(activation)")
            }
        }
    }

    func testBiasAndReLUVariants() {
        var rng = SeededRandom(seed: 12)
        for batch in [1, 4] {
            for (bias, relu) in [(false, false), (true, false), (false, true), (true, true)] {
                check(inFeatures: 50, outFeatures: 33, batch: batch, bias: bias, relu: relu, rng: &rng)
            }
        }
    }

    func testRandomShapes() {
        var rng = SeededRandom(seed: 13)
        for _ in 0..<30 {
            check(inFeatures: Int.random(in: 1...400, using: &rng), outFeatures: Int.random(in: 1...150, using: &rng),
                  batch: Int.random(in: 1...14, using: &rng), bias: Bool.random(using: &rng), relu: Bool.random(using: &rng),
                  rng: &rng)
        }
    }
}

/// Weights moved out of a file mapping into huge-page memory compute the same bits as weights used
/// in place, and the mapping still reads back the file's values after its pages were released.
final class LinearMappedWeightsTests: XCTestCase {
    func testMoveFromMappingMatchesInPlaceAndKeepsTheFileReadable() throws {
        var rng = SeededRandom(seed: 14)
        let (inF, outF) = (3000, 1500)   // 18 MB: several 8 MiB copy chunks
        let weights = [Float].random(outF * inF, &rng)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-linear-\(getpid()).bin").path
        defer { unlink(path) }
        try weights.withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: path)) }
        let fd = open(path, O_RDONLY)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        let size = weights.count * 4
        let map = try XCTUnwrap(mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0))
        XCTAssertNotEqual(map, MAP_FAILED)
        defer { munmap(map, size) }
        let mapped = map.assumingMemoryBound(to: Float.self)
        let x = [Float].random(2 * inF, &rng), bias = [Float].random(outF, &rng)
        let pool = ThreadPool(threads: 2)
        for batch in [1, 2] {
            let inPlace = fastLinear(inFeatures: inF, outFeatures: outF, input: Array(x[0..<(batch * inF)]), weights: weights,
                                     bias: bias, relu: true, batch: batch, pool: pool, kernels: .active)
            let kernel = bias.withUnsafeBufferPointer {
                LinearKernel(inFeatures: inF, outFeatures: outF, weights: UnsafePointer(mapped), owner: nil, moveFromMapping: true,
                             bias: $0.baseAddress, activation: .relu)
            }
            var out = [Float](repeating: .nan, count: batch * outF)
            var ws = [Float](repeating: 0, count: workspaceFloats(kernel.workspaceBytes(batch: batch, threads: 2)))
            x.withUnsafeBufferPointer { xp in
                out.withUnsafeMutableBufferPointer { op in
                    ws.withUnsafeMutableBytes { kernel.run(input: xp.baseAddress!, output: op.baseAddress!, batch: batch,
                                                           workspace: $0.baseAddress!, pool: pool) }
                }
            }
            XCTAssertEqual(out.map(\.bitPattern), inPlace.map(\.bitPattern), "batch \(batch)")
        }
        XCTAssertTrue(weights.withUnsafeBufferPointer { memcmp($0.baseAddress!, mapped, size) == 0 },
                      "the mapping must still read the file's values")
    }
}
