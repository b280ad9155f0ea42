/// Reductions over axes: ReduceMean, ReduceSum, ReduceMax, ReduceMin, ReduceProd, ReduceL1,
/// ReduceL2, ReduceSumSquare, ReduceLogSum, ReduceLogSumExp; ArgMax and ArgMin. A ReduceMean over
/// the height and width of a 4-D input — global average pooling, as the dynamo exporter writes
/// AdaptiveAvgPool2d(1) — imports as GlobalAveragePool, which has a fast kernel.
#if canImport(Glibc)
import Glibc
#endif
import ZooCore

extension Op {
    public struct Reduce: Operator, Equatable {
        public enum Function: String, Sendable, CaseIterable {
            case mean = "ReduceMean", sum = "ReduceSum", max = "ReduceMax", min = "ReduceMin", prod = "ReduceProd"
            case l1 = "ReduceL1", l2 = "ReduceL2", sumSquare = "ReduceSumSquare", logSum = "ReduceLogSum", logSumExp = "ReduceLogSumExp"

            /// The reduction of `values` in Double.
            func callAsFunction(_ values: [Double]) -> Double {
                switch self {
                case .mean: values.reduce(0, +) / Double(values.count)
                case .sum: values.reduce(0, +)
                case .max: values.contains(where: \.isNaN) ? .nan : values.max() ?? -.infinity
                case .min: values.contains(where: \.isNaN) ? .nan : values.min() ?? .infinity
                case .prod: values.reduce(1, *)
                case .l1: values.reduce(0) { $0 + Swift.abs($1) }
                case .l2: values.reduce(0) { $0 + $1 * $1 }.squareRoot()
                case .sumSquare: values.reduce(0) { $0 + $1 * $1 }
                case .logSum: Glibc.log(values.reduce(0, +))
                case .logSumExp:
                    { let m = values.max() ?? 0; return m.isFinite ? m + Glibc.log(values.reduce(0) { $0 + Glibc.exp($1 - m) }) : Glibc.log(values.reduce(0) { $0 + Glibc.exp($1) }) }()
                }
            }
        }

        public var function: Function
        /// nil: every axis (or none, with `noopWithEmptyAxes`).
        public var axes: [Int]?
        public var keepDims: Bool
        public var noopWithEmptyAxes: Bool
        public init(_ function: Function, axes: [Int]?, keepDims: Bool = true, noopWithEmptyAxes: Bool = false) {
            self.function = function
            self.axes = axes
            self.keepDims = keepDims
            self.noopWithEmptyAxes = noopWithEmptyAxes
        }
        public var name: String { function.rawValue }
        public var summary: String { (axes.map { "axes=\($0)" } ?? "all") + (keepDims ? " keepdims" : "") }

        func reduced(_ rank: Int) throws(OpFailure) -> Set<Int> {
            guard let axes, !axes.isEmpty else { return noopWithEmptyAxes ? [] : Set(0..<rank) }
            var set: Set<Int> = []
            for axis in axes { set.insert(try normalizedAxis(axis, rank: rank)) }
            return set
        }

        public func infer(_ inputs: [ValueInfo]) throws(OpFailure) -> [ValueInfo] {
            let x = inputs[0]
            guard x.dtype != .bool else { throw OpFailure("\(name) does not take bool input") }
            let axes = try reduced(x.shape.count)
            var shape: [Dim] = []
            for (d, dim) in x.shape.enumerated() {
                if axes.contains(d) { if keepDims { shape.append(.fixed(1)) } } else { shape.append(dim) }
            }
            return [ValueInfo(dtype: x.dtype, shape: shape)]
        }

        public func evaluate(_ inputs: [Tensor]) throws(OpFailure) -> [Tensor] {
            let x = inputs[0], shape = x.shape
            let axes = try reduced(shape.count)
            let kept = shape.indices.filter { !axes.contains($0) }
            let outShape = shape.indices.compactMap { axes.contains($0) ? (keepDims ? 1 : nil) : shape[$0] }
            // Each input element joins the group of its kept coordinates (C order within a group).
            let strides = denseStrides(shape), keptStrides = denseStrides(kept.map { shape[$0] })
            let outCount = kept.map { shape[$0] }.product
            let group = (0..<x.count).map { i in
                kept.indices.reduce(0) { $0 + (i / strides[kept[$1]]) % shape[kept[$1]] * keptStrides[$1] }
            }
            // Integer sums, extremes and products are exact in Int64; the rest go through Double.
            if !x.dtype.isFloatingPoint, [.sum, .max, .min, .prod, .l1, .sumSquare].contains(function) {
                var groups = [[Int64]](repeating: [], count: outCount)
                for (i, v) in x.int64s().enumerated() { groups[group[i]].append(v) }
                let reduced = groups.map { g -> Int64 in
                    switch function {
                    case .sum: g.reduce(0, &+)
                    case .max: g.max() ?? .min
                    case .min: g.min() ?? .max
                    case .prod: g.reduce(1, &*)
                    case .l1: g.reduce(0) { $0 &+ Swift.abs($1) }
                    default: g.reduce(0) { $0 &+ $1 &* $1 }
                    }
                }
                return [Tensor(dtype: x.dtype, shape: outShape, int64s: reduced)]
            }
            var groups = [[Double]](repeating: [], count: outCount)
            for (i, v) in x.doubles().enumerated() { groups[group[i]].append(v) }
            return [Tensor(dtype: x.dtype, shape: outShape, doubles: groups.map { function($0) })]
        }

        public func exportONNX(_ node: Node, to onnx: inout ONNXExporter) throws(OpFailure) {
            var attributes: [(name: String, value: ONNXExporter.Attribute)] = [("keepdims", .int(keepDims ? 1 : 0))]
            let axesAsInput = onnx.opset >= 18 || (function == .sum && onnx.opset >= 13)
            if noopWithEmptyAxes {
                guard axesAsInput else { throw OpFailure("noop_with_empty_axes needs axes as an input (opset 18, or 13 for ReduceSum)") }
                attributes.append(("noop_with_empty_axes", .int(1)))
            }
            guard let axes else { return onnx.emit(name, attributes) }
            if axesAsInput {
                let name = onnx.addInitializer(node.name + ".axes", Tensor(int64s: axes, shape: [axes.count]))
                onnx.emit(self.name, attributes, inputs: [onnx.resolve(node.inputs[0]), name])
            } else {
                onnx.emit(name, attributes + [("axes", .ints(axes))])
            }
        }

        public static var onnxImporters: [ONNXImporter] {
            Function.allCases.map { function in
                ONNXImporter(function.rawValue) { (b: inout ONNXGraphBuilder, n: ONNXNode) throws(ONNXImportError) in
                    // Axes are an attribute until opset 18 (ReduceSum: 13), then an optional input.
                    let axesAsInput = b.opset >= 18 || (function == .sum && b.opset >= 13)
                    var axes: [Int]?
                    if axesAsInput {
                        try n.allow(["keepdims", "noop_with_empty_axes"])
                        try n.requireInputs(1...2)
                        if let input = n.input(1) { axes = try b.constantInts(input, n, "axes") }
                    } else {
                        try n.allow(["axes", "keepdims"])
                        try n.requireInputs(1...1)
                        axes = try n.ints("axes")
                    }
                    let keepDims = try n.int("keepdims", default: 1) != 0
                    let noop = try n.int("noop_with_empty_axes", default: 0) != 0
                    if function == .mean, let axes, axes.count == 2 {
                        let x = try b.info(of: n.inputs[0], n)
                        if x.shape.count == 4, x.dtype == .f32, Set(axes.map { $0 < 0 ? $0 + 4 : $0 }) == [2, 3] {
                            if keepDims { return try b.emit(n, GlobalAveragePool(), [n.inputs[0]]) }
                            let pooled = "\(n.output)/pooled"
                            b.append(Node("\(n.name)/pool", GlobalAveragePool(), inputs: [n.inputs[0]], output: pooled))
                            b.append(Node(n.name, Flatten(axis: 1), inputs: [pooled], output: n.output))
                            return
                        }
                    }
                    try b.emit(n, Reduce(function, axes: axes, keepDims: keepDims, noopWithEmptyAxes: noop), [n.inputs[0]])
                }
            }
        }
    }

    /// The index (int64) of the largest / smallest element along `axis` (the first, or with
    /// `selectLastIndex` the last, among equals).
    public struct ArgExtreme: Operator, Equatable {
        public var max: Bool
        public var axis: Int
        public var keepDims: Bool
        public var selectLastIndex: Bool
        public init(max: Bool, axis: Int, keepDims: Bool, selectLastIndex: Bool) {
            self.max = max
            self.axis = axis
            self.keepDims = keepDims
            self.selectLastIndex = selectLastIndex
        }
        public var name: String { max ? "ArgMax" : "ArgMin" }
        public var summary: String { "axis=\(axis)" + (keepDims ? " keepdims" : "") + (selectLastIndex ? " last" : "") }

        public func infer(_ inputs: [ValueInfo]) throws(OpFailure) -> [ValueInfo] {
            let x = inputs[0].shape
            let a = try normalizedAxis(axis, rank: x.count)
            var shape = x
            if keepDims { shape[a] = .fixed(1) } else { shape.remove(at: a) }
            return [ValueInfo(dtype: .i64, shape: shape)]
        }
        public func evaluate(_ inputs: [Tensor]) throws(OpFailure) -> [Tensor] {
            let x = inputs[0].shape
            let a = try normalizedAxis(axis, rank: x.count)
            let values = inputs[0].doubles()
            let outer = x[..<a].product, length = x[a], inner = x[(a + 1)...].product
            var result: [Int64] = []
            for o in 0..<outer {
                for i in 0..<inner {
                    var best = 0
                    for k in 0..<length {
                        let v = values[(o * length + k) * inner + i], b = values[(o * length + best) * inner + i]
                        let better = max ? (v > b || (selectLastIndex && v == b)) : (v < b || (selectLastIndex && v == b))
                        if k > 0 && better { best = k }
                    }
                    result.append(Int64(best))
                }
            }
            var shape = x
            if keepDims { shape[a] = 1 } else { shape.remove(at: a) }
            return [Tensor(dtype: .i64, shape: shape, int64s: result)]
        }
        public func exportONNX(_ node: Node, to onnx: inout ONNXExporter) throws(OpFailure) {
            var attributes: [(name: String, value: ONNXExporter.Attribute)] = [("axis", .int(axis)), ("keepdims", .int(keepDims ? 1 : 0))]
            if selectLastIndex { attributes.append(("select_last_index", .int(1))) }
            onnx.emit(name, attributes)
        }
        public static var onnxImporters: [ONNXImporter] {
            [true, false].map { max in
                ONNXImporter(max ? "ArgMax" : "ArgMin") { (b: inout ONNXGraphBuilder, n: ONNXNode) throws(ONNXImportError) in
                    try n.allow(b.opset >= 12 ? ["axis", "keepdims", "select_last_index"] : ["axis", "keepdims"])
                    try n.requireInputs(1...1)
                    try b.emit(n, ArgExtreme(max: max, axis: try n.int("axis", default: 0), keepDims: try n.int("keepdims", default: 1) != 0,
                                             selectLastIndex: try n.int("select_last_index", default: 0) != 0), [n.inputs[0]])
                }
            }
        }
    }
}

extension Op {
    /// The k largest (or smallest) elements along `axis` and their int64 indices: two outputs. Ties
    /// keep the lower index first (ONNX TopK).
    public struct TopK: Operator, Equatable {
        public var axis: Int
        public var largest: Bool
        public var sorted: Bool
        public init(axis: Int = -1, largest: Bool = true, sorted: Bool = true) {
            self.axis = axis
            self.largest = largest
            self.sorted = sorted
        }
        public var name: String { "TopK" }
        public var inputArity: ClosedRange<Int> { 2...2 }
        public var outputCount: Int { 2 }
        public var summary: String { "axis=\(axis)" + (largest ? "" : " smallest") }

        public func infer(_ inputs: [ValueInfo]) throws(OpFailure) -> [ValueInfo] {
            let x = inputs[0].shape
            let a = try normalizedAxis(axis, rank: x.count)
            guard let k = inputs[1].value?.integers(), k.count == 1 else { throw OpFailure("K '\(inputs[1].name)' must be a known one-element integer") }
            guard k[0] >= 0, x[a].value.map({ k[0] <= $0 }) ?? true else { throw OpFailure("K \(k[0]) is out of range for dimension \(a) of size \(x[a])") }
            var shape = x
            shape[a] = .fixed(k[0])
            return [ValueInfo(dtype: inputs[0].dtype, shape: shape), ValueInfo(dtype: .i64, shape: shape)]
        }

        public func evaluate(_ inputs: [Tensor]) throws(OpFailure) -> [Tensor] {
            let x = inputs[0].shape, a = try normalizedAxis(axis, rank: x.count), k = inputs[1].integers()[0]
            guard (0...x[a]).contains(k) else { throw OpFailure("K \(k) is out of range for dimension \(a) of size \(x[a])") }
            let v = inputs[0].doubles()
            let outer = x[..<a].product, length = x[a], inner = x[(a + 1)...].product
            var values = [Double](), indices = [Int64]()
            values.reserveCapacity(outer * k * inner)
            var order = [[Int]](repeating: [], count: outer * inner)
            for o in 0..<outer {
                for i in 0..<inner {
                    let at = { (j: Int) in v[(o * length + j) * inner + i] }
                    order[o * inner + i] = Array((0..<length).sorted { p, q in
                        let (x, y) = (at(p), at(q))
                        return x == y ? p < q : (largest ? x > y : x < y)
                    }.prefix(k))
                }
            }
            for o in 0..<outer {
                for j in 0..<k {
                    for i in 0..<inner {
                        let index = order[o * inner + i][j]
                        values.append(v[(o * length + index) * inner + i])
                        indices.append(Int64(index))
                    }
                }
            }
            var shape = x
            shape[a] = k
            return [Tensor(dtype: inputs[0].dtype, shape: shape, doubles: values), Tensor(dtype: .i64, shape: shape, int64s: indices)]
        }

        public func exportONNX(_ node: Node, to onnx: inout ONNXExporter) throws(OpFailure) {
            onnx.emit("TopK", [("axis", .int(axis))] + (largest ? [] : [("largest", .int(0))]))
        }

        public static var onnxImporters: [ONNXImporter] {
            [ONNXImporter("TopK") { (b: inout ONNXGraphBuilder, n: ONNXNode) throws(ONNXImportError) in
                try n.allow(b.opset >= 11 ? ["axis", "largest", "sorted"] : b.opset >= 10 ? ["axis"] : ["axis", "k"])
                var inputs = [n.inputs[0]]
                if b.opset < 10 {
                    try n.requireInputs(1...1)
                    guard let k = try n.int("k") else { throw n.error("attribute 'k' is required") }
                    let name = "\(n.output)/k"
                    b.addConstant(name, Tensor(int64s: [k], shape: [1]))
                    inputs.append(name)
                } else {
                    try n.requireInputs(2...2)
                    inputs.append(n.inputs[1])
                }
                let op = TopK(axis: try n.int("axis", default: -1), largest: try n.int("largest", default: 1) != 0,
                              sorted: try n.int("sorted", default: 1) != 0)
                try b.emit(n, op, inputs)
            }]
        }
    }
}
