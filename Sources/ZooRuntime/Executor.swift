#if canImport(Glibc)
import Glibc
#endif
import ZooCore
import ZooKernels

/// Why a graph could not be prepared or run, naming the node when one is at fault.
public struct ExecutionError: Error, CustomStringConvertible, Sendable {
    public var node: String?
    public var message: String
    public init(node: String? = nil, _ message: String) {
        self.node = node
        self.message = message
    }

    public var description: String { (node.map { "node '\($0)': " } ?? "") + message }
}

/// Runs a `Graph` on the CPU with zoo's own kernels — no BLAS.
///
/// Preparation happens once: convolution and fully connected weights are packed for the GEMM
/// kernels, ReLUs that follow a convolution or Linear are fused into it (unless `fuse` is off), and
/// Flatten / Reshape / Dropout become views of their input. For each input shape a plan is made once
/// — every value's size and a place in one arena, reusing memory whose value is dead — so steady-state
/// runs allocate only their outputs. Results are bit-identical for any thread count.
///
/// An executor runs one input at a time; calls from several threads must be serialized by the caller.
public final class Executor: @unchecked Sendable {
    public struct Options: Sendable {
        public var threads: Int
        /// Fuse ReLU into the preceding Conv / Linear. Off when every node's own output is wanted.
        public var fuse: Bool
        /// The kernel set (must be one of `KernelSet.supported`).
        public var kernels: KernelSet
        /// `threads` is clamped to 1…4 × the core count: more only adds contention.
        public init(threads: Int = Executor.defaultThreads, fuse: Bool = true, kernels: KernelSet = .active) {
            self.threads = min(max(1, threads), 4 * Executor.defaultThreads)
            self.fuse = fuse
            self.kernels = kernels
        }
    }

    /// The machine's online processor count.
    public static var defaultThreads: Int { max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))) }

    public let graph: Graph
    public let options: Options
    private let pool: ThreadPool
    private let steps: [Step]
    private var plans: [[Int]: Plan] = [:]

    public init(graph: Graph, options: Options = Options()) throws(ExecutionError) {
        guard KernelSet.supported.contains(options.kernels) else {
            throw ExecutionError("this CPU cannot run the \(options.kernels.rawValue) kernels")
        }
        guard !graph.inputs.isEmpty else { throw ExecutionError("the graph has no inputs: there is nothing to run it on") }
        guard !graph.outputs.isEmpty else { throw ExecutionError("the graph has no outputs: there is nothing to compute") }
        self.graph = graph
        self.options = options
        pool = ThreadPool(threads: options.threads)
        steps = try Compiler(graph: graph, fuse: options.fuse, kernels: options.kernels).steps()
    }

    /// Runs a one-input graph on `input` (any floating dtype; converted to f32) and returns its
    /// outputs by name.
    public func run(_ input: Tensor) throws(ExecutionError) -> [String: Tensor] {
        try execute(try only(input), capture: false).outputs
    }

    /// Runs the graph on one tensor per graph input, by name (every input, no other name), and
    /// returns its outputs by name.
    public func run(_ inputs: [String: Tensor]) throws(ExecutionError) -> [String: Tensor] {
        try execute(inputs, capture: false).outputs
    }

    /// Runs the graph and returns every executed step's output in order, named by the last node it
    /// covers (with `fuse` off, every node). Intended for layer-by-layer comparison.
    public func runCapturingEveryNode(_ input: Tensor) throws(ExecutionError) -> [(node: String, value: Tensor)] {
        try execute(try only(input), capture: true).captured
    }

    public func runCapturingEveryNode(_ inputs: [String: Tensor]) throws(ExecutionError) -> [(node: String, value: Tensor)] {
        try execute(inputs, capture: true).captured
    }

    /// The graph's input names, quoted, for messages: 'x', 'z'.
    private var inputNames: String { graph.inputs.map { "'\($0.name)'" }.joined(separator: ", ") }

    /// `input` as the graph's one input; a graph with several needs them by name.
    private func only(_ input: Tensor) throws(ExecutionError) -> [String: Tensor] {
        guard graph.inputs.count == 1 else {
            throw ExecutionError("the model takes \(graph.inputs.count) inputs (\(inputNames)): give each by name")
        }
        return [graph.inputs[0].name: input]
    }

    /// Time spent in one executed step, with the work it did.
    public struct StepProfile: Sendable {
        /// Graph nodes the step computes (a fused Conv+ReLU lists both).
        public var nodes: [String]
        /// What ran: "conv 3→64 11×11/4", "linear 9216→4096", "maxPool 3×3/2", ...
        public var kernel: String
        /// Floating-point operations of one run as the layer is defined (2 per multiply-add of a
        /// direct convolution or matrix product; 0 for data movement).
        public var flops: Double
        /// Multiply-add operations (×2) the kernels actually execute: fewer than `flops` for a
        /// Winograd convolution (its GEMMs), equal otherwise. Transforms are not counted.
        public var executedFlops: Double
        /// Median and best seconds over the profiled runs.
        public var median: Double
        public var best: Double
    }

    /// Runs the graph `runs` times (after one warm-up) timing every step; returns per-step median and
    /// best seconds in execution order. The clock is read between steps only, so the figures add up
    /// to a normal run's time (plus a few hundred nanoseconds per step).
    public func profile(_ input: Tensor, runs: Int) throws(ExecutionError) -> [StepProfile] {
        try profile(try only(input), runs: runs)
    }

    public func profile(_ inputs: [String: Tensor], runs: Int) throws(ExecutionError) -> [StepProfile] {
        var samples = Array(repeating: [Double](), count: steps.count)
        var shapes: [String: [Int]] = [:]
        for run in 0...max(1, runs) {
            _ = try execute(inputs, capture: false) { index, seconds, plan in
                if run > 0 { samples[index].append(seconds) }
                shapes = plan.shapes
            }
        }
        return steps.enumerated().map { index, step in
            let times = samples[index].sorted()
            let (kernel, flops, executed) = step.describe(shapes: shapes)
            return StepProfile(nodes: step.nodes, kernel: kernel, flops: flops, executedFlops: executed,
                               median: times[times.count / 2], best: times[0])
        }
    }

    private func execute(
        _ given: [String: Tensor], capture: Bool, timing: ((_ step: Int, _ seconds: Double, _ plan: Plan) -> Void)? = nil
    ) throws(ExecutionError) -> (outputs: [String: Tensor], captured: [(node: String, value: Tensor)]) {
        for name in given.keys.sorted() where !graph.inputs.contains(where: { $0.name == name }) {
            throw ExecutionError("the model has no input '\(name)' (its inputs: \(inputNames))")
        }
        var inputs: [String: Tensor] = [:]
        for declared in graph.inputs {
            guard let input = given[declared.name] else { throw ExecutionError("no value for the model's input '\(declared.name)' \(declared)") }
            inputs[declared.name] = try checked(input, declared)
        }
        let shapes = graph.inputs.map { inputs[$0.name]!.shape }
        let key = shapes.flatMap { $0 + [-1] } + [capture ? 1 : 0]
        let plan: Plan
        if let cached = plans[key] {
            plan = cached
        } else {
            // Messages name the input shapes as the user gave them: the one shape, or name: shape for several.
            let inputShape = graph.inputs.count == 1 ? "\(shapes[0])"
                : zip(graph.inputs, shapes).map { "\($0.name): \($1)" }.joined(separator: ", ")
            let infos: [String: ValueInfo]
            do {
                infos = try graph.inferShapes(for: Dictionary(uniqueKeysWithValues: zip(graph.inputs.map(\.name), shapes)))
            } catch {
                let at = error.node.map { "node '\($0)': " } ?? ""
                if graph.inputs.count == 1, shapes[0].count == 4, Array(shapes[0][2...]) != graph.inputs[0].shape[2...].compactMap(\.value) {
                    // A height and width other than the declared ones that the graph cannot take (a fixed
                    // Reshape or Gemm after the features): name the size the model takes, then the node.
                    let x = shapes[0]
                    throw ExecutionError("input has shape \(x): the model takes \(graph.inputs[0]) and cannot run at "
                        + "\(x[2]) × \(x[3]) (\(at)\(error.message))")
                }
                throw ExecutionError(node: error.node, "for input shape \(inputShape): \(error.message)")
            }
            plan = try Plan(graph: graph, steps: steps, infos: infos, inputShape: inputShape, reuse: !capture, threads: options.threads)
            if plans.count >= 4 { plans.removeAll() }  // each plan holds an arena: keep a few shapes only
            plans[key] = plan
        }
        var inputPointers: [String: UnsafeMutablePointer<Float>] = [:]
        for (name, tensor) in inputs {
            inputPointers[name] = tensor.count == 0 ? plan.arena
                : UnsafeMutablePointer(mutating: tensor.storage.bytes.bindMemory(to: Float.self).baseAddress!.advanced(by: tensor.offset))
        }
        func pointer(_ name: String) -> UnsafeMutablePointer<Float> {
            let root = plan.roots[name] ?? name
            if let input = inputPointers[root] { return input }
            if let constant = plan.constants[root] { return constant }
            return plan.arena + plan.offsets[name]!
        }
        var captured: [(node: String, value: Tensor)] = []
        for (index, step) in steps.enumerated() {
            let start = timing == nil ? nil : ContinuousClock.now
            step.run(plan: plan, pointer: pointer, pool: pool, kernels: options.kernels)
            if let timing, let start {
                let elapsed = (ContinuousClock.now - start).components
                timing(index, Double(elapsed.seconds) + Double(elapsed.attoseconds) * 1e-18, plan)
            }
            if capture, let shape = plan.shapes[step.output] {
                captured.append((step.nodes.last!, copy(pointer(step.output), shape)))
            }
        }
        var outputs: [String: Tensor] = [:]
        for name in graph.outputs { outputs[name] = copy(pointer(name), plan.shapes[name]!) }
        withExtendedLifetime(inputs) {}
        return (outputs, captured)
    }

    /// `input` as dense f32 (`float32()`) once it fits `declared`: floating point, the declared rank, every dimension
    /// as declared but the batch and (for images) height and width. Messages name the input when
    /// the graph has several.
    private func checked(_ input: Tensor, _ declared: ValueInfo) throws(ExecutionError) -> Tensor {
        let subject = graph.inputs.count == 1 ? "input" : "input '\(declared.name)'"
        guard input.dtype.isFloatingPoint else {
            throw ExecutionError("\(subject) is \(input.dtype.rawValue); the model takes floating-point input \(declared)")
        }
        let x = input.float32()
        guard x.rank == declared.shape.count else {
            throw ExecutionError("\(subject) has shape \(x.shape), the model takes \(declared) (rank \(declared.shape.count))")
        }
        // Images may have any height and width (shapes are re-inferred); every other dimension but
        // the batch must be as declared.
        for axis in stride(from: 1, to: x.rank, by: 1) where !(x.rank == 4 && axis >= 2) {
            if let size = declared.shape[axis].value, x.shape[axis] != size {
                let what = x.rank == 4 ? "\(x.shape[1]) channels" : "size \(x.shape[axis]) in dimension \(axis)"
                // An image array in channels-last order (NHWC) is the common mistake: name the transpose.
                let hint = x.rank == 4 && axis == 1 && x.shape[3] == size
                    ? "; channels last? zoo takes NCHW: transpose it to [\(x.shape[0]), \(x.shape[3]), \(x.shape[1]), \(x.shape[2])]" : ""
                throw ExecutionError("\(subject) has shape \(x.shape) (\(what)); the model takes \(declared)\(hint)")
            }
        }
        return x
    }

    private func copy(_ source: UnsafeMutablePointer<Float>, _ shape: [Int]) -> Tensor {
        let count = shape.reduce(1, *)
        return try! Tensor(dtype: .f32, shape: shape) { buffer in
            buffer.baseAddress!.copyMemory(from: source, byteCount: count * 4)
        }
    }
}

/// One executed operation over planned buffers.
struct Step {
    enum Kernel {
        case conv(Conv2DKernel)
        case linear(LinearKernel)
        case gemm(Op.Gemm)
        case relu
        case maxPool(Pool2DShape)
        case averagePool(Pool2DShape, countIncludePad: Bool)
        case adaptiveAveragePool
        case lrn(Op.LRN)
        case softmax(axis: Int)
        case add
        case batchNorm(epsilon: Float)
        case concat(axis: Int)
        /// Flatten, Reshape, Dropout: the output is the input's buffer under another shape.
        case view
    }

    let kernel: Kernel
    let inputs: [String]
    let output: String
    /// Graph nodes this step computes, in order.
    let nodes: [String]

    /// A short description of the kernel, and the floating-point operations of the layer and those
    /// the kernel executes (see `Executor.StepProfile`) for `shapes`.
    func describe(shapes: [String: [Int]]) -> (String, Double, Double) {
        let inShape = shapes[inputs[0]] ?? [], outShape = shapes[output] ?? []
        let outCount = Double(outShape.reduce(1, *))
        switch kernel {
        case let .conv(k):
            let s = k.shape
            let group = s.groups > 1 ? " g\(s.groups)" : ""
            let stride = s.strideH > 1 || s.strideW > 1 ? "/\(s.strideH)" : ""
            let flops = 2 * outCount * Double(s.reductionSize)
            guard let w = k.winogradTransform, outShape.count == 4 else {
                return ("conv \(s.inChannels)→\(s.outChannels) \(s.kernelH)×\(s.kernelW)\(stride)\(group)\(k.relu ? " +relu" : "") \(k.method.rawValue)",
                        flops, flops)
            }
            let tiles = outShape[0] * ((outShape[2] + w.m - 1) / w.m) * ((outShape[3] + w.m - 1) / w.m)
            let executed = 2 * Double(tiles * w.alpha * w.alpha * s.outChannels * s.groupInChannels)
            return ("conv \(s.inChannels)→\(s.outChannels) \(s.kernelH)×\(s.kernelW)\(group)\(k.relu ? " +relu" : "") winograd F(\(w.m),\(w.r))",
                    flops, executed)
        case let .linear(k):
            let flops = 2 * outCount * Double(k.inFeatures)
            return ("linear \(k.inFeatures)→\(k.outFeatures)\(k.relu ? " +relu" : "")", flops, flops)
        case let .gemm(g):
            let k = inShape.count == 2 ? (g.transA ? inShape[0] : inShape[1]) : 0
            return ("gemm", 2 * outCount * Double(k), 2 * outCount * Double(k))
        case .relu: return ("relu", 0, 0)
        case let .maxPool(p): return ("maxPool \(p.kernelH)×\(p.kernelW)/\(p.strideH)", 0, 0)
        case let .averagePool(p, _): return ("averagePool \(p.kernelH)×\(p.kernelW)/\(p.strideH)", 0, 0)
        case .adaptiveAveragePool: return ("adaptiveAveragePool", 0, 0)
        case let .lrn(l): return ("lrn \(l.size)", 0, 0)
        case .softmax: return ("softmax", 0, 0)
        case .add: return ("add", 0, 0)
        case .batchNorm: return ("batchNorm", 0, 0)
        case .concat: return ("concat", 0, 0)
        case .view: return ("view", 0, 0)
        }
    }

    func run(plan: Plan, pointer: (String) -> UnsafeMutablePointer<Float>, pool: ThreadPool, kernels: KernelSet) {
        let y = pointer(output)
        let inShape = plan.shapes[inputs[0]]!, outShape = plan.shapes[output]!
        let x = UnsafePointer(pointer(inputs[0]))
        switch kernel {
        case let .conv(kernel):
            kernel.run(input: x, output: y, batch: inShape[0], inHeight: inShape[2], inWidth: inShape[3],
                       workspace: plan.workspace, pool: pool)
        case let .linear(kernel):
            kernel.run(input: x, output: y, batch: inShape[0], workspace: plan.workspace, pool: pool)
        case let .gemm(g):
            let b = plan.shapes[inputs[1]]!
            let (m, k) = g.transA ? (inShape[1], inShape[0]) : (inShape[0], inShape[1])
            let n = g.transB ? b[0] : b[1]
            var c: UnsafePointer<Float>?
            var cRows = 0, cColumns = 0
            if inputs.count == 3 {
                let cShape = plan.shapes[inputs[2]]!
                c = UnsafePointer(pointer(inputs[2]))
                (cRows, cColumns) = cShape.count == 2 ? (cShape[0], cShape[1]) : (1, cShape.first ?? 1)
            }
            ElementwiseKernels.gemm(a: x, b: pointer(inputs[1]), c: c, cRows: cRows, cColumns: cColumns, output: y,
                                    m: m, n: n, k: k, transA: g.transA, transB: g.transB, alpha: g.alpha, beta: g.beta)
        case .relu:
            ElementwiseKernels.relu(input: x, output: y, count: inShape.reduce(1, *), kernels: kernels)
        case let .maxPool(shape):
            PoolKernels.maxPool(shape, input: x, output: y, planes: inShape[0] * inShape[1], inHeight: inShape[2],
                                inWidth: inShape[3], outHeight: outShape[2], outWidth: outShape[3], pool: pool, kernels: kernels)
        case let .averagePool(shape, countIncludePad):
            PoolKernels.averagePool(shape, countIncludePad: countIncludePad, input: x, output: y, planes: inShape[0] * inShape[1],
                                    inHeight: inShape[2], inWidth: inShape[3], outHeight: outShape[2], outWidth: outShape[3], pool: pool,
                                    kernels: kernels)
        case .adaptiveAveragePool:
            PoolKernels.adaptiveAveragePool(input: x, output: y, planes: inShape[0] * inShape[1], inHeight: inShape[2],
                                            inWidth: inShape[3], outHeight: outShape[2], outWidth: outShape[3], pool: pool,
                                            kernels: kernels)
        case let .lrn(l):
            let (low, high) = l.offsets
            NormalizationKernels.lrn(input: x, output: y, batch: inShape[0], channels: inShape[1],
                                     spatial: inShape[2...].reduce(1, *), size: l.size, low: low, high: high,
                                     alpha: l.alpha, beta: l.beta, bias: l.bias, pool: pool, kernels: kernels)
        case let .softmax(axis):
            let a = axis < 0 ? axis + inShape.count : axis
            NormalizationKernels.softmax(input: x, output: y, outer: inShape[..<a].reduce(1, *), length: inShape[a],
                                         inner: inShape[(a + 1)...].reduce(1, *), pool: pool, kernels: kernels)
        case .add:
            ElementwiseKernels.add(x, inShape, pointer(inputs[1]), plan.shapes[inputs[1]]!, output: y, shape: outShape)
        case let .batchNorm(epsilon):
            NormalizationKernels.batchNorm(input: x, output: y, batch: inShape[0], channels: inShape[1],
                                           spatial: inShape[2...].reduce(1, *), scale: pointer(inputs[1]), shift: pointer(inputs[2]),
                                           mean: pointer(inputs[3]), variance: pointer(inputs[4]), epsilon: epsilon, pool: pool,
                                           kernels: kernels)
        case let .concat(axis):
            let a = axis < 0 ? axis + outShape.count : axis
            let outer = outShape[..<a].reduce(1, *), inner = outShape[(a + 1)...].reduce(1, *)
            var offset = 0
            for name in inputs {
                let part = plan.shapes[name]![a] * inner
                let source = pointer(name)
                for o in 0..<outer {
                    (y + o * outShape[a] * inner + offset).update(from: source + o * part, count: part)
                }
                offset += part
            }
        case .view:
            break  // shares its input's buffer
        }
    }
}
