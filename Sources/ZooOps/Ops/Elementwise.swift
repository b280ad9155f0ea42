/// Elementwise ops: one-input functions (Relu, Sigmoid, HardSwish, Erf, …) and two-input arithmetic
/// and comparisons with NumPy broadcasting (Add, Mul, Div, Pow, Equal, …), and ONNX's n-ary Sum,
/// Max, Min, Mean as chains of them. Semantics: onnx/docs/Operators.md; the reference computes in
/// Double (Int64 for integers) and rounds once.
#if canImport(Glibc)
import Glibc
#endif
import ZooCore
import ZooKernels

extension Op {
    /// y = f(x) elementwise.
    public struct Unary: Operator, Equatable {
        public enum Function: Sendable, Equatable {
            case relu, sigmoid, tanh, exp, log, sqrt, abs, neg, reciprocal, floor, ceil, round, sign, erf
            case sin, cos, softplus, softsign, hardSwish, mish, not
            /// max(0, min(1, alpha·x + beta)).
            case hardSigmoid(alpha: Float, beta: Float)
            case leakyRelu(alpha: Float)
            case elu(alpha: Float)
            case selu(alpha: Float, gamma: Float)
            case celu(alpha: Float)
            case thresholdedRelu(alpha: Float)
            /// x·Φ(x); with `tanh`, the tanh approximation.
            case gelu(tanh: Bool)
            /// min(max(x, min), max).
            case clip(min: Double, max: Double)

            var name: String {
                switch self {
                case .relu: "Relu"
                case .sigmoid: "Sigmoid"
                case .tanh: "Tanh"
                case .exp: "Exp"
                case .log: "Log"
                case .sqrt: "Sqrt"
                case .abs: "Abs"
                case .neg: "Neg"
                case .reciprocal: "Reciprocal"
                case .floor: "Floor"
                case .ceil: "Ceil"
                case .round: "Round"
                case .sign: "Sign"
                case .erf: "Erf"
                case .sin: "Sin"
                case .cos: "Cos"
                case .softplus: "Softplus"
                case .softsign: "Softsign"
                case .hardSwish: "HardSwish"
                case .mish: "Mish"
                case .not: "Not"
                case .hardSigmoid: "HardSigmoid"
                case .leakyRelu: "LeakyRelu"
                case .elu: "Elu"
                case .selu: "Selu"
                case .celu: "Celu"
                case .thresholdedRelu: "ThresholdedRelu"
                case .gelu: "Gelu"
                case .clip: "Clip"
                }
            }

            /// The function as a kernel epilogue / f32 map, when it is one (`Activation`).
            public var activation: Activation? {
                switch self {
                case .relu: .relu
                case let .clip(lo, hi): .clip(low: Float(lo), high: Float(hi))
                case .sigmoid: .sigmoid
                case .hardSwish: .hardSwish
                case let .hardSigmoid(alpha, beta): .hardSigmoid(alpha: alpha, beta: beta)
                case .gelu(tanh: false): .gelu
                default: nil
                }
            }

            /// Integer inputs allowed (the function is exact on them).
            var takesIntegers: Bool {
                switch self {
                case .relu, .abs, .neg, .sign, .clip: true
                default: false
                }
            }

            /// The function in Double, the reference.
            func callAsFunction(_ x: Double) -> Double {
                switch self {
                case .relu: x < 0 ? 0 : x
                case .sigmoid: x >= 0 ? 1 / (1 + Glibc.exp(-x)) : Glibc.exp(x) / (1 + Glibc.exp(x))
                case .tanh: Glibc.tanh(x)
                case .exp: Glibc.exp(x)
                case .log: Glibc.log(x)
                case .sqrt: x.squareRoot()
                case .abs: Swift.abs(x)
                case .neg: -x
                case .reciprocal: 1 / x
                case .floor: x.rounded(.down)
                case .ceil: x.rounded(.up)
                case .round: x.rounded(.toNearestOrEven)
                case .sign: x > 0 ? 1 : x < 0 ? -1 : x
                case .erf: Glibc.erf(x)
                case .sin: Glibc.sin(x)
                case .cos: Glibc.cos(x)
                case .softplus: x > 30 ? x : Glibc.log1p(Glibc.exp(x))
                case .softsign: x / (1 + Swift.abs(x))
                case .hardSwish: x * Swift.max(0, Swift.min(1, x / 6 + 0.5))
                case .mish: x * Glibc.tanh(x > 30 ? x : Glibc.log1p(Glibc.exp(x)))
                case .not: x == 0 ? 1 : 0
                case let .hardSigmoid(alpha, beta): x.isNaN ? x : Swift.max(0, Swift.min(1, Double(alpha) * x + Double(beta)))
                case let .leakyRelu(alpha): x < 0 ? Double(alpha) * x : x
                case let .elu(alpha): x < 0 ? Double(alpha) * (Glibc.exp(x) - 1) : x
                case let .selu(alpha, gamma): Double(gamma) * (x <= 0 ? Double(alpha) * (Glibc.exp(x) - 1) : x)
                case let .celu(alpha): Swift.max(0, x) + Swift.min(0, Double(alpha) * (Glibc.exp(x / Double(alpha)) - 1))
                case let .thresholdedRelu(alpha): x > Double(alpha) ? x : 0
                case let .clip(lo, hi): x.isNaN ? x : Swift.min(Swift.max(x, lo), hi)
                case let .gelu(tanh):
                    tanh ? 0.5 * x * (1 + Glibc.tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x)))
                        : 0.5 * x * (1 + Glibc.erf(x / 2.0.squareRoot()))
                }
            }
        }

        public var function: Function
        public init(_ function: Function) { self.function = function }
        public static let relu = Unary(.relu)

        public var name: String { function.name }
        public var summary: String {
            switch function {
            case let .hardSigmoid(alpha, beta): "alpha=\(alpha) beta=\(beta)"
            case let .leakyRelu(alpha), let .elu(alpha), let .celu(alpha), let .thresholdedRelu(alpha): "alpha=\(alpha)"
            case let .selu(alpha, gamma): "alpha=\(alpha) gamma=\(gamma)"
            case let .gelu(tanh): tanh ? "approximate=tanh" : ""
            case let .clip(lo, hi): "min=\(lo) max=\(hi)"
            default: ""
            }
        }

        public func infer(_ inputs: [ValueInfo]) throws(OpFailure) -> [ValueInfo] {
            let x = inputs[0]
            if function == .not {
                guard x.dtype == .bool else { throw OpFailure("input '\(x.name)' is \(x.dtype.rawValue), Not takes bool") }
            } else if !x.dtype.isFloatingPoint && !(function.takesIntegers && x.dtype != .bool) {
                throw OpFailure("input '\(x.name)' is \(x.dtype.rawValue), not floating point")
            }
            return [ValueInfo(dtype: x.dtype, shape: x.shape)]
        }

        public func evaluate(_ inputs: [Tensor]) throws(OpFailure) -> [Tensor] {
            let x = inputs[0]
            if x.dtype.isFloatingPoint || x.dtype == .bool {
                return [Tensor(dtype: x.dtype, shape: x.shape, doubles: x.doubles().map { function($0) })]
            }
            let values = x.int64s().map { v -> Int64 in
                switch function {
                case .relu: Swift.max(0, v)
                case .abs: v == .min ? v : Swift.abs(v)
                case .neg: 0 &- v
                case let .clip(lo, hi): Swift.min(Swift.max(v, Tensor.truncated(lo.rounded(.up))), Tensor.truncated(hi.rounded(.down)))
                default: v.signum()  // sign
                }
            }
            return [Tensor(dtype: x.dtype, shape: x.shape, int64s: values)]
        }

        public func lower(_ context: LoweringContext) throws(OpFailure) -> Lowering? {
            if function == .relu { return Lowering(ReluKernel(), inputs: [context.node.inputs[0]]) }
            return Lowering(MapKernel(function: function), inputs: [context.node.inputs[0]])
        }

        public func exportONNX(_ node: Node, to onnx: inout ONNXExporter) throws(OpFailure) {
            switch function {
            case let .hardSigmoid(alpha, beta): onnx.emit("HardSigmoid", [("alpha", .float(alpha)), ("beta", .float(beta))])
            case let .leakyRelu(alpha), let .elu(alpha), let .celu(alpha), let .thresholdedRelu(alpha):
                onnx.emit(name, [("alpha", .float(alpha))])
            case let .selu(alpha, gamma): onnx.emit("Selu", [("alpha", .float(alpha)), ("gamma", .float(gamma))])
            case let .gelu(tanh):
                guard onnx.opset < 20 else { return onnx.emit("Gelu", tanh ? [("approximate", .string("tanh"))] : []) }
                // Before opset 20: 0.5·x·(1 + erf(x/√2)), or 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
                let x = onnx.resolve(node.inputs[0]), dtype = onnx.values[node.inputs[0]]?.dtype ?? .f32
                let inner: String
                if tanh {
                    let cube = onnx.emitStep("Mul", inputs: [onnx.emitStep("Mul", inputs: [x, x]), x])
                    let sum = onnx.emitStep("Add", inputs: [x, onnx.emitStep("Mul", inputs: [cube, onnx.scalar(0.044715, dtype, "c")])])
                    inner = onnx.emitStep("Tanh", inputs: [onnx.emitStep("Mul", inputs: [sum, onnx.scalar((2 / Double.pi).squareRoot(), dtype, "k")])])
                } else {
                    inner = onnx.emitStep("Erf", inputs: [onnx.emitStep("Div", inputs: [x, onnx.scalar(2.0.squareRoot(), dtype, "sqrt2")])])
                }
                let one = onnx.emitStep("Add", inputs: [inner, onnx.scalar(1, dtype, "one")])
                let half = onnx.emitStep("Mul", inputs: [x, onnx.scalar(0.5, dtype, "half")])
                onnx.emitStep("Mul", inputs: [half, one], final: true)
            case .hardSwish:
                guard onnx.opset < 14 else { return onnx.emit(name) }
                // Before opset 14: x · HardSigmoid(x; 1/6, 1/2).
                let x = onnx.resolve(node.inputs[0])
                let gate = onnx.emitStep("HardSigmoid", [("alpha", .float(1.0 / 6)), ("beta", .float(0.5))], inputs: [x])
                onnx.emitStep("Mul", inputs: [x, gate], final: true)
            case .mish:
                guard onnx.opset < 18 else { return onnx.emit(name) }
                // Before opset 18: x · tanh(softplus(x)).
                let x = onnx.resolve(node.inputs[0])
                onnx.emitStep("Mul", inputs: [x, onnx.emitStep("Tanh", inputs: [onnx.emitStep("Softplus", inputs: [x])])], final: true)
            case let .clip(lo, hi):
                // Clip-11+: the bounds are inputs of the data's type.
                let dtype = onnx.values[node.inputs[0]]?.dtype ?? .f32
                var inputs = [onnx.resolve(node.inputs[0])]
                for (role, bound) in [("min", lo), ("max", hi)] {
                    inputs.append(onnx.addInitializer(node.name + "." + role, Tensor(dtype: dtype, shape: [], doubles: [bound])))
                }
                onnx.emit("Clip", inputs: inputs)
            default: onnx.emit(name)
            }
        }

        public static var onnxImporters: [ONNXImporter] {
            func simple(_ opType: String, since: Int = 1, _ function: Function) -> ONNXImporter {
                ONNXImporter(opType, since: since) { (b: inout ONNXGraphBuilder, n: ONNXNode) throws(ONNXImportError) in
                    // consumed_inputs: the legacy (opset < 6) in-place hint.
                    try n.allow(b.opset < 6 ? ["consumed_inputs"] : [])
                    try n.requireInputs(1...1)
                    try b.emit(n, Unary(function), [n.inputs[0]])
                }
            }
            func alpha(_ opType: String, since: Int = 1, default value: Float, _ make: @escaping @Sendable (Float) -> Function) -> ONNXImporter {
                ONNXImporter(opType, since: since) { (b: inout ONNXGraphBuilder, n: ONNXNode) throws(ONNXImportError) in
                    try n.allow(b.opset < 6 ? ["alpha", "consumed_inputs"] : ["alpha"])
                    try n.requireInputs(1...1)
                    try b.emit(n, Unary(make(try n.float("alpha", default: value))), [n.inputs[0]])
                }
            }
            return [
                simple("Relu", .relu), simple("Sigmoid", .sigmoid), simple("Tanh", .tanh), simple("Exp", .exp),
                simple("Log", .log), simple("Sqrt", .sqrt), simple("Abs", .abs), simple("Neg", .neg),
                simple("Reciprocal", .reciprocal), simple("Floor", .floor), simple("Ceil", .ceil),
                simple("Round", since: 11, .round), simple("Sign", since: 9, .sign), simple("Erf", since: 9, .erf),
                simple("Sin", since: 7, .sin), simple("Cos", since: 7, .cos), simple("Softplus", .softplus),
                simple("Softsign", .softsign), simple("HardSwish", since: 14, .hardSwish), simple("Mish", since: 18, .mish),
                simple("Not", .not),
                alpha("LeakyRelu", default: 0.01) { .leakyRelu(alpha: $0) },
                alpha("Elu", default: 1) { .elu(alpha: $0) },
                alpha("Celu", since: 12, default: 1) { .celu(alpha: $0) },
                alpha("ThresholdedRelu", since: 10, default: 1) { .thresholdedRelu(alpha: $0) },
                ONNXImporter("HardSigmoid") { (b: inout ONNXGraphBuilder, n: ONNXNode) throws(ONNXImportError) in
                    try n.allow(b.opset < 6 ? ["alpha", "beta", "consumed_inputs"] : ["alpha", "beta"])
                    try n.requireInputs(1...1)
                    let f = Function.hardSigmoid(alpha: try n.float("alpha", default: 0.2), beta: try n.float("beta", default: 0.5))
                    try b.emit(n, Unary(f), [n.inputs[0]])
                },
                ONNXImporter("Selu") { (b: inout ONNXGraphBuilder, n: ONNXNode) throws(ONNXImportError) in
                    try n.allow(b.opset < 6 ? ["alpha", "gamma", "consumed_inputs"] : ["alpha", "gamma"])
                    try n.requireInputs(1...1)
                    let f = Function.selu(alpha: try n.float("alpha", default: 1.67326319217681884765625),
                                          gamma: try n.float("gamma", default: 1.05070102214813232421875))
                    try b.emit(n, Unary(f), [n.inputs[0]])
                },
                ONNXImporter("Clip") { (b: inout ONNXGraphBuilder, n: ONNXNode) throws(ONNXImportError) in
                    // Bounds: attributes before opset 11 (default ±max float), optional constant inputs after.
                    var lo = -Double.infinity, hi = Double.infinity
                    if b.opset < 11 {
                        try n.allow(b.opset < 6 ? ["min", "max", "consumed_inputs"] : ["min", "max"])
                        try n.requireInputs(1...1)
                        lo = Double(try n.float("min", default: -Float.greatestFiniteMagnitude))
                        hi = Double(try n.float("max", default: Float.greatestFiniteMagnitude))
                    } else {
                        try n.allow([])
                        try n.requireInputs(1...3)
                        for (k, role) in [(1, "min"), (2, "max")] {
                            guard let name = n.input(k) else { continue }
                            guard let t = b.constants[name], t.count == 1 else { throw n.error("\(role) '\(name)' must be a constant scalar") }
                            if k == 1 { lo = t.doubles()[0] } else { hi = t.doubles()[0] }
                        }
                    }
                    try b.emit(n, Unary(.clip(min: lo, max: hi)), [n.inputs[0]])
                },
                ONNXImporter("Gelu", since: 20) { (b: inout ONNXGraphBuilder, n: ONNXNode) throws(ONNXImportError) in
                    try n.allow(["approximate"])
                    try n.requireInputs(1...1)
                    let approximate = try n.string("approximate", default: "none")
                    guard approximate == "none" || approximate == "tanh" else { throw n.error("approximate '\(approximate)' is not 'none' or 'tanh'") }
                    try b.emit(n, Unary(.gelu(tanh: approximate == "tanh")), [n.inputs[0]])
                },
            ]
        }
    }

    /// y = a ∘ b elementwise with NumPy broadcasting.
    public struct Binary: Operator, Equatable {
        public enum Function: String, Sendable, CaseIterable {
            case add = "Add", sub = "Sub", mul = "Mul", div = "Div", pow = "Pow", max = "Max", min = "Min"
            /// Mod with fmod=0: the sign of the divisor (Python's %); `fmod` has the dividend's.
            case mod = "Mod", fmod = "Mod(fmod)"
            case equal = "Equal", less = "Less", greater = "Greater", lessOrEqual = "LessOrEqual", greaterOrEqual = "GreaterOrEqual"
            case and = "And", or = "Or", xor = "Xor"
            /// x < 0 ? slope·x : x.
            case prelu = "PRelu"

            var isComparison: Bool { [.equal, .less, .greater, .lessOrEqual, .greaterOrEqual].contains(self) }
            var isLogical: Bool { [.and, .or, .xor].contains(self) }

            func callAsFunction(_ a: Double, _ b: Double) -> Double {
                switch self {
                case .add: a + b
                case .sub: a - b
                case .mul: a * b
                case .div: a / b
                case .pow: Glibc.pow(a, b)
                case .max: a.isNaN || b.isNaN ? .nan : Swift.max(a, b)
                case .min: a.isNaN || b.isNaN ? .nan : Swift.min(a, b)
                case .mod:
                    { let r = Glibc.fmod(a, b); return r != 0 && (r < 0) != (b < 0) ? r + b : r }()
                case .fmod: Glibc.fmod(a, b)
                case .equal, .less, .greater, .lessOrEqual, .greaterOrEqual, .and, .or, .xor: truth(a, b) ? 1 : 0
                case .prelu: a < 0 ? a * b : a
                }
            }

            /// Comparisons and logic, the same for every element type (nonzero is true).
            func truth<T: Comparable & Numeric>(_ a: T, _ b: T) -> Bool {
                switch self {
                case .equal: a == b
                case .less: a < b
                case .greater: a > b
                case .lessOrEqual: a <= b
                case .greaterOrEqual: a >= b
                case .and: a != 0 && b != 0
                case .or: a != 0 || b != 0
                case .xor: (a != 0) != (b != 0)
                default: preconditionFailure("\(self) is not a comparison")
                }
            }

            /// Integer semantics (C's truncating division, as onnxruntime).
            func callAsFunction(_ a: Int64, _ b: Int64) -> Int64 {
                switch self {
                case .add: a &+ b
                case .sub: a &- b
                case .mul: a &* b
                case .div: b == 0 ? 0 : (a == .min && b == -1 ? a : a / b)
                case .pow:
                    { () -> Int64 in
                        guard b >= 0 else { return a == 1 ? 1 : (a == -1 ? (b % 2 == 0 ? 1 : -1) : 0) }
                        var result: Int64 = 1, base = a, e = b
                        while e > 0 {
                            if e & 1 == 1 { result = result &* base }
                            base = base &* base
                            e >>= 1
                        }
                        return result
                    }()
                case .max: Swift.max(a, b)
                case .min: Swift.min(a, b)
                case .mod:
                    { () -> Int64 in
                        guard b != 0 else { return 0 }
                        let r = a == .min && b == -1 ? 0 : a % b
                        return r != 0 && (r < 0) != (b < 0) ? r + b : r
                    }()
                case .fmod: b == 0 ? 0 : (a == .min && b == -1 ? 0 : a % b)
                case .equal, .less, .greater, .lessOrEqual, .greaterOrEqual, .and, .or, .xor: truth(a, b) ? 1 : 0
                case .prelu: a < 0 ? a &* b : a
                }
            }
        }

        public var function: Function
        public init(_ function: Function) { self.function = function }
        public static let add = Binary(.add)

        public var name: String { function == .fmod ? "Mod" : function.rawValue }
        public var summary: String { function == .fmod ? "fmod" : "" }
        public var inputArity: ClosedRange<Int> { 2...2 }

        public func infer(_ inputs: [ValueInfo]) throws(OpFailure) -> [ValueInfo] {
            let shape = try ShapeRules.broadcast(inputs[0], inputs[1])
            // Pow's exponent may have another numeric type than its base (Pow-12).
            let dtype = function == .pow ? inputs[0].dtype : try DTypeRules.common(inputs)
            if function.isLogical {
                guard dtype == .bool else { throw OpFailure("\(name) takes bool inputs, has \(dtype.rawValue)") }
            } else if dtype == .bool && function != .equal {
                throw OpFailure("\(name) does not take bool inputs")
            }
            // Shape arithmetic: Equal of a shape known up to symbolic dims with known values is known
            // when every entry decides (a symbolic size, never negative, differs from a negative one).
            if function == .equal, shape.count == 1, let a = inputs[0].knownDims, let b = inputs[1].knownDims,
               inputs[0].value == nil || inputs[1].value == nil, let n = shape[0].value {
                var result: [Int64] = []
                for i in 0..<n {
                    let x = a.count == 1 ? a[0] : a[i], y = b.count == 1 ? b[0] : b[i]
                    switch (x.value, y.value) {
                    case let (p?, q?): result.append(p == q ? 1 : 0)
                    case (nil, nil) where x == y: result.append(1)
                    case let (nil, q?) where q < 0: result.append(0)
                    case let (p?, nil) where p < 0: result.append(0)
                    default: return [ValueInfo(dtype: .bool, shape: shape)]
                    }
                }
                return [ValueInfo(dtype: .bool, shape: shape, value: Tensor(dtype: .bool, shape: [n], int64s: result))]
            }
            // Shape arithmetic: sizes known up to symbols multiply, and divide where they divide exactly.
            if function == .mul || function == .div, shape.count <= 1, !dtype.isFloatingPoint, dtype != .bool,
               let a = inputs[0].knownDims, let b = inputs[1].knownDims, inputs[0].value == nil || inputs[1].value == nil {
                let n = shape.first?.value ?? 1
                var result: [Dim] = []
                for i in 0..<n {
                    let x = SymbolicProduct(a.count == 1 ? a[0] : a[i]), y = SymbolicProduct(b.count == 1 ? b[0] : b[i])
                    if function == .mul, let p = try? x.times(y, "") { result.append(p.dim) } else if function == .div, let q = x.divided(by: y) {
                        result.append(q.dim)
                    } else {
                        return [ValueInfo(dtype: dtype, shape: shape)]
                    }
                }
                return [ValueInfo(dtype: dtype, shape: shape, knownDims: result)]
            }
            return [ValueInfo(dtype: function.isComparison ? .bool : dtype, shape: shape)]
        }

        public func evaluate(_ inputs: [Tensor]) throws(OpFailure) -> [Tensor] {
            let a = inputs[0], b = inputs[1]
            let shape = try Broadcast.shape([a.shape, b.shape])
            let ia = Broadcast.indices(of: a.shape, in: shape), ib = Broadcast.indices(of: b.shape, in: shape)
            let computed: DType = function == .pow ? a.dtype
                : (a.dtype == b.dtype ? a.dtype : .f32)
            let output: DType = function.isComparison ? .bool : computed
            if computed.isFloatingPoint || (function == .pow && b.dtype.isFloatingPoint) {
                let x = a.doubles(), y = b.doubles()
                return [Tensor(dtype: output, shape: shape, doubles: zip(ia, ib).map { function(x[$0], y[$1]) })]
            }
            let x = a.int64s(), y = b.int64s()
            return [Tensor(dtype: output, shape: shape, int64s: zip(ia, ib).map { function(x[$0], y[$1]) })]
        }

        public func lower(_ context: LoweringContext) throws(OpFailure) -> Lowering? {
            Lowering(BroadcastKernel(function: function), inputs: context.node.inputs)
        }

        public func exportONNX(_ node: Node, to onnx: inout ONNXExporter) throws(OpFailure) {
            switch function {
            case .mod: onnx.emit("Mod")
            case .fmod: onnx.emit("Mod", [("fmod", .int(1))])
            default: onnx.emit(name)
            }
        }

        public static var onnxImporters: [ONNXImporter] {
            /// From opset 7 NumPy broadcasting; before, B broadcast to A with broadcast=1 only.
            func arithmetic(_ function: Function) -> ONNXImporter {
                ONNXImporter(function.rawValue) { (b: inout ONNXGraphBuilder, n: ONNXNode) throws(ONNXImportError) in
                    try n.requireInputs(2...2)
                    guard b.opset < 7 else {
                        try n.allow([])
                        return try b.emit(n, Binary(function), [n.inputs[0], n.inputs[1]])
                    }
                    try n.allow(b.opset < 6 ? ["axis", "broadcast", "consumed_inputs"] : ["axis", "broadcast"])
                    let x = try b.shape(of: n.inputs[0], n), y = try b.shape(of: n.inputs[1], n)
                    guard try n.int("broadcast", default: 0) != 0 else {
                        guard x == y else {
                            throw n.error("A \(Dim.text(x)) and B \(Dim.text(y)) differ: broadcast is 0, and before opset 7 \(n.opType) broadcasts only with broadcast=1")
                        }
                        return try b.emit(n, Binary(function), [n.inputs[0], n.inputs[1]])
                    }
                    let right = try b.legacyBroadcast(n, n.inputs[1], shape: y, to: x, axis: try n.int("axis"), role: "B")
                    try b.emit(n, Binary(function), [n.inputs[0], right])
                }
            }
            func plain(_ opType: String, since: Int, _ function: Function) -> ONNXImporter {
                .plain(opType, since: since, inputs: 2...2, Binary(function))
            }
            /// Sum, Max, Min, Mean of n inputs: a chain of binary nodes (Mean divides by n at the end).
            func variadic(_ opType: String, _ function: Function, mean: Bool = false) -> ONNXImporter {
                ONNXImporter(opType) { (b: inout ONNXGraphBuilder, n: ONNXNode) throws(ONNXImportError) in
                    try n.allow(b.opset < 6 ? ["consumed_inputs"] : [])
                    guard !n.inputs.isEmpty, n.inputs.allSatisfy({ !$0.isEmpty }) else { throw n.error("needs at least one input, none empty") }
                    guard n.outputs.count == 1, !n.output.isEmpty else { throw n.error("must have one output") }
                    if b.opset < 8 {
                        // Before opset 8 these did not broadcast: every input has the first's shape.
                        let first = try b.shape(of: n.inputs[0], n)
                        for input in n.inputs.dropFirst() where try b.shape(of: input, n) != first {
                            throw n.error("inputs differ in shape, and before opset 8 \(opType) does not broadcast")
                        }
                    }
                    let steps = n.inputs.count - 1 + (mean ? 1 : 0)
                    if steps == 0 { return try b.emit(n, Binary(.add), [n.inputs[0], try zero(&b, n)]) }
                    var current = n.inputs[0]
                    for (k, input) in n.inputs.dropFirst().enumerated() {
                        let last = k == n.inputs.count - 2 && !mean
                        let output = last ? n.output : "\(n.output)/\(k + 1)"
                        b.append(Node(last ? n.name : "\(n.name)/\(k + 1)", Binary(function), inputs: [current, input], output: output))
                        current = output
                    }
                    if mean {
                        let count = "\(n.output)/count"
                        let dtype = try b.info(of: n.inputs[0], n).dtype
                        b.addConstant(count, Tensor(dtype: dtype, shape: [], doubles: [Double(n.inputs.count)]))
                        b.append(Node(n.name, Binary(.div), inputs: [current, count], output: n.output))
                    }
                }
            }
            /// A one-input Sum is its input: x + 0.
            @Sendable func zero(_ b: inout ONNXGraphBuilder, _ n: ONNXNode) throws(ONNXImportError) -> String {
                let name = "\(n.output)/zero"
                b.addConstant(name, Tensor(dtype: try b.info(of: n.inputs[0], n).dtype, shape: [], doubles: [0]))
                return name
            }
            return [
                arithmetic(.add), arithmetic(.sub), arithmetic(.mul), arithmetic(.div),
                ONNXImporter("Pow") { (b: inout ONNXGraphBuilder, n: ONNXNode) throws(ONNXImportError) in
                    try n.requireInputs(2...2)
                    try n.allow(b.opset < 7 ? ["axis", "broadcast"] : [])
                    var exponent = n.inputs[1]
                    if b.opset < 7, try n.int("broadcast", default: 0) != 0 {
                        exponent = try b.legacyBroadcast(n, exponent, shape: try b.shape(of: exponent, n), to: try b.shape(of: n.inputs[0], n),
                                                         axis: try n.int("axis"), role: "Y")
                    }
                    try b.emit(n, Binary(.pow), [n.inputs[0], exponent])
                },
                ONNXImporter("Mod", since: 10) { (b: inout ONNXGraphBuilder, n: ONNXNode) throws(ONNXImportError) in
                    try n.allow(["fmod"])
                    try n.requireInputs(2...2)
                    let fmod = try n.int("fmod", default: 0) != 0
                    try b.emit(n, Binary(fmod ? .fmod : .mod), [n.inputs[0], n.inputs[1]])
                },
                plain("Equal", since: 1, .equal), plain("Less", since: 1, .less), plain("Greater", since: 1, .greater),
                plain("LessOrEqual", since: 12, .lessOrEqual), plain("GreaterOrEqual", since: 12, .greaterOrEqual),
                ONNXImporter("PRelu") { (b: inout ONNXGraphBuilder, n: ONNXNode) throws(ONNXImportError) in
                    try n.allow(b.opset < 6 ? ["consumed_inputs"] : [])
                    try n.requireInputs(2...2)
                    var slope = n.inputs[1]
                    // Before opset 7 a per-channel slope [C] applies along dim 1.
                    if b.opset < 7 {
                        let s = try b.shape(of: slope, n), x = try b.shape(of: n.inputs[0], n)
                        if x.count > 2, s.count == 1, s != [.fixed(1)] { slope = try b.legacyBroadcast(n, slope, shape: s, to: x, axis: 1, role: "slope") }
                    }
                    try b.emit(n, Binary(.prelu), [n.inputs[0], slope])
                },
                plain("And", since: 1, .and), plain("Or", since: 1, .or), plain("Xor", since: 1, .xor),
                variadic("Sum", .add), variadic("Max", .max), variadic("Min", .min), variadic("Mean", .add, mean: true),
            ]
        }
    }
}

/// ReLU with the selected kernel set.
struct ReluKernel: StepKernel {
    func describe(inputShapes: [[Int]], outputShape: [Int]) -> (text: String, flops: Double, executed: Double) { ("relu", 0, 0) }
    func run(_ b: StepBuffers) {
        ElementwiseKernels.relu(input: b.inputs[0], output: b.output, count: b.outputShape.product, kernels: b.kernels)
    }
}

/// A one-input function over f32: an `Activation` in f32 (ReLU and Clip exact, the others within a
/// few ulp of the reference), any other through its Double reference (exactly the reference's
/// result). Chunks of the tensor run on the pool's threads, each element on its own, so the values
/// do not depend on the thread count.
struct MapKernel: StepKernel {
    let function: Op.Unary.Function
    func describe(inputShapes: [[Int]], outputShape: [Int]) -> (text: String, flops: Double, executed: Double) {
        (function.name.lowercased(), 0, 0)
    }
    func run(_ b: StepBuffers) {
        let x = b.inputs[0], y = b.output, count = b.outputShape.product, function = self.function
        if let activation = function.activation { return b.kernels.table.activate(activation, x, y, count: count, pool: b.pool) }
        b.pool.parallelChunks(count) { range in
            for i in range { y[i] = Float(function(Double(x[i]))) }
        }
    }
}

/// A two-input function over f32 with broadcasting. Add, Sub, Mul and Div are computed in Float,
/// which for these equals the Double reference rounded once (IEEE operations are correctly rounded).
struct BroadcastKernel: StepKernel {
    let function: Op.Binary.Function
    func describe(inputShapes: [[Int]], outputShape: [Int]) -> (text: String, flops: Double, executed: Double) {
        (function.rawValue.lowercased(), 0, 0)
    }
    func run(_ b: StepBuffers) {
        let shape = b.outputShape
        if [.add, .sub, .mul, .div].contains(function), b.inputShapes[0] == shape, b.inputShapes[1] == shape {
            return sameShape(b)
        }
        if [.add, .sub, .mul, .div].contains(function), let blocks = Self.blocks(b.inputShapes, shape) {
            return scaleBlocks(b, blocks)
        }
        if function == .add {
            return ElementwiseKernels.add(b.inputs[0], b.inputShapes[0], b.inputs[1], b.inputShapes[1], output: b.output, shape: shape)
        }
        let x = b.inputs[0], y = b.inputs[1], out = b.output
        // The inner loop runs over the last output dimension with each side's stride there (0 or 1).
        let sx = ElementwiseKernels.broadcastStrides(of: b.inputShapes[0], in: shape)
        let sy = ElementwiseKernels.broadcastStrides(of: b.inputShapes[1], in: shape)
        let inner = shape.last ?? 1, ix = sx.last ?? 0, iy = sy.last ?? 0
        ElementwiseKernels.forEachRow(of: shape, strides: [sx, sy]) { o, at in
            let row = out + o * inner, ax = at[0], ay = at[1]
            switch function {
            case .sub: for i in 0..<inner { row[i] = x[ax + i * ix] - y[ay + i * iy] }
            case .mul: for i in 0..<inner { row[i] = x[ax + i * ix] * y[ay + i * iy] }
            case .div: for i in 0..<inner { row[i] = x[ax + i * ix] / y[ay + i * iy] }
            default: for i in 0..<inner { row[i] = Float(function(Double(x[ax + i * ix]), Double(y[ay + i * iy]))) }
            }
        }
    }
}

extension BroadcastKernel {
    /// When one operand has the output's shape and the other is one value per block of trailing
    /// elements (its dims before some axis equal the output's, the rest are 1: squeeze-excite's
    /// [N, C, 1, 1] scale of [N, C, H, W]): the operand with the full shape (0 or 1) and the block
    /// count and size.
    static func blocks(_ inputs: [[Int]], _ shape: [Int]) -> (full: Int, planes: Int, inner: Int)? {
        for full in 0...1 where inputs[full] == shape {
            let small = inputs[1 - full]
            guard small.count <= shape.count else { continue }
            let aligned = [Int](repeating: 1, count: shape.count - small.count) + small
            let axis = (aligned.lastIndex { $0 != 1 } ?? -1) + 1
            guard aligned[..<axis] == shape[..<axis] else { continue }
            let inner = shape[axis...].reduce(1, *)
            if inner > 1 { return (full, shape[..<axis].reduce(1, *), inner) }
        }
        return nil
    }

    /// Add, Sub, Mul or Div of two tensors of the output's shape (a residual connection outside a
    /// convolution: ViT's, ConvNeXt's), in chunks across the pool's threads.
    private func sameShape(_ b: StepBuffers) {
        let x = b.inputs[0], s = b.inputs[1], y = b.output, count = b.outputShape.product, function = self.function
        b.pool.parallelChunks(count) { range in
            switch function {
            case .add: for i in range { y[i] = x[i] + s[i] }
            case .sub: for i in range { y[i] = x[i] - s[i] }
            case .mul: for i in range { y[i] = x[i] * s[i] }
            default: for i in range { y[i] = x[i] / s[i] }
            }
        }
    }

    /// `blocks`' case: each block combined with its one value, blocks in parallel (each element's
    /// value is the one IEEE operation, whatever the thread count).
    private func scaleBlocks(_ b: StepBuffers, _ blocks: (full: Int, planes: Int, inner: Int)) {
        let x = b.inputs[blocks.full], s = b.inputs[1 - blocks.full], y = b.output, inner = blocks.inner
        let function = self.function, swapped = blocks.full == 1
        let tasks = min(blocks.planes, 8 * b.pool.threadCount)
        b.pool.parallelFor(tasks) { task in
            for p in evenSplit(blocks.planes, parts: tasks, index: task) {
                let v = s[p], from = x + p * inner, to = y + p * inner
                switch (function, swapped) {
                case (.add, _): for i in 0..<inner { to[i] = from[i] + v }
                case (.mul, _): for i in 0..<inner { to[i] = from[i] * v }
                case (.sub, false): for i in 0..<inner { to[i] = from[i] - v }
                case (.sub, true): for i in 0..<inner { to[i] = v - from[i] }
                case (.div, false): for i in 0..<inner { to[i] = from[i] / v }
                default: for i in 0..<inner { to[i] = v / from[i] }
                }
            }
        }
    }
}
