/// Why an ONNX file was refused (or could not be written), rendered as one line that names the file,
/// then what is at fault — a node (name and op type), a tensor, a graph input — and what is wrong:
///
///     model.onnx: node 'conv1' (Conv): attribute 'auto_pad': unknown value 'FOO'
///     model.onnx: tensor 'fc.weight': external data 'w.bin' escapes the model's folder
public struct ONNXError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What inside the file the error is about.
    public enum Subject: Sendable, Equatable {
        /// The file (or the model) as a whole.
        case file
        case node(name: String, opType: String)
        case tensor(String)
        /// A graph input or output, by value name.
        case value(String)
    }

    public var file: String
    public var subject: Subject
    public var message: String

    public init(file: String, _ message: String) {
        self.init(file: file, .file, message)
    }

    public init(file: String, _ subject: Subject, _ message: String) {
        self.file = file
        self.subject = subject
        self.message = message
    }

    public var description: String { "\(file): \(detail)" }

    /// The description without the file: the subject, then the message (for output that names the
    /// file already).
    public var detail: String {
        switch subject {
        case .file: message
        case let .node(name, opType): "node '\(name)' (\(opType)): \(message)"
        case let .tensor(name): "tensor '\(name)': \(message)"
        case let .value(name): "value '\(name)': \(message)"
        }
    }
}
