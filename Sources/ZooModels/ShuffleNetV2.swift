import ZooCore
import ZooOps

/// ShuffleNet V2 (Ma, Zhang, Zheng, Sun, "ShuffleNet V2: Practical Guidelines for Efficient CNN
/// Architecture Design", ECCV 2018, arXiv:1807.11164) as torchvision builds it:
/// torchvision/models/shufflenetv2.py. conv1 (3×3/2) and a 3×3/2 max pool, stages 2–4 of inverted
/// residual units (the first of each stride 2, both branches; the others split the channels in two
/// and transform one half), each followed by a channel shuffle of two groups, conv5 (1×1), the
/// spatial mean and `fc`. Takes any input size.
enum ShuffleNetV2: ModelFamily {
    struct Config: FamilyConfig {
        /// Units in stage2…stage4.
        var stagesRepeats: [Int]
        /// Output channels of conv1, stage2…stage4 and conv5.
        var stagesOutChannels: [Int]
        var classes = 1000
        var description: String {
            "units \(stagesRepeats.map(String.init).joined(separator: "-")), channels "
                + stagesOutChannels.map(String.init).joined(separator: "-") + ", \(classes) classes"
        }
    }

    static let name = "shufflenet_v2"
    static let source = "Ma et al. 2018 (arXiv:1807.11164); torchvision/models/shufflenetv2.py"
    static let classifier = "fc.weight"
    static let variants: [(name: String, config: Config, transform: EvaluationTransform)] = [
        ("shufflenet_v2_x0_5", Config(stagesRepeats: [4, 8, 4], stagesOutChannels: [24, 48, 96, 192, 1024]), .standard),
        ("shufflenet_v2_x1_0", Config(stagesRepeats: [4, 8, 4], stagesOutChannels: [24, 116, 232, 464, 1024]), .standard),
        ("shufflenet_v2_x1_5", Config(stagesRepeats: [4, 8, 4], stagesOutChannels: [24, 176, 352, 704, 1024]),
         EvaluationTransform(resize: 232, crop: 224)),
        ("shufflenet_v2_x2_0", Config(stagesRepeats: [4, 8, 4], stagesOutChannels: [24, 244, 488, 976, 2048]),
         EvaluationTransform(resize: 232, crop: 224)),
    ]

    static func build(_ root: Module, _ input: Value, _ c: Config) -> Value {
        let widths = c.stagesOutChannels
        var x = root["conv1"].conv2dNormActivation(input, 3, widths[0], kernel: 3, stride: 2)
        x = root["maxpool"].maxPool2d(x, kernel: 3, stride: 2, padding: 1)
        var channels = widths[0]
        for (i, repeats) in c.stagesRepeats.enumerated() {
            let stage = root["stage\(i + 2)"]
            for u in 0..<repeats {
                x = invertedResidual(stage[u], x, inp: channels, oup: widths[i + 1], stride: u == 0 ? 2 : 1)
                channels = widths[i + 1]
            }
        }
        x = root["conv5"].conv2dNormActivation(x, channels, widths[4], kernel: 1)
        // x.mean([2, 3]): the global average, flattened.
        x = root.flatten(root.node(Op.GlobalAveragePool(), [x], function: "mean"))
        return root["fc"].linear(x, widths[4], c.classes)
    }

    /// InvertedResidual: stride 1 splits the input in two (`chunk(2, dim=1)`) and concatenates the
    /// first half with `branch2` of the second; stride 2 concatenates `branch1` and `branch2` of the
    /// whole input. Then the channel shuffle. branch1: depthwise 3×3, BN, 1×1, BN, ReLU; branch2:
    /// 1×1, BN, ReLU, depthwise 3×3, BN, 1×1, BN, ReLU (convolutions without bias).
    static func invertedResidual(_ m: Module, _ x: Value, inp: Int, oup: Int, stride: Int) -> Value {
        let features = oup / 2
        func branch2(_ x: Value, _ inChannels: Int) -> Value {
            let b = m["branch2"]
            var y = b[2].relu(b[1].batchNorm2d(b[0].conv2d(x, inChannels, features, kernel: 1, bias: false), features))
            y = b[4].batchNorm2d(b[3].conv2d(y, features, features, kernel: 3, stride: stride, padding: 1, groups: features, bias: false), features)
            return b[7].relu(b[6].batchNorm2d(b[5].conv2d(y, features, features, kernel: 1, bias: false), features))
        }
        let out: Value
        if stride == 1 {
            let halves = m.nodes(Op.Split(axis: 1, sizes: [features, features]), [x], outputs: 2, function: "chunk")
            out = m.cat([halves[0], branch2(halves[1], features)], axis: 1)
        } else {
            let b = m["branch1"]
            var y = b[1].batchNorm2d(b[0].conv2d(x, inp, inp, kernel: 3, stride: stride, padding: 1, groups: inp, bias: false), inp)
            y = b[4].relu(b[3].batchNorm2d(b[2].conv2d(y, inp, features, kernel: 1, bias: false), features))
            out = m.cat([y, branch2(x, inp)], axis: 1)
        }
        return channelShuffle(m, out, channels: 2 * features, groups: 2)
    }

    /// channel_shuffle: view [N, groups, C / groups, H, W], swap dimensions 1 and 2, view [N, C, H, W].
    /// Height and width are kept merged ([N, groups, C / groups, H·W], the same memory) and the result
    /// takes the input's own shape, so the graph runs at any input size with a symbolic batch.
    static func channelShuffle(_ m: Module, _ x: Value, channels: Int, groups: Int) -> Value {
        let shape = m.node(Op.Shape(), [x], function: "shape")
        var y = m.reshape(x, [0, groups, channels / groups, -1], function: "view")
        y = m.permute(y, [0, 2, 1, 3], function: "transpose")
        return m.node(Op.Reshape(shape: nil), [y, shape], function: "shuffle")
    }
}
