import ZooCore
import ZooOps

/// MobileNetV3 (Howard, Sandler, Chu, Chen, Chen, Tan, Wang, Zhu, Pang, Vasudevan, Le, Adam,
/// "Searching for MobileNetV3", ICCV 2019, arXiv:1905.02244) as torchvision builds it:
/// torchvision/models/mobilenetv3.py. A 3×3/2 Conv-BN-Hardswish stem, the bneck blocks of the
/// paper's Tables 1 and 2 (1×1 expansion, depthwise k×k, squeeze-and-excitation with a hard sigmoid,
/// linear 1×1 projection; ReLU or hard swish), a 1×1 convolution to 6× the last width, the global
/// average and the classifier Linear, Hardswish, Dropout, Linear. BatchNorm eps 0.001. Takes any
/// input size.
enum MobileNetV3: ModelFamily {
    /// One bneck row (InvertedResidualConfig), channels before the width multiplier.
    struct Block: Equatable, Sendable {
        var inputChannels: Int
        var kernel: Int
        var expandedChannels: Int
        var outChannels: Int
        var useSE: Bool
        /// "HS" (hard swish) rather than "RE" (ReLU).
        var useHS: Bool
        var stride: Int
    }

    struct Config: FamilyConfig {
        var setting: [Block]
        /// The classifier's hidden width, before the width multiplier.
        var lastChannel: Int
        var widthMult = 1.0
        var classes = 1000
        var description: String { "\(setting.count) bneck blocks, width \(widthMult), classifier \(lastChannel), \(classes) classes" }
        /// InvertedResidualConfig.adjust_channels.
        func adjust(_ channels: Int) -> Int { makeDivisible(Double(channels) * widthMult, 8) }
    }

    static let name = "mobilenet_v3"
    static let source = "Howard et al. 2019 (arXiv:1905.02244); torchvision/models/mobilenetv3.py"
    static let classifier = "classifier.3.weight"
    /// bneck_conf(input, kernel, expanded, out, use_se, activation, stride) as _mobilenet_v3_conf lists them.
    private static func bneck(_ rows: [(Int, Int, Int, Int, Bool, String, Int)]) -> [Block] {
        rows.map { Block(inputChannels: $0.0, kernel: $0.1, expandedChannels: $0.2, outChannels: $0.3, useSE: $0.4, useHS: $0.5 == "HS", stride: $0.6) }
    }
    static let large = bneck([
        (16, 3, 16, 16, false, "RE", 1), (16, 3, 64, 24, false, "RE", 2), (24, 3, 72, 24, false, "RE", 1),
        (24, 5, 72, 40, true, "RE", 2), (40, 5, 120, 40, true, "RE", 1), (40, 5, 120, 40, true, "RE", 1),
        (40, 3, 240, 80, false, "HS", 2), (80, 3, 200, 80, false, "HS", 1), (80, 3, 184, 80, false, "HS", 1),
        (80, 3, 184, 80, false, "HS", 1), (80, 3, 480, 112, true, "HS", 1), (112, 3, 672, 112, true, "HS", 1),
        (112, 5, 672, 160, true, "HS", 2), (160, 5, 960, 160, true, "HS", 1), (160, 5, 960, 160, true, "HS", 1),
    ])
    static let small = bneck([
        (16, 3, 16, 16, true, "RE", 2), (16, 3, 72, 24, false, "RE", 2), (24, 3, 88, 24, false, "RE", 1),
        (24, 5, 96, 40, true, "HS", 2), (40, 5, 240, 40, true, "HS", 1), (40, 5, 240, 40, true, "HS", 1),
        (40, 5, 120, 48, true, "HS", 1), (48, 5, 144, 48, true, "HS", 1), (48, 5, 288, 96, true, "HS", 2),
        (96, 5, 576, 96, true, "HS", 1), (96, 5, 576, 96, true, "HS", 1),
    ])
    static let variants: [(name: String, config: Config, transform: EvaluationTransform)] = [
        ("mobilenet_v3_large", Config(setting: large, lastChannel: 1280), EvaluationTransform(resize: 232, crop: 224)),
        ("mobilenet_v3_small", Config(setting: small, lastChannel: 1024), .standard),
    ]

    static let epsilon: Float = 0.001

    static func build(_ root: Module, _ input: Value, _ c: Config) -> Value {
        let f = root["features"]
        let firstChannels = c.adjust(c.setting[0].inputChannels)
        var x = f[0].conv2dNormActivation(input, 3, firstChannels, stride: 2, epsilon: epsilon, activation: .hardswish)
        for (i, block) in c.setting.enumerated() { x = invertedResidual(f[i + 1], x, block, c) }
        let lastConvInput = c.adjust(c.setting[c.setting.count - 1].outChannels)
        let lastConvOutput = 6 * lastConvInput
        x = f[c.setting.count + 1].conv2dNormActivation(x, lastConvInput, lastConvOutput, kernel: 1, epsilon: epsilon, activation: .hardswish)
        x = root.flatten(root["avgpool"].adaptiveAvgPool2d(x, 1, 1))
        // classifier: Linear, Hardswish, Dropout (the identity at inference), Linear.
        let m = root["classifier"]
        let lastChannel = c.adjust(c.lastChannel)
        x = m[1].hardswish(m[0].linear(x, lastConvOutput, lastChannel))
        return m[3].linear(x, lastChannel, c.classes)
    }

    /// InvertedResidual: `block` = [1×1 expansion when the expanded width differs], depthwise k×k,
    /// [SqueezeExcitation(expanded, _make_divisible(expanded // 4, 8)), ReLU then Hardsigmoid], 1×1
    /// projection without activation; plus the input when stride 1 and the width is kept.
    static func invertedResidual(_ m: Module, _ x: Value, _ b: Block, _ c: Config) -> Value {
        let input = c.adjust(b.inputChannels), expanded = c.adjust(b.expandedChannels), out = c.adjust(b.outChannels)
        let activation: Activation = b.useHS ? .hardswish : .relu
        let layers = m["block"]
        var k = 0
        var y = x
        if expanded != input {
            y = layers[k].conv2dNormActivation(y, input, expanded, kernel: 1, epsilon: epsilon, activation: activation)
            k += 1
        }
        y = layers[k].conv2dNormActivation(y, expanded, expanded, kernel: b.kernel, stride: b.stride, groups: expanded,
                                           epsilon: epsilon, activation: activation)
        k += 1
        if b.useSE {
            y = layers[k].squeezeExcitation(y, expanded, squeezeChannels: makeDivisible(Double(expanded / 4), 8), scaleActivation: .hardsigmoid)
            k += 1
        }
        y = layers[k].conv2dNormActivation(y, expanded, out, kernel: 1, epsilon: epsilon, activation: nil)
        return b.stride == 1 && input == out ? m.add(y, x) : y
    }
}
