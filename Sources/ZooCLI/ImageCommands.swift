import ArgumentParser
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import ZooCore
import ZooImage
import ZooModels
import ZooOps
import ZooRuntime

struct Preprocess: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Turn photos into the batch tensor a model takes, as torchvision's transforms do.",
        discussion: """
        JPEG and PNG photos (any PNG colour type and bit depth) become RGB as PIL's \
        convert("RGB") makes them, then go through the evaluation transform of the model's \
        published weights: resize the shorter side (PIL's antialiased filters), center-crop, scale \
        to [0, 1], normalize. The .npy written, [N, 3, crop, crop] float32, is what zoo run feeds \
        the model for the same photos. The transform is the --model's (a state dict's \
        architecture; for an ONNX graph the one its file records, as zoo's own do, else \
        ImageNet's usual scaled to its input size) or --arch's, else Resize(256) / \
        CenterCrop(224); the options override each part.
        """
    )

    @Argument(help: "JPEG or PNG files, in batch order.")
    var images: [String]
    @Option(name: .shortAndLong, help: "Output .npy file (written atomically; - for standard output).")
    var output: String
    @Option(help: "Take the transform of this model's weights (a .pth/.safetensors state dict or .onnx).")
    var model: String?
    @Option(help: "Take the transform of this architecture's weights (see zoo models).")
    var arch: String?
    @OptionGroup var transformOptions: TransformOptions
    @OptionGroup var printing: OutputOptions

    func validate() throws {
        guard !images.isEmpty else { throw ValidationError("give at least one image") }
        if model != nil && arch != nil { throw ValidationError("--model and --arch both name the transform: choose one") }
    }

    func run() throws {
        let transform: ChosenTransform
        if let model {
            let loaded = try loadModel(model, architecture: nil, options: try BuildFlags.parse([]))
            transform = try ChosenTransform(architecture: loaded.model?.architecture, graph: loaded.graph, recorded: loaded.recordedTransform, options: transformOptions)
        } else {
            transform = try ChosenTransform(architecture: try parseArchitecture(arch), graph: nil, options: transformOptions)
        }
        try refuseOverwriting([output], inputs: images + (model.map { [$0] } ?? []))
        let batch = try ImageBatch(files: images, transform: transform, exifTranspose: transformOptions.exifTranspose)
        do { try NumPy.write(batch.tensor, to: output) } catch { throw UserError(error) }
        let text = (batch.fileLines + [batch.transformLine, "\(output.escapedForTerminal): \(batch.tensor.shape) float32"]).joined(separator: "\n")
        if isStandardOutput(output) {
            if !printing.quiet { writeStandardError(text + "\n") }
            return
        }
        printing.emit(text, json: batch.json.adding("output", .object([("file", .string(output)), ("shape", .array(batch.tensor.shape.map(JSON.int)))])))
    }
}

struct Classify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Name what is in photos: a classifier's top classes with their probabilities.",
        discussion: """
        Each photo is prepared as zoo preprocess does it for the model, the model runs on the \
        batch, and the softmax of its logits (taken as they are when the graph ends in Softmax) \
        gives each photo's top classes, named with ImageNet-1k's class names as torchvision \
        publishes them when the model has 1,000 classes.
        """
    )

    @Argument(help: "The classifier: .onnx, or a .pth/.safetensors state dict of a zoo architecture.")
    var model: String
    @Argument(help: "JPEG or PNG files.")
    var images: [String]
    @Option(parsing: .unconditional, help: "How many classes to list per photo.")
    var top: Int = 5
    @Option(help: "Architecture of a state dict, when detection is not wanted (see zoo models).")
    var arch: String?
    @OptionGroup var build: BuildFlags
    @OptionGroup var transformOptions: TransformOptions
    @Option(parsing: .unconditional, help: "Worker threads (default: all cores).")
    var threads: Int?
    @OptionGroup var printing: OutputOptions

    /// Photos run through the model this many at a time.
    static let chunk = 16

    func validate() throws {
        guard !images.isEmpty else { throw ValidationError("give at least one image") }
        try requireAtLeast(1, top, "--top")
        try requireAtLeast(1, threads, "--threads")
    }

    func run() throws {
        var loaded = try loadModel(model, architecture: arch, options: build)
        let transform = try ChosenTransform(architecture: loaded.model?.architecture, graph: loaded.graph, recorded: loaded.recordedTransform, options: transformOptions)
        let t = transform.transform
        if let resized = loaded.resized(side: t.crop) { loaded = resized }
        let executor = try makeExecutor(loaded, threads: threads)
        let inputName = try imageInput(of: loaded.graph).name, outputName = loaded.graph.outputs[0]
        let endsInSoftmax = loaded.graph.nodes.last { $0.outputs.contains(outputName) }?.op.name == "Softmax"
        var results: [(file: String, image: DecodedImage, top: [(index: Int, probability: Double)])] = []
        var classes = 0
        for start in stride(from: 0, to: images.count, by: Self.chunk) {
            let files = Array(images[start..<min(start + Self.chunk, images.count)])
            let batch = try ImageBatch(files: files, transform: transform, exifTranspose: transformOptions.exifTranspose)
            let y = try execute(executor, [inputName: batch.tensor], path: model)[outputName]!
            let rows = try scores(y, files: files)
            classes = rows.first?.count ?? 0
            for (k, row) in rows.enumerated() {
                let probabilities = endsInSoftmax ? row : softmax(row)
                let ranked = probabilities.indices.sorted { probabilities[$0] > probabilities[$1] || (probabilities[$0] == probabilities[$1] && $0 < $1) }
                results.append((files[k], batch.decoded[k], ranked.prefix(top).map { ($0, probabilities[$0]) }))
            }
        }
        let names = classes == imageNetClasses.count ? imageNetClasses : nil
        func label(_ index: Int) -> String { names?[index] ?? "class \(index)" }
        var lines = ["model:     \(model.escapedForTerminal): \(loaded.kind.escapedForTerminal)" + (names == nil ? "" : "; ImageNet-1k classes"),
                     "transform: \(t) (\(transform.origin))"]
        for result in results {
            lines.append("\(result.file.escapedForTerminal): \(result.image.summary)")
            for (rank, entry) in result.top.enumerated() {
                lines.append("  \(rank + 1). " + (String(format1: entry.probability * 100, digits: 2) + "%").leftPadding(7) + "  \(label(entry.index)) (\(entry.index))")
            }
        }
        printing.emit(lines.joined(separator: "\n"), json: .object([
            ("model", loaded.json),
            ("transform", .string(t.description)),
            ("images", .array(results.map { result in
                .object([("file", .string(result.file)),
                         ("top", .array(result.top.map { entry in
                             .object([("index", .int(entry.index)), ("label", .string(label(entry.index))), ("probability", .double(entry.probability))])
                         }))])
            })),
        ]))
    }

    /// The model's output as one row of class scores per photo: [N, C] (or [N, C, 1, 1]).
    private func scores(_ y: Tensor, files: [String]) throws -> [[Double]] {
        let shape = y.shape, batch = files.count
        guard shape.first == batch, shape.count >= 2, shape.dropFirst(2).allSatisfy({ $0 == 1 }), shape[1] >= 1 else {
            throw UserError(message: "\(model.escapedForTerminal): the output is \(shape), not one row of class scores per photo [N, classes]")
        }
        let values = y.doubles(), classes = shape[1]
        if let bad = values.firstIndex(where: { !$0.isFinite }) {
            throw UserError(message: "\(model.escapedForTerminal): the output for \(files[bad / classes].escapedForTerminal) holds \(values[bad]): no class can be named")
        }
        return (0..<batch).map { Array(values[$0 * classes..<($0 + 1) * classes]) }
    }

    /// torch.softmax in Double: exp(x - max) / sum.
    private func softmax(_ row: [Double]) -> [Double] {
        let top = row.max() ?? 0
        let e = row.map { Glibc.exp($0 - top) }
        let sum = e.reduce(0, +)
        return e.map { $0 / sum }
    }
}
