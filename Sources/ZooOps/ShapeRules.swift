import ZooCore

/// The shape arithmetic ops share: broadcasting, sliding windows, reshape targets, and checked
/// products and sums (attributes and shapes come from files and may be anything up to Int.max).
/// Spatial dimensions must be fixed; the batch may be symbolic and passes through.
enum ShapeRules {
    /// NumPy (ONNX multidirectional) broadcasting: shapes align on the right; each pair of dims is
    /// equal or one of them is 1.
    static func broadcast(_ a: ValueInfo, _ b: ValueInfo) throws(OpFailure) -> [Dim] {
        let rank = max(a.shape.count, b.shape.count)
        let x = [Dim](repeating: .fixed(1), count: rank - a.shape.count) + a.shape
        let y = [Dim](repeating: .fixed(1), count: rank - b.shape.count) + b.shape
        var out: [Dim] = []
        for (p, q) in zip(x, y) {
            if p == q || q == .fixed(1) { out.append(p) }
            else if p == .fixed(1) { out.append(q) }
            else { throw OpFailure("shapes \(a) and \(b) do not broadcast") }
        }
        return out
    }

    /// Output length of a sliding window; with `ceil`, a last window starting in the end padding is dropped.
    static func window(_ dim: Dim, kernel: Int, stride: Int, dilation: Int, pads: (Int, Int), ceil: Bool, _ what: String) throws(OpFailure) -> Int {
        let size = try fixed(dim, what)
        guard kernel >= 1, stride >= 1, dilation >= 1, pads.0 >= 0, pads.1 >= 0 else {
            throw OpFailure("\(what): kernel \(kernel), stride \(stride) and dilation \(dilation) must be positive and pads \(pads) non-negative")
        }
        // Every step checked: attributes are read from files and may be anything up to Int.max.
        let span = try add(try multiply(dilation, kernel - 1, "the \(what) window (dilation × (kernel - 1))"), 1, "the \(what) window")
        let padded = try add(try add(size, pads.0, "the padded \(what)"), pads.1, "the padded \(what)")
        let room = padded - span  // both non-negative: cannot overflow
        guard room >= 0 else {
            throw OpFailure("input \(what) \(size) (padded \(padded)) is smaller than the window \(span)")
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

    /// The kernels multiply a window's padded sizes (AveragePool's count_include_pad divisor):
    /// refuse a padded input whose spatial volume overflows. Runs after `window` has checked each
    /// padded size on its own.
    static func paddedPlane(_ x: [Dim], _ pads: [Int]) throws(OpFailure) {
        let s = pads.count / 2
        var volume = 1
        for d in 0..<s {
            let padded = try fixed(x[2 + d], "spatial dimension \(d)") + pads[d] + pads[d + s]
            volume = try multiply(volume, padded, "the padded input's spatial volume")
        }
    }

    /// The spatial output sizes of a sliding window over [N, C, spatial…] (Conv, the pools):
    /// attributes checked (one per spatial dim, pads [begin…, end…]), every size computed with
    /// overflow checks.
    static func slidingWindow(_ x: ValueInfo, kernel: [Int], strides: [Int], dilations: [Int], pads: [Int],
                              ceil: Bool) throws(OpFailure) -> [Dim] {
        let s = kernel.count
        guard s >= 1, x.shape.count == s + 2 else {
            throw OpFailure("input '\(x.name)' must have rank \(s + 2) for a \(s)-D window, has shape \(text(x.shape))")
        }
        try checkPairs(kernel, strides, dilations, pads)
        let names = s == 2 ? ["height", "width"] : s == 1 ? ["length"] : (0..<s).map { "spatial dimension \($0)" }
        var out: [Dim] = []
        for d in 0..<s {
            out.append(.fixed(try window(x.shape[2 + d], kernel: kernel[d], stride: strides[d], dilation: dilations[d],
                                         pads: (pads[d], pads[d + s]), ceil: ceil, names[d])))
        }
        try paddedPlane(x.shape, pads)
        return out
    }

    /// `a × b`, refused (naming `what`) when it overflows an `Int`.
    static func multiply(_ a: Int, _ b: Int, _ what: String) throws(OpFailure) -> Int {
        let (product, overflow) = a.multipliedReportingOverflow(by: b)
        guard !overflow else { throw OpFailure("\(what): \(a) × \(b) overflows") }
        return product
    }

    /// `a + b`, refused (naming `what`) when it overflows an `Int`.
    static func add(_ a: Int, _ b: Int, _ what: String) throws(OpFailure) -> Int {
        let (sum, overflow) = a.addingReportingOverflow(b)
        guard !overflow else { throw OpFailure("\(what): \(a) + \(b) overflows") }
        return sum
    }

    static func text(_ dims: [Dim]) -> String { "[" + dims.map(\.description).joined(separator: ", ") + "]" }

    static func rank(_ info: ValueInfo, _ expected: Int) throws(OpFailure) {
        guard info.shape.count == expected else {
            throw OpFailure("input '\(info.name)' must have rank \(expected), has shape [\(info.shape.map(\.description).joined(separator: ", "))]")
        }
    }

    static func fixed(_ dim: Dim, _ what: String) throws(OpFailure) -> Int {
        guard let value = dim.value else { throw OpFailure("\(what) must be fixed, is symbolic '\(dim)'") }
        return value
    }

    static func vector(_ info: ValueInfo, _ length: Int) throws(OpFailure) {
        guard info.fixedShape == [length] else { throw OpFailure("'\(info.name)' must have shape [\(length)], has \(info)") }
    }

    static func checkPairs(_ kernel: [Int], _ strides: [Int], _ dilations: [Int], _ pads: [Int]) throws(OpFailure) {
        let s = kernel.count
        guard strides.count == s, dilations.count == s, pads.count == 2 * s else {
            throw OpFailure("\(s)-D attributes expected (kernel \(kernel), strides \(strides), dilations \(dilations), pads \(pads))")
        }
        guard kernel.allSatisfy({ $0 >= 1 }), strides.allSatisfy({ $0 >= 1 }), dilations.allSatisfy({ $0 >= 1 }),
              pads.allSatisfy({ $0 >= 0 }) else {
            throw OpFailure("kernel, strides and dilations must be positive and pads non-negative")
        }
    }

    /// The product of dims: fixed when all are, the symbolic one when it is alone.
    static func product(_ dims: ArraySlice<Dim>) throws(OpFailure) -> Dim {
        if dims.count == 1 { return dims.first! }
        var total = 1
        for dim in dims {
            guard let value = dim.value else { throw OpFailure("cannot flatten a symbolic dimension together with others") }
            total = try multiply(total, value, "flattening \(text(Array(dims)))")
        }
        return .fixed(total)
    }

    static func reshape(_ x: [Dim], _ target: [Int], allowZero: Bool) throws(OpFailure) -> [Dim] {
        try reshape(x, target.map { .fixed($0) }, allowZero: allowZero)
    }

    /// ONNX Reshape's output for `target`, whose entries may be symbolic dims (a target computed from
    /// the input's own shape, as torch's exports do): such an entry is that dim of the input.
    static func reshape(_ x: [Dim], _ target: [Dim], allowZero: Bool) throws(OpFailure) -> [Dim] {
        let shown = "[" + target.map(\.description).joined(separator: ", ") + "]"
        var out: [Dim] = []
        var inferred: Int?
        var known = 1
        /// Input positions whose dim the target carries (a 0 at the same position, or the same symbolic dim).
        var carried: Set<Int> = []
        for (i, t) in target.enumerated() {
            guard let t = t.value else {
                guard let j = x.indices.first(where: { x[$0] == t && !carried.contains($0) }) else {
                    throw OpFailure("shape \(shown): \(t) is not a dimension of the input \(text(x))")
                }
                carried.insert(j)
                out.append(t)
                continue
            }
            if t == 0 && !allowZero {
                guard i < x.count else { throw OpFailure("shape \(shown): 0 at \(i) copies a dimension the input (rank \(x.count)) lacks") }
                carried.insert(i)
                out.append(x[i])
                if let v = x[i].value { known = try multiply(known, v, "shape \(shown)") }
            } else if t == -1 {
                guard inferred == nil else { throw OpFailure("shape \(shown) has more than one -1") }
                inferred = i
                out.append(.fixed(0))
            } else {
                guard t >= 0 else { throw OpFailure("shape \(shown) has a negative size") }
                out.append(.fixed(t))
                known = try multiply(known, t, "shape \(shown)")
            }
        }
        // Symbolic input dims are carried through by a 0 at their position or by themselves in the
        // target — or one of them is exactly what a -1 stands for: when the fixed input dims (other
        // than those copied) hold the fixed target dims exactly, the -1 is that symbolic dim for every
        // value it takes (Reshape(x, [-1, 9216]) on [N, 256, 6, 6] → [N, 9216]). A -1 that would be a
        // multiple or a fraction of a symbolic dim has no Dim, so it is refused.
        var remaining = 1
        var uncarried: [(position: Int, dim: Dim)] = []
        var copiedFixed = 1
        for (i, dim) in x.enumerated() {
            if let v = dim.value {
                remaining = try multiply(remaining, v, "input \(text(x))")
                if carried.contains(i) { copiedFixed = try multiply(copiedFixed, v, "shape \(shown)") }
            } else if !carried.contains(i) {
                uncarried.append((i, dim))
            }
        }
        let fixedTarget = known / max(copiedFixed, 1)
        let fixedInput = remaining / max(copiedFixed, 1)
        if let (position, symbolic) = uncarried.first {
            guard let i = inferred, uncarried.count == 1 else {
                throw OpFailure("shape \(shown) must copy the symbolic dimension \(symbolic) with a 0 at position \(position)"
                    + (inferred == nil || uncarried.count == 1 ? "" : " (a -1 can stand for one symbolic dimension, not \(uncarried.count))"))
            }
            guard fixedTarget > 0, fixedInput == fixedTarget else {
                let ratio = fixedTarget > 0 && fixedInput % fixedTarget == 0 ? "× \(fixedInput / fixedTarget)"
                    : fixedInput > 0 && fixedTarget % fixedInput == 0 ? "/ \(fixedTarget / fixedInput)" : "× \(fixedInput)/\(fixedTarget)"
                throw OpFailure("shape \(shown): the -1 would be \(symbolic) \(ratio), not a dimension; "
                    + "copy the symbolic dimension \(symbolic) with a 0 at position \(position), or make the fixed sizes "
                    + "match so that the -1 is exactly \(symbolic)")
            }
            out[i] = symbolic
        } else if let i = inferred {
            guard fixedTarget > 0, fixedInput % fixedTarget == 0 else { throw OpFailure("cannot reshape \(text(x)) to \(shown)") }
            out[i] = .fixed(fixedInput / fixedTarget)
        } else {
            guard fixedTarget == fixedInput else { throw OpFailure("cannot reshape \(text(x)) (\(fixedInput) elements) to \(shown)") }
        }
        return out
    }
}
