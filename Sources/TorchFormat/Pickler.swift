import ZooCore

/// Writes a `PyValue` graph as pickle protocol 2 exactly as CPython's `pickle.Pickler` does for the
/// same objects under torch.save (Lib/pickle.py: save_reduce, save_tuple, _batch_setitems, memoize).
///
/// Python memoizes every object except None, bools, ints and floats, by identity; later references
/// become BINGET. Object identity here is the reference identity of `PyString`, `PyTuple`, `PyDict`,
/// … as the unpickler built them, so a checkpoint read and written back reproduces its memo layout.
/// Globals are memoized by name (Python's are module attributes: one object each). Tensors are
/// written the way torch 2.x reduces them: `_rebuild_tensor_v2(storage, offset, size, stride,
/// requires_grad, OrderedDict())` and `_rebuild_parameter(data, requires_grad, OrderedDict())`, with
/// storages as persistent ids ('storage', StorageClass, key, 'cpu', numel) numbered in the order
/// they are first met.
struct Pickler {
    private(set) var output: [UInt8] = [0x80, 0x02]  // PROTO 2
    /// Storages in key order ("0", "1", …).
    private(set) var storages: [TorchStorage] = []
    private var storageKeys: [ObjectIdentifier: PyString] = [:]
    private var memo: [ObjectIdentifier: Int] = [:]
    private var globalMemo: [PyGlobal: Int] = [:]
    private var memoCount = 0
    /// Keeps every memoized object alive so no identity is reused while pickling.
    private var keepAlive: [AnyObject] = []
    /// Python's interned literals that torch passes in every persistent id.
    private let storageLiteral = PyString("storage")
    private let cpuLiteral = PyString("cpu")

    /// Pickles `value` and appends STOP.
    mutating func dump(_ value: PyValue) {
        save(value)
        output.append(Opcode.stop.rawValue)
    }

    private mutating func save(_ value: PyValue) {
        switch value {
        case .none: output.append(Opcode.none.rawValue)
        case let .bool(b): output.append(b ? Opcode.newTrue.rawValue : Opcode.newFalse.rawValue)
        case let .int(i): saveInt(i)
        case let .bigInt(digits):
            if digits.count < 256 {
                output += [Opcode.long1.rawValue, UInt8(digits.count)]
            } else {
                output.append(Opcode.long4.rawValue)
                appendLE(UInt32(digits.count), 4)
            }
            output += digits
        case let .float(f):
            output.append(Opcode.binFloat.rawValue)
            withUnsafeBytes(of: f.bitPattern.bigEndian) { output += $0 }
        case let .string(s):
            if recall(s) { return }
            let utf8 = Array(s.value.utf8)
            output.append(Opcode.binUnicode.rawValue)
            appendLE(UInt32(utf8.count), 4)
            output += utf8
            memoize(s)
        case let .bytes(b):
            // Protocol 2 has no bytes opcode: Python writes _codecs.encode(str, 'latin1').
            if recall(b) { return }
            if b.value.isEmpty {
                saveReduce(PyGlobal("__builtin__", "bytes"), PyTuple([]), state: nil, memoizing: b)
            } else {
                let text = String(String.UnicodeScalarView(b.value.map { Unicode.Scalar($0) }))
                saveReduce(.codecsEncode, PyTuple([.string(PyString(text)), .string(PyString("latin1"))]), state: nil, memoizing: b)
            }
        case let .tuple(t): saveTuple(t)
        case let .list(l):
            if recall(l) { return }
            output.append(Opcode.emptyList.rawValue)
            memoize(l)
            batch(l.items.map { [$0] }, single: .append, many: .appends)
        case let .dict(d):
            if recall(d) { return }
            if d.isOrdered {
                saveGlobal(.orderedDict)
                output.append(Opcode.emptyTuple.rawValue)
                output.append(Opcode.reduce.rawValue)
            } else {
                output.append(Opcode.emptyDict.rawValue)
            }
            memoize(d)
            batch(d.items.map { [$0.key, $0.value] }, single: .setItem, many: .setItems)
            if d.isOrdered, let attributes = d.attributes {
                save(attributes)
                output.append(Opcode.build.rawValue)
            }
        case let .global(g): saveGlobal(g)
        case let .object(o):
            if recall(o) { return }
            saveReduce(o.callable, o.args, state: o.state, memoizing: o)
        case let .storage(s):
            savePersistentID(s)
        case let .tensor(t): saveTensor(t)
        }
    }

    private mutating func saveTensor(_ t: TorchTensor) {
        if recall(t) { return }
        if t.isParameter {
            // Parameter.__reduce_ex__: (_rebuild_parameter, (self.data, requires_grad, OrderedDict()));
            // `self.data` is a fresh plain tensor each time.
            let data = TorchTensor(tensor: t.tensor, source: t.source)
            saveReduce(.rebuildParameter, PyTuple([.tensor(data), .bool(t.requiresGrad), emptyOrderedDict()]), state: nil, memoizing: t)
        } else {
            let v = t.tensor
            let args = PyTuple([
                .storage(t.source), .int(v.offset), .tuple(PyTuple(v.shape.map { .int($0) })),
                .tuple(PyTuple(v.strides.map { .int($0) })), .bool(t.requiresGrad), emptyOrderedDict(),
            ])
            saveReduce(.rebuildTensorV2, args, state: nil, memoizing: t)
        }
    }

    private mutating func emptyOrderedDict() -> PyValue {
        .dict(PyDict(ordered: true))
    }

    private mutating func savePersistentID(_ s: TorchStorage) {
        let key: PyString
        if let known = storageKeys[ObjectIdentifier(s)] {
            key = known
        } else {
            key = PyString(String(storages.count))
            storageKeys[ObjectIdentifier(s)] = key
            storages.append(s)
            keepAlive.append(s)
        }
        let id = PyTuple([
            .string(storageLiteral), .global(PyGlobal("torch", s.dtype.storageClassName)), .string(key),
            .string(cpuLiteral), .int(s.elementCount),
        ])
        saveTuple(id)
        output.append(Opcode.binPersId.rawValue)
    }

    /// save_reduce: callable, argument tuple, REDUCE, memoize the result, then BUILD with `state`.
    private mutating func saveReduce(_ callable: PyGlobal, _ args: PyTuple, state: PyValue?, memoizing object: AnyObject) {
        saveGlobal(callable)
        saveTuple(args)
        output.append(Opcode.reduce.rawValue)
        memoize(object)
        if let state {
            save(state)
            output.append(Opcode.build.rawValue)
        }
    }

    private mutating func saveTuple(_ t: PyTuple) {
        if recall(t) { return }
        let n = t.items.count
        if n == 0 {
            output.append(Opcode.emptyTuple.rawValue)  // never memoized
            return
        }
        if n <= 3 {
            for item in t.items { save(item) }
            output.append([Opcode.tuple1, .tuple2, .tuple3][n - 1].rawValue)
        } else {
            output.append(Opcode.mark.rawValue)
            for item in t.items { save(item) }
            output.append(Opcode.tuple.rawValue)
        }
        memoize(t)
    }

    private mutating func saveGlobal(_ g: PyGlobal) {
        if let index = globalMemo[g] {
            get(index)
            return
        }
        // Protocol 2 writes Python 2 module names (pickle's fix_imports).
        let module = g.module == "builtins" ? "__builtin__" : g.module
        output.append(Opcode.global.rawValue)
        output += Array(module.utf8) + [0x0A] + Array(g.name.utf8) + [0x0A]
        globalMemo[g] = memoCount
        put(memoCount)
        memoCount += 1
    }

    private mutating func saveInt(_ i: Int) {
        if i >= 0 && i <= 0xFF {
            output += [Opcode.binInt1.rawValue, UInt8(i)]
        } else if i >= 0 && i <= 0xFFFF {
            output.append(Opcode.binInt2.rawValue)
            appendLE(UInt64(i), 2)
        } else if i >= -0x8000_0000 && i <= 0x7FFF_FFFF {
            output.append(Opcode.binInt.rawValue)
            appendLE(UInt64(UInt32(bitPattern: Int32(i))), 4)
        } else {
            // pickle.encode_long: minimal little-endian two's complement.
            var digits: [UInt8] = []
            withUnsafeBytes(of: Int64(i).littleEndian) { digits = Array($0) }
            while digits.count > 1 {
                let last = digits[digits.count - 1], previous = digits[digits.count - 2]
                if (last == 0 && previous & 0x80 == 0) || (last == 0xFF && previous & 0x80 != 0) {
                    digits.removeLast()
                } else { break }
            }
            output += [Opcode.long1.rawValue, UInt8(digits.count)] + digits
        }
    }

    /// _batch_appends / _batch_setitems: batches of 1000; a batch of one uses the single opcode;
    /// Python stops after the first batch shorter than 1000.
    private mutating func batch(_ items: [[PyValue]], single: Opcode, many: Opcode) {
        var start = 0
        while true {
            let chunk = items[start..<min(start + 1000, items.count)]
            if chunk.count > 1 {
                output.append(Opcode.mark.rawValue)
                for item in chunk { item.forEach { save($0) } }
                output.append(many.rawValue)
            } else if let item = chunk.first {
                item.forEach { save($0) }
                output.append(single.rawValue)
            }
            if chunk.count < 1000 { return }
            start += 1000
        }
    }

    private mutating func recall(_ object: AnyObject) -> Bool {
        guard let index = memo[ObjectIdentifier(object)] else { return false }
        get(index)
        return true
    }

    private mutating func memoize(_ object: AnyObject) {
        memo[ObjectIdentifier(object)] = memoCount
        keepAlive.append(object)
        put(memoCount)
        memoCount += 1
    }

    private mutating func put(_ index: Int) {
        if index < 256 {
            output += [Opcode.binPut.rawValue, UInt8(index)]
        } else {
            output.append(Opcode.longBinPut.rawValue)
            appendLE(UInt64(index), 4)
        }
    }

    private mutating func get(_ index: Int) {
        if index < 256 {
            output += [Opcode.binGet.rawValue, UInt8(index)]
        } else {
            output.append(Opcode.longBinGet.rawValue)
            appendLE(UInt64(index), 4)
        }
    }

    private mutating func appendLE(_ value: UInt32, _ count: Int) { appendLE(UInt64(value), count) }

    private mutating func appendLE(_ value: UInt64, _ count: Int) {
        for i in 0..<count { output.append(UInt8(truncatingIfNeeded: value >> (8 * UInt64(i)))) }
    }
}

extension DType {
    /// torch's legacy storage class for this dtype (`FloatStorage`).
    public var storageClassName: String {
        switch self {
        case .f32: "FloatStorage"
        case .f64: "DoubleStorage"
        case .f16: "HalfStorage"
        case .bf16: "BFloat16Storage"
        case .i64: "LongStorage"
        case .i32: "IntStorage"
        case .i16: "ShortStorage"
        case .i8: "CharStorage"
        case .u8: "ByteStorage"
        case .bool: "BoolStorage"
        }
    }
}
