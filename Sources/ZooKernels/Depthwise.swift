import ZooKernelsBase

/// A depthwise 2-D convolution (MobileNet, EfficientNet, MNASNet, ShuffleNet, ConvNeXt's 7×7): every
/// channel convolved with its own kernel (groups = input channels = output channels), computed
/// directly — no im2col, no per-group GEMM of one output row. Planes run through the kernel set's
/// `depthwisePlanes` (bands of output rows over phase-split padded input rows, each tap one vector
/// loop over the band; see `DepthwiseGeometry`), or — small planes — 8 channels at a time through
/// `depthwiseLanes` (see `DepthwiseLanes`, `Layout`): taps summed in f32 in (ky, kx) order from 0,
/// then the bias added and the activation applied, the same values either way (DepthwiseTests).
/// Planes are independent, so results do not depend on the thread count. The reference twin is the
/// Conv op's `evaluate` (ZooRuntimeTests' KernelTwinTests compares them at random shapes, for every
/// kernel set).
public final class DepthwiseConvKernel: @unchecked Sendable {
    public let shape: Conv2DShape
    /// The activation applied to every output, or nil.
    public let activation: Activation?
    public let kernels: KernelSet
    private let table: KernelTable
    /// [channels, kernelH, kernelW].
    private let weights: [Float]
    /// [channels], zeros when the convolution has none (adding +0 is what the reference does too).
    private let bias: [Float]
    /// The weights and bias by groups of 8 channels in lanes, [⌈channels/8⌉, kernelH·kernelW, 8]
    /// and [⌈channels/8⌉, 8], zeros past the last channel (for `Layout.lanes`).
    private let laneWeights: [Float], laneBias: [Float]
    /// At most this many planes (or groups of 8 channels) run at once, each with its own scratch in
    /// the workspace.
    static let slots = 32

    /// How the planes are computed: `planes` one channel plane at a time (`DepthwiseGeometry`: each
    /// tap one vector loop over the plane), `lanes` 8 channels at a time in the vector lanes
    /// (`DepthwiseLanes`: each output pixel one multiply-add per tap) — for small planes, where the
    /// plane loops are short and their padding and edges cost more than the taps. Both give the
    /// same values.
    public enum Layout: String, Sendable { case planes, lanes }

    /// The layout `run` uses for images of this size (unless told): lanes for planes of at most 8×8
    /// outputs, and for 7×7 kernels (and larger) on planes of at most 14×14 outputs; planes
    /// otherwise. Measured by `BenchmarkTests.testDepthwiseShapes` (Zen 4, 2 threads): 1152 channels
    /// 5×5 on 7×7 0.088 → 0.046 ms, 768 channels 7×7 on 7×7 0.093 → 0.041, 384 channels 7×7 on
    /// 14×14 0.106 → 0.080; planes ahead from 14×14 with 3×3 and 5×5 kernels (480 channels 3×3:
    /// 0.041 vs 0.057).
    public func preferredLayout(inHeight: Int, inWidth: Int) -> Layout {
        let out = shape.outputSize(inHeight: inHeight, inWidth: inWidth), pixels = out.height * out.width
        return pixels <= 64 || (shape.kernelH * shape.kernelW >= 49 && pixels <= 196) ? .lanes : .planes
    }

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
            ?? [Float](repeating: 0, count: shape.outChannels)
        let taps = shape.kernelH * shape.kernelW, groups = (shape.inChannels + 7) / 8
        var laneWeights = [Float](repeating: 0, count: groups * taps * 8), laneBias = [Float](repeating: 0, count: groups * 8)
        for c in 0..<shape.inChannels {
            for t in 0..<taps { laneWeights[(c / 8 * taps + t) * 8 + c % 8] = weights[c * taps + t] }
            laneBias[c] = self.bias[c]
        }
        (self.laneWeights, self.laneBias) = (laneWeights, laneBias)
    }

    /// `floats` of scratch per plane (or group of 8 channels) rounded up to whole cache lines.
    private static func slotFloats(_ floats: Int) -> Int { (floats + 15) / 16 * 16 }

    /// Scratch bytes `run` needs in `layout` (default `preferredLayout`), independent of the thread
    /// count. Only the layout's own: the lanes layout's scratch is a whole padded plane of 8
    /// channels (408 KB per slot on 112×112, where the planes layout's bands take 16 KB).
    public func workspaceBytes(batch: Int, inHeight: Int, inWidth: Int, layout: Layout? = nil) -> Int {
        let floats = switch layout ?? preferredLayout(inHeight: inHeight, inWidth: inWidth) {
        case .planes: DepthwiseGeometry(shape: shape, inHeight: inHeight, inWidth: inWidth).scratchFloats
        case .lanes: DepthwiseLanes(shape: shape, inHeight: inHeight, inWidth: inWidth).scratchFloats
        }
        return min(Self.slots, max(1, batch * shape.inChannels)) * Self.slotFloats(floats) * MemoryLayout<Float>.stride + 64
    }

    /// input [batch, C, inHeight, inWidth] → output [batch, C, outHeight, outWidth] (`shape.outputSize`),
    /// in `layout` (default `preferredLayout`). `workspace` holds `workspaceBytes(...)` bytes for the
    /// same layout (any alignment). Does not allocate.
    public func run(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch: Int, inHeight: Int, inWidth: Int,
                    workspace: UnsafeMutableRawPointer, pool: ThreadPool, layout: Layout? = nil) {
        let channels = shape.inChannels
        let out = shape.outputSize(inHeight: inHeight, inWidth: inWidth)
        guard out.height * out.width > 0, batch > 0 else { return }
        let scratch = workspace.alignedUp(toMultipleOf: 64).assumingMemoryBound(to: Float.self)
        let table = table
        // ReLU and Clip as the clamp, any other activation after it.
        let (low, high, post): (Float, Float, Activation?) = activation?.bounds.map { ($0.low, $0.high, nil) }
            ?? (-.infinity, .infinity, activation)
        // Planes or groups of 8 channels (`units`) split over at most 32 slots — they balance the
        // threads better than one per thread — each running its share on its own scratch.
        func convolve(units: Int, scratchFloats: Int, _ weights: [Float], _ bias: [Float],
                      _ kernel: (Range<Int>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void) {
            let slots = min(Self.slots, units), slotFloats = Self.slotFloats(scratchFloats)
            weights.withUnsafeBufferPointer { w in
                bias.withUnsafeBufferPointer { b in
                    pool.parallelFor(slots) { slot in
                        kernel(evenSplit(units, parts: slots, index: slot), w.baseAddress!, b.baseAddress!, scratch + slot * slotFloats)
                    }
                }
            }
        }
        switch layout ?? preferredLayout(inHeight: inHeight, inWidth: inWidth) {
        case .planes:
            let g = DepthwiseGeometry(shape: shape, inHeight: inHeight, inWidth: inWidth)
            convolve(units: batch * channels, scratchFloats: g.scratchFloats, weights, bias) { units, w, b, scratch in
                table.depthwisePlanes(g, input, w, b, low, high, post, units, channels, scratch, output)
            }
        case .lanes:
            let g = DepthwiseLanes(shape: shape, inHeight: inHeight, inWidth: inWidth)
            convolve(units: batch * ((channels + 7) / 8), scratchFloats: g.scratchFloats, laneWeights, laneBias) { units, w, b, scratch in
                table.depthwiseLanes(g, input, w, b, low, high, post, units, channels, scratch, output)
            }
        }
    }
}
