/// The import loop: a ModelProto's opset, initializers, inputs and nodes, in order, into a zoo `Graph`
/// (each node through its op's importer, `Op.onnxImporters`). Part of the reader described in ONNXReader.swift.
import CONNX
import CProtobufC
import ZooCore
import ZooOps

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One import: the model's protobuf side (tensor decoding, the node loop); the graph grows in
/// `builder`, which the op importers (`Op.onnxImporters`) extend.
struct Importer {
    let proto: ONNXModelProto
    let path: String
    let limits: ResourceLimits
    var opset = 0
    var builder = ONNXGraphBuilder(opset: 0, limits: .current, inputs: [], consumed: [])
    /// Initializers, Constant values and ConstantOfShape fills.
    var decoder: TensorDecoder

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
        var initializerNames: Set<String> = []
        for (index, tensor) in ONNXProto.messages(graph.initializer, graph.n_initializer).enumerated() {
            let name = ONNXProto.string(tensor.pointee.name)
            guard initializerNames.insert(name).inserted else { throw ONNXError(file: path, .tensor(name), "initializer defined twice") }
            fileInitializers.append((name, try readTensor(tensor, initializer: index)))
        }

        // Graph inputs: those with an initializer are constants (IR 3 lists every initializer as an
        // input; later IRs allow overridable defaults) — the rest must be exactly one tensor.
        var inputs: [ValueInfo] = []
        for input in ONNXProto.messages(graph.input, graph.n_input) {
            let name = ONNXProto.string(input.pointee.name)
            if initializerNames.contains(name) { continue }
            guard !name.isEmpty else { throw fail("a graph input has an empty name") }
            guard !inputs.contains(where: { $0.name == name }) else { throw ONNXError(file: path, .value(name), "graph input listed twice") }
            inputs.append(try valueInfo(input, name: name))
        }
        guard !inputs.isEmpty else { throw fail("the graph has no runtime inputs (every input is an initializer): there is nothing to run it on") }

        let outputs = ONNXProto.messages(graph.output, graph.n_output).map { ONNXProto.string($0.pointee.name) }
        for (index, output) in outputs.enumerated() {
            guard !output.isEmpty else { throw fail("graph output \(index) has an empty name") }
            guard !outputs[..<index].contains(output) else { throw ONNXError(file: path, .value(output), "graph output listed twice") }
        }
        var consumed = Set(outputs)
        for node in protoNodes {
            for input in ONNXProto.strings(node.pointee.input, node.pointee.n_input) { consumed.insert(input) }
        }
        builder = ONNXGraphBuilder(opset: opset, limits: limits, inputs: inputs, consumed: consumed)
        for (name, tensor) in fileInitializers { builder.addConstant(name, tensor) }

        var usedNames: Set<String> = []
        /// The next suffix to try per repeated name, so n nodes sharing a name cost O(n), not O(n²).
        var nextSuffix: [String: Int] = [:]
        for (index, protoNode) in protoNodes.enumerated() {
            let opType = ONNXProto.string(protoNode.pointee.op_type)
            var name = ONNXProto.string(protoNode.pointee.name)
            if name.isEmpty { name = "\(opType)_\(index)" }
            if usedNames.contains(name) {
                let base = name
                var k = nextSuffix[base, default: 1]
                while usedNames.contains("\(base)_\(k)") { k += 1 }
                name = "\(base)_\(k)"
                nextSuffix[base] = k + 1
            }
            usedNames.insert(name)
            let node = try node(protoNode, name: name, opType: opType)
            // Every op zoo imports computes its first output; importers rely on it.
            guard let output = node.outputs.first, !output.isEmpty else {
                throw ONNXError(file: path, .node(name: name, opType: opType), "has no output")
            }
            do throws(ONNXImportError) { try Op.onnxImporters[opType]!.build(&builder, node) } catch {
                throw ONNXError(file: path, .node(name: error.node, opType: error.opType), error.message)
            }
        }

        // A graph output produced through Identity keeps its ONNX name: the value it forwards is
        // renamed to it (when that value is a node output and not itself a graph output).
        var nodes = builder.nodes
        var aliases = builder.aliases
        for output in outputs {
            guard let source = aliases[output], !outputs.contains(source),
                  let producer = nodes.firstIndex(where: { $0.outputs.contains(source) }) else { continue }
            nodes[producer].outputs = nodes[producer].outputs.map { $0 == source ? output : $0 }
            for k in nodes.indices { nodes[k].inputs = nodes[k].inputs.map { $0 == source ? output : $0 } }
            for (key, value) in aliases where value == source { aliases[key] = output }
        }
        let resolvedOutputs = outputs.map { aliases[$0] ?? $0 }
        for (original, output) in zip(outputs, resolvedOutputs) where builder.constants[output] != nil {
            throw ONNXError(file: path, .value(original), "graph output is a constant; zoo graphs compute their outputs")
        }

        // Only constants a node reads become graph initializers (Reshape shapes and the like were
        // consumed while importing).
        let read = Set(nodes.flatMap(\.inputs))
        let initializers = builder.constantOrder.filter { read.contains($0) }.map { (name: $0, tensor: builder.constants[$0]!) }
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
                         initializers: fileInitializers, graphConstants: folded,
                         metadataProps: proto.metadataProps)
    }

    /// Why the importer has no way to build an op.
    enum Unsupported: Equatable {
        /// The op belongs to a domain other than the default one ("" or "ai.onnx").
        case otherDomain
        /// No importer for this op type.
        case noBuilder
        /// An importer exists, but the op appeared only in this later opset.
        case introduced(Int)
    }

    /// Whether a node of `opType` in `domain` has an importer at `opset`, the default-domain opset
    /// the model imports (nil: none, so only the registry is asked): nil when it has, else why not.
    /// The one answer behind `checkSupported` and `ONNX.describe`'s `unsupportedOps`. A node with an
    /// importer may still be refused when built (an attribute value, an input shape).
    static func unsupported(opType: String, domain: String, opset: Int?) -> Unsupported? {
        guard domain.isEmpty || domain == "ai.onnx" else { return .otherDomain }
        guard let importer = Op.onnxImporters[opType] else { return .noBuilder }
        if let opset, opset < importer.since { return .introduced(importer.since) }
        return nil
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

    /// A TensorProto's contents as a zoo tensor (see `TensorDecoder.decode`); the graph's
    /// `initializer`-th initializer's raw_data may be a zero-copy slice of the mapped model file.
    mutating func readTensor(_ pointer: UnsafeMutablePointer<Onnx__TensorProto>, initializer: Int? = nil) throws(ONNXError) -> Tensor {
        try decoder.decode(pointer, rawDataIndex: initializer)
    }
}
