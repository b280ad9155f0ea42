/// The ONNX reader: a ModelProto (https://onnx.ai/onnx/repo-docs/IR.html, operators at
/// https://onnx.ai/onnx/operators/) → a zoo `Graph`.
///
/// Reads the default operator domain at opsets 1…22. Every op the zoo IR has is imported through a
/// registry of builders (one per ONNX op type, opset differences as explicit branches); before any
/// node is built, every node whose op has no builder is collected and reported in one error. Before
/// opset 7 (onnx.defs schemas of version 1 and 6): BatchNormalization and Dropout need is_test=1
/// (their default 0 is training mode), Add and Gemm's legacy `broadcast`/`axis` broadcasting is
/// mapped onto the IR's NumPy broadcasting, `consumed_inputs` (opsets 1…5) is ignored, Reshape-1
/// (opsets 1…4) takes its shape as an attribute and Concat-1 (opsets 1…3) defaults axis to 1. Constant
/// and ConstantOfShape are folded into initializers, Identity is dropped, Dropout kept as the IR's
/// identity-at-inference op, and MatMul imported where it is trivially a Gemm (2-D input × 2-D constant).
/// Cast is imported only where it widens a weight stored in another precision (a floating-point
/// constant cast to FLOAT, as zoo's writer stores f16/bf16/f64 weights): nodes then read the stored
/// tensor itself, which the executor widens when it plans.
///
/// Tensors: raw_data and every typed field; external data is memory-mapped (zero-copy when aligned)
/// from files inside the model's folder only.
///
/// Resources: before protobuf-c unpacks a file, `ProtoBudget` checks from the wire bytes that the
/// unpacked tree stays within `maxONNXExpansion` times the file's size and `maxONNXNesting`
/// levels (and that every string field is UTF-8 text without NUL); tensor ranks are bounded by
/// `maxTensorRank` and folded constants by `maxFoldedConstantBytes` (all `ResourceLimits`,
/// `current` unless given).
import CONNX
import CProtobufC
import ZooCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An imported ONNX model.
public struct ONNXModel: Sendable {
    public let graph: Graph
    public let irVersion: Int
    /// The default-domain opset the model imports.
    public let opset: Int
    /// `producer_name` and, when present, `producer_version` ("pytorch 2.9.1").
    public let producer: String
    public let path: String
    /// Every initializer of the file in file order — including any no node reads, which `graph`
    /// leaves out — as stored (not converted).
    public let initializers: [(name: String, tensor: Tensor)]
    /// Names of initializers that nodes read only as constants the import folded into an op (a
    /// Reshape's target shape, a ConstantOfShape's shape): graph data, not weights — torch's exporter
    /// makes them (`val_8`), and a state dict has no place for them.
    public let graphConstants: Set<String>
}

public enum ONNX {
    /// The default-domain opsets the reader imports.
    public static let supportedOpsets = 1...22

    /// Reads the ONNX model at `path` into a zoo graph.
    /// - Throws: `ONNXError` naming the file and the node, tensor or value at fault.
    public static func load(path: String, limits: ResourceLimits = .current) throws(ONNXError) -> ONNXModel {
        let proto = try unpack(path: path, limits: limits)
        var importer = Importer(proto: proto, path: path, limits: limits)
        return try importer.run()
    }

    /// The ModelProto in `path`, unpacked once its wire bytes are known to fit `limits`
    /// (`ProtoBudget`); a malformed `ZOO_LIMITS` is refused first.
    static func unpack(path: String, limits: ResourceLimits) throws(ONNXError) -> ONNXModelProto {
        if let problem = ResourceLimits.environmentProblem { throw ONNXError(file: path, problem) }
        return try ONNXModelProto(path: path, limits: limits)
    }

    /// The graph's initializers, decoded (every typed field, raw_data, external data) but not
    /// interpreted: for inspecting a file whose graph zoo may not import.
    public static func initializers(path: String, limits: ResourceLimits = .current) throws(ONNXError) -> [(name: String, tensor: Tensor)] {
        let proto = try unpack(path: path, limits: limits)
        var importer = Importer(proto: proto, path: path, limits: limits)
        let graph = proto.model.pointee.graph!.pointee
        var result: [(name: String, tensor: Tensor)] = []
        var names: Set<String> = []
        for (index, tensor) in ONNXProto.messages(graph.initializer, graph.n_initializer).enumerated() {
            let name = ONNXProto.string(tensor.pointee.name)
            guard names.insert(name).inserted else { throw ONNXError(file: path, .tensor(name), "initializer defined twice") }
            result.append((name, try importer.readTensor(tensor, initializer: index)))
        }
        return result
    }

    /// A serialized TensorProto file (the onnx backend suite's `input_0.pb` / `output_0.pb`, what
    /// `onnx.numpy_helper.from_array(a).SerializeToString()` writes) as a zoo tensor, decoded as the
    /// importer decodes initializers: raw_data (a zero-copy slice of the mapped file when aligned),
    /// every typed field, external data from files in the same folder.
    /// - Throws: `ONNXError` naming the file when it cannot be read or is not a TensorProto zoo holds.
    public static func tensor(fromTensorProtoFile path: String, limits: ResourceLimits = .current) throws(ONNXError) -> Tensor {
        if let problem = ResourceLimits.environmentProblem { throw ONNXError(file: path, problem) }
        let file: MappedFile
        do { file = try MappedFile(path: path) } catch { throw ONNXError(file: path, error.description) }
        var rawData: Range<Int>?
        _ = ProtoWire.forEachField(file.bytes, 0..<file.bytes.count) { field, wire, payload in
            if field == 9 && wire == 2 { rawData = payload }  // TensorProto.raw_data; the last occurrence wins
        }
        var decoder = TensorDecoder(path: path, file: file, rawData: [rawData], limits: limits)
        return try tensor(unpacking: file.bytes, &decoder)
    }

    /// A serialized TensorProto in memory (copied); `name` stands for the file in error messages.
    /// External data is refused: there is no folder to find it in.
    public static func tensor(fromTensorProtoBytes bytes: UnsafeRawBufferPointer, name: String = "TensorProto",
                              limits: ResourceLimits = .current) throws(ONNXError) -> Tensor {
        if let problem = ResourceLimits.environmentProblem { throw ONNXError(file: name, problem) }
        var decoder = TensorDecoder(path: name, file: nil, rawData: nil, externalData: false, limits: limits)
        return try tensor(unpacking: bytes, &decoder)
    }

    private static func tensor(unpacking bytes: UnsafeRawBufferPointer, _ decoder: inout TensorDecoder) throws(ONNXError) -> Tensor {
        guard bytes.count > 0, let base = bytes.baseAddress else { throw ONNXError(file: decoder.path, "not a TensorProto: the file is empty") }
        let verdict = ProtoBudget.check(bytes, onnx__tensor_proto__descriptor, limits: decoder.limits)  // as for a model (ONNXModelProto)
        if case let .refused(reason) = verdict { throw ONNXError(file: decoder.path, reason) }
        guard let proto = onnx__tensor_proto__unpack(nil, bytes.count, base.assumingMemoryBound(to: UInt8.self)) else {
            throw ONNXError(file: decoder.path, "not a TensorProto: the bytes do not parse as one (truncated or not protobuf)")
        }
        defer { onnx__tensor_proto__free_unpacked(proto, nil) }
        guard verdict == .valid else { throw ONNXError(file: decoder.path, ProtoBudget.unchecked) }
        guard proto.pointee.has_data_type != 0 else { throw ONNXError(file: decoder.path, "not a TensorProto: no data_type") }
        return try decoder.decode(proto, rawDataIndex: 0)
    }

    /// Unpacks `path` and packs it again to `destination` (atomically). Fields the schema does not
    /// know survive as protobuf-c unknown fields, so the result is byte-identical for files written
    /// by the usual protobuf serializers. The plumbing a read-modify-write tool builds on.
    public static func rewrite(path: String, to destination: String, limits: ResourceLimits = .current) throws(ONNXError) {
        let proto = try unpack(path: path, limits: limits)
        let message = UnsafeRawPointer(proto.model).assumingMemoryBound(to: ProtobufCMessage.self)
        guard protobuf_c_message_get_packed_size(message) < Int(Int32.max) else {
            throw ONNXError(file: destination, "the model would exceed protobuf's 2 GiB limit")
        }
        do throws(IOError) {
            let out = try OutputFile(path: destination)
            var failure: IOError?
            ONNXProto.packStreaming(message) { bytes in
                guard failure == nil else { return }
                do throws(IOError) { try out.write(bytes) } catch { failure = error }
            }
            if let failure { throw failure }
            try out.commit()
        } catch {
            throw ONNXError(file: destination, error.description)
        }
    }
}

// MARK: - Importer

/// One import: the model's state while nodes are translated in order.
struct Importer {
    let proto: ONNXModelProto
    let path: String
    let limits: ResourceLimits
    var opset = 0

    /// Known values: graph inputs, initializers, folded constants, node outputs.
    var constants: [String: Tensor] = [:]
    var constantOrder: [String] = []
    var inputs: [ValueInfo] = []
    var nodes: [Node] = []
    var nodeNames: Set<String> = []
    /// Identity outputs and widening Casts → the value they forward.
    var aliases: [String: String] = [:]
    /// Values the model types FLOAT whose constant is stored in another floating dtype: the outputs
    /// of widening Casts, and Identity copies of them. Only through these may an op read such a constant.
    var widened: Set<String> = []
    /// Every value some node or the graph output reads (to check that dropped extra outputs are unused).
    var consumed: Set<String> = []
    /// Initializers, Constant values and ConstantOfShape fills.
    var decoder: TensorDecoder
    /// Graph inputs and the outputs of `nodes[..<inferredNodes]`, inferred incrementally as
    /// builders ask for shapes (`shape(of:)`), so a lookup costs the nodes appended since the last.
    var inferred: [String: ValueInfo] = [:]
    var inferredNodes = 0

    init(proto: ONNXModelProto, path: String, limits: ResourceLimits) {
        self.proto = proto
        self.path = path
        self.limits = limits
        decoder = TensorDecoder(path: path, file: proto.file, rawData: proto.initializerRawData, limits: limits)
    }

    func fail(_ message: String) -> ONNXError { ONNXError(file: path, message) }

    mutating func run() throws(ONNXError) -> ONNXModel {
        let model = proto.model.pointee
        let irVersion = Int(model.ir_version)
        guard irVersion >= 3 else { throw fail("IR version \(irVersion) is not supported (3 or newer)") }
        var opsets: [String: Int] = [:]
        for entry in ONNXProto.messages(model.opset_import, model.n_opset_import) {
            let domain = ONNXProto.string(entry.pointee.domain)
            opsets[domain == "ai.onnx" ? "" : domain] = Int(entry.pointee.version)
        }
        guard let opset = opsets[""] else { throw fail("the model imports no opset of the default ONNX domain") }
        guard ONNX.supportedOpsets.contains(opset) else {
            throw fail("opset \(opset) is not supported (zoo reads opsets \(ONNX.supportedOpsets.lowerBound) to \(ONNX.supportedOpsets.upperBound))")
        }
        self.opset = opset
        let graph = model.graph!.pointee

        let protoNodes = ONNXProto.messages(graph.node, graph.n_node)
        try checkSupported(protoNodes)

        // Initializers (sparse ones are refused: no op here takes them).
        if graph.n_sparse_initializer > 0 { throw fail("sparse initializers are not supported") }
        var fileInitializers: [(name: String, tensor: Tensor)] = []
        for (index, tensor) in ONNXProto.messages(graph.initializer, graph.n_initializer).enumerated() {
            let name = ONNXProto.string(tensor.pointee.name)
            guard constants[name] == nil else { throw ONNXError(file: path, .tensor(name), "initializer defined twice") }
            let decoded = try readTensor(tensor, initializer: index)
            fileInitializers.append((name, decoded))
            addConstant(name, decoded)
        }

        // Graph inputs: those with an initializer are constants (IR 3 lists every initializer as an
        // input; later IRs allow overridable defaults) — the rest must be exactly one tensor.
        for input in ONNXProto.messages(graph.input, graph.n_input) {
            let name = ONNXProto.string(input.pointee.name)
            if constants[name] != nil { continue }
            guard !name.isEmpty else { throw fail("a graph input has an empty name") }
            guard !inputs.contains(where: { $0.name == name }) else { throw ONNXError(file: path, .value(name), "graph input listed twice") }
            inputs.append(try valueInfo(input, name: name))
        }
        for input in inputs { inferred[input.name] = input }
        guard !inputs.isEmpty else { throw fail("the graph has no runtime inputs (every input is an initializer): there is nothing to run it on") }

        let outputs = ONNXProto.messages(graph.output, graph.n_output).map { ONNXProto.string($0.pointee.name) }
        for (index, output) in outputs.enumerated() {
            guard !output.isEmpty else { throw fail("graph output \(index) has an empty name") }
            guard !outputs[..<index].contains(output) else { throw ONNXError(file: path, .value(output), "graph output listed twice") }
        }
        consumed = Set(outputs)
        for node in protoNodes {
            for input in ONNXProto.strings(node.pointee.input, node.pointee.n_input) { consumed.insert(input) }
        }

        var usedNames: Set<String> = []
        /// The next suffix to try per repeated name, so n nodes sharing a name cost O(n), not O(n²).
        var nextSuffix: [String: Int] = [:]
        for (index, node) in protoNodes.enumerated() {
            let opType = ONNXProto.string(node.pointee.op_type)
            var name = ONNXProto.string(node.pointee.name)
            if name.isEmpty { name = "\(opType)_\(index)" }
            if usedNames.contains(name) {
                let base = name
                var k = nextSuffix[base, default: 1]
                while usedNames.contains("\(base)_\(k)") { k += 1 }
                name = "\(base)_\(k)"
                nextSuffix[base] = k + 1
            }
            usedNames.insert(name)
            let context = NodeContext(proto: node, name: name, opType: opType, file: path, aliases: aliases)
            // Every op zoo imports computes its first output; builders may rely on it.
            guard let output = context.outputs.first, !output.isEmpty else { throw context.error("has no output") }
            try Importer.builders[opType]!(&self, context)
        }

        // A graph output produced through Identity keeps its ONNX name: the value it forwards is
        // renamed to it (when that value is a node output and not itself a graph output).
        for output in outputs {
            guard let source = aliases[output], !outputs.contains(source),
                  let producer = nodes.firstIndex(where: { $0.output == source }) else { continue }
            nodes[producer].output = output
            for k in nodes.indices { nodes[k].inputs = nodes[k].inputs.map { $0 == source ? output : $0 } }
            for (key, value) in aliases where value == source { aliases[key] = output }
        }
        let resolvedOutputs = outputs.map { aliases[$0] ?? $0 }
        for (original, output) in zip(outputs, resolvedOutputs) where constants[output] != nil {
            throw ONNXError(file: path, .value(original), "graph output is a constant; zoo graphs compute their outputs")
        }

        // Only constants a node reads become graph initializers (Reshape shapes and the like were
        // consumed while importing).
        let read = Set(nodes.flatMap(\.inputs))
        let initializers = constantOrder.filter { read.contains($0) }.map { (name: $0, tensor: constants[$0]!) }
        let built: Graph
        do {
            built = try Graph(name: ONNXProto.string(graph.name).isEmpty ? "onnx" : ONNXProto.string(graph.name),
                              inputs: inputs, initializers: initializers, nodes: nodes, outputs: resolvedOutputs)
        } catch {
            if let node = error.node, let op = error.op { throw ONNXError(file: path, .node(name: node, opType: op), error.message) }
            throw fail(error.description)
        }
        var producer = ONNXProto.string(model.producer_name)
        let version = ONNXProto.string(model.producer_version)
        if !version.isEmpty { producer += producer.isEmpty ? version : " \(version)" }
        let folded = Set(fileInitializers.map(\.name).filter { consumed.contains($0) && !read.contains($0) })
        return ONNXModel(graph: built, irVersion: irVersion, opset: opset, producer: producer, path: path,
                         initializers: fileInitializers, graphConstants: folded)
    }

    /// Every node whose op the importer cannot build (`Importer.unsupported`), reported together.
    func checkSupported(_ protoNodes: [UnsafeMutablePointer<Onnx__NodeProto>]) throws(ONNXError) {
        var unsupported: [String] = []
        for (index, node) in protoNodes.enumerated() {
            let opType = ONNXProto.string(node.pointee.op_type)
            let domain = ONNXProto.string(node.pointee.domain)
            var name = ONNXProto.string(node.pointee.name)
            if name.isEmpty { name = "\(opType)_\(index)" }
            switch Importer.unsupported(opType: opType, domain: domain, opset: opset) {
            case nil: break
            case .otherDomain: unsupported.append("node '\(name)' (\(domain).\(opType))")
            case .noBuilder: unsupported.append("node '\(name)' (\(opType))")
            case let .introduced(since):
                unsupported.append("node '\(name)' (\(opType), which opset \(opset) lacks: it was introduced in opset \(since))")
            }
        }
        guard unsupported.isEmpty else { throw fail("unsupported ops: " + unsupported.joined(separator: ", ")) }
    }

    mutating func addConstant(_ name: String, _ tensor: Tensor) {
        if constants[name] == nil { constantOrder.append(name) }
        constants[name] = tensor
    }

    /// A graph input's declared type: a float tensor whose dims are fixed except a batch that may be
    /// symbolic (a dim_param, 0 or unset).
    func valueInfo(_ info: UnsafeMutablePointer<Onnx__ValueInfoProto>, name: String) throws(ONNXError) -> ValueInfo {
        func refuse(_ message: String) -> ONNXError { ONNXError(file: path, .value(name), message) }
        guard let type = info.pointee.type, type.pointee.value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE,
              let tensorType = type.pointee.tensor_type else {
            throw refuse("graph input is not a tensor")
        }
        let elementType = ONNXDataType(rawValue: tensorType.pointee.elem_type)
        guard let dtype = elementType.dtype else { throw refuse("graph input has element type \(elementType), which zoo does not hold") }
        guard let shape = tensorType.pointee.shape else { throw refuse("graph input has no shape") }
        do throws(LimitExceeded) { try limits.checkRank(shape.pointee.n_dim, "graph input") } catch { throw refuse(error.description) }
        var dims: [Dim] = []
        for (axis, dim) in ONNXProto.messages(shape.pointee.dim, shape.pointee.n_dim).enumerated() {
            let d = dim.pointee
            if d.value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE, d.dim_value > 0 {
                dims.append(.fixed(Int(d.dim_value)))
            } else if axis == 0 {
                let symbol = d.value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM ? ONNXProto.string(d.dim_param) : ""
                dims.append(.symbolic(symbol.isEmpty ? "batch" : symbol))
            } else {
                dims.append(.symbolic(d.value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM ? ONNXProto.string(d.dim_param) : "?"))
            }
        }
        for (axis, dim) in dims.enumerated() where axis > 0 && dim.value == nil {
            let what = dims.count == 4 ? ["", "channels", "height", "width"][axis] : "dimension \(axis)"
            throw refuse("graph input shape [\(dims.map(\.description).joined(separator: ", "))]: \(what) must be fixed (only the batch may be symbolic)")
        }
        // One sample must be countable in bytes: later shape arithmetic relies on it.
        guard let count = Tensor.checkedCount(dims.compactMap(\.value)), !count.multipliedReportingOverflow(by: dtype.itemSize).overflow else {
            throw refuse("graph input shape [\(dims.map(\.description).joined(separator: ", "))] is too large (its size in bytes overflows)")
        }
        return ValueInfo(name: name, dtype: dtype, shape: dims)
    }

    /// The shape of a value built so far (for auto_pad, MatMul, legacy broadcasting and the
    /// pre-13 Softmax): a constant's, or a graph input's or node output's as the IR infers it. Nodes
    /// appended since the last lookup are inferred now, one at a time, so importing stays linear.
    mutating func shape(of value: String, _ context: NodeContext) throws(ONNXError) -> [Dim] {
        if let tensor = constants[value] { return tensor.shape.map { .fixed($0) } }
        while inferredNodes < nodes.count {
            let node = nodes[inferredNodes]
            do throws(GraphError) {
                var infos: [ValueInfo] = []
                for input in node.inputs {
                    if let tensor = constants[input] {
                        infos.append(ValueInfo(name: input, dtype: tensor.dtype, shape: tensor.shape.map { .fixed($0) }))
                    } else if let info = inferred[input] {
                        infos.append(info)
                    } else {
                        throw GraphError(node: node.name, op: node.op.name, "input '\(input)' is not defined before this node")
                    }
                }
                guard inferred[node.output] == nil else {
                    throw GraphError(node: node.name, op: node.op.name, "output '\(node.output)' is already defined")
                }
                inferred[node.output] = try Graph.inferOutput(of: node, inputs: infos)
            } catch {
                throw context.error("cannot infer the shape of input '\(value)': \(error)")
            }
            inferredNodes += 1
        }
        guard let info = inferred[value] else { throw context.error("input '\(value)' is not defined before this node") }
        return info.shape
    }

    /// A TensorProto's contents as a zoo tensor (see `TensorDecoder.decode`); the graph's
    /// `initializer`-th initializer's raw_data may be a zero-copy slice of the mapped model file.
    mutating func readTensor(_ pointer: UnsafeMutablePointer<Onnx__TensorProto>, initializer: Int? = nil) throws(ONNXError) -> Tensor {
        try decoder.decode(pointer, rawDataIndex: initializer)
    }
}

// MARK: - Tensors

/// Decodes TensorProtos — for the importer (initializers, Constant, ConstantOfShape) and for
/// `ONNX.tensor(fromTensorProtoFile:)` — into zoo tensors: raw_data (little-endian), the typed field
/// the data type uses, or external data from files inside `folder` only.
struct TensorDecoder {
    /// The file being read (for error messages).
    let path: String
    /// Where external data must live: the file's folder; nil when decoding bytes without a file.
    let folder: String?
    /// The mapped file the TensorProtos were unpacked from, when there is one.
    let file: MappedFile?
    /// Where raw_data fields lie in `file`, by the index callers pass to `decode` (graph initializers
    /// in wire order for a model, the one message for a TensorProto file).
    let rawData: [Range<Int>?]?
    /// `maxTensorRank` bounds every tensor's dims.
    let limits: ResourceLimits
    var externalFiles: [String: MappedFile] = [:]

    init(path: String, file: MappedFile?, rawData: [Range<Int>?]?, externalData: Bool = true, limits: ResourceLimits) {
        self.path = path
        self.file = file
        self.rawData = rawData
        self.limits = limits
        let slash = path.lastIndex(of: "/")
        folder = externalData ? slash.map { String(path[..<$0]) } ?? "." : nil
    }

    /// A TensorProto's contents as a zoo tensor: raw_data (little-endian), the typed field its data
    /// type uses, or external data. raw_data is a zero-copy slice of the mapped file when
    /// `rawData[rawDataIndex]` locates it there, aligned to its element size.
    mutating func decode(_ pointer: UnsafeMutablePointer<Onnx__TensorProto>, rawDataIndex initializer: Int? = nil) throws(ONNXError) -> Tensor {
        let t = pointer.pointee
        let name = ONNXProto.string(t.name)
        let path = self.path
        func refuse(_ message: String) -> ONNXError { name.isEmpty ? ONNXError(file: path, message) : ONNXError(file: path, .tensor(name), message) }
        let type = ONNXDataType(rawValue: t.data_type)
        guard let dtype = type.dtype else { throw refuse("data type \(type) is not supported (zoo holds \(DType.allCases.map(\.rawValue).joined(separator: ", ")))") }
        do throws(LimitExceeded) { try limits.checkRank(t.n_dims) } catch { throw refuse(error.description) }
        let dims = ONNXProto.buffer(t.dims, t.n_dims).map { Int($0) }
        guard dims.allSatisfy({ $0 >= 0 }) else { throw refuse("negative dimension in \(dims)") }
        guard let count = Tensor.checkedCount(dims), case let (bytes, false) = count.multipliedReportingOverflow(by: dtype.itemSize) else {
            throw refuse("shape \(dims) is too large")
        }
        if t.segment != nil { throw refuse("segmented tensors are not supported") }
        func make(_ storage: Storage) throws(ONNXError) -> Tensor {
            do { return try Tensor(dtype: dtype, shape: dims, storage: storage) } catch { throw refuse("\(error)") }
        }

        if t.has_data_location != 0, t.data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL {
            return try make(external(t, name: name, bytes: bytes))
        }
        if t.has_raw_data != 0 {
            let raw = ONNXProto.bytes(t.raw_data)
            guard raw.count == bytes else { throw refuse("raw_data holds \(raw.count) bytes, \(dtype.rawValue) \(dims) needs \(bytes)") }
            if raw.count > 0, let initializer, let file, let ranges = rawData, initializer < ranges.count,
               let range = ranges[initializer], range.count == raw.count, range.lowerBound % dtype.itemSize == 0,
               memcmp(file.bytes.baseAddress! + range.lowerBound, raw.baseAddress!, min(raw.count, 64)) == 0 {
                return try make(Storage(mapping: file, range: range))
            }
            return try make(Storage(copying: raw))
        }
        func typed<T>(_ values: UnsafeBufferPointer<T>, _ field: String) throws(ONNXError) -> UnsafeBufferPointer<T> {
            guard values.count == count else { throw refuse("\(field) holds \(values.count) values, shape \(dims) needs \(count)") }
            return values
        }
        switch dtype {
        case .f32: return try make(Storage(copying: UnsafeRawBufferPointer(try typed(ONNXProto.buffer(t.float_data, t.n_float_data), "float_data"))))
        case .f64: return try make(Storage(copying: UnsafeRawBufferPointer(try typed(ONNXProto.buffer(t.double_data, t.n_double_data), "double_data"))))
        case .i64: return try make(Storage(copying: UnsafeRawBufferPointer(try typed(ONNXProto.buffer(t.int64_data, t.n_int64_data), "int64_data"))))
        case .i32: return try make(Storage(copying: UnsafeRawBufferPointer(try typed(ONNXProto.buffer(t.int32_data, t.n_int32_data), "int32_data"))))
        case .i16, .i8, .u8, .bool, .f16, .bf16:
            // Every type of 16 bits or fewer travels widened in int32_data (f16/bf16 as bit patterns).
            let values = try typed(ONNXProto.buffer(t.int32_data, t.n_int32_data), "int32_data")
            let range: ClosedRange<Int32> = switch dtype {
            case .i16: Int32(Int16.min)...Int32(Int16.max)
            case .i8: Int32(Int8.min)...Int32(Int8.max)
            case .u8: 0...255
            case .bool: 0...1
            default: 0...0xFFFF
            }
            if let bad = values.firstIndex(where: { !range.contains($0) }) {
                throw refuse("int32_data[\(bad)] = \(values[bad]) is out of range for \(dtype.rawValue)")
            }
            return try make(Storage(byteCount: bytes) { out in
                for (i, v) in values.enumerated() {
                    if dtype.itemSize == 2 { out.storeBytes(of: UInt16(truncatingIfNeeded: v), toByteOffset: 2 * i, as: UInt16.self) }
                    else { out.storeBytes(of: UInt8(truncatingIfNeeded: v), toByteOffset: i, as: UInt8.self) }
                }
            })
        }
    }

    /// External data: `location` relative to the file's folder (never absolute, never leaving it,
    /// symlinks included), `offset` / `length` checked against the file; the bytes are a zero-copy
    /// slice of the mapped file when the offset suits the element alignment.
    mutating func external(_ t: Onnx__TensorProto, name: String, bytes: Int) throws(ONNXError) -> Storage {
        let path = self.path
        func refuse(_ message: String) -> ONNXError { name.isEmpty ? ONNXError(file: path, message) : ONNXError(file: path, .tensor(name), message) }
        guard let folder else { throw refuse("external data needs the file's folder; these bytes have none") }
        var location: String?
        var offset = 0
        var length: Int?
        for (key, value) in ONNXProto.entries(t.external_data, t.n_external_data) {
            switch key {
            case "location": location = value
            case "offset", "length":
                guard let number = Int(value), number >= 0 else { throw refuse("external data \(key) '\(value)' is not a byte count") }
                if key == "offset" { offset = number } else { length = number }
            case "checksum": break
            default: throw refuse("unknown external data key '\(key)'")
            }
        }
        guard let location, !location.isEmpty else { throw refuse("external data has no location") }
        guard !location.hasPrefix("/") else { throw refuse("external data location '\(location)' is an absolute path; it must be relative to the model's folder") }
        guard !location.split(separator: "/").contains("..") else { throw refuse("external data location '\(location)' escapes the model's folder") }
        let file = folder + "/" + location
        if externalFiles[file] == nil {
            guard let realFolder = realpath(folder, nil) else { throw refuse("cannot resolve the model's folder") }
            defer { free(realFolder) }
            guard let realFile = realpath(file, nil) else {
                throw refuse("external data file '\(location)' is missing (\(String(cString: strerror(errno))))")
            }
            defer { free(realFile) }
            let base = String(cString: realFolder), target = String(cString: realFile)
            guard target.hasPrefix(base.hasSuffix("/") ? base : base + "/") else {
                throw refuse("external data location '\(location)' escapes the model's folder (resolves to \(target))")
            }
            do { externalFiles[file] = try MappedFile(path: file) } catch { throw refuse("external data: \(error)") }
        }
        let mapped = externalFiles[file]!
        let size = mapped.bytes.count
        if let length, length != bytes { throw refuse("external data length \(length) but the tensor needs \(bytes) bytes") }
        guard offset <= size, bytes <= size - offset else {
            throw refuse("external data '\(location)': \(bytes) bytes at offset \(offset) lie outside the file (\(size) bytes)")
        }
        let range = offset..<(offset + bytes)
        let alignment = max(1, ONNXDataType(rawValue: t.data_type).dtype?.itemSize ?? 1)
        if offset % alignment == 0 { return Storage(mapping: mapped, range: range) }
        return Storage(copying: UnsafeRawBufferPointer(rebasing: mapped.bytes[range]))
    }
}

// MARK: - Nodes

/// One NodeProto being imported, with typed attribute getters whose errors name the node and op.
struct NodeContext {
    let proto: UnsafeMutablePointer<Onnx__NodeProto>
    let name: String
    let opType: String
    let file: String
    /// Input names with aliases (Identity, widening Cast) resolved: the values the IR reads.
    let inputs: [String]
    /// Input names as the file writes them.
    let onnxInputs: [String]
    let outputs: [String]
    let attributes: [String: UnsafeMutablePointer<Onnx__AttributeProto>]

    init(proto: UnsafeMutablePointer<Onnx__NodeProto>, name: String, opType: String, file: String, aliases: [String: String]) {
        self.proto = proto
        self.name = name
        self.opType = opType
        self.file = file
        onnxInputs = ONNXProto.strings(proto.pointee.input, proto.pointee.n_input)
        inputs = onnxInputs.map { aliases[$0] ?? $0 }
        outputs = ONNXProto.strings(proto.pointee.output, proto.pointee.n_output)
        var attributes: [String: UnsafeMutablePointer<Onnx__AttributeProto>] = [:]
        for attribute in ONNXProto.messages(proto.pointee.attribute, proto.pointee.n_attribute) {
            attributes[ONNXProto.string(attribute.pointee.name)] = attribute
        }
        self.attributes = attributes
    }

    func error(_ message: String) -> ONNXError { ONNXError(file: file, .node(name: name, opType: opType), message) }

    /// Refuses attributes the builder does not read: their meaning would be silently lost.
    func allow(_ names: Set<String>) throws(ONNXError) {
        let unknown = attributes.keys.filter { !names.contains($0) }.sorted()
        guard unknown.isEmpty else { throw error("unsupported attribute\(unknown.count > 1 ? "s" : "") \(unknown.map { "'\($0)'" }.joined(separator: ", "))") }
    }

    private func attribute(_ key: String, _ expected: Onnx__AttributeProto__AttributeType) throws(ONNXError) -> Onnx__AttributeProto? {
        guard let a = attributes[key]?.pointee else { return nil }
        guard a.type == expected else {
            let names = [0: "UNDEFINED", 1: "FLOAT", 2: "INT", 3: "STRING", 4: "TENSOR", 5: "GRAPH", 6: "FLOATS", 7: "INTS",
                         8: "STRINGS", 9: "TENSORS", 10: "GRAPHS", 11: "SPARSE_TENSOR", 12: "SPARSE_TENSORS", 13: "TYPE_PROTO", 14: "TYPE_PROTOS"]
            let name = { (t: Onnx__AttributeProto__AttributeType) in names[Int(t.rawValue)] ?? "type \(t.rawValue)" }
            throw error("attribute '\(key)' is \(name(a.type)), expected \(name(expected))")
        }
        return a
    }

    func int(_ key: String) throws(ONNXError) -> Int? {
        try attribute(key, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT).map { Int($0.i) }
    }
    func int(_ key: String, default value: Int) throws(ONNXError) -> Int { try int(key) ?? value }
    func float(_ key: String, default value: Float) throws(ONNXError) -> Float {
        try attribute(key, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT).map(\.f) ?? value
    }
    func ints(_ key: String) throws(ONNXError) -> [Int]? {
        try attribute(key, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS).map { a in ONNXProto.buffer(a.ints, a.n_ints).map { Int($0) } }
    }
    func floats(_ key: String) throws(ONNXError) -> [Float]? {
        try attribute(key, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS).map { a in Array(ONNXProto.buffer(a.floats, a.n_floats)) }
    }
    func string(_ key: String) throws(ONNXError) -> String? {
        try attribute(key, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING).map { a in
            String(decoding: ONNXProto.bytes(a.s), as: UTF8.self)
        }
    }
    func string(_ key: String, default value: String) throws(ONNXError) -> String { try string(key) ?? value }
    func tensor(_ key: String) throws(ONNXError) -> UnsafeMutablePointer<Onnx__TensorProto>? {
        guard let a = try attribute(key, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR) else { return nil }
        guard let t = a.t else { throw error("attribute '\(key)' holds no tensor") }
        return t
    }

    /// The input at `index`, nil when absent or named "" (an omitted optional input).
    func input(_ index: Int) -> String? { index < inputs.count && !inputs[index].isEmpty ? inputs[index] : nil }

    func requireInputs(_ range: ClosedRange<Int>) throws(ONNXError) {
        let present = inputs.lastIndex { !$0.isEmpty }.map { $0 + 1 } ?? 0
        guard range.contains(present) else { throw error("takes \(range.lowerBound)…\(range.upperBound) inputs, has \(present)") }
    }
}

extension Importer {
    typealias Builder = @Sendable (inout Importer, NodeContext) throws(ONNXError) -> Void

    /// Ops with a builder that did not exist in opset 1.
    static let introduced: [String: Int] = ["ConstantOfShape": 9]

    /// Why the importer has no way to build an op.
    enum Unsupported: Equatable {
        /// The op belongs to a domain other than the default one ("" or "ai.onnx").
        case otherDomain
        /// No builder for this op type.
        case noBuilder
        /// A builder exists, but the op appeared only in this later opset.
        case introduced(Int)
    }

    /// Whether a node of `opType` in `domain` has a builder at `opset`, the default-domain opset
    /// the model imports (nil: none, so only the builder table is asked): nil when it has, else
    /// why not. The one answer behind `checkSupported` and `ONNX.describe`'s `unsupportedOps`.
    /// A node with a builder may still be refused when built (an attribute value, an input shape).
    static func unsupported(opType: String, domain: String, opset: Int?) -> Unsupported? {
        guard domain.isEmpty || domain == "ai.onnx" else { return .otherDomain }
        guard builders[opType] != nil else { return .noBuilder }
        if let since = introduced[opType], let opset, opset < since { return .introduced(since) }
        return nil
    }

    /// One builder per ONNX op type; attribute defaults are the standard's.
    static let builders: [String: Builder] = [
        "Conv": { (i: inout Importer, n: NodeContext) throws(ONNXError) in try i.conv(n) },
        "Relu": { (i: inout Importer, n: NodeContext) throws(ONNXError) in
            try n.allow(i.opset < 6 ? ["consumed_inputs"] : []); try n.requireInputs(1...1); try i.emit(n, .relu, [n.inputs[0]])
        },
        "MaxPool": { (i: inout Importer, n: NodeContext) throws(ONNXError) in try i.pool(n, max: true) },
        "AveragePool": { (i: inout Importer, n: NodeContext) throws(ONNXError) in try i.pool(n, max: false) },
        "GlobalAveragePool": { (i: inout Importer, n: NodeContext) throws(ONNXError) in
            try n.allow([]); try n.requireInputs(1...1); try i.emit(n, .globalAveragePool, [n.inputs[0]])
        },
        "LRN": { (i: inout Importer, n: NodeContext) throws(ONNXError) in
            try n.allow(["size", "alpha", "beta", "bias"]); try n.requireInputs(1...1)
            guard let size = try n.int("size") else { throw n.error("attribute 'size' is required") }
            let lrn = Op.LRN(size: size, alpha: try n.float("alpha", default: 1e-4), beta: try n.float("beta", default: 0.75),
                             bias: try n.float("bias", default: 1), window: .onnx)
            try i.emit(n, .lrn(lrn), [n.inputs[0]])
        },
        "Flatten": { (i: inout Importer, n: NodeContext) throws(ONNXError) in
            try n.allow(["axis"]); try n.requireInputs(1...1)
            let axis = try n.int("axis", default: 1)
            if axis < 0 && i.opset < 11 { throw n.error("negative axis \(axis) needs opset 11") }
            try i.emit(n, .flatten(axis: axis), [n.inputs[0]])
        },
        "Reshape": { (i: inout Importer, n: NodeContext) throws(ONNXError) in try i.reshape(n) },
        "Gemm": { (i: inout Importer, n: NodeContext) throws(ONNXError) in try i.gemm(n) },
        "Dropout": { (i: inout Importer, n: NodeContext) throws(ONNXError) in try i.dropout(n) },
        "Softmax": { (i: inout Importer, n: NodeContext) throws(ONNXError) in try i.softmax(n) },
        "MatMul": { (i: inout Importer, n: NodeContext) throws(ONNXError) in try i.matMul(n) },
        "Add": { (i: inout Importer, n: NodeContext) throws(ONNXError) in try i.add(n) },
        "BatchNormalization": { (i: inout Importer, n: NodeContext) throws(ONNXError) in try i.batchNormalization(n) },
        "Concat": { (i: inout Importer, n: NodeContext) throws(ONNXError) in
            try n.allow(["axis"])
            // Concat-1 (opsets 1…3) defaults axis to 1; from Concat-4 it is required.
            guard let axis = try n.int("axis") ?? (i.opset < 4 ? 1 : nil) else { throw n.error("attribute 'axis' is required") }
            guard !n.inputs.isEmpty, n.inputs.allSatisfy({ !$0.isEmpty }) else { throw n.error("needs at least one input, none empty") }
            try i.emit(n, .concat(axis: axis), n.inputs)
        },
        "Cast": { (i: inout Importer, n: NodeContext) throws(ONNXError) in try i.cast(n) },
        "Identity": { (i: inout Importer, n: NodeContext) throws(ONNXError) in
            try n.allow([]); try n.requireInputs(1...1)
            guard n.outputs.count == 1 else { throw n.error("has \(n.outputs.count) outputs, expected 1") }
            if let constant = i.constants[n.inputs[0]] {
                i.addConstant(n.outputs[0], constant)
                if i.widened.contains(n.onnxInputs[0]) { i.widened.insert(n.outputs[0]) }
            } else {
                i.aliases[n.outputs[0]] = n.inputs[0]
            }
        },
        "Constant": { (i: inout Importer, n: NodeContext) throws(ONNXError) in try i.constant(n) },
        "ConstantOfShape": { (i: inout Importer, n: NodeContext) throws(ONNXError) in try i.constantOfShape(n) },
    ]

    /// Appends an IR node for a single-output ONNX node; extra outputs must be absent or unused.
    mutating func emit(_ n: NodeContext, _ op: Op, _ inputs: [String], usedOutputs: Int = 1) throws(ONNXError) {
        guard let output = n.outputs.first, !output.isEmpty else { throw n.error("has no output") }
        for extra in n.outputs.dropFirst() where !extra.isEmpty && consumed.contains(extra) {
            throw n.error("output '\(extra)' is used, but zoo computes only the first output of \(n.opType)")
        }
        // With an f32 graph input every computed value is f32, and the ops take one element type for
        // all their inputs (BatchNormalization-15's scale, bias, mean and var excepted): a constant
        // stored in another dtype must come through a widening Cast. Read directly, the model is
        // ill-typed (onnx.checker and onnxruntime refuse it), and so refused here too.
        if self.inputs.first?.dtype == .f32, !(n.opType == "BatchNormalization" && opset >= 15) {
            for name in n.onnxInputs where !name.isEmpty && !widened.contains(name) {
                let value = aliases[name] ?? name
                guard inputs.contains(value), let t = constants[value], t.dtype.isFloatingPoint, t.dtype != .f32 else { continue }
                throw n.error("input '\(name)' is stored as \(t.dtype.rawValue) and read without a Cast: \(n.opType) takes one element "
                    + "type for all its inputs, here f32 (a weight stored in another precision is read through a Cast to FLOAT)")
            }
        }
        nodes.append(Node(n.name, op, inputs: inputs, output: output))
    }

    /// A constant integer input (Reshape's shape, ConstantOfShape's shape), from an initializer or a
    /// folded Constant.
    func constantInts(_ value: String, _ n: NodeContext, _ role: String) throws(ONNXError) -> [Int] {
        guard let tensor = constants[value] else { throw n.error("\(role) '\(value)' must be a constant (initializer or Constant)") }
        guard tensor.dtype == .i64 || tensor.dtype == .i32, tensor.rank <= 1 else {
            throw n.error("\(role) '\(value)' must be a 1-D int64 tensor, is \(tensor.dtype.rawValue) \(tensor.shape)")
        }
        // As a shape, its length is a rank.
        do throws(LimitExceeded) { try limits.checkRank(tensor.count, "\(role) '\(value)'") } catch { throw n.error(error.description) }
        // The integers themselves: through Double, 2^63 - 1 would round to 2^63 and trap converting back.
        let dense = tensor.contiguous()
        let bytes = dense.storage.bytes
        return (0..<dense.count).map { k in
            dense.dtype == .i64 ? Int(Int64(littleEndian: bytes.loadUnaligned(fromByteOffset: 8 * k, as: Int64.self)))
                : Int(Int32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4 * k, as: Int32.self)))
        }
    }

    /// Explicit [top, left, bottom, right] pads for `auto_pad` and `pads`, resolved for the input's
    /// declared spatial size when auto_pad is SAME_*.
    mutating func pads(_ n: NodeContext, kernel: [Int], strides: [Int], dilations: [Int]) throws(ONNXError) -> [Int] {
        // Validated before any arithmetic: SAME_* divides by the strides and multiplies by the dilations.
        guard kernel.count == 2, strides.count == 2, dilations.count == 2 else {
            throw n.error("only 2-D windows are supported (kernel_shape \(kernel), strides \(strides), dilations \(dilations))")
        }
        guard kernel.allSatisfy({ $0 >= 1 }) else { throw n.error("kernel_shape \(kernel) must be positive") }
        guard strides.allSatisfy({ $0 >= 1 }) else { throw n.error("strides \(strides) must be positive") }
        guard dilations.allSatisfy({ $0 >= 1 }) else { throw n.error("dilations \(dilations) must be positive") }
        if let pads = try n.ints("pads") {
            guard pads.count == 4 else { throw n.error("pads \(pads) must have 4 values for a 2-D op") }
            guard pads.allSatisfy({ $0 >= 0 }) else { throw n.error("pads \(pads) must be non-negative") }
        }
        let autoPad = try n.string("auto_pad", default: "NOTSET")
        switch autoPad {
        case "NOTSET":
            return try n.ints("pads") ?? [0, 0, 0, 0]
        case "VALID":
            if let pads = try n.ints("pads"), pads.contains(where: { $0 != 0 }) { throw n.error("auto_pad VALID with nonzero pads \(pads)") }
            return [0, 0, 0, 0]
        case "SAME_UPPER", "SAME_LOWER":
            let x = try shape(of: n.inputs[0], n)
            guard x.count == 4, let h = x[2].value, let w = x[3].value else {
                throw n.error("auto_pad \(autoPad) needs a fixed-size 4-D input, '\(n.inputs[0])' is [\(x.map(\.description).joined(separator: ", "))]")
            }
            var begin = [0, 0], end = [0, 0]
            for (axis, size) in [h, w].enumerated() {
                // out = ceil(size / stride); total = (out - 1) * stride + (kernel - 1) * dilation + 1 - size.
                let out = size / strides[axis] + (size % strides[axis] == 0 ? 0 : 1)
                let (reach, o1) = (out - 1).multipliedReportingOverflow(by: strides[axis])  // ≤ size: cannot overflow
                let (span, o2) = (kernel[axis] - 1).multipliedReportingOverflow(by: dilations[axis])
                let (extent, o3) = reach.addingReportingOverflow(span)
                guard !o1, !o2, !o3, extent < Int.max else {
                    throw n.error("auto_pad \(autoPad): the window (kernel_shape \(kernel), dilations \(dilations)) is too large")
                }
                let total = max(0, extent + 1 - size)
                begin[axis] = autoPad == "SAME_UPPER" ? total / 2 : total - total / 2
                end[axis] = total - begin[axis]
            }
            return [begin[0], begin[1], end[0], end[1]]
        default:
            throw n.error("attribute 'auto_pad': unknown value '\(autoPad)'")
        }
    }

    mutating func conv(_ n: NodeContext) throws(ONNXError) {
        try n.allow(["auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"])
        try n.requireInputs(2...3)
        let weightShape = try shape(of: n.inputs[1], n)
        guard weightShape.count == 4, let kh = weightShape[2].value, let kw = weightShape[3].value else {
            throw n.error("only 2-D convolution is supported: weight '\(n.inputs[1])' must be [M, C/group, kH, kW]")
        }
        let kernel = try n.ints("kernel_shape") ?? [kh, kw]
        let strides = try n.ints("strides") ?? [1, 1]
        let dilations = try n.ints("dilations") ?? [1, 1]
        guard kernel.count == 2, strides.count == 2, dilations.count == 2 else {
            throw n.error("only 2-D convolution is supported (kernel_shape \(kernel), strides \(strides), dilations \(dilations))")
        }
        let conv = Op.Conv(kernel: kernel, strides: strides, dilations: dilations,
                           pads: try pads(n, kernel: kernel, strides: strides, dilations: dilations), groups: try n.int("group", default: 1))
        try emit(n, .conv(conv), Array(n.inputs.prefix(2)) + (n.input(2).map { [$0] } ?? []))
    }

    mutating func pool(_ n: NodeContext, max: Bool) throws(ONNXError) {
        var allowed: Set<String> = ["auto_pad", "kernel_shape", "pads", "strides"]
        if opset >= 10 { allowed.formUnion(["ceil_mode", "dilations"]) }
        if max { allowed.insert("storage_order") } else if opset >= 7 { allowed.insert("count_include_pad") }  // AveragePool-7
        if !max && opset < 19 { allowed.remove("dilations") }
        try n.allow(allowed)
        try n.requireInputs(1...1)
        guard let kernel = try n.ints("kernel_shape") else { throw n.error("attribute 'kernel_shape' is required") }
        let strides = try n.ints("strides") ?? [1, 1]
        guard kernel.count == 2, strides.count == 2 else { throw n.error("only 2-D pooling is supported (kernel_shape \(kernel))") }
        if let dilations = try n.ints("dilations"), dilations.contains(where: { $0 != 1 }) {
            throw n.error("dilations \(dilations) are not supported (only 1)")
        }
        if max, try n.int("storage_order", default: 0) != 0 { throw n.error("storage_order 1 (column-major indices) is not supported") }
        var pool = Op.Pool(kernel: kernel, strides: strides, pads: try pads(n, kernel: kernel, strides: strides, dilations: [1, 1]),
                           ceilMode: try n.int("ceil_mode", default: 0) != 0)
        if !max { pool.countIncludePad = try n.int("count_include_pad", default: 0) != 0 }
        try emit(n, max ? .maxPool(pool) : .averagePool(pool), [n.inputs[0]])
    }

    mutating func reshape(_ n: NodeContext) throws(ONNXError) {
        let target: [Int]
        if opset < 5 {
            // Reshape-1: the shape is an attribute (0 copies, one -1 is inferred, as later).
            try n.allow(["shape", "consumed_inputs"])
            try n.requireInputs(1...1)
            guard let shape = try n.ints("shape") else { throw n.error("attribute 'shape' is required") }
            do throws(LimitExceeded) { try limits.checkRank(shape.count, "shape") } catch { throw n.error(error.description) }
            target = shape
        } else {
            try n.allow(opset >= 14 ? ["allowzero"] : [])
            try n.requireInputs(2...2)
            target = try constantInts(n.inputs[1], n, "shape")
        }
        let allowZero = try n.int("allowzero", default: 0) != 0
        if let constant = constants[n.inputs[0]] {
            // A reshaped constant stays a constant (same bytes, new shape).
            guard let count = Tensor.checkedCount(constant.shape) else { throw n.error("constant too large") }
            guard target.allSatisfy({ $0 >= -1 }), target.filter({ $0 == -1 }).count <= 1 else {
                throw n.error("shape \(target) must hold sizes ≥ 0 and at most one -1")
            }
            var shape = target
            for (k, t) in target.enumerated() where t == 0 && !allowZero { shape[k] = k < constant.rank ? constant.shape[k] : 0 }
            if let m = shape.firstIndex(of: -1) {
                guard let rest = Tensor.checkedCount(shape.enumerated().filter { $0.offset != m }.map(\.element)) else {
                    throw n.error("cannot reshape constant \(constant.shape) to \(target): the sizes' product overflows")
                }
                guard rest > 0, count % rest == 0 else { throw n.error("cannot reshape constant \(constant.shape) to \(target)") }
                shape[m] = count / rest
            }
            guard Tensor.checkedCount(shape) == count else { throw n.error("cannot reshape constant \(constant.shape) to \(target)") }
            let dense = constant.contiguous()
            do { addConstant(n.outputs[0], try Tensor(dtype: dense.dtype, shape: shape, storage: dense.storage)) } catch {
                throw n.error("\(error)")
            }
            return
        }
        // A -1 standing exactly for the symbolic batch ([-1, 9216] on [N, 256, 6, 6], as torch's
        // dynamo export writes it) is resolved by the IR's shape inference.
        try emit(n, .reshape(shape: target, allowZero: allowZero), [n.inputs[0]])
    }

    mutating func dropout(_ n: NodeContext) throws(ONNXError) {
        var ratio: Float = 0.5
        if opset < 12 {
            var allowed: Set<String> = ["ratio"]
            if opset < 7 { allowed.insert("is_test") }
            if opset < 6 { allowed.insert("consumed_inputs") }
            try n.allow(allowed)
            try n.requireInputs(1...1)
            ratio = try n.float("ratio", default: 0.5)
            // Dropout-1/6 drops at random unless is_test is nonzero (default 0).
            if opset < 7, try n.int("is_test", default: 0) == 0 {
                throw n.error("is_test is 0 (random training-mode dropout, the default before opset 7); zoo runs inference only, which needs is_test=1")
            }
        } else {
            try n.allow(["seed"])
            try n.requireInputs(1...3)
            if let r = n.input(1) {
                guard let t = constants[r], t.count == 1, t.dtype.isFloatingPoint else { throw n.error("ratio '\(r)' must be a constant scalar") }
                ratio = Float(t.doubles()[0])
            }
            if let mode = n.input(2) {
                guard let t = constants[mode], t.count == 1 else { throw n.error("training_mode '\(mode)' must be a constant") }
                guard t.doubles()[0] == 0 else { throw n.error("training_mode is true; zoo runs inference only") }
            }
        }
        try emit(n, .dropout(ratio: ratio), [n.inputs[0]])
    }

    /// Softmax from opset 13 normalizes along `axis`; before, it coerces the input to 2-D at `axis`
    /// and normalizes each row. Those agree when `axis` is the last axis; otherwise the old form is
    /// Flatten(axis) → Softmax(1) → Reshape back.
    mutating func softmax(_ n: NodeContext) throws(ONNXError) {
        try n.allow(["axis"])
        try n.requireInputs(1...1)
        let axis = try n.int("axis", default: opset >= 13 ? -1 : 1)
        if opset >= 13 { return try emit(n, .softmax(axis: axis), [n.inputs[0]]) }
        let x = try shape(of: n.inputs[0], n)
        let a = axis < 0 ? axis + x.count : axis
        guard (0..<Swift.max(x.count, 1)).contains(a) else { throw n.error("axis \(axis) out of range for rank \(x.count)") }
        if a == x.count - 1 { return try emit(n, .softmax(axis: a), [n.inputs[0]]) }
        guard let output = n.outputs.first, !output.isEmpty else { throw n.error("has no output") }
        let flat = "\(output)/coerced_2d", normalized = "\(output)/softmax_2d"
        nodes.append(Node("\(n.name)/coerce_2d", .flatten(axis: a), inputs: [n.inputs[0]], output: flat))
        nodes.append(Node("\(n.name)/softmax_2d", .softmax(axis: 1), inputs: [flat], output: normalized))
        let target = x.enumerated().map { $0.element.value ?? ($0.offset == 0 ? 0 : -1) }
        nodes.append(Node(n.name, .reshape(shape: target, allowZero: false), inputs: [normalized], output: output))
    }

    /// MatMul is imported only where it is trivially a Gemm: a 2-D A times a 2-D constant B (a
    /// following bias Add stays an Add).
    mutating func matMul(_ n: NodeContext) throws(ONNXError) {
        try n.allow([])
        try n.requireInputs(2...2)
        let a = try shape(of: n.inputs[0], n)
        guard a.count == 2, let b = constants[n.inputs[1]], b.rank == 2 else {
            throw n.error("only a 2-D input times a 2-D constant (a Gemm) is supported; '\(n.inputs[0])' has rank \(a.count)"
                + (constants[n.inputs[1]] == nil ? " and '\(n.inputs[1])' is not a constant" : ""))
        }
        try emit(n, .gemm(Op.Gemm()), [n.inputs[0], n.inputs[1]])
    }

    mutating func gemm(_ n: NodeContext) throws(ONNXError) {
        var allowed: Set<String> = ["alpha", "beta", "transA", "transB"]
        if opset < 7 { allowed.insert("broadcast") }  // Gemm-1/6
        try n.allow(allowed)
        try n.requireInputs(opset >= 11 ? 2...3 : 3...3)
        let gemm = Op.Gemm(alpha: try n.float("alpha", default: 1), beta: try n.float("beta", default: 1),
                           transA: try n.int("transA", default: 0) != 0, transB: try n.int("transB", default: 0) != 0)
        var inputs = [n.inputs[0], n.inputs[1]]
        if let c = n.input(2) {
            if opset >= 7 {
                inputs.append(c)
            } else {
                // Gemm-1/6: C is [M, N], or with broadcast=1 is broadcast to it (legacy rules: suffix
                // matching, no axis attribute).
                let a = try shape(of: n.inputs[0], n), b = try shape(of: n.inputs[1], n), cShape = try shape(of: c, n)
                guard a.count == 2, b.count == 2 else {
                    throw n.error("A \(Importer.text(a)) and B \(Importer.text(b)) must be 2-D")
                }
                let y = [gemm.transA ? a[1] : a[0], gemm.transB ? b[0] : b[1]]
                if try n.int("broadcast", default: 0) != 0 {
                    var value = try legacyBroadcast(n, c, shape: cShape, to: y, axis: nil, role: "C")
                    // A one-element [1, 1] C: the IR's Gemm takes a one-element C as [1].
                    if cShape == [.fixed(1), .fixed(1)], y != cShape { value = try reshaped(n, value, to: [1], role: "C") }
                    inputs.append(value)
                } else {
                    guard cShape == y else {
                        throw n.error("C \(Importer.text(cShape)) must be [M, N] = \(Importer.text(y)): broadcast is 0, and before opset 7 Gemm broadcasts C only with broadcast=1")
                    }
                    inputs.append(c)
                }
            }
        }
        try emit(n, .gemm(gemm), inputs)
    }

    /// Add from opset 7 broadcasts NumPy-style (the IR's Add). Add-1/6 broadcast only with
    /// broadcast=1, and only B to A's shape: B's dims are a contiguous run of A's starting at `axis`
    /// (suffix matching when unset), or B holds one element; broadcast=0 needs equal shapes.
    mutating func add(_ n: NodeContext) throws(ONNXError) {
        try n.requireInputs(2...2)
        guard opset < 7 else {
            try n.allow([])
            return try emit(n, .add, [n.inputs[0], n.inputs[1]])
        }
        try n.allow(opset < 6 ? ["axis", "broadcast", "consumed_inputs"] : ["axis", "broadcast"])
        let a = try shape(of: n.inputs[0], n), b = try shape(of: n.inputs[1], n)
        guard try n.int("broadcast", default: 0) != 0 else {
            guard a == b else {
                throw n.error("A \(Importer.text(a)) and B \(Importer.text(b)) differ: broadcast is 0, and before opset 7 Add broadcasts only with broadcast=1")
            }
            return try emit(n, .add, [n.inputs[0], n.inputs[1]])
        }
        try emit(n, .add, [n.inputs[0], try legacyBroadcast(n, n.inputs[1], shape: b, to: a, axis: try n.int("axis"), role: "B")])
    }

    /// Legacy (opset < 7) broadcasting of `value` (shape `b`) to shape `a`: `b` must be a contiguous
    /// run of `a`'s dims starting at `axis` (suffix matching when nil), or hold one element. The
    /// changelog says "1-dim expansion doesn't work yet"; exporters relied on it anyway (torch's
    /// [2, 1] + axis=0 onto [2, 3]), so a dim of 1 in `b` broadcasts, as it does from opset 7.
    /// Returns what the IR's right-aligned NumPy broadcasting reads: `value` itself when the run
    /// ends at `a`'s last dim, else `value` reshaped with trailing 1s (the constant refolded, or an
    /// IR Reshape).
    mutating func legacyBroadcast(_ n: NodeContext, _ value: String, shape b: [Dim], to a: [Dim], axis: Int?,
                                  role: String) throws(ONNXError) -> String {
        guard b.count <= a.count else {
            throw n.error("\(role) \(Importer.text(b)) has a higher rank than \(Importer.text(a)); legacy broadcasting (broadcast=1) only extends \(role)")
        }
        if b.allSatisfy({ $0 == .fixed(1) }) { return value }  // one element (a scalar included) broadcasts from anywhere
        let start: Int
        if let axis {
            guard axis >= 0, axis <= a.count - b.count else {
                throw n.error("axis \(axis) does not place \(role) \(Importer.text(b)) inside \(Importer.text(a)) (legacy broadcasting needs 0 ≤ axis ≤ \(a.count - b.count))")
            }
            start = axis
        } else {
            start = a.count - b.count
        }
        for (k, dim) in b.enumerated() where dim != a[start + k] && dim != .fixed(1) {
            throw n.error("\(role) \(Importer.text(b)) does not broadcast to \(Importer.text(a)) from axis \(start): its dimension \(k) is \(dim), not \(a[start + k]) or 1")
        }
        let trailing = a.count - start - b.count
        guard trailing > 0 else { return value }
        return try reshaped(n, value, to: [Int](repeating: 0, count: b.count) + [Int](repeating: 1, count: trailing), role: role)
    }

    /// `value` reshaped to `target` (0 copies a dim): a constant is refolded under a new name, any
    /// other value gets an IR Reshape node named after `n`.
    mutating func reshaped(_ n: NodeContext, _ value: String, to target: [Int], role: String) throws(ONNXError) -> String {
        guard let output = n.outputs.first, !output.isEmpty else { throw n.error("has no output") }
        let name = "\(output)/\(role)_reshaped"
        if let constant = constants[value] {
            let shape = target.enumerated().map { $0.element == 0 ? constant.shape[$0.offset] : $0.element }
            let dense = constant.contiguous()
            do { addConstant(name, try Tensor(dtype: dense.dtype, shape: shape, storage: dense.storage)) } catch { throw n.error("\(error)") }
        } else {
            nodes.append(Node("\(n.name)/\(role)_reshape", .reshape(shape: target, allowZero: false), inputs: [value], output: name))
        }
        return name
    }

    static func text(_ dims: [Dim]) -> String { "[" + dims.map(\.description).joined(separator: ", ") + "]" }

    mutating func batchNormalization(_ n: NodeContext) throws(ONNXError) {
        var allowed: Set<String> = ["epsilon", "momentum"]
        if opset < 9 { allowed.insert("spatial") }
        if opset < 7 { allowed.insert("is_test") }
        if opset < 6 { allowed.insert("consumed_inputs") }  // BatchNormalization-1's legacy in-place hint
        if opset >= 14 { allowed.insert("training_mode") }
        try n.allow(allowed)
        try n.requireInputs(5...5)
        // BatchNormalization-1/6 normalize with the batch's own statistics unless is_test is nonzero (default 0).
        if opset < 7, try n.int("is_test", default: 0) == 0 {
            throw n.error("is_test is 0 (training mode, the default before opset 7, normalizes with the batch's statistics); zoo runs inference only, which needs is_test=1")
        }
        if try n.int("spatial", default: 1) != 1 { throw n.error("spatial=0 (per-activation statistics) is not supported") }
        if try n.int("training_mode", default: 0) != 0 { throw n.error("training_mode=1 is not supported; zoo runs inference only") }
        try emit(n, .batchNormalization(epsilon: try n.float("epsilon", default: 1e-5)), Array(n.inputs.prefix(5)))
    }

    /// A Cast to FLOAT of a floating-point initializer or folded constant — a weight stored in another
    /// precision — becomes an alias of that constant: the nodes reading the Cast read the constant
    /// under its own name, kept in its own dtype (so `initializers` and a state dict made from the
    /// file keep it bit for bit), and the executor widens it to f32 when it plans, which is exactly
    /// the Cast. Every other Cast (of a value computed at run time, of an integer constant, or to
    /// another type) is refused. Cast-1…5 name the target type in a STRING `to` ("FLOAT"); from
    /// Cast-6 it is an INT (TensorProto.DataType); Cast-19's `saturate` only concerns float8 targets.
    mutating func cast(_ n: NodeContext) throws(ONNXError) {
        try n.allow(opset >= 19 ? ["to", "saturate"] : ["to"])
        try n.requireInputs(1...1)
        guard n.outputs.count == 1 else { throw n.error("has \(n.outputs.count) outputs, expected 1") }
        let target: String
        if opset < 6 {
            guard let name = try n.string("to") else { throw n.error("attribute 'to' is required") }
            target = name
        } else {
            guard let type = try n.int("to") else { throw n.error("attribute 'to' is required") }
            target = Int32(exactly: type).map { ONNXDataType(rawValue: $0).description } ?? "data type \(type)"
        }
        let scope = "zoo imports Cast only to FLOAT of a floating-point initializer (a weight stored in another precision)"
        let input = n.inputs[0]
        guard target == ONNXDataType.float.description else { throw n.error("casts '\(input)' to \(target); \(scope)") }
        guard let constant = constants[input] else { throw n.error("casts '\(input)', a value computed at run time; \(scope)") }
        guard constant.dtype.isFloatingPoint else { throw n.error("casts '\(input)', which is \(constant.dtype.rawValue); \(scope)") }
        aliases[n.outputs[0]] = input
        widened.insert(n.outputs[0])
    }

    mutating func constant(_ n: NodeContext) throws(ONNXError) {
        try n.allow(["value", "value_float", "value_floats", "value_int", "value_ints", "sparse_value", "value_string", "value_strings"])
        guard n.outputs.count == 1, !n.outputs[0].isEmpty else { throw n.error("must have one output") }
        guard n.attributes.count == 1 else { throw n.error("must have exactly one value attribute, has \(n.attributes.count)") }
        let tensor: Tensor
        if let t = try n.tensor("value") {
            tensor = try readTensor(t)
        } else if let values = try n.floats("value_floats") {
            tensor = Tensor(floats: values, shape: [values.count])
        } else if let values = try n.ints("value_ints") {
            tensor = Importer.int64Tensor(values, shape: [values.count])
        } else if let value = try n.int("value_int") {
            tensor = Importer.int64Tensor([value], shape: [])
        } else if n.attributes["value_float"] != nil {
            tensor = Tensor(floats: [try n.float("value_float", default: 0)], shape: [])
        } else {
            throw n.error("attribute '\(n.attributes.keys.first!)' (sparse or string constants) is not supported")
        }
        addConstant(n.outputs[0], tensor)
    }

    mutating func constantOfShape(_ n: NodeContext) throws(ONNXError) {
        try n.allow(["value"])
        try n.requireInputs(1...1)
        let shape = try constantInts(n.inputs[0], n, "shape")
        guard shape.allSatisfy({ $0 >= 0 }) else { throw n.error("shape \(shape) has a negative size") }
        var fill = Tensor(floats: [0], shape: [1])
        if let t = try n.tensor("value") { fill = try readTensor(t) }
        guard fill.count == 1 else { throw n.error("attribute 'value' must hold one element, holds \(fill.count)") }
        let element = fill.contiguous()
        let item = element.dtype.itemSize
        guard let count = Tensor.checkedCount(shape), case let (bytes, false) = count.multipliedReportingOverflow(by: item) else {
            throw n.error(LimitExceeded(\.maxFoldedConstantBytes, of: limits,
                                        "a folded constant of shape \(shape) \(element.dtype.rawValue) (more bytes than an Int counts)").description)
        }
        guard bytes <= limits.maxFoldedConstantBytes else {
            throw n.error(LimitExceeded(\.maxFoldedConstantBytes, of: limits,
                                        "a folded constant of shape \(shape) \(element.dtype.rawValue) (\(ResourceLimits.bytesText(bytes)))",
                                        needed: bytes).description)
        }
        // The fill value viewed with stride 0: no allocation here, whatever the shape (a kernel that
        // needs it dense copies it, within the limit checked above).
        do {
            let fillView = try Tensor(dtype: element.dtype, shape: shape, strides: shape.map { _ in 0 }, offset: element.offset,
                                      storage: element.storage)
            addConstant(n.outputs[0], fillView)
        } catch { throw n.error("\(error)") }
    }

    static func int64Tensor(_ values: [Int], shape: [Int]) -> Tensor {
        let storage = values.map { Int64($0) }.withUnsafeBytes { Storage(copying: $0) }
        return try! Tensor(dtype: .i64, shape: shape, storage: storage)
    }
}
