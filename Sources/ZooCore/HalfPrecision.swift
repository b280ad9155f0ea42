/// Bit-exact conversions between IEEE binary16 / bfloat16 bit patterns and Float.
///
/// Widening (f16/bf16 → f32) is exact for every number; f16 NaNs keep their payload and are
/// quieted, like the hardware (F16C) conversion torch uses. Narrowing rounds to
/// nearest, ties to even, overflows to ±Inf, and produces subnormals where the value needs them — the
/// results are checked against PyTorch's own conversions for every f16/bf16 pattern and a set of tie,
/// subnormal, overflow and NaN cases (Fixtures/torch/f32_to_f16.bin and friends).
public enum HalfPrecision {
    /// The f32 value of an IEEE half-precision bit pattern. Exact.
    @inlinable
    public static func f16ToF32(_ h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exponent = UInt32(h >> 10) & 0x1F
        var mantissa = UInt32(h) & 0x3FF
        let bits: UInt32
        if exponent == 0x1F {
            // Inf, or NaN with its payload in the top of the f32 mantissa, quieted (as F16C does).
            bits = sign | 0x7F80_0000 | (mantissa << 13) | (mantissa != 0 ? 0x40_0000 : 0)
        } else if exponent != 0 {
            bits = sign | ((exponent + 112) << 23) | (mantissa << 13)
        } else if mantissa == 0 {
            bits = sign
        } else {
            // Subnormal half: normalise into an f32 normal.
            var e: UInt32 = 113
            while mantissa & 0x400 == 0 {
                mantissa <<= 1
                e -= 1
            }
            bits = sign | (e << 23) | ((mantissa & 0x3FF) << 13)
        }
        return Float(bitPattern: bits)
    }

    /// The nearest half-precision bit pattern to `value` (ties to even); NaN stays NaN with its sign
    /// and the top of its payload, quieted.
    @inlinable
    public static func f32ToF16(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        let sign = UInt16((bits >> 16) & 0x8000)
        let exponent = Int((bits >> 23) & 0xFF)
        let mantissa = bits & 0x7F_FFFF
        if exponent == 0xFF {
            if mantissa == 0 { return sign | 0x7C00 }
            return sign | 0x7E00 | UInt16(truncatingIfNeeded: mantissa >> 13)
        }
        // Unbiased exponent for the half format.
        let halfExponent = exponent - 127 + 15
        if halfExponent >= 0x1F { return sign | 0x7C00 }
        if halfExponent <= 0 {
            // Result is subnormal or zero: shift the full significand (with its implicit one) right.
            if halfExponent < -10 { return sign }
            let significand = mantissa | 0x80_0000
            let shift = UInt32(14 - halfExponent)
            var half = significand >> shift
            let remainder = significand & ((1 << shift) - 1)
            let halfway = UInt32(1) << (shift - 1)
            if remainder > halfway || (remainder == halfway && half & 1 == 1) { half += 1 }
            return sign | UInt16(half)
        }
        var half = UInt32(halfExponent) << 10 | (mantissa >> 13)
        let remainder = mantissa & 0x1FFF
        if remainder > 0x1000 || (remainder == 0x1000 && half & 1 == 1) {
            half += 1  // may carry into the exponent, up to Inf: that is the right answer.
        }
        return sign | UInt16(half)
    }

    /// The f32 value of a bfloat16 bit pattern. Exact.
    @inlinable
    public static func bf16ToF32(_ b: UInt16) -> Float {
        Float(bitPattern: UInt32(b) << 16)
    }

    /// The nearest bfloat16 bit pattern to `value` (ties to even); every NaN becomes the canonical
    /// quiet NaN 0x7FC0, as torch's conversion does.
    @inlinable
    public static func f32ToBF16(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        if value.isNaN { return 0x7FC0 }
        let rounding = UInt32(0x7FFF) + ((bits >> 16) & 1)
        return UInt16(truncatingIfNeeded: (bits &+ rounding) >> 16)
    }
}
