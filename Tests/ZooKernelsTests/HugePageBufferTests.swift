import XCTest
import Glibc
@testable import ZooKernels

/// `HugePageBuffer`'s contract: zero-filled, aligned (2 MiB from 2 MiB on, a page below), and a
/// 2 MiB-aligned one mapped only up to its last page, so no huge page is faulted in past the bytes
/// in use.
final class HugePageBufferTests: XCTestCase {
    let page = Int(sysconf(Int32(_SC_PAGESIZE)))

    /// Whether the page holding `address` is mapped in this process (`mincore` fails with ENOMEM
    /// on an unmapped range).
    func isMapped(_ address: Int) -> Bool {
        var residency: UInt8 = 0
        let start = address / page * page
        return mincore(UnsafeMutableRawPointer(bitPattern: start), page, &residency) == 0
    }

    func testSizesAlignmentAndEnd() {
        let hugePage = 1 << 21
        for byteCount in [1, 4095, 4096, 100_000, hugePage - 1, hugePage, hugePage + 1, 5 * hugePage + 12_345] {
            let buffer = HugePageBuffer(byteCount: byteCount)
            let base = Int(bitPattern: buffer.base)
            XCTAssertEqual(base % (byteCount >= hugePage ? hugePage : page), 0, "alignment of \(byteCount) bytes")
            let bytes = buffer.base.bindMemory(to: UInt8.self, capacity: byteCount)
            XCTAssertEqual(bytes[0], 0, "first byte of \(byteCount)")
            XCTAssertEqual(bytes[byteCount - 1], 0, "last byte of \(byteCount)")
            let end = (base + byteCount + page - 1) / page * page
            XCTAssertTrue(isMapped(end - 1), "last page of \(byteCount) bytes")
            // Its 2 MiB-aligned mapping is cut after the last page (a smaller one may have a neighbour).
            if byteCount >= hugePage { XCTAssertFalse(isMapped(end), "the page after \(byteCount) bytes is mapped: the buffer is longer than asked") }
        }
    }

    func testCopyingCopiesEveryFloat() {
        let count = 3_000_000  // more than one 8 MiB chunk
        let source = (0..<count).map { Float($0 % 977) - 488 }
        let buffer = source.withUnsafeBufferPointer {
            HugePageBuffer(copying: $0.baseAddress!, count: count, releasingSource: false)
        }
        XCTAssertEqual(buffer.byteCount, count * 4)
        XCTAssertTrue(Array(UnsafeBufferPointer(start: buffer.floats, count: count)) == source)
        XCTAssertFalse(isMapped((Int(bitPattern: buffer.base) + count * 4 + page - 1) / page * page))
    }
}
