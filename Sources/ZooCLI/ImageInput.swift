import ArgumentParser
import FoundationEssentials
import ZooCore
import ZooImage
import ZooModels
import ZooOps

extension EvaluationTransform.Interpolation: ExpressibleByArgument {}

/// How photos become a model's input: torchvision's evaluation transform of the model's weights,
/// each part of which the user may override.
struct TransformOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: "Resize the shorter side to N pixels (default: the model's weights' transform).")
    var resize: Int?
    @Option(parsing: .unconditional, help: "Center-crop N×N pixels (default: the model's).")
    var crop: Int?
    @Option(help: "Resampling filter, as PIL does it (default: the model's).")
    var interpolation: EvaluationTransform.Interpolation?
    @Option(help: "Per-channel mean subtracted after scaling to [0, 1]: R,G,B (default: the model's, ImageNet's 0.485,0.456,0.406).", transform: parseTriple)
    var mean: [Float]?
    @Option(help: "Per-channel standard deviation divided by: R,G,B (default: the model's, ImageNet's 0.229,0.224,0.225).", transform: parseTriple)
    var std: [Float]?
    @Flag(help: "Turn each photo upright by its EXIF orientation first, as PIL's ImageOps.exif_transpose does (torchvision's pipeline does not: off by default).")
    var exifTranspose = false

    /// Larger sides than this are refused (a 16k crop is already a 3 GiB batch of 1).
    static let maxSide = 16384

    func validate() throws {
        try requireAtLeast(1, resize, "--resize")
        try requireAtLeast(1, crop, "--crop")
        if let resize, resize > Self.maxSide { throw ValidationError("--resize must be at most \(Self.maxSide), got \(resize)") }
        if let crop, crop > Self.maxSide { throw ValidationError("--crop must be at most \(Self.maxSide), got \(crop)") }
        if let std, std.contains(where: { $0 == 0 }) { throw ValidationError("--std must not be 0") }
    }

    /// True when any part of the transform is given.
    var overrides: Bool { resize != nil || crop != nil || interpolation != nil || mean != nil || std != nil }

    /// `base` with the parts given on the command line replaced.
    func applied(to base: EvaluationTransform) -> EvaluationTransform {
        EvaluationTransform(resize: resize ?? base.resize, crop: crop ?? base.crop, interpolation ?? base.interpolation,
                            mean: mean ?? base.mean, std: std ?? base.std)
    }
}

/// "0.5,0.5,0.5" → three finite floats.
func parseTriple(_ text: String) throws -> [Float] {
    // Through Double, as torch rounds a Python float to float32 (a direct parse can differ by an ulp).
    let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { Double(trimmed($0)) }
    guard parts.count == 3, parts.allSatisfy({ $0.map { Float($0).isFinite } == true }) else {
        throw ValidationError("expected three numbers R,G,B, got '\(text.escapedForTerminal)'")
    }
    return parts.map { Float($0!) }
}

/// `text` without the white space around it.
private func trimmed(_ text: Substring) -> Substring {
    var text = text
    while text.first?.isWhitespace == true { text.removeFirst() }
    while text.last?.isWhitespace == true { text.removeLast() }
    return text
}

/// The transform photos get for a model, and a phrase saying where it came from.
struct ChosenTransform {
    let transform: EvaluationTransform
    let origin: String

    /// The transform for `architecture`'s weights; for a graph with no architecture (ONNX), the one
    /// `recorded` in its file, else ImageNet's usual one scaled to the graph's fixed square input
    /// (crop = its side, resize = side / 0.875, torchvision's ratio: 224 → 256, 299 → 342), or
    /// Resize(256) / CenterCrop(224) when the size is not fixed. `options` override each part.
    init(architecture: Architecture?, graph: Graph?, recorded: RecordedTransform? = nil, options: TransformOptions) throws {
        let base: EvaluationTransform
        var origin: String
        if let architecture {
            base = architecture.transform
            origin = "\(architecture.name)'s weights"
        } else if let recorded {
            base = recorded.transform
            origin = recorded.origin
        } else if let graph {
            let input = try imageInput(of: graph)
            if let h = input.shape[2].value, let w = input.shape[3].value, h == w {
                base = EvaluationTransform(resize: Int((Double(h) / 0.875).rounded()), crop: h)
                origin = "ImageNet's usual for a \(h)×\(w) input; the file records none"
            } else {
                base = .standard
                origin = "ImageNet's usual; the file records none, nor a fixed input size"
            }
        } else {
            base = .standard
            origin = "torchvision's usual"
        }
        if options.overrides { origin += ", overridden" }
        transform = options.applied(to: base)
        self.origin = origin
    }
}

/// A float32 as JSON with its shortest decimal (0.485, not 0.48500001430511475).
func shortest(_ value: Float) -> JSON { .double(Double("\(value)") ?? Double(value)) }

/// The graph's one image input, [N, 3, H, W]; a user error when it has none such.
func imageInput(of graph: Graph) throws -> ValueInfo {
    guard graph.inputs.count == 1 else {
        throw UserError(message: "the model takes \(graph.inputs.count) inputs (\(quoted(graph.inputs.map(\.name)))): photos make one [N, 3, H, W] input")
    }
    let input = graph.inputs[0]
    guard input.shape.count == 4, input.shape[1].value == 3, input.dtype.isFloatingPoint else {
        throw UserError(message: "the model's input '\(input.name)' is \(input): photos make [N, 3, H, W] float")
    }
    return input
}

/// True when `path` names a photo rather than an array: a .jpg / .jpeg / .png name, or JPEG or PNG
/// magic at its start (so that a photo named x.bin is still one, and a broken x.jpg says what is
/// wrong with it as an image).
func isImageFile(_ path: String) -> Bool {
    let name = path.split(separator: "/").last ?? ""
    let ext = name.dropFirst().contains(".") ? String(name.split(separator: ".").last ?? "").lowercased() : ""
    if ["jpg", "jpeg", "png"].contains(ext) { return true }
    guard let head = readHead(path, count: 8) else { return false }
    return startsAsJPEGOrPNG(head)
}

/// Photos decoded and prepared for a model: the batch [N, 3, crop, crop] float32 and what each file held.
struct ImageBatch {
    let files: [String]
    let decoded: [DecodedImage]
    let tensor: Tensor
    let transform: ChosenTransform

    /// Decodes each file (RGB as PIL's convert("RGB")), turns it upright when asked, and applies the
    /// transform, one photo at a time so that only one full-size photo is in memory.
    init(files: [String], transform: ChosenTransform, exifTranspose: Bool) throws {
        let t = transform.transform
        let perImage = 3 * t.crop * t.crop
        guard let total = Tensor.checkedCount([files.count, perImage]), total <= 1 << 28 else {
            throw UserError(message: "\(files.count) photos at \(t.crop)×\(t.crop) make a batch over 2^28 values (1 GiB): give fewer")
        }
        var values = [Float](repeating: 0, count: total)
        var decoded: [DecodedImage] = []
        for (i, file) in files.enumerated() {
            let image: DecodedImage
            do { image = try decodeImage(path: file) } catch { throw UserError(message: error.description) }
            var rgb = image.rgb
            if exifTranspose, let orientation = image.exifOrientation, orientation != 1 {
                rgb = applyingEXIFOrientation(rgb, orientation)
            }
            let x = t.tensor([rgb]).floats()
            values.replaceSubrange(i * perImage..<(i + 1) * perImage, with: x)
            decoded.append(image)
        }
        self.files = files
        self.decoded = decoded
        self.tensor = Tensor(floats: values, shape: [files.count, 3, t.crop, t.crop])
        self.transform = transform
    }

    /// "chelsea.jpg: JPEG 451×300 RGB 8-bit" per file.
    var fileLines: [String] { zip(files, decoded).map { "\($0.escapedForTerminal): \($1.summary)" } }

    var transformLine: String { "transform: \(transform.transform) (\(transform.origin))" }

    var json: JSON {
        let t = transform.transform
        return .object([
            ("transform", .object([("resize", .int(t.resize)), ("crop", .int(t.crop)), ("interpolation", .string(t.interpolation.rawValue)),
                                   ("mean", .array(t.mean.map(shortest))), ("std", .array(t.std.map(shortest))),
                                   ("origin", .string(transform.origin))])),
            ("images", .array(zip(files, decoded).map { file, image in
                .object([("file", .string(file)), ("format", .string(image.format.rawValue)), ("mode", .string(image.mode)),
                         ("bit_depth", .int(image.bitDepth)), ("width", .int(image.rgb.width)), ("height", .int(image.rgb.height)),
                         ("exif_orientation", image.exifOrientation.map(JSON.int) ?? .null)])
            })),
        ])
    }
}
