import TorchFormat
import ZooCore
import ZooOps

/// A state dict that does not fit an architecture: every problem, reported together.
public struct BindingError: Error, CustomStringConvertible, Sendable {
    public let architecture: String
    public let problems: [String]
    /// One line: the first problems, then how many more (a layout that is not the architecture's at
    /// all would list hundreds).
    public var description: String {
        let shown = problems.prefix(8).joined(separator: "; ")
        return "state dict does not fit \(architecture): " + shown + (problems.count > 8 ? "; and \(problems.count - 8) more" : "")
    }
}

/// A state dict that matches no architecture zoo knows: what it looks like, in one line.
public struct UnknownLayout: Error, CustomStringConvertible, Sendable {
    /// "looks like torchvision resnet18 but …" or "not a torchvision classification layout: …".
    public let diagnosis: String
    public var description: String {
        diagnosis + " — zoo can still inspect it and convert it to .pth or .safetensors"
    }
}

/// A model ready to run: the architecture (with its configuration) and the graph over bound weights.
public struct Model: Sendable {
    public let architecture: Architecture
    public let graph: Graph

    /// Binds a state dict strictly: every missing key, unexpected key and shape mismatch is
    /// reported together. The architecture is detected from keys and shapes unless given; a given
    /// one keeps its depths and widths and takes the classes the state dict's classifier has.
    /// `renamingLegacyKeys` applies first (torchvision's own load-time renames).
    /// Floating-point tensors keep their dtype (f16, bf16, f32, f64): nothing is widened, so a
    /// half-precision checkpoint converts to a half-precision file; the executor widens weights to
    /// f32 when it plans. Integer buffers (num_batches_tracked, index tables) must be integers.
    /// Dense tensors are used in place; a view (a slice, or one of several tensors sharing a storage)
    /// is copied densely, only within `maxTensorBytes` (`ResourceLimits.current`).
    public static func bind(_ stateDict: StateDict, architecture: Architecture? = nil, options: BuildOptions = BuildOptions(),
                            inputSize: Int? = nil) throws -> Model {
        try bind(tensors: stateDict.entries.map { ($0.name, $0.tensor.tensor) }, architecture: architecture, options: options,
                 inputSize: inputSize)
    }

    /// Binds named tensors (a state dict's entries) the same way.
    public static func bind(tensors: [(name: String, tensor: Tensor)], architecture: Architecture? = nil,
                            options: BuildOptions = BuildOptions(), inputSize: Int? = nil) throws -> Model {
        let tensors = renamingLegacyKeys(tensors)
        var shapes: [String: [Int]] = [:]
        for entry in tensors {
            // Binding needs every tensor dense: a shape past the limits (an expanded view claiming
            // terabytes) is refused before any architecture is sized from it.
            do throws(LimitExceeded) { try ResourceLimits.current.checkDenseSize(entry.tensor) } catch {
                throw BindingError(architecture: architecture?.name ?? "any architecture", problems: ["'\(entry.name)': \(error)"])
            }
            shapes[entry.name] = entry.tensor.shape
        }
        let chosen: Architecture
        if let architecture {
            chosen = architecture.with(options, fittedTo: shapes)
        } else if let detected = Architecture.detect(shapes) {
            chosen = detected.with(options)
        } else {
            throw UnknownLayout(diagnosis: Architecture.diagnose(shapes, first: tensors.first?.name))
        }
        let blueprint = chosen.blueprint(inputSize ?? chosen.inputSize)
        let problems = Architecture.mismatches(shapes, blueprint: blueprint)
        guard problems.isEmpty else { throw BindingError(architecture: chosen.name, problems: problems) }
        var weights: [String: Tensor] = [:]
        for entry in tensors { weights[entry.name] = entry.tensor }
        var initializers: [(name: String, tensor: Tensor)] = []
        for parameter in blueprint.parameters {
            guard let tensor = weights[parameter.name] else { continue }  // an optional entry the file lacks
            guard tensor.dtype.isFloatingPoint == !parameter.role.isInteger else {
                throw BindingError(architecture: chosen.name, problems: [
                    "'\(parameter.name)' is \(tensor.dtype.rawValue), expected \(parameter.role.isInteger ? "an integer type" : "floating point")",
                ])
            }
            initializers.append((parameter.name, tensor.contiguous()))
        }
        return Model(architecture: chosen, graph: try chosen.graph(blueprint, weights: initializers))
    }

    /// The state dict with torchvision's load-time renames applied to the keys that need them.
    static func renamingLegacyKeys(_ tensors: [(name: String, tensor: Tensor)]) -> [(name: String, tensor: Tensor)] {
        tensors.map { entry in
            for rename in legacyKeyRenames { if let renamed = rename(entry.name) { return (renamed, entry.tensor) } }
            return entry
        }
    }
}

extension Model {
    /// The same model built for [N, 3, size, size] inputs over the same weights: the graph's constants
    /// (Swin's padding and shifted-window masks, MaxViT's partitions) depend on the input size.
    public func resized(to size: Int) throws(GraphError) -> Model {
        let blueprint = architecture.blueprint(size)
        let names = Set(blueprint.parameters.map(\.name))
        return Model(architecture: architecture, graph: try architecture.graph(blueprint, weights: graph.initializers.filter { names.contains($0.name) }))
    }
}

extension Architecture {
    /// The graph over `weights` (by state-dict key) for [N, 3, size, size] inputs, with no check of
    /// the weights beyond the graph's own shape inference: `Model.bind` checks a state dict strictly
    /// first. Only the entries the graph reads become initializers (not num_batches_tracked or
    /// unused heads).
    public func graph(weights: [(name: String, tensor: Tensor)], inputSize size: Int? = nil) throws(GraphError) -> Graph {
        try graph(blueprint(size ?? inputSize), weights: weights)
    }

    func graph(_ blueprint: Blueprint, weights: [(name: String, tensor: Tensor)]) throws(GraphError) -> Graph {
        if let impossible = blueprint.impossible { throw GraphError(.op("no such model can be built: \(impossible)")) }
        let read = Set(blueprint.nodes.flatMap(\.inputs))
        return try Graph(name: description, inputs: [blueprint.input],
                         initializers: weights.filter { read.contains($0.name) } + blueprint.constants,
                         nodes: blueprint.nodes, outputs: [blueprint.output])
    }
}
