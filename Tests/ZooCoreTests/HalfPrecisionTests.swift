import Foundation
import XCTest
import ZooCore

/// f16/bf16 conversions against PyTorch's own: every 16-bit pattern widened, and ~30,000 f32
/// values (ties, subnormals, overflow edges, NaN payloads) narrowed (Fixtures/torch/*.bin, made by
/// Fixtures/make_fixtures.py).
final class HalfPrecisionTests: XCTestCase {
    private func load<T>(_ name: String, as: T.Type) throws -> [T] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Fixtures/torch/\(name)")
        let data = try Data(contentsOf: url)
        return data.withUnsafeBytes { raw in
            (0..<(raw.count / MemoryLayout<T>.size)).map { raw.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self) }
        }
    }

    func testWideningEveryPatternMatchesTorch() throws {
        let f16 = try load("f16_to_f32.bin", as: UInt32.self)
        let bf16 = try load("bf16_to_f32.bin", as: UInt32.self)
        XCTAssertEqual(f16.count, 65536)
        XCTAssertEqual(bf16.count, 65536)
        var f16Mismatches = 0, bf16Mismatches = 0
        for pattern in 0..<65536 {
            if HalfPrecision.f16ToF32(UInt16(pattern)).bitPattern != f16[pattern] { f16Mismatches += 1 }
            if HalfPrecision.bf16ToF32(UInt16(pattern)).bitPattern != bf16[pattern] { bf16Mismatches += 1 }
        }
        XCTAssertEqual(f16Mismatches, 0, "f16 → f32 patterns differing from torch")
        XCTAssertEqual(bf16Mismatches, 0, "bf16 → f32 patterns differing from torch")
    }

    /// `Tensor.float32()` widens f16/bf16 tensors, dense or views, exactly as torch does (bf16's
    /// signalling NaNs too, which a detour through Double would quiet).
    func testTensorWideningMatchesTorch() throws {
        for (dtype, table) in [(DType.f16, "f16_to_f32.bin"), (.bf16, "bf16_to_f32.bin")] {
            let expected = try load(table, as: UInt32.self)
            let patterns = (0..<65536).map { UInt16($0) }
            let dense = try Tensor(dtype: dtype, shape: [256, 256], storage: patterns.withUnsafeBytes { Storage(copying: $0) })
            let widened = dense.float32()
            XCTAssertEqual(widened.dtype, .f32)
            XCTAssertEqual(widened.shape, [256, 256])
            XCTAssertEqual(widened.floats().map(\.bitPattern), expected, "\(dtype) dense")
            // A transposed view: the same values, transposed.
            let transposed = try Tensor(dtype: dtype, shape: [256, 256], strides: [1, 256], offset: 0, storage: dense.storage)
            let expectedTransposed = (0..<65536).map { expected[($0 % 256) * 256 + $0 / 256] }
            XCTAssertEqual(transposed.float32().floats().map(\.bitPattern), expectedTransposed, "\(dtype) view")
        }
        let doubles: [Double] = [1, -0.1, 1e300, -1e-300, .infinity, 0.1 + 0.2]
        let f64 = try Tensor(dtype: .f64, shape: [6], storage: doubles.withUnsafeBytes { Storage(copying: $0) })
        XCTAssertEqual(f64.float32().floats(), doubles.map { Float($0) })
    }

    func testNarrowingMatchesTorch() throws {
        let samples = try load("f32_samples.bin", as: UInt32.self)
        let f16 = try load("f32_to_f16.bin", as: UInt16.self)
        let bf16 = try load("f32_to_bf16.bin", as: UInt16.self)
        XCTAssertEqual(samples.count, f16.count)
        XCTAssertEqual(samples.count, bf16.count)
        var firstF16: String?, firstBF16: String?
        var f16Mismatches = 0, bf16Mismatches = 0
        for (i, bits) in samples.enumerated() {
            let value = Float(bitPattern: bits)
            let h = HalfPrecision.f32ToF16(value), b = HalfPrecision.f32ToBF16(value)
            if h != f16[i] {
                f16Mismatches += 1
                firstF16 = firstF16 ?? "f32 0x\(String(bits, radix: 16)) → ours 0x\(String(h, radix: 16)), torch 0x\(String(f16[i], radix: 16))"
            }
            if b != bf16[i] {
                bf16Mismatches += 1
                firstBF16 = firstBF16 ?? "f32 0x\(String(bits, radix: 16)) → ours 0x\(String(b, radix: 16)), torch 0x\(String(bf16[i], radix: 16))"
            }
        }
        XCTAssertEqual(f16Mismatches, 0, firstF16 ?? "")
        XCTAssertEqual(bf16Mismatches, 0, firstBF16 ?? "")
    }
}
