/* Hand-written (not generated): streaming pack for Swift callers of the protoc-c code. */
#ifndef CONNX_PACK_H
#define CONNX_PACK_H

#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

/* Receives each run of packed bytes in order; `context` is the caller's pointer. */
typedef void (*connx_append_fn)(void *context, const uint8_t *bytes, size_t count);

/* Packs `message` through protobuf_c_message_pack_to_buffer, handing every chunk to `append`
   (bytes fields arrive as one chunk each, straight from the message — nothing is buffered here).
   Returns the number of bytes packed. */
size_t connx_pack_streaming(const ProtobufCMessage *message, connx_append_fn append, void *context);

#endif
