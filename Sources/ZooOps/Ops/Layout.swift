/// Ops that move or relabel elements without arithmetic: Flatten, Reshape, Dropout (identity at
/// inference), Concat. Flatten, Reshape and Dropout are views of their input when lowered.
import ZooCore
import ZooKernels

extension Op {
    /// Flattens dims [0, axis) and [axis, rank) into a 2-D tensor (ONNX Flatten).
    public struct Flatten: Operator, Equatable {
        public var axis: Int
        public init(axis: Int) { self.axis = axis }
        public var name: String { "Flatten" }
        public var summary: String { "axis=\(axis)" }

        public func infer(_ inputs: [ValueInfo]) throws(OpFailure) -> [ValueInfo] {
            let x = inputs[0].shape
            let a = axis < 0 ? axis + x.count : axis
            guard (0...x.count).contains(a) else { throw OpFailure("axis \(axis) out of range for rank \(x.count)") }
            return [ValueInfo(dtype: inputs[0].dtype, shape: [try ShapeRules.product(x[..<a]), try ShapeRules.product(x[a...])])]
        }

        public func evaluate(_ inputs: [Tensor]) throws(OpFailure) -> [Tensor] {
            let x = inputs[0].shape
            let a = axis < 0 ? axis + x.count : axis
            return [try inputs[0].reshaped([x[..<a].product, x[a...].product])]
        }

        public func lower(_ context: LoweringContext) throws(OpFailure) -> Lowering? { Lowering(ViewKernel(), inputs: [context.node.inputs[0]]) }
        public func exportONNX(_ node: Node, to onnx: inout ONNXExporter) throws(OpFailure) { onnx.emit("Flatten", [("axis", .int(axis))]) }

        public static var onnxImporters: [ONNXImporter] {
            [ONNXImporter("Flatten") { (b: inout ONNXGraphBuilder, n: ONNXNode) throws(ONNXImportError) in
                try n.allow(["axis"])
                try n.requireInputs(1...1)
                let axis = try n.int("axis", default: 1)
                if axis < 0 && b.opset < 11 { throw n.error("negative axis \(axis) needs opset 11") }
                try b.emit(n, Flatten(axis: axis), [n.inputs[0]])
            }]
        }
    }

    /// ONNX Reshape: 0 copies the input dim (unless `allowZero`), -1 is inferred. The target is the
    /// `shape` attribute when set, else the second input, whose value must be known when shapes are
    /// inferred (a constant, or shape arithmetic folded for the input's shape).
    public struct Reshape: Operator, Equatable {
        public var shape: [Int]?
        public var allowZero: Bool
        public init(shape: [Int]?, allowZero: Bool = false) {
            self.shape = shape
            self.allowZero = allowZero
        }
        public var name: String { "Reshape" }
        public var inputArity: ClosedRange<Int> { shape == nil ? 2...2 : 1...1 }
        public var summary: String { (shape.map { "shape=\($0)" } ?? "") + (allowZero ? " allowzero" : "") }

        func target(_ inputs: [ValueInfo]) throws(OpFailure) -> [Dim] {
            if let shape { return shape.map { .fixed($0) } }
            guard inputs[1].shape.count == 1, inputs[1].dtype == .i64 || inputs[1].dtype == .i32 else {
                throw OpFailure("the target shape '\(inputs[1].name)' must be a 1-D integer tensor, is \(inputs[1])")
            }
            guard let dims = inputs[1].knownDims else { throw OpFailure("the target shape '\(inputs[1].name)' must be known before running") }
            return dims
        }

        public func infer(_ inputs: [ValueInfo]) throws(OpFailure) -> [ValueInfo] {
            let x = inputs[0]
            let shape = try ShapeRules.reshape(x.shape, try target(inputs), allowZero: allowZero)
            // Shape arithmetic: a shape vector reshaped to one dimension keeps its known entries.
            if x.shape.count <= 1, shape.count == 1, !x.dtype.isFloatingPoint, let dims = x.knownDims {
                return [ValueInfo(dtype: x.dtype, shape: shape, knownDims: dims)]
            }
            return [ValueInfo(dtype: x.dtype, shape: shape)]
        }

        public func evaluate(_ inputs: [Tensor]) throws(OpFailure) -> [Tensor] {
            let infos = inputs.map { ValueInfo(known: $0) }
            return [try inputs[0].reshaped(try infer(infos)[0].fixedShape!)]
        }

        public func lower(_ context: LoweringContext) throws(OpFailure) -> Lowering? { Lowering(ViewKernel(), inputs: [context.node.inputs[0]]) }
        public var shapeOnlyInputs: Set<Int> { [1] }

        public func exportONNX(_ node: Node, to onnx: inout ONNXExporter) throws(OpFailure) {
            let target: String
            if let shape {
                if allowZero && shape.contains(0) && onnx.opset < 14 {
                    throw OpFailure("shape \(shape) with allowzero (a 0 meaning an empty dimension) needs opset 14 or later")
                }
                target = onnx.addInitializer(node.name + ".shape", Tensor(int64s: shape, shape: [shape.count]))
            } else {
                target = onnx.resolve(node.inputs[1])
            }
            onnx.emit("Reshape", allowZero && onnx.opset >= 14 ? [("allowzero", .int(1))] : [], inputs: [onnx.resolve(node.inputs[0]), target])
        }

        public static var onnxImporters: [ONNXImporter] {
            [ONNXImporter("Reshape") { (b: inout ONNXGraphBuilder, n: ONNXNode) throws(ONNXImportError) in
                let target: [Int]
                if b.opset < 5 {
                    // Reshape-1: the shape is an attribute (0 copies, one -1 is inferred, as later).
                    try n.allow(["shape", "consumed_inputs"])
                    try n.requireInputs(1...1)
                    guard let shape = try n.ints("shape") else { throw n.error("attribute 'shape' is required") }
                    do throws(LimitExceeded) { try b.limits.checkRank(shape.count, "shape") } catch { throw n.error(error.description) }
                    target = shape
                } else {
                    try n.allow(b.opset >= 14 ? ["allowzero"] : [])
                    try n.requireInputs(2...2)
                    guard b.constants[n.inputs[1]] != nil else {
                        // Computed at run time (shape arithmetic): the IR's Reshape reads it as its second input.
                        return try b.emit(n, Reshape(shape: nil, allowZero: try n.int("allowzero", default: 0) != 0), [n.inputs[0], n.inputs[1]])
                    }
                    target = try b.constantInts(n.inputs[1], n, "shape")
                }
                let allowZero = try n.int("allowzero", default: 0) != 0
                if let constant = b.constants[n.inputs[0]] {
                    // A reshaped constant stays a constant (same bytes, new shape).
                    let shape: [Dim]
                    do throws(OpFailure) { shape = try ShapeRules.reshape(constant.shape.map { .fixed($0) }, target, allowZero: allowZero) } catch {
                        throw n.error("cannot reshape constant \(constant.shape) to \(target): \(error.message)")
                    }
                    do { b.addConstant(n.output, try constant.reshaped(shape.compactMap(\.value))) } catch { throw n.error("\(error)") }
                    return
                }
                // A -1 standing exactly for the symbolic batch ([-1, 9216] on [N, 256, 6, 6], as torch's
                // dynamo export writes it) is resolved by the IR's shape inference.
                try b.emit(n, Reshape(shape: target, allowZero: allowZero), [n.inputs[0]])
            }]
        }
    }

    /// Identity at inference; the ratio is kept for export.
    public struct Dropout: Operator, Equatable {
        public var ratio: Float
        public init(ratio: Float) { self.ratio = ratio }
        public var name: String { "Dropout" }
        public var summary: String { "ratio=\(ratio)" }
        public func infer(_ inputs: [ValueInfo]) throws(OpFailure) -> [ValueInfo] { [ValueInfo(dtype: inputs[0].dtype, shape: inputs[0].shape)] }
        public func evaluate(_ inputs: [Tensor]) throws(OpFailure) -> [Tensor] { [inputs[0]] }
        public func lower(_ context: LoweringContext) throws(OpFailure) -> Lowering? { Lowering(ViewKernel(), inputs: [context.node.inputs[0]]) }

        /// Dropped, its readers rewired (as torch's exporter does); an Identity when it is a graph output.
        public func exportONNX(_ node: Node, to onnx: inout ONNXExporter) throws(OpFailure) {
            if onnx.isGraphOutput(node.output) { onnx.emit("Identity") } else { onnx.forward(to: onnx.resolve(node.inputs[0])) }
        }

        public static var onnxImporters: [ONNXImporter] {
            [ONNXImporter("Dropout") { (b: inout ONNXGraphBuilder, n: ONNXNode) throws(ONNXImportError) in
                var ratio: Float = 0.5
                if b.opset < 12 {
                    var allowed: Set<String> = ["ratio"]
                    if b.opset < 7 { allowed.insert("is_test") }
                    if b.opset < 6 { allowed.insert("consumed_inputs") }
                    try n.allow(allowed)
                    try n.requireInputs(1...1)
                    ratio = try n.float("ratio", default: 0.5)
                    // Dropout-1/6 drops at random unless is_test is nonzero (default 0).
                    if b.opset < 7, try n.int("is_test", default: 0) == 0 {
                        throw n.error("is_test is 0 (random training-mode dropout, the default before opset 7); zoo runs inference only, which needs is_test=1")
                    }
                } else {
                    try n.allow(["seed"])
                    try n.requireInputs(1...3)
                    if let r = n.input(1) {
                        guard let t = b.constants[r], t.count == 1, t.dtype.isFloatingPoint else { throw n.error("ratio '\(r)' must be a constant scalar") }
                        ratio = Float(t.doubles()[0])
                    }
                    if let mode = n.input(2) {
                        guard let t = b.constants[mode], t.count == 1 else { throw n.error("training_mode '\(mode)' must be a constant") }
                        guard t.doubles()[0] == 0 else { throw n.error("training_mode is true; zoo runs inference only") }
                    }
                }
                try b.emit(n, Dropout(ratio: ratio), [n.inputs[0]])
            }]
        }
    }

    /// Joins its inputs along `axis`; every other dimension must agree.
    public struct Concat: Operator, Equatable {
        public var axis: Int
        public init(axis: Int) { self.axis = axis }
        public var name: String { "Concat" }
        public var inputArity: ClosedRange<Int> { 1...Int.max }
        public var summary: String { "axis=\(axis)" }

        public func infer(_ inputs: [ValueInfo]) throws(OpFailure) -> [ValueInfo] {
            let dtype = try DTypeRules.common(inputs)
            let x = inputs[0].shape
            let a = axis < 0 ? axis + x.count : axis
            guard (0..<x.count).contains(a) else { throw OpFailure("axis \(axis) out of range for rank \(x.count)") }
            var total = 0
            for input in inputs {
                guard input.shape.count == x.count else { throw OpFailure("'\(input.name)' has rank \(input.shape.count), not \(x.count)") }
                for d in 0..<x.count where d != a && input.shape[d] != x[d] {
                    throw OpFailure("'\(input.name)' differs from '\(inputs[0].name)' in dimension \(d)")
                }
                total = try ShapeRules.add(total, try ShapeRules.fixed(input.shape[a], "concatenated dimension"), "the concatenated dimension")
            }
            var out = x
            out[a] = .fixed(total)
            // Shape arithmetic: the concatenation of values known up to symbolic dims.
            if x.count == 1, !dtype.isFloatingPoint, dtype != .bool {
                var dims: [Dim] = []
                for input in inputs {
                    guard let d = input.knownDims else { return [ValueInfo(dtype: dtype, shape: out)] }
                    dims += d
                }
                return [ValueInfo(dtype: dtype, shape: out, knownDims: dims)]
            }
            return [ValueInfo(dtype: dtype, shape: out)]
        }

        public func evaluate(_ inputs: [Tensor]) throws(OpFailure) -> [Tensor] {
            let dtype = inputs.allSatisfy({ $0.dtype == inputs[0].dtype }) ? inputs[0].dtype : .f32
            let parts = inputs.map { $0.dtype == dtype ? $0.contiguous() : $0.float32() }
            let x = parts[0].shape
            let a = axis < 0 ? axis + x.count : axis
            var shape = x
            shape[a] = parts.reduce(0) { $0 + $1.shape[a] }
            let outer = x[..<a].product, inner = x[(a + 1)...].product, item = dtype.itemSize
            let result = try! Tensor(dtype: dtype, shape: shape) { raw in
                var offset = 0
                for part in parts {
                    let chunk = part.shape[a] * inner * item
                    let source = part.storage.bytes.baseAddress.map { UnsafeRawPointer($0) + part.offset * item }
                    for o in 0..<outer where chunk > 0 {
                        (raw.baseAddress! + o * shape[a] * inner * item + offset).copyMemory(from: source! + o * chunk, byteCount: chunk)
                    }
                    offset += chunk
                }
            }
            return [result]
        }

        public func lower(_ context: LoweringContext) throws(OpFailure) -> Lowering? {
            Lowering(ConcatStep(axis: axis), inputs: context.node.inputs)
        }

        public func exportONNX(_ node: Node, to onnx: inout ONNXExporter) throws(OpFailure) { onnx.emit("Concat", [("axis", .int(axis))]) }

        public static var onnxImporters: [ONNXImporter] {
            [ONNXImporter("Concat") { (b: inout ONNXGraphBuilder, n: ONNXNode) throws(ONNXImportError) in
                try n.allow(["axis"])
                // Concat-1 (opsets 1…3) defaults axis to 1; from Concat-4 it is required.
                guard let axis = try n.int("axis") ?? (b.opset < 4 ? 1 : nil) else { throw n.error("attribute 'axis' is required") }
                guard !n.inputs.isEmpty, n.inputs.allSatisfy({ !$0.isEmpty }) else { throw n.error("needs at least one input, none empty") }
                try b.emit(n, Concat(axis: axis), n.inputs)
            }]
        }
    }
}

extension Tensor {
    /// The same elements under `shape` (same count): a view of dense storage, else a dense copy.
    func reshaped(_ shape: [Int]) throws(OpFailure) -> Tensor {
        guard Tensor.checkedCount(shape) == count else { throw OpFailure("cannot reshape \(self.shape) to \(shape)") }
        let dense = isContiguous ? self : contiguous()
        do { return try Tensor(dtype: dense.dtype, shape: shape, strides: Tensor.contiguousStrides(for: shape), offset: dense.offset, storage: dense.storage) } catch {
            throw OpFailure("\(error)")
        }
    }
}

/// Copies each input's blocks into its slice of the output, the output's chunks in parallel (on
/// one thread DenseNet's concatenations took 1.9 ms of 33).
struct ConcatStep: StepKernel {
    let axis: Int
    func describe(inputShapes: [[Int]], outputShape: [Int]) -> (text: String, flops: Double, executed: Double) { ("concat", 0, 0) }
    func run(_ b: StepBuffers) {
        let outShape = b.outputShape
        let a = axis < 0 ? axis + outShape.count : axis
        let outer = outShape[..<a].product, inner = outShape[(a + 1)...].product
        // The output as segments in order: (first output float, source, floats).
        var segments: [(start: Int, source: UnsafeMutablePointer<Float>, count: Int)] = []
        var offset = 0
        for o in 0..<outer {
            for (source, shape) in zip(b.inputs, b.inputShapes) where shape[a] > 0 {
                let part = shape[a] * inner
                segments.append((offset, source + o * part, part))
                offset += part
            }
        }
        let output = b.output
        b.pool.parallelChunks(offset) { range in
            // The first segment that ends inside the chunk (segments are in order), then on.
            var (low, high) = (0, segments.count)
            while low < high {
                let mid = (low + high) / 2
                if segments[mid].start + segments[mid].count <= range.lowerBound { low = mid + 1 } else { high = mid }
            }
            for segment in segments[low...] {
                if segment.start >= range.upperBound { break }
                let from = max(range.lowerBound, segment.start), to = min(range.upperBound, segment.start + segment.count)
                (output + from).update(from: segment.source + (from - segment.start), count: to - from)
            }
        }
    }
}

extension Op {
    /// Permutes the dims: output dim i is input dim perm[i] (reversed when perm is absent).
    public struct Transpose: Operator, Equatable {
        public var perm: [Int]?
        public init(perm: [Int]?) { self.perm = perm }
        public var name: String { "Transpose" }
        public var summary: String { perm.map { "perm=\($0)" } ?? "" }

        func permutation(_ rank: Int) throws(OpFailure) -> [Int] {
            let p = perm ?? Array((0..<rank).reversed())
            guard p.count == rank, Set(p) == Set(0..<rank) else { throw OpFailure("perm \(p) is not a permutation of the \(rank) dims") }
            return p
        }
        public func infer(_ inputs: [ValueInfo]) throws(OpFailure) -> [ValueInfo] {
            let x = inputs[0].shape
            return [ValueInfo(dtype: inputs[0].dtype, shape: try permutation(x.count).map { x[$0] })]
        }
        public func evaluate(_ inputs: [Tensor]) throws(OpFailure) -> [Tensor] {
            let x = inputs[0].shape, p = try permutation(x.count)
            let strides = denseStrides(x)
            let permuted = p.map { strides[$0] }
            return [inputs[0].remapped(to: p.map { x[$0] }) { o in zip(o, permuted).reduce(0) { $0 + $1.0 * $1.1 } }]
        }
        public func lower(_ context: LoweringContext) throws(OpFailure) -> Lowering? {
            Lowering(TransposeStep(perm: try permutation(context.inputs[0].shape.count)), inputs: [context.node.inputs[0]])
        }
        public func exportONNX(_ node: Node, to onnx: inout ONNXExporter) throws(OpFailure) {
            onnx.emit("Transpose", perm.map { [("perm", .ints($0))] } ?? [])
        }
        public static var onnxImporters: [ONNXImporter] {
            [ONNXImporter("Transpose") { (b: inout ONNXGraphBuilder, n: ONNXNode) throws(ONNXImportError) in
                try n.allow(["perm"])
                try n.requireInputs(1...1)
                try b.emit(n, Transpose(perm: try n.ints("perm")), [n.inputs[0]])
            }]
        }
    }

    /// Splits the input along `axis` into parts of `sizes` (one output each).
    public struct Split: Operator, Equatable {
        public var axis: Int
        public var sizes: [Int]
        public init(axis: Int, sizes: [Int]) {
            self.axis = axis
            self.sizes = sizes
        }
        public var name: String { "Split" }
        public var outputCount: Int { sizes.count }
        public var summary: String { "axis=\(axis) sizes=\(sizes)" }

        public func infer(_ inputs: [ValueInfo]) throws(OpFailure) -> [ValueInfo] {
            let x = inputs[0].shape
            let a = try normalizedAxis(axis, rank: x.count)
            let total = try ShapeRules.fixed(x[a], "the split dimension")
            guard sizes.allSatisfy({ $0 >= 0 }), sizes.reduce(0, +) == total else {
                throw OpFailure("sizes \(sizes) do not add up to dimension \(a) of \(Dim.text(x))")
            }
            return sizes.map { size in
                var shape = x
                shape[a] = .fixed(size)
                return ValueInfo(dtype: inputs[0].dtype, shape: shape)
            }
        }
        public func evaluate(_ inputs: [Tensor]) throws(OpFailure) -> [Tensor] {
            let x = inputs[0].shape
            let a = try normalizedAxis(axis, rank: x.count)
            let strides = denseStrides(x)
            var offset = 0
            var parts: [Tensor] = []
            for size in sizes {
                var shape = x
                shape[a] = size
                let start = offset
                parts.append(inputs[0].remapped(to: shape) { o in
                    var at = 0
                    for d in o.indices { at += (d == a ? o[d] + start : o[d]) * strides[d] }
                    return at
                })
                offset += size
            }
            return parts
        }
        /// Copies of the parts (`SplitKernel`): ShuffleNet's channel split.
        public func lower(_ context: LoweringContext) throws(OpFailure) -> Lowering? {
            let a = try normalizedAxis(axis, rank: context.inputs[0].shape.count)
            return Lowering(SplitKernel(axis: a, sizes: sizes), inputs: [context.node.inputs[0]])
        }

        public func exportONNX(_ node: Node, to onnx: inout ONNXExporter) throws(OpFailure) {
            if onnx.opset >= 13 {
                let split = onnx.addInitializer(node.name + ".split", Tensor(int64s: sizes, shape: [sizes.count]))
                onnx.emit("Split", [("axis", .int(axis))], inputs: [onnx.resolve(node.inputs[0]), split])
            } else {
                onnx.emit("Split", [("axis", .int(axis)), ("split", .ints(sizes))])
            }
        }

        /// Sizes from the `split` attribute (< 13) or input (≥ 13), else equal parts, one per output
        /// (or `num_outputs`, opset 18, the last part smaller when it does not divide).
        public static var onnxImporters: [ONNXImporter] {
            [ONNXImporter("Split", since: 2) { (b: inout ONNXGraphBuilder, n: ONNXNode) throws(ONNXImportError) in
                try n.allow(b.opset >= 18 ? ["axis", "num_outputs"] : b.opset >= 13 ? ["axis"] : ["axis", "split"])
                try n.requireInputs(b.opset >= 13 ? 1...2 : 1...1)
                let axis = try n.int("axis", default: 0)
                var sizes: [Int]? = try n.ints("split")
                if b.opset >= 13, let input = n.input(1) { sizes = try b.constantInts(input, n, "split") }
                if sizes == nil {
                    let x = try b.shape(of: n.inputs[0], n)
                    let a: Int
                    do throws(OpFailure) { a = try normalizedAxis(axis, rank: x.count) } catch { throw n.error(error.message) }
                    guard let total = x[a].value else { throw n.error("the split dimension must be fixed") }
                    let parts = try n.int("num_outputs") ?? n.outputs.count
                    guard parts >= 1 else { throw n.error("needs at least one output") }
                    let each = (total + parts - 1) / parts
                    sizes = (0..<parts).map { Swift.max(0, Swift.min(each, total - $0 * each)) }
                    if try n.int("num_outputs") == nil, total % parts != 0 {
                        throw n.error("dimension \(a) of size \(total) does not split into \(parts) equal parts")
                    }
                }
                guard sizes!.count == n.outputs.count else { throw n.error("\(sizes!.count) parts but \(n.outputs.count) outputs") }
                try b.emit(n, Split(axis: axis, sizes: sizes!), [n.inputs[0]])
            }]
        }
    }

    /// Pads with a constant, by reflection or by repeating the edge: pads are [begin₀…, end₀…] over
    /// every dim (negative pads crop).
    public struct Pad: Operator, Equatable {
        public enum Mode: String, Sendable { case constant, reflect, edge, wrap }
        public var mode: Mode
        /// nil: the pads are the second input, known before running (computed from shapes).
        public var pads: [Int]?
        public init(mode: Mode, pads: [Int]?) {
            self.mode = mode
            self.pads = pads
        }
        public var name: String { "Pad" }
        /// The data, the pads when not an attribute, and an optional constant value.
        public var inputArity: ClosedRange<Int> { pads == nil ? 2...3 : 1...2 }
        public var summary: String { "\(mode.rawValue)" + (pads.map { " pads=\($0)" } ?? "") }

        /// The pads, and the optional constant value's input index.
        func operands(_ inputs: [ValueInfo]) throws(OpFailure) -> (pads: [Int], value: Int?) {
            let valueIndex = pads == nil ? 2 : 1
            let value = inputs.count > valueIndex ? valueIndex : nil
            if let pads { return (pads, value) }
            guard let known = inputs[1].value, !known.dtype.isFloatingPoint else { throw OpFailure("pads '\(inputs[1].name)' must be known before running") }
            return (known.integers(), value)
        }

        public func infer(_ inputs: [ValueInfo]) throws(OpFailure) -> [ValueInfo] {
            let (pads, valueIndex) = try operands(inputs)
            let x = inputs[0].shape
            guard pads.count == 2 * x.count else { throw OpFailure("pads \(pads) must hold 2 × \(x.count) values") }
            var shape: [Dim] = []
            for (d, dim) in x.enumerated() {
                if pads[d] == 0 && pads[d + x.count] == 0 { shape.append(dim); continue }
                let size = try ShapeRules.fixed(dim, "a padded dimension") + pads[d] + pads[d + x.count]
                guard size >= 0 else { throw OpFailure("pads \(pads) crop dimension \(d) below 0") }
                if mode == .reflect, try ShapeRules.fixed(dim, "") < 2 || pads[d] >= dim.value! || pads[d + x.count] >= dim.value! {
                    throw OpFailure("reflect pads \(pads) need more than the pad's width in dimension \(d) of size \(dim)")
                }
                shape.append(.fixed(size))
            }
            if let v = valueIndex, inputs[v].dtype != inputs[0].dtype { throw OpFailure("the constant is \(inputs[v].dtype.rawValue), the data \(inputs[0].dtype.rawValue)") }
            return [ValueInfo(dtype: inputs[0].dtype, shape: shape)]
        }

        public func evaluate(_ inputs: [Tensor]) throws(OpFailure) -> [Tensor] {
            let (pads, valueIndex) = try operands(inputs.map { ValueInfo(known: $0) })
            let x = inputs[0].shape, rank = x.count
            let strides = denseStrides(x)
            let shape = x.indices.map { x[$0] + pads[$0] + pads[$0 + rank] }
            let fill = mode == .constant ? valueIndex.map { inputs[$0] } : nil
            return [inputs[0].remapped(to: shape, fill: fill) { o in
                var at = 0
                for d in 0..<rank {
                    var i = o[d] - pads[d]
                    let n = x[d]
                    if i < 0 || i >= n {
                        switch mode {
                        case .constant: return nil
                        case .edge: i = Swift.min(Swift.max(i, 0), n - 1)
                        case .wrap: i = ((i % n) + n) % n
                        case .reflect:
                            let period = 2 * (n - 1)
                            i = ((i % period) + period) % period
                            if i >= n { i = period - i }
                        }
                    }
                    at += i * strides[d]
                }
                return at
            }]
        }

        public func exportONNX(_ node: Node, to onnx: inout ONNXExporter) throws(OpFailure) {
            guard let pads else { return onnx.emit("Pad", [("mode", .string(mode.rawValue))]) }
            let p = onnx.addInitializer(node.name + ".pads", Tensor(int64s: pads, shape: [pads.count]))
            onnx.emit("Pad", [("mode", .string(mode.rawValue))], inputs: [onnx.resolve(node.inputs[0]), p] + node.inputs.dropFirst().map { onnx.resolve($0) })
        }

        /// Pads as an attribute (< 11) or a constant input; Pad-18's axes select which dims they cover.
        public static var onnxImporters: [ONNXImporter] {
            [ONNXImporter("Pad") { (b: inout ONNXGraphBuilder, n: ONNXNode) throws(ONNXImportError) in
                try n.allow(b.opset < 11 ? ["mode", "pads", "value"] : ["mode"])
                let modeName = try n.string("mode", default: "constant")
                guard let mode = Mode(rawValue: modeName), mode != .wrap || b.opset >= 19 else { throw n.error("mode '\(modeName)' is not supported") }
                let rank = try b.shape(of: n.inputs[0], n).count
                var pads: [Int]
                var inputs = [n.inputs[0]]
                if b.opset < 11 {
                    try n.requireInputs(1...1)
                    guard let p = try n.ints("pads") else { throw n.error("attribute 'pads' is required") }
                    pads = p
                    if mode == .constant {
                        let name = "\(n.output)/value"
                        b.addConstant(name, Tensor(dtype: try b.info(of: n.inputs[0], n).dtype, shape: [], doubles: [Double(try n.float("value", default: 0))]))
                        inputs.append(name)
                    }
                } else {
                    try n.requireInputs(2...4)
                    // Pads computed from shapes (torch's exports pad windows so): the IR's second input.
                    if b.constants[n.inputs[1]] == nil && n.input(3) == nil {
                        return try b.emit(n, Pad(mode: mode, pads: nil), [n.inputs[0], n.inputs[1]] + (mode == .constant ? n.input(2).map { [$0] } ?? [] : []))
                    }
                    pads = try b.constantInts(n.inputs[1], n, "pads")
                    if let axesName = n.input(3) {
                        let axes = try b.constantInts(axesName, n, "axes")
                        guard pads.count == 2 * axes.count else { throw n.error("pads \(pads) must hold 2 × \(axes.count) values for axes \(axes)") }
                        var full = [Int](repeating: 0, count: 2 * rank)
                        for (k, axis) in axes.enumerated() {
                            let a: Int
                            do throws(OpFailure) { a = try normalizedAxis(axis, rank: rank) } catch { throw n.error(error.message) }
                            full[a] = pads[k]
                            full[a + rank] = pads[k + axes.count]
                        }
                        pads = full
                    }
                    if let value = n.input(2), mode == .constant { inputs.append(value) }
                }
                try b.emit(n, Pad(mode: mode, pads: pads), inputs)
            }]
        }
    }
}

/// An f32 transpose: each output element read at its permuted input offset.
struct TransposeStep: StepKernel {
    let perm: [Int]
    func describe(inputShapes: [[Int]], outputShape: [Int]) -> (text: String, flops: Double, executed: Double) { ("transpose \(perm)", 0, 0) }

    /// The permutation as a batch of 2-D transposes, when it is one: input axes that stay adjacent
    /// and in order are merged (NCHW → NHWC is [N, C, H·W] → [N, H·W, C]), and what is left swaps
    /// the last two of at most three — (batch, rows, columns) of the input.
    static func matrices(_ perm: [Int], _ input: [Int]) -> (batch: Int, rows: Int, columns: Int)? {
        var runs: [[Int]] = []  // in output order
        for axis in perm {
            if let last = runs.last?.last, axis == last + 1 { runs[runs.count - 1].append(axis) } else { runs.append([axis]) }
        }
        let order = runs.indices.sorted { runs[$0][0] < runs[$1][0] }  // runs in input order
        let sizes = order.map { runs[$0].reduce(1) { $0 * input[$1] } }
        let merged = runs.indices.map { run in order.firstIndex(of: run)! }  // output → merged input axis
        switch merged {
        case [1, 0]: return (1, sizes[0], sizes[1])
        case [0, 2, 1]: return (sizes[0], sizes[1], sizes[2])
        default: return nil
        }
    }

    func run(_ b: StepBuffers) {
        let x = b.inputs[0], y = b.output
        if let (batch, rows, columns) = Self.matrices(perm, b.inputShapes[0]) {
            // 8×8 blocks in vector registers (ConvNeXt's 46 NCHW ⇄ NHWC permutes took 3.1 ms
            // element by element in 32 × 32 blocks, onnxruntime's 0.6).
            TransposeKernels.transpose(x, y, batch: batch, rows: rows, columns: columns, pool: b.pool, kernels: b.kernels)
            return
        }
        let shape = b.outputShape
        let strides = denseStrides(b.inputShapes[0])
        let permuted = perm.map { strides[$0] }
        // The innermost output dim is copied as a strided row.
        let inner = shape.last ?? 1, innerStride = permuted.last ?? 1
        if innerStride == 1 && inner >= 64 {
            // Rows that stay contiguous (ShuffleNet's channel shuffle moves whole planes): each a
            // block copy, rows in parallel — one element at a time on one thread, the 16 shuffles
            // took 0.33 ms of ShuffleNet's 4.8, and longer on two threads (the other core slept).
            let dims = Array(shape.dropLast()), steps = Array(permuted.dropLast())
            let rows = dims.product, perTask = max(1, ThreadPool.chunk / inner)
            b.pool.parallelFor((rows + perTask - 1) / perTask) { task in
                for row in task * perTask..<min(rows, (task + 1) * perTask) {
                    var rest = row, at = 0
                    for d in dims.indices.reversed() {
                        at += rest % dims[d] * steps[d]
                        rest /= dims[d]
                    }
                    (y + row * inner).update(from: x + at, count: inner)
                }
            }
            return
        }
        ElementwiseKernels.forEachRow(of: shape, strides: [permuted]) { o, at in
            let row = y + o * inner, source = x + at[0]
            for i in 0..<inner { row[i] = source[i * innerStride] }
        }
    }
}

/// Split: each output a copy of its slice of the input along `axis` — `outer` runs of
/// `size · inner` contiguous floats per output, copied in parallel.
struct SplitKernel: StepKernel {
    let axis: Int
    let sizes: [Int]
    func describe(inputShapes: [[Int]], outputShape: [Int]) -> (text: String, flops: Double, executed: Double) { ("split", 0, 0) }
    func run(_ b: StepBuffers) {
        let x = b.inputShapes[0], input = b.inputs[0]
        let outer = x[..<axis].product, inner = x[(axis + 1)...].product, total = x[axis]
        let parts = sizes, outputs = b.outputs
        let starts = parts.indices.map { parts[..<$0].reduce(0, +) }
        b.pool.parallelFor(parts.count * outer) { task in
            let (k, o) = (task / outer, task % outer)
            let run = parts[k] * inner
            (outputs[k] + o * run).update(from: input + (o * total + starts[k]) * inner, count: run)
        }
    }
}
