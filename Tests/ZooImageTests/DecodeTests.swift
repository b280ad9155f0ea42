import CZlib
import Foundation
import Testing
import TorchFormat
import ZooCore
import ZooImage

/// Fixtures/images, written by Fixtures/make_image_fixtures.py: the files, PIL's RGB for each and a
/// manifest of what PIL reports.
enum ImageFixtures {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/images")

    struct Entry: Decodable {
        let format: String
        let mode: String
        let size: [Int]
        let bit_depth: Int
        let exif_orientation: Int?
        /// The rows of `expected.npz`'s array; nil for all of them.
        let rows: [Int]?
        let sums: [Int]
        let truncated_at: [Int]

        init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            format = try c.decode(String.self, forKey: .format)
            mode = try c.decode(String.self, forKey: .mode)
            size = try c.decode([Int].self, forKey: .size)
            bit_depth = try c.decode(Int.self, forKey: .bit_depth)
            exif_orientation = try c.decodeIfPresent(Int.self, forKey: .exif_orientation)
            rows = try? c.decode([Int].self, forKey: .rows)
            sums = try c.decode([Int].self, forKey: .sums)
            truncated_at = try c.decode([Int].self, forKey: .truncated_at)
        }
        enum CodingKeys: String, CodingKey { case format, mode, size, bit_depth, exif_orientation, rows, sums, truncated_at }
    }

    static let manifest: [String: Entry] = {
        struct Manifest: Decodable { let files: [String: Entry] }
        let data = try! Data(contentsOf: folder.appendingPathComponent("manifest.json"))
        return try! JSONDecoder().decode(Manifest.self, from: data).files
    }()

    static let names = manifest.keys.sorted()

    /// expected.npz's arrays ('|u1', which zoo's .npy reader does not take: read here) as flat samples
    /// with their shapes.
    static let expected: [String: (shape: [Int], samples: [UInt8])] = {
        let archive = try! ZipArchive(file: MappedFile(path: path("expected.npz")), layout: .flat)
        return Dictionary(uniqueKeysWithValues: archive.entries.map { entry in
            let storage = try! archive.contents(of: entry, verifyCRC: true)
            let npy = withExtendedLifetime(storage) { Array(storage.bytes) }
            // "\x93NUMPY", version 1.0, a 2-byte header length, then "{'descr': '|u1', ..., 'shape': (h, w, 3), }".
            precondition(npy.starts(with: [0x93] + Array("NUMPY".utf8) + [1, 0]))
            let start = 10 + Int(npy[8]) + Int(npy[9]) << 8
            let header = String(decoding: npy[10..<start], as: UTF8.self)
            precondition(header.contains("'descr': '|u1'") && header.contains("'fortran_order': False"))
            let shape = header.split(separator: "(")[1].split(separator: ")")[0].split(separator: ",")
                .map { Int($0.trimmingCharacters(in: .whitespaces))! }
            precondition(npy.count - start == shape.reduce(1, *))
            return (String(entry.name.dropLast(4)), (shape, Array(npy[start...])))
        })
    }()

    static func bytes(_ name: String) -> [UInt8] {
        Array(try! Data(contentsOf: folder.appendingPathComponent(name)))
    }

    static func path(_ name: String) -> String { folder.appendingPathComponent(name).path }
}

/// The largest difference between two equally long sample arrays.
func maxDifference(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>) -> Int {
    zip(a, b).reduce(0) { max($0, abs(Int($1.0) - Int($1.1))) }
}

// MARK: - Pixels, modes, EXIF against PIL

/// PNG files decode to PIL's RGB exactly. JPEG files are within one level of PIL's (both are
/// libjpeg-turbo with the same settings, PIL's 3.1 against Debian's 2.1.5); measured: identical, max |Δ| = 0
/// on every fixture.
@Test(arguments: ImageFixtures.names)
func decodesLikePIL(name: String) throws {
    let entry = try #require(ImageFixtures.manifest[name])
    let decoded = try decodeImage(path: ImageFixtures.path(name))
    #expect(decoded.format.rawValue == entry.format)
    #expect(decoded.mode == entry.mode)
    #expect(decoded.bitDepth == entry.bit_depth)
    #expect(decoded.exifOrientation == entry.exif_orientation)
    #expect([decoded.rgb.width, decoded.rgb.height] == entry.size)
    #expect(decoded.rgb.channels == 3)
    let tolerance = entry.format == "PNG" ? 0 : 1
    let (shape, samples) = try #require(ImageFixtures.expected[name])
    let width = entry.size[0], rows = entry.rows ?? Array(0..<entry.size[1])
    #expect(shape == [rows.count, width, 3])
    var worst = 0
    for (k, y) in rows.enumerated() {
        let ours = decoded.rgb.pixels[(y * width * 3)..<((y + 1) * width * 3)]
        let pil = samples[(k * width * 3)..<((k + 1) * width * 3)]
        worst = max(worst, maxDifference(ours, pil))
    }
    #expect(worst <= tolerance, "max |Δ| \(worst) against PIL's rows")
    // Every pixel, through the per-channel sums of the whole image.
    let pixelCount = width * entry.size[1]
    for channel in 0..<3 {
        let sum = stride(from: channel, to: decoded.rgb.pixels.count, by: 3).reduce(0) { $0 + Int(decoded.rgb.pixels[$1]) }
        #expect(abs(sum - entry.sums[channel]) <= tolerance * pixelCount, "channel \(channel) sums \(sum), PIL's \(entry.sums[channel])")
    }
}

@Test func bytesAndPathDecodeAlike() throws {
    for name in ["chelsea.jpg", "png_adam7_rgb8.png"] {
        let fromPath = try decodeImage(path: ImageFixtures.path(name))
        let fromBytes = try decodeImage(bytes: ImageFixtures.bytes(name), file: name)
        #expect(fromPath.rgb == fromBytes.rgb && fromPath.mode == fromBytes.mode)
    }
}

/// `applyingEXIFOrientation` equals PIL's `ImageOps.exif_transpose` on the tagged files…
@Test(arguments: ImageFixtures.names.filter { ImageFixtures.manifest[$0]?.exif_orientation != nil })
func exifTransposeLikePIL(name: String) throws {
    let decoded = try decodeImage(path: ImageFixtures.path(name))
    let upright = applyingEXIFOrientation(decoded.rgb, try #require(decoded.exifOrientation))
    let (shape, samples) = try #require(ImageFixtures.expected[name + ".transposed"])
    #expect([upright.height, upright.width, 3] == shape)
    #expect(maxDifference(upright.pixels, samples) <= (decoded.format == .png ? 0 : 1))
}

/// …and for every tag 2–8 on PIL's own pixels of a 7×4 crop (exactly).
@Test(arguments: 1...8)
func exifTransposeEveryTag(tag: Int) throws {
    let (shape, samples) = try #require(ImageFixtures.expected["orientation.source"])
    let source = Image(width: shape[1], height: shape[0], channels: 3, pixels: samples)
    let upright = applyingEXIFOrientation(source, tag)
    if tag == 1 {
        #expect(upright == source)
        return
    }
    let (expectedShape, expected) = try #require(ImageFixtures.expected["orientation.\(tag)"])
    #expect([upright.height, upright.width, 3] == expectedShape)
    #expect(upright.pixels == expected)
}

@Test func exifTransposeKeepsChannels() {
    let gray = Image(width: 3, height: 2, channels: 1, pixels: [1, 2, 3, 4, 5, 6])
    let turned = applyingEXIFOrientation(gray, 6)   // 90° clockwise: the left column becomes the top row
    #expect(turned.width == 2 && turned.height == 3 && turned.pixels == [4, 1, 5, 2, 6, 3])
}
