import CZlib
import Foundation
import Testing
import TorchFormat
import ZooCore

/// `zoo parity --layers --plot`: the picture of a failing comparison, as PNG and as SVG.
@Suite struct PlotCLITests {
    private let directory: String
    private let model = CLITests.fixtures.appendingPathComponent("alexnet_small.pth").path
    private let input = CLITests.fixtures.deletingLastPathComponent().appendingPathComponent("parity/alexnet_small_input.npy").path

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-plot-cli-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    /// The reduced AlexNet with one weight of features.3 changed: layers from features.3 on fail.
    private func changedModel() throws -> String {
        var entries: [(name: String, tensor: TorchTensor)] = []
        for entry in try Checkpoint.load(path: model).stateDict().entries {
            var tensor = entry.tensor.tensor.contiguous()
            if entry.name == "features.3.weight" {
                var values = tensor.floats()
                values[17] += 0.25
                tensor = Tensor(floats: values, shape: tensor.shape)
            }
            let storage = TorchStorage(key: entry.name, dtype: tensor.dtype, location: "cpu", storage: tensor.storage)
            entries.append((entry.name, TorchTensor(tensor: tensor, source: storage)))
        }
        let path = directory + "/changed.pth"
        try Checkpoint.save(StateDict(entries: entries), to: path)
        return path
    }

    @Test func parityLayersDrawsTheComparisonAsPNGAndSVG() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let changed = try changedModel()
        let pngPath = directory + "/layers.png", svgPath = directory + "/layers.SVG"
        let result = try CLITests.run(["parity", model, changed, "--layers", "--input", input, "--plot", pngPath])
        // The comparison fails, and the picture is written all the same.
        #expect(result.status == 1 && result.stderr.contains("first diverging node is 'features.3'"), "\(result.stderr)")
        let png = try [UInt8](Data(contentsOf: URL(fileURLWithPath: pngPath)))
        let (width, height, pixels) = try decodeRGB(png)
        #expect(result.stdout.contains("plot:      \(pngPath) (\(width)×\(height) PNG)"), "\(result.stdout)")
        #expect(width >= 640 && height >= 360)
        // Not blank: passing (green) and failing (red) bars, and more.
        let colours = Set(Swift.stride(from: 0, to: pixels.count, by: 3).map { pixels[$0] << 16 | pixels[$0 + 1] << 8 | pixels[$0 + 2] })
        #expect(colours.count >= 6 && colours.contains(0x2CA02C) && colours.contains(0xD62728), "\(colours.count) colours")

        let svgResult = try CLITests.run(["parity", model, changed, "--layers", "--input", input, "--plot", svgPath, "--quiet"])
        #expect(svgResult.status == 1 && svgResult.stdout.isEmpty)
        let svg = try String(contentsOfFile: svgPath, encoding: .utf8)
        #expect(svg.contains("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\""))
        #expect(svg.hasSuffix("</svg>\n") && svg.components(separatedBy: "<text").count == svg.components(separatedBy: "</text>").count)
        #expect(svg.contains("fill=\"#2ca02c\"") && svg.contains("fill=\"#d62728\""))
        #expect(svg.contains("first divergent: #4 features.3</text>"), "features.3 is the 4th node")
        // Only what was asked for is in the folder: no temporary files.
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).sorted() == ["changed.pth", "layers.SVG", "layers.png"])
    }

    @Test func plotMistakesAreRefusedBeforeAnythingIsWritten() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let withoutLayers = try CLITests.run(["parity", model, model, "--plot", directory + "/p.png"])
        #expect(withoutLayers.status == 64 && withoutLayers.stderr.contains("--plot draws the per-layer comparison: it needs --layers"))
        let jpeg = try CLITests.run(["parity", model, model, "--layers", "--plot", directory + "/p.jpg"])
        #expect(jpeg.status == 64 && jpeg.stderr.contains("must end in .png or .svg"))
        // The input itself, through another name: refused, and left as it was.
        let link = directory + "/model.png"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: model)
        let before = try Data(contentsOf: URL(fileURLWithPath: model))
        let overwrite = try CLITests.run(["parity", model, model, "--layers", "--plot", link])
        #expect(overwrite.status == 1 && overwrite.stderr.contains("refusing to overwrite an input"), "\(overwrite.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: model)) == before)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["model.png"])
    }
}

/// An 8-bit RGB PNG's size and pixels: chunks read plainly, IDAT inflated by zlib, rows unfiltered.
private func decodeRGB(_ png: [UInt8]) throws -> (width: Int, height: Int, pixels: [Int]) {
    func int(_ at: Int) -> Int { png[at..<(at + 4)].reduce(0) { $0 << 8 | Int($1) } }
    try #require(Array(png.prefix(8)) == [137, 80, 78, 71, 13, 10, 26, 10] && String(decoding: png[12..<16], as: UTF8.self) == "IHDR")
    let width = int(16), height = int(20)
    try #require(png[24] == 8 && png[25] == 2, "8-bit RGB")
    var stream: [UInt8] = []
    var offset = 8
    while offset + 12 <= png.count {
        let length = int(offset)
        if String(decoding: png[(offset + 4)..<(offset + 8)], as: UTF8.self) == "IDAT" { stream += png[(offset + 8)..<(offset + 8 + length)] }
        offset += 12 + length
    }
    let stride = width * 3
    var raw = [UInt8](repeating: 0, count: (stride + 1) * height)
    var size = uLong(raw.count)
    try #require(uncompress(&raw, &size, stream, uLong(stream.count)) == Z_OK && Int(size) == raw.count)
    var pixels = [Int](repeating: 0, count: stride * height)
    for y in 0..<height {
        for i in 0..<stride {
            let a = i >= 3 ? pixels[y * stride + i - 3] : 0, b = y > 0 ? pixels[(y - 1) * stride + i] : 0
            let c = i >= 3 && y > 0 ? pixels[(y - 1) * stride + i - 3] : 0
            let p = a + b - c
            let paeth = abs(p - a) <= abs(p - b) && abs(p - a) <= abs(p - c) ? a : abs(p - b) <= abs(p - c) ? b : c
            let predicted = [0, a, b, (a + b) / 2, paeth][Int(raw[y * (stride + 1)])]
            pixels[y * stride + i] = (Int(raw[y * (stride + 1) + 1 + i]) + predicted) & 0xFF
        }
    }
    return (width, height, pixels)
}
