/// Pooling over [N, C, spatial…]: MaxPool and AveragePool (any number of spatial dims, dilated;
/// 2-D undilated f32 has the fast kernels), torch's AdaptiveAvgPool2d, GlobalAveragePool,
/// GlobalMaxPool.
import ZooCore
import ZooKernels

extension Op {
    /// Max / average pooling attributes, one per spatial dim. Pads are [begin…, end…] ([top, left,
    /// bottom, right] in 2-D; all 0 when empty). With `ceilMode`, a last window that would start in
    /// the end padding is dropped (PyTorch and ONNX agree).
    public struct Pool: Sendable, Equatable {
        public var kernel: [Int]
        public var strides: [Int]
        public var pads: [Int]
        public var dilations: [Int]
        public var ceilMode: Bool
        /// Average pooling only: whether padding counts in the divisor.
        public var countIncludePad: Bool
        public init(kernel: [Int], strides: [Int], pads: [Int] = [], dilations: [Int] = [], ceilMode: Bool = false,
                    countIncludePad: Bool = false) {
            self.kernel = kernel
            self.strides = strides
            self.pads = pads.isEmpty ? [Int](repeating: 0, count: 2 * kernel.count) : pads
            self.dilations = dilations.isEmpty ? [Int](repeating: 1, count: kernel.count) : dilations
            self.ceilMode = ceilMode
            self.countIncludePad = countIncludePad
        }

        /// The 2-D undilated case the fast kernels take.
        var isPlain2D: Bool { kernel.count == 2 && dilations == [1, 1] }

        var shape: Pool2DShape {
            Pool2DShape(kernelH: kernel[0], kernelW: kernel[1], strideH: strides[0], strideW: strides[1],
                        padTop: pads[0], padLeft: pads[1], padBottom: pads[2], padRight: pads[3])
        }

        func summary(average: Bool) -> String {
            func list(_ v: [Int]) -> String { v.map(String.init).joined(separator: "×") }
            var s = "k=\(list(kernel)) s=\(list(strides))"
            if pads.contains(where: { $0 != 0 }) { s += " p=\(pads.map(String.init).joined(separator: ","))" }
            if dilations.contains(where: { $0 != 1 }) { s += " d=\(list(dilations))" }
            if ceilMode { s += " ceil" }
            if average && countIncludePad { s += " count_include_pad" }
            return s
        }

        func infer(_ inputs: [ValueInfo]) throws(OpFailure) -> [ValueInfo] {
            try DTypeRules.floating(inputs)
            let x = inputs[0].shape, s = kernel.count
            let spatial = try ShapeRules.slidingWindow(inputs[0], kernel: kernel, strides: strides, dilations: dilations, pads: pads, ceil: ceilMode)
            for d in 0..<s where pads[d] >= kernel[d] || pads[d + s] >= kernel[d] {
                throw OpFailure("pads \(pads) must be smaller than the kernel \(kernel)")
            }
            return [ValueInfo(dtype: inputs[0].dtype, shape: [x[0], x[1]] + spatial)]
        }

        /// The reference for any number of spatial dims, in Double: a max where NaN wins and padding
        /// never does, or a mean whose divisor counts the window's elements inside the input (or, with
        /// `countIncludePad`, inside the padded input).
        func evaluate(_ input: Tensor, average: Bool) throws(OpFailure) -> Tensor {
            let outShape = try infer([ValueInfo(known: input)])[0].fixedShape!
            let x = input.shape, s = kernel.count
            if isPlain2D && input.dtype == .f32 {
                return Tensor.f32([input], shape: outShape) { p, y in
                    guard outShape.product > 0 else { return }
                    if average {
                        ReferenceKernels.averagePool(shape, countIncludePad: countIncludePad, input: p[0], output: y, planes: x[0] * x[1],
                                                     inHeight: x[2], inWidth: x[3], outHeight: outShape[2], outWidth: outShape[3], pool: Op.referencePool)
                    } else {
                        ReferenceKernels.maxPool(shape, input: p[0], output: y, planes: x[0] * x[1], inHeight: x[2], inWidth: x[3],
                                                 outHeight: outShape[2], outWidth: outShape[3], pool: Op.referencePool)
                    }
                }
            }
            let values = input.doubles()
            let inSpatial = Array(x[2...]), outSpatial = Array(outShape[2...])
            let inStrides = denseStrides(inSpatial), inVolume = inSpatial.product, kernelCount = kernel.product
            var y: [Double] = []
            y.reserveCapacity(outShape.product)
            var o = [Int](repeating: 0, count: s)
            for plane in 0..<(x[0] * x[1]) {
                for position in 0..<outSpatial.product {
                    var rest = position
                    for d in (0..<s).reversed() { o[d] = rest % outSpatial[d]; rest /= outSpatial[d] }
                    var best = -Double.infinity, sum = 0.0, inside = 0, padded = 0
                    for kk in 0..<kernelCount {
                        var r = kk, at = 0, isInside = true, isInPadded = true
                        for d in (0..<s).reversed() {
                            let k = r % kernel[d]
                            r /= kernel[d]
                            let i = o[d] * strides[d] - pads[d] + k * dilations[d]
                            if i < 0 || i >= inSpatial[d] { isInside = false }
                            if i >= inSpatial[d] + pads[d + s] { isInPadded = false }
                            at += i * inStrides[d]
                        }
                        if isInPadded { padded += 1 }
                        guard isInside else { continue }
                        let v = values[plane * inVolume + at]
                        inside += 1
                        sum += v
                        if v > best || v.isNaN || best.isNaN { best = best.isNaN ? best : v }
                    }
                    let divisor = countIncludePad ? padded : inside
                    y.append(average ? (divisor > 0 ? sum / Double(divisor) : 0) : best)
                }
            }
            return Tensor(dtype: input.dtype, shape: outShape, doubles: y)
        }

        func attributes(average: Bool) -> [(name: String, value: ONNXExporter.Attribute)] {
            var attributes: [(name: String, value: ONNXExporter.Attribute)] = [
                ("kernel_shape", .ints(kernel)), ("strides", .ints(strides)), ("pads", .ints(pads)), ("ceil_mode", .int(ceilMode ? 1 : 0)),
            ]
            if dilations.contains(where: { $0 != 1 }) { attributes.append(("dilations", .ints(dilations))) }
            if average { attributes.append(("count_include_pad", .int(countIncludePad ? 1 : 0))) }
            return attributes
        }

        /// MaxPool and AveragePool from ONNX; opsets change which attributes exist.
        static func importer(max: Bool) -> ONNXImporter {
            ONNXImporter(max ? "MaxPool" : "AveragePool") { (b: inout ONNXGraphBuilder, n: ONNXNode) throws(ONNXImportError) in
                var allowed: Set<String> = ["auto_pad", "kernel_shape", "pads", "strides"]
                if b.opset >= 10 { allowed.formUnion(["ceil_mode", "dilations"]) }
                if max { allowed.insert("storage_order") } else if b.opset >= 7 { allowed.insert("count_include_pad") }  // AveragePool-7
                if !max && b.opset < 19 { allowed.remove("dilations") }
                try n.allow(allowed)
                try n.requireInputs(1...1)
                guard let kernel = try n.ints("kernel_shape") else { throw n.error("attribute 'kernel_shape' is required") }
                let strides = try n.ints("strides") ?? [Int](repeating: 1, count: kernel.count)
                let dilations = try n.ints("dilations") ?? [Int](repeating: 1, count: kernel.count)
                if max, try n.int("storage_order", default: 0) != 0 { throw n.error("storage_order 1 (column-major indices) is not supported") }
                var pool = Pool(kernel: kernel, strides: strides, pads: try b.pads(n, kernel: kernel, strides: strides, dilations: dilations),
                                dilations: dilations, ceilMode: try n.int("ceil_mode", default: 0) != 0)
                if !max { pool.countIncludePad = try n.int("count_include_pad", default: 0) != 0 }
                try b.emit(n, max ? MaxPool(pool) as any Operator : AveragePool(pool), [n.inputs[0]])
            }
        }
    }

    public struct MaxPool: Operator, Equatable {
        public var pool: Pool
        public init(_ pool: Pool) { self.pool = pool }
        public var name: String { "MaxPool" }
        public var summary: String { pool.summary(average: false) }
        public func infer(_ inputs: [ValueInfo]) throws(OpFailure) -> [ValueInfo] { try pool.infer(inputs) }
        public func evaluate(_ inputs: [Tensor]) throws(OpFailure) -> [Tensor] { [try pool.evaluate(inputs[0], average: false)] }
        public func lower(_ context: LoweringContext) throws(OpFailure) -> Lowering? {
            pool.isPlain2D ? Lowering(PoolStep(kind: .max, pool: pool), inputs: [context.node.inputs[0]]) : nil
        }
        public func exportONNX(_ node: Node, to onnx: inout ONNXExporter) throws(OpFailure) {
            onnx.emit("MaxPool", pool.attributes(average: false))
        }
        public static var onnxImporters: [ONNXImporter] { [Pool.importer(max: true)] }
    }

    public struct AveragePool: Operator, Equatable {
        public var pool: Pool
        public init(_ pool: Pool) { self.pool = pool }
        public var name: String { "AveragePool" }
        public var summary: String { pool.summary(average: true) }
        public func infer(_ inputs: [ValueInfo]) throws(OpFailure) -> [ValueInfo] { try pool.infer(inputs) }
        public func evaluate(_ inputs: [Tensor]) throws(OpFailure) -> [Tensor] { [try pool.evaluate(inputs[0], average: true)] }
        public func lower(_ context: LoweringContext) throws(OpFailure) -> Lowering? {
            pool.isPlain2D ? Lowering(PoolStep(kind: .average, pool: pool), inputs: [context.node.inputs[0]]) : nil
        }
        public func exportONNX(_ node: Node, to onnx: inout ONNXExporter) throws(OpFailure) {
            guard onnx.opset >= 19 || pool.dilations.allSatisfy({ $0 == 1 }) else { throw OpFailure("a dilated AveragePool needs opset 19 or later") }
            onnx.emit("AveragePool", pool.attributes(average: true))
        }
        public static var onnxImporters: [ONNXImporter] { [Pool.importer(max: false)] }
    }

    /// torch.nn.AdaptiveAvgPool2d: output window i spans [floor(i·in/out), ceil((i+1)·in/out)).
    public struct AdaptiveAveragePool: Operator, Equatable {
        public var outputHeight: Int
        public var outputWidth: Int
        public init(outputHeight: Int, outputWidth: Int) {
            self.outputHeight = outputHeight
            self.outputWidth = outputWidth
        }
        public var name: String { "AdaptiveAvgPool2d" }
        public var summary: String { "out=\(outputHeight)×\(outputWidth)" }

        public func infer(_ inputs: [ValueInfo]) throws(OpFailure) -> [ValueInfo] {
            try DTypeRules.floating(inputs)
            let x = inputs[0].shape
            try ShapeRules.rank(inputs[0], 4)
            guard outputHeight >= 1, outputWidth >= 1 else { throw OpFailure("output size \(outputHeight)×\(outputWidth) must be positive") }
            _ = try ShapeRules.fixed(x[2], "height")
            _ = try ShapeRules.fixed(x[3], "width")
            return [ValueInfo(dtype: .f32, shape: [x[0], x[1], .fixed(outputHeight), .fixed(outputWidth)])]
        }
        public func evaluate(_ inputs: [Tensor]) throws(OpFailure) -> [Tensor] {
            [adaptiveAverage(inputs[0], outputHeight, outputWidth)]
        }
        public func lower(_ context: LoweringContext) throws(OpFailure) -> Lowering? {
            Lowering(PoolStep(kind: .adaptiveAverage, pool: nil), inputs: [context.node.inputs[0]])
        }

        /// ONNX has no adaptive pooling: when the input's declared size divides the output's, it is an
        /// AveragePool with kernel = stride = in/out (as torch's exporter writes it), otherwise refused.
        public func exportONNX(_ node: Node, to onnx: inout ONNXExporter) throws(OpFailure) {
            guard let shape = onnx.values[node.inputs[0]]?.shape, shape.count == 4, let inH = shape[2].value, let inW = shape[3].value else {
                throw OpFailure("the input's spatial size must be fixed to write an adaptive pool as AveragePool")
            }
            guard inH % outputHeight == 0, inW % outputWidth == 0 else {
                throw OpFailure("input \(inH)×\(inW) does not divide into the output \(outputHeight)×\(outputWidth): ONNX has no adaptive "
                    + "pooling, and AveragePool expresses it only when every output cell covers in/out inputs "
                    + "(kernel = stride = in/out), as torch's exporter requires too")
            }
            let kernel = [inH / outputHeight, inW / outputWidth]
            onnx.emit("AveragePool", Pool(kernel: kernel, strides: kernel).attributes(average: true))
        }
        public static var onnxImporters: [ONNXImporter] { [] }
    }

    /// The mean over height and width: [N, C, H, W] → [N, C, 1, 1].
    public struct GlobalAveragePool: Operator, Equatable {
        public init() {}
        public var name: String { "GlobalAveragePool" }
        public func infer(_ inputs: [ValueInfo]) throws(OpFailure) -> [ValueInfo] {
            try DTypeRules.floating(inputs)
            try ShapeRules.rank(inputs[0], 4)
            let x = inputs[0].shape
            return [ValueInfo(dtype: .f32, shape: [x[0], x[1], .fixed(1), .fixed(1)])]
        }
        public func evaluate(_ inputs: [Tensor]) throws(OpFailure) -> [Tensor] { [adaptiveAverage(inputs[0], 1, 1)] }
        public func lower(_ context: LoweringContext) throws(OpFailure) -> Lowering? {
            Lowering(PoolStep(kind: .adaptiveAverage, pool: nil), inputs: [context.node.inputs[0]])
        }
        public func exportONNX(_ node: Node, to onnx: inout ONNXExporter) throws(OpFailure) { onnx.emit("GlobalAveragePool") }
        public static var onnxImporters: [ONNXImporter] {
            [.plain("GlobalAveragePool", inputs: 1...1, GlobalAveragePool())]
        }
    }

    /// The max over height and width: [N, C, H, W] → [N, C, 1, 1] (NaN wins).
    public struct GlobalMaxPool: Operator, Equatable {
        public init() {}
        public var name: String { "GlobalMaxPool" }
        public func infer(_ inputs: [ValueInfo]) throws(OpFailure) -> [ValueInfo] {
            try DTypeRules.floating(inputs)
            try ShapeRules.rank(inputs[0], 4)
            let x = inputs[0].shape
            return [ValueInfo(dtype: .f32, shape: [x[0], x[1], .fixed(1), .fixed(1)])]
        }
        public func evaluate(_ inputs: [Tensor]) throws(OpFailure) -> [Tensor] {
            let x = inputs[0].shape
            let pool = Pool(kernel: [x[2], x[3]], strides: [1, 1])
            return [Tensor.f32(inputs, shape: [x[0], x[1], 1, 1]) { p, y in
                ReferenceKernels.maxPool(pool.shape, input: p[0], output: y, planes: x[0] * x[1], inHeight: x[2], inWidth: x[3],
                                         outHeight: 1, outWidth: 1, pool: Op.referencePool)
            }]
        }
        public func exportONNX(_ node: Node, to onnx: inout ONNXExporter) throws(OpFailure) { onnx.emit("GlobalMaxPool") }
        public static var onnxImporters: [ONNXImporter] {
            [.plain("GlobalMaxPool", inputs: 1...1, GlobalMaxPool())]
        }
    }

    /// A one-thread pool for reference evaluation (the reference kernels take a pool; results do not
    /// depend on its size).
    static let referencePool = ThreadPool(threads: 1)
}

/// Adaptive average pooling of an NCHW tensor to outH × outW (the reference).
private func adaptiveAverage(_ input: Tensor, _ outH: Int, _ outW: Int) -> Tensor {
    let x = input.shape
    return Tensor.f32([input], shape: [x[0], x[1], outH, outW]) { p, y in
        guard x[2] > 0, x[3] > 0 else { return }
        ReferenceKernels.adaptiveAveragePool(input: p[0], output: y, planes: x[0] * x[1], inHeight: x[2], inWidth: x[3],
                                             outHeight: outH, outWidth: outW, pool: Op.referencePool)
    }
}

/// Pooling with the selected kernel set.
struct PoolStep: StepKernel {
    enum Kind { case max, average, adaptiveAverage }
    let kind: Kind
    let pool: Op.Pool?

    func describe(inputShapes: [[Int]], outputShape: [Int]) -> (text: String, flops: Double, executed: Double) {
        switch kind {
        case .max: ("maxPool \(pool!.kernel[0])×\(pool!.kernel[1])/\(pool!.strides[0])", 0, 0)
        case .average: ("averagePool \(pool!.kernel[0])×\(pool!.kernel[1])/\(pool!.strides[0])", 0, 0)
        case .adaptiveAverage: ("adaptiveAveragePool", 0, 0)
        }
    }

    func run(_ b: StepBuffers) {
        let x = b.inputShapes[0], y = b.outputShape
        switch kind {
        case .max:
            PoolKernels.maxPool(pool!.shape, input: b.inputs[0], output: b.output, planes: x[0] * x[1], inHeight: x[2], inWidth: x[3],
                                outHeight: y[2], outWidth: y[3], pool: b.pool, kernels: b.kernels)
        case .average:
            PoolKernels.averagePool(pool!.shape, countIncludePad: pool!.countIncludePad, input: b.inputs[0], output: b.output,
                                    planes: x[0] * x[1], inHeight: x[2], inWidth: x[3], outHeight: y[2], outWidth: y[3],
                                    pool: b.pool, kernels: b.kernels)
        case .adaptiveAverage:
            PoolKernels.adaptiveAveragePool(input: b.inputs[0], output: b.output, planes: x[0] * x[1], inHeight: x[2], inWidth: x[3],
                                            outHeight: y[2], outWidth: y[3], pool: b.pool, kernels: b.kernels)
        }
    }
}
