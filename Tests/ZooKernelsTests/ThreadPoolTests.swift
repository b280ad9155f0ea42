import XCTest
import Synchronization
@testable import ZooKernels

final class ThreadPoolTests: XCTestCase {
    /// Every index runs exactly once, across many back-to-back calls and odd counts.
    func testEveryIndexRunsOnce() {
        for threads in [1, 2, 3, 5] {
            let pool = ThreadPool(threads: threads)
            XCTAssertEqual(pool.threadCount, threads)
            var hits = [Int](repeating: 0, count: 257)
            for round in 0..<300 {
                let count = [0, 1, 2, 3, 17, 257][round % 6]
                hits.withUnsafeMutableBufferPointer { h in
                    let base = h.baseAddress!
                    pool.parallelFor(count) { i in base[i] += 1 }   // each index touched by one thread
                }
            }
            // Counts per index: rounds with count > i.
            for i in [0, 1, 2, 16, 100, 256] {
                let expected = (0..<300).filter { [0, 1, 2, 3, 17, 257][$0 % 6] > i }.count
                XCTAssertEqual(hits[i], expected, "threads \(threads) index \(i)")
            }
        }
    }

    /// Work really is spread: with 2 threads, two blocking items can only finish if both run at once.
    func testItemsRunConcurrently() {
        let pool = ThreadPool(threads: 2)
        let arrived = Atomic<Int>(0)
        pool.parallelFor(2) { _ in
            arrived.wrappingAdd(1, ordering: .relaxed)
            while arrived.load(ordering: .relaxed) < 2 {}
        }
        XCTAssertEqual(arrived.load(ordering: .relaxed), 2)
    }

    func testPoolIsReleased() {
        weak var weakPool: ThreadPool?
        do {
            let pool = ThreadPool(threads: 3)
            pool.parallelFor(10) { _ in }
            weakPool = pool
        }
        XCTAssertNil(weakPool)
    }
}
