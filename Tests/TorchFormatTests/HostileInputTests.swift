import Foundation
import XCTest
@testable import TorchFormat
import ZooCore

/// Hostile checkpoints built by hand (see HandMade.swift): each must be read as torch reads it, or
/// refused with an error saying why — never a crash, a trap or unbounded memory.
final class HostileInputTests: XCTestCase {
    private typealias P = Pickle

    /// A zip checkpoint holding `pickle`, removed after the test.
    private func zip(_ pickle: [UInt8], _ records: [(String, [UInt8])] = [], alignment: Int = 64) throws -> String {
        let path = try writeZipCheckpoint(pickle, records: records, alignment: alignment)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    private func file(_ bytes: [UInt8]) throws -> String {
        let path = FileManager.scratchPath("file.pth")
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    private func fixtureBytes(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: Fixture.torch(name))))
    }

    private let fourFloats = P.floats([1, 2, 3, 4])
    private let tooDeep = CheckpointError.Reason.limit(LimitExceeded(\.maxPickleDepth, of: .standard, "values nested more than 1000 levels deep"))

    // MARK: Nesting (1a)

    func testDeepNestingIsRefusedAsItIsBuilt() throws {
        let tuples = P.proto + P.none + [UInt8](repeating: 0x85, count: 30_000) + P.stop
        let failure = loadError(try zip(tuples))
        XCTAssertEqual(failure?.reason, tooDeep)
        XCTAssertEqual(failure?.record, "archive/data.pkl")
        XCTAssertEqual(failure?.offset, 3 + 1000, "the TUPLE1 that makes level 1001")

        let n = 30_000
        let lists = P.proto + [UInt8](repeating: 0x5D, count: n) + [UInt8](repeating: 0x61, count: n - 1) + P.stop
        XCTAssertEqual(loadError(try zip(lists))?.reason, tooDeep)
        // Refused before the bad opcode at the end is reached; the partial graph is freed without recursing.
        let broken = P.proto + P.none + [UInt8](repeating: 0x85, count: 50_000) + [0xFF]
        XCTAssertEqual(loadError(try zip(broken))?.reason, tooDeep)
    }

    /// 1000 levels load, and the pickler (which recurses) writes them back.
    func testThousandLevelsRoundTrip() throws {
        let tuples = P.proto + P.none + [UInt8](repeating: 0x85, count: 1000) + P.stop
        let checkpoint = try Checkpoint.load(path: try zip(tuples))
        let output = FileManager.scratchPath("deep.pth")
        defer { try? FileManager.default.removeItem(atPath: output) }
        try Checkpoint.save(checkpoint.root, to: output)
        var value = try Checkpoint.load(path: output).root
        var depth = 0
        while case let .tuple(t) = value {
            depth += 1
            value = t.items[0]
        }
        XCTAssertEqual(depth, 1000)

        // Lists and dicts take more of the pickler's stack per level than tuples.
        var mixed = PyValue.none
        for i in 0..<1000 {
            if i % 2 == 0 {
                mixed = .list(PyList([mixed]))
            } else {
                let dict = PyDict(ordered: true)
                dict.set(.string(PyString("k")), mixed)
                mixed = .dict(dict)
            }
        }
        try Checkpoint.save(mixed, to: output)
        XCTAssertEqual(try Checkpoint.load(path: output).format, .zip)
    }

    /// Appending a chain to the bottom of an earlier one (through the memo) nests deeper than any
    /// value was when built: the walker, which does not recurse, refuses the finished graph.
    func testNestingGrownAfterTheFactIsRefusedByTheWalker() throws {
        func longBinPut(_ i: Int) -> [UInt8] { [0x72] + withUnsafeBytes(of: UInt32(i).littleEndian, Array.init) }
        func longBinGet(_ i: Int) -> [UInt8] { [0x6A] + withUnsafeBytes(of: UInt32(i).littleEndian, Array.init) }
        // 999 nested lists with the innermost memoized as `i`; the outermost stays on the stack.
        func chain(_ i: Int) -> [UInt8] {
            [UInt8](repeating: 0x5D, count: 999) + longBinPut(i) + [UInt8](repeating: 0x61, count: 998)
        }
        var pickle = P.proto + chain(0)
        for i in 1...100 { pickle += longBinGet(i - 1) + chain(i) + [0x61, 0x30] }  // APPEND, POP
        pickle += P.stop
        let failure = loadError(try zip(pickle))
        XCTAssertEqual(failure?.reason, tooDeep)
        XCTAssertNil(failure?.record, "refused by the walker, not while unpickling")

        // The walker refuses the same for a graph built in code, and so does the writer.
        var value = PyValue.none
        for _ in 0..<5000 { value = .list(PyList([value])) }
        XCTAssertThrowsError(try Checkpoint.tensors(in: value)) { XCTAssertEqual(($0 as? CheckpointError)?.reason, self.tooDeep) }
        let output = FileManager.scratchPath("deep.pth")
        XCTAssertThrowsError(try Checkpoint.save(value, to: output)) { XCTAssertEqual(($0 as? CheckpointError)?.reason, self.tooDeep) }
        XCTAssertFalse(FileManager.default.fileExists(atPath: output))
    }

    /// Freeing a deep chain of any container does not recurse (30,000 levels overflowed the stack).
    func testDroppingDeepChainsDoesNotRecurse() {
        var value = PyValue.none
        for _ in 0..<200_000 { value = .tuple(PyTuple([value])) }
        value = .none
        for _ in 0..<200_000 { value = .list(PyList([.none, value])) }
        value = .none
        for i in 0..<100_000 {
            let dict = PyDict(ordered: i % 2 == 0)
            dict.set(.string(PyString("k")), value)
            value = .dict(dict)
        }
        value = .none
        for _ in 0..<100_000 { value = .object(PyObject(callable: TorchGlobals.set, args: PyTuple([.list(PyList([value]))]))) }
        value = .none

        // Parts still referenced elsewhere survive their container.
        var middle: PyValue = .none
        for i in 0..<100_000 {
            value = .list(PyList([value]))
            if i == 50_000 { middle = value }
        }
        value = .none
        var depth = 0
        while case let .list(l) = middle, let first = l.items.first {
            depth += 1
            middle = first
        }
        XCTAssertEqual(depth, 50_001)
    }

    // MARK: Value count and pickle size (1e)

    func testValueCountAndPickleSizeAreBounded() throws {
        var options = Checkpoint.Options()
        options.limits.maxPickleValues = 1000
        let values = "more than 1000 pickle values (each value built, recalled from the memo or duplicated counts) exceeds limit maxPickleValues (1000; raise with ZOO_LIMITS=maxPickleValues=<n>)"
        let flat = P.proto + [0x5D] + Array([[UInt8]](repeating: [0x4E, 0x61], count: 2000).joined()) + P.stop
        let failure = loadError(try zip(flat), options: options)
        XCTAssertEqual(failure?.reason.description, values)
        XCTAssertEqual(failure?.record, "archive/data.pkl")
        // Memo references count too: one list appended to itself would otherwise be free.
        let references = P.proto + [0x5D, 0x71, 0x00] + Array([[UInt8]](repeating: [0x68, 0x00, 0x61], count: 2000).joined()) + P.stop
        XCTAssertEqual(loadError(try zip(references), options: options)?.reason.description, values)

        var small = Checkpoint.Options()
        small.limits.maxPickleBytes = 100
        let pickle = P.dict([("w", P.tensor("0"))])
        let tooBig = loadError(try zip(pickle, [("0", fourFloats)]), options: small)
        XCTAssertEqual(tooBig?.reason.description,
                       "a pickle of \(pickle.count) bytes exceeds limit maxPickleBytes (100 bytes; raise with ZOO_LIMITS=maxPickleBytes=\(pickle.count))")
        XCTAssertEqual(tooBig?.record, "archive/data.pkl")
    }

    func testExpansionLimitBlamesNoMemoBombForWhatMayBeAFlatList() {
        guard case let .limit(exceeded)? = loadError(Fixture.torch("bad/memo_bomb.pth"))?.reason else {
            return XCTFail("expected a limit error")
        }
        XCTAssertEqual(exceeded.description, "an object graph of more than 5000000 values (counting each reference to a shared value) exceeds limit maxExpandedValues (5000000; raise with ZOO_LIMITS=maxExpandedValues=<n>)")
    }

    // MARK: Cycles (fuzzing found them leaking)

    /// A list appended to itself is a cycle reference counting never frees. Found by the checkpoint
    /// fuzz target as a leak; refused now whether or not the result reaches it, and freed.
    func testCyclesAreRefusedAndFreedReachableOrNot() throws {
        let selfList: [UInt8] = [0x5D, 0x71, 0x00, 0x68, 0x00, 0x61]  // EMPTY_LIST BINPUT 0 BINGET 0 APPEND
        let reachable = P.proto + selfList + P.stop
        let unreachable = P.proto + selfList + [0x30] + P.none + P.stop  // ... POP, then the result is None
        for pickle in [reachable, unreachable] {
            let failure = loadError(try zip(pickle))
            XCTAssertEqual(failure?.reason, .pickle("object graph contains a cycle"))
            XCTAssertEqual(failure?.offset, pickle.count - 1, "blamed at STOP")
        }
        // A cycle built before another error is freed too: the object the unpickler built is gone
        // once the error is thrown (a weak reference to it, taken through a persistent-id hook).
        weak var leaked: PyList?
        let cycleThenFail = P.proto + selfList + [0x51] + [0xFF]  // ... BINPERSID (the list), then a bad opcode
        let failure = unpicklingError(cycleThenFail) { id in if case let .list(list) = id { leaked = list } }
        XCTAssertEqual(failure?.reason, .pickle("unknown opcode 0xff"))
        XCTAssertNotNil(failure)
        XCTAssertNil(leaked, "the self-referencing list was freed")

        // SETITEMS that sets d['w'] = d and then refuses its next key (d, unhashable) leaves a cycle
        // built by an opcode that failed half-way (found by the pickle fuzz target as a leak).
        weak var dict: PyDict?
        let halfDone = P.proto + [0x7D, 0x71, 0x00, 0x68, 0x00, 0x51, 0x30]  // EMPTY_DICT BINPUT 0, BINGET 0 BINPERSID POP
            + P.mark + P.string("w") + [0x68, 0x00, 0x68, 0x00] + P.none + [0x75] + P.stop  // MARK 'w' d d None SETITEMS
        let refused = unpicklingError(halfDone) { id in if case let .dict(d) = id { dict = d } }
        XCTAssertEqual(refused?.reason, .pickle("unhashable dict as a dict key"))
        XCTAssertNil(dict, "the dict holding itself was freed")
    }

    /// The error unpickling `pickle` throws (nil if none); each persistent id (BINPERSID) is shown
    /// to `persistentID` and loads as None.
    private func unpicklingError(_ pickle: [UInt8], persistentID: @escaping (PyValue) -> Void) -> CheckpointError? {
        pickle.withUnsafeBytes { bytes -> CheckpointError? in
            var unpickler = Unpickler(bytes: bytes, record: "test") { id throws(CheckpointError) in
                persistentID(id)
                return .none
            }
            do throws(CheckpointError) { _ = try unpickler.load(); return nil } catch { return error }
        }
    }

    /// A memo bomb under the value limit that holds no tensor costs no walk: fuzzing found one that
    /// took seconds building 4 M path strings. Lists of two references to the previous list, 21 deep.
    func testTensorlessMemoBombIsNotWalked() throws {
        var pickle = P.proto + [0x5D, 0x71, 0x00]
        for level in 1...21 { pickle += P.mark + [0x68, UInt8(level - 1), 0x68, UInt8(level - 1), 0x6C, 0x71, UInt8(level)] }
        pickle += P.stop
        let start = ContinuousClock.now
        let checkpoint = try Checkpoint.load(path: try zip(pickle))
        XCTAssertTrue(checkpoint.tensors.isEmpty)
        XCTAssertLessThan(ContinuousClock.now - start, .milliseconds(500), "one pass over 22 lists, not 4 M paths")
    }

    // MARK: Tensor geometry (1b, 1c)

    func testDenseSizeOfAnExpandedViewMustFitInAnInt() throws {
        let huge = P.dict([("w", P.tensor("0", size: [1 << 31, 1 << 31], stride: [0, 0]))])
        let failure = loadError(try zip(huge, [("0", fourFloats)]))
        XCTAssertEqual(failure?.reason, .tensor(.overflow))
        XCTAssertEqual(failure?.path, "w")

        // 2^61 one-byte elements each fit; four of them overflow the totals, which saturate.
        let view = P.tensor("0", size: [1 << 31, 1 << 30], stride: [0, 0], type: "CharStorage")
        let pickle = P.dict((0..<4).map { ("w\($0)", view) })
        let stateDict = try Checkpoint.load(path: try zip(pickle, [("0", [1, 2, 3, 4])])).stateDict()
        XCTAssertEqual(stateDict["w0"]?.tensor.byteCount, 1 << 61)
        XCTAssertEqual(stateDict.parameterCount, .max)
        XCTAssertEqual(stateDict.byteCount, .max)
    }

    /// torch lets a size-1 dimension have any stride; stepping through the tensor must never add it.
    func testSizeOneDimensionsMayHaveAnyStride() throws {
        let pickle = P.dict([("w", P.tensor("0", offset: 1, size: [1, 2], stride: [.max, 2]))])
        let checkpoint = try Checkpoint.load(path: try zip(pickle, [("0", fourFloats)]))
        let tensor = try XCTUnwrap(checkpoint.tensors.first?.tensor.tensor)
        XCTAssertEqual(tensor.floats(), [2, 4])
        XCTAssertEqual(tensor.contiguous().floats(), [2, 4])

        let storage = Storage(copying: P.floats((0..<8).map(Float.init)))
        let odd = try Tensor(dtype: .f32, shape: [2, 1, 2], strides: [4, .max, 1], offset: 1, storage: storage)
        XCTAssertEqual(odd.floats(), [1, 2, 5, 6])
    }

    // MARK: Format detection and containers (2a, 2c)

    /// A zip whose first local header's padding also forms a valid tar header: torch reads a file
    /// that starts with "PK\3\4" as a zip and nothing else.
    func testZipTarPolyglotIsReadAsZip() throws {
        let path = try zip(P.dict([("w", P.tensor("0"))]), [("0", fourFloats)], alignment: 512)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        // The first header's "FB" padding runs from byte 50 to 512: write tar fields into it.
        bytes.replaceSubrange(124..<136, with: Array("00000000000\0".utf8))
        bytes[156] = UInt8(ascii: "0")
        bytes.replaceSubrange(257..<265, with: Array("ustar\u{0}00".utf8))
        let sum = bytes[0..<512].enumerated().reduce(0) { $0 + ((148..<156).contains($1.offset) ? 0x20 : Int($1.element)) }
        let field = String(sum, radix: 8)
        bytes.replaceSubrange(148..<156, with: Array((String(repeating: "0", count: 6 - field.count) + field + "\0 ").utf8))
        let polyglot = try file(bytes)
        XCTAssertTrue(bytes.withUnsafeBytes { TarReader.checksumMatches(UnsafeRawBufferPointer(rebasing: $0[0..<512])) })

        let checkpoint = try Checkpoint.load(path: polyglot)
        XCTAssertEqual(checkpoint.format, .zip)
        XCTAssertEqual(checkpoint.tensors.first?.tensor.tensor.floats(), [1, 2, 3, 4])
    }

    func testTarHeaderChecksumsAreVerified() throws {
        let tar = try fixtureBytes("alexnet_small_tar.pth")
        let header = stride(from: 512, to: tar.count, by: 512).first { tar[$0..<($0 + 8)].elementsEqual("storages".utf8) }!
        var corrupt = tar
        corrupt[header + 136] ^= 0x01  // a digit of the modification time
        let failure = loadError(try file(corrupt))
        XCTAssertEqual(failure?.reason, .tar("header checksum does not match its bytes"))
        XCTAssertEqual(failure?.offset, header)
        XCTAssertEqual("\(failure!.reason)", "malformed tar archive: header checksum does not match its bytes")

        // A first header with a bad checksum is not a tar to torch: then it is not a pickle either.
        var first = tar
        first[136] ^= 0x01
        guard case .notACheckpoint? = loadError(try file(first))?.reason else { return XCTFail("expected notACheckpoint") }
    }

    func testArchiveMustStartAtByteZero() throws {
        let original = try fixtureBytes("alexnet_small.pth")
        let stub = loadError(try file(Array("MZstub".utf8) + original))
        XCTAssertEqual(stub?.reason, .notACheckpoint("no zip, tar or pickle signature; starts with \"MZstubPK\""))
        // Bytes that themselves start with a local header signature: a zip to torch, but not one it can read.
        let prefixed = loadError(try file([0x50, 0x4B, 0x03, 0x04] + [UInt8](repeating: 0, count: 26) + original))
        XCTAssertEqual(prefixed?.reason, .zip("30 bytes precede the archive (torch reads only archives that start at byte 0)"))
    }

    // MARK: Names (2b)

    func testNamesCompareByCodePointsNotCanonicalEquivalence() throws {
        let composed = "caf\u{E9}", decomposed = "cafe\u{301}"
        XCTAssertEqual(composed, decomposed, "Swift's String == is canonical equivalence")
        let pickle = P.dict([(composed, P.tensor("0")), (decomposed, P.tensor("1"))])
        let checkpoint = try Checkpoint.load(path: try zip(pickle, [("0", fourFloats), ("1", P.floats([5, 6, 7, 8]))]))
        XCTAssertEqual(checkpoint.tensors.count, 2)
        guard case let .dict(root) = checkpoint.root else { return XCTFail("not a dict") }
        XCTAssertEqual(root.count, 2)
        guard case let .tensor(second)? = root[decomposed] else { return XCTFail("no tensor under '\(decomposed)'") }
        XCTAssertEqual(second.tensor.floats(), [5, 6, 7, 8])
        let stateDict = try checkpoint.stateDict()
        XCTAssertEqual(stateDict.entries.count, 2)
        XCTAssertEqual(stateDict[composed]?.tensor.floats(), [1, 2, 3, 4])
        XCTAssertEqual(stateDict[decomposed]?.tensor.floats(), [5, 6, 7, 8])
        guard case let .tensor(found)? = checkpoint.lookup(decomposed) else { return XCTFail("lookup") }
        XCTAssertEqual(found.tensor.floats(), [5, 6, 7, 8])

        // Storage keys, and so record names, too.
        let keys = P.dict([("a", P.tensor("\u{E9}")), ("b", P.tensor("e\u{301}"))])
        let storages = try Checkpoint.load(path: try zip(keys, [("\u{E9}", fourFloats), ("e\u{301}", P.floats([5, 6, 7, 8]))]))
        XCTAssertEqual(storages.tensors.map { $0.tensor.tensor.floats() }, [[1, 2, 3, 4], [5, 6, 7, 8]])
    }

    /// Text arguments (GLOBAL, PERSID, ...) are strict UTF-8 like CPython's: invalid bytes are
    /// refused, never turned into U+FFFD, so two different byte strings cannot become one name.
    func testInvalidUTF8InATextArgumentIsRefused() throws {
        for bytes: [UInt8] in [[0x63] + Array("torch\n".utf8) + [0x46, 0x6C, 0xFF, 0x0A],    // GLOBAL 'torch' 'Fl\xFF'
                               [0x50, 0x30, 0xFE, 0x0A]] {                                    // PERSID '0\xFE'
            let failure = loadError(try zip(P.proto + bytes + P.stop))
            XCTAssertEqual(failure?.reason, .pickle("text argument is not valid UTF-8"), "\(bytes)")
            XCTAssertEqual(failure?.offset, 2)
        }
    }

    // MARK: Legacy storages (2d)

    func testLegacyStorageDeclaredWithTwoSizesIsRefused() throws {
        let magic = P.proto + [0x8A, 0x0A] + LegacyCheckpoint.magic + P.stop
        let version = P.proto + [0x4D, 0xE9, 0x03] + P.stop
        let sysInfo = P.proto + [0x7D] + P.stop
        let object = P.dict([("a", P.tensor("0", numel: 4, legacy: true)),
                             ("b", P.tensor("0", size: [2], numel: 2, legacy: true))])
        let keys = P.proto + [0x5D] + P.string("0") + [0x61] + P.stop
        let data = withUnsafeBytes(of: Int64(4).littleEndian, Array.init) + fourFloats
        let failure = loadError(try file(magic + version + sysInfo + object + keys + data))
        XCTAssertEqual(failure?.reason, .storage("storage '0' is declared with 4 and 2 elements"))
    }

    // MARK: BUILD and sets (3)

    func testBuildOnlyAppliesToOrderedDictsAndNumpyDtypes() throws {
        let plain = P.proto + [0x7D, 0x7D, 0x62] + P.stop
        XCTAssertEqual(loadError(try zip(plain))?.reason, .pickle("BUILD on dict (only an OrderedDict or a numpy dtype takes state)"))
        let set = P.proto + P.global("__builtin__", "set") + [0x5D, 0x85, 0x52, 0x7D, 0x62] + P.stop
        XCTAssertEqual(loadError(try zip(set))?.reason, .pickle("BUILD on __builtin__.set (only an OrderedDict or a numpy dtype takes state)"))
        let ordered = P.proto + P.emptyOrderedDict + [0x7D] + P.string("_metadata") + [0x7D, 0x73, 0x62] + P.stop
        XCTAssertNil(loadError(try zip(ordered)))
    }

    func testUnhashableSetMembersAndDictKeysAreRefused() throws {
        // A set holding itself: EMPTY_SET, MEMOIZE, MARK, BINGET 0, ADDITEMS.
        let itself = [0x80, 0x04, 0x7D] + P.string("a") + [0x8F, 0x94, 0x28, 0x68, 0x00, 0x90, 0x73] + P.stop
        let failure = loadError(try zip(itself))
        XCTAssertEqual(failure?.reason, .pickle("unhashable builtins.set in a set"))
        XCTAssertEqual(failure?.record, "archive/data.pkl")
        let tupleOfList = P.proto + [0x8F, 0x28, 0x5D, 0x85, 0x90] + P.stop
        XCTAssertEqual(loadError(try zip(tupleOfList))?.reason, .pickle("unhashable tuple in a set"))
        let built = P.proto + P.global("__builtin__", "set") + [0x5D, 0x5D, 0x61, 0x85, 0x52] + P.stop
        XCTAssertEqual(loadError(try zip(built))?.reason, .pickle("unhashable list in a set"))
        let frozen = P.proto + [0x28, 0x7D, 0x91] + P.stop
        XCTAssertEqual(loadError(try zip(frozen))?.reason, .pickle("unhashable dict in a frozenset"))
        let key = P.proto + [0x7D, 0x5D, 0x4E, 0x73] + P.stop
        XCTAssertEqual(loadError(try zip(key))?.reason, .pickle("unhashable list as a dict key"))

        // Hashable members are fine: strings, tuples of ints, frozensets.
        let fine = P.proto + [0x8F, 0x28] + P.string("x") + P.int(1) + P.int(2) + [0x86, 0x28, 0x91, 0x90] + P.stop
        XCTAssertNil(loadError(try zip(fine)))
    }

    // MARK: Tensor state (4)

    func testTensorAttributesAreRefusedNotDropped() throws {
        func parameter(state: [UInt8]) -> [UInt8] {
            P.global("torch._utils", "_rebuild_parameter_with_state") + P.mark + P.tensor("0") + [0x89]
                + P.emptyOrderedDict + state + [0x74, 0x52]
        }
        let attribute = [0x7D] + P.string("note") + P.int(1) + [0x73]
        let withState = loadError(try zip(P.dict([("w", parameter(state: attribute))]), [("0", fourFloats)]))
        XCTAssertEqual(withState?.reason, .unsupported("_rebuild_parameter_with_state with Python attributes (a non-empty state): zoo would drop them when writing"))
        XCTAssertEqual(withState?.path, "w")
        let empty = try Checkpoint.load(path: try zip(P.dict([("w", parameter(state: [0x7D]))]), [("0", fourFloats)]))
        XCTAssertEqual(empty.tensors.first?.tensor.isParameter, true)

        func subclass(state: [UInt8]) -> [UInt8] {
            P.global("torch._tensor", "_rebuild_from_type_v2") + P.mark + P.global("torch._utils", "_rebuild_tensor_v2")
                + P.global("torch", "Tensor") + P.mark + P.tensorArgs("0") + [0x74] + state + [0x74, 0x52]
        }
        let typed = loadError(try zip(P.dict([("w", subclass(state: attribute))]), [("0", fourFloats)]))
        XCTAssertEqual(typed?.reason, .unsupported("_rebuild_from_type_v2 with Python attributes (a non-empty state): zoo would drop them when writing"))
        XCTAssertNil(loadError(try zip(P.dict([("w", subclass(state: P.none))]), [("0", fourFloats)])))
    }
}
