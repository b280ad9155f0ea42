import ZooCore
import ZooOps

/// SqueezeNet (Iandola, Han, Moskewicz, Ashraf, Dally, Keutzer, "SqueezeNet: AlexNet-level accuracy
/// with 50x fewer parameters and <0.5MB model size", arXiv:1602.07360) as torchvision builds it:
/// torchvision/models/squeezenet.py. Versions 1.0 (the paper's) and 1.1 (3×3 stem, earlier pools):
/// a stem convolution, Fire modules and ceil-mode 3×3/2 max pools in `features`, then the classifier
/// Dropout, a 1×1 convolution to the classes (`classifier.1`), ReLU, AdaptiveAvgPool2d(1), flatten.
enum SqueezeNet: ModelFamily {
    /// One module of `features` after the stem.
    enum Layer: Equatable, Sendable {
        /// MaxPool2d(3, stride 2, ceil_mode=True).
        case maxPool
        /// Fire(inplanes, squeeze, expand1x1, expand3x3): inplanes follow from the previous layer.
        case fire(squeeze: Int, expand1x1: Int, expand3x3: Int)
    }

    struct Config: FamilyConfig {
        var version: String
        /// The stem Conv2d(3, channels, kernel, stride 2), features.0.
        var stemChannels: Int
        var stemKernel: Int
        /// features.2 onwards.
        var layers: [Layer]
        var classes = 1000
        var description: String {
            let fires = layers.filter { $0 != .maxPool }.count
            return "v\(version), \(stemKernel)×\(stemKernel) stem, \(fires) fire modules, \(classes) classes"
        }
    }

    static let name = "squeezenet"
    static let source = "Iandola et al. 2016 (arXiv:1602.07360); torchvision/models/squeezenet.py"
    static let classifier = "classifier.1.weight"
    static let variants: [(name: String, config: Config, transform: EvaluationTransform)] = [
        ("squeezenet1_0", Config(version: "1.0", stemChannels: 96, stemKernel: 7, layers: [
            .maxPool, .fire(squeeze: 16, expand1x1: 64, expand3x3: 64), .fire(squeeze: 16, expand1x1: 64, expand3x3: 64),
            .fire(squeeze: 32, expand1x1: 128, expand3x3: 128), .maxPool, .fire(squeeze: 32, expand1x1: 128, expand3x3: 128),
            .fire(squeeze: 48, expand1x1: 192, expand3x3: 192), .fire(squeeze: 48, expand1x1: 192, expand3x3: 192),
            .fire(squeeze: 64, expand1x1: 256, expand3x3: 256), .maxPool, .fire(squeeze: 64, expand1x1: 256, expand3x3: 256),
        ]), .standard),
        ("squeezenet1_1", Config(version: "1.1", stemChannels: 64, stemKernel: 3, layers: [
            .maxPool, .fire(squeeze: 16, expand1x1: 64, expand3x3: 64), .fire(squeeze: 16, expand1x1: 64, expand3x3: 64),
            .maxPool, .fire(squeeze: 32, expand1x1: 128, expand3x3: 128), .fire(squeeze: 32, expand1x1: 128, expand3x3: 128),
            .maxPool, .fire(squeeze: 48, expand1x1: 192, expand3x3: 192), .fire(squeeze: 48, expand1x1: 192, expand3x3: 192),
            .fire(squeeze: 64, expand1x1: 256, expand3x3: 256), .fire(squeeze: 64, expand1x1: 256, expand3x3: 256),
        ]), .standard),
    ]

    static func build(_ root: Module, _ input: Value, _ c: Config) -> Value {
        let f = root["features"]
        var x = f[1].relu(f[0].conv2d(input, 3, c.stemChannels, kernel: c.stemKernel, stride: 2))
        var channels = c.stemChannels
        for (i, layer) in c.layers.enumerated() {
            switch layer {
            case .maxPool:
                x = f[i + 2].maxPool2d(x, kernel: 3, stride: 2, ceilMode: true)
            case let .fire(squeeze, expand1x1, expand3x3):
                x = fire(f[i + 2], x, inplanes: channels, squeeze: squeeze, expand1x1: expand1x1, expand3x3: expand3x3)
                channels = expand1x1 + expand3x3
            }
        }
        // classifier: Dropout, the final 1×1 convolution, ReLU, AdaptiveAvgPool2d((1, 1)); then flatten.
        let m = root["classifier"]
        x = m[3].adaptiveAvgPool2d(m[2].relu(m[1].conv2d(x, channels, c.classes, kernel: 1)), 1, 1)
        return root.flatten(x)
    }

    /// Fire: a 1×1 squeeze convolution with ReLU, then 1×1 and 3×3 expand convolutions (each with
    /// ReLU) concatenated on channels.
    static func fire(_ m: Module, _ x: Value, inplanes: Int, squeeze: Int, expand1x1: Int, expand3x3: Int) -> Value {
        let s = m["squeeze_activation"].relu(m["squeeze"].conv2d(x, inplanes, squeeze, kernel: 1))
        let e1 = m["expand1x1_activation"].relu(m["expand1x1"].conv2d(s, squeeze, expand1x1, kernel: 1))
        let e3 = m["expand3x3_activation"].relu(m["expand3x3"].conv2d(s, squeeze, expand3x3, kernel: 3, padding: 1))
        return m.cat([e1, e3], axis: 1)
    }
}
