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
        let truncated_ok_at: [Int]

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
            truncated_ok_at = try c.decode([Int].self, forKey: .truncated_ok_at)
        }
        enum CodingKeys: String, CodingKey {
            case format, mode, size, bit_depth, exif_orientation, rows, sums, truncated_at, truncated_ok_at
        }
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

// MARK: - Hostile input

/// Decoding `bytes` fails with one line naming `file` and containing `expected`, without a
/// scalar that could control a terminal.
func expectRefusal(_ bytes: [UInt8], file: String, saying expected: String,
                   sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        let decoded = try decodeImage(bytes: bytes, file: file)
        Issue.record("decoded \(decoded.summary), expected an error saying \"\(expected)\"", sourceLocation: sourceLocation)
    } catch {
        #expect(error.file == file, sourceLocation: sourceLocation)
        #expect(error.description.hasPrefix(file.escapedForTerminal + ": "), sourceLocation: sourceLocation)
        #expect(error.message.contains(expected), "\(error)", sourceLocation: sourceLocation)
        #expect(!error.description.unicodeScalars.contains { $0.isEscapedForTerminal }, "\(error)", sourceLocation: sourceLocation)
    }
}

/// A PNG's chunks, and a PNG rebuilt from chunks with their CRCs computed by zlib.
enum PNGChunks {
    static func read(_ png: [UInt8]) -> [(type: String, data: [UInt8])] {
        var chunks: [(String, [UInt8])] = [], at = 8
        while at + 12 <= png.count {
            let length = png[at..<(at + 4)].reduce(0) { $0 << 8 | Int($1) }
            chunks.append((String(decoding: png[(at + 4)..<(at + 8)], as: UTF8.self), Array(png[(at + 8)..<(at + 8 + length)])))
            at += 12 + length
        }
        return chunks
    }

    static func write(_ chunks: [(type: String, data: [UInt8])]) -> [UInt8] {
        var out = ImageFixtures.bytes("png_gray4.png").prefix(8).map { $0 }
        for (type, data) in chunks {
            let body = Array(type.utf8) + data
            let crc = UInt32(body.withUnsafeBufferPointer { crc32(0, $0.baseAddress, UInt32($0.count)) })
            out += bigEndian(UInt32(data.count)) + body + bigEndian(crc)
        }
        return out
    }

    static func bigEndian(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (24 - 8 * $0)) } }

    /// `png` with IHDR's width and height replaced (CRC recomputed, so the size is what is tested).
    static func resized(_ png: [UInt8], width: UInt32, height: UInt32) -> [UInt8] {
        write(read(png).map { chunk in
            chunk.type == "IHDR" ? (chunk.type, bigEndian(width) + bigEndian(height) + chunk.data[8...]) : chunk
        })
    }
}

/// The offset of a JPEG's frame header (SOFn) marker.
func jpegFrameOffset(_ jpeg: [UInt8]) -> Int? {
    var at = 2
    while at + 4 <= jpeg.count, jpeg[at] == 0xFF {
        let marker = jpeg[at + 1]
        if (0xC0...0xCF).contains(marker), ![0xC4, 0xC8, 0xCC].contains(marker) { return at }
        at += 2 + (Int(jpeg[at + 2]) << 8 | Int(jpeg[at + 3]))
    }
    return nil
}

/// Every fixture cut where PIL refuses it ("image file is truncated"), in its first chunks or
/// markers, and — stricter than PIL, which stops reading a PNG once its rows are complete — a PNG
/// missing its last byte. A JPEG cut in its end marker that PIL decodes gives the same pixels.
@Test(arguments: ImageFixtures.names)
func truncatedFilesAreRefused(name: String) throws {
    let bytes = ImageFixtures.bytes(name), entry = try #require(ImageFixtures.manifest[name])
    var cuts = entry.truncated_at + [20, 40]
    if entry.format == "PNG" { cuts.append(bytes.count - 1) }
    for cut in cuts {
        expectRefusal(Array(bytes.prefix(cut)), file: name, saying: "image file is truncated")
    }
    for cut in entry.truncated_ok_at {
        #expect(try decodeImage(bytes: Array(bytes.prefix(cut)), file: name).rgb == decodeImage(bytes: bytes, file: name).rgb)
    }
    expectRefusal(Array(bytes.prefix(2)), file: name, saying: "image file is truncated (2 bytes, not even a whole \(entry.format) signature)")
    expectRefusal([], file: name, saying: "not a JPEG or PNG image (the file is empty)")
}

@Test func otherFormatsAreNamed() {
    let cases: [([UInt8], String)] = [
        (Array("GIF89a".utf8) + [1, 0, 1, 0, 0, 0, 0], "not a JPEG or PNG image (looks like a GIF image)"),
        (Array("BM".utf8) + [58, 0, 0, 0, 0, 0, 0, 0, 54, 0, 0, 0], "(looks like a BMP image)"),
        (Array("RIFF".utf8) + [36, 0, 0, 0] + Array("WEBPVP8 ".utf8), "(looks like a WebP image)"),
        (Array("II".utf8) + [42, 0, 8, 0, 0, 0], "(looks like a TIFF image)"),
        ([0x93] + Array("NUMPY".utf8) + [1, 0, 0x76, 0], "(looks like a NumPy .npy array)"),
        (Array("PK".utf8) + [3, 4, 20, 0], "(looks like a zip archive (.npz, a PyTorch checkpoint))"),
        (Array("a photo of a cat\n".utf8), "(looks like text)"),
        ([UInt8](repeating: 0, count: 64), "not a JPEG or PNG image"),
        ([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0B, 0, 0], "not a JPEG or PNG image"),
        ([0xFF, 0xD8, 0xFE, 0xD8], "not a JPEG or PNG image"),
    ]
    for (bytes, expected) in cases { expectRefusal(bytes, file: "input.jpg", saying: expected) }
    // A file that is text with terminal controls: described, never echoed.
    expectRefusal(Array("\u{1B}]0;pwned\u{07}\n".utf8), file: "evil\n.png", saying: "not a JPEG or PNG image")
}

@Test func missingFileIsNamed() {
    #expect(throws: ImageError(file: "/nonexistent/cat.jpg", "cannot open: No such file or directory")) {
        try decodeImage(path: "/nonexistent/cat.jpg")
    }
}

/// Sizes over PIL's decompression-bomb limit (`maxImagePixels`) or the format's, read from a valid
/// header, are refused before any pixel is allocated (so at once, whatever the claimed size).
@Test func hugeDimensionsAreRefusedFromTheHeader() throws {
    let png = ImageFixtures.bytes("png_gray4.png")
    let clock = ContinuousClock(), start = clock.now
    expectRefusal(PNGChunks.resized(png, width: 100_000, height: 100_000), file: "bomb.png",
                  saying: "a 100000×100000 PNG (10,000,000,000 pixels) exceeds limit maxImagePixels (178956970; raise with ZOO_LIMITS=maxImagePixels=10000000000)")
    expectRefusal(PNGChunks.resized(png, width: 178_956_971, height: 1), file: "wide.png", saying: "exceeds limit maxImagePixels")
    expectRefusal(PNGChunks.resized(png, width: 0x8000_0000, height: 1), file: "wider.png", saying: "out of range")
    var jpeg = ImageFixtures.bytes("chelsea.jpg")
    let frame = try #require(jpegFrameOffset(jpeg))
    jpeg.replaceSubrange((frame + 5)..<(frame + 9), with: [0xFD, 0xE8, 0xFD, 0xE8])  // height, width 65000
    expectRefusal(jpeg, file: "bomb.jpg", saying: "a 65000×65000 JPEG (4,225,000,000 pixels) exceeds limit maxImagePixels")
    #expect(clock.now - start < .seconds(1))
}

/// The pixel budget is a `ResourceLimits` field: an image of exactly the limit decodes (PIL refuses
/// only above its threshold), one pixel less refuses it.
@Test func pixelLimitIsAResourceLimit() throws {
    let bytes = ImageFixtures.bytes("png_gray4.png")   // 64×48
    var limits = ResourceLimits.standard
    limits.maxImagePixels = 64 * 48
    #expect(try decodeImage(bytes: bytes, file: "gray.png", limits: limits).rgb.width == 64)
    limits.maxImagePixels -= 1
    #expect(throws: ImageError(file: "gray.png", "a 64×48 PNG (3,072 pixels) exceeds limit maxImagePixels (3071; raise with ZOO_LIMITS=maxImagePixels=3072)")) {
        try decodeImage(bytes: bytes, file: "gray.png", limits: limits)
    }
}

/// A tiny PNG claiming a size within the limit (13000×13000, 507 MB of RGB) is refused from its
/// header: no deflate stream that small can hold the rows. One that could hold them fails as soon
/// as its data runs out; so does a JPEG cut short (13000×13000 too).
@Test func smallFilesClaimingLargeImagesFailFast() throws {
    let clock = ContinuousClock(), start = clock.now
    let gray4 = ImageFixtures.bytes("png_gray4.png")   // 574 bytes
    expectRefusal(PNGChunks.resized(gray4, width: 13_000, height: 13_000), file: "bomb.png",
                  saying: "13000×13000 4-bit L pixels need at least 81,893 bytes of image data (deflate compresses at most 1032:1); the file has 574")
    let wide = PNGChunks.write(PNGChunks.read(gray4).map { chunk in   // 1×178,956,970 16-bit RGBA
        chunk.type == "IHDR" ? (chunk.type, PNGChunks.bigEndian(178_956_970) + PNGChunks.bigEndian(1) + [16, 6, 0, 0, 0]) : chunk
    })
    expectRefusal(wide, file: "wide.png", saying: "need at least 1,387,264 bytes of image data")
    expectRefusal(PNGChunks.resized(gray4, width: 1000, height: 1000), file: "bomb.png", saying: "cannot decode PNG: ")
    var jpeg = ImageFixtures.bytes("chelsea.jpg")
    let frame = try #require(jpegFrameOffset(jpeg))
    jpeg.replaceSubrange((frame + 5)..<(frame + 9), with: [0x32, 0xC8, 0x32, 0xC8])  // 13000×13000
    expectRefusal(Array(jpeg.dropLast(2)), file: "bomb.jpg", saying: "image file is truncated")
    #expect(clock.now - start < .seconds(1))
}

@Test func corruptPNGChecksumsAreErrors() throws {
    let png = ImageFixtures.bytes("png_palette8.png")
    let chunks = PNGChunks.read(png)
    let idat = try #require(chunks.lastIndex { $0.type == "IDAT" })
    // A CRC that does not match (the chunk's last byte), in the image data and in an ancillary chunk.
    var badCRC = PNGChunks.write(chunks)
    let idatEnd = 8 + chunks[...idat].reduce(0) { $0 + 12 + $1.data.count }
    badCRC[idatEnd - 1] ^= 0x01
    expectRefusal(badCRC, file: "crc.png", saying: "IDAT: CRC error")
    var withText = chunks
    withText.insert((type: "tEXt", data: Array("Comment\u{0}a cat".utf8)), at: 1)
    var badTextCRC = PNGChunks.write(withText)
    badTextCRC[8 + 12 + chunks[0].data.count + 12 + withText[1].data.count - 1] ^= 0x01
    expectRefusal(badTextCRC, file: "crc.png", saying: "tEXt: CRC error")
    // A zlib stream whose Adler-32 (its last 4 bytes) is wrong, the chunk's CRC recomputed: libpng
    // only warns about it by default.
    var badAdler = chunks
    badAdler[idat].data[badAdler[idat].data.count - 1] ^= 0x01
    expectRefusal(PNGChunks.write(badAdler), file: "adler.png", saying: "IDAT: incorrect data check")
    // Data after the zlib stream (PIL would ignore it; libpng only warns by default).
    var extra = chunks
    extra[idat].data += [0, 0, 0, 0]
    expectRefusal(PNGChunks.write(extra), file: "extra.png", saying: "IDAT: Extra compressed data")
    // A critical chunk zoo does not know.
    var unknown = chunks
    unknown.insert((type: "ZOOz", data: [1]), at: 1)
    expectRefusal(PNGChunks.write(unknown), file: "unknown.png", saying: "ZOOz: unhandled critical chunk")
}

@Test func corruptJPEGHeadersAreErrors() throws {
    let jpeg = ImageFixtures.bytes("jpeg_444.jpg")
    let frame = try #require(jpegFrameOffset(jpeg))
    var twelveBit = jpeg
    twelveBit[frame + 4] = 12
    expectRefusal(twelveBit, file: "deep.jpg", saying: "Unsupported JPEG data precision 12")
    // Two components: the frame header's third one and the (single, interleaved) scan's removed.
    var twoComponents = jpeg
    let scan = try #require((frame..<(jpeg.count - 1)).first { jpeg[$0] == 0xFF && jpeg[$0 + 1] == 0xDA })
    twoComponents.replaceSubrange((scan + 2)..<(scan + 5), with: [0, 10, 2])
    twoComponents.removeSubrange((scan + 9)..<(scan + 11))
    twoComponents.replaceSubrange((frame + 2)..<(frame + 4), with: [0, 14])
    twoComponents[frame + 9] = 2
    twoComponents.removeSubrange((frame + 16)..<(frame + 19))
    expectRefusal(twoComponents, file: "two.jpg", saying: "2 components (PIL reads 1, 3 or 4)")
    var noTables = jpeg   // the quantization tables turned into APP15 segments
    for at in 2..<frame where noTables[at] == 0xFF && noTables[at + 1] == 0xDB { noTables[at + 1] = 0xEF }
    expectRefusal(noTables, file: "tables.jpg", saying: "Quantization table 0x00 was not defined")
}

@Test func exifOrientationParseIsBoundsChecked() {
    func ifd(_ littleEndian: Bool, type: UInt16, count: UInt32, value: [UInt8]) -> [UInt8] {
        func u16(_ v: UInt16) -> [UInt8] { littleEndian ? [UInt8(v & 0xFF), UInt8(v >> 8)] : [UInt8(v >> 8), UInt8(v & 0xFF)] }
        func u32(_ v: UInt32) -> [UInt8] { littleEndian ? u16(UInt16(v & 0xFFFF)) + u16(UInt16(v >> 16)) : u16(UInt16(v >> 16)) + u16(UInt16(v & 0xFFFF)) }
        return (littleEndian ? Array("II".utf8) : Array("MM".utf8)) + u16(42) + u32(8) + u16(1) + u16(0x0112) + u16(type) + u32(count) + value + u32(0)
    }
    #expect(exifOrientation(tiff: ifd(true, type: 3, count: 1, value: [6, 0, 0, 0])) == 6)
    #expect(exifOrientation(tiff: Array("Exif\0\0".utf8) + ifd(false, type: 3, count: 1, value: [0, 8, 0, 0])) == 8)
    #expect(exifOrientation(tiff: ifd(true, type: 4, count: 1, value: [3, 0, 0, 0])) == 3)
    #expect(exifOrientation(tiff: ifd(true, type: 3, count: 2, value: [5, 0, 1, 0])) == 5)   // PIL takes the first
    #expect(exifOrientation(tiff: ifd(true, type: 1, count: 1, value: [6, 0, 0, 0])) == nil)  // BYTE: PIL gives bytes
    #expect(exifOrientation(tiff: ifd(true, type: 3, count: 1, value: [9, 0, 0, 0])) == nil)
    #expect(exifOrientation(tiff: ifd(true, type: 3, count: 3, value: [0xFF, 0xFF, 0, 0])) == nil)  // values past the end
    let whole = ifd(true, type: 3, count: 1, value: [6, 0, 0, 0])
    for cut in 0..<(whole.count - 4) { #expect(exifOrientation(tiff: whole.prefix(cut)) == nil) }
    #expect(exifOrientation(tiff: Array("II".utf8) + [42, 0, 0xF0, 0xFF, 0xFF, 0x7F]) == nil)    // IFD0 far away
}
