import ZooKernelsBase

/// A depthwise 2-D convolution (MobileNet, EfficientNet, MNASNet, ShuffleNet, ConvNeXt's 7×7): every
/// channel convolved with its own kernel (groups = input channels = output channels), computed
/// directly — no im2col, no per-group GEMM of one output row. Planes run through the kernel set's
/// `depthwisePlanes` (phase-split padded planes, each tap one vector loop over the plane; see
/// `DepthwiseGeometry`): taps summed in f32 in (ky, kx) order from 0, then the
/// bias added and the activation applied. Planes are independent, so results do not depend on the
/// thread count. The reference twin is the Conv op's `evaluate` (ZooRuntimeTests' KernelTwinTests
/// compares them at random shapes, for every kernel set).
public final class DepthwiseConvKernel: @unchecked Sendable {
    public let shape: Conv2DShape
    /// The activation applied to every output, or nil.
    public let activation: Activation?
    public let kernels: KernelSet
    private let table: KernelTable
    /// [channels, kernelH, kernelW].
    private let weights: [Float]
    private let bias: [Float]?
    /// At most this many planes run at once, each with its own scratch in the workspace.
    static let slots = 32

    /// nil unless `shape` is depthwise with one output per channel. `weights` [C, 1, kH, kW] and
    /// `bias` [C] are read during init only.
    public init?(shape: Conv2DShape, weights: UnsafePointer<Float>, bias: UnsafePointer<Float>?, activation: Activation?,
                 kernels: KernelSet = .active) {
        guard shape.groups == shape.inChannels, shape.outChannels == shape.inChannels else { return nil }
        self.shape = shape
        self.activation = activation
        self.kernels = kernels
        table = kernels.table
        let count = shape.inChannels * shape.kernelH * shape.kernelW
        self.weights = Array(UnsafeBufferPointer(start: weights, count: count))
        self.bias = bias.map { Array(UnsafeBufferPointer(start: $0, count: shape.outChannels)) }
    }

    /// Scratch floats per plane, whole cache lines.
    private func slotFloats(_ g: DepthwiseGeometry) -> Int { (g.scratchFloats + 15) / 16 * 16 }

    /// Scratch bytes `run` needs (independent of the thread count).
    public func workspaceBytes(batch: Int, inHeight: Int, inWidth: Int) -> Int {
        let g = DepthwiseGeometry(shape: shape, inHeight: inHeight, inWidth: inWidth)
        return min(Self.slots, max(1, batch * shape.inChannels)) * slotFloats(g) * MemoryLayout<Float>.stride + 64
    }

    /// input [batch, C, inHeight, inWidth] → output [batch, C, outHeight, outWidth] (`shape.outputSize`).
    /// `workspace` holds `workspaceBytes(...)` bytes (any alignment). Does not allocate.
    public func run(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch: Int, inHeight: Int, inWidth: Int,
                    workspace: UnsafeMutableRawPointer, pool: ThreadPool) {
        let channels = shape.inChannels
        let g = DepthwiseGeometry(shape: shape, inHeight: inHeight, inWidth: inWidth)
        guard g.outHeight * g.outWidth > 0, batch > 0 else { return }
        let planes = batch * channels, slots = min(Self.slots, planes), slotFloats = slotFloats(g)
        let scratch = workspace.alignedUp(toMultipleOf: 64).assumingMemoryBound(to: Float.self)
        let table = table
        // ReLU and Clip as the plane's clamp, any other activation after it.
        let (low, high, post): (Float, Float, Activation?) = activation?.bounds.map { ($0.low, $0.high, nil) }
            ?? (-.infinity, .infinity, activation)
        func convolve(_ w: UnsafePointer<Float>, _ b: UnsafePointer<Float>?) {
            pool.parallelFor(slots) { slot in
                table.depthwisePlanes(g, input, w, b, low, high, post, evenSplit(planes, parts: slots, index: slot), channels,
                                      scratch + slot * slotFloats, output)
            }
        }
        weights.withUnsafeBufferPointer { w in
            guard let bias else { return convolve(w.baseAddress!, nil) }
            bias.withUnsafeBufferPointer { convolve(w.baseAddress!, $0.baseAddress!) }
        }
    }
}
