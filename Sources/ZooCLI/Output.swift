import ArgumentParser
import ZooCore
#if canImport(Glibc)
import Glibc
#endif

/// `--json` and `--quiet`, which every command takes: how it reports its result on standard output.
/// Errors always go to standard error as one line, whatever these say; the exit status is the
/// contract (0 ok, 1 failure or failed parity, 64 usage).
struct OutputOptions: ParsableArguments {
    @Flag(help: "Print one JSON object (schema in the README) instead of text.")
    var json = false

    @Flag(name: .shortAndLong, help: "Print nothing on success (errors still go to standard error).")
    var quiet = false

    func validate() throws {
        if json && quiet { throw ValidationError("--json and --quiet exclude each other") }
    }

    /// Prints the command's result: `json()` rendered with --json, nothing with --quiet, else `text()`.
    func emit(_ text: @autoclosure () -> String, json: @autoclosure () -> JSON) {
        if self.json { print(json().rendered()) } else if !quiet { print(text()) }
    }

    /// A progress line on standard error, shown only when it is a terminal and not --quiet / --json.
    func progress(_ message: String) {
        guard !quiet, !json, isatty(2) != 0 else { return }
        writeStandardError("zoo: \(message.escapedForTerminal)\n")
    }
}

/// `Warning: <message>` on standard error, escaped onto one line, whatever --quiet and --json say:
/// something wrong with a file that the command works around (and says how).
func warn(_ message: String) {
    writeStandardError("Warning: \(message.escapedForTerminal)\n")
}

/// `text` on standard error as it is (the caller escapes what came from files), every byte of it
/// unless the stream fails.
func writeStandardError(_ text: String) {
    let bytes = Array(text.utf8)
    var done = 0
    while done < bytes.count {
        let n = bytes.withUnsafeBytes { Glibc.write(2, $0.baseAddress! + done, $0.count - done) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { return }
        done += n
    }
}

/// Up to `count` first bytes of the file at `path`, nil when it cannot be opened or read.
func readHead(_ path: String, count: Int) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var head = [UInt8](repeating: 0, count: count)
    var done = 0
    while done < count {
        let n = head.withUnsafeMutableBytes { read(fd, $0.baseAddress! + done, count - done) }
        if n < 0 && errno == EINTR { continue }
        if n < 0 { return nil }
        if n == 0 { break }
        done += n
    }
    return Array(head[..<done])
}

/// Refuses a negative or non-finite number given to `option` (parsed `.unconditional`, so `-1`
/// reaches here as a value instead of being taken for an option).
func requireNonNegative(_ value: Double, _ option: String) throws {
    guard value.isFinite, value >= 0 else { throw ValidationError("\(option) must be a non-negative number, got \(value)") }
}

/// Refuses a count below `minimum` given to `option`.
func requireAtLeast(_ minimum: Int, _ value: Int?, _ option: String) throws {
    if let value, value < minimum { throw ValidationError("\(option) must be at least \(minimum), got \(value)") }
}
