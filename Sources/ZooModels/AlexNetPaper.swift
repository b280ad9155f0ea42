import ZooCore
import ZooOps

/// AlexNet as in the 2012 paper (Krizhevsky, Sutskever, Hinton, "ImageNet Classification with Deep
/// Convolutional Neural Networks", NIPS 2012) in the single-tower form Caffe's bvlc_alexnet and the
/// ONNX model zoo carry: 96-256-384-384-256 convolutions, LRN (size 5, α 1e-4, β 0.75, k 2) after
/// conv1 and conv2, groups = 2 on conv2, conv4 and conv5 (the two GPUs), Caffe's ceil-mode 3×3/2 max
/// pooling, 9216-4096-4096-1000 classifier. 227×227 input (224 works too thanks to ceil mode).
///
/// State-dict keys follow torchvision's conventions for this module list:
/// features: 0 conv1, 1 ReLU, 2 LRN, 3 pool, 4 conv2, 5 ReLU, 6 LRN, 7 pool, 8 conv3, 9 ReLU,
/// 10 conv4, 11 ReLU, 12 conv5, 13 ReLU, 14 pool; classifier: 0 Dropout, 1 fc6, 2 ReLU, 3 Dropout,
/// 4 fc7, 5 ReLU, 6 fc8.
enum AlexNetPaper {
    static let summary = "AlexNet, 2012 paper / Caffe layout (96-256-384-384-256, LRN, groups 2, 227×227)"
    static let defaultConfig = ModelConfig(convChannels: [96, 256, 384, 384, 256], hidden: [4096, 4096], classes: 1000)

    /// (module index, kernel, stride, padding, groups) of each convolution.
    static let convs = [(0, 11, 4, 0, 1), (4, 5, 1, 2, 2), (8, 3, 1, 1, 1), (10, 3, 1, 1, 2), (12, 3, 1, 1, 2)]
    static let keys = ClassicLayout(convs: convs.map { ($0.0, $0.1, $0.4) }, linears: [1, 4, 6])

    static func layout(_ c: ModelConfig) -> [(name: String, shape: [Int])] { keys.layout(c) }
    static func config(from shapes: [String: [Int]]) -> ModelConfig? { keys.config(from: shapes) }

    static func graph(config: ModelConfig, weights: [String: Tensor], inputSize: Int) throws(GraphError) -> Graph {
        var b = GraphBuilder(input: "input", channels: 3, size: inputSize)
        let pool = Op.MaxPool(Op.Pool(kernel: [3, 3], strides: [2, 2], ceilMode: true))
        let lrn = Op.LRN(size: 5, alpha: 1e-4, beta: 0.75, bias: 2, window: .pytorch)
        for (index, kernel, stride, pad, groups) in convs {
            b.conv("features.\(index)", kernel: kernel, stride: stride, pad: pad, groups: groups)
            b.add("features.\(index + 1)", Op.Unary.relu)
            switch index {
            case 0, 4:
                b.add("features.\(index + 2)", lrn)
                b.add("features.\(index + 3)", pool)
            case 12:
                b.add("features.14", pool)
            default:
                break
            }
        }
        b.add("flatten", Op.Flatten(axis: 1))
        b.alexNetClassifier()
        return try b.build(name: "alexnet-paper (\(config))", weights: weights)
    }
}
