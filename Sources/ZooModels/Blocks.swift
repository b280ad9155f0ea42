import ZooCore
import ZooOps

/// The building blocks several torchvision families share: torchvision/ops/misc.py's
/// Conv2dNormActivation and SqueezeExcitation (with the activations torchvision passes to them),
/// _make_divisible, and the windowed attentions' relative position index.

/// An activation layer as torchvision's `activation_layer` arguments name it.
enum Activation: Sendable, Equatable {
    case relu, relu6, silu, hardswish, hardsigmoid, sigmoid, gelu

    func apply(_ m: Module, _ x: Value) -> Value {
        switch self {
        case .relu: m.relu(x)
        case .relu6: m.relu6(x)
        case .silu: m.silu(x)
        case .hardswish: m.hardswish(x)
        case .hardsigmoid: m.hardsigmoid(x)
        case .sigmoid: m.sigmoid(x)
        case .gelu: m.gelu(x)
        }
    }
}

extension Module {
    /// torchvision.ops.Conv2dNormActivation: `0` Conv2d (padding (k − 1) / 2 · dilation, bias only
    /// without a norm), `1` BatchNorm2d, `2` the activation (none when nil).
    func conv2dNormActivation(_ x: Value, _ inChannels: Int, _ outChannels: Int, kernel: Int = 3, stride: Int = 1,
                              groups: Int = 1, dilation: Int = 1, epsilon: Float = 1e-5, norm: Bool = true,
                              activation: Activation? = .relu) -> Value {
        var y = self[0].conv2d(x, inChannels, outChannels, kernel: kernel, stride: stride, padding: (kernel - 1) / 2 * dilation,
                               dilation: dilation, groups: groups, bias: !norm)
        if norm { y = self[1].batchNorm2d(y, outChannels, epsilon: epsilon) }
        if let activation { y = activation.apply(self[norm ? 2 : 1], y) }
        return y
    }

    /// torchvision.ops.SqueezeExcitation: x · scale(fc2(act(fc1(avgpool(x))))), fc1 / fc2 1×1
    /// convolutions with bias (`avgpool`, `fc1`, `activation`, `fc2`, `scale_activation`).
    func squeezeExcitation(_ x: Value, _ channels: Int, squeezeChannels: Int, activation: Activation = .relu,
                           scaleActivation: Activation = .sigmoid) -> Value {
        var s = self["avgpool"].adaptiveAvgPool2d(x, 1, 1)
        s = activation.apply(self["activation"], self["fc1"].conv2d(s, channels, squeezeChannels, kernel: 1))
        s = scaleActivation.apply(self["scale_activation"], self["fc2"].conv2d(s, squeezeChannels, channels, kernel: 1))
        return mul(s, x)
    }
}

/// torchvision's `_make_divisible` (torchvision/models/_utils.py, from TensorFlow's MobileNet): `v`
/// rounded to the nearest multiple of `divisor`, at least `minValue` (default `divisor`), and not
/// below 90 % of `v`. MobileNetV2 / V3, EfficientNet and RegNet size their channels with it.
func makeDivisible(_ v: Double, _ divisor: Int, minValue: Int? = nil) -> Int {
    var rounded = max(minValue ?? divisor, Int(v + Double(divisor) / 2) / divisor * divisor)
    if Double(rounded) < 0.9 * v { rounded += divisor }
    return rounded
}

/// The relative position index of a window's tokens (Swin's define_relative_position_index, MaxViT's
/// _get_relative_position_index): for tokens i, j of a `window` × `window` window in row-major order,
/// (h_i − h_j + window − 1) · (2·window − 1) + (w_i − w_j + window − 1), over (i, j) row-major.
func relativePositionIndex(_ window: Int) -> [Int] {
    let tokens = window * window
    return (0..<tokens * tokens).map { k in
        let (i, j) = (k / tokens, k % tokens)
        return (i / window - j / window + window - 1) * (2 * window - 1) + (i % window - j % window + window - 1)
    }
}
