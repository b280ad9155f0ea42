import ArgumentParser
import ZooCore
#if canImport(Glibc)
import Glibc
#endif

@main
struct Zoo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "zoo",
        abstract: "Convert, inspect and check pretrained neural-network checkpoints — no Python needed.",
        subcommands: [Inspect.self, Convert.self, Run.self, Parity.self, Init.self, Bench.self, Models.self, BenchIO.self]
    )

    /// ArgumentParser's `main()`, except for the errors it would print as `Error: <message>` with
    /// exit status 1 — those a command throws (`UserError`, a reader's error): their message, which
    /// quotes names from the file, is printed escaped (`String.escapedForTerminal`) on one line.
    /// Usage errors, `--help`, `ValidationError`, `ExitCode` and `CleanExit` keep ArgumentParser's
    /// text and exit codes. (Its own error types are internal, hence the test on the exit code.)
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch where exitCode(for: error) == .failure && !(error is ExitCode) {
            let line = Array("Error: \(message(for: error).escapedForTerminal)\n".utf8)
            _ = line.withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) }
            Glibc.exit(ExitCode.failure.rawValue)
        } catch {
            exit(withError: error)
        }
    }
}

/// An error already rendered as the one line the user sees (`zoo: <file>: <what is wrong>`).
struct UserError: Error, CustomStringConvertible {
    let description: String
    init(_ error: any Error) { description = "\(error)" }
    init(message: String) { description = message }
}
