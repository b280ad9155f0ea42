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

        /// The packed kernel (its own copy of the weights: the weight's pages are released), with a
        /// following BatchNormalization folded into its weights and bias, and a following residual
        /// Add (not depthwise) and activation in its epilogue, when offered.
        public func lower(_ context: LoweringContext) throws(OpFailure) -> Lowering? {
            // Other than 2-D, or weights computed at run time: the reference.
            guard kernel.count == 2, context.node.inputs.dropFirst().allSatisfy({ context.constant($0) != nil }) else { return nil }
            let weight = try context.constantF32(1, "weight")
            let bias = context.node.inputs.count == 3 ? try context.constantF32(2, "bias").floats() : nil
            let s = shape(inChannels: weight.shape[1] * groups, outChannels: weight.shape[0])
            let offer = context.offer, kernels = context.kernels
            // Depthwise: a direct kernel (the GEMM path would run one tiny GEMM per channel), without a residual.
            let depthwise = s.groups == s.inChannels && s.outChannels == s.inChannels
            let residual = depthwise ? nil : offer.residual
            let batchNorm = offer.batchNorm
            let activation = offer.residual == nil || residual != nil ? offer.activation : nil
            // The image size the graph declares, where it decides the method.
            let x = context.inputs[0].shape
            let method = x.count == 4 ? Conv2DKernel.preferredMethod(for: s, inHeight: x[2].value, inWidth: x[3].value) : nil
            let epilogue = (batchNorm != nil ? " +bn" : "") + (residual != nil ? " +add" : "") + (activation.map { " +" + $0.name } ?? "")
            func build(_ w: UnsafePointer<Float>, _ b: UnsafePointer<Float>?) -> any StepKernel {
                if depthwise, let kernel = DepthwiseConvKernel(shape: s, weights: w, bias: b, activation: activation, kernels: kernels) {
                    return DepthwiseConvStep(kernel: kernel, epilogue: epilogue)
                }
                return ConvStep(kernel: Conv2DKernel(shape: s, weights: w, bias: b, activation: activation, residual: residual != nil,
                                                     kernels: kernels, method: method), epilogue: epilogue)
            }
            let step = weight.withContiguousBytes { raw in
                let w = raw.bindMemory(to: Float.self).baseAddress!
                if let batchNorm {
                    let folded = batchNorm.fold(weights: w, bias: bias, channels: s.outChannels, rest: weight.count / s.outChannels)
                    weight.storage.releasePages()  // packed from the folded copy: the file's pages are not read again
                    return folded.weights.withUnsafeBufferPointer { fw in
                        folded.bias.withUnsafeBufferPointer { fb in build(fw.baseAddress!, fb.baseAddress!) }
                    }
                }
                guard let bias else { return build(w, nil) }
                return bias.withUnsafeBufferPointer { build(w, $0.baseAddress!) }
            }
            weight.storage.releasePages()
            return Lowering(step, inputs: [context.node.inputs[0]] + (residual.map { [$0] } ?? []), fusedBatchNorm: batchNorm != nil,
                            fusedResidual: residual != nil, fusedActivation: activation != nil)
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

/// A depthwise Conv (`DepthwiseConvKernel`), with what it absorbed (`epilogue`: " +bn +relu6").
struct DepthwiseConvStep: StepKernel {
    let kernel: DepthwiseConvKernel
    let epilogue: String

    func workspaceBytes(inputShapes: [[Int]], threads: Int) -> Int {
        let x = inputShapes[0]
        return kernel.workspaceBytes(batch: x[0], inHeight: x[2], inWidth: x[3])
    }

    func describe(inputShapes: [[Int]], outputShape: [Int]) -> (text: String, flops: Double, executed: Double) {
        let s = kernel.shape
        let stride = s.strideH > 1 || s.strideW > 1 ? "/\(s.strideH)" : ""
        let flops = 2 * Double(outputShape.product) * Double(s.kernelH * s.kernelW)
        return ("conv \(s.inChannels) depthwise \(s.kernelH)×\(s.kernelW)\(stride)\(epilogue) direct", flops, flops)
    }

    func run(_ b: StepBuffers) {
        let x = b.inputShapes[0]
        kernel.run(input: b.inputs[0], output: b.output, batch: x[0], inHeight: x[2], inWidth: x[3], workspace: b.workspace, pool: b.pool)
    }
}

/// A packed convolution (im2col, implicit GEMM or Winograd, as `Conv2DKernel` chose), with what it
/// absorbed (`epilogue`).
struct ConvStep: StepKernel {
    let kernel: Conv2DKernel
    let epilogue: String

    func workspaceBytes(inputShapes: [[Int]], threads: Int) -> Int {
        let x = inputShapes[0]
        return kernel.workspaceBytes(batch: x[0], inHeight: x[2], inWidth: x[3], threads: threads)
    }

    /// The residual (input 1), where the kernel adds it as each output element is written.
    var inPlaceInput: Int? { kernel.addsResidualInPlace ? 1 : nil }

    func describe(inputShapes: [[Int]], outputShape: [Int]) -> (text: String, flops: Double, executed: Double) {
        let s = kernel.shape
        let group = s.groups > 1 ? " g\(s.groups)" : ""
        let stride = s.strideH > 1 || s.strideW > 1 ? "/\(s.strideH)" : ""
        let flops = 2 * Double(outputShape.product) * Double(s.reductionSize)
        guard let w = kernel.winogradTransform, outputShape.count == 4 else {
            return ("conv \(s.inChannels)→\(s.outChannels) \(s.kernelH)×\(s.kernelW)\(stride)\(group)\(epilogue) \(kernel.method.rawValue)",
                    flops, flops)
        }
        let tiles = outputShape[0] * ((outputShape[2] + w.m - 1) / w.m) * ((outputShape[3] + w.m - 1) / w.m)
        let executed = 2 * Double(tiles * w.alpha * w.alpha * s.outChannels * s.groupInChannels)
        return ("conv \(s.inChannels)→\(s.outChannels) \(s.kernelH)×\(s.kernelW)\(group)\(epilogue) winograd F(\(w.m),\(w.r))",
                flops, executed)
    }

    func run(_ b: StepBuffers) {
        let x = b.inputShapes[0]
        kernel.run(input: b.inputs[0], output: b.output, batch: x[0], inHeight: x[2], inWidth: x[3], workspace: b.workspace, pool: b.pool,
                   residual: b.inputs.count > 1 ? UnsafePointer(b.inputs[1]) : nil)
    }
}

extension Op {
    /// Transposed convolution (ONNX ConvTranspose; torch.nn.ConvTranspose1d/2d/3d): X [N, C, in…],
    /// W [C, M/group, kernel…], optional B [M]; out = stride·(in − 1) + output_padding +
    /// (kernel − 1)·dilation + 1 − pad_begin − pad_end. Reference semantics only.
    public struct ConvTranspose: Operator, Equatable {
        public var kernel: [Int]
        public var strides: [Int]
        public var dilations: [Int]
        /// [begin…, end…].
        public var pads: [Int]
        public var outputPadding: [Int]
        public var groups: Int
        public init(kernel: [Int], strides: [Int], dilations: [Int], pads: [Int], outputPadding: [Int], groups: Int) {
            self.kernel = kernel
            self.strides = strides
            self.dilations = dilations
            self.pads = pads
            self.outputPadding = outputPadding
            self.groups = groups
        }
        public var name: String { "ConvTranspose" }
        public var inputArity: ClosedRange<Int> { 2...3 }
        public var summary: String { "k=\(kernel) s=\(strides) p=\(pads)" + (groups == 1 ? "" : " g=\(groups)") }

        public func infer(_ inputs: [ValueInfo]) throws(OpFailure) -> [ValueInfo] {
            try DTypeRules.floating(inputs)
            let x = inputs[0].shape, s = kernel.count
            guard x.count == s + 2, let w = inputs[1].fixedShape, w.count == s + 2, Array(w[2...]) == kernel else {
                throw OpFailure("input \(inputs[0]) and weight \(inputs[1]) must be [N, C, …] and [C, M/group, \(kernel.map(String.init).joined(separator: "×"))]")
            }
            guard strides.count == s, dilations.count == s, pads.count == 2 * s, outputPadding.count == s,
                  strides.allSatisfy({ $0 >= 1 }), dilations.allSatisfy({ $0 >= 1 }), groups >= 1 else {
                throw OpFailure("attributes must have one positive value per spatial dim")
            }
            guard try ShapeRules.fixed(x[1], "input channels") == w[0], w[0] % groups == 0 else {
                throw OpFailure("input has \(x[1]) channels, weight '\(inputs[1].name)' takes \(w[0]) in \(groups) groups")
            }
            if inputs.count == 3 { try ShapeRules.vector(inputs[2], w[1] * groups) }
            var spatial: [Dim] = []
            for d in 0..<s {
                let size = try ShapeRules.fixed(x[2 + d], "spatial dimension \(d)")
                let span = try ShapeRules.add(try ShapeRules.multiply(kernel[d] - 1, dilations[d], "the window"), 1, "the window")
                let out = try ShapeRules.add(try ShapeRules.add(try ShapeRules.multiply(strides[d], size - 1, "the output"), outputPadding[d], "the output"),
                                             span, "the output") - pads[d] - pads[d + s]
                guard out >= 0 else { throw OpFailure("pads \(pads) leave no output in dimension \(d)") }
                spatial.append(.fixed(out))
            }
            return [ValueInfo(dtype: try DTypeRules.common(inputs), shape: [x[0], .fixed(w[1] * groups)] + spatial)]
        }

        public func evaluate(_ inputs: [Tensor]) throws(OpFailure) -> [Tensor] {
            let shape = try infer(inputs.map { ValueInfo(known: $0) })[0].fixedShape!
            let x = inputs[0].shape, w = inputs[1].shape, s = kernel.count
            let input = inputs[0].doubles(), weight = inputs[1].doubles(), bias = inputs.count == 3 ? inputs[2].doubles() : nil
            let inSpatial = Array(x[2...]), outSpatial = Array(shape[2...])
            let outStrides = denseStrides(outSpatial), inVolume = inSpatial.product, outVolume = outSpatial.product
            let kernelCount = kernel.product, groupIn = w[0] / groups, groupOut = w[1], outChannels = shape[1]
            var y = [Double](repeating: 0, count: shape.product)
            for n in 0..<x[0] {
                for oc in 0..<outChannels { for o in 0..<outVolume { y[(n * outChannels + oc) * outVolume + o] = bias?[oc] ?? 0 } }
                for ic in 0..<x[1] {
                    let g = ic / groupIn
                    for position in 0..<inVolume {
                        var i = [Int](repeating: 0, count: s), rest = position
                        for d in (0..<s).reversed() { i[d] = rest % inSpatial[d]; rest /= inSpatial[d] }
                        let value = input[(n * x[1] + ic) * inVolume + position]
                        for kk in 0..<kernelCount {
                            var r = kk, at = 0, inside = true
                            for d in (0..<s).reversed() {
                                let k = r % kernel[d]
                                r /= kernel[d]
                                let o = i[d] * strides[d] + k * dilations[d] - pads[d]
                                if o < 0 || o >= outSpatial[d] { inside = false; break }
                                at += o * outStrides[d]
                            }
                            guard inside else { continue }
                            for m in 0..<groupOut {
                                y[(n * outChannels + g * groupOut + m) * outVolume + at] += value * weight[(ic * groupOut + m) * kernelCount + kk]
                            }
                        }
                    }
                }
            }
            let dtype = inputs.allSatisfy({ $0.dtype == inputs[0].dtype }) ? inputs[0].dtype : .f32
            return [Tensor(dtype: dtype, shape: shape, doubles: y)]
        }

        public func exportONNX(_ node: Node, to onnx: inout ONNXExporter) throws(OpFailure) {
            onnx.emit("ConvTranspose", [("kernel_shape", .ints(kernel)), ("strides", .ints(strides)), ("dilations", .ints(dilations)),
                                        ("pads", .ints(pads)), ("output_padding", .ints(outputPadding)), ("group", .int(groups))])
        }

        /// Pads from `pads`, or — with `output_shape` or auto_pad SAME_* — from the output size
        /// asked for (ONNX's total_padding rule), for the input's declared size.
        public static var onnxImporters: [ONNXImporter] {
            [ONNXImporter("ConvTranspose") { (b: inout ONNXGraphBuilder, n: ONNXNode) throws(ONNXImportError) in
                try n.allow(["auto_pad", "dilations", "group", "kernel_shape", "output_padding", "output_shape", "pads", "strides"])
                try n.requireInputs(2...3)
                let w = try b.shape(of: n.inputs[1], n), x = try b.shape(of: n.inputs[0], n)
                let kernelShape = w.dropFirst(2).compactMap(\.value)
                guard w.count >= 3, kernelShape.count == w.count - 2, x.count == w.count else {
                    throw n.error("input and weight '\(n.inputs[1])' must be [N, C, …] and a fixed [C, M/group, kernel…] of the same rank")
                }
                let s = kernelShape.count
                let kernel = try n.ints("kernel_shape") ?? kernelShape
                let strides = try n.ints("strides") ?? [Int](repeating: 1, count: s)
                let dilations = try n.ints("dilations") ?? [Int](repeating: 1, count: s)
                var outputPadding = try n.ints("output_padding") ?? [Int](repeating: 0, count: s)
                guard kernel.count == s, strides.count == s, dilations.count == s, outputPadding.count == s,
                      strides.allSatisfy({ $0 >= 1 }), dilations.allSatisfy({ $0 >= 1 }), kernel.allSatisfy({ $0 >= 1 }) else {
                    throw n.error("kernel_shape, strides, dilations and output_padding need one positive value per spatial dim")
                }
                let autoPad = try n.string("auto_pad", default: "NOTSET")
                var pads = try n.ints("pads") ?? [Int](repeating: 0, count: 2 * s)
                guard pads.count == 2 * s, pads.allSatisfy({ $0 >= 0 }) else { throw n.error("pads \(pads) must be \(2 * s) non-negative values") }
                var outputShape = try n.ints("output_shape")
                if outputShape == nil, autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER" {
                    let sizes = x.dropFirst(2).compactMap(\.value)
                    guard sizes.count == s else { throw n.error("auto_pad \(autoPad) needs fixed spatial sizes") }
                    outputShape = zip(sizes, strides).map { $0 * $1 }
                }
                if var target = outputShape {
                    if target.count == s + 2 { target = Array(target.dropFirst(2)) }
                    let sizes = x.dropFirst(2).compactMap(\.value)
                    guard target.count == s, sizes.count == s else { throw n.error("output_shape \(target) needs fixed spatial sizes, one per dim") }
                    for d in 0..<s {
                        let total = strides[d] * (sizes[d] - 1) + outputPadding[d] + (kernel[d] - 1) * dilations[d] + 1 - target[d]
                        if total < 0 { outputPadding[d] -= total; pads[d] = 0; pads[d + s] = 0; continue }  // grown with output padding
                        (pads[d], pads[d + s]) = autoPad == "SAME_UPPER" ? (total / 2, total - total / 2) : (total - total / 2, total / 2)
                    }
                } else if autoPad != "NOTSET" && autoPad != "VALID" {
                    throw n.error("attribute 'auto_pad': unknown value '\(autoPad)'")
                }
                let op = ConvTranspose(kernel: kernel, strides: strides, dilations: dilations, pads: pads, outputPadding: outputPadding,
                                       groups: try n.int("group", default: 1))
                try b.emit(n, op, Array(n.inputs.prefix(2)) + (n.input(2).map { [$0] } ?? []))
            }]
        }
    }
}
