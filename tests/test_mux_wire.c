/* test_mux_wire.c: pkg/mux_wire writes exactly the bytes protobuf-c packs for MuxFrames (edge
 * values included), reads back exactly what protobuf-c decodes, and refuses what protobuf-c
 * refuses (a whole message, when any frame in it is malformed). */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mux_wire.h"
#include "qmesh/v1/qmesh.pb-c.h"

static uint64_t rng = 0x2545f4914f6cdd1du;
static uint64_t next(void) { return qm_xorshift(&rng); }

static size_t some_len(void) {
  static const size_t picks[] = {0, 1, 5, 127, 128, 300, 16383, 16384, 20000};
  return picks[next() % (sizeof picks / sizeof picks[0])];
}

static uint64_t some_id(void) {
  static const uint64_t picks[] = {0, 1, 127, 128, 1u << 31, UINT64_MAX};
  return next() % 2 ? picks[next() % (sizeof picks / sizeof picks[0])] : next();
}

static int32_t some_status(void) {
  static const int32_t picks[] = {0, 1, 3, 14, 16, -1, INT32_MIN, INT32_MAX};
  return picks[next() % (sizeof picks / sizeof picks[0])];
}

#define FRAMES_MAX 5

static void test_round_trips(void) {
  static uint8_t texts[3 * FRAMES_MAX][20001], mine[4 * FRAMES_MAX * 20100], theirs[sizeof mine];
  for (int round = 0; round < 1000; round++) {
    size_t nf = next() % (FRAMES_MAX + 1);
    struct qm_mux_frame f[FRAMES_MAX];
    Qmesh__V1__MuxFrame pf[FRAMES_MAX], *pp[FRAMES_MAX];
    uint8_t *p = mine;
    for (size_t i = 0; i < nf; i++) {
      struct qm_span s[3];
      for (int k = 0; k < 3; k++) {
        size_t n = some_len();
        uint8_t *t = texts[3 * i + (size_t)k];
        for (size_t j = 0; j < n; j++) t[j] = (uint8_t)('!' + next() % 90); /* printable: no NUL */
        t[n] = 0;
        s[k] = (struct qm_span){t, n};
      }
      f[i] = (struct qm_mux_frame){.id = some_id(), .method = s[0], .payload = s[1], .status = some_status(),
                                   .message = s[2]};
      qmesh__v1__mux_frame__init(&pf[i]);
      pf[i].id = f[i].id;
      pf[i].method = (char *)s[0].p;
      pf[i].payload = (ProtobufCBinaryData){s[1].n, (uint8_t *)s[1].p};
      pf[i].status = f[i].status;
      pf[i].message = (char *)s[2].p;
      pp[i] = &pf[i];
      size_t want = qm_mux_frame_len(&f[i]);
      uint8_t *end = qm_mux_frame_put(&f[i], p);
      CHECKF((size_t)(end - p) == want, "round %d frame %zu: put wrote %zu bytes, len said %zu", round, i,
             (size_t)(end - p), want);
      p = end;
    }
    Qmesh__V1__MuxFrames all = QMESH__V1__MUX_FRAMES__INIT;
    all.n_frames = nf;
    all.frames = pp;
    size_t tn = qmesh__v1__mux_frames__pack(&all, theirs);
    CHECKF(tn == (size_t)(p - mine) && memcmp(theirs, mine, tn) == 0, "round %d: bytes differ from protobuf-c's",
           round);
    CHECK(qm_mux_frames_count(mine, (size_t)(p - mine)) == (long)nf);
    const uint8_t *at = theirs, *end = theirs + tn;
    struct qm_mux_frame g;
    for (size_t i = 0; i < nf; i++) {
      int rc = qm_mux_frames_next(&at, end, &g);
      CHECKF(rc == 1 && g.id == f[i].id && g.status == f[i].status && g.method.n == f[i].method.n &&
                 g.payload.n == f[i].payload.n && g.message.n == f[i].message.n &&
                 memcmp(g.method.p, f[i].method.p, g.method.n) == 0 &&
                 memcmp(g.payload.p, f[i].payload.p, g.payload.n) == 0 &&
                 memcmp(g.message.p, f[i].message.p, g.message.n) == 0,
             "round %d frame %zu: read back differs", round, i);
    }
    CHECK(qm_mux_frames_next(&at, end, &g) == 0);
  }
}

/* Hand-made inputs: the walker accepts exactly when protobuf-c does, with the same values. */
static void test_against_protobuf_c(void) {
  static const struct {
    const char *what;
    const char *bytes;
    size_t n;
  } cases[] = {
      {"empty", "", 0},
      {"one empty frame", "\x0a\x00", 2},
      {"unknown outer field skipped", "\x12\x01x\x0a\x02\x08\x07", 7},
      {"unknown inner field skipped", "\x0a\x05\x30\x01\x08\x09\x00", 7},
      {"last id wins", "\x0a\x04\x08\x01\x08\x02", 6},
      {"frame with the wrong wire type", "\x08\x01", 2},
      {"id with the wrong wire type", "\x0a\x02\x0a\x00", 4},
      {"method as a varint", "\x0a\x02\x10\x01", 4},
      {"truncated frame", "\x0a\x05\x08\x01", 4},
      {"truncated varint", "\x0a\x01\x08", 3},
      {"second frame malformed", "\x0a\x02\x08\x01\x0a\x03\x12\x05x", 9},
      {"negative status (10 bytes)", "\x0a\x0b\x20\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 13},
      {"field zero", "\x00\x00", 2},
      {"group wire type", "\x0b\x0c", 2},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const uint8_t *b = (const uint8_t *)cases[i].bytes;
    Qmesh__V1__MuxFrames *m = qmesh__v1__mux_frames__unpack(NULL, cases[i].n, b);
    long count = qm_mux_frames_count(b, cases[i].n);
    CHECKF((m != NULL) == (count >= 0), "%s: protobuf-c %s, the walker %ld", cases[i].what, m ? "accepts" : "refuses",
           count);
    if (m && count >= 0) {
      CHECKF((size_t)count == m->n_frames, "%s: %ld frames, protobuf-c %zu", cases[i].what, count, m->n_frames);
      const uint8_t *at = b, *end = b + cases[i].n;
      struct qm_mux_frame g;
      for (size_t k = 0; k < m->n_frames && qm_mux_frames_next(&at, end, &g) == 1; k++)
        CHECKF(g.id == m->frames[k]->id && g.status == m->frames[k]->status &&
                   g.payload.n == m->frames[k]->payload.len,
               "%s: frame %zu differs", cases[i].what, k);
    }
    if (m) qmesh__v1__mux_frames__free_unpacked(m, NULL);
  }
}

int main(void) {
  test_round_trips();
  test_against_protobuf_c();
  return qm_checks_done();
}
