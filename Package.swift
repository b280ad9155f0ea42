// swift-tools-version:6.1
import PackageDescription

/// Hot loops must never be compiled for the baseline x86-64 target (see README, "Performance").
/// ZooCore's f16/bf16 conversions are scalar and portable; kernels with per-CPU variants arrive with
/// the executor.
let package = Package(
    name: "zoo",
    products: [
        .executable(name: "zoo", targets: ["ZooCLI"]),
        .library(name: "ZooCore", targets: ["ZooCore"]),
        .library(name: "TorchFormat", targets: ["TorchFormat"]),
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
        .executableTarget(
            name: "ZooCLI",
            dependencies: [
                "ZooCore", "TorchFormat",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "ZooCoreTests", dependencies: ["ZooCore"]),
        .testTarget(
            name: "TorchFormatTests",
            dependencies: ["TorchFormat", "ZooCore"],
            resources: []
        ),
        .testTarget(name: "ZooCLITests", dependencies: ["ZooCLI"]),
    ],
    swiftLanguageModes: [.v6]
)
