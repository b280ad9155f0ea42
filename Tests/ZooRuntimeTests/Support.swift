import Foundation
import XCTest
import ZooCore
import ZooRuntime

/// Fixtures made by Fixtures/make_parity_fixtures.py and make_op_fixtures.py with real PyTorch.
enum Fixture {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }

    static func npy(_ relative: String) throws -> Tensor { try NumPy.read(path: path(relative)) }

    static func json(_ relative: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path(relative))))
    }
}

/// Asserts a parity report is within tolerance and prints its figures into the test log.
func assertParity(_ report: ParityReport, rtol: Double = 1e-4, _ context: String, file: StaticString = #filePath, line: UInt = #line) {
    print("parity \(context) \(report.name): max|Δ| \(report.maxAbsDifference), max|ref| \(report.maxAbsReference), "
        + "Δ/ref \(report.relativeDifference), cosine \(report.cosine)"
        + (report.top5Agreement.map { ", top-5 \($0)/\(report.rows)" } ?? ""))
    XCTAssertTrue(report.passes(atol: 0, rtol: rtol),
                  "\(context) \(report.name): max|Δ| \(report.maxAbsDifference) vs max|ref| \(report.maxAbsReference)", file: file, line: line)
}

func bytesEqual(_ a: Tensor, _ b: Tensor) -> Bool {
    a.shape == b.shape && a.withContiguousBytes { x in b.withContiguousBytes { y in x.elementsEqual(y) } }
}
