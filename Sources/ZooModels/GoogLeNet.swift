import ZooCore
import ZooOps

/// GoogLeNet, Inception v1 (Szegedy et al., "Going Deeper with Convolutions", CVPR 2015,
/// arXiv:1409.4842) as torchvision builds it: torchvision/models/googlenet.py. BasicConv2d stem
/// (7×7/2, 1×1, 3×3) with ceil-mode max pools, nine Inception modules (1×1 | 1×1→3×3 | 1×1→3×3 |
/// 3×3 max pool→1×1; torchvision's "5×5" branch is a 3×3), global average and `fc`. Takes any input
/// ≥ 15×15.
///
/// Two things a state dict does not say are settled here. The auxiliary classifiers `aux1` / `aux2`
/// (in torchvision's default build and in the pretrained file, never run at inference) are in the
/// layout when the state dict has them (`fitted(_:to:)`). `transform_input` re-normalizes the
/// ImageNet-normalized input to the [-1, 1] scaling Google's weights were trained with: torchvision
/// turns it on when it loads those weights, so it is on unless `BuildOptions.transformInput` is false.
enum GoogLeNet: ModelFamily {
    /// GoogLeNet's and Inception v3's options.
    struct Config: FamilyConfig {
        /// The auxiliary classifiers (GoogLeNet's aux1 and aux2, Inception v3's AuxLogits) are in the
        /// state dict: declared, not run.
        var auxLogits = true
        /// Apply `_transform_input` to the input first.
        var transformInput = true
        var classes = 1000
        var description: String { "\(classes) classes" + (auxLogits ? ", aux heads (unused)" : "") }
    }

    /// One module between conv3's pool and the average pool, in torchvision's order.
    enum Layer: Equatable, Sendable {
        /// Inception(in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj); in_channels
        /// follow from the previous module.
        case inception(String, ch1x1: Int, ch3x3red: Int, ch3x3: Int, ch5x5red: Int, ch5x5: Int, poolProj: Int)
        /// MaxPool2d(kernel, stride 2, ceil_mode=True).
        case maxPool(String, kernel: Int)
    }

    static let layers: [Layer] = [
        .inception("inception3a", ch1x1: 64, ch3x3red: 96, ch3x3: 128, ch5x5red: 16, ch5x5: 32, poolProj: 32),
        .inception("inception3b", ch1x1: 128, ch3x3red: 128, ch3x3: 192, ch5x5red: 32, ch5x5: 96, poolProj: 64),
        .maxPool("maxpool3", kernel: 3),
        .inception("inception4a", ch1x1: 192, ch3x3red: 96, ch3x3: 208, ch5x5red: 16, ch5x5: 48, poolProj: 64),
        .inception("inception4b", ch1x1: 160, ch3x3red: 112, ch3x3: 224, ch5x5red: 24, ch5x5: 64, poolProj: 64),
        .inception("inception4c", ch1x1: 128, ch3x3red: 128, ch3x3: 256, ch5x5red: 24, ch5x5: 64, poolProj: 64),
        .inception("inception4d", ch1x1: 112, ch3x3red: 144, ch3x3: 288, ch5x5red: 32, ch5x5: 64, poolProj: 64),
        .inception("inception4e", ch1x1: 256, ch3x3red: 160, ch3x3: 320, ch5x5red: 32, ch5x5: 128, poolProj: 128),
        .maxPool("maxpool4", kernel: 2),
        .inception("inception5a", ch1x1: 256, ch3x3red: 160, ch3x3: 320, ch5x5red: 32, ch5x5: 128, poolProj: 128),
        .inception("inception5b", ch1x1: 384, ch3x3red: 192, ch3x3: 384, ch5x5red: 48, ch5x5: 128, poolProj: 128),
    ]

    static let name = "googlenet"
    static let source = "Szegedy et al. 2015 (arXiv:1409.4842); torchvision/models/googlenet.py"
    static let classifier = "fc.weight"
    static let note: String? = transformInputNote
    static let variants: [(name: String, config: Config, transform: EvaluationTransform)] = [
        ("googlenet", Config(), .standard),
    ]
    /// The classes from `fc`; the aux heads when the state dict has `aux1`.
    static func fitted(_ config: Config, to shapes: [String: [Int]]) -> Config {
        var c = fittingClasses(config, to: shapes)
        c.auxLogits = shapes["aux1.conv.conv.weight"] != nil
        return c
    }
    static func applying(_ options: BuildOptions, to config: Config) -> (Config, String?) {
        var c = config
        c.transformInput = options.transformInput ?? true
        return (c, c.transformInput ? "transform_input on" : "transform_input off")
    }

    /// What `zoo models` says about GoogLeNet and Inception v3.
    static let transformInputNote = "transform_input is on by default: torchvision sets it when it loads Google's pretrained weights, "
        + "which expect inputs rescaled to [-1, 1], and the state dict does not record it; --no-transform-input turns it off."

    static func build(_ root: Module, _ input: Value, _ c: Config) -> Value {
        var x = c.transformInput ? transformInput(root, input) : input
        x = basicConv2d(root["conv1"], x, 3, 64, kernel: 7, stride: 2, padding: 3)
        x = root["maxpool1"].maxPool2d(x, kernel: 3, stride: 2, ceilMode: true)
        x = basicConv2d(root["conv2"], x, 64, 64, kernel: 1)
        x = basicConv2d(root["conv3"], x, 64, 192, kernel: 3, padding: 1)
        x = root["maxpool2"].maxPool2d(x, kernel: 3, stride: 2, ceilMode: true)
        var channels = 192
        for layer in layers {
            switch layer {
            case let .inception(name, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, poolProj):
                x = inception(root[name], x, channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, poolProj)
                channels = ch1x1 + ch3x3 + ch5x5 + poolProj
            case let .maxPool(name, kernel):
                x = root[name].maxPool2d(x, kernel: kernel, stride: 2, ceilMode: true)
            }
        }
        if c.auxLogits {
            // Registered after inception5b (run on inception4a's and 4d's outputs, in training only).
            root["aux1"].declareOnly { inceptionAux($0, x, 512, c.classes) }
            root["aux2"].declareOnly { inceptionAux($0, x, 528, c.classes) }
        }
        x = root.flatten(root["avgpool"].adaptiveAvgPool2d(x, 1, 1))
        return root["fc"].linear(x, channels, c.classes)
    }

    /// Inception: the four branches concatenated on channels.
    static func inception(_ m: Module, _ x: Value, _ inChannels: Int, _ ch1x1: Int, _ ch3x3red: Int, _ ch3x3: Int,
                          _ ch5x5red: Int, _ ch5x5: Int, _ poolProj: Int) -> Value {
        let branch1 = basicConv2d(m["branch1"], x, inChannels, ch1x1, kernel: 1)
        let b2 = m["branch2"], b3 = m["branch3"], b4 = m["branch4"]
        let branch2 = basicConv2d(b2[1], basicConv2d(b2[0], x, inChannels, ch3x3red, kernel: 1), ch3x3red, ch3x3, kernel: 3, padding: 1)
        let branch3 = basicConv2d(b3[1], basicConv2d(b3[0], x, inChannels, ch5x5red, kernel: 1), ch5x5red, ch5x5, kernel: 3, padding: 1)
        let pooled = b4[0].maxPool2d(x, kernel: 3, stride: 1, padding: 1, ceilMode: true)
        let branch4 = basicConv2d(b4[1], pooled, inChannels, poolProj, kernel: 1)
        return m.cat([branch1, branch2, branch3, branch4], axis: 1)
    }

    /// InceptionAux: adaptive average pool to 4×4, 1×1 BasicConv2d to 128, fc1 2048→1024, ReLU, fc2.
    static func inceptionAux(_ m: Module, _ x: Value, _ inChannels: Int, _ classes: Int) {
        var y = basicConv2d(m["conv"], m.adaptiveAvgPool2d(x, 4, 4), inChannels, 128, kernel: 1)
        y = m.relu(m["fc1"].linear(m.flatten(y), 2048, 1024))
        _ = m["fc2"].linear(y, 1024, classes)
    }

    /// BasicConv2d (GoogLeNet's and Inception v3's): `conv` without bias, `bn` with eps 0.001, ReLU.
    static func basicConv2d(_ m: Module, _ x: Value, _ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1,
                            padding: Int = 0) -> Value {
        basicConv2d(m, x, inChannels, outChannels, kernel: (kernel, kernel), stride: stride, padding: (padding, padding))
    }

    static func basicConv2d(_ m: Module, _ x: Value, _ inChannels: Int, _ outChannels: Int, kernel: (Int, Int), stride: Int = 1,
                            padding: (Int, Int)) -> Value {
        let y = m["conv"].conv2d(x, inChannels, outChannels, kernel: kernel, stride: stride, padding: padding, bias: false)
        return m.node(Op.Unary.relu, [m["bn"].batchNorm2d(y, outChannels, epsilon: 0.001)], function: "relu")
    }

    /// torchvision's `_transform_input` (GoogLeNet's and Inception v3's): channel c becomes
    /// x_c · (std_c / 0.5) + (mean_c − 0.5) / 0.5 with ImageNet's mean and std, undoing ImageNet
    /// normalization into the [-1, 1] scaling of Google's weights.
    static func transformInput(_ root: Module, _ x: Value) -> Value {
        let mean: [Double] = [0.485, 0.456, 0.406], std: [Double] = [0.229, 0.224, 0.225]
        let scale = root.constant("transform_input.scale", Tensor(floats: std.map { Float($0 / 0.5) }, shape: [1, 3, 1, 1]))
        let shift = root.constant("transform_input.shift", Tensor(floats: mean.map { Float(($0 - 0.5) / 0.5) }, shape: [1, 3, 1, 1]))
        return root.add(root.mul(x, scale, function: "transform_input.mul"), shift, function: "transform_input.add")
    }
}
