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
            throw OpFailure("input '\(x.name)' must have rank \(s + 2) for a \(s)-D window, has shape \(Dim.text(x.shape))")
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

    /// The product of dims: fixed when all are; else a symbolic product ("N*256").
    static func product(_ dims: ArraySlice<Dim>) throws(OpFailure) -> Dim {
        if dims.count == 1 { return dims.first! }
        var total = SymbolicProduct.one
        for dim in dims { total = try total.times(SymbolicProduct(dim), "flattening \(Dim.text(Array(dims)))") }
        return total.dim
    }

    static func reshape(_ x: [Dim], _ target: [Int], allowZero: Bool) throws(OpFailure) -> [Dim] {
        try reshape(x, target.map { .fixed($0) }, allowZero: allowZero)
    }

    /// ONNX Reshape's output for `target`, whose entries may be symbolic dims (a target computed
    /// from the input's own shape, as torch's exports do). Sizes are compared as products of symbols
    /// and a coefficient: the -1 is the input's element count over the other entries', which may be
    /// symbolic ([-1, 9216] on [N, 256, 6, 6] is [N, 9216]; [-1] on [N, 24] is [N*24]) but must divide
    /// exactly (N / 2 is no dimension).
    static func reshape(_ x: [Dim], _ target: [Dim], allowZero: Bool) throws(OpFailure) -> [Dim] {
        let shown = "[" + target.map(\.description).joined(separator: ", ") + "]"
        var out: [Dim] = []
        var inferred: Int?
        var known = SymbolicProduct.one
        for (i, t) in target.enumerated() {
            var dim = t
            if t == .fixed(0) && !allowZero {
                guard i < x.count else { throw OpFailure("shape \(shown): 0 at \(i) copies a dimension the input (rank \(x.count)) lacks") }
                dim = x[i]
            } else if t == .fixed(-1) {
                guard inferred == nil else { throw OpFailure("shape \(shown) has more than one -1") }
                inferred = i
                out.append(.fixed(0))
                continue
            } else if let v = t.value, v < 0 {
                throw OpFailure("shape \(shown) has a negative size")
            }
            out.append(dim)
            known = try known.times(SymbolicProduct(dim), "shape \(shown)")
        }
        var total = SymbolicProduct.one
        for dim in x { total = try total.times(SymbolicProduct(dim), "input \(Dim.text(x))") }
        guard let i = inferred else {
            guard total == known else { throw OpFailure("cannot reshape \(Dim.text(x)) (\(total.dim) elements) to \(shown) (\(known.dim))") }
            return out
        }
        guard known.coefficient > 0 else { throw OpFailure("shape \(shown): a -1 next to a size 0 has no single value") }
        guard let quotient = total.divided(by: known) else {
            throw OpFailure("shape \(shown): the -1 would be \(total.dim) / \(known.dim), not a dimension")
        }
        out[i] = quotient.dim
        return out
    }
}

/// A dimension as a product of symbols and a coefficient (N*256 → [N], 256), for comparing and
/// dividing symbolic sizes. A symbolic Dim whose name is such a product ("N*256") reads back as one.
struct SymbolicProduct: Equatable {
    var symbols: [String]
    var coefficient: Int

    static let one = SymbolicProduct(symbols: [], coefficient: 1)

    init(symbols: [String], coefficient: Int) {
        self.symbols = symbols.sorted()
        self.coefficient = coefficient
    }

    init(_ dim: Dim) {
        switch dim {
        case let .fixed(n): self.init(symbols: [], coefficient: n)
        case let .symbolic(name):
            var symbols: [String] = [], coefficient = 1
            for part in name.split(separator: "*", omittingEmptySubsequences: false) {
                if let n = Int(part), n > 0, case let (p, false) = coefficient.multipliedReportingOverflow(by: n) { coefficient = p } else { symbols.append(String(part)) }
            }
            self.init(symbols: symbols, coefficient: coefficient)
        }
    }

    func times(_ other: SymbolicProduct, _ what: String) throws(OpFailure) -> SymbolicProduct {
        SymbolicProduct(symbols: symbols + other.symbols, coefficient: try ShapeRules.multiply(coefficient, other.coefficient, what))
    }

    /// self / other when it is a product (other's symbols among self's, the coefficient dividing).
    func divided(by other: SymbolicProduct) -> SymbolicProduct? {
        guard other.coefficient != 0, coefficient % other.coefficient == 0 else { return nil }
        var rest = symbols
        for symbol in other.symbols {
            guard let k = rest.firstIndex(of: symbol) else { return nil }
            rest.remove(at: k)
        }
        return SymbolicProduct(symbols: rest, coefficient: coefficient / other.coefficient)
    }

    var dim: Dim {
        guard !symbols.isEmpty else { return .fixed(coefficient) }
        if symbols.count == 1 && coefficient == 1 { return .symbolic(symbols[0]) }
        return .symbolic((symbols + (coefficient == 1 ? [] : [String(coefficient)])).joined(separator: "*"))
    }
}
