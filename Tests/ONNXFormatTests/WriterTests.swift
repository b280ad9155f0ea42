#if canImport(Glibc)
import Glibc
#endif
import CONNX
import Foundation
@testable import ONNXFormat
import TorchFormat
import XCTest
import ZooCore
import ZooOps
import ZooModels
import ZooRuntime

/// The ONNX writer: files parsed back with protobuf-c and compared with the graph they came from
/// (structure, attributes, initializer bytes, external data layout), refusals, and atomicity.
/// Fixtures/check_onnx_writer.py checks the same files with onnx.checker, onnxruntime and torch.
final class ONNXWriterTests: XCTestCase {
    private static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures")

    private func graph(_ relative: String, inputSize: Int? = nil) throws -> Graph {
        let path = Self.fixtures.appendingPathComponent(relative).path
        return try Model.bind(try Checkpoint.load(path: path).stateDict(), inputSize: inputSize).graph
    }

    /// A fresh empty directory, removed after the test.
    private func directory() throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-onnx-writer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url.path
    }

    private func contents(_ directory: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
    }

    private struct Parsed {
        let proto: ONNXModelProto
        var model: Onnx__ModelProto { proto.model.pointee }
        var graph: Onnx__GraphProto { model.graph.pointee }
        var nodes: [UnsafeMutablePointer<Onnx__NodeProto>] { ONNXProto.messages(graph.node, graph.n_node) }
        var opTypes: [String] { nodes.map { ONNXProto.string($0.pointee.op_type) } }
        var nodeNames: [String] { nodes.map { ONNXProto.string($0.pointee.name) } }
        var initializers: [UnsafeMutablePointer<Onnx__TensorProto>] { ONNXProto.messages(graph.initializer, graph.n_initializer) }

        func node(_ name: String) -> Onnx__NodeProto? { nodes.first { ONNXProto.string($0.pointee.name) == name }?.pointee }

        func attributes(_ node: Onnx__NodeProto) -> [String: String] {
            var out: [String: String] = [:]
            for a in ONNXProto.messages(node.attribute, node.n_attribute) {
                let value: String = switch a.pointee.type {
                case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT: "\(a.pointee.i)"
                case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT: "\(a.pointee.f)"
                case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS: "\(Array(ONNXProto.buffer(a.pointee.ints, a.pointee.n_ints)))"
                default: "type \(a.pointee.type.rawValue)"
                }
                out[ONNXProto.string(a.pointee.name)] = value
            }
            return out
        }

        func shape(_ info: UnsafeMutablePointer<Onnx__ValueInfoProto>) -> [String] {
            let tensor = info.pointee.type.pointee.tensor_type.pointee
            return ONNXProto.messages(tensor.shape.pointee.dim, tensor.shape.pointee.n_dim).map { dim in
                dim.pointee.value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM
                    ? ONNXProto.string(dim.pointee.dim_param) : String(dim.pointee.dim_value)
            }
        }

        func externalData(_ tensor: UnsafeMutablePointer<Onnx__TensorProto>) -> [String: String] {
            Dictionary(uniqueKeysWithValues: ONNXProto.entries(tensor.pointee.external_data, tensor.pointee.n_external_data).map { ($0.key, $0.value) })
        }
    }

    private func parse(_ path: String) throws -> Parsed { Parsed(proto: try ONNXModelProto(path: path)) }

    private func bytes(_ tensor: Tensor) -> [UInt8] { tensor.withContiguousBytes { Array($0) } }

    private static let torchvisionOps = [
        "Conv", "Relu", "MaxPool", "Conv", "Relu", "MaxPool", "Conv", "Relu", "Conv", "Relu", "Conv", "Relu", "MaxPool",
        "AveragePool", "Flatten", "Gemm", "Relu", "Gemm", "Relu", "Gemm",
    ]

    /// Opsets 13, 17 and 21: the torchvision layout as torch's TorchScript exporter writes it, the IR
    /// version of each opset, initializers named and valued exactly as the state dict.
    func testReducedAlexNetAtEachOpset() throws {
        let source = try graph("torch/alexnet_small.pth")
        let dir = try directory()
        for (opset, ir) in [(13, 7), (17, 8), (21, 10)] {
            let path = "\(dir)/alexnet_\(opset).onnx"
            try ONNX.save(source, to: path, options: .init(opset: opset))
            let parsed = try parse(path)
            XCTAssertEqual(parsed.model.ir_version, Int64(ir), "opset \(opset)")
            let opsets = ONNXProto.messages(parsed.model.opset_import, parsed.model.n_opset_import)
            XCTAssertEqual(opsets.map { ONNXProto.string($0.pointee.domain) }, [""])
            XCTAssertEqual(opsets.map(\.pointee.version), [Int64(opset)])
            XCTAssertEqual(ONNXProto.string(parsed.model.producer_name), "zoo")
            XCTAssertEqual(ONNXProto.string(parsed.model.producer_version), ONNXWriteOptions.zooVersion)
            XCTAssertEqual(parsed.opTypes, Self.torchvisionOps)
            XCTAssertEqual(parsed.nodeNames, source.nodes.map(\.name).filter { !["classifier.0", "classifier.3"].contains($0) })
            // Dropout is gone: the first Linear reads the flatten output directly.
            let fc1 = try XCTUnwrap(parsed.node("classifier.1"))
            XCTAssertEqual(ONNXProto.strings(fc1.input, fc1.n_input), ["flatten", "classifier.1.weight", "classifier.1.bias"])
            XCTAssertEqual(parsed.attributes(fc1), ["alpha": "1.0", "beta": "1.0", "transB": "1"])
            let conv1 = try XCTUnwrap(parsed.node("features.0"))
            XCTAssertEqual(parsed.attributes(conv1), ["kernel_shape": "[11, 11]", "strides": "[4, 4]", "pads": "[2, 2, 2, 2]",
                                                      "dilations": "[1, 1]", "group": "1"])
            let avgpool = try XCTUnwrap(parsed.node("avgpool"))
            XCTAssertEqual(parsed.attributes(avgpool), ["kernel_shape": "[1, 1]", "strides": "[1, 1]", "pads": "[0, 0, 0, 0]",
                                                        "ceil_mode": "0", "count_include_pad": "0"])
            // Initializers: same names, order, dims, dtype and bytes as the graph's.
            XCTAssertEqual(parsed.initializers.map { ONNXProto.string($0.pointee.name) }, source.initializers.map(\.name))
            for (proto, (name, tensor)) in zip(parsed.initializers, source.initializers) {
                XCTAssertEqual(Array(ONNXProto.buffer(proto.pointee.dims, proto.pointee.n_dims)).map(Int.init), tensor.shape, name)
                XCTAssertEqual(proto.pointee.data_type, ONNXDataType.float.rawValue, name)
                XCTAssertEqual(proto.pointee.n_external_data, 0, name)
                XCTAssertEqual(Array(ONNXProto.bytes(proto.pointee.raw_data)), bytes(tensor), name)
            }
            // Inputs and outputs with the symbolic batch; every intermediate has a value_info.
            let inputs = ONNXProto.messages(parsed.graph.input, parsed.graph.n_input)
            XCTAssertEqual(inputs.map { ONNXProto.string($0.pointee.name) }, ["input"])
            XCTAssertEqual(parsed.shape(inputs[0]), ["N", "3", "224", "224"])
            let outputs = ONNXProto.messages(parsed.graph.output, parsed.graph.n_output)
            XCTAssertEqual(outputs.map { ONNXProto.string($0.pointee.name) }, ["classifier.6"])
            XCTAssertEqual(parsed.shape(outputs[0]), ["N", "10"])
            XCTAssertEqual(parsed.graph.n_value_info, 19)
            XCTAssertEqual(try contents(dir).filter { $0.hasPrefix("alexnet_\(opset)") }, ["alexnet_\(opset).onnx"])
        }
    }

    /// A half-precision checkpoint (alexnet_small's state dict `.half()`, saved by torch) stays half:
    /// every initializer is FLOAT16 under its state-dict key with the checkpoint's bytes, one Cast to
    /// FLOAT per initializer opens the graph, and the compute nodes read the Casts' outputs. The file
    /// is about half the f32 conversion's size; read back, it computes torch's logits for the f16
    /// weights widened to f32.
    func testHalfPrecisionWeightsStayHalf() throws {
        let checkpoint = try Checkpoint.load(path: Self.fixtures.appendingPathComponent("torch/fp16_model.pth").path).stateDict()
        let source = try graph("torch/fp16_model.pth")
        let names = checkpoint.entries.map(\.name)
        let dir = try directory()
        try ONNX.save(try graph("torch/alexnet_small.pth"), to: dir + "/f32.onnx")
        let f32Size = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: dir + "/f32.onnx")[.size] as? Int)
        let input = try NumPy.read(path: Self.fixtures.appendingPathComponent("onnx/alexnet_small_input.npy").path)
        let torch = try NumPy.read(path: Self.fixtures.appendingPathComponent("onnx/fp16_model_logits.npy").path)
        for opset in [13, 17, 21] {
            let path = "\(dir)/f16_\(opset).onnx"
            try ONNX.save(source, to: path, options: .init(opset: opset))
            let parsed = try parse(path)
            XCTAssertEqual(parsed.initializers.map { ONNXProto.string($0.pointee.name) }, names)
            for (proto, entry) in zip(parsed.initializers, checkpoint.entries) {
                XCTAssertEqual(proto.pointee.data_type, ONNXDataType.float16.rawValue, entry.name)
                XCTAssertEqual(Array(ONNXProto.bytes(proto.pointee.raw_data)), bytes(entry.tensor.tensor), entry.name)
            }
            XCTAssertEqual(parsed.opTypes, Array(repeating: "Cast", count: 16) + Self.torchvisionOps)
            for (node, name) in zip(parsed.nodes, names) {
                XCTAssertEqual(ONNXProto.string(node.pointee.name), name + ".f32")
                XCTAssertEqual(ONNXProto.strings(node.pointee.input, node.pointee.n_input), [name])
                XCTAssertEqual(ONNXProto.strings(node.pointee.output, node.pointee.n_output), [name + ".f32"])
                XCTAssertEqual(parsed.attributes(node.pointee), ["to": "1"])
            }
            let conv1 = try XCTUnwrap(parsed.node("features.0"))
            XCTAssertEqual(ONNXProto.strings(conv1.input, conv1.n_input), ["input", "features.0.weight.f32", "features.0.bias.f32"])
            let fc1 = try XCTUnwrap(parsed.node("classifier.1"))
            XCTAssertEqual(ONNXProto.strings(fc1.input, fc1.n_input), ["flatten", "classifier.1.weight.f32", "classifier.1.bias.f32"])
            // Every Cast output has a value_info: f32, the initializer's shape.
            let infos = ONNXProto.messages(parsed.graph.value_info, parsed.graph.n_value_info)
            XCTAssertEqual(infos.count, 19 + 16)
            for (info, entry) in zip(infos, checkpoint.entries) {
                XCTAssertEqual(ONNXProto.string(info.pointee.name), entry.name + ".f32")
                XCTAssertEqual(info.pointee.type.pointee.tensor_type.pointee.elem_type, ONNXDataType.float.rawValue)
                XCTAssertEqual(parsed.shape(info), entry.tensor.tensor.shape.map(String.init))
            }
            let size = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
            XCTAssertLessThan(Double(size), 0.55 * Double(f32Size), "opset \(opset): \(size) bytes, f32 \(f32Size)")

            // Read back: the nodes read the f16 initializers by name; zoo computes torch's logits.
            let loaded = try ONNX.load(path: path)
            XCTAssertEqual(loaded.graph.initializers.map(\.name), names)
            XCTAssertEqual(loaded.graph.nodes.first?.inputs, ["input", "features.0.weight", "features.0.bias"])
            for (name, tensor) in loaded.graph.initializers {
                XCTAssertEqual(tensor.dtype, .f16, name)
                XCTAssertEqual(bytes(tensor), bytes(try XCTUnwrap(checkpoint.entries.first { $0.name == name }).tensor.tensor), name)
            }
            let output = try XCTUnwrap(try Executor(graph: loaded.graph).run(input)[loaded.graph.outputs[0]])
            let report = ParityReport(name: "logits", value: output, reference: torch)
            print("f16 alexnet_small opset \(opset): \(size) bytes (f32 \(f32Size)); max|Δ| \(report.maxAbsDifference) of max|ref| \(report.maxAbsReference)")
            XCTAssertTrue(report.passes(atol: 0, rtol: 1e-4), "opset \(opset): max|Δ| \(report.maxAbsDifference)")
            XCTAssertEqual(report.top5Agreement, 2)
        }
        // External data: the f16 bytes go out as they are.
        try ONNX.save(source, to: dir + "/ext.onnx", options: .init(externalData: true))
        XCTAssertGreaterThan(try checkExternal(try parse(dir + "/ext.onnx"), source, dataPath: dir + "/ext.onnx.data", location: "ext.onnx.data"), 0)
    }

    /// f16, bf16 and f64 weights each get a Cast whose name is free: `w.f32` is a node's output
    /// here, so w's Cast is `w.f32_1`. f32 weights and weights no node reads get none.
    func testCastNamesAvoidTakenNames() throws {
        /// Values exact in every float dtype: (i mod 7) / 8 - 0.25.
        func tensor(_ dtype: DType, _ shape: [Int]) throws -> Tensor {
            try Tensor(dtype: dtype, shape: shape) { raw in
                for i in 0..<shape.reduce(1, *) {
                    let value = Float(i % 7) / 8 - 0.25
                    switch dtype {
                    case .f16: raw.storeBytes(of: HalfPrecision.f32ToF16(value), toByteOffset: 2 * i, as: UInt16.self)
                    case .bf16: raw.storeBytes(of: HalfPrecision.f32ToBF16(value), toByteOffset: 2 * i, as: UInt16.self)
                    case .f64: raw.storeBytes(of: Double(value), toByteOffset: 8 * i, as: Double.self)
                    default: raw.storeBytes(of: value, toByteOffset: 4 * i, as: Float.self)
                    }
                }
            }
        }
        let input = ValueInfo(name: "x", dtype: .f32, shape: [.symbolic("N"), .fixed(4)])
        let source = try Graph(name: "g", inputs: [input], initializers: [
            ("w", try tensor(.f16, [3, 4])), ("b", try tensor(.bf16, [3])), ("v", try tensor(.f64, [2, 3])),
            ("c", try tensor(.f32, [2])), ("unread", try tensor(.f16, [5])),
        ], nodes: [
            Node("w.f32", Op.Unary.relu, inputs: ["x"]),
            Node("fc", Op.Gemm.linear, inputs: ["w.f32", "w", "b"]),
            Node("fc2", Op.Gemm.linear, inputs: ["fc", "v", "c"]),
        ], outputs: ["fc2"])
        let dir = try directory()
        try ONNX.save(source, to: dir + "/g.onnx", options: .init(opset: 13))
        let parsed = try parse(dir + "/g.onnx")
        XCTAssertEqual(parsed.opTypes, ["Cast", "Cast", "Cast", "Relu", "Gemm", "Gemm"])
        XCTAssertEqual(parsed.nodeNames, ["w.f32_1", "b.f32", "v.f32", "w.f32", "fc", "fc2"])
        XCTAssertEqual(parsed.initializers.map(\.pointee.data_type),
                       [ONNXDataType.float16, .bfloat16, .double, .float, .float16].map(\.rawValue))
        let fc = try XCTUnwrap(parsed.node("fc"))
        XCTAssertEqual(ONNXProto.strings(fc.input, fc.n_input), ["w.f32", "w.f32_1", "b.f32"])
        let fc2 = try XCTUnwrap(parsed.node("fc2"))
        XCTAssertEqual(ONNXProto.strings(fc2.input, fc2.n_input), ["fc", "v.f32", "c"])
        // zoo reads it back as the graph it wrote and computes the same bits.
        let loaded = try ONNX.load(path: dir + "/g.onnx")
        XCTAssertEqual(loaded.graph.nodes.map(\.inputs), source.nodes.map(\.inputs))
        XCTAssertEqual(loaded.graph.initializers.map(\.tensor.dtype), [.f16, .bf16, .f64, .f32])
        let x = Tensor(floats: (0..<8).map { Float($0) / 3 - 1 }, shape: [2, 4])
        let want = try Executor(graph: source).run(x)["fc2"]!
        let got = try Executor(graph: loaded.graph).run(x)[loaded.graph.outputs[0]]!
        XCTAssertEqual(got.floats().map(\.bitPattern), want.floats().map(\.bitPattern))
    }

    /// The 2012-paper layout: LRN, grouped convolutions, ceil-mode pooling, no adaptive pool.
    func testPaperAlexNet() throws {
        let source = try graph("parity/alexnet_paper_small.pth")
        let path = try directory() + "/paper.onnx"
        try ONNX.save(source, to: path)
        let parsed = try parse(path)
        XCTAssertEqual(parsed.model.ir_version, 8)
        XCTAssertEqual(parsed.opTypes, [
            "Conv", "Relu", "LRN", "MaxPool", "Conv", "Relu", "LRN", "MaxPool", "Conv", "Relu", "Conv", "Relu", "Conv", "Relu",
            "MaxPool", "Flatten", "Gemm", "Relu", "Gemm", "Relu", "Gemm",
        ])
        XCTAssertEqual(parsed.attributes(try XCTUnwrap(parsed.node("features.2"))),
                       ["size": "5", "alpha": "0.0001", "beta": "0.75", "bias": "2.0"])
        XCTAssertEqual(parsed.attributes(try XCTUnwrap(parsed.node("features.4")))["group"], "2")
        XCTAssertEqual(parsed.attributes(try XCTUnwrap(parsed.node("features.3")))["ceil_mode"], "1")
        for (proto, (name, tensor)) in zip(parsed.initializers, source.initializers) {
            XCTAssertEqual(ONNXProto.string(proto.pointee.name), name)
            XCTAssertEqual(Array(ONNXProto.bytes(proto.pointee.raw_data)), bytes(tensor), name)
        }
    }

    /// Checks every external tensor: relative location, 4 KiB-aligned offset, inside the data file,
    /// bytes equal to the source; tensors at or under the threshold inline. Returns how many went out.
    private func checkExternal(_ parsed: Parsed, _ source: Graph, dataPath: String, location: String, threshold: Int = 1024) throws -> Int {
        let data = try Data(contentsOf: URL(fileURLWithPath: dataPath))
        var external = 0
        var end = 0
        for (proto, (name, tensor)) in zip(parsed.initializers, source.initializers) {
            if tensor.byteCount > threshold {
                XCTAssertEqual(proto.pointee.data_location, ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL, name)
                XCTAssertEqual(proto.pointee.has_raw_data, 0, name)
                let entries = parsed.externalData(proto)
                XCTAssertEqual(entries["location"], location, name)
                let offset = try XCTUnwrap(entries["offset"].flatMap(Int.init), name)
                let length = try XCTUnwrap(entries["length"].flatMap(Int.init), name)
                XCTAssertEqual(offset % 4096, 0, "\(name) offset \(offset)")
                XCTAssertGreaterThanOrEqual(offset, end, "\(name) overlaps the previous tensor")
                XCTAssertEqual(length, tensor.byteCount, name)
                XCTAssertLessThanOrEqual(offset + length, data.count, name)
                XCTAssertEqual(Array(data[offset..<(offset + length)]), bytes(tensor), name)
                end = offset + length
                external += 1
            } else {
                XCTAssertEqual(proto.pointee.n_external_data, 0, name)
                XCTAssertEqual(Array(ONNXProto.bytes(proto.pointee.raw_data)), bytes(tensor), name)
            }
        }
        XCTAssertEqual(end, data.count, "the data file ends with the last tensor")
        return external
    }

    func testExternalData() throws {
        let dir = try directory()
        for (fixture, opset) in [("torch/alexnet_small.pth", 17), ("parity/alexnet_paper_small.pth", 21)] {
            let source = try graph(fixture)
            let path = "\(dir)/model_\(opset).onnx"
            try ONNX.save(source, to: path, options: .init(opset: opset, externalData: true))
            let parsed = try parse(path)
            let external = try checkExternal(parsed, source, dataPath: path + ".data", location: "model_\(opset).onnx.data")
            XCTAssertGreaterThan(external, 0)
            XCTAssertLessThan(external, source.initializers.count, "small biases stay inline")
        }
        XCTAssertEqual(try contents(dir), ["model_17.onnx", "model_17.onnx.data", "model_21.onnx", "model_21.onnx.data"])
    }

    /// A model over the single-file limit (2 GiB; lowered here) moves its tensors out by itself.
    func testSwitchesToExternalDataPastTheLimit() throws {
        let source = try graph("torch/alexnet_small.pth")
        let dir = try directory()
        var options = ONNXWriteOptions()
        options.singleFileLimit = 64 << 10
        try ONNX.save(source, to: dir + "/big.onnx", options: options)
        let parsed = try parse(dir + "/big.onnx")
        XCTAssertGreaterThan(try checkExternal(parsed, source, dataPath: dir + "/big.onnx.data", location: "big.onnx.data"), 0)
        XCTAssertLessThanOrEqual(try FileManager.default.attributesOfItem(atPath: dir + "/big.onnx")[.size] as! Int, 64 << 10)

        // Under the limit: one file.
        options.singleFileLimit = 1 << 30
        try ONNX.save(source, to: dir + "/small.onnx", options: options)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/small.onnx.data"))

        // Nothing can go out (threshold above every tensor) → refused, nothing written.
        options.singleFileLimit = 64 << 10
        options.externalDataThreshold = 1 << 30
        XCTAssertThrowsError(try ONNX.save(source, to: dir + "/refused.onnx", options: options)) { error in
            XCTAssertTrue("\(error)".contains("protobuf cannot hold"), "\(error)")
        }
        XCTAssertEqual(try contents(dir), ["big.onnx", "big.onnx.data", "small.onnx"])
    }

    func testRefusesUnsupportedOpsets() throws {
        let source = try graph("torch/alexnet_small.pth")
        let dir = try directory()
        for opset in [12, 22] {
            XCTAssertThrowsError(try ONNX.save(source, to: dir + "/x.onnx", options: .init(opset: opset))) { error in
                XCTAssertEqual("\(error)", "\(dir)/x.onnx: opset \(opset) is not supported: zoo writes ONNX opsets 13–21")
            }
        }
        XCTAssertEqual(try contents(dir), [])
        XCTAssertEqual((13...21).map { ONNXWriteOptions.irVersion(forOpset: $0)! }, [7, 7, 8, 8, 8, 8, 9, 9, 10])
    }

    private func lrnGraph(size: Int, window: Op.LRN.Window) throws -> Graph {
        let input = ValueInfo(name: "x", dtype: .f32, shape: [.symbolic("N"), .fixed(6), .fixed(3), .fixed(3)])
        return try Graph(name: "lrn", inputs: [input], initializers: [],
                         nodes: [Node("norm", Op.LRN(size: size, window: window), inputs: ["x"])], outputs: ["norm"])
    }

    func testLRNWindows() throws {
        let dir = try directory()
        XCTAssertThrowsError(try ONNX.save(try lrnGraph(size: 4, window: .pytorch), to: dir + "/even.onnx")) { error in
            XCTAssertEqual("\(error)", "\(dir)/even.onnx: node 'norm' (LRN): size 4 with PyTorch's channel window (c-2…c+1) cannot be "
                + "written as ONNX LRN, whose even windows are c-1…c+2 (pytorch#75722)")
        }
        for (size, window) in [(5, Op.LRN.Window.pytorch), (4, .onnx), (5, .onnx)] {
            try ONNX.save(try lrnGraph(size: size, window: window), to: dir + "/ok.onnx")
            let parsed = try parse(dir + "/ok.onnx")
            XCTAssertEqual(parsed.opTypes, ["LRN"])
            XCTAssertEqual(parsed.attributes(try XCTUnwrap(parsed.node("norm")))["size"], "\(size)")
        }
        XCTAssertEqual(try contents(dir), ["ok.onnx"])
    }

    func testAdaptivePoolThatDoesNotDivide() throws {
        // 200×200 input → 5×5 features into the 6×6 adaptive pool.
        let source = try graph("torch/alexnet_small.pth", inputSize: 200)
        let dir = try directory()
        XCTAssertThrowsError(try ONNX.save(source, to: dir + "/x.onnx")) { error in
            XCTAssertTrue("\(error)".hasPrefix("\(dir)/x.onnx: node 'avgpool' (AdaptiveAvgPool2d): input 5×5 does not divide into the output 6×6"), "\(error)")
        }
        // 12×12 → 6×6 is a 2×2 / stride-2 AveragePool (455×455 input gives 12×12 features... use a direct graph).
        let input = ValueInfo(name: "x", dtype: .f32, shape: [.symbolic("N"), .fixed(2), .fixed(12), .fixed(9)])
        let pool = try Graph(name: "pool", inputs: [input], initializers: [],
                             nodes: [Node("pool", Op.AdaptiveAveragePool(outputHeight: 6, outputWidth: 3), inputs: ["x"])], outputs: ["pool"])
        try ONNX.save(pool, to: dir + "/pool.onnx")
        let parsed = try parse(dir + "/pool.onnx")
        XCTAssertEqual(parsed.attributes(try XCTUnwrap(parsed.node("pool"))),
                       ["kernel_shape": "[2, 3]", "strides": "[2, 3]", "pads": "[0, 0, 0, 0]", "ceil_mode": "0", "count_include_pad": "0"])
        XCTAssertEqual(try contents(dir), ["pool.onnx"])
    }

    /// Reshape's target becomes an int64 initializer input; allowzero only from opset 14; a Dropout
    /// that is a graph output becomes Identity.
    func testReshapeAndDropoutAsOutput() throws {
        let input = ValueInfo(name: "x", dtype: .f32, shape: [.symbolic("N"), .fixed(2), .fixed(3), .fixed(4)])
        let graph = try Graph(name: "g", inputs: [input], initializers: [], nodes: [
            Node("reshape", Op.Reshape(shape: [0, -1], allowZero: false), inputs: ["x"]),
            Node("soft", Op.Softmax(axis: 1), inputs: ["reshape"]),
            Node("drop", Op.Dropout(ratio: 0.5), inputs: ["soft"]),
        ], outputs: ["drop"])
        let dir = try directory()
        try ONNX.save(graph, to: dir + "/g.onnx", options: .init(opset: 13))
        let parsed = try parse(dir + "/g.onnx")
        XCTAssertEqual(parsed.opTypes, ["Reshape", "Softmax", "Identity"])
        let reshape = try XCTUnwrap(parsed.node("reshape"))
        XCTAssertEqual(ONNXProto.strings(reshape.input, reshape.n_input), ["x", "reshape.shape"])
        XCTAssertEqual(parsed.attributes(reshape), [:])
        let shape = try XCTUnwrap(parsed.initializers.first)
        XCTAssertEqual(shape.pointee.data_type, ONNXDataType.int64.rawValue)
        XCTAssertEqual(Array(ONNXProto.bytes(shape.pointee.raw_data)), [0, -1].flatMap { (v: Int64) in withUnsafeBytes(of: v.littleEndian, Array.init) })
        XCTAssertEqual(parsed.attributes(try XCTUnwrap(parsed.node("soft"))), ["axis": "1"])
        let outputs = ONNXProto.messages(parsed.graph.output, parsed.graph.n_output)
        XCTAssertEqual(parsed.shape(outputs[0]), ["N", "24"])

        let fixed = ValueInfo(name: "x", dtype: .f32, shape: [.fixed(2), .fixed(3), .fixed(4)])
        let allowZero = try Graph(name: "g", inputs: [fixed], initializers: [],
                                  nodes: [Node("reshape", Op.Reshape(shape: [-1, 12], allowZero: true), inputs: ["x"])], outputs: ["reshape"])
        for (opset, attributes) in [(13, [String: String]()), (14, ["allowzero": "1"])] {
            try ONNX.save(allowZero, to: dir + "/z.onnx", options: .init(opset: opset))
            let parsed = try parse(dir + "/z.onnx")
            XCTAssertEqual(parsed.attributes(try XCTUnwrap(parsed.node("reshape"))), attributes, "opset \(opset)")
        }
    }

    /// A refused model and a write that fails half-way (the file-size limit makes write(2) fail with
    /// EFBIG) both leave existing files byte for byte as they were and no temporary files.
    func testFailuresLeaveExistingFilesUntouched() throws {
        let dir = try directory()
        let path = dir + "/model.onnx"
        let old = Data("the old model".utf8), oldData = Data("the old data".utf8)
        try old.write(to: URL(fileURLWithPath: path))
        try oldData.write(to: URL(fileURLWithPath: path + ".data"))

        XCTAssertThrowsError(try ONNX.save(try graph("torch/alexnet_small.pth", inputSize: 200), to: path))
        XCTAssertThrowsError(try ONNX.save(try graph("torch/alexnet_small.pth"), to: path, options: .init(opset: 22)))

        let source = try graph("torch/alexnet_small.pth")
        signal(SIGXFSZ, SIG_IGN)
        var saved = rlimit()
        getrlimit(Int32(RLIMIT_FSIZE.rawValue), &saved)
        for options in [ONNXWriteOptions(), ONNXWriteOptions(externalData: true)] {
            var limit = saved
            limit.rlim_cur = 100_000  // the model is ~230 KB
            XCTAssertEqual(setrlimit(Int32(RLIMIT_FSIZE.rawValue), &limit), 0)
            XCTAssertThrowsError(try ONNX.save(source, to: path, options: options)) { error in
                XCTAssertTrue("\(error)".contains("cannot write: File too large"), "\(error)")
            }
            setrlimit(Int32(RLIMIT_FSIZE.rawValue), &saved)
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), old)
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path + ".data")), oldData)
            XCTAssertEqual(try contents(dir), ["model.onnx", "model.onnx.data"])
        }
        // And a write that succeeds replaces both.
        try ONNX.save(source, to: path, options: .init(externalData: true))
        _ = try checkExternal(try parse(path), source, dataPath: path + ".data", location: "model.onnx.data")
        XCTAssertEqual(try contents(dir), ["model.onnx", "model.onnx.data"])
    }
}

/// graph → ONNX → ONNX.load → Executor gives bit-identical outputs to the original graph.
final class ONNXWriterRoundTripTests: XCTestCase {
    private func roundTrip(_ relative: String, options: ONNXWriteOptions, size: Int, dtype: DType = .f32) throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Fixtures/\(relative)").path
        let source = try Model.bind(try Checkpoint.load(path: path).stateDict()).graph
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-onnx-roundtrip-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("model.onnx").path
        try ONNX.save(source, to: file, options: options)
        let loaded = try ONNX.load(path: file)
        XCTAssertEqual(loaded.opset, options.opset)
        XCTAssertEqual(loaded.graph.initializers.map(\.name), source.initializers.map(\.name))
        XCTAssertEqual(Set(loaded.graph.initializers.map(\.tensor.dtype)), [dtype])
        for ((name, a), (_, b)) in zip(loaded.graph.initializers, source.initializers) {
            XCTAssertTrue(a.withContiguousBytes { x in b.withContiguousBytes { x.elementsEqual($0) } }, name)
        }
        let input = WeightGenerator(seed: 5).input(batch: 2, height: size, width: size)
        let want = try Executor(graph: source).run(input)[source.outputs[0]]!
        let got = try Executor(graph: loaded.graph).run(input)[loaded.graph.outputs[0]]!
        XCTAssertEqual(got.shape, want.shape)
        XCTAssertEqual(got.floats().map(\.bitPattern), want.floats().map(\.bitPattern), "\(relative) opset \(options.opset)")
    }

    func testTorchvisionLayout() throws {
        for opset in [13, 17, 21] { try roundTrip("torch/alexnet_small.pth", options: .init(opset: opset), size: 224) }
        try roundTrip("torch/alexnet_small.pth", options: .init(externalData: true), size: 224)
    }

    /// f16 weights: Cast on the way out, read as the f16 initializers on the way in.
    func testHalfPrecision() throws {
        try roundTrip("torch/fp16_model.pth", options: .init(opset: 13), size: 224, dtype: .f16)
        try roundTrip("torch/fp16_model.pth", options: .init(opset: 21, externalData: true), size: 224, dtype: .f16)
    }

    /// The ops AlexNet does not use: BatchNormalization, Concat, Add, AveragePool with padding,
    /// GlobalAveragePool, Reshape, Softmax, and a Dropout in the middle.
    static func otherOpsGraph() throws -> Graph {
        func tensor(_ shape: [Int], _ seed: Int) -> Tensor {
            let count = shape.reduce(1, *)
            return Tensor(floats: (0..<count).map { Float(($0 * 7 + seed * 13) % 17) / 16 - 0.4 }, shape: shape)
        }
        let input = ValueInfo(name: "x", dtype: .f32, shape: [.symbolic("N"), .fixed(3), .fixed(8), .fixed(8)])
        let initializers: [(name: String, tensor: Tensor)] = [
            ("conv.weight", tensor([4, 3, 3, 3], 1)), ("conv.bias", tensor([4], 2)),
            ("bn.weight", tensor([4], 3)), ("bn.bias", tensor([4], 4)), ("bn.running_mean", tensor([4], 5)),
            ("bn.running_var", Tensor(floats: [0.5, 1, 1.5, 2], shape: [4])), ("shift", tensor([8, 1, 1], 6)),
            ("fc.weight", tensor([5, 8], 7)), ("fc.bias", tensor([5], 8)),
        ]
        return try Graph(name: "other ops", inputs: [input], initializers: initializers, nodes: [
            Node("conv", Op.Conv(kernel: [3, 3], pads: [1, 1, 1, 1]), inputs: ["x", "conv.weight", "conv.bias"]),
            Node("bn", Op.BatchNormalization(epsilon: 1e-5), inputs: ["conv", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"]),
            Node("relu", Op.Unary.relu, inputs: ["bn"]),
            Node("cat", Op.Concat(axis: 1), inputs: ["relu", "conv"]),
            Node("add", Op.Binary.add, inputs: ["cat", "shift"]),
            Node("pool", Op.AveragePool(Op.Pool(kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], countIncludePad: true)), inputs: ["add"]),
            Node("drop", Op.Dropout(ratio: 0.1), inputs: ["pool"]),
            Node("gap", Op.GlobalAveragePool(), inputs: ["drop"]),
            Node("reshape", Op.Reshape(shape: [0, -1], allowZero: false), inputs: ["gap"]),
            Node("fc", Op.Gemm.linear, inputs: ["reshape", "fc.weight", "fc.bias"]),
            Node("softmax", Op.Softmax(axis: 1), inputs: ["fc"]),
        ], outputs: ["softmax"])
    }

    func testOtherOps() throws {
        let source = try Self.otherOpsGraph()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-onnx-roundtrip-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = WeightGenerator(seed: 1).input(batch: 3, height: 8, width: 8)
        let want = try Executor(graph: source).run(input)["softmax"]!
        for opset in [13, 21] {
            let file = dir.appendingPathComponent("other.onnx").path
            try ONNX.save(source, to: file, options: .init(opset: opset))
            let loaded = try ONNX.load(path: file)
            XCTAssertEqual(loaded.graph.nodes.map(\.op.name), ["Conv", "BatchNormalization", "Relu", "Concat", "Add", "AveragePool",
                                                              "GlobalAveragePool", "Reshape", "Gemm", "Softmax"])
            let got = try Executor(graph: loaded.graph).run(input)[loaded.graph.outputs[0]]!
            XCTAssertEqual(got.floats().map(\.bitPattern), want.floats().map(\.bitPattern), "opset \(opset)")
        }
    }

    func testPaperLayout() throws {
        try roundTrip("parity/alexnet_paper_small.pth", options: .init(), size: 227)
        try roundTrip("parity/alexnet_paper_small.pth", options: .init(opset: 21, externalData: true), size: 227)
    }
}
