import ArgumentParser
import ONNXFormat
import Safetensors
import TorchFormat
import ZooCore
import ZooOps
import ZooModels

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List a file's format, tensors and other entries (and an ONNX model's graph).",
        discussion: """
        Reads PyTorch checkpoints in the zip (torch.save), legacy and tar formats without running \
        anything from the file. The state dict is found automatically when unambiguous (the file \
        itself, or its one entry such as 'state_dict' or 'model'); choose with --key otherwise.

        Describes any well-formed ONNX model, whether zoo can run it or not: opsets, producer, \
        metadata, inputs and outputs with their shapes, op counts, initializers; then the ops zoo cannot \
        run (or why the import failed), or, when zoo imports the model, its graph.
        """
    )

    @Argument(help: "The file: a PyTorch checkpoint, ONNX model or safetensors file (told apart by its bytes).")
    var file: String

    @Option(help: "Entry holding the state dict in a PyTorch checkpoint, as a dotted path (e.g. model, ema.model).")
    var key: String?

    @Flag(help: "Skip CRC-32 verification of zip records (PyTorch zip checkpoints).")
    var noVerifyCrc = false

    @Flag(help: "Also bind the state dict to its architecture and show the model's graph (an ONNX model's graph is shown whenever zoo imports it).")
    var graph = false

    @Option(help: "Architecture for --graph (see zoo models); detected by default.")
    var arch: String?
    @OptionGroup var build: BuildFlags

    @OptionGroup var printing: OutputOptions

    func validate() throws {
        let format = FileFormat.of(input: file)
        if key != nil, format != .torch { throw ValidationError("--key applies only to a PyTorch checkpoint, not \(file)") }
        if noVerifyCrc, format != .torch { throw ValidationError("--no-verify-crc applies only to a PyTorch checkpoint, not \(file)") }
        if graph, format == .onnx { throw ValidationError("--graph does not apply to \(file): an ONNX model's graph is shown whenever zoo imports it") }
        if arch != nil, !graph { throw ValidationError("--arch applies only with --graph") }
        if let flag = build.flag, !graph { throw ValidationError("\(flag) applies only with --graph") }
    }

    func run() throws {
        switch try FileFormat(reading: file) {
        case .onnx: return try inspectONNX()
        case .safetensors: return try inspectSafetensors()
        case .torch: break
        }
        let checkpoint: Checkpoint
        do {
            checkpoint = try Checkpoint.load(path: file, options: .init(verifyChecksums: !noVerifyCrc))
        } catch { throw UserError(error) }
        var stateDict: StateDict?
        var note: String?
        do {
            stateDict = try checkpoint.stateDict(key: key)
        } catch {
            if key != nil { throw UserError(error) }
            note = error.reason.description
        }
        let report = Report(checkpoint: checkpoint, stateDict: stateDict, note: note)
        var model: Model?
        if graph {
            guard let stateDict else { throw UserError(message: "\(file): --graph needs a state dict (choose one with --key)") }
            model = try bind(stateDict.entries.map { ($0.name, $0.tensor.tensor) })
        }
        printing.emit(report.text + (model.map { "\n\n" + $0.graph.dump } ?? ""),
                      json: model.map { report.json.adding("graph", graphJSON($0.graph, architecture: $0.architecture.name)) } ?? report.json)
    }

    private func bind(_ tensors: [(name: String, tensor: Tensor)]) throws -> Model {
        try build.bind(tensors, architecture: try parseArchitecture(arch), path: file)
    }
}

/// A graph as JSON: `{"name", "architecture", "inputs": [value], "nodes": [{"name", "op", "attributes",
/// "inputs", "output": value}], "outputs": [value], "initializer_count", "parameter_count"}`, where a
/// value is `{"name", "dtype", "shape"}` and a symbolic dimension (the batch) is its name as a string.
func graphJSON(_ graph: Graph, architecture: String?) -> JSON {
    func value(_ name: String) -> JSON {
        guard let info = graph.values[name] else { return .object([("name", .string(name)), ("dtype", .null), ("shape", .null)]) }
        return .object([("name", .string(name)), ("dtype", .string(info.dtype.rawValue)),
                        ("shape", .array(info.shape.map { $0.value.map(JSON.int) ?? .string("\($0)") }))])
    }
    return .object([
        ("name", .string(graph.name)), ("architecture", architecture.map(JSON.string) ?? .null),
        ("inputs", .array(graph.inputs.map { value($0.name) })),
        ("nodes", .array(graph.nodes.map { node in
            .object([("name", .string(node.name)), ("op", .string(node.op.name)), ("attributes", .string(node.op.summary)),
                     ("inputs", .array(node.inputs.map(JSON.string))), ("output", value(node.output))])
        })),
        ("outputs", .array(graph.outputs.map(value))),
        ("initializer_count", .int(graph.initializers.count)), ("parameter_count", .int(graph.parameterCount)),
    ])
}

extension Inspect {
    /// An ONNX model, runnable or not: its description (`ONNX.describe`), the ops zoo cannot run or
    /// else why the import failed, its initializers, and the imported graph when there is one. Only
    /// a file that cannot be described (not an ONNX model, truncated, over a limit) is an error.
    private func inspectONNX() throws {
        // One read and unpack of the file serves the description, the import and the initializers.
        let proto: ONNXModelProto, description: ONNXDescription
        do {
            proto = try ONNX.open(path: file)
            description = try ONNX.describe(proto)
        } catch { throw UserError(error) }
        var report = ONNXReport(file: file, description: description)
        do throws(ONNXError) { report.model = try ONNX.load(proto) } catch { report.importError = error }
        if let model = report.model {
            report.tensors = model.initializers
        } else {
            do throws(ONNXError) { report.tensors = try ONNX.initializers(proto) } catch { report.tensorsError = error }
        }
        printing.emit(report.text, json: report.json)
    }

    private func inspectSafetensors() throws {
        let loaded: SafetensorsFile
        do { loaded = try Safetensors.load(path: file) } catch { throw UserError(error) }
        let parameters = loaded.tensors.reduce(0) { $0 + $1.tensor.count }
        let model = graph ? try bind(loaded.tensors) : nil
        var lines = ["file:      \(file.escapedForTerminal)", "format:    safetensors (header \(grouped(loaded.headerSize)) bytes)",
                     "tensors:   \(loaded.tensors.count), \(grouped(parameters)) parameters"]
        for (key, value) in loaded.metadata.sorted(by: { $0.key < $1.key }) {
            lines.append("metadata:  \(key.escapedForTerminal) = \(value.escapedForTerminal)")
        }
        lines.append("")
        let names = loaded.tensors.map(\.name.escapedForTerminal)
        let width = names.map(\.count).max() ?? 0
        for (name, (_, tensor)) in zip(names, loaded.tensors) {
            lines.append("  " + name.padding(width) + "  " + tensor.dtype.rawValue.padding(5) + "  \(tensor.shape)")
        }
        if let model { lines += ["", model.graph.dump] }
        var members: [(String, JSON)] = [
            ("file", .string(file)), ("format", .string("safetensors")), ("parameter_count", .int(parameters)),
            ("metadata", .object(loaded.metadata.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })),
            ("tensors", .array(loaded.tensors.map { tensorJSON($0.name, $0.tensor) })),
        ]
        if let model { members.append(("graph", graphJSON(model.graph, architecture: model.architecture.name))) }
        printing.emit(lines.joined(separator: "\n"), json: .object(members))
    }
}

/// A tensor read from a file as JSON: `{"name", "dtype", "shape", "bytes"}`.
func tensorJSON(_ name: String, _ t: Tensor) -> JSON {
    .object([("name", .string(name)), ("dtype", .string(t.dtype.rawValue)), ("shape", .array(t.shape.map { .int($0) })),
             ("bytes", .int(t.byteCount))])
}

/// What `zoo inspect` shows for an ONNX file, rendered as text or JSON: the description, then —
/// when the import succeeded — the imported graph; when it failed, the ops zoo cannot run or else
/// the import error. Every string from the file is escaped in text (JSON quotes them exactly).
struct ONNXReport {
    let file: String
    let description: ONNXDescription
    /// The imported model; nil when `importError` says why not.
    var model: ONNXModel?
    var importError: ONNXError?
    /// Every initializer of the file, decoded (empty when `tensorsError` says why they could not be).
    var tensors: [(name: String, tensor: Tensor)] = []
    var tensorsError: ONNXError?

    init(file: String, description: ONNXDescription) {
        self.file = file
        self.description = description
    }

    /// `producer_name` and, when present, `producer_version` ("pytorch 2.9.1"), as `ONNXModel.producer`.
    var producer: String {
        let (name, version) = (description.producerName, description.producerVersion)
        return version.isEmpty ? name : name.isEmpty ? version : "\(name) \(version)"
    }

    var text: String {
        let d = description
        var lines = [
            "file:      \(file.escapedForTerminal)",
            "format:    onnx (IR \(d.irVersion), opset \(d.opset.map(String.init) ?? "none"), producer '\(producer.escapedForTerminal)')",
            "opsets:    " + (d.opsetImports.isEmpty ? "none" : d.opsetImports.map {
                "\(($0.domain.isEmpty ? "ai.onnx" : $0.domain).escapedForTerminal) \($0.version)"
            }.joined(separator: ", ")),
            "graph:     '\(d.graphName.escapedForTerminal)'",
        ]
        let docLength = d.docString.unicodeScalars.count
        if docLength > 0 {
            lines.append("doc:       " + (docLength <= 100 ? "'\(d.docString.escapedForTerminal)'" : "\(counted(docLength, "character")) (in --json)"))
        }
        for prop in d.metadataProps.prefix(Self.metadataLines) {
            lines.append("metadata:  \(Self.shortened(prop.key, 100)) = \(Self.shortened(prop.value, 200))")
        }
        if d.metadataProps.count > Self.metadataLines {
            lines.append("metadata:  \(grouped(d.metadataProps.count - Self.metadataLines)) more (in --json)")
        }
        lines += d.inputs.map { "input:     " + Self.text($0) } + d.outputs.map { "output:    " + Self.text($0) }
        lines.append("ops:       \(counted(d.nodes.count, "node"))" + (d.opCounts.isEmpty ? "" : ": " + Self.text(d.opCounts)))
        lines.append("tensors:   \(counted(d.initializerCount, "initializer")), \(counted(d.parameterCount, "parameter")), "
            + counted(d.initializerBytes, "byte") + (d.externalInitializers > 0 ? " (\(grouped(d.externalInitializers)) in external data)" : ""))
        if let tensorsError { lines.append("           not read: \(tensorsError.detail.escapedForTerminal)") }
        if !d.unsupportedOps.isEmpty {
            lines.append("zoo cannot run: " + Self.text(d.unsupportedOps))
        } else if let importError {
            lines.append("zoo cannot import it: \(importError.detail.escapedForTerminal)")
        }
        if let model { lines += ["", model.graph.dump] }
        return lines.joined(separator: "\n")
    }

    var json: JSON {
        let d = description
        func value(_ v: ONNXDescription.Value) -> JSON {
            .object([("name", .string(v.name)), ("type", .string(v.kind.rawValue)),
                     ("elem_type", v.elementType.map { .string($0.description) } ?? .null),
                     ("shape", v.shape.map { .array($0.map(Self.json)) } ?? .null)])
        }
        func ops(_ counts: [ONNXDescription.OpCount]) -> JSON {
            .array(counts.map { .object([("domain", .string($0.domain)), ("op", .string($0.opType)), ("count", .int($0.count))]) })
        }
        var members: [(String, JSON)] = [
            ("file", .string(file)), ("format", .string("onnx")), ("ir_version", .int(d.irVersion)),
            ("opset", d.opset.map(JSON.int) ?? .null), ("producer", .string(producer)),
            ("producer_name", .string(d.producerName)), ("producer_version", .string(d.producerVersion)),
            ("graph_name", .string(d.graphName)), ("doc_string", .string(d.docString)),
            ("metadata_props", .object(d.metadataProps.map { ($0.key, .string($0.value)) })),
        ]
        members.append(("opset_imports", .array(d.opsetImports.map { .object([("domain", .string($0.domain)), ("version", .int($0.version))]) })))
        members += [("inputs", .array(d.inputs.map(value))), ("outputs", .array(d.outputs.map(value))),
                    ("op_counts", ops(d.opCounts)), ("unsupported_ops", ops(d.unsupportedOps)),
                    ("import_error", importError.map { .string($0.detail) } ?? .null)]
        members += [("initializer_count", .int(d.initializerCount)), ("parameter_count", .int(d.parameterCount)),
                    ("initializer_bytes", .int(d.initializerBytes)), ("external_initializers", .int(d.externalInitializers)),
                    ("tensors", .array(tensors.map { tensorJSON($0.name, $0.tensor) })),
                    ("tensors_error", tensorsError.map { .string($0.detail) } ?? .null)]
        members.append(("nodes", .array(d.nodes.map {
            .object([("name", .string($0.name)), ("op", .string($0.opType)), ("domain", .string($0.domain))])
        })))
        members.append(("graph", model.map { graphJSON($0.graph, architecture: nil) } ?? .null))
        return .object(members)
    }

    /// The most metadata entries the text lists, one line each (--json has them all).
    static let metadataLines = 20

    /// `text` escaped, or, past `limit` characters, its first `limit` escaped and how long it is.
    private static func shortened(_ text: String, _ limit: Int) -> String {
        let length = text.unicodeScalars.count
        guard length > limit else { return text.escapedForTerminal }
        return String(String.UnicodeScalarView(text.unicodeScalars.prefix(limit))).escapedForTerminal + "… (\(counted(length, "character")), in --json)"
    }

    /// `name: FLOAT [N, 3, ?, 8]` (a dim_param by name, an unknown dimension as `?`), escaped.
    private static func text(_ value: ONNXDescription.Value) -> String {
        var type = value.kind.rawValue
        if value.kind == .tensor || value.kind == .sparseTensor {
            type = (value.kind == .sparseTensor ? "sparse " : "") + (value.elementType?.description ?? "UNDEFINED")
            type += value.shape.map { " [" + $0.map(text).joined(separator: ", ") + "]" } ?? " (no shape)"
        }
        return "\(value.name.escapedForTerminal): \(type)"
    }

    private static func text(_ dimension: ONNXDescription.Dimension) -> String {
        switch dimension {
        case let .value(size): String(size)
        case let .param(name): name.escapedForTerminal
        case .unknown: "?"
        }
    }

    /// A dimension as JSON: its size, its dim_param name, or null when unknown.
    private static func json(_ dimension: ONNXDescription.Dimension) -> JSON {
        switch dimension {
        case let .value(size): .int(size)
        case let .param(name): .string(name)
        case .unknown: .null
        }
    }

    /// `Transpose ×2, com.example.FancyOp ×1`, escaped.
    private static func text(_ counts: [ONNXDescription.OpCount]) -> String {
        counts.map { "\((($0.domain.isEmpty ? "" : $0.domain + ".") + $0.opType).escapedForTerminal) ×\($0.count)" }
            .joined(separator: ", ")
    }
}

/// What `zoo inspect` shows, built once and rendered as text or JSON.
struct Report {
    let checkpoint: Checkpoint
    let stateDict: StateDict?
    let note: String?

    /// Tensors outside the state dict, by full path.
    var otherTensors: [(path: String, tensor: TorchTensor)] {
        guard let stateDict else { return checkpoint.tensors }
        let inside = Set(stateDict.entries.map { ObjectIdentifier($0.tensor) })
        let prefix = (stateDict.key.map { $0 + "." } ?? "").utf8
        return checkpoint.tensors.filter { !(inside.contains(ObjectIdentifier($0.tensor)) && $0.path.utf8.starts(with: prefix)) }
    }

    var others: [(key: String, value: PyValue)] { checkpoint.otherEntries(excluding: stateDict?.key) }

    var text: String {
        var lines = ["file:      \(checkpoint.path.escapedForTerminal)",
                     "format:    \(checkpoint.format.rawValue) (\(checkpoint.byteOrder.rawValue)-endian data)"]
        if let stateDict {
            var origin = stateDict.key.map { "entry '\($0.escapedForTerminal)'" } ?? "the whole file"
            if let prefix = stateDict.strippedPrefix { origin += ", prefix '\(prefix.escapedForTerminal)' removed" }
            lines.append("state dict: \(origin): \(stateDict.entries.count) tensors, "
                + "\(grouped(stateDict.parameterCount)) parameters, \(grouped(stateDict.byteCount)) bytes")
            lines.append("")
            lines += table(stateDict.entries.map { ($0.name, $0.tensor) })
        } else if let note {
            lines.append("state dict: none chosen — \(note.escapedForTerminal)")
        }
        let rest = otherTensors
        if !rest.isEmpty {
            lines.append("")
            lines.append(stateDict == nil ? "tensors:" : "other tensors:")
            lines += table(rest.map { ($0.path, $0.tensor) })
        }
        let entries = others
        if !entries.isEmpty {
            lines.append("")
            lines.append("other entries:")
            let keys = entries.map(\.key.escapedForTerminal)
            let width = keys.map(\.count).max() ?? 0
            for (key, entry) in zip(keys, entries) {
                lines.append("  " + key.padding(width) + "  " + Report.summary(entry.value).escapedForTerminal)
            }
        }
        return lines.joined(separator: "\n")
    }

    private func table(_ rows: [(String, TorchTensor)]) -> [String] {
        let cells = rows.map { name, t in
            [name.escapedForTerminal, t.tensor.dtype.rawValue, "[" + t.tensor.shape.map(String.init).joined(separator: ", ") + "]",
             grouped(t.tensor.byteCount), t.tensor.isView ? "view" : (t.isParameter ? "param" : "")]
        }
        let header = ["name", "dtype", "shape", "bytes", ""]
        let widths = (0..<5).map { column in ([header] + cells).map { $0[column].count }.max() ?? 0 }
        return ([header] + cells).map { row in
            "  " + row.enumerated().map { column, cell in
                column == 3 ? cell.leftPadding(widths[column]) : cell.padding(widths[column])
            }.joined(separator: "  ").trailingSpacesRemoved
        }
    }

    var json: JSON {
        func tensor(_ name: String, _ path: String, _ t: TorchTensor) -> JSON {
            .object([
                ("name", .string(name)), ("path", .string(path)), ("dtype", .string(t.tensor.dtype.rawValue)),
                ("shape", .array(t.tensor.shape.map { .int($0) })), ("strides", .array(t.tensor.strides.map { .int($0) })),
                ("storage_offset", .int(t.tensor.offset)), ("bytes", .int(t.tensor.byteCount)),
                ("view", .bool(t.tensor.isView)), ("parameter", .bool(t.isParameter)),
            ])
        }
        var members: [(String, JSON)] = [
            ("file", .string(checkpoint.path)), ("format", .string(checkpoint.format.rawValue)),
            ("byteorder", .string(checkpoint.byteOrder.rawValue)),
        ]
        if let stateDict {
            let prefix = stateDict.key.map { $0 + "." } ?? ""
            members.append(("state_dict", .object([
                ("key", stateDict.key.map { .string($0) } ?? .null),
                ("stripped_prefix", stateDict.strippedPrefix.map { .string($0) } ?? .null),
                ("tensor_count", .int(stateDict.entries.count)), ("parameter_count", .int(stateDict.parameterCount)),
                ("bytes", .int(stateDict.byteCount)),
            ])))
            members.append(("tensors", .array(stateDict.entries.map {
                tensor($0.name, prefix + (stateDict.strippedPrefix ?? "") + $0.name, $0.tensor)
            })))
        } else {
            members.append(("state_dict", .null))
            members.append(("state_dict_note", note.map { .string($0) } ?? .null))
            members.append(("tensors", .array([])))
        }
        members.append(("other_tensors", .array(otherTensors.map { tensor($0.path, $0.path, $0.tensor) })))
        members.append(("others", .array(others.map { entry in
            .object([("key", .string(entry.key)), ("type", .string(entry.value.kindName)),
                     ("summary", .string(Report.summary(entry.value)))])
        })))
        return .object(members)
    }

    /// A one-line description of a non-tensor value.
    static func summary(_ value: PyValue) -> String {
        switch value {
        case .none: return "None"
        case let .bool(b): return b ? "True" : "False"
        case let .int(i): return String(i)
        case .bigInt: return "int (more than 64 bits)"
        case let .float(f): return "\(f)"
        case let .string(s): return "'\(s.value.count > 60 ? String(s.value.prefix(57)) + "..." : s.value)'"
        case let .tensor(t): return "tensor \(t.tensor.dtype.rawValue) \(t.tensor.shape)"
        case .storage: return "storage"
        case .global(let g): return "\(g)"
        case let .object(o):
            if let bytes = value.bytesValue { return "bytes (\(bytes.count))" }
            if let scalar = numpyScalar(o) { return scalar }
            if let items = o.args.items.first?.sequenceItems { return "\(o.callable.name) of \(items.count)" }
            return o.callable.description
        case .bytes(let b): return "bytes (\(b.value.count))"
        case .tuple, .list, .dict:
            let count = (try? Checkpoint.tensors(in: value))?.count ?? 0
            let n = value.sequenceItems?.count ?? { if case let .dict(d) = value { d.count } else { 0 } }()
            return "\(value.kindName) of \(n)" + (count > 0 ? ", \(count) tensors inside" : "")
        }
    }

    /// A numpy scalar (`numpy.core.multiarray.scalar(dtype, bytes)`) as its value.
    private static func numpyScalar(_ object: PyObject) -> String? {
        guard object.callable.name == "scalar", object.args.items.count == 2,
              case let .object(dtype) = object.args.items[0], let code = dtype.args.items.first?.stringValue,
              let raw = object.args.items[1].bytesValue else { return nil }
        let value: String? = raw.withUnsafeBytes { b in
            switch (code, b.count) {
            case ("f8", 8): "\(b.loadUnaligned(as: Double.self))"
            case ("f4", 4): "\(b.loadUnaligned(as: Float.self))"
            case ("i8", 8): "\(b.loadUnaligned(as: Int64.self))"
            case ("i4", 4): "\(b.loadUnaligned(as: Int32.self))"
            case ("b1", 1): b[0] != 0 ? "True" : "False"
            default: nil
            }
        }
        return value.map { "\($0) (numpy \(code))" }
    }
}

/// `1 node`, `1,024 nodes`.
func counted(_ n: Int, _ noun: String) -> String { "\(grouped(n)) \(noun)\(n == 1 ? "" : "s")" }

func grouped(_ n: Int) -> String {
    let digits = String(n)
    var out = ""
    for (i, c) in digits.enumerated() {
        if i > 0, (digits.count - i) % 3 == 0 { out += "," }
        out.append(c)
    }
    return out
}

extension String {
    func padding(_ width: Int) -> String { self + String(repeating: " ", count: max(0, width - count)) }
    func leftPadding(_ width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
    var trailingSpacesRemoved: String {
        var s = Substring(self)
        while s.last == " " { s.removeLast() }
        return String(s)
    }
}
