#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Every budget zoo applies to what a file declares, in one place.
///
/// A reader never makes an allocation, or starts a loop, whose size a file chooses without first
/// checking it against the file's own size (a mapped file's bytes bound everything sliced from it)
/// or against one of these limits. A file over a limit is refused with one line naming the limit,
/// its value and how to raise it (`LimitExceeded`), through the format's own error type.
///
/// The defaults (`standard`) let every real model load — a 10 GB torch checkpoint or a 2 GiB ONNX
/// model with external data reads within them, because whatever grows with a model's weights is
/// bounded by the file's size rather than by a constant — while a small hostile file cannot make
/// zoo allocate more than a few GiB. Each field's documentation says why its default is safe.
///
/// Override any of them with the environment variable `ZOO_LIMITS`, a comma-separated list of
/// `name=value` (names as below, case-insensitive; values are integers with an optional binary
/// suffix K, M, G or T): `ZOO_LIMITS=maxInflatedBytes=16G,maxPickleDepth=2000`. It is parsed once
/// (`current`); a malformed value is never ignored: every reader refuses to load with
/// `environmentProblem`. Library callers can also pass limits explicitly (`parse(_:over:)` builds
/// them from the same syntax).
public struct ResourceLimits: Sendable, Equatable {
    // MARK: Pickle (TorchFormat)

    /// Largest pickle (a zip checkpoint's `data.pkl`, stored or inflated) that is read. A state
    /// dict's pickle takes ~100 bytes per tensor, so 1 GiB is ~10 M tensors; tensor data is never in it.
    public var maxPickleBytes = 1 << 30
    /// Deepest pickle stack. Each entry needs at least one opcode byte and the walker accepts at
    /// most `maxExpandedValues` values; 10 M entries are ~320 MB.
    public var maxPickleStack = 10_000_000
    /// Most memo entries in one pickle (each needs a PUT/MEMOIZE opcode; ~64 bytes each in memory).
    public var maxPickleMemo = 10_000_000
    /// Most MARKs open at once. Torch writes one per container being filled, so one per nesting level.
    public var maxPickleMarks = 100_000
    /// Most values one pickle may push: every value built, every memo reference and DUP counts, so a
    /// list of 10^9 references to one object costs 10^9 pushes, not 10^9 bytes of file. Twice
    /// `maxExpandedValues`, since rebuilding a tensor takes about 20 intermediate values.
    public var maxPickleValues = 10_000_000
    /// Deepest nesting of containers (a tuple holding a tuple is 2 deep). Python's own pickler
    /// cannot write much deeper than its recursion limit of 1000; zoo's pickler (writing a
    /// checkpoint) recurses once per level, so this cannot be raised past 10000.
    public var maxPickleDepth = 1000
    /// Longest string or bytes value (BINUNICODE, BINBYTES, …); also bounded by the pickle's size.
    public var maxPickleStringBytes = 1 << 30
    /// Longest arbitrary-precision integer (LONG1/LONG4). Torch writes only the 10-byte legacy magic.
    public var maxPickleLongBytes = 4096
    /// Longest newline-terminated argument of a text opcode (GLOBAL's names, INT, PUT, GET).
    public var maxPickleLineBytes = 4096
    /// Most values a walk of the finished object graph visits, counting every reference to a shared
    /// value: a memo bomb (references nested to expand exponentially) is refused without being
    /// expanded. A checkpoint holds a few values per tensor, so 5 M is over a million tensors.
    public var maxExpandedValues = 5_000_000
    /// Total bytes of the dotted key paths (`state_dict.layer1.0.weight`) built while walking a
    /// checkpoint: one per visited value, so a long key shared by many references would otherwise
    /// be copied once per reference. Real paths are under 200 bytes: 1 GiB is 5 M paths of 200 bytes.
    public var maxKeyPathBytes = 1 << 30

    // MARK: Containers

    /// Total bytes inflated from one zip archive's deflated records (torch.save stores records
    /// uncompressed and zoo maps them without copying; deflated records, from archives re-zipped by
    /// other tools, are inflated into memory). Deflate expands up to 1032:1, so the compressed size
    /// alone does not bound this. 4 GiB holds any re-zipped checkpoint of up to ~1 B f32 parameters.
    public var maxInflatedBytes = 4 << 30

    // MARK: Tensors

    /// Most dimensions of a tensor in any format (numpy's own maximum since 2.0; torch's tar format
    /// reader has always refused more). Shapes, strides and the index arrays of strided copies are
    /// sized by it.
    public var maxTensorRank = 64
    /// Largest dense copy made of a tensor view that reaches beyond its storage's bytes: expanded
    /// views (stride 0) and overlapping strides, which a checkpoint can declare over a few bytes.
    /// Loading keeps them views (and zoo's torch writer writes them back as views), so this is
    /// checked where one is materialized: written to safetensors, ONNX or .npy, or bound to a
    /// model. Views within their storage are bounded by the file and never checked against it.
    /// Real expanded buffers (position ids, masks) are kilobytes.
    public var maxTensorBytes = 4 << 30

    // MARK: ONNX

    /// Deepest nesting of protobuf messages in an ONNX file (a graph in a node's attribute in a
    /// graph …, or a TypeProto inside a TypeProto). protobuf-c unpacks recursively, so a deep file
    /// would overflow the stack (100 000 levels fit in 1.2 MB). 100 is the default recursion limit
    /// of protobuf's own C++ and Python parsers, which onnx and onnxruntime use, so no file they
    /// read nests deeper. Cannot be raised past 1000.
    public var maxONNXNesting = 100
    /// How many times its own size an ONNX file may make protobuf-c allocate when unpacking it (plus
    /// a fixed 64 MiB). Every repeated field — nodes, initializers, attributes, dims, ints/floats
    /// lists — is counted from the wire before unpacking: an empty 2-byte AttributeProto becomes a
    /// 248-byte struct, so a hostile file could otherwise expand ~130:1. Real models unpack to
    /// about their own size (raw_data is copied); 8× leaves room for int64 lists of small values.
    public var maxONNXExpansion = 8
    /// Largest dense size of a constant folded while importing. ConstantOfShape's fill is kept as
    /// one element viewed with stride 0 (nothing is allocated until a kernel packs it), so this bounds
    /// what executing the graph may later materialize: as `maxTensorBytes`, 4 GiB — enough for the
    /// model zoo's VGG-19 whose 392 MiB fc6 weight is a ConstantOfShape. A fixed budget, so whether a
    /// file imports does not depend on the machine.
    public var maxFoldedConstantBytes = 4 << 30

    // MARK: safetensors, .npy

    /// Largest safetensors JSON header: the format's own limit (the reference library's
    /// MAX_HEADER_SIZE), which it refuses beyond too.
    public var maxSafetensorsHeaderBytes = 100_000_000
    /// Largest .npy header: numpy's own default `max_header_size` (numpy refuses larger headers
    /// unless told the file is trusted). A header holds a dtype, a flag and a shape: ~128 bytes.
    public var maxNpyHeaderBytes = 10_000

    // MARK: Images

    /// Most pixels in an image file (JPEG, PNG) that is decoded, read from its header before any
    /// pixel memory: PIL's decompression-bomb error threshold (2 × `Image.MAX_IMAGE_PIXELS`), above
    /// which `Image.open` refuses a file, so zoo decodes what torchvision's pipeline can. The RGB
    /// takes 3 bytes a pixel (537 MB at the limit).
    public var maxImagePixels = 178_956_970

    // MARK: Runtime

    /// Most memory one execution plan's activations may take. Default: a quarter of physical
    /// memory, so a small file declaring enormous shapes is refused instead of exhausting the machine.
    public var maxActivationBytes = ResourceLimits.physicalMemory / 4

    /// The documented defaults.
    public init() {}

    public static let standard = ResourceLimits()

    /// The environment variable holding overrides.
    public static let environmentVariable = "ZOO_LIMITS"

    /// `standard` with the overrides in `ZOO_LIMITS` applied, parsed once. When the variable is
    /// malformed this is `standard` and `environmentProblem` says why (readers refuse to load).
    public static var current: ResourceLimits { environment.limits }

    /// Why `ZOO_LIMITS` cannot be honoured, or nil when it is unset or valid. Every reader throws it
    /// (as its own error type) before reading anything.
    public static var environmentProblem: String? { environment.problem }

    private static let environment: (limits: ResourceLimits, problem: String?) = {
        guard let raw = getenv(environmentVariable) else { return (.standard, nil) }
        do throws(ResourceLimitsError) {
            return (try parse(String(cString: raw)), nil)
        } catch {
            return (.standard, error.description)
        }
    }()

    private static let physicalMemory: Int = {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), size = sysconf(Int32(_SC_PAGESIZE))
        return pages > 0 && size > 0 ? pages * size : 4 << 30
    }()
}

// MARK: - Names, units and the override syntax

extension ResourceLimits {
    public enum Unit: Sendable, Equatable {
        case bytes, count, ratio
    }

    /// One limit: its name in messages and `ZOO_LIMITS`, its field, unit and allowed values.
    public struct Limit {
        public let name: String
        public let keyPath: WritableKeyPath<ResourceLimits, Int>
        public let unit: Unit
        public let allowed: ClosedRange<Int>
        /// Why values outside `allowed` are refused, when it is not just "positive".
        public let why: String?
    }

    /// Every limit, in declaration order.
    public static var all: [Limit] {
        let positive = 1...Int.max
        return [
            Limit(name: "maxPickleBytes", keyPath: \.maxPickleBytes, unit: .bytes, allowed: positive, why: nil),
            Limit(name: "maxPickleStack", keyPath: \.maxPickleStack, unit: .count, allowed: positive, why: nil),
            Limit(name: "maxPickleMemo", keyPath: \.maxPickleMemo, unit: .count, allowed: positive, why: nil),
            Limit(name: "maxPickleMarks", keyPath: \.maxPickleMarks, unit: .count, allowed: positive, why: nil),
            Limit(name: "maxPickleValues", keyPath: \.maxPickleValues, unit: .count, allowed: positive, why: nil),
            Limit(name: "maxPickleDepth", keyPath: \.maxPickleDepth, unit: .count, allowed: 1...10_000,
                  why: "zoo's pickler recurses once per level"),
            Limit(name: "maxPickleStringBytes", keyPath: \.maxPickleStringBytes, unit: .bytes, allowed: positive, why: nil),
            Limit(name: "maxPickleLongBytes", keyPath: \.maxPickleLongBytes, unit: .bytes, allowed: positive, why: nil),
            Limit(name: "maxPickleLineBytes", keyPath: \.maxPickleLineBytes, unit: .bytes, allowed: positive, why: nil),
            Limit(name: "maxExpandedValues", keyPath: \.maxExpandedValues, unit: .count, allowed: positive, why: nil),
            Limit(name: "maxKeyPathBytes", keyPath: \.maxKeyPathBytes, unit: .bytes, allowed: positive, why: nil),
            Limit(name: "maxInflatedBytes", keyPath: \.maxInflatedBytes, unit: .bytes, allowed: 0...Int.max, why: nil),
            Limit(name: "maxTensorRank", keyPath: \.maxTensorRank, unit: .count, allowed: 0...Int.max, why: nil),
            Limit(name: "maxTensorBytes", keyPath: \.maxTensorBytes, unit: .bytes, allowed: 0...Int.max, why: nil),
            Limit(name: "maxONNXNesting", keyPath: \.maxONNXNesting, unit: .count, allowed: 1...1000,
                  why: "protobuf-c unpacks recursively"),
            Limit(name: "maxONNXExpansion", keyPath: \.maxONNXExpansion, unit: .ratio, allowed: 1...1_000_000, why: nil),
            Limit(name: "maxFoldedConstantBytes", keyPath: \.maxFoldedConstantBytes, unit: .bytes, allowed: 0...Int.max, why: nil),
            Limit(name: "maxSafetensorsHeaderBytes", keyPath: \.maxSafetensorsHeaderBytes, unit: .bytes, allowed: positive, why: nil),
            Limit(name: "maxNpyHeaderBytes", keyPath: \.maxNpyHeaderBytes, unit: .bytes, allowed: positive, why: nil),
            Limit(name: "maxImagePixels", keyPath: \.maxImagePixels, unit: .count, allowed: positive, why: nil),
            Limit(name: "maxActivationBytes", keyPath: \.maxActivationBytes, unit: .bytes, allowed: positive, why: nil),
        ]
    }

    /// The limit named `name` (case-insensitive).
    public static func limit(named name: String) -> Limit? {
        let wanted = name.lowercased()
        return all.first { $0.name.lowercased() == wanted }
    }

    /// `base` with the overrides in `text` applied: `name=value[,name=value…]`, names
    /// case-insensitive, values non-negative integers with an optional binary suffix K, M, G or T
    /// (`8G` is 8 GiB); whitespace around items and empty items are ignored; a name given twice,
    /// an unknown name or a value outside the limit's range is an error.
    public static func parse(_ text: String, over base: ResourceLimits = .standard) throws(ResourceLimitsError) -> ResourceLimits {
        var limits = base
        var seen: Set<String> = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let entry = item.trimmingSpaces
            if entry.isEmpty { continue }
            guard let equals = entry.firstIndex(of: "=") else {
                throw ResourceLimitsError("'\(entry)' is not name=value")
            }
            let name = String(entry[..<equals]).trimmingSpaces, valueText = String(entry[entry.index(after: equals)...]).trimmingSpaces
            guard let limit = limit(named: name) else {
                throw ResourceLimitsError("'\(name)' is not a limit (limits: \(all.map(\.name).joined(separator: ", ")))")
            }
            guard seen.insert(limit.name).inserted else { throw ResourceLimitsError("\(limit.name) is given twice") }
            guard let value = parseValue(valueText) else {
                throw ResourceLimitsError("\(limit.name)=\(valueText) is not a number (digits with an optional K, M, G or T suffix)")
            }
            guard limit.allowed.contains(value) else {
                let range = limit.allowed.upperBound == Int.max ? "at least \(limit.allowed.lowerBound)"
                    : "between \(limit.allowed.lowerBound) and \(limit.allowed.upperBound)"
                throw ResourceLimitsError("\(limit.name)=\(valueText) must be \(range)" + (limit.why.map { " (\($0))" } ?? ""))
            }
            limits[keyPath: limit.keyPath] = value
        }
        return limits
    }

    /// Digits with an optional binary suffix; nil when malformed or beyond `Int`.
    private static func parseValue(_ text: String) -> Int? {
        var digits = Substring(text)
        var scale = 1
        if let last = digits.last, let power = ["k": 10, "m": 20, "g": 30, "t": 40][last.lowercased()] {
            scale = 1 << power
            digits = digits.dropLast()
        }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int(digits) else { return nil }
        let (scaled, overflow) = value.multipliedReportingOverflow(by: scale)
        return overflow ? nil : scaled
    }

    /// `value` as a person reads it: "4 GiB", "3.1 GiB", "10000 bytes".
    public static func bytesText(_ value: Int) -> String {
        let units = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
        guard value >= 1024 else { return "\(value) bytes" }
        var unit = 0
        var scaled = Double(value) / 1024
        while scaled >= 1024, unit < units.count - 1 {
            scaled /= 1024
            unit += 1
        }
        if scaled == scaled.rounded() { return "\(Int(scaled)) \(units[unit])" }
        return "\((scaled * 10).rounded() / 10) \(units[unit])"
    }

    /// A limit's value as a person reads it: exact ("100000000 bytes, 95.4 MiB") unless it is a
    /// whole number of KiB, MiB, … ("4 GiB").
    static func limitText(_ value: Int, unit: Unit) -> String {
        switch unit {
        case .count: return "\(value)"
        case .ratio: return "\(value)×"
        case .bytes:
            let text = bytesText(value)
            return value < 1024 || !text.contains(".") ? text : "\(value) bytes, \(text)"
        }
    }

    /// The `ZOO_LIMITS` value that admits `needed`: bytes rounded up to a whole K/M/G/T.
    static func overrideText(_ needed: Int, unit: Unit) -> String {
        guard unit == .bytes, needed > 1024 else { return "\(needed)" }
        for (suffix, shift) in [("T", 40), ("G", 30), ("M", 20), ("K", 10)] where needed >= 1 << shift {
            let whole = (needed >> shift) + (needed & ((1 << shift) - 1) == 0 ? 0 : 1)
            return "\(whole)\(suffix)"
        }
        return "\(needed)"
    }
}

/// A file asked for more than a resource limit allows. Readers wrap it in their own error type,
/// which names the file and where in it.
public struct LimitExceeded: Error, Sendable, Equatable, CustomStringConvertible {
    /// The limit's name (`ResourceLimits.Limit.name`).
    public let name: String
    /// The limit's value in force.
    public let value: Int
    public let unit: ResourceLimits.Unit
    /// What the file asked for, as a noun phrase ("a string of 3000000000 bytes").
    public let what: String
    /// The value the limit would need, when known (it suggests the override).
    public let needed: Int?

    /// - Parameter needed: what the limit would have to be for this to pass, when known.
    public init(_ keyPath: KeyPath<ResourceLimits, Int>, of limits: ResourceLimits, _ what: String, needed: Int? = nil) {
        let limit = ResourceLimits.all.first { $0.keyPath == keyPath }!
        name = limit.name
        value = limits[keyPath: keyPath]
        unit = limit.unit
        self.what = what
        self.needed = needed
    }

    public var description: String {
        let shown = ResourceLimits.limitText(value, unit: unit)
        let suggestion = needed.map { ResourceLimits.overrideText($0, unit: unit) } ?? "<n>"
        return "\(what) exceeds limit \(name) (\(shown); raise with \(ResourceLimits.environmentVariable)=\(name)=\(suggestion))"
    }
}

/// A malformed `ZOO_LIMITS` value (or text given to `ResourceLimits.parse`).
public struct ResourceLimitsError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    init(_ message: String) { self.message = message }
    public var description: String { "\(ResourceLimits.environmentVariable): \(message)" }
}

extension ResourceLimits {
    /// Refuses a rank above `maxTensorRank`.
    public func checkRank(_ rank: Int, _ what: String = "a tensor") throws(LimitExceeded) {
        guard rank <= maxTensorRank else {
            throw LimitExceeded(\.maxTensorRank, of: self, "\(what) of rank \(rank)", needed: rank)
        }
    }

    /// Refuses to materialize a view whose dense size exceeds both its storage's bytes and
    /// `maxTensorBytes`: call it before `contiguous()`, `withContiguousBytes`, `float32()` or
    /// `doubles()` on a tensor from a file. (`Tensor`'s own validation guarantees the dense byte
    /// count fits in an `Int`.)
    public func checkDenseSize(_ tensor: Tensor) throws(LimitExceeded) {
        let dense = tensor.byteCount
        guard dense <= tensor.storage.byteCount || dense <= maxTensorBytes else {
            throw LimitExceeded(\.maxTensorBytes, of: self,
                                "a view of shape \(tensor.shape) (\(ResourceLimits.bytesText(dense)) when dense) over \(ResourceLimits.bytesText(tensor.storage.byteCount)) of storage",
                                needed: dense)
        }
    }
}

private extension StringProtocol {
    var trimmingSpaces: String {
        var s = Substring(self)
        while let first = s.first, first.isWhitespace { s.removeFirst() }
        while let last = s.last, last.isWhitespace { s.removeLast() }
        return String(s)
    }
}
