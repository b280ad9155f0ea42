#if canImport(Glibc)
import Glibc
#endif
import CCPUFeatures
@_exported import ZooKernelsBase
import ZooKernelsAVX2
import ZooKernelsAVX512
import ZooKernelsPortable

/// The compiled kernel sets. The same sources are built once per set with different target CPUs
/// (see Package.swift); one is chosen at start-up from what the CPU supports, or forced with the
/// environment variable `ZOO_KERNELS` (`portable`, `avx2`, `avx512`).
public enum KernelSet: String, CaseIterable, Sendable {
    /// Baseline x86-64 (SSE2) code, no FMA: runs anywhere, slowest.
    case portable
    /// AVX2 + FMA3 (Haswell and later, Zen and later).
    case avx2
    /// AVX-512 F/CD/BW/DQ/VL + AVX2 + FMA3 (Skylake-SP and later, Zen 4 and later).
    case avx512

    /// The sets this CPU can run, fastest last.
    public static let supported: [KernelSet] = {
        var sets: [KernelSet] = [.portable]
        if zoo_cpu_has_avx2_fma() != 0 { sets.append(.avx2) }
        if zoo_cpu_has_avx512() != 0 { sets.append(.avx512) }
        return sets
    }()

    /// The name of the environment variable that forces a set.
    public static let environmentVariable = "ZOO_KERNELS"

    /// Why `ZOO_KERNELS` cannot be honoured, or nil when it is unset or names a supported set.
    public static var environmentProblem: String? {
        guard let value = getenv(environmentVariable).map({ String(cString: $0) }), !value.isEmpty else { return nil }
        guard let set = KernelSet(rawValue: value) else {
            return "\(environmentVariable)=\(value) is not a kernel set (one of: \(allCases.map(\.rawValue).joined(separator: ", ")))"
        }
        guard supported.contains(set) else {
            return "\(environmentVariable)=\(value): this CPU lacks the instructions the \(value) kernels need "
                + "(supported: \(supported.map(\.rawValue).joined(separator: ", ")))"
        }
        return nil
    }

    /// The set used by default: `ZOO_KERNELS` when it names a supported set, else the fastest
    /// supported one. (Command-line tools report `environmentProblem` before running anything.)
    public static let active: KernelSet = {
        if environmentProblem == nil, let value = getenv(environmentVariable).map({ String(cString: $0) }),
           let set = KernelSet(rawValue: value) {
            return set
        }
        return supported.last!
    }()

    /// The set's hot loops. Calling them on a CPU that does not support the set is undefined
    /// (an illegal-instruction trap): check `supported`.
    public var table: KernelTable {
        switch self {
        case .portable: ZooKernelsPortable.kernelTable
        case .avx2: ZooKernelsAVX2.kernelTable
        case .avx512: ZooKernelsAVX512.kernelTable
        }
    }
}

extension KernelTable {
    /// The residual epilogue of a convolution: `y[i] = post(y[i] + shortcut[i])` for `count` elements
    /// — ResNet's add → ReLU in one pass, any other activation through `activate`.
    @inline(__always)
    func addResidual(_ y: UnsafeMutablePointer<Float>, _ shortcut: UnsafePointer<Float>, count: Int, then post: Activation?) {
        if post == .relu {
            for i in 0..<count {
                let v = y[i] + shortcut[i]
                y[i] = v < 0 ? 0 : v
            }
            return
        }
        for i in 0..<count { y[i] += shortcut[i] }
        if let post { activate(post, y, y, count) }
    }

    /// `activate` over a whole tensor of `count` elements, in parallel chunks.
    public func activate(_ activation: Activation, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int,
                         pool: ThreadPool) {
        pool.parallelChunks(count) { range in
            activate(activation, x + range.lowerBound, y + range.lowerBound, range.count)
        }
    }
}
