import ZooCore
import ZooOps

/// VGG (Simonyan, Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition",
/// ICLR 2015, arXiv:1409.1556) as torchvision builds it: torchvision/models/vgg.py. Configurations
/// A, B, D, E (11, 13, 16, 19 weight layers) of 3×3 convolutions (padding 1) and 2×2 max pools,
/// optionally with BatchNorm after each convolution (`_bn`), then AdaptiveAvgPool2d(7, 7) and the
/// 25088-4096-4096-classes classifier. Takes any input ≥ 32×32.
enum VGG: ModelFamily {
    struct Config: FamilyConfig {
        /// torchvision's `cfgs`: a convolution's output channels, or nil for "M" (MaxPool2d(2, 2)).
        var layers: [Int?]
        var batchNorm: Bool
        var classes = 1000
        var description: String {
            layers.map { $0.map(String.init) ?? "M" }.joined(separator: "-") + (batchNorm ? ", batch norm" : "") + ", \(classes) classes"
        }
    }

    static let a: [Int?] = [64, nil, 128, nil, 256, 256, nil, 512, 512, nil, 512, 512, nil]
    static let b: [Int?] = [64, 64, nil, 128, 128, nil, 256, 256, nil, 512, 512, nil, 512, 512, nil]
    static let d: [Int?] = [64, 64, nil, 128, 128, nil, 256, 256, 256, nil, 512, 512, 512, nil, 512, 512, 512, nil]
    static let e: [Int?] = [64, 64, nil, 128, 128, nil, 256, 256, 256, 256, nil, 512, 512, 512, 512, nil, 512, 512, 512, 512, nil]

    static let name = "vgg"
    static let source = "Simonyan, Zisserman 2015 (arXiv:1409.1556); torchvision/models/vgg.py"
    static let classifier = "classifier.6.weight"
    static let variants: [(name: String, config: Config, transform: EvaluationTransform)] = [
        ("vgg11", Config(layers: a, batchNorm: false), .standard),
        ("vgg11_bn", Config(layers: a, batchNorm: true), .standard),
        ("vgg13", Config(layers: b, batchNorm: false), .standard),
        ("vgg13_bn", Config(layers: b, batchNorm: true), .standard),
        ("vgg16", Config(layers: d, batchNorm: false), .standard),
        ("vgg16_bn", Config(layers: d, batchNorm: true), .standard),
        ("vgg19", Config(layers: e, batchNorm: false), .standard),
        ("vgg19_bn", Config(layers: e, batchNorm: true), .standard),
    ]

    static func build(_ root: Module, _ input: Value, _ c: Config) -> Value {
        // make_layers: features.<i> numbered across conv, (BatchNorm2d,) ReLU and MaxPool2d modules.
        let f = root["features"]
        var x = input
        var i = 0, inChannels = 3
        for v in c.layers {
            guard let v else {
                x = f[i].maxPool2d(x, kernel: 2, stride: 2)
                i += 1
                continue
            }
            x = f[i].conv2d(x, inChannels, v, kernel: 3, padding: 1)
            if c.batchNorm {
                x = f[i + 1].batchNorm2d(x, v)
                i += 1
            }
            x = f[i + 1].relu(x)
            i += 2
            inChannels = v
        }
        x = root.flatten(root["avgpool"].adaptiveAvgPool2d(x, 7, 7))
        // classifier: Linear, ReLU, Dropout, Linear, ReLU, Dropout, Linear (Dropout is the identity here).
        let m = root["classifier"]
        x = m[1].relu(m[0].linear(x, inChannels * 7 * 7, 4096))
        x = m[4].relu(m[3].linear(x, 4096, 4096))
        return m[6].linear(x, 4096, c.classes)
    }
}
