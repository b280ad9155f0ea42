/// An 8-bit RGB colour.
public struct RGB: Sendable, Equatable, Hashable {
    public var red: UInt8
    public var green: UInt8
    public var blue: UInt8

    public init(_ red: UInt8, _ green: UInt8, _ blue: UInt8) {
        (self.red, self.green, self.blue) = (red, green, blue)
    }

    /// One gray level on all three channels.
    public init(gray: UInt8) { self.init(gray, gray, gray) }

    public static let black = RGB(gray: 0)
    public static let white = RGB(gray: 255)

    /// `#rrggbb`, as SVG and CSS write it.
    public var hex: String {
        "#" + [red, green, blue].map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }
}

/// An RGB picture to draw on: rectangles, 1-pixel lines (solid or dashed) and text in zoo's 5×7
/// bitmap font scaled by an integer factor. Coordinates are pixels, x to the right and y down from
/// the top-left corner; whatever falls outside the canvas is clipped, never an error.
public struct Canvas: Sendable {
    /// The picture drawn so far (3 channels).
    public private(set) var image: Image

    public var width: Int { image.width }
    public var height: Int { image.height }

    /// A canvas of one colour. Precondition: positive dimensions.
    public init(width: Int, height: Int, background: RGB = .white) {
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for i in Swift.stride(from: 0, to: pixels.count, by: 3) {
            (pixels[i], pixels[i + 1], pixels[i + 2]) = (background.red, background.green, background.blue)
        }
        image = Image(width: width, height: height, channels: 3, pixels: pixels)
    }

    /// The colour at (x, y). Precondition: inside the canvas.
    public subscript(x: Int, y: Int) -> RGB {
        precondition(x >= 0 && x < width && y >= 0 && y < height, "pixel outside the canvas")
        let i = (y * width + x) * 3
        return RGB(image.pixels[i], image.pixels[i + 1], image.pixels[i + 2])
    }

    /// Sets one pixel; nothing when (x, y) is outside the canvas.
    public mutating func plot(x: Int, y: Int, _ colour: RGB) {
        guard x >= 0 && x < width && y >= 0 && y < height else { return }
        let i = (y * width + x) * 3
        (image.pixels[i], image.pixels[i + 1], image.pixels[i + 2]) = (colour.red, colour.green, colour.blue)
    }

    /// Fills the rectangle of `width` × `height` pixels whose top-left corner is (x, y), clipped to
    /// the canvas. An empty or negative size fills nothing.
    public mutating func fill(x: Int, y: Int, width w: Int, height h: Int, _ colour: RGB) {
        let x0 = max(x, 0), y0 = max(y, 0)
        let x1 = min(x.addingClamped(w), width), y1 = min(y.addingClamped(h), height)
        guard x0 < x1 && y0 < y1 else { return }
        for row in y0..<y1 {
            for column in x0..<x1 { plot(x: column, y: row, colour) }
        }
    }

    /// A 1-pixel line from (x0, y0) to (x1, y1), both ends included (Bresenham). With `dash` > 0 it
    /// is dashed: `dash` pixels drawn, `dash` skipped, counted along the line from (x0, y0).
    /// The work is proportional to the line's length, clipped or not.
    public mutating func line(x0: Int, y0: Int, x1: Int, y1: Int, _ colour: RGB, dash: Int = 0) {
        let dx = abs(x1 - x0), dy = -abs(y1 - y0)
        let sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1
        var (x, y, error, step) = (x0, y0, dx + dy, 0)
        while true {
            if dash <= 0 || (step / dash) % 2 == 0 { plot(x: x, y: y, colour) }
            if x == x1 && y == y1 { return }
            let twice = 2 * error
            if twice >= dy { error += dy; x += sx }
            if twice <= dx { error += dx; y += sy }
            step += 1
        }
    }

    /// Draws `text` in the 5×7 font, every font pixel a `scale` × `scale` square, with (x, y) the
    /// top-left corner of the text's box (`textSize`). Characters are laid out one after another on
    /// one line, 6 × `scale` pixels apart; a character outside ASCII 32–126 (accented letters,
    /// emoji, newlines, control characters) is drawn as '?'. `vertical` turns the text 90°
    /// counter-clockwise, to read from bottom to top, in a box of the transposed size.
    /// Precondition: `scale` ≥ 1.
    public mutating func text(_ text: String, x: Int, y: Int, scale: Int = 1, _ colour: RGB, vertical: Bool = false) {
        precondition(scale >= 1, "text scale must be at least 1")
        let length = Canvas.textSize(text, scale: scale).width
        for (index, character) in text.enumerated() {
            for (row, bits) in Font5x7.glyph(character).enumerated() {
                for column in 0..<Font5x7.width where bits & (0x10 >> UInt8(column)) != 0 {
                    let along = (index * Font5x7.advance + column) * scale, across = row * scale
                    if vertical {
                        fill(x: x + across, y: y + length - along - scale, width: scale, height: scale, colour)
                    } else {
                        fill(x: x + along, y: y + across, width: scale, height: scale, colour)
                    }
                }
            }
        }
    }

    /// The width and height of `text` drawn horizontally at `scale`: 6 × scale per character less
    /// the blank column after the last, and 7 × scale. The empty string is 0 wide.
    public static func textSize(_ text: String, scale: Int = 1) -> (width: Int, height: Int) {
        let count = text.count
        return (count == 0 ? 0 : (count * Font5x7.advance - 1) * scale, Font5x7.height * scale)
    }
}

extension Int {
    /// `self + other`, held at Int's bounds instead of overflowing.
    fileprivate func addingClamped(_ other: Int) -> Int {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? (other > 0 ? .max : .min) : sum
    }
}
