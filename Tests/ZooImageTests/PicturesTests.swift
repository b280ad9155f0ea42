import CZlib
import Foundation
import Testing
import ZooCore
import ZooImage

// Pictures out: the PNG writer, the canvas, tile grids and the parity plot.

// MARK: A plain PNG reader (chunks, CRCs, zlib's inflate, unfiltering), independent of the writer

/// One chunk of a PNG file.
private struct Chunk {
    let type: String
    let data: [UInt8]
}

private func bigEndian(_ bytes: ArraySlice<UInt8>) -> Int {
    bytes.reduce(0) { $0 << 8 | Int($1) }
}

/// The chunks after the signature, each CRC checked with zlib's crc32.
private func chunks(_ png: [UInt8]) throws -> [Chunk] {
    try #require(png.count >= 8 && Array(png[0..<8]) == [137, 80, 78, 71, 13, 10, 26, 10], "PNG signature")
    var result: [Chunk] = []
    var offset = 8
    while offset < png.count {
        try #require(offset + 12 <= png.count, "truncated chunk at \(offset)")
        let length = bigEndian(png[offset..<(offset + 4)])
        try #require(offset + 12 + length <= png.count, "chunk at \(offset) overruns the file")
        let typeAndData = Array(png[(offset + 4)..<(offset + 8 + length)])
        let stored = bigEndian(png[(offset + 8 + length)..<(offset + 12 + length)])
        let computed = typeAndData.withUnsafeBufferPointer { Int(crc32(0, $0.baseAddress, uInt($0.count))) }
        let type = String(decoding: typeAndData[0..<4], as: UTF8.self)
        #expect(stored == computed, "CRC of \(type) at \(offset)")
        result.append(Chunk(type: type, data: Array(typeAndData[4...])))
        offset += 12 + length
    }
    return result
}

/// A decoded 8-bit, non-interlaced PNG, and the filter type of each row.
private func readPNG(_ png: [UInt8]) throws -> (image: Image, filters: [UInt8]) {
    let all = try chunks(png)
    try #require(all.first?.type == "IHDR" && all.first?.data.count == 13)
    #expect(all.last?.type == "IEND" && all.last?.data.isEmpty == true)
    #expect(all.filter { $0.type == "IHDR" || $0.type == "IEND" }.count == 2)
    let header = all[0].data
    let width = bigEndian(header[0..<4]), height = bigEndian(header[4..<8])
    #expect(header[8] == 8 && header[10] == 0 && header[11] == 0 && header[12] == 0, "8-bit, deflate, filter method 0, not interlaced")
    let channels = try #require([0: 1, 2: 3, 6: 4][header[9]], "colour type \(header[9])")
    let stream = all.filter { $0.type == "IDAT" }.flatMap(\.data)
    let stride = width * channels
    let expected = (stride + 1) * height
    // One byte of room more than expected: a longer stream would fill it.
    var raw = [UInt8](repeating: 0, count: expected + 1)
    var length = uLong(raw.count)
    let status = uncompress(&raw, &length, stream, uLong(stream.count))
    #expect(status == Z_OK, "zlib uncompress: \(status)")
    try #require(Int(length) == expected, "inflated IDAT length \(length), expected \(expected)")

    var pixels = [UInt8](repeating: 0, count: stride * height)
    var filters: [UInt8] = []
    for y in 0..<height {
        let filter = raw[y * (stride + 1)]
        filters.append(filter)
        for i in 0..<stride {
            let x = Int(raw[y * (stride + 1) + 1 + i])
            let a = i >= channels ? Int(pixels[y * stride + i - channels]) : 0
            let b = y > 0 ? Int(pixels[(y - 1) * stride + i]) : 0
            let c = i >= channels && y > 0 ? Int(pixels[(y - 1) * stride + i - channels]) : 0
            let predicted: Int
            switch filter {
            case 0: predicted = 0
            case 1: predicted = a
            case 2: predicted = b
            case 3: predicted = (a + b) / 2
            case 4:
                let p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c)
                predicted = pa <= pb && pa <= pc ? a : pb <= pc ? b : c
            default:
                Issue.record("row \(y): filter type \(filter)")
                predicted = 0
            }
            pixels[y * stride + i] = UInt8((x + predicted) & 0xFF)
        }
    }
    return (Image(width: width, height: height, channels: channels, pixels: pixels), filters)
}

/// A picture with flat areas, ramps both ways and noise, so that rows want different filters.
private func sample(width: Int, height: Int, channels: Int, seed: UInt64 = 1) -> Image {
    var state = seed
    func noise() -> Int {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Int(state >> 58)  // 0...63
    }
    var pixels: [UInt8] = []
    for y in 0..<height {
        for x in 0..<width {
            for k in 0..<channels {
                let value: Int
                switch (y / 4) % 5 {
                case 0: value = 40 * k + 7                         // flat
                case 1: value = 3 * x + 50 * k                     // horizontal ramp
                case 2: value = 5 * y + 11 * k                     // vertical ramp
                case 3: value = 2 * x + 3 * y + noise() / 8        // diagonal, a little noise
                default: value = noise() * 4 + k                   // noise
                }
                pixels.append(UInt8(value & 0xFF))
            }
        }
    }
    return Image(width: width, height: height, channels: channels, pixels: pixels)
}

// MARK: PNG writer

@Test(arguments: [1, 3, 4])
func pngRoundTripsThroughInflateAndUnfiltering(channels: Int) throws {
    for (width, height) in [(1, 1), (7, 5), (64, 41)] {
        let image = sample(width: width, height: height, channels: channels)
        let decoded = try readPNG(pngData(image))
        #expect(decoded.image == image, "\(width)×\(height)×\(channels)")
    }
    // Rows of different kinds choose different filters: the reader's unfiltering is exercised.
    let filters = Set(try readPNG(pngData(sample(width: 64, height: 41, channels: channels))).filters)
    #expect(filters.count >= 3, "filters used: \(filters.sorted())")
}

/// libpng reads what the writer wrote back to the same pixels (as RGB: gray replicated, alpha dropped,
/// the way `decodeImage` converts every PNG).
@Test(arguments: [1, 3, 4])
func pngIsReadBackByLibpng(channels: Int) throws {
    for (width, height) in [(1, 1), (7, 5), (300, 211)] {
        let image = sample(width: width, height: height, channels: channels)
        let decoded = try decodeImage(bytes: pngData(image), file: "written.png")
        #expect(decoded.format == .png && decoded.mode == ["L", "", "RGB", "RGBA"][channels - 1] && decoded.bitDepth == 8)
        var rgb: [UInt8] = []
        for p in 0..<width * height {
            for c in 0..<3 { rgb.append(image.pixels[p * channels + (channels == 1 ? 0 : c)]) }
        }
        #expect(decoded.rgb == Image(width: width, height: height, channels: 3, pixels: rgb), "\(width)×\(height)×\(channels)")
    }
}

/// Each row's filter is one whose output has the smallest sum of |byte as signed|.
@Test func pngRowFilterMinimizesTheSumOfAbsoluteValues() throws {
    let image = sample(width: 50, height: 40, channels: 3, seed: 7)
    let (decoded, filters) = try readPNG(pngData(image))
    #expect(decoded == image)
    let stride = image.width * 3
    for y in 0..<image.height {
        var sums = [Int](repeating: 0, count: 5)
        for i in 0..<stride {
            let x = Int(image.pixels[y * stride + i])
            let a = i >= 3 ? Int(image.pixels[y * stride + i - 3]) : 0
            let b = y > 0 ? Int(image.pixels[(y - 1) * stride + i]) : 0
            let c = i >= 3 && y > 0 ? Int(image.pixels[(y - 1) * stride + i - 3]) : 0
            let p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c)
            let paeth = pa <= pb && pa <= pc ? a : pb <= pc ? b : c
            for (f, predicted) in [0, a, b, (a + b) / 2, paeth].enumerated() {
                let byte = (x - predicted) & 0xFF
                sums[f] += byte < 128 ? byte : 256 - byte
            }
        }
        #expect(sums[Int(filters[y])] == sums.min(), "row \(y): filter \(filters[y]), sums \(sums)")
    }
}

/// A stream over 1 MiB is split into several IDAT chunks, none larger than 1 MiB.
@Test func pngSplitsLargeStreamsIntoIDATChunks() throws {
    var state: UInt32 = 12345
    let pixels = (0..<(700 * 700 * 3)).map { _ -> UInt8 in
        state = state &* 1664525 &+ 1013904223
        return UInt8(state >> 24)
    }
    let image = Image(width: 700, height: 700, channels: 3, pixels: pixels)
    let png = pngData(image)
    let idat = try chunks(png).filter { $0.type == "IDAT" }
    #expect(idat.count >= 2 && idat.allSatisfy { $0.data.count <= 1 << 20 }, "\(idat.map(\.data.count))")
    #expect(try readPNG(png).image == image)
}

@Test func writePNGReplacesTheFileWholeAndNamesItInErrors() throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-pictures-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let image = sample(width: 9, height: 6, channels: 1)
    let path = directory + "/out.png"
    try Data("old".utf8).write(to: URL(fileURLWithPath: path))
    try writePNG(image, to: path)
    #expect(try [UInt8](Data(contentsOf: URL(fileURLWithPath: path))) == pngData(image))
    // A directory is refused, naming it; no temporary file is left beside it.
    try FileManager.default.createDirectory(atPath: directory + "/sub.png", withIntermediateDirectories: true)
    let error = #expect(throws: IOError.self) { try writePNG(image, to: directory + "/sub.png") }
    #expect(error.map { "\($0)".contains("sub.png") && "\($0)".contains("directory") } == true, "\(String(describing: error))")
    #expect(try FileManager.default.contentsOfDirectory(atPath: directory).sorted() == ["out.png", "sub.png"])
}

// MARK: Canvas

/// Every distinct colour of an RGB picture.
private func colours(_ image: Image) -> Set<RGB> {
    Set(Swift.stride(from: 0, to: image.pixels.count, by: 3).map { RGB(image.pixels[$0], image.pixels[$0 + 1], image.pixels[$0 + 2]) })
}

private func pixel(_ image: Image, _ x: Int, _ y: Int) -> RGB {
    let i = (y * image.width + x) * image.channels
    return RGB(image.pixels[i], image.pixels[i + 1], image.pixels[i + 2])
}

@Test func canvasFillsClippedRectanglesAndDashedLines() {
    var canvas = Canvas(width: 10, height: 6, background: RGB(gray: 9))
    canvas.fill(x: -3, y: 4, width: 5, height: 100, RGB(1, 2, 3))   // clipped to x 0...1, y 4...5
    canvas.fill(x: 5, y: 1, width: 0, height: 3, .black)            // empty
    #expect(canvas[1, 5] == RGB(1, 2, 3) && canvas[0, 4] == RGB(1, 2, 3))
    #expect(canvas[2, 4] == RGB(gray: 9) && canvas[1, 3] == RGB(gray: 9) && canvas[5, 2] == RGB(gray: 9))
    #expect(colours(canvas.image) == [RGB(gray: 9), RGB(1, 2, 3)])

    canvas.line(x0: 0, y0: 0, x1: 9, y1: 0, .white, dash: 2)        // 2 on, 2 off
    #expect((0..<10).map { canvas[$0, 0] == .white } == [true, true, false, false, true, true, false, false, true, true])
    canvas.line(x0: 9, y0: 5, x1: 4, y1: 0, .black)                // a diagonal, both ends included
    #expect((4...9).allSatisfy { canvas[$0, $0 - 4] == .black })
    canvas.line(x0: -20, y0: 3, x1: 30, y1: 3, RGB(7, 7, 7))        // off both sides: clipped
    #expect((0..<10).allSatisfy { canvas[$0, 3] == RGB(7, 7, 7) })
}

/// The ink of `text` drawn alone, as rows of booleans.
private func ink(_ text: String, scale: Int = 1, vertical: Bool = false) -> [[Bool]] {
    let size = Canvas.textSize(text, scale: scale)
    let (width, height) = vertical ? (size.height, size.width) : (size.width, size.height)
    var canvas = Canvas(width: width, height: height, background: .white)
    canvas.text(text, x: 0, y: 0, scale: scale, .black, vertical: vertical)
    return (0..<height).map { y in (0..<width).map { x in canvas[x, y] == .black } }
}

@Test func canvasTextIsLaidOutScaledAndTurned() {
    #expect(Canvas.textSize("", scale: 3) == (0, 21))
    #expect(Canvas.textSize("ab", scale: 2) == (22, 14))
    let word = ink("zoo 42")
    #expect(word.joined().contains(true))
    // Every printable ASCII character has ink except the space, and no two glyphs are the same.
    let glyphs = (32...126).map { ink(String(UnicodeScalar(UInt8($0)))) }
    #expect(glyphs.filter { !$0.joined().contains(true) }.count == 1)
    #expect(Set(glyphs.map { $0.map { $0.map { $0 ? "#" : "." }.joined() }.joined(separator: "/") }).count == 95)
    // Outside ASCII 32–126, one '?' per character.
    #expect(ink("é\n\u{1B}🦁") == ink("????"))
    // Scale 2 is scale 1 with every pixel doubled.
    let doubled = word.flatMap { row in [row.flatMap { [$0, $0] }, row.flatMap { [$0, $0] }] }
    #expect(ink("zoo 42", scale: 2) == doubled)
    // Vertical text is the horizontal text turned 90° counter-clockwise.
    let turned = (0..<word[0].count).reversed().map { x in word.map { $0[x] } }
    #expect(ink("zoo 42", vertical: true) == turned)
}

// MARK: Tile grid

@Test func gridNormalizesEachTileAndPlacesItInItsCell() throws {
    // Tile 0: a ramp from -3 (top-left) to 8.5 (bottom-right); tile 1: the ramp ×1000 reversed;
    // tile 2: constant; tile 3: with a NaN and an infinity; tile 4: smaller (2×3).
    let ramp = (0..<20).map { Float(-3) + Float($0) * 0.6052632 }
    let tiles = [
        Tile(height: 4, width: 5, values: ramp),
        Tile(height: 4, width: 5, values: ramp.reversed().map { $0 * 1000 }),
        Tile(height: 4, width: 5, values: [Float](repeating: 0.25, count: 20)),
        Tile(height: 4, width: 5, values: (0..<20).map { $0 == 3 ? .nan : $0 == 4 ? .infinity : Float($0) }),
        Tile(height: 2, width: 3, values: [1, 2, 3, 4, 5, 6]),
    ]
    let (scale, gap) = (3, 2)
    let grid = try tileGrid(tiles, columns: nil, scale: scale, gap: gap)
    // ⌈√5⌉ = 3 columns, 2 rows of 15×12-pixel cells.
    #expect(grid.width == 3 * 15 + 4 * gap && grid.height == 2 * 12 + 3 * gap && grid.channels == 3)
    func cell(_ index: Int, _ x: Int, _ y: Int) -> RGB {
        pixel(grid, gap + (index % 3) * (15 + gap) + x * scale + scale / 2, gap + (index / 3) * (12 + gap) + y * scale + scale / 2)
    }
    #expect(cell(0, 0, 0) == RGB(gray: 0) && cell(0, 4, 3) == RGB(gray: 255))
    #expect(cell(1, 0, 0) == RGB(gray: 255) && cell(1, 4, 3) == RGB(gray: 0))
    // In between: linear, rounded to nearest (value 7 of 0...19 is 7/19 of the way).
    #expect(cell(0, 2, 1) == RGB(gray: UInt8((255.0 * 7 / 19).rounded())))
    #expect((0..<5).allSatisfy { x in (0..<4).allSatisfy { y in cell(2, x, y) == RGB(gray: 128) } })
    #expect(cell(3, 3, 0) == GridStyle.nonFinite && cell(3, 4, 0) == GridStyle.nonFinite)
    #expect(cell(3, 0, 0) == RGB(gray: 0) && cell(3, 4, 3) == RGB(gray: 255))
    #expect(cell(4, 0, 0) == RGB(gray: 0) && cell(4, 2, 1) == RGB(gray: 255))
    // Every pixel of a scaled tile pixel is the same; gaps, the frame and the empty cell are background.
    #expect((0..<scale).allSatisfy { d in pixel(grid, gap + 4 * scale + d, gap + 3 * scale + d) == RGB(gray: 255) })
    #expect(pixel(grid, gap + 15, gap) == GridStyle.background && pixel(grid, 0, 0) == GridStyle.background)
    #expect(cell(4, 3, 0) == GridStyle.background && cell(4, 0, 2) == GridStyle.background)
    #expect(pixel(grid, grid.width - 1, grid.height - 1) == GridStyle.background)
}

@Test func gridShowsColourTilesWithOneRangeForTheirPlanes() throws {
    // Red plane 0...1, green constant 0.5, blue -1 (the minimum) — normalized together over -1...1.
    let values: [Float] = [0, 1, 0.5, 0.5, -1, -1]
    let grid = try tileGrid([Tile(channels: 3, height: 1, width: 2, values: values)], columns: nil, scale: 1, gap: 0)
    #expect(grid.width == 2 && grid.height == 1)
    #expect(pixel(grid, 0, 0) == RGB(128, 191, 0) && pixel(grid, 1, 0) == RGB(255, 191, 0))
}

@Test func gridViridisRunsFromDarkToLight() throws {
    let grid = try tileGrid([Tile(height: 1, width: 64, values: (0..<64).map(Float.init))], columns: nil, scale: 1, gap: 0,
                            colormap: .viridis)
    let luminance = (0..<64).map { x in
        let c = pixel(grid, x, 0)
        return 0.2126 * Double(c.red) + 0.7152 * Double(c.green) + 0.0722 * Double(c.blue)
    }
    #expect(zip(luminance, luminance.dropFirst()).allSatisfy { $0 < $1 }, "\(luminance)")
    let ends = [pixel(grid, 0, 0), pixel(grid, 63, 0)]
    #expect(ends[0].blue > ends[0].green && ends[1].red > ends[1].blue, "dark blue to yellow: \(ends)")
}

@Test func gridColumnsDefaultToAboutTheSquareRootWiderThanTall() throws {
    for (count, columns, rows) in [(1, 1, 1), (2, 2, 1), (3, 2, 2), (5, 3, 2), (10, 4, 3), (64, 8, 8), (65, 9, 8)] {
        let grid = try tileGrid(Array(repeating: Tile(height: 2, width: 2, values: [0, 1, 2, 3]), count: count),
                                columns: nil, scale: 1, gap: 1)
        #expect(grid.width == columns * 3 + 1 && grid.height == rows * 3 + 1, "\(count) tiles")
    }
    let explicit = try tileGrid(Array(repeating: Tile(height: 2, width: 2, values: [0, 1, 2, 3]), count: 3), columns: 10, scale: 1, gap: 1)
    #expect(explicit.width == 3 * 3 + 1 && explicit.height == 4)
}

@Test func gridKeepsEverySideWithinTheCap() throws {
    let cap = GridStyle.maximumSide
    // Four 1×100 tiles at scale 100 would be 20,003 px wide: the largest scale that fits is 81.
    let scaled = try tileGrid(Array(repeating: Tile(height: 1, width: 100, values: (0..<100).map(Float.init)), count: 4),
                              columns: nil, scale: 100, gap: 1)
    #expect(scaled.width == 2 * 8100 + 3 && scaled.height == 2 * 81 + 3)
    // Two 1×20000 tiles side by side do not fit even at scale 1: every 3rd column is shown.
    let wide = try tileGrid(Array(repeating: Tile(height: 1, width: 20_000, values: (0..<20_000).map(Float.init)), count: 2),
                            columns: 2, scale: 4, gap: 1)
    #expect(wide.width == 2 * 6667 + 3 && wide.width <= cap && wide.height == 3)
    #expect(pixel(wide, 1, 1) == RGB(gray: 0) && pixel(wide, 6667, 1) == RGB(gray: UInt8((255.0 * 19_998 / 19_999).rounded())))
    // Not even one pixel per tile fits.
    #expect(throws: GridError.self) {
        try tileGrid(Array(repeating: Tile(height: 1, width: 1, values: [0]), count: 100), columns: nil, scale: 1, gap: 2000)
    }
}

@Test func gridRefusesBadParameters() {
    let tile = Tile(height: 1, width: 1, values: [0])
    #expect(throws: GridError("no tiles to draw")) { try tileGrid([], columns: nil, scale: 1, gap: 1) }
    #expect(throws: GridError.self) { try tileGrid([tile], columns: nil, scale: 0, gap: 1) }
    #expect(throws: GridError.self) { try tileGrid([tile], columns: nil, scale: 1, gap: -1) }
    #expect(throws: GridError.self) { try tileGrid([tile], columns: 0, scale: 1, gap: 1) }
}

// MARK: Parity plot

private func layers(_ errors: [Double?], failFrom: Int? = nil) -> [ParityPlot.Layer] {
    errors.enumerated().map { index, error in
        ParityPlot.Layer(name: "layer\(index)", outcome: error.map { .compared(relativeError: $0, passes: failFrom.map { index < $0 } ?? true) } ?? .missing)
    }
}

@Test func parityPlotDrawsBarsToleranceAndTheFirstDivergentLayer() throws {
    var plotted = layers([0, 3e-8, 2e-7, nil, 1e-6, 5e-5, 0.02, 0.3, .infinity], failFrom: 6)
    plotted[2].outcome = .shapeMismatch
    let plot = ParityPlot(title: "parity per layer: a.pth vs b.onnx", subtitle: "pass if ...", tolerance: 1e-4, layers: plotted)
    #expect(plot.firstDivergent == 6)
    let image = plot.image()
    #expect(image.width == plot.size.width && image.height == plot.size.height && image.width >= 640 && image.height >= 360)
    let (decoded, _) = try readPNG(plot.png())
    #expect(decoded == image)
    let present = colours(image)
    #expect(present.count > 6, "not blank")
    for colour in [RGB(44, 160, 44), RGB(214, 39, 40), RGB(31, 90, 180), RGB(140, 0, 0), RGB(210, 210, 210), RGB(255, 190, 125)] {
        #expect(present.contains(colour), "\(colour.hex) drawn")
    }
    // Failing bars (red) are taller than passing ones (green): the log axis goes up.
    func topmost(_ colour: RGB) -> Int? {
        (0..<image.height).first { y in (0..<image.width).contains { pixel(image, $0, y) == colour } }
    }
    let red = try #require(topmost(RGB(214, 39, 40))), green = try #require(topmost(RGB(44, 160, 44)))
    #expect(red < green)
}

@Test func parityPlotOfIdenticalModelsAndOfManyLayers() throws {
    // Every layer exact: bars in the band for 0, still a picture with content.
    let same = ParityPlot(title: "same", tolerance: 1e-4, layers: layers(Array(repeating: 0, count: 20)))
    #expect(same.firstDivergent == nil)
    #expect(colours(same.image()).contains(RGB(44, 160, 44)))
    // Thousands of layers: the width stays bounded (several layers per pixel column).
    let many = ParityPlot(title: "many", tolerance: 1e-5, layers: layers((0..<5000).map { 1e-9 * Double($0 % 97 + 1) }, failFrom: 4000))
    #expect(many.size.width <= 2600 && many.firstDivergent == 4000)
    #expect(try readPNG(many.png()).image == many.image())
    // NaN and (impossible) negative errors go to the band above the axis, with infinity.
    let odd = ParityPlot(title: "odd", tolerance: 1e-4, layers: layers([.nan, -1, .infinity, 1e-3]))
    let tops = try (1...4).map { number in
        let line = try #require(odd.svg().split(separator: "\n").first { $0.hasPrefix("<rect") && $0.contains("<title>#\(number) ") })
        return try #require(Int(line.split(separator: "y=\"")[1].prefix { $0 != "\"" }))
    }
    #expect(tops[0] == tops[2] && tops[1] == tops[2] && tops[2] < tops[3], "\(tops)")
}

/// The tags of an XML document, balanced and properly nested; no text outside them but whitespace.
private func expectWellFormed(_ xml: String) {
    var stack: [String] = []
    var rest = Substring(xml)
    #expect(xml.hasPrefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"))
    rest = rest.drop { $0 != "\n" }
    while let open = rest.firstIndex(of: "<") {
        let text = rest[..<open]
        #expect(!text.contains(">") && !text.contains("\""), "a raw '>' or '\"' in text: \(text)")
        #expect(!stack.isEmpty || text.allSatisfy(\.isWhitespace), "text outside the root: \(text)")
        guard let close = rest[open...].firstIndex(of: ">") else { Issue.record("unclosed tag"); return }
        let tag = rest[rest.index(after: open)..<close]
        #expect(!tag.contains("<"), "a '<' inside a tag: \(tag)")
        if tag.hasPrefix("/") {
            #expect(stack.popLast() == String(tag.dropFirst()), "closing \(tag)")
        } else if !tag.hasSuffix("/") {
            stack.append(String(tag.prefix { $0 != " " }))
        }
        // Attribute values are quoted: an even number of quotes.
        #expect(tag.filter { $0 == "\"" }.count % 2 == 0, "\(tag)")
        rest = rest[rest.index(after: close)...]
    }
    #expect(stack.isEmpty, "unclosed \(stack)")
    // Every '&' starts an entity.
    for part in xml.split(separator: "&", omittingEmptySubsequences: false).dropFirst() {
        #expect(["amp;", "lt;", "gt;", "quot;", "apos;"].contains { part.hasPrefix($0) }, "bare & before \(part.prefix(10))")
    }
}

@Test func paritySVGEscapesHostileNamesAndCapsTheirLength() throws {
    let hostile = "</text><script>alert('x')</script> & \"q\" \u{1B}]0;title\u{07} \u{202E}rev \u{FFFE}" + String(repeating: "Z", count: 200)
    var plotted = layers([1e-7, 2e-3, 5e-6], failFrom: 1)
    plotted[1].name = hostile
    let plot = ParityPlot(title: "parity: \(hostile)", subtitle: "", tolerance: 1e-4, layers: plotted)
    let svg = plot.svg()
    expectWellFormed(svg)
    #expect(svg.contains("width=\"\(plot.size.width)\" height=\"\(plot.size.height)\""))
    #expect(!svg.contains("<script") && !svg.contains("</text><script"))
    #expect(svg.contains("&lt;/text&gt;&lt;script&gt;alert(&apos;x&apos;)&lt;/script&gt; &amp; &quot;q&quot;"))
    #expect(svg.contains("\\u{1B}]0;title\\u{07} \\u{202E}rev \\u{FFFE}"))
    // No control, bidi or non-character scalar reaches the file; the name is cut at 64 scalars.
    #expect(!svg.unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" || $0.value == 0x202E || $0.value == 0xFFFE })
    let kept = 64 - hostile.unicodeScalars.prefix { $0 != "Z" }.count
    #expect(!svg.contains(String(repeating: "Z", count: kept + 1)) && svg.contains(String(repeating: "Z", count: kept) + "...:"))
    // The first divergent layer is named (cut to fit the picture), and it has a tooltip of its own.
    #expect(svg.contains("first divergent: #2 &lt;/"))
    #expect(svg.contains("<title>#2 &lt;/text&gt;"))
    #expect(svg.contains("stroke-dasharray"))
    // The PNG of the same plot draws the name's non-ASCII as '?' and is a valid picture.
    #expect(try readPNG(plot.png()).image == plot.image())
}
