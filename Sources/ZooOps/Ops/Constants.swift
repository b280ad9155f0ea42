/// Constants and conversions: Cast (an op), and the ONNX ops folded away while importing —
/// Identity (an alias), Constant and ConstantOfShape (constants), Cast of a weight to FLOAT (the
/// weight read in its own dtype, widened by the executor).
import ZooCore

extension Op {
    /// Converts every element to `to`: floating point rounds to nearest, floating to integer
    /// truncates toward zero, integers wrap to the target width, anything to bool is value != 0.
    public struct Cast: Operator, Equatable {
        public var to: DType
        public init(to: DType) { self.to = to }
        public var name: String { "Cast" }
        public var summary: String { "to=\(to.rawValue)" }

        public func infer(_ inputs: [ValueInfo]) throws(OpFailure) -> [ValueInfo] {
            // Shape arithmetic: an integer shape entry cast to another integer type is the same entry.
            if inputs[0].shape.count <= 1, !inputs[0].dtype.isFloatingPoint, !to.isFloatingPoint, to != .bool, let dims = inputs[0].knownDims {
                return [ValueInfo(dtype: to, shape: inputs[0].shape, knownDims: dims)]
            }
            return [ValueInfo(dtype: to, shape: inputs[0].shape)]
        }

        public func evaluate(_ inputs: [Tensor]) throws(OpFailure) -> [Tensor] {
            let x = inputs[0]
            if x.dtype == to { return [x] }
            if to == .f32 && x.dtype.isFloatingPoint { return [x.float32()] }
            if x.dtype.isFloatingPoint { return [Tensor(dtype: to, shape: x.shape, doubles: x.doubles())] }
            return [Tensor(dtype: to, shape: x.shape, int64s: x.int64s())]
        }

        public func exportONNX(_ node: Node, to onnx: inout ONNXExporter) throws(OpFailure) {
            onnx.emit("Cast", [("to", .int(Int(ONNXDataType(to).rawValue)))])
        }

        /// A Cast to FLOAT of a floating-point initializer or folded constant — a weight stored in
        /// another precision — becomes an alias of that constant: the nodes reading the Cast read the
        /// constant under its own name, kept in its own dtype (so a state dict made from the file keeps
        /// it bit for bit), and the executor widens it to f32 when it plans, which is exactly the Cast.
        /// Every other Cast is a Cast node. Cast-1…5 name the target type in a STRING `to` ("FLOAT");
        /// from Cast-6 it is an INT (TensorProto.DataType); Cast-19's `saturate` only concerns float8.
        public static var onnxImporters: [ONNXImporter] {
            [ONNXImporter("Cast") { (b: inout ONNXGraphBuilder, n: ONNXNode) throws(ONNXImportError) in
                try n.allow(b.opset >= 19 ? ["to", "saturate"] : ["to"])
                try n.requireInputs(1...1)
                guard n.outputs.count == 1 else { throw n.error("has \(n.outputs.count) outputs, expected 1") }
                let target: ONNXDataType
                if b.opset < 6 {
                    guard let name = try n.string("to") else { throw n.error("attribute 'to' is required") }
                    guard let type = ONNXDataType.named(name) else { throw n.error("attribute 'to': unknown type '\(name)'") }
                    target = type
                } else {
                    guard let code = try n.int("to") else { throw n.error("attribute 'to' is required") }
                    guard let raw = Int32(exactly: code) else { throw n.error("attribute 'to': unknown type \(code)") }
                    target = ONNXDataType(rawValue: raw)
                }
                guard let dtype = target.dtype else { throw n.error("casts to \(target), which zoo does not hold") }
                let input = n.inputs[0]
                if dtype == .f32, let constant = b.constants[input], constant.dtype.isFloatingPoint {
                    b.aliases[n.output] = input
                    b.widened.insert(n.output)
                    return
                }
                try b.emit(n, Cast(to: dtype), [input])
            },
            ONNXImporter("CastLike", since: 15) { (b: inout ONNXGraphBuilder, n: ONNXNode) throws(ONNXImportError) in
                try n.allow(b.opset >= 19 ? ["saturate"] : [])
                try n.requireInputs(2...2)
                try b.emit(n, Cast(to: try b.info(of: n.inputs[1], n).dtype), [n.inputs[0]])
            }]
        }
    }
}

/// ONNX ops that never become IR nodes: their outputs are aliases or constants.
enum ONNXFolding {
    static let importers: [ONNXImporter] = [
        ONNXImporter("Identity") { (b: inout ONNXGraphBuilder, n: ONNXNode) throws(ONNXImportError) in
            try n.allow([])
            try n.requireInputs(1...1)
            guard n.outputs.count == 1 else { throw n.error("has \(n.outputs.count) outputs, expected 1") }
            if let constant = b.constants[n.inputs[0]] {
                b.addConstant(n.output, constant)
                if b.widened.contains(n.onnxInputs[0]) { b.widened.insert(n.output) }
            } else {
                b.aliases[n.output] = n.inputs[0]
            }
        },
        ONNXImporter("Constant") { (b: inout ONNXGraphBuilder, n: ONNXNode) throws(ONNXImportError) in
            try n.allow(["value", "value_float", "value_floats", "value_int", "value_ints", "sparse_value", "value_string", "value_strings"])
            guard n.outputs.count == 1, !n.outputs[0].isEmpty else { throw n.error("must have one output") }
            guard n.attributes.count == 1 else { throw n.error("must have exactly one value attribute, has \(n.attributes.count)") }
            let tensor: Tensor
            if let t = try n.tensor("value") {
                tensor = t
            } else if let values = try n.floats("value_floats") {
                tensor = Tensor(floats: values, shape: [values.count])
            } else if let values = try n.ints("value_ints") {
                tensor = Tensor(int64s: values, shape: [values.count])
            } else if let value = try n.int("value_int") {
                tensor = Tensor(int64s: [value], shape: [])
            } else if let value = try n.float("value_float") {
                tensor = Tensor(floats: [value], shape: [])
            } else {
                throw n.error("attribute '\(n.attributes.keys.first!)' (sparse or string constants) is not supported")
            }
            b.addConstant(n.output, tensor)
        },
        ONNXImporter("ConstantOfShape", since: 9) { (b: inout ONNXGraphBuilder, n: ONNXNode) throws(ONNXImportError) in
            try n.allow(["value"])
            try n.requireInputs(1...1)
            var fill = Tensor(floats: [0], shape: [1])
            if let t = try n.tensor("value") { fill = t }
            guard fill.count == 1 else { throw n.error("attribute 'value' must hold one element, holds \(fill.count)") }
            // A shape computed at run time (from the input's shape): an IR node.
            guard b.constants[n.inputs[0]] != nil else {
                let scalar: Tensor
                do throws(OpFailure) { scalar = try fill.reshaped([]) } catch { throw n.error(error.message) }
                return try b.emit(n, Op.ConstantOfShape(fill: scalar), [n.inputs[0]])
            }
            let shape = try b.constantInts(n.inputs[0], n, "shape")
            guard shape.allSatisfy({ $0 >= 0 }) else { throw n.error("shape \(shape) has a negative size") }
            let element = fill.contiguous()
            let item = element.dtype.itemSize
            guard let count = Tensor.checkedCount(shape), case let (bytes, false) = count.multipliedReportingOverflow(by: item) else {
                throw n.error(LimitExceeded(\.maxFoldedConstantBytes, of: b.limits,
                                            "a folded constant of shape \(shape) \(element.dtype.rawValue) (more bytes than an Int counts)").description)
            }
            guard bytes <= b.limits.maxFoldedConstantBytes else {
                throw n.error(LimitExceeded(\.maxFoldedConstantBytes, of: b.limits,
                                            "a folded constant of shape \(shape) \(element.dtype.rawValue) (\(ResourceLimits.bytesText(bytes)))",
                                            needed: bytes).description)
            }
            // The fill value viewed with stride 0: no allocation here, whatever the shape (a kernel that
            // needs it dense copies it, within the limit checked above).
            do {
                let fillView = try Tensor(dtype: element.dtype, shape: shape, strides: shape.map { _ in 0 }, offset: element.offset,
                                          storage: element.storage)
                b.addConstant(n.output, fillView)
            } catch { throw n.error("\(error)") }
        },
    ]
}

extension ONNXDataType {
    /// The type Cast-1…5's STRING `to` names ("FLOAT"), if any.
    static func named(_ name: String) -> ONNXDataType? {
        (0..<32).lazy.map { ONNXDataType(rawValue: $0) }.first { $0.description == name }
    }
}
