import Foundation

/// Paths of the committed fixtures (Fixtures/ at the package root), made by Fixtures/make_fixtures.py
/// with real PyTorch.
enum Fixture {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    /// `Fixtures/torch/<name>`.
    static func torch(_ name: String) -> String { root.appendingPathComponent("torch").appendingPathComponent(name).path }
}
