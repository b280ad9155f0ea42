#if canImport(Glibc)
import Glibc
#endif
import XCTest
@testable import ZooKernels

/// Kernel set selection: what `supported` promises and how `ZOO_KERNELS` is checked.
final class KernelSetTests: XCTestCase {
    func testSupportedStartsWithPortableAndContainsActive() {
        XCTAssertEqual(KernelSet.supported.first, .portable)
        XCTAssertTrue(KernelSet.supported.contains(.active), "active \(KernelSet.active) not in \(KernelSet.supported)")
    }

    func testEachTableIsNamedAfterItsSet() {
        for set in KernelSet.supported {
            XCTAssertEqual(set.table.name, set.rawValue)
        }
    }

    func testEnvironmentProblem() {
        _ = KernelSet.active  // fixed before the variable is touched
        let name = KernelSet.environmentVariable
        let saved = getenv(name).map { String(cString: $0) }
        defer {
            if let saved { setenv(name, saved, 1) } else { unsetenv(name) }
        }
        unsetenv(name)
        XCTAssertNil(KernelSet.environmentProblem)
        setenv(name, "avx1024", 1)
        let problem = KernelSet.environmentProblem
        XCTAssertNotNil(problem)
        XCTAssertTrue(problem?.contains("avx1024") ?? false, problem ?? "nil")
        setenv(name, "portable", 1)
        XCTAssertNil(KernelSet.environmentProblem)
    }
}
