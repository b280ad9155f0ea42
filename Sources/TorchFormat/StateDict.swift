import ZooCore

/// A flat, ordered map from parameter names (`features.0.weight`) to tensors — what a model binds.
public struct StateDict: @unchecked Sendable {
    public let entries: [(name: String, tensor: TorchTensor)]
    /// The checkpoint entry it came from (`"state_dict"`, `"model"`), or nil for the checkpoint itself.
    public let key: String?
    /// A prefix removed from every name (`"module."` from nn.DataParallel), if any.
    public let strippedPrefix: String?

    private let index: [ExactString: Int]

    public init(entries: [(name: String, tensor: TorchTensor)], key: String? = nil, strippedPrefix: String? = nil) {
        self.entries = entries
        self.key = key
        self.strippedPrefix = strippedPrefix
        var index: [ExactString: Int] = [:]
        for (i, entry) in entries.enumerated() { index[ExactString(entry.name)] = i }
        self.index = index
    }

    public subscript(name: String) -> TorchTensor? { index[ExactString(name)].map { entries[$0].tensor } }

    /// Total elements over all tensors; `Int.max` if the total does not fit (expanded views, with
    /// stride 0, can each claim up to 2^62 elements over a few bytes of storage).
    public var parameterCount: Int { saturatingSum(entries.map(\.tensor.tensor.count)) }
    /// Total bytes of the tensors' elements when dense; `Int.max` if the total does not fit.
    public var byteCount: Int { saturatingSum(entries.map(\.tensor.tensor.byteCount)) }

    private func saturatingSum(_ values: [Int]) -> Int {
        values.reduce(0) { total, value in
            let (sum, overflow) = total.addingReportingOverflow(value)
            return overflow ? .max : sum
        }
    }
}

extension Checkpoint {
    /// The top-level entries (with simple names) whose value is a state dict (a dict of tensors
    /// only), with their values.
    private var candidateEntries: [(key: String, value: PyValue)] {
        guard case let .dict(root) = root else { return [] }
        return root.items.compactMap { item in
            guard let key = TreeWalker.componentIfSimple(item.key), Checkpoint.isStateDict(item.value) else { return nil }
            return (key, item.value)
        }
    }

    /// The state dict this checkpoint holds: the checkpoint itself when it is a dict of tensors,
    /// else the entry named by `key` (a dotted path such as `model` or `ema.model`), else its only
    /// top-level entry that is a state dict. A `module.` prefix on every name (nn.DataParallel) is
    /// removed.
    /// - Throws: `.ambiguous` naming the candidates when several entries qualify and no key is given;
    ///   `.noStateDict` when nothing qualifies or `key` does not name a state dict.
    public func stateDict(key: String? = nil) throws(CheckpointError) -> StateDict {
        let chosenKey: String?
        let value: PyValue
        if let key {
            guard let found = lookup(key) else {
                if Checkpoint.isStateDict(root) {
                    throw CheckpointError(.noStateDict("no entry '\(key)': the file is itself a state dict (of \(topLevelKeys.count) tensors); drop --key"), file: path)
                }
                throw CheckpointError(.noStateDict("no entry '\(key)'; top-level entries: \(topLevelKeys.joined(separator: ", "))"), file: path)
            }
            guard Checkpoint.isStateDict(found) else {
                throw CheckpointError(.noStateDict("entry '\(key)' is \(found.kindName), not a state dict (a dict of tensors)"), file: path)
            }
            (chosenKey, value) = (key, found)
        } else if Checkpoint.isStateDict(root) {
            (chosenKey, value) = (nil, root)
        } else {
            // The candidate's own value: looking its name up again as a dotted path could reach a
            // different, nested entry ({"a": {"b": 5}, "a.b": state dict}).
            let candidates = candidateEntries
            guard candidates.count == 1, let only = candidates.first else {
                if candidates.isEmpty {
                    throw CheckpointError(.noStateDict("no state dict found: the checkpoint is \(root.kindName) with entries \(topLevelKeys.joined(separator: ", "))"), file: path)
                }
                throw CheckpointError(.ambiguous("several entries hold state dicts (\(candidates.map(\.key).joined(separator: ", "))): choose one with --key"), file: path)
            }
            (chosenKey, value) = (only.key, only.value)
        }
        guard case let .dict(dict) = value else { fatalError("isStateDict guarantees a dict") }
        var entries: [(name: String, tensor: TorchTensor)] = dict.items.map { item in
            guard case let .tensor(t) = item.value else { fatalError("isStateDict guarantees tensors") }
            return (TreeWalker.component(item.key), t)
        }
        var stripped: String?
        let prefix = "module."
        if entries.allSatisfy({ $0.name.utf8.starts(with: prefix.utf8) }) {
            entries = entries.map { (String($0.name.utf8.dropFirst(prefix.utf8.count))!, $0.tensor) }
            stripped = prefix
        }
        return StateDict(entries: entries, key: chosenKey, strippedPrefix: stripped)
    }

    /// Top-level entries of a dict checkpoint other than `excluding`, in order.
    public func otherEntries(excluding key: String?) -> [(key: String, value: PyValue)] {
        guard case let .dict(root) = root, key != nil || !Checkpoint.isStateDict(self.root) else { return [] }
        return root.items.compactMap { item in
            let name = TreeWalker.component(item.key)
            return key.map { ExactString($0) == ExactString(name) } == true ? nil : (name, item.value)
        }
    }

    private var topLevelKeys: [String] {
        guard case let .dict(root) = root else { return [] }
        return root.items.map { "'\(TreeWalker.component($0.key))'" }
    }

    /// The value at a dotted key path, trying each key that matches at each level (keys may
    /// themselves contain dots). Keys are compared by their bytes, as Python compares them.
    public func lookup(_ path: String) -> PyValue? {
        func find(_ value: PyValue, _ rest: Substring.UTF8View) -> PyValue? {
            if rest.isEmpty { return value }
            guard case let .dict(dict) = value else { return nil }
            for item in dict.items {
                let key = TreeWalker.component(item.key).utf8
                if rest.elementsEqual(key) { return item.value }
                if rest.starts(with: key + [UInt8(ascii: ".")]),
                   let found = find(item.value, rest.dropFirst(key.count + 1)) { return found }
            }
            return nil
        }
        return find(root, Substring(path).utf8)
    }

    static func isStateDict(_ value: PyValue) -> Bool {
        guard case let .dict(dict) = value, dict.count > 0 else { return false }
        return dict.items.allSatisfy { item in
            if case .tensor = item.value, case .string = item.key { return true }
            return false
        }
    }
}

extension TreeWalker {
    static func componentIfSimple(_ key: PyValue) -> String? {
        switch key {
        case .string, .int: component(key)
        default: nil
        }
    }
}
