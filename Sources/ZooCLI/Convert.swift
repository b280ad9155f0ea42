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

    /// The first difference between two tensor lists (path, dtype, shape or element bytes), if any.
    static func firstMismatch(_ a: [(path: String, tensor: TorchTensor)], _ b: [(path: String, tensor: TorchTensor)]) -> String? {
        guard a.count == b.count else { return "\(a.count) tensors in, \(b.count) out" }
        for (x, y) in zip(a, b) {
            guard x.path == y.path else { return "tensor '\(x.path)' became '\(y.path)'" }
            guard x.tensor.tensor.dtype == y.tensor.tensor.dtype, x.tensor.tensor.shape == y.tensor.tensor.shape else {
                return "tensor '\(x.path)' changed dtype or shape"
            }
            let equal = x.tensor.tensor.withContiguousBytes { p in
                y.tensor.tensor.withContiguousBytes { q in p.elementsEqual(q) }
            }
            guard equal else { return "tensor '\(x.path)' changed value" }
        }
        return nil
    }
}
