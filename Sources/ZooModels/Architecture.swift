import TorchFormat
import ZooCore
import ZooOps

/// The widths that size a classic CNN: output channels of each convolution, hidden fc widths,
/// classes. Reduced-width variants (used for small fixtures) are the same architecture.
public struct ModelConfig: Equatable, Sendable, CustomStringConvertible {
    public var convChannels: [Int]
    public var hidden: [Int]
    public var classes: Int

    public init(convChannels: [Int], hidden: [Int], classes: Int) {
        self.convChannels = convChannels
        self.hidden = hidden
        self.classes = classes
    }

    public var description: String {
        convChannels.map(String.init).joined(separator: "-") + " / " + (hidden + [classes]).map(String.init).joined(separator: "-")
    }
}

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

/// The zoo's architectures. Each is one file that builds its graph from a state dict in the
/// original implementation's key layout, with its source cited there.
public enum Architecture: String, CaseIterable, Sendable {
    case alexnet
    case alexnetPaper = "alexnet-paper"

    public var summary: String {
        switch self {
        case .alexnet: AlexNet.summary
        case .alexnetPaper: AlexNetPaper.summary
        }
    }

    /// The full-size configuration (ImageNet).
    public var defaultConfig: ModelConfig {
        switch self {
        case .alexnet: AlexNet.defaultConfig
        case .alexnetPaper: AlexNetPaper.defaultConfig
        }
    }

    /// The input size the architecture is defined for (height = width).
    public var defaultInputSize: Int {
        switch self {
        case .alexnet: 224
        case .alexnetPaper: 227
        }
    }

    /// Every state-dict key with its shape, in the original implementation's order.
    public func layout(_ config: ModelConfig) -> [(name: String, shape: [Int])] {
        switch self {
        case .alexnet: AlexNet.layout(config)
        case .alexnetPaper: AlexNetPaper.layout(config)
        }
    }

    /// The configuration a state dict's shapes imply, or nil when its keys are not this layout's.
    public func config(from shapes: [String: [Int]]) -> ModelConfig? {
        switch self {
        case .alexnet: AlexNet.config(from: shapes)
        case .alexnetPaper: AlexNetPaper.config(from: shapes)
        }
    }

    /// Input channels fan into each output of the layer owning `key` (for the weight generator).
    func fanIn(of key: String, config: ModelConfig) -> Int {
        let weightShape = layout(config).first { $0.name == key.replacingSuffix(".bias", ".weight") }?.shape ?? [1]
        return weightShape.dropFirst().reduce(1, *)
    }

    /// Builds the graph over `weights` (floating point, by state-dict key; already checked against `layout`).
    func graph(config: ModelConfig, weights: [String: Tensor], inputSize: Int) throws(GraphError) -> Graph {
        switch self {
        case .alexnet: try AlexNet.graph(config: config, weights: weights, inputSize: inputSize)
        case .alexnetPaper: try AlexNetPaper.graph(config: config, weights: weights, inputSize: inputSize)
        }
    }

    /// The architecture whose layout a state dict's keys match, with its configuration.
    public static func detect(_ shapes: [String: [Int]]) -> (Architecture, ModelConfig)? {
        for architecture in allCases {
            if let config = architecture.config(from: shapes),
               Set(architecture.layout(config).map(\.name)) == Set(shapes.keys) {
                return (architecture, config)
            }
        }
        return nil
    }
}

/// A model ready to run: the architecture, its configuration and the graph over bound weights.
public struct Model: Sendable {
    public let architecture: Architecture
    public let config: ModelConfig
    public let graph: Graph

    /// Binds a state dict strictly: every missing key, unexpected key and shape mismatch is
    /// reported together. The architecture is detected from keys and shapes unless given.
    /// Floating-point tensors keep their dtype (f16, bf16, f32, f64): nothing is widened, so a
    /// half-precision checkpoint converts to a half-precision file; the executor widens weights to
    /// f32 when it plans. Dense tensors are used in place; a view (a slice, or one of several tensors
    /// sharing a storage) is copied densely, only within `maxTensorBytes` (`ResourceLimits.current`).
    /// Non-floating-point tensors are refused.
    public static func bind(_ stateDict: StateDict, architecture: Architecture? = nil, inputSize: Int? = nil) throws -> Model {
        try bind(tensors: stateDict.entries.map { ($0.name, $0.tensor.tensor) }, architecture: architecture, inputSize: inputSize)
    }

    /// Binds named tensors (a state dict's entries) the same way.
    public static func bind(tensors: [(name: String, tensor: Tensor)], architecture: Architecture? = nil, inputSize: Int? = nil) throws -> Model {
        var shapes: [String: [Int]] = [:]
        for entry in tensors { shapes[entry.name] = entry.tensor.shape }
        let chosen: Architecture
        let config: ModelConfig
        if let architecture {
            chosen = architecture
            config = architecture.config(from: shapes) ?? architecture.defaultConfig
        } else if let (found, foundConfig) = Architecture.detect(shapes) {
            (chosen, config) = (found, foundConfig)
        } else {
            // One short line: what the file holds, the nearest architecture, what zoo can still do.
            let closest = Architecture.allCases.max { a, b in
                Set(a.layout(a.defaultConfig).map(\.name)).intersection(shapes.keys).count
                    < Set(b.layout(b.defaultConfig).map(\.name)).intersection(shapes.keys).count
            }!
            let known = Set(closest.layout(closest.defaultConfig).map(\.name))
            let shared = known.intersection(shapes.keys).count
            let first = tensors.first.map { " (first '\($0.name)')" } ?? ""
            throw BindingError(architecture: "any zoo architecture (\(Architecture.allCases.map(\.rawValue).joined(separator: ", ")))", problems: [
                "not a layout zoo knows: \(tensors.count) tensors\(first)"
                    + (shared > 0 ? ", \(shared) of them named as in \(closest.rawValue) (which has \(known.count))" : "")
                    + " — zoo can still inspect it and convert it to .pth or .safetensors",
            ])
        }
        let problems = check(chosen, config, shapes)
        guard problems.isEmpty else { throw BindingError(architecture: chosen.rawValue, problems: problems) }
        var weights: [String: Tensor] = [:]
        for entry in tensors {
            let tensor = entry.tensor
            guard tensor.dtype.isFloatingPoint else {
                throw BindingError(architecture: chosen.rawValue, problems: ["'\(entry.name)' is \(tensor.dtype.rawValue), not floating point"])
            }
            do throws(LimitExceeded) { try ResourceLimits.current.checkDenseSize(tensor) } catch {
                throw BindingError(architecture: chosen.rawValue, problems: ["'\(entry.name)': \(error)"])
            }
            weights[entry.name] = tensor.contiguous()
        }
        let graph = try chosen.graph(config: config, weights: weights, inputSize: inputSize ?? chosen.defaultInputSize)
        return Model(architecture: chosen, config: config, graph: graph)
    }

    private static func check(_ architecture: Architecture, _ config: ModelConfig, _ shapes: [String: [Int]]) -> [String] {
        let layout = architecture.layout(config)
        var problems: [String] = []
        let expected = Set(layout.map(\.name))
        for (name, shape) in layout {
            guard let actual = shapes[name] else {
                problems.append("missing '\(name)' \(shape)")
                continue
            }
            if actual != shape { problems.append("'\(name)' has shape \(actual), expected \(shape)") }
        }
        for name in shapes.keys.sorted() where !expected.contains(name) {
            problems.append("unexpected '\(name)' \(shapes[name]!)")
        }
        return problems
    }
}

/// The state-dict layout shared by the AlexNet family: convolutions in `features` (module index,
/// square kernel, groups), a 6×6 feature map flattened into Linear layers in `classifier`.
struct ClassicLayout {
    let convs: [(index: Int, kernel: Int, groups: Int)]
    let linears: [Int]

    /// Every key with its shape, in module order.
    func layout(_ c: ModelConfig) -> [(name: String, shape: [Int])] {
        var layout: [(name: String, shape: [Int])] = []
        var inChannels = 3
        for (i, conv) in convs.enumerated() {
            layout.append(("features.\(conv.index).weight", [c.convChannels[i], inChannels / conv.groups, conv.kernel, conv.kernel]))
            layout.append(("features.\(conv.index).bias", [c.convChannels[i]]))
            inChannels = c.convChannels[i]
        }
        var inFeatures = inChannels * 36
        for (i, index) in linears.enumerated() {
            let out = i < linears.count - 1 ? c.hidden[i] : c.classes
            layout.append(("classifier.\(index).weight", [out, inFeatures]))
            layout.append(("classifier.\(index).bias", [out]))
            inFeatures = out
        }
        return layout
    }

    /// The widths a state dict's weight shapes give, or nil when a layer's weight is missing.
    func config(from shapes: [String: [Int]]) -> ModelConfig? {
        let channels = convs.compactMap { shapes["features.\($0.index).weight"]?.first }
        let outs = linears.compactMap { shapes["classifier.\($0).weight"]?.first }
        guard channels.count == convs.count, outs.count == linears.count, (channels + outs).allSatisfy({ $0 > 0 }) else { return nil }
        return ModelConfig(convChannels: channels, hidden: Array(outs.dropLast()), classes: outs[outs.count - 1])
    }
}

extension String {
    func replacingSuffix(_ suffix: String, _ replacement: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) + replacement : self
    }
}
