import ZooCore
import ZooOps

/// MNASNet-B1 (Tan, Chen, Pang, Vasudevan, Sandler, Howard, Le, "MnasNet: Platform-Aware Neural
/// Architecture Search for Mobile", CVPR 2019, arXiv:1807.11626) as torchvision builds it:
/// torchvision/models/mnasnet.py (model version 2: the stem scales with alpha). `layers`: a 3×3/2
/// convolution, BN, ReLU (0–2), a depthwise separable convolution without skip (3–7), six stacks of
/// inverted residuals (8–13), a 1×1 convolution to 1280, BN, ReLU (14–16); the spatial mean;
/// `classifier` Dropout (identity at inference) and Linear (1). Every BatchNorm has eps 1e-5 (the
/// momentum only matters in training). Takes any input size.
enum MNASNet: ModelFamily {
    struct Config: FamilyConfig {
        /// The channels `_get_depths(alpha)` gives: the stem's two widths, then each stack's output.
        var depths: [Int]
        var classes = 1000
        var description: String { "channels \(depths.map(String.init).joined(separator: "-")), \(classes) classes" }
    }

    /// A `_stack` of `_InvertedResidual`s as MNASNet's `__init__` lists them.
    struct Stack {
        let kernel: Int, stride: Int, expansion: Int, repeats: Int
    }
    /// layers.8 … layers.13; stack i maps depths[i + 1] to depths[i + 2].
    static let stacks = [
        Stack(kernel: 3, stride: 2, expansion: 3, repeats: 3),
        Stack(kernel: 5, stride: 2, expansion: 3, repeats: 3),
        Stack(kernel: 5, stride: 2, expansion: 6, repeats: 3),
        Stack(kernel: 3, stride: 1, expansion: 6, repeats: 2),
        Stack(kernel: 5, stride: 2, expansion: 6, repeats: 4),
        Stack(kernel: 3, stride: 1, expansion: 6, repeats: 1),
    ]
    /// The width of the final 1×1 convolution (layers.14), fixed.
    static let lastChannels = 1280

    static let name = "mnasnet"
    static let source = "Tan et al. 2019 (arXiv:1807.11626); torchvision/models/mnasnet.py"
    static let classifier = "classifier.1.weight"
    static let variants: [(name: String, config: Config, transform: EvaluationTransform)] = [
        ("mnasnet0_5", Config(depths: getDepths(alpha: 0.5)), .standard),
        ("mnasnet0_75", Config(depths: getDepths(alpha: 0.75)), EvaluationTransform(resize: 232, crop: 224)),
        ("mnasnet1_0", Config(depths: getDepths(alpha: 1.0)), .standard),
        ("mnasnet1_3", Config(depths: getDepths(alpha: 1.3)), EvaluationTransform(resize: 232, crop: 224)),
    ]

    /// _get_depths: 32, 16, 24, 40, 80, 96, 192, 320 scaled by alpha, each through
    /// `_round_to_multiple_of(·, 8)`.
    static func getDepths(alpha: Double) -> [Int] {
        [32, 16, 24, 40, 80, 96, 192, 320].map { roundToMultipleOf(Double($0) * alpha, 8) }
    }

    /// _round_to_multiple_of (round_up_bias 0.9): the nearest multiple of `divisor` (at least
    /// `divisor`), one more multiple if that is below 90 % of `val`.
    static func roundToMultipleOf(_ val: Double, _ divisor: Int) -> Int {
        let rounded = max(divisor, Int(val + Double(divisor) / 2) / divisor * divisor)
        return Double(rounded) >= 0.9 * val ? rounded : rounded + divisor
    }

    /// Any channels: the stem's from layers.0 and layers.6, each stack's output from its first
    /// block's projection (layers.<8 + i>.0.layers.6). This also reads version-1 checkpoints (stem
    /// fixed at 32 and 16 whatever alpha), which torchvision patches its model to when it loads them.
    static func customConfig(from shapes: [String: [Int]]) -> Config? {
        guard let classes = shapes[classifier]?.first, let stem = shapes["layers.0.weight"], let separable = shapes["layers.6.weight"]
        else { return nil }
        var depths = [stem[0], separable[0]]
        for i in stacks.indices {
            guard let projection = shapes["layers.\(8 + i).0.layers.6.weight"] else { return nil }
            depths.append(projection[0])
        }
        return Config(depths: depths, classes: classes)
    }

    static func build(_ root: Module, _ input: Value, _ c: Config) -> Value {
        let l = root["layers"], d = c.depths
        var x = l[2].relu(l[1].batchNorm2d(l[0].conv2d(input, 3, d[0], kernel: 3, stride: 2, padding: 1, bias: false), d[0]))
        x = l[5].relu(l[4].batchNorm2d(l[3].conv2d(x, d[0], d[0], kernel: 3, padding: 1, groups: d[0], bias: false), d[0]))
        x = l[7].batchNorm2d(l[6].conv2d(x, d[0], d[1], kernel: 1, bias: false), d[1])
        for (i, s) in stacks.enumerated() {
            // _stack: the first block maps the width (and carries the stride), the others keep it.
            for b in 0..<s.repeats {
                x = invertedResidual(l[8 + i][b], x, inChannels: b == 0 ? d[i + 1] : d[i + 2], outChannels: d[i + 2],
                                     kernel: s.kernel, stride: b == 0 ? s.stride : 1, expansion: s.expansion)
            }
        }
        let last = d[d.count - 1]
        x = l[16].relu(l[15].batchNorm2d(l[14].conv2d(x, last, lastChannels, kernel: 1, bias: false), lastChannels))
        // x.mean([2, 3]): the global average, flattened.
        x = root.flatten(root.node(Op.GlobalAveragePool(), [x], function: "mean"))
        return root["classifier"][1].linear(x, lastChannels, c.classes)
    }

    /// _InvertedResidual: `layers` 1×1 to in · expansion, BN, ReLU; depthwise k×k/stride, BN, ReLU;
    /// 1×1 to out, BN; plus the input when the stride is 1 and in == out.
    static func invertedResidual(_ m: Module, _ x: Value, inChannels: Int, outChannels: Int, kernel: Int, stride: Int,
                                 expansion: Int) -> Value {
        let l = m["layers"], mid = inChannels * expansion
        var y = l[2].relu(l[1].batchNorm2d(l[0].conv2d(x, inChannels, mid, kernel: 1, bias: false), mid))
        y = l[5].relu(l[4].batchNorm2d(
            l[3].conv2d(y, mid, mid, kernel: kernel, stride: stride, padding: kernel / 2, groups: mid, bias: false), mid))
        y = l[7].batchNorm2d(l[6].conv2d(y, mid, outChannels, kernel: 1, bias: false), outChannels)
        return inChannels == outChannels && stride == 1 ? m.add(y, x) : y
    }
}
