#if canImport(Glibc)
import Glibc
#endif
import ZooCore
import ZooKernels

/// Turns graph nodes into executable steps, once per executor: packs weights into kernels, fuses
/// ReLU into a preceding Conv or Linear whose output nothing else reads, and turns shape-only
/// nodes into views.
struct Compiler {
    let graph: Graph
    let fuse: Bool
    let kernels: KernelSet

    func steps() throws(ExecutionError) -> [Step] {
        var consumers: [String: Int] = [:]
        for node in graph.nodes { for input in node.inputs { consumers[input, default: 0] += 1 } }
        for output in graph.outputs { consumers[output, default: 0] += 1 }

        var steps: [Step] = []
        var index = 0
        let nodes = graph.nodes
        while index < nodes.count {
            let node = nodes[index]
            // A ReLU right after, reading only this node's output, which nothing else reads.
            var relu: Node?
            if fuse, index + 1 < nodes.count, case .relu = nodes[index + 1].op, nodes[index + 1].inputs == [node.output],
               consumers[node.output] == 1 {
                relu = nodes[index + 1]
            }
            let step: Step
            switch node.op {
            case let .conv(c):
                let kernel = try convKernel(node, c, relu: relu != nil)
                step = Step(kernel: .conv(kernel), inputs: [node.inputs[0]], output: relu?.output ?? node.output,
                            nodes: [node.name] + (relu.map { [$0.name] } ?? []))
                if relu != nil { index += 1 }
            case let .gemm(g):
                if let kernel = try linearKernel(node, g, relu: relu != nil) {
                    step = Step(kernel: .linear(kernel), inputs: [node.inputs[0]], output: relu?.output ?? node.output,
                                nodes: [node.name] + (relu.map { [$0.name] } ?? []))
                    if relu != nil { index += 1 }
                } else {
                    step = Step(kernel: .gemm(g), inputs: node.inputs, output: node.output, nodes: [node.name])
                }
            default:
                step = Step(kernel: try simpleKernel(node), inputs: node.inputs, output: node.output, nodes: [node.name])
            }
            steps.append(step)
            index += 1
        }
        return steps
    }

    private func constant(_ node: Node, _ name: String, _ role: String) throws(ExecutionError) -> Tensor {
        guard let tensor = graph.initializer(name) else {
            throw ExecutionError(node: node.name, "\(role) '\(name)' must be a constant initializer")
        }
        return tensor.float32()
    }

    private func convKernel(_ node: Node, _ c: Op.Conv, relu: Bool) throws(ExecutionError) -> Conv2DKernel {
        let weight = try constant(node, node.inputs[1], "weight")
        guard !weight.shape.contains(0) else { throw ExecutionError(node: node.name, "weight '\(node.inputs[1])' \(weight.shape) is empty") }
        let bias = node.inputs.count == 3 ? try constant(node, node.inputs[2], "bias") : nil
        let shape = Conv2DShape(inChannels: weight.shape[1] * c.groups, outChannels: weight.shape[0], kernelH: c.kernel[0],
                                kernelW: c.kernel[1], strideH: c.strides[0], strideW: c.strides[1], dilationH: c.dilations[0],
                                dilationW: c.dilations[1], padTop: c.pads[0], padLeft: c.pads[1], padBottom: c.pads[2],
                                padRight: c.pads[3], groups: c.groups)
        let kernel = weight.withContiguousBytes { w in
            let wp = w.bindMemory(to: Float.self).baseAddress!
            guard let bias else { return Conv2DKernel(shape: shape, weights: wp, bias: nil, relu: relu, kernels: kernels) }
            return bias.withContiguousBytes { b in
                Conv2DKernel(shape: shape, weights: wp, bias: b.bindMemory(to: Float.self).baseAddress, relu: relu, kernels: kernels)
            }
        }
        weight.storage.releasePages()   // the kernel holds its own packed / transformed copy
        return kernel
    }

    /// A LinearKernel when the Gemm is torch.nn.Linear (x · Wᵀ + b, W and b constant); else nil.
    private func linearKernel(_ node: Node, _ g: Op.Gemm, relu: Bool) throws(ExecutionError) -> LinearKernel? {
        guard !g.transA, g.transB, g.alpha == 1, g.beta == 1, let w = graph.initializer(node.inputs[1]) else { return nil }
        var bias: Tensor?
        if node.inputs.count == 3 {
            guard let b = graph.initializer(node.inputs[2]), b.shape == [w.shape[0]] else { return nil }
            bias = b
        }
        let weight = try constant(node, node.inputs[1], "weight")
        guard !weight.shape.contains(0) else { throw ExecutionError(node: node.name, "weight '\(node.inputs[1])' \(weight.shape) is empty") }
        let biasF32 = try bias.map { _ throws(ExecutionError) in try constant(node, node.inputs[2], "bias") }
        // float32() of a dense f32 tensor is the tensor itself: weights of a mapped checkpoint move into
        // the kernel's huge-page memory (releasing the file's pages); others (including converted or
        // made-contiguous copies, which are owned) are read in place.
        return weight.withContiguousBytes { wb in
            let wp = wb.bindMemory(to: Float.self).baseAddress!
            guard let biasF32 else {
                return LinearKernel(inFeatures: weight.shape[1], outFeatures: weight.shape[0], weights: wp,
                                    owner: weight.storage, moveFromMapping: weight.storage.isMapped, bias: nil, relu: relu,
                                    kernels: kernels)
            }
            return biasF32.withContiguousBytes { bb in
                LinearKernel(inFeatures: weight.shape[1], outFeatures: weight.shape[0], weights: wp, owner: weight.storage,
                             moveFromMapping: weight.storage.isMapped, bias: bb.bindMemory(to: Float.self).baseAddress,
                             relu: relu, kernels: kernels)
            }
        }
    }

    private func simpleKernel(_ node: Node) throws(ExecutionError) -> Step.Kernel {
        switch node.op {
        case .relu: return .relu
        case let .maxPool(p): return .maxPool(poolShape(p))
        case let .averagePool(p): return .averagePool(poolShape(p), countIncludePad: p.countIncludePad)
        case .adaptiveAveragePool, .globalAveragePool: return .adaptiveAveragePool
        case let .lrn(l): return .lrn(l)
        case let .softmax(axis): return .softmax(axis: axis)
        case .add: return .add
        case let .batchNormalization(epsilon): return .batchNorm(epsilon: epsilon)
        case let .concat(axis): return .concat(axis: axis)
        case .flatten, .reshape, .dropout: return .view
        case .conv, .gemm: fatalError("handled by the caller")
        }
    }

    private func poolShape(_ p: Op.Pool) -> Pool2DShape {
        Pool2DShape(kernelH: p.kernel[0], kernelW: p.kernel[1], strideH: p.strides[0], strideW: p.strides[1],
                    padTop: p.pads[0], padLeft: p.pads[1], padBottom: p.pads[2], padRight: p.pads[3])
    }
}

/// Buffers for one input shape: every value's concrete shape, and its place in one arena. Values
/// whose last reader has run give their memory back for later values (first fit by offset); views
/// share their source's buffer and extend its life. Graph outputs live to the end.
final class Plan: @unchecked Sendable {
    let shapes: [String: [Int]]
    /// Float offsets into `arena` of every value computed by a step and stored there.
    let offsets: [String: Int]
    /// The value whose memory each value uses: itself, or for a view, what it views (possibly the
    /// graph input or a constant, which live outside the arena).
    let roots: [String: String]
    let arena: UnsafeMutablePointer<Float>
    let arenaFloats: Int
    let workspace: UnsafeMutableRawPointer
    let workspaceBytes: Int
    /// Own `arena` and `workspace` (huge-page memory: activations and im2col/Winograd buffers are
    /// streamed with large strides).
    private let arenaBuffer: HugePageBuffer
    private let workspaceBuffer: HugePageBuffer
    /// Initializers that steps read as data (not the weights Conv/Linear kernels hold), as f32.
    let constants: [String: UnsafeMutablePointer<Float>]
    private let constantTensors: [Tensor]

    /// Buffers for `infos`, every value's shape inferred for one shape of each graph input
    /// (`Graph.inferShapes`); `inputShape` describes those input shapes in messages.
    init(graph: Graph, steps: [Step], infos: [String: ValueInfo], inputShape: String, reuse: Bool, threads: Int) throws(ExecutionError) {
        var shapes: [String: [Int]] = [:]
        for (name, info) in infos { shapes[name] = info.fixedShape }
        self.shapes = shapes

        // Constants for non-packed readers.
        var constants: [String: UnsafeMutablePointer<Float>] = [:]
        var kept: [Tensor] = []
        // Conv/Linear steps list only their data input (weights live packed in the kernel); a graph
        // output may also be an initializer itself.
        for names in steps.map(\.inputs) + [graph.outputs] {
            for name in names where constants[name] == nil {
                guard let tensor = graph.initializer(name) else { continue }
                let f32 = tensor.float32()
                kept.append(f32)
                constants[name] = UnsafeMutablePointer(mutating: f32.storage.bytes.bindMemory(to: Float.self).baseAddress!
                    .advanced(by: f32.offset))
            }
        }
        self.constants = constants
        constantTensors = kept

        // Liveness: each buffer's root (views map to their source) and the last step reading it.
        var root: [String: String] = [:]
        for input in graph.inputs { root[input.name] = input.name }
        for name in constants.keys { root[name] = name }
        var lastUse: [String: Int] = [:]
        for (i, step) in steps.enumerated() {
            for input in step.inputs { if let r = root[input] { lastUse[r] = i } }
            if case .view = step.kernel, let source = root[step.inputs[0]] {
                root[step.output] = source
            } else {
                root[step.output] = step.output
            }
            lastUse[root[step.output]!] = max(lastUse[root[step.output]!] ?? i, i)
        }
        for output in graph.outputs { if let r = root[output] { lastUse[r] = Int.max } }
        roots = root

        // First-fit placement by offset among live buffers.
        var live: [(offset: Int, size: Int, name: String)] = []
        var rootOffsets: [String: Int] = [:]
        var top = 0
        for (i, step) in steps.enumerated() {
            if reuse { live.removeAll { (lastUse[$0.name] ?? 0) < i } }
            guard root[step.output] == step.output else { continue }
            let count = Tensor.checkedCount(shapes[step.output] ?? [])
            guard let count, count <= Plan.maxFloats else {
                let bytes = count.flatMap { c -> Int? in let (b, o) = c.multipliedReportingOverflow(by: 4); return o ? nil : b }
                let size = bytes.map(ResourceLimits.bytesText) ?? "more bytes than an Int counts"
                throw ExecutionError(node: step.nodes.last, "output \(shapes[step.output] ?? []) is too large to compute: "
                    + LimitExceeded(\.maxActivationBytes, of: .current, "an output of \(size)", needed: bytes).description)
            }
            let size = (count + 15) / 16 * 16  // 64-byte granules
            var offset = 0
            for block in live.sorted(by: { $0.offset < $1.offset }) {
                if block.offset - offset >= size { break }
                offset = max(offset, block.offset + block.size)
            }
            live.append((offset, size, step.output))
            rootOffsets[step.output] = offset
            top = max(top, offset + size)
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
        for step in steps {
            let input = shapes[step.inputs[0]] ?? []
            switch step.kernel {
            case let .conv(kernel):
                workspaceBytes = max(workspaceBytes, kernel.workspaceBytes(batch: input[0], inHeight: input[2], inWidth: input[3], threads: threads))
            case let .linear(kernel):
                workspaceBytes = max(workspaceBytes, kernel.workspaceBytes(batch: input[0], threads: threads))
            default: break
            }
        }
        guard workspaceBytes <= Plan.maxFloats * 4 else {
            throw ExecutionError(LimitExceeded(\.maxActivationBytes, of: .current,
                                               "a convolution workspace of \(ResourceLimits.bytesText(workspaceBytes)) for input \(inputShape)", needed: workspaceBytes).description)
        }
        self.workspaceBytes = workspaceBytes
        workspaceBuffer = HugePageBuffer(byteCount: workspaceBytes)
        workspace = workspaceBuffer.base
    }

    /// The most activation memory one plan may take, in floats: `ResourceLimits.maxActivationBytes`
    /// (a quarter of physical memory by default), so a small file declaring enormous shapes is
    /// refused instead of exhausting the machine.
    static var maxFloats: Int { ResourceLimits.current.maxActivationBytes / 4 }

}
