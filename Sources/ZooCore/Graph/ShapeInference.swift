/// Output shapes of each op from its inputs' shapes. Spatial dimensions must be fixed; the batch
/// may be symbolic and passes through.
enum ShapeInference {
    struct Failure: Error {
        let message: String
        init(_ message: String) { self.message = message }
    }

    /// The output shape of `op` on `inputs`; refused when its element count, or its size in bytes,
    /// does not fit in an `Int` (symbolic dims counted as 1).
    static func output(of op: Op, inputs: [ValueInfo]) throws(Failure) -> [Dim] {
        let shape = try inferred(op, inputs)
        var count = 1
        for dim in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: dim.value ?? 1)
            guard !overflow, product >= 0 else { throw Failure("output \(text(shape)) has more elements than an Int counts") }
            count = product
        }
        guard !count.multipliedReportingOverflow(by: DType.f32.itemSize).overflow else {
            throw Failure("output \(text(shape)) (\(count) elements) is larger than memory can address")
        }
        return shape
    }

    private static func inferred(_ op: Op, _ inputs: [ValueInfo]) throws(Failure) -> [Dim] {
        // Any floating dtype is read (initializers keep theirs; the executor widens them to f32).
        for input in inputs where !input.dtype.isFloatingPoint {
            throw Failure("input '\(input.name)' is \(input.dtype.rawValue), not floating point; the executor computes in f32")
        }
        let x = inputs[0].shape
        switch op {
        case let .conv(c):
            try rank(inputs[0], 4)
            guard let w = inputs[1].fixedShape, w.count == 4 else { throw Failure("weight '\(inputs[1].name)' must be a fixed [M, C/group, kH, kW] tensor") }
            try checkPairs(c.kernel, c.strides, c.dilations, c.pads)
            guard c.groups >= 1, w[0] % c.groups == 0 else { throw Failure("\(w[0]) output channels do not split into \(c.groups) groups") }
            guard c.kernel == [w[2], w[3]] else { throw Failure("kernel_shape \(c.kernel) but weight is \(w[2])×\(w[3])") }
            let channels = try fixed(x[1], "input channels")
            guard channels == w[1] * c.groups else {
                throw Failure("input has \(channels) channels but weight '\(inputs[1].name)' expects \(w[1] * c.groups) (\(w[1]) × \(c.groups) groups)")
            }
            if inputs.count == 3 { try vector(inputs[2], w[0]) }
            let h = try window(x[2], kernel: c.kernel[0], stride: c.strides[0], dilation: c.dilations[0], pads: (c.pads[0], c.pads[2]), ceil: false, "height")
            let wd = try window(x[3], kernel: c.kernel[1], stride: c.strides[1], dilation: c.dilations[1], pads: (c.pads[1], c.pads[3]), ceil: false, "width")
            try paddedPlane(x, c.pads)
            return [x[0], .fixed(w[0]), .fixed(h), .fixed(wd)]
        case let .maxPool(p), let .averagePool(p):
            try rank(inputs[0], 4)
            try checkPairs(p.kernel, p.strides, [1, 1], p.pads)
            guard p.pads[0] < p.kernel[0], p.pads[2] < p.kernel[0], p.pads[1] < p.kernel[1], p.pads[3] < p.kernel[1] else {
                throw Failure("pads \(p.pads) must be smaller than the kernel \(p.kernel)")
            }
            let h = try window(x[2], kernel: p.kernel[0], stride: p.strides[0], dilation: 1, pads: (p.pads[0], p.pads[2]), ceil: p.ceilMode, "height")
            let w = try window(x[3], kernel: p.kernel[1], stride: p.strides[1], dilation: 1, pads: (p.pads[1], p.pads[3]), ceil: p.ceilMode, "width")
            try paddedPlane(x, p.pads)
            return [x[0], x[1], .fixed(h), .fixed(w)]
        case let .adaptiveAveragePool(h, w):
            try rank(inputs[0], 4)
            guard h >= 1, w >= 1 else { throw Failure("output size \(h)×\(w) must be positive") }
            _ = try fixed(x[2], "height")
            _ = try fixed(x[3], "width")
            return [x[0], x[1], .fixed(h), .fixed(w)]
        case .globalAveragePool:
            try rank(inputs[0], 4)
            return [x[0], x[1], .fixed(1), .fixed(1)]
        case let .lrn(l):
            guard x.count >= 3 else { throw Failure("input must be [N, C, …], is rank \(x.count)") }
            guard l.size >= 1 else { throw Failure("size \(l.size) must be positive") }
            return x
        case let .flatten(axis):
            let a = axis < 0 ? axis + x.count : axis
            guard (0...x.count).contains(a) else { throw Failure("axis \(axis) out of range for rank \(x.count)") }
            return [try product(x[..<a]), try product(x[a...])]
        case let .reshape(target, allowZero):
            return try reshape(x, target, allowZero: allowZero)
        case let .gemm(g):
            let a = inputs[0].shape, b = inputs[1].shape
            guard a.count == 2, b.count == 2 else { throw Failure("A and B must be 2-D, are rank \(a.count) and \(b.count)") }
            let (m, ka) = g.transA ? (a[1], a[0]) : (a[0], a[1])
            let (kb, n) = g.transB ? (b[1], b[0]) : (b[0], b[1])
            guard ka == kb else { throw Failure("A has \(ka) columns but B has \(kb) rows (inner dimensions differ)") }
            if inputs.count == 3 {
                let c = inputs[2].shape
                let ok = c.isEmpty || c == [n] || c == [.fixed(1)] || c == [.fixed(1), n] || c == [m, n] || c == [m, .fixed(1)]
                guard ok else { throw Failure("C \(c) does not broadcast to [\(m), \(n)]") }
            }
            return [m, n]
        case .relu, .dropout:
            return x
        case let .softmax(axis):
            guard (-x.count..<x.count).contains(axis) else { throw Failure("axis \(axis) out of range for rank \(x.count)") }
            return x
        case .add:
            return try broadcast(inputs[0], inputs[1])
        case .batchNormalization:
            guard x.count >= 2 else { throw Failure("input must be [N, C, …]") }
            let channels = try fixed(x[1], "channels")
            for parameter in inputs[1...] { try vector(parameter, channels) }
            return x
        case let .concat(axis):
            let a = axis < 0 ? axis + x.count : axis
            guard (0..<x.count).contains(a) else { throw Failure("axis \(axis) out of range for rank \(x.count)") }
            var total = 0
            for input in inputs {
                guard input.shape.count == x.count else { throw Failure("'\(input.name)' has rank \(input.shape.count), not \(x.count)") }
                for d in 0..<x.count where d != a && input.shape[d] != x[d] {
                    throw Failure("'\(input.name)' differs from '\(inputs[0].name)' in dimension \(d)")
                }
                total = try add(total, try fixed(input.shape[a], "concatenated dimension"), "the concatenated dimension")
            }
            var out = x
            out[a] = .fixed(total)
            return out
        }
    }

    /// NumPy (ONNX multidirectional) broadcasting: shapes align on the right; each pair of dims is
    /// equal or one of them is 1.
    static func broadcast(_ a: ValueInfo, _ b: ValueInfo) throws(Failure) -> [Dim] {
        let rank = max(a.shape.count, b.shape.count)
        let x = [Dim](repeating: .fixed(1), count: rank - a.shape.count) + a.shape
        let y = [Dim](repeating: .fixed(1), count: rank - b.shape.count) + b.shape
        var out: [Dim] = []
        for (p, q) in zip(x, y) {
            if p == q || q == .fixed(1) { out.append(p) }
            else if p == .fixed(1) { out.append(q) }
            else { throw Failure("shapes \(a) and \(b) do not broadcast") }
        }
        return out
    }

    /// Output length of a sliding window; with `ceil`, a last window starting in the end padding is dropped.
    static func window(_ dim: Dim, kernel: Int, stride: Int, dilation: Int, pads: (Int, Int), ceil: Bool, _ what: String) throws(Failure) -> Int {
        let size = try fixed(dim, what)
        guard kernel >= 1, stride >= 1, dilation >= 1, pads.0 >= 0, pads.1 >= 0 else {
            throw Failure("\(what): kernel \(kernel), stride \(stride) and dilation \(dilation) must be positive and pads \(pads) non-negative")
        }
        // Every step checked: attributes are read from files and may be anything up to Int.max.
        let span = try add(try multiply(dilation, kernel - 1, "the \(what) window (dilation × (kernel - 1))"), 1, "the \(what) window")
        let padded = try add(try add(size, pads.0, "the padded \(what)"), pads.1, "the padded \(what)")
        let room = padded - span  // both non-negative: cannot overflow
        guard room >= 0 else {
            throw Failure("input \(what) \(size) (padded \(padded)) is smaller than the window \(span)")
        }
        // room / stride rounded up without forming room + stride - 1.
        var count = (ceil && room % stride != 0 ? room / stride + 1 : room / stride) + 1
        // With ceil, a last window starting in the end padding is dropped: (count - 1) * stride ≥ size + pads.0.
        // (count - 1) * stride ≤ room + stride - 1 may exceed Int.max only when it also exceeds size + pads.0.
        if ceil {
            let (start, overflow) = (count - 1).multipliedReportingOverflow(by: stride)
            if overflow || start >= size + pads.0 { count -= 1 }
        }
        return count
    }

    /// The kernels multiply a window's padded height by its width (AveragePool's count_include_pad
    /// divisor): refuse a padded input plane whose area overflows. Runs after `window` has checked
    /// each padded size on its own.
    private static func paddedPlane(_ x: [Dim], _ pads: [Int]) throws(Failure) {
        let h = try fixed(x[2], "height") + pads[0] + pads[2], w = try fixed(x[3], "width") + pads[1] + pads[3]
        _ = try multiply(h, w, "the padded input plane (height × width)")
    }

    /// `a × b`, refused (naming `what`) when it overflows an `Int`.
    private static func multiply(_ a: Int, _ b: Int, _ what: String) throws(Failure) -> Int {
        let (product, overflow) = a.multipliedReportingOverflow(by: b)
        guard !overflow else { throw Failure("\(what): \(a) × \(b) overflows") }
        return product
    }

    /// `a + b`, refused (naming `what`) when it overflows an `Int`.
    private static func add(_ a: Int, _ b: Int, _ what: String) throws(Failure) -> Int {
        let (sum, overflow) = a.addingReportingOverflow(b)
        guard !overflow else { throw Failure("\(what): \(a) + \(b) overflows") }
        return sum
    }

    private static func text(_ dims: [Dim]) -> String { "[" + dims.map(\.description).joined(separator: ", ") + "]" }

    private static func rank(_ info: ValueInfo, _ expected: Int) throws(Failure) {
        guard info.shape.count == expected else {
            throw Failure("input '\(info.name)' must have rank \(expected), has shape [\(info.shape.map(\.description).joined(separator: ", "))]")
        }
    }

    private static func fixed(_ dim: Dim, _ what: String) throws(Failure) -> Int {
        guard let value = dim.value else { throw Failure("\(what) must be fixed, is symbolic '\(dim)'") }
        return value
    }

    private static func vector(_ info: ValueInfo, _ length: Int) throws(Failure) {
        guard info.fixedShape == [length] else { throw Failure("'\(info.name)' must have shape [\(length)], has \(info)") }
    }

    private static func checkPairs(_ kernel: [Int], _ strides: [Int], _ dilations: [Int], _ pads: [Int]) throws(Failure) {
        guard kernel.count == 2, strides.count == 2, dilations.count == 2, pads.count == 4 else {
            throw Failure("2-D attributes expected (kernel \(kernel), strides \(strides), dilations \(dilations), pads \(pads))")
        }
        guard kernel.allSatisfy({ $0 >= 1 }), strides.allSatisfy({ $0 >= 1 }), dilations.allSatisfy({ $0 >= 1 }),
              pads.allSatisfy({ $0 >= 0 }) else {
            throw Failure("kernel, strides and dilations must be positive and pads non-negative")
        }
    }

    /// The product of dims: fixed when all are, the symbolic one when it is alone.
    private static func product(_ dims: ArraySlice<Dim>) throws(Failure) -> Dim {
        if dims.count == 1 { return dims.first! }
        var total = 1
        for dim in dims {
            guard let value = dim.value else { throw Failure("cannot flatten a symbolic dimension together with others") }
            total = try multiply(total, value, "flattening \(text(Array(dims)))")
        }
        return .fixed(total)
    }

    private static func reshape(_ x: [Dim], _ target: [Int], allowZero: Bool) throws(Failure) -> [Dim] {
        var out: [Dim] = []
        var inferred: Int?
        var known = 1
        for (i, t) in target.enumerated() {
            if t == 0 && !allowZero {
                guard i < x.count else { throw Failure("shape \(target): 0 at \(i) copies a dimension the input (rank \(x.count)) lacks") }
                out.append(x[i])
                if let v = x[i].value { known = try multiply(known, v, "shape \(target)") }
            } else if t == -1 {
                guard inferred == nil else { throw Failure("shape \(target) has more than one -1") }
                inferred = i
                out.append(.fixed(0))
            } else {
                guard t >= 0 else { throw Failure("shape \(target) has a negative size") }
                out.append(.fixed(t))
                known = try multiply(known, t, "shape \(target)")
            }
        }
        // Symbolic input dims are carried through by a 0 at their position — or one of them is
        // exactly what a -1 stands for: when the fixed input dims (other than those copied) hold
        // the fixed target dims exactly, the -1 is that symbolic dim for every value it takes
        // (Reshape(x, [-1, 9216]) on [N, 256, 6, 6] → [N, 9216]). A -1 that would be a multiple or a
        // fraction of a symbolic dim has no Dim, so it is refused.
        var remaining = 1
        var uncarried: [(position: Int, dim: Dim)] = []
        for (i, dim) in x.enumerated() {
            if let v = dim.value {
                remaining = try multiply(remaining, v, "input \(text(x))")
            } else if !(i < target.count && target[i] == 0 && !allowZero) {
                uncarried.append((i, dim))
            }
        }
        var copiedFixed = 1
        for (t, dim) in zip(target, x) where t == 0 && !allowZero {
            copiedFixed = try multiply(copiedFixed, dim.value ?? 1, "shape \(target)")
        }
        let fixedTarget = known / max(copiedFixed, 1)
        let fixedInput = remaining / max(copiedFixed, 1)
        if let (position, symbolic) = uncarried.first {
            guard let i = inferred, uncarried.count == 1 else {
                throw Failure("shape \(target) must copy the symbolic dimension \(symbolic) with a 0 at position \(position)"
                    + (inferred == nil || uncarried.count == 1 ? "" : " (a -1 can stand for one symbolic dimension, not \(uncarried.count))"))
            }
            guard fixedTarget > 0, fixedInput == fixedTarget else {
                let ratio = fixedTarget > 0 && fixedInput % fixedTarget == 0 ? "× \(fixedInput / fixedTarget)"
                    : fixedInput > 0 && fixedTarget % fixedInput == 0 ? "/ \(fixedTarget / fixedInput)" : "× \(fixedInput)/\(fixedTarget)"
                throw Failure("shape \(target): the -1 would be \(symbolic) \(ratio), not a dimension; "
                    + "copy the symbolic dimension \(symbolic) with a 0 at position \(position), or make the fixed sizes "
                    + "match so that the -1 is exactly \(symbolic)")
            }
            out[i] = symbolic
        } else if let i = inferred {
            guard fixedTarget > 0, fixedInput % fixedTarget == 0 else { throw Failure("cannot reshape \(x) to \(target)") }
            out[i] = .fixed(fixedInput / fixedTarget)
        } else {
            guard fixedTarget == fixedInput else { throw Failure("cannot reshape \(x) (\(fixedInput) elements) to \(target)") }
        }
        return out
    }
}

extension Graph {
    /// The dtype and shape of `node`'s output for its inputs' (in the node's order), as building a
    /// graph infers them — for a caller that grows a graph node by node and needs shapes on the way
    /// (the ONNX importer) without rebuilding the graph for each lookup. Inputs may be of any floating
    /// dtype; the output is f32, the dtype the executor computes in.
    public static func inferOutput(of node: Node, inputs: [ValueInfo]) throws(GraphError) -> ValueInfo {
        guard node.op.inputArity.contains(inputs.count) else {
            throw GraphError(node: node.name, op: node.op.name, "takes \(node.op.inputArity.lowerBound)…\(node.op.inputArity.upperBound == Int.max ? "n" : String(node.op.inputArity.upperBound)) inputs, has \(inputs.count)")
        }
        do {
            return ValueInfo(name: node.output, dtype: .f32, shape: try ShapeInference.output(of: node.op, inputs: inputs))
        } catch {
            throw GraphError(node: node.name, op: node.op.name, error.message)
        }
    }
}
