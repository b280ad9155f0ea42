import XCTest
@testable import ZooKernels

/// Results must be bit-for-bit identical for any thread count (threads split output tiles only), in
/// every kernel set; the FMA sets (AVX2, AVX-512) must also agree with each other bit for bit.
final class DeterminismTests: XCTestCase {
    func bytes(_ v: [Float]) -> [UInt32] { v.map(\.bitPattern) }

    func testConvIdenticalAcrossThreadCounts() {
        var rng = SeededRandom(seed: 21)
        let cases: [(Conv2DShape, Int, Int, Int)] = [
            (Conv2DShape(inChannels: 40, outChannels: 29, kernelH: 3, kernelW: 3, padTop: 1, padLeft: 1, padBottom: 1, padRight: 1),
             2, 13, 13),   // K = 360 spans two k blocks
            (Conv2DShape(inChannels: 3, outChannels: 16, kernelH: 11, kernelW: 11, strideH: 4, strideW: 4,
                         padTop: 2, padLeft: 2, padBottom: 2, padRight: 2), 1, 67, 63),
            (Conv2DShape(inChannels: 8, outChannels: 10, kernelH: 3, kernelW: 3, groups: 2), 3, 9, 8),
        ]
        for (shape, batch, h, w) in cases {
            let x = [Float].random(batch * shape.inChannels * h * w, &rng)
            let wt = [Float].random(shape.outChannels * shape.reductionSize, &rng)
            let b = [Float].random(shape.outChannels, &rng)
            var fma: [KernelSet: [UInt32]] = [:]
            for set in KernelSet.supported {
                let results = [1, 2, 3].map { threads in
                    bytes(fastConv(shape, input: x, weights: wt, bias: b, relu: true, batch: batch, h: h, w: w,
                                   pool: ThreadPool(threads: threads), kernels: set))
                }
                XCTAssertEqual(results[0], results[1], "\(set) \(shape): 1 vs 2 threads")
                XCTAssertEqual(results[0], results[2], "\(set) \(shape): 1 vs 3 threads")
                if set != .portable { fma[set] = results[0] }
            }
            if let avx2 = fma[.avx2], let avx512 = fma[.avx512] { XCTAssertEqual(avx2, avx512, "\(shape): avx2 vs avx512") }
        }
    }

    func testLinearIdenticalAcrossThreadCounts() {
        var rng = SeededRandom(seed: 22)
        let (inF, outF, batch) = (700, 133, 7)
        let x = [Float].random(batch * inF, &rng)
        let w = [Float].random(outF * inF, &rng)
        let b = [Float].random(outF, &rng)
        for batchSize in [1, batch] {
            let input = Array(x[0..<(batchSize * inF)])
            var fma: [KernelSet: [UInt32]] = [:]
            for set in KernelSet.supported {
                let results = [1, 2, 3].map { threads in
                    bytes(fastLinear(inFeatures: inF, outFeatures: outF, input: input, weights: w, bias: b, relu: false,
                                     batch: batchSize, pool: ThreadPool(threads: threads), kernels: set))
                }
                XCTAssertEqual(results[0], results[1], "\(set) batch \(batchSize): 1 vs 2 threads")
                XCTAssertEqual(results[0], results[2], "\(set) batch \(batchSize): 1 vs 3 threads")
                if set != .portable { fma[set] = results[0] }
            }
            if let avx2 = fma[.avx2], let avx512 = fma[.avx512] {
                XCTAssertEqual(avx2, avx512, "batch \(batchSize): avx2 vs avx512")
            }
        }
    }
}
