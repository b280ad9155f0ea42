import ZooCore

/// A JSON value with ordered object keys, so `--json` output is stable field by field.
indirect enum JSON {
    case null
    case bool(Bool)
    case int(Int)
    case uint(UInt64)
    case double(Double)
    case string(String)
    case array([JSON])
    case object([(String, JSON)])

    /// This object with `member` appended (unchanged when it is not an object).
    func adding(_ key: String, _ value: JSON) -> JSON {
        guard case let .object(members) = self else { return self }
        return .object(members + [(key, value)])
    }

    /// Compact-but-readable rendering: one object member per line at the top levels, an array of
    /// scalars (a shape such as `["N", 3, 224, 224]`, a list of names) on one line.
    func rendered(indent: Int = 0) -> String {
        let pad = String(repeating: "  ", count: indent + 1), end = String(repeating: "  ", count: indent)
        switch self {
        case .null: return "null"
        case let .bool(b): return b ? "true" : "false"
        case let .int(i): return String(i)
        case let .uint(u): return String(u)
        case let .double(d):
            if d.isNaN { return "\"NaN\"" }
            if d.isInfinite { return d > 0 ? "\"Infinity\"" : "\"-Infinity\"" }
            return "\(d)"
        case let .string(s): return JSON.quote(s)
        case let .array(items):
            if items.isEmpty { return "[]" }
            if items.allSatisfy({ switch $0 { case .array, .object: false; default: true } }) {  // shapes, name lists
                return "[" + items.map { $0.rendered() }.joined(separator: ", ") + "]"
            }
            return "[\n" + items.map { pad + $0.rendered(indent: indent + 1) }.joined(separator: ",\n") + "\n" + end + "]"
        case let .object(members):
            if members.isEmpty { return "{}" }
            if indent >= 2 {
                return "{" + members.map { JSON.quote($0.0) + ": " + $0.1.rendered(indent: indent + 1) }.joined(separator: ", ") + "}"
            }
            return "{\n" + members.map { pad + JSON.quote($0.0) + ": " + $0.1.rendered(indent: indent + 1) }
                .joined(separator: ",\n") + "\n" + end + "}"
        }
    }

    /// `s` as a JSON string (RFC 8259) that parses back to exactly `s` and is also safe to print
    /// on a terminal: besides `"`, `\` and the C0 controls, every scalar `String.escapedForTerminal`
    /// escapes (DEL, C1, U+2028/U+2029, bidi and other format controls) is written as `\uXXXX`
    /// (a surrogate pair above U+FFFF).
    static func quote(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.isEscapedForTerminal:
                if scalar.value > 0xFFFF {
                    let v = scalar.value - 0x10000
                    out += hex4(0xD800 + (v >> 10)) + hex4(0xDC00 + (v & 0x3FF))
                } else {
                    out += hex4(scalar.value)
                }
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    private static func hex4(_ value: UInt32) -> String {
        let hex = String(value, radix: 16)
        return "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
    }
}
