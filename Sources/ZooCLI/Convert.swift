import ArgumentParser
import TorchFormat
import ZooCore

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert a checkpoint to another file, checking the result.",
        discussion: """
        Formats follow the extensions. Today: PyTorch checkpoints in any format (.pth, .pt, .bin: \
        zip, legacy or tar) to a zip checkpoint as torch.save writes it, with everything the file \
        holds (state dict, optimizer state, other entries). The output is written to a temporary \
        file and renamed into place; then it is read back and every tensor compared bit for bit \
        with the input unless --no-verify is given.
        """
    )

    @Argument(help: "Input checkpoint.")
    var input: String

    @Argument(help: "Output file (.pth, .pt, .bin).")
    var output: String

    @Flag(help: "Skip reading the output back and comparing it with the input.")
    var noVerify = false

    func run() throws {
        let torchExtensions = ["pth", "pt", "bin"]
        for path in [input, output] {
            let ext = path.split(separator: ".").last.map { String($0).lowercased() } ?? ""
            guard path.contains("."), torchExtensions.contains(ext) else {
                throw UserError(message: "\(path): unsupported extension '.\(ext)' (supported: .pth, .pt, .bin)")
            }
        }
        do {
            let source = try Checkpoint.load(path: input)
            try Checkpoint.save(source.root, to: output)
            guard !noVerify else {
                print("wrote \(output): \(source.tensors.count) tensors (not verified)")
                return
            }
            let written = try Checkpoint.load(path: output)
            let mismatch = Convert.firstMismatch(source.tensors, written.tensors)
            if let mismatch { throw UserError(message: "\(output): verification failed: \(mismatch)") }
            print("wrote \(output): \(written.tensors.count) tensors, read back bit-identical to \(input)")
        } catch let error as CheckpointError {
            throw UserError(error)
        }
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
