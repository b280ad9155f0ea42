#if canImport(Glibc)
import Glibc
#endif
import ZooCore
import ZooOps
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
/// kernels; unless `fuse` is off, a BatchNormalization after a convolution is folded into its
/// weights and an activation after a convolution or Linear (ReLU, ReLU6/Clip, Sigmoid, SiLU,
/// HardSwish, HardSigmoid, GELU) runs in its epilogue (`FusionOffer`), and an average pool after
/// a pointwise convolution runs before it (`Rewrite`); and
/// Flatten / Reshape / Dropout become views of their input. For each input shape a plan is made once
/// — every value's size and a place in one arena, reusing memory whose value is dead — so steady-state
/// runs allocate only their outputs. Results are bit-identical for any thread count.
///
/// An executor runs one input at a time; calls from several threads must be serialized by the caller.
public final class Executor: @unchecked Sendable {
    public struct Options: Sendable {
        public var threads: Int
        /// Fold BatchNormalization into the preceding Conv and run activations in Conv / Linear
        /// epilogues. Off when every node's own output is wanted.
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
    /// What runs: `graph`, rewritten when fusing (`Rewrite`) — the same inputs, outputs and values.
    private let planned: Graph
    public let options: Options
    private let pool: ThreadPool
    private let steps: [Step]
    private(set) var plans: [[Int]: Plan] = [:]

    public init(graph: Graph, options: Options = Options()) throws(ExecutionError) {
        guard KernelSet.supported.contains(options.kernels) else {
            throw ExecutionError("this CPU cannot run the \(options.kernels.rawValue) kernels")
        }
        guard !graph.inputs.isEmpty else { throw ExecutionError("the graph has no inputs: there is nothing to run it on") }
        guard !graph.outputs.isEmpty else { throw ExecutionError("the graph has no outputs: there is nothing to compute") }
        self.graph = graph
        self.options = options
        do throws(GraphError) {
            planned = options.fuse ? try Rewrite.poolBeforePointwiseConvolution(graph) : graph
        } catch {
            throw ExecutionError(node: error.node, error.message)
        }
        pool = ThreadPool(threads: options.threads)
        steps = try Compiler(graph: planned, fuse: options.fuse, kernels: options.kernels).steps()
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
        return steps.enumerated().compactMap { index, step in
            let times = samples[index].sorted()
            guard !times.isEmpty else { return nil }  // folded when the plan was made
            let (kernel, flops, executed) = step.describe(shapes: shapes)
            return StepProfile(nodes: step.nodes.map(\.name), kernel: kernel, flops: flops, executedFlops: executed,
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
                infos = try planned.inferShapes(for: Dictionary(uniqueKeysWithValues: zip(graph.inputs.map(\.name), shapes)))
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
            plan = try Plan(graph: planned, steps: steps, infos: infos, inputShape: inputShape, reuse: !capture, threads: options.threads)
            if plans.count >= 4 { plans.removeAll() }  // each plan holds an arena: keep a few shapes only
            plans[key] = plan
        }
        // Values held as tensors at run time: graph inputs and reference outputs; f32 ones also by pointer.
        var tensors: [String: Tensor] = inputs
        var pointers: [String: UnsafeMutablePointer<Float>] = [:]
        func hold(_ name: String, _ tensor: Tensor) {
            let dense = tensor.contiguous()
            tensors[name] = dense
            if dense.dtype == .f32 {
                pointers[name] = dense.count == 0 ? plan.arena
                    : UnsafeMutablePointer(mutating: dense.storage.bytes.bindMemory(to: Float.self).baseAddress!.advanced(by: dense.offset))
            }
        }
        for (name, tensor) in inputs { hold(name, tensor) }
        func pointer(_ name: String) -> UnsafeMutablePointer<Float> {
            let root = plan.roots[name] ?? name
            if let offset = plan.offsets[name] { return plan.arena + offset }
            if let p = pointers[root] { return p }
            return plan.constants[root]!
        }
        /// A value as a tensor: held, known, or copied out of the arena (arena values are f32).
        func tensor(_ name: String) -> Tensor {
            if let t = tensors[name] { return t }
            if let t = plan.known[name] { return t }
            let shape = plan.shapes[name]!
            return copy(pointer(name), shape)
        }
        var captured: [(node: String, value: Tensor)] = []
        for (index, step) in steps.enumerated() where plan.runs[index] {
            let start = timing == nil ? nil : ContinuousClock.now
            switch step.work {
            case let .kernel(kernel):
                kernel.run(StepBuffers(inputs: step.inputs.map(pointer), inputShapes: step.inputs.map { plan.shapes[$0]! },
                                       outputs: step.outputs.map(pointer), outputShapes: step.outputs.map { plan.shapes[$0]! },
                                       workspace: plan.workspace, pool: pool, kernels: options.kernels))
            case let .reference(op):
                let results: [Tensor]
                do throws(OpFailure) { results = try op.evaluate(step.inputs.map(tensor)) } catch {
                    throw ExecutionError(node: step.nodes[0].name, error.message)
                }
                for (name, value) in zip(step.outputs, results) { hold(name, value) }
            }
            if let timing, let start {
                let elapsed = (ContinuousClock.now - start).components
                timing(index, Double(elapsed.seconds) + Double(elapsed.attoseconds) * 1e-18, plan)
            }
            if capture { captured.append((step.nodes.last!.name, tensor(step.outputs[0]))) }
            // A held tensor (a reference step's output) goes after its last reader, as arena values do.
            for name in plan.releasedAfter[index] ?? [] {
                tensors[name] = nil
                pointers[name] = nil
            }
        }
        var outputs: [String: Tensor] = [:]
        for name in graph.outputs { outputs[name] = tensor(name) }
        withExtendedLifetime(inputs) {}
        return (outputs, captured)
    }

    /// `input` as dense f32 (`float32()`) once it fits `declared`: floating point, the declared rank, every dimension
    /// as declared but the batch and (for images) height and width. Messages name the input when
    /// the graph has several.
    private func checked(_ input: Tensor, _ declared: ValueInfo) throws(ExecutionError) -> Tensor {
        let subject = graph.inputs.count == 1 ? "input" : "input '\(declared.name)'"
        let x: Tensor
        if declared.dtype.isFloatingPoint {
            // Any floating-point input converts to the declared precision.
            guard input.dtype.isFloatingPoint else {
                throw ExecutionError("\(subject) is \(input.dtype.rawValue); the model takes floating-point input \(declared)")
            }
            x = declared.dtype == .f32 ? input.float32() : (input.dtype == declared.dtype ? input.contiguous()
                : Tensor(dtype: declared.dtype, shape: input.shape, doubles: input.doubles()))
        } else {
            guard input.dtype == declared.dtype else {
                throw ExecutionError("\(subject) is \(input.dtype.rawValue); the model takes \(declared)")
            }
            x = input.contiguous()
        }
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
            if count > 0 { buffer.baseAddress!.copyMemory(from: source, byteCount: count * 4) }
        }
    }
}

extension Step {
    /// A short description of the step, and the floating-point operations of the layer and those
    /// the kernel executes (see `Executor.StepProfile`) for `shapes`.
    func describe(shapes: [String: [Int]]) -> (String, Double, Double) {
        switch work {
        case let .kernel(kernel):
            let d = kernel.describe(inputShapes: inputs.map { shapes[$0] ?? [] }, outputShape: shapes[outputs[0]] ?? [])
            return (d.text, d.flops, d.executed)
        case let .reference(op):
            return ("\(op.name.lowercased()) (reference)", 0, 0)
        }
    }
}
