import ZooCore

/// What a file is, from its first bytes: JPEG and PNG by PIL's own test (`FF D8 FF`; the 8-byte
/// PNG signature), otherwise a short description of what it looks like, for the error message.
/// Descriptions are fixed phrases: no byte of the file is ever echoed.
enum ImageSignature: Equatable {
    case jpeg
    case png
    /// The file is a proper prefix of this format's signature.
    case truncated(String)
    /// Neither; what it resembles when recognizable.
    case other(String?)

    static let jpegMagic: [UInt8] = [0xFF, 0xD8, 0xFF]
    static let pngMagic: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    init(_ bytes: UnsafeRawBufferPointer) {
        func starts(_ prefix: [UInt8], at offset: Int = 0) -> Bool {
            bytes.count >= offset + prefix.count && zip(bytes[offset...], prefix).allSatisfy { $0 == $1 }
        }
        func ascii(_ text: String, at offset: Int = 0) -> Bool { starts(Array(text.utf8), at: offset) }
        if starts(Self.jpegMagic) { self = .jpeg; return }
        if starts(Self.pngMagic) { self = .png; return }
        if bytes.isEmpty { self = .other("the file is empty"); return }
        for (magic, format) in [(Self.jpegMagic, "JPEG"), (Self.pngMagic, "PNG")]
        where bytes.count < magic.count && zip(bytes, magic).allSatisfy({ $0 == $1 }) {
            self = .truncated(format)
            return
        }
        let looks: String? =
            ascii("GIF87a") || ascii("GIF89a") ? "a GIF image"
            : ascii("RIFF") && ascii("WEBP", at: 8) ? "a WebP image"
            : ascii("BM") && starts([0, 0, 0, 0], at: 6) ? "a BMP image"
            : ascii("II*\0") || ascii("MM\0*") ? "a TIFF image"
            : ascii("ftyp", at: 4) && (ascii("avif", at: 8) || ascii("avis", at: 8)) ? "an AVIF image"
            : ascii("ftyp", at: 4) && (ascii("heic", at: 8) || ascii("heix", at: 8) || ascii("mif1", at: 8)) ? "a HEIF image"
            : starts([0x00, 0x00, 0x01, 0x00]) ? "an ICO image"
            : starts([0x00, 0x00, 0x00, 0x0C]) && ascii("jP  ", at: 4) ? "a JPEG 2000 image"
            : ascii("%PDF") ? "a PDF document"
            : starts([0x93] + Array("NUMPY".utf8)) ? "a NumPy .npy array"
            : ascii("PK\u{03}\u{04}") || ascii("PK\u{05}\u{06}") ? "a zip archive (.npz, a PyTorch checkpoint)"
            : starts([0x1F, 0x8B]) ? "gzip-compressed data"
            : starts([0x80]) && bytes.count > 1 && (2...5).contains(bytes[1]) ? "a Python pickle"
            : Self.looksLikeText(bytes) ? "text" : nil
        self = .other(looks.map { "looks like \($0)" })
    }

    /// Whether the first 512 bytes are printable UTF-8 (tabs and line breaks allowed).
    static func looksLikeText(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var head = Array(bytes.prefix(512))
        // A multi-byte character cut at the 512th byte is still text.
        while bytes.count > 512, let last = head.last, last & 0xC0 == 0x80 || last >= 0xC0 { head.removeLast() }
        guard let text = String(validating: head, as: UTF8.self) else { return false }
        return text.unicodeScalars.allSatisfy { $0 == "\n" || $0 == "\r" || $0 == "\t" || !$0.isEscapedForTerminal }
    }
}

/// True when `head` (a file's first bytes; 8 suffice) starts as a JPEG or PNG does — what
/// `decodeImage` decodes.
public func startsAsJPEGOrPNG(_ head: [UInt8]) -> Bool {
    head.starts(with: ImageSignature.jpegMagic) || head.starts(with: ImageSignature.pngMagic)
}
