import XCTest
@testable import ZooKernels

/// Every kernel set's vector activations against the scalar twin (`Activation.callAsFunction`: glibc's
/// expf, GELU in Double): within 4 ulp (GELU, computed as PyTorch does with a rational erf, within
/// 2.5·10⁻⁷·|x| + 2 ulp: PyTorch's own is within 3.5·10⁻⁷·|x|), special values (±0, ±infinity, NaN,
/// large magnitudes) included; an element's value does not depend on where it lies in the array.
final class ActivationTests: XCTestCase {
    func testVectorActivationsMatchTheScalarTwin() {
        var rng = SeededRandom(seed: 5)
        var values = (0..<997).map { _ in Float.random(in: -12...12, using: &rng) }
        values += [0, -0, .infinity, -.infinity, .nan, 100, -100, 88, -88, 87.5, -87.5, 1e-30, -1e-30, 6, 3, -3]
        let activations: [Activation] = [.relu, .clip(low: 0, high: 6), .clip(low: -0.5, high: 0.25), .clip(low: 1, high: -1),
                                         .sigmoid, .silu, .hardSwish, .hardSigmoid(alpha: 0.2, beta: 0.5), .gelu]
        for set in KernelSet.supported {
            for activation in activations {
                var whole = [Float](repeating: .nan, count: values.count), shifted = whole
                values.withUnsafeBufferPointer { x in
                    set.table.activate(activation, x.baseAddress!, &whole, values.count)
                    // The same values from another start and in short pieces.
                    shifted.withUnsafeMutableBufferPointer { y in
                        var start = 0, piece = 1
                        while start < values.count {
                            let count = min(piece, values.count - start)
                            set.table.activate(activation, x.baseAddress! + start, y.baseAddress! + start, count)
                            start += count
                            piece = piece % 13 + 2
                        }
                    }
                }
                for (i, x) in values.enumerated() {
                    let twin = activation(x), fast = whole[i]
                    let label = "\(set.rawValue) \(activation) at \(x): \(fast) vs \(twin)"
                    XCTAssertTrue(fast == shifted[i] || (fast.isNaN && shifted[i].isNaN), "\(label): depends on position (\(shifted[i]))")
                    if twin.isNaN || fast == twin { XCTAssertTrue(fast.isNaN == twin.isNaN, label); continue }
                    let tolerance = activation == .gelu ? 2.5e-7 * abs(x) + 2 * twin.ulp : 4 * twin.ulp
                    XCTAssertLessThanOrEqual(abs(fast - twin), tolerance + 1e-37, label)
                }
            }
        }
    }
}
