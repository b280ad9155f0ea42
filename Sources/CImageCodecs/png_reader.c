/* PNG decoding through libpng 1.6, with its errors caught (see image_codecs.h). */
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>

#include "image_codecs.h"

struct zoo_png {
    png_structp png;
    png_infop info;
    const uint8_t *bytes;
    size_t length, offset;
    /* The buffer of the call in progress, where errors are written. */
    char *message;
};

static void fail(png_structp png, png_const_charp text) {
    zoo_png *p = (zoo_png *)png_get_error_ptr(png);
    snprintf(p->message, ZOO_CODEC_MESSAGE_SIZE, "%s (at byte %zu)", text, p->offset);
    png_longjmp(png, 1);
}

/* Warnings are dropped: whatever libpng only warns about, it has handled (and "benign" errors are errors). */
static void warn(png_structp png, png_const_charp text) {
    (void)png;
    (void)text;
}

static void read_bytes(png_structp png, png_bytep out, size_t count) {
    zoo_png *p = (zoo_png *)png_get_io_ptr(png);
    if (count > p->length - p->offset) {
        snprintf(p->message, ZOO_CODEC_MESSAGE_SIZE, "image file is truncated (the PNG data ends at byte %zu)",
                 p->length);
        png_longjmp(png, 1);
    }
    memcpy(out, p->bytes + p->offset, count);
    p->offset += count;
}

void zoo_png_close(zoo_png *p) {
    if (p == NULL) return;
    png_destroy_read_struct(&p->png, p->info != NULL ? &p->info : NULL, NULL);
    free(p);
}

zoo_png *zoo_png_open(const uint8_t *bytes, size_t length, zoo_png_header *header, char *message) {
    memset(header, 0, sizeof *header);
    zoo_png *p = calloc(1, sizeof *p);
    if (p != NULL) p->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, p, fail, warn);
    if (p != NULL && p->png != NULL) p->info = png_create_info_struct(p->png);
    if (p == NULL || p->png == NULL || p->info == NULL) {
        snprintf(message, ZOO_CODEC_MESSAGE_SIZE, "out of memory");
        zoo_png_close(p);
        return NULL;
    }
    p->bytes = bytes;
    p->length = length;
    p->message = message;
    if (setjmp(png_jmpbuf(p->png))) {
        zoo_png_close(p);
        return NULL;
    }
    png_set_read_fn(p->png, p, read_bytes);
    /* The caller applies PIL's limits; libpng's own default (a million pixels a side) is lower. */
    png_set_user_limits(p->png, 0x7fffffff, 0x7fffffff);
    png_set_chunk_cache_max(p->png, 16);
    png_set_chunk_malloc_max(p->png, 16u << 20);
    png_set_crc_action(p->png, PNG_CRC_ERROR_QUIT, PNG_CRC_ERROR_QUIT);
    /* Damaged or surplus image data (a bad zlib check value after the last row, data past the image,
     * IDAT chunks after it) is an error; libpng only warns by default. */
    png_set_benign_errors(p->png, 0);
    /* Out-of-range palette indices are not an error: PIL shows them black, and so does libpng's
     * palette expansion (its palette has 256 entries, zeroed past PLTE). */
    png_set_check_for_invalid_index(p->png, 0);
    /* Skip every ancillary chunk libpng knows (and tRNS: convert("RGB") ignores transparency), so that
     * none can refuse a file PIL reads; keep eXIf raw (as an unknown chunk) for the orientation. */
    static const png_byte trns[] = "tRNS", exif[] = "eXIf";
    png_set_keep_unknown_chunks(p->png, PNG_HANDLE_CHUNK_NEVER, NULL, -1);
    png_set_keep_unknown_chunks(p->png, PNG_HANDLE_CHUNK_NEVER, trns, 1);
    png_set_keep_unknown_chunks(p->png, PNG_HANDLE_CHUNK_ALWAYS, exif, 1);
    png_read_info(p->png, p->info);
    png_uint_32 width, height;
    int depth, type, interlace;
    png_get_IHDR(p->png, p->info, &width, &height, &depth, &type, &interlace, NULL, NULL);
    header->width = width;
    header->height = height;
    header->bit_depth = depth;
    header->color_type = type;
    header->interlaced = interlace != PNG_INTERLACE_NONE;
    return p;
}

int zoo_png_read(zoo_png *p, uint8_t *out, int gray16, char *message) {
    p->message = message;
    if (setjmp(png_jmpbuf(p->png))) return -1;
    int depth = png_get_bit_depth(p->png, p->info), type = png_get_color_type(p->png, p->info);
    if (gray16 && (depth != 16 || type != PNG_COLOR_TYPE_GRAY)) {
        snprintf(message, ZOO_CODEC_MESSAGE_SIZE, "16-bit gray output asked of another kind of PNG");
        return -1;
    }
    if (!gray16) {
        if (depth == 16) png_set_strip_16(p->png);
        if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(p->png);
        if ((type & PNG_COLOR_MASK_COLOR) == 0) {
            if (depth < 8) png_set_expand_gray_1_2_4_to_8(p->png);
            png_set_gray_to_rgb(p->png);
        }
        if ((type & PNG_COLOR_MASK_ALPHA) != 0) png_set_strip_alpha(p->png);
    }
    int passes = png_set_interlace_handling(p->png);
    png_read_update_info(p->png, p->info);
    png_uint_32 width = png_get_image_width(p->png, p->info), height = png_get_image_height(p->png, p->info);
    size_t stride = (size_t)width * (gray16 ? 2 : 3);
    if (png_get_rowbytes(p->png, p->info) != stride || png_get_bit_depth(p->png, p->info) != (gray16 ? 16 : 8)) {
        snprintf(message, ZOO_CODEC_MESSAGE_SIZE, "libpng cannot convert this file to %s", gray16 ? "16-bit gray" : "RGB");
        return -1;
    }
    /* Adam7: every pass visits every row; libpng writes the pass's pixels into the full-size rows. */
    for (int pass = 0; pass < passes; pass++)
        for (png_uint_32 y = 0; y < height; y++) png_read_row(p->png, out + (size_t)y * stride, NULL);
    return 0;
}

int zoo_png_finish(zoo_png *p, const uint8_t **exif, size_t *exif_length, char *message) {
    p->message = message;
    *exif = NULL;
    *exif_length = 0;
    if (setjmp(png_jmpbuf(p->png))) return -1;
    png_read_end(p->png, p->info);
    png_unknown_chunkp chunks;
    int count = png_get_unknown_chunks(p->png, p->info, &chunks);
    for (int i = 0; i < count; i++)
        if (memcmp(chunks[i].name, "eXIf", 4) == 0) {  /* the last one, as PIL keeps */
            *exif = chunks[i].data;
            *exif_length = chunks[i].size;
        }
    return 0;
}
