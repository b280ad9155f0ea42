import ZooCore
import ZooOps

/// The widths that size an AlexNet: output channels of each convolution, hidden fc widths, classes.
/// Reduced-width variants (used for small fixtures) are the same architecture.
struct AlexNetConfig: FamilyConfig {
    var convChannels: [Int]
    var hidden: [Int]
    var classes: Int

    var description: String {
        convChannels.map(String.init).joined(separator: "-") + " / " + (hidden + [classes]).map(String.init).joined(separator: "-")
    }

    /// The widths a state dict's weights give for convolutions at `features.<index>`, Linear layers
    /// at `classifier.1`, `.4` and `.6`; nil when one is missing.
    static func reading(_ shapes: [String: [Int]], convs: [Int]) -> AlexNetConfig? {
        let channels = convs.compactMap { shapes["features.\($0).weight"]?.first }
        let outs = [1, 4, 6].compactMap { shapes["classifier.\($0).weight"]?.first }
        guard channels.count == convs.count, outs.count == 3, (channels + outs).allSatisfy({ $0 > 0 }) else { return nil }
        return AlexNetConfig(convChannels: channels, hidden: Array(outs.prefix(2)), classes: outs[2])
    }

    /// The classifier both AlexNets share: Dropout, Linear, ReLU, Dropout, Linear, ReLU, Linear as
    /// `classifier.0`…`classifier.6` (Dropout is the identity at inference).
    func classifier(_ m: Module, _ x: Value, inFeatures: Int) -> Value {
        var x = m[2].relu(m[1].linear(x, inFeatures, hidden[0]))
        x = m[5].relu(m[4].linear(x, hidden[0], hidden[1]))
        return m[6].linear(x, hidden[1], classes)
    }
}

/// torchvision's AlexNet, exactly: torchvision/models/alexnet.py (the "one weird trick" layout,
/// Krizhevsky 2014, arXiv:1404.5997, as trained for `alexnet-owt-7be5be79.pth`), 64-192-384-256-256
/// convolutions, AdaptiveAvgPool2d(6, 6), 9216-4096-4096-1000 classifier. Takes any input ≥ 63×63.
/// Also the paper-width variant under torchvision's keys (96-256-384-384-256, as the 2012 paper's
/// layers, without its LRN and groups), `alexnet-paper-widths`.
enum AlexNet: ModelFamily {
    static let name = "alexnet"
    static let source = "Krizhevsky 2014 (arXiv:1404.5997); torchvision/models/alexnet.py"
    static let variants: [(name: String, config: AlexNetConfig, transform: EvaluationTransform)] = [
        ("alexnet", AlexNetConfig(convChannels: [64, 192, 384, 256, 256], hidden: [4096, 4096], classes: 1000), .standard),
        ("alexnet-paper-widths", AlexNetConfig(convChannels: [96, 256, 384, 384, 256], hidden: [4096, 4096], classes: 1000), .standard),
    ]
    static let classifier = "classifier.6.weight"
    static func customConfig(from shapes: [String: [Int]]) -> AlexNetConfig? { AlexNetConfig.reading(shapes, convs: [0, 3, 6, 8, 10]) }

    static func build(_ root: Module, _ input: Value, _ c: AlexNetConfig) -> Value {
        let f = root["features"]
        let w = c.convChannels
        var x = f[1].relu(f[0].conv2d(input, 3, w[0], kernel: 11, stride: 4, padding: 2))
        x = f[2].maxPool2d(x, kernel: 3, stride: 2)
        x = f[4].relu(f[3].conv2d(x, w[0], w[1], kernel: 5, padding: 2))
        x = f[5].maxPool2d(x, kernel: 3, stride: 2)
        x = f[7].relu(f[6].conv2d(x, w[1], w[2], kernel: 3, padding: 1))
        x = f[9].relu(f[8].conv2d(x, w[2], w[3], kernel: 3, padding: 1))
        x = f[11].relu(f[10].conv2d(x, w[3], w[4], kernel: 3, padding: 1))
        x = f[12].maxPool2d(x, kernel: 3, stride: 2)
        x = root.flatten(root["avgpool"].adaptiveAvgPool2d(x, 6, 6))
        return c.classifier(root["classifier"], x, inFeatures: w[4] * 36)
    }
}
