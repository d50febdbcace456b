/* fuzz_messages.c: libFuzzer harness for every other request a qmesh server decodes from the
 * network: each input is unpacked as each message type exactly as the handlers do; what
 * decodes is packed again (get_packed_size must equal what pack writes, and a second
 * unpack/pack round must give the same bytes). A LookupRequest's hex goes through qm_unhex;
 * MuxFrames also go through the in-place walker the rpc core reads them with, which must
 * agree with protobuf-c on every input. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grpc/health/v1/health.pb-c.h"
#include "hash.h"
#include "mux_wire.h"
#include "qmesh/v1/qmesh.pb-c.h"

/* One entry per message type, through the generated typed functions the servers call. */
struct codec {
  const char *name;
  void *(*unpack)(size_t len, const uint8_t *data);
  size_t (*size)(const void *m);
  size_t (*pack)(const void *m, uint8_t *out);
  void (*free)(void *m);
};

#define CODEC(Type, prefix)                                                                     \
  static void *prefix##_unpack_(size_t len, const uint8_t *data) {                              \
    return prefix##__unpack(NULL, len, data);                                                   \
  }                                                                                             \
  static size_t prefix##_size_(const void *m) { return prefix##__get_packed_size((const Type *)m); } \
  static size_t prefix##_pack_(const void *m, uint8_t *out) { return prefix##__pack((const Type *)m, out); } \
  static void prefix##_free_(void *m) { prefix##__free_unpacked((Type *)m, NULL); }
#define ENTRY(name, prefix) {name, prefix##_unpack_, prefix##_size_, prefix##_pack_, prefix##_free_}

CODEC(Qmesh__V1__SubmitRequest, qmesh__v1__submit_request)
CODEC(Qmesh__V1__Artifact, qmesh__v1__artifact)
CODEC(Qmesh__V1__SignedOutcome, qmesh__v1__signed_outcome)
CODEC(Qmesh__V1__Outcome, qmesh__v1__outcome)
CODEC(Qmesh__V1__StatsRequest, qmesh__v1__stats_request)
CODEC(Qmesh__V1__SummaryRequest, qmesh__v1__summary_request)
CODEC(Qmesh__V1__LookupRequest, qmesh__v1__lookup_request)
CODEC(Grpc__Health__V1__HealthCheckRequest, grpc__health__v1__health_check_request)
CODEC(Qmesh__V1__SubmitBatchRequest, qmesh__v1__submit_batch_request)
CODEC(Qmesh__V1__BatchReply, qmesh__v1__batch_reply)
CODEC(Qmesh__V1__DecisionTimesRequest, qmesh__v1__decision_times_request)
CODEC(Qmesh__V1__DecisionTimes, qmesh__v1__decision_times)
CODEC(Qmesh__V1__MuxFrames, qmesh__v1__mux_frames)

enum { LOOKUP = 6, MUX = 12 };
static const struct codec codecs[] = {
    ENTRY("SubmitRequest", qmesh__v1__submit_request),
    ENTRY("Artifact", qmesh__v1__artifact),
    ENTRY("SignedOutcome", qmesh__v1__signed_outcome),
    ENTRY("Outcome", qmesh__v1__outcome),
    ENTRY("StatsRequest", qmesh__v1__stats_request),
    ENTRY("SummaryRequest", qmesh__v1__summary_request),
    [LOOKUP] = ENTRY("LookupRequest", qmesh__v1__lookup_request),
    ENTRY("HealthCheckRequest", grpc__health__v1__health_check_request),
    ENTRY("SubmitBatchRequest", qmesh__v1__submit_batch_request),
    ENTRY("BatchReply", qmesh__v1__batch_reply),
    ENTRY("DecisionTimesRequest", qmesh__v1__decision_times_request),
    ENTRY("DecisionTimes", qmesh__v1__decision_times),
    [MUX] = ENTRY("MuxFrames", qmesh__v1__mux_frames),
};

static void die(const struct codec *c, const char *what) {
  fprintf(stderr, "fuzz_messages: %s: %s\n", c->name, what);
  abort();
}

/* repack: packs |m|; the size promised must be the size written. malloc'd. */
static uint8_t *repack(const struct codec *c, const void *m, size_t *len) {
  size_t n = c->size(m);
  uint8_t *buf = malloc(n ? n : 1);
  if (!buf) abort();
  if (c->pack(m, buf) != n) die(c, "get_packed_size differs from what pack wrote");
  *len = n;
  return buf;
}

/* lookup: what the auditor's Lookup handler does with the hex, plus the way back. */
static void lookup(const Qmesh__V1__LookupRequest *in) {
  uint8_t repr[32];
  char hex[2 * sizeof repr + 1];
  if (qm_unhex(in->request_repr_hex, repr, sizeof repr) != 0) return;
  qm_hex(repr, sizeof repr, hex);
  for (size_t i = 0; i < sizeof hex; i++)
    if (tolower((unsigned char)in->request_repr_hex[i]) != hex[i]) {
      fprintf(stderr, "fuzz_messages: qm_unhex/qm_hex disagree on '%s'\n", in->request_repr_hex);
      abort();
    }
}

/* has_field_zero: libprotobuf-c 1.4.1 accepts field number 0 when the tag is a padded varint
 * ("80 00"), keeps it as an unknown field and packs it as "00", which it then refuses. No
 * server re-packs a decoded request (the hub relays the bytes it received, the front reads
 * SubmitBatch items without re-packing them), so such a message is exempt from the second
 * round only. Nested messages (SubmitBatchRequest's items, BatchReply's statuses) too. */
static int has_field_zero(const void *m) {
  const ProtobufCMessage *base = m;
  for (unsigned i = 0; i < base->n_unknown_fields; i++)
    if (base->unknown_fields[i].tag == 0) return 1;
  const ProtobufCMessageDescriptor *d = base->descriptor;
  for (unsigned f = 0; f < d->n_fields; f++) {
    const ProtobufCFieldDescriptor *fd = &d->fields[f];
    if (fd->type != PROTOBUF_C_TYPE_MESSAGE) continue;
    const char *at = (const char *)m + fd->offset;
    if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
      size_t n = *(const size_t *)((const char *)m + fd->quantifier_offset);
      void *const *items = *(void *const *const *)at;
      for (size_t k = 0; k < n; k++)
        if (has_field_zero(items[k])) return 1;
    } else if (*(void *const *)at && has_field_zero(*(void *const *)at)) {
      return 1;
    }
  }
  return 0;
}

/* mux_walk: the in-place MuxFrames walker (pkg/mux_wire.c) takes exactly what protobuf-c
 * takes, with the same values (|m|: protobuf-c's decoding, or NULL when it refused). */
static void mux_walk(const uint8_t *data, size_t size, const Qmesh__V1__MuxFrames *m) {
  long n = qm_mux_frames_count(data, size);
  if ((n >= 0) != (m != NULL)) die(&codecs[MUX], m ? "the walker refuses what protobuf-c takes" : "the walker takes what protobuf-c refuses");
  if (!m) return;
  if ((size_t)n != m->n_frames) die(&codecs[MUX], "the walker counts other frames");
  const uint8_t *at = size ? data : (const uint8_t *)"", *end = at + size;
  struct qm_mux_frame f;
  for (size_t i = 0; i < m->n_frames; i++) {
    const Qmesh__V1__MuxFrame *x = m->frames[i];
    if (qm_mux_frames_next(&at, end, &f) != 1 || f.id != x->id || f.status != x->status ||
        f.payload.n != x->payload.len || (f.payload.n && memcmp(f.payload.p, x->payload.data, f.payload.n)) ||
        qm_span_cstr_len(f.method) != strlen(x->method) || memcmp(f.method.p, x->method, strlen(x->method)) ||
        qm_span_cstr_len(f.message) != strlen(x->message) || memcmp(f.message.p, x->message, strlen(x->message)))
      die(&codecs[MUX], "the walker reads another frame");
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  for (size_t i = 0; i < sizeof codecs / sizeof codecs[0]; i++) {
    const struct codec *c = &codecs[i];
    void *m = c->unpack(size, data);
    if (i == MUX) mux_walk(data, size, m);
    if (!m) continue;
    if (i == LOOKUP) lookup(m);
    size_t n1, n2;
    uint8_t *b1 = repack(c, m, &n1);
    int exempt = has_field_zero(m);
    c->free(m);
    if (exempt) {
      free(b1);
      continue;
    }
    /* What a server packed once must decode, and pack to the very same bytes. */
    void *again = c->unpack(n1, b1);
    if (!again) die(c, "a packed message does not unpack");
    uint8_t *b2 = repack(c, again, &n2);
    if (n1 != n2 || memcmp(b1, b2, n1) != 0) die(c, "pack(unpack(pack(m))) differs from pack(m)");
    c->free(again);
    free(b1);
    free(b2);
  }
  return 0;
}
