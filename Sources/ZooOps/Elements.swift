/// Helpers the ops' reference semantics and generic kernels share: dtype rules, broadcasting
/// index maps, and running a plain f32 loop over dense copies of tensors.
import ZooCore
import ZooKernels

enum DTypeRules {
    /// The one dtype computed over `inputs`: their dtype when they all have it; f32 when they are all
    /// floating point (weights stored in f16, bf16 or f64 are widened, as the executor does).
    static func common(_ inputs: [ValueInfo], _ what: String = "inputs") throws(OpFailure) -> DType {
        let dtypes = inputs.map(\.dtype)
        if let first = dtypes.first, dtypes.allSatisfy({ $0 == first }) { return first }
        if dtypes.allSatisfy(\.isFloatingPoint) { return .f32 }
        throw OpFailure("\(what) differ in element type (\(inputs.map { "'\($0.name)' \($0.dtype.rawValue)" }.joined(separator: ", ")))")
    }

    /// Refuses a non-floating input of an op that computes in floating point.
    static func floating(_ inputs: [ValueInfo]) throws(OpFailure) {
        for input in inputs where !input.dtype.isFloatingPoint {
            throw OpFailure("input '\(input.name)' is \(input.dtype.rawValue), not floating point")
        }
    }
}

enum Broadcast {
    /// For each element of `shape` (C order), the index of the element of a tensor of `source`
    /// shape that NumPy broadcasting reads (`source` right-aligned, dims of 1 repeating).
    static func indices(of source: [Int], in shape: [Int]) -> [Int] {
        let strides = ElementwiseKernels.broadcastStrides(of: source, in: shape)
        let inner = shape.last ?? 1, step = strides.last ?? 0
        var result: [Int] = []
        result.reserveCapacity(shape.product)
        ElementwiseKernels.forEachRow(of: shape, strides: [strides]) { _, at in
            for i in 0..<inner { result.append(at[0] + i * step) }
        }
        return result
    }

    /// The NumPy broadcast of concrete shapes.
    static func shape(_ shapes: [[Int]]) throws(OpFailure) -> [Int] {
        let rank = shapes.map(\.count).max() ?? 0
        var out = [Int](repeating: 1, count: rank)
        for s in shapes {
            let aligned = [Int](repeating: 1, count: rank - s.count) + s
            for d in 0..<rank where aligned[d] != out[d] {
                if out[d] == 1 { out[d] = aligned[d] } else if aligned[d] != 1 {
                    throw OpFailure("shapes \(shapes) do not broadcast")
                }
            }
        }
        return out
    }
}

extension Tensor {
    /// Runs `body` over dense f32 copies (or the tensors themselves when already dense f32) of
    /// `inputs` and returns the f32 tensor of `shape` it fills.
    static func f32(_ inputs: [Tensor], shape: [Int],
                    _ body: (_ inputs: [UnsafePointer<Float>], _ output: UnsafeMutablePointer<Float>) -> Void) -> Tensor {
        let dense = inputs.map { $0.float32() }
        let result = try! Tensor(dtype: .f32, shape: shape) { raw in
            let out = raw.bindMemory(to: Float.self).baseAddress ?? UnsafeMutablePointer<Float>(bitPattern: 16)!
            var pointers: [UnsafePointer<Float>] = []
            for t in dense {
                pointers.append(t.storage.bytes.baseAddress.map { UnsafePointer($0.bindMemory(to: Float.self, capacity: 1)) + t.offset }
                    ?? UnsafePointer(bitPattern: 16)!)
            }
            body(pointers, out)
        }
        withExtendedLifetime(dense) {}
        return result
    }
}

extension Array where Element == Int {
    /// The product of the elements (a shape's element count).
    var product: Int { reduce(1, *) }
}

extension ArraySlice where Element == Int {
    var product: Int { reduce(1, *) }
}

extension Tensor {
    /// A dense tensor of `shape` (this tensor's dtype) whose element at each multi-index is this
    /// tensor's element (in C order) at `source(index)`, or `fill`'s one element when it returns nil.
    /// Data movement for any dtype: Transpose, Slice, Gather, Pad, Tile, Expand.
    func remapped(to shape: [Int], fill: Tensor? = nil, _ source: ([Int]) -> Int?) -> Tensor {
        let dense = contiguous(), item = dtype.itemSize
        let fillBytes = fill.map { f in f.contiguous().withContiguousBytes { Array($0.prefix(item)) } } ?? [UInt8](repeating: 0, count: item)
        return try! Tensor(dtype: dtype, shape: shape) { raw in
            let count = shape.product
            guard count > 0 else { return }
            dense.withContiguousBytes { from in
                var index = [Int](repeating: 0, count: shape.count)
                for i in 0..<count {
                    if let at = source(index) {
                        (raw.baseAddress! + i * item).copyMemory(from: from.baseAddress! + at * item, byteCount: item)
                    } else {
                        fillBytes.withUnsafeBytes { (raw.baseAddress! + i * item).copyMemory(from: $0.baseAddress!, byteCount: item) }
                    }
                    var d = shape.count - 1
                    while d >= 0 {
                        index[d] += 1
                        if index[d] < shape[d] { break }
                        index[d] = 0
                        d -= 1
                    }
                }
            }
        }
    }
}

/// Row-major strides of a dense shape.
func denseStrides(_ shape: [Int]) -> [Int] { Tensor.contiguousStrides(for: shape) }

/// `axis` in 0..<rank (negative counts from the end), or a failure naming `what`.
func normalizedAxis(_ axis: Int, rank: Int, _ what: String = "axis") throws(OpFailure) -> Int {
    let a = axis < 0 ? axis + rank : axis
    guard (0..<max(rank, 1)).contains(a), rank > 0 || a == 0 else { throw OpFailure("\(what) \(axis) out of range for rank \(rank)") }
    return a
}

extension ValueInfo {
    /// The value of a 1-D or scalar integer tensor known up to symbolic dimensions (the output of
    /// Shape, and of Gather/Concat/Unsqueeze/Slice/Cast over such values): `dimsValue`, or the
    /// integers of a known value.
    var knownDims: [Dim]? {
        if let dimsValue { return dimsValue }
        guard let value, !value.dtype.isFloatingPoint, value.dtype != .bool, value.rank <= 1 else { return nil }
        return value.integers().map { .fixed($0) }
    }

    /// An integer value known up to symbolic dims: `value` too when every dim is fixed.
    init(dtype: DType, shape: [Dim], knownDims: [Dim]) {
        let fixed = knownDims.compactMap(\.value)
        self.init(dtype: dtype, shape: shape,
                  value: fixed.count == knownDims.count ? Tensor(dtype: dtype, shape: shape.compactMap(\.value), int64s: fixed.map { Int64($0) }) : nil)
        dimsValue = knownDims
    }
}
