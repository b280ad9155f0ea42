#if canImport(Glibc)
import Glibc
#endif

/// Geometry of a 2-D convolution (PyTorch `nn.Conv2d` / ONNX `Conv` semantics, NCHW).
public struct Conv2DShape: Hashable, Sendable {
    public var inChannels, outChannels, kernelH, kernelW, strideH, strideW, dilationH, dilationW: Int
    public var padTop, padLeft, padBottom, padRight, groups: Int

    /// Channels must be divisible by `groups`; sizes, strides and dilations ≥ 1; pads ≥ 0.
    public init(
        inChannels: Int, outChannels: Int, kernelH: Int, kernelW: Int,
        strideH: Int = 1, strideW: Int = 1, dilationH: Int = 1, dilationW: Int = 1,
        padTop: Int = 0, padLeft: Int = 0, padBottom: Int = 0, padRight: Int = 0, groups: Int = 1
    ) {
        self.inChannels = inChannels; self.outChannels = outChannels
        self.kernelH = kernelH; self.kernelW = kernelW
        self.strideH = strideH; self.strideW = strideW
        self.dilationH = dilationH; self.dilationW = dilationW
        self.padTop = padTop; self.padLeft = padLeft; self.padBottom = padBottom; self.padRight = padRight
        self.groups = groups
    }

    /// `floor((in + pads - dilation·(k-1) - 1) / stride) + 1` per axis; 0 when the padded input
    /// is smaller than the dilated kernel.
    public func outputSize(inHeight: Int, inWidth: Int) -> (height: Int, width: Int) {
        func axis(_ size: Int, _ padA: Int, _ padB: Int, _ k: Int, _ stride: Int, _ dilation: Int) -> Int {
            let span = size + padA + padB - dilation * (k - 1) - 1
            return span < 0 ? 0 : span / stride + 1
        }
        return (axis(inHeight, padTop, padBottom, kernelH, strideH, dilationH),
                axis(inWidth, padLeft, padRight, kernelW, strideW, dilationW))
    }

    /// Input channels per group.
    public var groupInChannels: Int { inChannels / groups }
    /// Output channels per group.
    public var groupOutChannels: Int { outChannels / groups }
    /// GEMM depth of one group: `inChannels/groups · kernelH · kernelW`.
    public var reductionSize: Int { groupInChannels * kernelH * kernelW }

    /// Traps with a message when the geometry is impossible (callers validate user input first).
    public func validate() {
        precondition(inChannels >= 1 && outChannels >= 1 && groups >= 1, "Conv2DShape: channels and groups must be ≥ 1")
        precondition(inChannels % groups == 0 && outChannels % groups == 0, "Conv2DShape: channels not divisible by groups")
        precondition(kernelH >= 1 && kernelW >= 1 && strideH >= 1 && strideW >= 1 && dilationH >= 1 && dilationW >= 1,
                     "Conv2DShape: kernel, stride and dilation must be ≥ 1")
        precondition(padTop >= 0 && padLeft >= 0 && padBottom >= 0 && padRight >= 0, "Conv2DShape: pads must be ≥ 0")
    }
}

/// Window geometry of 2-D max / average pooling over NCHW (PyTorch semantics: windows start at
/// `o·stride − padTop`; see the kernels for how padding counts).
public struct Pool2DShape: Hashable, Sendable {
    public var kernelH, kernelW, strideH, strideW: Int
    public var padTop, padLeft, padBottom, padRight: Int
    public init(kernelH: Int, kernelW: Int, strideH: Int, strideW: Int, padTop: Int = 0, padLeft: Int = 0,
                padBottom: Int = 0, padRight: Int = 0) {
        (self.kernelH, self.kernelW, self.strideH, self.strideW) = (kernelH, kernelW, strideH, strideW)
        (self.padTop, self.padLeft, self.padBottom, self.padRight) = (padTop, padLeft, padBottom, padRight)
    }
}

/// Splits `total` items into `parts` contiguous, near-equal ranges; returns range `index`.
@inline(__always)
public func evenSplit(_ total: Int, parts: Int, index: Int) -> Range<Int> {
    (total * index / parts)..<(total * (index + 1) / parts)
}

/// Softmax of one column of `length` values `stride` floats apart: exp(x − max)
/// over Σ exp(x − max), the sum taken in order. A NaN (or +∞) makes the whole column NaN, as in
/// PyTorch. Shared by the plain twin and the fast kernels' scalar columns so they agree exactly.
public func softmaxColumn(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, length: Int, stride: Int) {
    var maximum = -Float.infinity
    for l in 0..<length { maximum = max(maximum, x[l * stride]) }
    var sum: Float = 0
    for l in 0..<length {
        let e = expf(x[l * stride] - maximum)
        y[l * stride] = e
        sum += e
    }
    for l in 0..<length { y[l * stride] /= sum }
}
