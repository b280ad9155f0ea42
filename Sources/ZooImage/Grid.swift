/// One picture of a grid: a single-channel map (a feature map, one input channel of a filter) or a
/// colour one (a first convolution's filter over red, green and blue).
public struct Tile: Sendable, Equatable {
    public let height: Int
    public let width: Int
    /// 1 (a map) or 3 (red, green and blue planes).
    public let channels: Int
    /// `channels × height × width` values, plane after plane, rows top to bottom: the order of a
    /// [C, H, W] tensor.
    public let values: [Float]

    /// Precondition: positive dimensions, 1 or 3 channels, `values.count == channels * height * width`.
    public init(channels: Int = 1, height: Int, width: Int, values: [Float]) {
        precondition(height > 0 && width > 0 && (channels == 1 || channels == 3)
                     && values.count == channels * height * width, "inconsistent tile")
        (self.channels, self.height, self.width, self.values) = (channels, height, width, values)
    }
}

/// How a single-channel tile's values become colours (colour tiles are always shown as RGB).
public enum TileColormap: Sendable {
    /// Black (the tile's minimum) to white (its maximum).
    case gray
    /// A perceptually uniform dark-blue → green → yellow scale, matplotlib's viridis sampled at
    /// nine points and interpolated linearly.
    case viridis
}

/// Why `tileGrid` drew nothing: no tiles, a bad parameter, or a grid that cannot fit.
public struct GridError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The fixed choices of `tileGrid`.
public enum GridStyle {
    /// The gaps and the frame around the tiles.
    public static let background = RGB.white
    /// A NaN or infinite value.
    public static let nonFinite = RGB(255, 0, 255)
    /// No side of a grid is longer than this (16384 px).
    public static let maximumSide = 16384
}

/// The tiles laid out in rows, left to right then top to bottom, as one RGB picture.
///
/// - Each tile is normalized on its own: its smallest finite value becomes 0 (black, or the
///   colormap's start), its largest 255 (white, or the colormap's end), linearly in between and
///   rounded to nearest; the three planes of a colour tile share one minimum and maximum. A tile
///   whose finite values are all equal is mid gray (128; the colormap's midpoint); a NaN or
///   infinite value is `GridStyle.nonFinite` (magenta).
/// - Each tile pixel becomes a `scale` × `scale` square (nearest neighbour). Every cell of the grid
///   is as large as the largest tile; a smaller tile sits in its cell's top-left corner.
/// - `gap` pixels of `GridStyle.background` separate the cells and frame the grid: the cell in
///   row r, column c starts at x = gap + c · (w + gap), y = gap + r · (h + gap), where w × h is the
///   largest tile's size times the scale.
/// - `columns` defaults to ⌈√count⌉, so the grid is at least as wide as it is tall (in cells); more
///   columns than tiles are reduced to the tile count.
/// - Size cap: no side exceeds `GridStyle.maximumSide`. A grid that would be larger is drawn at
///   the largest scale that fits; when even scale 1 does not fit, each tile shows every k-th row and
///   column (the smallest such k that fits). When not even one pixel per tile fits, it is refused.
///
/// - Throws: `GridError` for no tiles, `columns` < 1, `scale` < 1, `gap` < 0, or a grid that
///   cannot fit in `GridStyle.maximumSide` even at one pixel per tile.
public func tileGrid(_ tiles: [Tile], columns: Int? = nil, scale: Int = 1, gap: Int = 1,
                     colormap: TileColormap = .gray) throws(GridError) -> Image {
    guard !tiles.isEmpty else { throw GridError("no tiles to draw") }
    guard scale >= 1 else { throw GridError("the scale must be at least 1, got \(scale)") }
    guard gap >= 0 else { throw GridError("the gap must be at least 0, got \(gap)") }
    if let columns, columns < 1 { throw GridError("the number of columns must be at least 1, got \(columns)") }
    let count = tiles.count
    let columnCount = min(columns ?? Int(Double(count).squareRoot().rounded(.up)), count)
    let rowCount = (count + columnCount - 1) / columnCount
    let cellWidth = tiles.map(\.width).max()!, cellHeight = tiles.map(\.height).max()!

    // The pixels each cell may take along a side of `cells` cells: what the gaps leave, shared.
    func room(_ cells: Int) -> Int {
        let gaps = Double(cells + 1) * Double(gap)
        return gaps > Double(GridStyle.maximumSide) ? 0 : (GridStyle.maximumSide - (cells + 1) * gap) / cells
    }
    let roomX = room(columnCount), roomY = room(rowCount)
    guard roomX >= 1 && roomY >= 1 else {
        throw GridError("\(count) tiles in \(rowCount) rows of \(columnCount) with a gap of \(gap) px "
            + "cannot fit in \(GridStyle.maximumSide) px a side, even at one pixel per tile")
    }
    // The largest scale up to `scale` that fits; below 1, every `step`-th pixel at scale 1.
    let shownScale = max(1, min(scale, roomX / cellWidth, roomY / cellHeight))
    let step = max(1, (cellWidth + roomX - 1) / roomX, (cellHeight + roomY - 1) / roomY)
    let cellW = (cellWidth + step - 1) / step * shownScale, cellH = (cellHeight + step - 1) / step * shownScale
    var canvas = Canvas(width: columnCount * (cellW + gap) + gap, height: rowCount * (cellH + gap) + gap,
                        background: GridStyle.background)
    for (index, tile) in tiles.enumerated() {
        let left = gap + (index % columnCount) * (cellW + gap), top = gap + (index / columnCount) * (cellH + gap)
        let colours = displayColours(tile, colormap)
        for y in Swift.stride(from: 0, to: tile.height, by: step) {
            for x in Swift.stride(from: 0, to: tile.width, by: step) {
                canvas.fill(x: left + x / step * shownScale, y: top + y / step * shownScale,
                            width: shownScale, height: shownScale, colours[y * tile.width + x])
            }
        }
    }
    return canvas.image
}

/// Every pixel's colour, row by row, normalized as `tileGrid` documents.
private func displayColours(_ tile: Tile, _ colormap: TileColormap) -> [RGB] {
    var low = Float.infinity, high = -Float.infinity
    for value in tile.values where value.isFinite {
        low = min(low, value)
        high = max(high, value)
    }
    // t in [0, 1]; nil for a value that is not finite. A constant tile sits at the middle.
    func position(_ value: Float) -> Double? {
        guard value.isFinite else { return nil }
        return high > low ? (Double(value) - Double(low)) / (Double(high) - Double(low)) : 0.5
    }
    func level(_ t: Double) -> UInt8 { UInt8((t * 255).rounded()) }
    let plane = tile.height * tile.width
    return (0..<plane).map { i in
        if tile.channels == 3 {
            let t = [0, 1, 2].map { position(tile.values[$0 * plane + i]) }
            guard let r = t[0], let g = t[1], let b = t[2] else { return GridStyle.nonFinite }
            return RGB(level(r), level(g), level(b))
        }
        guard let t = position(tile.values[i]) else { return GridStyle.nonFinite }
        switch colormap {
        case .gray: return RGB(gray: level(t))
        case .viridis: return viridis(t)
        }
    }
}

/// matplotlib's viridis at t ∈ [0, 1], linearly interpolated between its values at 0, 1/8, …, 1.
private func viridis(_ t: Double) -> RGB {
    let anchors: [(Double, Double, Double)] = [
        (68, 1, 84), (71, 44, 122), (59, 81, 139), (44, 113, 142), (33, 144, 141),
        (39, 173, 129), (92, 200, 99), (170, 220, 50), (253, 231, 37),
    ]
    let position = min(max(t, 0), 1) * Double(anchors.count - 1)
    let i = min(Int(position), anchors.count - 2), f = position - Double(i)
    let (a, b) = (anchors[i], anchors[i + 1])
    func mix(_ x: Double, _ y: Double) -> UInt8 { UInt8((x + (y - x) * f).rounded()) }
    return RGB(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}
