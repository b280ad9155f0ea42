import Foundation
import XCTest

/// `ZOO_LIMITS` as a user sets it: a lowered limit refuses a normal file with the limit's name,
/// a malformed value is an error (never silently ignored), a raised one is honoured.
final class LimitsCLITests: XCTestCase {
    private func zoo(_ arguments: [String], limits: String) throws -> CLITests.Result {
        try CLITests.run(arguments, environment: ["ZOO_LIMITS": limits])
    }

    private func fixture(_ name: String) -> String { CLITests.fixtures.appendingPathComponent(name).path }

    func testEnvironmentOverridesReachEveryReader() throws {
        let pickle = try zoo(["inspect", fixture("alexnet_small.pth")], limits: "maxPickleBytes=100")
        XCTAssertEqual(pickle.status, 1, pickle.stdout)
        XCTAssertTrue(pickle.stderr.contains("exceeds limit maxPickleBytes (100 bytes; raise with ZOO_LIMITS=maxPickleBytes="), pickle.stderr)

        let raised = try zoo(["inspect", fixture("alexnet_small.pth")], limits: "maxPickleBytes=2G, maxInflatedBytes=8G")
        XCTAssertEqual(raised.status, 0, raised.stderr)

        let bad = try zoo(["inspect", fixture("alexnet_small.pth")], limits: "maxPickleByte=100")
        XCTAssertEqual(bad.status, 1, bad.stdout)
        XCTAssertTrue(bad.stderr.contains("ZOO_LIMITS: 'maxPickleByte' is not a limit (limits: maxPickleBytes, "), bad.stderr)

        let onnx = CLITests.fixtures.deletingLastPathComponent().appendingPathComponent("onnx/alexnet_small_ts_opset13.onnx").path
        let nested = try zoo(["inspect", onnx], limits: "maxONNXNesting=3")
        XCTAssertEqual(nested.status, 1, nested.stdout)
        XCTAssertTrue(nested.stderr.contains("exceeds limit maxONNXNesting (3; raise with ZOO_LIMITS=maxONNXNesting=<n>)"), nested.stderr)
    }
}
