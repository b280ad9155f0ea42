import ZooCore
import ZooOps

/// DenseNet-BC (Huang, Liu, van der Maaten, Weinberger, "Densely Connected Convolutional Networks",
/// CVPR 2017, arXiv:1608.06993) as torchvision builds it: torchvision/models/densenet.py. A 7×7/2
/// stem and 3×3/2 max pool, dense blocks whose layers each see the concatenation of every earlier
/// output (BN, ReLU, 1×1 to bn_size · k, BN, ReLU, 3×3 to k), transitions (BN, ReLU, 1×1 halving the
/// channels, 2×2 average pool) between them, norm5, ReLU, global average and `classifier`.
/// Takes any input ≥ 29×29.
enum DenseNet: ModelFamily {
    struct Config: FamilyConfig {
        /// k: the channels each dense layer adds.
        var growthRate: Int
        /// Dense layers in each block.
        var blockConfig: [Int]
        var numInitFeatures: Int
        /// The bottleneck's width in multiples of k.
        var bnSize = 4
        var classes = 1000
        var description: String {
            "growth \(growthRate), blocks \(blockConfig.map(String.init).joined(separator: "-")), \(numInitFeatures) initial features"
                + (bnSize != 4 ? ", bottleneck \(bnSize)k" : "") + ", \(classes) classes"
        }
    }

    static let name = "densenet"
    static let source = "Huang et al. 2017 (arXiv:1608.06993); torchvision/models/densenet.py"
    static let classifier = "classifier.weight"
    static let variants: [(name: String, config: Config, transform: EvaluationTransform)] = [
        ("densenet121", Config(growthRate: 32, blockConfig: [6, 12, 24, 16], numInitFeatures: 64), .standard),
        ("densenet161", Config(growthRate: 48, blockConfig: [6, 12, 36, 24], numInitFeatures: 96), .standard),
        ("densenet169", Config(growthRate: 32, blockConfig: [6, 12, 32, 32], numInitFeatures: 64), .standard),
        ("densenet201", Config(growthRate: 32, blockConfig: [6, 12, 48, 32], numInitFeatures: 64), .standard),
    ]

    /// Any growth rate, block configuration, initial width and bottleneck width: the initial width
    /// from conv0, the blocks' layer counts from the keys, k from the first layer's 3×3 convolution,
    /// bn_size from its 1×1.
    static func customConfig(from shapes: [String: [Int]]) -> Config? {
        guard let classes = shapes[classifier]?.first, let conv0 = shapes["features.conv0.weight"],
              let conv1 = shapes["features.denseblock1.denselayer1.conv1.weight"],
              let conv2 = shapes["features.denseblock1.denselayer1.conv2.weight"], conv2[0] > 0 else { return nil }
        let blocks = (1...).prefix { shapes["features.denseblock\($0).denselayer1.conv1.weight"] != nil }.map { block in
            (1...).prefix { shapes["features.denseblock\(block).denselayer\($0).conv1.weight"] != nil }.count
        }
        return Config(growthRate: conv2[0], blockConfig: blocks, numInitFeatures: conv0[0], bnSize: max(1, conv1[0] / conv2[0]),
                      classes: classes)
    }

    /// torchvision's `_load_state_dict` rename for checkpoints saved before module names could not
    /// contain dots: `…denselayerN.norm.1.weight` → `…denselayerN.norm1.weight` (norm, relu, conv; 1,
    /// 2; weight, bias, running_mean, running_var). nil for any other key.
    static func legacyKeyName(_ key: String) -> String? {
        guard let match = key.wholeMatch(of: #/(.*denselayer\d+\.(?:norm|relu|conv))\.([12]\.(?:weight|bias|running_mean|running_var))/#)
        else { return nil }
        return String(match.output.1) + String(match.output.2)
    }

    static func build(_ root: Module, _ input: Value, _ c: Config) -> Value {
        let f = root["features"]
        var x = f["conv0"].conv2d(input, 3, c.numInitFeatures, kernel: 7, stride: 2, padding: 3, bias: false)
        x = f["relu0"].relu(f["norm0"].batchNorm2d(x, c.numInitFeatures))
        x = f["pool0"].maxPool2d(x, kernel: 3, stride: 2, padding: 1)
        var features = c.numInitFeatures
        for (i, layers) in c.blockConfig.enumerated() {
            x = denseBlock(f["denseblock\(i + 1)"], x, layers: layers, inputFeatures: features, c)
            features += layers * c.growthRate
            if i != c.blockConfig.count - 1 {
                let t = f["transition\(i + 1)"]
                x = t["relu"].relu(t["norm"].batchNorm2d(x, features))
                x = t["pool"].avgPool2d(t["conv"].conv2d(x, features, features / 2, kernel: 1, bias: false), kernel: 2, stride: 2)
                features /= 2
            }
        }
        x = f["norm5"].batchNorm2d(x, features)
        x = root.node(Op.Unary.relu, [x], function: "relu")
        x = root.flatten(root.node(Op.GlobalAveragePool(), [x], function: "adaptive_avg_pool2d"))
        return root["classifier"].linear(x, features, c.classes)
    }

    /// _DenseBlock: layer j (denselayer<j + 1>) reads the concatenation of the block's input and every
    /// earlier layer's output; the block returns the concatenation of all of them.
    static func denseBlock(_ m: Module, _ input: Value, layers: Int, inputFeatures: Int, _ c: Config) -> Value {
        var features = [input]
        for j in 0..<layers {
            let l = m["denselayer\(j + 1)"]
            let inChannels = inputFeatures + j * c.growthRate, width = c.bnSize * c.growthRate
            let concated = features.count == 1 ? input : l.cat(features, axis: 1)
            var y = l["conv1"].conv2d(l["relu1"].relu(l["norm1"].batchNorm2d(concated, inChannels)), inChannels, width, kernel: 1, bias: false)
            y = l["conv2"].conv2d(l["relu2"].relu(l["norm2"].batchNorm2d(y, width)), width, c.growthRate, kernel: 3, padding: 1, bias: false)
            features.append(y)
        }
        return m.cat(features, axis: 1)
    }
}
