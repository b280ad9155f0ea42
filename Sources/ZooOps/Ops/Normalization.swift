/// Normalizations: BatchNormalization (inference), LRN, LayerNormalization, Softmax and LogSoftmax.
#if canImport(Glibc)
import Glibc
#endif
import ZooCore
import ZooKernels

extension Op {
    /// Inference batch normalization: inputs X [N, C, …], scale, B, mean, var (ONNX order), each [C].
    public struct BatchNormalization: Operator, Equatable {
        public var epsilon: Float
        public init(epsilon: Float) { self.epsilon = epsilon }
        public var name: String { "BatchNormalization" }
        public var inputArity: ClosedRange<Int> { 5...5 }
        public var summary: String { "epsilon=\(epsilon)" }

        public func infer(_ inputs: [ValueInfo]) throws(OpFailure) -> [ValueInfo] {
            try DTypeRules.floating(inputs)
            let x = inputs[0].shape
            guard x.count >= 2 else { throw OpFailure("input must be [N, C, …]") }
            let channels = try ShapeRules.fixed(x[1], "channels")
            for parameter in inputs[1...] { try ShapeRules.vector(parameter, channels) }
            return [ValueInfo(dtype: .f32, shape: x)]
        }

        public func evaluate(_ inputs: [Tensor]) throws(OpFailure) -> [Tensor] {
            let x = inputs[0].shape
            return [Tensor.f32(inputs, shape: x) { p, y in
                ReferenceKernels.batchNorm(input: p[0], output: y, batch: x[0], channels: x[1], spatial: x[2...].product,
                                           scale: p[1], shift: p[2], mean: p[3], variance: p[4], epsilon: epsilon, pool: Op.referencePool)
            }]
        }

        public func lower(_ context: LoweringContext) throws(OpFailure) -> Lowering? {
            let activation = context.offer.activationAlone
            return Lowering(BatchNormStep(epsilon: epsilon, activation: activation), inputs: context.node.inputs,
                            fusedActivation: activation != nil)
        }

        public func exportONNX(_ node: Node, to onnx: inout ONNXExporter) throws(OpFailure) {
            onnx.emit("BatchNormalization", [("epsilon", .float(epsilon))])
        }

        public static var onnxImporters: [ONNXImporter] {
            [ONNXImporter("BatchNormalization") { (b: inout ONNXGraphBuilder, n: ONNXNode) throws(ONNXImportError) in
                var allowed: Set<String> = ["epsilon", "momentum"]
                if b.opset < 9 { allowed.insert("spatial") }
                if b.opset < 7 { allowed.insert("is_test") }
                if b.opset < 6 { allowed.insert("consumed_inputs") }  // BatchNormalization-1's legacy in-place hint
                if b.opset >= 14 { allowed.insert("training_mode") }
                try n.allow(allowed)
                try n.requireInputs(5...5)
                // BatchNormalization-1/6 normalize with the batch's own statistics unless is_test is nonzero (default 0).
                if b.opset < 7, try n.int("is_test", default: 0) == 0 {
                    throw n.error("is_test is 0 (training mode, the default before opset 7, normalizes with the batch's statistics); zoo runs inference only, which needs is_test=1")
                }
                if try n.int("spatial", default: 1) != 1 { throw n.error("spatial=0 (per-activation statistics) is not supported") }
                if try n.int("training_mode", default: 0) != 0 { throw n.error("training_mode=1 is not supported; zoo runs inference only") }
                try b.emit(n, BatchNormalization(epsilon: try n.float("epsilon", default: 1e-5)), Array(n.inputs.prefix(5)))
            }]
        }
    }

    /// Local response normalization across channels: y = x / (bias + alpha/size · Σ x²)^beta.
    public struct LRN: Operator, Equatable {
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

        public var name: String { "LRN" }
        public var summary: String { "size=\(size) alpha=\(alpha) beta=\(beta) bias=\(bias) (\(window.rawValue) window)" }

        public func infer(_ inputs: [ValueInfo]) throws(OpFailure) -> [ValueInfo] {
            try DTypeRules.floating(inputs)
            let x = inputs[0].shape
            guard x.count >= 3 else { throw OpFailure("input must be [N, C, …], is rank \(x.count)") }
            guard size >= 1 else { throw OpFailure("size \(size) must be positive") }
            return [ValueInfo(dtype: .f32, shape: x)]
        }

        public func evaluate(_ inputs: [Tensor]) throws(OpFailure) -> [Tensor] {
            let x = inputs[0].shape
            let (low, high) = offsets
            return [Tensor.f32(inputs, shape: x) { p, y in
                ReferenceKernels.lrn(input: p[0], output: y, batch: x[0], channels: x[1], spatial: x[2...].product, size: size,
                                     low: low, high: high, alpha: alpha, beta: beta, bias: bias, pool: Op.referencePool)
            }]
        }

        public func lower(_ context: LoweringContext) throws(OpFailure) -> Lowering? {
            Lowering(LRNStep(lrn: self), inputs: [context.node.inputs[0]])
        }

        /// PyTorch's window is ONNX's for odd sizes; for even sizes they differ (pytorch#75722) and
        /// the node is refused.
        public func exportONNX(_ node: Node, to onnx: inout ONNXExporter) throws(OpFailure) {
            if window == .pytorch && size % 2 == 0 {
                let torch = offsets
                let onnxWindow = LRN(size: size, window: .onnx).offsets
                throw OpFailure("size \(size) with PyTorch's channel window (c\(torch.low)…c+\(torch.high)) cannot be written "
                    + "as ONNX LRN, whose even windows are c\(onnxWindow.low)…c+\(onnxWindow.high) (pytorch#75722)")
            }
            onnx.emit("LRN", [("size", .int(size)), ("alpha", .float(alpha)), ("beta", .float(beta)), ("bias", .float(bias))])
        }

        public static var onnxImporters: [ONNXImporter] {
            [ONNXImporter("LRN") { (b: inout ONNXGraphBuilder, n: ONNXNode) throws(ONNXImportError) in
                try n.allow(["size", "alpha", "beta", "bias"])
                try n.requireInputs(1...1)
                guard let size = try n.int("size") else { throw n.error("attribute 'size' is required") }
                let lrn = LRN(size: size, alpha: try n.float("alpha", default: 1e-4), beta: try n.float("beta", default: 0.75),
                              bias: try n.float("bias", default: 1), window: .onnx)
                try b.emit(n, lrn, [n.inputs[0]])
            }]
        }
    }

    /// Softmax (or, with `log`, LogSoftmax) along `axis`: exp(x − max) / Σ exp(x − max).
    public struct Softmax: Operator, Equatable {
        public var axis: Int
        public var log: Bool
        public init(axis: Int, log: Bool = false) {
            self.axis = axis
            self.log = log
        }
        public var name: String { log ? "LogSoftmax" : "Softmax" }
        public var summary: String { "axis=\(axis)" }

        public func infer(_ inputs: [ValueInfo]) throws(OpFailure) -> [ValueInfo] {
            try DTypeRules.floating(inputs)
            let x = inputs[0].shape
            guard (-x.count..<x.count).contains(axis) else { throw OpFailure("axis \(axis) out of range for rank \(x.count)") }
            return [ValueInfo(dtype: inputs[0].dtype, shape: x)]
        }

        public func evaluate(_ inputs: [Tensor]) throws(OpFailure) -> [Tensor] {
            let input = inputs[0], x = input.shape
            let a = axis < 0 ? axis + x.count : axis
            let length = x[a], inner = x[(a + 1)...].product, outer = x[..<a].product
            let v = input.doubles()
            var y = [Double](repeating: 0, count: v.count)
            for o in 0..<outer {
                for i in 0..<inner {
                    let base = o * length * inner + i
                    var m = -Double.infinity
                    for k in 0..<length { m = v[base + k * inner].isNaN || m.isNaN ? .nan : Swift.max(m, v[base + k * inner]) }
                    var sum = 0.0
                    for k in 0..<length { sum += Glibc.exp(v[base + k * inner] - m) }
                    for k in 0..<length {
                        let d = v[base + k * inner] - m
                        y[base + k * inner] = log ? d - Glibc.log(sum) : Glibc.exp(d) / sum
                    }
                }
            }
            return [Tensor(dtype: input.dtype, shape: x, doubles: y)]
        }

        public func lower(_ context: LoweringContext) throws(OpFailure) -> Lowering? {
            log ? nil : Lowering(SoftmaxStep(axis: axis), inputs: [context.node.inputs[0]])
        }

        public func exportONNX(_ node: Node, to onnx: inout ONNXExporter) throws(OpFailure) {
            guard onnx.opset >= 13 || axis == -1 || axis == (onnx.values[node.inputs[0]]?.shape.count ?? 0) - 1 else {
                throw OpFailure("axis \(axis) other than the last needs opset 13 (earlier \(name) flattens to 2-D)")
            }
            onnx.emit(name, [("axis", .int(axis))])
        }

        /// Softmax from opset 13 normalizes along `axis`; before, it coerces the input to 2-D at `axis`
        /// and normalizes each row. Those agree when `axis` is the last axis; otherwise the old form is
        /// Flatten(axis) → Softmax(1) → Reshape back.
        static func importer(log: Bool) -> ONNXImporter {
            ONNXImporter(log ? "LogSoftmax" : "Softmax") { (b: inout ONNXGraphBuilder, n: ONNXNode) throws(ONNXImportError) in
                try n.allow(["axis"])
                try n.requireInputs(1...1)
                let axis = try n.int("axis", default: b.opset >= 13 ? -1 : 1)
                if b.opset >= 13 { return try b.emit(n, Softmax(axis: axis, log: log), [n.inputs[0]]) }
                let x = try b.shape(of: n.inputs[0], n)
                let a = axis < 0 ? axis + x.count : axis
                guard (0..<Swift.max(x.count, 1)).contains(a) else { throw n.error("axis \(axis) out of range for rank \(x.count)") }
                if a == x.count - 1 { return try b.emit(n, Softmax(axis: a, log: log), [n.inputs[0]]) }
                guard let output = n.outputs.first, !output.isEmpty else { throw n.error("has no output") }
                let flat = "\(output)/coerced_2d", normalized = "\(output)/softmax_2d"
                b.append(Node("\(n.name)/coerce_2d", Flatten(axis: a), inputs: [n.inputs[0]], output: flat))
                b.append(Node("\(n.name)/softmax_2d", Softmax(axis: 1, log: log), inputs: [flat], output: normalized))
                let target = x.enumerated().map { $0.element.value ?? ($0.offset == 0 ? 0 : -1) }
                b.append(Node(n.name, Reshape(shape: target, allowZero: false), inputs: [normalized], output: output))
            }
        }

        public static var onnxImporters: [ONNXImporter] { [importer(log: false), importer(log: true)] }
    }

    /// Layer normalization over the dims from `axis` on: y = (x − mean) / √(var + ε) · scale (+ bias),
    /// scale and bias broadcast to those dims (ONNX LayerNormalization-17).
    public struct LayerNormalization: Operator, Equatable {
        public var axis: Int
        public var epsilon: Float
        public init(axis: Int = -1, epsilon: Float = 1e-5) {
            self.axis = axis
            self.epsilon = epsilon
        }
        public var name: String { "LayerNormalization" }
        public var inputArity: ClosedRange<Int> { 2...3 }
        public var summary: String { "axis=\(axis) epsilon=\(epsilon)" }

        public func infer(_ inputs: [ValueInfo]) throws(OpFailure) -> [ValueInfo] {
            try DTypeRules.floating(inputs)
            let x = inputs[0].shape
            guard (-x.count..<x.count).contains(axis) else { throw OpFailure("axis \(axis) out of range for rank \(x.count)") }
            let a = axis < 0 ? axis + x.count : axis
            let normalized = ValueInfo(name: inputs[0].name, dtype: inputs[0].dtype, shape: Array(x[a...]))
            for parameter in inputs.dropFirst() where try ShapeRules.broadcast(normalized, parameter) != normalized.shape {
                throw OpFailure("'\(parameter.name)' \(parameter) does not broadcast to the normalized dims \(Dim.text(normalized.shape))")
            }
            return [ValueInfo(dtype: inputs[0].dtype, shape: x)]
        }

        public func evaluate(_ inputs: [Tensor]) throws(OpFailure) -> [Tensor] {
            let input = inputs[0], x = input.shape
            let a = axis < 0 ? axis + x.count : axis
            let inner = x[a...].product, outer = x[..<a].product
            let v = input.doubles()
            let tail = Array(x[a...])
            let scaleIndex = Broadcast.indices(of: inputs[1].shape, in: tail), scale = inputs[1].doubles()
            let bias = inputs.count == 3 ? inputs[2].doubles() : nil
            let biasIndex = inputs.count == 3 ? Broadcast.indices(of: inputs[2].shape, in: tail) : []
            var y = [Double](repeating: 0, count: v.count)
            for o in 0..<outer {
                let row = v[(o * inner)..<((o + 1) * inner)]
                let mean = row.reduce(0, +) / Double(inner)
                let variance = row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(inner)
                let inverse = 1 / (variance + Double(epsilon)).squareRoot()
                for i in 0..<inner {
                    y[o * inner + i] = (v[o * inner + i] - mean) * inverse * scale[scaleIndex[i]] + (bias.map { $0[biasIndex[i]] } ?? 0)
                }
            }
            return [Tensor(dtype: input.dtype, shape: x, doubles: y)]
        }

        /// Constant scale (and bias) over the whole normalized tail: `LayerNormStep`, the reference's
        /// arithmetic in the same order (so the same bits), rows in parallel.
        public func lower(_ context: LoweringContext) throws(OpFailure) -> Lowering? {
            let node = context.node
            let x = context.inputs[0].shape
            let a = axis < 0 ? axis + x.count : axis
            let tail = x[a...].compactMap(\.value)
            guard tail.count == x.count - a, let scale = context.constant(node.inputs[1]) else { return nil }
            let inner = tail.product
            let bias = node.inputs.count == 3 ? context.constant(node.inputs[2]) : nil
            guard scale.count == inner, node.inputs.count == 2 || bias?.count == inner else { return nil }
            return Lowering(LayerNormStep(axis: a, epsilon: Double(epsilon), scale: scale.doubles(),
                                          bias: bias?.doubles() ?? [Double](repeating: 0, count: inner)),
                            inputs: [node.inputs[0]])
        }
        public var planTimeInputs: Set<Int> { [1, 2] }

        /// Before opset 17: (x − mean) / √(mean((x − mean)²) + ε) · scale + bias over the normalized dims.
        public func exportONNX(_ node: Node, to onnx: inout ONNXExporter) throws(OpFailure) {
            guard onnx.opset < 17 else { return onnx.emit("LayerNormalization", [("axis", .int(axis)), ("epsilon", .float(epsilon))]) }
            guard let info = onnx.values[node.inputs[0]] else { throw OpFailure("the input's rank must be known") }
            let rank = info.shape.count, a = axis < 0 ? axis + rank : axis
            let x = onnx.resolve(node.inputs[0])
            let axes: [(name: String, value: ONNXExporter.Attribute)] = [("axes", .ints(Array(a..<rank))), ("keepdims", .int(1))]
            let centered = onnx.emitStep("Sub", inputs: [x, onnx.emitStep("ReduceMean", axes, inputs: [x])])
            let variance = onnx.emitStep("ReduceMean", axes, inputs: [onnx.emitStep("Mul", inputs: [centered, centered])])
            let deviation = onnx.emitStep("Sqrt", inputs: [onnx.emitStep("Add", inputs: [variance, onnx.scalar(Double(epsilon), info.dtype, "epsilon")])])
            let scaled = onnx.emitStep("Mul", inputs: [onnx.emitStep("Div", inputs: [centered, deviation]), onnx.resolve(node.inputs[1])],
                                       final: node.inputs.count == 2)
            if node.inputs.count == 3 { onnx.emitStep("Add", inputs: [scaled, onnx.resolve(node.inputs[2])], final: true) }
        }

        public static var onnxImporters: [ONNXImporter] {
            [ONNXImporter("LayerNormalization", since: 17) { (b: inout ONNXGraphBuilder, n: ONNXNode) throws(ONNXImportError) in
                try n.allow(["axis", "epsilon", "stash_type"])
                try n.requireInputs(2...3)
                try b.emit(n, LayerNormalization(axis: try n.int("axis", default: -1), epsilon: try n.float("epsilon", default: 1e-5)),
                           Array(n.inputs.prefix(2)) + (n.input(2).map { [$0] } ?? []))
            }]
        }
    }
}

/// BatchNormalization, with the activation that follows it when one does (DenseNet's norm → relu).
struct BatchNormStep: StepKernel {
    let epsilon: Float
    let activation: Activation?
    func describe(inputShapes: [[Int]], outputShape: [Int]) -> (text: String, flops: Double, executed: Double) {
        ("batchNorm" + (activation.map { " +" + $0.name } ?? ""), 0, 0)
    }
    func run(_ b: StepBuffers) {
        let x = b.inputShapes[0]
        NormalizationKernels.batchNorm(input: b.inputs[0], output: b.output, batch: x[0], channels: x[1], spatial: x[2...].product,
                                       scale: b.inputs[1], shift: b.inputs[2], mean: b.inputs[3], variance: b.inputs[4],
                                       epsilon: epsilon, activation: activation, pool: b.pool, kernels: b.kernels)
    }
}

struct LRNStep: StepKernel {
    let lrn: Op.LRN
    func describe(inputShapes: [[Int]], outputShape: [Int]) -> (text: String, flops: Double, executed: Double) { ("lrn \(lrn.size)", 0, 0) }
    func run(_ b: StepBuffers) {
        let x = b.inputShapes[0]
        let (low, high) = lrn.offsets
        NormalizationKernels.lrn(input: b.inputs[0], output: b.output, batch: x[0], channels: x[1], spatial: x[2...].product,
                                 size: lrn.size, low: low, high: high, alpha: lrn.alpha, beta: lrn.beta, bias: lrn.bias,
                                 pool: b.pool, kernels: b.kernels)
    }
}

struct SoftmaxStep: StepKernel {
    let axis: Int
    func describe(inputShapes: [[Int]], outputShape: [Int]) -> (text: String, flops: Double, executed: Double) { ("softmax", 0, 0) }
    func run(_ b: StepBuffers) {
        let x = b.inputShapes[0]
        let a = axis < 0 ? axis + x.count : axis
        NormalizationKernels.softmax(input: b.inputs[0], output: b.output, outer: x[..<a].product, length: x[a],
                                     inner: x[(a + 1)...].product, pool: b.pool, kernels: b.kernels)
    }
}

extension Op {
    /// Per-sample, per-channel normalization over the spatial dims: y = (x − mean) / √(var + ε) · scale[c] + bias[c].
    public struct InstanceNormalization: Operator, Equatable {
        public var epsilon: Float
        public init(epsilon: Float = 1e-5) { self.epsilon = epsilon }
        public var name: String { "InstanceNormalization" }
        public var inputArity: ClosedRange<Int> { 3...3 }
        public var summary: String { "epsilon=\(epsilon)" }

        public func infer(_ inputs: [ValueInfo]) throws(OpFailure) -> [ValueInfo] {
            try DTypeRules.floating(inputs)
            let x = inputs[0].shape
            guard x.count >= 3 else { throw OpFailure("input must be [N, C, spatial…], is rank \(x.count)") }
            let channels = try ShapeRules.fixed(x[1], "channels")
            for parameter in inputs[1...] { try ShapeRules.vector(parameter, channels) }
            return [ValueInfo(dtype: inputs[0].dtype, shape: x)]
        }

        public func evaluate(_ inputs: [Tensor]) throws(OpFailure) -> [Tensor] {
            let x = inputs[0].shape, v = inputs[0].doubles(), scale = inputs[1].doubles(), bias = inputs[2].doubles()
            let spatial = x[2...].product
            var y = [Double](repeating: 0, count: v.count)
            for plane in 0..<(x[0] * x[1]) {
                let c = plane % x[1], row = v[(plane * spatial)..<((plane + 1) * spatial)]
                let mean = row.reduce(0, +) / Double(spatial)
                let variance = row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(spatial)
                let inverse = 1 / (variance + Double(epsilon)).squareRoot()
                for i in 0..<spatial { y[plane * spatial + i] = (v[plane * spatial + i] - mean) * inverse * scale[c] + bias[c] }
            }
            return [Tensor(dtype: inputs[0].dtype, shape: x, doubles: y)]
        }

        public func exportONNX(_ node: Node, to onnx: inout ONNXExporter) throws(OpFailure) {
            onnx.emit("InstanceNormalization", [("epsilon", .float(epsilon))])
        }

        public static var onnxImporters: [ONNXImporter] {
            [ONNXImporter("InstanceNormalization") { (b: inout ONNXGraphBuilder, n: ONNXNode) throws(ONNXImportError) in
                try n.allow(b.opset < 6 ? ["epsilon", "consumed_inputs"] : ["epsilon"])
                try n.requireInputs(3...3)
                try b.emit(n, InstanceNormalization(epsilon: try n.float("epsilon", default: 1e-5)), Array(n.inputs.prefix(3)))
            }]
        }
    }
}

/// LayerNormalization over the dims from `axis` on, with constant scale and bias of that size
/// (`KernelTable.layerNorm`): each row's mean and variance summed in Double, y = (x − mean) ·
/// (1 / √(var + ε)) · scale + bias in Double, rounded once — `Op.LayerNormalization.evaluate`'s
/// arithmetic with the sums in 8 lanes, so within 1 ulp of its values.
struct LayerNormStep: StepKernel {
    let axis: Int
    let epsilon: Double
    let scale: [Double]
    /// Zeros when the node has none (the reference adds 0 then too).
    let bias: [Double]
    func describe(inputShapes: [[Int]], outputShape: [Int]) -> (text: String, flops: Double, executed: Double) {
        ("layernorm", 0, 0)
    }
    func run(_ b: StepBuffers) {
        let x = b.inputShapes[0]
        let inner = x[axis...].product, outer = x[..<axis].product
        scale.withUnsafeBufferPointer { scale in
            bias.withUnsafeBufferPointer { bias in
                b.kernels.table.layerNorm(b.inputs[0], b.output, outer, inner, scale.baseAddress!, bias.baseAddress, epsilon, b.pool)
            }
        }
    }
}
