import Foundation
import ONNXFormat
import XCTest
import ZooCore
import ZooOps
import ZooRuntime

/// Just enough of the protobuf wire format to write small ONNX models and TensorProtos in a test
/// (field numbers from Schemas/onnx.proto), for the models the reader must refuse and for structure
/// checks. Every model whose output is compared is a fixture instead (see `LegacyOpsetTests`).
private typealias Proto = WireWriter

/// An ONNX attribute value for `Model.node`.
private enum Attr {
    case int(Int), float(Float), ints([Int])
}

/// A one-input ONNX model at any opset.
private struct Model {
    var opset: Int
    var input: (name: String, dims: [Int?]) = ("x", [nil, 4])
    var output = "y"
    var proto = Proto()  // GraphProto fields: nodes and initializers

    init(opset: Int, input: [Int?] = [nil, 4]) {
        self.opset = opset
        self.input = ("x", input)
    }

    mutating func node(_ op: String, _ inputs: [String], _ output: String, name: String = "", _ attributes: [String: Attr] = [:]) {
        proto.message(1) { n in
            for i in inputs { n.string(1, i) }
            n.string(2, output)
            if !name.isEmpty { n.string(3, name) }
            n.string(4, op)
            for (key, value) in attributes.sorted(by: { $0.key < $1.key }) {
                n.message(5) { a in
                    a.string(1, key)
                    switch value {
                    case let .int(v): a.int(3, v); a.int(20, 2)
                    case let .float(v): a.float(2, v); a.int(20, 1)
                    case let .ints(vs): for v in vs { a.int(8, v) }; a.int(20, 7)
                    }
                }
            }
        }
    }

    mutating func initializer(_ name: String, _ values: [Float], _ dims: [Int]) { proto.message(5) { Model.floatTensor(&$0, name, values, dims) } }

    mutating func int64Initializer(_ name: String, _ values: [Int]) {
        proto.message(5) { t in
            t.int(1, values.count); t.int(2, 7); t.string(8, name)
            t.bytes(9, values.flatMap { v in withUnsafeBytes(of: Int64(v).littleEndian, Array.init) })  // raw_data
        }
    }

    static func floatTensor(_ t: inout Proto, _ name: String, _ values: [Float], _ dims: [Int]) {
        for d in dims { t.int(1, d) }
        t.int(2, 1)
        t.bytes(4, values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian, Array.init) })  // packed float_data
        t.string(8, name)
    }

    func bytes() -> [UInt8] {
        var model = Proto()
        model.int(1, 3)
        model.string(2, "zoo-legacy-tests")
        var graph = proto
        graph.string(2, "legacy")
        graph.message(11) { v in
            v.string(1, input.name)
            v.message(2) { type in
                type.message(1) { tensor in
                    tensor.int(1, 1)
                    tensor.message(2) { shape in
                        for d in input.dims { shape.message(1) { dim in if let d { dim.int(1, d) } else { dim.string(2, "N") } } }
                    }
                }
            }
        }
        graph.message(12) { v in v.string(1, output) }
        model.bytes(7, graph.bytes)
        model.message(8) { o in o.string(1, ""); o.int(2, opset) }
        return model.bytes
    }
}

/// Old opsets (1…6). Each numeric case is a legacy model written by Fixtures/make_onnx_legacy_cases.py
/// (onnx 1.23.2, checked against that opset's schemas) with onnxruntime 1.32's output for its input:
/// onnxruntime has no kernels for most opset < 7 ops, so the script runs an opset-13 model with the
/// modern equivalent of the legacy semantics (the argument is in the script, from the schema docs,
/// cross-checked with onnx's version converter where that works). zoo loads the legacy file itself.
final class LegacyOpsetTests: XCTestCase {
    private static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/onnx/legacy")

    /// Every case in Fixtures/onnx/legacy/manifest.json, each checked by one of the tests below.
    private static let cases: Set<String> = [
        "relu_consumed_inputs_opset5",
        "batchnorm_is_test_opset6", "batchnorm_is_test_spatial_momentum_opset6", "batchnorm_is_test_consumed_inputs_opset5",
        "batchnorm_is_test_random_opset6",
        "dropout_is_test_opset6",
        "add_broadcast_axis1_opset6", "add_broadcast_axis1_consumed_inputs_opset5", "add_broadcast_suffix_opset6",
        "add_broadcast_axis2_opset6", "add_broadcast_channel_opset6", "add_broadcast_one_element_opset6",
        "add_broadcast_expand_opset6", "add_same_shape_opset6", "add_broadcast_computed_opset6",
        "gemm_broadcast_row_opset6", "gemm_broadcast_one_element_opset6", "gemm_broadcast_column_opset6",
        "gemm_full_c_opset6", "gemm_alpha_beta_opset6",
        "reshape_attribute_opset4", "concat_default_axis_opset3",
        "reshape_minus_one_opset13", "reshape_minus_one_allowzero_opset18",
    ]

    private var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-onnx-legacy-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(at: folder) }

    private func load(_ model: Model, _ file: String = "m.onnx") throws -> ONNXModel {
        let path = folder.appendingPathComponent(file).path
        try Data(model.bytes()).write(to: URL(fileURLWithPath: path))
        return try ONNX.load(path: path)
    }

    /// Loads the fixture `name`.onnx with `ONNX.load`, runs it on its input and compares with
    /// onnxruntime's output: same shape, max|Δ| ≤ 1e-6·max|ref| + 1e-7. Returns the loaded model.
    @discardableResult
    private func check(_ name: String, opset: Int, line: UInt = #line) throws -> ONNXModel {
        XCTAssertTrue(Self.cases.contains(name), "\(name) is not in the case list", line: line)
        let model = try ONNX.load(path: Self.fixtures.appendingPathComponent("\(name).onnx").path)
        XCTAssertEqual(model.opset, opset, name, line: line)
        let input = try NumPy.read(path: Self.fixtures.appendingPathComponent("\(name).input.npy").path)
        let reference = try NumPy.read(path: Self.fixtures.appendingPathComponent("\(name).output.npy").path)
        let outputs = try Executor(graph: model.graph).run(input)
        let value = try XCTUnwrap(outputs[model.graph.outputs[0]], "\(name): no output", line: line)
        XCTAssertEqual(value.shape, reference.shape, name, line: line)
        let report = ParityReport(name: name, value: value, reference: reference)
        XCTAssertLessThanOrEqual(report.maxAbsDifference, 1e-6 * report.maxAbsReference + 1e-7,
                                 "\(name): max|Δ| \(report.maxAbsDifference), max|ref| \(report.maxAbsReference)", line: line)
        return model
    }

    func testManifestListsExactlyTheCheckedCases() throws {
        let data = try Data(contentsOf: Self.fixtures.appendingPathComponent("manifest.json"))
        let manifest = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: [String: Any]])
        XCTAssertEqual(Set(manifest.keys), Self.cases)
        for (name, info) in manifest {
            XCTAssertEqual(info["output"] as? String, "y", name)
            let opset = try XCTUnwrap(info["opset"] as? Int, name)
            XCTAssertTrue(opset <= 6 || name.hasPrefix("reshape_minus_one"), "\(name) is not a legacy opset")
        }
    }

    private func refusal(_ model: Model) -> String {
        do { _ = try load(model); return "loaded" } catch { return "\(error)" }
    }

    private func assertRefused(_ model: Model, _ fragments: [String], line: UInt = #line) {
        let message = refusal(model)
        for fragment in fragments { XCTAssertTrue(message.contains(fragment), "'\(message)' lacks '\(fragment)'", line: line) }
    }

    func testOpsetRange() throws {
        XCTAssertEqual(ONNX.supportedOpsets, 1...25)
        for opset in [1, 5, 6, 7, 22, 25] {
            var m = Model(opset: opset)
            m.node("Relu", ["x"], "y")
            XCTAssertEqual(try load(m).opset, opset)
        }
        var m = Model(opset: 0)
        m.node("Relu", ["x"], "y")
        assertRefused(m, ["opset 0 is not supported", "opsets 1 to 25"])
        m.opset = 26
        assertRefused(m, ["opset 26 is not supported"])
        // ConstantOfShape (opset 9) is not an op of opset 8.
        var constantOfShape = Model(opset: 8)
        constantOfShape.int64Initializer("s", [4])
        constantOfShape.node("ConstantOfShape", ["s"], "c", name: "fill")
        constantOfShape.node("Add", ["x", "c"], "y")
        assertRefused(constantOfShape, ["node 'fill' (ConstantOfShape, which opset 8 lacks: it was introduced in opset 9)"])
    }

    /// Relu-1, Add-1, Dropout-1, BatchNormalization-1 and Reshape-1 carry `consumed_inputs` (a legacy
    /// in-place hint, ignored); from opset 6 it is an unknown attribute.
    func testConsumedInputsIsIgnoredBeforeOpset6() throws {
        let relu = try check("relu_consumed_inputs_opset5", opset: 5)
        XCTAssertEqual(relu.graph.nodes.map(\.op.name), ["Relu"])
        var m = Model(opset: 6)
        m.node("Relu", ["x"], "y", ["consumed_inputs": .ints([0])])
        assertRefused(m, ["(Relu): unsupported attribute 'consumed_inputs'"])
    }

    func testBatchNormalizationIsTest() throws {
        func model(opset: Int, _ attributes: [String: Attr]) -> Model {
            var m = Model(opset: opset, input: [nil, 2, 1, 2])
            m.initializer("scale", [2, 0.5], [2]); m.initializer("bias", [1, -1], [2])
            m.initializer("mean", [0.5, 1], [2]); m.initializer("var", [4, 0.25], [2])
            m.node("BatchNormalization", ["x", "scale", "bias", "mean", "var"], "y", name: "bn", attributes)
            return m
        }
        // is_test=1, ε = 0; with spatial=1 and momentum; BatchNormalization-1's consumed_inputs (opset 5);
        // ε = 1e-3 on a random batch of 3.
        try check("batchnorm_is_test_opset6", opset: 6)
        try check("batchnorm_is_test_spatial_momentum_opset6", opset: 6)
        try check("batchnorm_is_test_consumed_inputs_opset5", opset: 5)
        try check("batchnorm_is_test_random_opset6", opset: 6)
        assertRefused(model(opset: 6, [:]), ["node 'bn' (BatchNormalization)", "is_test is 0", "inference only"])
        assertRefused(model(opset: 6, ["is_test": .int(0)]), ["is_test is 0"])
        assertRefused(model(opset: 6, ["is_test": .int(1), "spatial": .int(0)]), ["spatial=0"])
        assertRefused(model(opset: 7, ["is_test": .int(1)]), ["unsupported attribute 'is_test'"])
    }

    func testDropoutIsTest() throws {
        try check("dropout_is_test_opset6", opset: 6)
        var training = Model(opset: 6)
        training.node("Dropout", ["x"], "y", name: "drop")
        assertRefused(training, ["node 'drop' (Dropout)", "is_test is 0", "random training-mode dropout"])
        training.opset = 7
        training.proto = Proto()
        training.node("Dropout", ["x"], "y", name: "drop", ["is_test": .int(1)])
        assertRefused(training, ["unsupported attribute 'is_test'"])
    }

    /// Add-1/6: broadcast=1 extends B to A's shape from `axis` (suffix matching when unset);
    /// broadcast=0 needs equal shapes.
    func testAddLegacyBroadcast() throws {
        func add(_ b: [Float], _ dims: [Int], _ attributes: [String: Attr], opset: Int = 6) -> Model {
            var m = Model(opset: opset, input: [nil, 2, 3, 2])
            m.initializer("b", b, dims)
            m.node("Add", ["x", "b"], "y", name: "add", attributes)
            return m
        }
        // B [2, 3] at axis 1 (also as Add-1 with consumed_inputs): b[c][h] is added along w.
        let model = try check("add_broadcast_axis1_opset6", opset: 6)
        XCTAssertEqual(model.graph.nodes.map(\.op.name), ["Add"], "a constant B is refolded, not reshaped at run time")
        XCTAssertEqual(model.graph.initializers.map(\.tensor.shape), [[2, 3, 1]])
        try check("add_broadcast_axis1_consumed_inputs_opset5", opset: 5)
        // Suffix matching (no axis), or axis at the suffix: B [3, 2].
        try check("add_broadcast_suffix_opset6", opset: 6)
        try check("add_broadcast_axis2_opset6", opset: 6)
        // B [2] at axis 1 (per channel), a one-element B [1, 1], and a 1 in B that expands (B [2, 1] at axis 1).
        try check("add_broadcast_channel_opset6", opset: 6)
        try check("add_broadcast_one_element_opset6", opset: 6)
        try check("add_broadcast_expand_opset6", opset: 6)
        // Equal shapes need no broadcast (a constant [1, 2, 3, 2] is not the same shape as [N, 2, 3, 2]).
        try check("add_same_shape_opset6", opset: 6)
        let b23: [Float] = [100, 200, 300, 400, 500, 600]
        assertRefused(add([Float](repeating: 1, count: 12), [1, 2, 3, 2], [:]), ["A [N, 2, 3, 2] and B [1, 2, 3, 2] differ"])

        assertRefused(add(b23, [3, 2], [:]), ["node 'add' (Add)", "A [N, 2, 3, 2] and B [3, 2] differ: broadcast is 0"])
        assertRefused(add(b23, [2, 3], ["broadcast": .int(1)]), ["B [2, 3] does not broadcast to [N, 2, 3, 2] from axis 2"])
        assertRefused(add(b23, [2, 3], ["broadcast": .int(1), "axis": .int(3)]), ["axis 3 does not place B [2, 3]", "0 ≤ axis ≤ 2"])
        assertRefused(add(b23, [2, 3], ["broadcast": .int(1), "axis": .int(-3)]), ["axis -3 does not place B"])
        assertRefused(add(b23, [2, 3], ["broadcast": .int(1), "axis": .int(1)], opset: 7), ["unsupported attributes 'axis', 'broadcast'"])
    }

    /// A B that is not a constant gets an IR Reshape to line it up.
    func testAddLegacyBroadcastOfAComputedValue() throws {
        // Add(Reshape(x, [1, 3, 2, 1]), x) with x [1, 3, 2] at axis 0.
        let model = try check("add_broadcast_computed_opset6", opset: 6)
        XCTAssertEqual(model.graph.nodes.map(\.op.name), ["Reshape", "Reshape", "Add"])
        XCTAssertEqual(model.graph.nodes[1].op as? Op.Reshape, Op.Reshape(shape: [0, 0, 0, 1], allowZero: false))
    }

    /// Gemm-1/6: C is [M, N], or broadcast to it with broadcast=1.
    func testGemmLegacyBroadcast() throws {
        func gemm(_ c: [Float], _ dims: [Int], _ attributes: [String: Attr], opset: Int = 6, batch: Int? = nil) -> Model {
            var m = Model(opset: opset, input: [batch, 3])
            m.initializer("w", [1, 0, 0, 1, 1, 1], [2, 3])
            m.initializer("c", c, dims)
            m.node("Gemm", ["x", "w", "c"], "y", name: "fc", attributes.merging(["transB": .int(1)]) { a, _ in a })
            return m
        }
        // x [2, 3] (batch N or 2) · wᵀ [3, 2] with transB=1 plus C: [2] and [1, 1] broadcast along rows,
        // [2, 1] along columns; a full [2, 2] C without broadcast, and with alpha=2, beta=0.5.
        let row = try check("gemm_broadcast_row_opset6", opset: 6)
        XCTAssertEqual(row.graph.nodes.map(\.op.name), ["Gemm"])
        try check("gemm_broadcast_one_element_opset6", opset: 6)
        try check("gemm_broadcast_column_opset6", opset: 6)
        try check("gemm_full_c_opset6", opset: 6)
        try check("gemm_alpha_beta_opset6", opset: 6)
        assertRefused(gemm([10, 20], [2], [:]), ["node 'fc' (Gemm)", "C [2] must be [M, N] = [N, 2]: broadcast is 0"])
        assertRefused(gemm([10, 20, 30], [3], ["broadcast": .int(1)]), ["C [3] does not broadcast to [N, 2]"])
        assertRefused(gemm([10, 20], [2], ["broadcast": .int(1)], opset: 7), ["unsupported attribute 'broadcast'"])
    }

    /// Reshape-1 (opsets 1…4) takes its shape as an attribute; Concat-1 (opsets 1…3) defaults axis to 1.
    func testReshapeAttributeAndConcatDefaultAxis() throws {
        // Reshape-1 with shape [0, 2, 2] (and consumed_inputs) on [N, 4].
        let reshaped = try check("reshape_attribute_opset4", opset: 4)
        XCTAssertEqual(reshaped.graph.values["y"]?.shape, [.symbolic("N"), .fixed(2), .fixed(2)])
        var missing = Model(opset: 4)
        missing.node("Reshape", ["x"], "y", name: "r")
        assertRefused(missing, ["node 'r' (Reshape)", "attribute 'shape' is required"])

        // Concat(x, x) of [N, 4] without axis.
        let concatenated = try check("concat_default_axis_opset3", opset: 3)
        XCTAssertEqual(concatenated.graph.values["y"]?.shape, [.symbolic("N"), .fixed(8)])
        var concat = Model(opset: 4)
        concat.node("Concat", ["x", "x"], "y")
        assertRefused(concat, ["attribute 'axis' is required"])
    }

    /// Reshape(x, [-1, K]) on [N, …] whose fixed dims hold K: the IR's shape inference makes the -1
    /// the batch; the node is imported as written.
    func testReshapeMinusOneWithASymbolicBatch() throws {
        // Reshape(x, [-1, 12]) on [N, 2, 3, 2] at opset 13, and at opset 18 with allowzero=1.
        for (name, opset, allowZero) in [("reshape_minus_one_opset13", 13, false), ("reshape_minus_one_allowzero_opset18", 18, true)] {
            let model = try check(name, opset: opset)
            XCTAssertEqual(model.graph.nodes[0].op as? Op.Reshape, Op.Reshape(shape: [-1, 12], allowZero: allowZero))
            XCTAssertEqual(model.graph.values["y"]?.shape, [.symbolic("N"), .fixed(12)])
        }
        // A -1 standing for N × 2 is the symbolic product N*2; one that does not divide is refused.
        var doubled = Model(opset: 13, input: [nil, 2, 3, 2])
        doubled.int64Initializer("shape", [-1, 6])
        doubled.node("Reshape", ["x", "shape"], "y", name: "r")
        XCTAssertEqual(try load(doubled).graph.values["y"]?.shape, [.symbolic("N*2"), .fixed(6)])
        var fraction = Model(opset: 13, input: [nil, 2, 3, 2])
        fraction.int64Initializer("shape", [-1, 24])
        fraction.node("Reshape", ["x", "shape"], "y", name: "r")
        assertRefused(fraction, ["node 'r' (Reshape)", "the -1 would be N*12 / 24, not a dimension"])
    }

    // MARK: TensorProto files

    func testTensorProtoDecoding() throws {
        var typed = Proto()
        Model.floatTensor(&typed, "t", [1.5, -2, 3.25, 4, 5, 6], [2, 3])
        let a = try typed.bytes.withUnsafeBytes { try ONNX.tensor(fromTensorProtoBytes: $0) }
        XCTAssertEqual(a.shape, [2, 3])
        XCTAssertEqual(a.floats(), [1.5, -2, 3.25, 4, 5, 6])

        var raw = Proto()
        raw.int(1, 3); raw.int(2, 7); raw.string(8, "ids")
        raw.bytes(9, [Int64(-1), 2, 1 << 40].flatMap { v in withUnsafeBytes(of: v.littleEndian, Array.init) })
        let path = folder.appendingPathComponent("ids.pb").path
        try Data(raw.bytes).write(to: URL(fileURLWithPath: path))
        let ids = try ONNX.tensor(fromTensorProtoFile: path)
        XCTAssertEqual(ids.dtype, .i64)
        XCTAssertEqual(ids.doubles(), [-1, 2, Double(1 << 40)])

        var scalar = Proto()
        scalar.int(2, 11)
        scalar.bytes(10, withUnsafeBytes(of: (2.5 as Double).bitPattern.littleEndian, Array.init))  // packed double_data
        let s = try scalar.bytes.withUnsafeBytes { try ONNX.tensor(fromTensorProtoBytes: $0) }
        XCTAssertEqual(s.shape, [])
        XCTAssertEqual(s.doubles(), [2.5])

        func message(_ bytes: [UInt8], _ name: String = "t.pb") -> String {
            do { _ = try bytes.withUnsafeBytes { try ONNX.tensor(fromTensorProtoBytes: $0, name: name) }; return "decoded" } catch {
                return "\(error)"
            }
        }
        var short = Proto()
        Model.floatTensor(&short, "w", [1, 2, 3], [2, 2])
        XCTAssertEqual(message(short.bytes), "t.pb: tensor 'w': float_data holds 3 values, shape [2, 2] needs 4")
        XCTAssertEqual(message([]), "t.pb: not a TensorProto: the file is empty")
        XCTAssertTrue(message([0x0A, 0x05, 1]).hasPrefix("t.pb: not a TensorProto: the bytes do not parse"), message([0x0A, 0x05, 1]))
        var external = Proto()
        external.int(1, 2); external.int(2, 1); external.string(8, "e"); external.int(14, 1)
        external.message(13) { $0.string(1, "location"); $0.string(2, "e.bin") }
        XCTAssertTrue(message(external.bytes).contains("external data needs the file's folder"), message(external.bytes))
        XCTAssertThrowsError(try ONNX.tensor(fromTensorProtoFile: folder.appendingPathComponent("absent.pb").path)) { error in
            XCTAssertTrue("\(error)".contains("absent.pb"), "\(error)")
        }
    }
}
