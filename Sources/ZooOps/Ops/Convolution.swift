/// Convolution (ONNX Conv; torch.nn.Conv1d/2d/3d), grouped and dilated, over any number of
/// spatial dims; 2-D f32 has the fast kernels.
import ZooCore
import ZooKernels

extension Op {
    /// Inputs X [N, C, spatial…], W [M, C/group, kernel…], optional B [M]. Pads are [begin…, end…]
    /// per spatial dim ([top, left, bottom, right] in 2-D).
    public struct Conv: Operator, Equatable {
        public var kernel: [Int]
        public var strides: [Int]
        public var dilations: [Int]
        public var pads: [Int]
        public var groups: Int
        public init(kernel: [Int], strides: [Int] = [1, 1], dilations: [Int] = [1, 1], pads: [Int] = [0, 0, 0, 0], groups: Int = 1) {
            self.kernel = kernel
            self.strides = strides
            self.dilations = dilations
            self.pads = pads
            self.groups = groups
        }

        public var name: String { "Conv" }
        public var inputArity: ClosedRange<Int> { 2...3 }
        public var summary: String {
            func list(_ v: [Int]) -> String { v.map(String.init).joined(separator: "×") }
            var s = "k=\(list(kernel)) s=\(list(strides)) p=\(pads.map(String.init).joined(separator: ","))"
            if dilations != [1, 1] { s += " d=\(list(dilations))" }
            if groups != 1 { s += " g=\(groups)" }
            return s
        }

        public func infer(_ inputs: [ValueInfo]) throws(OpFailure) -> [ValueInfo] {
            try DTypeRules.floating(inputs)
            let x = inputs[0].shape, s = kernel.count
            guard let w = inputs[1].fixedShape, w.count == s + 2 else {
                throw OpFailure("weight '\(inputs[1].name)' must be a fixed [M, C/group, kernel…] tensor of rank \(s + 2)")
            }
            guard groups >= 1, w[0] % groups == 0 else { throw OpFailure("\(w[0]) output channels do not split into \(groups) groups") }
            guard kernel == Array(w[2...]) else { throw OpFailure("kernel_shape \(kernel) but weight is \(w[2...].map(String.init).joined(separator: "×"))") }
            let spatial = try ShapeRules.slidingWindow(inputs[0], kernel: kernel, strides: strides, dilations: dilations, pads: pads, ceil: false)
            let channels = try ShapeRules.fixed(x[1], "input channels")
            guard channels == w[1] * groups else {
                throw OpFailure("input has \(channels) channels but weight '\(inputs[1].name)' expects \(w[1] * groups) (\(w[1]) × \(groups) groups)")
            }
            if inputs.count == 3 { try ShapeRules.vector(inputs[2], w[0]) }
            return [ValueInfo(dtype: try DTypeRules.common(inputs), shape: [x[0], .fixed(w[0])] + spatial)]
        }

        func shape(inChannels: Int, outChannels: Int) -> Conv2DShape {
            Conv2DShape(inChannels: inChannels, outChannels: outChannels, kernelH: kernel[0], kernelW: kernel[1],
                        strideH: strides[0], strideW: strides[1], dilationH: dilations[0], dilationW: dilations[1],
                        padTop: pads[0], padLeft: pads[1], padBottom: pads[2], padRight: pads[3], groups: groups)
        }

        /// In Double, summing bias then channels and kernel positions in order; 2-D through
        /// `ReferenceKernels.conv2d`, the fast kernels' twin (the same sums, in f32 storage).
        public func evaluate(_ inputs: [Tensor]) throws(OpFailure) -> [Tensor] {
            let x = inputs[0].shape, w = inputs[1].shape, s = kernel.count
            let spatial = try infer(inputs.map { ValueInfo(known: $0) })[0].fixedShape!
            let dtype = inputs.allSatisfy({ $0.dtype == inputs[0].dtype }) ? inputs[0].dtype : .f32
            if s == 2 && dtype == .f32 {
                let shape = self.shape(inChannels: x[1], outChannels: w[0])
                return [Tensor.f32(inputs, shape: spatial) { p, out in
                    guard spatial.product > 0 else { return }
                    ReferenceKernels.conv2d(shape: shape, input: p[0], weights: p[1], bias: inputs.count == 3 ? p[2] : nil, relu: false,
                                            output: out, batch: x[0], inHeight: x[2], inWidth: x[3])
                }]
            }
            let input = inputs[0].doubles(), weight = inputs[1].doubles(), bias = inputs.count == 3 ? inputs[2].doubles() : nil
            let inSpatial = Array(x[2...]), outSpatial = Array(spatial[2...])
            let inStrides = denseStrides(inSpatial), kernelCount = kernel.product, inVolume = inSpatial.product
            let groupIn = w[1], groupOut = w[0] / groups
            var y: [Double] = []
            y.reserveCapacity(spatial.product)
            var o = [Int](repeating: 0, count: s), k = [Int](repeating: 0, count: s)
            for n in 0..<x[0] {
                for oc in 0..<w[0] {
                    let g = oc / groupOut
                    for position in 0..<outSpatial.product {
                        var rest = position
                        for d in (0..<s).reversed() { o[d] = rest % outSpatial[d]; rest /= outSpatial[d] }
                        var sum = bias?[oc] ?? 0
                        for c in 0..<groupIn {
                            let ic = g * groupIn + c
                            for kk in 0..<kernelCount {
                                var r = kk, at = 0, inside = true
                                for d in (0..<s).reversed() {
                                    k[d] = r % kernel[d]
                                    r /= kernel[d]
                                    let i = o[d] * strides[d] - pads[d] + k[d] * dilations[d]
                                    if i < 0 || i >= inSpatial[d] { inside = false; break }
                                    at += i * inStrides[d]
                                }
                                guard inside else { continue }
                                sum += input[(n * x[1] + ic) * inVolume + at] * weight[(oc * groupIn + c) * kernelCount + kk]
                            }
                        }
                        y.append(sum)
                    }
                }
            }
            return [Tensor(dtype: dtype, shape: spatial, doubles: y)]
        }

        /// The packed kernel (its own copy of the weights: the weight's pages are released), with the
        /// following ReLU fused when allowed.
        public func lower(_ context: LoweringContext) throws(OpFailure) -> Lowering? {
            // Other than 2-D, or weights computed at run time: the reference.
            guard kernel.count == 2, context.node.inputs.dropFirst().allSatisfy({ context.constant($0) != nil }) else { return nil }
            let weight = try context.constantF32(1, "weight")
            let bias = context.node.inputs.count == 3 ? try context.constantF32(2, "bias") : nil
            let s = shape(inChannels: weight.shape[1] * groups, outChannels: weight.shape[0])
            let relu = context.reluFollows
            let kernel = weight.withContiguousBytes { w in
                let wp = w.bindMemory(to: Float.self).baseAddress!
                guard let bias else { return Conv2DKernel(shape: s, weights: wp, bias: nil, relu: relu, kernels: context.kernels) }
                return bias.withContiguousBytes { b in
                    Conv2DKernel(shape: s, weights: wp, bias: b.bindMemory(to: Float.self).baseAddress, relu: relu, kernels: context.kernels)
                }
            }
            weight.storage.releasePages()
            return Lowering(ConvStep(kernel: kernel), inputs: [context.node.inputs[0]], fusedRelu: relu)
        }

        public func exportONNX(_ node: Node, to onnx: inout ONNXExporter) throws(OpFailure) {
            onnx.emit("Conv", [("kernel_shape", .ints(kernel)), ("strides", .ints(strides)), ("pads", .ints(pads)),
                               ("dilations", .ints(dilations)), ("group", .int(groups))])
        }

        public static var onnxImporters: [ONNXImporter] {
            [ONNXImporter("Conv") { (b: inout ONNXGraphBuilder, n: ONNXNode) throws(ONNXImportError) in
                try n.allow(["auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"])
                try n.requireInputs(2...3)
                let weightShape = try b.shape(of: n.inputs[1], n)
                let kernelShape = weightShape.dropFirst(2).compactMap(\.value)
                guard weightShape.count >= 3, kernelShape.count == weightShape.count - 2 else {
                    throw n.error("weight '\(n.inputs[1])' must be a fixed [M, C/group, kernel…] tensor")
                }
                let s = kernelShape.count
                let kernel = try n.ints("kernel_shape") ?? kernelShape
                let strides = try n.ints("strides") ?? [Int](repeating: 1, count: s)
                let dilations = try n.ints("dilations") ?? [Int](repeating: 1, count: s)
                let conv = Conv(kernel: kernel, strides: strides, dilations: dilations,
                                pads: try b.pads(n, kernel: kernel, strides: strides, dilations: dilations), groups: try n.int("group", default: 1))
                try b.emit(n, conv, Array(n.inputs.prefix(2)) + (n.input(2).map { [$0] } ?? []))
            }]
        }
    }
}

/// A packed convolution (im2col, implicit GEMM or Winograd, as `Conv2DKernel` chose).
struct ConvStep: StepKernel {
    let kernel: Conv2DKernel

    func workspaceBytes(inputShapes: [[Int]], threads: Int) -> Int {
        let x = inputShapes[0]
        return kernel.workspaceBytes(batch: x[0], inHeight: x[2], inWidth: x[3], threads: threads)
    }

    func describe(inputShapes: [[Int]], outputShape: [Int]) -> (text: String, flops: Double, executed: Double) {
        let s = kernel.shape
        let group = s.groups > 1 ? " g\(s.groups)" : ""
        let stride = s.strideH > 1 || s.strideW > 1 ? "/\(s.strideH)" : ""
        let flops = 2 * Double(outputShape.product) * Double(s.reductionSize)
        guard let w = kernel.winogradTransform, outputShape.count == 4 else {
            return ("conv \(s.inChannels)→\(s.outChannels) \(s.kernelH)×\(s.kernelW)\(stride)\(group)\(kernel.relu ? " +relu" : "") \(kernel.method.rawValue)",
                    flops, flops)
        }
        let tiles = outputShape[0] * ((outputShape[2] + w.m - 1) / w.m) * ((outputShape[3] + w.m - 1) / w.m)
        let executed = 2 * Double(tiles * w.alpha * w.alpha * s.outChannels * s.groupInChannels)
        return ("conv \(s.inChannels)→\(s.outChannels) \(s.kernelH)×\(s.kernelW)\(group)\(kernel.relu ? " +relu" : "") winograd F(\(w.m),\(w.r))",
                flops, executed)
    }

    func run(_ b: StepBuffers) {
        let x = b.inputShapes[0]
        kernel.run(input: b.inputs[0], output: b.output, batch: x[0], inHeight: x[2], inWidth: x[3], workspace: b.workspace, pool: b.pool)
    }
}
