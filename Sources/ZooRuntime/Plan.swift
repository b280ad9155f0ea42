#if canImport(Glibc)
import Glibc
import CMalloc
#endif
import ZooCore
import ZooOps
import ZooKernels

/// One executed unit: a fast f32 kernel over planned buffers (possibly a Conv or Linear with its
/// ReLU fused), or an op's reference `evaluate` over tensors of any dtype.
struct Step {
    enum Work {
        case kernel(any StepKernel)
        case reference(any Operator)
    }

    let work: Work
    /// Values read at run time (a kernel's packed weights are not among them).
    let inputs: [String]
    let outputs: [String]
    /// The graph nodes the step computes, in order (a fused Conv+ReLU lists both).
    let nodes: [Node]

    var isView: Bool { if case let .kernel(k) = work { k.isView } else { false } }
    var isKernel: Bool { if case .kernel = work { true } else { false } }
}

/// Turns graph nodes into steps, once per executor: an op with a fast kernel for its types is
/// lowered (weights packed, shape-only ops made views), and with `fuse` it may absorb the nodes
/// right after it (`FusionOffer`: a BatchNormalization folded into a convolution, a residual Add,
/// then an activation in the kernel's epilogue — ReLU, Clip, Sigmoid, HardSwish, HardSigmoid,
/// GELU, or SiLU as Sigmoid then Mul). An activation alone may also be taken across a Reshape
/// (a token Linear's [N*197, 3072] → [N, 197, 3072] before GELU): the kernel writes activated
/// values, and the Reshape's step produces the activation's output (its nodes: the Reshape and
/// the activation). Every other node runs its op's reference semantics.
struct Compiler {
    let graph: Graph
    let fuse: Bool
    let kernels: KernelSet

    func steps() throws(ExecutionError) -> [Step] {
        // How many nodes (and graph outputs) read each value, and the first node that does.
        var consumers: [String: Int] = [:], readers: [String: Int] = [:]
        for (index, node) in graph.nodes.enumerated() {
            for input in node.inputs {
                consumers[input, default: 0] += 1
                if readers[input] == nil { readers[input] = index }
            }
        }
        for output in graph.outputs { consumers[output, default: 0] += 1 }

        var steps: [Step] = []
        var index = 0
        let nodes = graph.nodes
        // Reshapes (by index) that produce an activation's output, the activation taken across them.
        var reshapes: [Int: Node] = [:]
        while index < nodes.count {
            let node = nodes[index]
            if let activation = reshapes[index] {
                let lowering = lowerable(node) ? try lower(node, offer: FusionOffer()) : nil
                steps.append(Step(work: lowering.map { .kernel($0.kernel) } ?? .reference(node.op), inputs: lowering?.inputs ?? node.inputs,
                                  outputs: activation.outputs, nodes: [node, activation]))
                index += 2
                continue
            }
            var lowering: Lowering?
            var offer = Offer()
            if lowerable(node) {
                if fuse && node.outputs.count == 1 { offer = fusable(after: index, consumers: consumers, readers: readers) }
                lowering = try lower(node, offer: offer.offer)
            }
            if let lowering, let reshape = offer.reshapeIndex, lowering.fusedActivation {
                steps.append(Step(work: .kernel(lowering.kernel), inputs: lowering.inputs, outputs: node.outputs, nodes: [node]))
                reshapes[reshape] = offer.activationNodes[0]
                index += 1
            } else if let lowering {
                let fused = [node] + offer.taken(by: lowering)
                steps.append(Step(work: .kernel(lowering.kernel), inputs: lowering.inputs, outputs: fused.last!.outputs, nodes: fused))
                index += fused.count
            } else {
                steps.append(Step(work: .reference(node.op), inputs: node.inputs, outputs: node.outputs, nodes: [node]))
                index += 1
            }
        }
        return steps
    }

    private func lower(_ node: Node, offer: FusionOffer) throws(ExecutionError) -> Lowering? {
        let context = LoweringContext(node: node, inputs: node.inputs.map { graph.values[$0]! }, kernels: kernels, offer: offer,
                                      constants: { graph.initializer($0) })
        do throws(OpFailure) { return try node.op.lower(context) } catch { throw ExecutionError(node: node.name, error.message) }
    }

    /// What follows node `index` that its kernel may absorb, with the nodes each part stands for.
    struct Offer {
        var offer = FusionOffer()
        var batchNormNode: Node?
        var residualNode: Node?
        var activationNodes: [Node] = []
        /// The activation alone is offered across the Reshape at this index (`activationNodes`
        /// follows it).
        var reshapeIndex: Int?

        /// The nodes a lowering took: a prefix of the offered chain (BatchNormalization, residual
        /// Add, activation), each part only with every offered part before it.
        func taken(by lowering: Lowering) -> [Node] {
            var nodes: [Node] = []
            if let batchNormNode {
                guard lowering.fusedBatchNorm else { return nodes }
                nodes.append(batchNormNode)
            }
            if let residualNode {
                guard lowering.fusedResidual else { return nodes }
                nodes.append(residualNode)
            }
            return lowering.fusedActivation ? nodes + activationNodes : nodes
        }
    }

    /// A BatchNormalization with constant parameters reading node `index`'s output (and nothing else
    /// reading it), then an Add of another value of the same shape (a residual), then an activation
    /// of the result — the nodes in graph order, right after it; or, with neither of the first two,
    /// an activation right after the Reshape that is the output's only reader (`reshapeIndex`).
    private func fusable(after index: Int, consumers: [String: Int], readers: [String: Int]) -> Offer {
        let nodes = graph.nodes
        var result = Offer()
        var value = nodes[index].output, next = index + 1
        if next < nodes.count, consumers[value] == 1, let bn = nodes[next].op as? Op.BatchNormalization, nodes[next].inputs[0] == value,
           nodes[next].inputs.count == 5, graph.values[value]?.dtype == .f32 {
            let parameters = nodes[next].inputs.dropFirst().compactMap { graph.initializer($0)?.doubles() }
            if parameters.count == 4 {
                result.offer.batchNorm = FoldedBatchNorm(gamma: parameters[0], beta: parameters[1], mean: parameters[2],
                                                         variance: parameters[3], epsilon: Double(bn.epsilon))
                result.batchNormNode = nodes[next]
                value = nodes[next].output
                next += 1
            }
        }
        if next < nodes.count, consumers[value] == 1, let add = nodes[next].op as? Op.Binary, add.function == .add,
           nodes[next].inputs.count == 2, nodes[next].inputs.filter({ $0 == value }).count == 1,
           let other = nodes[next].inputs.first(where: { $0 != value }), let residual = graph.values[other], residual.dtype == .f32,
           let own = graph.values[value], residual.shape == own.shape {  // a symbolic size names one size throughout
            result.offer.residual = other
            result.residualNode = nodes[next]
            value = nodes[next].output
            next += 1
        }
        if result.batchNormNode == nil && result.residualNode == nil, consumers[value] == 1,
           let r = readers[value], nodes[r].op is Op.Reshape,
           nodes[r].inputs.first == value, r + 1 < nodes.count, consumers[nodes[r].output] == 1,
           let unary = nodes[r + 1].op as? Op.Unary, nodes[r + 1].inputs == [nodes[r].output], let activation = unary.function.activation {
            result.offer.activation = activation
            result.activationNodes = [nodes[r + 1]]
            result.reshapeIndex = r
            return result
        }
        guard next < nodes.count, let unary = nodes[next].op as? Op.Unary, nodes[next].inputs == [value] else { return result }
        if consumers[value] == 1, let activation = unary.function.activation {
            result.offer.activation = activation
            result.activationNodes = [nodes[next]]
        } else if unary.function == .sigmoid, consumers[value] == 2, next + 1 < nodes.count,
                  let mul = nodes[next + 1].op as? Op.Binary, mul.function == .mul, consumers[nodes[next].output] == 1,
                  Set(nodes[next + 1].inputs) == [value, nodes[next].output], nodes[next + 1].inputs.count == 2 {
            result.offer.activation = .silu
            result.activationNodes = [nodes[next], nodes[next + 1]]
        }
        return result
    }

    /// A fast kernel computes f32: every output is f32, and every input is f32 or a floating-point
    /// initializer (widened when the plan is made) — or an initializer of any dtype that the op
    /// reads only when the plan is made (`planTimeInputs`: a Gather's indices) — or any value that
    /// only fixes the output's shape (`shapeOnlyInputs`: a Reshape's shape).
    private func lowerable(_ node: Node) -> Bool {
        let (planTime, shapeOnly) = (node.op.planTimeInputs, node.op.shapeOnlyInputs)
        return node.outputs.allSatisfy { graph.values[$0]?.dtype == .f32 }
            && node.inputs.enumerated().allSatisfy { position, name in
                guard let info = graph.values[name] else { return false }
                let constant = graph.initializer(name) != nil
                return info.dtype == .f32 || shapeOnly.contains(position)
                    || (constant && (info.dtype.isFloatingPoint || planTime.contains(position)))
            }
    }
}

/// Everything one shape of the graph inputs needs: every value's concrete shape, the values known
/// before running (initializers, folded shape arithmetic, and steps whose inputs are all known —
/// computed once here, whatever their size), and a place in one arena for every kernel output.
/// Values whose last reader has run give their memory back for later values (first fit by offset);
/// views share their source's buffer and extend its life. Graph outputs live to the end.
final class Plan: @unchecked Sendable {
    let shapes: [String: [Int]]
    /// Values known before running, in their own dtype.
    let known: [String: Tensor]
    /// Whether each step runs (false: its outputs are in `known`).
    let runs: [Bool]
    /// Float offsets into `arena` of every kernel output stored there.
    let offsets: [String: Int]
    /// The value whose memory each value uses: itself, or for a view, what it views.
    let roots: [String: String]
    /// The values each step is the last reader of (graph outputs never): the tensors a reference
    /// step made are released then, as arena buffers are reused (ViT-H's 32 layers of attention
    /// scores would otherwise all stay).
    let releasedAfter: [Int: [String]]
    let arena: UnsafeMutablePointer<Float>
    let arenaFloats: Int
    let workspace: UnsafeMutableRawPointer
    let workspaceBytes: Int
    /// Own `arena` and `workspace` (huge-page memory: activations and im2col/Winograd buffers are
    /// streamed with large strides).
    private let arenaBuffer: HugePageBuffer
    private let workspaceBuffer: HugePageBuffer
    /// Known values kernels read, as dense f32.
    let constants: [String: UnsafeMutablePointer<Float>]
    private let constantTensors: [Tensor]

    /// The plan for `infos`, every value's type inferred for one shape of each graph input
    /// (`Graph.inferShapes`); `inputShape` describes those input shapes in messages.
    init(graph: Graph, steps: [Step], infos: [String: ValueInfo], inputShape: String, reuse: Bool, threads: Int) throws(ExecutionError) {
        var shapes: [String: [Int]] = [:]
        for (name, info) in infos {
            guard let fixed = info.fixedShape else {
                throw ExecutionError("value '\(name)' has shape \(Dim.text(info.shape)) for input \(inputShape): every size must be known to run")
            }
            shapes[name] = fixed
        }
        self.shapes = shapes

        // Every computed value (the arena's and the tensors the reference semantics make) within the
        // activation limit, before anything is allocated: a small file may declare enormous shapes.
        let limit = ResourceLimits.current.maxActivationBytes
        for step in steps {
            for output in step.outputs {
                guard let shape = shapes[output], let info = infos[output] else { continue }
                let bytes = Tensor.checkedCount(shape).flatMap { c -> Int? in
                    let (b, o) = c.multipliedReportingOverflow(by: info.dtype.itemSize)
                    return o ? nil : b
                }
                guard let bytes, bytes <= limit else {
                    let size = bytes.map(ResourceLimits.bytesText) ?? "more bytes than an Int counts"
                    throw ExecutionError(node: step.nodes.last?.name, "output \(shape) is too large to compute: "
                        + LimitExceeded(\.maxActivationBytes, of: .current, "an output of \(size)", needed: bytes).description)
                }
            }
        }

        // Known values: initializers and folded values, then every step whose inputs are all known.
        var known: [String: Tensor] = [:]
        for (name, info) in infos { if let value = info.value { known[name] = value } }
        var runs: [Bool] = []
        for step in steps {
            if step.outputs.allSatisfy({ known[$0] != nil }) { runs.append(false); continue }
            // The first node reads the step's external inputs (a fused ReLU reads the first's output).
            guard step.nodes[0].inputs.allSatisfy({ known[$0] != nil }) else { runs.append(true); continue }
            for node in step.nodes {
                do throws(OpFailure) {
                    for (name, value) in zip(node.outputs, try node.op.evaluate(node.inputs.map { known[$0]! })) { known[name] = value }
                } catch {
                    throw ExecutionError(node: node.name, error.message)
                }
            }
            runs.append(false)
        }
        self.known = known
        self.runs = runs

        // Known values that running kernels read, as dense f32 (weights packed into kernels are not read).
        var constants: [String: UnsafeMutablePointer<Float>] = [:]
        var kept: [Tensor] = []
        for (step, run) in zip(steps, runs) where run && step.isKernel {
            for name in step.inputs where constants[name] == nil {
                guard let tensor = known[name] else { continue }
                let f32 = tensor.float32()
                kept.append(f32)
                constants[name] = UnsafeMutablePointer(mutating: f32.storage.bytes.bindMemory(to: Float.self).baseAddress!
                    .advanced(by: f32.offset))
            }
        }
        self.constants = constants
        constantTensors = kept

        // Liveness: each value's root (views map to their source) and the last step reading it.
        var root: [String: String] = [:]
        var lastUse: [String: Int] = [:]
        for (i, step) in steps.enumerated() where runs[i] {
            for input in step.inputs { if let r = root[input] { lastUse[r] = i } }
            for output in step.outputs {
                if step.isView, let source = root[step.inputs[0]] {
                    root[output] = source
                } else if step.isView {
                    root[output] = step.inputs[0]  // a view of a graph input, constant or reference output
                } else {
                    root[output] = output
                }
                if let r = root[output] { lastUse[r] = max(lastUse[r] ?? i, i) }
            }
        }
        for output in graph.outputs { if let r = root[output] { lastUse[r] = Int.max } }
        roots = root
        var released: [Int: [String]] = [:]
        for (name, i) in lastUse where i != Int.max { released[i, default: []].append(name) }
        releasedAfter = released

        // First-fit placement by offset among live buffers.
        var live: [(offset: Int, size: Int, name: String)] = []
        var rootOffsets: [String: Int] = [:]
        var top = 0
        // A value's floats in 64-byte granules (within maxActivationBytes: checked above for every output).
        func granules(_ value: String) -> Int { (shapes[value]!.reduce(1, *) + 15) / 16 * 16 }
        for (i, step) in steps.enumerated() where runs[i] && step.isKernel && !step.isView {
            if reuse { live.removeAll { (lastUse[$0.name] ?? 0) < i } }
            // The output in the buffer of an input this step reads last, where the kernel allows it.
            if reuse, case let .kernel(kernel) = step.work, let k = kernel.inPlaceInput, step.outputs.count == 1,
               let source = root[step.inputs[k]], lastUse[source] == i,
               step.inputs.indices.allSatisfy({ $0 == k || root[step.inputs[$0]] != source }),
               let index = live.firstIndex(where: { $0.name == source }),
               live[index].size == granules(step.outputs[0]) {
                live[index].name = step.outputs[0]
                rootOffsets[step.outputs[0]] = live[index].offset
                continue
            }
            for output in step.outputs {
                let size = granules(output)
                var offset = 0
                for block in live.sorted(by: { $0.offset < $1.offset }) {
                    if block.offset - offset >= size { break }
                    offset = max(offset, block.offset + block.size)
                }
                live.append((offset, size, output))
                rootOffsets[output] = offset
                top = max(top, offset + size)
            }
        }
        var offsets: [String: Int] = [:]
        for (name, r) in root { if let offset = rootOffsets[r] { offsets[name] = offset } }
        self.offsets = offsets
        guard top <= Plan.maxFloats else {
            throw ExecutionError(LimitExceeded(\.maxActivationBytes, of: .current,
                                               "activations of \(ResourceLimits.bytesText(top * 4)) for input \(inputShape)", needed: top * 4).description)
        }
        arenaFloats = max(top, 16)
        arenaBuffer = HugePageBuffer(byteCount: arenaFloats * 4)
        arena = arenaBuffer.base.bindMemory(to: Float.self, capacity: arenaFloats)

        var workspaceBytes = 64
        for (step, run) in zip(steps, runs) where run {
            guard case let .kernel(kernel) = step.work else { continue }
            workspaceBytes = max(workspaceBytes, kernel.workspaceBytes(inputShapes: step.inputs.map { shapes[$0] ?? [] }, threads: threads))
        }
        guard workspaceBytes <= Plan.maxFloats * 4 else {
            throw ExecutionError(LimitExceeded(\.maxActivationBytes, of: .current,
                                               "a convolution workspace of \(ResourceLimits.bytesText(workspaceBytes)) for input \(inputShape)", needed: workspaceBytes).description)
        }
        self.workspaceBytes = workspaceBytes
        workspaceBuffer = HugePageBuffer(byteCount: workspaceBytes)
        workspace = workspaceBuffer.base
        // Loading and lowering freed more than they keep (a state dict's records, folded copies of
        // weights, build-time graphs); return those pages to the system so they do not stay in
        // the process's resident memory for as long as the plan runs.
        _ = malloc_trim(0)
    }

    /// The most activation memory one plan may take, in floats: `ResourceLimits.maxActivationBytes`
    /// (a quarter of physical memory by default), so a small file declaring enormous shapes is
    /// refused instead of exhausting the machine.
    static var maxFloats: Int { ResourceLimits.current.maxActivationBytes / 4 }
}
