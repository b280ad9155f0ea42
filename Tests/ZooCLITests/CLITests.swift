import Foundation
import TorchFormat
import XCTest
import ZooCore

/// Runs the built `zoo` binary as a user would: output, exit status and the one-line errors.
final class CLITests: XCTestCase {
    static let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        .appendingPathComponent("zoo").path
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/torch")

    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    func zoo(_ arguments: String...) throws -> Result { try Self.run(arguments) }

    /// Runs the built `zoo` with `arguments` (and `environment` added to this process's), capturing
    /// its status, stdout and stderr.
    static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                      stderr: String(decoding: stderr, as: UTF8.self))
    }

    func fixture(_ name: String) -> String { Self.fixtures.appendingPathComponent(name).path }

    /// Elements over every tensor torch.load returned for a fixture (from its .expected.json).
    static func torchParameterCount(_ name: String) throws -> Int {
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: fixtures.appendingPathComponent("\(name).expected.json"))) as! [String: Any]
        return (json["tensors"] as! [[String: Any]]).reduce(0) { $0 + ($1["shape"] as! [Int]).reduce(1, *) }
    }

    func testInspectJSONListsAlexNetInEveryFormat() throws {
        for name in ["alexnet_small.pth", "alexnet_small_legacy.pth", "alexnet_small_tar.pth"] {
            let result = try zoo("inspect", fixture(name), "--json")
            XCTAssertEqual(result.status, 0, result.stderr)
            let json = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
            let tensors = json["tensors"] as! [[String: Any]]
            XCTAssertEqual(tensors.count, 16, name)
            XCTAssertEqual(tensors.first?["name"] as? String, "features.0.weight")
            XCTAssertEqual(tensors.first?["shape"] as? [Int], [8, 3, 11, 11])
            XCTAssertEqual(tensors.last?["name"] as? String, "classifier.6.bias")
            XCTAssertEqual(tensors.last?["dtype"] as? String, "f32")
            let stateDict = json["state_dict"] as! [String: Any]
            XCTAssertEqual(stateDict["parameter_count"] as? Int, try Self.torchParameterCount("alexnet_small"))
            XCTAssertEqual(json["format"] as? String, ["alexnet_small.pth": "zip", "alexnet_small_legacy.pth": "legacy",
                                                       "alexnet_small_tar.pth": "tar"][name])
        }
    }

    func testInspectTextShowsOtherEntriesAndKeySelection() throws {
        let nested = try zoo("inspect", fixture("nested.pth"))
        XCTAssertEqual(nested.status, 0)
        XCTAssertTrue(nested.stdout.contains("state dict: entry 'model': 9 tensors"), nested.stdout)
        XCTAssertTrue(nested.stdout.contains("optimizer.state.0.exp_avg"), nested.stdout)
        XCTAssertTrue(nested.stdout.contains("epoch"), nested.stdout)

        let ambiguous = try zoo("inspect", fixture("ambiguous.pth"))
        XCTAssertEqual(ambiguous.status, 0)
        XCTAssertTrue(ambiguous.stdout.contains("choose one with --key"), ambiguous.stdout)
        let chosen = try zoo("inspect", fixture("ambiguous.pth"), "--key", "ema")
        XCTAssertTrue(chosen.stdout.contains("state dict: entry 'ema': 9 tensors"), chosen.stdout)
        let wrong = try zoo("inspect", fixture("ambiguous.pth"), "--key", "step")
        XCTAssertEqual(wrong.status, 1)
    }

    /// Every bad input: exit status 1, one line on stderr naming the file, nothing on stdout.
    func testBadInputsFailWithOneLine() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let empty = directory.appendingPathComponent("empty.pth").path
        _ = FileManager.default.createFile(atPath: empty, contents: Data())
        let text = directory.appendingPathComponent("notes.pth").path
        _ = FileManager.default.createFile(atPath: text, contents: Data("just some text, not a checkpoint\n".utf8))

        let bad = try FileManager.default.contentsOfDirectory(atPath: Self.fixtures.appendingPathComponent("bad").path)
            .filter { $0.hasSuffix(".pth") }.map { fixture("bad/" + $0) }
        XCTAssertGreaterThanOrEqual(bad.count, 10)
        for path in bad + [empty, text, directory.appendingPathComponent("missing.pth").path] {
            let result = try zoo("inspect", path)
            XCTAssertEqual(result.status, 1, path)
            XCTAssertEqual(result.stdout, "", path)
            let lines = result.stderr.split(separator: "\n")
            XCTAssertEqual(lines.count, 1, "\(path): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains(path), "\(path): \(result.stderr)")
        }
    }

    func testConvertWritesAVerifiedZipCheckpoint() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = directory.appendingPathComponent("alexnet_small.pth").path
        let tar = try zoo("convert", fixture("alexnet_small_tar.pth"), output)
        XCTAssertEqual(tar.status, 0, tar.stderr)
        XCTAssertTrue(tar.stdout.contains("16 tensors, read back bit-identical"), tar.stdout)
        // The legacy file's state dict comes out exactly as torch.save writes it in the zip format.
        let result = try zoo("convert", fixture("alexnet_small_legacy.pth"), output)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: output)),
                       try Data(contentsOf: URL(fileURLWithPath: fixture("alexnet_small.pth"))))

        let refused = try zoo("convert", fixture("alexnet_small.pth"), directory.appendingPathComponent("x.txt").path)
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stderr.contains("unsupported extension"), refused.stderr)
    }

    /// Hand-made hostile files (a pickle in a zip made by the project's ZipWriter): one line and
    /// exit 1 for those torch refuses or zoo cannot hold; an expanded view converts in O(file size).
    func testHostileCheckpoints() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        func checkpoint(_ name: String, _ pickle: [UInt8], storage: [UInt8] = []) throws -> String {
            let path = directory.appendingPathComponent(name).path
            let output = try OutputFile(path: path)
            var zip = ZipWriter(output: output, prefix: "archive")
            try zip.add("data.pkl", pickle)
            if !storage.isEmpty { try zip.add("data/0", storage) }
            try zip.finish()
            try output.commit()
            return path
        }
        func long(_ value: Int) -> [UInt8] { [0x8A, 8] + withUnsafeBytes(of: Int64(value).littleEndian, Array.init) }
        func global(_ module: String, _ name: String) -> [UInt8] { [0x63] + Array("\(module)\n\(name)\n".utf8) }
        func string(_ text: String) -> [UInt8] { [0x8C, UInt8(text.utf8.count)] + Array(text.utf8) }
        /// {"w": a view of a 4-float storage with this geometry}
        func view(_ size: [Int], _ stride: [Int]) -> [UInt8] {
            let storage = [0x28] + string("storage") + global("torch", "FloatStorage") + string("0") + string("cpu") + long(4) + [0x74, 0x51]
            let args = storage + long(0) + [0x28] + size.flatMap(long) + [0x74, 0x28] + stride.flatMap(long) + [0x74, 0x89]
                + global("collections", "OrderedDict") + [0x29, 0x52]
            return [0x80, 0x02, 0x7D] + string("w") + global("torch._utils", "_rebuild_tensor_v2") + [0x28] + args + [0x74, 0x52, 0x73, 0x2E]
        }
        let floats = [Float](repeating: 1, count: 4).withUnsafeBytes(Array.init)

        let refused = [
            ("deep.pth", try checkpoint("deep.pth", [0x80, 0x02, 0x4E] + [UInt8](repeating: 0x85, count: 30_000) + [0x2E]),
             "values nested more than 1000 levels deep"),
            ("deep_broken.pth", try checkpoint("deep_broken.pth", [0x80, 0x02, 0x4E] + [UInt8](repeating: 0x85, count: 50_000) + [0xFF]),
             "values nested more than 1000 levels deep"),
            ("overflow.pth", try checkpoint("overflow.pth", view([1 << 31, 1 << 31], [0, 0]), storage: floats),
             "size arithmetic overflows 64 bits"),
        ]
        for (name, path, message) in refused {
            let result = try zoo("inspect", path)
            XCTAssertEqual(result.status, 1, name)
            XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, "\(name): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains(message), "\(name): \(result.stderr)")
        }

        // 2^40 elements (4 TiB dense) over 16 bytes: verified by geometry and storage bytes.
        let expanded = try checkpoint("expanded.pth", view([1 << 20, 1 << 20], [0, 0]), storage: floats)
        let output = directory.appendingPathComponent("expanded_out.pth").path
        let converted = try zoo("convert", expanded, output)
        XCTAssertEqual(converted.status, 0, converted.stderr)
        XCTAssertTrue(converted.stdout.contains("1 tensors, read back bit-identical"), converted.stdout)
        let inspected = try zoo("inspect", output)
        XCTAssertTrue(inspected.stdout.contains("[1048576, 1048576]"), inspected.stdout)
    }

    func testHelpListsTheCommands() throws {
        let help = try zoo("--help")
        XCTAssertEqual(help.status, 0)
        for command in ["inspect", "convert", "bench-io"] { XCTAssertTrue(help.stdout.contains(command), help.stdout) }
    }
}
