import XCTest
import ZooCore
import ZooOps
import ZooRuntime
import ZooKernels

/// Ops with an f32 kernel in ZooOps against their own reference `evaluate`, at random shapes
/// (broadcasting, 1-D operands, sizes around the loops' edges): the kernel runs through the executor
/// with f32 graph inputs, the reference on the same tensors.
final class KernelTwinTests: XCTestCase {
    /// A small deterministic generator (64-bit LCG), so a failure reproduces.
    struct Generator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state >> 33
        }
        mutating func int(_ range: ClosedRange<Int>) -> Int { range.lowerBound + Int(next() % UInt64(range.count)) }
        mutating func tensor(_ shape: [Int]) -> Tensor {
            Tensor(floats: (0..<shape.reduce(1, *)).map { _ in Float(Int(next() % 2001) - 1000) / 500 }, shape: shape)
        }
    }

    private func check(_ op: any Operator, _ inputs: [Tensor], _ label: String, rtol: Double = 1e-5) throws {
        let names = inputs.indices.map { "x\($0)" }
        let graph = try Graph(name: "g", inputs: zip(names, inputs).map { ValueInfo(name: $0, dtype: .f32, shape: $1.shape.map { .fixed($0) }) },
                              initializers: [], nodes: [Node("op", op, inputs: names)], outputs: ["op"])
        let kernel = try Executor(graph: graph).run(Dictionary(uniqueKeysWithValues: zip(names, inputs)))["op"]!
        let reference = try op.evaluate(inputs)[0]
        let report = ParityReport(name: label, value: kernel, reference: reference)
        XCTAssertEqual(kernel.shape, reference.shape, label)
        XCTAssertLessThanOrEqual(report.maxAbsDifference, rtol * max(report.maxAbsReference, 1), "\(label): max|Δ| \(report.maxAbsDifference)")
    }

    /// Gather with constant indices (scalar, vector or 2-D; negative ones too) on any axis: the copy
    /// kernel gives exactly the reference's values, and the step is the kernel, not the reference.
    func testGatherKernelMatchesItsReference() throws {
        var g = Generator(state: 29)
        for trial in 0..<80 {
            let rank = g.int(1...4)
            var shape = (0..<rank).map { _ in g.int(1...6) }
            if trial % 8 == 7 { shape[rank - 1] = g.int(3000...9000) }   // several copy ranges across threads
            let axis = g.int(0...(rank - 1)), size = shape[axis]
            let indexShape: [Int] = [[], [g.int(1...4)], [g.int(1...3), g.int(1...3)]][trial % 3]
            let indices = (0..<indexShape.reduce(1, *)).map { _ in g.int(-size...(size - 1)) }
            let x = g.tensor(shape), index = Tensor(int64s: indices, shape: indexShape)
            let op = Op.Gather(axis: trial % 4 == 0 ? axis - rank : axis)
            let graph = try Graph(name: "g", inputs: [ValueInfo(name: "x", dtype: .f32, shape: shape.map { .fixed($0) })],
                                  initializers: [("i", index)], nodes: [Node("op", op, inputs: ["x", "i"])], outputs: ["op"])
            let executor = try Executor(graph: graph)
            let kernel = try executor.run(x)["op"]!, reference = try op.evaluate([x, index])[0]
            let label = "x \(shape) axis \(op.axis) indices \(indexShape) \(indices)"
            XCTAssertEqual(kernel.shape, reference.shape, label)
            XCTAssertEqual(kernel.floats(), reference.floats(), label)
            XCTAssertEqual(try executor.profile(x, runs: 1).first?.kernel, "gather", label)
        }
    }

    /// Concat on any axis of 2–4 inputs, some large enough that the copy is cut into ranges across
    /// threads (ranges that start and end inside an input's block): exactly the reference's floats,
    /// and the step is the concat kernel.
    func testConcatKernelMatchesItsReference() throws {
        var g = Generator(state: 41)
        for trial in 0..<24 {
            let rank = g.int(1...4), axis = g.int(0...(rank - 1)), count = g.int(2...4)
            var shape = (0..<rank).map { _ in g.int(1...5) }
            if trial % 3 == 0 { shape[rank - 1] = g.int(3000...9000) }   // large: several copy ranges
            let inputs = (0..<count).map { _ -> Tensor in
                var own = shape
                own[axis] = g.int(1...4) * (trial % 3 == 0 && axis == rank - 1 ? 1000 : 1)
                return g.tensor(own)
            }
            let op = Op.Concat(axis: trial % 4 == 1 ? axis - rank : axis)
            let names = inputs.indices.map { "x\($0)" }
            let graph = try Graph(name: "g", inputs: zip(names, inputs).map { ValueInfo(name: $0, dtype: .f32, shape: $1.shape.map { .fixed($0) }) },
                                  initializers: [], nodes: [Node("op", op, inputs: names)], outputs: ["op"])
            let executor = try Executor(graph: graph, options: .init(threads: 3))
            let feeds = Dictionary(uniqueKeysWithValues: zip(names, inputs))
            let kernel = try executor.run(feeds)["op"]!, reference = try op.evaluate(inputs)[0]
            let label = "\(inputs.map(\.shape)) axis \(op.axis)"
            XCTAssertEqual(kernel.shape, reference.shape, label)
            XCTAssertEqual(kernel.floats(), reference.floats(), label)
            XCTAssertEqual(try executor.profile(feeds, runs: 1).first?.kernel, "concat", label)
        }
    }

    /// LayerNormalization with constant scale (and bias) over the normalized tail: every kernel set
    /// gives the reference's values within 1 ulp (the same Double arithmetic, its sums in 8 lanes),
    /// at random shapes and axes — rows shorter and longer than the 8 lanes, with and without a tail.
    func testLayerNormKernelMatchesItsReference() throws {
        var g = Generator(state: 31)
        for trial in 0..<40 {
            let rank = g.int(1...4)
            var shape = (0..<rank).map { _ in g.int(1...9) }
            if trial % 4 == 3 { shape[rank - 1] = g.int(16...77) }
            let axis = g.int(0...(rank - 1)), tail = Array(shape[axis...])
            let x = g.tensor(shape), scale = g.tensor(tail), bias = g.tensor(tail)
            let withBias = trial % 2 == 0
            let op = Op.LayerNormalization(axis: trial % 3 == 0 ? axis - rank : axis, epsilon: 1e-5)
            let graph = try Graph(name: "g", inputs: [ValueInfo(name: "x", dtype: .f32, shape: shape.map { .fixed($0) })],
                                  initializers: [("scale", scale)] + (withBias ? [("bias", bias)] : []),
                                  nodes: [Node("op", op, inputs: ["x", "scale"] + (withBias ? ["bias"] : []))], outputs: ["op"])
            let reference = try op.evaluate([x, scale] + (withBias ? [bias] : []))[0].floats()
            for set in KernelSet.supported {
                let executor = try Executor(graph: graph, options: .init(threads: 2, kernels: set))
                let kernel = try executor.run(x)["op"]!.floats()
                let label = "\(set.rawValue): x \(shape) axis \(op.axis) bias \(withBias)"
                XCTAssertEqual(kernel.count, reference.count, label)
                for (k, r) in zip(kernel, reference) where !(abs(k - r) <= r.ulp) {
                    XCTFail("\(label): \(k) vs the reference's \(r), more than 1 ulp apart")
                    break
                }
                XCTAssertEqual(try executor.profile(x, runs: 1).first?.kernel, "layernorm", label)
            }
        }
    }

    /// Depthwise convolutions (3×3, 5×5, 7×7, stride 1 and 2, padding, dilation, with and without bias
    /// and a fused ReLU) run through the direct kernel of every kernel set and match the Conv reference.
    func testDepthwiseConvKernelMatchesItsReference() throws {
        var g = Generator(state: 41)
        for trial in 0..<48 {
            // 3×3, 5×5, 7×7 and 4×4 kernels; small planes (the lanes layout) and planes up to 90
            // columns wide (the planes layout, whole 64-output blocks and a partial last one).
            let channels = g.int(1...9), k = [3, 5, 7, 4][trial % 4], stride = 1 + trial % 2, dilation = trial % 5 == 0 ? 2 : 1
            let wide = trial % 6 == 3 ? g.int(60...90) : g.int(1...13)
            let pad = g.int(0...(k / 2) * dilation), h = g.int(1...13) + (k - 1) * dilation, w = wide + (k - 1) * dilation
            let withBias = trial % 8 < 4, withRelu = trial % 3 == 1
            let op = Op.Conv(kernel: [k, k], strides: [stride, stride], dilations: [dilation, dilation], pads: [pad, pad, pad, pad], groups: channels)
            let x = g.tensor([2, channels, h, w]), weight = g.tensor([channels, 1, k, k]), bias = g.tensor([channels])
            var nodes = [Node("conv", op, inputs: ["x", "w"] + (withBias ? ["b"] : []))]
            if withRelu { nodes.append(Node("relu", Op.Unary.relu, inputs: ["conv"])) }
            let graph = try Graph(name: "g", inputs: [ValueInfo(name: "x", dtype: .f32, shape: [2, channels, h, w].map { .fixed($0) })],
                                  initializers: [("w", weight)] + (withBias ? [("b", bias)] : []), nodes: nodes, outputs: [nodes.last!.output])
            var reference = try op.evaluate([x, weight] + (withBias ? [bias] : []))[0]
            if withRelu { reference = try Op.Unary.relu.evaluate([reference])[0] }
            for set in KernelSet.supported {
                let executor = try Executor(graph: graph, options: .init(threads: 3, kernels: set))
                let kernel = try executor.run(x)[nodes.last!.output]!
                let label = "\(set.rawValue): C \(channels) \(h)×\(w) k \(k) stride \(stride) dilation \(dilation) pad \(pad) bias \(withBias) relu \(withRelu)"
                let report = ParityReport(name: label, value: kernel, reference: reference)
                XCTAssertEqual(kernel.shape, reference.shape, label)
                XCTAssertLessThanOrEqual(report.maxAbsDifference, 1e-5 * max(report.maxAbsReference, 1), label)
                let step = try executor.profile(x, runs: 1)[0]
                XCTAssertTrue(step.kernel.contains("depthwise") && step.nodes.count == (withRelu ? 2 : 1), "\(label): \(step.kernel)")
            }
        }
    }

    /// A convolution (1×1, Winograd 3×3, strided, grouped, depthwise 3×3 / 5×5) or a Linear followed
    /// by a BatchNormalization and/or an activation (ReLU, ReLU6, Clip, Sigmoid, SiLU as Sigmoid + Mul,
    /// HardSwish, HardSigmoid, GELU) runs as one step — the BatchNormalization folded into the
    /// weights, the activation in the epilogue — and matches the chain of reference ops; the same
    /// for any thread count. When another node also reads the convolution's output, nothing is fused.
    func testFusedConvolutionChainsMatchTheirReference() throws {
        var g = Generator(state: 47)
        let activations: [[any Operator]] = [[], [Op.Unary.relu], [Op.Unary(.clip(min: 0, max: 6))], [Op.Unary(.clip(min: -0.5, max: 0.75))],
                                             [Op.Unary(.sigmoid)], [Op.Unary(.sigmoid), Op.Binary(.mul)], [Op.Unary(.hardSwish)],
                                             [Op.Unary(.hardSigmoid(alpha: 1 / 6, beta: 0.5))], [Op.Unary(.gelu(tanh: false))]]
        for trial in 0..<72 {
            let kind = trial % 8, withBatchNorm = trial % 3 != 2, activation = activations[trial % activations.count]
            let shared = trial % 17 == 5  // the first node's output is a graph output too
            let channels = kind == 1 ? 16 + g.int(0...8) : g.int(2...12), out = g.int(1...20)
            let (h, w) = (g.int(4...15), g.int(4...15))
            var shape = [2, channels, h, w], first: Node, initializers: [(String, Tensor)]
            var reference: (Tensor) throws -> Tensor
            let label: String
            if kind == 7 {
                // Linear: Gemm(transB) on [batch, features].
                shape = [g.int(1...9), channels * 4]
                let weight = g.tensor([out, channels * 4]), bias = g.tensor([out])
                first = Node("first", Op.Gemm.linear, inputs: ["x", "w", "b"])
                initializers = [("w", weight), ("b", bias)]
                reference = { try Op.Gemm.linear.evaluate([$0, weight, bias])[0] }
                label = "linear \(shape) → \(out)"
            } else {
                let (k, stride, groups, outChannels): (Int, Int, Int, Int) = switch kind {
                case 0: (1, 1, 1, out)                 // 1×1: im2col
                case 1: (3, 1, 1, out)                 // Winograd
                case 2: (3, 2, 1, out)                 // implicit GEMM
                case 3: (3, 1, channels, channels)     // depthwise
                case 4: (3, 2, channels, channels)     // depthwise, strided
                case 5: (5, 1 + trial % 2, channels, channels)
                default: (3, 1, 2, 2 * out)            // grouped
                }
                let inChannels = kind == 6 ? 2 * channels : channels
                shape = [2, inChannels, h, w]
                let pad = k / 2
                let op = Op.Conv(kernel: [k, k], strides: [stride, stride], dilations: [1, 1], pads: [pad, pad, pad, pad], groups: groups)
                let weight = g.tensor([outChannels, inChannels / groups, k, k]), bias = g.tensor([outChannels])
                let withBias = trial % 2 == 0
                first = Node("first", op, inputs: ["x", "w"] + (withBias ? ["b"] : []))
                initializers = [("w", weight)] + (withBias ? [("b", bias)] : [])
                reference = { try op.evaluate([$0, weight] + (withBias ? [bias] : []))[0] }
                label = "conv \(inChannels)→\(outChannels) \(k)×\(k)/\(stride) g\(groups) \(h)×\(w)"
            }
            var nodes = [first], last = "first"
            let features = kind == 7 ? out : (kind == 3 || kind == 4 || kind == 5 ? channels : (kind == 6 ? 2 * out : out))
            let batchNormed = withBatchNorm && kind != 7
            if batchNormed {
                let scale = g.tensor([features]), shift = g.tensor([features]), mean = g.tensor([features])
                let variance = Tensor(floats: g.tensor([features]).floats().map { abs($0) + 0.25 }, shape: [features])
                initializers += [("scale", scale), ("shift", shift), ("mean", mean), ("variance", variance)]
                let bn = Op.BatchNormalization(epsilon: 1e-5)
                nodes.append(Node("bn", bn, inputs: [last, "scale", "shift", "mean", "variance"]))
                let previous = reference
                reference = { try bn.evaluate([try previous($0), scale, shift, mean, variance])[0] }
                last = "bn"
            }
            // A residual Add of a second input (ResNet's shortcut), on either side.
            let withResidual = trial % 5 == 4
            let x = g.tensor(shape)
            let residualShape = try reference(x).shape
            let r = g.tensor(residualShape)
            if withResidual {
                nodes.append(Node("add", Op.Binary(.add), inputs: trial % 2 == 0 ? [last, "r"] : ["r", last]))
                let previous = reference
                reference = { try Op.Binary(.add).evaluate([try previous($0), r])[0] }
                last = "add"
            }
            if activation.count == 2 {
                nodes += [Node("sigmoid", activation[0], inputs: [last]), Node("silu", activation[1], inputs: [last, "sigmoid"])]
                let previous = reference
                reference = { let y = try previous($0); return try Op.Binary(.mul).evaluate([y, try Op.Unary(.sigmoid).evaluate([y])[0]])[0] }
                last = "silu"
            } else if let op = activation.first {
                nodes.append(Node("act", op, inputs: [last]))
                let previous = reference
                reference = { try op.evaluate([try previous($0)])[0] }
                last = "act"
            }
            let isShared = shared && nodes.count > 1
            let outputs = isShared ? ["first", last] : [last]
            let inputs = [ValueInfo(name: "x", dtype: .f32, shape: shape.map { .fixed($0) })]
                + (withResidual ? [ValueInfo(name: "r", dtype: .f32, shape: residualShape.map { .fixed($0) })] : [])
            let graph = try Graph(name: "g", inputs: inputs, initializers: initializers, nodes: nodes, outputs: outputs)
            let feed = withResidual ? ["x": x, "r": r] : ["x": x]
            let names = nodes.map(\.name).joined(separator: "+")
            let expected = try reference(x)
            // The steps: the kernel takes a prefix of BatchNormalization, residual Add (not a depthwise
            // convolution or Linear), activation; what it leaves runs on its own. Shared: the
            // convolution stands alone, a BatchNormalization takes the activation when no Add comes between.
            let residualTaken = withResidual && kind < 3 || withResidual && kind == 6
            let activationTaken = !withResidual || residualTaken
            var expectedSteps = 1 + (withResidual && !residualTaken ? 1 : 0) + (activationTaken ? 0 : activation.count)
            if isShared {
                expectedSteps = batchNormed ? 2 + (withResidual ? 1 + activation.count : 0) : nodes.count
            }
            for set in KernelSet.supported {
                let executor = try Executor(graph: graph, options: .init(threads: 3, kernels: set))
                let value = try executor.run(feed)[last]!
                let report = ParityReport(name: label, value: value, reference: expected)
                let context = "\(set.rawValue): \(label) \(names)"
                XCTAssertEqual(value.shape, expected.shape, context)
                XCTAssertLessThanOrEqual(report.maxAbsDifference, 5e-5 * max(report.maxAbsReference, 1), "\(context): max|Δ| \(report.maxAbsDifference)")
                let alone = try Executor(graph: graph, options: .init(threads: 1, kernels: set)).run(feed)[last]!
                XCTAssertEqual(alone.floats(), value.floats(), "\(context): 1 thread vs 3")
                let steps = try executor.profile(feed, runs: 1)
                XCTAssertEqual(steps.count, expectedSteps, "\(context): \(steps.map(\.kernel))")
            }
        }
    }

    /// A Linear over tokens (ModelBuilder.tokenLinear: rows Reshape, Gemm, the shape back, Reshape)
    /// followed by an activation (ViT's and ConvNeXt's GELU): the Gemm's step takes the activation
    /// across the Reshape, whose step then produces the activation's output — the reference chain's
    /// values, the same as without fusion; not when the Reshape's output is read elsewhere too.
    func testActivationTakenAcrossATokenReshape() throws {
        var g = Generator(state: 97)
        let functions: [Op.Unary.Function] = [.gelu(tanh: false), .relu, .sigmoid, .clip(min: 0, max: 6)]
        for trial in 0..<8 {
            let function = functions[trial % functions.count], shared = trial >= 4
            let (inF, outF) = (g.int(3...40), g.int(1...40)), shape = [2, g.int(1...9), g.int(1...9), inF]
            let weight = g.tensor([outF, inF]), bias = g.tensor([outF])
            let act = Op.Unary(function)
            let nodes = [
                Node("rows", Op.Reshape(shape: [-1, inF]), inputs: ["x"]),
                Node("gemm", Op.Gemm.linear, inputs: ["rows", "w", "b"]),
                Node("shape", Op.Shape(start: 0, end: -1), inputs: ["x"]),
                Node("out_shape", Op.Concat(axis: 0), inputs: ["shape", "features"]),
                Node("out", Op.Reshape(shape: nil), inputs: ["gemm", "out_shape"]),
                Node("act", act, inputs: ["out"]),
            ]
            let graph = try Graph(name: "g", inputs: [ValueInfo(name: "x", dtype: .f32, shape: shape.map { .fixed($0) })],
                                  initializers: [("w", weight), ("b", bias), ("features", Tensor(int64s: [outF], shape: [1]))],
                                  nodes: nodes, outputs: shared ? ["out", "act"] : ["act"])
            let x = g.tensor(shape)
            let linear = try Op.Gemm.linear.evaluate([try Op.Reshape(shape: [-1, inF]).evaluate([x])[0], weight, bias])[0]
            let expected = try act.evaluate([linear])[0].floats()
            for set in KernelSet.supported {
                let label = "\(set.rawValue): \(shape) → \(outF) \(function) shared \(shared)"
                let fused = try Executor(graph: graph, options: .init(threads: 2, kernels: set))
                let plain = try Executor(graph: graph, options: .init(threads: 2, fuse: false, kernels: set))
                let value = try fused.run(x)
                XCTAssertEqual(value["act"]?.shape, shape.dropLast() + [outF], label)
                let report = ParityReport(name: label, value: value["act"]!, reference: Tensor(floats: expected, shape: shape.dropLast() + [outF]))
                XCTAssertLessThanOrEqual(report.maxAbsDifference, 1e-5 * max(report.maxAbsReference, 1), label)
                XCTAssertEqual(value["act"]?.floats(), try plain.run(x)["act"]?.floats(), "\(label): fused vs not")
                if shared {
                    let own = ParityReport(name: label, value: value["out"]!, reference: Tensor(floats: linear.floats(), shape: shape.dropLast() + [outF]))
                    XCTAssertLessThanOrEqual(own.maxAbsDifference, 1e-5 * max(own.maxAbsReference, 1), "\(label): the Reshape's own output")
                    let plainOwn = ParityReport(name: label, value: try plain.run(x)["out"]!, reference: Tensor(floats: linear.floats(), shape: shape.dropLast() + [outF]))
                    XCTAssertLessThanOrEqual(plainOwn.maxAbsDifference, 1e-5 * max(plainOwn.maxAbsReference, 1), "\(label): the Reshape's own output, no fusion")
                }
                let steps = try fused.profile(x, runs: 1).map { $0.nodes }.filter { $0.contains("gemm") || $0.contains("act") }
                XCTAssertEqual(steps, shared ? [["gemm"], ["act"]] : [["gemm"], ["out", "act"]], label)
            }
        }
    }

    /// A BatchNormalization followed by an activation (DenseNet's norm → relu) runs as one step and
    /// matches the two reference ops, in every kernel set.
    func testBatchNormWithActivationMatchesItsReference() throws {
        var g = Generator(state: 53)
        let activations: [Op.Unary.Function] = [.relu, .clip(min: 0, max: 6), .sigmoid, .hardSwish, .gelu(tanh: false)]
        for (trial, function) in (activations + activations).enumerated() {
            let shape = [g.int(1...3), g.int(1...12), g.int(1...9), g.int(1...9)], c = shape[1]
            let scale = g.tensor([c]), shift = g.tensor([c]), mean = g.tensor([c])
            let variance = Tensor(floats: g.tensor([c]).floats().map { abs($0) + 0.25 }, shape: [c])
            let bn = Op.BatchNormalization(epsilon: 1e-5), act = Op.Unary(function)
            let graph = try Graph(name: "g", inputs: [ValueInfo(name: "x", dtype: .f32, shape: shape.map { .fixed($0) })],
                                  initializers: [("scale", scale), ("shift", shift), ("mean", mean), ("variance", variance)],
                                  nodes: [Node("bn", bn, inputs: ["x", "scale", "shift", "mean", "variance"]), Node("act", act, inputs: ["bn"])],
                                  outputs: ["act"])
            let x = g.tensor(shape)
            let expected = try act.evaluate([try bn.evaluate([x, scale, shift, mean, variance])[0]])[0]
            for set in KernelSet.supported {
                let executor = try Executor(graph: graph, options: .init(threads: 1 + trial % 3, kernels: set))
                let report = ParityReport(name: "bn", value: try executor.run(x)["act"]!, reference: expected)
                let label = "\(set.rawValue): \(shape) \(function)"
                XCTAssertLessThanOrEqual(report.maxAbsDifference, 1e-5 * max(report.maxAbsReference, 1), label)
                XCTAssertEqual(try executor.profile(x, runs: 1).map(\.nodes), [["bn", "act"]], label)
            }
        }
    }

    /// Split (every output a kernel-made copy, several outputs of one step in the arena) gives
    /// exactly the reference's parts, at random shapes, axes and sizes (empty parts too), with a
    /// consumer reading each part after the split.
    func testSplitKernelMatchesItsReference() throws {
        var g = Generator(state: 59)
        for trial in 0..<40 {
            let rank = g.int(1...4)
            let shape = (0..<rank).map { _ in g.int(1...7) }
            let axis = g.int(0...(rank - 1))
            var sizes: [Int] = [], left = shape[axis]
            while left > 0 && sizes.count < 3 {
                let size = g.int(0...left)
                sizes.append(size)
                left -= size
            }
            sizes.append(left)
            let op = Op.Split(axis: trial % 2 == 0 ? axis : axis - rank, sizes: sizes)
            let parts = sizes.indices.map { "part\($0)" }
            let nodes = [Node("split", op, inputs: ["x"], outputs: parts)] + parts.map { Node("neg_" + $0, Op.Unary(.neg), inputs: [$0]) }
            let graph = try Graph(name: "g", inputs: [ValueInfo(name: "x", dtype: .f32, shape: shape.map { .fixed($0) })], initializers: [],
                                  nodes: nodes, outputs: parts + parts.map { "neg_" + $0 })
            let x = g.tensor(shape)
            let executor = try Executor(graph: graph, options: .init(threads: 1 + trial % 3))
            let outputs = try executor.run(x)
            let reference = try op.evaluate([x])
            let label = "x \(shape) axis \(op.axis) sizes \(sizes)"
            for (name, expected) in zip(parts, reference) {
                XCTAssertEqual(outputs[name]?.shape, expected.shape, label)
                XCTAssertEqual(outputs[name]?.floats(), expected.floats(), "\(label): \(name)")
                XCTAssertEqual(outputs["neg_" + name]?.floats(), expected.floats().map { -$0 }, "\(label): neg_\(name)")
            }
            XCTAssertEqual(try executor.profile(x, runs: 1).first?.kernel, "split", label)
        }
    }

    /// One-input functions over tensors larger than a task's chunk (so several threads share them):
    /// the map kernel gives the reference's values exactly — clip in f32 too, for bounds f32 cannot
    /// hold and NaN —, and within 4 ulp for sigmoid and hardSwish; GELU, which it computes in f32 as
    /// PyTorch does (a rational erf), within 2.5·10⁻⁷·|x| + 2 ulp.
    func testUnaryKernelsMatchTheirReference() throws {
        var g = Generator(state: 43)
        let functions: [Op.Unary.Function] = [.clip(min: 0, max: 6), .clip(min: 0.1, max: 0.7), .clip(min: -Double.infinity, max: 1.3),
                                              .sigmoid, .hardSwish, .gelu(tanh: false), .tanh]
        for function in functions {
            let count = 40_000 + g.int(0...999)
            var values = g.tensor([count]).floats()
            values[7] = .nan
            values[8] = .infinity
            let x = Tensor(floats: values, shape: [count]), op = Op.Unary(function)
            let graph = try Graph(name: "g", inputs: [ValueInfo(name: "x", dtype: .f32, shape: [.fixed(count)])], initializers: [],
                                  nodes: [Node("op", op, inputs: ["x"])], outputs: ["op"])
            let kernel = try Executor(graph: graph, options: .init(threads: 3)).run(x)["op"]!.floats()
            let reference = try op.evaluate([x])[0].floats()
            let ulps: Float = switch function {
            case .sigmoid, .hardSwish: 4
            case .gelu: 2
            default: 0
            }
            for (v, (k, r)) in zip(values, zip(kernel, reference)) where !(k == r || (k.isNaN && r.isNaN)) {
                let relative: Float = function == .gelu(tanh: false) ? 2.5e-7 * abs(v) : 0
                XCTAssertLessThanOrEqual(abs(k - r), relative + ulps * r.ulp + Float.leastNonzeroMagnitude, "\(function): \(k) vs \(r)")
            }
        }
    }

    func testMatMulKernelMatchesItsReference() throws {
        var g = Generator(state: 12)
        for trial in 0..<80 {
            // Small, then across several 6-row and 16-column panels and k blocks of 256.
            let large = trial >= 60
            let m = large ? g.int(5...40) : g.int(1...9), k = large ? g.int(200...600) : g.int(1...17)
            let n = large ? g.int(14...70) : g.int(1...9)
            var a = [m, k], b = [k, n]
            switch trial % 5 {
            case 0: break
            case 1: a = [g.int(1...3)] + a; b = [a[0]] + b                  // batched
            case 2: a = [g.int(2...3), 1] + a; b = [g.int(1...2)] + b         // broadcast batch dims
            case 3: a = [k]                                                 // 1-D A
            default: b = [k]                                                // 1-D B
            }
            try check(Op.MatMul(), [g.tensor(a), g.tensor(b)], "MatMul \(a) × \(b)")
        }
    }

    /// The batched MatMul splits its matrices and their rows over the threads: the same bits for any
    /// thread count.
    func testMatMulIsTheSameForAnyThreadCount() throws {
        var g = Generator(state: 13)
        for (a, b) in [([1, 12, 50, 64], [1, 12, 64, 50]), ([37, 19], [19, 23]), ([3, 1, 9, 5], [2, 5, 7]), ([40, 33, 300], [300, 45])] {
            let x = g.tensor(a), y = g.tensor(b)
            let graph = try Graph(name: "g", inputs: [ValueInfo(name: "a", dtype: .f32, shape: a.map { .fixed($0) }),
                                                      ValueInfo(name: "b", dtype: .f32, shape: b.map { .fixed($0) })],
                                  initializers: [], nodes: [Node("op", Op.MatMul(), inputs: ["a", "b"])], outputs: ["op"])
            let results = try [1, 2, 3, 5].map { threads in
                try Executor(graph: graph, options: .init(threads: threads)).run(["a": x, "b": y])["op"]!.floats()
            }
            for result in results.dropFirst() { XCTAssertEqual(result, results[0], "\(a) × \(b)") }
        }
    }

    func testElementwiseKernelsMatchTheirReference() throws {
        var g = Generator(state: 7)
        for function in [Op.Binary.Function.sub, .mul, .div, .pow, .max, .min, .prelu] {
            for _ in 0..<12 {
                let shape = (0..<g.int(1...4)).map { _ in g.int(1...5) }
                // The second operand broadcast: some dims 1, or a suffix of the shape.
                var other = shape.map { g.int(0...2) == 0 ? 1 : $0 }
                if g.int(0...2) == 0 { other = Array(other.suffix(g.int(1...shape.count))) }
                let x = g.tensor(shape), y = function == .pow ? Tensor(floats: g.tensor(other).floats().map { abs($0) }, shape: other) : g.tensor(other)
                let base = function == .pow ? Tensor(floats: x.floats().map { abs($0) + 0.5 }, shape: shape) : x
                try check(Op.Binary(function), [base, y], "\(function) \(shape) ∘ \(other)")
            }
        }
        // One value per block of trailing elements (squeeze-excite's [N, C, 1, 1] scale), on either side:
        // the block kernel gives exactly the reference's values.
        for (trial, function) in [Op.Binary.Function.add, .sub, .mul, .div].flatMap({ [$0, $0, $0] }).enumerated() {
            let shape = [g.int(1...3), g.int(1...40), g.int(1...9), g.int(2...9)]
            let small = [[shape[0], shape[1], 1, 1], [shape[1], 1, 1], [shape[0], shape[1], shape[2], 1]][trial % 3]
            let full = g.tensor(shape), scale = g.tensor(small)
            let inputs = trial % 2 == 0 ? [full, scale] : [scale, full]
            try check(Op.Binary(function), inputs, "\(function) \(inputs[0].shape) ∘ \(inputs[1].shape)", rtol: 0)
        }
        // Two operands of the output's shape (residual connections), large enough for several chunks
        // across threads: exactly the reference's values.
        for function in [Op.Binary.Function.add, .sub, .mul, .div] {
            let shape = [g.int(1...2), g.int(3...5), 97, g.int(60...90)]
            try check(Op.Binary(function), [g.tensor(shape), g.tensor(shape)], "\(function) \(shape) same shape", rtol: 0)
        }
        for function in [Op.Unary.Function.sigmoid, .tanh, .erf, .hardSwish, .hardSigmoid(alpha: 0.2, beta: 0.5), .gelu(tanh: false),
                         .clip(min: -1, max: 1), .leakyRelu(alpha: 0.1)] {
            try check(Op.Unary(function), [g.tensor([g.int(1...4), g.int(1...40)])], "\(function)")
        }
        for perm in [[1, 0, 2], [2, 0, 1], [0, 2, 1]] {
            try check(Op.Transpose(perm: perm), [g.tensor([g.int(1...4), g.int(1...5), g.int(1...6)])], "Transpose \(perm)")
        }
        // Batches of 2-D transposes (NCHW ⇄ NHWC, ViT's head splits) across 32 × 32 blocks, and others.
        for perm in [[0, 2, 3, 1], [0, 3, 1, 2], [1, 0], [2, 3, 0, 1], [0, 2, 1, 3], [3, 2, 1, 0], [1, 2, 0]] {
            let shape = perm.map { _ in g.int(1...3) == 1 ? g.int(1...3) : g.int(20...45) }
            try check(Op.Transpose(perm: perm), [g.tensor(shape)], "Transpose \(perm) of \(shape)", rtol: 0)
        }
        // ShuffleNet's channel shuffle ([N, groups, C/groups, H·W] → [N, C/groups, groups, H·W]):
        // whole planes of at least 64 floats, copied as blocks.
        for _ in 0..<3 {
            let shape = [g.int(1...2), g.int(2...3), g.int(3...40), g.int(64...200)]
            try check(Op.Transpose(perm: [0, 2, 1, 3]), [g.tensor(shape)], "channel shuffle of \(shape)", rtol: 0)
        }
    }
}
