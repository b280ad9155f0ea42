/// Why a tensor's geometry was refused.
public enum TensorError: Error, Equatable, Sendable, CustomStringConvertible {
    case rankMismatch(shape: Int, strides: Int)
    case negativeSize(dim: Int, size: Int)
    case negativeStride(dim: Int, stride: Int)
    case negativeOffset(Int)
    case overflow
    /// The elements the tensor reaches end past its storage.
    case outOfBounds(offset: Int, extent: Int, storageElements: Int)

    public var description: String {
        switch self {
        case let .rankMismatch(shape, strides): "shape has \(shape) dimensions but strides have \(strides)"
        case let .negativeSize(dim, size): "negative size \(size) in dimension \(dim)"
        case let .negativeStride(dim, stride): "negative stride \(stride) in dimension \(dim)"
        case let .negativeOffset(offset): "negative storage offset \(offset)"
        case .overflow: "size arithmetic overflows 64 bits"
        case let .outOfBounds(offset, extent, storageElements):
            "reaches element \(offset + extent) (offset \(offset) + extent \(extent)) of a storage holding \(storageElements)"
        }
    }
}

/// An n-dimensional strided view over a shared `Storage`.
///
/// Shape, strides and offset are in elements. Every tensor is validated when built: sizes and
/// strides are non-negative, all arithmetic is overflow-checked (including the dense byte size, so
/// `count` and `byteCount` never overflow, even for an expanded view of a tiny storage), and every
/// element it can reach lies inside the storage. Views (slices, transposes, expansions with stride 0) share storage; turning a
/// view into a dense C-order tensor is explicit (`contiguous()`).
public struct Tensor: @unchecked Sendable {
    public let dtype: DType
    public let shape: [Int]
    public let strides: [Int]
    /// First element, counted in elements from the start of the storage.
    public let offset: Int
    public let storage: Storage

    /// Builds a strided view, validating it against the storage.
    public init(dtype: DType, shape: [Int], strides: [Int], offset: Int, storage: Storage) throws(TensorError) {
        let storageElements = storage.byteCount / dtype.itemSize
        _ = try Tensor.checkedExtent(shape: shape, strides: strides, offset: offset, storageElements: storageElements,
                                     itemSize: dtype.itemSize)
        self.dtype = dtype
        self.shape = shape
        self.strides = strides
        self.offset = offset
        self.storage = storage
    }

    /// A dense C-order tensor over the start of `storage` (which must be large enough).
    public init(dtype: DType, shape: [Int], storage: Storage) throws(TensorError) {
        try self.init(dtype: dtype, shape: shape, strides: Tensor.contiguousStrides(for: shape), offset: 0, storage: storage)
    }

    /// A new dense tensor whose bytes `initialize` writes (C order, `count * itemSize` bytes).
    public init(dtype: DType, shape: [Int], initialize: (UnsafeMutableRawBufferPointer) throws -> Void) throws {
        guard let count = Tensor.checkedCount(shape) else { throw TensorError.overflow }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: dtype.itemSize)
        guard !overflow else { throw TensorError.overflow }
        let storage = try Storage(byteCount: bytes, initialize: initialize)
        try self.init(dtype: dtype, shape: shape, storage: storage)
    }

    /// C-order strides for `shape`, in elements.
    public static func contiguousStrides(for shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var running = 1
        for dim in shape.indices.reversed() {
            strides[dim] = running
            running = running &* max(shape[dim], 1)
        }
        return strides
    }

    /// The product of `shape`, or nil on a negative size or overflow.
    public static func checkedCount(_ shape: [Int]) -> Int? {
        var count = 1
        for size in shape {
            guard size >= 0 else { return nil }
            let (product, overflow) = count.multipliedReportingOverflow(by: size)
            guard !overflow else { return nil }
            count = product
        }
        return count
    }

    /// Validates a view's geometry and returns its extent: one past the largest element index it
    /// reaches, relative to `offset` (0 for an empty tensor). The element count times `itemSize` (the
    /// tensor's dense byte size) must fit in an `Int` too.
    @discardableResult
    public static func checkedExtent(shape: [Int], strides: [Int], offset: Int, storageElements: Int,
                                     itemSize: Int = 1) throws(TensorError) -> Int {
        guard shape.count == strides.count else { throw .rankMismatch(shape: shape.count, strides: strides.count) }
        guard offset >= 0 else { throw .negativeOffset(offset) }
        for (dim, size) in shape.enumerated() where size < 0 { throw .negativeSize(dim: dim, size: size) }
        for (dim, stride) in strides.enumerated() where stride < 0 { throw .negativeStride(dim: dim, stride: stride) }
        guard let count = checkedCount(shape), !count.multipliedReportingOverflow(by: itemSize).overflow else {
            throw .overflow
        }
        if shape.contains(0) { return 0 }
        var last = 0
        for (size, stride) in zip(shape, strides) {
            let (step, o1) = (size - 1).multipliedReportingOverflow(by: stride)
            let (sum, o2) = last.addingReportingOverflow(step)
            guard !o1, !o2 else { throw .overflow }
            last = sum
        }
        let (extent, o3) = last.addingReportingOverflow(1)
        let (end, o4) = offset.addingReportingOverflow(extent)
        guard !o3, !o4 else { throw .overflow }
        guard end <= storageElements else {
            throw .outOfBounds(offset: offset, extent: extent, storageElements: storageElements)
        }
        return extent
    }

    public var rank: Int { shape.count }
    /// Number of elements.
    public var count: Int { shape.reduce(1, *) }
    /// Bytes the elements take when dense.
    public var byteCount: Int { count * dtype.itemSize }

    /// True when the elements are dense in C order (sizes-1 dimensions and empty tensors ignore strides).
    public var isContiguous: Bool {
        if count == 0 { return true }
        var expected = 1
        for dim in shape.indices.reversed() where shape[dim] != 1 {
            if strides[dim] != expected { return false }
            expected *= shape[dim]
        }
        return true
    }

    /// True when the tensor is not a dense C-order run covering its whole storage — a slice, a
    /// transpose, an expansion, or one of several tensors sharing a storage.
    public var isView: Bool {
        !isContiguous || offset != 0 || byteCount != storage.byteCount
    }

    /// The element's byte offset in the storage for each element in C order.
    ///
    /// Only ever steps to an element's position, all of which the initializer checked: a dimension
    /// is advanced only while its index stays in range and rewound by exactly the steps it took, so
    /// a size-1 dimension's stride (which torch allows to be anything) is never added.
    public func forEachByteOffset(_ body: (Int) throws -> Void) rethrows {
        let n = count
        if n == 0 { return }
        let item = dtype.itemSize
        if isContiguous {
            for i in 0..<n { try body((offset + i) * item) }
            return
        }
        var index = [Int](repeating: 0, count: rank)
        var position = offset
        try body(position * item)
        for _ in 1..<n {
            var dim = rank - 1
            while index[dim] + 1 == shape[dim] {
                position -= strides[dim] * index[dim]
                index[dim] = 0
                dim -= 1
            }
            index[dim] += 1
            position += strides[dim]
            try body(position * item)
        }
    }

    /// Calls `body` with the elements' bytes in C order: the storage itself when the tensor is
    /// contiguous, otherwise a temporary dense copy.
    public func withContiguousBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        if isContiguous {
            let start = offset * dtype.itemSize
            return try body(UnsafeRawBufferPointer(rebasing: storage.bytes[start..<(start + byteCount)]))
        }
        return try contiguous().withContiguousBytes(body)
    }

    /// This tensor when already dense and starting its storage at offset 0 with nothing after it;
    /// otherwise a dense copy of its elements in new storage.
    public func contiguous() -> Tensor {
        if isContiguous && !isView { return self }
        let item = dtype.itemSize
        let source = storage.bytes
        let copy = Storage(byteCount: byteCount) { destination in
            var written = 0
            forEachByteOffset { at in
                destination.baseAddress!.advanced(by: written)
                    .copyMemory(from: source.baseAddress!.advanced(by: at), byteCount: item)
                written += item
            }
        }
        return try! Tensor(dtype: dtype, shape: shape, storage: copy)
    }

    /// Every element converted to Double, in C order (bool → 0/1; i64 beyond 2^53 rounds).
    public func doubles() -> [Double] {
        var values: [Double] = []
        values.reserveCapacity(count)
        let base = storage.bytes.baseAddress
        forEachByteOffset { at in
            let p = base!.advanced(by: at)
            let v: Double = switch dtype {
            case .f32: Double(p.loadUnaligned(as: Float.self))
            case .f64: p.loadUnaligned(as: Double.self)
            case .f16: Double(HalfPrecision.f16ToF32(p.loadUnaligned(as: UInt16.self)))
            case .bf16: Double(HalfPrecision.bf16ToF32(p.loadUnaligned(as: UInt16.self)))
            case .i64: Double(p.loadUnaligned(as: Int64.self))
            case .i32: Double(p.loadUnaligned(as: Int32.self))
            case .i16: Double(p.loadUnaligned(as: Int16.self))
            case .i8: Double(p.load(as: Int8.self))
            case .u8: Double(p.load(as: UInt8.self))
            case .bool: p.load(as: UInt8.self) != 0 ? 1 : 0
            }
            values.append(v)
        }
        return values
    }
}

extension Tensor {
    /// A dense f32 tensor holding `floats` (count must equal the shape's product).
    public init(floats: [Float], shape: [Int]) {
        precondition(Tensor.checkedCount(shape) == floats.count, "\(floats.count) values for shape \(shape)")
        let storage = floats.withUnsafeBytes { Storage(copying: $0) }
        try! self.init(dtype: .f32, shape: shape, storage: storage)
    }

    /// True when `other` has this tensor's dtype, shape and elements, bit for bit (NaN payloads
    /// included; the layouts may differ).
    public func isBitIdentical(_ other: Tensor) -> Bool {
        dtype == other.dtype && shape == other.shape
            && withContiguousBytes { a in other.withContiguousBytes { b in a.elementsEqual(b) } }
    }

    /// This tensor as dense f32: itself when it already is (no copy), else a converted copy.
    /// Floating-point sources convert exactly (f16, bf16, NaN payloads included, as torch does) or
    /// with rounding to nearest (f64); integers convert by value.
    public func float32() -> Tensor {
        if dtype == .f32 { return contiguous() }
        guard dtype.isFloatingPoint else { return Tensor(floats: doubles().map { Float($0) }, shape: shape) }
        // Directly, not through Double: that would quiet bf16's signalling NaNs (and weights widened
        // whenever an executor plans are large).
        let dtype = dtype, bytes = storage.bytes
        return try! Tensor(dtype: .f32, shape: shape) { raw in
            let out = raw.bindMemory(to: Float.self)
            var i = 0
            forEachByteOffset { at in
                out[i] = switch dtype {
                case .f16: HalfPrecision.f16ToF32(bytes.loadUnaligned(fromByteOffset: at, as: UInt16.self))
                case .bf16: HalfPrecision.bf16ToF32(bytes.loadUnaligned(fromByteOffset: at, as: UInt16.self))
                default: Float(bytes.loadUnaligned(fromByteOffset: at, as: Double.self))
                }
                i += 1
            }
        }
    }

    /// The elements as f32 values in C order (see `float32()`).
    public func floats() -> [Float] {
        if dtype == .f32 {
            return withContiguousBytes { Array($0.bindMemory(to: Float.self)) }
        }
        return float32().floats()
    }
}
