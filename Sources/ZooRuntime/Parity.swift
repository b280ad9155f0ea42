import ZooCore

/// How closely an output matches a reference: the figures `zoo parity` prints and judges.
public struct ParityReport: Sendable {
    public let name: String
    public let shape: [Int]
    public let maxAbsDifference: Double
    /// The largest finite |reference| value, which scales the tolerance.
    public let maxAbsReference: Double
    public let cosine: Double
    /// Rows (first dimension) whose arg-max agrees, and whose ordered top-5 is identical, out of `rows`;
    /// nil for outputs that are not [rows, classes ≥ 5].
    public let top1Agreement: Int?
    public let top5Agreement: Int?
    public let rows: Int

    /// max|Δ| / max|ref|.
    public var relativeDifference: Double { maxAbsReference > 0 ? maxAbsDifference / maxAbsReference : maxAbsDifference }

    /// The largest max|Δ| that passes: `atol + rtol·max|ref|`.
    public func allowedDifference(atol: Double, rtol: Double) -> Double { atol + rtol * maxAbsReference }

    /// Within `allowedDifference`, with identical top-5 in every row where that applies.
    public func passes(atol: Double, rtol: Double) -> Bool {
        maxAbsDifference <= allowedDifference(atol: atol, rtol: rtol) && (top5Agreement ?? rows) == rows
    }

    public init(name: String, value: Tensor, reference: Tensor) {
        self.name = name
        shape = reference.shape
        let a = value.doubles(), r = reference.doubles()
        var maxDiff = 0.0, maxRef = 0.0, dot = 0.0, na = 0.0, nr = 0.0
        var identical = a.count == r.count
        for (x, y) in zip(a, r) {
            // Equal values differ by nothing, infinities and NaNs included (∞ − ∞ would be NaN).
            let same = x == y || (x.isNaN && y.isNaN)
            identical = identical && same
            let d = same ? 0 : abs(x - y)
            maxDiff = d.isNaN ? .infinity : max(maxDiff, d)
            if y.isFinite { maxRef = max(maxRef, abs(y)) }  // an infinite reference must not make the tolerance infinite
            dot += x * y
            na += x * x
            nr += y * y
        }
        if a.count != r.count || value.shape != reference.shape { maxDiff = .infinity }
        maxAbsDifference = maxDiff
        maxAbsReference = maxRef
        cosine = identical && value.shape == reference.shape ? 1
            : na > 0 && nr > 0 ? dot / (na.squareRoot() * nr.squareRoot()) : (na == nr ? 1 : 0)
        rows = reference.shape.first ?? 1
        if reference.rank == 2, reference.shape[1] >= 5, value.shape == reference.shape {
            let columns = reference.shape[1]
            var top1 = 0, top5 = 0
            for row in 0..<rows {
                let x = Array(a[(row * columns)..<((row + 1) * columns)]), y = Array(r[(row * columns)..<((row + 1) * columns)])
                let tx = ParityReport.top(5, x), ty = ParityReport.top(5, y)
                if tx[0] == ty[0] { top1 += 1 }
                if tx == ty { top5 += 1 }
            }
            top1Agreement = top1
            top5Agreement = top5
        } else {
            top1Agreement = nil
            top5Agreement = nil
        }
    }

    /// Indices of the `k` largest values, largest first (ties: lower index first).
    public static func top(_ k: Int, _ values: [Double]) -> [Int] {
        Array(values.indices.sorted { values[$0] != values[$1] ? values[$0] > values[$1] : $0 < $1 }.prefix(k))
    }
}
