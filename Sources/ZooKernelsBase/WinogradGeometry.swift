/// A Winograd minimal-filtering algorithm F(m×m, r×r): each m×m block of outputs ("tile") of an
/// r×r, stride-1 correlation is computed from an α×α input patch, α = m + r − 1, as
/// `Y = Aᵀ·[(G·g·Gᵀ) ⊙ (Bᵀ·d·B)]·A` (Lavin & Gray 2015). The matrices come from Toom–Cook
/// interpolation at the points 0, ±1, ±2, … and ∞, with each row of Bᵀ scaled to small integers
/// and G scaled to compensate. G is here (filters are transformed once, at load); Bᵀ and Aᵀ are
/// written out as code in the kernel sets (Sources/ZooKernelsVariant/Winograd.swift).
public struct WinogradTransform: Sendable, Hashable {
    public let m: Int
    public let r: Int
    public var alpha: Int { m + r - 1 }
    /// `α × r`, kept in Double: filters are transformed once, in Double, and rounded once.
    public let g: [Double]

    /// F(2×2, 3×3): points 0, 1, −1, ∞.
    public static let f2x3 = WinogradTransform(
        m: 2, r: 3,
        g: [1, 0, 0,
            0.5, 0.5, 0.5,
            0.5, -0.5, 0.5,
            0, 0, 1])

    /// F(2×2, 5×5): points 0, 1, −1, 2, −2, ∞.
    public static let f2x5 = WinogradTransform(
        m: 2, r: 5,
        g: [1.0 / 4, 0, 0, 0, 0,
            1.0 / 6, 1.0 / 6, 1.0 / 6, 1.0 / 6, 1.0 / 6,
            1.0 / 6, -1.0 / 6, 1.0 / 6, -1.0 / 6, 1.0 / 6,
            1.0 / 24, 1.0 / 12, 1.0 / 6, 1.0 / 3, 2.0 / 3,
            1.0 / 24, -1.0 / 12, 1.0 / 6, -1.0 / 3, 2.0 / 3,
            0, 0, 0, 0, 1])
}

/// Tiling of one Winograd convolution call. Tiles are numbered across the batch,
/// `t = (image·tilesH + ty)·tilesW + tx`; 16 consecutive tiles form one panel (one SIMD lane each).
public struct WinogradGeometry: Sendable {
    /// The algorithm F(m×m, r×r) (the kernel sets dispatch on `r`).
    public var m, r: Int
    public var inHeight, inWidth, outHeight, outWidth, padTop, padLeft: Int
    /// Floats between consecutive images of the input / of the output (all channels).
    public var inImageStride, outImageStride: Int
    public var tilesH, tilesW: Int
    /// Tiles in the whole batch.
    public var tiles: Int

    public init(transform: WinogradTransform, inHeight: Int, inWidth: Int, outHeight: Int, outWidth: Int, padTop: Int,
                padLeft: Int, inChannels: Int, outChannels: Int, batch: Int) {
        m = transform.m
        r = transform.r
        self.inHeight = inHeight; self.inWidth = inWidth; self.outHeight = outHeight; self.outWidth = outWidth
        self.padTop = padTop; self.padLeft = padLeft
        inImageStride = inChannels * inHeight * inWidth
        outImageStride = outChannels * outHeight * outWidth
        tilesH = (outHeight + transform.m - 1) / transform.m
        tilesW = (outWidth + transform.m - 1) / transform.m
        tiles = batch * tilesH * tilesW
    }

    public var tilesPerImage: Int { tilesH * tilesW }
}

/// Where one call of a transform reads and writes (see `KernelTable.winogradInput` / `winogradOutput`).
public struct WinogradPanel {
    /// First tile of the call and how many (input: a panel of 16, one per lane; lanes past
    /// `WinogradGeometry.tiles` are zero).
    public var firstTile: Int
    public var tiles: Int
    /// Channels handled by the call; input only: the floats between consecutive channels in the
    /// transformed buffer (the output transform's channels are contiguous).
    public var channels: Int
    public var channelStride: Int
    /// Output only: floats between consecutive tiles in the transformed buffer.
    public var tileStride: Int
    /// Floats between the α² transform positions ξ in the transformed buffer.
    public var positionStride: Int
    /// Input only: the floats that may be read, as offsets from the call's `input` pointer (the
    /// whole input tensor). Rows are read in 32-float windows that may run past a row's ends
    /// (those columns are masked to zero) but never past these bounds.
    public var readable: Range<Int>

    public init(firstTile: Int, tiles: Int, channels: Int, channelStride: Int = 1, tileStride: Int = 0, positionStride: Int,
                readable: Range<Int> = 0..<0) {
        self.firstTile = firstTile; self.tiles = tiles; self.channels = channels; self.channelStride = channelStride
        self.tileStride = tileStride; self.positionStride = positionStride; self.readable = readable
    }
}
