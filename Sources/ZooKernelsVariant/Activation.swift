#if canImport(Glibc)
import Glibc
#endif
import ZooKernelsBase

/// `y[i] = a(x[i])` for `count` elements (`y` may be `x`), 8 lanes at a time; a partial last
/// vector goes through a padded copy, so every element takes the same arithmetic wherever it lies
/// (results do not depend on how callers split an array). The sigmoid family uses `expVector`,
/// GELU `geluVector`.
func activate(_ a: Activation, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ count: Int) {
    @inline(__always) func run(_ f: (Vec) -> Vec) {
        var i = 0
        while i + 8 <= count {
            store(f(load(x + i)), y + i)
            i += 8
        }
        if i < count {
            var lanes = Vec()
            for j in 0..<(count - i) { lanes[j] = x[i + j] }
            let out = f(lanes)
            for j in 0..<(count - i) { y[i + j] = out[j] }
        }
    }
    run { activateVector(a, $0) }
}

/// The activation of 8 lanes: `activate`'s arithmetic, which the GEMM tiles also apply to their
/// accumulators before storing.
@inline(__always)
func activateVector(_ a: Activation, _ v: Vec) -> Vec {
    switch a {
    case .relu: v.replacing(with: 0, where: v .< 0)
    case let .clip(low, high): clamp(v, low, high)
    case .sigmoid: sigmoidVector(v)
    case .silu: v * sigmoidVector(v)
    case .hardSwish: v * clamp(v / 6 + 0.5, 0, 1)
    case let .hardSigmoid(alpha, beta): clamp(alpha * v + beta, 0, 1)
    case .gelu: geluVector(v)
    }
}

/// min(max(v, low), high) lane by lane, NaN kept (a low above high gives high, like Clip).
@inline(__always)
func clamp(_ v: Vec, _ low: Float, _ high: Float) -> Vec {
    let w = v.replacing(with: low, where: v .< low)
    return w.replacing(with: high, where: w .> high)
}

/// 1 / (1 + e^−x).
@inline(__always)
func sigmoidVector(_ x: Vec) -> Vec { 1 / (1 + expVector(-x)) }

/// e^x in f32 within about 1 ulp (Cephes' expf): `2^n · e^r` with `n = round(x·log₂e)`, `r = x − n·ln 2`
/// (ln 2 in two parts) and e^r from a degree-6 polynomial. Below −87.3 (where results turn
/// subnormal) it gives 0, above 88.72 +infinity; NaN stays NaN.
@inline(__always)
func expVector(_ x: Vec) -> Vec {
    let low: Float = -87.33654, high: Float = 88.72283
    let c = x.replacing(with: low, where: x .< low).replacing(with: high, where: x .> high).replacing(with: 0, where: x .!= x)
    let n = (c * 1.44269504088896341).rounded(.toNearestOrEven)
    var r = c
    multiplyAdd(&r, n, Vec(repeating: -0.693359375))
    multiplyAdd(&r, n, Vec(repeating: 2.12194440e-4))
    var p = Vec(repeating: 1.9875691500e-4)
    @inline(__always) func step(_ coefficient: Float) {
        var q = Vec(repeating: coefficient)
        multiplyAdd(&q, p, r)
        p = q
    }
    step(1.3981999507e-3); step(8.3334519073e-3); step(4.1665795894e-2); step(1.6666665459e-1); step(5.0000001201e-1)
    var e = r + 1
    multiplyAdd(&e, p, r * r)
    // 2^n from the bits of n + 2²³ + 127 (exact for the integral n in −126…128): its low bits hold n + 127.
    let biased = unsafeBitCast(n + 8_388_735, to: SIMD8<UInt32>.self) &- 0x4B00_0000
    let bits = biased &<< 23
    var result = e * unsafeBitCast(bits, to: Vec.self)
    result.replace(with: 0, where: x .< low)
    result.replace(with: .infinity, where: x .> high)
    result.replace(with: x, where: x .!= x)
    return result
}

/// GELU, x·Φ(x) = x/2 · (1 + erf(x/√2)), within a few ulp: with t = |x|/√2,
/// - t < 0.5: erf(t) = t·P(t²), P the Taylor series to t¹² (relative error below 1e-9);
/// - t ≥ 0.5: erfc(t) = e^(−t²) · h(1/t) / t, h a degree-16 Chebyshev fit of t·e^(t²)·erfc(t) in 1/t on
///   [0.5, 9.5] (scripts/fit-gelu fits it with SciPy's erfc; relative error 9e-9), and t² = x²/2
///   split exactly into two floats (Veltkamp) so e^(−t²) stays accurate far into the tail;
/// - x > 13.4 gives x, finite x < −13.4 gives −0 (the true value is below 1e-39); NaN and −∞ give NaN.
@inline(__always)
func geluVector(_ x: Vec) -> Vec {
    let magnitude = x.replacing(with: -x, where: x .< 0)
    let t = magnitude * 0.70710678118654752
    // erf(t) for t < 0.5.
    let w = t * t
    var p = Vec(repeating: 1.2055332626914605e-04)
    @inline(__always) func horner(_ coefficient: Float) {
        var q = Vec(repeating: coefficient)
        multiplyAdd(&q, p, w)
        p = q
    }
    horner(-8.548327023163438e-04); horner(5.223977845162153e-03); horner(-2.686617150902748e-02)
    horner(1.1283791810274124e-01); horner(-3.7612637877464294e-01); horner(1.128379225730896)
    let erfSmall = t * p
    // erfc(t) for t ≥ 0.5.
    let u = 1 / t.replacing(with: 0.5, where: t .< 0.5).replacing(with: 9.5, where: t .> 9.5)
    let v = u * 1.0555556 - 1.1111112, twoV = v + v
    var b1 = Vec(), b2 = Vec()
    @inline(__always) func clenshaw(_ coefficient: Float) {
        var b = Vec(repeating: coefficient) - b2
        multiplyAdd(&b, twoV, b1)
        b2 = b1
        b1 = b
    }
    clenshaw(-1.0830761176805481e-08); clenshaw(2.7526288803869647e-08); clenshaw(-5.19743288407426e-08)
    clenshaw(4.756090987712014e-08); clenshaw(1.4993543118180241e-07); clenshaw(-1.048848389473278e-06)
    clenshaw(3.817464858002495e-06); clenshaw(-1.0015884981839918e-05); clenshaw(1.734201578074135e-05)
    clenshaw(3.4869864862230315e-07); clenshaw(-1.5836926468182355e-04); clenshaw(8.07959761004895e-04)
    clenshaw(-2.598836086690426e-03); clenshaw(4.7939615324139595e-03); clenshaw(7.61538976803422e-03)
    clenshaw(-1.322259157896042e-01)
    var h = Vec(repeating: 0.42960038781166077) - b2
    multiplyAdd(&h, v, b1)
    // x² = high + low exactly (Veltkamp's split of x), halved exactly: t² = x²/2.
    let split = x * 4097, xHigh = split - (split - x), xLow = x - xHigh
    let high = x * x, low = ((xHigh * xHigh - high) + 2 * xHigh * xLow) + xLow * xLow
    let erfcLarge = expVector(-0.5 * high) * (1 - 0.5 * low) * h * u
    let small = t .< 0.5, negative = x .< 0
    var twicePhi = (2 - erfcLarge).replacing(with: erfcLarge, where: negative)
    twicePhi.replace(with: (1 + erfSmall).replacing(with: 1 - erfSmall, where: negative), where: small)
    var result = 0.5 * x * twicePhi
    result.replace(with: x, where: x .> 13.4)
    result.replace(with: -0.0, where: (x .< -13.4) .& (x .> -.infinity))  // −infinity stays NaN, as −∞·0 in PyTorch
    return result
}
