import ZooCore
import ZooOps

/// Inception v3 (Szegedy, Vanhoucke, Ioffe, Shlens, Wojna, "Rethinking the Inception Architecture for
/// Computer Vision", CVPR 2016, arXiv:1512.00567) as torchvision builds it:
/// torchvision/models/inception.py. BasicConv2d stem, Inception A (Mixed_5b–5d), B (6a), C with
/// factorized 7×7 (6b–6e), D (7a), E with split 3×3 (7b, 7c), global average and `fc`. Defined for
/// 299×299, takes any input ≥ 75×75.
///
/// As for GoogLeNet: `AuxLogits` (after Mixed_6e, never run at inference) is in the layout when the
/// state dict has it (`fitted(_:to:)`), and `transform_input` is on unless `BuildOptions` says
/// otherwise (torchvision turns it on with Google's pretrained weights).
enum Inception3: ModelFamily {
    typealias Config = GoogLeNet.Config

    /// The kind of a Mixed_* module.
    enum Block: Equatable, Sendable {
        case a(poolFeatures: Int)
        case b
        case c(channels7x7: Int)
        case d
        case e
    }

    /// The Mixed_* modules in torchvision's order.
    static let blocks: [(name: String, block: Block)] = [
        ("Mixed_5b", .a(poolFeatures: 32)), ("Mixed_5c", .a(poolFeatures: 64)), ("Mixed_5d", .a(poolFeatures: 64)),
        ("Mixed_6a", .b),
        ("Mixed_6b", .c(channels7x7: 128)), ("Mixed_6c", .c(channels7x7: 160)), ("Mixed_6d", .c(channels7x7: 160)),
        ("Mixed_6e", .c(channels7x7: 192)),
        ("Mixed_7a", .d),
        ("Mixed_7b", .e), ("Mixed_7c", .e),
    ]

    static let name = "inception_v3"
    static let source = "Szegedy et al. 2016 (arXiv:1512.00567); torchvision/models/inception.py"
    static let classifier = "fc.weight"
    static let note: String? = GoogLeNet.transformInputNote
    static let variants: [(name: String, config: Config, transform: EvaluationTransform)] = [
        ("inception_v3", Config(), EvaluationTransform(resize: 342, crop: 299)),
    ]
    /// The classes from `fc`; the aux head when the state dict has `AuxLogits`.
    static func fitted(_ config: Config, to shapes: [String: [Int]]) -> Config {
        var c = fittingClasses(config, to: shapes)
        c.auxLogits = shapes["AuxLogits.conv0.conv.weight"] != nil
        return c
    }
    static func applying(_ options: BuildOptions, to config: Config) -> (Config, String?) { GoogLeNet.applying(options, to: config) }

    static func build(_ root: Module, _ input: Value, _ c: Config) -> Value {
        var x = c.transformInput ? GoogLeNet.transformInput(root, input) : input
        x = conv(root["Conv2d_1a_3x3"], x, 3, 32, kernel: 3, stride: 2)
        x = conv(root["Conv2d_2a_3x3"], x, 32, 32, kernel: 3)
        x = conv(root["Conv2d_2b_3x3"], x, 32, 64, kernel: 3, padding: 1)
        x = root["maxpool1"].maxPool2d(x, kernel: 3, stride: 2)
        x = conv(root["Conv2d_3b_1x1"], x, 64, 80, kernel: 1)
        x = conv(root["Conv2d_4a_3x3"], x, 80, 192, kernel: 3)
        x = root["maxpool2"].maxPool2d(x, kernel: 3, stride: 2)
        var channels = 192
        for (name, block) in blocks {
            let m = root[name]
            switch block {
            case let .a(poolFeatures): (x, channels) = (inceptionA(m, x, channels, poolFeatures), 224 + poolFeatures)
            case .b: (x, channels) = (inceptionB(m, x, channels), 480 + channels)
            case let .c(c7): (x, channels) = (inceptionC(m, x, channels, c7), 768)
            case .d: (x, channels) = (inceptionD(m, x, channels), 512 + channels)
            case .e: (x, channels) = (inceptionE(m, x, channels), 2048)
            }
            if name == "Mixed_6e", c.auxLogits {
                // Registered after Mixed_6e and run on its output, in training only.
                root["AuxLogits"].declareOnly { inceptionAux($0, x, channels, c.classes) }
            }
        }
        x = root.flatten(root["avgpool"].adaptiveAvgPool2d(x, 1, 1))
        return root["fc"].linear(x, channels, c.classes)
    }

    /// BasicConv2d (GoogLeNet's): conv without bias, BatchNorm with eps 0.001, ReLU.
    static func conv(_ m: Module, _ x: Value, _ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0) -> Value {
        GoogLeNet.basicConv2d(m, x, inChannels, outChannels, kernel: kernel, stride: stride, padding: padding)
    }

    static func conv(_ m: Module, _ x: Value, _ inChannels: Int, _ outChannels: Int, kernel: (Int, Int), padding: (Int, Int)) -> Value {
        GoogLeNet.basicConv2d(m, x, inChannels, outChannels, kernel: kernel, padding: padding)
    }

    /// F.avg_pool2d(x, 3, stride 1, padding 1), counting the padding (torch's default).
    static func avgPool3x3(_ m: Module, _ x: Value) -> Value {
        m.node(Op.AveragePool(Op.Pool(kernel: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], countIncludePad: true)), [x], function: "avg_pool2d")
    }

    /// F.max_pool2d(x, 3, stride 2).
    static func maxPool3x3(_ m: Module, _ x: Value) -> Value {
        m.node(Op.MaxPool(Op.Pool(kernel: [3, 3], strides: [2, 2])), [x], function: "max_pool2d")
    }

    /// InceptionA: 1×1 64 | 1×1 48 → 5×5 64 | 1×1 64 → 3×3 96 → 3×3 96 | avg pool → 1×1 pool_features.
    static func inceptionA(_ m: Module, _ x: Value, _ inChannels: Int, _ poolFeatures: Int) -> Value {
        let branch1x1 = conv(m["branch1x1"], x, inChannels, 64, kernel: 1)
        var branch5x5 = conv(m["branch5x5_1"], x, inChannels, 48, kernel: 1)
        branch5x5 = conv(m["branch5x5_2"], branch5x5, 48, 64, kernel: 5, padding: 2)
        var branch3x3dbl = conv(m["branch3x3dbl_1"], x, inChannels, 64, kernel: 1)
        branch3x3dbl = conv(m["branch3x3dbl_2"], branch3x3dbl, 64, 96, kernel: 3, padding: 1)
        branch3x3dbl = conv(m["branch3x3dbl_3"], branch3x3dbl, 96, 96, kernel: 3, padding: 1)
        let branchPool = conv(m["branch_pool"], avgPool3x3(m, x), inChannels, poolFeatures, kernel: 1)
        return m.cat([branch1x1, branch5x5, branch3x3dbl, branchPool], axis: 1)
    }

    /// InceptionB (grid reduction): 3×3/2 384 | 1×1 64 → 3×3 96 → 3×3/2 96 | 3×3/2 max pool.
    static func inceptionB(_ m: Module, _ x: Value, _ inChannels: Int) -> Value {
        let branch3x3 = conv(m["branch3x3"], x, inChannels, 384, kernel: 3, stride: 2)
        var branch3x3dbl = conv(m["branch3x3dbl_1"], x, inChannels, 64, kernel: 1)
        branch3x3dbl = conv(m["branch3x3dbl_2"], branch3x3dbl, 64, 96, kernel: 3, padding: 1)
        branch3x3dbl = conv(m["branch3x3dbl_3"], branch3x3dbl, 96, 96, kernel: 3, stride: 2)
        return m.cat([branch3x3, branch3x3dbl, maxPool3x3(m, x)], axis: 1)
    }

    /// InceptionC: 1×1 192 | 1×1 c7 → 1×7 → 7×1 192 | 1×1 c7 → 7×1 → 1×7 → 7×1 → 1×7 192 | avg pool → 1×1 192.
    static func inceptionC(_ m: Module, _ x: Value, _ inChannels: Int, _ c7: Int) -> Value {
        let branch1x1 = conv(m["branch1x1"], x, inChannels, 192, kernel: 1)
        var branch7x7 = conv(m["branch7x7_1"], x, inChannels, c7, kernel: 1)
        branch7x7 = conv(m["branch7x7_2"], branch7x7, c7, c7, kernel: (1, 7), padding: (0, 3))
        branch7x7 = conv(m["branch7x7_3"], branch7x7, c7, 192, kernel: (7, 1), padding: (3, 0))
        var branch7x7dbl = conv(m["branch7x7dbl_1"], x, inChannels, c7, kernel: 1)
        branch7x7dbl = conv(m["branch7x7dbl_2"], branch7x7dbl, c7, c7, kernel: (7, 1), padding: (3, 0))
        branch7x7dbl = conv(m["branch7x7dbl_3"], branch7x7dbl, c7, c7, kernel: (1, 7), padding: (0, 3))
        branch7x7dbl = conv(m["branch7x7dbl_4"], branch7x7dbl, c7, c7, kernel: (7, 1), padding: (3, 0))
        branch7x7dbl = conv(m["branch7x7dbl_5"], branch7x7dbl, c7, 192, kernel: (1, 7), padding: (0, 3))
        let branchPool = conv(m["branch_pool"], avgPool3x3(m, x), inChannels, 192, kernel: 1)
        return m.cat([branch1x1, branch7x7, branch7x7dbl, branchPool], axis: 1)
    }

    /// InceptionD (grid reduction): 1×1 192 → 3×3/2 320 | 1×1 192 → 1×7 → 7×1 → 3×3/2 192 | 3×3/2 max pool.
    static func inceptionD(_ m: Module, _ x: Value, _ inChannels: Int) -> Value {
        var branch3x3 = conv(m["branch3x3_1"], x, inChannels, 192, kernel: 1)
        branch3x3 = conv(m["branch3x3_2"], branch3x3, 192, 320, kernel: 3, stride: 2)
        var branch7x7x3 = conv(m["branch7x7x3_1"], x, inChannels, 192, kernel: 1)
        branch7x7x3 = conv(m["branch7x7x3_2"], branch7x7x3, 192, 192, kernel: (1, 7), padding: (0, 3))
        branch7x7x3 = conv(m["branch7x7x3_3"], branch7x7x3, 192, 192, kernel: (7, 1), padding: (3, 0))
        branch7x7x3 = conv(m["branch7x7x3_4"], branch7x7x3, 192, 192, kernel: 3, stride: 2)
        return m.cat([branch3x3, branch7x7x3, maxPool3x3(m, x)], axis: 1)
    }

    /// InceptionE: 1×1 320 | 1×1 384 → (1×3 384, 3×1 384) | 1×1 448 → 3×3 384 → (1×3 384, 3×1 384) |
    /// avg pool → 1×1 192; the split pairs concatenated, then everything.
    static func inceptionE(_ m: Module, _ x: Value, _ inChannels: Int) -> Value {
        let branch1x1 = conv(m["branch1x1"], x, inChannels, 320, kernel: 1)
        let branch3x3In = conv(m["branch3x3_1"], x, inChannels, 384, kernel: 1)
        let branch3x3 = m.cat([
            conv(m["branch3x3_2a"], branch3x3In, 384, 384, kernel: (1, 3), padding: (0, 1)),
            conv(m["branch3x3_2b"], branch3x3In, 384, 384, kernel: (3, 1), padding: (1, 0)),
        ], axis: 1, function: "cat_3x3")
        var branch3x3dblIn = conv(m["branch3x3dbl_1"], x, inChannels, 448, kernel: 1)
        branch3x3dblIn = conv(m["branch3x3dbl_2"], branch3x3dblIn, 448, 384, kernel: 3, padding: 1)
        let branch3x3dbl = m.cat([
            conv(m["branch3x3dbl_3a"], branch3x3dblIn, 384, 384, kernel: (1, 3), padding: (0, 1)),
            conv(m["branch3x3dbl_3b"], branch3x3dblIn, 384, 384, kernel: (3, 1), padding: (1, 0)),
        ], axis: 1, function: "cat_3x3dbl")
        let branchPool = conv(m["branch_pool"], avgPool3x3(m, x), inChannels, 192, kernel: 1)
        return m.cat([branch1x1, branch3x3, branch3x3dbl, branchPool], axis: 1)
    }

    /// InceptionAux: 5×5/3 average pool, 1×1 128 (conv0), 5×5 768 (conv1), global average, fc.
    static func inceptionAux(_ m: Module, _ x: Value, _ inChannels: Int, _ classes: Int) {
        var y = m.node(Op.AveragePool(Op.Pool(kernel: [5, 5], strides: [3, 3], countIncludePad: true)), [x], function: "avg_pool2d")
        y = conv(m["conv1"], conv(m["conv0"], y, inChannels, 128, kernel: 1), 128, 768, kernel: 5)
        _ = m["fc"].linear(m.flatten(m.adaptiveAvgPool2d(y, 1, 1)), 768, classes)
    }
}
