import XCTest
@testable import ZooKernels

/// The two layouts of `DepthwiseConvKernel` — one plane at a time and 8 channels in the lanes —
/// give bit-identical outputs (the same multiply-add chain per output) at seeded random shapes,
/// for every kernel set, with and without bias, clamp or activation; channel counts that are and are not
/// multiples of 8 (partial lane groups), planes with and without whole groups of 8 pixels, rows
/// narrower and wider than 16 columns, planes in one band and in several. The
/// planes layout itself is checked against the Conv op's reference in ZooRuntimeTests' KernelTwinTests.
final class DepthwiseTests: XCTestCase {
    func testLanesMatchPlanes() {
        var rng = SeededRandom(seed: 17)
        let activations: [Activation?] = [nil, .relu, .clip(low: 0, high: 6), .silu, .hardSwish, .gelu]
        let pool = ThreadPool(threads: 3)
        for trial in 0..<40 {
            let k = [3, 5, 7, 2][trial % 4], stride = 1 + trial % 2, dilation = trial % 7 == 3 ? 2 : 1
            // Every fifth plane tall and wide enough for the planes layout to split it into bands
            // (`DepthwiseGeometry.bandRows`), with padding and more planes than slots (each slot runs
            // several): rows are copied again for the next band, padding rows zeroed again for the
            // next plane.
            let tall = trial % 5 == 4
            let channels = tall ? 40 + trial % 9 : [8, 16, 3, 13, 24, 1][trial % 6], batch = 1 + trial % 3
            let pad = Int.random(in: (tall ? 1 : 0)...k / 2 * dilation, using: &rng)
            // Every third plane up to 40 columns wide (stride 2 splits 16 columns at a time, then a last
            // overlapping 16; stride 1 copies 8 at a time, then a last overlapping 8).
            let h = Int.random(in: tall ? 80...120 : 1...16, using: &rng) + (k - 1) * dilation
            let w = Int.random(in: tall ? 60...120 : 1...(trial % 3 == 0 ? 40 : 16), using: &rng) + (k - 1) * dilation
            // Some trials with different strides down and across (each row copied into its phases alone).
            let strideH = trial % 10 == 9 ? 2 : stride, strideW = trial % 10 == 9 || trial % 10 == 8 ? 3 - strideH : stride
            let shape = Conv2DShape(inChannels: channels, outChannels: channels, kernelH: k, kernelW: k, strideH: strideH, strideW: strideW,
                                    dilationH: dilation, dilationW: dilation, padTop: pad, padLeft: pad, padBottom: pad, padRight: pad,
                                    groups: channels)
            let out = shape.outputSize(inHeight: h, inWidth: w)
            if tall {
                XCTAssertLessThan(DepthwiseGeometry(shape: shape, inHeight: h, inWidth: w).bandRows, out.height, "\(h)×\(w): one band")
            }
            let weights = [Float].random(channels * k * k, &rng), bias = [Float].random(channels, &rng)
            let input = [Float].random(batch * channels * h * w, &rng).map { $0 * 4 }
            let activation = activations[trial % activations.count], withBias = trial % 5 != 2
            for set in KernelSet.supported {
                let kernel = weights.withUnsafeBufferPointer { wp in
                    bias.withUnsafeBufferPointer { bp in
                        DepthwiseConvKernel(shape: shape, weights: wp.baseAddress!, bias: withBias ? bp.baseAddress! : nil,
                                            activation: activation, kernels: set)!
                    }
                }
                var outputs: [[Float]] = []
                for layout in [DepthwiseConvKernel.Layout.planes, .lanes] {
                    var y = [Float](repeating: .nan, count: batch * channels * out.height * out.width)
                    var ws = [Float](repeating: .nan, count: workspaceFloats(kernel.workspaceBytes(batch: batch, inHeight: h, inWidth: w, layout: layout)))
                    input.withUnsafeBufferPointer { x in
                        y.withUnsafeMutableBufferPointer { yp in
                            ws.withUnsafeMutableBytes { wsp in
                                kernel.run(input: x.baseAddress!, output: yp.baseAddress!, batch: batch, inHeight: h, inWidth: w,
                                           workspace: wsp.baseAddress!, pool: pool, layout: layout)
                            }
                        }
                    }
                    outputs.append(y)
                }
                let label = "\(set.rawValue) C \(channels) N \(batch) \(h)×\(w) k \(k) s \(strideH)×\(strideW) d \(dilation) pad \(pad) \(String(describing: activation)) bias \(withBias)"
                let same = zip(outputs[0], outputs[1]).allSatisfy { $0.bitPattern == $1.bitPattern }
                XCTAssertTrue(same, label)
                XCTAssertFalse(outputs[1].contains { $0.isNaN }, "\(label): an output was not written")
            }
        }
    }
}
