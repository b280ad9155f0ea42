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

    /// PyTorch's name for the dtype, as `torch.<name>` (e.g. `float32`).
    public var torchName: String {
        switch self {
        case .f32: "float32"
        case .f64: "float64"
        case .f16: "float16"
        case .bf16: "bfloat16"
        case .i64: "int64"
        case .i32: "int32"
        case .i16: "int16"
        case .i8: "int8"
        case .u8: "uint8"
        case .bool: "bool"
        }
    }
}
