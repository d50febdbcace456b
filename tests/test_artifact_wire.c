/* test_artifact_wire.c: pkg/artifact_wire accepts exactly what protobuf-c's unpack accepts
 * and reads the same values, on valid Artifacts and ArtifactBatches (unknown, repeated and
 * empty fields, NULs in strings, long varints) and on mutated and hand-made bad ones. */
#include <stdlib.h>
#include <string.h>

#include "artifact_wire.h"
#include "check.h"
#include "qmesh/v1/qmesh.pb-c.h"

static uint64_t rng = 0x2545f4914f6cdd1du;
static uint64_t next(void) { return qm_xorshift(&rng); }

static size_t put_varint(uint8_t *p, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80) {
    p[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  p[n++] = (uint8_t)v;
  return n;
}

/* A random field: a known or unknown number, sometimes the wrong wire type, sometimes a
 * non-minimal varint or tag. */
static size_t random_field(uint8_t *p) {
  static const unsigned fields[] = {1, 2, 3, 4, 5, 6, 7, 15, 16, 2047, 100000};
  unsigned field = fields[next() % (sizeof fields / sizeof fields[0])];
  unsigned wt = next() % 8 ? (field == 4 || field == 6 ? 0 : 2) : (unsigned)(next() % 8);
  size_t n = put_varint(p, (uint64_t)field << 3 | wt);
  if (next() % 16 == 0 && !(p[n - 1] & 0x80) && n < 5) { /* a padded tag: same number, more bytes */
    p[n - 1] |= 0x80;
    p[n++] = 0;
  }
  switch (wt) {
    case 0: {
      uint64_t v = next() % 4 ? next() % 300 : next();
      n += put_varint(p + n, v);
      if (next() % 10 == 0 && n < 60) { /* padded varint, up to 10 or 11 bytes */
        size_t pad = 1 + next() % 4;
        p[n - 1] |= 0x80;
        while (--pad) p[n++] = 0x80;
        p[n++] = 0;
      }
      return n;
    }
    case 1: n += 8; return n;
    case 5: n += 4; return n;
    case 2: {
      size_t len = next() % 4 ? next() % 40 : 32;
      n += put_varint(p + n, len);
      for (size_t i = 0; i < len; i++) p[n + i] = next() % 8 ? (uint8_t)('a' + next() % 26) : (uint8_t)next();
      return n + len;
    }
    default: return n; /* groups and 6, 7: refused */
  }
}

static void compare_artifact(const uint8_t *p, size_t n, int round) {
  Qmesh__V1__Artifact *a = qmesh__v1__artifact__unpack(NULL, n, p);
  struct qm_artifact_view v;
  int rc = qm_artifact_read(p, n, &v);
  CHECKF((a != NULL) == (rc == 0), "round %d: protobuf-c %s, artifact_wire %d (%zu bytes)", round,
         a ? "accepts" : "refuses", rc, n);
  if (a && rc == 0) {
    size_t cl = strlen(a->verification_context), dl = strlen(a->domain);
    CHECKF(v.repr_len == a->request_repr.len &&
               (!v.repr_len || memcmp(v.request_repr, a->request_repr.data, v.repr_len) == 0),
           "round %d: request_repr", round);
    CHECKF(v.context_len == cl && memcmp(v.context, a->verification_context, cl) == 0, "round %d: context", round);
    CHECKF(v.domain_len == dl && memcmp(v.domain, a->domain, dl) == 0, "round %d: domain", round);
    CHECKF(v.sequence == a->sequence, "round %d: sequence %llu, want %llu", round, (unsigned long long)v.sequence,
           (unsigned long long)a->sequence);
  }
  qmesh__v1__artifact__free_unpacked(a, NULL);
}

static size_t valid_artifact(uint8_t *out) {
  uint8_t repr[32];
  char ctx[40], dom[40];
  for (int i = 0; i < 32; i++) repr[i] = (uint8_t)next();
  snprintf(ctx, sizeof ctx, next() % 2 ? "CTX_ALPHA" : "SPOOF%llu", (unsigned long long)(next() % 1000));
  snprintf(dom, sizeof dom, "%s", next() % 2 ? "payments" : "identity");
  Qmesh__V1__Artifact a = QMESH__V1__ARTIFACT__INIT;
  a.request_repr = (ProtobufCBinaryData){next() % 8 ? 32 : next() % 33, repr};
  a.verification_context = ctx;
  a.domain = next() % 8 ? dom : "";
  a.sequence = next() % 4 ? next() % 100000 : next();
  a.front_id = "NUVL_A";
  a.accepted_unix_nanos = (int64_t)next();
  return qmesh__v1__artifact__pack(&a, out);
}

static void test_artifacts(void) {
  static uint8_t buf[4096];
  for (int round = 0; round < 200000; round++) {
    size_t n = 0;
    int kind = round % 4;
    if (kind == 0) { /* a packed Artifact */
      n = valid_artifact(buf);
    } else if (kind == 1) { /* a packed Artifact with random fields around it */
      n = next() % 2 ? random_field(buf) : 0;
      n += valid_artifact(buf + n);
      for (int k = next() % 4; k > 0; k--) n += random_field(buf + n);
    } else if (kind == 2) { /* fields only */
      for (int k = 1 + next() % 8; k > 0; k--) n += random_field(buf + n);
    } else { /* a packed Artifact, mutated */
      n = valid_artifact(buf);
      for (int k = 1 + next() % 3; k > 0; k--) {
        size_t at = next() % (n + 1);
        switch (next() % 4) {
          case 0:
            if (at < n) buf[at] = (uint8_t)next();
            break;
          case 1:
            if (at < n) buf[at] ^= (uint8_t)(1u << (next() % 8));
            break;
          case 2: n = at; break; /* truncated */
          default:
            if (n < sizeof buf - 1) {
              memmove(buf + at + 1, buf + at, n - at);
              buf[at] = (uint8_t)next();
              n++;
            }
        }
      }
    }
    compare_artifact(buf, n, round);
  }
}

/* Hand-made edge cases, each against protobuf-c. */
static void test_edges(void) {
  static const struct {
    const char *name;
    uint8_t bytes[24];
    size_t n;
  } cases[] = {
      {"empty", {0}, 0},
      {"tag 0, one byte", {0x02, 0x00}, 2},
      {"tag 0, two bytes", {0x82, 0x00, 0x00}, 3},
      {"tag of 5 bytes", {0x8a, 0x80, 0x80, 0x80, 0x00, 0x00}, 6},
      {"tag of 6 bytes", {0x8a, 0x80, 0x80, 0x80, 0x80, 0x00, 0x00}, 7},
      {"group start", {0x0b}, 1},
      {"group end", {0x0c}, 1},
      {"wire type 6", {0x0e}, 1},
      {"wire type 7", {0x0f}, 1},
      {"repr as varint", {0x08, 0x01}, 2},
      {"sequence as bytes", {0x22, 0x01, 0x01}, 3},
      {"sequence as fixed64", {0x21, 1, 2, 3, 4, 5, 6, 7, 8}, 9},
      {"sequence 10-byte varint", {0x20, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 11},
      {"sequence 10-byte varint, high bits", {0x20, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, 11},
      {"sequence 11-byte varint", {0x20, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, 12},
      {"front_id as varint", {0x28, 0x05}, 2},
      {"nanos as bytes", {0x32, 0x00}, 2},
      {"unknown fixed32", {0x3d, 1, 2, 3, 4}, 5},
      {"unknown fixed32 short", {0x3d, 1, 2, 3}, 4},
      {"unknown fixed64 short", {0x39, 1, 2, 3, 4, 5, 6, 7}, 8},
      {"length prefix of 5 bytes, 0", {0x12, 0x80, 0x80, 0x80, 0x80, 0x00}, 6},
      {"length prefix of 5 bytes, bit 32", {0x12, 0x80, 0x80, 0x80, 0x80, 0x10}, 6},
      {"length prefix of 5 bytes, huge", {0x12, 0xff, 0xff, 0xff, 0xff, 0x0f}, 6},
      {"length prefix of 6 bytes", {0x12, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, 7},
      {"length past the end", {0x12, 0x05, 'a', 'b'}, 4},
      {"NUL in domain", {0x1a, 0x04, 'p', 0, 'a', 'y'}, 6},
      {"domain twice", {0x1a, 0x01, 'x', 0x1a, 0x02, 'y', 'z'}, 7},
      {"unterminated tag", {0x8a}, 1},
      {"unterminated varint", {0x20, 0x80}, 2},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    Qmesh__V1__Artifact *a = qmesh__v1__artifact__unpack(NULL, cases[c].n, cases[c].bytes);
    struct qm_artifact_view v;
    int rc = qm_artifact_read(cases[c].n ? cases[c].bytes : NULL, cases[c].n, &v);
    CHECKF((a != NULL) == (rc == 0), "%s: protobuf-c %s, artifact_wire %d", cases[c].name, a ? "accepts" : "refuses",
           rc);
    qmesh__v1__artifact__free_unpacked(a, NULL);
    compare_artifact(cases[c].bytes, cases[c].n, -(int)c);
  }
}

static void test_batches(void) {
  static uint8_t buf[1 << 16];
  for (int round = 0; round < 20000; round++) {
    size_t n = 0;
    for (int k = next() % 30; k > 0; k--) {
      if (next() % 6 == 0) {
        n += random_field(buf + n);
      } else {
        uint8_t art[512];
        size_t len = valid_artifact(art);
        buf[n++] = 0x0a;
        n += put_varint(buf + n, len);
        memcpy(buf + n, art, len);
        n += len;
      }
    }
    if (round % 3 == 0 && n) { /* mutated */
      size_t at = next() % n;
      if (next() % 2)
        buf[at] = (uint8_t)next();
      else
        n = at;
    }
    Qmesh__V1__ArtifactBatch *b = qmesh__v1__artifact_batch__unpack(NULL, n, buf);
    size_t count = 0;
    int rc = qm_artifact_batch_count(n ? buf : NULL, n, &count);
    CHECKF((b != NULL) == (rc == 0), "batch round %d: protobuf-c %s, artifact_wire %d", round,
           b ? "accepts" : "refuses", rc);
    if (b && rc == 0) {
      CHECKF(count == b->n_artifacts, "batch round %d: %zu artifacts, want %zu", round, count, b->n_artifacts);
      const uint8_t *at = buf, *item;
      size_t len, i = 0;
      while (qm_artifact_batch_next(&at, buf + n, &item, &len)) {
        CHECKF(
            i < b->n_artifacts && len == b->artifacts[i].len && (!len || memcmp(item, b->artifacts[i].data, len) == 0),
            "batch round %d: artifact %zu", round, i);
        i++;
      }
      CHECK(i == count);
    }
    qmesh__v1__artifact_batch__free_unpacked(b, NULL);
  }
}

int main(void) {
  test_edges();
  test_artifacts();
  test_batches();
  return qm_checks_done();
}
