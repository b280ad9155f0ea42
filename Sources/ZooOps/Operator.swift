import ZooCore
import ZooKernels

/// One operation of the IR: a value type holding its attributes that knows everything about itself.
///
/// An op is one unit, in one file of `Ops/` (grouped by family) and listed once in `Op.registry`:
/// - its name and arity (`name`, `inputArity`, `outputCount`) and attributes (`summary`);
/// - its dtype and shape rule (`infer`), run when a graph is built and again for every input shape;
/// - its reference semantics (`evaluate`): the plain twin every fast kernel is tested against, which
///   also folds constants and runs whatever has no fast kernel (any dtype, any rank);
/// - its lowering to a fast f32 kernel (`lower`), when it has one;
/// - its ONNX import (`onnxImporters`, per op type and opset) and export (`exportONNX`).
///
/// Semantics follow ONNX where it defines the op; PyTorch-only ops (adaptive pooling) and the places
/// where the two disagree (LRN for even sizes) say which definition they use.
public protocol Operator: Sendable {
    /// The ONNX op type ("Conv"), or PyTorch's name for an op ONNX lacks ("AdaptiveAvgPool2d").
    var name: String { get }
    /// How many inputs the op takes (optional trailing inputs counted in the upper bound).
    var inputArity: ClosedRange<Int> { get }
    /// How many outputs each node of the op has.
    var outputCount: Int { get }
    /// The attributes in a short readable form for graph dumps ("k=3×3 s=1×1"); "" when none.
    var summary: String { get }

    /// The outputs' dtypes and shapes (names are the node's; `value` set when it is known without
    /// running the graph, as for `Shape` of a fixed shape) from the inputs', whose `value` is set when
    /// they are constants or known. Throws what makes the inputs unacceptable.
    func infer(_ inputs: [ValueInfo]) throws(OpFailure) -> [ValueInfo]

    /// The reference semantics: the outputs for dense or strided inputs of the dtypes `infer` accepts.
    /// Written for obviousness; floating point accumulates in Double unless the op says otherwise.
    func evaluate(_ inputs: [Tensor]) throws(OpFailure) -> [Tensor]

    /// A fast f32 kernel for the node, or nil when the op runs through `evaluate`. Called only when
    /// every output is f32 and every input f32 or a floating-point initializer (widened by the plan),
    /// except `planTimeInputs`, which may be initializers of any dtype.
    func lower(_ context: LoweringContext) throws(OpFailure) -> Lowering?

    /// The inputs (by position) a lowering reads only as constants when the plan is made, never at
    /// run time — a Reshape's target shape, a Gather's indices —, so they may be integer
    /// initializers without keeping the node from a kernel.
    var planTimeInputs: Set<Int> { get }

    /// The inputs (by position) that only fix the output's shape, which the plan knows before
    /// running: the lowering and its kernel read neither them nor their values, so they may be any
    /// value — a Reshape's shape computed from Shape and Concat (ViT's token reshapes), not only an
    /// initializer — without keeping the node from a kernel (a view).
    var shapeOnlyInputs: Set<Int> { get }

    /// Writes `node` as ONNX node(s) at `onnx.opset`, refusing what that opset cannot express.
    func exportONNX(_ node: Node, to onnx: inout ONNXExporter) throws(OpFailure)

    /// The ONNX op types this op imports, each with the opset it appeared in.
    static var onnxImporters: [ONNXImporter] { get }

    func isEqual(to other: any Operator) -> Bool
}

extension Operator {
    public var inputArity: ClosedRange<Int> { 1...1 }
    public var outputCount: Int { 1 }
    public var summary: String { "" }
    public func lower(_ context: LoweringContext) throws(OpFailure) -> Lowering? { nil }
    public var planTimeInputs: Set<Int> { [] }
    public var shapeOnlyInputs: Set<Int> { [] }
}

extension Operator where Self: Equatable {
    public func isEqual(to other: any Operator) -> Bool { (other as? Self) == self }
}

/// Why an op refuses its inputs or attributes; the graph adds the node and op it concerns.
public struct OpFailure: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The namespace of the ops (`Op.Conv`, `Op.Relu`, …) and their registry.
public enum Op {
    /// Every op type, in one list: graph passes, the ONNX importer and the tests iterate it.
    public static let registry: [any Operator.Type] = [
        // Ops/Convolution.swift
        Conv.self, ConvTranspose.self,
        // Ops/Pooling.swift
        MaxPool.self, AveragePool.self, AdaptiveAveragePool.self, GlobalAveragePool.self, GlobalMaxPool.self,
        // Ops/Normalization.swift
        BatchNormalization.self, LRN.self, Softmax.self, LayerNormalization.self, InstanceNormalization.self,
        // Ops/Linear.swift
        Gemm.self, MatMul.self, Einsum.self,
        // Ops/Elementwise.swift
        Unary.self, Binary.self,
        // Ops/Reduction.swift
        Reduce.self, ArgExtreme.self, TopK.self,
        // Ops/Layout.swift
        Flatten.self, Reshape.self, Concat.self, Dropout.self, Transpose.self, Split.self, Pad.self,
        // Ops/Shape.swift
        Shape.self, Size.self, Gather.self, Unsqueeze.self, Squeeze.self, Slice.self, Expand.self, Tile.self, Range.self,
        ConstantOfShape.self, Where.self, ScatterND.self,
        // Ops/Constants.swift
        Cast.self,
    ]

    /// ONNX op type → its importer, from every op in `registry` and the ops folded away while
    /// importing (Ops/Constants.swift: Identity, Constant, ConstantOfShape).
    public static let onnxImporters: [String: ONNXImporter] = {
        var table: [String: ONNXImporter] = [:]
        for importers in registry.map({ $0.onnxImporters }) + [ONNXFolding.importers] {
            for importer in importers {
                precondition(table[importer.opType] == nil, "ONNX op \(importer.opType) has two importers")
                table[importer.opType] = importer
            }
        }
        return table
    }()
}

// MARK: - Lowering to kernels

/// What an op's `lower` sees: the node, its inputs' types as the graph was built, the graph's
/// constants, and the nodes right after it that its kernel may absorb (`FusionOffer`).
public struct LoweringContext {
    public let node: Node
    public let inputs: [ValueInfo]
    public let kernels: KernelSet
    /// What follows the node and may be fused into its kernel.
    public let offer: FusionOffer
    private let constants: (String) -> Tensor?

    public init(node: Node, inputs: [ValueInfo], kernels: KernelSet, offer: FusionOffer = FusionOffer(),
                constants: @escaping (String) -> Tensor?) {
        self.node = node
        self.inputs = inputs
        self.kernels = kernels
        self.offer = offer
        self.constants = constants
    }

    /// The initializer named `name`, if it is one.
    public func constant(_ name: String) -> Tensor? { constants(name) }

    /// The node's input `index` as a dense f32 constant, or a failure naming its `role`.
    public func constantF32(_ index: Int, _ role: String) throws(OpFailure) -> Tensor {
        let name = node.inputs[index]
        guard let tensor = constants(name) else { throw OpFailure("\(role) '\(name)' must be a constant initializer") }
        guard !tensor.shape.contains(0) else { throw OpFailure("\(role) '\(name)' \(tensor.shape) is empty") }
        return tensor.float32()
    }
}

/// The nodes right after a node that its kernel may absorb, in graph order: an inference
/// BatchNormalization of its output with constant parameters (a convolution folds it into its
/// weights and bias), an Add of another value of the same shape (`residual`, a run-time input of
/// the kernel), then an activation of the result (a kernel applies it in its epilogue). Each is
/// offered only when nothing else reads the value it consumes; a kernel takes a prefix of the
/// chain — a part only together with every offered part before it.
public struct FusionOffer {
    public var batchNorm: FoldedBatchNorm?
    /// The value added after the batch norm (ResNet's shortcut), when an Add follows.
    public var residual: String?
    public var activation: Activation?
    public init(batchNorm: FoldedBatchNorm? = nil, residual: String? = nil, activation: Activation? = nil) {
        self.batchNorm = batchNorm
        self.residual = residual
        self.activation = activation
    }
    /// The activation for a kernel that takes neither a BatchNormalization nor a residual.
    public var activationAlone: Activation? { batchNorm == nil && residual == nil ? activation : nil }
}

/// An inference BatchNormalization as the per-channel affine map `y = scale[c]·x + shift[c]`:
/// `scale = γ / √(σ² + ε)`, `shift = β − μ·scale`, in Double.
public struct FoldedBatchNorm: Sendable {
    public let scale: [Double]
    public let shift: [Double]
    public init(gamma: [Double], beta: [Double], mean: [Double], variance: [Double], epsilon: Double) {
        scale = zip(gamma, variance).map { $0 / ($1 + epsilon).squareRoot() }
        shift = zip(beta, zip(mean, scale)).map { $0 - $1.0 * $1.1 }
    }

    /// Weights `[channels, rest]` and bias (zeros when nil) folded: `w·scale`, `b·scale + shift`,
    /// rounded once to f32.
    public func fold(weights: UnsafePointer<Float>, bias: [Float]?, channels: Int, rest: Int) -> (weights: [Float], bias: [Float]) {
        var w = [Float](repeating: 0, count: channels * rest), b = [Float](repeating: 0, count: channels)
        for c in 0..<channels {
            for i in 0..<rest { w[c * rest + i] = Float(Double(weights[c * rest + i]) * scale[c]) }
            b[c] = Float(Double(bias?[c] ?? 0) * scale[c] + shift[c])
        }
        return (w, b)
    }
}

/// A node lowered to a kernel: the kernel, the node inputs it reads at run time (weights packed into
/// the kernel are not among them), and which of the offered nodes it absorbed.
public struct Lowering {
    public var kernel: any StepKernel
    public var inputs: [String]
    public var fusedBatchNorm: Bool
    public var fusedResidual: Bool
    public var fusedActivation: Bool
    public init(_ kernel: any StepKernel, inputs: [String], fusedBatchNorm: Bool = false, fusedResidual: Bool = false,
                fusedActivation: Bool = false) {
        self.kernel = kernel
        self.inputs = inputs
        self.fusedBatchNorm = fusedBatchNorm
        self.fusedResidual = fusedResidual
        self.fusedActivation = fusedActivation
    }
}

/// The f32 buffers of one step: its run-time inputs and its outputs (one, or one per output of a
/// multi-output op such as Split), with their shapes, and the plan's scratch memory.
public struct StepBuffers {
    public var inputs: [UnsafeMutablePointer<Float>]
    public var inputShapes: [[Int]]
    public var outputs: [UnsafeMutablePointer<Float>]
    public var outputShapes: [[Int]]
    /// The first (for most kernels the only) output.
    public var output: UnsafeMutablePointer<Float> { outputs[0] }
    public var outputShape: [Int] { outputShapes[0] }
    public var workspace: UnsafeMutableRawPointer
    public var pool: ThreadPool
    public var kernels: KernelSet
    public init(inputs: [UnsafeMutablePointer<Float>], inputShapes: [[Int]], outputs: [UnsafeMutablePointer<Float>], outputShapes: [[Int]],
                workspace: UnsafeMutableRawPointer, pool: ThreadPool, kernels: KernelSet) {
        self.inputs = inputs
        self.inputShapes = inputShapes
        self.outputs = outputs
        self.outputShapes = outputShapes
        self.workspace = workspace
        self.pool = pool
        self.kernels = kernels
    }
}

/// A fast f32 kernel for one node (or a fused pair) over planned buffers.
public protocol StepKernel {
    /// A view shares its input's buffer under another shape and computes nothing.
    var isView: Bool { get }
    /// Scratch bytes a run needs for these input shapes.
    func workspaceBytes(inputShapes: [[Int]], threads: Int) -> Int
    /// The input whose buffer the output may take over (same size), or nil: the kernel reads each
    /// element of that input only for the output element at the same index, and before writing it.
    /// The plan gives the output that buffer when no later step and no other input of this step
    /// reads the value (a residual Add's shortcut at the end of a ResNet block).
    var inPlaceInput: Int? { get }
    /// What runs ("conv 3→64 11×11/4 …"), the layer's floating-point operations and those the kernel
    /// executes (fewer for Winograd), for profiles.
    func describe(inputShapes: [[Int]], outputShape: [Int]) -> (text: String, flops: Double, executed: Double)
    func run(_ buffers: StepBuffers)
}

extension StepKernel {
    public var isView: Bool { false }
    public func workspaceBytes(inputShapes: [[Int]], threads: Int) -> Int { 0 }
    public var inPlaceInput: Int? { nil }
}

/// Flatten, Reshape, Dropout, Squeeze, Unsqueeze: the output is the input's buffer under another shape.
public struct ViewKernel: StepKernel {
    public init() {}
    public var isView: Bool { true }
    public func describe(inputShapes: [[Int]], outputShape: [Int]) -> (text: String, flops: Double, executed: Double) { ("view", 0, 0) }
    public func run(_ buffers: StepBuffers) {}
}
