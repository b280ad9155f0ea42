/// The import loop: a ModelProto's opset, initializers, inputs and nodes, in order, into a zoo `Graph`
/// (the op builders are in ONNXOpBuilders.swift). Part of the reader described in ONNXReader.swift.
import CONNX
import CProtobufC
import ZooCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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
