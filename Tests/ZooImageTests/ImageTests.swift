import Testing
import ZooImage

@Test func filledImageHasEverySample() {
    let image = Image(width: 3, height: 2, channels: 3, filledWith: 7)
    #expect(image.pixels.count == 18 && image.pixels.allSatisfy { $0 == 7 })
}
