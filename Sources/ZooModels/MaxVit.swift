import ZooCore
import ZooOps
#if canImport(Glibc)
import Glibc
#endif

/// MaxViT (Tu, Talebi, Zhang, Yang, Milanfar, Bovik, Li, "MaxViT: Multi-Axis Vision Transformer",
/// ECCV 2022, arXiv:2204.01697) as torchvision builds it: torchvision/models/maxvit.py. A two-conv
/// stem (3×3/2 with BatchNorm 1e-3 and GELU, 3×3 with bias), then blocks of MaxVit layers: MBConv
/// (pre-norm BatchNorm, 1×1 expand, depthwise 3×3, squeeze-excitation with SiLU, 1×1 project; the
/// first layer of a block strides 2 and its shortcut is AvgPool 3×3/2 + 1×1), window attention and
/// grid attention over partition_size² tokens with a relative position bias, each followed by an MLP;
/// global average, LayerNorm, Linear, Tanh, Linear (no bias).
///
/// The partitions are fixed by the input size (torchvision takes `input_size` when it builds the
/// model); every block's input must be a multiple of the partition size (224: 56, 28, 14, 7).
enum MaxVit: ModelFamily {
    struct Config: FamilyConfig {
        var stemChannels: Int
        var blockChannels: [Int]
        var blockLayers: [Int]
        var headDim: Int
        var partitionSize: Int
        var classes = 1000
        var description: String {
            "stem \(stemChannels), channels \(blockChannels.map(String.init).joined(separator: "-")), "
                + "layers \(blockLayers.map(String.init).joined(separator: "-")), head dim \(headDim), partition \(partitionSize), \(classes) classes"
        }
    }

    static let name = "maxvit"
    static let source = "Tu et al. 2022 (arXiv:2204.01697); torchvision/models/maxvit.py"
    static let classifier = "classifier.5.weight"
    static let variants: [(name: String, config: Config, transform: EvaluationTransform)] = [
        ("maxvit_t", Config(stemChannels: 64, blockChannels: [64, 128, 256, 512], blockLayers: [2, 2, 5, 2], headDim: 32, partitionSize: 7),
         EvaluationTransform(resize: 224, crop: 224, .bicubic)),
    ]
    static let note: String? = """
        Window and grid partitions depend on the input size (torchvision's input_size, 224 by default): zoo run \
        and parity build the graph again for each square input size whose blocks divide into partitions.
        """

    /// Any widths, depths, head dimension and partition size: block i's width and depth from its
    /// keys, heads from the first bias table's columns, the partition size from its rows ((2p − 1)²).
    static func customConfig(from shapes: [String: [Int]]) -> Config? {
        guard let classes = shapes[classifier]?.first, let stem = shapes["stem.0.0.weight"] else { return nil }
        let layer = { (block: Int, layer: Int) in "blocks.\(block).layers.\(layer).layers." }
        let blocks = (0...).prefix { shapes[layer($0, 0) + "MBconv.layers.conv_c.weight"] != nil }
        guard !blocks.isEmpty, let table = shapes[layer(0, 0) + "window_attention.attn_layer.1.relative_position_bias_table"],
              table.count == 2, table[1] > 0 else { return nil }
        let channels = blocks.map { shapes[layer($0, 0) + "MBconv.layers.conv_c.weight"]![0] }
        let layers = blocks.map { block in (0...).prefix { shapes[layer(block, $0) + "MBconv.layers.conv_c.weight"] != nil }.count }
        // Partitions are 7 in torchvision; a bound keeps a hostile shape from sizing the index buffers.
        let side = Int(Double(table[0]).squareRoot().rounded())
        guard (3...127).contains(side), side * side == table[0], side % 2 == 1 else { return nil }
        // Heads must divide every block's width (the build splits channels into heads of headDim).
        let headDim = channels[0] / table[1]
        guard headDim > 0, channels.allSatisfy({ $0 > 0 && $0 % headDim == 0 }) else { return nil }
        return Config(stemChannels: stem[0], blockChannels: channels, blockLayers: layers, headDim: headDim,
                      partitionSize: (side + 1) / 2, classes: classes)
    }

    static func build(_ root: Module, _ input: Value, _ c: Config) -> Value {
        let stem = root["stem"]
        var x = stem[0].conv2dNormActivation(input, 3, c.stemChannels, stride: 2, epsilon: 1e-3, activation: .gelu)
        x = stem[1].conv2dNormActivation(x, c.stemChannels, c.stemChannels, norm: false, activation: nil)
        // _get_conv_output_shape(…, 3, 2, 1): the stem's and each block's first stride.
        var size = (root.inputSize - 1) / 2 + 1
        var inChannels = c.stemChannels
        for (i, (channels, layers)) in zip(c.blockChannels, c.blockLayers).enumerated() {
            size = (size - 1) / 2 + 1
            for l in 0..<layers {
                let m = root["blocks"][i]["layers"][l]["layers"]
                x = mbConv(m["MBconv"], x, l == 0 ? inChannels : channels, channels, stride: l == 0 ? 2 : 1)
                for (name, grid) in [("window_attention", false), ("grid_attention", true)] {
                    x = partitionAttention(m[name], x, c, channels: channels, size: size, grid: grid)
                }
            }
            inChannels = channels
        }
        let head = root["classifier"], last = inChannels
        x = head[1].node(Op.Flatten(axis: 1), [head[0].adaptiveAvgPool2d(x, 1, 1)])
        x = head[4].node(Op.Unary(.tanh), [head[3].linear(head[2].layerNorm(x, last), last, last)])
        return head[5].linear(x, last, c.classes, bias: false)
    }

    /// MBConv: proj(x) + layers(x); proj is AvgPool2d(3, 2, 1) + 1×1 conv when striding, a 1×1 conv
    /// when only the width changes, else the identity. layers: pre_norm (BatchNorm 1e-3), conv_a 1×1
    /// to 4× with BN + GELU, conv_b depthwise 3×3 with BN + GELU, squeeze_excitation (¼ width, SiLU),
    /// conv_c 1×1 with bias.
    static func mbConv(_ m: Module, _ x: Value, _ inChannels: Int, _ outChannels: Int, stride: Int) -> Value {
        var residual = x
        if stride != 1 || inChannels != outChannels {
            let p = m["proj"]
            if stride == 2 { residual = p[0].avgPool2d(residual, kernel: 3, stride: 2, padding: 1) }
            residual = p[stride == 2 ? 1 : 0].conv2d(residual, inChannels, outChannels, kernel: 1)
        }
        let l = m["layers"], mid = outChannels * 4
        var y = l["pre_norm"].batchNorm2d(x, inChannels, epsilon: 1e-3)
        y = l["conv_a"].conv2dNormActivation(y, inChannels, mid, kernel: 1, epsilon: 1e-3, activation: .gelu)
        y = l["conv_b"].conv2dNormActivation(y, mid, mid, stride: stride, groups: mid, epsilon: 1e-3, activation: .gelu)
        y = l["squeeze_excitation"].squeezeExcitation(y, mid, squeezeChannels: outChannels / 4, activation: .silu)
        y = l["conv_c"].conv2d(y, mid, outChannels, kernel: 1)
        return m.add(residual, y)
    }

    /// PartitionAttentionLayer on [N, C, size, size]: partition into [N, groups, tokens, C] (window:
    /// p = partition_size; grid: p = size / partition_size, then the last two axes swapped), x +
    /// attn_layer(x) (LayerNorm, relative-position attention), x + mlp_layer(x) (LayerNorm, Linear 4×,
    /// GELU, Linear), then back to [N, C, size, size].
    static func partitionAttention(_ m: Module, _ x: Value, _ c: Config, channels: Int, size: Int, grid: Bool) -> Value {
        guard size >= c.partitionSize, size % c.partitionSize == 0 else {
            m.reject("a \(size)×\(size) map does not divide into \(c.partitionSize)×\(c.partitionSize) partitions")
            return x
        }
        let partitions = size / c.partitionSize
        let p = grid ? partitions : c.partitionSize, n = size / p
        // WindowPartition: [N, C, n, p, n, p] → [N, n, n, p, p, C] → [N, n², p², C]; grid swaps axes −2, −3.
        var y = m.reshape(x, [0, channels, n, p, n, p], function: "partition")
        y = m.reshape(m.permute(y, [0, 2, 4, 3, 5, 1], function: "partition_permute"), [0, n * n, p * p, channels], function: "partitioned")
        if grid { y = m.permute(y, [0, 2, 1, 3], function: "partition_swap") }
        let attn = m["attn_layer"]
        y = m.add(y, attn[1].relativePositionalAttention(attn[0].layerNorm(y, channels), c, channels: channels), function: "attention_add")
        let mlp = m["mlp_layer"]
        let z = mlp[3].linear(mlp[2].gelu(mlp[1].linear(mlp[0].layerNorm(y, channels), channels, 4 * channels, rank2: false)),
                              4 * channels, channels, rank2: false)
        y = m.add(y, z, function: "mlp_add")
        if grid { y = m.permute(y, [0, 2, 1, 3], function: "departition_swap") }
        // WindowDepartition: [N, n, n, p, p, C] → [N, C, n, p, n, p] → [N, C, size, size].
        y = m.reshape(y, [0, n, n, p, p, channels], function: "departition")
        return m.reshape(m.permute(y, [0, 5, 1, 3, 2, 4], function: "departition_permute"), [0, channels, size, size], function: "departitioned")
    }
}

private extension Module {
    /// RelativePositionalMultiHeadAttention on [N, G, P, C]: to_qkv, chunked into q, k, v and split
    /// into C / head_dim heads; softmax(q · (k · C^−½)ᵀ + bias) v (torchvision scales by the feature
    /// width, not the head width), the bias table gathered by relative_position_index; heads merged,
    /// `merge`.
    func relativePositionalAttention(_ x: Value, _ c: MaxVit.Config, channels: Int) -> Value {
        let heads = channels / c.headDim, p = c.partitionSize, tokens = p * p
        let table = parameter("relative_position_bias_table", [(2 * p - 1) * (2 * p - 1), heads], .embedding)
        let index = parameter("relative_position_index", [tokens, tokens],
                              .fixed(Tensor(int64s: relativePositionIndex(p), shape: [tokens, tokens])))
        let qkv = self["to_qkv"].linear(x, channels, 3 * channels, rank2: false)
        // [N, G, P, 3C] → [N, G, P, 3, H, DH] → [3, N, G, H, P, DH].
        let split = permute(reshape(qkv, [0, 0, tokens, 3, heads, c.headDim], function: "split_heads"), [3, 0, 1, 4, 2, 5], function: "qkv")
        let (q, k, v) = (pick(split, 0, function: "q"), pick(split, 1, function: "k"), pick(split, 2, function: "v"))
        let scale = constant("scale_factor", Tensor(floats: [Float(pow(Double(channels), -0.5))], shape: []))
        var scores = matmul(q, permute(mul(k, scale, function: "k_scaled"), [0, 1, 2, 4, 3], function: "k_transposed"), function: "scores")
        // get_relative_positional_bias: table[index] [P, P, H] → [H, P, P].
        let bias = permute(node(Op.Gather(axis: 0), [table, index], function: "position_bias_gather"), [2, 0, 1], function: "position_bias")
        scores = add(scores, bias, function: "position_bias_add")
        var y = matmul(softmax(scores, axis: -1), v, function: "attention")
        y = reshape(permute(y, [0, 1, 3, 2, 4], function: "merge_heads"), [0, 0, tokens, channels], function: "merged")
        return self["merge"].linear(y, channels, channels, rank2: false)
    }
}
