#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ZooCore
import ZooOps

/// RegNet (Radosavovic, Kosaraju, Girshick, He, Dollár, "Designing Network Design Spaces", CVPR
/// 2020, arXiv:2003.13678): RegNetX and RegNetY (with squeeze-and-excitation) as torchvision builds
/// them: torchvision/models/regnet.py. SimpleStemIN (3×3/2 conv, BN, ReLU to 32), four AnyStages of
/// ResBottleneckBlocks (1×1 `a`, 3×3 grouped `b` carrying the stage's stride, optional SE `se`, 1×1
/// `c` without activation; a 1×1/stride projection `proj` when the shape changes; add, ReLU), global
/// average, `fc`. The per-stage widths, depths and group widths come from the design-space
/// parameters (w_0, w_a, w_m, depth, group width) through `BlockParams.from_init_params`, ported in
/// `blockParams`. Takes any input size.
enum RegNet: ModelFamily {
    /// torchvision's BlockParams (every stage has stride 2) plus the stem width and classes.
    struct Config: FamilyConfig {
        /// ResBottleneckBlocks in each stage.
        var depths: [Int]
        /// Each stage's output width.
        var widths: [Int]
        /// Channels per group of each stage's 3×3 convolution.
        var groupWidths: [Int]
        /// The bottleneck width w_b = round(width · multiplier) (1 in every torchvision variant).
        var bottleneckMultiplier = 1.0
        /// SE squeeze channels = round(ratio · the block's input width); nil: no SE (RegNetX).
        var seRatio: Double?
        var stemWidth = 32
        var classes = 1000
        var description: String {
            func list(_ values: [Int]) -> String { values.map(String.init).joined(separator: "-") }
            let groups = Set(groupWidths).count == 1 ? "\(groupWidths[0])" : list(groupWidths)
            return "depths \(list(depths)), widths \(list(widths)), group width \(groups)"
                + (bottleneckMultiplier != 1 ? ", bottleneck \(bottleneckMultiplier)" : "")
                + (seRatio.map { ", SE \($0)" } ?? "") + (stemWidth != 32 ? ", stem \(stemWidth)" : "") + ", \(classes) classes"
        }
    }

    static let name = "regnet"
    static let source = "Radosavovic et al. 2020 (arXiv:2003.13678); torchvision/models/regnet.py"
    static let classifier = "fc.weight"
    /// torchvision's `regnet_*` builders' `from_init_params` arguments; every default weight is
    /// IMAGENET1K_V2 (resize 232, crop 224) except regnet_y_128gf's, IMAGENET1K_SWAG_E2E_V1 (384 bicubic).
    static let variants: [(name: String, config: Config, transform: EvaluationTransform)] = [
        ("regnet_y_400mf", blockParams(depth: 16, w0: 48, wa: 27.89, wm: 2.09, groupWidth: 8, seRatio: 0.25), v2),
        ("regnet_y_800mf", blockParams(depth: 14, w0: 56, wa: 38.84, wm: 2.4, groupWidth: 16, seRatio: 0.25), v2),
        ("regnet_y_1_6gf", blockParams(depth: 27, w0: 48, wa: 20.71, wm: 2.65, groupWidth: 24, seRatio: 0.25), v2),
        ("regnet_y_3_2gf", blockParams(depth: 21, w0: 80, wa: 42.63, wm: 2.66, groupWidth: 24, seRatio: 0.25), v2),
        ("regnet_y_8gf", blockParams(depth: 17, w0: 192, wa: 76.82, wm: 2.19, groupWidth: 56, seRatio: 0.25), v2),
        ("regnet_y_16gf", blockParams(depth: 18, w0: 200, wa: 106.23, wm: 2.48, groupWidth: 112, seRatio: 0.25), v2),
        ("regnet_y_32gf", blockParams(depth: 20, w0: 232, wa: 115.89, wm: 2.53, groupWidth: 232, seRatio: 0.25), v2),
        ("regnet_y_128gf", blockParams(depth: 27, w0: 456, wa: 160.83, wm: 2.52, groupWidth: 264, seRatio: 0.25),
         EvaluationTransform(resize: 384, crop: 384, .bicubic)),
        ("regnet_x_400mf", blockParams(depth: 22, w0: 24, wa: 24.48, wm: 2.54, groupWidth: 16), v2),
        ("regnet_x_800mf", blockParams(depth: 16, w0: 56, wa: 35.73, wm: 2.28, groupWidth: 16), v2),
        ("regnet_x_1_6gf", blockParams(depth: 18, w0: 80, wa: 34.01, wm: 2.25, groupWidth: 24), v2),
        ("regnet_x_3_2gf", blockParams(depth: 25, w0: 88, wa: 26.31, wm: 2.25, groupWidth: 48), v2),
        ("regnet_x_8gf", blockParams(depth: 23, w0: 80, wa: 49.56, wm: 2.88, groupWidth: 120), v2),
        ("regnet_x_16gf", blockParams(depth: 22, w0: 216, wa: 55.59, wm: 2.1, groupWidth: 128), v2),
        ("regnet_x_32gf", blockParams(depth: 23, w0: 320, wa: 69.86, wm: 2.0, groupWidth: 168), v2),
    ]
    private static let v2 = EvaluationTransform(resize: 232, crop: 224)

    /// BlockParams.from_init_params: block j's width w_0 + j · w_a, quantized in log space
    /// (capacity round(log(w / w_0) / log w_m), width w_0 · w_m^capacity rounded to a multiple of 8),
    /// consecutive equal widths forming a stage; then `_adjust_widths_groups_compatibilty`. The
    /// tensor arithmetic is torch's float32 (Python's floats, `math.log(w_m)`, are doubles cast to
    /// float32 as torch casts scalars) and torch.round rounds half to even: regnet_x_1_6gf's
    /// 80 · 2.25 / 8 is exactly 22.5, which goes to 22 (width 176, 168 after the adjustment; half
    /// away from zero would give 184, then 192).
    static func blockParams(depth: Int, w0: Int, wa: Double, wm: Double, groupWidth: Int, bottleneckMultiplier: Double = 1,
                            seRatio: Double? = nil) -> Config {
        precondition(wa >= 0 && w0 > 0 && wm > 1 && w0 % 8 == 0, "Invalid RegNet settings")
        let quant: Float = 8
        let blockWidths = (0..<depth).map { j -> Int in
            let widthCont = Float(j) * Float(wa) + Float(w0)
            let capacity = (log(widthCont / Float(w0)) / Float(log(wm))).rounded(.toNearestOrEven)
            return Int((Float(w0) * pow(Float(wm), capacity) / quant).rounded(.toNearestOrEven) * quant)
        }
        var stageWidths: [Int] = [], stageDepths: [Int] = []
        for width in blockWidths {
            if width == stageWidths.last { stageDepths[stageDepths.count - 1] += 1 } else {
                stageWidths.append(width)
                stageDepths.append(1)
            }
        }
        // _adjust_widths_groups_compatibilty: the bottleneck width made a multiple of the group width
        // (itself at most the bottleneck width).
        let bottleneckWidths = stageWidths.map { Int(Double($0) * bottleneckMultiplier) }
        let groupWidths = bottleneckWidths.map { min(groupWidth, $0) }
        let adjusted = zip(bottleneckWidths, groupWidths).map { makeDivisible(Double($0), $1) }
        return Config(depths: stageDepths, widths: adjusted.map { Int(Double($0) / bottleneckMultiplier) }, groupWidths: groupWidths,
                      bottleneckMultiplier: bottleneckMultiplier, seRatio: seRatio)
    }

    /// Any stage widths, depths and group widths (`trunk_output.block<i>`): each stage's width from
    /// its first block's `c`, its depth from the keys, its group width from `b`'s weight
    /// ([w_b, group width, 3, 3]), the bottleneck multiplier from the first block's w_b / width, the
    /// SE ratio from the first block's squeeze channels / its input (the stem) width.
    static func customConfig(from shapes: [String: [Int]]) -> Config? {
        guard let classes = shapes[classifier]?.first, let stem = shapes["stem.0.weight"], stem.count == 4 else { return nil }
        func block(_ stage: Int, _ index: Int) -> String { "trunk_output.block\(stage).block\(stage)-\(index).f" }
        let stages = Array((1...).prefix { shapes[block($0, 0) + ".c.0.weight"] != nil })
        guard !stages.isEmpty else { return nil }
        var depths: [Int] = [], widths: [Int] = [], groupWidths: [Int] = []
        for stage in stages {
            guard let c = shapes[block(stage, 0) + ".c.0.weight"], let b = shapes[block(stage, 0) + ".b.0.weight"], b.count == 4
            else { return nil }
            depths.append((0...).prefix { shapes[block(stage, $0) + ".c.0.weight"] != nil }.count)
            widths.append(c[0])
            groupWidths.append(b[1])
        }
        // Zero widths would divide by zero in the build (group counts are width / group width).
        guard let wb = shapes[block(1, 0) + ".b.0.weight"]?[0], wb > 0, stem[0] > 0,
              (widths + groupWidths).allSatisfy({ $0 > 0 }) else { return nil }
        let seRatio = shapes[block(1, 0) + ".se.fc1.weight"].map { Double($0[0]) / Double(stem[0]) }
        return Config(depths: depths, widths: widths, groupWidths: groupWidths, bottleneckMultiplier: Double(wb) / Double(widths[0]),
                      seRatio: seRatio, stemWidth: stem[0], classes: classes)
    }

    static func build(_ root: Module, _ input: Value, _ c: Config) -> Value {
        var x = root["stem"].conv2dNormActivation(input, 3, c.stemWidth, kernel: 3, stride: 2)
        var width = c.stemWidth
        for (i, (depth, widthOut)) in zip(c.depths, c.widths).enumerated() {
            let stage = root["trunk_output"]["block\(i + 1)"]
            for j in 0..<depth {
                x = resBottleneckBlock(stage["block\(i + 1)-\(j)"], x, c, widthIn: j == 0 ? width : widthOut, widthOut: widthOut,
                                       stride: j == 0 ? 2 : 1, groupWidth: c.groupWidths[i])
            }
            width = widthOut
        }
        x = root.flatten(root["avgpool"].adaptiveAvgPool2d(x, 1, 1))
        return root["fc"].linear(x, width, c.classes)
    }

    /// ResBottleneckBlock: ReLU(proj(x) + f(x)), proj (1×1/stride conv, BN) only when the width or
    /// the resolution changes, else x. f = BottleneckTransform: `a` 1×1 to w_b, `b` 3×3/stride with
    /// w_b / group width groups, `se` (squeeze round(ratio · width_in), ReLU, sigmoid), `c` 1×1 to
    /// width_out without activation.
    static func resBottleneckBlock(_ m: Module, _ x: Value, _ c: Config, widthIn: Int, widthOut: Int, stride: Int,
                                   groupWidth: Int) -> Value {
        var shortcut = x
        if widthIn != widthOut || stride != 1 {
            shortcut = m["proj"].conv2dNormActivation(x, widthIn, widthOut, kernel: 1, stride: stride, activation: nil)
        }
        let f = m["f"]
        let wb = Int((Double(widthOut) * c.bottleneckMultiplier).rounded(.toNearestOrEven))
        var y = f["a"].conv2dNormActivation(x, widthIn, wb, kernel: 1)
        y = f["b"].conv2dNormActivation(y, wb, wb, kernel: 3, stride: stride, groups: wb / groupWidth)
        if let seRatio = c.seRatio, seRatio != 0 {
            y = f["se"].squeezeExcitation(y, wb, squeezeChannels: Int((seRatio * Double(widthIn)).rounded(.toNearestOrEven)))
        }
        y = f["c"].conv2dNormActivation(y, wb, widthOut, kernel: 1, activation: nil)
        return m["activation"].relu(m.add(shortcut, y))
    }
}
