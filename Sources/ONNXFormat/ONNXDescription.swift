/// A description of any well-formed ONNX model (https://onnx.ai/onnx/repo-docs/IR.html) — header,
/// graph interface, op histogram, initializer totals — read from the ModelProto alone, without
/// importing the graph: a model zoo cannot run is described too, with the ops it cannot run. What
/// `zoo inspect` prints, like Netron's model properties or `polygraphy inspect model`.
import CONNX
import ZooCore
import ZooOps

public struct ONNXDescription: Sendable, Equatable {
    /// One `opset_import` entry, as the file writes it ("" is the default domain).
    public struct OpsetImport: Sendable, Equatable {
        public let domain: String
        public let version: Int
    }

    /// One dimension of a declared shape.
    public enum Dimension: Sendable, Equatable {
        /// `dim_value` (as written, even when 0 or negative).
        case value(Int)
        /// `dim_param`, a symbolic size such as "N".
        case param(String)
        /// Neither set: a dimension of unknown size.
        case unknown
    }

    /// A graph input or output as the file declares it (`ValueInfoProto`).
    public struct Value: Sendable, Equatable {
        /// Which `TypeProto` member is set; `unset` when none is (or one this schema does not know).
        public enum Kind: String, Sendable {
            case tensor, sparseTensor = "sparse_tensor", sequence, map, optional, opaque, unset
        }

        public let name: String
        public let kind: Kind
        /// A tensor's or sparse tensor's `elem_type`, when set; nil for other kinds.
        public let elementType: ONNXDataType?
        /// A tensor's or sparse tensor's shape; nil when it declares none (rank unknown) or is of another kind.
        public let shape: [Dimension]?
    }

    /// One node of the main graph: its name ("" when unnamed), domain and op type as written, except
    /// that the default domain is always "" (never "ai.onnx").
    public struct Node: Sendable, Equatable {
        public let name: String
        public let domain: String
        public let opType: String
    }

    /// One `metadata_props` entry (`StringStringEntryProto`), as written.
    public struct MetadataProp: Sendable, Equatable {
        public let key: String
        public let value: String
    }

    /// How many nodes of the main graph have this domain ("" = default) and op type.
    public struct OpCount: Sendable, Equatable {
        public let domain: String
        public let opType: String
        public let count: Int
    }

    public let irVersion: Int
    /// Every `opset_import` entry, in file order.
    public let opsetImports: [OpsetImport]
    /// The default domain's opset ("" or "ai.onnx"); nil when the model imports none.
    public let opset: Int?
    public let producerName: String
    public let producerVersion: String
    public let graphName: String
    /// The model's `doc_string` (the whole of it: callers shorten it for display).
    public let docString: String
    /// `metadata_props` in file order, every entry kept (a key may repeat; see
    /// `ONNXModel.metadataProps`), whole: callers shorten them for display.
    public let metadataProps: [MetadataProp]
    /// The graph inputs that are not initializers (IR 3 lists every initializer as an input too).
    public let inputs: [Value]
    public let outputs: [Value]
    /// The main graph's nodes in file order (not those of subgraphs in If/Loop/Scan attributes).
    public let nodes: [Node]
    /// One entry per (domain, op type) of `nodes`, in the order each first appears.
    public let opCounts: [OpCount]
    /// The entries of `opCounts` zoo's importer has no builder for at `opset` — a custom domain, an
    /// op zoo does not implement, or one newer than the model's opset. Empty does not promise that
    /// the model imports: a node may still be refused for an attribute value or an input shape.
    public let unsupportedOps: [OpCount]
    /// The graph's dense initializers (sparse ones are not counted).
    public let initializerCount: Int
    /// Elements over every initializer.
    public let parameterCount: Int
    /// The initializers' data as stored (`bitWidth` bits per element, rounded up to whole bytes per
    /// tensor; a STRING tensor's strings' lengths; 0 for a data type the standard does not define),
    /// whether it lies in the file or in external data.
    public let initializerBytes: Int
    /// How many initializers keep their data in external files (not opened here).
    public let externalInitializers: Int
}

extension ONNX {
    /// Describes the ONNX model at `path` without importing it: any well-formed model, runnable by
    /// zoo or not. The ModelProto is unpacked as `load` unpacks it (its wire bytes checked against
    /// `limits` first); no tensor data is read, external data included.
    /// - Throws: `ONNXError` when the file cannot be read, is not an ONNX model, is truncated or
    ///   malformed, exceeds `limits` (`maxTensorRank` bounds every declared shape), or declares an
    ///   initializer with a negative dimension or more elements or bytes than an `Int` counts.
    public static func describe(path: String, limits: ResourceLimits = .current) throws(ONNXError) -> ONNXDescription {
        try describe(try open(path: path, limits: limits), limits: limits)
    }

    /// Describes an unpacked model (`open`).
    public static func describe(_ proto: ONNXModelProto, limits: ResourceLimits = .current) throws(ONNXError) -> ONNXDescription {
        let path = proto.path
        let model = proto.model.pointee
        let graph = model.graph!.pointee

        let opsetImports = ONNXProto.messages(model.opset_import, model.n_opset_import).map {
            ONNXDescription.OpsetImport(domain: ONNXProto.string($0.pointee.domain), version: Int($0.pointee.version))
        }
        // As the importer reads them: the last entry for the default domain wins.
        let opset = opsetImports.last { $0.domain.isEmpty || $0.domain == "ai.onnx" }?.version

        var initializerNames: Set<String> = []
        var parameterCount = 0, initializerBytes = 0, externalInitializers = 0
        for tensor in ONNXProto.messages(graph.initializer, graph.n_initializer) {
            let t = tensor.pointee
            let name = ONNXProto.string(t.name)
            initializerNames.insert(name)
            let (elements, bytes) = try size(t, name: name, path: path, limits: limits)
            guard case let (count, false) = parameterCount.addingReportingOverflow(elements),
                  case let (total, false) = initializerBytes.addingReportingOverflow(bytes) else {
                throw ONNXError(file: path, "the initializers hold more elements or bytes than an Int counts")
            }
            parameterCount = count
            initializerBytes = total
            if t.has_data_location != 0, t.data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL { externalInitializers += 1 }
        }

        var inputs: [ONNXDescription.Value] = []
        for input in ONNXProto.messages(graph.input, graph.n_input) where !initializerNames.contains(ONNXProto.string(input.pointee.name)) {
            inputs.append(try value(input, path: path, limits: limits))
        }
        var outputs: [ONNXDescription.Value] = []
        for output in ONNXProto.messages(graph.output, graph.n_output) { outputs.append(try value(output, path: path, limits: limits)) }

        let nodes = ONNXProto.messages(graph.node, graph.n_node).map { node in
            let domain = ONNXProto.string(node.pointee.domain)
            return ONNXDescription.Node(name: ONNXProto.string(node.pointee.name), domain: domain == "ai.onnx" ? "" : domain,
                                        opType: ONNXProto.string(node.pointee.op_type))
        }
        var firstSeen: [[String]] = []  // [domain, op type]
        var counts: [[String]: Int] = [:]
        for node in nodes {
            let key = [node.domain, node.opType]
            if counts[key] == nil { firstSeen.append(key) }
            counts[key, default: 0] += 1
        }
        let opCounts = firstSeen.map { ONNXDescription.OpCount(domain: $0[0], opType: $0[1], count: counts[$0]!) }

        return ONNXDescription(
            irVersion: Int(model.ir_version), opsetImports: opsetImports, opset: opset,
            producerName: ONNXProto.string(model.producer_name), producerVersion: ONNXProto.string(model.producer_version),
            graphName: ONNXProto.string(graph.name), docString: ONNXProto.string(model.doc_string),
            metadataProps: proto.metadataProps.map { .init(key: $0.key, value: $0.value) },
            inputs: inputs, outputs: outputs, nodes: nodes, opCounts: opCounts,
            unsupportedOps: opCounts.filter { Importer.unsupported(opType: $0.opType, domain: $0.domain, opset: opset) != nil },
            initializerCount: Int(graph.n_initializer), parameterCount: parameterCount, initializerBytes: initializerBytes,
            externalInitializers: externalInitializers)
    }

    /// An initializer's element count and stored bytes, from its dims and data type alone.
    private static func size(_ t: Onnx__TensorProto, name: String, path: String,
                             limits: ResourceLimits) throws(ONNXError) -> (elements: Int, bytes: Int) {
        func refuse(_ message: String) -> ONNXError { ONNXError(file: path, .tensor(name), message) }
        do throws(LimitExceeded) { try limits.checkRank(t.n_dims) } catch { throw refuse(error.description) }
        let dims = ONNXProto.buffer(t.dims, t.n_dims).map { Int($0) }
        guard dims.allSatisfy({ $0 >= 0 }) else { throw refuse("negative dimension in \(dims)") }
        let type = ONNXDataType(rawValue: t.data_type)
        guard let count = Tensor.checkedCount(dims) else { throw refuse("shape \(dims) is too large") }
        if type == .string {
            return (count, ONNXProto.buffer(t.string_data, t.n_string_data).reduce(0) { $0 + $1.len })
        }
        guard let bits = type.bitWidth else { return (count, 0) }
        guard case let (totalBits, false) = count.multipliedReportingOverflow(by: bits) else { throw refuse("shape \(dims) is too large") }
        return (count, totalBits / 8 + (totalBits % 8 == 0 ? 0 : 1))
    }

    /// A graph input or output's declared name, kind, element type and shape.
    private static func value(_ info: UnsafeMutablePointer<Onnx__ValueInfoProto>, path: String,
                              limits: ResourceLimits) throws(ONNXError) -> ONNXDescription.Value {
        let name = ONNXProto.string(info.pointee.name)
        guard let type = info.pointee.type else { return .init(name: name, kind: .unset, elementType: nil, shape: nil) }
        var kind = ONNXDescription.Value.Kind.unset
        var elementType: Int32?, shape: UnsafeMutablePointer<Onnx__TensorShapeProto>?
        switch type.pointee.value_case {
        case ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE:
            kind = .tensor
            if let tensor = type.pointee.tensor_type?.pointee {
                (elementType, shape) = (tensor.has_elem_type != 0 ? tensor.elem_type : nil, tensor.shape)
            }
        case ONNX__TYPE_PROTO__VALUE_SPARSE_TENSOR_TYPE:
            kind = .sparseTensor
            if let tensor = type.pointee.sparse_tensor_type?.pointee {
                (elementType, shape) = (tensor.has_elem_type != 0 ? tensor.elem_type : nil, tensor.shape)
            }
        case ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE: kind = .sequence
        case ONNX__TYPE_PROTO__VALUE_MAP_TYPE: kind = .map
        case ONNX__TYPE_PROTO__VALUE_OPTIONAL_TYPE: kind = .optional
        case ONNX__TYPE_PROTO__VALUE_OPAQUE_TYPE: kind = .opaque
        default: break
        }
        var dimensions: [ONNXDescription.Dimension]?
        if let shape {
            do throws(LimitExceeded) { try limits.checkRank(shape.pointee.n_dim, "a declared shape") } catch {
                throw ONNXError(file: path, .value(name), error.description)
            }
            dimensions = ONNXProto.messages(shape.pointee.dim, shape.pointee.n_dim).map { dim in
                switch dim.pointee.value_case {
                case ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE: .value(Int(dim.pointee.dim_value))
                case ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM: .param(ONNXProto.string(dim.pointee.dim_param))
                default: .unknown
                }
            }
        }
        return .init(name: name, kind: kind, elementType: elementType.map(ONNXDataType.init(rawValue:)), shape: dimensions)
    }
}
