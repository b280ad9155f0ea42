/// The op builders: one per ONNX op type the IR represents, opset differences as explicit branches
/// (the registry `Importer.builders`). Part of the reader described in ONNXReader.swift.
import CONNX
import CProtobufC
import ZooCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Importer {
    typealias Builder = @Sendable (inout Importer, NodeContext) throws(ONNXError) -> Void

    /// Ops with a builder that did not exist in opset 1.
    static let introduced: [String: Int] = ["ConstantOfShape": 9]

    /// Why the importer has no way to build an op.
    enum Unsupported: Equatable {
        /// The op belongs to a domain other than the default one ("" or "ai.onnx").
        case otherDomain
        /// No builder for this op type.
        case noBuilder
        /// A builder exists, but the op appeared only in this later opset.
        case introduced(Int)
    }

    /// Whether a node of `opType` in `domain` has a builder at `opset`, the default-domain opset
    /// the model imports (nil: none, so only the builder table is asked): nil when it has, else
    /// why not. The one answer behind `checkSupported` and `ONNX.describe`'s `unsupportedOps`.
    /// A node with a builder may still be refused when built (an attribute value, an input shape).
    static func unsupported(opType: String, domain: String, opset: Int?) -> Unsupported? {
        guard domain.isEmpty || domain == "ai.onnx" else { return .otherDomain }
        guard builders[opType] != nil else { return .noBuilder }
        if let since = introduced[opType], let opset, opset < since { return .introduced(since) }
        return nil
    }

    /// One builder per ONNX op type; attribute defaults are the standard's.
    static let builders: [String: Builder] = [
        "Conv": { (i: inout Importer, n: NodeContext) throws(ONNXError) in try i.conv(n) },
        "Relu": { (i: inout Importer, n: NodeContext) throws(ONNXError) in
            try n.allow(i.opset < 6 ? ["consumed_inputs"] : []); try n.requireInputs(1...1); try i.emit(n, .relu, [n.inputs[0]])
        },
        "MaxPool": { (i: inout Importer, n: NodeContext) throws(ONNXError) in try i.pool(n, max: true) },
        "AveragePool": { (i: inout Importer, n: NodeContext) throws(ONNXError) in try i.pool(n, max: false) },
        "GlobalAveragePool": { (i: inout Importer, n: NodeContext) throws(ONNXError) in
            try n.allow([]); try n.requireInputs(1...1); try i.emit(n, .globalAveragePool, [n.inputs[0]])
        },
        "LRN": { (i: inout Importer, n: NodeContext) throws(ONNXError) in
            try n.allow(["size", "alpha", "beta", "bias"]); try n.requireInputs(1...1)
            guard let size = try n.int("size") else { throw n.error("attribute 'size' is required") }
            let lrn = Op.LRN(size: size, alpha: try n.float("alpha", default: 1e-4), beta: try n.float("beta", default: 0.75),
                             bias: try n.float("bias", default: 1), window: .onnx)
            try i.emit(n, .lrn(lrn), [n.inputs[0]])
        },
        "Flatten": { (i: inout Importer, n: NodeContext) throws(ONNXError) in
            try n.allow(["axis"]); try n.requireInputs(1...1)
            let axis = try n.int("axis", default: 1)
            if axis < 0 && i.opset < 11 { throw n.error("negative axis \(axis) needs opset 11") }
            try i.emit(n, .flatten(axis: axis), [n.inputs[0]])
        },
        "Reshape": { (i: inout Importer, n: NodeContext) throws(ONNXError) in try i.reshape(n) },
        "Gemm": { (i: inout Importer, n: NodeContext) throws(ONNXError) in try i.gemm(n) },
        "Dropout": { (i: inout Importer, n: NodeContext) throws(ONNXError) in try i.dropout(n) },
        "Softmax": { (i: inout Importer, n: NodeContext) throws(ONNXError) in try i.softmax(n) },
        "ReduceMean": { (i: inout Importer, n: NodeContext) throws(ONNXError) in try i.reduceMean(n) },
        "MatMul": { (i: inout Importer, n: NodeContext) throws(ONNXError) in try i.matMul(n) },
        "Add": { (i: inout Importer, n: NodeContext) throws(ONNXError) in try i.add(n) },
        "BatchNormalization": { (i: inout Importer, n: NodeContext) throws(ONNXError) in try i.batchNormalization(n) },
        "Concat": { (i: inout Importer, n: NodeContext) throws(ONNXError) in
            try n.allow(["axis"])
            // Concat-1 (opsets 1…3) defaults axis to 1; from Concat-4 it is required.
            guard let axis = try n.int("axis") ?? (i.opset < 4 ? 1 : nil) else { throw n.error("attribute 'axis' is required") }
            guard !n.inputs.isEmpty, n.inputs.allSatisfy({ !$0.isEmpty }) else { throw n.error("needs at least one input, none empty") }
            try i.emit(n, .concat(axis: axis), n.inputs)
        },
        "Cast": { (i: inout Importer, n: NodeContext) throws(ONNXError) in try i.cast(n) },
        "Identity": { (i: inout Importer, n: NodeContext) throws(ONNXError) in
            try n.allow([]); try n.requireInputs(1...1)
            guard n.outputs.count == 1 else { throw n.error("has \(n.outputs.count) outputs, expected 1") }
            if let constant = i.constants[n.inputs[0]] {
                i.addConstant(n.outputs[0], constant)
                if i.widened.contains(n.onnxInputs[0]) { i.widened.insert(n.outputs[0]) }
            } else {
                i.aliases[n.outputs[0]] = n.inputs[0]
            }
        },
        "Constant": { (i: inout Importer, n: NodeContext) throws(ONNXError) in try i.constant(n) },
        "ConstantOfShape": { (i: inout Importer, n: NodeContext) throws(ONNXError) in try i.constantOfShape(n) },
    ]

    /// Appends an IR node for a single-output ONNX node; extra outputs must be absent or unused.
    mutating func emit(_ n: NodeContext, _ op: Op, _ inputs: [String], usedOutputs: Int = 1) throws(ONNXError) {
        guard let output = n.outputs.first, !output.isEmpty else { throw n.error("has no output") }
        for extra in n.outputs.dropFirst() where !extra.isEmpty && consumed.contains(extra) {
            throw n.error("output '\(extra)' is used, but zoo computes only the first output of \(n.opType)")
        }
        // With an f32 graph input every computed value is f32, and the ops take one element type for
        // all their inputs (BatchNormalization-15's scale, bias, mean and var excepted): a constant
        // stored in another dtype must come through a widening Cast. Read directly, the model is
        // ill-typed (onnx.checker and onnxruntime refuse it), and so refused here too.
        if self.inputs.first?.dtype == .f32, !(n.opType == "BatchNormalization" && opset >= 15) {
            for name in n.onnxInputs where !name.isEmpty && !widened.contains(name) {
                let value = aliases[name] ?? name
                guard inputs.contains(value), let t = constants[value], t.dtype.isFloatingPoint, t.dtype != .f32 else { continue }
                throw n.error("input '\(name)' is stored as \(t.dtype.rawValue) and read without a Cast: \(n.opType) takes one element "
                    + "type for all its inputs, here f32 (a weight stored in another precision is read through a Cast to FLOAT)")
            }
        }
        nodes.append(Node(n.name, op, inputs: inputs, output: output))
    }

    /// A constant integer input (Reshape's shape, ConstantOfShape's shape), from an initializer or a
    /// folded Constant.
    func constantInts(_ value: String, _ n: NodeContext, _ role: String) throws(ONNXError) -> [Int] {
        guard let tensor = constants[value] else { throw n.error("\(role) '\(value)' must be a constant (initializer or Constant)") }
        guard tensor.dtype == .i64 || tensor.dtype == .i32, tensor.rank <= 1 else {
            throw n.error("\(role) '\(value)' must be a 1-D int64 tensor, is \(tensor.dtype.rawValue) \(tensor.shape)")
        }
        // As a shape, its length is a rank.
        do throws(LimitExceeded) { try limits.checkRank(tensor.count, "\(role) '\(value)'") } catch { throw n.error(error.description) }
        // The integers themselves: through Double, 2^63 - 1 would round to 2^63 and trap converting back.
        let dense = tensor.contiguous()
        let bytes = dense.storage.bytes
        return (0..<dense.count).map { k in
            dense.dtype == .i64 ? Int(Int64(littleEndian: bytes.loadUnaligned(fromByteOffset: 8 * k, as: Int64.self)))
                : Int(Int32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4 * k, as: Int32.self)))
        }
    }

    /// Explicit [top, left, bottom, right] pads for `auto_pad` and `pads`, resolved for the input's
    /// declared spatial size when auto_pad is SAME_*.
    mutating func pads(_ n: NodeContext, kernel: [Int], strides: [Int], dilations: [Int]) throws(ONNXError) -> [Int] {
        // Validated before any arithmetic: SAME_* divides by the strides and multiplies by the dilations.
        guard kernel.count == 2, strides.count == 2, dilations.count == 2 else {
            throw n.error("only 2-D windows are supported (kernel_shape \(kernel), strides \(strides), dilations \(dilations))")
        }
        guard kernel.allSatisfy({ $0 >= 1 }) else { throw n.error("kernel_shape \(kernel) must be positive") }
        guard strides.allSatisfy({ $0 >= 1 }) else { throw n.error("strides \(strides) must be positive") }
        guard dilations.allSatisfy({ $0 >= 1 }) else { throw n.error("dilations \(dilations) must be positive") }
        if let pads = try n.ints("pads") {
            guard pads.count == 4 else { throw n.error("pads \(pads) must have 4 values for a 2-D op") }
            guard pads.allSatisfy({ $0 >= 0 }) else { throw n.error("pads \(pads) must be non-negative") }
        }
        let autoPad = try n.string("auto_pad", default: "NOTSET")
        switch autoPad {
        case "NOTSET":
            return try n.ints("pads") ?? [0, 0, 0, 0]
        case "VALID":
            if let pads = try n.ints("pads"), pads.contains(where: { $0 != 0 }) { throw n.error("auto_pad VALID with nonzero pads \(pads)") }
            return [0, 0, 0, 0]
        case "SAME_UPPER", "SAME_LOWER":
            let x = try shape(of: n.inputs[0], n)
            guard x.count == 4, let h = x[2].value, let w = x[3].value else {
                throw n.error("auto_pad \(autoPad) needs a fixed-size 4-D input, '\(n.inputs[0])' is [\(x.map(\.description).joined(separator: ", "))]")
            }
            var begin = [0, 0], end = [0, 0]
            for (axis, size) in [h, w].enumerated() {
                // out = ceil(size / stride); total = (out - 1) * stride + (kernel - 1) * dilation + 1 - size.
                let out = size / strides[axis] + (size % strides[axis] == 0 ? 0 : 1)
                let (reach, o1) = (out - 1).multipliedReportingOverflow(by: strides[axis])  // ≤ size: cannot overflow
                let (span, o2) = (kernel[axis] - 1).multipliedReportingOverflow(by: dilations[axis])
                let (extent, o3) = reach.addingReportingOverflow(span)
                guard !o1, !o2, !o3, extent < Int.max else {
                    throw n.error("auto_pad \(autoPad): the window (kernel_shape \(kernel), dilations \(dilations)) is too large")
                }
                let total = max(0, extent + 1 - size)
                begin[axis] = autoPad == "SAME_UPPER" ? total / 2 : total - total / 2
                end[axis] = total - begin[axis]
            }
            return [begin[0], begin[1], end[0], end[1]]
        default:
            throw n.error("attribute 'auto_pad': unknown value '\(autoPad)'")
        }
    }

    mutating func conv(_ n: NodeContext) throws(ONNXError) {
        try n.allow(["auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"])
        try n.requireInputs(2...3)
        let weightShape = try shape(of: n.inputs[1], n)
        guard weightShape.count == 4, let kh = weightShape[2].value, let kw = weightShape[3].value else {
            throw n.error("only 2-D convolution is supported: weight '\(n.inputs[1])' must be [M, C/group, kH, kW]")
        }
        let kernel = try n.ints("kernel_shape") ?? [kh, kw]
        let strides = try n.ints("strides") ?? [1, 1]
        let dilations = try n.ints("dilations") ?? [1, 1]
        guard kernel.count == 2, strides.count == 2, dilations.count == 2 else {
            throw n.error("only 2-D convolution is supported (kernel_shape \(kernel), strides \(strides), dilations \(dilations))")
        }
        let conv = Op.Conv(kernel: kernel, strides: strides, dilations: dilations,
                           pads: try pads(n, kernel: kernel, strides: strides, dilations: dilations), groups: try n.int("group", default: 1))
        try emit(n, .conv(conv), Array(n.inputs.prefix(2)) + (n.input(2).map { [$0] } ?? []))
    }

    mutating func pool(_ n: NodeContext, max: Bool) throws(ONNXError) {
        var allowed: Set<String> = ["auto_pad", "kernel_shape", "pads", "strides"]
        if opset >= 10 { allowed.formUnion(["ceil_mode", "dilations"]) }
        if max { allowed.insert("storage_order") } else if opset >= 7 { allowed.insert("count_include_pad") }  // AveragePool-7
        if !max && opset < 19 { allowed.remove("dilations") }
        try n.allow(allowed)
        try n.requireInputs(1...1)
        guard let kernel = try n.ints("kernel_shape") else { throw n.error("attribute 'kernel_shape' is required") }
        let strides = try n.ints("strides") ?? [1, 1]
        guard kernel.count == 2, strides.count == 2 else { throw n.error("only 2-D pooling is supported (kernel_shape \(kernel))") }
        if let dilations = try n.ints("dilations"), dilations.contains(where: { $0 != 1 }) {
            throw n.error("dilations \(dilations) are not supported (only 1)")
        }
        if max, try n.int("storage_order", default: 0) != 0 { throw n.error("storage_order 1 (column-major indices) is not supported") }
        var pool = Op.Pool(kernel: kernel, strides: strides, pads: try pads(n, kernel: kernel, strides: strides, dilations: [1, 1]),
                           ceilMode: try n.int("ceil_mode", default: 0) != 0)
        if !max { pool.countIncludePad = try n.int("count_include_pad", default: 0) != 0 }
        try emit(n, max ? .maxPool(pool) : .averagePool(pool), [n.inputs[0]])
    }

    mutating func reshape(_ n: NodeContext) throws(ONNXError) {
        let target: [Int]
        if opset < 5 {
            // Reshape-1: the shape is an attribute (0 copies, one -1 is inferred, as later).
            try n.allow(["shape", "consumed_inputs"])
            try n.requireInputs(1...1)
            guard let shape = try n.ints("shape") else { throw n.error("attribute 'shape' is required") }
            do throws(LimitExceeded) { try limits.checkRank(shape.count, "shape") } catch { throw n.error(error.description) }
            target = shape
        } else {
            try n.allow(opset >= 14 ? ["allowzero"] : [])
            try n.requireInputs(2...2)
            target = try constantInts(n.inputs[1], n, "shape")
        }
        let allowZero = try n.int("allowzero", default: 0) != 0
        if let constant = constants[n.inputs[0]] {
            // A reshaped constant stays a constant (same bytes, new shape).
            guard let count = Tensor.checkedCount(constant.shape) else { throw n.error("constant too large") }
            guard target.allSatisfy({ $0 >= -1 }), target.filter({ $0 == -1 }).count <= 1 else {
                throw n.error("shape \(target) must hold sizes ≥ 0 and at most one -1")
            }
            var shape = target
            for (k, t) in target.enumerated() where t == 0 && !allowZero { shape[k] = k < constant.rank ? constant.shape[k] : 0 }
            if let m = shape.firstIndex(of: -1) {
                guard let rest = Tensor.checkedCount(shape.enumerated().filter { $0.offset != m }.map(\.element)) else {
                    throw n.error("cannot reshape constant \(constant.shape) to \(target): the sizes' product overflows")
                }
                guard rest > 0, count % rest == 0 else { throw n.error("cannot reshape constant \(constant.shape) to \(target)") }
                shape[m] = count / rest
            }
            guard Tensor.checkedCount(shape) == count else { throw n.error("cannot reshape constant \(constant.shape) to \(target)") }
            let dense = constant.contiguous()
            do { addConstant(n.outputs[0], try Tensor(dtype: dense.dtype, shape: shape, storage: dense.storage)) } catch {
                throw n.error("\(error)")
            }
            return
        }
        // A -1 standing exactly for the symbolic batch ([-1, 9216] on [N, 256, 6, 6], as torch's
        // dynamo export writes it) is resolved by the IR's shape inference.
        try emit(n, .reshape(shape: target, allowZero: allowZero), [n.inputs[0]])
    }

    mutating func dropout(_ n: NodeContext) throws(ONNXError) {
        var ratio: Float = 0.5
        if opset < 12 {
            var allowed: Set<String> = ["ratio"]
            if opset < 7 { allowed.insert("is_test") }
            if opset < 6 { allowed.insert("consumed_inputs") }
            try n.allow(allowed)
            try n.requireInputs(1...1)
            ratio = try n.float("ratio", default: 0.5)
            // Dropout-1/6 drops at random unless is_test is nonzero (default 0).
            if opset < 7, try n.int("is_test", default: 0) == 0 {
                throw n.error("is_test is 0 (random training-mode dropout, the default before opset 7); zoo runs inference only, which needs is_test=1")
            }
        } else {
            try n.allow(["seed"])
            try n.requireInputs(1...3)
            if let r = n.input(1) {
                guard let t = constants[r], t.count == 1, t.dtype.isFloatingPoint else { throw n.error("ratio '\(r)' must be a constant scalar") }
                ratio = Float(t.doubles()[0])
            }
            if let mode = n.input(2) {
                guard let t = constants[mode], t.count == 1 else { throw n.error("training_mode '\(mode)' must be a constant") }
                guard t.doubles()[0] == 0 else { throw n.error("training_mode is true; zoo runs inference only") }
            }
        }
        try emit(n, .dropout(ratio: ratio), [n.inputs[0]])
    }

    /// Softmax from opset 13 normalizes along `axis`; before, it coerces the input to 2-D at `axis`
    /// and normalizes each row. Those agree when `axis` is the last axis; otherwise the old form is
    /// Flatten(axis) → Softmax(1) → Reshape back.
    /// ReduceMean where it is global average pooling — the mean over height and width of a 4-D
    /// input, which is how the dynamo exporter writes torchvision's AdaptiveAvgPool2d(1) — imported
    /// as GlobalAveragePool (then Flatten for keepdims=0). Axes are an attribute before opset 18 and
    /// a constant input from 18. Any other reduction is refused, naming its axes.
    mutating func reduceMean(_ n: NodeContext) throws(ONNXError) {
        let axes: [Int]
        if opset >= 18 {
            try n.allow(["keepdims", "noop_with_empty_axes"])
            try n.requireInputs(1...2)
            if let input = n.input(1) { axes = try constantInts(input, n, "axes") } else { axes = [] }
            if axes.isEmpty, try n.int("noop_with_empty_axes", default: 0) != 0 {
                throw n.error("noop_with_empty_axes=1 with no axes (an identity) is not supported")
            }
        } else {
            try n.allow(["axes", "keepdims"])
            try n.requireInputs(1...1)
            axes = try n.ints("axes") ?? []
        }
        let keepDims = try n.int("keepdims", default: 1) != 0
        let x = try shape(of: n.inputs[0], n)
        let normalized = Set(axes.map { $0 < 0 ? $0 + x.count : $0 })
        guard x.count == 4, normalized == [2, 3], axes.count == 2 else {
            throw n.error("only the mean over height and width of a 4-D input (global average pooling) is supported; "
                + "axes \(axes.isEmpty ? "all" : "\(axes)") of a rank-\(x.count) input")
        }
        if keepDims { return try emit(n, .globalAveragePool, [n.inputs[0]]) }
        guard let output = n.outputs.first, !output.isEmpty else { throw n.error("has no output") }
        let pooled = "\(output)/pooled"
        nodes.append(Node("\(n.name)/pool", .globalAveragePool, inputs: [n.inputs[0]], output: pooled))
        nodes.append(Node(n.name, .flatten(axis: 1), inputs: [pooled], output: output))
    }

    mutating func softmax(_ n: NodeContext) throws(ONNXError) {
        try n.allow(["axis"])
        try n.requireInputs(1...1)
        let axis = try n.int("axis", default: opset >= 13 ? -1 : 1)
        if opset >= 13 { return try emit(n, .softmax(axis: axis), [n.inputs[0]]) }
        let x = try shape(of: n.inputs[0], n)
        let a = axis < 0 ? axis + x.count : axis
        guard (0..<Swift.max(x.count, 1)).contains(a) else { throw n.error("axis \(axis) out of range for rank \(x.count)") }
        if a == x.count - 1 { return try emit(n, .softmax(axis: a), [n.inputs[0]]) }
        guard let output = n.outputs.first, !output.isEmpty else { throw n.error("has no output") }
        let flat = "\(output)/coerced_2d", normalized = "\(output)/softmax_2d"
        nodes.append(Node("\(n.name)/coerce_2d", .flatten(axis: a), inputs: [n.inputs[0]], output: flat))
        nodes.append(Node("\(n.name)/softmax_2d", .softmax(axis: 1), inputs: [flat], output: normalized))
        let target = x.enumerated().map { $0.element.value ?? ($0.offset == 0 ? 0 : -1) }
        nodes.append(Node(n.name, .reshape(shape: target, allowZero: false), inputs: [normalized], output: output))
    }

    /// MatMul is imported only where it is trivially a Gemm: a 2-D A times a 2-D constant B (a
    /// following bias Add stays an Add).
    mutating func matMul(_ n: NodeContext) throws(ONNXError) {
        try n.allow([])
        try n.requireInputs(2...2)
        let a = try shape(of: n.inputs[0], n)
        guard a.count == 2, let b = constants[n.inputs[1]], b.rank == 2 else {
            throw n.error("only a 2-D input times a 2-D constant (a Gemm) is supported; '\(n.inputs[0])' has rank \(a.count)"
                + (constants[n.inputs[1]] == nil ? " and '\(n.inputs[1])' is not a constant" : ""))
        }
        try emit(n, .gemm(Op.Gemm()), [n.inputs[0], n.inputs[1]])
    }

    mutating func gemm(_ n: NodeContext) throws(ONNXError) {
        var allowed: Set<String> = ["alpha", "beta", "transA", "transB"]
        if opset < 7 { allowed.insert("broadcast") }  // Gemm-1/6
        try n.allow(allowed)
        try n.requireInputs(opset >= 11 ? 2...3 : 3...3)
        let gemm = Op.Gemm(alpha: try n.float("alpha", default: 1), beta: try n.float("beta", default: 1),
                           transA: try n.int("transA", default: 0) != 0, transB: try n.int("transB", default: 0) != 0)
        var inputs = [n.inputs[0], n.inputs[1]]
        if let c = n.input(2) {
            if opset >= 7 {
                inputs.append(c)
            } else {
                // Gemm-1/6: C is [M, N], or with broadcast=1 is broadcast to it (legacy rules: suffix
                // matching, no axis attribute).
                let a = try shape(of: n.inputs[0], n), b = try shape(of: n.inputs[1], n), cShape = try shape(of: c, n)
                guard a.count == 2, b.count == 2 else {
                    throw n.error("A \(Importer.text(a)) and B \(Importer.text(b)) must be 2-D")
                }
                let y = [gemm.transA ? a[1] : a[0], gemm.transB ? b[0] : b[1]]
                if try n.int("broadcast", default: 0) != 0 {
                    var value = try legacyBroadcast(n, c, shape: cShape, to: y, axis: nil, role: "C")
                    // A one-element [1, 1] C: the IR's Gemm takes a one-element C as [1].
                    if cShape == [.fixed(1), .fixed(1)], y != cShape { value = try reshaped(n, value, to: [1], role: "C") }
                    inputs.append(value)
                } else {
                    guard cShape == y else {
                        throw n.error("C \(Importer.text(cShape)) must be [M, N] = \(Importer.text(y)): broadcast is 0, and before opset 7 Gemm broadcasts C only with broadcast=1")
                    }
                    inputs.append(c)
                }
            }
        }
        try emit(n, .gemm(gemm), inputs)
    }

    /// Add from opset 7 broadcasts NumPy-style (the IR's Add). Add-1/6 broadcast only with
    /// broadcast=1, and only B to A's shape: B's dims are a contiguous run of A's starting at `axis`
    /// (suffix matching when unset), or B holds one element; broadcast=0 needs equal shapes.
    mutating func add(_ n: NodeContext) throws(ONNXError) {
        try n.requireInputs(2...2)
        guard opset < 7 else {
            try n.allow([])
            return try emit(n, .add, [n.inputs[0], n.inputs[1]])
        }
        try n.allow(opset < 6 ? ["axis", "broadcast", "consumed_inputs"] : ["axis", "broadcast"])
        let a = try shape(of: n.inputs[0], n), b = try shape(of: n.inputs[1], n)
        guard try n.int("broadcast", default: 0) != 0 else {
            guard a == b else {
                throw n.error("A \(Importer.text(a)) and B \(Importer.text(b)) differ: broadcast is 0, and before opset 7 Add broadcasts only with broadcast=1")
            }
            return try emit(n, .add, [n.inputs[0], n.inputs[1]])
        }
        try emit(n, .add, [n.inputs[0], try legacyBroadcast(n, n.inputs[1], shape: b, to: a, axis: try n.int("axis"), role: "B")])
    }

    /// Legacy (opset < 7) broadcasting of `value` (shape `b`) to shape `a`: `b` must be a contiguous
    /// run of `a`'s dims starting at `axis` (suffix matching when nil), or hold one element. The
    /// changelog says "1-dim expansion doesn't work yet"; exporters relied on it anyway (torch's
    /// [2, 1] + axis=0 onto [2, 3]), so a dim of 1 in `b` broadcasts, as it does from opset 7.
    /// Returns what the IR's right-aligned NumPy broadcasting reads: `value` itself when the run
    /// ends at `a`'s last dim, else `value` reshaped with trailing 1s (the constant refolded, or an
    /// IR Reshape).
    mutating func legacyBroadcast(_ n: NodeContext, _ value: String, shape b: [Dim], to a: [Dim], axis: Int?,
                                  role: String) throws(ONNXError) -> String {
        guard b.count <= a.count else {
            throw n.error("\(role) \(Importer.text(b)) has a higher rank than \(Importer.text(a)); legacy broadcasting (broadcast=1) only extends \(role)")
        }
        if b.allSatisfy({ $0 == .fixed(1) }) { return value }  // one element (a scalar included) broadcasts from anywhere
        let start: Int
        if let axis {
            guard axis >= 0, axis <= a.count - b.count else {
                throw n.error("axis \(axis) does not place \(role) \(Importer.text(b)) inside \(Importer.text(a)) (legacy broadcasting needs 0 ≤ axis ≤ \(a.count - b.count))")
            }
            start = axis
        } else {
            start = a.count - b.count
        }
        for (k, dim) in b.enumerated() where dim != a[start + k] && dim != .fixed(1) {
            throw n.error("\(role) \(Importer.text(b)) does not broadcast to \(Importer.text(a)) from axis \(start): its dimension \(k) is \(dim), not \(a[start + k]) or 1")
        }
        let trailing = a.count - start - b.count
        guard trailing > 0 else { return value }
        return try reshaped(n, value, to: [Int](repeating: 0, count: b.count) + [Int](repeating: 1, count: trailing), role: role)
    }

    /// `value` reshaped to `target` (0 copies a dim): a constant is refolded under a new name, any
    /// other value gets an IR Reshape node named after `n`.
    mutating func reshaped(_ n: NodeContext, _ value: String, to target: [Int], role: String) throws(ONNXError) -> String {
        guard let output = n.outputs.first, !output.isEmpty else { throw n.error("has no output") }
        let name = "\(output)/\(role)_reshaped"
        if let constant = constants[value] {
            let shape = target.enumerated().map { $0.element == 0 ? constant.shape[$0.offset] : $0.element }
            let dense = constant.contiguous()
            do { addConstant(name, try Tensor(dtype: dense.dtype, shape: shape, storage: dense.storage)) } catch { throw n.error("\(error)") }
        } else {
            nodes.append(Node("\(n.name)/\(role)_reshape", .reshape(shape: target, allowZero: false), inputs: [value], output: name))
        }
        return name
    }

    static func text(_ dims: [Dim]) -> String { "[" + dims.map(\.description).joined(separator: ", ") + "]" }

    mutating func batchNormalization(_ n: NodeContext) throws(ONNXError) {
        var allowed: Set<String> = ["epsilon", "momentum"]
        if opset < 9 { allowed.insert("spatial") }
        if opset < 7 { allowed.insert("is_test") }
        if opset < 6 { allowed.insert("consumed_inputs") }  // BatchNormalization-1's legacy in-place hint
        if opset >= 14 { allowed.insert("training_mode") }
        try n.allow(allowed)
        try n.requireInputs(5...5)
        // BatchNormalization-1/6 normalize with the batch's own statistics unless is_test is nonzero (default 0).
        if opset < 7, try n.int("is_test", default: 0) == 0 {
            throw n.error("is_test is 0 (training mode, the default before opset 7, normalizes with the batch's statistics); zoo runs inference only, which needs is_test=1")
        }
        if try n.int("spatial", default: 1) != 1 { throw n.error("spatial=0 (per-activation statistics) is not supported") }
        if try n.int("training_mode", default: 0) != 0 { throw n.error("training_mode=1 is not supported; zoo runs inference only") }
        try emit(n, .batchNormalization(epsilon: try n.float("epsilon", default: 1e-5)), Array(n.inputs.prefix(5)))
    }

    /// A Cast to FLOAT of a floating-point initializer or folded constant — a weight stored in another
    /// precision — becomes an alias of that constant: the nodes reading the Cast read the constant
    /// under its own name, kept in its own dtype (so `initializers` and a state dict made from the
    /// file keep it bit for bit), and the executor widens it to f32 when it plans, which is exactly
    /// the Cast. Every other Cast (of a value computed at run time, of an integer constant, or to
    /// another type) is refused. Cast-1…5 name the target type in a STRING `to` ("FLOAT"); from
    /// Cast-6 it is an INT (TensorProto.DataType); Cast-19's `saturate` only concerns float8 targets.
    mutating func cast(_ n: NodeContext) throws(ONNXError) {
        try n.allow(opset >= 19 ? ["to", "saturate"] : ["to"])
        try n.requireInputs(1...1)
        guard n.outputs.count == 1 else { throw n.error("has \(n.outputs.count) outputs, expected 1") }
        let target: String
        if opset < 6 {
            guard let name = try n.string("to") else { throw n.error("attribute 'to' is required") }
            target = name
        } else {
            guard let type = try n.int("to") else { throw n.error("attribute 'to' is required") }
            target = Int32(exactly: type).map { ONNXDataType(rawValue: $0).description } ?? "data type \(type)"
        }
        let scope = "zoo imports Cast only to FLOAT of a floating-point initializer (a weight stored in another precision)"
        let input = n.inputs[0]
        guard target == ONNXDataType.float.description else { throw n.error("casts '\(input)' to \(target); \(scope)") }
        guard let constant = constants[input] else { throw n.error("casts '\(input)', a value computed at run time; \(scope)") }
        guard constant.dtype.isFloatingPoint else { throw n.error("casts '\(input)', which is \(constant.dtype.rawValue); \(scope)") }
        aliases[n.outputs[0]] = input
        widened.insert(n.outputs[0])
    }

    mutating func constant(_ n: NodeContext) throws(ONNXError) {
        try n.allow(["value", "value_float", "value_floats", "value_int", "value_ints", "sparse_value", "value_string", "value_strings"])
        guard n.outputs.count == 1, !n.outputs[0].isEmpty else { throw n.error("must have one output") }
        guard n.attributes.count == 1 else { throw n.error("must have exactly one value attribute, has \(n.attributes.count)") }
        let tensor: Tensor
        if let t = try n.tensor("value") {
            tensor = try readTensor(t)
        } else if let values = try n.floats("value_floats") {
            tensor = Tensor(floats: values, shape: [values.count])
        } else if let values = try n.ints("value_ints") {
            tensor = Importer.int64Tensor(values, shape: [values.count])
        } else if let value = try n.int("value_int") {
            tensor = Importer.int64Tensor([value], shape: [])
        } else if n.attributes["value_float"] != nil {
            tensor = Tensor(floats: [try n.float("value_float", default: 0)], shape: [])
        } else {
            throw n.error("attribute '\(n.attributes.keys.first!)' (sparse or string constants) is not supported")
        }
        addConstant(n.outputs[0], tensor)
    }

    mutating func constantOfShape(_ n: NodeContext) throws(ONNXError) {
        try n.allow(["value"])
        try n.requireInputs(1...1)
        let shape = try constantInts(n.inputs[0], n, "shape")
        guard shape.allSatisfy({ $0 >= 0 }) else { throw n.error("shape \(shape) has a negative size") }
        var fill = Tensor(floats: [0], shape: [1])
        if let t = try n.tensor("value") { fill = try readTensor(t) }
        guard fill.count == 1 else { throw n.error("attribute 'value' must hold one element, holds \(fill.count)") }
        let element = fill.contiguous()
        let item = element.dtype.itemSize
        guard let count = Tensor.checkedCount(shape), case let (bytes, false) = count.multipliedReportingOverflow(by: item) else {
            throw n.error(LimitExceeded(\.maxFoldedConstantBytes, of: limits,
                                        "a folded constant of shape \(shape) \(element.dtype.rawValue) (more bytes than an Int counts)").description)
        }
        guard bytes <= limits.maxFoldedConstantBytes else {
            throw n.error(LimitExceeded(\.maxFoldedConstantBytes, of: limits,
                                        "a folded constant of shape \(shape) \(element.dtype.rawValue) (\(ResourceLimits.bytesText(bytes)))",
                                        needed: bytes).description)
        }
        // The fill value viewed with stride 0: no allocation here, whatever the shape (a kernel that
        // needs it dense copies it, within the limit checked above).
        do {
            let fillView = try Tensor(dtype: element.dtype, shape: shape, strides: shape.map { _ in 0 }, offset: element.offset,
                                      storage: element.storage)
            addConstant(n.outputs[0], fillView)
        } catch { throw n.error("\(error)") }
    }

    static func int64Tensor(_ values: [Int], shape: [Int]) -> Tensor {
        let storage = values.map { Int64($0) }.withUnsafeBytes { Storage(copying: $0) }
        return try! Tensor(dtype: .i64, shape: shape, storage: storage)
    }
}
