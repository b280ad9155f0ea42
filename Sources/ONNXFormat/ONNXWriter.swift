/// The ONNX writer: a zoo `Graph` → an ONNX model file (onnx/onnx.proto, IR versions 7–10,
/// default-domain opsets 13–21; operator semantics from onnx/docs/Operators.md).
///
/// What it writes, and why:
/// - `ir_version` is the lowest IR version that carries the chosen opset, as onnx.helper's
///   `OP_SET_ID_VERSION_MAP` has it (13–14 → 7, 15–18 → 8, 19–20 → 9, 21 → 10), so older runtimes
///   load the file.
/// - Initializers keep the graph's names (the state-dict keys) and dtypes and are stored as
///   little-endian `raw_data`; node names are the graph's node names (module paths); graph inputs and
///   outputs carry their dtype and shape, the batch as a symbolic `dim_param`; every intermediate value
///   gets a `value_info` so onnx's shape inference can check the file against zoo's.
/// - `metadata_props` holds what the caller gives (`ONNXWriteOptions.metadataProps`), in its order;
///   `producer_name` / `producer_version` say zoo wrote the file.
/// - Weights stored in another floating dtype than f32 (f16, bf16, f64) stay in it — a half-precision
///   checkpoint makes a half-size file — and are computed in f32, as zoo's executor does: ONNX ops take
///   one element type for all their inputs, so each such initializer `w` that a node reads gets one
///   `Cast` (to = FLOAT) at the top of the graph, producing `w.f32` (suffixed `_1`, `_2`… if the name
///   is taken; the node has the same name), which the compute nodes read instead. zoo's reader turns
///   that Cast back into a read of `w` itself. Cast of bfloat16 needs opset 13, the lowest zoo writes.
/// - Each op writes itself (`Operator.exportONNX`, through ZooOps' `ONNXExporter`); an op newer
///   than the target opset is written with older ones (LayerNormalization, HardSwish, Gelu, Mish,
///   Shape with start/end).
/// - Dropout is identity at inference and is dropped, its consumers rewired (as torch's exporter
///   does); a Dropout whose output is a graph output becomes an Identity.
/// - AdaptiveAvgPool2d has no ONNX op: when the declared input size divides the output size it is an
///   AveragePool with kernel = stride = in/out (as torch's exporter writes it), otherwise it is refused.
/// - LRN with PyTorch's channel window is ONNX LRN for odd sizes; for even sizes the windows differ
///   (pytorch#75722) and the node is refused.
///
/// Streaming: the ModelProto is packed by protobuf-c straight into an `OutputFile` (temporary file,
/// then rename), and initializers' `raw_data` point at the tensors' own bytes, so no second copy of the
/// model is ever held in memory. protobuf-c does not enforce protobuf's 2 GiB message limit (the file
/// would be unreadable), so a model that would pass it moves its tensors to external data by itself.
///
/// External data (onnx/docs/ExternalData.md): tensors larger than `externalDataThreshold` bytes go to
/// `<model file name>.data` beside the model, each at a 4 KiB-aligned offset, referenced by `location`
/// (the data file's name, relative), `offset` and `length`. Both files are written to temporary files
/// first; the data file is renamed into place just before the model, so a failure leaves the existing
/// files as they were (a failure between the two renames, which only a failing rename can cause,
/// leaves the new data file beside the old model).

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CONNX
import CProtobufC
import ZooCore
import ZooOps

/// How `ONNX.save` writes a model.
public struct ONNXWriteOptions: Sendable {
    /// The default-domain opset the file declares, 13...21.
    public var opset: Int
    /// Store large initializers in `<model file name>.data` even when the model fits in one file.
    public var externalData: Bool
    /// With external data, initializers of more than this many bytes go to the data file; smaller
    /// ones (biases of tiny layers, Reshape shapes) stay inline.
    public var externalDataThreshold: Int
    public var producerName: String
    public var producerVersion: String
    /// `ModelProto.metadata_props`, written in this order: free-form key/value strings (zoo records
    /// the architecture and evaluation transform of a state dict's weights). Each key at most once
    /// (onnx.checker refuses a repeated key) and no NUL byte in either string: `save` refuses
    /// others, naming the key.
    public var metadataProps: [(key: String, value: String)]
    /// The largest model written as a single file. protobuf refuses messages of 2 GiB and more; tests
    /// lower this to exercise the automatic switch to external data.
    var singleFileLimit = Int(Int32.max)

    public init(opset: Int = 17, externalData: Bool = false, externalDataThreshold: Int = 1024,
                producerName: String = "zoo", producerVersion: String = ONNXWriteOptions.zooVersion,
                metadataProps: [(key: String, value: String)] = []) {
        self.opset = opset
        self.externalData = externalData
        self.externalDataThreshold = externalDataThreshold
        self.producerName = producerName
        self.producerVersion = producerVersion
        self.metadataProps = metadataProps
    }

    /// The version zoo stamps into the files it writes.
    public static let zooVersion = "0.1.0"

    /// The opsets the writer supports.
    public static let supportedOpsets = 13...21

    /// The IR version a file of `opset` declares: the lowest that carries it (onnx.helper's
    /// OP_SET_ID_VERSION_MAP), or nil outside `supportedOpsets`.
    public static func irVersion(forOpset opset: Int) -> Int? {
        switch opset {
        case 13, 14: 7
        case 15...18: 8
        case 19, 20: 9
        case 21: 10
        default: nil
        }
    }
}

extension ONNX {
    /// Writes `graph` as an ONNX model at `path` (and, with external data, `<path>.data`).
    ///
    /// The file is complete and renamed into place only when everything succeeded: on any error the
    /// destination (and an existing data file) is left untouched and no temporary file remains.
    /// - Throws: `ONNXError` naming the node and what ONNX cannot express (an unsupported opset, an
    ///   even-size PyTorch LRN, an adaptive pool whose sizes do not divide), a metadata key given
    ///   twice or a metadata string holding a NUL byte, or the I/O failure.
    public static func save(_ graph: Graph, to path: String, options: ONNXWriteOptions = .init()) throws(ONNXError) {
        guard let irVersion = ONNXWriteOptions.irVersion(forOpset: options.opset) else {
            let range = ONNXWriteOptions.supportedOpsets
            throw ONNXError(file: path, "opset \(options.opset) is not supported: zoo writes ONNX opsets \(range.lowerBound)–\(range.upperBound)")
        }
        var keys: Set<String> = []
        for (key, value) in options.metadataProps {
            guard keys.insert(key).inserted else {
                throw ONNXError(file: path, "metadata_props: key '\(key)' given twice (ONNX allows each key once)")
            }
            guard !key.utf8.contains(0), !value.utf8.contains(0) else {
                throw ONNXError(file: path, "metadata_props: key '\(key)': a NUL byte cannot be written in an ONNX string")
            }
        }
        let model: ONNXExporter
        do { model = try ONNXExporter.lower(graph, opset: options.opset) } catch {
            if let node = error.node, let op = error.op { throw ONNXError(file: path, .node(name: node, opType: op), error.message) }
            throw ONNXError(file: path, error.description)
        }
        try ONNXExporter.write(model, irVersion: irVersion, to: path, options: options)
    }
}

// MARK: - Writing: protobuf-c messages packed straight to disk

extension ONNXExporter {
    /// Where each initializer's bytes go.
    private enum Placement {
        case inline
        case external(offset: Int)
    }

    static let externalAlignment = 4096

    /// Writes the lowered model to `path` (and `<path>.data` when tensors go external).
    static func write(_ model: ONNXExporter, irVersion: Int, to path: String, options: ONNXWriteOptions) throws(ONNXError) {
        // raw_data is little-endian; zoo's storages hold native-order elements.
        guard 1.littleEndian == 1 else { throw ONNXError(file: path, "writing ONNX from a big-endian host is not supported") }
        // Dense, contiguous bytes for every initializer: the storage itself when it already is (no copy),
        // else a copy — bounded by maxTensorBytes for a view reaching beyond its storage.
        for entry in model.initializers {
            do throws(LimitExceeded) { try ResourceLimits.current.checkDenseSize(entry.tensor) } catch {
                throw ONNXError(file: path, .tensor(entry.name), error.description)
            }
        }
        let tensors = model.initializers.map { entry in (name: entry.name, tensor: entry.tensor.isContiguous ? entry.tensor : entry.tensor.contiguous()) }
        let slash = path.lastIndex(of: "/")
        let basename = slash.map { String(path[path.index(after: $0)...]) } ?? path
        let dataName = basename + ".data"
        let dataPath = path + ".data"

        func layout(external: Bool) -> (placements: [Placement], dataSize: Int) {
            var offset = 0
            var placements: [Placement] = []
            for entry in tensors {
                if external && entry.tensor.byteCount > options.externalDataThreshold {
                    offset = (offset + externalAlignment - 1) / externalAlignment * externalAlignment
                    placements.append(.external(offset: offset))
                    offset += entry.tensor.byteCount
                } else {
                    placements.append(.inline)
                }
            }
            return (placements, offset)
        }

        var external = options.externalData
        var (placements, dataSize) = layout(external: external)
        var arena = ProtoArena()
        var message = build(model, irVersion: irVersion, tensors: tensors, placements: placements, dataName: dataName, options: options, arena: arena)
        var size = message.withMemoryRebound(to: ProtobufCMessage.self, capacity: 1) { protobuf_c_message_get_packed_size($0) }
        if size > options.singleFileLimit && !external {
            external = true
            (placements, dataSize) = layout(external: true)
            arena = ProtoArena()
            message = build(model, irVersion: irVersion, tensors: tensors, placements: placements, dataName: dataName, options: options, arena: arena)
            size = message.withMemoryRebound(to: ProtobufCMessage.self, capacity: 1) { protobuf_c_message_get_packed_size($0) }
        }
        guard size <= options.singleFileLimit else {
            throw ONNXError(file: path, "the model's graph would take \(size) bytes even with its tensors in external data; "
                + "protobuf cannot hold \(options.singleFileLimit + 1) bytes or more")
        }

        do throws(IOError) {
            var dataFile: OutputFile?
            if dataSize > 0 {
                let file = try OutputFile(path: dataPath)
                dataFile = file
                let zeros = UnsafeMutableRawBufferPointer.allocate(byteCount: externalAlignment, alignment: 16)
                zeros.initializeMemory(as: UInt8.self, repeating: 0)
                defer { zeros.deallocate() }
                for (entry, placement) in zip(tensors, placements) {
                    guard case let .external(offset) = placement else { continue }
                    let padding = offset - file.position
                    if padding > 0 { try file.write(UnsafeRawBufferPointer(rebasing: zeros[..<padding])) }
                    try entry.tensor.withDenseBytes { raw throws(IOError) in try file.write(raw) }
                }
                precondition(file.position == dataSize, "external data layout and writing disagree")
            }
            let modelFile = try OutputFile(path: path)
            var failure: IOError?
            let packed = withExtendedLifetime((arena, tensors)) {
                message.withMemoryRebound(to: ProtobufCMessage.self, capacity: 1) { proto in
                    // protobuf-c's append cannot fail: keep the first error and drop the rest.
                    ONNXProto.packStreaming(proto) { bytes in
                        guard failure == nil else { return }
                        do throws(IOError) { try modelFile.write(bytes) } catch { failure = error }
                    }
                }
            }
            if let failure { throw failure }
            precondition(packed == size && modelFile.position == size, "protobuf-c packed \(packed) bytes, \(modelFile.position) written, \(size) expected")
            try dataFile?.commit()
            try modelFile.commit()
        } catch {
            throw ONNXError(file: error.path, "cannot \(error.operation): \(error.message)")
        }
    }

    /// The ModelProto for `model`, every message, string and array allocated in `arena` (freed with it);
    /// `raw_data` points at the tensors' bytes, which must outlive the packing.
    private static func build(_ model: ONNXExporter, irVersion: Int, tensors: [(name: String, tensor: Tensor)], placements: [Placement],
                              dataName: String, options: ONNXWriteOptions, arena: ProtoArena) -> UnsafeMutablePointer<Onnx__ModelProto> {
        let proto = arena.message(onnx__model_proto__init)
        proto.pointee.has_ir_version = 1
        proto.pointee.ir_version = Int64(irVersion)
        proto.pointee.producer_name = arena.string(options.producerName)
        proto.pointee.producer_version = arena.string(options.producerVersion)
        let opset = arena.message(onnx__operator_set_id_proto__init)
        opset.pointee.domain = arena.string("")
        opset.pointee.has_version = 1
        opset.pointee.version = Int64(model.opset)
        (proto.pointee.n_opset_import, proto.pointee.opset_import) = arena.array([Optional(opset)])
        (proto.pointee.n_metadata_props, proto.pointee.metadata_props) = arena.array(options.metadataProps.map {
            Optional(entry($0.key, $0.value, arena: arena))
        })

        let graph = arena.message(onnx__graph_proto__init)
        graph.pointee.name = arena.string(model.name)
        (graph.pointee.n_node, graph.pointee.node) = arena.array(model.nodes.map { node(for: $0, arena: arena) })
        var initializers: [UnsafeMutablePointer<Onnx__TensorProto>?] = []
        for (entry, placement) in zip(tensors, placements) {
            initializers.append(tensor(entry.name, entry.tensor, placement: placement, dataName: dataName, arena: arena))
        }
        (graph.pointee.n_initializer, graph.pointee.initializer) = arena.array(initializers)
        (graph.pointee.n_input, graph.pointee.input) = arena.array(model.inputs.map { valueInfo($0, arena: arena) })
        (graph.pointee.n_output, graph.pointee.output) = arena.array(model.outputs.map { valueInfo($0, arena: arena) })
        (graph.pointee.n_value_info, graph.pointee.value_info) = arena.array(model.valueInfo.map { valueInfo($0, arena: arena) })
        proto.pointee.graph = graph
        return proto
    }

    private static func node(for node: Node, arena: ProtoArena) -> UnsafeMutablePointer<Onnx__NodeProto>? {
        let proto = arena.message(onnx__node_proto__init)
        proto.pointee.name = arena.string(node.name)
        proto.pointee.op_type = arena.string(node.opType)
        (proto.pointee.n_input, proto.pointee.input) = arena.array(node.inputs.map { Optional(arena.string($0)) })
        (proto.pointee.n_output, proto.pointee.output) = arena.array(node.outputs.map { Optional(arena.string($0)) })
        var attributes: [UnsafeMutablePointer<Onnx__AttributeProto>?] = []
        for (name, value) in node.attributes {
            let attribute = arena.message(onnx__attribute_proto__init)
            attribute.pointee.name = arena.string(name)
            attribute.pointee.has_type = 1
            switch value {
            case let .int(v):
                attribute.pointee.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT
                attribute.pointee.has_i = 1
                attribute.pointee.i = Int64(v)
            case let .float(v):
                attribute.pointee.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT
                attribute.pointee.has_f = 1
                attribute.pointee.f = v
            case let .ints(v):
                attribute.pointee.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS
                (attribute.pointee.n_ints, attribute.pointee.ints) = arena.array(v.map(Int64.init))
            case let .floats(v):
                attribute.pointee.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS
                (attribute.pointee.n_floats, attribute.pointee.floats) = arena.array(v)
            case let .other(type):
                preconditionFailure("an op wrote an attribute of type \(type), which only the reader produces")
            case let .tensor(t):
                attribute.pointee.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR
                attribute.pointee.t = tensor("", t, placement: .inline, dataName: "", arena: arena)  // dense (ONNXExporter.Attribute)
            case let .string(v):
                attribute.pointee.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING
                attribute.pointee.has_s = 1
                let bytes = Array(v.utf8)
                let (count, data) = arena.array(bytes)
                attribute.pointee.s = ProtobufCBinaryData(len: count, data: data)
            }
            attributes.append(attribute)
        }
        (proto.pointee.n_attribute, proto.pointee.attribute) = arena.array(attributes)
        return proto
    }

    private static func tensor(_ name: String, _ tensor: Tensor, placement: Placement, dataName: String,
                               arena: ProtoArena) -> UnsafeMutablePointer<Onnx__TensorProto>? {
        let proto = arena.message(onnx__tensor_proto__init)
        proto.pointee.name = arena.string(name)
        proto.pointee.has_data_type = 1
        proto.pointee.data_type = ONNXDataType(tensor.dtype).rawValue
        (proto.pointee.n_dims, proto.pointee.dims) = arena.array(tensor.shape.map(Int64.init))
        switch placement {
        case .inline:
            let bytes = tensor.withDenseBytes { $0 }
            proto.pointee.has_raw_data = 1
            proto.pointee.raw_data = ProtobufCBinaryData(
                len: bytes.count, data: bytes.baseAddress.map { UnsafeMutablePointer(mutating: $0.assumingMemoryBound(to: UInt8.self)) })
        case let .external(offset):
            proto.pointee.has_data_location = 1
            proto.pointee.data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL
            let entries = [("location", dataName), ("offset", String(offset)), ("length", String(tensor.byteCount))].map { key, value in
                Optional(entry(key, value, arena: arena))
            }
            (proto.pointee.n_external_data, proto.pointee.external_data) = arena.array(entries)
        }
        return proto
    }

    /// A `StringStringEntryProto` (metadata, external-data keys).
    private static func entry(_ key: String, _ value: String, arena: ProtoArena) -> UnsafeMutablePointer<Onnx__StringStringEntryProto> {
        let entry = arena.message(onnx__string_string_entry_proto__init)
        entry.pointee.key = arena.string(key)
        entry.pointee.value = arena.string(value)
        return entry
    }

    private static func valueInfo(_ info: ValueInfo, arena: ProtoArena) -> UnsafeMutablePointer<Onnx__ValueInfoProto>? {
        let proto = arena.message(onnx__value_info_proto__init)
        proto.pointee.name = arena.string(info.name)
        let shape = arena.message(onnx__tensor_shape_proto__init)
        let dims = info.shape.map { dim in
            let proto = arena.message(onnx__tensor_shape_proto__dimension__init)
            switch dim {
            case let .fixed(n):
                proto.pointee.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE
                proto.pointee.dim_value = Int64(n)
            case let .symbolic(name):
                proto.pointee.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM
                proto.pointee.dim_param = arena.string(name)
            }
            return Optional(proto)
        }
        (shape.pointee.n_dim, shape.pointee.dim) = arena.array(dims)
        let tensorType = arena.message(onnx__type_proto__tensor__init)
        tensorType.pointee.has_elem_type = 1
        tensorType.pointee.elem_type = ONNXDataType(info.dtype).rawValue
        tensorType.pointee.shape = shape
        let type = arena.message(onnx__type_proto__init)
        type.pointee.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE
        type.pointee.tensor_type = tensorType
        proto.pointee.type = type
        return proto
    }
}

/// Owns every C allocation the messages of one model make: freed together when the arena goes.
private final class ProtoArena {
    private var blocks: [UnsafeMutableRawPointer] = []

    deinit { for block in blocks { free(block) } }

    /// A zeroed message initialized by protobuf-c's `init` function (which sets its descriptor).
    func message<T>(_ initialize: (UnsafeMutablePointer<T>?) -> Void) -> UnsafeMutablePointer<T> {
        let raw = calloc(1, MemoryLayout<T>.stride)!
        blocks.append(raw)
        let pointer = raw.bindMemory(to: T.self, capacity: 1)
        initialize(pointer)
        return pointer
    }

    func string(_ value: String) -> UnsafeMutablePointer<CChar> {
        let copy = strdup(value)!
        blocks.append(UnsafeMutableRawPointer(copy))
        return copy
    }

    /// A C array holding `elements` and its count (nil for none).
    func array<T>(_ elements: [T]) -> (Int, UnsafeMutablePointer<T>?) {
        guard !elements.isEmpty else { return (0, nil) }
        let raw = calloc(elements.count, MemoryLayout<T>.stride)!
        blocks.append(raw)
        let pointer = raw.bindMemory(to: T.self, capacity: elements.count)
        pointer.initialize(from: elements, count: elements.count)
        return (elements.count, pointer)
    }
}

private extension Tensor {
    /// The dense bytes of a contiguous tensor, in its storage (callers make views contiguous first).
    func withDenseBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        precondition(isContiguous, "dense bytes of a non-contiguous tensor")
        let start = offset * dtype.itemSize
        return try body(UnsafeRawBufferPointer(rebasing: storage.bytes[start..<(start + byteCount)]))
    }
}
