/// Element access for reference computations: a tensor's elements as Int64 or Double in C order,
/// and dense tensors of any dtype made from them.
extension Tensor {
    /// Every element as Int64, in C order: integers and bool exactly; floating point truncated toward
    /// zero and clamped to Int64's range (NaN → 0), as a cast would.
    public func int64s() -> [Int64] {
        var values: [Int64] = []
        values.reserveCapacity(count)
        let base = storage.bytes.baseAddress
        let dtype = dtype
        if dtype.isFloatingPoint {
            return doubles().map { Tensor.truncated($0) }
        }
        forEachByteOffset { at in
            let p = base!.advanced(by: at)
            let v: Int64 = switch dtype {
            case .i64: p.loadUnaligned(as: Int64.self)
            case .i32: Int64(p.loadUnaligned(as: Int32.self))
            case .i16: Int64(p.loadUnaligned(as: Int16.self))
            case .i8: Int64(p.load(as: Int8.self))
            case .u8: Int64(p.load(as: UInt8.self))
            case .bool: p.load(as: UInt8.self) != 0 ? 1 : 0
            case .f32, .f64, .f16, .bf16: 0  // handled above
            }
            values.append(v)
        }
        return values
    }

    /// The elements as Int (`int64s`): a shape, axes, indices.
    public func integers() -> [Int] { int64s().map { Int($0) } }

    /// `v` truncated toward zero into Int64's range (NaN → 0).
    public static func truncated(_ v: Double) -> Int64 {
        if v.isNaN { return 0 }
        if v >= 9.223372036854775807e18 { return .max }
        if v <= -9.223372036854775808e18 { return .min }
        return Int64(v.rounded(.towardZero))
    }

    /// A dense tensor of `dtype` holding `values` (count must equal the shape's product): floating
    /// dtypes round to nearest, integer dtypes truncate toward zero and wrap to their width, bool is
    /// value != 0.
    public init(dtype: DType, shape: [Int], doubles values: [Double]) {
        precondition(Tensor.checkedCount(shape) == values.count, "\(values.count) values for shape \(shape)")
        if !dtype.isFloatingPoint {
            self.init(dtype: dtype, shape: shape, int64s: values.map { dtype == .bool ? ($0 != 0 ? 1 : 0) : Tensor.truncated($0) })
            return
        }
        try! self.init(dtype: dtype, shape: shape) { raw in
            for (i, v) in values.enumerated() {
                switch dtype {
                case .f32: raw.storeBytes(of: Float(v), toByteOffset: 4 * i, as: Float.self)
                case .f64: raw.storeBytes(of: v, toByteOffset: 8 * i, as: Double.self)
                case .f16: raw.storeBytes(of: HalfPrecision.f32ToF16(Float(v)), toByteOffset: 2 * i, as: UInt16.self)
                case .bf16: raw.storeBytes(of: HalfPrecision.f32ToBF16(Float(v)), toByteOffset: 2 * i, as: UInt16.self)
                default: break
                }
            }
        }
    }

    /// A dense tensor of `dtype` holding `values`: integer dtypes keep the low bits (wrap), bool is
    /// value != 0, floating dtypes convert by value.
    public init(dtype: DType, shape: [Int], int64s values: [Int64]) {
        precondition(Tensor.checkedCount(shape) == values.count, "\(values.count) values for shape \(shape)")
        if dtype.isFloatingPoint {
            self.init(dtype: dtype, shape: shape, doubles: values.map { Double($0) })
            return
        }
        try! self.init(dtype: dtype, shape: shape) { raw in
            for (i, v) in values.enumerated() {
                switch dtype {
                case .i64: raw.storeBytes(of: v, toByteOffset: 8 * i, as: Int64.self)
                case .i32: raw.storeBytes(of: Int32(truncatingIfNeeded: v), toByteOffset: 4 * i, as: Int32.self)
                case .i16: raw.storeBytes(of: Int16(truncatingIfNeeded: v), toByteOffset: 2 * i, as: Int16.self)
                case .i8: raw.storeBytes(of: Int8(truncatingIfNeeded: v), toByteOffset: i, as: Int8.self)
                case .u8: raw.storeBytes(of: UInt8(truncatingIfNeeded: v), toByteOffset: i, as: UInt8.self)
                case .bool: raw.storeBytes(of: UInt8(v != 0 ? 1 : 0), toByteOffset: i, as: UInt8.self)
                default: break
                }
            }
        }
    }

    /// A dense int64 tensor of `values`.
    public init(int64s values: [Int], shape: [Int]) {
        self.init(dtype: .i64, shape: shape, int64s: values.map { Int64($0) })
    }
}
