/// `zoo-fuzz`: one fuzz target per entry point that reads untrusted bytes.
///
/// Built normally (`swift build`), it replays inputs: `zoo-fuzz TARGET FILE|DIR...` runs every file
/// through the target and exits 0 when none trapped (each file is a separate call, as in fuzzing).
/// Built by `scripts/fuzz` with `-sanitize=fuzzer,address -DZOO_LIBFUZZER`, it is a libFuzzer binary:
/// `ZOO_FUZZ_TARGET=TARGET zoo-fuzz [libFuzzer flags] CORPUS...`.
///
/// A target passes bytes to the same public API the CLI uses (through a file, since the readers
/// map files) and then uses what came back — every tensor's first and last elements are read — so
/// that a geometry the reader failed to check faults here. Errors thrown by the readers are the
/// expected outcome for most inputs; only traps, sanitizer reports, leaks and hangs are findings.
import Foundation
import ONNXFormat
import Safetensors
import TorchFormat
import ZooCore
import ZooImage
import ZooModels

/// The targets, by name.
enum FuzzTarget: String, CaseIterable {
    /// The restricted unpickler on a bare pickle stream, then the object-graph walker.
    case pickle
    /// The zip container: central directory, local headers, every record's contents with CRC check.
    case zip
    /// Legacy (stacked-pickle) checkpoints, the whole load.
    case legacy
    /// Tar checkpoints of torch < 0.1.10, the whole load.
    case tar
    /// Any checkpoint → state dict → architecture detection and strict binding (graph + shapes).
    case checkpoint
    /// ONNX model → graph import with per-opset semantics, folding and shape inference; initializers;
    /// the description `zoo inspect` prints (`ONNX.describe`).
    case onnx
    /// A serialized ONNX TensorProto (the backend suites' .pb inputs).
    case tensorproto
    /// safetensors header and tensors, then binding as for checkpoints.
    case safetensors
    /// .npy arrays.
    case npy
    /// .npz archives (numpy's savez): the flat zip layout, every record read as .npy.
    case npz
    /// JPEG decoding (libjpeg-turbo through CImageCodecs' error handlers): markers, limits, every
    /// pixel, the EXIF orientation and its transposition.
    case jpeg
    /// PNG decoding (libpng through CImageCodecs): chunks and CRCs, every colour type and Adam7, the
    /// eXIf orientation and its transposition.
    case png

    /// The file extension the input is written with.
    var fileExtension: String {
        switch self {
        case .pickle: "pkl"
        case .zip, .legacy, .tar, .checkpoint: "pth"
        case .onnx: "onnx"
        case .tensorproto: "pb"
        case .safetensors: "safetensors"
        case .npy: "npy"
        case .npz: "npz"
        case .jpeg: "jpg"
        case .png: "png"
        }
    }

    /// Runs one input. Reader errors are swallowed; anything else is a finding.
    func run(_ bytes: UnsafeRawBufferPointer, file path: String) {
        switch self {
        case .pickle:
            var unpickler = Unpickler(bytes: bytes, record: "data.pkl") { id throws(CheckpointError) in id }
            if let value = try? unpickler.load() { _ = try? Checkpoint.tensors(in: value) }
        case .zip:
            guard let file = try? MappedFile(path: path), let archive = try? ZipArchive(file: file) else { return }
            for entry in archive.entries {
                if let contents = try? archive.contents(of: entry, verifyCRC: true) { touch(contents.bytes) }
            }
        case .legacy, .tar:
            guard Checkpoint.detectFormat(bytes) == (self == .legacy ? .legacy : .tar) else { return }
            if let checkpoint = try? Checkpoint.load(path: path) { use(checkpoint) }
        case .checkpoint:
            if let checkpoint = try? Checkpoint.load(path: path) { use(checkpoint) }
        case .onnx:
            if let model = try? ONNX.load(path: path) {
                for value in model.initializers { touch(value.tensor) }
                _ = model.graph.dump
            }
            if let initializers = try? ONNX.initializers(path: path) { for value in initializers { touch(value.tensor) } }
            if let description = try? ONNX.describe(path: path) {
                sink &+= description.opCounts.reduce(description.parameterCount) { $0 &+ $1.count } &+ description.inputs.count
            }
        case .tensorproto:
            if let tensor = try? ONNX.tensor(fromTensorProtoFile: path) { touch(tensor) }
        case .safetensors:
            guard let file = try? Safetensors.load(path: path) else { return }
            for entry in file.tensors { touch(entry.tensor) }
            _ = try? Model.bind(tensors: file.tensors)
        case .npy:
            if let tensor = try? NumPy.read(path: path) { touch(tensor) }
        case .npz:
            if let arrays = try? NumPyArchive.read(path: path) { for array in arrays { touch(array.tensor) } }
        case .jpeg, .png:
            guard let image = try? decodeImage(path: path, limits: imageBudget) else { return }
            image.rgb.pixels.withUnsafeBytes { touch($0) }
            if let orientation = image.exifOrientation, image.rgb.pixels.count <= 1 << 20 {
                applyingEXIFOrientation(image.rgb, orientation).pixels.withUnsafeBytes { touch($0) }
            }
        }
    }

    private func use(_ checkpoint: Checkpoint) {
        for entry in checkpoint.tensors { touch(entry.tensor.tensor) }
        guard let stateDict = try? checkpoint.stateDict() else { return }
        _ = checkpoint.otherEntries(excluding: stateDict.key)
        _ = try? Model.bind(stateDict)
    }
}

/// The image targets' pixel budget: 4 M instead of PIL's 179 M (`maxImagePixels`). A few hundred
/// bytes can describe an image at PIL's limit legitimately (a JPEG scan that ends early is filled
/// in, as PIL does), and producing 179 M pixels takes seconds under the fuzzer's comparison tracing;
/// the paths through the decoders are the same at any size.
let imageBudget: ResourceLimits = {
    var limits = ResourceLimits.current
    limits.maxImagePixels = 1 << 22
    return limits
}()

/// Reads the first and last byte of `bytes`, so a range past a mapping's end faults.
@inline(never)
func touch(_ bytes: UnsafeRawBufferPointer) {
    guard let first = bytes.first, let last = bytes.last else { return }
    sink &+= Int(first) &+ Int(last)
}

/// Reads a tensor's storage ends and up to 64 of its elements in C order (every element of a small
/// tensor), so a view reaching outside its storage faults.
@inline(never)
func touch(_ tensor: Tensor) {
    touch(tensor.storage.bytes)
    let bytes = tensor.storage.bytes, item = tensor.dtype.itemSize
    var visited = 0
    struct Enough: Error {}
    try? tensor.forEachByteOffset { at in
        guard visited < 64 else { throw Enough() }
        touch(UnsafeRawBufferPointer(rebasing: bytes[at..<(at + item)]))
        visited += 1
    }
}

nonisolated(unsafe) var sink = 0

/// The target this process runs, and where its input is written.
nonisolated(unsafe) var current: (target: FuzzTarget, path: String)?

/// Writes `bytes` to the per-process input file and runs the current target on it.
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ count: Int) -> Int32 {
    guard let (target, path) = current else { return 0 }
    let bytes = UnsafeRawBufferPointer(start: count > 0 ? data : nil, count: count)
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    precondition(fd >= 0, "cannot write the fuzz input file \(path)")
    var done = 0
    while done < count {
        let written = write(fd, bytes.baseAddress! + done, count - done)
        precondition(written > 0, "cannot write the fuzz input file \(path)")
        done += written
    }
    close(fd)
    target.run(bytes, file: path)
    return 0
}

#if ZOO_LIBFUZZER
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32
#endif

@main
struct ZooFuzz {
    static func main() {
        var arguments = CommandLine.arguments
        #if ZOO_LIBFUZZER
        let chosen = ProcessInfo.processInfo.environment["ZOO_FUZZ_TARGET"]
        #else
        let chosen = arguments.count > 1 ? arguments.remove(at: 1) : nil
        #endif
        guard let name = chosen, let target = FuzzTarget(rawValue: name) else {
            FileHandle.standardError.write(Data("""
                usage: zoo-fuzz TARGET FILE|DIR...     (replay inputs; libFuzzer builds: ZOO_FUZZ_TARGET=TARGET)
                targets: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))\n
                """.utf8))
            exit(64)
        }
        // A private folder per process (tmpfs when there is one): inputs that name external data
        // find only what they themselves wrote.
        let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        let folder = "\(base)/zoo-fuzz-\(getpid())"
        mkdir(folder, 0o700)
        current = (target, "\(folder)/input.\(target.fileExtension)")
        #if ZOO_LIBFUZZER
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        let status = LLVMFuzzerRunDriver(&argc, &argv) { data, count in fuzzOne(data, count) }
        try? FileManager.default.removeItem(atPath: folder)
        exit(status)
        #else
        var files: [String] = []
        for argument in arguments.dropFirst() {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: argument, isDirectory: &isDirectory) else {
                FileHandle.standardError.write(Data("zoo-fuzz: no such file: \(argument)\n".utf8)); exit(64)
            }
            if isDirectory.boolValue {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: argument)) ?? []
                files += names.sorted().map { "\(argument)/\($0)" }
            } else {
                files.append(argument)
            }
        }
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else { continue }
            data.withUnsafeBytes { raw in
                _ = fuzzOne(raw.bindMemory(to: UInt8.self).baseAddress, raw.count)
            }
        }
        try? FileManager.default.removeItem(atPath: folder)
        print("\(target.rawValue): \(files.count) inputs replayed, none trapped")
        #endif
    }
}
