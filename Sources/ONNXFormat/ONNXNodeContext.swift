/// One NodeProto as the op importers see it (`ZooOps.ONNXNode`): names with aliases resolved and
/// every attribute decoded. Part of the reader described in ONNXReader.swift.
import CONNX
import CProtobufC
import ZooCore
import ZooOps

extension Importer {
    /// `proto` as an `ONNXNode` named `name`; TENSOR attributes are decoded (bounded like
    /// initializers), attributes of types no importer reads are kept as their type name.
    mutating func node(_ proto: UnsafeMutablePointer<Onnx__NodeProto>, name: String, opType: String) throws(ONNXError) -> ONNXNode {
        let onnxInputs = ONNXProto.strings(proto.pointee.input, proto.pointee.n_input)
        var attributes: [String: ONNXAttributeValue] = [:]
        for attribute in ONNXProto.messages(proto.pointee.attribute, proto.pointee.n_attribute) {
            let a = attribute.pointee
            let key = ONNXProto.string(a.name)
            switch a.type {
            case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT: attributes[key] = .int(Int(a.i))
            case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT: attributes[key] = .float(a.f)
            case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS: attributes[key] = .ints(ONNXProto.buffer(a.ints, a.n_ints).map { Int($0) })
            case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS: attributes[key] = .floats(Array(ONNXProto.buffer(a.floats, a.n_floats)))
            case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING: attributes[key] = .string(String(decoding: ONNXProto.bytes(a.s), as: UTF8.self))
            case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR:
                guard let t = a.t else { throw ONNXError(file: path, .node(name: name, opType: opType), "attribute '\(key)' holds no tensor") }
                attributes[key] = .tensor(try readTensor(t))
            default:
                let names = [0: "UNDEFINED", 5: "GRAPH", 8: "STRINGS", 9: "TENSORS", 10: "GRAPHS", 11: "SPARSE_TENSOR",
                             12: "SPARSE_TENSORS", 13: "TYPE_PROTO", 14: "TYPE_PROTOS"]
                attributes[key] = .other(names[Int(a.type.rawValue)] ?? "type \(a.type.rawValue)")
            }
        }
        return ONNXNode(name: name, opType: opType, inputs: onnxInputs.map { builder.aliases[$0] ?? $0 }, onnxInputs: onnxInputs,
                        outputs: ONNXProto.strings(proto.pointee.output, proto.pointee.n_output), attributes: attributes)
    }
}
