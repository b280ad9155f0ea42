/// The operations a zoo graph can hold. Closed on purpose: every pass (shape inference, execution,
/// export) is an exhaustive switch, so adding an op is a compile error everywhere it must be handled.
///
/// Semantics follow ONNX where it defines the op; PyTorch-only ops (adaptive pooling) and the places
/// where the two disagree (LRN for even sizes) say which definition they use.
public enum Op: Sendable, Equatable {
    /// Inputs X [N, C, H, W], W [M, C/group, kH, kW], optional B [M].
    case conv(Conv)
    case relu
    /// Inputs X [N, C, H, W].
    case maxPool(Pool)
    case averagePool(Pool)
    /// torch.nn.AdaptiveAvgPool2d: output window i spans [floor(i·in/out), ceil((i+1)·in/out)).
    case adaptiveAveragePool(outputHeight: Int, outputWidth: Int)
    case globalAveragePool
    case lrn(LRN)
    /// Flattens dims [0, axis) and [axis, rank) into a 2-D tensor (ONNX Flatten).
    case flatten(axis: Int)
    /// ONNX Reshape with a constant target: 0 copies the input dim (unless `allowZero`), -1 is inferred.
    case reshape(shape: [Int], allowZero: Bool)
    /// Y = alpha·A'·B' + beta·C (ONNX Gemm); torch.nn.Linear is transB with B = weight [out, in].
    case gemm(Gemm)
    /// Identity at inference; the ratio is kept for export.
    case dropout(ratio: Float)
    case softmax(axis: Int)
    /// Elementwise sum with NumPy broadcasting.
    case add
    /// Inference batch normalization: inputs X, scale, B, mean, var (ONNX order).
    case batchNormalization(epsilon: Float)
    case concat(axis: Int)

    /// Convolution attributes. Pads are [top, left, bottom, right].
    public struct Conv: Sendable, Equatable {
        public var kernel: [Int]
        public var strides: [Int]
        public var dilations: [Int]
        public var pads: [Int]
        public var groups: Int
        public init(kernel: [Int], strides: [Int] = [1, 1], dilations: [Int] = [1, 1], pads: [Int] = [0, 0, 0, 0], groups: Int = 1) {
            self.kernel = kernel
            self.strides = strides
            self.dilations = dilations
            self.pads = pads
            self.groups = groups
        }
    }

    /// Max / average pooling attributes. Pads are [top, left, bottom, right]. With `ceilMode`, a last
    /// window that would start in the bottom/right padding is dropped (PyTorch and ONNX agree).
    public struct Pool: Sendable, Equatable {
        public var kernel: [Int]
        public var strides: [Int]
        public var pads: [Int]
        public var ceilMode: Bool
        /// Average pooling only: whether padding counts in the divisor.
        public var countIncludePad: Bool
        public init(kernel: [Int], strides: [Int], pads: [Int] = [0, 0, 0, 0], ceilMode: Bool = false, countIncludePad: Bool = false) {
            self.kernel = kernel
            self.strides = strides
            self.pads = pads
            self.ceilMode = ceilMode
            self.countIncludePad = countIncludePad
        }
    }

    /// Local response normalization across channels: y = x / (bias + alpha/size · Σ x²)^beta.
    public struct LRN: Sendable, Equatable {
        /// Which channel window the sum covers. They agree for odd sizes and differ for even ones.
        public enum Window: String, Sendable {
            /// torch.nn.LocalResponseNorm: channels [c − size/2, c + (size−1)/2].
            case pytorch
            /// ONNX LRN: channels [c − ⌊(size−1)/2⌋, c + ⌈(size−1)/2⌉].
            case onnx
        }
        public var size: Int
        public var alpha: Float
        public var beta: Float
        public var bias: Float
        public var window: Window
        public init(size: Int, alpha: Float = 1e-4, beta: Float = 0.75, bias: Float = 1, window: Window) {
            self.size = size
            self.alpha = alpha
            self.beta = beta
            self.bias = bias
            self.window = window
        }

        /// The channel offsets [low, high] (inclusive) the window covers around each channel.
        public var offsets: (low: Int, high: Int) {
            switch window {
            case .pytorch: (-(size / 2), (size - 1) / 2)
            case .onnx: (-((size - 1) / 2), (size - 1) - (size - 1) / 2)
            }
        }
    }

    public struct Gemm: Sendable, Equatable {
        public var alpha: Float
        public var beta: Float
        public var transA: Bool
        public var transB: Bool
        public init(alpha: Float = 1, beta: Float = 1, transA: Bool = false, transB: Bool = false) {
            self.alpha = alpha
            self.beta = beta
            self.transA = transA
            self.transB = transB
        }

        /// torch.nn.Linear: x · Wᵀ + b.
        public static let linear = Gemm(transB: true)
    }

    /// The ONNX name of the op (AdaptiveAveragePool has none: it is PyTorch's).
    public var name: String {
        switch self {
        case .conv: "Conv"
        case .relu: "Relu"
        case .maxPool: "MaxPool"
        case .averagePool: "AveragePool"
        case .adaptiveAveragePool: "AdaptiveAvgPool2d"
        case .globalAveragePool: "GlobalAveragePool"
        case .lrn: "LRN"
        case .flatten: "Flatten"
        case .reshape: "Reshape"
        case .gemm: "Gemm"
        case .dropout: "Dropout"
        case .softmax: "Softmax"
        case .add: "Add"
        case .batchNormalization: "BatchNormalization"
        case .concat: "Concat"
        }
    }

    /// How many inputs the op takes (optional trailing inputs counted in the upper bound).
    var inputArity: ClosedRange<Int> {
        switch self {
        case .conv: 2...3
        case .gemm: 2...3
        case .add: 2...2
        case .batchNormalization: 5...5
        case .concat: 1...Int.max
        case .relu, .maxPool, .averagePool, .adaptiveAveragePool, .globalAveragePool, .lrn, .flatten, .reshape,
             .dropout, .softmax: 1...1
        }
    }

    /// The attributes in a short readable form for graph dumps.
    public var attributeSummary: String {
        func list(_ v: [Int]) -> String { v.map(String.init).joined(separator: "×") }
        switch self {
        case let .conv(c):
            var s = "k=\(list(c.kernel)) s=\(list(c.strides)) p=\(c.pads.map(String.init).joined(separator: ","))"
            if c.dilations != [1, 1] { s += " d=\(list(c.dilations))" }
            if c.groups != 1 { s += " g=\(c.groups)" }
            return s
        case let .maxPool(p), let .averagePool(p):
            var s = "k=\(list(p.kernel)) s=\(list(p.strides))"
            if p.pads != [0, 0, 0, 0] { s += " p=\(p.pads.map(String.init).joined(separator: ","))" }
            if p.ceilMode { s += " ceil" }
            if case .averagePool = self, p.countIncludePad { s += " count_include_pad" }
            return s
        case let .adaptiveAveragePool(h, w): return "out=\(h)×\(w)"
        case let .lrn(l): return "size=\(l.size) alpha=\(l.alpha) beta=\(l.beta) bias=\(l.bias) (\(l.window.rawValue) window)"
        case let .flatten(axis): return "axis=\(axis)"
        case let .reshape(shape, allowZero): return "shape=\(shape)" + (allowZero ? " allowzero" : "")
        case let .gemm(g):
            var parts: [String] = []
            if g.transA { parts.append("transA") }
            if g.transB { parts.append("transB") }
            if g.alpha != 1 { parts.append("alpha=\(g.alpha)") }
            if g.beta != 1 { parts.append("beta=\(g.beta)") }
            return parts.joined(separator: " ")
        case let .dropout(ratio): return "ratio=\(ratio)"
        case let .softmax(axis): return "axis=\(axis)"
        case let .batchNormalization(epsilon): return "epsilon=\(epsilon)"
        case let .concat(axis): return "axis=\(axis)"
        case .relu, .globalAveragePool, .add: return ""
        }
    }
}
