import ArgumentParser
import FoundationEssentials
import ONNXFormat
import Safetensors
import TorchFormat
import ZooCore
import ZooOps
import ZooModels
import ZooRuntime
#if canImport(Glibc)
import Glibc
#endif

/// The file formats zoo reads and writes. A file zoo reads is told apart by its bytes (`init(reading:)`:
/// `.pth.tar`, `.ckpt`, no extension are fine); a file it writes by its extension (`init(path:)`).
enum FileFormat: String {
    case torch, onnx, safetensors

    static let extensions = ".pth, .pt, .bin, .onnx or .safetensors"

    /// The format `path`'s extension names, nil for any other (checked with a message by `init(path:)`).
    init?(extensionOf path: String) { try? self.init(path: path) }

    /// The format of a file zoo reads: by content when the file exists (nil-free), else by extension.
    static func of(input path: String) -> FileFormat? { (try? FileFormat(reading: path)) ?? FileFormat(extensionOf: path) }

    /// The format `path`'s extension names; a directory or an unknown extension is a user error.
    init(path: String) throws {
        var info = stat()
        if stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR {
            throw UserError(message: "\(path): is a directory, not a model file (\(FileFormat.extensions))")
        }
        switch FileFormat.extensionName(path) {
        case "pth", "pt", "bin": self = .torch
        case "onnx": self = .onnx
        case "safetensors": self = .safetensors
        case "":
            throw UserError(message: "\(path): no file extension: zoo names the format it writes by it (\(FileFormat.extensions))")
        case let ext:
            throw UserError(message: "\(path): unsupported extension '.\(ext)' (supported: .pth, .pt, .bin, .onnx, .safetensors)")
        }
    }

    /// The format of the file at `path`, read from its first bytes: a PyTorch checkpoint (zip, tar or
    /// legacy pickle), safetensors (an 8-byte header length, then '{'), or an ONNX ModelProto (a
    /// protobuf field of ModelProto first). Any extension, or none; an extension naming another of
    /// zoo's formats is refused, naming both ("this .pth is an ONNX model").
    init(reading path: String) throws {
        var info = stat()
        guard stat(path, &info) == 0 else { throw UserError(message: "\(path): cannot open: \(String(cString: strerror(errno)))") }
        if info.st_mode & S_IFMT == S_IFDIR { throw UserError(message: "\(path): is a directory, not a model file (\(FileFormat.extensions))") }
        guard let head = readHead(path, count: 512) else {
            throw UserError(message: "\(path): cannot open: \(String(cString: strerror(errno)))")
        }
        guard let found = FileFormat.detect(head, fileSize: Int(info.st_size)) else {
            throw UserError(message: "\(path): not a model file zoo reads: not a PyTorch checkpoint (zip, tar or pickle), "
                + "safetensors or ONNX file by its first bytes")
        }
        if let named = FileFormat(extensionOf: path), named != found {
            throw UserError(message: "\(path): this .\(FileFormat.extensionName(path)) is \(found.noun) (by its bytes): "
                + "give it the extension .\(found.defaultExtension)")
        }
        self = found
    }

    /// The format `head` (a file's first bytes) holds, nil when none.
    static func detect(_ head: [UInt8], fileSize: Int) -> FileFormat? {
        let detected = head.withUnsafeBytes { Checkpoint.detectFormat($0) }
        if detected != nil { return .torch }
        if head.count >= 9, head[8] == UInt8(ascii: "{") {
            let length = head[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
            if length >= 2, length <= UInt64(fileSize - 8) { return .safetensors }
        }
        // ModelProto's fields 1–8, 14, 20, 25 as written first: ir_version, producer_name/version,
        // domain, model_version, doc_string, graph, opset_import, metadata_props, training_info, functions.
        if let first = head.first, [0x08, 0x12, 0x1a, 0x22, 0x28, 0x32, 0x3a, 0x42, 0x72, 0xa2, 0xca].contains(first) { return .onnx }
        return nil
    }

    /// The lower-cased last extension of `path`'s file name, "" when none.
    static func extensionName(_ path: String) -> String {
        path.split(separator: "/").last.flatMap { name in name.contains(".") ? name.split(separator: ".").last : nil }
            .map { String($0).lowercased() } ?? ""
    }

    var noun: String {
        switch self {
        case .torch: "a PyTorch checkpoint"
        case .onnx: "an ONNX model"
        case .safetensors: "a safetensors file"
        }
    }

    var defaultExtension: String {
        switch self {
        case .torch: "pth"
        case .onnx: "onnx"
        case .safetensors: "safetensors"
        }
    }
}

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert between PyTorch checkpoints, ONNX and safetensors, then check the result.",
        discussion: """
        The input's format is told by its bytes (PyTorch zip, legacy or tar; ONNX; safetensors — \
        any extension or none, .pth.tar and .ckpt included); the output's by its extension: \
        .pth/.pt/.bin (a zip checkpoint), .onnx, .safetensors. Directions: pth → pth (the whole object, byte-identical to torch.save; \
        with --key, that state dict alone), pth ⇄ safetensors, pth/safetensors → onnx (needs an \
        architecture: detected from the state dict or --arch), onnx → pth/safetensors (the weights \
        by name — state-dict keys when the graph came from a torchvision layout; constants folded \
        into the graph, such as a Reshape's shape, are left out and listed), onnx → onnx (the graph \
        zoo imports, written again at --opset, default the source's within 13–21). Nothing is dropped \
        silently: a checkpoint holding more than its state dict (optimizer state, epoch) or \
        safetensors metadata converts to a format that cannot hold it only with --drop-extra, and \
        the summary lists what was left out. The result is written into a staging folder beside \
        the output and, unless --no-verify, read back: every tensor is compared bit for bit and, \
        when both sides are runnable models, both run on a generated input and the parity line is \
        printed. Only a result that passes moves over the output: a failure never leaves a file \
        behind or damages an existing one.
        """
    )

    @Argument(help: "Input file.")
    var input: String
    @Argument(help: "Output file.")
    var output: String
    @Option(help: "Architecture for the model graph when writing .onnx from a state dict (see zoo models); detected by default.")
    var arch: String?
    @OptionGroup var build: BuildFlags
    @Option(parsing: .unconditional, help: "ONNX opset to write (13–21; default 17). Only for an .onnx output.")
    var opset: Int?
    @Flag(help: "Write ONNX initializers to <output>.data (automatic past 2 GiB). Only for an .onnx output.")
    var externalData = false
    @Option(help: "Entry holding the state dict in a nested PyTorch checkpoint (e.g. model, ema.model).")
    var key: String?
    @Flag(help: "Write the state dict even when the input holds more (optimizer state, epoch, metadata) that the output format cannot keep; the summary lists what was left out.")
    var dropExtra = false
    @Flag(help: "Skip reading the result back and checking it.")
    var noVerify = false
    @OptionGroup var printing: OutputOptions

    func validate() throws {
        let from = FileFormat.of(input: input), to = FileFormat(extensionOf: output)
        if opset != nil, to != .onnx { throw ValidationError("--opset applies only to an .onnx output, not \(output)") }
        if let opset, !ONNXWriteOptions.supportedOpsets.contains(opset) {
            throw ValidationError("--opset \(opset) is not one zoo writes (\(ONNXWriteOptions.supportedOpsets.lowerBound)–\(ONNXWriteOptions.supportedOpsets.upperBound))")
        }
        if externalData, to != .onnx { throw ValidationError("--external-data applies only to an .onnx output, not \(output)") }
        if key != nil, from != .torch { throw ValidationError("--key applies only to a PyTorch checkpoint input, not \(input)") }
        if arch != nil, from == .onnx || to != .onnx {
            throw ValidationError("--arch applies only when writing .onnx from a state dict (.pth or .safetensors)")
        }
        if let flag = build.flag, from == .onnx || to != .onnx {
            throw ValidationError("\(flag) applies only when writing .onnx from a state dict (.pth or .safetensors)")
        }
    }

    /// What a conversion produced: for the summary line and --json.
    struct Outcome {
        var tensors = 0
        var verified = false
        /// The two models' parity when both sides ran.
        var parity: ParityReport?
        var architecture: String?
        /// Whatever the input held that the output does not: (name, what it is, why).
        var leftOut: [(name: String, what: String, reason: String)] = []
        /// "bit-identical" or "read back bit-identical to <input>" — how the tensors were checked.
        var check = ""
        /// The opset written (an .onnx output), and the source's when it was ONNX too.
        var opset: Int?
        var sourceOpset: Int?
    }

    func run() throws {
        let from = try FileFormat(reading: input), to = try FileFormat(path: output)
        try refuseOverwriting(to == .onnx ? [output, output + ".data"] : [output], inputs: [input])
        let streamed = isStream(output)
        if streamed, !noVerify {
            throw UserError(message: "\(output): not a regular file (a pipe, device or standard output): convert cannot read it back to verify; add --no-verify")
        }
        if printing.json, isStandardOutput(output) {
            throw UserError(usage: "--json prints to standard output, where \(output) writes the converted file: choose one")
        }
        // The result is written into a staging folder under the output's name and moves over the
        // output only once verified: a failed check leaves no file behind and an existing one as it was.
        let staging: StagingFolder?
        do { staging = streamed ? nil : try StagingFolder(for: output, suffixes: to == .onnx ? [".data"] : []) } catch {
            throw UserError(error)
        }
        let outcome: Outcome
        do {
            outcome = try convert(from, to, writing: staging?.path ?? output)
        } catch let error as UserError where error.isUsage {
            staging?.discard()
            throw error
        } catch {
            staging?.discard()
            throw UserError(message: staging?.mentioningDestination("\(error)") ?? "\(error)")
        }
        do { try staging?.commit() } catch { throw UserError(error) }
        if isStandardOutput(output) {
            // The file went to standard output: the summary goes to standard error.
            if !printing.quiet { writeStandardError(summary(outcome) + "\n") }
            return
        }
        printing.emit(summary(outcome), json: json(outcome, from, to))
    }

    private func summary(_ o: Outcome) -> String {
        var line = "wrote \(output.escapedForTerminal)"
        if let written = o.opset {
            let opsets = o.sourceOpset.map { $0 == written ? "opset \(written)" : "opset \($0) → \(written)" } ?? "opset \(written)"
            line += " (" + (o.architecture.map { "\($0), " } ?? "") + opsets + ")"
        }
        if o.tensors > 0 { line += ": \(o.tensors) tensors" }
        if !o.verified {
            line += " (not verified)"
        } else {
            if !o.check.isEmpty { line += ", \(o.check)" }
            if let parity = o.parity {
                line += o.check.isEmpty || FileFormat.of(input: input) == .onnx
                    ? "; parity with \(input.escapedForTerminal) on a generated batch of \(parity.rows): "
                    : "; \(o.architecture ?? "the model") runs: "
                line += describe(parity)
            }
        }
        var reasons: [String] = []
        for entry in o.leftOut where !reasons.contains(entry.reason) { reasons.append(entry.reason) }
        for reason in reasons {
            line += "\nleft out (\(reason)): " + o.leftOut.filter { $0.reason == reason }
                .map { "\($0.name.escapedForTerminal) (\($0.what.escapedForTerminal))" }.joined(separator: ", ")
        }
        return line
    }

    private func json(_ o: Outcome, _ from: FileFormat, _ to: FileFormat) -> JSON {
        .object([
            ("input", .string(input)), ("output", .string(output)), ("from", .string(from.rawValue)), ("to", .string(to.rawValue)),
            ("opset", o.opset.map(JSON.int) ?? .null), ("architecture", o.architecture.map(JSON.string) ?? .null),
            ("tensors", o.tensors > 0 ? .int(o.tensors) : .null), ("verified", .bool(o.verified)),
            ("bit_identical", .bool(o.verified && !o.check.isEmpty)),
            ("parity", o.parity.map { r in
                .object([("max_abs_diff", .double(r.maxAbsDifference)), ("relative_diff", .double(r.relativeDifference)),
                         ("cosine", .double(r.cosine)), ("rows", .int(r.rows)), ("top5_agree", r.top5Agreement.map(JSON.int) ?? .null)])
            } ?? .null),
            ("left_out", .array(o.leftOut.map { .object([("name", .string($0.name)), ("what", .string($0.what)), ("reason", .string($0.reason))]) })),
        ])
    }

    /// Reads the input, writes the result to `path` and checks it.
    private func convert(_ from: FileFormat, _ to: FileFormat, writing path: String) throws -> Outcome {
        printing.progress("reading \(input)")
        switch (from, to) {
        case (.torch, .torch) where key == nil:
            return try torchToTorch(writing: path)
        case (.onnx, .onnx):
            return try reexport(writing: path)
        case (_, .onnx):
            let source = try stateDictSource(for: to)
            let model = try sourceModel(source.tensors)
            printing.progress("writing \(output) (opset \(opset ?? 17))")
            let options = ONNXWriteOptions(opset: opset ?? 17, externalData: externalData,
                                           metadataProps: TransformMetadata.props(for: model.architecture))
            do { try ONNX.save(model.graph, to: path, options: options) } catch { throw UserError(message: "\(error)") }
            var outcome = Outcome(tensors: source.tensors.count, architecture: model.architecture.description, leftOut: source.leftOut)
            outcome.opset = opset ?? 17
            if !noVerify {
                printing.progress("verifying: running both models")
                let report = try parity(model.graph, try onnxGraph(path))
                outcome.verified = true
                outcome.parity = report
            }
            return outcome
        case (.onnx, _):
            let source = try onnxSource()
            try write(source.tensors, metadata: [:], as: to, to: path)
            var outcome = try verifyTensors(source.tensors, sourceGraph: source.graph, written: path, as: to)
            outcome.leftOut = source.leftOut
            return outcome
        case (.torch, _), (.safetensors, _):
            let source = try stateDictSource(for: to)
            try write(source.tensors, metadata: source.metadata, as: to, to: path)
            var outcome = try verifyTensors(source.tensors, sourceGraph: nil, written: path, as: to)
            outcome.leftOut = source.leftOut
            return outcome
        }
    }

    /// ONNX → ONNX: the graph zoo imported, written again at --opset (default: the source's opset
    /// brought into 13–21), initializer names and metadata_props kept; verified by comparing the
    /// initializers bit for bit and the metadata, and running both graphs.
    private func reexport(writing path: String) throws -> Outcome {
        let source: ONNXModel
        do { source = try ONNX.load(path: input) } catch { throw UserError(error) }
        let supported = ONNXWriteOptions.supportedOpsets
        let target = opset ?? min(max(source.opset, supported.lowerBound), supported.upperBound)
        printing.progress("writing \(output) (opset \(target))")
        do {
            try ONNX.save(source.graph, to: path, options: ONNXWriteOptions(opset: target, externalData: externalData,
                                                                             metadataProps: source.metadataProps))
        } catch { throw UserError(message: "\(error)") }
        var outcome = Outcome(tensors: source.graph.initializers.count)
        (outcome.opset, outcome.sourceOpset) = (target, source.opset)
        guard !noVerify else { return outcome }
        printing.progress("verifying: running both models")
        let written: ONNXModel
        do { written = try ONNX.load(path: path) } catch { throw UserError(error) }
        for (name, tensor) in source.graph.initializers where !(written.graph.initializer(name).map(tensor.isBitIdentical) ?? false) {
            throw UserError(message: "\(output): verification failed: initializer '\(name)' differs")
        }
        guard written.metadataProps.elementsEqual(source.metadataProps, by: ==) else {
            throw UserError(message: "\(output): verification failed: metadata_props differ")
        }
        let report = try parity(source.graph, written.graph)
        outcome.verified = true
        outcome.check = "initializers bit-identical"
        outcome.parity = report
        return outcome
    }

    private func torchToTorch(writing path: String) throws -> Outcome {
        do {
            let source = try Checkpoint.load(path: input)
            printing.progress("writing \(output)")
            try Checkpoint.save(source.root, to: path)
            guard !noVerify else { return Outcome(tensors: source.tensors.count) }
            printing.progress("verifying")
            let written = try Checkpoint.load(path: path)
            if let mismatch = Convert.firstMismatch(source.tensors, written.tensors) {
                throw UserError(message: "\(output): verification failed: \(mismatch)")
            }
            return Outcome(tensors: written.tensors.count, verified: true, check: "read back bit-identical to \(input.escapedForTerminal) (the whole object)")
        } catch let error as CheckpointError {
            throw UserError(error)
        }
    }

    /// The state dict of a .pth or .safetensors input, with what the output format `to` cannot keep:
    /// a checkpoint's entries besides its state dict; safetensors metadata (other than the `format`
    /// tag) unless the output is safetensors too. Refused, naming them, unless --drop-extra — or
    /// --key, which asks for that state dict alone.
    private func stateDictSource(for to: FileFormat) throws -> (tensors: [(name: String, tensor: Tensor)], metadata: [String: String],
                                                               leftOut: [(name: String, what: String, reason: String)]) {
        var extra: [(name: String, what: String)] = []
        var metadata: [String: String] = [:]
        let tensors: [(name: String, tensor: Tensor)]
        if try FileFormat(reading: input) == .safetensors {
            let file: SafetensorsFile
            do { file = try Safetensors.load(path: input) } catch { throw UserError(error) }
            tensors = stateDictOrder(file.tensors)
            if to == .safetensors {
                metadata = file.metadata
            } else {
                for (name, value) in file.metadata.sorted(by: { $0.key < $1.key }) where name != "format" {
                    extra.append(("metadata '\(name)'", "'\(value.count > 40 ? String(value.prefix(37)) + "..." : value)'"))
                }
            }
        } else {
            let checkpoint: Checkpoint
            let stateDict: StateDict
            do {
                checkpoint = try Checkpoint.load(path: input)
                stateDict = try checkpoint.stateDict(key: key)
            } catch { throw UserError(error) }
            tensors = stateDict.entries.map { ($0.name, $0.tensor.tensor) }
            extra = checkpoint.otherEntries(excluding: stateDict.key).map { ($0.key, Report.summary($0.value)) }
        }
        guard !extra.isEmpty else { return (tensors, metadata, []) }
        if !dropExtra && key == nil {
            let listed = extra.map { "\($0.name) (\($0.what))" }.joined(separator: ", ")
            throw UserError(usage: "\(input) holds more than a state dict — \(listed) — which \(output) cannot keep: "
                + "add --drop-extra to write the state dict alone" + (to == .torch ? "" : ", or convert to .pth to keep everything"))
        }
        return (tensors, metadata, extra.map { ($0.name, $0.what, key != nil && !dropExtra ? "outside --key" : "--drop-extra") })
    }

    /// The weights of the input model — every initializer except the constants the graph folds into
    /// its ops (a Reshape's shape), which are listed as left out, as its metadata_props are — and its
    /// graph for the parity run, from one parse. A model whose graph zoo cannot import still
    /// converts, unrun, every initializer kept.
    private func onnxSource() throws -> (tensors: [(name: String, tensor: Tensor)], graph: Graph?,
                                         leftOut: [(name: String, what: String, reason: String)]) {
        let proto: ONNXModelProto
        do { proto = try ONNX.open(path: input) } catch { throw UserError(error) }
        let metadata = proto.metadataProps.map {
            (name: "metadata '\($0.key)'", what: "'\($0.value.count > 40 ? String($0.value.prefix(37)) + "..." : $0.value)'",
             reason: "ONNX metadata, not weights")
        }
        do {
            let model = try ONNX.load(proto)
            let weights = model.initializers.filter { !model.graphConstants.contains($0.name) }
            let constants = model.initializers.filter { model.graphConstants.contains($0.name) }
                .map { (name: $0.name, what: "\($0.tensor.dtype.rawValue) \($0.tensor.shape)", reason: "graph constants, not weights") }
            return (weights, model.graph, constants + metadata)
        } catch {
            do { return (try ONNX.initializers(proto), nil, metadata) } catch { throw UserError(error) }
        }
    }

    private func sourceModel(_ tensors: [(name: String, tensor: Tensor)]) throws -> Model {
        try build.bind(tensors, architecture: try parseArchitecture(arch), path: input)
    }

    private func onnxGraph(_ path: String) throws -> Graph {
        do { return try ONNX.load(path: path).graph } catch { throw UserError(error) }
    }

    /// Writes named tensors as a state dict (`.pth`) or a safetensors file at `path`.
    private func write(_ tensors: [(name: String, tensor: Tensor)], metadata: [String: String], as format: FileFormat, to path: String) throws {
        guard !tensors.isEmpty else {
            throw UserError(message: "\(input): holds no tensors (no initializers or weights): there is no state dict to write")
        }
        printing.progress("writing \(output)")
        switch format {
        case .torch:
            let entries = tensors.map { entry -> (name: String, tensor: TorchTensor) in
                let dense = entry.tensor.contiguous()
                return (entry.name, TorchTensor(tensor: dense, source: TorchStorage(key: entry.name, dtype: dense.dtype, location: "cpu", storage: dense.storage)))
            }
            do { try Checkpoint.save(StateDict(entries: entries), to: path) } catch { throw UserError(error) }
        case .safetensors:
            do { try Safetensors.save(tensors, metadata: metadata, to: path) } catch { throw UserError(error) }
        case .onnx:
            fatalError("handled by convert(_:_:writing:)")
        }
    }

    /// Tensors read back from `written` (a .pth state dict or a .safetensors file: `format`) equal
    /// the source's bit for bit; when they bind to an architecture and the source was a graph, both
    /// also run and must agree.
    private func verifyTensors(_ source: [(name: String, tensor: Tensor)], sourceGraph: Graph?, written path: String,
                               as format: FileFormat) throws -> Outcome {
        guard !noVerify else { return Outcome(tensors: source.count) }
        printing.progress("verifying")
        let written: [(name: String, tensor: Tensor)]
        do {
            written = format == .torch ? try Checkpoint.load(path: path).stateDict().entries.map { ($0.name, $0.tensor.tensor) }
                : try Safetensors.load(path: path).tensors
        } catch { throw UserError(error) }
        let lookup = Dictionary(written.map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
        guard written.count == source.count else {
            throw UserError(message: "\(output): verification failed: \(source.count) tensors in, \(written.count) out")
        }
        for (name, tensor) in source where !(lookup[name].map(tensor.isBitIdentical) ?? false) {
            throw UserError(message: "\(output): verification failed: tensor '\(name)' differs")
        }
        var outcome = Outcome(tensors: source.count, verified: true, check: "read back bit-identical")
        // When the tensors make a zoo model, run source and result too.
        let reference = sourceGraph ?? (try? Model.bind(tensors: source))?.graph
        if let reference, let model = try? Model.bind(tensors: written) {
            let report = try parity(reference, model.graph)
            outcome.parity = report
            outcome.architecture = model.architecture.name
        }
        return outcome
    }

    /// The tolerance verification holds both sides to, relative to max|ref| (as `zoo parity`'s default).
    static let rtol = 1e-4

    /// Models with more weights than this are verified on one generated image instead of two: their
    /// activations (ViT-H/14's attention scores: 240 MB per image at 518×518) would otherwise add a
    /// third of the weights to the peak memory of a conversion.
    static let singleImageVerificationBytes = 1 << 30

    /// Runs both graphs on the same generated batch (of two; one above `singleImageVerificationBytes`
    /// of weights) and compares their outputs (graphs of one model: the same outputs in the same
    /// order); a difference beyond `Convert.rtol` fails the verification.
    private func parity(_ a: Graph, _ b: Graph) throws -> ParityReport {
        let weightBytes = a.initializers.reduce(0) { $0 + $1.tensor.count * $1.tensor.dtype.itemSize }
        let x = try generatedInputs(for: a, batch: weightBytes > Convert.singleImageVerificationBytes ? 1 : 2, seed: 0)
        let ya = try execute(try makeExecutor(LoadedModel(path: input, graph: a), threads: nil), x, path: input)
        let yb = try execute(try makeExecutor(LoadedModel(path: output, graph: b), threads: nil), x, path: output)
        // Every output, in order (both graphs come from one model); the one that agrees least is reported.
        let reports = zip(a.outputs, b.outputs).map { ParityReport(name: $1, value: yb[$1]!, reference: ya[$0]!) }
        if let failed = reports.first(where: { !$0.passes(atol: 0, rtol: Convert.rtol) }) {
            throw UserError(message: "\(output): verification failed: \(describe(failed))")
        }
        return reports.max { $0.relativeDifference < $1.relativeDifference }!
    }

    private func describe(_ r: ParityReport) -> String {
        "max|Δ| \(scientific(r.maxAbsDifference)) (\(scientific(r.relativeDifference)) of max|ref|), cosine "
            + String(format1: r.cosine, digits: 6) + (r.top5Agreement.map { ", top-5 \($0)/\(r.rows)" } ?? "")
    }

    /// The first difference between two tensor lists, if any: in path, dtype, geometry (shape,
    /// strides, storage offset), flags, which tensors share a storage, or a storage's bytes. Compares
    /// each storage once and never materializes a view, so it costs O(file size) even for expanded
    /// views that would be terabytes dense.
    static func firstMismatch(_ a: [(path: String, tensor: TorchTensor)], _ b: [(path: String, tensor: TorchTensor)]) -> String? {
        guard a.count == b.count else { return "\(a.count) tensors in, \(b.count) out" }
        // Storage of the input → storage of the output, and back: sharing must be kept exactly.
        var forward: [ObjectIdentifier: ObjectIdentifier] = [:]
        var backward: [ObjectIdentifier: ObjectIdentifier] = [:]
        for (x, y) in zip(a, b) {
            guard x.path == y.path else { return "tensor '\(x.path)' became '\(y.path)'" }
            let s = x.tensor.tensor, t = y.tensor.tensor
            guard s.dtype == t.dtype, s.shape == t.shape, s.strides == t.strides, s.offset == t.offset else {
                return "tensor '\(x.path)' changed dtype, shape, strides or storage offset"
            }
            guard x.tensor.requiresGrad == y.tensor.requiresGrad, x.tensor.isParameter == y.tensor.isParameter else {
                return "tensor '\(x.path)' changed requires_grad or parameter flag"
            }
            let from = ObjectIdentifier(x.tensor.source), to = ObjectIdentifier(y.tensor.source)
            if forward[from] == nil, backward[to] == nil {
                forward[from] = to
                backward[to] = from
                guard x.tensor.source.storage.bytes.elementsEqual(y.tensor.source.storage.bytes) else {
                    return "tensor '\(x.path)' changed value (its storage's bytes differ)"
                }
            }
            guard forward[from] == to, backward[to] == from else { return "tensor '\(x.path)' changed storage sharing" }
        }
        return nil
    }
}
