/// How torchvision prepares an image for a model's published weights (`weights.transforms()`):
/// resize the shorter side to `resize`, center-crop `crop` × `crop`, scale to [0, 1], normalize with
/// `mean` and `std` (ImageNet's, except for the few weights trained otherwise: EfficientNetV2-L's 0.5).
public struct EvaluationTransform: Sendable, Equatable, CustomStringConvertible {
    /// PIL's resampling filters (`PIL.Image.Resampling`), which torchvision's `InterpolationMode`
    /// names for PIL images. Every one but nearest is antialiased when shrinking, as PIL does it.
    public enum Interpolation: String, Sendable, CaseIterable { case nearest, box, bilinear, hamming, bicubic, lanczos }
    public let resize: Int
    public let crop: Int
    public let interpolation: Interpolation
    public let mean: [Float]
    public let std: [Float]
    public static let imageNetMean: [Float] = [0.485, 0.456, 0.406]
    public static let imageNetStd: [Float] = [0.229, 0.224, 0.225]

    public init(resize: Int, crop: Int, _ interpolation: Interpolation = .bilinear, mean: [Float] = imageNetMean,
                std: [Float] = imageNetStd) {
        self.resize = resize
        self.crop = crop
        self.interpolation = interpolation
        self.mean = mean
        self.std = std
    }

    /// torchvision's most common one: Resize(256), CenterCrop(224), bilinear.
    public static let standard = EvaluationTransform(resize: 256, crop: 224)

    public var description: String {
        "resize \(resize) \(interpolation.rawValue), crop \(crop)"
            + (mean == Self.imageNetMean && std == Self.imageNetStd ? "" : ", mean \(mean) std \(std)")
    }
}
