import XCTest
import ZooCore

final class TensorTests: XCTestCase {
    private func storage(floats: [Float]) -> Storage {
        floats.withUnsafeBytes { Storage(copying: $0) }
    }

    func testGeometryIsValidatedAgainstTheStorage() {
        let s = storage(floats: [0, 1, 2, 3])
        XCTAssertThrowsError(try Tensor(dtype: .f32, shape: [5], strides: [1], offset: 0, storage: s)) {
            XCTAssertEqual($0 as? TensorError, .outOfBounds(offset: 0, extent: 5, storageElements: 4))
        }
        XCTAssertThrowsError(try Tensor(dtype: .f32, shape: [2], strides: [1], offset: 3, storage: s))
        XCTAssertThrowsError(try Tensor(dtype: .f32, shape: [-1], strides: [1], offset: 0, storage: s)) {
            XCTAssertEqual($0 as? TensorError, .negativeSize(dim: 0, size: -1))
        }
        XCTAssertThrowsError(try Tensor(dtype: .f32, shape: [2], strides: [-1], offset: 1, storage: s)) {
            XCTAssertEqual($0 as? TensorError, .negativeStride(dim: 0, stride: -1))
        }
        XCTAssertThrowsError(try Tensor(dtype: .f32, shape: [1 << 62, 1 << 62], strides: [1 << 62, 1], offset: 0, storage: s)) {
            XCTAssertEqual($0 as? TensorError, .overflow)
        }
        XCTAssertThrowsError(try Tensor(dtype: .f32, shape: [2, 2], strides: [1], offset: 0, storage: s)) {
            XCTAssertEqual($0 as? TensorError, .rankMismatch(shape: 2, strides: 1))
        }
        // Empty tensors reach nothing, whatever their strides.
        XCTAssertNoThrow(try Tensor(dtype: .f32, shape: [0, 100], strides: [100, 1], offset: 4, storage: s))
    }

    /// contiguous() against an index-by-index reference over random views.
    func testContiguousCopyMatchesIndexing() throws {
        var rng = SystemRandomNumberGenerator()
        let base = (0..<240).map(Float.init)
        let s = storage(floats: base)
        for _ in 0..<200 {
            let rank = Int.random(in: 0...4, using: &rng)
            let shape = (0..<rank).map { _ in Int.random(in: 0...4, using: &rng) }
            let strides = (0..<rank).map { _ in Int.random(in: 0...6, using: &rng) }
            let offset = Int.random(in: 0...10, using: &rng)
            guard let t = try? Tensor(dtype: .f32, shape: shape, strides: strides, offset: offset, storage: s) else { continue }
            var expected: [Double] = []
            func walk(_ dim: Int, _ position: Int) {
                if dim == rank { expected.append(Double(base[position])); return }
                for i in 0..<shape[dim] { walk(dim + 1, position + i * strides[dim]) }
            }
            walk(0, offset)
            XCTAssertEqual(t.doubles(), expected, "shape \(shape) strides \(strides) offset \(offset)")
            let dense = t.contiguous()
            XCTAssertTrue(dense.isContiguous)
            XCTAssertEqual(dense.doubles(), expected)
            XCTAssertEqual(dense.storage.byteCount, t.count * 4)
        }
    }

    /// Bit identity looks at dtype, shape and elements in C order, not at the layout: a transposed
    /// view equals its dense copy; another shape, dtype or one flipped bit does not.
    func testBitIdentityComparesElementsNotLayout() throws {
        let s = storage(floats: (0..<6).map(Float.init))
        let transposed = try Tensor(dtype: .f32, shape: [3, 2], strides: [1, 3], offset: 0, storage: s)
        XCTAssertTrue(transposed.isBitIdentical(transposed.contiguous()))
        XCTAssertFalse(transposed.isBitIdentical(try Tensor(dtype: .f32, shape: [2, 3], storage: s)))
        XCTAssertFalse(transposed.isBitIdentical(try Tensor(dtype: .i32, shape: [3, 2], strides: [1, 3], offset: 0, storage: s)))
        var bits = transposed.contiguous().floats()
        bits[5] = Float(bitPattern: bits[5].bitPattern ^ 1)
        XCTAssertFalse(transposed.isBitIdentical(Tensor(floats: bits, shape: [3, 2])))
    }

    func testViewsAreRecognised() throws {
        let s = storage(floats: Array(repeating: 0, count: 24))
        XCTAssertFalse(try Tensor(dtype: .f32, shape: [4, 6], storage: s).isView)
        XCTAssertTrue(try Tensor(dtype: .f32, shape: [2, 6], strides: [6, 1], offset: 6, storage: s).isView)
        let transposed = try Tensor(dtype: .f32, shape: [6, 4], strides: [1, 6], offset: 0, storage: s)
        XCTAssertTrue(transposed.isView)
        XCTAssertFalse(transposed.isContiguous)
    }
}
