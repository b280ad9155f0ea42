import ZooCore

/// ONNX TensorProto.DataType: an open code set (files may hold types zoo does not know yet).
public struct ONNXDataType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    public static let undefined = ONNXDataType(rawValue: 0)
    public static let float = ONNXDataType(rawValue: 1)
    public static let uint8 = ONNXDataType(rawValue: 2)
    public static let int8 = ONNXDataType(rawValue: 3)
    public static let uint16 = ONNXDataType(rawValue: 4)
    public static let int16 = ONNXDataType(rawValue: 5)
    public static let int32 = ONNXDataType(rawValue: 6)
    public static let int64 = ONNXDataType(rawValue: 7)
    public static let string = ONNXDataType(rawValue: 8)
    public static let bool = ONNXDataType(rawValue: 9)
    public static let float16 = ONNXDataType(rawValue: 10)
    public static let double = ONNXDataType(rawValue: 11)
    public static let uint32 = ONNXDataType(rawValue: 12)
    public static let uint64 = ONNXDataType(rawValue: 13)
    public static let complex64 = ONNXDataType(rawValue: 14)
    public static let complex128 = ONNXDataType(rawValue: 15)
    public static let bfloat16 = ONNXDataType(rawValue: 16)

    private static let names = [
        "UNDEFINED", "FLOAT", "UINT8", "INT8", "UINT16", "INT16", "INT32", "INT64", "STRING", "BOOL", "FLOAT16",
        "DOUBLE", "UINT32", "UINT64", "COMPLEX64", "COMPLEX128", "BFLOAT16", "FLOAT8E4M3FN", "FLOAT8E4M3FNUZ",
        "FLOAT8E5M2", "FLOAT8E5M2FNUZ", "UINT4", "INT4", "FLOAT4E2M1", "FLOAT8E8M0", "UINT2", "INT2",
        "FLOAT6E2M3", "FLOAT6E3M2",
    ]

    /// The standard's name (`FLOAT16`), or `data type N` for a number it does not define.
    public var description: String {
        rawValue >= 0 && Int(rawValue) < Self.names.count ? Self.names[Int(rawValue)] : "data type \(rawValue)"
    }

    /// Bits one element takes as stored in raw_data or external data (the 4- and 2-bit types pack
    /// several to a byte, the 6-bit floats four to three bytes); nil for STRING, UNDEFINED and numbers
    /// the standard does not define.
    public var bitWidth: Int? {
        switch rawValue {
        case 1, 6, 12: 32                    // FLOAT, INT32, UINT32
        case 2, 3, 9, 17, 18, 19, 20, 24: 8  // UINT8, INT8, BOOL, the FLOAT8 types
        case 4, 5, 10, 16: 16                // UINT16, INT16, FLOAT16, BFLOAT16
        case 7, 11, 13, 14: 64               // INT64, DOUBLE, UINT64, COMPLEX64
        case 15: 128                         // COMPLEX128
        case 21, 22, 23: 4                   // UINT4, INT4, FLOAT4E2M1
        case 25, 26: 2                       // UINT2, INT2
        case 27, 28: 6                       // FLOAT6E2M3, FLOAT6E3M2
        default: nil
        }
    }

    /// The ONNX type of a zoo dtype (every zoo dtype has one).
    public init(_ dtype: DType) {
        self = switch dtype {
        case .f32: .float
        case .f64: .double
        case .f16: .float16
        case .bf16: .bfloat16
        case .i64: .int64
        case .i32: .int32
        case .i16: .int16
        case .i8: .int8
        case .u8: .uint8
        case .bool: .bool
        }
    }

    /// The zoo dtype, or nil for the types zoo does not hold (unsigned 16/32/64, strings, complex, 8/4/2-bit floats and ints).
    public var dtype: DType? {
        switch self {
        case .float: .f32
        case .double: .f64
        case .float16: .f16
        case .bfloat16: .bf16
        case .int64: .i64
        case .int32: .i32
        case .int16: .i16
        case .int8: .i8
        case .uint8: .u8
        case .bool: .bool
        default: nil
        }
    }
}
