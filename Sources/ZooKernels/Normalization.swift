/// Normalizations over [batch, channels, spatial] and [outer, length, inner] f32 tensors, each
/// forwarding to the selected kernel set; the plain twins in `ReferenceKernels` state the semantics.
/// Planes or rows are split across the pool's threads; results do not depend on the thread count.
public enum NormalizationKernels {
    /// Local response normalization across channels (`ReferenceKernels.lrn`):
    /// y = x / (bias + alpha/size · Σ_{c' ∈ [c+low, c+high] ∩ [0, C)} x_{c'}²)^beta.
    /// `low`/`high` give the window (PyTorch and ONNX differ for even sizes; the caller decides).
    public static func lrn(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch: Int, channels: Int,
                           spatial: Int, size: Int, low: Int, high: Int, alpha: Float, beta: Float, bias: Float, pool: ThreadPool,
                           kernels: KernelSet = .active) {
        kernels.table.lrn(input, output, batch, channels, spatial, size, low, high, alpha, beta, bias, pool)
    }

    /// Inference batch normalization (`ReferenceKernels.batchNorm`): y = (x − mean) / √(var + ε) · scale + shift,
    /// then `activation` (DenseNet's BN → ReLU) on each plane while it is in cache.
    public static func batchNorm(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch: Int, channels: Int,
                                 spatial: Int, scale: UnsafePointer<Float>, shift: UnsafePointer<Float>, mean: UnsafePointer<Float>,
                                 variance: UnsafePointer<Float>, epsilon: Float, activation: Activation? = nil, pool: ThreadPool,
                                 kernels: KernelSet = .active) {
        kernels.table.batchNorm(input, output, batch, channels, spatial, scale, shift, mean, variance, epsilon, activation, pool)
    }

    /// Softmax along the middle axis of [outer, length, inner] (`ReferenceKernels.softmax`):
    /// exp(x − max) / Σ exp(x − max).
    public static func softmax(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, outer: Int, length: Int,
                               inner: Int, pool: ThreadPool, kernels: KernelSet = .active) {
        kernels.table.softmax(input, output, outer, length, inner, pool)
    }
}

public enum ElementwiseKernels {
    /// `max(x, 0)` with the selected kernel set; NaN stays NaN.
    public static func relu(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, count: Int,
                            kernels: KernelSet = .active) {
        kernels.table.relu(input, output, count)
    }

    /// y = a + b with NumPy broadcasting: `aShape` and `bShape` are right-aligned against `shape`
    /// (the output's), a dimension of 1 repeating.
    public static func add(_ a: UnsafePointer<Float>, _ aShape: [Int], _ b: UnsafePointer<Float>, _ bShape: [Int],
                           output: UnsafeMutablePointer<Float>, shape: [Int]) {
        let count = shape.reduce(1, *)
        if aShape == shape && bShape == shape {
            for i in 0..<count { output[i] = a[i] + b[i] }
            return
        }
        let sa = broadcastStrides(of: aShape, in: shape), sb = broadcastStrides(of: bShape, in: shape)
        let inner = shape.last ?? 1, ia = sa.last ?? 0, ib = sb.last ?? 0
        forEachRow(of: shape, strides: [sa, sb]) { row, at in
            let y = output + row * inner
            for i in 0..<inner { y[i] = a[at[0] + i * ia] + b[at[1] + i * ib] }
        }
    }

    /// Element strides of a dense tensor of shape `source` read NumPy-broadcast to `shape` (right-aligned;
    /// 0 along the dims it repeats).
    public static func broadcastStrides(of source: [Int], in shape: [Int]) -> [Int] {
        let aligned = [Int](repeating: 1, count: shape.count - source.count) + source
        var result = [Int](repeating: 0, count: shape.count)
        var running = 1
        for d in aligned.indices.reversed() {
            result[d] = aligned[d] == 1 ? 0 : running
            running *= aligned[d]
        }
        return result
    }

    /// Visits the rows of `shape` (every dim but the last) in C order with each operand's element
    /// offset at the row's start, operand k read with element strides `strides[k]` (one per dim of
    /// `shape`; 0 where it broadcasts): the walk every strided or broadcast loop shares, the last dim
    /// left to the caller's inner loop.
    public static func forEachRow(of shape: [Int], strides: [[Int]], _ body: (_ row: Int, _ offsets: [Int]) -> Void) {
        let inner = shape.last ?? 1
        guard inner > 0 else { return }
        let rows = shape.reduce(1, *) / inner
        var index = [Int](repeating: 0, count: max(shape.count - 1, 0))
        var offsets = [Int](repeating: 0, count: strides.count)
        for row in 0..<rows {
            body(row, offsets)
            var d = index.count - 1
            while d >= 0 {
                index[d] += 1
                for k in offsets.indices { offsets[k] += strides[k][d] }
                if index[d] < shape[d] { break }
                for k in offsets.indices { offsets[k] -= strides[k][d] * shape[d] }
                index[d] = 0
                d -= 1
            }
        }
    }

    /// General ONNX Gemm, Y = alpha·A'·B' + beta·C with C broadcast from [N], [1, N], [M, 1] or [M, N]
    /// (`cRows`/`cColumns` give C's shape; 0×0 for no C). A plain loop, row-streamed when B is not transposed: Gemm
    /// other than torch.nn.Linear, and every matrix of a batched MatMul (attention).
    public static func gemm(a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafePointer<Float>?, cRows: Int, cColumns: Int,
                            output: UnsafeMutablePointer<Float>, m: Int, n: Int, k: Int, transA: Bool, transB: Bool,
                            alpha: Float, beta: Float) {
        if !transB {
            // Row by row, B streamed along its rows (the inner loop vectorizes): each element is still
            // one chain of adds over p = 0..<k in order from +0, so the result is the loop below's.
            for i in 0..<m {
                let row = output + i * n
                row.initialize(repeating: 0, count: n)
                for p in 0..<k {
                    let av = transA ? a[p * m + i] : a[i * k + p]
                    let bRow = b + p * n
                    for j in 0..<n { row[j] += av * bRow[j] }
                }
                for j in 0..<n {
                    var value = alpha * row[j]
                    if let c {
                        let ci = cRows == 1 ? 0 : i, cj = cColumns == 1 ? 0 : j
                        value += beta * c[ci * cColumns + cj]
                    }
                    row[j] = value
                }
            }
            return
        }
        for i in 0..<m {
            for j in 0..<n {
                var sum: Float = 0
                for p in 0..<k {
                    let av = transA ? a[p * m + i] : a[i * k + p]
                    let bv = transB ? b[j * k + p] : b[p * n + j]
                    sum += av * bv
                }
                var value = alpha * sum
                if let c {
                    let ci = cRows == 1 ? 0 : i, cj = cColumns == 1 ? 0 : j
                    value += beta * c[ci * cColumns + cj]
                }
                output[i * n + j] = value
            }
        }
    }
}
