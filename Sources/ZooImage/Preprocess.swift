import ZooCore

/// torchvision's evaluation preprocessing on PIL images, the `ImageClassification` preset behind
/// `weights.transforms()` (torchvision/transforms/_presets.py): `Resize(resize)` of the shorter side,
/// `CenterCrop(crop)`, `pil_to_tensor`, `convert_image_dtype(float)`, `Normalize(mean, std)`.
///
/// Verified against torchvision 0.24.1 with PIL 13.0.0 (Fixtures/make_preprocess_fixtures.py,
/// PreprocessTests): the 8-bit crops are identical and the float output is bit-identical, for zoo's
/// presets (256/224, 342/299, 232/224 bicubic, 255/240, 384/384 bicubic, 236/224), an unchanged size,
/// crops larger than the resized image on either axis, nearest and lanczos, mean/std 0.5.
extension EvaluationTransform {
    /// torchvision's `_compute_resized_output_size` for an int size: the shorter side becomes
    /// `resize`, the longer `int(resize * long / short)` (a double quotient, truncated); a square
    /// becomes `resize` × `resize`.
    public func resizedSize(width: Int, height: Int) -> (width: Int, height: Int) {
        let (short, long) = width <= height ? (width, height) : (height, width)
        let newLong = Int(Double(resize * long) / Double(short))
        return width <= height ? (resize, newLong) : (newLong, resize)
    }

    /// Where torchvision's `center_crop` takes the `crop` × `crop` square in a `width`×`height` image:
    /// on each axis `int(round((size - crop) / 2.0))` (Python's round: half to even), or, when the crop
    /// is larger than the image, minus the zero padding torchvision adds before it, `(crop - size) // 2`.
    /// Pixels of the square outside the image are 0.
    public func centerCropOrigin(width: Int, height: Int) -> (x: Int, y: Int) {
        func origin(_ size: Int) -> Int {
            crop > size ? -((crop - size) / 2) : Int((Double(size - crop) / 2).rounded(.toNearestOrEven))
        }
        return (origin(width), origin(height))
    }

    /// The 8-bit `crop` × `crop` picture torchvision converts to a tensor: `image` resized
    /// (`resizedSize`, `interpolation`, PIL's resampling as `resized(_:width:height:filter:)` does it),
    /// then center-cropped with zero padding. Only the resized pixels inside the crop are computed.
    /// Precondition: `resize` and `crop` are positive.
    public func cropped(_ image: Image) -> Image {
        let size = resizedSize(width: image.width, height: image.height)
        let origin = centerCropOrigin(width: size.width, height: size.height)
        let columns = max(origin.x, 0)..<min(origin.x + crop, size.width)
        let rows = max(origin.y, 0)..<min(origin.y + crop, size.height)
        let inside = resized(image, width: size.width, height: size.height, filter: interpolation,
                             columns: columns, rows: rows)
        if columns.count == crop && rows.count == crop { return inside }
        let channels = image.channels
        var result = Image(width: crop, height: crop, channels: channels, filledWith: 0)
        let left = columns.lowerBound - origin.x, top = rows.lowerBound - origin.y
        let rowLength = columns.count * channels
        for y in 0..<rows.count {
            let target = ((top + y) * crop + left) * channels
            result.pixels[target..<(target + rowLength)] = inside.pixels[(y * rowLength)..<((y + 1) * rowLength)]
        }
        return result
    }

    /// The batch torchvision's transform makes of `images` (each RGB): float32 [N, 3, crop, crop].
    /// A byte v of channel c becomes `(v / 255 - mean[c]) / std[c]`, every step in float32, as
    /// `convert_image_dtype` (a division by 255) and `normalize` (subtract, then divide) compute it,
    /// so the values are bit-identical to torchvision's when the 8-bit crop is.
    /// Precondition: every image has 3 channels; `mean` and `std` have 3 values; `resize` and `crop`
    /// are positive.
    public func tensor(_ images: [Image]) -> Tensor {
        precondition(mean.count == 3 && std.count == 3, "mean and std need 3 values, one per channel")
        let table = (0..<3).map { c in (0..<256).map { v in (Float(v) / 255 - mean[c]) / std[c] } }
        let plane = crop * crop
        var floats = [Float](repeating: 0, count: images.count * 3 * plane)
        for (n, image) in images.enumerated() {
            precondition(image.channels == 3, "the transform takes RGB images, not \(image.channels) channels")
            let pixels = cropped(image).pixels
            for c in 0..<3 {
                let base = (n * 3 + c) * plane
                for i in 0..<plane { floats[base + i] = table[c][Int(pixels[i * 3 + c])] }
            }
        }
        return Tensor(floats: floats, shape: [images.count, 3, crop, crop])
    }
}
