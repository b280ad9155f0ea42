import Foundation
import XCTest
import ZooCore
import ZooImage
import ZooModels
import TorchFormat

/// Photos in, pictures out, end to end through the `zoo` binary: `zoo preprocess` against
/// torchvision's transforms on real photos, `zoo classify` against torch's top-5 on the same weights
/// (Fixtures/make_photo_fixtures.py), `zoo run` on photos, `zoo show`'s pictures, and bad images.
final class PhotoCLITests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures")
    static func photo(_ name: String) -> String { root.appendingPathComponent("images/\(name)").path }

    private func zoo(_ arguments: String...) throws -> CLITests.Result { try CLITests.run(arguments) }

    private var manifest: [String: Any] {
        get throws {
            try JSONSerialization.jsonObject(with: Data(contentsOf: Self.root.appendingPathComponent("photos/manifest.json"))) as! [String: Any]
        }
    }

    private func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-photo-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir
    }

    /// `zoo preprocess PHOTO --arch VARIANT` equals torchvision's `weights.transforms()` of the photo
    /// within one 8-bit level (JPEG decoders may differ by one), and on average far less; so does a
    /// transform given part by part (--resize --crop --interpolation --mean --std).
    func testPreprocessMatchesTorchvisionOnRealPhotos() throws {
        let dir = try temporaryDirectory()
        let cases = try manifest["preprocess"] as! [[String: Any]]
        XCTAssertGreaterThanOrEqual(cases.count, 8)
        XCTAssertTrue(cases.contains { $0["custom"] as? Bool == true })
        for entry in cases {
            let photo = entry["photo"] as! String, variant = entry["variant"] as! String
            let transform = entry["transform"] as! [String: Any]
            let mean = (transform["mean"] as! [Double]).map(Float.init), std = (transform["std"] as! [Double]).map(Float.init)
            let out = dir.appendingPathComponent("\(variant).npy").path
            var arguments = ["preprocess", Self.photo(photo), "-o", out]
            if entry["custom"] as? Bool == true {  // every part given on the command line
                let numbers = { (key: String) in (transform[key] as! [Double]).map { "\($0)" }.joined(separator: ",") }
                arguments += ["--resize", "\(transform["resize"] as! Int)", "--crop", "\(transform["crop"] as! Int)",
                              "--interpolation", transform["interpolation"] as! String, "--mean", numbers("mean"), "--std", numbers("std")]
            } else {
                arguments += ["--arch", variant]
            }
            let result = try CLITests.run(arguments)
            XCTAssertEqual(result.status, 0, result.stderr)
            XCTAssertTrue(result.stdout.contains("crop \(transform["crop"] as! Int)"), result.stdout)
            let x = try NumPy.read(path: out)
            XCTAssertEqual(x.shape, [1] + (entry["shape"] as! [Int]), "\(photo) \(variant)")
            // torchvision's exact float tensor, rebuilt from the 8-bit crop it is made from (a PNG PIL
            // wrote; the script asserts the equality).
            let crop = try decodeImage(path: Self.root.appendingPathComponent("photos/\(photo)@\(variant).png").path).rgb
            let (h, w) = (crop.height, crop.width), pixels = crop.pixels
            let got = x.floats()
            var worst: Float = 0, sum: Double = 0
            for c in 0..<3 {
                for i in 0..<h * w {
                    let expected = (Float(pixels[i * 3 + c]) / 255 - mean[c]) / std[c]
                    let d = abs(got[c * h * w + i] - expected)
                    worst = max(worst, d)
                    sum += Double(d)
                }
            }
            let meanDelta = sum / Double(3 * h * w)
            XCTAssertLessThanOrEqual(worst, 2e-2, "\(photo) \(variant): max |Δ| \(worst)")
            XCTAssertLessThanOrEqual(meanDelta, 1e-3, "\(photo) \(variant): mean |Δ| \(meanDelta)")
            if photo.hasSuffix(".png") { XCTAssertEqual(worst, 0, "\(photo) \(variant): a PNG decodes exactly, so the tensor is exact") }
        }
    }

    /// `zoo classify` names the same five classes, in the same order and with the same
    /// probabilities, as torch's softmax on the same weights and photos.
    func testClassifyTop5EqualsTorch() throws {
        let dir = try temporaryDirectory()
        let cases = try manifest["classify"] as! [[String: Any]]
        XCTAssertFalse(cases.isEmpty)
        for entry in cases {
            let variant = entry["variant"] as! String
            let photos = (entry["photos"] as! [String]).map(Self.photo)
            let pth = dir.appendingPathComponent("\(variant).pth").path
            XCTAssertEqual(try zoo("init", variant, "-o", pth, "--seed", "0", "--quiet").status, 0)
            let result = try CLITests.run(["classify", pth] + photos + ["--json"])
            XCTAssertEqual(result.status, 0, result.stderr)
            let json = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
            let images = json["images"] as! [[String: Any]]
            XCTAssertEqual(images.map { $0["file"] as! String }, photos)
            let expectedTop = entry["top5"] as! [[Int]], expectedP = entry["probabilities"] as! [[Double]]
            for (k, image) in images.enumerated() {
                let top = image["top"] as! [[String: Any]]
                XCTAssertEqual(top.map { $0["index"] as! Int }, expectedTop[k], "\(variant) \(photos[k])")
                for (j, entry) in top.enumerated() {
                    let p = entry["probability"] as! Double
                    XCTAssertEqual(p, expectedP[k][j], accuracy: 1e-4 * expectedP[k][j] + 1e-7, "\(variant) \(photos[k]) rank \(j + 1)")
                    XCTAssertEqual(entry["label"] as? String, imageNetClasses[entry["index"] as! Int])
                }
            }
        }
    }

    /// Photos given to `zoo run` make the same batch as `zoo preprocess` writes: the outputs are
    /// bit-identical. Photos and arrays are not mixed.
    func testRunOnPhotosEqualsRunOnThePreprocessedArray() throws {
        let dir = try temporaryDirectory()
        let pth = dir.appendingPathComponent("m.pth").path, x = dir.appendingPathComponent("x.npy").path
        let y1 = dir.appendingPathComponent("y1.npy").path, y2 = dir.appendingPathComponent("y2.npy").path
        let photos = [Self.photo("chelsea.jpg"), Self.photo("camera.png")]
        XCTAssertEqual(try zoo("init", "mobilenet_v3_small", "-o", pth, "--quiet").status, 0)
        XCTAssertEqual(try CLITests.run(["preprocess"] + photos + ["--model", pth, "-o", x]).status, 0)
        XCTAssertEqual(try zoo("run", pth, "--input", x, "--output", y1).status, 0)
        let run = try zoo("run", pth, "--input", photos[0], "--input", photos[1], "--output", y2)
        XCTAssertEqual(run.status, 0, run.stderr)
        let a = try NumPy.read(path: y1), b = try NumPy.read(path: y2)
        XCTAssertEqual(b.shape, [2, 1000])
        XCTAssertTrue(a.isBitIdentical(b))
        let mixed = try zoo("run", pth, "--input", photos[0], "--input", x, "--output", y2)
        XCTAssertEqual(mixed.status, 64)
        XCTAssertTrue(mixed.stderr.contains("mixes photos and arrays"), mixed.stderr)
    }

    /// The pictures: the size the grid layout gives, and not blank — many colours, and different
    /// feature maps for different photos.
    func testShowDrawsFiltersAndFeatureMaps() throws {
        let dir = try temporaryDirectory()
        let model = CLITests.fixtures.appendingPathComponent("alexnet_small.pth").path   // conv1 [8, 3, 11, 11]
        let filters = dir.appendingPathComponent("filters.png").path
        let shown = try zoo("show", "filters", model, "-o", filters)
        XCTAssertEqual(shown.status, 0, shown.stderr)
        XCTAssertTrue(shown.stdout.contains("'features.0' [8, 3, 11, 11], 8 of 8 filters in colour"), shown.stdout)
        let picture = try decodeImage(path: filters).rgb
        // 8 tiles in 3 columns and 3 rows, 11 px × scale 4 each, 2 px gaps around and between.
        XCTAssertEqual([picture.width, picture.height], [2 + 3 * (44 + 2), 2 + 3 * (44 + 2)])
        XCTAssertGreaterThan(colours(picture), 100)

        var maps: [Image] = []
        for photo in ["chelsea.jpg", "camera.png"] {
            let out = dir.appendingPathComponent("maps-\(photo).png").path
            let result = try zoo("show", "activations", model, Self.photo(photo), "--layer", "features.1", "-o", out)
            XCTAssertEqual(result.status, 0, result.stderr)
            XCTAssertTrue(result.stdout.contains("'features.1' [1, 8, 55, 55], 8 of 8 maps"), result.stdout)
            let image = try decodeImage(path: out).rgb
            XCTAssertEqual([image.width, image.height], [2 + 3 * (55 + 2), 2 + 3 * (55 + 2)])
            XCTAssertGreaterThan(colours(image), 100)
            maps.append(image)
        }
        XCTAssertNotEqual(maps[0].pixels, maps[1].pixels)

        let unknown = try zoo("show", "activations", model, Self.photo("chelsea.jpg"), "--layer", "features.77", "-o", filters)
        XCTAssertEqual(unknown.status, 1)
        XCTAssertTrue(unknown.stderr.contains("no layer 'features.77' in the model (nearest: "), unknown.stderr)
        let notConv = try zoo("show", "filters", model, "--layer", "features.1", "-o", filters)
        XCTAssertTrue(notConv.stderr.contains("is Relu, not a convolution"), notConv.stderr)
        let photo = dir.appendingPathComponent("photo.png").path
        try FileManager.default.copyItem(atPath: Self.photo("camera.png"), toPath: photo)
        let overInput = try zoo("show", "activations", model, photo, "--layer", "features.1", "-o", photo)
        XCTAssertEqual(overInput.status, 1)
        XCTAssertTrue(overInput.stderr.contains("refusing to overwrite an input"), overInput.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: photo)), try Data(contentsOf: URL(fileURLWithPath: Self.photo("camera.png"))))
    }

    private func colours(_ image: Image) -> Int {
        var seen = Set<Int>()
        for i in stride(from: 0, to: image.pixels.count, by: 3) {
            seen.insert(Int(image.pixels[i]) << 16 | Int(image.pixels[i + 1]) << 8 | Int(image.pixels[i + 2]))
        }
        return seen.count
    }

    /// A photo's EXIF orientation is reported and, with --exif-transpose, applied: the photo is
    /// turned upright before the transform, so the tensor changes.
    func testEXIFOrientationIsReportedAndAppliedOnRequest() throws {
        let dir = try temporaryDirectory()
        let plain = dir.appendingPathComponent("plain.npy").path, upright = dir.appendingPathComponent("upright.npy").path
        let photo = Self.photo("jpeg_exif6.jpg")
        let result = try zoo("preprocess", photo, "-o", plain, "--json")
        XCTAssertEqual(result.status, 0, result.stderr)
        let json = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
        XCTAssertEqual((json["images"] as! [[String: Any]])[0]["exif_orientation"] as? Int, 6)
        XCTAssertEqual(try zoo("preprocess", photo, "-o", upright, "--exif-transpose").status, 0)
        XCTAssertFalse(try NumPy.read(path: plain).isBitIdentical(try NumPy.read(path: upright)))
    }

    /// Bad images: one line on standard error naming the file and what is wrong, exit status 1.
    func testBadImagesGetOneLineErrors() throws {
        let dir = try temporaryDirectory()
        let jpeg = try Data(contentsOf: URL(fileURLWithPath: Self.photo("chelsea.jpg")))
        var png = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Self.photo("camera.png"))))
        // A PNG header claiming 100000 × 100000 pixels (CRC recomputed so that only the size is wrong).
        png.replaceSubrange(16..<24, with: [0, 1, 0x86, 0xA0, 0, 1, 0x86, 0xA0])
        let crc = png[12..<29].withUnsafeBytes { UInt32(CRC32.checksum($0)) }
        png.replaceSubrange(29..<33, with: [UInt8(crc >> 24), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc & 0xFF)])
        let cases: [(name: String, bytes: Data, says: String)] = [
            ("truncated.jpg", jpeg.prefix(jpeg.count / 2), "truncated"),
            ("notes.jpg", Data("these are not pixels\n".utf8), "not a JPEG or PNG image"),
            ("empty.png", Data(), "not a JPEG or PNG image"),
            ("huge.png", Data(png), "100000×100000"),
        ]
        for bad in cases {
            let path = dir.appendingPathComponent(bad.name).path
            try bad.bytes.write(to: URL(fileURLWithPath: path))
            let result = try zoo("preprocess", path, "-o", dir.appendingPathComponent("x.npy").path)
            XCTAssertEqual(result.status, 1, bad.name)
            XCTAssertTrue(result.stderr.hasPrefix("Error: \(path): "), result.stderr)
            XCTAssertTrue(result.stderr.contains(bad.says), result.stderr)
            XCTAssertEqual(result.stderr.filter { $0 == "\n" }.count, 1, result.stderr)
        }
    }
}
