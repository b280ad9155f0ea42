#if canImport(Glibc)
import Glibc
#endif
import ZooKernelsBase

/// `y[i] = a(x[i])` for `count` elements (`y` may be `x`), 8 lanes at a time; a partial last
/// vector goes through a padded copy, so every element takes the same arithmetic wherever it lies
/// (results do not depend on how callers split an array). The sigmoid family uses `sigmoidVector`,
/// GELU `geluVector`.
func activate(_ a: Activation, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ count: Int) {
    var i = 0
    while i + 8 <= count {
        store(activateVector(a, load(x + i)), y + i)
        i += 8
    }
    if i < count {
        var lanes = Vec()
        for j in 0..<(count - i) { lanes[j] = x[i + j] }
        let out = activateVector(a, lanes)
        for j in 0..<(count - i) { y[i + j] = out[j] }
    }
}

/// The activation of 8 lanes: `activate`'s arithmetic, which the GEMM tiles also apply to their
/// accumulators before storing.
@_transparent
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
@_transparent
func clamp(_ v: Vec, _ low: Float, _ high: Float) -> Vec {
    let w = v.replacing(with: low, where: v .< low)
    return w.replacing(with: high, where: w .> high)
}

/// 1 / (1 + e^−x) in 14 vector operations, within 4 ulp of 1 / (1 + expf(−x)) (at most 3.8 ulp of
/// the exact sigmoid over normal results). e^−x = 2^n · e^−q with n = round(−x·log₂e) and
/// q = x + n·ln 2 (ln 2 in two parts), e^−q from the degree-5 minimax polynomial of Arm's
/// optimized-routines `v_expf` (max error 1.45 + 0.5 ulp) taken at −q. n comes out of one
/// multiply-add with 2²³ + 127 added, which rounds it to an integer and leaves n + 127 in the low
/// bits that become 2^n's exponent. x is clamped to [−89, 88] instead of fixing results up
/// afterwards: at 88 the scale's exponent field is 0 (2^n = +0, the sigmoid 1), at −89 it is 255
/// (+∞, the sigmoid +0), so results below the smallest normal (|x| > 87.3) may flush to 0; NaN
/// stays NaN.
@_transparent
func sigmoidVector(_ x: Vec) -> Vec {
    let c = clamp(x, -89, 88)
    var z = Vec(repeating: 8_388_735)
    multiplyAdd(&z, c, Vec(repeating: -1.44269504088896341))
    let n = z - 8_388_735
    var q = c
    multiplyAdd(&q, n, Vec(repeating: 0.693359375))
    multiplyAdd(&q, n, Vec(repeating: -2.12194440e-4))
    var p = Vec(repeating: -0x1.0e4020p-7)
    @inline(__always) func step(_ coefficient: Float) {
        var next = Vec(repeating: coefficient)
        multiplyAdd(&next, p, q)
        p = next
    }
    step(0x1.573e2ep-5); step(-0x1.555e66p-3); step(0x1.fffdb6p-2); step(-0x1.ffffecp-1); step(1)
    var d = Vec(repeating: 1)
    multiplyAdd(&d, p, unsafeBitCast(unsafeBitCast(z, to: SIMD8<UInt32>.self) &<< 23, to: Vec.self))
    return 1 / d
}

/// e^x in f32 within about 1 ulp (Cephes' expf): `2^n · e^r` with `n = round(x·log₂e)`, `r = x − n·ln 2`
/// (ln 2 in two parts) and e^r from a degree-6 polynomial. Below −87.3 (where results turn
/// subnormal) it gives 0, above 88.72 +infinity; NaN stays NaN.
@_transparent
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

/// GELU as PyTorch computes it, x/2 · (1 + erf(x/√2)), with erf a rational minimax approximation
/// in f32 — an odd degree-13 numerator over an even degree-8 denominator in z = x/√2 clamped to
/// ±4 (where erf rounds to ±1), the coefficients of Eigen's and XLA's f32 erf (max |error| of the
/// rational 6.5·10⁻⁸ in Double): 13 multiply-adds and one division. Within 2.5·10⁻⁷·|x| + 2 ulp of
/// x·Φ(x); PyTorch's own f32 GELU is within 3.5·10⁻⁷·|x|, and like it the negative tail cancels
/// in 1 + erf (both give −0 at x = −6, where x·Φ(x) is −5.9·10⁻⁹). +∞ gives +∞; −∞ and NaN give
/// NaN (−∞ · 0, as in PyTorch).
@_transparent
func geluVector(_ x: Vec) -> Vec {
    let z = clamp(x * 0.70710678118654752, -4, 4)
    let w = z * z
    var p = Vec(repeating: -2.72614225801306e-10), q = Vec(repeating: -1.45660718464996e-05)
    @inline(__always) func step(_ v: inout Vec, _ coefficient: Float) {
        var next = Vec(repeating: coefficient)
        multiplyAdd(&next, v, w)
        v = next
    }
    step(&p, 2.77068142495902e-08); step(&p, -2.10102402082508e-06); step(&p, -5.69250639462346e-05)
    step(&p, -7.34990630326855e-04); step(&p, -2.95459980854025e-03); step(&p, -1.60960333262415e-02)
    step(&q, -2.13374055278905e-04); step(&q, -1.68282697438203e-03); step(&q, -7.37332916720468e-03)
    step(&q, -1.42647390514189e-02)
    let erf = z * p / q
    return 0.5 * x * (1 + erf)
}
