import ZooCore

/// Everything that can be wrong with a checkpoint file, rendered as one line that names the file
/// and, where known, the record (zip entry / tar member / pickle), the byte offset and the tensor.
///
/// Readers throw it with `reason` and whatever location they know; the top-level entry points fill
/// in `file`.
public struct CheckpointError: Error, CustomStringConvertible, Sendable {
    public enum Reason: Sendable, Equatable {
        case emptyFile
        case notACheckpoint(String)
        /// A checkpoint without the state dict asked for (a wrong `--key`, none or several found).
        case noStateDict(String)
        case truncated(String)
        /// A structural problem in the zip container.
        case zip(String)
        /// A structural problem in the tar container.
        case tar(String)
        case missingRecord(String)
        case crcMismatch(stored: UInt32, computed: UInt32)
        /// A malformed or unsupported pickle.
        case pickle(String)
        /// A global outside the allow-list: never resolved, never called.
        case forbiddenGlobal(module: String, name: String)
        /// A resource limit (`ResourceLimits`) the file exceeds.
        case limit(LimitExceeded)
        /// The environment asks for something impossible (a malformed `ZOO_LIMITS`).
        case configuration(String)
        case storage(String)
        case tensor(TensorError)
        case unsupported(String)
        case ambiguous(String)
        case io(String)
    }

    public var reason: Reason
    public var file: String?
    /// The zip record, tar member or pickle the problem is in.
    public var record: String?
    /// Byte offset of the problem: inside `record` when it is set, else inside the file.
    public var offset: Int?
    /// Key path of the tensor or entry concerned (e.g. `state_dict.features.0.weight`).
    public var path: String?

    public init(_ reason: Reason, record: String? = nil, offset: Int? = nil, path: String? = nil, file: String? = nil) {
        self.reason = reason
        self.record = record
        self.offset = offset
        self.path = path
        self.file = file
    }

    /// The same error with the location filled in where it has none of its own (an error from a
    /// storage record raised while reading the pickle keeps naming the storage record).
    public func located(record: String, offset: Int, path: String?) -> CheckpointError {
        var copy = self
        if copy.record == nil {
            copy.record = record
            copy.offset = offset
        }
        if copy.path == nil { copy.path = path }
        return copy
    }

    /// The same error with `file` set, unless it already names one.
    public func inFile(_ file: String) -> CheckpointError {
        var copy = self
        if copy.file == nil { copy.file = file }
        return copy
    }

    public var description: String {
        var location: [String] = []
        if let record { location.append(record) }
        if let offset { location.append("byte \(offset)") }
        if let path { location.append("'\(path)'") }
        var line = file.map { "\($0): " } ?? ""
        if !location.isEmpty { line += location.joined(separator: " ") + ": " }
        return line + reason.description
    }
}

extension CheckpointError.Reason: CustomStringConvertible {
    public var description: String {
        switch self {
        case .emptyFile: "empty file"
        case let .notACheckpoint(why): "not a PyTorch checkpoint (\(why))"
        case let .noStateDict(why): why
        case let .truncated(what): "file is truncated: \(what)"
        case let .zip(what): "malformed zip archive: \(what)"
        case let .tar(what): "malformed tar archive: \(what)"
        case let .missingRecord(name): "record '\(name)' is missing from the archive"
        case let .crcMismatch(stored, computed):
            "CRC-32 mismatch: archive says \(hex(stored)), data has \(hex(computed))"
        case let .pickle(what): "malformed pickle: \(what)"
        case let .forbiddenGlobal(module, name):
            "refused global '\(module).\(name)': not on the allow-list of tensor-rebuilding globals (nothing was executed)"
        case let .limit(exceeded): exceeded.description
        case let .configuration(problem): problem
        case let .storage(what): "bad storage: \(what)"
        case let .tensor(error): "bad tensor: \(error)"
        case let .unsupported(what): "unsupported: \(what)"
        case let .ambiguous(what): what
        case let .io(what): what
        }
    }
}

private func hex(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: 8 - digits.count) + digits
}
