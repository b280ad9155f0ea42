import Foundation
import ONNXFormat
import XCTest
import ZooCore
import ZooOps
import ZooRuntime

/// The ONNX reader against small files made by Fixtures/make_onnx_reader_cases.py (onnx 1.23.2,
/// onnxruntime 1.32): every op/opset variant runs on zoo's executor and matches onnxruntime.
final class ReaderTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/onnx/reader")

    static func path(_ name: String) -> String { fixtures.appendingPathComponent(name).path }

    /// A scratch folder removed after the test.
    func temporaryFolder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-onnx-reader-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    func expectError(_ file: String, containing fragments: [String], line: UInt = #line) {
        do {
            let model = try ONNX.load(path: file)
            XCTFail("\(file) loaded (\(model.graph.nodes.count) nodes) but should have been refused", line: line)
        } catch {
            let text = error.description
            XCTAssertFalse(text.contains("\n"), "error is not one line: \(text)", line: line)
            for fragment in fragments {
                XCTAssertTrue(text.contains(fragment), "error '\(text)' lacks '\(fragment)'", line: line)
            }
        }
    }

    /// Runs `name`.onnx on its input and compares with onnxruntime's output: max|Δ| ≤ 1e-5·max|ref|.
    func checkCase(_ name: String, output: String, line: UInt = #line) throws {
        let model = try ONNX.load(path: Self.path("\(name).onnx"))
        let input = try NumPy.read(path: Self.path("\(name).input.npy"))
        let reference = try NumPy.read(path: Self.path("\(name).output.npy"))
        let executor = try Executor(graph: model.graph)
        let outputs = try executor.run(input)
        let value = try XCTUnwrap(outputs[output], "\(name): no output '\(output)' in \(outputs.keys.sorted())", line: line)
        XCTAssertEqual(value.shape, reference.shape, "\(name)", line: line)
        let report = ParityReport(name: output, value: value, reference: reference)
        print("onnx case \(name) (opset \(model.opset)): max|Δ| \(report.maxAbsDifference), max|ref| \(report.maxAbsReference)")
        XCTAssertLessThanOrEqual(report.maxAbsDifference, 1e-5 * report.maxAbsReference, "\(name)", line: line)
    }

    func testEveryOpCaseMatchesOnnxRuntime() throws {
        let data = try Data(contentsOf: Self.fixtures.appendingPathComponent("cases.json"))
        let cases = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: [String: Any]])
        XCTAssertGreaterThanOrEqual(cases.count, 30)
        for (name, info) in cases.sorted(by: { $0.key < $1.key }) {
            do { try checkCase(name, output: info["output"] as! String) } catch { XCTFail("\(name): \(error)") }
        }
    }

    func testModelFieldsAndNodeNames() throws {
        let model = try ONNX.load(path: Self.path("paper_alexnet_tiny_ir3.onnx"))
        XCTAssertEqual(model.irVersion, 3)
        XCTAssertEqual(model.opset, 9)
        XCTAssertEqual(model.producer, "zoo-reader-cases")
        // IR 3 lists every initializer as an input: only the image remains.
        XCTAssertEqual(model.graph.inputs.map(\.name), ["data"])
        XCTAssertEqual(model.graph.outputs, ["prob"])
        // Unnamed nodes are named <op>_<index>; values keep their ONNX names.
        XCTAssertEqual(model.graph.nodes.first?.name, "Conv_0")
        XCTAssertEqual(model.graph.nodes.first?.output, "c1")
        // The Reshape shape was consumed, not kept as an initializer.
        XCTAssertNil(model.graph.initializer("shape"))
        XCTAssertEqual(model.graph.initializers.count, 8)

        let folded = try ONNX.load(path: Self.path("identity_constants.onnx"))
        XCTAssertEqual(folded.graph.nodes.map(\.op.name), ["Add", "Relu"])
        XCTAssertEqual(folded.graph.initializer("bias")?.floats(), [0.75, 0.75, 0.75, 0.75])
        XCTAssertEqual(folded.graph.nodes[0].inputs, ["x", "bias"], "Identity is dropped: Add reads x")
        XCTAssertEqual(folded.graph.inputs[0].shape, [.symbolic("N"), .fixed(4)])

        // An Identity producing the graph output: the output keeps its ONNX name.
        let identity = try ONNX.load(path: Self.path("identity_output.onnx"))
        XCTAssertEqual(identity.graph.outputs, ["y"])
        XCTAssertEqual(identity.graph.nodes.map(\.output), ["y"])
    }

    /// Embedded raw_data is sliced from the mapped model file (no copy) when aligned to its element size.
    func testEmbeddedRawDataIsMappedWhenAligned() throws {
        let tensors = try ONNX.initializers(path: Self.path("paper_alexnet_tiny_ir3.onnx"))
        let mapped = tensors.filter { $0.tensor.storage.isMapped }
        XCTAssertFalse(mapped.isEmpty, "no initializer of the tiny AlexNet was mapped")
        for (name, tensor) in tensors where tensor.storage.isMapped {
            let address = Int(bitPattern: tensor.storage.bytes.baseAddress)
            XCTAssertEqual(address % tensor.dtype.itemSize, 0, name)
        }
        // Typed-field tensors are always decoded into owned memory.
        let typed = try ONNX.initializers(path: Self.path("typed_fields.onnx"))
        XCTAssertFalse(try XCTUnwrap(typed.first { $0.name == "f32_float_data" }).tensor.storage.isMapped)
    }

    func testAutoPadResolvesToExplicitPads() throws {
        // x 9×11, kernel 4×3, strides 2×3 → out 5×4; total pad height 4+… = (5-1)·2+4-9 = 3, width (4-1)·3+3-11 = 1.
        let upper = try ONNX.load(path: Self.path("conv_same_upper.onnx")).graph.nodes[0].op
        let lower = try ONNX.load(path: Self.path("conv_same_lower.onnx")).graph.nodes[0].op
        guard let u = upper as? Op.Conv, let l = lower as? Op.Conv else { return XCTFail("not convs") }
        XCTAssertEqual(u.pads, [1, 0, 2, 1])
        XCTAssertEqual(l.pads, [2, 1, 1, 0])
    }

    func testInitializersInEveryTypedField() throws {
        let data = try Data(contentsOf: Self.fixtures.appendingPathComponent("typed_fields.json"))
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: [String: Any]])
        let values = try XCTUnwrap(json["values"] as? [String: [Double]])
        let dtypes = try XCTUnwrap(json["dtypes"] as? [String: String])
        let tensors = try ONNX.initializers(path: Self.path("typed_fields.onnx"))
        XCTAssertEqual(Set(tensors.map(\.name)), Set(values.keys))
        for (name, tensor) in tensors {
            XCTAssertEqual(tensor.dtype.rawValue, dtypes[name], name)
            XCTAssertEqual(tensor.doubles(), values[name], name)
        }
        XCTAssertEqual(tensors.first { $0.name == "f32_raw_2x2" }?.tensor.shape, [2, 2])
        // The graph itself imports (only the Relu; the typed initializers are unused).
        XCTAssertEqual(try ONNX.load(path: Self.path("typed_fields.onnx")).graph.initializers.count, 0)
    }

    func testExternalDataIsMappedAndChecked() throws {
        try checkCase("ext_valid", output: "y")
        let tensors = try ONNX.initializers(path: Self.path("ext_valid.onnx"))
        let weight = try XCTUnwrap(tensors.first { $0.name == "w" }?.tensor)
        let bias = try XCTUnwrap(tensors.first { $0.name == "b" }?.tensor)
        XCTAssertTrue(weight.storage.isMapped, "an aligned external tensor is a zero-copy slice of the mapping")
        XCTAssertFalse(bias.storage.isMapped, "an unaligned one is copied")

        expectError(Self.path("ext_missing.onnx"), containing: ["ext_missing.onnx", "tensor 'w'", "'missing.data' is missing"])
        expectError(Self.path("ext_out_of_range.onnx"), containing: ["tensor 'w'", "outside the file"])
        expectError(Self.path("ext_escape.onnx"), containing: ["tensor 'w'", "escapes the model's folder"])
        expectError(Self.path("ext_absolute.onnx"), containing: ["tensor 'w'", "absolute path"])
    }

    func testExternalDataThroughASymlinkLeavingTheFolderIsRefused() throws {
        let folder = try temporaryFolder()
        let inner = folder.appendingPathComponent("model")
        try FileManager.default.createDirectory(at: inner, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Self.path("ext_valid.data"), toPath: folder.appendingPathComponent("outside.data").path)
        try FileManager.default.createSymbolicLink(atPath: inner.appendingPathComponent("ext_valid.data").path,
                                                   withDestinationPath: "../outside.data")
        try FileManager.default.copyItem(atPath: Self.path("ext_valid.onnx"), toPath: inner.appendingPathComponent("m.onnx").path)
        expectError(inner.appendingPathComponent("m.onnx").path, containing: ["tensor 'w'", "escapes the model's folder"])
    }

    func testRefusals() throws {
        expectError(Self.path("unsupported.onnx"), containing: [
            "unsupported ops: node 'hard' (Hardmax), node 'Shrink_2' (Shrink), node 'custom' (com.example.FancyOp)",
        ])
        XCTAssertEqual(try ONNX.load(path: Self.path("opset23.onnx")).graph.nodes.map(\.op.name), ["Relu"])  // opsets 23–25 only added types
        // opset6.onnx (a Relu) was refused while the reader started at opset 7 (LegacyOpsetTests covers 1…6).
        XCTAssertEqual(try ONNX.load(path: Self.path("opset6.onnx")).opset, 6)
        // Several graph inputs import (they were refused while the executor ran one); each is given by name.
        let two = try ONNX.load(path: Self.path("two_inputs.onnx"))
        XCTAssertEqual(two.graph.inputs.map(\.name), ["x", "z"])
        let executor = try Executor(graph: two.graph)
        let x = Tensor(floats: [1, 2, 3, 4], shape: [1, 4])
        XCTAssertThrowsError(try executor.run(x)) { error in
            XCTAssertEqual("\(error)", "the model takes 2 inputs ('x', 'z'): give each by name")
        }
        XCTAssertThrowsError(try executor.run(["x": x])) { error in
            XCTAssertEqual("\(error)", "no value for the model's input 'z' f32 [N, 4]")
        }
        XCTAssertThrowsError(try executor.run(["x": x, "z": x, "w": x])) { error in
            XCTAssertEqual("\(error)", "the model has no input 'w' (its inputs: 'x', 'z')")
        }
        expectError(Self.path("symbolic_height.onnx"), containing: ["value 'x'", "height must be fixed"])
        expectError(Self.path("maxpool_storage_order.onnx"), containing: ["node 'pool' (MaxPool)", "storage_order 1"])
        // The mask is read (by a Cast, which the reader has a builder for): refused at the Dropout, first in order.
        expectError(Self.path("dropout_mask_used_unsupported.onnx"), containing: ["node 'drop' (Dropout)", "output 'mask' is used"])
        expectError(Self.path("dropout_mask_output.onnx"), containing: ["node 'drop' (Dropout)", "output 'mask' is used"])
        expectError(Self.path("conv_bad_attributes.onnx"), containing: ["node 'conv' (Conv)", "unsupported attribute 'foo'"])
    }

    /// A Cast to FLOAT of a weight stored as f16, bf16, f64 (or f32) is an alias: the nodes read the
    /// stored initializer under its own name, which keeps its dtype and bytes (the executor widens it;
    /// cast_stored_precisions also runs against onnxruntime in testEveryOpCaseMatchesOnnxRuntime).
    func testCastOfAStoredWeightReadsTheWeight() throws {
        let path = Self.path("cast_stored_precisions.onnx")
        let model = try ONNX.load(path: path)
        XCTAssertEqual(model.graph.nodes.map(\.name), ["conv", "relu", "flatten", "fc", "add"])
        XCTAssertEqual(model.graph.nodes.map(\.inputs), [["x", "w16", "b16"], ["c"], ["r"], ["f", "fc_bf16", "fc_f64"], ["g", "shift"]])
        let stored = try ONNX.initializers(path: path)
        XCTAssertEqual(stored.map(\.name), ["w16", "b16", "fc_bf16", "fc_f64", "shift"])
        XCTAssertEqual(stored.map(\.tensor.dtype), [.f16, .f16, .bf16, .f64, .f32])
        XCTAssertEqual(model.initializers.map(\.name), stored.map(\.name))
        XCTAssertEqual(model.graph.initializers.map(\.name), stored.map(\.name))
        for (name, tensor) in stored {
            for imported in [try XCTUnwrap(model.graph.initializer(name)), try XCTUnwrap(model.initializers.first { $0.name == name }?.tensor)] {
                XCTAssertEqual(imported.dtype, tensor.dtype, name)
                XCTAssertEqual(imported.withContiguousBytes { Array($0) }, tensor.withContiguousBytes { Array($0) }, name)
            }
        }

        // Cast-1…5: the type is a STRING.
        let legacy = try ONNX.load(path: Self.path("cast_string_to_opset5.onnx"))
        XCTAssertEqual(legacy.opset, 5)
        XCTAssertEqual(legacy.graph.nodes.map(\.inputs), [["x", "w16"]])
        XCTAssertEqual(legacy.graph.initializer("w16")?.dtype, .f16)
    }

    /// Every other Cast is a Cast node of the IR (its numerics are the ONNX node tests'); a Cast
    /// without a target type is refused, naming the node, in one line.
    func testOtherCastsAreCastNodes() throws {
        for (file, targets) in [("cast_runtime_value", [DType.f32]), ("cast_to_float16", [.f16, .f32]), ("cast_int_initializer", [.f32]),
                                ("cast_string_to_float16_opset5", [.f16])] {
            let graph = try ONNX.load(path: Self.path("\(file).onnx")).graph
            let casts = graph.nodes.compactMap { $0.op as? Op.Cast }
            XCTAssertEqual(casts, targets.map { Op.Cast(to: $0) }, file)
        }
        let path = Self.path("cast_without_to.onnx")
        XCTAssertThrowsError(try ONNX.load(path: path)) { error in
            XCTAssertEqual("\(error)", "\(path): node 'cast' (Cast): attribute 'to' is required")
        }
    }

    func testWeightCastRefusals() {
        // Without the Cast the model is ill-typed (onnxruntime refuses it too); through an Identity of
        // the Cast, or as BatchNormalization-15's parameters, an f16 weight is fine (op cases).
        let path = Self.path("f16_weight_without_cast.onnx")
        XCTAssertThrowsError(try ONNX.load(path: path)) { error in
            XCTAssertEqual("\(error)", "\(path): node 'conv' (Conv): input 'w16' is stored as f16 and read without a Cast: Conv takes "
                + "one element type for all its inputs, here f32 (a weight stored in another precision is read through a Cast to FLOAT)")
        }
        XCTAssertEqual(try ONNX.load(path: Self.path("cast_identity.onnx")).graph.initializer("wi")?.dtype, .f16)
    }

    func testTruncatedAndNonONNXFiles() throws {
        let folder = try temporaryFolder()
        let bytes = try Data(contentsOf: URL(fileURLWithPath: Self.path("paper_alexnet_tiny_ir3.onnx")))
        let truncated = folder.appendingPathComponent("truncated.onnx")
        try bytes.prefix(bytes.count / 2).write(to: truncated)
        expectError(truncated.path, containing: ["truncated.onnx", "truncated protobuf"])

        let text = folder.appendingPathComponent("notes.onnx")
        try Data("just some text, not a model\n".utf8).write(to: text)
        expectError(text.path, containing: ["notes.onnx", "not an ONNX model"])

        let empty = folder.appendingPathComponent("empty.onnx")
        try Data().write(to: empty)
        expectError(empty.path, containing: ["empty.onnx", "empty"])

        let npy = Self.path("conv_valid.input.npy")
        expectError(npy, containing: ["conv_valid.input.npy", "not an ONNX model"])

        expectError(folder.appendingPathComponent("absent.onnx").path, containing: ["absent.onnx", "No such file"])
    }

    /// protobuf-c keeps fields the schema does not know: unpack → pack is byte-identical, and an
    /// appended unknown field (number 99, length-delimited) survives a rewrite.
    func testUnknownFieldSurvivesRoundTrip() throws {
        let folder = try temporaryFolder()
        var bytes = try Data(contentsOf: URL(fileURLWithPath: Self.path("paper_alexnet_tiny_ir3.onnx")))
        let plain = folder.appendingPathComponent("plain.onnx")
        let plainOut = folder.appendingPathComponent("plain.out.onnx")
        try bytes.write(to: plain)
        try ONNX.rewrite(path: plain.path, to: plainOut.path)
        XCTAssertEqual(try Data(contentsOf: plainOut), bytes)

        let payload = Array("zoo unknown field".utf8)
        bytes.append(contentsOf: [0x9A, 0x06, UInt8(payload.count)] + payload) // tag (99 << 3 | 2) as varint
        let withUnknown = folder.appendingPathComponent("unknown.onnx")
        let out = folder.appendingPathComponent("unknown.out.onnx")
        try bytes.write(to: withUnknown)
        try ONNX.rewrite(path: withUnknown.path, to: out.path)
        XCTAssertEqual(try Data(contentsOf: out), bytes)
        XCTAssertEqual(try ONNX.load(path: out.path).graph.nodes.count, 12)
    }

    /// The ONNX model zoo's 2012-paper AlexNet as the onnx wheel ships it (weights replaced by
    /// ConstantOfShape): imports, with its Caffe-style MaxPool pads and pre-13 Softmax.
    func testLightBVLCAlexNetImports() throws {
        let path = try BackendData.require() + "/light/light_bvlc_alexnet.onnx"
        let model = try ONNX.load(path: path)
        XCTAssertEqual(model.irVersion, 3)
        XCTAssertEqual(model.opset, 9)
        XCTAssertEqual(model.graph.inputs.map(\.name), ["data_0"])
        XCTAssertEqual(model.graph.values[model.graph.outputs[0]]?.fixedShape, [1, 1000])
        XCTAssertEqual(model.graph.parameterCount, 60_965_224)
        print(model.graph.dump)
    }
}
