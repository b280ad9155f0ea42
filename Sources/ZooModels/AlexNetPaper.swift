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
enum AlexNetPaper: ModelFamily {
    static let name = "alexnet-paper"
    static let source = "Krizhevsky, Sutskever, Hinton, NIPS 2012; Caffe bvlc_alexnet"
    static let variants: [(name: String, config: AlexNetConfig, transform: EvaluationTransform)] = [
        ("alexnet-paper", AlexNetConfig(convChannels: [96, 256, 384, 384, 256], hidden: [4096, 4096], classes: 1000),
         EvaluationTransform(resize: 256, crop: 227)),
    ]
    static let classifier = "classifier.6.weight"
    static func customConfig(from shapes: [String: [Int]]) -> AlexNetConfig? { AlexNetConfig.reading(shapes, convs: [0, 4, 8, 10, 12]) }

    static func build(_ root: Module, _ input: Value, _ c: AlexNetConfig) -> Value {
        let f = root["features"]
        let w = c.convChannels
        let lrn = Op.LRN(size: 5, alpha: 1e-4, beta: 0.75, bias: 2, window: .pytorch)
        var x = f[1].relu(f[0].conv2d(input, 3, w[0], kernel: 11, stride: 4))
        x = f[3].maxPool2d(f[2].node(lrn, [x]), kernel: 3, stride: 2, ceilMode: true)
        x = f[5].relu(f[4].conv2d(x, w[0], w[1], kernel: 5, padding: 2, groups: 2))
        x = f[7].maxPool2d(f[6].node(lrn, [x]), kernel: 3, stride: 2, ceilMode: true)
        x = f[9].relu(f[8].conv2d(x, w[1], w[2], kernel: 3, padding: 1))
        x = f[11].relu(f[10].conv2d(x, w[2], w[3], kernel: 3, padding: 1, groups: 2))
        x = f[13].relu(f[12].conv2d(x, w[3], w[4], kernel: 3, padding: 1, groups: 2))
        x = root.flatten(f[14].maxPool2d(x, kernel: 3, stride: 2, ceilMode: true))
        return c.classifier(root["classifier"], x, inFeatures: w[4] * 36)
    }
}
