import ZooCore
import ZooOps

/// Vision Transformer (Dosovitskiy et al., "An Image is Worth 16x16 Words: Transformers for Image
/// Recognition at Scale", ICLR 2021, arXiv:2010.11929) as torchvision builds it:
/// torchvision/models/vision_transformer.py. A patch×patch/patch convolution to tokens, the class
/// token in front, the position embedding, pre-norm encoder blocks (LayerNorm 1e-6,
/// nn.MultiheadAttention, LayerNorm, MLP Linear-GELU-Linear), the final LayerNorm, token 0, `heads.head`.
/// A ViT runs at the one image size its position embedding was made for.
enum VisionTransformer: ModelFamily {
    struct Config: FamilyConfig {
        var patch: Int
        var layers: Int
        /// Attention heads: not recorded by the state dict (in_proj_weight is [3D, D] for any count).
        var heads: Int
        var hidden: Int
        var mlp: Int
        /// The image size (height = width), a multiple of `patch`; the position embedding has
        /// (imageSize / patch)² + 1 tokens.
        var imageSize = 224
        var classes = 1000
        var description: String {
            "patch \(patch), \(layers) layers × \(hidden) (\(heads) heads, MLP \(mlp)), \(imageSize)×\(imageSize), \(classes) classes"
        }
        var tokens: Int { (imageSize / patch) * (imageSize / patch) + 1 }
    }

    static let name = "vit"
    static let source = "Dosovitskiy et al. 2021 (arXiv:2010.11929); torchvision/models/vision_transformer.py"
    static let classifier = "heads.head.weight"
    static let variants: [(name: String, config: Config, transform: EvaluationTransform)] = [
        ("vit_b_16", Config(patch: 16, layers: 12, heads: 12, hidden: 768, mlp: 3072), .standard),
        ("vit_b_32", Config(patch: 32, layers: 12, heads: 12, hidden: 768, mlp: 3072), .standard),
        ("vit_l_16", Config(patch: 16, layers: 24, heads: 16, hidden: 1024, mlp: 4096), EvaluationTransform(resize: 242, crop: 224)),
        ("vit_l_32", Config(patch: 32, layers: 24, heads: 16, hidden: 1024, mlp: 4096), .standard),
        // Listed at 518, the size of its DEFAULT weights (IMAGENET1K_SWAG_E2E_V1), so that size and
        // transform agree; torchvision's weights=None build (224) is detected at 224.
        ("vit_h_14", Config(patch: 14, layers: 32, heads: 16, hidden: 1280, mlp: 5120, imageSize: 518),
         EvaluationTransform(resize: 518, crop: 518, .bicubic)),
    ]
    static let note: String? = """
        num_heads is each variant's (b 12, l 16, h 16): the state dict does not record it. The image size is read \
        from encoder.pos_embedding ((size / patch)² + 1 tokens), so the SWAG weights (vit_b_16 384, vit_l_16 512, \
        vit_h_14 518) are detected at their size; vit_h_14 is listed at 518, its default weights' size (weights=None \
        builds it at 224). A ViT runs only at its image size.
        """
    static func fixedInputSize(_ config: Config) -> Int? { config.imageSize }

    /// The classes from `heads.head`, the image size from the position embedding's length when it
    /// is (n)² + 1 tokens.
    static func fitted(_ config: Config, to shapes: [String: [Int]]) -> Config {
        var fitted = config
        if let classes = shapes[classifier]?.first { fitted.classes = classes }
        if let pos = shapes["encoder.pos_embedding"], pos.count == 3, pos[1] > 1 {
            let side = Int(Double(pos[1] - 1).squareRoot().rounded())
            if side * side == pos[1] - 1 { fitted.imageSize = side * config.patch }
        }
        return fitted
    }

    /// torchvision's `MLPBlock._load_from_state_dict` rename for weights saved before MLPBlock became
    /// an MLP (torchvision's own published ViT weights): `…mlp.linear_1.*` → `…mlp.0.*`,
    /// `…mlp.linear_2.*` → `…mlp.3.*`. nil for any other key.
    static func legacyKeyName(_ key: String) -> String? {
        guard let match = key.wholeMatch(of: #/(encoder\.layers\.encoder_layer_\d+\.mlp\.)linear_([12])\.(weight|bias)/#)
        else { return nil }
        return "\(match.output.1)\(match.output.2 == "1" ? 0 : 3).\(match.output.3)"
    }

    static func build(_ root: Module, _ input: Value, _ c: Config) -> Value {
        let d = c.hidden, side = c.imageSize / c.patch
        // _process_input: conv_proj, reshape to [N, D, n_h·n_w], permute to [N, n_h·n_w, D].
        var x = root["conv_proj"].conv2d(input, 3, d, kernel: c.patch, stride: c.patch)
        x = root.permute(root.reshape(x, [0, d, side * side]), [0, 2, 1])
        // class_token.expand(n, -1, -1), concatenated in front: the batch stays symbolic.
        let token = root.parameter("class_token", [1, 1, d], .embedding)
        let batch = root.node(Op.Shape(start: 0, end: 1), [x], function: "batch")
        let shape = root.cat([batch, root.constant("class_token_dims", Tensor(int64s: [1, d], shape: [2]))], axis: 0,
                             function: "class_token_shape")
        x = root.cat([root.node(Op.Expand(), [token, shape], function: "class_token_expand"), x], axis: 1)
        x = encoder(root["encoder"], x, c)
        // x[:, 0], then heads.head.
        x = root.node(Op.Gather(axis: 1), [x, root.constant("class_index", Tensor(int64s: [0], shape: []))], function: "class_output")
        return root["heads"]["head"].linear(x, d, c.classes)
    }

    /// Encoder: input + pos_embedding, the encoder layers, `ln`.
    static func encoder(_ m: Module, _ input: Value, _ c: Config) -> Value {
        let pos = m.parameter("pos_embedding", [1, c.tokens, c.hidden], .embedding)
        var x = m.add(input, pos, function: "pos_embedding_add")
        for i in 0..<c.layers {
            let l = m["layers"]["encoder_layer_\(i)"]
            // EncoderBlock: x = attention(ln_1(input)) + input; x + mlp(ln_2(x)).
            let y = l["self_attention"].multiheadAttention(l["ln_1"].layerNorm(x, c.hidden, epsilon: 1e-6), c)
            x = l.add(y, x, function: "attention_add")
            var z = l["ln_2"].layerNorm(x, c.hidden, epsilon: 1e-6)
            let mlp = l["mlp"]
            z = mlp[1].gelu(mlp[0].linear(z, c.hidden, c.mlp, rank2: false))
            z = mlp[3].linear(z, c.mlp, c.hidden, rank2: false)
            x = l.add(x, z, function: "mlp_add")
        }
        return m["ln"].layerNorm(x, c.hidden, epsilon: 1e-6)
    }
}

private extension Module {
    /// nn.MultiheadAttention(D, heads, batch_first=True) as self-attention on [N, L, D]: q, k, v from
    /// one packed projection (in_proj_weight [3D, D], in_proj_bias [3D]), softmax(q kᵀ / √(D / heads)) v
    /// per head, heads concatenated, out_proj.
    func multiheadAttention(_ x: Value, _ c: VisionTransformer.Config) -> Value {
        let d = c.hidden, headDim = c.hidden / c.heads, tokens = c.tokens
        let weight = parameter("in_proj_weight", [3 * d, d], .weight(fanIn: d))
        let bias = parameter("in_proj_bias", [3 * d], .bias(fanIn: d))
        let rows = node(Op.Reshape(shape: [-1, d]), [x], function: "rows")
        var qkv = node(Op.Gemm.linear, [rows, weight, bias], function: "in_proj")
        // [N·L, 3D] → [N, L, 3, heads, headDim] → [3, N, heads, L, headDim].
        qkv = permute(reshape(qkv, [-1, tokens, 3, c.heads, headDim], function: "split_heads"), [2, 0, 3, 1, 4], function: "qkv")
        let qkvIndex = ["q", "k", "v"].enumerated().map { i, name in pick(qkv, i, function: name) }
        let scale = constant("scale", Tensor(floats: [1 / Float(headDim).squareRoot()], shape: []))
        let q = mul(qkvIndex[0], scale, function: "q_scaled")
        let scores = matmul(q, permute(qkvIndex[1], [0, 1, 3, 2], function: "k_transposed"), function: "scores")
        var y = matmul(softmax(scores, axis: -1), qkvIndex[2], function: "attention")
        // [N, heads, L, headDim] → [N, L, heads, headDim] → [N, L, D].
        y = reshape(permute(y, [0, 2, 1, 3], function: "merge_heads"), [0, 0, d], function: "merged")
        return self["out_proj"].linear(y, d, d, rank2: false)
    }
}
