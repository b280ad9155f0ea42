import Foundation
import Testing
import TorchFormat
import ZooCore
import ZooImage

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
        let picture = try decodeImage(path: pngPath).rgb   // through libpng
        let (width, height, pixels) = (picture.width, picture.height, picture.pixels.map(Int.init))
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
