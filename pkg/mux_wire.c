/* mux_wire.c: see mux_wire.h. */
#include "mux_wire.h"

#include <string.h>


static uint8_t *put_bytes(unsigned tag, struct qm_span s, uint8_t *p) {
  *p++ = (uint8_t)(tag << 3 | WT_LEN);
  p = qm_pb_put_varint(p, s.n);
  if (s.n) memcpy(p, s.p, s.n);
  return p + s.n;
}

/* body_len: the frame's own fields (as protobuf-c packs them: defaults left out). */
static size_t body_len(const struct qm_mux_frame *f) {
  size_t n = 0;
  if (f->id) n += 1 + qm_pb_varint_len(f->id);
  if (f->method.n) n += 1 + qm_pb_varint_len(f->method.n) + f->method.n;
  if (f->payload.n) n += 1 + qm_pb_varint_len(f->payload.n) + f->payload.n;
  /* int32: a negative value is sign-extended to 10 bytes */
  if (f->status) n += 1 + qm_pb_varint_len((uint64_t)(int64_t)f->status);
  if (f->message.n) n += 1 + qm_pb_varint_len(f->message.n) + f->message.n;
  return n;
}

size_t qm_mux_frame_len(const struct qm_mux_frame *f) {
  size_t b = body_len(f);
  return 1 + qm_pb_varint_len(b) + b;
}

uint8_t *qm_mux_frame_put(const struct qm_mux_frame *f, uint8_t *p) {
  *p++ = 1 << 3 | WT_LEN;
  p = qm_pb_put_varint(p, body_len(f));
  if (f->id) {
    *p++ = 1 << 3 | WT_VARINT;
    p = qm_pb_put_varint(p, f->id);
  }
  if (f->method.n) p = put_bytes(2, f->method, p);
  if (f->payload.n) p = put_bytes(3, f->payload, p);
  if (f->status) {
    *p++ = 4 << 3 | WT_VARINT;
    p = qm_pb_put_varint(p, (uint64_t)(int64_t)f->status);
  }
  if (f->message.n) p = put_bytes(5, f->message, p);
  return p;
}

static int read_frame(struct qm_span body, struct qm_mux_frame *f) {
  memset(f, 0, sizeof *f);
  f->method.p = f->payload.p = f->message.p = body.p;
  const uint8_t *at = body.p, *end = body.p + body.n;
  struct qm_pb_field x;
  int rc;
  while ((rc = qm_pb_next_field(&at, end, &x)) > 0) {
    switch (x.tag) {
      case 1:
      case 4:
        if (x.wt != WT_VARINT) return -1;
        if (x.tag == 1) f->id = x.value;
        else f->status = (int32_t)(uint32_t)x.value;
        break;
      case 2:
      case 3:
      case 5:
        if (x.wt != WT_LEN) return -1;
        if (x.tag == 2) f->method = x.payload;
        else if (x.tag == 3) f->payload = x.payload;
        else f->message = x.payload;
        break;
      default: break;
    }
  }
  return rc < 0 ? -1 : 0;
}

int qm_mux_frames_next(const uint8_t **at, const uint8_t *end, struct qm_mux_frame *f) {
  struct qm_pb_field x;
  int rc;
  while ((rc = qm_pb_next_field(at, end, &x)) > 0) {
    if (x.tag != 1) continue; /* unknown: skipped */
    if (x.wt != WT_LEN) return -1;
    return read_frame(x.payload, f) ? -1 : 1;
  }
  return rc;
}

long qm_mux_frames_count(const uint8_t *p, size_t n) {
  static const uint8_t none[1];
  const uint8_t *at = p ? p : none, *end = at + n;
  struct qm_mux_frame f;
  long count = 0;
  int rc;
  while ((rc = qm_mux_frames_next(&at, end, &f)) > 0) count++;
  return rc < 0 ? -1 : count;
}
