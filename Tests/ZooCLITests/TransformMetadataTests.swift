import Foundation
import ONNXFormat
import Testing
@testable import ZooCLI
import ZooCore
import ZooModels

/// The evaluation transform travels inside zoo's ONNX files (`zoo.architecture`,
/// `zoo.evaluation_transform` in metadata_props): `zoo init` and `zoo convert` write it, photos
/// get it from the file alone, `zoo inspect` shows it, a re-export keeps it, and a malformed one is
/// ignored with one warning.
@Suite struct TransformMetadataTests {
    private let directory: String
    private let photo = PhotoCLITests.photo("chelsea.jpg")

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-transform-metadata-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    private func cleanUp() { try? FileManager.default.removeItem(atPath: directory) }

    private func zoo(_ arguments: String...) throws -> CLITests.Result {
        let result = try CLITests.run(arguments)
        #expect(result.status == 0, "zoo \(arguments.joined(separator: " ")): \(result.stderr)")
        return result
    }

    private func json(_ result: CLITests.Result) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
    }

    private func bytes(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

    /// MobileNetV2's weights take Resize(232), not the 256 that ImageNet's usual transform for a
    /// 224 input would guess: the ONNX file zoo init writes gives photos the same tensor as --arch.
    @Test func initRecordsTheTransformPhotosGet() throws {
        defer { cleanUp() }
        let onnx = directory + "/m.onnx"
        _ = try zoo("init", "mobilenet_v2", "-o", onnx)
        let fromFile = try zoo("preprocess", photo, "--model", onnx, "-o", directory + "/file.npy")
        #expect(fromFile.stdout.contains("\ntransform: resize 232 bilinear, crop 224 (mobilenet_v2's weights, recorded in the file)\n"), "\(fromFile.stdout)")
        _ = try zoo("preprocess", photo, "--arch", "mobilenet_v2", "-o", directory + "/arch.npy")
        #expect(try bytes(directory + "/file.npy") == bytes(directory + "/arch.npy"))
        // What the file records is `zoo models`' transform for the variant.
        let props = try #require(try json(try zoo("inspect", onnx, "--json"))["metadata_props"] as? [String: String])
        #expect(Set(props.keys) == ["zoo.architecture", "zoo.evaluation_transform"])
        #expect(props["zoo.architecture"] == "mobilenet_v2")
        let value = try #require(props["zoo.evaluation_transform"])
        let recorded = try #require(try JSONSerialization.jsonObject(with: Data(value.utf8)) as? [String: Any])
        let families = try #require(try json(try zoo("models", "--json"))["families"] as? [[String: Any]])
        let variant = try #require(families.flatMap { $0["variants"] as! [[String: Any]] }.first { $0["name"] as? String == "mobilenet_v2" })
        let published = try #require(variant["transform"] as? [String: Any])
        #expect(Set(recorded.keys) == Set(published.keys))
        for key in ["resize", "crop"] { #expect(recorded[key] as? Int == published[key] as? Int, "\(key)") }
        #expect(recorded["interpolation"] as? String == published["interpolation"] as? String)
        for key in ["mean", "std"] {
            #expect((recorded[key] as? [Double])?.map(Float.init) == (published[key] as? [Double])?.map(Float.init), "\(key)")
        }
        let text = try zoo("inspect", onnx).stdout
        #expect(text.contains("\nmetadata:  zoo.architecture = mobilenet_v2\nmetadata:  zoo.evaluation_transform = {\"resize\": 232, \"crop\": 224, "))
    }

    /// pth → onnx records the transform; onnx → onnx keeps every entry; onnx → pth lists them as left out.
    @Test func convertWritesKeepsAndListsTheMetadata() throws {
        defer { cleanUp() }
        let onnx = directory + "/a.onnx", again = directory + "/a13.onnx"
        _ = try zoo("convert", CLITests.fixtures.appendingPathComponent("alexnet_small.pth").path, onnx)
        let written = try ONNX.load(path: onnx).metadataProps
        #expect(written.map(\.key) == ["zoo.architecture", "zoo.evaluation_transform"])
        #expect(written.first?.value == "alexnet (custom)")
        // A file someone else annotated: its own entries survive the re-export too, in order.
        let annotated = directory + "/annotated.onnx"
        let props = written + [(key: "author", value: "Ada ✓"), (key: "licence", value: "CC0\n1.0")]
        try ONNX.save(try ONNX.load(path: onnx).graph, to: annotated, options: ONNXWriteOptions(metadataProps: props))
        _ = try zoo("convert", annotated, again, "--opset", "13")
        #expect(try ONNX.load(path: again).metadataProps.map { [$0.key, $0.value] } == props.map { [$0.key, $0.value] })
        let pth = try json(try zoo("convert", annotated, directory + "/a.pth", "--json"))
        let leftOut = try #require(pth["left_out"] as? [[String: String]])
        #expect(leftOut.filter { $0["reason"] == "ONNX metadata, not weights" }.map { $0["name"]! }
            == ["metadata 'zoo.architecture'", "metadata 'zoo.evaluation_transform'", "metadata 'author'", "metadata 'licence'"])
    }

    /// A file whose transform is malformed still runs: one warning naming the file and the fault,
    /// then ImageNet's usual transform for the input size. A well-formed one is used as recorded,
    /// the architecture name from the file escaped.
    @Test func malformedTransformIsIgnoredWithOneWarning() throws {
        defer { cleanUp() }
        let onnx = directory + "/a.onnx", bad = directory + "/bad.onnx", odd = directory + "/odd.onnx"
        _ = try zoo("convert", CLITests.fixtures.appendingPathComponent("alexnet_small.pth").path, onnx)
        let graph = try ONNX.load(path: onnx).graph
        try ONNX.save(graph, to: bad, options: ONNXWriteOptions(metadataProps: [("zoo.evaluation_transform", #"{"resize": 256}"#)]))
        let warned = try zoo("preprocess", photo, "--model", bad, "-o", directory + "/bad.npy")
        #expect(warned.stderr == "Warning: \(bad): metadata 'zoo.evaluation_transform' has no 'crop'; ignored: photos get ImageNet's usual transform for the input size\n")
        #expect(warned.stdout.contains("\ntransform: resize 256 bilinear, crop 224 (ImageNet's usual for a 224×224 input; the file records none)\n"), "\(warned.stdout)")

        let transform = #"{"resize": 300, "crop": 224, "interpolation": "bicubic", "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.5, 0.75]}"#
        try ONNX.save(graph, to: odd, options: ONNXWriteOptions(metadataProps: [("zoo.architecture", "evil\u{1B}[2J"), ("zoo.evaluation_transform", transform)]))
        let used = try zoo("preprocess", photo, "--model", odd, "-o", directory + "/odd.npy")
        #expect(used.stderr.isEmpty)
        #expect(used.stdout.contains("\ntransform: resize 300 bicubic, crop 224, mean [0.5, 0.5, 0.5] std [0.25, 0.5, 0.75] "
            + "(evil\\u{1B}[2J's weights, recorded in the file)\n"), "\(used.stdout)")
        #expect(!used.stdout.contains("\u{1B}"))
        _ = try zoo("preprocess", photo, "--resize", "300", "--crop", "224", "--interpolation", "bicubic", "--mean", "0.5,0.5,0.5",
                    "--std", "0.25,0.5,0.75", "-o", directory + "/options.npy")
        #expect(try bytes(directory + "/odd.npy") == bytes(directory + "/options.npy"))
    }

    /// Text lists at most 20 entries, each on one line, escaped and shortened; --json has them all, whole.
    @Test func inspectShowsEveryEntryInJSONAndShortensText() throws {
        defer { cleanUp() }
        let onnx = directory + "/a.onnx", many = directory + "/many.onnx"
        _ = try zoo("convert", CLITests.fixtures.appendingPathComponent("alexnet_small.pth").path, onnx)
        let long = String(repeating: "é", count: 300)
        let props = [(key: "bell\u{7}", value: "two\nlines"), (key: "long", value: long)] + (0..<23).map { (key: "k\($0)", value: "v\($0)") }
        try ONNX.save(try ONNX.load(path: onnx).graph, to: many, options: ONNXWriteOptions(metadataProps: props))
        let lines = try zoo("inspect", many).stdout.split(separator: "\n").filter { $0.hasPrefix("metadata:") }
        #expect(lines.count == 21)
        #expect(lines.first == "metadata:  bell\\u{07} = two\\nlines")
        #expect(lines.dropFirst().first == "metadata:  long = \(String(repeating: "é", count: 200))… (300 characters, in --json)")
        #expect(lines.last == "metadata:  5 more (in --json)")
        let object = try #require(try json(try zoo("inspect", many, "--json"))["metadata_props"] as? [String: String])
        #expect(object.count == props.count)
        #expect(object["long"] == long && object["bell\u{7}"] == "two\nlines" && object["k22"] == "v22")
    }

    /// Every architecture's transform survives the trip through the JSON value exactly, and the
    /// reader refuses what it does not fully understand.
    @Test func transformValueRoundTripsAndIsReadStrictly() throws {
        for architecture in Architecture.all {
            let props = TransformMetadata.props(for: architecture)
            let recorded = try #require(try TransformMetadata.recorded(in: props), "\(architecture.name)")
            #expect(recorded.transform == architecture.transform, "\(architecture.name): \(props[1].value)")
            #expect(recorded.origin == "\(architecture.name)'s weights, recorded in the file")
        }
        #expect(try TransformMetadata.recorded(in: [("zoo.architecture", "resnet50")]) == nil)
        let valid = #"{"resize": 256, "crop": 224, "interpolation": "bilinear", "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}"#
        #expect(try TransformMetadata.recorded(in: [("zoo.evaluation_transform", valid)])?.origin == "recorded in the file")
        func reason(_ value: String) -> String? {
            do throws(TransformMetadataError) { _ = try TransformMetadata.decode(value); return nil } catch { return error.reason }
        }
        #expect(reason(valid) == nil)
        let cases: [(String, String)] = [
            ("nope", "is not the JSON object zoo writes (resize, crop, interpolation, mean, std)"),
            ("[256, 224]", "is not the JSON object zoo writes (resize, crop, interpolation, mean, std)"),
            (valid.replacingOccurrences(of: "256", with: "256.5"), "is not the JSON object zoo writes (resize, crop, interpolation, mean, std)"),
            (valid.replacingOccurrences(of: #""crop": 224, "#, with: ""), "has no 'crop'"),
            (valid.replacingOccurrences(of: "224", with: #""224""#), "has a 'crop' of the wrong type"),
            (valid.replacingOccurrences(of: "[0.5, 0.5, 0.5]}", with: "null}"), "has a 'std' of the wrong type"),
            (valid.replacingOccurrences(of: "224", with: "0"), "has 'crop' 0, not in 1…16384"),
            (valid.replacingOccurrences(of: "256", with: "16385"), "has 'resize' 16385, not in 1…16384"),
            (valid.replacingOccurrences(of: "bilinear", with: "cubic"),
             "has an unknown 'interpolation' 'cubic' (zoo knows nearest, box, bilinear, hamming, bicubic, lanczos)"),
            (valid.replacingOccurrences(of: #""mean": [0.5, 0.5, 0.5]"#, with: #""mean": [0.5, 0.5]"#), "has a 'mean' that is not three finite float32 numbers"),
            (valid.replacingOccurrences(of: #""mean": [0.5, 0.5, 0.5]"#, with: #""mean": [0.5, 0.5, 1e39]"#), "has a 'mean' that is not three finite float32 numbers"),
            (valid.replacingOccurrences(of: #""std": [0.5, 0.5, 0.5]"#, with: #""std": [0.5, 0, 0.5]"#), "has a 'std' of 0"),
            (valid.replacingOccurrences(of: "}", with: #", "antialias": true}"#), "has a member 'antialias' zoo does not know"),
            (valid + String(repeating: " ", count: 4096), "is \(valid.utf8.count + 4096) bytes long (at most 4096 are read)"),
        ]
        for (value, expected) in cases { #expect(reason(value) == expected, "\(value.prefix(200))") }
        #expect(throws: TransformMetadataError.self) { try TransformMetadata.recorded(in: [("zoo.evaluation_transform", valid), ("zoo.evaluation_transform", valid)]) }
    }
}
