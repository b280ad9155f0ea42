#if canImport(Glibc)
import Glibc
#endif

/// An elementwise activation in f32, as a kernel's epilogue (a convolution's or a linear layer's,
/// applied to each output block while it is in cache) or as a standalone map. The kernel sets
/// apply it to arrays (`KernelTable.activate`: vector code, with its own exp for the sigmoid
/// family); this scalar form is the plain twin they are tested against. Each case is within a few
/// ulp of its op's Double reference (`Op.Unary.Function`), ReLU and Clip exactly.
public enum Activation: Sendable, Equatable {
    /// max(x, 0), NaN kept.
    case relu
    /// min(max(x, low), high), NaN kept (ReLU6 is `clip(0, 6)`). Bounds rounded to f32 give the
    /// same values as clipping in Double and rounding.
    case clip(low: Float, high: Float)
    /// 1 / (1 + e^−x).
    case sigmoid
    /// x · sigmoid(x) (SiLU, Swish): the sigmoid rounded to f32, then the product — as Sigmoid
    /// followed by Mul computes it.
    case silu
    /// x · max(0, min(1, x/6 + 1/2)).
    case hardSwish
    /// max(0, min(1, alpha·x + beta)).
    case hardSigmoid(alpha: Float, beta: Float)
    /// x · Φ(x) = x/2 · erfc(−x/√2) (exact GELU). The scalar form computes it in Double; the vector
    /// kernels compute x/2 · (1 + erf(x/√2)) as PyTorch does (see `geluVector`).
    case gelu

    /// A short name for profiles ("relu6", "silu").
    public var name: String {
        switch self {
        case .relu: "relu"
        case let .clip(low, high): low == 0 && high == 6 ? "relu6" : "clip"
        case .sigmoid: "sigmoid"
        case .silu: "silu"
        case .hardSwish: "hardswish"
        case .hardSigmoid: "hardsigmoid"
        case .gelu: "gelu"
        }
    }

    /// The activation as clamp bounds (ReLU: 0…+∞, Clip: low…high), or nil: what kernels apply in
    /// registers or as a clamp (ReLU6 is 0…6).
    public var bounds: (low: Float, high: Float)? {
        switch self {
        case .relu: (0, .infinity)
        case let .clip(low, high): (low, high)
        default: nil
        }
    }

    /// The activation of one value.
    @inline(__always)
    public func callAsFunction(_ x: Float) -> Float {
        switch self {
        case .relu: x < 0 ? 0 : x
        case let .clip(low, high): x.isNaN ? x : Swift.min(Swift.max(x, low), high)
        case .sigmoid: 1 / (1 + expf(-x))
        case .silu: x * (1 / (1 + expf(-x)))
        case .hardSwish: x * Swift.max(0, Swift.min(1, x / 6 + 0.5))
        case let .hardSigmoid(alpha, beta): x.isNaN ? x : Swift.max(0, Swift.min(1, alpha * x + beta))
        case .gelu: Float(0.5 * Double(x) * erfc(-Double(x) * 0.70710678118654752))
        }
    }
}
