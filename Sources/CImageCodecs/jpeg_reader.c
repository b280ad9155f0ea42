/* JPEG decoding through libjpeg-turbo's jpeglib.h, with its errors caught (see image_codecs.h). */
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

#include "image_codecs.h"

struct zoo_jpeg {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_error_mgr error;
    /* Where the library's errors land: set by each entry point before it calls the library. */
    jmp_buf jump;
    char *message;
    const uint8_t *bytes;
    size_t length;
    uint8_t *exif;
    /* Set once every row is decoded: from then on, running out of data is not an error. */
    int finishing;
};

/* How far libjpeg has read, or the length once its source has run dry (it then reads a fake EOI). */
static size_t position(const zoo_jpeg *jpeg) {
    const struct jpeg_source_mgr *source = jpeg->cinfo.src;
    if (source == NULL) return 0;
    uintptr_t at = (uintptr_t)source->next_input_byte, start = (uintptr_t)jpeg->bytes;
    return at >= start && at - start <= jpeg->length ? (size_t)(at - start) : jpeg->length;
}

static void fail(j_common_ptr cinfo) {
    zoo_jpeg *jpeg = (zoo_jpeg *)cinfo->client_data;
    char text[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, text);
    snprintf(jpeg->message, ZOO_CODEC_MESSAGE_SIZE, "%s (at byte %zu)", text, position(jpeg));
    longjmp(jpeg->jump, 1);
}

/* Warnings (level -1) are counted, except running out of data before the last row: PIL refuses
 * such a file ("image file is truncated") where libjpeg would go on with a fake end-of-image marker
 * and gray pixels. After the last row PIL does not mind (a file cut in its end marker decodes). */
static void emit(j_common_ptr cinfo, int level) {
    if (level >= 0) return;
    zoo_jpeg *jpeg = (zoo_jpeg *)cinfo->client_data;
    if (cinfo->err->msg_code == JWRN_JPEG_EOF && !jpeg->finishing) {
        snprintf(jpeg->message, ZOO_CODEC_MESSAGE_SIZE,
                 "image file is truncated (the JPEG data ends at byte %zu before the image is complete)", jpeg->length);
        longjmp(jpeg->jump, 1);
    }
    cinfo->err->num_warnings++;
}

static void silent(j_common_ptr cinfo) { (void)cinfo; }

void zoo_jpeg_close(zoo_jpeg *jpeg) {
    if (jpeg == NULL) return;
    jpeg_destroy_decompress(&jpeg->cinfo);
    free(jpeg->exif);
    free(jpeg);
}

/* The APP1 "Exif\0\0" payloads after those 6 bytes, joined (NULL when none). */
static int collect_exif(zoo_jpeg *jpeg, zoo_jpeg_header *header) {
    size_t total = 0;
    for (jpeg_saved_marker_ptr m = jpeg->cinfo.marker_list; m != NULL; m = m->next)
        if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 && memcmp(m->data, "Exif\0\0", 6) == 0)
            total += m->data_length - 6;
    if (total == 0) return 0;
    jpeg->exif = malloc(total);
    if (jpeg->exif == NULL) return -1;
    size_t at = 0;
    for (jpeg_saved_marker_ptr m = jpeg->cinfo.marker_list; m != NULL; m = m->next)
        if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 && memcmp(m->data, "Exif\0\0", 6) == 0) {
            memcpy(jpeg->exif + at, m->data + 6, m->data_length - 6);
            at += m->data_length - 6;
        }
    header->exif = jpeg->exif;
    header->exif_length = total;
    return 0;
}

zoo_jpeg *zoo_jpeg_open(const uint8_t *bytes, size_t length, zoo_jpeg_header *header, char *message) {
    memset(header, 0, sizeof *header);
    zoo_jpeg *jpeg = calloc(1, sizeof *jpeg);
    if (jpeg == NULL) {
        snprintf(message, ZOO_CODEC_MESSAGE_SIZE, "out of memory");
        return NULL;
    }
    jpeg->bytes = bytes;
    jpeg->length = length;
    jpeg->message = message;
    jpeg->cinfo.err = jpeg_std_error(&jpeg->error);
    jpeg->error.error_exit = fail;
    jpeg->error.emit_message = emit;
    jpeg->error.output_message = silent;
    jpeg->cinfo.client_data = jpeg;
    if (setjmp(jpeg->jump)) {
        zoo_jpeg_close(jpeg);
        return NULL;
    }
    jpeg_create_decompress(&jpeg->cinfo);
    jpeg_mem_src(&jpeg->cinfo, bytes, (unsigned long)length);
    jpeg_save_markers(&jpeg->cinfo, JPEG_APP0 + 1, 0xFFFF);
    jpeg_read_header(&jpeg->cinfo, TRUE);
    header->width = jpeg->cinfo.image_width;
    header->height = jpeg->cinfo.image_height;
    header->components = jpeg->cinfo.num_components;
    if (collect_exif(jpeg, header) != 0) {
        snprintf(message, ZOO_CODEC_MESSAGE_SIZE, "out of memory for the EXIF data");
        zoo_jpeg_close(jpeg);
        return NULL;
    }
    return jpeg;
}

int zoo_jpeg_start(zoo_jpeg *jpeg, int cmyk, char *message) {
    jpeg->message = message;
    if (setjmp(jpeg->jump)) return -1;
    jpeg->cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    jpeg_start_decompress(&jpeg->cinfo);
    if (jpeg->cinfo.output_components != (cmyk ? 4 : 3) || jpeg->cinfo.output_width != jpeg->cinfo.image_width
        || jpeg->cinfo.output_height != jpeg->cinfo.image_height) {
        snprintf(message, ZOO_CODEC_MESSAGE_SIZE, "libjpeg cannot convert this file's colour space to %s",
                 cmyk ? "CMYK" : "RGB");
        return -1;
    }
    return 0;
}

int zoo_jpeg_read_rows(zoo_jpeg *jpeg, uint8_t *out, uint32_t rows, char *message) {
    jpeg->message = message;
    if (setjmp(jpeg->jump)) return -1;
    if (rows > jpeg->cinfo.output_height - jpeg->cinfo.output_scanline) {
        snprintf(message, ZOO_CODEC_MESSAGE_SIZE, "asked for rows past the end of the image");
        return -1;
    }
    size_t stride = (size_t)jpeg->cinfo.output_width * (size_t)jpeg->cinfo.output_components;
    for (uint32_t y = 0; y < rows; y++) {
        JSAMPROW row = out + (size_t)y * stride;
        if (jpeg_read_scanlines(&jpeg->cinfo, &row, 1) != 1) {
            snprintf(message, ZOO_CODEC_MESSAGE_SIZE, "libjpeg returned no row %u", jpeg->cinfo.output_scanline);
            return -1;
        }
    }
    return 0;
}

int zoo_jpeg_finish(zoo_jpeg *jpeg, char *message) {
    jpeg->message = message;
    jpeg->finishing = 1;
    if (setjmp(jpeg->jump)) return -1;
    jpeg_finish_decompress(&jpeg->cinfo);
    return 0;
}
