#if canImport(Glibc)
import Glibc
#endif
import XCTest
@testable import ZooKernels

/// Opt-in throughput benchmark of the AlexNet layer shapes (run with `ZOO_BENCH=1`, ideally
/// `swift test -c release --filter BenchmarkTests`; the kernels are optimized in debug too).
/// Prints GFLOP/s per layer at batch 1 and 16 and ms per image for the whole conv+fc stack
/// (pooling excluded: it belongs to the executor). Threads: ZOO_BENCH_THREADS (default 2).
final class BenchmarkTests: XCTestCase {
    enum Layer {
        case conv(Conv2DShape, inSize: Int, residual: Bool = false, method: Conv2DKernel.Method? = nil, activation: Activation = .relu)
        case linear(inFeatures: Int, outFeatures: Int)
    }

    static let alexNet: [(String, Layer)] = [
        ("conv1 3→64 11×11 s4", .conv(Conv2DShape(inChannels: 3, outChannels: 64, kernelH: 11, kernelW: 11, strideH: 4, strideW: 4,
                                                 padTop: 2, padLeft: 2, padBottom: 2, padRight: 2), inSize: 224)),
        ("conv2 64→192 5×5", .conv(Conv2DShape(inChannels: 64, outChannels: 192, kernelH: 5, kernelW: 5,
                                              padTop: 2, padLeft: 2, padBottom: 2, padRight: 2), inSize: 27)),
        ("conv3 192→384 3×3", .conv(Conv2DShape(inChannels: 192, outChannels: 384, kernelH: 3, kernelW: 3,
                                               padTop: 1, padLeft: 1, padBottom: 1, padRight: 1), inSize: 13)),
        ("conv4 384→256 3×3", .conv(Conv2DShape(inChannels: 384, outChannels: 256, kernelH: 3, kernelW: 3,
                                               padTop: 1, padLeft: 1, padBottom: 1, padRight: 1), inSize: 13)),
        ("conv5 256→256 3×3", .conv(Conv2DShape(inChannels: 256, outChannels: 256, kernelH: 3, kernelW: 3,
                                               padTop: 1, padLeft: 1, padBottom: 1, padRight: 1), inSize: 13)),
        ("fc6 9216→4096", .linear(inFeatures: 9216, outFeatures: 4096)),
        ("fc7 4096→4096", .linear(inFeatures: 4096, outFeatures: 4096)),
        ("fc8 4096→1000", .linear(inFeatures: 4096, outFeatures: 1000)),
    ]

    /// A layer ready to run: kernel, buffers and its multiply-add count per image.
    final class Prepared {
        let run: () -> Void
        let macsPerImage: Double
        private var buffers: [UnsafeMutableRawPointer] = []

        init(_ layer: Layer, batch: Int, pool: ThreadPool) {
            func buffer(_ bytes: Int, fill: Bool) -> UnsafeMutableRawPointer {
                let p = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 64), alignment: 64)
                let floats = p.bindMemory(to: Float.self, capacity: max(bytes, 64) / 4)
                for i in 0..<(max(bytes, 64) / 4) { floats[i] = fill ? Float(i % 97) / 97 - 0.5 : 0 }
                return p
            }
            var made: [UnsafeMutableRawPointer] = []
            switch layer {
            case let .conv(shape, size, withResidual, method, activation):
                let out = shape.outputSize(inHeight: size, inWidth: size)
                let weights = buffer(shape.outChannels * shape.reductionSize * 4, fill: true)
                let bias = buffer(shape.outChannels * 4, fill: true)
                let kernel = Conv2DKernel(shape: shape, weights: weights.assumingMemoryBound(to: Float.self),
                                          bias: bias.assumingMemoryBound(to: Float.self), activation: activation,
                                          residual: withResidual, method: method)
                let input = buffer(batch * shape.inChannels * size * size * 4, fill: true)
                let output = buffer(batch * shape.outChannels * out.height * out.width * 4, fill: false)
                let ws = buffer(kernel.workspaceBytes(batch: batch, inHeight: size, inWidth: size, threads: pool.threadCount), fill: false)
                let residual = buffer(batch * shape.outChannels * out.height * out.width * 4, fill: true)
                made = [weights, bias, input, output, ws, residual]
                macsPerImage = Double(shape.outChannels * shape.reductionSize * out.height * out.width)
                run = {
                    kernel.run(input: input.assumingMemoryBound(to: Float.self), output: output.assumingMemoryBound(to: Float.self),
                               batch: batch, inHeight: size, inWidth: size, workspace: ws, pool: pool,
                               residual: withResidual ? UnsafePointer(residual.assumingMemoryBound(to: Float.self)) : nil)
                }
            case let .linear(inF, outF):
                let weights = buffer(inF * outF * 4, fill: true)
                let bias = buffer(outF * 4, fill: true)
                let kernel = LinearKernel(inFeatures: inF, outFeatures: outF, weights: weights.assumingMemoryBound(to: Float.self),
                                          owner: nil, bias: bias.assumingMemoryBound(to: Float.self), activation: .relu)
                let input = buffer(batch * inF * 4, fill: true)
                let output = buffer(batch * outF * 4, fill: false)
                let ws = buffer(kernel.workspaceBytes(batch: batch, threads: pool.threadCount), fill: false)
                made = [weights, bias, input, output, ws]
                macsPerImage = Double(inF * outF)
                run = {
                    kernel.run(input: input.assumingMemoryBound(to: Float.self), output: output.assumingMemoryBound(to: Float.self),
                               batch: batch, workspace: ws, pool: pool)
                }
            }
            buffers = made
        }

        deinit { for b in buffers { b.deallocate() } }
    }

    /// The pool benchmarks run on (ZOO_BENCH_THREADS, default 2); skips the test unless ZOO_BENCH=1.
    static func benchmarkPool() throws -> ThreadPool {
        let env = ProcessInfo.processInfo.environment
        try XCTSkipUnless(env["ZOO_BENCH"] == "1", "set ZOO_BENCH=1 to run the kernel benchmark")
        return ThreadPool(threads: Int(env["ZOO_BENCH_THREADS"] ?? "") ?? 2)
    }

    static func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }

    /// Best-of time in seconds for `body` (repeats until ~0.3 s spent, at least 3 times). With
    /// ZOO_BENCH_COLD=1 and a pool, every run starts from cold caches, as a layer inside a model
    /// does: `Self.flushBytes` written by the pool's threads first (not timed), evicting weights,
    /// input and workspace from L1, L2 and L3 (hot-cache figures misled layer-method choices).
    static func time(_ body: () -> Void, pool: ThreadPool? = nil) -> Double {
        let cold = pool != nil && ProcessInfo.processInfo.environment["ZOO_BENCH_COLD"] == "1"
        body()
        var best = Double.infinity, spent = 0.0, runs = 0
        while runs < 3 || spent < 0.3 {
            if cold, let pool { flushCaches(pool) }
            let start = now()
            body()
            let t = now() - start
            best = min(best, t); spent += t; runs += 1
        }
        return best
    }

    /// Twice the largest last-level cache this project's machines have (32 MB).
    static let flushBytes = 64 << 20
    nonisolated(unsafe) static let flushBuffer = UnsafeMutablePointer<Float>.allocate(capacity: flushBytes / 4)

    /// Writes `flushBuffer` from the pool's threads (each core evicts its own L1 and L2).
    static func flushCaches(_ pool: ThreadPool) {
        let buffer = flushBuffer
        pool.parallelChunks(flushBytes / 4) { range in (buffer + range.lowerBound).update(repeating: 1, count: range.count) }
    }

    /// GFLOP/s of the active set's 6×16 tile alone on operands that stay in L1 (the kernel's ceiling).
    static func microKernelPeak() -> Double {
        let k = Gemm.kc
        let a = [Float](repeating: 0.5, count: k * Gemm.mr), b = [Float](repeating: 0.25, count: k * Gemm.nr)
        var c = [Float](repeating: 0, count: Gemm.mr * Gemm.nr)
        let calls = 2000
        let t = a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                c.withUnsafeMutableBufferPointer { cp in
                    // The tile fetched once: each `KernelSet.active.table` copies the table (retaining
                    // every entry), which cost as much as a k = 64 tile and read as a 35 % lower ceiling.
                    let tile = KernelSet.active.table.tile
                    return time {
                        for _ in 0..<calls {
                            tile(TileArguments(
                                k: k, a: ap.baseAddress!, aRowStride: 0, b: bp.baseAddress!, c: cp.baseAddress!, ldc: Gemm.nr,
                                accumulate: true, finish: false, rowBias: nil, colBias: nil, relu: false))
                        }
                    }
                }
            }
        }
        return 2 * Double(calls * k * Gemm.mr * Gemm.nr) / t / 1e9
    }

    func testAlexNetThroughput() throws {
        let pool = try Self.benchmarkPool(), threads = pool.threadCount
        print(String(format: "6×16 micro-kernel, L1-resident operands, 1 thread: %.1f GFLOP/s", Self.microKernelPeak()))
        for batch in [1, 16] {
            print("AlexNet kernels, batch \(batch), \(threads) threads")
            var stack: [Prepared] = []
            var sum = 0.0
            for (name, layer) in Self.alexNet {
                let prepared = Prepared(layer, batch: batch, pool: pool)
                let t = Self.time(prepared.run)
                sum += t
                let gflops = 2 * prepared.macsPerImage * Double(batch) / t / 1e9
                print(String(format: "  %-20@ %8.3f ms  %6.1f GFLOP/s", name as NSString, t * 1e3, gflops))
                stack.append(prepared)
            }
            let whole = Self.time { for layer in stack { layer.run() } }
            print(String(format: "  whole stack: %.2f ms/image (sum of layer bests %.2f ms/image)",
                         whole * 1e3 / Double(batch), sum * 1e3 / Double(batch)))
        }
    }

    /// ResNet-50's strided 3×3 convolutions and its stem, by method (run with `ZOO_BENCH=1`, filter
    /// `testStridedShapes`).
    func testStridedShapes() throws {
        let pool = try Self.benchmarkPool()
        let shapes: [(Int, Int, Int, Int, Int)] = [(128, 128, 3, 2, 56), (256, 256, 3, 2, 28), (512, 512, 3, 2, 14), (3, 64, 7, 2, 224), (3, 32, 3, 2, 224),
                                                   (256, 512, 1, 2, 56), (512, 1024, 1, 2, 28), (1024, 2048, 1, 2, 14)]
        for (cin, cout, k, stride, size) in shapes {
            let pad = k / 2
            let shape = Conv2DShape(inChannels: cin, outChannels: cout, kernelH: k, kernelW: k, strideH: stride, strideW: stride,
                                    padTop: pad, padLeft: pad, padBottom: pad, padRight: pad)
            var line = String(format: "%4d→%-4d %d×%d/%d %3d×%-3d", cin, cout, k, k, stride, size, size)
            for method in [Conv2DKernel.Method.im2col, .implicitGemm, .pixelTiles] {
                let prepared = Prepared(.conv(shape, inSize: size, method: method), batch: 1, pool: pool)
                let t = Self.time(prepared.run, pool: pool)
                line += String(format: "  %@ %6.3f ms %5.1f", method.rawValue, t * 1e3, 2 * prepared.macsPerImage / t / 1e9)
            }
            print(line)
        }
    }

    /// ResNet-50's and MobileNet's 1×1 convolutions, with and without a residual, each method
    /// that applies (run with `ZOO_BENCH=1`, filter `testPointwiseShapes`).
    func testPointwiseShapes() throws {
        let pool = try Self.benchmarkPool()
        let shapes: [(Int, Int, Int)] = [(64, 64, 56), (64, 256, 56), (256, 64, 56), (256, 128, 56), (128, 512, 28), (512, 128, 28),
                                          (256, 1024, 14), (1024, 256, 14), (512, 2048, 7), (2048, 512, 7), (24, 144, 56), (144, 24, 56),
                                          (32, 16, 112), (16, 96, 112), (96, 24, 56), (32, 192, 28), (192, 32, 28), (96, 576, 14),
                                          (576, 96, 14), (160, 960, 7), (960, 160, 7), (512, 1000, 13), (320, 1280, 7)]
        for (cin, cout, size) in shapes {
            let shape = Conv2DShape(inChannels: cin, outChannels: cout, kernelH: 1, kernelW: 1)
            var line = String(format: "%4d→%-4d %3d×%-3d", cin, cout, size, size)
            for residual in [false, true] {
                for method in [Conv2DKernel.Method.im2col, .pixelTiles] {
                    let prepared = Prepared(.conv(shape, inSize: size, residual: residual, method: method), batch: 1, pool: pool)
                    let t = Self.time(prepared.run, pool: pool)
                    line += String(format: "  %@%@ %6.3f ms %5.1f", method == .im2col ? "col" : "pix", residual ? "+r" : "  ",
                                   t * 1e3, 2 * prepared.macsPerImage / t / 1e9)
                }
            }
            print(line)
        }
    }

    /// EfficientNet-B0's and MobileNet-V2's expanding 1×1 convolutions with each fused activation,
    /// and the activations alone over an array that stays in L2 (run with `ZOO_BENCH=1`, filter
    /// `testActivationCost`).
    func testActivationCost() throws {
        let pool = try Self.benchmarkPool()
        let activations: [Activation] = [.relu, .clip(low: 0, high: 6), .sigmoid, .silu, .hardSwish, .gelu]
        for (cin, cout, size) in [(16, 96, 112), (24, 144, 56), (40, 240, 28), (80, 480, 14), (192, 1152, 7)] {
            let shape = Conv2DShape(inChannels: cin, outChannels: cout, kernelH: 1, kernelW: 1)
            var line = String(format: "%4d→%-4d %3d×%-3d", cin, cout, size, size)
            for activation in activations {
                let prepared = Prepared(.conv(shape, inSize: size, activation: activation), batch: 1, pool: pool)
                line += String(format: "  %@ %6.3f", activation.name, Self.time(prepared.run) * 1e3)
            }
            print(line + " ms")
        }
        let count = 32768
        let x = (0..<count).map { Float($0 % 1999) / 100 - 10 }
        var y = [Float](repeating: 0, count: count)
        var line = "activation alone, ns per element:"
        for activation in activations {
            let t = x.withUnsafeBufferPointer { xp in
                y.withUnsafeMutableBufferPointer { yp in
                    Self.time { for _ in 0..<20 { KernelSet.active.table.activate(activation, xp.baseAddress!, yp.baseAddress!, count) } }
                }
            }
            line += String(format: "  %@ %.3f", activation.name, t / Double(20 * count) * 1e9)
        }
        print(line)
    }

    /// MobileNet-V2's and EfficientNet-B0's depthwise convolutions with ReLU6 and SiLU in each layout
    /// (run with `ZOO_BENCH=1`, filter `testDepthwiseShapes`).
    func testDepthwiseShapes() throws {
        let pool = try Self.benchmarkPool()
        let shapes: [(Int, Int, Int, Int)] = [(32, 3, 1, 112), (96, 3, 2, 112), (144, 3, 1, 56), (144, 5, 2, 56), (240, 5, 1, 28),
                                              (480, 3, 1, 14), (672, 5, 1, 14), (1152, 5, 1, 7), (960, 3, 1, 7),
                                              (384, 7, 1, 14), (768, 7, 1, 7)]
        for (channels, k, stride, size) in shapes {
            let shape = Conv2DShape(inChannels: channels, outChannels: channels, kernelH: k, kernelW: k, strideH: stride, strideW: stride,
                                    padTop: k / 2, padLeft: k / 2, padBottom: k / 2, padRight: k / 2, groups: channels)
            let out = shape.outputSize(inHeight: size, inWidth: size)
            var line = String(format: "%4d dw %d×%d/%d %3d×%-3d", channels, k, k, stride, size, size)
            let weights = [Float](repeating: 0.1, count: channels * k * k), bias = [Float](repeating: 0.1, count: channels)
            let input = (0..<(channels * size * size)).map { Float($0 % 97) / 97 - 0.5 }
            var output = [Float](repeating: 0, count: channels * out.height * out.width)
            for activation in [Activation.clip(low: 0, high: 6), .silu] {
                let kernel = weights.withUnsafeBufferPointer { w in
                    bias.withUnsafeBufferPointer { b in
                        DepthwiseConvKernel(shape: shape, weights: w.baseAddress!, bias: b.baseAddress!, activation: activation)!
                    }
                }
                let bytes = [DepthwiseConvKernel.Layout.planes, .lanes].map { kernel.workspaceBytes(batch: 1, inHeight: size, inWidth: size, layout: $0) }
                var workspace = [UInt8](repeating: 0, count: bytes.max()!)
                for layout in [DepthwiseConvKernel.Layout.planes, .lanes] {
                    let t = input.withUnsafeBufferPointer { x in
                        output.withUnsafeMutableBufferPointer { y in
                            workspace.withUnsafeMutableBytes { ws in
                                Self.time({
                                    kernel.run(input: x.baseAddress!, output: y.baseAddress!, batch: 1, inHeight: size, inWidth: size,
                                               workspace: ws.baseAddress!, pool: pool, layout: layout)
                                }, pool: pool)
                            }
                        }
                    }
                    line += String(format: "  %@ %@ %6.3f", activation.name, layout.rawValue, t * 1e3)
                }
            }
            print(line + " ms")
        }
    }
}

extension BenchmarkTests {
    /// SqueezeNet's squeeze (and an expand) 1×1 convolutions on 55×55 at batch 1 and 16, both
    /// methods, ms per image (run with `ZOO_BENCH=1`, filter `testPointwiseBatchShapes`): at batch 16
    /// (or with `ZOO_BENCH_COLD=1`) the input is out of L2, where pixel tiles read 64–256 planes
    /// 12 KB apart in step — the case the tiles' prefetch of A's next line is for.
    func testPointwiseBatchShapes() throws {
        let pool = try Self.benchmarkPool()
        for (cin, cout) in [(128, 16), (64, 16), (256, 32), (16, 64)] {
            let shape = Conv2DShape(inChannels: cin, outChannels: cout, kernelH: 1, kernelW: 1)
            var line = String(format: "%4d→%-4d 55×55", cin, cout)
            for batch in [1, 16] {
                for method in [Conv2DKernel.Method.im2col, .pixelTiles] {
                    let prepared = Prepared(.conv(shape, inSize: 55, method: method), batch: batch, pool: pool)
                    let t = Self.time(prepared.run, pool: pool)
                    line += String(format: "  b%d %@ %6.3f", batch, method == .im2col ? "col" : "pix", t * 1e3 / Double(batch))
                }
            }
            print(line + " ms/image")
        }
    }
}

extension BenchmarkTests {
    /// The models' max pools (SqueezeNet's and GoogLeNet's 3×3/2 with ceil mode, ResNet's 3×3/2 pad 1,
    /// GoogLeNet's 3×3/1 pad 1 branch pools, AlexNet's 3×3/2 on 55²) at batch 1, ms (run with
    /// `ZOO_BENCH=1`, filter `testMaxPoolShapes`; `ZOO_BENCH_COLD=1` as a model's first read).
    func testMaxPoolShapes() throws {
        let pool = try Self.benchmarkPool()
        // (planes, input size, kernel, stride, pad, output size)
        let shapes: [(Int, Int, Int, Int, Int, Int)] = [(64, 111, 3, 2, 0, 55), (128, 55, 3, 2, 0, 27), (64, 112, 3, 2, 1, 56),
                                                        (192, 56, 3, 2, 0, 28), (192, 28, 3, 1, 1, 28), (64, 55, 3, 2, 0, 27)]
        for (planes, size, k, stride, pad, out) in shapes {
            let shape = Pool2DShape(kernelH: k, kernelW: k, strideH: stride, strideW: stride, padTop: pad, padLeft: pad,
                                    padBottom: pad, padRight: pad)
            let input = (0..<(planes * size * size)).map { Float($0 % 97) / 97 - 0.5 }
            var output = [Float](repeating: 0, count: planes * out * out)
            let t = input.withUnsafeBufferPointer { x in
                output.withUnsafeMutableBufferPointer { y in
                    Self.time({
                        PoolKernels.maxPool(shape, input: x.baseAddress!, output: y.baseAddress!, planes: planes, inHeight: size,
                                            inWidth: size, outHeight: out, outWidth: out, pool: pool)
                    }, pool: pool)
                }
            }
            print(String(format: "%4d× %3d² maxPool %d×%d/%d pad %d → %3d²  %6.3f ms", planes, size, k, k, stride, pad, out, t * 1e3))
        }
    }
}

extension BenchmarkTests {
    /// im2col against pixel tiles on ResNet-50's, MobileNet-V2's and EfficientNet-B0's 1×1 and strided
    /// convolutions, the two run in turn for 12 rounds (best of 4 runs each) so that a slow spell of
    /// the machine falls on both: minimum and median of the rounds, and their ratios (run with
    /// `ZOO_BENCH=1`, filter `testMethodsInterleaved`).
    func testMethodsInterleaved() throws {
        let pool = try Self.benchmarkPool()
        let methods: [Conv2DKernel.Method] = [.im2col, .pixelTiles]
        let shapes: [(Int, Int, Int, Int, Int)] = [(256, 64, 56, 1, 1), (512, 128, 28, 1, 1), (1024, 256, 14, 1, 1), (2048, 512, 7, 1, 1),
            (64, 256, 56, 1, 1), (128, 512, 28, 1, 1), (256, 1024, 14, 1, 1), (512, 2048, 7, 1, 1), (64, 64, 56, 1, 1),
            (256, 128, 56, 1, 1), (512, 256, 28, 1, 1), (1024, 512, 14, 1, 1),
            (128, 128, 56, 3, 2), (256, 256, 28, 3, 2), (512, 512, 14, 3, 2), (256, 512, 56, 1, 2), (512, 1024, 28, 1, 2), (1024, 2048, 14, 1, 2),
            (96, 24, 56, 1, 1), (144, 24, 56, 1, 1), (24, 144, 56, 1, 1), (32, 192, 28, 1, 1), (192, 32, 28, 1, 1), (576, 96, 14, 1, 1),
            (96, 576, 14, 1, 1), (960, 160, 7, 1, 1), (160, 960, 7, 1, 1), (32, 16, 112, 1, 1), (16, 96, 112, 1, 1)]
        for (cin, cout, size, k, s) in shapes {
            let shape = Conv2DShape(inChannels: cin, outChannels: cout, kernelH: k, kernelW: k, strideH: s, strideW: s,
                                    padTop: k / 2, padLeft: k / 2, padBottom: k / 2, padRight: k / 2)
            var samples = [[Double]](repeating: [], count: methods.count)
            let prepared = methods.map { Prepared(.conv(shape, inSize: size, residual: false, method: $0), batch: 1, pool: pool) }
            for _ in 0..<12 {
                for i in methods.indices {
                    prepared[i].run()
                    var ts: [Double] = []
                    for _ in 0..<4 { let s = Self.now(); prepared[i].run(); ts.append(Self.now() - s) }
                    samples[i].append(ts.min()!)
                }
            }
            var line = String(format: "%4d→%-4d %3d %d×%d/%d", cin, cout, size, k, k, s)
            for i in methods.indices {
                let s = samples[i].sorted()
                line += String(format: "  %@ %.3f/%.3f", methods[i].rawValue, s[0] * 1e3, s[s.count / 2] * 1e3)
            }
            let a = samples[0].sorted(), b = samples[1].sorted()
            line += String(format: "  pix/col min %.2f med %.2f", b[0] / a[0], b[b.count / 2] / a[a.count / 2])
            print(line)
        }
    }
}
