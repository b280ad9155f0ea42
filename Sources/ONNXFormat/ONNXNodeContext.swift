/// One NodeProto with typed attribute getters, for the op builders (ONNXOpBuilders.swift).
import CONNX
import CProtobufC
import ZooCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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
