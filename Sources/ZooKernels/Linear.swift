/// `y[batch, out] = x[batch, in] · Wᵀ + b` (torch.nn.Linear) with an optional fused activation
/// (ReLU / ReLU6 in registers; the others on the tile's accumulators, or on the rows at batch 1).
///
/// Two weight layouts, one copy of the weights in memory either way:
/// - **rows** (classifier heads: a few rows per batch): the weights stay row-major `[out, in]`, used
///   where they are or (for a mapped checkpoint) moved into huge-page memory with the file's pages
///   released as they are copied. Batch 1: `KernelTable.dotRows`, threads splitting the output rows
///   — memory bound, each weight streamed once. Batch > 1: `Cᵀ[out × batch] = W · xᵀ` as a GEMM
///   with W as the row-major A operand and the input packed into 16-column B panels in the
///   workspace; threads split the tiles, and `Cᵀ` is transposed into the output at the end.
/// - **tokens** (a Linear over the tokens of every image: ViT, ConvNeXt — hundreds to thousands of
///   rows): the weights packed once as 16-column B panels of `Wᵀ`, and `C[batch × out] = x · Wᵀ`
///   computed straight into the output with x read in place as the row-major A operand — no input
///   packing, no transposed copy, the bias and activation in the tile's registers.
/// Each output's arithmetic is fixed by its row and column alone, so results do not depend on the
/// thread count; for batch > 1 both layouts compute the same chain of multiply-adds per output
/// (bit-identical). (Batch 1 in the rows layout sums in a different order, so a row computed alone
/// may differ from the same row in a batch by rounding.)
public final class LinearKernel: @unchecked Sendable {
    public let inFeatures: Int
    public let outFeatures: Int
    /// The activation applied to every output, or nil.
    public let activation: Activation?
    /// ReLU (and ReLU6's cap, `upper`) in registers; any other activation on the finished outputs.
    private let relu: Bool
    private let upper: Float
    private let post: Activation?
    /// The kernel set this layer runs with.
    public let kernels: KernelSet
    private let table: KernelTable
    /// Row-major `[out, in]` (rows layout) or B panels of `Wᵀ` (tokens layout).
    private let weights: UnsafePointer<Float>
    /// Keeps `weights` alive: the caller's owner, or the huge-page copy or packing.
    private let owner: AnyObject?
    /// The tokens layout (`weights` are B panels).
    public let tokens: Bool
    /// The last `outFeatures % 6` weight rows followed by zero rows up to 6 (see `PackedGemm.aTail`).
    private let tailRows: UnsafeMutablePointer<Float>?
    /// Bias padded to whole 6-row panels (rows) or 16-column panels (tokens), or nil.
    private let paddedBias: UnsafeMutablePointer<Float>?

    /// - Parameters:
    ///   - weights: `[outFeatures, inFeatures]`; unless `moveFromMapping`, used in place and must
    ///     stay valid and unchanged while the kernel lives (`owner` is retained for that).
    ///   - moveFromMapping: the weights lie in a read-only private file mapping: copy them into
    ///     huge-page memory (faster to stream) and release the mapping's pages as they are copied.
    ///   - bias: `[outFeatures]` or nil, read during init only.
    ///   - activation: applied to every output after the bias, or nil.
    ///   - kernels: a set from `KernelSet.supported`.
    ///   - tokens: the tokens layout: `weights` are read during init only (packed into the kernel's
    ///     own memory; `owner` and `moveFromMapping` are ignored).
    public init(inFeatures: Int, outFeatures: Int, weights: UnsafePointer<Float>, owner: AnyObject?,
                moveFromMapping: Bool = false, bias: UnsafePointer<Float>?, activation: Activation?, kernels: KernelSet = .active,
                tokens: Bool = false) {
        precondition(inFeatures >= 1 && outFeatures >= 1, "LinearKernel: feature counts must be ≥ 1")
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.activation = activation
        if let b = activation?.bounds, b.low == 0, b.high > 0 {
            (relu, upper, post) = (true, b.high, nil)
        } else {
            (relu, upper, post) = (false, .infinity, activation)
        }
        self.kernels = kernels
        self.tokens = tokens
        table = kernels.table
        if tokens {
            let panels = HugePageBuffer(byteCount: Gemm.panelCount(outFeatures, width: Gemm.nr) * Gemm.nr * inFeatures
                                        * MemoryLayout<Float>.stride)
            let packed = panels.base.bindMemory(to: Float.self, capacity: panels.byteCount / MemoryLayout<Float>.stride)
            Gemm.packBTransposed(weights, ldt: inFeatures, n: outFeatures, k: inFeatures, into: packed)
            self.weights = UnsafePointer(packed)
            self.owner = panels
        } else if moveFromMapping {
            let copy = HugePageBuffer(copying: weights, count: outFeatures * inFeatures, releasingSource: true)
            self.weights = copy.floats
            self.owner = copy
        } else {
            self.weights = weights
            self.owner = owner
        }
        if outFeatures % Gemm.mr != 0 && !tokens {
            let tail = UnsafeMutablePointer<Float>.allocate(capacity: Gemm.mr * inFeatures)
            _ = Gemm.rowTail(self.weights, m: outFeatures, k: inFeatures, into: tail)
            tailRows = tail
        } else {
            tailRows = nil
        }
        if let bias {
            let count = tokens ? Gemm.panelCount(outFeatures, width: Gemm.nr) * Gemm.nr
                : Gemm.panelCount(outFeatures, width: Gemm.mr) * Gemm.mr
            let padded = UnsafeMutablePointer<Float>.allocate(capacity: count)
            padded.initialize(repeating: 0, count: count)
            padded.update(from: bias, count: outFeatures)
            paddedBias = padded
        } else {
            paddedBias = nil
        }
    }

    deinit {
        tailRows?.deallocate()
        paddedBias?.deallocate()
    }

    /// Scratch bytes `run` needs: rows layout, batch > 1 — the input packed into 16-column panels and
    /// `Cᵀ`; tokens layout — the input's last `batch % 6` rows padded to 6 (plus alignment slack).
    /// Independent of `threads`.
    public func workspaceBytes(batch: Int, threads: Int) -> Int {
        if tokens { return Gemm.mr * inFeatures * MemoryLayout<Float>.stride + 64 }
        if batch <= 1 { return 64 }
        let columns = Gemm.panelCount(batch, width: Gemm.nr) * Gemm.nr
        return (columns * inFeatures + Gemm.panelCount(outFeatures, width: Gemm.mr) * Gemm.mr * columns)
            * MemoryLayout<Float>.stride + 128
    }

    /// `input [batch, inFeatures]` → `output [batch, outFeatures]`. `workspace` must hold
    /// `workspaceBytes(batch:threads:)` bytes (any alignment). Does not allocate.
    public func run(
        input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch: Int,
        workspace: UnsafeMutableRawPointer, pool: ThreadPool
    ) {
        if batch <= 0 { return }
        let bias = paddedBias.map { UnsafePointer($0) }
        let (table, weights, k, n, relu, upper, post) = (table, weights, inFeatures, outFeatures, relu, upper, post)
        if tokens {
            let tail = Gemm.rowTail(input, m: batch, k: k, into: workspace.alignedUp(toMultipleOf: 64).assumingMemoryBound(to: Float.self))
            PackedGemm(kernels: table, a: input, aRowStride: k, aTail: tail, b: weights,
                       c: output, ldc: n, m: batch, n: n, k: k, rowBias: nil, colBias: bias, relu: relu, upper: upper, post: post)
                .computeAll(pool: pool)
            return
        }
        if batch == 1 {
            let chunks = min(Gemm.panelCount(n, width: 4), 4 * pool.threadCount)
            pool.parallelFor(chunks) { item in
                // Whole groups of four rows per chunk, so each chunk streams four rows at a time.
                let quads = evenSplit(Gemm.panelCount(n, width: 4), parts: chunks, index: item)
                let rows = (quads.lowerBound * 4)..<min(quads.upperBound * 4, n)
                table.dotRows(k, input, weights, k, rows, output, bias, relu)
                if upper < .infinity { for r in rows where output[r] > upper { output[r] = upper } }
                if let post { table.activate(post, output + rows.lowerBound, output + rows.lowerBound, rows.count) }
            }
            return
        }
        let columns = Gemm.panelCount(batch, width: Gemm.nr) * Gemm.nr
        let packedInput = workspace.alignedUp(toMultipleOf: 64).assumingMemoryBound(to: Float.self)
        let transposed = (packedInput + columns * k)
        // The input's rows as B panels, 16 rows per panel, panels in parallel.
        let panels = columns / Gemm.nr, packTasks = min(panels, 4 * pool.threadCount)
        pool.parallelFor(packTasks) { item in
            let range = evenSplit(panels, parts: packTasks, index: item)
            guard !range.isEmpty else { return }
            let first = range.lowerBound * Gemm.nr
            Gemm.packBTransposed(input + first * k, ldt: k, n: min(batch - first, range.count * Gemm.nr), k: k,
                                 into: packedInput + range.lowerBound * Gemm.nr * k)
        }
        let gemm = PackedGemm(
            kernels: table, a: weights, aRowStride: k, aTail: tailRows.map { UnsafePointer($0) }, b: packedInput,
            c: transposed, ldc: columns, m: n, n: batch, k: k, rowBias: bias, colBias: nil, relu: relu, upper: upper, post: post,
            kBlock: columns == Gemm.nr ? k : Gemm.kc)
        gemm.computeAll(pool: pool)
        // Cᵀ back to rows, in 16 × 16 blocks so both sides stay in cache lines.
        let rowBlocks = Gemm.panelCount(batch, width: 16), tasks = min(rowBlocks, 4 * pool.threadCount)
        pool.parallelFor(tasks) { item in
            for block in evenSplit(rowBlocks, parts: tasks, index: item) {
                let rows = (block * 16)..<min(batch, block * 16 + 16)
                for o0 in stride(from: 0, to: n, by: 16) {
                    for b in rows {
                        for o in o0..<min(n, o0 + 16) { output[b * n + o] = transposed[o * columns + b] }
                    }
                }
            }
        }
    }
}

/// Batched matrix products `C[t] = A[ia[t]] · B[ib[t]]` (row-major `m × k` times `k × n`; attention's
/// Q·Kᵀ and scores·V) through the kernel set's tiles: each product is one task that packs its B
/// into 16-column panels, copies A's last `m % 6` rows into a zero-padded 6-row tail, and runs
/// `PackedGemm.computeBlock` over every tile (A read in place as row-major rows). A product is
/// computed whole by one task, so results do not depend on the thread count.
public enum MatrixProducts {
    /// At most this many products run at once, each with its own scratch.
    static let slots = 32

    private static func slotFloats(m: Int, k: Int, n: Int) -> Int {
        (Gemm.panelCount(n, width: Gemm.nr) * Gemm.nr * k + Gemm.mr * k + 15) / 16 * 16
    }

    /// Scratch bytes `run` needs for `count` products.
    public static func workspaceBytes(count: Int, m: Int, k: Int, n: Int) -> Int {
        min(slots, max(1, count)) * slotFloats(m: m, k: k, n: n) * MemoryLayout<Float>.stride + 64
    }

    /// `c` holds `ia.count` products of `m × n`, in order; `ia[t]` and `ib[t]` index the `m × k`
    /// and `k × n` matrices of `a` and `b`. `workspace` holds `workspaceBytes(...)` bytes.
    public static func run(a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>, ia: [Int], ib: [Int],
                           m: Int, k: Int, n: Int, workspace: UnsafeMutableRawPointer, pool: ThreadPool, kernels: KernelSet) {
        let count = ia.count
        guard count > 0, m > 0, n > 0 else { return }
        if k == 0 { c.initialize(repeating: 0, count: count * m * n); return }
        let slots = min(Self.slots, count), floats = slotFloats(m: m, k: k, n: n), table = kernels.table
        let scratch = workspace.alignedUp(toMultipleOf: 64).assumingMemoryBound(to: Float.self)
        pool.parallelFor(slots) { slot in
            let packed = scratch + slot * floats, tail = packed + Gemm.panelCount(n, width: Gemm.nr) * Gemm.nr * k
            for t in evenSplit(count, parts: slots, index: slot) {
                let matrix = a + ia[t] * m * k
                Gemm.packB(b + ib[t] * k * n, ldb: n, k: k, n: n, into: packed)
                let gemm = PackedGemm(kernels: table, a: matrix, aRowStride: k, aTail: Gemm.rowTail(matrix, m: m, k: k, into: tail),
                                      b: packed, c: c + t * m * n, ldc: n, m: m, n: n, k: k, rowBias: nil, colBias: nil, relu: false)
                gemm.computeBlock(aPanels: 0..<gemm.mPanels, bPanels: 0..<gemm.nPanels)
            }
        }
    }
}
