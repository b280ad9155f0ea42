/// Text from a file (tensor names, pickle globals, ONNX names, metadata) made safe to print on a
/// terminal, on one line.
///
/// A checkpoint is untrusted input: a tensor named `"\u{1B}]0;pwned\u{07}"` would retitle the
/// terminal, one with a newline would forge an extra line of output, one with U+202E would print
/// reversed. Every file-derived string zoo prints in text goes through `escapedForTerminal`
/// (JSON output escapes the same scalars as `\uXXXX`, see `Unicode.Scalar.isEscapedForTerminal`).
extension String {
    /// The string with every scalar that could control a terminal, break the line or reorder or hide
    /// text replaced by a visible escape; everything else unchanged.
    ///
    /// - Escaped: C0 controls, DEL and C1 controls (`\n`, `\r`, `\t`, otherwise `\u{1B}`: uppercase
    ///   hex, at least two digits), U+2028/U+2029 and the invisible format characters — bidi controls
    ///   (U+202A–202E, U+2066–2069, U+200E/200F, U+061C), zero-width space, BOM and the rest of
    ///   general category Cf — as `\u{202E}`.
    /// - Kept: every printable character, non-ASCII letters and emoji included, and the joiners
    ///   emoji and several scripts need inside a character (U+200C, U+200D, tag characters
    ///   U+E0020–E007F).
    /// - A backslash is doubled, so the escaping is one-to-one: two different strings never print
    ///   the same, and a name cannot fake an escape.
    public var escapedForTerminal: String {
        guard unicodeScalars.contains(where: { $0 == "\\" || $0.isEscapedForTerminal }) else { return self }
        var out = ""
        out.reserveCapacity(utf8.count + 8)
        for scalar in unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.isEscapedForTerminal:
                let hex = String(scalar.value, radix: 16, uppercase: true)
                out += "\\u{" + (hex.count < 2 ? "0" : "") + hex + "}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}

extension Unicode.Scalar {
    /// Whether `String.escapedForTerminal` replaces this scalar: a control character (C0, DEL, C1),
    /// a line or paragraph separator, or a format character other than the joiners U+200C/U+200D
    /// and the emoji tag characters U+E0020–E007F.
    public var isEscapedForTerminal: Bool {
        switch value {
        case 0x20..<0x7F: return false                 // printable ASCII, the common case
        case 0x200C, 0x200D, 0xE0020...0xE007F: return false
        default:
            switch properties.generalCategory {
            case .control, .lineSeparator, .paragraphSeparator, .format: return true
            default: return false
            }
        }
    }
}
