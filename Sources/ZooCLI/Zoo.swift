import ArgumentParser
import ZooCore
#if canImport(Glibc)
import Glibc
import CMalloc
#endif

@main
struct Zoo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "zoo",
        abstract: "Convert, inspect and check pretrained neural-network checkpoints — no Python needed.",
        version: Zoo.version,
        subcommands: [Inspect.self, Convert.self, Run.self, Classify.self, Preprocess.self, Show.self, Parity.self, Init.self, Bench.self, Models.self, BenchIO.self]
    )

    /// What `zoo --version` prints.
    static let version = "zoo 0.11.0"

    /// ArgumentParser's `main()`, except for the errors it would print as `Error: <message>` with
    /// exit status 1 — those a command throws (`UserError`, a reader's error): their message, which
    /// quotes names from the file, is printed escaped (`String.escapedForTerminal`) on one line.
    /// Usage errors, `--help`, `ValidationError`, `ExitCode` and `CleanExit` keep ArgumentParser's
    /// text and exit codes. (Its own error types are internal, hence the test on the exit code.)
    static func main() {
        // Blocks of 128 KiB and more get their own mapping, returned to the system when freed.
        // glibc's default threshold grows to the size of the largest block freed (up to 32 MiB),
        // after which the temporaries of packing a model's weights (folded copies, transforms) stay
        // in the heap beside what is kept: ResNet-50's peak 187 MB → 172 MB.
        _ = mallopt(M_MMAP_THRESHOLD, 128 << 10)
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as UserError {
            printError(error.description)
            Glibc.exit(error.isUsage ? ExitCode.validationFailure.rawValue : ExitCode.failure.rawValue)
        } catch where exitCode(for: error) == .failure && !(error is ExitCode) {
            printError(message(for: error))
            Glibc.exit(ExitCode.failure.rawValue)
        } catch {
            exit(withError: error)
        }
    }

    /// `Error: <message>` on standard error, escaped onto one line.
    private static func printError(_ message: String) {
        writeStandardError("Error: \(message.escapedForTerminal)\n")
    }
}

/// An error already rendered as the one line the user sees (`<file>: <what is wrong>`). A usage
/// error — a mistake in the command line found only once files are read (an option that does not
/// apply to this file, a choice the user must make) — exits 64 like ArgumentParser's own.
struct UserError: Error, CustomStringConvertible {
    let description: String
    let isUsage: Bool
    init(_ error: any Error) { description = "\(error)"; isUsage = false }
    init(message: String) { description = message; isUsage = false }
    init(usage: String) { description = usage; isUsage = true }
}
