import FoundationEssentials
import ArgumentParser
import ONNXFormat
import Safetensors
import TorchFormat
import ZooCore
import ZooModels
import ZooRuntime

struct Models: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the architectures zoo can build from a state dict.",
        discussion: """
        Every family with the paper and torchvision source it follows, then each variant: parameters, \
        the input size it is defined for, the evaluation transform torchvision publishes for its \
        default weights (resize the shorter side, center crop, interpolation; then the mean and std, \
        ImageNet's unless shown) and the state dict's top-level key prefixes.
        """
    )

    @OptionGroup var printing: OutputOptions

    func run() {
        var lines: [String] = []
        var families: [JSON] = []
        for family in Architecture.families {
            lines.append("\(family.name) — \(family.source)")
            if let note = family.note { lines.append("  " + note) }
            var variants: [JSON] = []
            for architecture in family.variants {
                let parameters = architecture.parameters
                let count = Architecture.parameterCount(parameters)
                var prefixes: [String] = []
                for p in parameters {
                    let first = String(p.name.prefix { $0 != "." })
                    if prefixes.last != first { prefixes.append(first) }
                }
                let size = "\(architecture.inputSize)×\(architecture.inputSize)"
                lines.append("  " + architecture.name.padding(22) + (millions(count) + " params").padding(15) + size.padding(9)
                             + (architecture.transform.description + " ").padding(32) + prefixes.joined(separator: " "))
                let t = architecture.transform
                variants.append(.object([
                    ("name", .string(architecture.name)), ("summary", .string(architecture.summary)), ("parameters", .int(count)),
                    ("tensors", .int(parameters.count)), ("input_size", .int(architecture.inputSize)),
                    ("transform", .object([("resize", .int(t.resize)), ("crop", .int(t.crop)), ("interpolation", .string(t.interpolation.rawValue)),
                                           ("mean", .array(t.mean.map { .double(Double($0)) })),
                                           ("std", .array(t.std.map { .double(Double($0)) }))])),
                    ("key_prefixes", .array(prefixes.map(JSON.string))),
                ]))
            }
            families.append(.object([("name", .string(family.name)), ("source", .string(family.source)),
                                     ("note", family.note.map(JSON.string) ?? .null), ("variants", .array(variants))]))
        }
        printing.emit(lines.joined(separator: "\n"), json: .object([("families", .array(families))]))
    }

    private func millions(_ n: Int) -> String {
        let m = Double(n) / 1e6
        return (m >= 100 ? String(Int(m.rounded())) : String(format1: m, digits: m >= 10 ? 1 : 2)) + " M"
    }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a model on .npy inputs or photos and write its outputs as .npy.",
        discussion: """
        An image input is [batch, 3, height, width] (NCHW) float32 or float64, C order, \
        little-endian. An ONNX graph takes the sizes it declares; a zoo architecture (a .pth or \
        .safetensors state dict) takes any size its layers allow, as in PyTorch (Swin and MaxViT: \
        square inputs). A model with \
        several inputs takes each as --input NAME=FILE.npy, or all from an .npz (numpy's savez) \
        whose arrays are named after them; one with several outputs writes those named by \
        --output NAME=FILE.npy, or every one into an .npz under its graph name. JPEG and PNG \
        photos given as --input make one batch, prepared as zoo preprocess prepares them.
        """
    )

    @Argument(help: "The model: .onnx, or a .pth/.safetensors state dict of a zoo architecture.")
    var model: String
    @Option(help: "Input .npy file; NAME=FILE.npy for each input of a model with several, or an .npz of arrays named after the inputs; or JPEG/PNG photos, one batch prepared as zoo preprocess does (repeatable).")
    var input: [String]
    @Option(help: "Output .npy file (written atomically; - for standard output); NAME=FILE.npy for each output wanted of a model with several; FILE.npz for every output by name (repeatable).")
    var output: [String]
    @Option(help: "Architecture of a state dict, when detection is not wanted (see zoo models).")
    var arch: String?
    @OptionGroup var build: BuildFlags
    @OptionGroup var transformOptions: TransformOptions
    @Option(parsing: .unconditional, help: "Worker threads (default: all cores).")
    var threads: Int?
    @OptionGroup var printing: OutputOptions

    func validate() throws {
        try requireAtLeast(1, threads, "--threads")
        if printing.json, output.contains(where: { isStandardOutput($0.split(separator: "=").last.map(String.init) ?? $0) }) {
            throw ValidationError("--json prints to standard output, where an --output writes an array: choose one")
        }
    }

    func run() throws {
        var loaded = try loadModel(model, architecture: arch, options: build)
        let photos = input.filter(isImageFile)
        let x: [(name: String, source: String, tensor: Tensor)]
        if photos.isEmpty {
            if transformOptions.overrides || transformOptions.exifTranspose {
                throw UserError(usage: "--resize, --crop, --interpolation, --mean, --std and --exif-transpose apply to photos, and every --input is an array")
            }
            x = try readInputs(input, for: loaded.graph)
        } else {
            guard photos.count == input.count else {
                throw UserError(usage: "--input mixes photos and arrays: give photos only (one batch) or arrays only")
            }
            let name = try imageInput(of: loaded.graph).name
            let transform = try ChosenTransform(architecture: loaded.model?.architecture, graph: loaded.graph, recorded: loaded.recordedTransform, options: transformOptions)
            let batch = try ImageBatch(files: photos, transform: transform, exifTranspose: transformOptions.exifTranspose)
            x = [(name, photos.count == 1 ? photos[0] : "\(photos.count) photos", batch.tensor)]
        }
        if let resized = loaded.resized(for: x.map { ($0.name, $0.tensor) }) { loaded = resized }
        let executor = try makeExecutor(loaded, threads: threads)
        // Which output goes to which file — an .npz takes every output — checked before anything runs.
        let outputs = loaded.graph.outputs
        var targets: [(names: [String], file: String)] = []
        for argument in output {
            let target: (names: [String], file: String) = switch try ioArgument(argument, names: outputs, option: "--output", what: "output") {
            case let .archive(file): (outputs, file)
            case let .one(name, file): ([name], file)
            }
            if let twice = target.names.first(where: { name in targets.contains { $0.names.contains(name) } }) {
                throw UserError(usage: "--output writes output '\(twice)' twice")
            }
            targets.append(target)
        }
        try refuseOverwriting(targets.map(\.file), inputs: [model] + (photos.isEmpty ? inputFiles(input, for: loaded.graph) : photos))
        let start = ContinuousClock.now
        let y = try execute(executor, Dictionary(uniqueKeysWithValues: x.map { ($0.name, $0.tensor) }), path: x.count == 1 ? x[0].source : model)
        let elapsed = seconds(ContinuousClock.now - start)
        for target in targets {
            do {
                if isArchive(target.file) {
                    try NumPyArchive.write(target.names.map { ($0, y[$0]!) }, to: target.file)
                } else {
                    try NumPy.write(y[target.names[0]]!, to: target.file)
                }
            } catch { throw UserError(error) }
        }
        let ms = String(format1: elapsed * 1000, digits: 1)
        let lines = targets.map { target in
            "\(target.file.escapedForTerminal): " + target.names.map { name in
                (outputs.count > 1 ? "'\(name.escapedForTerminal)' " : "") + "\(y[name]!.shape)"
            }.joined(separator: ", ") + " from \(loaded.kind.escapedForTerminal) in \(ms) ms"
        }
        if targets.contains(where: { isStandardOutput($0.file) }) {
            if !printing.quiet { writeStandardError(lines.joined(separator: "\n") + "\n") }
            return
        }
        printing.emit(lines.joined(separator: "\n"), json: .object([
            ("model", loaded.json),
            ("inputs", .array(x.map { input in
                .object([("name", .string(input.name)), ("file", .string(input.source)),
                         ("shape", .array(input.tensor.shape.map(JSON.int))), ("dtype", .string(input.tensor.dtype.rawValue))])
            })),
            ("outputs", .array(targets.flatMap { target in target.names.map { name in
                JSON.object([("name", .string(name)), ("file", .string(target.file)),
                             ("shape", .array(y[name]!.shape.map(JSON.int))), ("dtype", .string(y[name]!.dtype.rawValue))])
            } })),
            ("forward_ms", .double(elapsed * 1000)), ("threads", .int(executor.options.threads)),
            ("kernels", .string(executor.options.kernels.rawValue)),
        ]))
    }
}

struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write deterministic weights for an architecture in torchvision's state-dict layout.",
        discussion: """
        The output's extension chooses the format: .pth (a torch.save zip of the state dict), \
        .safetensors, or .onnx (the model's graph with these weights). The generator (integer \
        arithmetic mapped exactly to float32) is also implemented in Python in zoo's test fixtures, \
        so PyTorch can compute reference outputs for these weights without any weight file being \
        shipped.
        """
    )

    @Argument(help: "Architecture (see zoo models).")
    var arch: String
    @Option(name: .shortAndLong, help: "Output file: .pth, .safetensors or .onnx.")
    var output: String
    @Option(parsing: .unconditional, help: "Generator seed.", transform: parseSeed)
    var seed: UInt64 = 0
    @OptionGroup var build: BuildFlags
    @OptionGroup var printing: OutputOptions

    func run() throws {
        guard let architecture = try parseArchitecture(arch) else { return }
        let format = try FileFormat(path: output)
        if let flag = build.flag, format != .onnx {
            throw UserError(usage: "\(flag) applies only to an .onnx output (a state dict does not record it), not \(output)")
        }
        let entries = WeightGenerator(seed: seed).stateDict(architecture)
        switch format {
        case .torch:
            let dict = PyDict(ordered: true)
            for entry in entries {
                let source = TorchStorage(key: entry.name, dtype: entry.tensor.dtype, location: "cpu", storage: entry.tensor.storage)
                dict.set(.string(PyString(entry.name)), .tensor(TorchTensor(tensor: entry.tensor, source: source)))
            }
            do { try Checkpoint.save(.dict(dict), to: output) } catch { throw UserError(error) }
        case .safetensors:
            do { try Safetensors.save(entries.map { ($0.name, $0.tensor) }, to: output) } catch { throw UserError(error) }
        case .onnx:
            let model = try build.bind(entries, architecture: architecture, path: output)
            let options = ONNXWriteOptions(metadataProps: TransformMetadata.props(for: model.architecture))
            do { try ONNX.save(model.graph, to: output, options: options) } catch { throw UserError(error) }
        }
        let parameters = Architecture.parameterCount(architecture.parameters)
        printing.emit("wrote \(output.escapedForTerminal): \(architecture.name), \(entries.count) tensors, \(grouped(parameters)) parameters, seed \(seed)",
                      json: .object([("file", .string(output)), ("format", .string(format.rawValue)),
                                     ("architecture", .string(architecture.name)), ("tensors", .int(entries.count)),
                                     ("parameters", .int(parameters)), ("seed", .uint(seed))]))
    }
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time a model's forward pass on a generated input.",
        discussion: "Prints median and best ms per batch, ms per image and images/s over --runs runs after 3 warm-up runs."
    )

    @Argument(help: "The model.")
    var model: String
    @Option(parsing: .unconditional, help: "Batch size.")
    var batch: Int = 1
    @Option(parsing: .unconditional, help: "Worker threads (default: all cores).")
    var threads: Int?
    @Option(parsing: .unconditional, help: "Timed runs.")
    var runs: Int = 20
    @Option(help: "Architecture of a state dict (see zoo models).")
    var arch: String?
    @OptionGroup var build: BuildFlags
    @Flag(help: "Also time every layer and print its GFLOP/s against the per-core FMA peak.")
    var layers = false
    @Flag(help: "Also print every run's time (for benchmark scripts that pool runs).")
    var allTimes = false
    @OptionGroup var printing: OutputOptions

    func validate() throws {
        try requireAtLeast(1, batch, "--batch")
        try requireAtLeast(1, threads, "--threads")
        try requireAtLeast(1, runs, "--runs")
    }

    func run() throws {
        let loadStart = ContinuousClock.now
        let loaded = try loadModel(model, architecture: arch, options: build)
        let executor = try makeExecutor(loaded, threads: threads)
        let load = seconds(ContinuousClock.now - loadStart)
        let x = try generatedInputs(for: loaded.graph, batch: batch, seed: 0)
        for _ in 0..<3 { _ = try execute(executor, x, path: model) }   // warm-up, as Benchmarks/peers.py does for the others
        let times = try timeRuns(runs) { _ = try execute(executor, x, path: model) }
        let median = median(times), best = times.min()!
        var profile: [Executor.StepProfile] = []
        if layers {
            do { profile = try executor.profile(x, runs: runs) } catch { throw UserError(message: "\(model): \(error)") }
        }
        var text = "\(loaded.kind.escapedForTerminal) batch \(batch), \(executor.options.threads) threads, \(executor.options.kernels.rawValue) kernels, \(runs) runs: "
            + "median \(String(format1: median * 1000, digits: 2)) ms (best \(String(format1: best * 1000, digits: 2))), "
            + "\(String(format1: median * 1000 / Double(batch), digits: 2)) ms/image, "
            + "\(String(format1: Double(batch) / median, digits: 1)) images/s; load \(String(format1: load * 1000, digits: 1)) ms"
        if allTimes { text += "\ntimes ms: " + times.map { String(format1: $0 * 1000, digits: 3) }.joined(separator: " ") }
        if layers { text += "\n" + layerTable(profile, threads: executor.options.threads) }
        printing.emit(text, json: .object([
            ("model", loaded.json), ("batch", .int(batch)), ("threads", .int(executor.options.threads)),
            ("kernels", .string(executor.options.kernels.rawValue)), ("runs", .int(runs)),
            ("median_ms", .double(median * 1000)), ("best_ms", .double(best * 1000)),
            ("ms_per_image", .double(median * 1000 / Double(batch))), ("images_per_s", .double(Double(batch) / median)),
            ("load_ms", .double(load * 1000)), ("times_ms", .array(times.map { .double($0 * 1000) })),
            ("layers", layers ? .array(profile.map { step in
                .object([("nodes", .array(step.nodes.map(JSON.string))), ("kernel", .string(step.kernel)),
                         ("median_ms", .double(step.median * 1000)), ("best_ms", .double(step.best * 1000)),
                         ("flops", .double(step.flops)), ("executed_flops", .double(step.executedFlops))])
            }) : .null),
        ]))
    }

    /// One line per executed step: median and best ms; for conv / fc layers the layer's GFLOP/s
    /// (direct-convolution operations per second) and the GFLOP/s per thread its kernel actually
    /// executes (fewer operations for Winograd) against `Bench.corePeak`.
    private func layerTable(_ profile: [Executor.StepProfile], threads count: Int) -> String {
        let threads = Double(count)
        let names = profile.map { $0.nodes.joined(separator: "+").escapedForTerminal }
        let width = max(4, names.map(\.count).max() ?? 4)
        let kernelWidth = max(6, profile.map(\.kernel.count).max() ?? 6)
        func line(_ name: String, _ kernel: String, median: Double, best: Double, flops: Double, executed: Double) -> String {
            var text = "\(name.padding(width))  \(kernel.padding(kernelWidth))  "
                + (String(format1: median * 1000, digits: 3)).leftPadding(9) + " " + (String(format1: best * 1000, digits: 3)).leftPadding(9)
            if flops > 0 {
                let perThread = executed / median / 1e9 / threads
                text += (String(format1: flops / median / 1e9, digits: 1)).leftPadding(10) + (String(format1: perThread, digits: 1)).leftPadding(12)
                    + (String(format1: 100 * perThread / Bench.corePeak, digits: 0) + " %").leftPadding(9)
            }
            return text
        }
        var lines = ["\("step".padding(width))  \("kernel".padding(kernelWidth))  median ms   best ms   GFLOP/s  executed/thr  of peak"]
        for (name, step) in zip(names, profile) {
            lines.append(line(name, step.kernel, median: step.median, best: step.best, flops: step.flops, executed: step.executedFlops))
        }
        lines.append(line("all", "", median: profile.reduce(0) { $0 + $1.median }, best: profile.reduce(0) { $0 + $1.best },
                          flops: profile.reduce(0) { $0 + $1.flops }, executed: profile.reduce(0) { $0 + $1.executedFlops }))
        lines.append("GFLOP/s: the layer's direct-convolution / matrix-product operations per second; executed/thr: operations "
            + "the kernel performs (Winograd does fewer) per second per thread; peak: \(Int(Bench.corePeak)) GFLOP/s per "
            + "core (f32 FMA, 2×256-bit per cycle on Zen 4); \(count) threads, batch \(batch)")
        return lines.joined(separator: "\n")
    }

    /// The f32 FMA peak of one core of the reference machine kind (Zen 4: two 256-bit FMA pipes,
    /// 32 FLOP per cycle at ~3.5 GHz), as measured by the kernel benchmark's L1-resident micro-kernel.
    static let corePeak = 110.0
}
