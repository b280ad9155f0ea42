/* Umbrella header of the CONNX module: the protoc-c code for Schemas/onnx.proto, plus a
   hand-written streaming pack helper. */
#include "onnx.pb-c.h"
#include "connx_pack.h"
