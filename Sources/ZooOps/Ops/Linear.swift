/// Matrix products: Gemm (and torch.nn.Linear, its transB form, with a packed fast kernel) and
/// MatMul (NumPy's matmul: batched, broadcasting, 1-D operands promoted).
import ZooCore
import ZooKernels

extension Op {
    /// Y = alpha·A'·B' + beta·C (ONNX Gemm); torch.nn.Linear is transB with B = weight [out, in].
    public struct Gemm: Operator, Equatable {
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

        public var name: String { "Gemm" }
        public var inputArity: ClosedRange<Int> { 2...3 }
        public var summary: String {
            var parts: [String] = []
            if transA { parts.append("transA") }
            if transB { parts.append("transB") }
            if alpha != 1 { parts.append("alpha=\(alpha)") }
            if beta != 1 { parts.append("beta=\(beta)") }
            return parts.joined(separator: " ")
        }

        public func infer(_ inputs: [ValueInfo]) throws(OpFailure) -> [ValueInfo] {
            let dtype = try DTypeRules.common(inputs)
            guard dtype.isFloatingPoint else { throw OpFailure("inputs are \(dtype.rawValue), not floating point") }
            let a = inputs[0].shape, b = inputs[1].shape
            guard a.count == 2, b.count == 2 else { throw OpFailure("A and B must be 2-D, are rank \(a.count) and \(b.count)") }
            let (m, ka) = transA ? (a[1], a[0]) : (a[0], a[1])
            let (kb, n) = transB ? (b[1], b[0]) : (b[0], b[1])
            guard ka == kb else { throw OpFailure("A has \(ka) columns but B has \(kb) rows (inner dimensions differ)") }
            if inputs.count == 3 {
                let c = inputs[2].shape
                let ok = c.isEmpty || c == [n] || c == [.fixed(1)] || c == [.fixed(1), n] || c == [m, n] || c == [m, .fixed(1)]
                    || c == [.fixed(1), .fixed(1)]
                guard ok else { throw OpFailure("C \(Dim.text(c)) does not broadcast to [\(m), \(n)]") }
            }
            return [ValueInfo(dtype: dtype, shape: [m, n])]
        }

        public func evaluate(_ inputs: [Tensor]) throws(OpFailure) -> [Tensor] {
            let a = inputs[0].doubles(), b = inputs[1].doubles()
            let sa = inputs[0].shape, sb = inputs[1].shape
            let (m, k) = transA ? (sa[1], sa[0]) : (sa[0], sa[1])
            let n = transB ? sb[0] : sb[1]
            let c = inputs.count == 3 ? inputs[2].doubles() : nil
            let cIndex = inputs.count == 3 ? Broadcast.indices(of: inputs[2].shape, in: [m, n]) : []
            var y = [Double](repeating: 0, count: m * n)
            for i in 0..<m {
                for j in 0..<n {
                    var sum = 0.0
                    for p in 0..<k { sum += (transA ? a[p * m + i] : a[i * k + p]) * (transB ? b[j * k + p] : b[p * n + j]) }
                    y[i * n + j] = Double(alpha) * sum + (c.map { Double(beta) * $0[cIndex[i * n + j]] } ?? 0)
                }
            }
            let dtype = inputs[0].dtype == inputs[1].dtype ? inputs[0].dtype : .f32
            return [Tensor(dtype: dtype, shape: [m, n], doubles: y)]
        }

        /// torch.nn.Linear (x · Wᵀ + b, W and b constant) becomes the packed `LinearKernel` (with the
        /// following ReLU fused when allowed); any other Gemm a plain loop.
        public func lower(_ context: LoweringContext) throws(OpFailure) -> Lowering? {
            let node = context.node
            guard !transA, transB, alpha == 1, beta == 1, let w = context.constant(node.inputs[1]), w.rank == 2 else {
                return Lowering(GemmStep(gemm: self), inputs: node.inputs)
            }
            if node.inputs.count == 3 {
                guard let b = context.constant(node.inputs[2]), b.shape == [w.shape[0]] else {
                    return Lowering(GemmStep(gemm: self), inputs: node.inputs)
                }
            }
            let weight = try context.constantF32(1, "weight")
            let bias = node.inputs.count == 3 ? try context.constantF32(2, "bias") : nil
            let activation = context.offer.activationAlone
            // Many rows per image (the tokens of ViT, ConvNeXt: [N*197, 768]), or a fixed count of many
            // rows: the tokens layout (weights packed as B panels, the input read in place); a few rows
            // per image (classifier heads): the rows layout.
            let rows = context.inputs[0].shape.first.map { SymbolicProduct($0) }
            let tokens = rows.map { $0.symbols.isEmpty ? $0.coefficient >= 64 : $0.coefficient >= 16 } ?? false
            // float32() of a dense f32 tensor is the tensor itself: weights of a mapped checkpoint move into
            // the kernel's huge-page memory (releasing the file's pages); others are read in place.
            let kernel = weight.withContiguousBytes { wb in
                let wp = wb.bindMemory(to: Float.self).baseAddress!
                guard let bias else {
                    return LinearKernel(inFeatures: weight.shape[1], outFeatures: weight.shape[0], weights: wp, owner: weight.storage,
                                        moveFromMapping: weight.storage.isMapped, bias: nil, activation: activation, kernels: context.kernels,
                                        tokens: tokens)
                }
                return bias.withContiguousBytes { bb in
                    LinearKernel(inFeatures: weight.shape[1], outFeatures: weight.shape[0], weights: wp, owner: weight.storage,
                                 moveFromMapping: weight.storage.isMapped, bias: bb.bindMemory(to: Float.self).baseAddress,
                                 activation: activation, kernels: context.kernels, tokens: tokens)
                }
            }
            // The tokens layout packed its own copy: the weight's mapped pages go (as a convolution's do).
            if tokens { weight.storage.releasePages() }
            return Lowering(LinearStep(kernel: kernel), inputs: [node.inputs[0]], fusedActivation: activation != nil)
        }

        public func exportONNX(_ node: Node, to onnx: inout ONNXExporter) throws(OpFailure) {
            var attributes: [(name: String, value: ONNXExporter.Attribute)] = [("alpha", .float(alpha)), ("beta", .float(beta))]
            if transA { attributes.append(("transA", .int(1))) }
            if transB { attributes.append(("transB", .int(1))) }
            onnx.emit("Gemm", attributes)
        }

        public static var onnxImporters: [ONNXImporter] {
            [ONNXImporter("Gemm") { (b: inout ONNXGraphBuilder, n: ONNXNode) throws(ONNXImportError) in
                var allowed: Set<String> = ["alpha", "beta", "transA", "transB"]
                if b.opset < 7 { allowed.insert("broadcast") }  // Gemm-1/6
                try n.allow(allowed)
                try n.requireInputs(b.opset >= 11 ? 2...3 : 3...3)
                let gemm = Gemm(alpha: try n.float("alpha", default: 1), beta: try n.float("beta", default: 1),
                                transA: try n.int("transA", default: 0) != 0, transB: try n.int("transB", default: 0) != 0)
                var inputs = [n.inputs[0], n.inputs[1]]
                if let c = n.input(2) {
                    if b.opset >= 7 {
                        inputs.append(c)
                    } else {
                        // Gemm-1/6: C is [M, N], or with broadcast=1 is broadcast to it (legacy rules: suffix
                        // matching, no axis attribute).
                        let a = try b.shape(of: n.inputs[0], n), bShape = try b.shape(of: n.inputs[1], n), cShape = try b.shape(of: c, n)
                        guard a.count == 2, bShape.count == 2 else { throw n.error("A \(Dim.text(a)) and B \(Dim.text(bShape)) must be 2-D") }
                        let y = [gemm.transA ? a[1] : a[0], gemm.transB ? bShape[0] : bShape[1]]
                        if try n.int("broadcast", default: 0) != 0 {
                            var value = try b.legacyBroadcast(n, c, shape: cShape, to: y, axis: nil, role: "C")
                            // A one-element [1, 1] C: the IR's Gemm takes a one-element C as [1].
                            if cShape == [.fixed(1), .fixed(1)], y != cShape { value = try b.reshaped(n, value, to: [1], role: "C") }
                            inputs.append(value)
                        } else {
                            guard cShape == y else {
                                throw n.error("C \(Dim.text(cShape)) must be [M, N] = \(Dim.text(y)): broadcast is 0, and before opset 7 Gemm broadcasts C only with broadcast=1")
                            }
                            inputs.append(c)
                        }
                    }
                }
                try b.emit(n, gemm, inputs)
            }]
        }
    }

    /// NumPy matmul: [..., M, K] · [..., K, N] → [..., M, N], batch dims broadcast; a 1-D A is a row
    /// [1, K] and a 1-D B a column [K, 1], their unit dim removed from the result.
    public struct MatMul: Operator, Equatable {
        public init() {}
        public var name: String { "MatMul" }
        public var inputArity: ClosedRange<Int> { 2...2 }

        public func infer(_ inputs: [ValueInfo]) throws(OpFailure) -> [ValueInfo] {
            let dtype = try DTypeRules.common(inputs)
            guard dtype != .bool else { throw OpFailure("MatMul does not take bool inputs") }
            var a = inputs[0].shape, b = inputs[1].shape
            guard !a.isEmpty, !b.isEmpty else { throw OpFailure("operands must have rank ≥ 1") }
            let promotedA = a.count == 1, promotedB = b.count == 1
            if promotedA { a.insert(.fixed(1), at: 0) }
            if promotedB { b.append(.fixed(1)) }
            guard a[a.count - 1] == b[b.count - 2] else {
                throw OpFailure("A \(inputs[0]) has \(a[a.count - 1]) columns but B \(inputs[1]) has \(b[b.count - 2]) rows")
            }
            let batch = try ShapeRules.broadcast(ValueInfo(dtype: dtype, shape: Array(a.dropLast(2))),
                                                 ValueInfo(dtype: dtype, shape: Array(b.dropLast(2))))
            var shape = batch + [a[a.count - 2], b[b.count - 1]]
            if promotedB { shape.removeLast() }
            if promotedA { shape.remove(at: shape.count - (promotedB ? 1 : 2)) }
            return [ValueInfo(dtype: dtype, shape: shape)]
        }

        public func evaluate(_ inputs: [Tensor]) throws(OpFailure) -> [Tensor] {
            var sa = inputs[0].shape, sb = inputs[1].shape
            let promotedA = sa.count == 1, promotedB = sb.count == 1
            if promotedA { sa.insert(1, at: 0) }
            if promotedB { sb.append(1) }
            let m = sa[sa.count - 2], k = sa[sa.count - 1], n = sb[sb.count - 1]
            let batchA = Array(sa.dropLast(2)), batchB = Array(sb.dropLast(2))
            let batch = try Broadcast.shape([batchA, batchB])
            let ia = Broadcast.indices(of: batchA, in: batch), ib = Broadcast.indices(of: batchB, in: batch)
            var shape = batch + [m, n]
            let dtype = inputs[0].dtype == inputs[1].dtype ? inputs[0].dtype : .f32
            let count = batch.product * m * n
            func product<T: Numeric>(_ a: [T], _ b: [T]) -> [T] {
                var y = [T](repeating: 0, count: count)
                for (t, (pa, pb)) in zip(ia, ib).enumerated() {
                    for i in 0..<m {
                        for j in 0..<n {
                            var sum: T = 0
                            for p in 0..<k { sum += a[pa * m * k + i * k + p] * b[pb * k * n + p * n + j] }
                            y[t * m * n + i * n + j] = sum
                        }
                    }
                }
                return y
            }
            if promotedB { shape.removeLast() }
            if promotedA { shape.remove(at: shape.count - (promotedB ? 1 : 2)) }
            if dtype.isFloatingPoint {
                return [Tensor(dtype: dtype, shape: shape, doubles: product(inputs[0].doubles(), inputs[1].doubles()))]
            }
            // Integers wrap, as in C.
            let a = inputs[0].int64s(), b = inputs[1].int64s()
            var y = [Int64](repeating: 0, count: count)
            for (t, (pa, pb)) in zip(ia, ib).enumerated() {
                for i in 0..<m {
                    for j in 0..<n {
                        var sum: Int64 = 0
                        for p in 0..<k { sum = sum &+ a[pa * m * k + i * k + p] &* b[pb * k * n + p * n + j] }
                        y[t * m * n + i * n + j] = sum
                    }
                }
            }
            return [Tensor(dtype: dtype, shape: shape, int64s: y)]
        }

        /// f32: one plain GEMM loop per (broadcast) batch matrix over the planned buffers, instead
        /// of the Double reference on copied tensors.
        public func lower(_ context: LoweringContext) throws(OpFailure) -> Lowering? {
            Lowering(MatMulStep(), inputs: context.node.inputs)
        }

        public func exportONNX(_ node: Node, to onnx: inout ONNXExporter) throws(OpFailure) { onnx.emit("MatMul") }

        /// A 2-D input times a 2-D constant is a Gemm (its fast path); anything else is MatMul.
        public static var onnxImporters: [ONNXImporter] {
            [ONNXImporter("MatMul") { (b: inout ONNXGraphBuilder, n: ONNXNode) throws(ONNXImportError) in
                try n.allow([])
                try n.requireInputs(2...2)
                let a = try b.info(of: n.inputs[0], n)
                if a.shape.count == 2, a.dtype == .f32, let w = b.constants[n.inputs[1]], w.rank == 2, w.dtype == .f32 {
                    return try b.emit(n, Gemm(), [n.inputs[0], n.inputs[1]])
                }
                try b.emit(n, MatMul(), [n.inputs[0], n.inputs[1]])
            }]
        }
    }
}

/// torch.nn.Linear's packed kernel.
struct LinearStep: StepKernel {
    let kernel: LinearKernel
    func workspaceBytes(inputShapes: [[Int]], threads: Int) -> Int { kernel.workspaceBytes(batch: inputShapes[0][0], threads: threads) }
    func describe(inputShapes: [[Int]], outputShape: [Int]) -> (text: String, flops: Double, executed: Double) {
        let flops = 2 * Double(outputShape.product) * Double(kernel.inFeatures)
        return ("linear \(kernel.inFeatures)→\(kernel.outFeatures)\(kernel.activation.map { " +" + $0.name } ?? "")"
                + (kernel.tokens ? " tokens" : ""), flops, flops)
    }
    func run(_ b: StepBuffers) {
        kernel.run(input: b.inputs[0], output: b.output, batch: b.inputShapes[0][0], workspace: b.workspace, pool: b.pool)
    }
}

/// Batched, broadcasting f32 MatMul (`Op.MatMul`; its twin is `Op.MatMul.evaluate`): every batch
/// matrix of the output through the packed tiles (`MatrixProducts`).
struct MatMulStep: StepKernel {
    func describe(inputShapes: [[Int]], outputShape: [Int]) -> (text: String, flops: Double, executed: Double) {
        let a = inputShapes[0]
        let flops = 2 * Double(outputShape.product) * Double(a.last ?? 0)
        return ("matmul", flops, flops)
    }
    /// The products' sizes and which matrices of A and B each one multiplies.
    private func layout(_ shapes: [[Int]]) -> (m: Int, k: Int, n: Int, ia: [Int], ib: [Int]) {
        var sa = shapes[0], sb = shapes[1]
        if sa.count == 1 { sa.insert(1, at: 0) }
        if sb.count == 1 { sb.append(1) }
        let batchA = Array(sa.dropLast(2)), batchB = Array(sb.dropLast(2))
        let batch = (try? Broadcast.shape([batchA, batchB])) ?? []
        return (sa[sa.count - 2], sa[sa.count - 1], sb[sb.count - 1],
                Broadcast.indices(of: batchA, in: batch), Broadcast.indices(of: batchB, in: batch))
    }

    func workspaceBytes(inputShapes: [[Int]], threads: Int) -> Int {
        let p = layout(inputShapes)
        return MatrixProducts.workspaceBytes(count: p.ia.count, m: p.m, k: p.k, n: p.n)
    }

    func run(_ b: StepBuffers) {
        let p = layout(b.inputShapes)
        MatrixProducts.run(a: b.inputs[0], b: b.inputs[1], c: b.output, ia: p.ia, ib: p.ib, m: p.m, k: p.k, n: p.n,
                           workspace: b.workspace, pool: b.pool, kernels: b.kernels)
    }
}

/// Any other Gemm: a plain loop.
struct GemmStep: StepKernel {
    let gemm: Op.Gemm
    func describe(inputShapes: [[Int]], outputShape: [Int]) -> (text: String, flops: Double, executed: Double) {
        let a = inputShapes[0]
        let k = a.count == 2 ? (gemm.transA ? a[0] : a[1]) : 0
        return ("gemm", 2 * Double(outputShape.product * k), 2 * Double(outputShape.product * k))
    }
    func run(_ b: StepBuffers) {
        let a = b.inputShapes[0], bShape = b.inputShapes[1]
        let (m, k) = gemm.transA ? (a[1], a[0]) : (a[0], a[1])
        let n = gemm.transB ? bShape[0] : bShape[1]
        var c: UnsafePointer<Float>?
        var cRows = 0, cColumns = 0
        if b.inputs.count == 3 {
            let cShape = b.inputShapes[2]
            c = UnsafePointer(b.inputs[2])
            (cRows, cColumns) = cShape.count == 2 ? (cShape[0], cShape[1]) : (1, cShape.first ?? 1)
        }
        ElementwiseKernels.gemm(a: b.inputs[0], b: b.inputs[1], c: c, cRows: cRows, cColumns: cColumns, output: b.output,
                                m: m, n: n, k: k, transA: gemm.transA, transB: gemm.transB, alpha: gemm.alpha, beta: gemm.beta)
    }
}

extension Op {
    /// Einstein summation over the inputs (ONNX Einsum-12): "bhid,bhjd->bhij"; an implicit output
    /// is the letters used once, in alphabetical order; "..." stands for broadcast leading dims.
    public struct Einsum: Operator, Equatable {
        public var equation: String
        public init(equation: String) { self.equation = equation }
        public var name: String { "Einsum" }
        public var inputArity: ClosedRange<Int> { 1...Int.max }
        public var summary: String { "\"\(equation)\"" }

        /// The k-th dim an ellipsis stands for, as a letter no equation holds (Unicode private use).
        static func ellipsisLetter(_ k: Int) -> Character { Character(Unicode.Scalar(0xE000 + UInt32(k))!) }
        static func isEllipsis(_ c: Character) -> Bool { (c.unicodeScalars.first?.value ?? 0) >= 0xE000 }

        /// Each input's letters and the output's, with "..." expanded for the given ranks (as
        /// uppercase letters, which the equation may not use).
        func terms(_ ranks: [Int]) throws(OpFailure) -> (inputs: [[Character]], output: [Character]) {
            let text = equation.filter { $0 != " " }
            let parts = text.split(separator: "->", omittingEmptySubsequences: false).map(String.init)
            guard parts.count <= 2 else { throw OpFailure("equation '\(equation)' has more than one '->'") }
            let left = parts[0].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard left.count == ranks.count else { throw OpFailure("equation '\(equation)' has \(left.count) operands for \(ranks.count) inputs") }
            var ellipsisRank = 0
            var inputs: [[Character]] = []
            for (term, rank) in zip(left, ranks) {
                let letters = term.replacing("...", with: "")
                guard letters.allSatisfy({ $0.isLowercase || $0.isUppercase }), letters.allSatisfy({ (c: Character) in c.isASCII }) else {
                    throw OpFailure("equation '\(equation)': '\(term)' holds characters other than letters and '...'")
                }
                let hasEllipsis = term.contains("...")
                let extra = rank - letters.count
                guard extra >= 0, hasEllipsis || extra == 0 else { throw OpFailure("equation '\(equation)': '\(term)' does not match a rank-\(rank) input") }
                ellipsisRank = Swift.max(ellipsisRank, extra)
                inputs.append(Array(letters))  // ellipsis dims filled in below, once their count is known
            }
            // Ellipsis dims (private-use characters stand for them) align on the right: an input with fewer uses the last ones.
            for (k, term) in left.enumerated() where term.contains("...") {
                let extra = ranks[k] - term.replacing("...", with: "").count
                let pieces = term.split(separator: "...", omittingEmptySubsequences: false).map(String.init)
                let names = ((ellipsisRank - extra)..<ellipsisRank).map(Einsum.ellipsisLetter)
                inputs[k] = Array(pieces[0]) + names + Array(pieces[1])
            }
            let ellipsis = (0..<ellipsisRank).map(Einsum.ellipsisLetter)
            if parts.count == 2 {
                let right = parts[1]
                let pieces = right.split(separator: "...", omittingEmptySubsequences: false).map(String.init)
                return (inputs, Array(pieces[0]) + (pieces.count > 1 ? ellipsis + Array(pieces[1]) : []))
            }
            var counts: [Character: Int] = [:]
            for term in inputs { for c in term where !Einsum.isEllipsis(c) { counts[c, default: 0] += 1 } }
            return (inputs, ellipsis + counts.filter { $0.value == 1 }.keys.sorted())
        }

        public func infer(_ inputs: [ValueInfo]) throws(OpFailure) -> [ValueInfo] {
            let dtype = try DTypeRules.common(inputs)
            let (terms, output) = try self.terms(inputs.map(\.shape.count))
            var sizes: [Character: Dim] = [:]
            for (term, input) in zip(terms, inputs) {
                for (c, dim) in zip(term, input.shape) {
                    if let known = sizes[c], known != dim {
                        if known == .fixed(1) && Einsum.isEllipsis(c) { sizes[c] = dim } else if !(dim == .fixed(1) && Einsum.isEllipsis(c)) {
                            throw OpFailure("equation '\(equation)': '\(c)' is \(known) in one operand and \(dim) in another")
                        }
                    } else if sizes[c] == nil { sizes[c] = dim }
                }
            }
            var shape: [Dim] = []
            for c in output {
                guard let dim = sizes[c] else { throw OpFailure("equation '\(equation)': output letter '\(c)' is in no operand") }
                shape.append(dim)
            }
            return [ValueInfo(dtype: dtype, shape: shape)]
        }

        public func evaluate(_ inputs: [Tensor]) throws(OpFailure) -> [Tensor] {
            let (terms, output) = try self.terms(inputs.map(\.rank))
            var sizes: [Character: Int] = [:]
            for (term, input) in zip(terms, inputs) {
                for (c, n) in zip(term, input.shape) where sizes[c] == nil || sizes[c] == 1 { sizes[c] = n }
            }
            let summed = sizes.keys.filter { !output.contains($0) }.sorted()
            let letters = output + summed
            let extents = letters.map { sizes[$0]! }
            let values = inputs.map { $0.doubles() }
            // Each operand's element offset for a choice of every letter (broadcast dims of 1 stay at 0).
            let strides: [[Int]] = zip(terms, inputs).map { term, input in
                let dense = denseStrides(input.shape)
                return letters.map { c in
                    term.indices.filter { term[$0] == c }.reduce(0) { $0 + (input.shape[$1] == 1 ? 0 : dense[$1]) }
                }
            }
            let outCount = output.map { sizes[$0]! }.product, sumCount = summed.map { sizes[$0]! }.product
            var y = [Double](repeating: 0, count: outCount)
            var index = [Int](repeating: 0, count: letters.count)
            for o in 0..<outCount {
                var rest = o
                for d in (0..<output.count).reversed() { index[d] = rest % extents[d]; rest /= extents[d] }
                var total = 0.0
                for s in 0..<sumCount {
                    var r = s
                    for d in (output.count..<letters.count).reversed() { index[d] = r % extents[d]; r /= extents[d] }
                    var product = 1.0
                    for (k, v) in values.enumerated() {
                        var at = 0
                        for d in letters.indices { at += index[d] * strides[k][d] }
                        product *= v[at]
                    }
                    total += product
                }
                y[o] = total
            }
            let dtype = inputs.allSatisfy({ $0.dtype == inputs[0].dtype }) ? inputs[0].dtype : .f32
            return [Tensor(dtype: dtype, shape: output.map { sizes[$0]! }, doubles: y)]
        }

        public func exportONNX(_ node: Node, to onnx: inout ONNXExporter) throws(OpFailure) { onnx.emit("Einsum", [("equation", .string(equation))]) }

        public static var onnxImporters: [ONNXImporter] {
            [ONNXImporter("Einsum", since: 12) { (b: inout ONNXGraphBuilder, n: ONNXNode) throws(ONNXImportError) in
                try n.allow(["equation"])
                guard let equation = try n.string("equation") else { throw n.error("attribute 'equation' is required") }
                guard !n.inputs.isEmpty, n.inputs.allSatisfy({ !$0.isEmpty }) else { throw n.error("needs at least one input, none empty") }
                try b.emit(n, Einsum(equation: equation), n.inputs)
            }]
        }
    }
}
