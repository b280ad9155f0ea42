/// The ONNX reader: a ModelProto (https://onnx.ai/onnx/repo-docs/IR.html, operators at
/// https://onnx.ai/onnx/operators/) → a zoo `Graph`.
///
/// Reads the default operator domain at opsets 1…25. Each node is imported by its op's importer
/// (`Op.onnxImporters`, from the registry in ZooOps: one per ONNX op type, opset differences as
/// explicit branches in the op's own file); before any node is built, every node whose op has no
/// importer is collected and reported in one error. Constant and constant ConstantOfShape are folded
/// into initializers and Identity is dropped; a Cast to FLOAT of a floating-point constant (how
/// zoo's writer stores f16/bf16/f64 weights) makes nodes read the stored tensor itself, which the
/// executor widens when it plans.
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
import ZooOps

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
    /// `ModelProto.metadata_props` in file order, as written: free-form key/value strings (zoo's
    /// own files record `zoo.architecture` and `zoo.evaluation_transform`). A key may repeat —
    /// onnx.checker refuses that, onnxruntime keeps the last — and every entry is kept. Bounded as
    /// every string of the file is: `ProtoBudget` refuses, before unpacking, invalid UTF-8, a NUL
    /// byte and more entries or bytes than `maxONNXExpansion` allows for the file's size.
    public let metadataProps: [(key: String, value: String)]
}

public enum ONNX {
    /// The default-domain opsets the reader imports.
    public static let supportedOpsets = 1...25

    /// Reads the ONNX model at `path` into a zoo graph.
    /// - Throws: `ONNXError` naming the file and the node, tensor or value at fault.
    public static func load(path: String, limits: ResourceLimits = .current) throws(ONNXError) -> ONNXModel {
        try load(try open(path: path, limits: limits), limits: limits)
    }

    /// Imports an unpacked model (`open`): for a caller that also describes it or reads its
    /// initializers, so the file is read and unpacked once.
    public static func load(_ proto: ONNXModelProto, limits: ResourceLimits = .current) throws(ONNXError) -> ONNXModel {
        var importer = Importer(proto: proto, path: proto.path, limits: limits)
        return try importer.run()
    }

    /// The ModelProto in `path`, unpacked once its wire bytes are known to fit `limits`
    /// (`ProtoBudget`); a malformed `ZOO_LIMITS` is refused first.
    public static func open(path: String, limits: ResourceLimits = .current) throws(ONNXError) -> ONNXModelProto {
        if let problem = ResourceLimits.environmentProblem { throw ONNXError(file: path, problem) }
        return try ONNXModelProto(path: path, limits: limits)
    }

    /// The graph's initializers, decoded (every typed field, raw_data, external data) but not
    /// interpreted: for inspecting a file whose graph zoo may not import.
    public static func initializers(path: String, limits: ResourceLimits = .current) throws(ONNXError) -> [(name: String, tensor: Tensor)] {
        try initializers(try open(path: path, limits: limits), limits: limits)
    }

    /// The initializers of an unpacked model (`open`).
    public static func initializers(_ proto: ONNXModelProto, limits: ResourceLimits = .current) throws(ONNXError) -> [(name: String, tensor: Tensor)] {
        let path = proto.path
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
        let proto = try open(path: path, limits: limits)
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
