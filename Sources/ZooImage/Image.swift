import ZooCore

/// A raster picture in memory: 8-bit samples, interleaved by pixel, rows top to bottom with no
/// padding. `channels` is 1 (gray, PIL's "L"), 3 (RGB) or 4 (RGBA). What decoding returns for a model
/// is always RGB (`DecodedImage.rgb`); the pictures zoo draws are gray or RGB.
public struct Image: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public let channels: Int
    /// `width * height * channels` samples.
    public var pixels: [UInt8]

    /// Precondition: the dimensions are positive and `pixels.count == width * height * channels`.
    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        precondition(width > 0 && height > 0 && [1, 3, 4].contains(channels)
                     && pixels.count == width * height * channels, "inconsistent image")
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    /// A picture of one colour (every sample `value`).
    public init(width: Int, height: Int, channels: Int, filledWith value: UInt8) {
        self.init(width: width, height: height, channels: channels,
                  pixels: [UInt8](repeating: value, count: width * height * channels))
    }
}

/// An image file decoded for a model: its pixels converted to RGB exactly as PIL's
/// `Image.open(f).convert("RGB")` does it, and what the file held before the conversion.
public struct DecodedImage: Sendable {
    public enum Format: String, Sendable { case jpeg = "JPEG", png = "PNG" }
    public let format: Format
    /// PIL's name for the file's own mode ("L", "LA", "RGB", "RGBA", "P", "I;16", "CMYK", "1", …).
    public let mode: String
    /// Bits per sample in the file (1, 2, 4, 8 or 16).
    public let bitDepth: Int
    /// The EXIF orientation tag (1–8) when the file has one. zoo does not apply it by default, as
    /// torchvision's pipeline does not (PIL's `Image.open` leaves it to `ImageOps.exif_transpose`).
    public let exifOrientation: Int?
    /// The pixels, RGB.
    public let rgb: Image

    public init(format: Format, mode: String, bitDepth: Int, exifOrientation: Int?, rgb: Image) {
        self.format = format
        self.mode = mode
        self.bitDepth = bitDepth
        self.exifOrientation = exifOrientation
        self.rgb = rgb
    }

    /// "PNG 640×480 RGBA 8-bit" — for messages and `zoo preprocess`'s report.
    public var summary: String { "\(format.rawValue) \(rgb.width)×\(rgb.height) \(mode) \(bitDepth)-bit" }
}

/// Why an image file could not be read or written. `description` is one line naming the file and,
/// where the codec says, what is wrong; no byte of the file is echoed.
public struct ImageError: Error, CustomStringConvertible, Equatable {
    public let file: String
    public let message: String
    public init(file: String, _ message: String) {
        self.file = file
        self.message = message
    }
    public var description: String { "\(file.escapedForTerminal): \(message)" }
}
