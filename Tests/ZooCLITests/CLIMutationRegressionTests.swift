import Foundation
import XCTest

/// Inputs the CLI mutation run (scripts/fuzz-cli) found bugs with, kept in Tests/Fuzz/cli:
/// each command now fails with its one-line error, and convert leaves no file behind.
final class CLIMutationRegressionTests: XCTestCase {
    static let inputs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz/cli")

    private func input(_ name: String) -> String { Self.inputs.appendingPathComponent(name).path }

    /// A graph whose outputs were deleted: `zoo run` trapped (index out of range) with nothing on stderr.
    func testRunOnAGraphWithoutOutputs() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-cli-regression-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let output = folder.appendingPathComponent("y.npy").path
        let result = try CLITests.run(["run", input("run-graph-without-outputs.onnx"), "--input",
                                       input("run-graph-without-outputs.input.npy"), "--output", output])
        XCTAssertEqual(result.status, 1)
        XCTAssertEqual(result.stderr, "Error: \(input("run-graph-without-outputs.onnx")): the graph has no outputs: there is nothing to compute\n")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), [])
    }

    /// Two initializers named 'w': convert wrote a .pth holding one of them, then failed its check.
    func testConvertRefusesAnInitializerDefinedTwice() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-cli-regression-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let model = input("convert-initializer-defined-twice.onnx")
        let result = try CLITests.run(["convert", model, folder.appendingPathComponent("out.pth").path])
        XCTAssertEqual(result.status, 1)
        XCTAssertEqual(result.stderr, "Error: \(model): tensor 'w': initializer defined twice\n")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), [])
    }
}
