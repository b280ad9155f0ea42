/// Element types a tensor can hold.
///
/// The set is closed on purpose: these are the dtypes zoo reads, writes and computes with. A checkpoint
/// holding anything else (complex, float8, unsigned 16/32/64) is refused by the reader with the tensor's
/// name, never reinterpreted.
public enum DType: String, CaseIterable, Sendable, Hashable {
    case f32, f64, f16, bf16, i64, i32, i16, i8, u8, bool

    /// Bytes per element.
    public var itemSize: Int {
        switch self {
        case .f64, .i64: 8
        case .f32, .i32: 4
        case .f16, .bf16, .i16: 2
        case .i8, .u8, .bool: 1
        }
    }

    public var isFloatingPoint: Bool {
        switch self {
        case .f32, .f64, .f16, .bf16: true
        case .i64, .i32, .i16, .i8, .u8, .bool: false
        }
    }
}
