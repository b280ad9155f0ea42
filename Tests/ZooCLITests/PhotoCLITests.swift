import Foundation
import XCTest
import ZooCore
import ZooImage
import ZooModels

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
    /// within one 8-bit level (JPEG decoders may differ by one), and on average far less.
    func testPreprocessMatchesTorchvisionOnRealPhotos() throws {
        let dir = try temporaryDirectory()
        let cases = try manifest["preprocess"] as! [[String: Any]]
        XCTAssertGreaterThanOrEqual(cases.count, 7)
        for entry in cases {
            let photo = entry["photo"] as! String, variant = entry["variant"] as! String
            let transform = entry["transform"] as! [String: Any]
            let mean = (transform["mean"] as! [Double]).map(Float.init), std = (transform["std"] as! [Double]).map(Float.init)
            let out = dir.appendingPathComponent("\(variant).npy").path
            let result = try zoo("preprocess", Self.photo(photo), "--arch", variant, "-o", out)
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
}
