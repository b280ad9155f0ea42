import ZooCore

/// A restricted unpickler: just enough pickle to read PyTorch checkpoints, and nothing that runs code.
///
/// Implements the opcodes of protocols 0–5 that torch and Python emit for checkpoint data (see
/// CPython's Lib/pickletools.py for the opcode reference and Lib/pickle.py for their semantics).
/// Values are only ever *built* — containers, strings, numbers — or reconstructed through
/// `TorchGlobals`, an exact allow-list of globals (storage classes, torch's `_rebuild_*`
/// functions, OrderedDict, torch.Size, dtypes, set, `_codecs.encode`, numpy scalars and dtypes).
/// A GLOBAL outside the list is refused at once with its name; REDUCE, BUILD, SETITEM(S),
/// APPEND(S) on anything they do not apply to are refused; object-construction opcodes (INST, OBJ,
/// NEWOBJ, EXT*) are refused; so are unhashable set members and dict keys (a list in a set), which
/// Python could never have pickled. Memo entries are shared references, never copies. Stack, memo,
/// marks, string sizes, the number of values and their nesting are bounded by `ResourceLimits`
/// (its `maxPickle…` fields), each checked before the allocation it guards.
public struct Unpickler {
    /// Turns a persistent id (BINPERSID / PERSID) into a value — a storage for torch.
    public typealias PersistentLoad = (PyValue) throws(CheckpointError) -> PyValue

    private let bytes: UnsafeRawBufferPointer
    private let record: String
    private let limits: ResourceLimits
    private let persistentLoad: PersistentLoad
    private var position = 0
    /// A value on the stack or in the memo, with how deeply containers nest inside it (0 for a
    /// scalar). The depth of a container is raised when it is appended to, but not that of any
    /// container already holding it: `TreeWalker` checks the finished graph exactly.
    private struct Entry {
        var value: PyValue
        var depth = 0
    }

    private var stack: [Entry] = []
    private var marks: [Int] = []
    private var memo: [Int: Entry] = [:]
    private var valueCount = 0
    /// Containers changed after they were made (APPEND(S), SETITEM(S), ADDITEMS, BUILD). Every cycle
    /// runs through one of them, so emptying them frees whatever cycle a pickle built.
    private var mutated: [Entry] = []
    private var opcodeStart = 0

    /// - Parameters:
    ///   - bytes: the pickle; reading stops at STOP (`endPosition` tells where, for stacked pickles).
    ///   - record: name used in errors (`data.pkl`, or the file for legacy checkpoints).
    ///   - startOffset: where reading starts within `bytes`.
    public init(bytes: UnsafeRawBufferPointer, record: String, startOffset: Int = 0, limits: ResourceLimits = .current,
                persistentLoad: @escaping PersistentLoad) {
        self.bytes = bytes
        self.record = record
        self.limits = limits
        self.persistentLoad = persistentLoad
        position = startOffset
    }

    /// In a dry run, tensor-rebuilding calls produce `None` instead of tensors and BUILD on them is
    /// ignored: the legacy format must read its object pickle once to learn the storages' element
    /// types before it can locate their data, which follows the pickles.
    public var dryRun = false

    /// Byte position after the STOP opcode of the last `load()`.
    public var endPosition: Int { position }

    /// Reads one pickle up to its STOP opcode and returns the object it describes.
    ///
    /// A pickle can build cycles (a list appended to itself), which reference counting never frees:
    /// a graph with one, reachable or not, is refused, and whenever `load` throws, every container
    /// the pickle changed after making it, and every one on the stack or in the memo, is emptied,
    /// which breaks any cycle it built.
    public mutating func load() throws(CheckpointError) -> PyValue {
        stack.removeAll(keepingCapacity: true)
        marks.removeAll()
        memo.removeAll()
        mutated.removeAll()
        valueCount = 0
        do throws(CheckpointError) {
            let value = try run()
            if TreeWalker.containsCycle(from: mutated.map(\.value)) {
                throw fail(.pickle("object graph contains a cycle"))
            }
            mutated.removeAll()
            return value
        } catch {
            // Everything built is garbage now. A container an opcode was changing when it failed
            // (SETITEMS refusing its second key after setting the first) is on the stack or in the memo.
            for entry in mutated + stack + memo.values { entry.value.empty() }
            stack.removeAll()
            memo.removeAll()
            mutated.removeAll()
            throw error
        }
    }

    private mutating func run() throws(CheckpointError) -> PyValue {
        while true {
            opcodeStart = position
            let code = try readByte()
            guard let op = Opcode(rawValue: code) else {
                throw fail(.pickle("unknown opcode 0x\(String(code, radix: 16))"))
            }
            if op == .stop {
                // Python's load_stop returns the top of the stack and ignores anything below it.
                guard let entry = stack.popLast() else { throw fail(.pickle("STOP with an empty stack")) }
                return entry.value
            }
            try execute(op)
            guard stack.count <= limits.maxPickleStack else {
                throw fail(.limit(LimitExceeded(\.maxPickleStack, of: limits, "a pickle stack of \(stack.count) entries")))
            }
        }
    }

    // MARK: - Opcodes

    private mutating func execute(_ op: Opcode) throws(CheckpointError) {
        switch op {
        case .proto:
            let version = try readByte()
            guard version <= 5 else { throw fail(.pickle("unsupported protocol \(version)")) }
        case .frame:
            _ = try readInteger(8)  // frames only group opcodes; the data follows inline
        case .stop:
            break  // handled by load()
        case .mark:
            guard marks.count < limits.maxPickleMarks else {
                throw fail(.limit(LimitExceeded(\.maxPickleMarks, of: limits, "a pickle with \(marks.count + 1) open MARKs")))
            }
            marks.append(stack.count)
        case .pop:
            if let mark = marks.last, mark == stack.count {
                marks.removeLast()  // POP of a bare mark (Python allows it)
            } else {
                _ = try pop()
            }
        case .popMark:
            _ = try popMark()
        case .dup:
            let entry = try top()
            try push(entry.value, depth: entry.depth)
        case .none:
            try push(.none)
        case .newTrue:
            try push(.bool(true))
        case .newFalse:
            try push(.bool(false))
        case .int:
            let text = try readLine()
            if text == "00" { try push(.bool(false)) }
            else if text == "01" { try push(.bool(true)) }
            else if let value = Int(text) { try push(.int(value)) }
            else { throw fail(.pickle("bad INT literal")) }
        case .binInt:
            try push(.int(Int(Int32(truncatingIfNeeded: try readInteger(4)))))
        case .binInt1:
            try push(.int(Int(try readByte())))
        case .binInt2:
            try push(.int(Int(try readInteger(2))))
        case .long:
            var text = try readLine()
            if text.hasSuffix("L") { text.removeLast() }
            guard let value = Int(text) else { throw fail(.unsupported("text LONG beyond 64 bits")) }
            try push(.int(value))
        case .long1:
            try push(try readLong(count: Int(try readByte())))
        case .long4:
            let count = Int(Int32(truncatingIfNeeded: try readInteger(4)))
            guard count >= 0 else { throw fail(.pickle("negative LONG4 length")) }
            try push(try readLong(count: count))
        case .float:
            guard let value = Double(try readLine()) else { throw fail(.pickle("bad FLOAT literal")) }
            try push(.float(value))
        case .binFloat:
            try push(.float(Double(bitPattern: UInt64(bigEndian: UInt64(try readInteger(8).littleEndian)))))
        case .binUnicode:
            try push(.string(PyString(try readUTF8(count: try readLength(4)))))
        case .shortBinUnicode:
            try push(.string(PyString(try readUTF8(count: Int(try readByte())))))
        case .binUnicode8:
            try push(.string(PyString(try readUTF8(count: try readLength(8)))))
        case .binString:
            try push(.string(PyString(latin1(try readBytes(count: try readLength(4))))))
        case .shortBinString:
            try push(.string(PyString(latin1(try readBytes(count: Int(try readByte()))))))
        case .binBytes:
            try push(.bytes(PyBytes(Array(try readBytes(count: try readLength(4))))))
        case .shortBinBytes:
            try push(.bytes(PyBytes(Array(try readBytes(count: Int(try readByte()))))))
        case .binBytes8:
            try push(.bytes(PyBytes(Array(try readBytes(count: try readLength(8))))))
        case .emptyTuple:
            try push(.tuple(PyTuple([])), depth: 1)
        case .tuple:
            try pushContainer(try popMark()) { .tuple(PyTuple($0)) }
        case .tuple1:
            let a = try pop()
            try pushContainer([a]) { .tuple(PyTuple($0)) }
        case .tuple2:
            let b = try pop(), a = try pop()
            try pushContainer([a, b]) { .tuple(PyTuple($0)) }
        case .tuple3:
            let c = try pop(), b = try pop(), a = try pop()
            try pushContainer([a, b, c]) { .tuple(PyTuple($0)) }
        case .emptyList:
            try push(.list(PyList()), depth: 1)
        case .list:
            try pushContainer(try popMark()) { .list(PyList($0)) }
        case .append:
            let entry = try pop()
            try list(try top().value).items.append(entry.value)
            try deepenTop(by: [entry])
        case .appends:
            let entries = try popMark()
            try list(try top().value).items.append(contentsOf: entries.map(\.value))
            try deepenTop(by: entries)
        case .emptyDict:
            try push(.dict(PyDict()), depth: 1)
        case .dict:
            let entries = try popMark()
            let dict = PyDict()
            try setItems(entries, in: dict, "DICT")
            try push(.dict(dict), depth: 1)
            try deepenTop(by: entries)
        case .setItem:
            let value = try pop(), key = try pop()
            try setItems([key, value], in: try dict(try top().value), "SETITEM")
            try deepenTop(by: [key, value])
        case .setItems:
            let entries = try popMark()
            try setItems(entries, in: try dict(try top().value), "SETITEMS")
            try deepenTop(by: entries)
        case .emptySet:
            try push(.object(PyObject(callable: TorchGlobals.set, args: PyTuple([.list(PyList())]))), depth: 1)
        case .addItems:
            let entries = try popMark()
            let target = try top().value
            guard case let .object(object) = target, object.callable == TorchGlobals.set,
                  case let .list(items)? = object.args.items.first else {
                throw fail(.pickle("ADDITEMS on \(target.kindName), not a set"))
            }
            let values = entries.map(\.value)
            try checkHashable(values, "in a set")
            items.items.append(contentsOf: values)
            try deepenTop(by: entries)
        case .frozenSet:
            let entries = try popMark()
            try checkHashable(entries.map(\.value), "in a frozenset")
            try pushContainer(entries) { .object(PyObject(callable: PyGlobal("builtins", "frozenset"), args: PyTuple([.list(PyList($0))]))) }
        case .global:
            let module = try readLine(), name = try readLine()
            try push(try resolveGlobal(module, name))
        case .stackGlobal:
            let name = try pop().value, module = try pop().value
            guard let m = module.stringValue, let n = name.stringValue else {
                throw fail(.pickle("STACK_GLOBAL needs two strings"))
            }
            try push(try resolveGlobal(m, n))
        case .reduce:
            let argsEntry = try pop(), callable = try pop().value
            let args = argsEntry.value
            guard case let .global(global) = callable else {
                throw fail(.pickle("REDUCE on \(callable.kindName), which is not callable"))
            }
            guard case let .tuple(tuple) = args else { throw fail(.pickle("REDUCE arguments are not a tuple")) }
            if dryRun, TorchGlobals.rebuildsTensor(global) {
                try push(.none)
                return
            }
            let result: PyValue
            do {
                result = try TorchGlobals.call(global, tuple, limits: limits)
            } catch let error {
                throw error.located(record: record, offset: opcodeStart, path: nearestKey())
            }
            try push(result, depth: argsEntry.depth)
        case .build:
            let state = try pop()
            if dryRun, case .none = try top().value { return }
            do {
                try TorchGlobals.build(try top().value, state: state.value)
            } catch let error {
                throw error.located(record: record, offset: opcodeStart, path: nil)
            }
            try deepenTop(by: [state])
        case .binPersId:
            let id = try pop().value
            do {
                try push(try persistentLoad(id))
            } catch let error {
                throw error.located(record: record, offset: opcodeStart, path: nearestKey())
            }
        case .persId:
            let id = try readLine()
            do {
                try push(try persistentLoad(.string(PyString(id))))
            } catch let error {
                throw error.located(record: record, offset: opcodeStart, path: nearestKey())
            }
        case .put:
            guard let index = Int(try readLine()) else { throw fail(.pickle("bad PUT index")) }
            try memoize(index)
        case .binPut:
            try memoize(Int(try readByte()))
        case .longBinPut:
            try memoize(Int(try readInteger(4)))
        case .memoize:
            try memoize(memo.count)
        case .get:
            guard let index = Int(try readLine()) else { throw fail(.pickle("bad GET index")) }
            try recall(index)
        case .binGet:
            try recall(Int(try readByte()))
        case .longBinGet:
            try recall(Int(try readInteger(4)))
        case .inst, .obj, .newObj, .newObjEx, .ext1, .ext2, .ext4, .nextBuffer, .readonlyBuffer,
             .string, .unicode, .byteArray8:
            throw fail(.unsupported("pickle opcode \(op) (constructs arbitrary objects or is not used by torch)"))
        }
    }

    // MARK: - Stack and memo

    /// Pushes a value, counting it against `maxValues`.
    private mutating func push(_ value: PyValue, depth: Int = 0) throws(CheckpointError) {
        valueCount += 1
        guard valueCount <= limits.maxPickleValues else {
            throw fail(.limit(LimitExceeded(\.maxPickleValues, of: limits, "more than \(limits.maxPickleValues) pickle values (each value built, recalled from the memo or duplicated counts)")))
        }
        guard depth <= limits.maxPickleDepth else { throw nestedTooDeeply() }
        stack.append(Entry(value: value, depth: depth))
    }

    /// Pushes the container `make` builds from `entries`, one level deeper than the deepest of them.
    private mutating func pushContainer(_ entries: [Entry], _ make: ([PyValue]) -> PyValue) throws(CheckpointError) {
        try push(make(entries.map(\.value)), depth: 1 + (entries.map(\.depth).max() ?? 0))
    }

    /// Records that the container on top of the stack now holds `entries`.
    private mutating func deepenTop(by entries: [Entry]) throws(CheckpointError) {
        let depth = 1 + (entries.map(\.depth).max() ?? 0)
        guard depth <= limits.maxPickleDepth else { throw nestedTooDeeply() }
        stack[stack.count - 1].depth = max(stack[stack.count - 1].depth, depth)
        if mutated.last?.value.isSameContainer(as: stack[stack.count - 1].value) != true {
            mutated.append(stack[stack.count - 1])
        }
    }

    private func nestedTooDeeply() -> CheckpointError {
        fail(.limit(TreeWalker.tooDeep(limits)))
    }

    private mutating func pop() throws(CheckpointError) -> Entry {
        guard stack.count > (marks.last ?? 0) else { throw fail(.pickle("stack underflow")) }
        return stack.removeLast()
    }

    private func top() throws(CheckpointError) -> Entry {
        guard let last = stack.last, stack.count > (marks.last ?? 0) else { throw fail(.pickle("stack underflow")) }
        return last
    }

    private mutating func popMark() throws(CheckpointError) -> [Entry] {
        guard let mark = marks.popLast() else { throw fail(.pickle("no MARK on the stack")) }
        let entries = Array(stack[mark...])
        stack.removeSubrange(mark...)
        return entries
    }

    /// Sets alternating keys and values of `entries` in `dict`; keys must be hashable.
    private func setItems(_ entries: [Entry], in dict: PyDict, _ opcode: String) throws(CheckpointError) {
        guard entries.count % 2 == 0 else { throw fail(.pickle("\(opcode) with an odd number of items")) }
        for i in stride(from: 0, to: entries.count, by: 2) {
            try checkHashable([entries[i].value], "as a dict key")
            dict.set(entries[i].value, entries[i + 1].value)
        }
    }

    private func checkHashable(_ values: [PyValue], _ role: String) throws(CheckpointError) {
        if let bad = values.first(where: { !TorchGlobals.isHashable($0) }) {
            throw fail(.pickle("unhashable \(bad.kindName) \(role)"))
        }
    }

    private mutating func memoize(_ index: Int) throws(CheckpointError) {
        guard index >= 0 else { throw fail(.pickle("negative memo index")) }
        guard memo.count < limits.maxPickleMemo || memo[index] != nil else {
            throw fail(.limit(LimitExceeded(\.maxPickleMemo, of: limits, "a memo of \(memo.count + 1) entries")))
        }
        memo[index] = try top()
    }

    private mutating func recall(_ index: Int) throws(CheckpointError) {
        guard let entry = memo[index] else { throw fail(.pickle("memo index \(index) was never stored")) }
        try push(entry.value, depth: entry.depth)
    }

    private func list(_ value: PyValue) throws(CheckpointError) -> PyList {
        guard case let .list(list) = value else { throw fail(.pickle("APPEND on \(value.kindName), not a list")) }
        return list
    }

    private func dict(_ value: PyValue) throws(CheckpointError) -> PyDict {
        guard case let .dict(dict) = value else { throw fail(.pickle("SETITEM on \(value.kindName), not a dict")) }
        return dict
    }

    private func resolveGlobal(_ module: String, _ name: String) throws(CheckpointError) -> PyValue {
        let global = PyGlobal(module, name)
        guard TorchGlobals.isAllowed(global) else { throw fail(.forbiddenGlobal(module: module, name: name)) }
        return .global(global)
    }

    /// The dict key whose value is being built, for error messages: the newest string in the
    /// innermost MARK frame (pickle writes a key before its value).
    private func nearestKey() -> String? {
        let floor = marks.last ?? 0
        var i = stack.count - 1
        while i >= floor {
            if let key = stack[i].value.stringValue { return key }
            i -= 1
        }
        return nil
    }

    private func fail(_ reason: CheckpointError.Reason, path: String? = nil) -> CheckpointError {
        CheckpointError(reason, record: record, offset: opcodeStart, path: path)
    }

    // MARK: - Reading

    private mutating func readByte() throws(CheckpointError) -> UInt8 {
        guard position < bytes.count else { throw fail(.truncated("pickle ends without STOP")) }
        defer { position += 1 }
        return bytes[position]
    }

    /// A little-endian unsigned integer of `count` ≤ 8 bytes.
    private mutating func readInteger(_ count: Int) throws(CheckpointError) -> UInt64 {
        guard bytes.count - position >= count else { throw fail(.truncated("pickle ends inside an opcode")) }
        var value: UInt64 = 0
        for i in 0..<count { value |= UInt64(bytes[position + i]) << (8 * UInt64(i)) }
        position += count
        return value
    }

    private mutating func readLength(_ count: Int) throws(CheckpointError) -> Int {
        let value = try readInteger(count)
        guard value <= UInt64(limits.maxPickleStringBytes) else {
            throw fail(.limit(LimitExceeded(\.maxPickleStringBytes, of: limits, "a string of \(value) bytes", needed: Int(exactly: value))))
        }
        return Int(value)
    }

    private mutating func readBytes(count: Int) throws(CheckpointError) -> UnsafeRawBufferPointer {
        guard count <= limits.maxPickleStringBytes else {
            throw fail(.limit(LimitExceeded(\.maxPickleStringBytes, of: limits, "a string of \(count) bytes", needed: count)))
        }
        guard bytes.count - position >= count else {
            throw fail(.truncated("pickle declares \(count) bytes but \(bytes.count - position) remain"))
        }
        defer { position += count }
        return UnsafeRawBufferPointer(rebasing: bytes[position..<(position + count)])
    }

    private mutating func readUTF8(count: Int) throws(CheckpointError) -> String {
        let raw = try readBytes(count: count)
        guard let text = String(validating: raw, as: UTF8.self) else { throw fail(.pickle("string is not valid UTF-8")) }
        return text
    }

    /// A newline-terminated ASCII argument of a text opcode.
    private mutating func readLine() throws(CheckpointError) -> String {
        var end = position
        while end < bytes.count, bytes[end] != 0x0A {
            end += 1
            guard end - position <= limits.maxPickleLineBytes else {
                throw fail(.limit(LimitExceeded(\.maxPickleLineBytes, of: limits, "a text argument longer than \(limits.maxPickleLineBytes) bytes")))
            }
        }
        guard end < bytes.count else { throw fail(.truncated("pickle ends inside a text argument")) }
        // Validated, not repaired: U+FFFD would make different GLOBAL or PERSID bytes one name
        // (CPython refuses them too: GLOBAL is strict UTF-8, PERSID strict ASCII).
        guard let text = String(validating: UnsafeRawBufferPointer(rebasing: bytes[position..<end]), as: UTF8.self) else {
            throw fail(.pickle("text argument is not valid UTF-8"))
        }
        position = end + 1
        return text
    }

    private mutating func readLong(count: Int) throws(CheckpointError) -> PyValue {
        guard count <= limits.maxPickleLongBytes else {
            throw fail(.limit(LimitExceeded(\.maxPickleLongBytes, of: limits, "a \(count)-byte integer", needed: count)))
        }
        let raw = Array(try readBytes(count: count))
        if count == 0 { return .int(0) }
        if count <= 8 {
            var value: UInt64 = 0
            for (i, byte) in raw.enumerated() { value |= UInt64(byte) << (8 * UInt64(i)) }
            if raw[count - 1] & 0x80 != 0, count < 8 { value |= ~0 << (8 * UInt64(count)) }  // sign-extend
            return .int(Int(Int64(bitPattern: value)))
        }
        return .bigInt(raw)
    }

    private func latin1(_ raw: UnsafeRawBufferPointer) -> String {
        String(String.UnicodeScalarView(raw.map { Unicode.Scalar($0) }))
    }
}

/// Pickle opcodes (CPython Lib/pickletools.py).
enum Opcode: UInt8 {
    case mark = 0x28            // (
    case stop = 0x2E            // .
    case pop = 0x30             // 0
    case popMark = 0x31         // 1
    case dup = 0x32             // 2
    case float = 0x46           // F
    case int = 0x49             // I
    case binInt = 0x4A          // J
    case binInt1 = 0x4B         // K
    case long = 0x4C            // L
    case binInt2 = 0x4D         // M
    case none = 0x4E            // N
    case persId = 0x50          // P
    case binPersId = 0x51       // Q
    case reduce = 0x52          // R
    case string = 0x53          // S
    case binString = 0x54       // T
    case shortBinString = 0x55  // U
    case unicode = 0x56         // V
    case binUnicode = 0x58      // X
    case append = 0x61          // a
    case build = 0x62           // b
    case global = 0x63          // c
    case dict = 0x64            // d
    case emptyDict = 0x7D       // }
    case appends = 0x65         // e
    case get = 0x67             // g
    case binGet = 0x68          // h
    case inst = 0x69            // i
    case longBinGet = 0x6A      // j
    case list = 0x6C            // l
    case emptyList = 0x5D       // ]
    case obj = 0x6F             // o
    case put = 0x70             // p
    case binPut = 0x71          // q
    case longBinPut = 0x72      // r
    case setItem = 0x73         // s
    case tuple = 0x74           // t
    case emptyTuple = 0x29      // )
    case setItems = 0x75        // u
    case binFloat = 0x47        // G
    case proto = 0x80
    case newObj = 0x81
    case ext1 = 0x82
    case ext2 = 0x83
    case ext4 = 0x84
    case tuple1 = 0x85
    case tuple2 = 0x86
    case tuple3 = 0x87
    case newTrue = 0x88
    case newFalse = 0x89
    case long1 = 0x8A
    case long4 = 0x8B
    case binBytes = 0x42        // B
    case shortBinBytes = 0x43   // C
    case shortBinUnicode = 0x8C
    case binUnicode8 = 0x8D
    case binBytes8 = 0x8E
    case emptySet = 0x8F
    case addItems = 0x90
    case frozenSet = 0x91
    case newObjEx = 0x92
    case stackGlobal = 0x93
    case memoize = 0x94
    case frame = 0x95
    case byteArray8 = 0x96
    case nextBuffer = 0x97
    case readonlyBuffer = 0x98
}
