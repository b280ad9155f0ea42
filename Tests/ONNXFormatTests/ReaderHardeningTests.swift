import Foundation
import ONNXFormat
import XCTest
import ZooCore
import ZooOps
import ZooRuntime

/// Protobuf wire-format writer for hostile models built in the test (field numbers from
/// Schemas/onnx.proto): attributes with any int64, shapes no exporter would write.
private typealias Wire = WireWriter

private enum Attribute {
    case int(Int), ints([Int]), string(String)
}

/// A one-input ONNX model (input "x", output "y") at any opset.
private struct HostileModel {
    var opset: Int
    var input: [Int?]
    var graph = Wire()  // GraphProto nodes and initializers
    /// Each node's op type by node name, as written.
    var opTypes: [String: String] = [:]

    init(opset: Int = 17, input: [Int?] = [nil, 4]) {
        self.opset = opset
        self.input = input
    }

    mutating func node(_ op: String, _ inputs: [String], _ output: String, name: String, _ attributes: [String: Attribute] = [:]) {
        opTypes[name] = op
        graph.message(1) { n in
            for i in inputs { n.string(1, i) }
            n.string(2, output)
            n.string(3, name)
            n.string(4, op)
            for (key, value) in attributes.sorted(by: { $0.key < $1.key }) {
                n.message(5) { a in
                    a.string(1, key)
                    switch value {
                    case let .int(v): a.int(3, v); a.int(20, 2)
                    case let .ints(vs): for v in vs { a.int(8, v) }; a.int(20, 7)
                    case let .string(s): a.string(4, s); a.int(20, 3)
                    }
                }
            }
        }
    }

    mutating func floats(_ name: String, _ values: [Float], _ dims: [Int]) {
        floats(named: Array(name.utf8), values, dims)
    }

    /// An f32 initializer whose name is any bytes.
    mutating func floats(named name: [UInt8], _ values: [Float], _ dims: [Int]) {
        graph.message(5) { t in
            for d in dims { t.int(1, d) }
            t.int(2, 1)
            t.bytes(4, values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian, Array.init) })
            t.bytes(8, name)
        }
    }

    mutating func int64s(_ name: String, _ values: [Int]) {
        graph.message(5) { t in
            t.int(1, values.count); t.int(2, 7); t.string(8, name)
            t.bytes(9, values.flatMap { v in withUnsafeBytes(of: Int64(v).littleEndian, Array.init) })
        }
    }

    /// An f32 initializer whose bytes are external data at `offset` in `location`.
    mutating func external(_ name: String, _ dims: [Int], location: String, offset: String) {
        graph.message(5) { t in
            for d in dims { t.int(1, d) }
            t.int(2, 1); t.string(8, name)
            t.message(13) { e in e.string(1, "location"); e.string(2, location) }
            t.message(13) { e in e.string(1, "offset"); e.string(2, offset) }
            t.int(14, 1)
        }
    }

    func bytes() -> [UInt8] {
        var model = Wire()
        model.int(1, 8)
        model.string(2, "zoo-hardening-tests")
        var g = graph
        g.string(2, "hostile")
        g.message(11) { v in
            v.string(1, "x")
            v.message(2) { type in
                type.message(1) { tensor in
                    tensor.int(1, 1)
                    tensor.message(2) { shape in
                        for d in input { shape.message(1) { dim in if let d { dim.int(1, d) } else { dim.string(2, "N") } } }
                    }
                }
            }
        }
        g.message(12) { v in v.string(1, "y") }
        model.bytes(7, g.bytes)
        model.message(8) { o in o.string(1, ""); o.int(2, opset) }
        return model.bytes
    }
}

/// Hostile ONNX files — attributes, shapes and constants chosen to overflow, divide by zero or
/// allocate absurdly — are refused with one error naming the file and the node (never a trap),
/// and shape lookups during import stay linear in the node count.
final class ReaderHardeningTests: XCTestCase {
    private var folder: URL!
    private static let big = 1 << 62, tera = 1 << 40

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-onnx-hardening-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(at: folder) }

    private func load(_ model: HostileModel) throws -> ONNXModel {
        let path = folder.appendingPathComponent("m.onnx").path
        try Data(model.bytes()).write(to: URL(fileURLWithPath: path))
        return try ONNX.load(path: path)
    }

    /// The model is refused with an `ONNXError` on `node` (nil: any subject) whose message holds every fragment.
    private func assertRefused(_ model: HostileModel, node: String?, _ fragments: [String], line: UInt = #line) {
        do {
            _ = try load(model)
            XCTFail("imported; expected a refusal", line: line)
        } catch let error as ONNXError {
            XCTAssertTrue(error.description.hasPrefix(folder.appendingPathComponent("m.onnx").path + ": "), error.description, line: line)
            XCTAssertFalse(error.description.contains("\n"), "one line: \(error.description)", line: line)
            if let node { XCTAssertEqual(error.subject, .node(name: node, opType: model.opTypes[node] ?? "?"), error.description, line: line) }
            for fragment in fragments { XCTAssertTrue(error.description.contains(fragment), "'\(fragment)' not in: \(error.description)", line: line) }
        } catch {
            XCTFail("unexpected error \(error)", line: line)
        }
    }

    private func conv(_ attributes: [String: Attribute], input: [Int?] = [nil, 3, 8, 8]) -> HostileModel {
        var m = HostileModel(input: input)
        m.floats("W", [Float](repeating: 1, count: 54), [2, 3, 3, 3])
        m.node("Conv", ["x", "W"], "y", name: "conv", attributes)
        return m
    }

    /// A protobuf message that is not a model (no graph, or no IR version) was freed twice — by the
    /// failed initializer and again by `deinit` — aborting zoo. The inputs are the minimized files in
    /// Tests/Fuzz/regressions/onnx (field 1 = 7 alone; an empty field 7 alone).
    func testProtobufThatIsNotAModelIsRefusedOnce() throws {
        let regressions = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fuzz/regressions/onnx")
        for (name, missing) in [("double-free-no-graph.onnx", "graph"), ("double-free-no-ir-version.onnx", "ir_version")] {
            let path = regressions.appendingPathComponent(name).path
            XCTAssertThrowsError(try ONNX.load(path: path)) { error in
                XCTAssertEqual("\(error)", "\(path): not an ONNX model: protobuf message without \(missing)")
            }
            XCTAssertThrowsError(try ONNX.initializers(path: path))
        }
    }

    // C5: auto_pad SAME_* divided by the strides before they were validated.
    func testWindowAttributesAreValidatedBeforeAutoPad() {
        assertRefused(conv(["auto_pad": .string("SAME_LOWER"), "strides": .ints([0, 1])]), node: "conv", ["strides [0, 1] must be positive"])
        assertRefused(conv(["auto_pad": .string("SAME_UPPER"), "dilations": .ints([1, -1])]), node: "conv", ["dilations [1, -1] must be positive"])
        assertRefused(conv(["auto_pad": .string("SAME_UPPER"), "kernel_shape": .ints([0, 3])]), node: "conv", ["kernel_shape [0, 3] must be positive"])
        assertRefused(conv(["pads": .ints([1, -1, 1, 1])]), node: "conv", ["pads [1, -1, 1, 1] must be non-negative"])
        var pool = HostileModel(input: [nil, 3, 8, 8])
        pool.node("MaxPool", ["x"], "y", name: "pool", ["auto_pad": .string("SAME_UPPER"), "kernel_shape": .ints([2, 2]), "strides": .ints([1, 0])])
        assertRefused(pool, node: "pool", ["strides [1, 0] must be positive"])
        // A window too large for SAME's arithmetic: (kernel 2^62 - 1) × dilation 3.
        assertRefused(conv(["auto_pad": .string("SAME_UPPER"), "kernel_shape": .ints([Self.big, 3]), "dilations": .ints([3, 1])]),
                      node: "conv", ["auto_pad SAME_UPPER", "too large"])
    }

    func testSameAutoPadOnAComputedInputStillResolves() throws {
        var m = HostileModel(input: [nil, 3, 8, 8])
        m.floats("W", [Float](repeating: 1, count: 54), [2, 3, 3, 3])
        m.node("Relu", ["x"], "r", name: "relu")
        m.node("Conv", ["r", "W"], "y", name: "conv", ["auto_pad": .string("SAME_UPPER"), "strides": .ints([2, 2])])
        let graph = try load(m).graph
        XCTAssertEqual(graph.values["y"]?.shape, [.symbolic("N"), .fixed(2), .fixed(4), .fixed(4)])
        guard let c = graph.nodes[1].op as? Op.Conv else { return XCTFail("not a conv: \(graph.nodes[1].op)") }
        XCTAssertEqual(c.pads, [0, 0, 1, 1])
    }

    // C6: shape values went through Double, and 2^63 - 1 rounded to 2^63 and trapped.
    func testShapeValuesAreReadExactly() {
        var reshape = HostileModel()
        reshape.int64s("s", [0, Int(Int64.max)])
        reshape.node("Reshape", ["x", "s"], "y", name: "reshape")
        assertRefused(reshape, node: "reshape", ["9223372036854775807"])
        var fill = HostileModel()
        fill.int64s("s", [Int(Int64.max)])
        fill.node("ConstantOfShape", ["s"], "c", name: "fill")
        fill.node("Add", ["x", "c"], "y", name: "add")
        assertRefused(fill, node: "fill", ["[9223372036854775807]", "more bytes than an Int counts", "maxFoldedConstantBytes"])
    }

    // C7: folding a constant Reshape multiplied the target sizes unchecked.
    func testConstantReshapeFoldIsChecked() {
        func model(_ target: [Int]) -> HostileModel {
            var m = HostileModel()
            m.floats("C", [1, 2, 3, 4], [4])
            m.int64s("s", target)
            m.node("Reshape", ["C", "s"], "r", name: "fold")
            m.node("Add", ["x", "r"], "y", name: "add")
            return m
        }
        assertRefused(model([Self.tera, Self.tera, -1]), node: "fold", ["overflows"])
        assertRefused(model([-2, -2]), node: "fold", ["has a negative size"])
        assertRefused(model([-1, -1]), node: "fold", ["more than one -1"])
    }

    // C8, R1: ConstantOfShape's byte count overflowed, and a fill of 4 TiB was allocated.
    func testConstantOfShapeIsCheckedAndBudgeted() throws {
        func model(_ shape: [Int]) -> HostileModel {
            var m = HostileModel()
            m.int64s("s", shape)
            m.node("ConstantOfShape", ["s"], "c", name: "fill")
            m.node("Add", ["x", "c"], "y", name: "add")
            return m
        }
        assertRefused(model([1 << 61]), node: "fill",
                      ["a folded constant of shape [2305843009213693952] f32 (more bytes than an Int counts) exceeds limit maxFoldedConstantBytes (4 GiB; raise with ZOO_LIMITS=maxFoldedConstantBytes=<n>)"])
        assertRefused(model([1 << 20, 1 << 20]), node: "fill",
                      ["a folded constant of shape [1048576, 1048576] f32 (4 TiB) exceeds limit maxFoldedConstantBytes (4 GiB; raise with ZOO_LIMITS=maxFoldedConstantBytes=4T)"])
        assertRefused(model([-1, 4]), node: "fill", ["negative"])
        // A fill within the budget is still folded.
        let graph = try load(model([4])).graph
        XCTAssertEqual(graph.initializers.map(\.tensor.shape), [[4]])
        XCTAssertEqual(graph.initializers.first?.tensor.floats(), [0, 0, 0, 0])
    }

    // C9: window arithmetic (dilation × (kernel - 1), size + pads) overflowed.
    func testWindowArithmeticIsChecked() throws {
        assertRefused(conv(["pads": .ints([Self.big, 0, Self.big, 0])]), node: "conv", ["padded height", "overflows"])
        assertRefused(conv(["dilations": .ints([Self.big, 1])]), node: "conv", ["height window", "overflows"])
        assertRefused(conv(["pads": .ints([1 << 31, 1 << 31, 1 << 31, 1 << 31])]), node: "conv", ["padded input's spatial volume", "overflows"])
        var pool = HostileModel(input: [nil, 3, 8, 8])
        pool.node("MaxPool", ["x"], "y", name: "pool", ["kernel_shape": .ints([Self.big, 2]), "pads": .ints([Self.big - 1, 0, Self.big - 1, 0])])
        assertRefused(pool, node: "pool", ["overflows"])
        // SAME padding of a 2^62 kernel: one window, but its padded area (the kernels' count_include_pad divisor) overflows.
        var area = HostileModel(input: [nil, 3, 8, 8])
        area.node("AveragePool", ["x"], "y", name: "pool",
                  ["auto_pad": .string("SAME_UPPER"), "kernel_shape": .ints([Self.big, 2]), "count_include_pad": .int(1)])
        assertRefused(area, node: "pool", ["padded input's spatial volume", "overflows"])
        // A huge stride with ceil_mode is fine: one window.
        var strided = HostileModel(input: [nil, 3, 8, 8])
        strided.node("MaxPool", ["x"], "y", name: "pool", ["kernel_shape": .ints([2, 2]), "strides": .ints([Self.big, 1]), "ceil_mode": .int(1)])
        XCTAssertEqual(try load(strided).graph.values["y"]?.shape, [.symbolic("N"), .fixed(3), .fixed(1), .fixed(7)])
        // Direct: the shape inference refuses what the reader did not see.
        let x = ValueInfo(name: "x", dtype: .f32, shape: [.fixed(1), .fixed(1), .fixed(Int.max - 1), .fixed(4)])
        let node = Node("pool", Op.MaxPool(Op.Pool(kernel: [2, 2], strides: [1, 1], pads: [1, 0, 1, 0], ceilMode: true)), inputs: ["x"])
        XCTAssertThrowsError(try Graph.inferOutputs(of: node, inputs: [x])) { error in
            XCTAssertTrue("\(error)".contains("overflows"), "\(error)")
        }
    }

    // C10, C11: flatten's product and reshape's running product overflowed.
    func testFlattenAndReshapeProductsAreChecked() throws {
        var reshape = HostileModel()
        reshape.int64s("s", [0, Self.tera, Self.tera])
        reshape.node("Reshape", ["x", "s"], "y", name: "reshape")
        assertRefused(reshape, node: "reshape", ["overflows"])
        // Copied dims multiplied around a zero-size dim.
        let zero = ValueInfo(name: "x", dtype: .f32, shape: [.fixed(0), .fixed(Self.tera), .fixed(Self.tera)])
        XCTAssertThrowsError(try Graph(name: "g", inputs: [zero], initializers: [],
                                       nodes: [Node("reshape", Op.Reshape(shape: [1, 0, 0], allowZero: false), inputs: ["x"])], outputs: ["reshape"]))
        // Graph inputs are not size-checked by Graph itself: the inference is.
        let cube = ValueInfo(name: "x", dtype: .f32, shape: [.fixed(Self.tera), .fixed(Self.tera), .fixed(Self.tera)])
        XCTAssertThrowsError(try Graph(name: "g", inputs: [cube], initializers: [],
                                       nodes: [Node("flat", Op.Flatten(axis: 0), inputs: ["x"])], outputs: ["flat"])) { error in
            XCTAssertEqual((error as? GraphError)?.node, "flat")
            XCTAssertTrue("\(error)".contains("overflows"), "\(error)")
        }
        let square = ValueInfo(name: "x", dtype: .f32, shape: [.fixed(Self.tera), .fixed(Self.tera)])
        XCTAssertThrowsError(try Graph(name: "g", inputs: [square], initializers: [],
                                       nodes: [Node("gemm", Op.Gemm(transA: true), inputs: ["x", "x"])], outputs: ["gemm"])) { error in
            XCTAssertEqual((error as? GraphError)?.reason, .outputTooLarge([.fixed(Self.tera), .fixed(Self.tera)]))
        }
        let half = ValueInfo(name: "x", dtype: .f32, shape: [.fixed(Int.max / 2 + 1)])
        XCTAssertThrowsError(try Graph(name: "g", inputs: [half], initializers: [],
                                       nodes: [Node("cat", Op.Concat(axis: 0), inputs: ["x", "x"])], outputs: ["cat"])) { error in
            XCTAssertTrue("\(error)".contains("overflows"), "\(error)")
        }
    }

    func testHugeDeclaredInputsAreRefused() {
        var relu = HostileModel(input: [nil, Self.big])
        relu.node("Relu", ["x"], "y", name: "relu")
        assertRefused(relu, node: nil, ["value 'x'", "too large"])
        var gemm = HostileModel(input: [Self.tera, Self.tera])
        gemm.node("Gemm", ["x", "x"], "y", name: "gemm", ["transA": .int(1)])
        assertRefused(gemm, node: nil, ["value 'x'", "too large"])
        var flatten = HostileModel(input: [Self.tera, Self.tera, Self.tera])
        flatten.node("Flatten", ["x"], "y", name: "flat", ["axis": .int(0)])
        assertRefused(flatten, node: nil, ["value 'x'", "too large"])
    }

    func testLegacyBroadcastAxisCannotOverflow() {
        var m = HostileModel(opset: 6, input: [nil, 2, 3])
        m.floats("b", [1, 2, 3], [3])
        m.node("Add", ["x", "b"], "y", name: "add", ["broadcast": .int(1), "axis": .int(Int(Int64.max))])
        assertRefused(m, node: "add", ["axis 9223372036854775807"])
    }

    func testExternalDataAtAHugeOffsetIsRefused() throws {
        try Data(count: 16).write(to: folder.appendingPathComponent("w.bin"))
        var m = HostileModel()
        m.external("w", [4], location: "w.bin", offset: String(Int.max))
        m.node("Add", ["x", "w"], "y", name: "add")
        assertRefused(m, node: nil, ["tensor 'w'", "outside the file"])
    }

    // R3: each shape lookup rebuilt the graph so far — a MatMul chain imported in quadratic time.
    func testShapeLookupsAreIncremental() throws {
        var m = HostileModel()
        m.floats("W", [Float](repeating: 0.5, count: 16), [4, 4])
        let count = 3000
        for k in 0..<count {
            m.node("MatMul", [k == 0 ? "x" : "h\(k - 1)", "W"], k == count - 1 ? "y" : "h\(k)", name: "mm\(k)")
        }
        let start = Date()
        let graph = try load(m).graph
        let elapsed = Date().timeIntervalSince(start)
        XCTAssertEqual(graph.nodes.count, count)
        XCTAssertEqual(graph.values["y"]?.shape, [.symbolic("N"), .fixed(4)])
        // Quadratic lookups took minutes here in a debug build; linear ones well under a second.
        XCTAssertLessThan(elapsed, 10, "importing \(count) MatMuls took \(elapsed) s")
        // The pre-13 Softmax reads the shape of a value computed many nodes later.
        var s = HostileModel(opset: 11, input: [nil, 2, 3])
        s.node("Relu", ["x"], "r0", name: "relu0")
        s.node("Relu", ["r0"], "r1", name: "relu1")
        s.node("Softmax", ["r1"], "y", name: "softmax", ["axis": .int(1)])
        let softmax = try load(s).graph
        XCTAssertEqual(softmax.nodes.map(\.op.name), ["Relu", "Relu", "Flatten", "Softmax", "Reshape"])
        XCTAssertEqual(softmax.values["y"]?.shape, [.symbolic("N"), .fixed(2), .fixed(3)])
    }

    // protobuf-c keeps string fields as C strings and does not check their UTF-8: "\0bias" read as
    // "" (Gemm without a bias: a different result, no error) and "w\u{FF}", "w\u{FE}" both as "w\u{FFFD}".
    private func refusal(_ bytes: [UInt8]) -> String {
        let path = folder.appendingPathComponent("m.onnx").path
        do {
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            _ = try ONNX.load(path: path)
            return "loaded"
        } catch {
            return "\(error)".replacingOccurrences(of: path, with: "m.onnx")
        }
    }

    /// Where `needle` first occurs in `bytes`.
    private func offset(of needle: [UInt8], in bytes: [UInt8]) -> Int {
        (0...(bytes.count - needle.count)).first { bytes[$0..<$0 + needle.count].elementsEqual(needle) }!
    }

    func testNULInAStringFieldIsRefused() throws {
        func gemm(bias: String) -> HostileModel {
            var m = HostileModel()
            m.floats("W", [Float](repeating: 1, count: 12), [3, 4])
            m.floats(bias, [1, 2, 3], [3])
            m.node("Gemm", ["x", "W", bias], "y", name: "gemm", ["transB": .int(1)])
            return m
        }
        // With a plain name, the bias is an input (with "\0bias", protobuf-c read "": no bias).
        XCTAssertEqual(try load(gemm(bias: "bias")).graph.nodes.map(\.inputs), [["x", "W", "bias"]])
        let bytes = gemm(bias: "\0bias").bytes()
        // The initializer's name comes first in the file.
        XCTAssertEqual(refusal(bytes), "m.onnx: byte \(offset(of: Array("\0bias".utf8), in: bytes)): graph.initializer[1].name: "
                           + "string field contains a NUL byte (ONNX names are UTF-8 text)")
        // Two initializers that protobuf-c would both name "w".
        var twins = HostileModel()
        twins.floats("w\0a", [1, 2, 3, 4], [4])
        twins.floats("w\0b", [1, 2, 3, 4], [4])
        twins.node("Add", ["x", "w\0b"], "y", name: "add")
        let twinBytes = twins.bytes()
        XCTAssertEqual(refusal(twinBytes), "m.onnx: byte \(offset(of: Array("w\0a".utf8), in: twinBytes) + 1): graph.initializer[0].name: "
                           + "string field contains a NUL byte (ONNX names are UTF-8 text)")
        // In a node's input (and nowhere else).
        var input = HostileModel()
        input.node("Relu", ["x"], "r", name: "relu")
        input.node("Add", ["x", "r\0"], "y", name: "add")
        XCTAssertEqual(refusal(input.bytes()).replacingOccurrences(of: #"byte \d+"#, with: "byte N", options: .regularExpression),
                       "m.onnx: byte N: graph.node[1].input[1]: string field contains a NUL byte (ONNX names are UTF-8 text)")
    }

    func testInvalidUTF8InAStringFieldIsRefused() throws {
        var twins = HostileModel()
        twins.floats(named: [0x77, 0xFF], [1, 2, 3, 4], [4])
        twins.floats(named: [0x77, 0xFE], [1, 2, 3, 4], [4])
        twins.node("Add", ["x", "x"], "y", name: "add")
        let bytes = twins.bytes()
        XCTAssertEqual(refusal(bytes), "m.onnx: byte \(offset(of: [0x77, 0xFF], in: bytes) + 1): graph.initializer[0].name: "
                           + "string field is not valid UTF-8 (ONNX names are UTF-8 text)")
        // What a lax decoder accepts: an overlong NUL, a surrogate, a code point past U+10FFFF, a cut-off sequence.
        for name: [UInt8] in [[0xC0, 0x80], [0x61, 0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0x63, 0x61, 0x66, 0xC3]] {
            var m = HostileModel()
            m.graph.message(1) { n in n.string(1, "x"); n.string(2, "y"); n.bytes(3, name); n.string(4, "Relu") }
            XCTAssertTrue(refusal(m.bytes()).hasSuffix(": graph.node[0].name: string field is not valid UTF-8 (ONNX names are UTF-8 text)"),
                          "\(name): \(refusal(m.bytes()))")
        }
        // Strings outside the graph too: the model's producer_name.
        var producer = WireWriter()
        producer.int(1, 8)
        producer.bytes(2, [0x7A, 0x6F, 0x6F, 0x80])
        XCTAssertEqual(refusal(producer.bytes), "m.onnx: byte 7: producer_name: string field is not valid UTF-8 (ONNX names are UTF-8 text)")
    }

    func testNonASCIINamesStillLoad() throws {
        var m = HostileModel()
        m.floats("poids_é", [1, 2, 3, 4], [4])
        m.node("Add", ["x", "poids_é"], "somme_∑", name: "café✓")
        m.node("Relu", ["somme_∑"], "y", name: "ReLU 🦓")
        let graph = try load(m).graph
        XCTAssertEqual(graph.nodes.map(\.name), ["café✓", "ReLU 🦓"])
        XCTAssertEqual(graph.nodes[0].inputs, ["x", "poids_é"])
    }

    /// ModelProto bytes whose graph holds `levels` × node → attribute → g (the innermost graph at
    /// depth 1 + 3 × levels), then `inner` inside the innermost graph. Built back to front: a
    /// chain far deeper than the stack.
    private func nested(_ levels: Int, inner: [UInt8]) -> [UInt8] {
        var reversed: [UInt8] = inner.reversed()
        func wrap(_ tag: UInt8) {
            var length = UInt64(reversed.count), prefix: [UInt8] = []
            repeat { prefix.append(UInt8(length & 0x7F) | (length >= 0x80 ? 0x80 : 0)); length >>= 7 } while length > 0
            reversed += prefix.reversed()
            reversed.append(tag)
        }
        for _ in 0..<levels { wrap(0x32); wrap(0x2A); wrap(0x0A) }  // AttributeProto.g, NodeProto.attribute, GraphProto.node
        wrap(0x3A)  // ModelProto.graph
        return [0x08, 0x08] + reversed.reversed()  // ir_version 8
    }

    func testNestingDeeperThanTheLimitIsRefused() throws {
        // 100 levels (the innermost g; maxONNXNesting) reach the reader, which has its own reasons to refuse.
        XCTAssertFalse(refusal(nested(33, inner: [])).contains("nested"), refusal(nested(33, inner: [])))
        // A node inside it is level 101 (the offset: where its bytes start).
        let deep = nested(33, inner: [0x0A, 0x00])
        XCTAssertEqual(refusal(deep), "m.onnx: protobuf messages nested more than 100 levels deep (at byte \(deep.count)) "
                           + "exceeds limit maxONNXNesting (100; raise with ZOO_LIMITS=maxONNXNesting=<n>)")
        // Far deeper than protobuf-c's recursion survives: refused before it is unpacked.
        let bomb = nested(200_000, inner: [])
        XCTAssertGreaterThan(bomb.count, 600_000)
        XCTAssertTrue(refusal(bomb).hasSuffix(" exceeds limit maxONNXNesting (100; raise with ZOO_LIMITS=maxONNXNesting=<n>)"), refusal(bomb))
        // The same walk guards a TensorProto's strings.
        var tensor = WireWriter()
        tensor.int(1, 1); tensor.int(2, 1); tensor.bytes(8, Array("t\0".utf8)); tensor.float(4, 1)
        XCTAssertThrowsError(try tensor.bytes.withUnsafeBytes { try ONNX.tensor(fromTensorProtoBytes: $0, name: "t.pb") }) { error in
            XCTAssertEqual("\(error)", "t.pb: byte 7: name: string field contains a NUL byte (ONNX names are UTF-8 text)")
        }
        var external = WireWriter()
        external.int(1, 1); external.int(2, 1); external.string(8, "e"); external.int(14, 1)
        external.message(13) { $0.string(1, "location"); $0.string(2, "e.bin") }
        external.message(13) { $0.string(1, "offset"); $0.bytes(2, [0x31, 0xFF]) }
        XCTAssertThrowsError(try external.bytes.withUnsafeBytes { try ONNX.tensor(fromTensorProtoBytes: $0, name: "t.pb") }) { error in
            XCTAssertTrue("\(error)".hasSuffix(": external_data[1].value: string field is not valid UTF-8 (ONNX names are UTF-8 text)"), "\(error)")
        }
    }

    func testInferOutputEntryPoint() throws {
        let x = ValueInfo(name: "x", dtype: .f32, shape: [.symbolic("N"), .fixed(4)])
        XCTAssertEqual(try Graph.inferOutputs(of: Node("r", Op.Unary.relu, inputs: ["x"]), inputs: [x]),
                       [ValueInfo(name: "r", dtype: .f32, shape: [.symbolic("N"), .fixed(4)])])
        XCTAssertThrowsError(try Graph.inferOutputs(of: Node("r", Op.Unary.relu, inputs: []), inputs: [])) { error in
            XCTAssertEqual((error as? GraphError)?.node, "r")
        }
    }
}
