import ArgumentParser
import FoundationEssentials
import Glibc
import ONNXFormat
import Safetensors
import TorchFormat
import ZooCore
import ZooOps
import ZooKernels
import ZooModels
import ZooRuntime

/// A runnable model from any file zoo reads: a PyTorch checkpoint or safetensors file bound to a zoo
/// architecture (detected, or `--arch`), or an ONNX graph.
struct LoadedModel {
    let path: String
    let graph: Graph
    /// The zoo model the state dict was bound to; nil for an ONNX graph.
    var model: Model? = nil
    /// The ONNX opset; nil for a state dict.
    var opset: Int? = nil
    /// The evaluation transform an ONNX file records for its weights (`TransformMetadata`: zoo's own
    /// files do), with where it came from. nil for a state dict, whose architecture knows its own,
    /// and for a file that records none — or a malformed one, which `loadModel` warns about.
    var recordedTransform: RecordedTransform? = nil

    init(path: String, graph: Graph, opset: Int? = nil) {
        self.path = path
        self.graph = graph
        self.opset = opset
    }

    init(path: String, model: Model) {
        self.init(path: path, graph: model.graph)
        self.model = model
    }

    /// The zoo architecture (with its configuration) the state dict was bound to.
    var architecture: String? { model?.architecture.description }

    /// A state-dict model built again for its one square image input's size when that is not the size
    /// it was built for: Swin's padding and shifted-window masks and MaxViT's partitions are constants
    /// of the input size, so re-inferring shapes is not enough for them. nil when nothing needs
    /// rebuilding — or when the model cannot be built for that size, so that running it says why, as
    /// for any input it cannot take.
    func resized(for inputs: [(name: String, tensor: Tensor)]) -> LoadedModel? {
        guard model != nil, inputs.count == 1, inputs[0].tensor.rank == 4, inputs[0].tensor.dtype.isFloatingPoint else { return nil }
        let shape = inputs[0].tensor.shape
        return shape[2] == shape[3] ? resized(side: shape[2]) : nil
    }

    /// The state-dict model built again for a `side` × `side` image input (see `resized(for:)`).
    func resized(side: Int) -> LoadedModel? {
        guard let model, graph.inputs.count == 1, side > 0 else { return nil }
        let declared = graph.inputs[0].shape
        guard declared.count == 4, declared[2].value != side, let resized = try? model.resized(to: side) else { return nil }
        return LoadedModel(path: path, model: resized)
    }

    /// What it is, for messages: "alexnet" or "onnx graph 'main_graph', opset 17".
    var kind: String { architecture ?? "onnx graph '\(graph.name)', opset \(opset ?? 0)" }

    /// `{"file", "architecture", "graph", "opset"}` (null where it does not apply).
    var json: JSON {
        .object([("file", .string(path)), ("architecture", architecture.map(JSON.string) ?? .null),
                 ("graph", architecture == nil ? .string(graph.name) : .null), ("opset", opset.map(JSON.int) ?? .null)])
    }
}

/// Generated inputs for `graph`, one per graph input: its declared shape with the batch set to
/// `batch`, values from zoo's deterministic generator (input k uses seed + k, so the first input is
/// exactly what the generator's Python twin makes for `seed`). Bounded to 2^28 values (1 GiB) each.
func generatedInputs(for graph: Graph, batch: Int, seed: UInt64) throws -> [String: Tensor] {
    var inputs: [String: Tensor] = [:]
    for (k, declared) in graph.inputs.enumerated() {
        var shape = [batch]
        for dim in declared.shape.dropFirst() {
            guard let size = dim.value else { throw UserError(message: "input \(declared.name) \(declared) has a symbolic dimension: give --input") }
            shape.append(size)
        }
        guard batch >= 1, let count = Tensor.checkedCount(shape), count <= 1 << 28 else {
            throw UserError(message: "a generated input of shape \(shape) is too large (limit 2^28 values)")
        }
        inputs[declared.name] = WeightGenerator(seed: seed &+ UInt64(k)).input(shape: shape)
    }
    return inputs
}

/// The graph's inputs from `--input` arguments, each with where it came from ("x.npy", or "x.npz:x"):
/// `FILE.npy` for a one-input graph, `NAME=FILE.npy` for each input of a graph with several (an
/// argument is NAME=FILE only when NAME is an input), or `FILE.npz` holding arrays named after
/// inputs. Every input exactly once.
func readInputs(_ arguments: [String], for graph: Graph) throws -> [(name: String, source: String, tensor: Tensor)] {
    let names = graph.inputs.map(\.name)
    var inputs: [(name: String, source: String, tensor: Tensor)] = []
    func add(_ name: String, _ source: String, _ tensor: Tensor) throws {
        guard !inputs.contains(where: { $0.name == name }) else { throw UserError(usage: "--input gives input '\(name)' twice") }
        inputs.append((name, source, tensor))
    }
    for argument in arguments {
        switch try ioArgument(argument, names: names, option: "--input", what: "input") {
        case let .archive(file):
            for (name, tensor) in try readArchive(file) {
                guard names.contains(name) else {
                    throw UserError(usage: "\(file) holds an array '\(name)', which is not an input of the model (its inputs: \(quoted(names)))")
                }
                try add(name, "\(file):\(name)", tensor)
            }
        case let .one(name, file):
            try add(name, file, try readInput(file))
        }
    }
    let missing = names.filter { name in !inputs.contains { $0.name == name } }
    guard missing.isEmpty else {
        throw UserError(usage: "the model takes \(names.count) inputs (\(quoted(names))): give each as --input NAME=FILE.npy "
            + "or in an .npz; missing \(quoted(missing))")
    }
    return graph.inputs.map { declared in inputs.first { $0.name == declared.name }! }
}

/// The files `--input` arguments read (for refusing to overwrite them), without reading them.
func inputFiles(_ arguments: [String], for graph: Graph) -> [String] {
    arguments.map { (try? ioArgument($0, names: graph.inputs.map(\.name), option: "--input", what: "input"))?.file ?? $0 }
}

/// True for a path with the .npz extension (numpy's archive of named arrays).
func isArchive(_ path: String) -> Bool { path.lowercased().hasSuffix(".npz") }

/// The arrays of an .npz, naming the file in errors.
func readArchive(_ path: String) throws -> [(name: String, tensor: Tensor)] {
    do { return try NumPyArchive.read(path: path) } catch { throw UserError(error) }
}

/// What one `--input` / `--output` argument names: one graph value in an .npy (`NAME=FILE`, or a
/// bare `FILE` when the model has one such value), or an .npz holding values by name.
enum IOArgument {
    case one(name: String, file: String)
    case archive(String)

    var file: String {
        switch self {
        case let .one(_, file), let .archive(file): file
        }
    }
}

/// `argument` classified: `NAME=FILE` when NAME is one of `names` (the graph's inputs or outputs),
/// else `FILE.npz`, else a bare `FILE` for the only name — refused, naming `option`, when there are
/// several.
func ioArgument(_ argument: String, names: [String], option: String, what: String) throws -> IOArgument {
    if let equals = argument.firstIndex(of: "="), names.contains(String(argument[..<equals])) {
        return .one(name: String(argument[..<equals]), file: String(argument[argument.index(after: equals)...]))
    }
    if isArchive(argument) { return .archive(argument) }
    guard names.count == 1 else {
        throw UserError(usage: "\(option) \(argument): the model has \(names.count) \(what)s (\(quoted(names))): write \(option) NAME=FILE.npy")
    }
    if let equals = argument.firstIndex(of: "="), option == "--input", !FileManager.default.fileExists(atPath: argument) {
        throw UserError(usage: "\(option) \(argument): the model has no \(what) '\(argument[..<equals])' (its \(what): \(quoted(names)))")
    }
    return .one(name: names[0], file: argument)
}

/// 'a', 'b', 'c'
func quoted(_ names: [String]) -> String { names.map { "'\($0)'" }.joined(separator: ", ") }

func parseArchitecture(_ name: String?) throws -> Architecture? {
    guard let name else { return nil }
    if let found = Architecture.named(name) { return found }
    let all = Architecture.all.map(\.name)
    // The names sharing the longest prefix with what was typed.
    let shared = { (a: String) in zip(a, name).prefix { $0 == $1 }.count }
    let best = all.map(shared).max() ?? 0
    let near = best >= 3 ? all.filter { shared($0) == best }.prefix(6) : []
    throw UserError(message: "unknown architecture '\(name.escapedForTerminal)'" + (near.isEmpty ? "" : " (nearest: \(near.joined(separator: ", ")))")
                    + "; zoo models lists all \(all.count)")
}

/// The named tensors of a .pth (its state dict, `key` choosing one in a nested checkpoint) or
/// .safetensors file. safetensors stores tensors sorted by dtype and name: a zoo architecture's
/// state-dict order is restored when the tensors are one.
func readStateDict(_ path: String, key: String? = nil) throws -> [(name: String, tensor: Tensor)] {
    switch try FileFormat(reading: path) {
    case .torch:
        do {
            return try Checkpoint.load(path: path).stateDict(key: key).entries.map { ($0.name, $0.tensor.tensor) }
        } catch { throw UserError(error) }
    case .safetensors:
        do { return stateDictOrder(try Safetensors.load(path: path).tensors) } catch { throw UserError(error) }
    case .onnx:
        throw UserError(message: "\(path): an ONNX model is not a state dict")
    }
}

/// A safetensors file's tensors (stored sorted by dtype and name) in their architecture's state-dict
/// order when they are one zoo architecture, else as they are.
func stateDictOrder(_ tensors: [(name: String, tensor: Tensor)]) -> [(name: String, tensor: Tensor)] {
    var shapes: [String: [Int]] = [:]
    for entry in tensors { shapes[entry.name] = entry.tensor.shape }
    guard let architecture = Architecture.detect(shapes) else { return tensors }
    let order = Dictionary(uniqueKeysWithValues: architecture.parameters.enumerated().map { ($0.element.name, $0.offset) })
    return tensors.sorted { order[$0.name]! < order[$1.name]! }
}

/// The model in `path`. `--arch` (`architecture`) applies to state dicts only: an ONNX graph is
/// what it is, so naming an architecture for one is a usage error. An ONNX file's recorded
/// evaluation transform is read too; a malformed one gets a one-line warning naming the file and is
/// ignored (the model still runs; photos get `ChosenTransform`'s guess for a graph).
func loadModel(_ path: String, architecture: String?, key: String? = nil, options: BuildFlags) throws -> LoadedModel {
    let arch = try parseArchitecture(architecture)
    if try FileFormat(reading: path) == .onnx {
        if let architecture {
            throw UserError(usage: "--arch \(architecture) does not apply to \(path): an ONNX model is already a graph")
        }
        if let flag = options.flag {
            throw UserError(usage: "\(flag) does not apply to \(path): an ONNX model is already a graph")
        }
        let model: ONNXModel
        do { model = try ONNX.load(path: path) } catch { throw UserError(error) }
        var loaded = LoadedModel(path: path, graph: model.graph, opset: model.opset)
        do throws(TransformMetadataError) { loaded.recordedTransform = try TransformMetadata.recorded(in: model.metadataProps) } catch {
            warn("\(path): \(error); ignored: photos get ImageNet's usual transform for the input size")
        }
        return loaded
    }
    return LoadedModel(path: path, model: try options.bind(try readStateDict(path, key: key), architecture: arch, path: path))
}

/// Refuses, before any work, an output that is one of the command's inputs — the same file through
/// any path, symbolic or hard link. The writers refuse a file that is mapped as well, but a command
/// may have let go of an input's mapping by the time it writes.
func refuseOverwriting(_ outputs: [String], inputs: [String]) throws {
    for output in outputs {
        guard let target = FileIdentity(path: output) else { continue }
        for input in inputs where FileIdentity(path: input) == target {
            throw UserError(message: "\(output): is the same file as the input \(input); refusing to overwrite an input")
        }
    }
}

/// True when writing `path` streams bytes rather than replacing a file: `-` (standard output), a
/// character device, a FIFO or a socket.
func isStream(_ path: String) -> Bool {
    if path == "-" { return true }
    var info = stat()
    guard stat(path, &info) == 0 else { return false }
    let type = info.st_mode & S_IFMT
    return type != S_IFREG && type != S_IFDIR
}

/// True when `path` is where standard output goes (`-`, /dev/stdout, or the file it is redirected to),
/// so messages must go to standard error instead.
func isStandardOutput(_ path: String) -> Bool {
    if path == "-" { return true }
    guard let target = FileIdentity(path: path) else { return false }
    return FileIdentity(path: "/dev/stdout") == target
}

/// Reads a .npy input, naming the file in errors.
func readInput(_ path: String) throws -> Tensor {
    do { return try NumPy.read(path: path) } catch { throw UserError(error) }
}

func makeExecutor(_ model: LoadedModel, threads: Int?, fuse: Bool = true) throws -> Executor {
    if let problem = KernelSet.environmentProblem { throw UserError(message: problem) }
    do {
        return try Executor(graph: model.graph, options: .init(threads: threads ?? Executor.defaultThreads, fuse: fuse))
    } catch { throw UserError(message: "\(model.path): \(error)") }
}

/// Runs the executor on every graph input, returning every graph output by name; execution errors
/// become one-line user errors naming `path`.
func execute(_ executor: Executor, _ inputs: [String: Tensor], path: String) throws -> [String: Tensor] {
    do { return try executor.run(inputs) } catch { throw UserError(message: "\(path): \(error)") }
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
}

/// Wall seconds of each of `runs` calls of `body`, in order.
func timeRuns(_ runs: Int, _ body: () throws -> Void) rethrows -> [Double] {
    var times: [Double] = []
    for _ in 0..<runs {
        let start = ContinuousClock.now
        try body()
        times.append(seconds(ContinuousClock.now - start))
    }
    return times
}

/// The median (the mean of the two middle values for an even count). `values` must not be empty.
func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

/// Choices a state dict does not record (`BuildOptions`), for the commands that build a model from one.
struct BuildFlags: ParsableArguments {
    @Flag(inversion: .prefixedNo, help: "GoogLeNet / Inception v3 from a state dict: convert ImageNet-normalized input to the normalization Google's weights were trained with, as torchvision does when it loads them (default: on; see zoo models).")
    var transformInput: Bool? = nil

    var options: BuildOptions { BuildOptions(transformInput: transformInput) }
    /// The flag as typed, when one was.
    var flag: String? { transformInput.map { $0 ? "--transform-input" : "--no-transform-input" } }

    /// Binds `tensors` with these options; a flag the architecture does not take is a usage error.
    func bind(_ tensors: [(name: String, tensor: Tensor)], architecture: Architecture?, path: String) throws -> Model {
        let model: Model
        do { model = try Model.bind(tensors: tensors, architecture: architecture, options: options) } catch {
            throw UserError(message: "\(path): \(error)")
        }
        if let flag, !model.architecture.takesTransformInput {
            throw UserError(usage: "\(flag) applies only to GoogLeNet and Inception v3, not to \(path) (\(model.architecture.name))")
        }
        return model
    }
}
