import Foundation
import XCTest
import ZooCore

/// zoo never destroys a file: an output that is an input is refused before anything is written, a
/// symbolic link is written through, a device, FIFO or `-` is streamed to, and an interrupted write
/// leaves no temporary file. Runs the built binary.
final class FileSafetyTests: XCTestCase {
    private var folder: URL!
    private static let onnxFixtures = CLITests.fixtures.deletingLastPathComponent().appendingPathComponent("onnx")

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-file-safety-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(at: folder) }

    private func path(_ name: String) -> String { folder.appendingPathComponent(name).path }

    /// A copy of the reduced AlexNet ONNX model and its input in the test folder.
    private func modelAndInput() throws -> (model: String, input: String) {
        let model = path("m.onnx"), input = path("x.npy")
        try FileManager.default.copyItem(atPath: Self.onnxFixtures.appendingPathComponent("alexnet_small_ts_opset13.onnx").path, toPath: model)
        try FileManager.default.copyItem(atPath: Self.onnxFixtures.appendingPathComponent("alexnet_small_input.npy").path, toPath: input)
        return (model, input)
    }

    private func bytes(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

    private func leftovers() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.contains(".zoo-tmp-") }
    }

    /// `zoo run m.onnx --input x.npy --output m.onnx` replaced the model with the output and exited 0.
    func testOutputThatIsAnInputIsRefusedThroughAnyPath() throws {
        let (model, input) = try modelAndInput()
        let original = try bytes(model), originalInput = try bytes(input)
        try FileManager.default.linkItem(atPath: model, toPath: path("hard.onnx"))
        try FileManager.default.createSymbolicLink(atPath: path("soft.onnx"), withDestinationPath: "m.onnx")
        for output in [model, path("hard.onnx"), path("soft.onnx"), folder.path + "/./m.onnx"] {
            let result = try CLITests.run(["run", model, "--input", input, "--output", output])
            XCTAssertEqual(result.status, 1, output)
            XCTAssertEqual(result.stderr, "Error: \(output): is the same file as the input \(model); refusing to overwrite an input\n")
        }
        let intoInput = try CLITests.run(["run", model, "--input", input, "--output", input])
        XCTAssertEqual(intoInput.stderr, "Error: \(input): is the same file as the input \(input); refusing to overwrite an input\n")
        let convert = try CLITests.run(["convert", model, path("soft.onnx")])
        XCTAssertEqual(convert.status, 1)
        XCTAssertTrue(convert.stderr.hasPrefix("Error: \(path("soft.onnx")): "), convert.stderr)
        XCTAssertEqual(try bytes(model), original, "the model is byte-identical")
        XCTAssertEqual(try bytes(input), originalInput)
        XCTAssertEqual(try leftovers(), [])
    }

    /// The library refuses too, while the input is mapped: the last line of defence for any writer.
    func testWriterRefusesAFileThatIsMappedAsInput() throws {
        let (model, _) = try modelAndInput()
        try FileManager.default.createSymbolicLink(atPath: path("link.onnx"), withDestinationPath: model)
        do {
            let mapped = try MappedFile(path: model)
            XCTAssertThrowsError(try OutputFile(path: path("link.onnx"))) { error in
                XCTAssertEqual("\(error)", "\(path("link.onnx")): cannot write: it is one of the files being read (same file); refusing to overwrite an input")
            }
            withExtendedLifetime(mapped) {}
        }
        // Once the mapping is gone the file is an ordinary destination again.
        let output = try OutputFile(path: path("link.onnx"))
        output.discard()
    }

    /// `--output /dev/stdout` (or any device, FIFO or `-`) used to be replaced by a regular file.
    func testStreamsAreWrittenThroughNotReplaced() throws {
        let (model, input) = try modelAndInput()
        for output in ["-", "/dev/stdout"] {
            let result = try CLITests.run(["run", model, "--input", input, "--output", output])
            XCTAssertEqual(result.status, 0, result.stderr)
            XCTAssertTrue(result.stdout.hasPrefix("\u{FFFD}NUMPY"), "the .npy (magic \\x93NUMPY) went to standard output")
            XCTAssertTrue(result.stderr.hasPrefix("\(output): [2, 10] from onnx graph 'main_graph', opset 13 in "), "the summary went to stderr: \(result.stderr)")
        }
        // A named pipe is written to, and stays a pipe.
        let fifo = path("out.npy")
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        let reader = Process()
        reader.executableURL = URL(fileURLWithPath: "/bin/cat")
        reader.arguments = [fifo]
        let pipe = Pipe()
        reader.standardOutput = pipe
        try reader.run()
        let result = try CLITests.run(["run", model, "--input", input, "--output", fifo])
        let streamed = pipe.fileHandleForReading.readDataToEndOfFile()
        reader.waitUntilExit()
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(streamed.starts(with: [0x93] + Array("NUMPY".utf8)))
        var info = stat()
        XCTAssertEqual(lstat(fifo, &info), 0)
        XCTAssertEqual(info.st_mode & S_IFMT, S_IFIFO, "still a FIFO")
        // Convert cannot verify a stream and says so.
        let fifoModel = path("out.pth")
        XCTAssertEqual(mkfifo(fifoModel, 0o600), 0)
        let convert = try CLITests.run(["convert", model, fifoModel])
        XCTAssertEqual(convert.stderr, "Error: \(fifoModel): not a regular file (a pipe, device or standard output): convert cannot read it back to verify; add --no-verify\n")
        XCTAssertEqual(try leftovers(), [])
    }

    /// A symbolic link given as output is written through: the link stays, its target gets the bytes.
    func testSymbolicLinkOutputIsWrittenThrough() throws {
        let (model, input) = try modelAndInput()
        try FileManager.default.createDirectory(atPath: path("real"), withIntermediateDirectories: true)
        try Data("old".utf8).write(to: URL(fileURLWithPath: path("real/y.npy")))
        try FileManager.default.createSymbolicLink(atPath: path("y.npy"), withDestinationPath: "real/y.npy")
        let result = try CLITests.run(["run", model, "--input", input, "--output", path("y.npy")])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: path("y.npy")), "real/y.npy")
        XCTAssertTrue(try bytes(path("real/y.npy")).starts(with: [0x93] + Array("NUMPY".utf8)))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: path("real")), ["y.npy"], "no temporary file left beside the target")
    }

    /// Ctrl-C during a long write left a hidden 244 MB temporary file behind.
    func testInterruptedWriteLeavesNothing() throws {
        for signal in [SIGINT, SIGTERM] {
            let output = path("big-\(signal).pth")
            let process = Process()
            process.executableURL = URL(fileURLWithPath: CLITests.binary)
            process.arguments = ["init", "alexnet", "-o", output]
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            let deadline = Date().addingTimeInterval(60)
            while try leftovers().isEmpty, process.isRunning, Date() < deadline { usleep(1000) }
            guard process.isRunning else {
                throw XCTSkip("zoo finished its 244 MB write before it could be interrupted")
            }
            kill(process.processIdentifier, signal)
            process.waitUntilExit()
            XCTAssertEqual(process.terminationReason, .uncaughtSignal)
            XCTAssertEqual(process.terminationStatus, signal, "dies of the signal it got")
            XCTAssertEqual(try leftovers(), [], "signal \(signal)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: output))
        }
    }

    /// Ctrl-C while convert writes or verifies its result leaves neither the output nor its
    /// staging folder (a full-size AlexNet: 244 MB written, then read back and both models run).
    func testInterruptedConvertLeavesNothing() throws {
        let checkpoint = path("alexnet.pth")
        let made = try CLITests.run(["init", "alexnet", "-o", checkpoint])
        XCTAssertEqual(made.status, 0, made.stderr)
        for (signal, output) in [(SIGINT, "alexnet.onnx"), (SIGTERM, "alexnet.safetensors")] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: CLITests.binary)
            process.arguments = ["convert", checkpoint, path(output)]
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            let staging = { try FileManager.default.contentsOfDirectory(atPath: self.folder.path).filter { $0.contains(".zoo-staging-") } }
            let deadline = Date().addingTimeInterval(60)
            while try staging().isEmpty, process.isRunning, Date() < deadline { usleep(1000) }
            usleep(100_000)  // well into the 244 MB write
            guard process.isRunning else { throw XCTSkip("convert finished before it could be interrupted") }
            kill(process.processIdentifier, signal)
            process.waitUntilExit()
            XCTAssertEqual(process.terminationReason, .uncaughtSignal)
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted(), ["alexnet.pth"],
                           "signal \(signal): no output, no staging folder, no temporary file")
        }
    }

    /// A conversion that fails leaves an existing output as it was and no staging folder.
    func testFailedConvertKeepsTheExistingOutput() throws {
        let output = path("out.pth")
        try Data("precious".utf8).write(to: URL(fileURLWithPath: output))
        // An ONNX model without initializers has no state dict to write (it used to write one that
        // could not be read back, over the existing file).
        let result = try CLITests.run(["convert", CLITests.fixtures.deletingLastPathComponent().appendingPathComponent("hostile/unsupported_op.onnx").path, output])
        XCTAssertEqual(result.status, 1, result.stderr)
        XCTAssertEqual(try bytes(output), Data("precious".utf8))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), ["out.pth"])
    }

    /// An existing output stays byte-identical when the command fails.
    func testExistingOutputSurvivesAFailure() throws {
        let (model, _) = try modelAndInput()
        let output = path("y.npy")
        try Data("precious".utf8).write(to: URL(fileURLWithPath: output))
        let bad = path("bad.npy")
        try Data("not numpy".utf8).write(to: URL(fileURLWithPath: bad))
        let result = try CLITests.run(["run", model, "--input", bad, "--output", output])
        XCTAssertEqual(result.status, 1)
        XCTAssertEqual(try bytes(output), Data("precious".utf8))
        XCTAssertEqual(try leftovers(), [])
    }
}
