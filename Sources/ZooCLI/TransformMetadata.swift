import FoundationEssentials
import ZooCore
import ZooModels

/// The evaluation transform of a model's weights, recorded in the ONNX files zoo writes from a
/// state dict (`ModelProto.metadata_props`), so that photos get the right one from the file alone:
///
///     zoo.architecture          efficientnet_b3
///     zoo.evaluation_transform  {"resize": 320, "crop": 300, "interpolation": "bicubic",
///                                "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
///
/// The transform is one JSON object of exactly these five members: the sizes as integers, the
/// interpolation as one of PIL's six filter names (`EvaluationTransform.Interpolation`), mean and
/// std as three numbers each, written as the shortest decimals of their float32 values and read
/// back through Double, as torch reads Python floats (and as --mean / --std are read).
///
/// Reading is strict — at most `maxValueBytes`, sizes 1…`TransformOptions.maxSide`, finite mean
/// and std, no std of 0, no other member, the key once — because a transform half understood would
/// prepare photos wrongly without a word. A malformed value is not an error: the file is still a
/// runnable model, so `loadModel` warns once, naming the file, and the photo commands fall back to
/// their guess for a graph (`ChosenTransform`).
enum TransformMetadata {
    static let architectureKey = "zoo.architecture"
    static let transformKey = "zoo.evaluation_transform"
    /// The longest transform value read (a real one is about 110 bytes).
    static let maxValueBytes = 4096
    /// The longest architecture name quoted in messages; a longer one is not quoted.
    static let maxArchitectureName = 100

    /// The entries zoo writes for `architecture`'s weights.
    static func props(for architecture: Architecture) -> [(key: String, value: String)] {
        [(architectureKey, architecture.name), (transformKey, encode(architecture.transform))]
    }

    /// `{"resize": 256, "crop": 224, "interpolation": "bilinear", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}`.
    static func encode(_ t: EvaluationTransform) -> String {
        func numbers(_ values: [Float]) -> String { "[" + values.map { "\($0)" }.joined(separator: ", ") + "]" }
        return "{\"resize\": \(t.resize), \"crop\": \(t.crop), \"interpolation\": \"\(t.interpolation.rawValue)\", "
            + "\"mean\": \(numbers(t.mean)), \"std\": \(numbers(t.std))}"
    }

    /// The transform `props` record, with where it came from; nil when they record none.
    /// - Throws: `TransformMetadataError` saying what is wrong with a value that is there.
    static func recorded(in props: [(key: String, value: String)]) throws(TransformMetadataError) -> RecordedTransform? {
        let values = props.filter { $0.key == transformKey }.map(\.value)
        guard let value = values.first else { return nil }
        guard values.count == 1 else { throw TransformMetadataError("appears \(values.count) times") }
        let transform = try decode(value)
        let names = props.filter { $0.key == architectureKey }.map(\.value)
        if names.count == 1, let name = names.first, !name.isEmpty, name.unicodeScalars.count <= maxArchitectureName {
            return RecordedTransform(transform: transform, origin: "\(name.escapedForTerminal)'s weights, recorded in the file")
        }
        return RecordedTransform(transform: transform, origin: "recorded in the file")
    }

    /// The transform in a `zoo.evaluation_transform` value.
    /// - Throws: `TransformMetadataError` naming the member at fault.
    static func decode(_ text: String) throws(TransformMetadataError) -> EvaluationTransform {
        guard text.utf8.count <= maxValueBytes else {
            throw TransformMetadataError("is \(text.utf8.count) bytes long (at most \(maxValueBytes) are read)")
        }
        let stored: Stored
        do {
            stored = try JSONDecoder().decode(Stored.self, from: Data(text.utf8))
        } catch let error as TransformMetadataError {
            throw error
        } catch let DecodingError.keyNotFound(key, _) {
            throw TransformMetadataError("has no '\(key.stringValue)'")
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
            guard let member = context.codingPath.first?.stringValue else { throw TransformMetadataError(notTransform) }
            throw TransformMetadataError("has a '\(member)' of the wrong type")
        } catch let DecodingError.dataCorrupted(context) where !context.codingPath.isEmpty {
            throw TransformMetadataError("has a '\(context.codingPath[0].stringValue)' of the wrong type")
        } catch {
            // Not JSON, or a number out of its type's range (232.5 for an integer): JSONDecoder says
            // "not valid JSON" for both.
            throw TransformMetadataError(notTransform)
        }
        let sides = 1...TransformOptions.maxSide
        for (member, size) in [("resize", stored.resize), ("crop", stored.crop)] where !sides.contains(size) {
            throw TransformMetadataError("has '\(member)' \(size), not in \(sides.lowerBound)…\(sides.upperBound)")
        }
        guard let interpolation = EvaluationTransform.Interpolation(rawValue: stored.interpolation) else {
            throw TransformMetadataError("has an unknown 'interpolation' '\(stored.interpolation)' (zoo knows "
                + EvaluationTransform.Interpolation.allCases.map(\.rawValue).joined(separator: ", ") + ")")
        }
        let mean = stored.mean.map(Float.init), std = stored.std.map(Float.init)
        for (member, values) in [("mean", mean), ("std", std)] where values.count != 3 || !values.allSatisfy(\.isFinite) {
            throw TransformMetadataError("has a '\(member)' that is not three finite float32 numbers")
        }
        guard !std.contains(0) else { throw TransformMetadataError("has a 'std' of 0") }
        return EvaluationTransform(resize: stored.resize, crop: stored.crop, interpolation, mean: mean, std: std)
    }

    private static let notTransform = "is not the JSON object zoo writes (resize, crop, interpolation, mean, std)"

    /// The JSON object, exactly its five members.
    private struct Stored: Decodable {
        let resize: Int, crop: Int, interpolation: String, mean: [Double], std: [Double]

        private enum CodingKeys: String, CodingKey, CaseIterable { case resize, crop, interpolation, mean, std }

        private struct AnyKey: CodingKey {
            let stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        init(from decoder: any Decoder) throws {
            let known = Set(CodingKeys.allCases.map(\.rawValue))
            if let other = try decoder.container(keyedBy: AnyKey.self).allKeys.first(where: { !known.contains($0.stringValue) }) {
                throw TransformMetadataError("has a member '\(other.stringValue)' zoo does not know")
            }
            let members = try decoder.container(keyedBy: CodingKeys.self)
            resize = try members.decode(Int.self, forKey: .resize)
            crop = try members.decode(Int.self, forKey: .crop)
            interpolation = try members.decode(String.self, forKey: .interpolation)
            mean = try members.decode([Double].self, forKey: .mean)
            std = try members.decode([Double].self, forKey: .std)
        }
    }
}

/// An evaluation transform an ONNX file records, and where it came from, for messages:
/// "efficientnet_b3's weights, recorded in the file".
struct RecordedTransform {
    let transform: EvaluationTransform
    let origin: String
}

/// Why a `zoo.evaluation_transform` value was not used: "metadata 'zoo.evaluation_transform' has no 'crop'".
struct TransformMetadataError: Error, CustomStringConvertible {
    let reason: String
    init(_ reason: String) { self.reason = reason }
    var description: String { "metadata '\(TransformMetadata.transformKey)' \(reason)" }
}
