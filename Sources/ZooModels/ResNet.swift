import ZooCore
import ZooOps

/// ResNet (He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition", CVPR 2016,
/// arXiv:1512.03385), ResNeXt (Xie et al., arXiv:1611.05431) and Wide ResNet (Zagoruyko, Komodakis,
/// arXiv:1605.07146) as torchvision builds them: torchvision/models/resnet.py (ResNet v1.5: the
/// stride sits on the bottleneck's 3×3 convolution).
enum ResNet: ModelFamily {
    enum Block: String, Sendable { case basic, bottleneck }

    struct Config: FamilyConfig {
        var block: Block
        /// Blocks in layer1…layer4.
        var layers: [Int]
        var groups = 1
        var widthPerGroup = 64
        var classes = 1000
        var description: String {
            "\(block.rawValue) blocks \(layers.map(String.init).joined(separator: "-"))"
                + (groups != 1 || widthPerGroup != 64 ? ", groups \(groups) × width \(widthPerGroup)" : "") + ", \(classes) classes"
        }
        var expansion: Int { block == .basic ? 1 : 4 }
    }

    static let name = "resnet"
    static let source = "He et al. 2016 (arXiv:1512.03385), ResNeXt (arXiv:1611.05431), Wide ResNet (arXiv:1605.07146); torchvision/models/resnet.py"
    static let classifier = "fc.weight"
    static let variants: [(name: String, config: Config, transform: EvaluationTransform)] = [
        ("resnet18", Config(block: .basic, layers: [2, 2, 2, 2]), .standard),
        ("resnet34", Config(block: .basic, layers: [3, 4, 6, 3]), .standard),
        ("resnet50", Config(block: .bottleneck, layers: [3, 4, 6, 3]), EvaluationTransform(resize: 232, crop: 224)),
        ("resnet101", Config(block: .bottleneck, layers: [3, 4, 23, 3]), EvaluationTransform(resize: 232, crop: 224)),
        ("resnet152", Config(block: .bottleneck, layers: [3, 8, 36, 3]), EvaluationTransform(resize: 232, crop: 224)),
        ("resnext50_32x4d", Config(block: .bottleneck, layers: [3, 4, 6, 3], groups: 32, widthPerGroup: 4), EvaluationTransform(resize: 232, crop: 224)),
        ("resnext101_32x8d", Config(block: .bottleneck, layers: [3, 4, 23, 3], groups: 32, widthPerGroup: 8), EvaluationTransform(resize: 232, crop: 224)),
        ("resnext101_64x4d", Config(block: .bottleneck, layers: [3, 4, 23, 3], groups: 64, widthPerGroup: 4), EvaluationTransform(resize: 232, crop: 224)),
        ("wide_resnet50_2", Config(block: .bottleneck, layers: [3, 4, 6, 3], widthPerGroup: 128), EvaluationTransform(resize: 232, crop: 224)),
        ("wide_resnet101_2", Config(block: .bottleneck, layers: [3, 4, 23, 3], widthPerGroup: 128), EvaluationTransform(resize: 232, crop: 224)),
    ]

    /// Any depth: the block type from `layer1.0.conv3`, blocks per layer from the keys, groups and
    /// width from layer1's 3×3 convolution.
    static func customConfig(from shapes: [String: [Int]]) -> Config? {
        guard let classes = shapes[classifier]?.first, let conv2 = shapes["layer1.0.conv2.weight"], conv2.count == 4 else { return nil }
        let block: Block = shapes["layer1.0.conv3.weight"] == nil ? .basic : .bottleneck
        let layers = (1...4).map { layer in (0...).prefix { shapes["layer\(layer).\($0).conv1.weight"] != nil }.count }
        guard layers.allSatisfy({ $0 > 0 }) else { return nil }
        guard block == .bottleneck else { return Config(block: .basic, layers: layers, classes: classes) }
        let width = conv2[0], groups = max(1, conv2[0] / max(conv2[1], 1))
        return Config(block: block, layers: layers, groups: groups, widthPerGroup: width / groups, classes: classes)
    }

    static func build(_ root: Module, _ input: Value, _ c: Config) -> Value {
        var x = root["relu"].relu(root["bn1"].batchNorm2d(root["conv1"].conv2d(input, 3, 64, kernel: 7, stride: 2, padding: 3, bias: false), 64))
        x = root["maxpool"].maxPool2d(x, kernel: 3, stride: 2, padding: 1)
        var inplanes = 64
        for (i, (planes, blocks)) in zip([64, 128, 256, 512], c.layers).enumerated() {
            let layer = root["layer\(i + 1)"]
            for b in 0..<blocks {
                let stride = i > 0 && b == 0 ? 2 : 1
                x = block(layer[b], x, c, inplanes: inplanes, planes: planes, stride: stride)
                inplanes = planes * c.expansion
            }
        }
        x = root.flatten(root["avgpool"].adaptiveAvgPool2d(x, 1, 1))
        return root["fc"].linear(x, 512 * c.expansion, c.classes)
    }

    /// BasicBlock (two 3×3) or Bottleneck (1×1, 3×3 grouped, 1×1), with the 1×1 projection
    /// `downsample` when the shape changes; the residual add, then ReLU.
    static func block(_ m: Module, _ x: Value, _ c: Config, inplanes: Int, planes: Int, stride: Int) -> Value {
        var out: Value
        let outplanes = planes * c.expansion
        switch c.block {
        case .basic:
            out = m["relu"].relu(m["bn1"].batchNorm2d(m["conv1"].conv2d(x, inplanes, planes, kernel: 3, stride: stride, padding: 1, bias: false), planes))
            out = m["bn2"].batchNorm2d(m["conv2"].conv2d(out, planes, planes, kernel: 3, padding: 1, bias: false), planes)
        case .bottleneck:
            let width = planes * c.widthPerGroup / 64 * c.groups
            out = m["relu"].relu(m["bn1"].batchNorm2d(m["conv1"].conv2d(x, inplanes, width, kernel: 1, bias: false), width))
            out = m["relu"].relu(m["bn2"].batchNorm2d(
                m["conv2"].conv2d(out, width, width, kernel: 3, stride: stride, padding: 1, groups: c.groups, bias: false), width))
            out = m["bn3"].batchNorm2d(m["conv3"].conv2d(out, width, outplanes, kernel: 1, bias: false), outplanes)
        }
        var identity = x
        if stride != 1 || inplanes != outplanes {
            let d = m["downsample"]
            identity = d[1].batchNorm2d(d[0].conv2d(x, inplanes, outplanes, kernel: 1, stride: stride, bias: false), outplanes)
        }
        return m["relu"].relu(m.add(out, identity))
    }
}
