/// `y[batch, out] = x[batch, in] · Wᵀ + b` (torch.nn.Linear) with optional fused ReLU.
///
/// Weights are packed once into 16-output B panels (`Wᵀ` as the GEMM's B operand), so both paths
/// stream each weight exactly once per call:
/// - batch 1: a GEMV (`Gemm.gemvRow`), threads splitting the output panels — memory bound;
/// - batch > 1: the input is packed into 6-row A panels in the workspace and `PackedGemm` computes
///   6×16 tiles, threads splitting the tiles.
/// Both paths accumulate every output in the same order (see `Gemm`), so results do not depend on
/// the thread count — nor on the batch size a row is computed in.
public final class LinearKernel: @unchecked Sendable {
    public let inFeatures: Int
    public let outFeatures: Int
    public let relu: Bool
    private let packedWeights: UnsafeMutablePointer<Float>
    /// Bias padded to whole 16-column panels, or nil.
    private let packedBias: UnsafeMutablePointer<Float>?
    private let nPanels: Int

    /// - Parameters:
    ///   - weights: `[outFeatures, inFeatures]`, read during init only.
    ///   - bias: `[outFeatures]` or nil, read during init only.
    public init(inFeatures: Int, outFeatures: Int, weights: UnsafePointer<Float>, bias: UnsafePointer<Float>?, relu: Bool) {
        precondition(inFeatures >= 1 && outFeatures >= 1, "LinearKernel: feature counts must be ≥ 1")
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.relu = relu
        nPanels = Gemm.panelCount(outFeatures, width: Gemm.nr)
        packedWeights = .allocate(capacity: nPanels * Gemm.nr * inFeatures)
        Gemm.packBTransposed(weights, ldt: inFeatures, n: outFeatures, k: inFeatures, into: packedWeights)
        if let bias {
            let padded = UnsafeMutablePointer<Float>.allocate(capacity: nPanels * Gemm.nr)
            padded.initialize(repeating: 0, count: nPanels * Gemm.nr)
            padded.update(from: bias, count: outFeatures)
            packedBias = padded
        } else {
            packedBias = nil
        }
    }

    deinit {
        packedWeights.deallocate()
        packedBias?.deallocate()
    }

    /// Scratch bytes `run` needs: the input packed into 6-row panels when `batch > 1` (plus 64
    /// bytes of alignment slack). Independent of `threads`.
    public func workspaceBytes(batch: Int, threads: Int) -> Int {
        if batch <= 1 { return 64 }
        return Gemm.panelCount(batch, width: Gemm.mr) * Gemm.mr * inFeatures * MemoryLayout<Float>.stride + 64
    }

    /// `input [batch, inFeatures]` → `output [batch, outFeatures]`. `workspace` must hold
    /// `workspaceBytes(batch:threads:)` bytes (any alignment). Does not allocate.
    public func run(
        input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch: Int,
        workspace: UnsafeMutableRawPointer, pool: ThreadPool
    ) {
        if batch <= 0 { return }
        let bias = packedBias.map { UnsafePointer($0) }
        let weights = UnsafePointer(packedWeights)
        let chunks = min(nPanels, 4 * pool.threadCount)
        if batch == 1 {
            let (k, n, relu, nPanels) = (inFeatures, outFeatures, relu, nPanels)
            pool.parallelFor(chunks) { item in
                Gemm.gemvRow(k: k, x: input, b: weights, panels: evenSplit(nPanels, parts: chunks, index: item),
                             n: n, y: output, colBias: bias, relu: relu)
            }
            return
        }
        let packedInput = workspace.alignedUp(toMultipleOf: 64).assumingMemoryBound(to: Float.self)
        Gemm.packA(input, lda: inFeatures, m: batch, k: inFeatures, into: packedInput)
        let gemm = PackedGemm(a: packedInput, b: weights, c: output, ldc: outFeatures, m: batch, n: outFeatures,
                              k: inFeatures, rowBias: nil, colBias: bias, relu: relu)
        let tiles = gemm.tileCount
        let tileChunks = min(tiles, 4 * pool.threadCount)
        pool.parallelFor(tileChunks) { item in
            gemm.computeTiles(evenSplit(tiles, parts: tileChunks, index: item))
        }
    }
}
