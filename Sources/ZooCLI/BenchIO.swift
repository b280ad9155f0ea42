import ArgumentParser
import TorchFormat
import ZooCore
#if canImport(Glibc)
import Glibc
#endif

struct BenchIO: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-io",
        abstract: "Time opening a checkpoint (every tensor ready to read) and writing it back.",
        discussion: """
        Prints median and minimum wall time over --runs runs for: open without CRC checks, open \
        with CRC-32 verification of every record, and (with --write) saving the whole checkpoint \
        as torch.save would; then the process's peak resident memory. Benchmarks/checkpoint_io.py \
        runs it next to torch.load and torch.save.
        """
    )

    @Argument(help: "The checkpoint to open.")
    var file: String

    @Option(help: "Also write the checkpoint to this path (it is overwritten) and time that.")
    var write: String?

    @Option(parsing: .unconditional, help: "Runs per measurement.")
    var runs: Int = 10

    @OptionGroup var printing: OutputOptions

    func validate() throws { try requireAtLeast(1, runs, "--runs") }

    func run() throws {
        // Peak resident memory is read after each phase (it only grows), so each figure covers the
        // phases up to and including its own.
        var results: [(name: String, times: [Double], peak: Int)] = []
        if let write { try refuseOverwriting([write], inputs: [file]) }
        do {
            var tensors = 0
            let open = try time { tensors = try Checkpoint.load(path: file, options: .init(verifyChecksums: false)).tensors.count }
            results.append(("open", open, peakResidentBytes()))
            let crc = try time { _ = try Checkpoint.load(path: file, options: .init(verifyChecksums: true)) }
            results.append(("open_crc", crc, peakResidentBytes()))
            if let write {
                let checkpoint = try Checkpoint.load(path: file, options: .init(verifyChecksums: false))
                let save = try time { try Checkpoint.save(checkpoint.root, to: write) }
                results.append(("save", save, peakResidentBytes()))
            }
            var members: [(String, JSON)] = [("file", .string(file)), ("tensors", .int(tensors))]
            var lines = ["\(file.escapedForTerminal): \(tensors) tensors, \(runs) runs each"]
            for result in results {
                members.append((result.name, .object([
                    ("median_s", .double(median(result.times))), ("min_s", .double(result.times.min()!)),
                    ("peak_rss_bytes", .int(result.peak)),
                ])))
                lines.append("  \(result.name.padding(9))  median \(ms(median(result.times)))  min \(ms(result.times.min()!))"
                    + "  peak resident \(grouped(result.peak / 1_048_576)) MiB")
            }
            printing.emit(lines.joined(separator: "\n"), json: .object(members))
        } catch let error as CheckpointError {
            throw UserError(error)
        }
    }

    private func time(_ body: () throws -> Void) throws -> [Double] { try timeRuns(runs, body) }

    private func ms(_ seconds: Double) -> String {
        let value = seconds * 1000
        return (value < 10 ? String(format1: value, digits: 2) : String(format1: value, digits: 1)) + " ms"
    }

    /// The process's peak resident set (VmHWM): per address space, so unlike getrusage's maxrss it
    /// does not inherit the peak of whatever process forked this one.
    private func peakResidentBytes() -> Int {
        guard let file = fopen("/proc/self/status", "r") else { return 0 }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 256)
        while fgets(&line, Int32(line.count), file) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if text.hasPrefix("VmHWM:") {
                return (Int(text.dropFirst(6).filter(\.isNumber)) ?? 0) * 1024
            }
        }
        return 0
    }
}

extension String {
    /// `value` with a fixed number of decimals (no Foundation needed).
    init(format1 value: Double, digits: Int) {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let rounded = (value * scale).rounded() / scale
        var text = "\(rounded)"
        if let dot = text.firstIndex(of: ".") {
            let decimals = text.distance(from: dot, to: text.endIndex) - 1
            if decimals < digits { text += String(repeating: "0", count: digits - decimals) }
        }
        self = text
    }
}
