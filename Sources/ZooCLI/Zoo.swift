import ArgumentParser

@main
struct Zoo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "zoo",
        abstract: "Convert, inspect and check pretrained neural-network checkpoints — no Python needed.",
        subcommands: [Inspect.self, Convert.self, Run.self, Parity.self, Init.self, Bench.self, Models.self, BenchIO.self]
    )
}

/// An error already rendered as the one line the user sees (`zoo: <file>: <what is wrong>`).
struct UserError: Error, CustomStringConvertible {
    let description: String
    init(_ error: any Error) { description = "\(error)" }
    init(message: String) { description = message }
}
