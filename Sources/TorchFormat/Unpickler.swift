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
/// NEWOBJ, EXT*) are refused. Memo entries are shared references, never copies. Stack, memo,
/// nesting and string sizes are bounded by `Limits`.
public struct Unpickler {
    /// Bounds that keep a hostile pickle from exhausting memory or time.
    public struct Limits: Sendable {
        public var maxStack = 10_000_000
        public var maxMemo = 10_000_000
        public var maxMarks = 100_000
        /// Longest string, bytes or text-encoded number in bytes.
        public var maxStringBytes = 1 << 30
        /// Longest arbitrary-precision integer in bytes.
        public var maxLongBytes = 1 << 12
        public init() {}
    }

    /// Turns a persistent id (BINPERSID / PERSID) into a value — a storage for torch.
    public typealias PersistentLoad = (PyValue) throws(CheckpointError) -> PyValue

    private let bytes: UnsafeRawBufferPointer
    private let record: String
    private let limits: Limits
    private let persistentLoad: PersistentLoad
    private var position = 0
    private var stack: [PyValue] = []
    private var marks: [Int] = []
    private var memo: [Int: PyValue] = [:]
    private var opcodeStart = 0

    /// - Parameters:
    ///   - bytes: the pickle; reading stops at STOP (`endPosition` tells where, for stacked pickles).
    ///   - record: name used in errors (`data.pkl`, or the file for legacy checkpoints).
    ///   - startOffset: where reading starts within `bytes`.
    public init(bytes: UnsafeRawBufferPointer, record: String, startOffset: Int = 0, limits: Limits = Limits(),
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
    public mutating func load() throws(CheckpointError) -> PyValue {
        stack.removeAll(keepingCapacity: true)
        marks.removeAll()
        memo.removeAll()
        while true {
            opcodeStart = position
            let code = try readByte()
            guard let op = Opcode(rawValue: code) else {
                throw fail(.pickle("unknown opcode 0x\(String(code, radix: 16))"))
            }
            if op == .stop {
                // Python's load_stop returns the top of the stack and ignores anything below it.
                guard let value = stack.popLast() else { throw fail(.pickle("STOP with an empty stack")) }
                return value
            }
            try execute(op)
            guard stack.count <= limits.maxStack else { throw fail(.limit("pickle stack deeper than \(limits.maxStack)")) }
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
            guard marks.count < limits.maxMarks else { throw fail(.limit("more than \(limits.maxMarks) open marks")) }
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
            stack.append(try top())
        case .none:
            stack.append(.none)
        case .newTrue:
            stack.append(.bool(true))
        case .newFalse:
            stack.append(.bool(false))
        case .int:
            let text = try readLine()
            if text == "00" { stack.append(.bool(false)) }
            else if text == "01" { stack.append(.bool(true)) }
            else if let value = Int(text) { stack.append(.int(value)) }
            else { throw fail(.pickle("bad INT literal")) }
        case .binInt:
            stack.append(.int(Int(Int32(truncatingIfNeeded: try readInteger(4)))))
        case .binInt1:
            stack.append(.int(Int(try readByte())))
        case .binInt2:
            stack.append(.int(Int(try readInteger(2))))
        case .long:
            var text = try readLine()
            if text.hasSuffix("L") { text.removeLast() }
            guard let value = Int(text) else { throw fail(.unsupported("text LONG beyond 64 bits")) }
            stack.append(.int(value))
        case .long1:
            stack.append(try readLong(count: Int(try readByte())))
        case .long4:
            let count = Int(Int32(truncatingIfNeeded: try readInteger(4)))
            guard count >= 0 else { throw fail(.pickle("negative LONG4 length")) }
            stack.append(try readLong(count: count))
        case .float:
            guard let value = Double(try readLine()) else { throw fail(.pickle("bad FLOAT literal")) }
            stack.append(.float(value))
        case .binFloat:
            stack.append(.float(Double(bitPattern: UInt64(bigEndian: UInt64(try readInteger(8).littleEndian)))))
        case .binUnicode:
            stack.append(.string(PyString(try readUTF8(count: try readLength(4)))))
        case .shortBinUnicode:
            stack.append(.string(PyString(try readUTF8(count: Int(try readByte())))))
        case .binUnicode8:
            stack.append(.string(PyString(try readUTF8(count: try readLength(8)))))
        case .binString:
            stack.append(.string(PyString(latin1(try readBytes(count: try readLength(4))))))
        case .shortBinString:
            stack.append(.string(PyString(latin1(try readBytes(count: Int(try readByte()))))))
        case .binBytes:
            stack.append(.bytes(PyBytes(Array(try readBytes(count: try readLength(4))))))
        case .shortBinBytes:
            stack.append(.bytes(PyBytes(Array(try readBytes(count: Int(try readByte()))))))
        case .binBytes8:
            stack.append(.bytes(PyBytes(Array(try readBytes(count: try readLength(8))))))
        case .emptyTuple:
            stack.append(.tuple(PyTuple([])))
        case .tuple:
            stack.append(.tuple(PyTuple(try popMark())))
        case .tuple1:
            let a = try pop()
            stack.append(.tuple(PyTuple([a])))
        case .tuple2:
            let b = try pop(), a = try pop()
            stack.append(.tuple(PyTuple([a, b])))
        case .tuple3:
            let c = try pop(), b = try pop(), a = try pop()
            stack.append(.tuple(PyTuple([a, b, c])))
        case .emptyList:
            stack.append(.list(PyList()))
        case .list:
            stack.append(.list(PyList(try popMark())))
        case .append:
            let value = try pop()
            try list(try top()).items.append(value)
        case .appends:
            let values = try popMark()
            try list(try top()).items.append(contentsOf: values)
        case .emptyDict:
            stack.append(.dict(PyDict()))
        case .dict:
            let values = try popMark()
            guard values.count % 2 == 0 else { throw fail(.pickle("DICT with an odd number of items")) }
            let dict = PyDict()
            for i in stride(from: 0, to: values.count, by: 2) { dict.set(values[i], values[i + 1]) }
            stack.append(.dict(dict))
        case .setItem:
            let value = try pop(), key = try pop()
            try dict(try top()).set(key, value)
        case .setItems:
            let values = try popMark()
            guard values.count % 2 == 0 else { throw fail(.pickle("SETITEMS with an odd number of items")) }
            let target = try dict(try top())
            for i in stride(from: 0, to: values.count, by: 2) { target.set(values[i], values[i + 1]) }
        case .emptySet:
            stack.append(.object(PyObject(callable: TorchGlobals.set, args: PyTuple([.list(PyList())]))))
        case .addItems:
            let values = try popMark()
            guard case let .object(object) = try top(), object.callable == TorchGlobals.set,
                  case let .list(items)? = object.args.items.first else {
                throw fail(.pickle("ADDITEMS on \(try top().kindName), not a set"))
            }
            items.items.append(contentsOf: values)
        case .frozenSet:
            let values = try popMark()
            stack.append(.object(PyObject(callable: PyGlobal("builtins", "frozenset"), args: PyTuple([.list(PyList(values))]))))
        case .global:
            let module = try readLine(), name = try readLine()
            stack.append(try resolveGlobal(module, name))
        case .stackGlobal:
            let name = try pop(), module = try pop()
            guard let m = module.stringValue, let n = name.stringValue else {
                throw fail(.pickle("STACK_GLOBAL needs two strings"))
            }
            stack.append(try resolveGlobal(m, n))
        case .reduce:
            let args = try pop(), callable = try pop()
            guard case let .global(global) = callable else {
                throw fail(.pickle("REDUCE on \(callable.kindName), which is not callable"))
            }
            guard case let .tuple(tuple) = args else { throw fail(.pickle("REDUCE arguments are not a tuple")) }
            if dryRun, TorchGlobals.rebuildsTensor(global) {
                stack.append(.none)
                return
            }
            do {
                stack.append(try TorchGlobals.call(global, tuple))
            } catch let error {
                throw error.located(record: record, offset: opcodeStart, path: nearestKey())
            }
        case .build:
            let state = try pop()
            if dryRun, case .none = try top() { return }
            do {
                try TorchGlobals.build(try top(), state: state)
            } catch let error {
                throw error.located(record: record, offset: opcodeStart, path: nil)
            }
        case .binPersId:
            let id = try pop()
            do {
                stack.append(try persistentLoad(id))
            } catch let error {
                throw error.located(record: record, offset: opcodeStart, path: nearestKey())
            }
        case .persId:
            let id = try readLine()
            do {
                stack.append(try persistentLoad(.string(PyString(id))))
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

    private mutating func pop() throws(CheckpointError) -> PyValue {
        guard let last = stack.last, stack.count > (marks.last ?? 0) else {
            throw fail(.pickle("stack underflow"))
        }
        _ = last
        return stack.removeLast()
    }

    private func top() throws(CheckpointError) -> PyValue {
        guard let last = stack.last, stack.count > (marks.last ?? 0) else { throw fail(.pickle("stack underflow")) }
        return last
    }

    private mutating func popMark() throws(CheckpointError) -> [PyValue] {
        guard let mark = marks.popLast() else { throw fail(.pickle("no MARK on the stack")) }
        let values = Array(stack[mark...])
        stack.removeSubrange(mark...)
        return values
    }

    private mutating func memoize(_ index: Int) throws(CheckpointError) {
        guard index >= 0 else { throw fail(.pickle("negative memo index")) }
        guard memo.count < limits.maxMemo || memo[index] != nil else {
            throw fail(.limit("more than \(limits.maxMemo) memo entries"))
        }
        memo[index] = try top()
    }

    private mutating func recall(_ index: Int) throws(CheckpointError) {
        guard let value = memo[index] else { throw fail(.pickle("memo index \(index) was never stored")) }
        stack.append(value)
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
            if let key = stack[i].stringValue { return key }
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
        guard value <= UInt64(limits.maxStringBytes) else {
            throw fail(.limit("string of \(value) bytes (limit \(limits.maxStringBytes))"))
        }
        return Int(value)
    }

    private mutating func readBytes(count: Int) throws(CheckpointError) -> UnsafeRawBufferPointer {
        guard count <= limits.maxStringBytes else { throw fail(.limit("string of \(count) bytes")) }
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
            guard end - position <= 4096 else { throw fail(.limit("text argument longer than 4096 bytes")) }
        }
        guard end < bytes.count else { throw fail(.truncated("pickle ends inside a text argument")) }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[position..<end]), as: UTF8.self)
        position = end + 1
        return text
    }

    private mutating func readLong(count: Int) throws(CheckpointError) -> PyValue {
        guard count <= limits.maxLongBytes else { throw fail(.limit("integer of \(count) bytes")) }
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
