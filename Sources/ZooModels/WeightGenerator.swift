import ZooCore

/// Deterministic weights and inputs that PyTorch can reproduce exactly, so that parity with torch can
/// be checked for full-size models without committing their weights.
///
/// Integer arithmetic only (mod 2^64), mapped exactly to f32; Fixtures/make_parity_fixtures.py
/// implements the same rule in numpy:
/// ```
/// mix(z)  = splitmix64 finalizer
/// base    = mix(seed·GOLDEN + stream + 1)
/// h_i     = mix(base + (i + 1)·GOLDEN)            for element i in C order
/// value_i = ((h_i >> 41) − 2^22) · 2^−shift       an integer in [−2^22, 2^22) scaled by a power of two
/// ```
/// Weights: the tensor at position t of the state dict is stream t, with
/// shift = 21 + ⌊(bitLength(fanIn − 1) + 1) / 2⌋ for weights (≈ uniform in ±2/√fanIn, so a ReLU network
/// keeps its signal) and 4 more for biases (small, so the input — not the last bias — drives the
/// logits). Inputs: stream 0xFFFF, shift 22 (uniform in [−1, 1)).
public struct WeightGenerator: Sendable {
    public static let golden: UInt64 = 0x9E37_79B9_7F4A_7C15
    public static let inputStream: UInt64 = 0xFFFF

    public let seed: UInt64
    public init(seed: UInt64) { self.seed = seed }

    @inline(__always)
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The scaling exponent for a layer's weight (or bias) with `fanIn` inputs per output.
    public static func shift(fanIn: Int, bias: Bool = false) -> Int {
        let n = max(fanIn - 1, 0)
        let bitLength = n == 0 ? 0 : Int.bitWidth - n.leadingZeroBitCount
        return (bias ? 25 : 21) + (bitLength + 1) / 2
    }

    /// `count` values of `stream`, scaled by 2^−shift.
    public func values(stream: UInt64, count: Int, shift: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            fill(buffer, stream: stream, shift: shift)
            initialized = count
        }
    }

    /// Writes the first `buffer.count` values of `stream` (scaled by 2^−shift, plus `offset`) into
    /// `buffer`.
    func fill(_ buffer: UnsafeMutableBufferPointer<Float>, stream: UInt64, shift: Int, offset: Float = 0) {
        let base = WeightGenerator.mix(seed &* WeightGenerator.golden &+ stream &+ 1)
        let scale = Float(sign: .plus, exponent: -shift, significand: 1)
        for i in buffer.indices {
            let h = WeightGenerator.mix(base &+ UInt64(i + 1) &* WeightGenerator.golden)
            buffer[i] = Float(Int(h >> 41) - (1 << 22)) * scale + offset
        }
    }

    /// A generated input batch [batch, channels, height, width].
    public func input(batch: Int, channels: Int = 3, height: Int, width: Int) -> Tensor {
        input(shape: [batch, channels, height, width])
    }

    /// A generated input of any shape (the shape's product must fit in memory: callers bound it).
    public func input(shape: [Int]) -> Tensor {
        let values = values(stream: WeightGenerator.inputStream, count: shape.reduce(1, *), shift: 22)
        return Tensor(floats: values, shape: shape)
    }

    /// A full state dict for `architecture` in torchvision's key order. Each entry's values follow
    /// its role: weights and biases as above (fan-in scaled); BatchNorm / LayerNorm weights and
    /// layer scales 1 + v with v in [−0.5, 0.5) (shift 23); their biases shift 25; running means
    /// shift 24; running variances 1 + v in [0.5, 1.5) (positive); embeddings shift 22 (in [−1, 1));
    /// num_batches_tracked 0 (int64); buffers the architecture fixes, their value. So no
    /// normalization is the identity, and the stream of every entry is its position, as before.
    public func stateDict(_ architecture: Architecture) -> [(name: String, tensor: Tensor)] {
        architecture.parameters.enumerated().map { index, parameter in
            let count = parameter.shape.reduce(1, *)
            let stream = UInt64(index)
            // Generated in place: no second copy of the largest tensor (VGG's 411 MB classifier.0).
            func floats(shift: Int, plusOne: Bool = false) -> Tensor {
                try! Tensor(dtype: .f32, shape: parameter.shape) { bytes in
                    fill(bytes.bindMemory(to: Float.self), stream: stream, shift: shift, offset: plusOne ? 1 : 0)
                }
            }
            let tensor: Tensor
            switch parameter.role {
            case .weight(let fanIn): tensor = floats(shift: WeightGenerator.shift(fanIn: fanIn))
            case .bias(let fanIn): tensor = floats(shift: WeightGenerator.shift(fanIn: fanIn, bias: true))
            case .scale: tensor = floats(shift: 23, plusOne: true)
            case .shift: tensor = floats(shift: 25)
            case .runningMean: tensor = floats(shift: 24)
            case .runningVariance: tensor = floats(shift: 23, plusOne: true)
            case .embedding: tensor = floats(shift: 22)
            case .batchCount: tensor = Tensor(int64s: [Int](repeating: 0, count: count), shape: parameter.shape)
            case .fixed(let value): tensor = value
            }
            return (parameter.name, tensor)
        }
    }
}
