import ZooCore
import ZooOps

/// EfficientNet (Tan, Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks",
/// ICML 2019, arXiv:1905.11946) and EfficientNetV2 (Tan, Le, "EfficientNetV2: Smaller Models and
/// Faster Training", ICML 2021, arXiv:2104.00298) as torchvision builds them:
/// torchvision/models/efficientnet.py. A 3×3/2 Conv-BN-SiLU stem, stages of MBConv (1×1 expansion,
/// depthwise k×k, squeeze-and-excitation with SiLU and sigmoid, linear 1×1 projection) or, in V2's
/// first stages, FusedMBConv (k×k expansion, linear 1×1 projection) blocks, the input added when
/// the shape is kept (stochastic depth is the identity at inference), a 1×1 Conv-BN-SiLU head, the
/// global average and `classifier.1` (after Dropout). B0–B7 scale B0's table by width and depth
/// multipliers. Takes any input size; each variant's default is its weights' crop.
enum EfficientNet: ModelFamily {
    enum BlockType: String, Sendable { case mbConv = "MBConv", fusedMBConv = "FusedMBConv" }

    /// One row of the stage table (MBConvConfig / FusedMBConvConfig), before the multipliers.
    struct Stage: Equatable, Sendable {
        var block: BlockType
        var expandRatio: Double
        var kernel: Int
        var stride: Int
        var inputChannels: Int
        var outChannels: Int
        var layers: Int
    }

    struct Config: FamilyConfig {
        var stages: [Stage]
        /// Channels scale by `widthMult` (rounded by _make_divisible to multiples of 8), layers by
        /// `depthMult` (rounded up); MBConv rows only, as MBConvConfig does.
        var widthMult = 1.0
        var depthMult = 1.0
        /// The head's width; nil: 4 × the last stage's.
        var lastChannel: Int?
        /// BatchNorm eps: 1e-5 for B0–B4, 0.001 for B5–B7 and V2.
        var epsilon: Float = 1e-5
        var classes = 1000
        var description: String {
            "width \(widthMult), depth \(depthMult), stages " + resolved.map { String($0.layers) }.joined(separator: "-")
                + ", \(classes) classes"
        }

        /// The stages as built: channels and layers after the multipliers.
        var resolved: [Stage] {
            stages.map { s in
                guard s.block == .mbConv else { return s }
                var r = s
                r.inputChannels = adjustChannels(s.inputChannels, widthMult)
                r.outChannels = adjustChannels(s.outChannels, widthMult)
                r.layers = Int((Double(s.layers) * depthMult).rounded(.up))
                return r
            }
        }
    }

    /// _MBConvConfig.adjust_channels.
    static func adjustChannels(_ channels: Int, _ widthMult: Double) -> Int { makeDivisible(Double(channels) * widthMult, 8) }

    static let name = "efficientnet"
    static let source = "Tan & Le 2019 (arXiv:1905.11946), EfficientNetV2 Tan & Le 2021 (arXiv:2104.00298); torchvision/models/efficientnet.py"
    static let classifier = "classifier.1.weight"

    /// (block, expand_ratio, kernel, stride, input_channels, out_channels, num_layers) as _efficientnet_conf lists them.
    private static func table(_ rows: [(BlockType, Double, Int, Int, Int, Int, Int)]) -> [Stage] {
        rows.map { Stage(block: $0.0, expandRatio: $0.1, kernel: $0.2, stride: $0.3, inputChannels: $0.4, outChannels: $0.5, layers: $0.6) }
    }
    static let v1 = table([
        (.mbConv, 1, 3, 1, 32, 16, 1), (.mbConv, 6, 3, 2, 16, 24, 2), (.mbConv, 6, 5, 2, 24, 40, 2), (.mbConv, 6, 3, 2, 40, 80, 3),
        (.mbConv, 6, 5, 1, 80, 112, 3), (.mbConv, 6, 5, 2, 112, 192, 4), (.mbConv, 6, 3, 1, 192, 320, 1),
    ])
    static let v2s = table([
        (.fusedMBConv, 1, 3, 1, 24, 24, 2), (.fusedMBConv, 4, 3, 2, 24, 48, 4), (.fusedMBConv, 4, 3, 2, 48, 64, 4),
        (.mbConv, 4, 3, 2, 64, 128, 6), (.mbConv, 6, 3, 1, 128, 160, 9), (.mbConv, 6, 3, 2, 160, 256, 15),
    ])
    static let v2m = table([
        (.fusedMBConv, 1, 3, 1, 24, 24, 3), (.fusedMBConv, 4, 3, 2, 24, 48, 5), (.fusedMBConv, 4, 3, 2, 48, 80, 5),
        (.mbConv, 4, 3, 2, 80, 160, 7), (.mbConv, 6, 3, 1, 160, 176, 14), (.mbConv, 6, 3, 2, 176, 304, 18),
        (.mbConv, 6, 3, 1, 304, 512, 5),
    ])
    static let v2l = table([
        (.fusedMBConv, 1, 3, 1, 32, 32, 4), (.fusedMBConv, 4, 3, 2, 32, 64, 7), (.fusedMBConv, 4, 3, 2, 64, 96, 7),
        (.mbConv, 4, 3, 2, 96, 192, 10), (.mbConv, 6, 3, 1, 192, 224, 19), (.mbConv, 6, 3, 2, 224, 384, 25),
        (.mbConv, 6, 3, 1, 384, 640, 7),
    ])

    static let variants: [(name: String, config: Config, transform: EvaluationTransform)] = [
        ("efficientnet_b0", Config(stages: v1, widthMult: 1.0, depthMult: 1.0), EvaluationTransform(resize: 256, crop: 224, .bicubic)),
        ("efficientnet_b1", Config(stages: v1, widthMult: 1.0, depthMult: 1.1), EvaluationTransform(resize: 255, crop: 240)),
        ("efficientnet_b2", Config(stages: v1, widthMult: 1.1, depthMult: 1.2), EvaluationTransform(resize: 288, crop: 288, .bicubic)),
        ("efficientnet_b3", Config(stages: v1, widthMult: 1.2, depthMult: 1.4), EvaluationTransform(resize: 320, crop: 300, .bicubic)),
        ("efficientnet_b4", Config(stages: v1, widthMult: 1.4, depthMult: 1.8), EvaluationTransform(resize: 384, crop: 380, .bicubic)),
        ("efficientnet_b5", Config(stages: v1, widthMult: 1.6, depthMult: 2.2, epsilon: 0.001),
         EvaluationTransform(resize: 456, crop: 456, .bicubic)),
        ("efficientnet_b6", Config(stages: v1, widthMult: 1.8, depthMult: 2.6, epsilon: 0.001),
         EvaluationTransform(resize: 528, crop: 528, .bicubic)),
        ("efficientnet_b7", Config(stages: v1, widthMult: 2.0, depthMult: 3.1, epsilon: 0.001),
         EvaluationTransform(resize: 600, crop: 600, .bicubic)),
        ("efficientnet_v2_s", Config(stages: v2s, lastChannel: 1280, epsilon: 0.001), EvaluationTransform(resize: 384, crop: 384)),
        ("efficientnet_v2_m", Config(stages: v2m, lastChannel: 1280, epsilon: 0.001), EvaluationTransform(resize: 480, crop: 480)),
        ("efficientnet_v2_l", Config(stages: v2l, lastChannel: 1280, epsilon: 0.001),
         EvaluationTransform(resize: 480, crop: 480, .bicubic, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5])),
    ]

    static func build(_ root: Module, _ input: Value, _ c: Config) -> Value {
        let stages = c.resolved
        let f = root["features"]
        var x = f[0].conv2dNormActivation(input, 3, stages[0].inputChannels, stride: 2, epsilon: c.epsilon, activation: .silu)
        for (i, stage) in stages.enumerated() {
            for b in 0..<stage.layers {
                // Every block after a stage's first takes its output width, stride 1.
                let inputChannels = b == 0 ? stage.inputChannels : stage.outChannels, stride = b == 0 ? stage.stride : 1
                x = (stage.block == .mbConv ? mbConv : fusedMBConv)(f[i + 1][b], x, stage, inputChannels, stride, c.epsilon)
            }
        }
        let lastInput = stages[stages.count - 1].outChannels
        let lastOutput = c.lastChannel ?? 4 * lastInput
        x = f[stages.count + 1].conv2dNormActivation(x, lastInput, lastOutput, kernel: 1, epsilon: c.epsilon, activation: .silu)
        x = root.flatten(root["avgpool"].adaptiveAvgPool2d(x, 1, 1))
        return root["classifier"][1].linear(x, lastOutput, c.classes)
    }

    /// MBConv: `block` = [1×1 expansion Conv-BN-SiLU when the expanded width differs], depthwise k×k
    /// Conv-BN-SiLU, SqueezeExcitation(expanded, max(1, input // 4), SiLU), 1×1 Conv-BN; plus the
    /// input when stride 1 and the width is kept.
    static func mbConv(_ m: Module, _ x: Value, _ s: Stage, _ input: Int, _ stride: Int, _ epsilon: Float) -> Value {
        let expanded = adjustChannels(input, s.expandRatio)
        let layers = m["block"]
        var k = 0
        var y = x
        if expanded != input {
            y = layers[k].conv2dNormActivation(y, input, expanded, kernel: 1, epsilon: epsilon, activation: .silu)
            k += 1
        }
        y = layers[k].conv2dNormActivation(y, expanded, expanded, kernel: s.kernel, stride: stride, groups: expanded,
                                           epsilon: epsilon, activation: .silu)
        y = layers[k + 1].squeezeExcitation(y, expanded, squeezeChannels: max(1, input / 4), activation: .silu)
        y = layers[k + 2].conv2dNormActivation(y, expanded, s.outChannels, kernel: 1, epsilon: epsilon, activation: nil)
        return stride == 1 && input == s.outChannels ? m.add(y, x) : y
    }

    /// FusedMBConv: `block` = k×k expansion Conv-BN-SiLU and 1×1 Conv-BN projection, or a single k×k
    /// Conv-BN-SiLU to the output when the expanded width equals the input's; plus the input when
    /// stride 1 and the width is kept.
    static func fusedMBConv(_ m: Module, _ x: Value, _ s: Stage, _ input: Int, _ stride: Int, _ epsilon: Float) -> Value {
        let expanded = adjustChannels(input, s.expandRatio)
        let layers = m["block"]
        var y: Value
        if expanded != input {
            y = layers[0].conv2dNormActivation(x, input, expanded, kernel: s.kernel, stride: stride, epsilon: epsilon, activation: .silu)
            y = layers[1].conv2dNormActivation(y, expanded, s.outChannels, kernel: 1, epsilon: epsilon, activation: nil)
        } else {
            y = layers[0].conv2dNormActivation(x, input, s.outChannels, kernel: s.kernel, stride: stride, epsilon: epsilon, activation: .silu)
        }
        return stride == 1 && input == s.outChannels ? m.add(y, x) : y
    }
}
