import ZooCore
import ZooOps
#if canImport(Glibc)
import Glibc
#endif

/// Swin Transformer (Liu et al., "Swin Transformer: Hierarchical Vision Transformer using Shifted
/// Windows", ICCV 2021, arXiv:2103.14030) and Swin Transformer V2 (Liu et al., "Swin Transformer V2:
/// Scaling Up Capacity and Resolution", CVPR 2022, arXiv:2111.09883) as torchvision builds them:
/// torchvision/models/swin_transformer.py. A 4×4/4 patch embedding with LayerNorm on [N, H, W, C]
/// tokens, four stages of blocks with (shifted) window attention and a relative position bias, patch
/// merging between stages, LayerNorm, global average, `head`.
///
/// The graph is built for one input size (`Module.inputSize`): torchvision pads each stage's feature
/// map to a multiple of the window, does not shift when the window covers the padded map, and masks
/// the shifted windows — all fixed by the size, so they are graph constants here, computed as
/// torchvision computes them. Any input ≥ the patch size works once the graph is built for it.
enum SwinTransformer: ModelFamily {
    enum Version: String, Sendable {
        /// Pre-norm blocks, scaled dot-product attention, a learned bias table, PatchMerging.
        case v1
        /// Post-norm blocks, cosine attention with a learned logit scale, the bias from a continuous
        /// position bias MLP (cpb_mlp) over log-spaced coordinates, PatchMergingV2.
        case v2
    }

    struct Config: FamilyConfig {
        var version: Version
        var patch = 4
        var embedDim: Int
        var depths: [Int]
        var heads: [Int]
        var window: Int
        var classes = 1000
        var description: String {
            "\(version.rawValue), embed \(embedDim), depths \(depths.map(String.init).joined(separator: "-")), "
                + "heads \(heads.map(String.init).joined(separator: "-")), window \(window)"
                + (patch != 4 ? ", patch \(patch)" : "") + ", \(classes) classes"
        }
    }

    static let name = "swin"
    static let source = "Liu et al. 2021 (arXiv:2103.14030), V2 2022 (arXiv:2111.09883); torchvision/models/swin_transformer.py"
    static let classifier = "head.weight"
    static let variants: [(name: String, config: Config, transform: EvaluationTransform)] = [
        ("swin_t", Config(version: .v1, embedDim: 96, depths: [2, 2, 6, 2], heads: [3, 6, 12, 24], window: 7),
         EvaluationTransform(resize: 232, crop: 224, .bicubic)),
        ("swin_s", Config(version: .v1, embedDim: 96, depths: [2, 2, 18, 2], heads: [3, 6, 12, 24], window: 7),
         EvaluationTransform(resize: 246, crop: 224, .bicubic)),
        ("swin_b", Config(version: .v1, embedDim: 128, depths: [2, 2, 18, 2], heads: [4, 8, 16, 32], window: 7),
         EvaluationTransform(resize: 238, crop: 224, .bicubic)),
        ("swin_v2_t", Config(version: .v2, embedDim: 96, depths: [2, 2, 6, 2], heads: [3, 6, 12, 24], window: 8),
         EvaluationTransform(resize: 260, crop: 256, .bicubic)),
        ("swin_v2_s", Config(version: .v2, embedDim: 96, depths: [2, 2, 18, 2], heads: [3, 6, 12, 24], window: 8),
         EvaluationTransform(resize: 260, crop: 256, .bicubic)),
        ("swin_v2_b", Config(version: .v2, embedDim: 128, depths: [2, 2, 18, 2], heads: [4, 8, 16, 32], window: 8),
         EvaluationTransform(resize: 272, crop: 256, .bicubic)),
    ]
    static let note: String? = """
        torchvision's padding to window multiples, shift rule and shifted-window masks depend on the input \
        size and are built into the graph: zoo run and parity build it again for each square input size \
        (224 for v1, 256 for v2 by default); other shapes are refused, not misread. Heads and window are \
        read from the bias tables, so custom configurations are detected.
        """

    /// Any embedding width, depths, heads, window and patch: the version from `logit_scale`, stage i
    /// (`features.<2i + 1>`) depth from the keys, its heads from the bias table's columns (v1) or
    /// logit_scale's length (v2), the window from relative_position_index's length (window⁴).
    static func customConfig(from shapes: [String: [Int]]) -> Config? {
        guard let classes = shapes[classifier]?.first, let conv = shapes["features.0.0.weight"], conv.count == 4 else { return nil }
        let attn = { (stage: Int) in "features.\(2 * stage + 1).0.attn." }
        let version: Version = shapes[attn(0) + "logit_scale"] != nil ? .v2 : .v1
        let stages = (0...).prefix { shapes[attn($0) + "relative_position_index"] != nil }
        guard !stages.isEmpty, let index = shapes[attn(0) + "relative_position_index"]?.first else { return nil }
        let depths = stages.map { stage in (0...).prefix { shapes["features.\(2 * stage + 1).\($0).attn.qkv.weight"] != nil }.count }
        let heads = stages.map { stage in
            version == .v1 ? shapes[attn(stage) + "relative_position_bias_table"]?.last ?? 0 : shapes[attn(stage) + "logit_scale"]?.first ?? 0
        }
        // Windows are 7 to 24 in practice; a bound keeps a hostile shape from sizing the index buffers.
        let window = Int(Double(index).squareRoot().squareRoot().rounded())
        guard (2...64).contains(window), window * window * window * window == index, heads.allSatisfy({ $0 > 0 }) else { return nil }
        return Config(version: version, patch: conv[2], embedDim: conv[0], depths: depths, heads: heads, window: window, classes: classes)
    }

    static func build(_ root: Module, _ input: Value, _ c: Config) -> Value {
        let f = root["features"]
        // features.0: Conv2d(3, C, patch, stride patch), Permute to [N, H, W, C], LayerNorm.
        var x = f[0][0].conv2d(input, 3, c.embedDim, kernel: c.patch, stride: c.patch)
        x = f[0][2].layerNorm(f[0][1].permute(x, [0, 2, 3, 1]), c.embedDim)
        var size = root.inputSize / c.patch, dim = c.embedDim
        for (i, depth) in c.depths.enumerated() {
            for b in 0..<depth {
                x = block(f[2 * i + 1][b], x, c, dim: dim, heads: c.heads[i], shift: b % 2 == 0 ? 0 : c.window / 2, size: size)
            }
            if i + 1 < c.depths.count {
                x = patchMerging(f[2 * i + 2], x, c.version, dim: dim, size: size)
                dim *= 2
                size = (size + 1) / 2
            }
        }
        x = root["permute"].node(Op.Transpose(perm: [0, 3, 1, 2]), [root["norm"].layerNorm(x, dim)])
        x = root["flatten"].node(Op.Flatten(axis: 1), [root["avgpool"].adaptiveAvgPool2d(x, 1, 1)])
        return root["head"].linear(x, dim, c.classes)
    }

    /// SwinTransformerBlock (v1): x + attn(norm1(x)), then x + mlp(norm2(x)).
    /// SwinTransformerBlockV2: x + norm1(attn(x)), then x + norm2(mlp(x)).
    /// mlp: Linear 4×, GELU, Linear (`mlp.0`, `mlp.3`); stochastic depth is the identity.
    static func block(_ m: Module, _ x: Value, _ c: Config, dim: Int, heads: Int, shift: Int, size: Int) -> Value {
        // torch registers norm1, attn, norm2, mlp in that order; v2 runs attn before norm1.
        let preNorm = c.version == .v1
        let norm1 = m["norm1"].declaredLayerNorm(dim)
        let attended = shiftedWindowAttention(m["attn"], preNorm ? norm1(x) : x, c, dim: dim, heads: heads, shift: shift, size: size)
        let y = m.add(x, preNorm ? attended : norm1(attended), function: "attention_add")
        let norm2 = m["norm2"].declaredLayerNorm(dim), mlp = m["mlp"]
        var z = mlp[0].linear(preNorm ? norm2(y) : y, dim, 4 * dim, rank2: false)
        z = mlp[3].linear(mlp[1].gelu(z), 4 * dim, dim, rank2: false)
        return m.add(y, preNorm ? z : norm2(z), function: "mlp_add")
    }

    /// PatchMerging: _patch_merging_pad (pad H and W to even, concatenate the four 2×2 phases),
    /// norm (4C), reduction Linear(4C, 2C, no bias). PatchMergingV2: reduction first, then norm (2C).
    static func patchMerging(_ m: Module, _ x: Value, _ version: Version, dim: Int, size: Int) -> Value {
        var y = x
        if size % 2 == 1 { y = m.node(Op.Pad(mode: .constant, pads: [0, 0, 0, 0, 0, 1, 1, 0]), [y], function: "pad") }
        let even = size + size % 2
        let phases = [(0, 0), (1, 0), (0, 1), (1, 1)].map { h, w in
            m.slice(y, starts: [h, w], ends: [even, even], axes: [1, 2], steps: [2, 2], function: "x\(h + 2 * w)")
        }
        y = m.cat(phases, axis: -1)
        // torch registers reduction before norm.
        let reduction = m["reduction"].declaredLinear(4 * dim, 2 * dim, bias: false)
        switch version {
        case .v1: return reduction(m["norm"].layerNorm(y, 4 * dim))
        case .v2: return m["norm"].layerNorm(reduction(y), 2 * dim)
        }
    }

    /// ShiftedWindowAttention(V2) on [N, size, size, C] (torchvision's shifted_window_attention): pad
    /// to a multiple of the window, roll by −shift, partition into windows, multi-head attention with
    /// the relative position bias (and, when shifted, the mask keeping windows' regions apart),
    /// proj, reverse the partition, roll back, unpad.
    static func shiftedWindowAttention(_ m: Module, _ x: Value, _ c: Config, dim: Int, heads: Int, shift requested: Int,
                                       size: Int) -> Value {
        let window = c.window, tokens = window * window, headDim = dim / heads
        // torch's order: own parameters, own buffers, then qkv, proj (and cpb_mlp).
        var table: Value?, logitScale: Value?, coords: Value?
        switch c.version {
        case .v1:
            table = m.parameter("relative_position_bias_table", [(2 * window - 1) * (2 * window - 1), heads], .embedding)
        case .v2:
            logitScale = m.parameter("logit_scale", [heads, 1, 1], .scale)
            coords = m.parameter("relative_coords_table", [1, 2 * window - 1, 2 * window - 1, 2], .fixed(relativeCoordsTable(window)))
        }
        let index = m.parameter("relative_position_index", [tokens * tokens],
                                .fixed(Tensor(int64s: relativePositionIndex(window), shape: [tokens * tokens])))
        let qkvWeight = m["qkv"].parameter("weight", [3 * dim, dim], .weight(fanIn: dim))
        var qkvBias = m["qkv"].parameter("bias", [3 * dim], .bias(fanIn: dim))
        let proj = m["proj"].declaredLinear(dim, dim, bias: true)
        var bias: Value
        if let coords {
            // get_relative_position_bias (v2): cpb_mlp(relative_coords_table) is the table; 16 · sigmoid.
            let cpb = m["cpb_mlp"]
            let hidden = cpb[1].relu(cpb[0].linear(coords, 2, 512, rank2: false))
            let cpbTable = m.reshape(cpb[2].linear(hidden, 512, heads, bias: false, rank2: false), [-1, heads], function: "cpb_table")
            bias = m.relativePositionBias(cpbTable, index, window: window, heads: heads)
            bias = m.mul(m.constant("sixteen", Tensor(floats: [16], shape: [])), m.node(Op.Unary(.sigmoid), [bias], function: "bias_sigmoid"),
                         function: "bias_scaled")
            // The key's bias is zeroed (torchvision clones qkv.bias and zeroes its middle third).
            let keep = [Float](repeating: 1, count: dim) + [Float](repeating: 0, count: dim) + [Float](repeating: 1, count: dim)
            qkvBias = m.mul(qkvBias, m.constant("qkv_bias_keep", Tensor(floats: keep, shape: [3 * dim])), function: "qkv_bias")
        } else {
            bias = m.relativePositionBias(table!, index, window: window, heads: heads)
        }

        // Pad feature maps to multiples of the window; no shift when the window covers the map.
        let padded = (size + window - 1) / window * window, windows = padded / window
        let shift = window >= padded ? 0 : requested
        var y = x
        if padded > size {
            y = m.node(Op.Pad(mode: .constant, pads: [0, 0, 0, 0, 0, padded - size, padded - size, 0]), [y], function: "pad")
        }
        if shift > 0 { y = m.roll(y, -shift, size: padded, function: "roll") }
        // Partition windows: [N, n, ws, n, ws, C] → [N, n, n, ws, ws, C] → [N·n², ws², C].
        y = m.reshape(y, [0, windows, window, windows, window, dim], function: "windows")
        y = m.reshape(m.permute(y, [0, 1, 3, 2, 4, 5], function: "windows_permute"), [-1, tokens, dim], function: "window_tokens")

        // Multi-head attention within each window.
        var qkv = m["qkv"].tokenLinear(y, qkvWeight, qkvBias, dim, 3 * dim)
        qkv = m.permute(m.reshape(qkv, [-1, tokens, 3, heads, headDim], function: "split_heads"), [2, 0, 3, 1, 4], function: "qkv_heads")
        let (q, k, v) = (m.pick(qkv, 0, function: "q"), m.pick(qkv, 1, function: "k"), m.pick(qkv, 2, function: "v"))
        var attn: Value
        if let logitScale {
            // Cosine attention: normalize(q) · normalize(k)ᵀ · exp(min(logit_scale, log 100)).
            attn = m.matmul(m.normalize(q, "q_normalized"), m.permute(m.normalize(k, "k_normalized"), [0, 1, 3, 2], function: "k_transposed"),
                            function: "scores")
            let scale = m.node(Op.Unary(.exp), [m.node(Op.Unary(.clip(min: -.infinity, max: log100)), [logitScale], function: "logit_scale_clamp")],
                               function: "logit_scale_exp")
            attn = m.mul(attn, scale, function: "scores_scaled")
        } else {
            let scale = m.constant("scale", Tensor(floats: [Float(pow(Double(headDim), -0.5))], shape: []))
            attn = m.matmul(m.mul(q, scale, function: "q_scaled"), m.permute(k, [0, 1, 3, 2], function: "k_transposed"), function: "scores")
        }
        attn = m.add(attn, bias, function: "position_bias_add")
        if shift > 0 {
            let mask = attentionMask(padded: padded, window: window, shift: shift)
            attn = m.reshape(attn, [-1, windows * windows, heads, tokens, tokens], function: "scores_windows")
            attn = m.add(attn, m.constant("attention_mask", mask), function: "mask_add")
            attn = m.reshape(attn, [-1, heads, tokens, tokens], function: "scores_masked")
        }
        y = m.matmul(m.softmax(attn, axis: -1), v, function: "attention")
        y = m.reshape(m.permute(y, [0, 2, 1, 3], function: "merge_heads"), [0, 0, dim], function: "merged")
        y = proj(y)

        // Reverse windows, the cyclic shift and the padding.
        y = m.reshape(y, [-1, windows, windows, window, window, dim], function: "unwindows")
        y = m.reshape(m.permute(y, [0, 1, 3, 2, 4, 5], function: "unwindows_permute"), [-1, padded, padded, dim], function: "unwindowed")
        if shift > 0 { y = m.roll(y, shift, size: padded, function: "roll_back") }
        if padded > size { y = m.slice(y, starts: [0, 0], ends: [size, size], axes: [1, 2], steps: [1, 1], function: "unpad") }
        return y
    }

    /// math.log(100.0), the most cosine attention's logit scale may be (torch clamps in float32).
    static let log100 = Double(Float(4.605170185988092))

    /// ShiftedWindowAttentionV2.define_relative_position_bias_table's buffer [1, 2ws − 1, 2ws − 1, 2]:
    /// (Δh, Δw) / (ws − 1) · 8, then sign · log2(|·| + 1) / 3, in float32 as torch computes it.
    static func relativeCoordsTable(_ window: Int) -> Tensor {
        let side = 2 * window - 1
        func coordinate(_ delta: Int) -> Float {
            let scaled = Float(delta) / Float(window - 1) * 8
            let sign: Float = scaled > 0 ? 1 : scaled < 0 ? -1 : 0
            return sign * Float(log2(Double(Swift.abs(scaled) + 1))) / 3
        }
        var values: [Float] = []
        for h in 0..<side {
            for w in 0..<side { values += [coordinate(h - (window - 1)), coordinate(w - (window - 1))] }
        }
        return Tensor(floats: values, shape: [1, side, side, 2])
    }

    /// The shifted windows' attention mask [1, windows², 1, ws², ws²] for a padded × padded map:
    /// regions numbered over torchvision's h / w slices ((0, −ws), (−ws, −shift), (−shift, None)),
    /// −100 between tokens of different regions, 0 within one.
    static func attentionMask(padded: Int, window: Int, shift: Int) -> Tensor {
        /// A Python slice's [start, end) on a dimension of `n`.
        func range(_ start: Int, _ end: Int?) -> Range<Int> {
            let s = start < 0 ? Swift.max(padded + start, 0) : Swift.min(start, padded)
            let e = end.map { $0 < 0 ? Swift.max(padded + $0, 0) : Swift.min($0, padded) } ?? padded
            return s..<Swift.max(s, e)
        }
        let slices = [range(0, -window), range(-window, -shift), range(-shift, nil)]
        var region = [[Int]](repeating: [Int](repeating: 0, count: padded), count: padded)
        var count = 0
        for h in slices {
            for w in slices {
                for i in h { for j in w { region[i][j] = count } }
                count += 1
            }
        }
        let windows = padded / window, tokens = window * window
        var mask: [Float] = []
        mask.reserveCapacity(windows * windows * tokens * tokens)
        for wh in 0..<windows {
            for ww in 0..<windows {
                let ids = (0..<tokens).map { region[wh * window + $0 / window][ww * window + $0 % window] }
                for i in 0..<tokens { for j in 0..<tokens { mask.append(ids[j] - ids[i] != 0 ? -100 : 0) } }
            }
        }
        return Tensor(floats: mask, shape: [1, windows * windows, 1, tokens, tokens])
    }
}

private extension Module {
    /// nn.LayerNorm's parameters declared now, applied later by the returned function (for a module
    /// torch registers before one that `forward` runs first).
    func declaredLayerNorm(_ features: Int, epsilon: Float = 1e-5) -> (Value) -> Value {
        let scale = parameter("weight", [features], .scale), shift = parameter("bias", [features], .shift)
        return { x in self.node(Op.LayerNormalization(axis: -1, epsilon: epsilon), [x, scale, shift]) }
    }

    /// nn.Linear on tokens [N, …, in], declared now and applied later by the returned function.
    func declaredLinear(_ inFeatures: Int, _ outFeatures: Int, bias: Bool) -> (Value) -> Value {
        let weight = parameter("weight", [outFeatures, inFeatures], .weight(fanIn: inFeatures))
        let b = bias ? parameter("bias", [outFeatures], .bias(fanIn: inFeatures)) : nil
        return { x in self.tokenLinear(x, weight, b, inFeatures, outFeatures) }
    }

    /// _get_relative_position_bias: table[index] viewed [ws², ws², heads], permuted to [heads, ws², ws²].
    func relativePositionBias(_ table: Value, _ index: Value, window: Int, heads: Int) -> Value {
        let tokens = window * window
        let gathered = node(Op.Gather(axis: 0), [table, index], function: "position_bias_gather")
        return permute(reshape(gathered, [tokens, tokens, heads], function: "position_bias_view"), [2, 0, 1], function: "position_bias")
    }

    /// torch.roll(x, shift, dims=(1, 2)) on [N, n, n, C]: each axis as two slices concatenated.
    func roll(_ x: Value, _ shift: Int, size: Int, function: String) -> Value {
        let k = ((shift % size) + size) % size
        var y = x
        for axis in [1, 2] {
            let tail = slice(y, starts: [size - k], ends: [size], axes: [axis], steps: [1], function: "\(function)\(axis)_tail")
            let head = slice(y, starts: [0], ends: [size - k], axes: [axis], steps: [1], function: "\(function)\(axis)_head")
            y = cat([tail, head], axis: axis, function: "\(function)\(axis)")
        }
        return y
    }

    func slice(_ x: Value, starts: [Int], ends: [Int], axes: [Int], steps: [Int], function: String) -> Value {
        let operands = [("starts", starts), ("ends", ends), ("axes", axes), ("steps", steps)].map { name, values in
            constant("\(function).\(name)", Tensor(int64s: values, shape: [values.count]))
        }
        return node(Op.Slice(), [x] + operands, function: function)
    }

    /// F.normalize(x, dim=-1): x / max(‖x‖₂, 1e-12).
    func normalize(_ x: Value, _ function: String) -> Value {
        let norm = node(Op.Reduce(.l2, axes: [-1], keepDims: true), [x], function: function + "_norm")
        let clamped = node(Op.Unary(.clip(min: 1e-12, max: .infinity)), [norm], function: function + "_clamp")
        return node(Op.Binary(.div), [x, clamped], function: function)
    }
}
