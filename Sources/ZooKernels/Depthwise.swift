import ZooKernelsBase

/// A depthwise 2-D convolution (MobileNet, EfficientNet, MNASNet, ShuffleNet, ConvNeXt's 7×7): every
/// channel convolved with its own kernel (groups = input channels = output channels), computed
/// directly — no im2col, no per-group GEMM of one output row. Each (image, channel) plane is one task,
/// its taps summed in f32 in (ky, kx) order from 0, then the bias added and the ReLU applied; results do
/// not depend on the thread count. The reference twin is the Conv op's `evaluate` (ZooRuntimeTests'
/// KernelTwinTests compares them at random shapes).
public struct DepthwiseConvKernel: Sendable {
    public let shape: Conv2DShape
    public let relu: Bool
    /// [channels, kernelH, kernelW].
    let weights: [Float]
    let bias: [Float]?

    /// nil unless `shape` is depthwise with one output per channel.
    public init?(shape: Conv2DShape, weights: UnsafePointer<Float>, bias: UnsafePointer<Float>?, relu: Bool) {
        guard shape.groups == shape.inChannels, shape.outChannels == shape.inChannels else { return nil }
        self.shape = shape
        self.relu = relu
        let count = shape.inChannels * shape.kernelH * shape.kernelW
        self.weights = Array(UnsafeBufferPointer(start: weights, count: count))
        self.bias = bias.map { Array(UnsafeBufferPointer(start: $0, count: shape.outChannels)) }
    }

    /// input [batch, C, inHeight, inWidth] → output [batch, C, outHeight, outWidth] (`shape.outputSize`).
    public func run(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch: Int, inHeight: Int, inWidth: Int,
                    pool: ThreadPool) {
        let s = shape, channels = s.inChannels
        let (outHeight, outWidth) = s.outputSize(inHeight: inHeight, inWidth: inWidth)
        guard outHeight > 0, outWidth > 0 else { return }
        weights.withUnsafeBufferPointer { w in
            let bias = self.bias, relu = self.relu
            pool.parallelFor(batch * channels) { plane in
                let c = plane % channels
                let source = input + plane * inHeight * inWidth, target = output + plane * outHeight * outWidth
                let taps = w.baseAddress! + c * s.kernelH * s.kernelW
                for oy in 0..<outHeight {
                    let row = target + oy * outWidth
                    row.initialize(repeating: 0, count: outWidth)
                    for ky in 0..<s.kernelH {
                        let iy = oy * s.strideH - s.padTop + ky * s.dilationH
                        guard iy >= 0, iy < inHeight else { continue }
                        let line = source + iy * inWidth
                        for kx in 0..<s.kernelW {
                            let tap = taps[ky * s.kernelW + kx], shift = kx * s.dilationW - s.padLeft
                            // The outputs whose input column ox·stride + shift lies inside the row.
                            let first = shift >= 0 ? 0 : (-shift + s.strideW - 1) / s.strideW
                            let last = min(outWidth, (inWidth - 1 - shift) >= 0 ? (inWidth - 1 - shift) / s.strideW + 1 : 0)
                            guard first < last else { continue }
                            if s.strideW == 1 {
                                let from = line + shift
                                for ox in first..<last { row[ox] += tap * from[ox] }
                            } else {
                                for ox in first..<last { row[ox] += tap * line[ox * s.strideW + shift] }
                            }
                        }
                    }
                    if let bias {
                        let b = bias[c]
                        for ox in 0..<outWidth { row[ox] += b }
                    }
                    if relu {
                        for ox in 0..<outWidth { row[ox] = row[ox] < 0 ? 0 : row[ox] }
                    }
                }
            }
        }
    }
}
