/* mux_wire.h: MuxFrames (proto/qmesh/v1/qmesh.proto) written and read in place: the frames
 * that carry unary calls on one long-lived stream (rpc_mux.c). A MuxFrames message is the
 * frames back to back, each as field 1, so frames are appended to a buffer one by one and
 * whatever has gathered goes out as one message. Read with protobuf-c 1.4's acceptance
 * rules (tests/test_mux_wire.c and fuzz/fuzz_messages.c compare the two). */
#ifndef QM_MUX_WIRE_H
#define QM_MUX_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "pb_wire.h"

struct qm_mux_frame {
  uint64_t id;
  struct qm_span method;  /* request: the unary method's path */
  struct qm_span payload; /* the request, or the reply when status is 0 */
  int32_t status;         /* reply: a gRPC status code */
  struct qm_span message; /* reply: the status message */
};

/* qm_mux_frame_len: the bytes qm_mux_frame_put writes for |f| (a MuxFrames field 1). */
size_t qm_mux_frame_len(const struct qm_mux_frame *f);
/* qm_mux_frame_put: writes |f| as one MuxFrames element at |out|; returns the end. */
uint8_t *qm_mux_frame_put(const struct qm_mux_frame *f, uint8_t *out);

/* qm_mux_frames_next: the next frame of the MuxFrames at |*at| .. |end| (spans point into
 * it): 1, 0 at the end, -1 when the message is malformed. Unknown fields are skipped; a
 * repeated scalar field keeps its last value, as protobuf-c does. */
int qm_mux_frames_next(const uint8_t **at, const uint8_t *end, struct qm_mux_frame *f);
/* qm_mux_frames_count: the number of frames in a whole MuxFrames message, or -1 when any
 * part of it is malformed (protobuf-c refuses the whole message then). */
long qm_mux_frames_count(const uint8_t *p, size_t n);

#endif
