import ArgumentParser
import FoundationEssentials
import ZooCore
import ZooImage
import ZooModels
import ZooOps
import ZooRuntime

struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Draw what a network has learned and what it sees: convolution filters, feature maps (PNG).",
        subcommands: [ShowFilters.self, ShowActivations.self]
    )
}

extension TileColormap: ExpressibleByArgument {
    public init?(argument: String) {
        switch argument {
        case "gray": self = .gray
        case "viridis": self = .viridis
        default: return nil
        }
    }
    public static var allValueStrings: [String] { ["gray", "viridis"] }
}

struct ShowFilters: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "filters",
        abstract: "Draw a convolution's kernels as a grid of tiles.",
        discussion: """
        A first convolution over RGB draws each filter as one colour tile (its three input planes \
        as red, green and blue); any other draws one row per filter (at most \(maxRows)) and one \
        gray tile per input channel (at most \(maxColumns)). Each tile is scaled to its own \
        minimum and maximum for display.
        """
    )
    static let maxRows = 64, maxColumns = 64, maxColourFilters = 1024

    @Argument(help: "The model: .onnx, or a .pth/.safetensors state dict of a zoo architecture.")
    var model: String
    @Option(help: "The convolution: a node name (see zoo inspect --graph) or its weight's name (default: the first convolution).")
    var layer: String?
    @Option(name: .shortAndLong, help: "Output .png file (written atomically).")
    var output: String
    @Option(help: "Architecture of a state dict, when detection is not wanted (see zoo models).")
    var arch: String?
    @OptionGroup var build: BuildFlags
    @OptionGroup var printing: OutputOptions

    func validate() throws { try requirePNG(output) }

    func run() throws {
        let loaded = try loadModel(model, architecture: arch, options: build)
        let graph = loaded.graph
        let node: Node
        if let layer {
            node = try findNode(layer, in: graph)
            guard node.op.name == "Conv" else {
                throw UserError(message: "\(model.escapedForTerminal): node '\(node.name.escapedForTerminal)' is \(node.op.name), not a convolution")
            }
        } else {
            guard let first = graph.nodes.first(where: { $0.op.name == "Conv" }) else {
                throw UserError(message: "\(model.escapedForTerminal): the model has no convolution")
            }
            node = first
        }
        guard node.inputs.count > 1, let weight = graph.initializer(node.inputs[1]), weight.rank >= 3 else {
            throw UserError(message: "\(model.escapedForTerminal): convolution '\(node.name.escapedForTerminal)' computes its weight instead of storing it: nothing to draw")
        }
        try refuseOverwriting([output], inputs: [model])
        let shape = weight.shape, filters = shape[0], inputs = shape[1], kernel = shape.dropFirst(2).reduce(1, *)
        let kh = shape[2], kw = weight.rank > 3 ? shape[3] : 1
        let values = weight.float32().floats()
        var tiles: [Tile] = []
        let columns: Int, shown: String
        if inputs == 3 {
            let count = min(filters, Self.maxColourFilters)
            for f in 0..<count {
                tiles.append(Tile(channels: 3, height: kh, width: kw, values: Array(values[f * 3 * kernel..<(f + 1) * 3 * kernel])))
            }
            columns = Int(Double(count).squareRoot().rounded(.up))
            shown = "\(count) of \(filters) filters in colour"
        } else {
            let rows = min(filters, Self.maxRows), cols = min(inputs, Self.maxColumns)
            for f in 0..<rows {
                for c in 0..<cols {
                    let start = (f * inputs + c) * kernel
                    tiles.append(Tile(height: kh, width: kw, values: Array(values[start..<start + kernel])))
                }
            }
            columns = cols
            shown = "\(rows) of \(filters) filters × \(cols) of \(inputs) input channels"
        }
        let scale = max(1, min(16, (inputs == 3 ? 48 : 24) / max(kh, kw)))
        let picture: Image
        do { picture = try tileGrid(tiles, columns: columns, scale: scale, gap: 2) } catch { throw UserError(message: "\(output.escapedForTerminal): \(error)") }
        do { try writePNG(picture, to: output) } catch { throw UserError(error) }
        printing.emit("\(output.escapedForTerminal): '\(node.name.escapedForTerminal)' \(shape), \(shown), \(picture.width)×\(picture.height) px",
                      json: .object([("file", .string(output)), ("model", loaded.json), ("node", .string(node.name)),
                                     ("weight", .string(node.inputs[1])), ("shape", .array(shape.map(JSON.int))),
                                     ("tiles", .int(tiles.count)), ("width", .int(picture.width)), ("height", .int(picture.height))]))
    }
}

struct ShowActivations: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "activations",
        abstract: "Draw a layer's feature maps for one photo as a grid of tiles.",
        discussion: """
        The photo is prepared as zoo preprocess does it for the model, the model runs up to the \
        layer, and each of the layer's channels (at most \(maxMaps)) becomes one tile, scaled to its \
        own minimum and maximum.
        """
    )
    static let maxMaps = 1024

    @Argument(help: "The model: .onnx, or a .pth/.safetensors state dict of a zoo architecture.")
    var model: String
    @Argument(help: "A JPEG or PNG photo.")
    var image: String
    @Option(help: "The layer: a node name (see zoo inspect --graph), the name of the value it computes, or a module path (its last node).")
    var layer: String
    @Option(name: .shortAndLong, help: "Output .png file (written atomically).")
    var output: String
    @Option(help: "Colours of the maps.")
    var colormap: TileColormap = .viridis
    @Option(parsing: .unconditional, help: "Draw only the first N channels (default: all, at most \(maxMaps)).")
    var maps: Int?
    @Option(help: "Architecture of a state dict, when detection is not wanted (see zoo models).")
    var arch: String?
    @OptionGroup var build: BuildFlags
    @OptionGroup var transformOptions: TransformOptions
    @Option(parsing: .unconditional, help: "Worker threads (default: all cores).")
    var threads: Int?
    @OptionGroup var printing: OutputOptions

    func validate() throws {
        try requirePNG(output)
        try requireAtLeast(1, threads, "--threads")
        try requireAtLeast(1, maps, "--maps")
    }

    func run() throws {
        var loaded = try loadModel(model, architecture: arch, options: build)
        let transform = try ChosenTransform(architecture: loaded.model?.architecture, graph: loaded.graph, recorded: loaded.recordedTransform, options: transformOptions)
        if let resized = loaded.resized(side: transform.transform.crop) { loaded = resized }
        let input = try imageInput(of: loaded.graph).name
        let node = try findNode(layer, in: loaded.graph)
        try refuseOverwriting([output], inputs: [model, image])
        let batch = try ImageBatch(files: [image], transform: transform, exifTranspose: transformOptions.exifTranspose)
        let truncated = try graph(loaded.graph, upTo: node)
        let executor = try makeExecutor(LoadedModel(path: model, graph: truncated), threads: threads)
        let value = try execute(executor, [input: batch.tensor], path: model)[truncated.outputs[0]]!
        guard value.rank == 4 else {
            throw UserError(message: "'\(node.name.escapedForTerminal)' gives \(value.shape), not feature maps [1, channels, height, width]")
        }
        let channels = value.shape[1], h = value.shape[2], w = value.shape[3], plane = h * w
        let values = value.float32().floats()
        let count = min(channels, maps ?? Self.maxMaps, Self.maxMaps)
        let tiles = (0..<count).map { c in Tile(height: h, width: w, values: Array(values[c * plane..<(c + 1) * plane])) }
        let scale = max(1, min(8, 64 / max(h, w)))
        let picture: Image
        do { picture = try tileGrid(tiles, scale: scale, gap: 2, colormap: colormap) } catch { throw UserError(message: "\(output.escapedForTerminal): \(error)") }
        do { try writePNG(picture, to: output) } catch { throw UserError(error) }
        printing.emit((batch.fileLines + [batch.transformLine,
                       "\(output.escapedForTerminal): '\(node.name.escapedForTerminal)' \(value.shape), \(count) of \(channels) maps, \(picture.width)×\(picture.height) px"]).joined(separator: "\n"),
                      json: batch.json.adding("output", .object([
                          ("file", .string(output)), ("node", .string(node.name)), ("shape", .array(value.shape.map(JSON.int))),
                          ("tiles", .int(count)), ("width", .int(picture.width)), ("height", .int(picture.height))])))
    }

    /// `graph` cut after `node`: the nodes it depends on, and its first output as the only output.
    private func graph(_ graph: Graph, upTo node: Node) throws -> Graph {
        var needed: Set<String> = Set(node.inputs)
        var kept: [Node] = [node]
        guard let index = graph.nodes.lastIndex(where: { $0.name == node.name && $0.outputs == node.outputs }) else { return graph }
        for candidate in graph.nodes[..<index].reversed() where candidate.outputs.contains(where: needed.contains) {
            kept.append(candidate)
            needed.formUnion(candidate.inputs)
        }
        let initializers = graph.initializers.filter { needed.contains($0.name) }
        do {
            return try Graph(name: graph.name, inputs: graph.inputs, initializers: initializers, nodes: kept.reversed(), outputs: [node.outputs[0]])
        } catch { throw UserError(message: "\(model.escapedForTerminal): \(error)") }
    }
}

/// Refuses an output name that does not end in .png (the pictures are PNG).
func requirePNG(_ path: String) throws {
    guard path.lowercased().hasSuffix(".png") else { throw ValidationError("-o must name a .png file, got '\(path.escapedForTerminal)'") }
}

/// The node `layer` names: a node's name, a value a node computes, a convolution's weight (with or
/// without its ".weight" suffix), or a module path whose nodes are named under it ("features.4", a
/// Fire module: its last node, which computes the module's output). A user error listing the
/// nearest names otherwise.
func findNode(_ layer: String, in graph: Graph) throws -> Node {
    if let node = graph.nodes.first(where: { $0.name == layer }) ?? graph.nodes.first(where: { $0.outputs.contains(layer) })
        ?? graph.nodes.first(where: { $0.op.name == "Conv" && $0.inputs.count > 1 && [layer, layer + ".weight"].contains($0.inputs[1]) })
        ?? graph.nodes.last(where: { $0.name.hasPrefix(layer + ".") }) {
        return node
    }
    let names = graph.nodes.map(\.name)
    let shared = { (a: String) in zip(a, layer).prefix { $0 == $1 }.count }
    let best = names.map(shared).max() ?? 0
    var near: [String] = []
    for name in names where shared(name) == best && best > 0 && !near.contains(name) && near.count < 6 { near.append(name) }
    throw UserError(message: "no layer '\(layer.escapedForTerminal)' in the model"
                    + (near.isEmpty ? "" : " (nearest: \(near.map { "'\($0.escapedForTerminal)'" }.joined(separator: ", ")))")
                    + "; zoo inspect --graph lists its \(names.count) nodes")
}
