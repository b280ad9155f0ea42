/* Hand-written (not generated): see include/connx_pack.h. */
#include "include/connx_pack.h"

typedef struct {
    ProtobufCBuffer base; /* first member: protobuf-c calls base.append with a pointer to it */
    connx_append_fn append;
    void *context;
} ConnxStreamBuffer;

static void connx_stream_append(ProtobufCBuffer *buffer, size_t len, const uint8_t *data) {
    ConnxStreamBuffer *stream = (ConnxStreamBuffer *)buffer;
    if (len > 0) stream->append(stream->context, data, len);
}

size_t connx_pack_streaming(const ProtobufCMessage *message, connx_append_fn append, void *context) {
    ConnxStreamBuffer stream = { { connx_stream_append }, append, context };
    return protobuf_c_message_pack_to_buffer(message, &stream.base);
}
