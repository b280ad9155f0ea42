import ZooCore
import ZooOps

/// ConvNeXt (Liu, Mao, Wu, Feichtenhofer, Darrell, Xie, "A ConvNet for the 2020s", CVPR 2022,
/// arXiv:2201.03545) as torchvision builds it: torchvision/models/convnext.py. A 4×4/4 patchify
/// stem with LayerNorm2d, four stages of CNBlocks (depthwise 7×7, LayerNorm, Linear 4×, GELU, Linear,
/// layer scale, residual) with LayerNorm2d + 2×2/2 convolution between them, global average,
/// LayerNorm2d, Flatten, Linear. Stochastic depth is the identity at inference. Takes any input ≥ 32.
enum ConvNeXt: ModelFamily {
    struct Config: FamilyConfig {
        /// Channels of each stage (CNBlockConfig.input_channels; the next stage's is its out_channels).
        var widths: [Int]
        /// CNBlocks in each stage.
        var depths: [Int]
        var classes = 1000
        var description: String {
            "widths \(widths.map(String.init).joined(separator: "-")), depths \(depths.map(String.init).joined(separator: "-")), \(classes) classes"
        }
    }

    static let name = "convnext"
    static let source = "Liu et al. 2022 (arXiv:2201.03545); torchvision/models/convnext.py"
    static let classifier = "classifier.2.weight"
    static let variants: [(name: String, config: Config, transform: EvaluationTransform)] = [
        ("convnext_tiny", Config(widths: [96, 192, 384, 768], depths: [3, 3, 9, 3]), EvaluationTransform(resize: 236, crop: 224)),
        ("convnext_small", Config(widths: [96, 192, 384, 768], depths: [3, 3, 27, 3]), EvaluationTransform(resize: 230, crop: 224)),
        ("convnext_base", Config(widths: [128, 256, 512, 1024], depths: [3, 3, 27, 3]), EvaluationTransform(resize: 232, crop: 224)),
        ("convnext_large", Config(widths: [192, 384, 768, 1536], depths: [3, 3, 27, 3]), EvaluationTransform(resize: 232, crop: 224)),
    ]

    /// Any widths and depths: stage i is `features.<2i + 1>`, its width from its first depthwise
    /// convolution, its depth from the keys.
    static func customConfig(from shapes: [String: [Int]]) -> Config? {
        guard let classes = shapes[classifier]?.first else { return nil }
        let stages = (0...).prefix { shapes["features.\(2 * $0 + 1).0.block.0.weight"] != nil }.map { 2 * $0 + 1 }
        guard !stages.isEmpty else { return nil }
        let widths = stages.map { shapes["features.\($0).0.block.0.weight"]![0] }
        let depths = stages.map { stage in (0...).prefix { shapes["features.\(stage).\($0).block.0.weight"] != nil }.count }
        return Config(widths: widths, depths: depths, classes: classes)
    }

    static func build(_ root: Module, _ input: Value, _ c: Config) -> Value {
        let f = root["features"]
        // Stem: Conv2dNormActivation(3, C, 4, stride 4, norm LayerNorm2d, no activation, bias).
        var x = f[0][1].layerNorm2d(f[0][0].conv2d(input, 3, c.widths[0], kernel: 4, stride: 4), c.widths[0])
        var index = 1
        for (i, (width, depth)) in zip(c.widths, c.depths).enumerated() {
            for b in 0..<depth { x = cnBlock(f[index][b], x, width) }
            index += 1
            if i + 1 < c.widths.count {
                // Downsampling: LayerNorm2d, Conv2d(C, C', 2, stride 2).
                let d = f[index]
                x = d[1].conv2d(d[0].layerNorm2d(x, width), width, c.widths[i + 1], kernel: 2, stride: 2)
                index += 1
            }
        }
        x = root["avgpool"].adaptiveAvgPool2d(x, 1, 1)
        let last = c.widths[c.widths.count - 1], head = root["classifier"]
        x = head.flatten(head[0].layerNorm2d(x, last))
        return head[2].linear(x, last, c.classes)
    }

    /// CNBlock: layer_scale · block(x) + x, block = depthwise 7×7, Permute to NHWC, LayerNorm
    /// (eps 1e-6), Linear 4×, GELU, Linear, Permute back.
    static func cnBlock(_ m: Module, _ x: Value, _ dim: Int) -> Value {
        let scale = m.parameter("layer_scale", [dim, 1, 1], .scale)
        let b = m["block"]
        var y = b[0].conv2d(x, dim, dim, kernel: 7, padding: 3, groups: dim)
        y = b[1].permute(y, [0, 2, 3, 1])
        y = b[2].layerNorm(y, dim, epsilon: 1e-6)
        y = b[4].gelu(b[3].linear(y, dim, 4 * dim, rank2: false))
        y = b[5].linear(y, 4 * dim, dim, rank2: false)
        y = b[6].permute(y, [0, 3, 1, 2])
        return m.add(m.mul(scale, y, function: "layer_scale"), x)
    }
}

private extension Module {
    /// convnext.LayerNorm2d (eps 1e-6): LayerNorm over the channels of [N, C, H, W], as permute to
    /// NHWC → LayerNorm → permute back.
    func layerNorm2d(_ x: Value, _ channels: Int) -> Value {
        let nhwc = permute(x, [0, 2, 3, 1], function: "to_nhwc")
        // The module's output (NCHW) is the node named after it.
        return node(Op.Transpose(perm: [0, 3, 1, 2]), [layerNorm(nhwc, channels, epsilon: 1e-6, function: "norm")])
    }
}
