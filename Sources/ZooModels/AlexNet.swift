import ZooCore
import ZooOps

/// torchvision's AlexNet, exactly: torchvision/models/alexnet.py (the "one weird trick" layout,
/// Krizhevsky 2014, arXiv:1404.5997, as trained for `alexnet-owt-7be5be79.pth`), 64-192-384-256-256
/// convolutions, AdaptiveAvgPool2d(6, 6), 9216-4096-4096-1000 classifier. Takes any input ≥ 63×63.
enum AlexNet {
    static let summary = "torchvision AlexNet (64-192-384-256-256, adaptive 6×6 pool, any input ≥ 63×63)"
    static let defaultConfig = ModelConfig(convChannels: [64, 192, 384, 256, 256], hidden: [4096, 4096], classes: 1000)

    /// (module index, kernel, stride, padding) of each convolution in `features`.
    static let convs = [(0, 11, 4, 2), (3, 5, 1, 2), (6, 3, 1, 1), (8, 3, 1, 1), (10, 3, 1, 1)]
    static let keys = ClassicLayout(convs: convs.map { ($0.0, $0.1, 1) }, linears: [1, 4, 6])

    static func layout(_ c: ModelConfig) -> [(name: String, shape: [Int])] { keys.layout(c) }
    static func config(from shapes: [String: [Int]]) -> ModelConfig? { keys.config(from: shapes) }

    static func graph(config: ModelConfig, weights: [String: Tensor], inputSize: Int) throws(GraphError) -> Graph {
        var b = GraphBuilder(input: "input", channels: 3, size: inputSize)
        for (index, kernel, stride, pad) in convs {
            b.conv("features.\(index)", kernel: kernel, stride: stride, pad: pad)
            b.add("features.\(index + 1)", Op.Unary.relu)
            if index == 0 || index == 3 || index == 10 {
                b.add("features.\(index + 2)", Op.MaxPool(Op.Pool(kernel: [3, 3], strides: [2, 2])))
            }
        }
        b.add("avgpool", Op.AdaptiveAveragePool(outputHeight: 6, outputWidth: 6))
        b.add("flatten", Op.Flatten(axis: 1))
        b.alexNetClassifier()
        return try b.build(name: "alexnet (torchvision, \(config))", weights: weights)
    }
}
