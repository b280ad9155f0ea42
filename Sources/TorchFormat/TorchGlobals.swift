import ZooCore

/// The exact allow-list of Python globals a checkpoint may name, and what calling each one builds.
///
/// Mirrors what torch.load(weights_only=True) needs for model and training checkpoints
/// (torch/_weights_only_unpickler.py), narrowed to what zoo can represent: tensors and parameters
/// (`torch._utils._rebuild_*`, `torch._tensor._rebuild_from_type_v2`), storage classes, dtypes,
/// `collections.OrderedDict`, `torch.Size`, `torch.device`, `set`/`frozenset`, `_codecs.encode`
/// (protocol-2 bytes) and numpy scalars and dtypes. Everything else is refused by name; nothing
/// is ever imported or executed — "calling" a global here means building a value zoo understands.
enum TorchGlobals {
    static let set = PyGlobal("builtins", "set")

    /// Storage class name → element type (torch.<Name>Storage).
    static let storageTypes: [String: DType] = [
        "FloatStorage": .f32, "DoubleStorage": .f64, "HalfStorage": .f16, "BFloat16Storage": .bf16,
        "LongStorage": .i64, "IntStorage": .i32, "ShortStorage": .i16, "CharStorage": .i8,
        "ByteStorage": .u8, "BoolStorage": .bool,
    ]

    /// torch dtype attribute name → element type (`torch.float32`; aliases included).
    static let dtypes: [String: DType] = [
        "float32": .f32, "float": .f32, "float64": .f64, "double": .f64, "float16": .f16, "half": .f16,
        "bfloat16": .bf16, "int64": .i64, "long": .i64, "int32": .i32, "int": .i32, "int16": .i16,
        "short": .i16, "int8": .i8, "uint8": .u8, "bool": .bool,
    ]

    /// Storage and dtype names that exist in torch but hold types zoo does not represent: allowed
    /// as globals so the error can name the unsupported type instead of calling it dangerous.
    static let unsupportedStorageTypes: Set<String> = [
        "ComplexFloatStorage", "ComplexDoubleStorage", "QInt8Storage", "QUInt8Storage", "QInt32Storage",
        "QUInt4x2Storage", "QUInt2x4Storage",
    ]
    static let unsupportedDtypes: Set<String> = [
        "complex64", "complex128", "cfloat", "cdouble", "complex32", "chalf", "uint16", "uint32", "uint64",
        "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz", "float8_e8m0fnu", "qint8",
        "quint8", "qint32", "quint4x2", "quint2x4",
    ]

    static let rebuildTensor = PyGlobal("torch._utils", "_rebuild_tensor")
    static let rebuildTensorV3 = PyGlobal("torch._utils", "_rebuild_tensor_v3")
    static let rebuildParameterWithState = PyGlobal("torch._utils", "_rebuild_parameter_with_state")
    static let rebuildFromTypeV2 = PyGlobal("torch._tensor", "_rebuild_from_type_v2")
    static let torchSize = PyGlobal("torch", "Size")
    static let torchDevice = PyGlobal("torch", "device")
    static let torchTensor = PyGlobal("torch", "Tensor")
    static let parameter = PyGlobal("torch.nn.parameter", "Parameter")
    static let untypedStorage = PyGlobal("torch.storage", "UntypedStorage")
    static let numpyDtype = PyGlobal("numpy", "dtype")

    private static let callables: Set<PyGlobal> = [
        .orderedDict, .rebuildTensorV2, .rebuildParameter, rebuildTensor, rebuildTensorV3,
        rebuildParameterWithState, rebuildFromTypeV2, torchSize, torchDevice, .codecsEncode, set,
        PyGlobal("__builtin__", "set"), PyGlobal("builtins", "frozenset"), PyGlobal("__builtin__", "frozenset"),
        PyGlobal("numpy.core.multiarray", "scalar"), PyGlobal("numpy._core.multiarray", "scalar"),
        PyGlobal("numpy", "dtype"), PyGlobal("__builtin__", "bytes"), PyGlobal("builtins", "bytes"),
    ]

    /// True for the functions that rebuild tensors and parameters.
    static func rebuildsTensor(_ global: PyGlobal) -> Bool {
        [.rebuildTensorV2, rebuildTensor, rebuildTensorV3, .rebuildParameter, rebuildParameterWithState,
         rebuildFromTypeV2].contains(global)
    }

    /// Legacy tensor type names (`torch.FloatTensor`) that tar-format checkpoints record per tensor.
    static let legacyTensorTypes: [String: DType] = [
        "FloatTensor": .f32, "DoubleTensor": .f64, "HalfTensor": .f16, "BFloat16Tensor": .bf16,
        "LongTensor": .i64, "IntTensor": .i32, "ShortTensor": .i16, "CharTensor": .i8,
        "ByteTensor": .u8, "BoolTensor": .bool,
    ]

    /// True when `global` may appear in a checkpoint.
    static func isAllowed(_ global: PyGlobal) -> Bool {
        if callables.contains(global) { return true }
        switch global.module {
        case "torch":
            return storageTypes[global.name] != nil || unsupportedStorageTypes.contains(global.name)
                || dtypes[global.name] != nil || unsupportedDtypes.contains(global.name) || global.name == "Tensor"
                || legacyTensorTypes[global.name] != nil
        case "torch.nn.parameter": return global.name == "Parameter"
        case "torch.storage": return global.name == "UntypedStorage"
        case "numpy.dtypes": return global.name.hasSuffix("DType") && global.name.allSatisfy { $0.isLetter || $0.isNumber }
        default: return false
        }
    }

    /// The element type a storage class global stands for.
    static func storageDType(_ value: PyValue) throws(CheckpointError) -> DType? {
        guard case let .global(global) = value else {
            throw CheckpointError(.pickle("storage type is \(value.kindName), not a storage class"))
        }
        if global == untypedStorage { return nil }
        guard global.module == "torch", let dtype = storageTypes[global.name] else {
            throw CheckpointError(.unsupported("storage type torch.\(global.name)"))
        }
        return dtype
    }

    /// Builds what calling `global(*args)` means for a checkpoint; a tensor's rank is checked
    /// against `limits` (its geometry against its storage by `Tensor` itself). A view may reach
    /// beyond its storage's bytes (an expansion): it stays a view, and whoever materializes it
    /// checks `maxTensorBytes` first (torch's own writer keeps it a view).
    static func call(_ global: PyGlobal, _ args: PyTuple, limits: ResourceLimits) throws(CheckpointError) -> PyValue {
        let a = args.items
        switch global {
        case .orderedDict:
            let dict = PyDict(ordered: true)
            if let first = a.first {
                guard a.count == 1, let pairs = first.sequenceItems else {
                    throw CheckpointError(.pickle("OrderedDict called with \(a.count) arguments"))
                }
                for pair in pairs {
                    guard let kv = pair.sequenceItems, kv.count == 2 else {
                        throw CheckpointError(.pickle("OrderedDict item is not a pair"))
                    }
                    guard isHashable(kv[0]) else { throw CheckpointError(.pickle("unhashable \(kv[0].kindName) as a dict key")) }
                    dict.set(kv[0], kv[1])
                }
            }
            return .dict(dict)
        case .rebuildTensorV2:
            guard a.count == 6 || a.count == 7 else { throw arity(global, a.count, "6 or 7") }
            return .tensor(try rebuild(storage: a[0], offset: a[1], size: a[2], stride: a[3], requiresGrad: a[4], limits: limits))
        case rebuildTensor:
            guard a.count == 4 else { throw arity(global, a.count, "4") }
            return .tensor(try rebuild(storage: a[0], offset: a[1], size: a[2], stride: a[3], requiresGrad: .bool(false), limits: limits))
        case rebuildTensorV3:
            guard a.count == 7 || a.count == 8 else { throw arity(global, a.count, "7 or 8") }
            guard case let .global(dtypeGlobal) = a[6], dtypeGlobal.module == "torch" else {
                throw CheckpointError(.pickle("_rebuild_tensor_v3 dtype is \(a[6].kindName)"))
            }
            guard let dtype = dtypes[dtypeGlobal.name] else {
                throw CheckpointError(.unsupported("dtype torch.\(dtypeGlobal.name)"))
            }
            return .tensor(try rebuild(storage: a[0], offset: a[1], size: a[2], stride: a[3], requiresGrad: a[4], dtype: dtype, limits: limits))
        case .rebuildParameter, rebuildParameterWithState:
            guard a.count == (global == .rebuildParameter ? 3 : 4) else { throw arity(global, a.count, "3 or 4") }
            guard case let .tensor(data) = a[0] else {
                throw CheckpointError(.pickle("\(global.name) of \(a[0].kindName), not a tensor"))
            }
            if a.count == 4 { try checkNoState(a[3], global) }
            return .tensor(TorchTensor(tensor: data.tensor, source: data.source, requiresGrad: try bool(a[1]), isParameter: true))
        case rebuildFromTypeV2:
            guard a.count == 4, case let .global(function) = a[0], case let .global(type) = a[1],
                  case let .tuple(inner) = a[2] else {
                throw CheckpointError(.pickle("malformed _rebuild_from_type_v2 call"))
            }
            guard [.rebuildTensorV2, rebuildTensor, rebuildTensorV3, .rebuildParameter].contains(function) else {
                throw CheckpointError(.forbiddenGlobal(module: function.module, name: function.name))
            }
            guard type == torchTensor || type == parameter else {
                throw CheckpointError(.unsupported("tensor subclass \(type)"))
            }
            try checkNoState(a[3], global)
            guard case let .tensor(t) = try call(function, inner, limits: limits) else {
                throw CheckpointError(.pickle("_rebuild_from_type_v2 did not build a tensor"))
            }
            if type == parameter {
                return .tensor(TorchTensor(tensor: t.tensor, source: t.source, requiresGrad: t.requiresGrad, isParameter: true))
            }
            return .tensor(t)
        case .codecsEncode:
            let object = PyObject(callable: global, args: args)
            guard a.count == 2, a[0].stringValue != nil, a[1].stringValue == "latin1",
                  PyValue.object(object).bytesValue != nil else {
                throw CheckpointError(.unsupported("_codecs.encode other than (str, 'latin1') bytes"))
            }
            return .object(object)
        case torchSize:
            guard a.count == 1, let dims = a[0].sequenceItems, dims.allSatisfy({ $0.intValue != nil }) else {
                throw CheckpointError(.pickle("torch.Size of something other than a tuple of ints"))
            }
            return .object(PyObject(callable: global, args: args))
        default:
            // set, frozenset, empty bytes, torch.device, numpy scalar / dtype: kept as their recipe.
            guard callables.contains(global) else { throw CheckpointError(.pickle("\(global) is not callable")) }
            if isSetType(global), let items = a.first {
                guard a.count == 1, let members = items.sequenceItems else {
                    throw CheckpointError(.pickle("\(global) of \(items.kindName), not a list"))
                }
                if let bad = members.first(where: { !isHashable($0) }) {
                    throw CheckpointError(.pickle("unhashable \(bad.kindName) in a \(global.name)"))
                }
            }
            return .object(PyObject(callable: global, args: args))
        }
    }

    /// Applies BUILD, which torch's weights-only unpickler allows only where zoo keeps the state:
    /// attributes on an OrderedDict (a state dict's `_metadata`) and a numpy dtype's state.
    static func build(_ target: PyValue, state: PyValue) throws(CheckpointError) {
        switch target {
        case let .dict(dict) where dict.isOrdered:
            dict.attributes = state
        case let .object(object) where object.callable == numpyDtype:
            object.state = state
        default:
            throw CheckpointError(.pickle("BUILD on \(target.kindName) (only an OrderedDict or a numpy dtype takes state)"))
        }
    }

    private static func isSetType(_ global: PyGlobal) -> Bool {
        ["builtins", "__builtin__"].contains(global.module) && ["set", "frozenset"].contains(global.name)
    }

    /// Whether Python could hash `value`, as set members and dict keys must be: not a list, dict or
    /// set, nor a tuple holding one. Tensors, storages and kept objects other than sets hash by
    /// identity or value.
    static func isHashable(_ value: PyValue) -> Bool {
        var pending = [value]
        var seen: Set<ObjectIdentifier> = []
        while let next = pending.popLast() {
            switch next {
            case .list, .dict: return false
            case let .object(o) where o.callable == set || o.callable == PyGlobal("__builtin__", "set"): return false
            case let .tuple(t) where seen.insert(ObjectIdentifier(t)).inserted: pending += t.items
            default: continue
            }
        }
        return true
    }

    /// Refuses a tensor's Python attributes (the `state` of `_rebuild_parameter_with_state` and
    /// `_rebuild_from_type_v2`): zoo keeps none of them, so writing the tensor back would drop them.
    private static func checkNoState(_ state: PyValue, _ global: PyGlobal) throws(CheckpointError) {
        switch state {
        case .none: return
        case let .dict(d) where d.count == 0 && d.attributes == nil: return
        default:
            throw CheckpointError(.unsupported("\(global.name) with Python attributes (a non-empty state): zoo would drop them when writing"))
        }
    }

    private static func rebuild(storage: PyValue, offset: PyValue, size: PyValue, stride: PyValue,
                                requiresGrad: PyValue, dtype: DType? = nil, limits: ResourceLimits) throws(CheckpointError) -> TorchTensor {
        guard case var .storage(source) = storage else {
            throw CheckpointError(.pickle("tensor rebuilt from \(storage.kindName), not a storage"))
        }
        if let dtype, dtype != source.dtype {
            // _rebuild_tensor_v3: an untyped (byte) storage, typed by the call — its bytes were left in
            // the file's order and alignment, so prepare them for the real type now.
            guard source.dtype == .u8, source.storage.byteCount % dtype.itemSize == 0 else {
                throw CheckpointError(.storage("storage '\(source.key)' is \(source.dtype.rawValue), tensor says \(dtype.rawValue)"))
            }
            source = TorchStorage(key: source.key, dtype: dtype, location: source.location,
                                  storage: StorageBytes.prepare(source.storage, dtype: dtype, byteOrder: source.fileByteOrder),
                                  fileByteOrder: source.fileByteOrder)
        }
        guard let offset = offset.intValue else { throw CheckpointError(.pickle("storage offset is \(offset.kindName)")) }
        let shape = try ints(size, "size")
        let strides = try ints(stride, "stride")
        let grad = try bool(requiresGrad)
        do throws(LimitExceeded) { try limits.checkRank(shape.count) } catch { throw CheckpointError(.limit(error)) }
        let tensor: Tensor
        do {
            tensor = try Tensor(dtype: source.dtype, shape: shape, strides: strides, offset: offset, storage: source.storage)
        } catch {
            throw CheckpointError(.tensor(error))
        }
        return TorchTensor(tensor: tensor, source: source, requiresGrad: grad)
    }

    private static func ints(_ value: PyValue, _ what: String) throws(CheckpointError) -> [Int] {
        var items = value.sequenceItems
        if case let .object(object) = value, object.callable == torchSize { items = object.args.items.first?.sequenceItems }
        guard let items else { throw CheckpointError(.pickle("tensor \(what) is \(value.kindName), not a tuple")) }
        var result: [Int] = []
        for item in items {
            guard let i = item.intValue else { throw CheckpointError(.pickle("tensor \(what) holds \(item.kindName)")) }
            result.append(i)
        }
        return result
    }

    private static func bool(_ value: PyValue) throws(CheckpointError) -> Bool {
        switch value {
        case let .bool(b): return b
        case let .int(i): return i != 0
        default: throw CheckpointError(.pickle("requires_grad is \(value.kindName)"))
        }
    }

    private static func arity(_ global: PyGlobal, _ count: Int, _ expected: String) -> CheckpointError {
        CheckpointError(.pickle("\(global) called with \(count) arguments, expected \(expected)"))
    }
}
