#ifndef ZOO_IMAGE_CODECS_H
#define ZOO_IMAGE_CODECS_H

/// JPEG (libjpeg-turbo) and PNG (libpng 1.6) decoding from memory, for ZooImage.
///
/// libjpeg's default error handler calls exit() and libpng's longjmps; Swift can do neither, so
/// every function here that calls into a library first sets a setjmp point, installs handlers that
/// jump back to it with the library's message, and returns a status. Each returns 0 on success or
/// -1 with `message` (ZOO_CODEC_MESSAGE_SIZE bytes, NUL-terminated, one line) saying what is wrong
/// and where (a byte offset). The libraries never print: warnings are counted or, where PIL treats
/// the condition as an error, turned into errors. A handle is used by one thread at a time; close
/// it after any failure.
#include <stddef.h>
#include <stdint.h>

#define ZOO_CODEC_MESSAGE_SIZE 256

/* ---- JPEG ---- */

typedef struct zoo_jpeg zoo_jpeg;

typedef struct {
    uint32_t width, height;
    /// Components in the frame (PIL reads 1, 3 and 4).
    int components;
    /// The payloads of the APP1 "Exif\0\0" segments after those 6 bytes, concatenated in file order
    /// (as PIL joins them); NULL when there is none. Valid until `zoo_jpeg_close`.
    const uint8_t *exif;
    size_t exif_length;
} zoo_jpeg_header;

/// Reads the markers up to the first scan. `bytes` must outlive the handle. NULL on failure.
zoo_jpeg *zoo_jpeg_open(const uint8_t *bytes, size_t length, zoo_jpeg_header *header, char *message);

/// Starts decompression with 3 samples per pixel (RGB; a grayscale file's gray repeated) or, when
/// `cmyk`, 4 (the file's CMYK as stored, YCCK converted to CMYK; nothing inverted). A progressive
/// file is read whole here. A premature end of the data is an error here and while reading rows, as in PIL.
int zoo_jpeg_start(zoo_jpeg *jpeg, int cmyk, char *message);

/// Decodes the next `rows` rows into `out` (rows * width * samples bytes, no padding).
int zoo_jpeg_read_rows(zoo_jpeg *jpeg, uint8_t *out, uint32_t rows, char *message);

/// Reads the rest of the file to the end-of-image marker; the data may end before it (PIL accepts that).
int zoo_jpeg_finish(zoo_jpeg *jpeg, char *message);

void zoo_jpeg_close(zoo_jpeg *jpeg);

/* ---- PNG ---- */

typedef struct zoo_png zoo_png;

typedef struct {
    uint32_t width, height;
    /// IHDR's bit depth (1, 2, 4, 8, 16), colour type (0, 2, 3, 4, 6) and interlace method (0, 1).
    int bit_depth, color_type, interlaced;
} zoo_png_header;

/// Checks the signature and reads the chunks up to the first IDAT. Ancillary chunks are skipped
/// except eXIf (kept), every CRC is checked, a chunk other than IDAT over 16 MiB is refused (libpng's
/// chunk size limit, which bounds the eXIf copy), and libpng's "benign" errors are errors. `bytes`
/// must outlive the handle. NULL on failure.
zoo_png *zoo_png_open(const uint8_t *bytes, size_t length, zoo_png_header *header, char *message);

/// Decodes the whole image into `out`, rows top to bottom, no padding, Adam7 passes combined:
/// with `gray16` (a 16-bit grayscale file only), 2 bytes per pixel, big-endian; otherwise 3 (RGB 8-bit:
/// 16-bit samples reduced to their high byte, 1/2/4-bit gray scaled by bit replication, gray
/// repeated, the palette looked up with entries past PLTE black, alpha and tRNS dropped).
int zoo_png_read(zoo_png *png, uint8_t *out, int gray16, char *message);

/// Reads the chunks after the image data up to IEND, and returns the last eXIf chunk's contents
/// (before or after the image data; NULL when none, valid until `zoo_png_close`).
int zoo_png_finish(zoo_png *png, const uint8_t **exif, size_t *exif_length, char *message);

void zoo_png_close(zoo_png *png);

#endif
