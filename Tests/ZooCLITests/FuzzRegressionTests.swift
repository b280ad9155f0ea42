import Foundation
import XCTest

/// Every input the fuzzers found a bug with (Tests/Fuzz/regressions/TARGET) runs through its target
/// again — here in the plain build (a trap fails the test), and under AddressSanitizer and
/// LeakSanitizer in `scripts/fuzz smoke`.
final class FuzzRegressionTests: XCTestCase {
    static let binary = URL(fileURLWithPath: CLITests.binary).deletingLastPathComponent().appendingPathComponent("zoo-fuzz").path
    static let regressions = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz/regressions")

    func testEveryRegressionInputReplaysWithoutATrap() throws {
        let targets = try FileManager.default.contentsOfDirectory(atPath: Self.regressions.path).sorted()
        XCTAssertFalse(targets.isEmpty)
        for target in targets {
            let folder = Self.regressions.appendingPathComponent(target).path
            let count = try FileManager.default.contentsOfDirectory(atPath: folder).count
            let process = Process()
            process.executableURL = URL(fileURLWithPath: Self.binary)
            process.arguments = [target, folder]
            process.environment = ["SWIFT_BACKTRACE": "enable=no"]
            let out = Pipe()
            process.standardOutput = out
            process.standardError = FileHandle.nullDevice
            try process.run()
            let printed = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            XCTAssertEqual(process.terminationReason, .exit, "\(target): zoo-fuzz trapped on an input in \(folder)")
            XCTAssertEqual(process.terminationStatus, 0, target)
            XCTAssertEqual(printed, "\(target): \(count) inputs replayed, none trapped\n")
        }
    }
}
