/// Shape arithmetic and indexing: Shape, Size, Gather, Unsqueeze, Squeeze, Slice, Expand, Tile,
/// Range, ConstantOfShape, Where. Integer results computed from shapes are known while shapes are
/// inferred — up to symbolic dims (`ValueInfo.knownDims`) — so the Reshape they feed has a shape
/// before anything runs, whatever the batch.
import ZooCore
import ZooKernels

extension Op {
    /// The input's shape (dims [start, end), opset 15) as int64.
    public struct Shape: Operator, Equatable {
        public var start: Int
        public var end: Int?
        public init(start: Int = 0, end: Int? = nil) {
            self.start = start
            self.end = end
        }
        public var name: String { "Shape" }
        public var summary: String { start != 0 || end != nil ? "start=\(start) end=\(end.map(String.init) ?? "")" : "" }

        func range(_ rank: Int) -> Swift.Range<Int> {
            func clamp(_ v: Int) -> Int { Swift.min(Swift.max(v < 0 ? v + rank : v, 0), rank) }
            let s = clamp(start), e = clamp(end ?? rank)
            return s..<Swift.max(s, e)
        }

        public func infer(_ inputs: [ValueInfo]) throws(OpFailure) -> [ValueInfo] {
            let dims = Array(inputs[0].shape[range(inputs[0].shape.count)])
            return [ValueInfo(dtype: .i64, shape: [.fixed(dims.count)], knownDims: dims)]
        }
        public func evaluate(_ inputs: [Tensor]) throws(OpFailure) -> [Tensor] {
            let dims = Array(inputs[0].shape[range(inputs[0].rank)])
            return [Tensor(int64s: dims, shape: [dims.count])]
        }
        /// Before opset 15 Shape has no start/end: the whole shape, then a Slice.
        public func exportONNX(_ node: Node, to onnx: inout ONNXExporter) throws(OpFailure) {
            guard start != 0 || end != nil else { return onnx.emit("Shape") }
            if onnx.opset >= 15 {
                var attributes: [(name: String, value: ONNXExporter.Attribute)] = [("start", .int(start))]
                if let end { attributes.append(("end", .int(end))) }
                return onnx.emit("Shape", attributes)
            }
            let shape = onnx.emitStep("Shape", inputs: [onnx.resolve(node.inputs[0])])
            let starts = onnx.addInitializer(node.name + ".starts", Tensor(int64s: [start], shape: [1]))
            let ends = onnx.addInitializer(node.name + ".ends", Tensor(int64s: [end ?? Int(Int64.max)], shape: [1]))
            onnx.emitStep("Slice", inputs: [shape, starts, ends], final: true)
        }
        public static var onnxImporters: [ONNXImporter] {
            [
                ONNXImporter("Shape") { (b: inout ONNXGraphBuilder, n: ONNXNode) throws(ONNXImportError) in
                    try n.allow(b.opset >= 15 ? ["start", "end"] : [])
                    try n.requireInputs(1...1)
                    try b.emit(n, Shape(start: try n.int("start", default: 0), end: try n.int("end")), [n.inputs[0]])
                },
                .plain("Size", inputs: 1...1, Size()),
            ]
        }
    }

    /// The input's element count as an int64 scalar.
    public struct Size: Operator, Equatable {
        public init() {}
        public var name: String { "Size" }
        public func infer(_ inputs: [ValueInfo]) throws(OpFailure) -> [ValueInfo] {
            let dims = inputs[0].shape
            let fixed = dims.compactMap(\.value)
            return [ValueInfo(dtype: .i64, shape: [], value: fixed.count == dims.count ? Tensor(int64s: [fixed.product], shape: []) : nil)]
        }
        public func evaluate(_ inputs: [Tensor]) throws(OpFailure) -> [Tensor] { [Tensor(int64s: [inputs[0].count], shape: [])] }
        public func exportONNX(_ node: Node, to onnx: inout ONNXExporter) throws(OpFailure) { onnx.emit("Size") }
        public static var onnxImporters: [ONNXImporter] { [] }
    }

    /// Elements of `data` along `axis` at `indices` (negative counting from the end):
    /// out = data[:axis] + indices.shape + data[axis+1:].
    public struct Gather: Operator, Equatable {
        public var axis: Int
        public init(axis: Int) { self.axis = axis }
        public var name: String { "Gather" }
        public var inputArity: ClosedRange<Int> { 2...2 }
        public var summary: String { "axis=\(axis)" }

        public func infer(_ inputs: [ValueInfo]) throws(OpFailure) -> [ValueInfo] {
            let data = inputs[0], indices = inputs[1]
            guard indices.dtype == .i64 || indices.dtype == .i32 else { throw OpFailure("indices '\(indices.name)' are \(indices.dtype.rawValue), not int32/int64") }
            let a = try normalizedAxis(axis, rank: data.shape.count)
            let shape = Array(data.shape[..<a]) + indices.shape + Array(data.shape[(a + 1)...])
            if let value = indices.value, let size = data.shape[a].value {
                for i in value.integers() where !(-size..<size).contains(i) {
                    throw OpFailure("index \(i) is out of range for dimension \(a) of size \(size)")
                }
            }
            // Shape arithmetic: picking dims of a known shape.
            if data.shape.count == 1, let dims = data.knownDims, let picked = indices.value?.integers() {
                return [ValueInfo(dtype: data.dtype, shape: shape, knownDims: picked.map { dims[$0 < 0 ? $0 + dims.count : $0] })]
            }
            return [ValueInfo(dtype: data.dtype, shape: shape)]
        }

        public func evaluate(_ inputs: [Tensor]) throws(OpFailure) -> [Tensor] {
            let data = inputs[0], x = data.shape
            let a = try normalizedAxis(axis, rank: x.count)
            let indices = inputs[1].integers()
            for i in indices where !(-x[a]..<x[a]).contains(i) {
                throw OpFailure("index \(i) is out of range for dimension \(a) of size \(x[a])")
            }
            let shape = Array(x[..<a]) + inputs[1].shape + Array(x[(a + 1)...])
            let strides = denseStrides(x), indexStrides = denseStrides(inputs[1].shape)
            let q = inputs[1].rank
            return [data.remapped(to: shape) { o in
                var at = 0
                for d in 0..<a { at += o[d] * strides[d] }
                var k = 0
                for d in 0..<q { k += o[a + d] * indexStrides[d] }
                let i = indices[k]
                at += (i < 0 ? i + x[a] : i) * strides[a]
                for d in (a + 1)..<Swift.max(x.count, a + 1) { at += o[d - 1 + q] * strides[d] }
                return at
            }]
        }

        /// Constant indices (ViT's q/k/v picks, Swin's and MaxViT's): a copy kernel, `GatherStep`.
        public func lower(_ context: LoweringContext) throws(OpFailure) -> Lowering? {
            guard let indices = context.constant(context.node.inputs[1]), !indices.dtype.isFloatingPoint else { return nil }
            return Lowering(GatherStep(axis: axis, indices: indices.integers(), indexShape: indices.shape), inputs: [context.node.inputs[0]])
        }
        public var planTimeInputs: Set<Int> { [1] }

        public func exportONNX(_ node: Node, to onnx: inout ONNXExporter) throws(OpFailure) { onnx.emit("Gather", [("axis", .int(axis))]) }

        public static var onnxImporters: [ONNXImporter] {
            [ONNXImporter("Gather") { (b: inout ONNXGraphBuilder, n: ONNXNode) throws(ONNXImportError) in
                try n.allow(["axis"])
                try n.requireInputs(2...2)
                try b.emit(n, Gather(axis: try n.int("axis", default: 0)), [n.inputs[0], n.inputs[1]])
            }]
        }
    }

    /// Inserts dims of size 1 at `axes` (of the output).
    public struct Unsqueeze: Operator, Equatable {
        public var axes: [Int]
        public init(axes: [Int]) { self.axes = axes }
        public var name: String { "Unsqueeze" }
        public var summary: String { "axes=\(axes)" }

        func shape(_ x: [Dim]) throws(OpFailure) -> [Dim] {
            let rank = x.count + axes.count
            var normalized: Set<Int> = []
            for axis in axes {
                let a = try normalizedAxis(axis, rank: rank)
                guard normalized.insert(a).inserted else { throw OpFailure("axes \(axes) repeat an axis") }
            }
            var out: [Dim] = []
            var rest = x.makeIterator()
            for d in 0..<rank { out.append(normalized.contains(d) ? .fixed(1) : rest.next()!) }
            return out
        }

        public func infer(_ inputs: [ValueInfo]) throws(OpFailure) -> [ValueInfo] {
            let x = inputs[0]
            let shape = try self.shape(x.shape)
            if x.shape.count <= 1, shape.count <= 1, let dims = x.knownDims, !x.dtype.isFloatingPoint {
                return [ValueInfo(dtype: x.dtype, shape: shape, knownDims: dims)]
            }
            return [ValueInfo(dtype: x.dtype, shape: shape)]
        }
        public func evaluate(_ inputs: [Tensor]) throws(OpFailure) -> [Tensor] {
            [try inputs[0].reshaped(try shape(inputs[0].shape.map { .fixed($0) }).map { $0.value! })]
        }
        public func lower(_ context: LoweringContext) throws(OpFailure) -> Lowering? { Lowering(ViewKernel(), inputs: [context.node.inputs[0]]) }
        public func exportONNX(_ node: Node, to onnx: inout ONNXExporter) throws(OpFailure) {
            if onnx.opset >= 13 {
                let axes = onnx.addInitializer(node.name + ".axes", Tensor(int64s: self.axes, shape: [self.axes.count]))
                onnx.emit("Unsqueeze", inputs: [onnx.resolve(node.inputs[0]), axes])
            } else {
                onnx.emit("Unsqueeze", [("axes", .ints(axes))])
            }
        }
        public static var onnxImporters: [ONNXImporter] {
            [
                ONNXImporter("Unsqueeze") { (b: inout ONNXGraphBuilder, n: ONNXNode) throws(ONNXImportError) in
                    let axes = try axesOperand(&b, n, required: true)!
                    try b.emit(n, Unsqueeze(axes: axes), [n.inputs[0]])
                },
                ONNXImporter("Squeeze") { (b: inout ONNXGraphBuilder, n: ONNXNode) throws(ONNXImportError) in
                    let axes = try axesOperand(&b, n, required: false)
                    try b.emit(n, Squeeze(axes: axes), [n.inputs[0]])
                },
            ]
        }

        /// Unsqueeze/Squeeze axes: an attribute before opset 13, a constant input from 13.
        static func axesOperand(_ b: inout ONNXGraphBuilder, _ n: ONNXNode, required: Bool) throws(ONNXImportError) -> [Int]? {
            if b.opset < 13 {
                try n.allow(["axes"])
                try n.requireInputs(1...1)
                let axes = try n.ints("axes")
                if required && axes == nil { throw n.error("attribute 'axes' is required") }
                return axes
            }
            try n.allow([])
            try n.requireInputs(required ? 2...2 : 1...2)
            guard let input = n.input(1) else { return nil }
            return try b.constantInts(input, n, "axes")
        }
    }

    /// Removes dims of size 1: those at `axes`, or every one when nil.
    public struct Squeeze: Operator, Equatable {
        public var axes: [Int]?
        public init(axes: [Int]?) { self.axes = axes }
        public var name: String { "Squeeze" }
        public var summary: String { axes.map { "axes=\($0)" } ?? "" }

        func shape(_ x: [Dim]) throws(OpFailure) -> [Dim] {
            guard let axes else {
                guard x.allSatisfy({ $0.value != nil }) else { throw OpFailure("Squeeze without axes needs a fixed shape, has \(Dim.text(x))") }
                return x.filter { $0 != .fixed(1) }
            }
            var removed: Set<Int> = []
            for axis in axes {
                let a = try normalizedAxis(axis, rank: x.count)
                guard x[a] == .fixed(1) else { throw OpFailure("axis \(axis) has size \(x[a]), not 1") }
                removed.insert(a)
            }
            return x.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
        }

        public func infer(_ inputs: [ValueInfo]) throws(OpFailure) -> [ValueInfo] {
            let x = inputs[0]
            let shape = try self.shape(x.shape)
            if x.shape.count <= 1, let dims = x.knownDims, !x.dtype.isFloatingPoint {
                return [ValueInfo(dtype: x.dtype, shape: shape, knownDims: dims)]
            }
            return [ValueInfo(dtype: x.dtype, shape: shape)]
        }
        public func evaluate(_ inputs: [Tensor]) throws(OpFailure) -> [Tensor] {
            [try inputs[0].reshaped(try shape(inputs[0].shape.map { .fixed($0) }).map { $0.value! })]
        }
        public func lower(_ context: LoweringContext) throws(OpFailure) -> Lowering? { Lowering(ViewKernel(), inputs: [context.node.inputs[0]]) }
        public func exportONNX(_ node: Node, to onnx: inout ONNXExporter) throws(OpFailure) {
            guard let axes else { return onnx.emit("Squeeze") }
            if onnx.opset >= 13 {
                let name = onnx.addInitializer(node.name + ".axes", Tensor(int64s: axes, shape: [axes.count]))
                onnx.emit("Squeeze", inputs: [onnx.resolve(node.inputs[0]), name])
            } else {
                onnx.emit("Squeeze", [("axes", .ints(axes))])
            }
        }
        public static var onnxImporters: [ONNXImporter] { [] }  // with Unsqueeze's
    }

    /// data[starts:ends:steps] along `axes` (inputs: data, starts, ends, axes, steps; all but data
    /// must be known). Indices clamp as ONNX Slice-10 says.
    public struct Slice: Operator, Equatable {
        public init() {}
        public var name: String { "Slice" }
        public var inputArity: ClosedRange<Int> { 3...5 }

        /// Per-axis (start, step, count) for `shape` from the known operands.
        static func plan(_ shape: [Int], _ operands: [[Int]]) throws(OpFailure) -> [(start: Int, step: Int, count: Int)] {
            let starts = operands[0], ends = operands[1]
            let axes = operands.count > 2 ? operands[2] : Array(0..<starts.count)
            let steps = operands.count > 3 ? operands[3] : [Int](repeating: 1, count: starts.count)
            guard ends.count == starts.count, axes.count == starts.count, steps.count == starts.count else {
                throw OpFailure("starts, ends, axes and steps must have one value per sliced axis")
            }
            var result = shape.map { (start: 0, step: 1, count: $0) }
            var seen: Set<Int> = []
            for k in starts.indices {
                let a = try normalizedAxis(axes[k], rank: shape.count)
                guard seen.insert(a).inserted else { throw OpFailure("axes \(axes) repeat an axis") }
                let dim = shape[a], step = steps[k]
                guard step != 0 else { throw OpFailure("step 0 on axis \(axes[k])") }
                func clamp(_ v: Int, _ low: Int, _ high: Int) -> Int { Swift.min(Swift.max(v, low), high) }
                var s = starts[k] < 0 ? starts[k] &+ dim : starts[k]
                var e = ends[k] < 0 ? ends[k] &+ dim : ends[k]
                if step > 0 {
                    s = clamp(s, 0, dim)
                    e = clamp(e, 0, dim)
                    result[a] = (s, step, e > s ? (e - s + step - 1) / step : 0)
                } else {
                    s = clamp(s, -1, dim - 1)
                    e = clamp(e, -1, dim - 1)
                    result[a] = (s, step, s > e ? (s - e + (-step) - 1) / (-step) : 0)
                }
            }
            return result
        }

        public func infer(_ inputs: [ValueInfo]) throws(OpFailure) -> [ValueInfo] {
            var operands: [[Int]] = []
            for input in inputs.dropFirst() {
                guard let value = input.value, !value.dtype.isFloatingPoint, value.rank == 1 else {
                    throw OpFailure("'\(input.name)' must be a known 1-D integer tensor")
                }
                operands.append(value.integers())
            }
            let x = inputs[0]
            // A sliced axis must have a fixed size; other axes pass through (the batch included).
            let sliced = Set(try (operands.count > 2 ? operands[2] : Array(0..<operands[0].count)).map { (axis: Int) throws(OpFailure) -> Int in
                try normalizedAxis(axis, rank: x.shape.count)
            })
            var fixed: [Int] = []
            for (d, dim) in x.shape.enumerated() {
                if sliced.contains(d) { fixed.append(try ShapeRules.fixed(dim, "sliced dimension \(d)")) } else { fixed.append(dim.value ?? 1) }
            }
            let plan = try Slice.plan(fixed, operands)
            let shape = x.shape.enumerated().map { sliced.contains($0.offset) ? .fixed(plan[$0.offset].count) : $0.element }
            if x.shape.count == 1, let dims = x.knownDims, !x.dtype.isFloatingPoint {
                let p = plan[0]
                return [ValueInfo(dtype: x.dtype, shape: shape, knownDims: (0..<p.count).map { dims[p.start + $0 * p.step] })]
            }
            return [ValueInfo(dtype: x.dtype, shape: shape)]
        }

        public func evaluate(_ inputs: [Tensor]) throws(OpFailure) -> [Tensor] {
            let x = inputs[0]
            let plan = try Slice.plan(x.shape, inputs.dropFirst().map { $0.integers() })
            let strides = denseStrides(x.shape)
            return [x.remapped(to: plan.map(\.count)) { o in
                var at = 0
                for d in o.indices { at += (plan[d].start + o[d] * plan[d].step) * strides[d] }
                return at
            }]
        }

        public func exportONNX(_ node: Node, to onnx: inout ONNXExporter) throws(OpFailure) { onnx.emit("Slice") }

        public static var onnxImporters: [ONNXImporter] {
            [ONNXImporter("Slice") { (b: inout ONNXGraphBuilder, n: ONNXNode) throws(ONNXImportError) in
                if b.opset < 10 {
                    // Slice-1: starts, ends, axes as attributes; made constant inputs.
                    try n.allow(["starts", "ends", "axes"])
                    try n.requireInputs(1...1)
                    guard let starts = try n.ints("starts"), let ends = try n.ints("ends") else { throw n.error("attributes 'starts' and 'ends' are required") }
                    var inputs = [n.inputs[0]]
                    for (role, values) in [("starts", starts), ("ends", ends), ("axes", try n.ints("axes") ?? Array(0..<starts.count))] {
                        let name = "\(n.output)/\(role)"
                        b.addConstant(name, Tensor(int64s: values, shape: [values.count]))
                        inputs.append(name)
                    }
                    return try b.emit(n, Slice(), inputs)
                }
                try n.allow([])
                try n.requireInputs(3...5)
                var inputs = Array(n.inputs.prefix(3))
                // An omitted axes before given steps: every axis in order.
                if n.input(3) == nil, let steps = n.input(4) {
                    let count = try b.shape(of: n.inputs[1], n).first?.value ?? 0
                    let name = "\(n.output)/axes"
                    b.addConstant(name, Tensor(int64s: Array(0..<count), shape: [count]))
                    inputs += [name, steps]
                } else {
                    inputs += [n.input(3), n.input(4)].compactMap { $0 }
                }
                try b.emit(n, Slice(), inputs)
            }]
        }
    }

    /// Broadcasts the input to `shape` (NumPy rules both ways: the output is their broadcast).
    public struct Expand: Operator, Equatable {
        public init() {}
        public var name: String { "Expand" }
        public var inputArity: ClosedRange<Int> { 2...2 }
        public func infer(_ inputs: [ValueInfo]) throws(OpFailure) -> [ValueInfo] {
            guard let target = inputs[1].knownDims else { throw OpFailure("the shape '\(inputs[1].name)' must be known before running") }
            return [ValueInfo(dtype: inputs[0].dtype, shape: try ShapeRules.broadcast(inputs[0], ValueInfo(dtype: inputs[0].dtype, shape: target)))]
        }
        public func evaluate(_ inputs: [Tensor]) throws(OpFailure) -> [Tensor] {
            let shape = try Broadcast.shape([inputs[0].shape, inputs[1].integers()])
            let index = Broadcast.indices(of: inputs[0].shape, in: shape)
            var k = 0
            return [inputs[0].remapped(to: shape) { _ in defer { k += 1 }; return index[k] }]
        }
        public func exportONNX(_ node: Node, to onnx: inout ONNXExporter) throws(OpFailure) { onnx.emit("Expand") }
        public static var onnxImporters: [ONNXImporter] {
            [.plain("Expand", since: 8, inputs: 2...2, Expand())]
        }
    }

    /// Repeats the input `repeats[d]` times along each dim d.
    public struct Tile: Operator, Equatable {
        public init() {}
        public var name: String { "Tile" }
        public var inputArity: ClosedRange<Int> { 2...2 }
        public func infer(_ inputs: [ValueInfo]) throws(OpFailure) -> [ValueInfo] {
            guard let repeats = inputs[1].value?.integers() else { throw OpFailure("repeats '\(inputs[1].name)' must be known before running") }
            let x = inputs[0].shape
            guard repeats.count == x.count, repeats.allSatisfy({ $0 >= 0 }) else {
                throw OpFailure("repeats \(repeats) must hold one non-negative count per dimension of \(Dim.text(x))")
            }
            var shape: [Dim] = []
            for (dim, r) in zip(x, repeats) {
                if r == 1 { shape.append(dim) } else { shape.append(.fixed(try ShapeRules.multiply(try ShapeRules.fixed(dim, "a tiled dimension"), r, "tiling"))) }
            }
            return [ValueInfo(dtype: inputs[0].dtype, shape: shape)]
        }
        public func evaluate(_ inputs: [Tensor]) throws(OpFailure) -> [Tensor] {
            let x = inputs[0].shape, repeats = inputs[1].integers()
            let strides = denseStrides(x)
            return [inputs[0].remapped(to: zip(x, repeats).map { $0 * $1 }) { o in
                var at = 0
                for d in o.indices { at += (o[d] % x[d]) * strides[d] }
                return at
            }]
        }
        public func exportONNX(_ node: Node, to onnx: inout ONNXExporter) throws(OpFailure) { onnx.emit("Tile") }
        public static var onnxImporters: [ONNXImporter] {
            [.plain("Tile", since: 6, inputs: 2...2, Tile())]
        }
    }

    /// start, start + delta, … up to (not including) limit, from three known scalars.
    public struct Range: Operator, Equatable {
        public init() {}
        public var name: String { "Range" }
        public var inputArity: ClosedRange<Int> { 3...3 }
        static func count(_ start: Double, _ limit: Double, _ delta: Double) throws(OpFailure) -> Int {
            guard delta != 0, start.isFinite, limit.isFinite, delta.isFinite else { throw OpFailure("delta must be nonzero and the bounds finite") }
            let n = ((limit - start) / delta).rounded(.up)
            guard n < Double(1 << 40) else { throw OpFailure("the range has \(n) elements") }
            return Swift.max(Int(n), 0)
        }
        public func infer(_ inputs: [ValueInfo]) throws(OpFailure) -> [ValueInfo] {
            let dtype = try DTypeRules.common(inputs)
            guard let s = inputs[0].value, let l = inputs[1].value, let d = inputs[2].value, s.count == 1, l.count == 1, d.count == 1 else {
                // Range(0, N, 1) over a symbolic size N (torch's exports index a batch so) has N elements.
                if let s = inputs[0].value?.doubles(), s == [0], let d = inputs[2].value?.doubles(), d == [1],
                   let limit = inputs[1].knownDims, limit.count == 1 {
                    return [ValueInfo(dtype: dtype, shape: limit)]
                }
                throw OpFailure("start, limit and delta must be known scalars")
            }
            return [ValueInfo(dtype: dtype, shape: [.fixed(try Range.count(s.doubles()[0], l.doubles()[0], d.doubles()[0]))])]
        }
        public func evaluate(_ inputs: [Tensor]) throws(OpFailure) -> [Tensor] {
            let dtype = inputs[0].dtype
            if dtype.isFloatingPoint {
                let s = inputs[0].doubles()[0], d = inputs[2].doubles()[0]
                let n = try Range.count(s, inputs[1].doubles()[0], d)
                return [Tensor(dtype: dtype, shape: [n], doubles: (0..<n).map { s + Double($0) * d })]
            }
            let s = inputs[0].int64s()[0], d = inputs[2].int64s()[0]
            let n = try Range.count(Double(s), Double(inputs[1].int64s()[0]), Double(d))
            return [Tensor(dtype: dtype, shape: [n], int64s: (0..<n).map { s + Int64($0) * d })]
        }
        public func exportONNX(_ node: Node, to onnx: inout ONNXExporter) throws(OpFailure) { onnx.emit("Range") }
        public static var onnxImporters: [ONNXImporter] {
            [.plain("Range", since: 11, inputs: 3...3, Range())]
        }
    }

    /// A tensor of the known shape given as input, every element `fill` (ONNX ConstantOfShape when
    /// the shape is computed; a constant shape is folded at import).
    public struct ConstantOfShape: Operator {
        public var fill: Tensor
        public init(fill: Tensor) { self.fill = fill }
        public var name: String { "ConstantOfShape" }
        public var summary: String { "value=\(fill.doubles().first ?? 0) \(fill.dtype.rawValue)" }
        public func isEqual(to other: any Operator) -> Bool { (other as? ConstantOfShape).map { $0.fill.isBitIdentical(fill) } ?? false }
        public func infer(_ inputs: [ValueInfo]) throws(OpFailure) -> [ValueInfo] {
            guard let dims = inputs[0].knownDims else { throw OpFailure("the shape '\(inputs[0].name)' must be known before running") }
            for dim in dims { if let v = dim.value, v < 0 { throw OpFailure("shape \(Dim.text(dims)) has a negative size") } }
            return [ValueInfo(dtype: fill.dtype, shape: dims)]
        }
        public func evaluate(_ inputs: [Tensor]) throws(OpFailure) -> [Tensor] {
            [fill.remapped(to: inputs[0].integers()) { _ in 0 }]
        }
        public func exportONNX(_ node: Node, to onnx: inout ONNXExporter) throws(OpFailure) {
            onnx.emit("ConstantOfShape", [("value", .tensor(try fill.contiguous().reshaped([1])))])
        }
        public static var onnxImporters: [ONNXImporter] { [] }
    }

    /// condition ? x : y elementwise with NumPy broadcasting.
    public struct Where: Operator, Equatable {
        public init() {}
        public var name: String { "Where" }
        public var inputArity: ClosedRange<Int> { 3...3 }
        public func infer(_ inputs: [ValueInfo]) throws(OpFailure) -> [ValueInfo] {
            guard inputs[0].dtype == .bool else { throw OpFailure("condition '\(inputs[0].name)' is \(inputs[0].dtype.rawValue), not bool") }
            let dtype = try DTypeRules.common(Array(inputs[1...]))
            let xy = try ShapeRules.broadcast(inputs[1], inputs[2])
            let shape = try ShapeRules.broadcast(inputs[0], ValueInfo(dtype: dtype, shape: xy))
            // Shape arithmetic: choosing between shape entries (TorchScript's expand(n, -1, -1)).
            if shape.count == 1, let n = shape[0].value, !dtype.isFloatingPoint, let c = inputs[0].value?.int64s(),
               let x = inputs[1].knownDims, let y = inputs[2].knownDims {
                func at<T>(_ v: [T], _ i: Int) -> T { v.count == 1 ? v[0] : v[i] }
                let picked = (0..<n).map { at(c, $0) != 0 ? at(x, $0) : at(y, $0) }
                return [ValueInfo(dtype: dtype, shape: shape, knownDims: picked)]
            }
            return [ValueInfo(dtype: dtype, shape: shape)]
        }
        public func evaluate(_ inputs: [Tensor]) throws(OpFailure) -> [Tensor] {
            let shape = try Broadcast.shape(inputs.map(\.shape))
            let dtype = inputs[1].dtype == inputs[2].dtype ? inputs[1].dtype : .f32
            let c = inputs[0].int64s(), ic = Broadcast.indices(of: inputs[0].shape, in: shape)
            let ix = Broadcast.indices(of: inputs[1].shape, in: shape), iy = Broadcast.indices(of: inputs[2].shape, in: shape)
            if dtype.isFloatingPoint {
                let x = inputs[1].doubles(), y = inputs[2].doubles()
                return [Tensor(dtype: dtype, shape: shape, doubles: (0..<shape.product).map { c[ic[$0]] != 0 ? x[ix[$0]] : y[iy[$0]] })]
            }
            let x = inputs[1].int64s(), y = inputs[2].int64s()
            return [Tensor(dtype: dtype, shape: shape, int64s: (0..<shape.product).map { c[ic[$0]] != 0 ? x[ix[$0]] : y[iy[$0]] })]
        }
        public func exportONNX(_ node: Node, to onnx: inout ONNXExporter) throws(OpFailure) { onnx.emit("Where") }
        public static var onnxImporters: [ONNXImporter] {
            [.plain("Where", since: 9, inputs: 3...3, Where())]
        }
    }
}

extension Op {
    /// data with slices replaced (or combined, by `reduction`) by `updates` at `indices`:
    /// indices [..., k] address data's first k dims; updates are indices.shape[:-1] + data.shape[k:].
    public struct ScatterND: Operator, Equatable {
        public enum Reduction: String, Sendable { case none, add, mul, max, min }
        public var reduction: Reduction
        public init(reduction: Reduction = .none) { self.reduction = reduction }
        public var name: String { "ScatterND" }
        public var inputArity: ClosedRange<Int> { 3...3 }
        public var summary: String { reduction == .none ? "" : "reduction=\(reduction.rawValue)" }

        public func infer(_ inputs: [ValueInfo]) throws(OpFailure) -> [ValueInfo] {
            let data = inputs[0], indices = inputs[1], updates = inputs[2]
            guard indices.dtype == .i64 else { throw OpFailure("indices '\(indices.name)' are \(indices.dtype.rawValue), not int64") }
            guard updates.dtype == data.dtype else { throw OpFailure("updates are \(updates.dtype.rawValue), data \(data.dtype.rawValue)") }
            guard let k = indices.shape.last?.value, k <= data.shape.count else {
                throw OpFailure("the last dimension of indices \(indices) must be fixed and at most data's rank \(data.shape.count)")
            }
            let expected = Array(indices.shape.dropLast()) + Array(data.shape[k...])
            guard updates.shape == expected else { throw OpFailure("updates \(updates) must be \(Dim.text(expected))") }
            return [ValueInfo(dtype: data.dtype, shape: data.shape)]
        }

        public func evaluate(_ inputs: [Tensor]) throws(OpFailure) -> [Tensor] {
            let data = inputs[0], shape = data.shape
            let indices = inputs[1].integers(), k = inputs[1].shape.last ?? 0
            let slice = shape[k...].product, strides = denseStrides(shape)
            let float = data.dtype.isFloatingPoint
            var values = data.doubles(), ints = float ? [] : data.int64s()
            let newValues = inputs[2].doubles(), newInts = float ? [] : inputs[2].int64s()
            for t in 0..<inputs[1].shape.dropLast().product {
                var at = 0
                for d in 0..<k {
                    let i = indices[t * k + d]
                    guard (-shape[d]..<shape[d]).contains(i) else { throw OpFailure("index \(i) is out of range for dimension \(d) of size \(shape[d])") }
                    at += (i < 0 ? i + shape[d] : i) * strides[d]
                }
                for e in 0..<slice {
                    let (o, u) = (at + e, t * slice + e)
                    if float {
                        switch reduction {
                        case .none: values[o] = newValues[u]
                        case .add: values[o] += newValues[u]
                        case .mul: values[o] *= newValues[u]
                        case .max: values[o] = Swift.max(values[o], newValues[u])
                        case .min: values[o] = Swift.min(values[o], newValues[u])
                        }
                    } else {
                        switch reduction {
                        case .none: ints[o] = newInts[u]
                        case .add: ints[o] = ints[o] &+ newInts[u]
                        case .mul: ints[o] = ints[o] &* newInts[u]
                        case .max: ints[o] = Swift.max(ints[o], newInts[u])
                        case .min: ints[o] = Swift.min(ints[o], newInts[u])
                        }
                    }
                }
            }
            return [float ? Tensor(dtype: data.dtype, shape: shape, doubles: values) : Tensor(dtype: data.dtype, shape: shape, int64s: ints)]
        }

        public func exportONNX(_ node: Node, to onnx: inout ONNXExporter) throws(OpFailure) {
            guard reduction == .none || onnx.opset >= (reduction == .add || reduction == .mul ? 16 : 18) else {
                throw OpFailure("reduction \(reduction.rawValue) needs opset \(reduction == .add || reduction == .mul ? 16 : 18)")
            }
            onnx.emit("ScatterND", reduction == .none ? [] : [("reduction", .string(reduction.rawValue))])
        }

        public static var onnxImporters: [ONNXImporter] {
            [ONNXImporter("ScatterND", since: 11) { (b: inout ONNXGraphBuilder, n: ONNXNode) throws(ONNXImportError) in
                try n.allow(b.opset >= 16 ? ["reduction"] : [])
                try n.requireInputs(3...3)
                let name = try n.string("reduction", default: "none")
                guard let reduction = Reduction(rawValue: name) else { throw n.error("reduction '\(name)' is not none, add, mul, max or min") }
                try b.emit(n, ScatterND(reduction: reduction), Array(n.inputs.prefix(3)))
            }]
        }
    }
}

/// Gather with constant indices over f32: for each position before the axis, each index's slab of
/// the dims after it copied whole (the reference is `Op.Gather.evaluate`). Negative indices count
/// from the end; the plan's shape inference has checked the range for the input's size. The
/// output's chunks are copied in parallel (ViT's query/key/value split).
struct GatherStep: StepKernel {
    let axis: Int
    let indices: [Int]
    let indexShape: [Int]
    func describe(inputShapes: [[Int]], outputShape: [Int]) -> (text: String, flops: Double, executed: Double) { ("gather", 0, 0) }
    func run(_ b: StepBuffers) {
        let x = b.inputShapes[0]
        let a = axis < 0 ? axis + x.count : axis
        let outer = x[..<a].product, inner = x[(a + 1)...].product, size = x[a]
        guard inner > 0 else { return }
        let (input, output, indices) = (b.inputs[0], b.output, self.indices)
        b.pool.parallelChunks(outer * indices.count * inner) { range in
            var at = range.lowerBound
            while at < range.upperBound {
                // Output float `at`: slab (o, j) = (at / inner) split by the index count, then the offset in it.
                let slab = at / inner, within = at - slab * inner, o = slab / indices.count, i = indices[slab - o * indices.count]
                let count = min(inner - within, range.upperBound - at)
                (output + at).update(from: input + (o * size + (i < 0 ? i + size : i)) * inner + within, count: count)
                at += count
            }
        }
    }
}
