import Foundation
import XCTest

/// The README's command reference is the binary's real `--help` output (written by
/// scripts/readme-help): this fails as soon as an option, default or text changes without it.
final class ReadmeTests: XCTestCase {
    static let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("README.md")

    /// `zoo [command [subcommand]] --help` at the fixed width scripts/readme-help uses.
    private func help(_ command: [String]) throws -> String {
        let result = try CLITests.run(command + ["--help"], environment: ["COLUMNS": "100"])
        XCTAssertEqual(result.status, 0, result.stderr)
        return result.stdout
    }

    /// The subcommands a help text lists: "  name   abstract" lines after SUBCOMMANDS:.
    private func subcommands(_ help: String) -> [String] {
        let parts = help.components(separatedBy: "\nSUBCOMMANDS:\n")
        guard parts.count > 1 else { return [] }
        return parts[1].split(separator: "\n")
            .filter { $0.hasPrefix("  ") && ($0.dropFirst(2).first?.isLowercase ?? false) }
            .compactMap { $0.split(separator: " ").first.map(String.init) }
    }

    func testCommandReferenceIsTheRealHelp() throws {
        let listed = subcommands(try help([]))
        XCTAssertEqual(Set(listed), ["inspect", "convert", "run", "classify", "preprocess", "show", "parity", "init", "bench",
                                     "models", "bench-io"])
        var commands: [[String]] = [[]]
        for command in listed {
            commands.append([command])
            commands += subcommands(try help([command])).map { [command, $0] }
        }
        XCTAssertTrue(commands.contains(["show", "filters"]) && commands.contains(["show", "activations"]))
        var section = "<!-- BEGIN zoo --help: written by scripts/readme-help from the binary; ReadmeTests fails when it drifts -->\n"
        for command in commands {
            section += "\n#### `zoo\(command.map { " " + $0 }.joined()) --help`\n\n```text\n" + (try help(command)) + "```\n"
        }
        section += "<!-- END zoo --help -->\n"
        let readme = try String(contentsOf: Self.readme, encoding: .utf8)
        let start = try XCTUnwrap(readme.range(of: "<!-- BEGIN zoo --help"), "README has no command reference")
        let end = try XCTUnwrap(readme.range(of: "<!-- END zoo --help -->\n"))
        XCTAssertEqual(String(readme[start.lowerBound..<end.upperBound]), section,
                       "the README's command reference differs from the binary's --help: run scripts/readme-help")
    }
}
