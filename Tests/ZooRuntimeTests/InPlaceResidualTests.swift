import XCTest
import ZooCore
@testable import ZooKernels
import ZooOps
@testable import ZooRuntime

/// A ResNet block's end, `y = relu(conv c(u) + t)`, where the shortcut `t` is read by nothing after
/// c: the plan puts y in t's buffer where c's kernel adds the residual as it writes each output
/// (`StepKernel.inPlaceInput`), never where it would overwrite what it still reads — and the values
/// are the reference's either way.
final class InPlaceResidualTests: XCTestCase {
    struct Case {
        let label: String
        let inChannels: Int, outChannels: Int, kernel: Int, stride: Int, inputChannels: Int
        /// Whether c's kernel (on every set) may overwrite its residual.
        let inPlace: Bool
        /// The shortcut is c's own input u instead of t (same shape): never in place.
        var shortcutIsInput = false
    }

    func testShortcutReadLastIsOverwrittenInPlace() throws {
        let cases = [
            Case(label: "1×1 im2col, one k block", inChannels: 8, outChannels: 24, kernel: 1, stride: 1, inputChannels: 5, inPlace: true),
            Case(label: "1×1 pixel tiles", inChannels: 40, outChannels: 16, kernel: 1, stride: 1, inputChannels: 5, inPlace: true),
            Case(label: "1×1 im2col, two k blocks", inChannels: Gemm.kc + 4, outChannels: Gemm.kc + 24, kernel: 1, stride: 1,
                 inputChannels: 3, inPlace: false),
            Case(label: "3×3 Winograd", inChannels: 16, outChannels: 16, kernel: 3, stride: 1, inputChannels: 4, inPlace: false),
            Case(label: "3×3/2 implicit GEMM", inChannels: 3, outChannels: 20, kernel: 3, stride: 2, inputChannels: 6, inPlace: true),
            Case(label: "1×1 im2col, shortcut is its input", inChannels: 12, outChannels: 12, kernel: 1, stride: 1, inputChannels: 5,
                 inPlace: false, shortcutIsInput: true),
        ]
        var g = KernelTwinTests.Generator(state: 91)
        func tensor(_ shape: [Int]) -> Tensor { g.tensor(shape) }
        for c in cases {
            let (h, w) = (17, 15), batch = 2   // above 14: 1×1s with more output channels take im2col
            let x = tensor([batch, c.inputChannels, h, w])
            func conv(_ k: Int, _ stride: Int) -> Op.Conv {
                Op.Conv(kernel: [k, k], strides: [stride, stride], dilations: [1, 1], pads: [k / 2, k / 2, k / 2, k / 2], groups: 1)
            }
            // a: x → t (c's output shape); b: x → u (c's input); c: u → conv + shortcut → relu.
            let a = conv(1, c.stride), b = conv(1, 1), cc = conv(c.kernel, c.stride)
            let wa = tensor([c.outChannels, c.inputChannels, 1, 1]), wb = tensor([c.inChannels, c.inputChannels, 1, 1])
            let wc = tensor([c.outChannels, c.inChannels, c.kernel, c.kernel]), bc = tensor([c.outChannels])
            let shortcut = c.shortcutIsInput ? "u" : "t"
            var nodes = [Node("b", b, inputs: ["x", "wb"], outputs: ["u"])]
            if !c.shortcutIsInput { nodes.insert(Node("a", a, inputs: ["x", "wa"], outputs: ["t"]), at: 0) }
            nodes += [Node("c", cc, inputs: ["u", "wc", "bc"], outputs: ["v"]),
                      Node("add", Op.Binary(.add), inputs: ["v", shortcut], outputs: ["s"]),
                      Node("relu", Op.Unary.relu, inputs: ["s"], outputs: ["y"])]
            let graph = try Graph(name: "block", inputs: [ValueInfo(name: "x", dtype: .f32, shape: x.shape.map { .fixed($0) })],
                                  initializers: [("wa", wa), ("wb", wb), ("wc", wc), ("bc", bc)], nodes: nodes, outputs: ["y"])
            // The reference: every node's own evaluate.
            var values: [String: Tensor] = ["x": x, "wa": wa, "wb": wb, "wc": wc, "bc": bc]
            for node in nodes {
                for (name, value) in zip(node.outputs, try node.op.evaluate(node.inputs.map { values[$0]! })) { values[name] = value }
            }
            let expected = values["y"]!
            for set in KernelSet.supported {
                let executor = try Executor(graph: graph, options: .init(threads: 2, kernels: set))
                let y = try executor.run(x)["y"]!
                let report = ParityReport(name: c.label, value: y, reference: expected)
                let context = "\(set.rawValue): \(c.label)"
                XCTAssertEqual(y.shape, expected.shape, context)
                XCTAssertLessThanOrEqual(report.maxAbsDifference, 5e-5 * max(report.maxAbsReference, 1), "\(context): max|Δ| \(report.maxAbsDifference)")
                let plan = try XCTUnwrap(executor.plans.values.first, context)
                XCTAssertEqual(plan.offsets["y"] == plan.offsets[shortcut], c.inPlace, "\(context): y in the shortcut's buffer")
            }
        }
    }
}
