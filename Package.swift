// swift-tools-version:6.1
import PackageDescription

/// Hot loops must never be compiled for the baseline x86-64 target: without FMA/AVX, Swift's SIMD
/// `addProduct` falls back to a software fma and GEMM runs ~100× slower. ZooKernels is therefore
/// always optimized (even in debug builds, so tests run the real code) and targets Haswell-class
/// CPUs (AVX2 + FMA, x86-64-v3). Per-CPU variants chosen at run time (AVX-512) come later.
let kernelSettings: [SwiftSetting] = [
    .unsafeFlags(["-O", "-target-cpu", "haswell", "-enforce-exclusivity=unchecked"]),
]

let package = Package(
    name: "zoo",
    products: [
        .executable(name: "zoo", targets: ["ZooCLI"]),
        .library(name: "ZooCore", targets: ["ZooCore"]),
        .library(name: "TorchFormat", targets: ["TorchFormat"]),
        .library(name: "ZooRuntime", targets: ["ZooRuntime"]),
        .library(name: "ZooModels", targets: ["ZooModels"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CZlib",
            path: "Sources/CZlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        .target(name: "ZooCore"),
        .target(name: "TorchFormat", dependencies: ["ZooCore", "CZlib"]),
        .target(name: "ZooKernels", swiftSettings: kernelSettings),
        .target(name: "ZooRuntime", dependencies: ["ZooCore", "ZooKernels"]),
        .target(name: "ZooModels", dependencies: ["ZooCore", "TorchFormat"]),
        .executableTarget(
            name: "ZooCLI",
            dependencies: [
                "ZooCore", "TorchFormat", "ZooRuntime", "ZooModels",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "ZooCoreTests", dependencies: ["ZooCore"]),
        .testTarget(name: "TorchFormatTests", dependencies: ["TorchFormat", "ZooCore"]),
        .testTarget(name: "ZooKernelsTests", dependencies: ["ZooKernels"], swiftSettings: kernelSettings),
        .testTarget(name: "ZooRuntimeTests", dependencies: ["ZooRuntime", "ZooModels", "ZooCore", "TorchFormat"]),
        .testTarget(name: "ZooCLITests", dependencies: ["ZooCLI"]),
    ],
    swiftLanguageModes: [.v6]
)
