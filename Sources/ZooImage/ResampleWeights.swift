#if canImport(Glibc)
import Glibc  // sin, cos
#endif
import ZooCore

/// Pillow's filters (Resample.c), each with its support radius at scale 1.
enum ResampleKernel {
    case box, bilinear, hamming, bicubic, lanczos

    /// nil for nearest, which is not a convolution in PIL.
    init?(_ filter: EvaluationTransform.Interpolation) {
        switch filter {
        case .nearest: return nil
        case .box: self = .box
        case .bilinear: self = .bilinear
        case .hamming: self = .hamming
        case .bicubic: self = .bicubic
        case .lanczos: self = .lanczos
        }
    }

    var support: Double {
        switch self {
        case .box: 0.5
        case .bilinear, .hamming: 1
        case .bicubic: 2
        case .lanczos: 3
        }
    }

    /// The filter at `x`, with PIL's expressions and constants (hamming's are C floats, 0.54f and 0.46f).
    func callAsFunction(_ x: Double) -> Double {
        switch self {
        case .box:
            return x > -0.5 && x <= 0.5 ? 1 : 0
        case .bilinear:
            let x = abs(x)
            return x < 1 ? 1 - x : 0
        case .hamming:
            var x = abs(x)
            if x == 0 { return 1 }
            if x >= 1 { return 0 }
            x *= Double.pi
            return sin(x) / x * (Double(Float(0.54)) + Double(Float(0.46)) * cos(x))
        case .bicubic:
            let a = -0.5, x = abs(x)
            if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
            if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
            return 0
        case .lanczos:
            return -3 <= x && x < 3 ? Self.sinc(x) * Self.sinc(x / 3) : 0
        }
    }

    private static func sinc(_ x: Double) -> Double {
        if x == 0 { return 1 }
        let x = x * Double.pi
        return sin(x) / x
    }
}

/// One axis of PIL's resampling (`precompute_coeffs` + `normalize_coeffs_8bpc`): for output position
/// `i`, the inputs `first[i] ..< first[i] + count[i]` weighted by `weights[i * stride ..< i * stride + count[i]]`,
/// fixed point with `fractionBits` bits.
struct AxisWeights {
    static let fractionBits = 22  // PIL's PRECISION_BITS: 32 - 8 - 2
    let first: [Int]
    let count: [Int]
    let stride: Int
    let weights: [Int32]

    init(inSize: Int, outSize: Int, kernel: ResampleKernel) {
        // PIL's box is floats: in0 = 0, in1 = inSize.
        let scale = Double(Float(inSize)) / Double(outSize)
        let filterScale = max(scale, 1)
        let support = kernel.support * filterScale
        let stride = Int(support.rounded(.up)) * 2 + 1
        let inverseScale = 1 / filterScale
        var first = [Int](repeating: 0, count: outSize)
        var count = [Int](repeating: 0, count: outSize)
        var weights = [Int32](repeating: 0, count: outSize * stride)
        var k = [Double](repeating: 0, count: stride)
        for i in 0..<outSize {
            let center = (Double(i) + 0.5) * scale
            let lower = max(Int(center - support + 0.5), 0)  // C's (int): toward zero
            let upper = min(Int(center + support + 0.5), inSize)
            let n = upper - lower
            var sum = 0.0
            for j in 0..<n {
                k[j] = kernel((Double(j + lower) - center + 0.5) * inverseScale)
                sum += k[j]
            }
            for j in 0..<n {
                let w = sum != 0 ? k[j] / sum : k[j]
                let fixed = w * Double(1 << Self.fractionBits)
                weights[i * stride + j] = Int32(w < 0 ? -0.5 + fixed : 0.5 + fixed)
            }
            first[i] = lower
            count[i] = n
        }
        self.first = first
        self.count = count
        self.stride = stride
        self.weights = weights
    }

    /// The input positions the outputs `outputs` read.
    func inputs(of outputs: Range<Int>) -> Range<Int> {
        first[outputs.lowerBound]..<(first[outputs.upperBound - 1] + count[outputs.upperBound - 1])
    }
}
