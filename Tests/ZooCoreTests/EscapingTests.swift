import XCTest
import ZooCore

/// `String.escapedForTerminal`: what a name from a file may and may not carry to the terminal.
final class EscapingTests: XCTestCase {
    private func scalar(_ value: UInt32) -> String { String(Unicode.Scalar(value)!) }

    func testEveryC0ControlDelAndC1ControlIsEscaped() {
        let named: [UInt32: String] = [0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"]
        for value in Array(0x00...0x1F) + [0x7F] + Array(0x80...0x9F) {
            let hex = String(value, radix: 16, uppercase: true)
            let expected = named[UInt32(value)] ?? "\\u{" + (hex.count < 2 ? "0" : "") + hex + "}"
            XCTAssertEqual(("a" + scalar(UInt32(value)) + "b").escapedForTerminal, "a" + expected + "b", "U+\(hex)")
        }
        XCTAssertEqual("\u{1B}]0;pwned\u{07}".escapedForTerminal, "\\u{1B}]0;pwned\\u{07}")
        XCTAssertEqual("\u{00}".escapedForTerminal, "\\u{00}")
    }

    func testLineSeparatorsAndBidiAndInvisibleFormatCharactersAreEscaped() {
        for value: UInt32 in [0x2028, 0x2029, 0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2066, 0x2067, 0x2068, 0x2069,
                              0x200E, 0x200F, 0x061C, 0x200B, 0x2060, 0xFEFF, 0xE0001] {
            let hex = String(value, radix: 16, uppercase: true)
            XCTAssertEqual(("x" + scalar(value) + "y").escapedForTerminal, "x\\u{\(hex)}y", "U+\(hex)")
        }
    }

    func testPrintableTextIsUnchanged() {
        for text in ["features.0.weight", "a b ~!@#$%^&*()_+{}|:\"<>?`-=[];',./", "é", "Ελληνικά", "日本語の重み", "שלום",
                     "👍🏽", "👨‍👩‍👧", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "क्‍ष", "می‌خواهم", ""] {
            XCTAssertEqual(Array(text.escapedForTerminal.unicodeScalars), Array(text.unicodeScalars), text)
        }
    }

    /// A doubled backslash keeps the escaping one-to-one: a name spelling an escape prints differently
    /// from the control character it spells.
    func testBackslashIsDoubledSoEscapingIsOneToOne() {
        XCTAssertEqual("a\\b".escapedForTerminal, "a\\\\b")
        XCTAssertEqual("\\n".escapedForTerminal, "\\\\n")
        XCTAssertNotEqual("\\u{1B}".escapedForTerminal, "\u{1B}".escapedForTerminal)
    }

    func testResultHoldsNoEscapedScalar() {
        var all = ""
        for value in 0..<0x3000 { if let s = Unicode.Scalar(UInt32(value)) { all.unicodeScalars.append(s) } }
        let escaped = all.escapedForTerminal
        XCTAssertFalse(escaped.unicodeScalars.contains { $0.isEscapedForTerminal })
        XCTAssertFalse(escaped.unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) })
    }
}
