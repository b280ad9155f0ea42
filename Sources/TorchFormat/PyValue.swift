import ZooCore

/// Python values as the restricted unpickler builds them.
///
/// Containers, strings and reconstructed objects are reference types, so a memo reference (BINGET)
/// yields the very same object, as in Python: object graphs stay small however often a value is
/// shared (no memo-bomb expansion), and the pickler can reproduce the original memo layout — and so
/// torch.save's bytes — from that identity. Scalars (None, bool, int, float) have no identity in
/// pickle and are plain values.
public enum PyValue: @unchecked Sendable {
    case none
    case bool(Bool)
    case int(Int)
    /// An integer beyond 64 bits: little-endian two's complement bytes, as LONG1/LONG4 carry them.
    case bigInt([UInt8])
    case float(Double)
    case string(PyString)
    case bytes(PyBytes)
    case tuple(PyTuple)
    case list(PyList)
    /// A dict or an OrderedDict, with attributes set by BUILD (a state dict's `_metadata`).
    case dict(PyDict)
    /// A reference to an allow-listed class or function that has not been called: a dtype
    /// (`torch.float32`), a storage class (`torch.FloatStorage`), a numpy dtype class.
    case global(PyGlobal)
    /// An allow-listed object rebuilt by REDUCE that zoo keeps as its recipe (a set, bytes encoded
    /// by `_codecs.encode`, `torch.Size`, a numpy scalar or dtype).
    case object(PyObject)
    case storage(TorchStorage)
    case tensor(TorchTensor)

    /// A short name of the value's kind for error messages.
    public var kindName: String {
        switch self {
        case .none: "None"
        case .bool: "bool"
        case .int, .bigInt: "int"
        case .float: "float"
        case .string: "str"
        case .bytes: "bytes"
        case .tuple: "tuple"
        case .list: "list"
        case let .dict(d): d.isOrdered ? "OrderedDict" : "dict"
        case let .global(g): "global \(g)"
        case let .object(o): o.callable.description
        case .storage: "storage"
        case .tensor: "tensor"
        }
    }

    /// The string, if this is one.
    public var stringValue: String? {
        if case let .string(s) = self { return s.value }
        return nil
    }

    /// The integer, if this is one that fits in 64 bits.
    public var intValue: Int? {
        switch self {
        case let .int(i): i
        case let .bool(b): b ? 1 : 0
        default: nil
        }
    }

    /// The bytes of a `bytes` value, whether pickled directly (protocol 3+) or as
    /// `_codecs.encode(str, 'latin1')` (protocol 2).
    public var bytesValue: [UInt8]? {
        switch self {
        case let .bytes(b): return b.value
        case let .object(o) where o.callable.name == "bytes" && o.args.items.isEmpty:
            return []
        case let .object(o) where o.callable == .codecsEncode:
            guard o.args.items.count == 2, let text = o.args.items[0].stringValue,
                  o.args.items[1].stringValue == "latin1" else { return nil }
            var out: [UInt8] = []
            for scalar in text.unicodeScalars {
                guard scalar.value < 256 else { return nil }
                out.append(UInt8(scalar.value))
            }
            return out
        default: return nil
        }
    }

    /// Elements of a tuple or list.
    public var sequenceItems: [PyValue]? {
        switch self {
        case let .tuple(t): t.items
        case let .list(l): l.items
        default: nil
        }
    }
}

/// A Python `str`. A class so that shared references keep their identity.
public final class PyString: @unchecked Sendable {
    public let value: String
    public init(_ value: String) { self.value = value }
}

/// A Python `bytes` (protocol 3+ BINBYTES).
public final class PyBytes: @unchecked Sendable {
    public let value: [UInt8]
    public init(_ value: [UInt8]) { self.value = value }
}

/// A Python tuple.
public final class PyTuple: @unchecked Sendable {
    public fileprivate(set) var items: [PyValue]
    public init(_ items: [PyValue]) { self.items = items }
    deinit { PyValue.release(&items) }
}

/// A Python list.
public final class PyList: @unchecked Sendable {
    public var items: [PyValue]
    public init(_ items: [PyValue] = []) { self.items = items }
    deinit { PyValue.release(&items) }
}

/// A Python dict or `collections.OrderedDict`, keeping insertion order. Keys are compared by value
/// for strings (by code points, as Python does) and integers, the only keys checkpoints use; other
/// keys are kept in order as given.
public final class PyDict: @unchecked Sendable {
    public private(set) var items: [(key: PyValue, value: PyValue)] = []
    /// True for `collections.OrderedDict`.
    public let isOrdered: Bool
    /// Attributes set by BUILD on an OrderedDict subclass instance (a state dict's `_metadata`).
    public var attributes: PyValue?
    private var index: [Key: Int] = [:]

    private enum Key: Hashable {
        case string(ExactString)
        case int(Int)
    }

    public init(ordered: Bool = false) { isOrdered = ordered }

    deinit {
        var values = detach()
        PyValue.release(&values)
    }

    /// Removes and returns every key, value and the attributes.
    fileprivate func detach() -> [PyValue] {
        var values: [PyValue] = []
        values.reserveCapacity(2 * items.count + 1)
        for item in items { values += [item.key, item.value] }
        if let attributes { values.append(attributes) }
        items = []
        index = [:]
        attributes = nil
        return values
    }

    private static func key(_ value: PyValue) -> Key? {
        switch value {
        case let .string(s): .string(ExactString(s.value))
        case let .int(i): .int(i)
        case let .bool(b): .int(b ? 1 : 0)
        default: nil
        }
    }

    /// Sets `key` to `value`, replacing an existing value in place (Python semantics).
    public func set(_ key: PyValue, _ value: PyValue) {
        if let k = PyDict.key(key) {
            if let at = index[k] {
                items[at].value = value
                return
            }
            index[k] = items.count
        }
        items.append((key, value))
    }

    public subscript(_ key: String) -> PyValue? {
        index[.string(ExactString(key))].map { items[$0].value }
    }

    public subscript(_ key: Int) -> PyValue? {
        index[.int(key)].map { items[$0].value }
    }

    public var count: Int { items.count }
}

/// A string compared and hashed by its Unicode scalars (its UTF-8 bytes), as Python compares `str`
/// — not by Swift's canonical equivalence, under which "caf\u{E9}" and "cafe\u{301}" are equal. Every
/// lookup of a name from a file (dict keys, storage keys, record names) uses it.
public struct ExactString: Hashable, Sendable, CustomStringConvertible {
    public let value: String
    public init(_ value: String) { self.value = value }
    public var description: String { value }

    public static func == (a: ExactString, b: ExactString) -> Bool { a.value.utf8.elementsEqual(b.value.utf8) }

    public func hash(into hasher: inout Hasher) {
        var value = value
        value.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }
}

extension PyValue {
    /// Empties `values`, releasing nested containers from a work list instead of recursively: a
    /// hostile pickle can nest containers a million deep, and freeing such a chain the usual way
    /// takes one stack frame per level. A container referenced only from the work list has its
    /// children moved onto the list before it is freed; one referenced elsewhere is left to its
    /// other owners (whose own release does the same).
    static func release(_ values: inout [PyValue]) {
        while !values.isEmpty {
            // The popped value is a temporary that dies with this statement, leaving `object` the
            // work list's only reference — unless something else holds the container too.
            var object = values.removeLast().container
            guard isKnownUniquelyReferenced(&object) else { continue }
            switch object {
            case let tuple as PyTuple:
                values += tuple.items
                tuple.items = []
            case let list as PyList:
                values += list.items
                list.items = []
            case let dict as PyDict:
                values += dict.detach()
            case let kept as PyObject:
                values.append(.tuple(kept.args))
                if let state = kept.state { values.append(state) }
                kept.state = nil
            default:
                break
            }
        }
    }

    /// Empties this container in place — items, dict entries and attributes, a kept object's state
    /// and the lists among its arguments (a set's members) — releasing what it held. Breaks any cycle
    /// through it; scalars are left alone.
    func empty() {
        var released: [PyValue]
        switch self {
        case let .list(list):
            released = list.items
            list.items = []
        case let .dict(dict):
            released = dict.detach()
        case let .object(kept):
            released = kept.state.map { [$0] } ?? []
            kept.state = nil
            for case let .list(list) in kept.args.items {
                released += list.items
                list.items = []
            }
        default:
            return
        }
        PyValue.release(&released)
    }

    /// True when both are the same container object.
    func isSameContainer(as other: PyValue) -> Bool {
        guard let mine = container, let theirs = other.container else { return false }
        return mine === theirs
    }

    /// The container object this value is, if any.
    private var container: AnyObject? {
        switch self {
        case let .tuple(t): t
        case let .list(l): l
        case let .dict(d): d
        case let .object(o): o
        default: nil
        }
    }
}

/// A module-qualified Python global such as `torch._utils._rebuild_tensor_v2`.
public struct PyGlobal: Hashable, Sendable, CustomStringConvertible {
    public let module: String
    public let name: String
    public init(_ module: String, _ name: String) {
        self.module = module
        self.name = name
    }

    public var description: String { "\(module).\(name)" }

    public static let codecsEncode = PyGlobal("_codecs", "encode")
    public static let orderedDict = PyGlobal("collections", "OrderedDict")
    public static let rebuildTensorV2 = PyGlobal("torch._utils", "_rebuild_tensor_v2")
    public static let rebuildParameter = PyGlobal("torch._utils", "_rebuild_parameter")
}

/// An allow-listed object kept as the call that rebuilds it: `callable(*args)`, then BUILD `state`.
public final class PyObject: @unchecked Sendable {
    public let callable: PyGlobal
    public let args: PyTuple
    public var state: PyValue?
    public init(callable: PyGlobal, args: PyTuple, state: PyValue? = nil) {
        self.callable = callable
        self.args = args
        self.state = state
    }
}

/// A torch storage: typed bytes under a key, as a checkpoint's persistent ids name them.
public final class TorchStorage: @unchecked Sendable {
    /// The key the checkpoint stores it under (`"0"` → record `data/0` in a zip checkpoint).
    public let key: String
    public let dtype: DType
    /// Where torch had it (`"cpu"`, `"cuda:0"`); zoo always loads to memory.
    public let location: String
    /// The bytes, in host byte order for `dtype`.
    public let storage: Storage
    /// The byte order of the file the bytes came from: a byte storage (`u8`, nothing to swap) that
    /// a tensor reads as a wider type must be swapped by that order then.
    public let fileByteOrder: Checkpoint.ByteOrder
    public var elementCount: Int { storage.byteCount / dtype.itemSize }

    public init(key: String, dtype: DType, location: String, storage: Storage, fileByteOrder: Checkpoint.ByteOrder = .little) {
        self.key = key
        self.dtype = dtype
        self.location = location
        self.storage = storage
        self.fileByteOrder = fileByteOrder
    }
}

/// A tensor as a checkpoint holds it: a view over a `TorchStorage`, plus what torch records about it.
public final class TorchTensor: @unchecked Sendable {
    public let tensor: Tensor
    public let source: TorchStorage
    public let requiresGrad: Bool
    /// True when torch pickled an `nn.Parameter` rather than a plain tensor.
    public let isParameter: Bool

    public init(tensor: Tensor, source: TorchStorage, requiresGrad: Bool = false, isParameter: Bool = false) {
        self.tensor = tensor
        self.source = source
        self.requiresGrad = requiresGrad
        self.isParameter = isParameter
    }
}
