import ZooCore
import ZooOps

/// Choices a state dict does not record, made when the graph is built.
public struct BuildOptions: Sendable, Equatable {
    /// GoogLeNet / Inception v3: convert ImageNet-normalized input to the normalization Google's
    /// weights were trained with (torchvision sets it when it loads their pretrained weights). nil:
    /// the family's default.
    public var transformInput: Bool?
    public init(transformInput: Bool? = nil) { self.transformInput = transformInput }
}

/// A family's configuration: depths, widths, options — and the number of classes, which every
/// torchvision classifier takes (`num_classes`).
protocol FamilyConfig: Equatable, Sendable, CustomStringConvertible {
    var classes: Int { get set }
}

/// One family of models (one file): its named variants as data and how to build any of them.
protocol ModelFamily {
    associatedtype Config: FamilyConfig
    /// The family's name as `zoo models` lists it ("resnet").
    static var name: String { get }
    /// The paper and torchvision source the family follows, one line.
    static var source: String { get }
    /// The named variants, with the evaluation transform of torchvision's default weights.
    static var variants: [(name: String, config: Config, transform: EvaluationTransform)] { get }
    /// The key of the last Linear's weight, whose first dimension is the number of classes.
    static var classifier: String { get }
    /// What `zoo models` should say about the family's options (defaults and why), if anything.
    static var note: String? { get }
    /// The input size (height = width) the architecture requires, if it requires one (ViT's position
    /// embedding fixes it); nil for models that take any size, whose default is their weights' crop.
    static func fixedInputSize(_ config: Config) -> Int?
    /// A named variant's configuration fitted to what a state dict records beyond the variant: by
    /// default the classes its classifier has; a family may also read optional heads (GoogLeNet's
    /// aux1/aux2) or sizes (ViT's image size from its position embedding).
    static func fitted(_ config: Config, to shapes: [String: [Int]]) -> Config
    /// A configuration read from a state dict's shapes when it is none of the named variants (custom
    /// widths or depths), or nil when the family takes only its variants.
    static func customConfig(from shapes: [String: [Int]]) -> Config?
    /// The configuration with the build options applied, and what they chose, for the summary.
    static func applying(_ options: BuildOptions, to config: Config) -> (Config, String?)
    /// The model's `forward` over `input` [N, 3, H, W], returning the logits [N, classes].
    static func build(_ root: Module, _ input: Value, _ config: Config) -> Value
}

extension ModelFamily {
    static func customConfig(from shapes: [String: [Int]]) -> Config? { nil }
    static func fixedInputSize(_ config: Config) -> Int? { nil }
    static func fitted(_ config: Config, to shapes: [String: [Int]]) -> Config { fittingClasses(config, to: shapes) }

    /// `config` with the classes the state dict's classifier has (the default `fitted`).
    static func fittingClasses(_ config: Config, to shapes: [String: [Int]]) -> Config {
        var fitted = config
        if let classes = shapes[classifier]?.first { fitted.classes = classes }
        return fitted
    }
    static var note: String? { nil }
    static func applying(_ options: BuildOptions, to config: Config) -> (Config, String?) { (config, nil) }

    static func architecture(_ name: String, _ config: Config, _ transform: EvaluationTransform, custom: Bool = false,
                             options: BuildOptions = BuildOptions()) -> Architecture {
        let (built, choice) = applying(options, to: config)
        let summary = built.description + (choice.map { ", " + $0 } ?? "")
        let takesTransformInput = applying(BuildOptions(transformInput: true), to: config).1 != nil
        return Architecture(name: name, family: Self.name, isCustom: custom, summary: summary, takesTransformInput: takesTransformInput,
                            classes: built.classes, classifier: classifier,
                            inputSize: fixedInputSize(built) ?? transform.crop, transform: transform,
                            blueprint: { size in ModelBuilder.build(inputSize: size) { root, x in build(root, x, built) } },
                            rebuild: { options, shapes in
                                architecture(name, shapes.map { fitted(config, to: $0) } ?? config, transform, custom: custom, options: options)
                            })
    }

    static var architectures: [Architecture] { variants.map { architecture($0.name, $0.config, $0.transform) } }

    /// The named variant whose layout `shapes` has exactly (with the classes its classifier has),
    /// else a custom configuration read from the shapes whose layout it has exactly.
    static func detect(_ shapes: [String: [Int]]) -> Architecture? {
        for variant in variants where VariantLayout.named[variant.name]!.couldBe(shapes) {
            let candidate = architecture(variant.name, fitted(variant.config, to: shapes), variant.transform)
            if candidate.mismatches(shapes, limit: 1).isEmpty { return candidate }
        }
        if let candidate = custom(shapes), candidate.mismatches(shapes, limit: 1).isEmpty { return candidate }
        return nil
    }

    /// The custom configuration a state dict's shapes suggest (`customConfig(from:)`), if any.
    static func custom(_ shapes: [String: [Int]]) -> Architecture? {
        customConfig(from: shapes).map { architecture("\(name) (custom)", $0, variants[0].transform, custom: true) }
    }
}

/// Every family zoo builds, in `zoo models` order.
let modelFamilies: [any ModelFamily.Type] = [
    AlexNet.self,
    AlexNetPaper.self,
    ResNet.self,
    VGG.self,
    SqueezeNet.self,
    DenseNet.self,
    GoogLeNet.self,
    Inception3.self,
    MobileNetV2.self,
    MobileNetV3.self,
    MNASNet.self,
    ShuffleNetV2.self,
    EfficientNet.self,
    RegNet.self,
    ConvNeXt.self,
    VisionTransformer.self,
    SwinTransformer.self,
    MaxVit.self,
]

/// State-dict key renames torchvision applies when it loads old checkpoints (DenseNet's `norm.1` →
/// `norm1`), applied before detection.
let legacyKeyRenames: [@Sendable (String) -> String?] = [
    DenseNet.legacyKeyName,
    VisionTransformer.legacyKeyName,
]

/// An architecture with its configuration: a named variant (`resnet50`) or a custom one read from a
/// state dict. Everything about it — the state-dict layout, `zoo init`'s weights, the graph — comes
/// from one build of its family's `forward`.
public struct Architecture: Sendable, CustomStringConvertible {
    /// The variant's name (`resnet50`), or `<family> (custom)`.
    public let name: String
    public let family: String
    /// Read from a state dict's shapes rather than one of the named variants.
    public let isCustom: Bool
    /// The configuration, one line (depths, widths, classes, options).
    public let summary: String
    /// Whether `BuildOptions.transformInput` applies (GoogLeNet, Inception v3).
    public let takesTransformInput: Bool
    public let classes: Int
    /// The key of the last Linear's weight (its first dimension is `classes`).
    public let classifier: String
    /// The input size (height = width) the variant is defined for.
    public let inputSize: Int
    /// torchvision's evaluation transform for the variant's default weights.
    public let transform: EvaluationTransform
    let blueprint: @Sendable (Int) -> Blueprint
    private let rebuild: @Sendable (BuildOptions, [String: [Int]]?) -> Architecture

    fileprivate init(name: String, family: String, isCustom: Bool, summary: String, takesTransformInput: Bool, classes: Int, classifier: String, inputSize: Int,
                     transform: EvaluationTransform, blueprint: @escaping @Sendable (Int) -> Blueprint,
                     rebuild: @escaping @Sendable (BuildOptions, [String: [Int]]?) -> Architecture) {
        self.name = name
        self.family = family
        self.isCustom = isCustom
        self.summary = summary
        self.takesTransformInput = takesTransformInput
        self.classes = classes
        self.classifier = classifier
        self.inputSize = inputSize
        self.transform = transform
        self.blueprint = blueprint
        self.rebuild = rebuild
    }

    /// `resnet50 (bottleneck blocks 3-4-6-3, 1000 classes)`; a custom one by its family.
    public var description: String { "\(isCustom ? family : name) (\(summary))" }

    /// Every named variant of every family.
    public static var all: [Architecture] { modelFamilies.flatMap { $0.architectures } }

    /// A family as `zoo models` lists it.
    public struct Family: Sendable {
        public let name: String
        public let source: String
        public let note: String?
        public let variants: [Architecture]
    }

    /// Every family, in `zoo models` order.
    public static var families: [Family] {
        modelFamilies.map { Family(name: $0.name, source: $0.source, note: $0.note, variants: $0.architectures) }
    }

    /// The named variant `name`.
    public static func named(_ name: String) -> Architecture? { all.first { $0.name == name } }

    /// The same architecture built with `options` and, when given, fitted to a state dict's shapes
    /// (its classes, optional heads).
    public func with(_ options: BuildOptions, fittedTo shapes: [String: [Int]]? = nil) -> Architecture { rebuild(options, shapes) }

    /// Every state-dict entry, in torchvision's order.
    public var parameters: [Parameter] { blueprint(inputSize).parameters }

    /// Elements of the learned parameters, as torchvision counts them (`parameters()`, not buffers).
    public static func parameterCount(_ parameters: [Parameter]) -> Int {
        parameters.filter(\.isLearned).reduce(0) { $0 + $1.shape.reduce(1, *) }
    }

    /// The architecture whose layout `shapes` has exactly, keys and shapes.
    public static func detect(_ shapes: [String: [Int]]) -> Architecture? {
        for family in modelFamilies { if let found = family.detect(shapes) { return found } }
        return nil
    }

    /// How `shapes` differs from this layout: missing keys (optional ones aside), shape mismatches,
    /// unexpected keys (at most `limit`).
    func mismatches(_ shapes: [String: [Int]], limit: Int = .max) -> [String] {
        Architecture.mismatches(shapes, blueprint: blueprint(inputSize), limit: limit)
    }

    /// How `shapes` differs from one build's layout; first of all, that the build is impossible.
    static func mismatches(_ shapes: [String: [Int]], blueprint: Blueprint, limit: Int = .max) -> [String] {
        if let impossible = blueprint.impossible { return ["no such model can be built: \(impossible)"] }
        var problems: [String] = []
        for p in blueprint.parameters {
            guard problems.count < limit else { return problems }
            guard let actual = shapes[p.name] else {
                if !p.isOptional { problems.append("missing '\(p.name)' \(p.shape)") }
                continue
            }
            if actual != p.shape { problems.append("'\(p.name)' is \(actual), expected \(p.shape)") }
        }
        if problems.count < limit {
            let expected = Set(blueprint.parameters.map(\.name))
            for name in shapes.keys.sorted() where !expected.contains(name) && problems.count < limit {
                problems.append("unexpected '\(name)' \(shapes[name]!)")
            }
        }
        return problems
    }

    /// What a state dict that matches no layout looks like, one line: the nearest architecture (a
    /// named variant fitted to the file, or a family's custom widths read from it) and its first
    /// differences, or that it is not a torchvision classification layout at all (when not even half
    /// its tensors are named and shaped as in the nearest).
    public static func diagnose(_ shapes: [String: [Int]], first: String?) -> String {
        var best: (architecture: Architecture, shared: Int)?
        func consider(_ architecture: Architecture, _ shared: Int) {
            if shared > best?.shared ?? 0 { best = (architecture, shared) }
        }
        for layout in VariantLayout.all { consider(layout.architecture, layout.shared(with: shapes)) }
        for family in modelFamilies {
            if let custom = family.custom(shapes) { consider(custom, custom.parameters.filter { shapes[$0.name] == $0.shape }.count) }
        }
        let count = "\(shapes.count) tensors" + (first.map { ", first '\($0)'" } ?? "")
        guard let best, best.shared * 2 >= shapes.count else {
            return "not a torchvision classification layout: \(count)"
        }
        let nearest = best.architecture.isCustom ? best.architecture : best.architecture.with(BuildOptions(), fittedTo: shapes)
        let differences = nearest.mismatches(shapes, limit: 4)
        let shown = differences.prefix(3).joined(separator: "; ") + (differences.count > 3 ? "; …" : "")
        return "looks like torchvision \(nearest.isCustom ? nearest.description : nearest.name) but "
            + (shown.isEmpty ? "its options differ" : shown) + " (\(count))"
    }
}

/// A named variant's layout, computed once: detection skips variants whose keys a state dict cannot
/// be, and the nearest-layout diagnosis compares against these without rebuilding 80 models per file.
/// Kept as hashes of the parameter names and of each name with its shape, not the strings and
/// arrays themselves (those took 3.6 MB for the 80 variants, more than a small model's weights).
/// A collision of 64-bit hashes could only let a variant on to the full comparison
/// (`Architecture.mismatches`) or miscount a diagnosis's nearest layout by one.
struct VariantLayout: Sendable {
    let architecture: Architecture
    /// Hashes of the parameter names, and of each name with its shape.
    let names: Set<Int>
    let entries: Set<Int>
    /// Entries in all, and those a state dict must have (all but the optional ones).
    let count: Int
    let required: Int

    static let all: [VariantLayout] = Architecture.all.map { architecture in
        let parameters = architecture.parameters
        return VariantLayout(architecture: architecture, names: Set(parameters.map(\.name.hashValue)),
                             entries: Set(parameters.map { entry($0.name, $0.shape) }), count: parameters.count,
                             required: parameters.filter { !$0.isOptional }.count)
    }
    static let named: [String: VariantLayout] = Dictionary(all.map { ($0.architecture.name, $0) }, uniquingKeysWith: { a, _ in a })

    private static func entry(_ name: String, _ shape: [Int]) -> Int {
        var hasher = Hasher()
        hasher.combine(name)
        hasher.combine(shape)
        return hasher.finalize()
    }

    /// Whether a state dict with these keys can be this variant (shapes aside: the classes and
    /// sizes a variant is fitted to differ).
    func couldBe(_ stateDict: [String: [Int]]) -> Bool {
        stateDict.count >= required && stateDict.count <= count && stateDict.keys.allSatisfy { names.contains($0.hashValue) }
    }

    /// Entries named and shaped as here.
    func shared(with stateDict: [String: [Int]]) -> Int {
        stateDict.reduce(0) { $0 + (entries.contains(Self.entry($1.key, $1.value)) ? 1 : 0) }
    }
}
