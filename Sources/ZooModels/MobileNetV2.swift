import ZooCore
import ZooOps

/// MobileNetV2 (Sandler, Howard, Zhu, Zhmoginov, Chen, "MobileNetV2: Inverted Residuals and Linear
/// Bottlenecks", CVPR 2018, arXiv:1801.04381) as torchvision builds it: torchvision/models/mobilenetv2.py.
/// A 3×3/2 stem, stacks of inverted residuals (1×1 expansion, 3×3 depthwise, linear 1×1 projection,
/// ReLU6, the identity added when the shape is kept), a 1×1 convolution to 1280, the global average
/// and `classifier.1`. Takes any input size.
enum MobileNetV2: ModelFamily {
    /// One row of the inverted-residual setting (Table 2 of the paper).
    struct Stage: Equatable, Sendable {
        /// t: the expansion factor.
        var expandRatio: Int
        /// c: output channels before the width multiplier.
        var channels: Int
        /// n: blocks.
        var blocks: Int
        /// s: the first block's stride.
        var stride: Int
    }

    struct Config: FamilyConfig {
        var widthMult = 1.0
        var setting: [Stage]
        var roundNearest = 8
        var classes = 1000
        var description: String {
            "width \(widthMult), blocks " + setting.map { String($0.blocks) }.joined(separator: "-") + ", \(classes) classes"
        }
    }

    static let name = "mobilenet_v2"
    static let source = "Sandler et al. 2018 (arXiv:1801.04381); torchvision/models/mobilenetv2.py"
    static let classifier = "classifier.1.weight"
    /// torchvision's default inverted_residual_setting: t, c, n, s.
    static let setting = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
        .map { Stage(expandRatio: $0.0, channels: $0.1, blocks: $0.2, stride: $0.3) }
    static let variants: [(name: String, config: Config, transform: EvaluationTransform)] = [
        ("mobilenet_v2", Config(setting: setting), EvaluationTransform(resize: 232, crop: 224)),
    ]

    static func build(_ root: Module, _ input: Value, _ c: Config) -> Value {
        var inputChannel = makeDivisible(32 * c.widthMult, c.roundNearest)
        let lastChannel = makeDivisible(1280 * max(1, c.widthMult), c.roundNearest)
        let f = root["features"]
        var x = f[0].conv2dNormActivation(input, 3, inputChannel, stride: 2, activation: .relu6)
        var index = 1
        for stage in c.setting {
            let outputChannel = makeDivisible(Double(stage.channels) * c.widthMult, c.roundNearest)
            for i in 0..<stage.blocks {
                x = invertedResidual(f[index], x, inp: inputChannel, oup: outputChannel, stride: i == 0 ? stage.stride : 1,
                                     expandRatio: stage.expandRatio)
                inputChannel = outputChannel
                index += 1
            }
        }
        x = f[index].conv2dNormActivation(x, inputChannel, lastChannel, kernel: 1, activation: .relu6)
        // nn.functional.adaptive_avg_pool2d(x, (1, 1)), flattened.
        x = root.flatten(root.node(Op.GlobalAveragePool(), [x], function: "adaptive_avg_pool2d"))
        return root["classifier"][1].linear(x, lastChannel, c.classes)
    }

    /// InvertedResidual: `conv` = [1×1 expansion Conv-BN-ReLU6 when t ≠ 1], depthwise 3×3
    /// Conv-BN-ReLU6, 1×1 Conv2d, BatchNorm2d; plus the input when stride 1 and inp = oup.
    static func invertedResidual(_ m: Module, _ x: Value, inp: Int, oup: Int, stride: Int, expandRatio: Int) -> Value {
        let hidden = inp * expandRatio
        let conv = m["conv"]
        var y = x
        var k = 0
        if expandRatio != 1 {
            y = conv[k].conv2dNormActivation(y, inp, hidden, kernel: 1, activation: .relu6)
            k += 1
        }
        y = conv[k].conv2dNormActivation(y, hidden, hidden, stride: stride, groups: hidden, activation: .relu6)
        y = conv[k + 2].batchNorm2d(conv[k + 1].conv2d(y, hidden, oup, kernel: 1, bias: false), oup)
        return stride == 1 && inp == oup ? m.add(x, y) : y
    }
}
