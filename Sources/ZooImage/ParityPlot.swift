import ZooCore
#if canImport(Glibc)
import Glibc
#endif

/// A picture of a layer-by-layer parity check (`zoo parity A B --layers --plot`): every layer's
/// relative error on a log scale, in execution order, against the tolerance.
///
/// - y: relative error (max|A − B| / max|B|) on a log axis with a tick and label at each decade
///   (every k-th decade when they are crowded), spanning the data and the tolerance, at least 2 and
///   at most 16 decades; a smaller value is drawn at the lowest decade. An exact 0 has its own band
///   below the axis, labelled "0"; an infinite or NaN error (or a negative one, which cannot be)
///   its own band above it, labelled "inf".
/// - x: layer order, numbered from 1; each layer a bar from the bottom, green when it passed, red
///   when it failed.
/// - The tolerance (`tolerance`, relative; none when it is not positive) is a dashed blue line.
/// - The first layer that failed (`firstDivergent`) is marked by a dashed dark-red line and named.
/// - A layer without a comparison (`missing`, `shapeMismatch`) is a full-height light column (gray,
///   orange), not a bar: it has no value.
/// - Layer names come from model files: each is cut to 64 Unicode scalars (then "...") and escaped
///   as `String.escapedForTerminal` does; the PNG's font draws anything outside ASCII as '?', and the
///   SVG escapes XML's special characters and the scalars XML cannot hold. The title and subtitle
///   are treated alike; a text too wide for the picture is cut.
///
/// `png()` rasterizes the same layout as `svg()` draws with vectors (the SVG's monospace font has
/// the bitmap font's advance, so text takes the same room).
public struct ParityPlot: Sendable {
    /// What the comparison of one layer gave.
    public enum Outcome: Sendable, Equatable {
        /// max|Δ| / max|ref| (0, positive, infinite or NaN) and whether the layer passed.
        case compared(relativeError: Double, passes: Bool)
        /// The reference has no layer of this name.
        case missing
        /// The two sides' outputs have different shapes: there is nothing to compare.
        case shapeMismatch
    }

    public struct Layer: Sendable, Equatable {
        public var name: String
        public var outcome: Outcome
        public init(name: String, outcome: Outcome) { (self.name, self.outcome) = (name, outcome) }
    }

    public var title: String
    /// A second line under the title (what was compared, the pass rule); may be empty.
    public var subtitle: String
    /// The relative tolerance drawn as the dashed line.
    public var tolerance: Double
    /// In execution order.
    public var layers: [Layer]

    public init(title: String, subtitle: String = "", tolerance: Double, layers: [Layer]) {
        (self.title, self.subtitle, self.tolerance, self.layers) = (title, subtitle, tolerance, layers)
    }

    /// The index of the first compared layer that failed.
    public var firstDivergent: Int? {
        layers.firstIndex { if case .compared(_, false) = $0.outcome { true } else { false } }
    }

    /// The picture's size in pixels (the SVG's too).
    public var size: (width: Int, height: Int) {
        let drawing = layout()
        return (drawing.width, drawing.height)
    }

    /// The plot as an RGB picture.
    public func image() -> Image {
        let drawing = layout()
        var canvas = Canvas(width: drawing.width, height: drawing.height, background: .white)
        for shape in drawing.shapes {
            switch shape {
            case let .rect(x, y, width, height, colour, _):
                canvas.fill(x: x, y: y, width: width, height: height, colour)
            case let .line(x0, y0, x1, y1, colour, dash):
                canvas.line(x0: x0, y0: y0, x1: x1, y1: y1, colour, dash: dash)
            case let .text(text, x, y, scale, colour, anchor, vertical):
                let length = Canvas.textSize(text, scale: scale).width
                let shift = anchor == .start ? 0 : anchor == .middle ? length / 2 : length
                if vertical {
                    canvas.text(text, x: x, y: y - length + shift, scale: scale, colour, vertical: true)
                } else {
                    canvas.text(text, x: x - shift, y: y, scale: scale, colour)
                }
            }
        }
        return canvas.image
    }

    /// The plot as a PNG file's bytes.
    public func png() -> [UInt8] { pngData(image()) }

    /// The plot as an SVG document (UTF-8 text), each bar with a tooltip naming its layer.
    public func svg() -> String {
        let drawing = layout()
        var out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        out += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(drawing.width)\" height=\"\(drawing.height)\" "
            + "viewBox=\"0 0 \(drawing.width) \(drawing.height)\" font-family=\"monospace\" shape-rendering=\"crispEdges\">\n"
        out += "<rect x=\"0\" y=\"0\" width=\"\(drawing.width)\" height=\"\(drawing.height)\" fill=\"#ffffff\"/>\n"
        for shape in drawing.shapes {
            switch shape {
            case let .rect(x, y, width, height, colour, tooltip):
                out += "<rect x=\"\(x)\" y=\"\(y)\" width=\"\(width)\" height=\"\(height)\" fill=\"\(colour.hex)\""
                out += tooltip.map { "><title>\(xmlEscaped($0))</title></rect>\n" } ?? "/>\n"
            case let .line(x0, y0, x1, y1, colour, dash):
                // Through pixel centres, as the raster draws it.
                out += "<line x1=\"\(Double(x0) + 0.5)\" y1=\"\(Double(y0) + 0.5)\" x2=\"\(Double(x1) + 0.5)\" y2=\"\(Double(y1) + 0.5)\" "
                    + "stroke=\"\(colour.hex)\" stroke-width=\"1\"" + (dash > 0 ? " stroke-dasharray=\"\(dash)\"" : "") + "/>\n"
            case let .text(text, x, y, scale, colour, anchor, vertical):
                // The bitmap font's box is 7·scale tall from y; its baseline is at the box's bottom.
                let size = 10 * scale, baseline = Font5x7.height * scale
                let position = vertical ? "x=\"\(x + baseline)\" y=\"\(y)\" transform=\"rotate(-90 \(x + baseline) \(y))\""
                    : "x=\"\(x)\" y=\"\(y + baseline)\""
                out += "<text \(position) font-size=\"\(size)\" fill=\"\(colour.hex)\" text-anchor=\"\(anchor.rawValue)\">"
                    + xmlEscaped(text) + "</text>\n"
            }
        }
        return out + "</svg>\n"
    }

    // MARK: Layout, shared by both renderings

    enum Anchor: String { case start, middle, end }

    /// What both renderings draw, in order, in whole pixels. A text's (x, y) is the top-left,
    /// top-middle or top-right corner of its box (`Canvas.textSize`) for `.start`, `.middle`,
    /// `.end`. A vertical text reads upwards in a box from x to x + 7·scale: there y is where it
    /// starts (its bottom end), its middle, or where it ends (its top end).
    enum Shape {
        case rect(x: Int, y: Int, width: Int, height: Int, colour: RGB, tooltip: String?)
        case line(x0: Int, y0: Int, x1: Int, y1: Int, colour: RGB, dash: Int)
        case text(String, x: Int, y: Int, scale: Int, colour: RGB, anchor: Anchor, vertical: Bool)
    }

    struct Drawing {
        var width: Int
        var height: Int
        var shapes: [Shape] = []
    }

    static let passColour = RGB(44, 160, 44)
    static let failColour = RGB(214, 39, 40)
    static let missingColour = RGB(210, 210, 210)
    static let mismatchColour = RGB(255, 190, 125)
    static let toleranceColour = RGB(31, 90, 180)
    static let divergentColour = RGB(140, 0, 0)
    static let gridColour = RGB(232, 232, 232)
    static let inkColour = RGB(30, 30, 30)

    /// Text is drawn at scale 2: 12 px a character, 14 px tall.
    private static let scale = 2
    private static let advance = Font5x7.advance * scale, textHeight = Font5x7.height * scale

    func layout() -> Drawing {
        let n = layers.count, s = Self.scale, ink = Self.inkColour, textHeight = Self.textHeight
        let plotWidth = min(max(n * 8, 640), 2400), plotHeight = 360
        let plotLeft = 116, plotRight = plotLeft + plotWidth, plotTop = 96, plotBottom = plotTop + plotHeight
        let width = plotRight + 28

        // The legend, first: its rows set the height. Each key is a swatch (a box, or a dashed line
        // with its dash length) and a label, wrapped to the picture's width.
        let outcomes = layers.map(\.outcome)
        var keys: [(label: String, colour: RGB, dash: Int?)] = [("pass", Self.passColour, nil), ("fail", Self.failColour, nil)]
        if outcomes.contains(.missing) { keys.append(("not in reference", Self.missingColour, nil)) }
        if outcomes.contains(.shapeMismatch) { keys.append(("shape mismatch", Self.mismatchColour, nil)) }
        if onAxis(tolerance) { keys.append(("tolerance", Self.toleranceColour, 3)) }
        if firstDivergent != nil { keys.append(("first divergent", Self.divergentColour, 2)) }
        var placed: [(x: Int, row: Int)] = []
        var (keyX, keyRow) = (plotLeft, 0)
        for key in keys {
            let keyWidth = 22 + Canvas.textSize(key.label, scale: s).width
            if keyX + keyWidth > width - 8 && keyX > plotLeft { (keyX, keyRow) = (plotLeft, keyRow + 1) }
            placed.append((keyX, keyRow))
            keyX += keyWidth + 24
        }
        let legendTop = plotBottom + 66
        var drawing = Drawing(width: width, height: legendTop + (keyRow + 1) * 24 + 8)

        func text(_ string: String, x: Int, y: Int, anchor: Anchor = .start, colour: RGB = ink, vertical: Bool = false,
                  room: Int? = nil, backed: Bool = false) {
            let shownText = fitted(string, room ?? width - 16)
            if backed {
                let length = Canvas.textSize(shownText, scale: s).width
                let left = anchor == .start ? x : anchor == .middle ? x - length / 2 : x - length
                drawing.shapes.append(.rect(x: left - 3, y: y - 3, width: length + 6, height: textHeight + 6, colour: .white, tooltip: nil))
            }
            drawing.shapes.append(.text(shownText, x: x, y: y, scale: s, colour: colour, anchor: anchor, vertical: vertical))
        }
        func line(_ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int, _ colour: RGB = ink, dash: Int = 0) {
            drawing.shapes.append(.line(x0: x0, y0: y0, x1: x1, y1: y1, colour: colour, dash: dash))
        }

        text(shown(title), x: width / 2, y: 14, anchor: .middle)
        if !subtitle.isEmpty { text(shown(subtitle), x: width / 2, y: 14 + textHeight + 10, anchor: .middle) }

        // The value axis: decades lo...hi between the bands for 0 and for infinite / NaN.
        let errors = layers.compactMap { layer -> Double? in if case let .compared(e, _) = layer.outcome { e } else { nil } }
        let hasZero = errors.contains(0), hasInfinite = errors.contains { $0 != 0 && !onAxis($0) }
        let band = 40
        let axisTop = plotTop + (hasInfinite ? band : 0), axisBottom = plotBottom - (hasZero ? band : 0)
        let (lo, hi) = decades(errors.filter(onAxis) + (onAxis(tolerance) ? [tolerance] : []))
        func y(_ value: Double) -> Int {
            let position = (max(log10(value), Double(lo)) - Double(lo)) / Double(hi - lo)
            return axisBottom - Int((position * Double(axisBottom - axisTop)).rounded())
        }
        let slot = Double(plotWidth) / Double(max(n, 1))
        func centre(_ index: Int) -> Int { plotLeft + Int((Double(index) + 0.5) * slot) }

        // Columns for layers without a value, then gridlines, bars, the tolerance and the marker.
        for (index, layer) in layers.enumerated() {
            let colour: RGB
            switch layer.outcome {
            case .compared: continue
            case .missing: colour = Self.missingColour
            case .shapeMismatch: colour = Self.mismatchColour
            }
            let x0 = plotLeft + Int(Double(index) * slot), x1 = max(plotLeft + Int(Double(index + 1) * slot), x0 + 1)
            let what = layer.outcome == .missing ? "not in the reference" : "shapes differ"
            drawing.shapes.append(.rect(x: x0, y: plotTop, width: x1 - x0, height: plotHeight, colour: colour,
                                        tooltip: "#\(index + 1) \(shown(layer.name)): \(what)"))
        }
        let pixelsPerDecade = Double(axisBottom - axisTop) / Double(hi - lo)
        let labelEvery = max(1, Int((Double(textHeight + 8) / pixelsPerDecade).rounded(.up)))
        for decade in lo...hi {
            let yd = y(pow(10, Double(decade)))
            line(plotLeft + 1, yd, plotRight - 1, yd, Self.gridColour)
            line(plotLeft - 6, yd, plotLeft - 1, yd)
            if (decade - lo) % labelEvery == 0 { text(decadeLabel(decade), x: plotLeft - 10, y: yd - textHeight / 2, anchor: .end) }
            if pixelsPerDecade >= 40 && decade < hi {
                for k in 2...9 {
                    let ym = y(Double(k) * pow(10, Double(decade)))
                    line(plotLeft - 3, ym, plotLeft - 1, ym)
                }
            }
        }
        if hasZero { text("0", x: plotLeft - 10, y: plotBottom - band / 2 - textHeight / 2, anchor: .end) }
        if hasInfinite { text("inf", x: plotLeft - 10, y: plotTop + band / 2 - textHeight / 2, anchor: .end) }
        let barWidth = max(1, Int(slot * 0.7))
        for (index, layer) in layers.enumerated() {
            guard case let .compared(error, passes) = layer.outcome else { continue }
            let yTop = error == 0 ? plotBottom - band / 2 : onAxis(error) ? y(error) : plotTop + band / 2
            drawing.shapes.append(.rect(x: centre(index) - barWidth / 2, y: yTop, width: barWidth, height: max(plotBottom - yTop, 1),
                                        colour: passes ? Self.passColour : Self.failColour,
                                        tooltip: "#\(index + 1) \(shown(layer.name)): \(scientific(error))" + (passes ? "" : " (fails)")))
        }
        if onAxis(tolerance) {
            let yt = y(tolerance)
            line(plotLeft, yt, plotRight - 1, yt, Self.toleranceColour, dash: 6)
            // Above the line, or below it when the line is near the top; on white, over the bars.
            let labelY = yt - plotTop >= textHeight + 10 ? yt - textHeight - 5 : yt + 6
            text("tolerance \(scientific(tolerance))", x: plotRight - 8, y: labelY, anchor: .end, colour: Self.toleranceColour, backed: true)
        }
        if let first = firstDivergent {
            // The marker runs from above the plot through it; the name goes above the plot, centred
            // on the marker as far as the picture's edges allow.
            let x = centre(first)
            line(x, plotTop - 8, x, plotBottom - 1, Self.divergentColour, dash: 4)
            let label = fitted("first divergent: #\(first + 1) \(shown(layers[first].name))", width - 16)
            let length = Canvas.textSize(label, scale: s).width
            text(label, x: min(max(x - length / 2, 8), width - 8 - length), y: plotTop - 12 - textHeight, colour: Self.divergentColour)
        }
        if n == 0 { text("no layers", x: plotLeft + plotWidth / 2, y: plotTop + plotHeight / 2, anchor: .middle) }

        // Axes, layer ticks and labels, the legend.
        line(plotLeft, plotTop, plotLeft, plotBottom)
        line(plotLeft, plotBottom, plotRight - 1, plotBottom)
        let step = tickStep(n, room: plotWidth / 60)
        for number in Swift.stride(from: step == 1 ? 1 : step, through: n, by: step) {
            let x = centre(number - 1)
            line(x, plotBottom + 1, x, plotBottom + 5)
            text(String(number), x: x, y: plotBottom + 9, anchor: .middle)
        }
        text("layer, in execution order (\(n) layers)", x: plotLeft + plotWidth / 2, y: plotBottom + 34, anchor: .middle)
        text("rel. error max|A-B|/max|B|", x: 14, y: (plotTop + plotBottom) / 2, anchor: .middle, vertical: true, room: plotHeight)
        for (key, place) in zip(keys, placed) {
            let top = legendTop + place.row * 24
            if let dash = key.dash {
                line(place.x, top + 7, place.x + 15, top + 7, key.colour, dash: dash)
            } else {
                drawing.shapes.append(.rect(x: place.x, y: top, width: 14, height: 14, colour: key.colour, tooltip: nil))
            }
            text(key.label, x: place.x + 22, y: top)
        }
        return drawing
    }

    /// The decades the axis spans: from below the smallest value to above the largest, at least 2
    /// and at most 16 (the largest values kept); 1e-8...1 when there is nothing to show.
    private func decades(_ values: [Double]) -> (lo: Int, hi: Int) {
        guard let smallest = values.min(), let largest = values.max() else { return (-8, 0) }
        let hi = Int(log10(largest).rounded(.up))
        let lo = Int(log10(smallest).rounded(.down))
        return (min(max(lo, hi - 16), hi - 2), hi)
    }

    /// `text` cut to what fits in `room` pixels at the plot's text scale, "..." marking the cut.
    private func fitted(_ text: String, _ room: Int) -> String {
        let fits = max(0, (room + 1) / Self.advance)
        guard text.count > fits else { return text }
        return fits < 4 ? String(text.prefix(fits)) : String(text.prefix(fits - 3)) + "..."
    }
}

/// A name from a file as the plot shows it: at most 64 Unicode scalars (then "..."), escaped for a
/// terminal (controls and invisible format characters made visible).
private func shown(_ name: String) -> String {
    let cap = 64
    guard name.unicodeScalars.count > cap else { return name.escapedForTerminal }
    var cut = String.UnicodeScalarView()
    cut.append(contentsOf: name.unicodeScalars.prefix(cap))
    return String(cut).escapedForTerminal + "..."
}

/// `text` safe inside an XML element or attribute: `& < > " '` as entities, and every scalar XML
/// 1.0 cannot hold (controls other than tab and line breaks, U+FFFE, U+FFFF) as `\u{…}`.
private func xmlEscaped(_ text: String) -> String {
    var out = ""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&apos;"
        case "\t", "\n", "\r", "\u{20}"..."\u{D7FF}", "\u{E000}"..."\u{FFFD}", "\u{10000}"..."\u{10FFFF}":
            out.unicodeScalars.append(scalar)
        default: out += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
        }
    }
    return out
}

/// Whether a value has a place on the log axis (positive and finite). An error of 0 goes to the band
/// below the axis, any other to the band above it.
private func onAxis(_ value: Double) -> Bool { value > 0 && value.isFinite }

/// "1e-07", "1e+00", "1e+03".
private func decadeLabel(_ decade: Int) -> String {
    "1e" + (decade < 0 ? "-" : "+") + (abs(decade) < 10 ? "0" : "") + String(abs(decade))
}

/// A value as the plot labels it: "3.1e-07", "0", "inf", "nan".
private func scientific(_ value: Double) -> String {
    if value.isNaN { return "nan" }
    if value.isInfinite { return value > 0 ? "inf" : "-inf" }
    if value == 0 { return "0" }
    var exponent = Int(log10(abs(value)).rounded(.down))
    var mantissa = abs(value) / pow(10, Double(exponent))
    mantissa = (mantissa * 10).rounded() / 10
    if mantissa >= 10 { mantissa /= 10; exponent += 1 }
    let digits = Int(mantissa), tenth = Int((mantissa * 10).rounded()) % 10
    return (value < 0 ? "-" : "") + "\(digits).\(tenth)e" + (exponent < 0 ? "-" : "+") + (abs(exponent) < 10 ? "0" : "")
        + String(abs(exponent))
}

/// The spacing of numbered layer ticks: 1, 2, 5, 10, 20, 50, … so that at most `room` ticks show.
private func tickStep(_ count: Int, room: Int) -> Int {
    var step = 1
    var k = 0
    while count / step > max(room, 1) {
        k += 1
        step = [1, 2, 5][k % 3] * Int(pow(10, Double(k / 3)))
    }
    return step
}
