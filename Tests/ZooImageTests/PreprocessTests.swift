import Foundation
import Testing
import TorchFormat
import ZooCore
import ZooImage

/// PIL's resize and torchvision's evaluation transform, against what they output
/// (Fixtures/preprocess/, made by Fixtures/make_preprocess_fixtures.py with PIL 13.0.0 and
/// torchvision 0.24.1; the script's docstring describes every array).
struct PreprocessTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/preprocess")

    /// The arrays of an .npz of Fixtures/preprocess, by name.
    static func arrays(_ name: String) -> [String: Tensor] {
        let records = try! NumPyArchive.read(path: folder.appendingPathComponent(name).path)
        return Dictionary(uniqueKeysWithValues: records.map { ($0.name, $0.tensor) })
    }

    /// A uint8 [height, width, channels] array as an image.
    static func image(_ tensor: Tensor) -> Image {
        precondition(tensor.dtype == .u8 && tensor.rank == 3)
        return Image(width: tensor.shape[1], height: tensor.shape[0], channels: tensor.shape[2],
                     pixels: tensor.withContiguousBytes { Array($0) })
    }

    static func json(_ name: String) -> [String: Any] {
        let data = try! Data(contentsOf: folder.appendingPathComponent(name))
        return try! JSONSerialization.jsonObject(with: data) as! [String: Any]
    }

    struct ResizeCase: Sendable {
        let input: String, filter: EvaluationTransform.Interpolation, width: Int, height: Int, expected: String
    }

    static let resizeArrays = arrays("resize.npz").mapValues(image)
    static let resizeCases: [ResizeCase] = (json("resize.json")["cases"] as! [[Any]]).map {
        ResizeCase(input: $0[0] as! String, filter: .init(rawValue: $0[1] as! String)!, width: $0[2] as! Int,
                   height: $0[3] as! Int, expected: $0[4] as! String)
    }

    @Test("resize equals PIL's, byte for byte", arguments: EvaluationTransform.Interpolation.allCases)
    func resizeMatchesPIL(filter: EvaluationTransform.Interpolation) {
        let cases = Self.resizeCases.filter { $0.filter == filter }
        #expect(cases.count >= 60)  // 11 inputs, 3 to 7 sizes each
        var modes: Set<Int> = []
        var mismatches: [String] = []
        for c in cases {
            let input = Self.resizeArrays[c.input]!, expected = Self.resizeArrays[c.expected]!
            modes.insert(input.channels)
            let result = resized(input, width: c.width, height: c.height, filter: filter)
            guard result.width == expected.width, result.height == expected.height, result.channels == expected.channels else {
                mismatches.append("\(c.expected): \(result.width)×\(result.height)×\(result.channels)")
                continue
            }
            let differing = zip(result.pixels, expected.pixels).filter { $0 != $1 }.count
            let largest = zip(result.pixels, expected.pixels).map { abs(Int($0) - Int($1)) }.max()!
            if differing > 0 { mismatches.append("\(c.expected): \(differing) samples differ, by up to \(largest)") }
        }
        #expect(modes == [1, 3, 4])
        #expect(mismatches == [])
    }

    struct TransformCase: Sendable {
        let name: String, input: String, transform: EvaluationTransform, normalize: String
        let resized: [Int], cropOrigin: [Int]
    }

    static let transformArrays = arrays("transform.npz")
    static let transformCases: [TransformCase] = (json("transform.json")["cases"] as! [[String: Any]]).map { c in
        let interpolation = EvaluationTransform.Interpolation(rawValue: c["interpolation"] as! String)!
        let resize = c["resize"] as! Int, crop = c["crop"] as! Int
        let normalize = c["normalize"] as! String
        // ImageNet's mean and std are zoo's defaults (their float32 rounding must be torch's too).
        let transform = normalize == "normalize.imagenet"
            ? EvaluationTransform(resize: resize, crop: crop, interpolation)
            : EvaluationTransform(resize: resize, crop: crop, interpolation,
                                  mean: (c["mean"] as! [Double]).map { Float($0) }, std: (c["std"] as! [Double]).map { Float($0) })
        return TransformCase(name: c["name"] as! String, input: c["input"] as! String, transform: transform,
                             normalize: normalize, resized: c["resized"] as! [Int], cropOrigin: c["crop_origin"] as! [Int])
    }

    /// torchvision's float for byte v of channel c is `table[c * 256 + v]`.
    static func normalizationTable(_ name: String) -> [Float] {
        let tensor = transformArrays[name]!
        precondition(tensor.shape == [3, 256])
        return tensor.floats()
    }

    @Test func resizedSizeAndCropOriginAreTorchvisions() {
        #expect(Self.transformCases.count == 11)
        for c in Self.transformCases {
            let input = Self.image(Self.transformArrays[c.input]!)
            let size = c.transform.resizedSize(width: input.width, height: input.height)
            #expect([size.width, size.height] == c.resized, "\(c.name)")
            let origin = c.transform.centerCropOrigin(width: size.width, height: size.height)
            #expect([origin.x, origin.y] == c.cropOrigin, "\(c.name)")
        }
    }

    /// The fixture keeps each crop as the CRC-32 of its rows (photo crops do not compress).
    @Test("the 8-bit crop and the float tensor are torchvision's",
          arguments: transformCases.map(\.name))
    func transformMatchesTorchvision(name: String) {
        let c = Self.transformCases.first { $0.name == name }!
        let input = Self.image(Self.transformArrays[c.input]!)
        let crop = c.transform.cropped(input)
        let size = c.transform.crop
        #expect(crop.width == size && crop.height == size && crop.channels == 3)
        let expectedRows = Self.transformArrays["\(name).row_crc32"]!.doubles().map { UInt32($0) }
        let rows = (0..<size).map { y in
            crop.pixels[(y * size * 3)..<((y + 1) * size * 3)].withUnsafeBytes { CRC32.checksum($0) }
        }
        #expect(expectedRows.count == size)
        let differing = zip(rows, expectedRows).enumerated().filter { $0.element.0 != $0.element.1 }.map(\.offset)
        #expect(differing.isEmpty, "\(differing.count) of \(size) rows differ from torchvision's, first \(differing.prefix(5))")

        let tensor = c.transform.tensor([input])
        #expect(tensor.dtype == .f32 && tensor.shape == [1, 3, size, size])
        let table = Self.normalizationTable(c.normalize)
        var expected = [Float](repeating: 0, count: 3 * size * size)
        for ch in 0..<3 {
            for i in 0..<(size * size) { expected[ch * size * size + i] = table[ch * 256 + Int(crop.pixels[i * 3 + ch])] }
        }
        #expect(tensor.isBitIdentical(Tensor(floats: expected, shape: [1, 3, size, size])))
    }

    /// `cropped` resamples only the pixels inside the crop: the same bytes as a full `resized`, then
    /// torchvision's crop (zero outside the resized image), for random sizes, modes, filters, crops.
    @Test func cropComputesTheSamePixelsAsAFullResize() {
        var random = SplitMix64(seed: 14)
        for _ in 0..<400 {
            let width = Int.random(in: 1...40, using: &random), height = Int.random(in: 1...40, using: &random)
            let channels = [1, 3, 4].randomElement(using: &random)!
            let image = Image(width: width, height: height, channels: channels,
                              pixels: (0..<(width * height * channels)).map { _ in UInt8.random(in: 0...255, using: &random) })
            let transform = EvaluationTransform(resize: Int.random(in: 1...48, using: &random), crop: Int.random(in: 1...48, using: &random),
                                                EvaluationTransform.Interpolation.allCases.randomElement(using: &random)!)
            let size = transform.resizedSize(width: width, height: height)
            let full = resized(image, width: size.width, height: size.height, filter: transform.interpolation)
            let origin = transform.centerCropOrigin(width: size.width, height: size.height)
            let crop = transform.crop
            var expected = [UInt8](repeating: 0, count: crop * crop * channels)
            for y in 0..<crop where (0..<size.height).contains(origin.y + y) {
                for x in 0..<crop where (0..<size.width).contains(origin.x + x) {
                    for c in 0..<channels {
                        expected[(y * crop + x) * channels + c] = full.pixels[((origin.y + y) * size.width + origin.x + x) * channels + c]
                    }
                }
            }
            let result = transform.cropped(image)
            #expect(result.width == crop && result.height == crop && result.channels == channels)
            let same = result.pixels == expected
            #expect(same, "\(width)×\(height)×\(channels), \(transform)")
        }
    }

    @Test func batchHoldsEachImageInOrder() {
        // "resnet" (landscape) and "portrait" are both Resize(256) CenterCrop(224) bilinear, ImageNet.
        let transform = EvaluationTransform.standard
        let landscape = Self.image(Self.transformArrays["landscape"]!), portrait = Self.image(Self.transformArrays["portrait"]!)
        let batch = transform.tensor([landscape, portrait])
        #expect(batch.shape == [2, 3, 224, 224])
        let first = transform.tensor([landscape]).floats(), second = transform.tensor([portrait]).floats()
        #expect(first != second)
        #expect(batch.floats() == first + second)
    }
}

/// A small deterministic generator for test data.
private struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
