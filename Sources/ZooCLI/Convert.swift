import ArgumentParser
import ONNXFormat
import Safetensors
import TorchFormat
import ZooCore
import ZooModels
import ZooRuntime
#if canImport(Glibc)
import Glibc
#endif

/// The file formats `zoo convert` reads and writes, by extension.
enum FileFormat: String {
    case torch, onnx, safetensors

    init(path: String) throws {
        let ext = path.split(separator: "/").last.flatMap { name in name.contains(".") ? name.split(separator: ".").last : nil }
            .map { String($0).lowercased() } ?? ""
        switch ext {
        case "pth", "pt", "bin": self = .torch
        case "onnx": self = .onnx
        case "safetensors": self = .safetensors
        default:
            throw UserError(message: "\(path): unsupported extension '.\(ext)' (supported: .pth, .pt, .bin, .onnx, .safetensors)")
        }
    }
}

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert between PyTorch checkpoints, ONNX and safetensors, then check the result.",
        discussion: """
        Formats follow the extensions: .pth/.pt/.bin (PyTorch zip, legacy or tar in; zip out), \
        .onnx, .safetensors. Directions: pth → pth (the whole object, byte-identical to torch.save), \
        pth ⇄ safetensors, pth/safetensors → onnx (needs an architecture: detected from the state \
        dict or --arch), onnx → pth/safetensors (initializers by name — state-dict keys when the \
        graph came from a torchvision layout). The result is written into a staging folder beside \
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
    @Option(help: "Architecture for the model graph (see zoo models); detected from the state dict by default.")
    var arch: String?
    @Option(help: "ONNX opset to write (13–21).")
    var opset: Int = 17
    @Flag(help: "Write ONNX initializers to <output>.data (automatic past 2 GiB).")
    var externalData = false
    @Option(help: "Entry holding the state dict in a nested checkpoint.")
    var key: String?
    @Flag(help: "Skip reading the result back and checking it.")
    var noVerify = false

    private var showProgress: Bool { isatty(2) != 0 }

    private func progress(_ message: String) {
        guard showProgress else { return }
        let line = Array("zoo: \(message.escapedForTerminal)\n".utf8)
        _ = line.withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) }
    }

    func run() throws {
        let from = try FileFormat(path: input), to = try FileFormat(path: output)
        try refuseOverwriting(to == .onnx ? [output, output + ".data"] : [output], inputs: [input])
        let streamed = isStream(output)
        if streamed, !noVerify {
            throw UserError(message: "\(output): not a regular file (a pipe, device or standard output): convert cannot read it back to verify; add --no-verify")
        }
        if case (.onnx, .onnx) = (from, to) {
            throw UserError(message: "\(output): ONNX → ONNX is not a conversion; use --opset with a .pth source, or copy the file")
        }
        // The result is written into a staging folder under the output's name and moves over the
        // output only once verified: a failed check leaves no file behind and an existing one as it was.
        let staging: StagingFolder?
        do { staging = streamed ? nil : try StagingFolder(for: output, suffixes: to == .onnx ? [".data"] : []) } catch {
            throw UserError(error)
        }
        let summary: String
        do {
            summary = try convert(from, to, writing: staging?.path ?? output)
        } catch {
            staging?.discard()
            throw UserError(message: staging?.mentioningDestination("\(error)") ?? "\(error)")
        }
        do { try staging?.commit() } catch { throw UserError(error) }
        print(summary)
    }

    /// Reads the input, writes the result to `path` and checks it; returns the line to print.
    private func convert(_ from: FileFormat, _ to: FileFormat, writing path: String) throws -> String {
        progress("reading \(input)")
        switch (from, to) {
        case (.torch, .torch):
            return try torchToTorch(writing: path)
        case (_, .onnx):
            let model = try sourceModel()
            progress("writing \(output) (opset \(opset))")
            do {
                try ONNX.save(model.graph, to: path, options: ONNXWriteOptions(opset: opset, externalData: externalData))
            } catch { throw UserError(message: "\(output): \(error)") }
            return try verifyModels(source: model.graph, result: { try onnxGraph(path) })
        case (.onnx, _):
            let source = try onnxSource()
            try write(source.tensors, as: to, to: path)
            return try verifyTensors(source.tensors, sourceGraph: source.graph, written: path)
        case (.torch, .safetensors), (.safetensors, .torch), (.safetensors, .safetensors):
            let tensors = try readStateDict(input, key: key)
            try write(tensors, as: to, to: path)
            return try verifyTensors(tensors, sourceGraph: nil, written: path)
        }
    }

    private func torchToTorch(writing path: String) throws -> String {
        do {
            let source = try Checkpoint.load(path: input)
            progress("writing \(output)")
            try Checkpoint.save(source.root, to: path)
            guard !noVerify else { return "wrote \(output.escapedForTerminal): \(source.tensors.count) tensors (not verified)" }
            progress("verifying")
            let written = try Checkpoint.load(path: path)
            if let mismatch = Convert.firstMismatch(source.tensors, written.tensors) {
                throw UserError(message: "\(output): verification failed: \(mismatch)")
            }
            return "wrote \(output.escapedForTerminal): \(written.tensors.count) tensors, read back bit-identical to \(input.escapedForTerminal)"
        } catch let error as CheckpointError {
            throw UserError(error)
        }
    }

    /// Every initializer of the input model (including any no node reads), and its graph for the
    /// parity run — from one parse. A model whose graph zoo cannot import still converts, unrun.
    private func onnxSource() throws -> (tensors: [(name: String, tensor: Tensor)], graph: Graph?) {
        do {
            let model = try ONNX.load(path: input)
            return (model.initializers, model.graph)
        } catch {
            do { return (try ONNX.initializers(path: input), nil) } catch { throw UserError(error) }
        }
    }

    private func sourceModel() throws -> Model {
        let tensors = try readStateDict(input, key: key)
        let architecture = try parseArchitecture(arch)
        do { return try Model.bind(tensors: tensors, architecture: architecture) } catch {
            throw UserError(message: "\(input): \(error)")
        }
    }

    private func onnxGraph(_ path: String) throws -> Graph {
        do { return try ONNX.load(path: path).graph } catch { throw UserError(error) }
    }

    /// Writes named tensors as a state dict (`.pth`) or a safetensors file at `path`.
    private func write(_ tensors: [(name: String, tensor: Tensor)], as format: FileFormat, to path: String) throws {
        guard !tensors.isEmpty else {
            throw UserError(message: "\(input): holds no tensors (no initializers or weights): there is no state dict to write")
        }
        progress("writing \(output)")
        switch format {
        case .torch:
            let entries = tensors.map { entry -> (name: String, tensor: TorchTensor) in
                let dense = entry.tensor.contiguous()
                return (entry.name, TorchTensor(tensor: dense, source: TorchStorage(key: entry.name, dtype: dense.dtype, location: "cpu", storage: dense.storage)))
            }
            do { try Checkpoint.save(StateDict(entries: entries), to: path) } catch { throw UserError(error) }
        case .safetensors:
            do { try Safetensors.save(tensors, to: path) } catch { throw UserError(message: "\(output): \(error)") }
        case .onnx:
            fatalError("handled by convert(_:_:writing:)")
        }
    }

    /// Tensors read back from `written` equal the source's bit for bit; when they bind to an
    /// architecture and the source was a graph, both also run and must agree. Returns the line to print.
    private func verifyTensors(_ source: [(name: String, tensor: Tensor)], sourceGraph: Graph?, written path: String) throws -> String {
        guard !noVerify else { return "wrote \(output.escapedForTerminal): \(source.count) tensors (not verified)" }
        progress("verifying")
        let format = try FileFormat(path: output)
        let written: [(name: String, tensor: Tensor)]
        do {
            switch format {
            case .torch: written = try Checkpoint.load(path: path).stateDict().entries.map { ($0.name, $0.tensor.tensor) }
            case .safetensors: written = try Safetensors.load(path: path).tensors
            case .onnx: written = try ONNX.initializers(path: path)
            }
        } catch let error as UserError { throw error } catch { throw UserError(error) }
        let lookup = Dictionary(written.map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
        guard written.count == source.count else {
            throw UserError(message: "\(output): verification failed: \(source.count) tensors in, \(written.count) out")
        }
        for (name, tensor) in source {
            guard let other = lookup[name], other.dtype == tensor.dtype, other.shape == tensor.shape,
                  tensor.withContiguousBytes({ a in other.withContiguousBytes { b in a.elementsEqual(b) } }) else {
                throw UserError(message: "\(output): verification failed: tensor '\(name)' differs")
            }
        }
        var line = "wrote \(output.escapedForTerminal): \(source.count) tensors, read back bit-identical"
        // When the tensors make a zoo model, run source and result too.
        let reference = sourceGraph ?? (try? Model.bind(tensors: source))?.graph
        if let reference, let model = try? Model.bind(tensors: written) {
            let report = try parity(reference, model.graph)
            line += "; \(model.architecture.rawValue) runs: " + describe(report)
            guard report.passes(atol: 0, rtol: 1e-4) else { throw UserError(message: "\(output): verification failed: \(describe(report))") }
        }
        return line
    }

    private func verifyModels(source: Graph, result: () throws -> Graph) throws -> String {
        guard !noVerify else { return "wrote \(output.escapedForTerminal) (not verified)" }
        progress("verifying: running both models")
        let report = try parity(source, try result())
        guard report.passes(atol: 0, rtol: 1e-4) else { throw UserError(message: "\(output): verification failed: \(describe(report))") }
        return "wrote \(output.escapedForTerminal); parity with \(input.escapedForTerminal): \(describe(report))"
    }

    /// Runs both graphs on the same generated batch of two and compares their outputs.
    private func parity(_ a: Graph, _ b: Graph) throws -> ParityReport {
        let x = try generatedInput(for: a, batch: 2, seed: 0)
        let ya = try execute(try makeExecutor(LoadedModel(graph: a, kind: input), threads: nil), x, path: input)
        let yb = try execute(try makeExecutor(LoadedModel(graph: b, kind: output), threads: nil), x, path: output)
        return ParityReport(name: b.outputs[0], value: yb, reference: ya)
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
