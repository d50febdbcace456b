/* test_report_wire.c: the wire walker against protobuf-c's unpack, the reference it must
 * equal: on valid messages, on messages built from random fields (every wire type on every
 * field number, duplicates, unknown fields, odd tag encodings) and on random mutations of
 * both. Same accept/refuse verdict, same field values, for Outcome, SignedOutcome and
 * SignedOutcomeBatch. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "qmesh/v1/qmesh.pb-c.h"
#include "report_wire.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}
static size_t below(size_t n) { return n ? (size_t)(next() % n) : 0; }

#define BUF_MAX 4096

struct buf {
  uint8_t b[BUF_MAX];
  size_t n;
};

static void put(struct buf *b, uint8_t c) {
  if (b->n < BUF_MAX) b->b[b->n++] = c;
}
static void put_varint(struct buf *b, uint64_t v) {
  do {
    put(b, (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0)));
    v >>= 7;
  } while (v);
}
static void put_bytes(struct buf *b, const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) put(b, p[i]);
}

/* put_tag: field |num|, wire type |wt|, sometimes in a longer encoding than needed. */
static void put_tag(struct buf *b, uint32_t num, unsigned wt) {
  uint64_t v = (uint64_t)num << 3 | wt;
  if (below(8) == 0) {
    size_t extra = 1 + below(3);
    while (extra--) {
      put(b, (uint8_t)((v & 0x7f) | 0x80));
      v >>= 7;
    }
  }
  put_varint(b, v);
}

static uint64_t random_value(void) {
  switch (below(5)) {
    case 0: return below(3);
    case 1: return next() & 0xffff;
    case 2: return next();
    case 3: return (uint64_t)1 << below(64);
    default: return 0xffffffffull + below(3) - 1;
  }
}

/* random_payload: bytes for a length-delimited field, sometimes a nested |nested| message. */
static void random_payload(struct buf *b, const struct buf *nested) {
  size_t n;
  if (nested && below(2)) {
    put_varint(b, nested->n);
    put_bytes(b, nested->b, nested->n);
    return;
  }
  static const size_t sizes[] = {0, 1, 2, 31, 32, 33, 63, 64, 65};
  n = below(4) ? sizes[below(sizeof sizes / sizeof *sizes)] : below(200);
  put_varint(b, n);
  for (size_t i = 0; i < n; i++) {
    uint8_t c = (uint8_t)next();
    put(b, below(20) == 0 ? 0 : c); /* a NUL now and then, inside strings too */
  }
}

/* random_fields: |nfields| fields, numbers mostly the message's own (1..|maxnum|). */
static void random_fields(struct buf *b, uint32_t maxnum, size_t nfields, const struct buf *nested) {
  for (size_t i = 0; i < nfields; i++) {
    uint32_t num = below(6) ? 1 + (uint32_t)below(maxnum) : (uint32_t)random_value();
    unsigned wt = below(6) ? (unsigned[]){0, 1, 2, 5}[below(4)] : (unsigned)below(8);
    if (below(50) == 0) {
      put(b, (uint8_t)below(8)); /* a one-byte tag of field 0 */
    } else {
      put_tag(b, num, wt);
    }
    switch (wt) {
      case 0: put_varint(b, random_value()); break;
      case 1: for (int k = 0; k < 8; k++) put(b, (uint8_t)(below(3) ? 0 : next())); break;
      case 5: for (int k = 0; k < 4; k++) put(b, (uint8_t)(below(3) ? 0 : next())); break;
      case 2: random_payload(b, nested); break;
      default: break;
    }
  }
}

static void mutate(struct buf *b) {
  size_t rounds = 1 + below(3);
  while (rounds--) {
    size_t at = below(b->n + 1);
    switch (below(7)) {
      case 0: if (b->n) b->b[below(b->n)] ^= (uint8_t)(1u << below(8)); break;
      case 1: if (b->n) b->b[below(b->n)] = (uint8_t)next(); break;
      case 2: b->n = at; break; /* truncate */
      case 3: { /* delete a range */
        size_t len = below(b->n - at + 1);
        memmove(b->b + at, b->b + at + len, b->n - at - len);
        b->n -= len;
        break;
      }
      case 4: { /* insert random bytes */
        size_t len = 1 + below(6);
        if (b->n + len > BUF_MAX) break;
        memmove(b->b + at + len, b->b + at, b->n - at);
        for (size_t i = 0; i < len; i++) b->b[at + i] = (uint8_t)next();
        b->n += len;
        break;
      }
      case 5: { /* copy a slice elsewhere (duplicate fields) */
        if (!b->n) break;
        size_t from = below(b->n), len = 1 + below(b->n - from);
        if (b->n + len > BUF_MAX) break;
        uint8_t tmp[BUF_MAX];
        memcpy(tmp, b->b + from, len);
        memmove(b->b + at + len, b->b + at, b->n - at);
        memcpy(b->b + at, tmp, len);
        b->n += len;
        break;
      }
      default: /* a length byte or a varint byte made longer */
        if (b->n) b->b[below(b->n)] |= 0x80;
        break;
    }
  }
}

static int same_bytes(struct qm_span s, const uint8_t *p, size_t n) {
  return s.n == n && (n == 0 || memcmp(s.p, p, n) == 0);
}
static int same_str(struct qm_span s, const char *c) { return qm_span_streq(s, c); }

static void compare_outcome(const struct buf *b) {
  Qmesh__V1__Outcome *o = qmesh__v1__outcome__unpack(NULL, b->n, b->b);
  struct qm_outcome_view v;
  int rc = qm_wire_outcome(b->b, b->n, &v);
  CHECKF((o != NULL) == (rc == 0), "Outcome of %zu bytes: protobuf-c %s, walker %d", b->n, o ? "ok" : "refuses", rc);
  if (o && rc == 0) {
    CHECK(same_bytes(v.request_repr, o->request_repr.data, o->request_repr.len));
    CHECK(same_str(v.provider_id, o->provider_id));
    CHECK(same_str(v.domain, o->domain));
    CHECKF(v.initiated == !!o->initiated, "initiated %d vs %d", v.initiated, o->initiated);
    CHECK_EQ_U(v.sequence, o->sequence);
    CHECK_EQ_U((uint64_t)v.decided_unix_nanos, (uint64_t)o->decided_unix_nanos);
  }
  qmesh__v1__outcome__free_unpacked(o, NULL);
}

static void compare_signed_view(const struct qm_signed_view *v, const Qmesh__V1__SignedOutcome *so) {
  CHECK(same_bytes(v->outcome, so->outcome.data, so->outcome.len));
  CHECK(same_bytes(v->signature, so->signature.data, so->signature.len));
  CHECK(same_str(v->key_id, so->key_id));
  CHECK_EQ_U(v->nproof, so->n_proof);
  for (size_t i = 0; i < so->n_proof && i < QM_MERKLE_DEPTH_MAX; i++)
    CHECK(same_bytes(v->proof[i], so->proof[i].data, so->proof[i].len));
  CHECK_EQ_U(v->leaf_index, so->leaf_index);
  CHECK_EQ_U(v->leaf_count, so->leaf_count);
}

static void compare_signed(const struct buf *b) {
  Qmesh__V1__SignedOutcome *so = qmesh__v1__signed_outcome__unpack(NULL, b->n, b->b);
  struct qm_signed_view v;
  int rc = qm_wire_signed(b->b, b->n, &v);
  CHECKF((so != NULL) == (rc == 0), "SignedOutcome of %zu bytes: protobuf-c %s, walker %d", b->n,
         so ? "ok" : "refuses", rc);
  if (so && rc == 0) {
    compare_signed_view(&v, so);
    CHECK(v.raw.p == b->b && v.raw.n == b->n);
  }
  qmesh__v1__signed_outcome__free_unpacked(so, NULL);
}

static void compare_batch(const struct buf *b) {
  Qmesh__V1__SignedOutcomeBatch *batch = qmesh__v1__signed_outcome_batch__unpack(NULL, b->n, b->b);
  static struct qm_signed_view views[64];
  size_t count = 0, cap = below(3) ? 64 : below(4); /* sometimes too small an array */
  int rc = qm_wire_batch(b->b, b->n, views, cap, &count);
  CHECKF((batch != NULL) == (rc == 0), "batch of %zu bytes: protobuf-c %s, walker %d", b->n,
         batch ? "ok" : "refuses", rc);
  if (batch && rc == 0) {
    CHECK_EQ_U(count, batch->n_votes);
    for (size_t i = 0; i < count && i < cap; i++) {
      compare_signed_view(&views[i], batch->votes[i]);
      /* the vote's own bytes, as the log keeps them, decode to the same vote */
      Qmesh__V1__SignedOutcome *again = qmesh__v1__signed_outcome__unpack(NULL, views[i].raw.n, views[i].raw.p);
      CHECK(again != NULL);
      if (again) compare_signed_view(&views[i], again);
      qmesh__v1__signed_outcome__free_unpacked(again, NULL);
    }
  }
  qmesh__v1__signed_outcome_batch__free_unpacked(batch, NULL);
}

/* A genuine vote, packed by protobuf-c as a provider packs it. */
static void genuine(struct buf *outcome, struct buf *signed_out) {
  uint8_t repr[32], sig[64], proof[4][32];
  for (size_t i = 0; i < 32; i++) repr[i] = (uint8_t)next();
  for (size_t i = 0; i < 64; i++) sig[i] = (uint8_t)next();
  for (size_t i = 0; i < 4; i++)
    for (size_t k = 0; k < 32; k++) proof[i][k] = (uint8_t)next();
  Qmesh__V1__Outcome o = QMESH__V1__OUTCOME__INIT;
  o.request_repr = (ProtobufCBinaryData){32, repr};
  o.provider_id = (char *)(below(2) ? "PROVIDER_A" : "PROVIDER_C");
  o.domain = (char *)(below(2) ? "payments" : "storage");
  o.initiated = (protobuf_c_boolean)below(2);
  o.sequence = below(100000);
  o.decided_unix_nanos = (int64_t)(next() >> 2);
  outcome->n = qmesh__v1__outcome__pack(&o, outcome->b);
  Qmesh__V1__SignedOutcome so = QMESH__V1__SIGNED_OUTCOME__INIT;
  ProtobufCBinaryData pr[4];
  so.outcome = (ProtobufCBinaryData){outcome->n, outcome->b};
  so.signature = (ProtobufCBinaryData){64, sig};
  so.key_id = o.provider_id;
  so.n_proof = below(5);
  for (size_t i = 0; i < so.n_proof; i++) pr[i] = (ProtobufCBinaryData){32, proof[i]};
  so.proof = pr;
  so.leaf_count = so.n_proof ? (uint32_t)(1u << so.n_proof) : 0;
  so.leaf_index = so.leaf_count ? (uint32_t)below(so.leaf_count) : 0;
  signed_out->n = qmesh__v1__signed_outcome__pack(&so, signed_out->b);
}

/* The hand-written ReportBatchReply against protobuf-c's pack of the same replies. */
static void compare_replies(void) {
  static const char *errors[] = {NULL, "", "x", "auditor: too many pending requests",
                                 "a much longer reason that takes more than one hundred and twenty-seven bytes to say, "
                                 "so that its length prefix needs two bytes on the wire: padding padding padding"};
  Qmesh__V1__ReportReply r[8];
  Qmesh__V1__ReportReply *rp[8];
  uint8_t want[2048], got[2048];
  size_t n = below(9), len = 0;
  uint8_t *at = got;
  for (size_t i = 0; i < n; i++) {
    qmesh__v1__report_reply__init(&r[i]);
    r[i].result = (Qmesh__V1__ReportReply__Result)below(4);
    const char *e = errors[below(5)];
    r[i].error = e ? (char *)e : r[i].error;
    r[i].code = below(2) ? 0 : (uint32_t)(below(2) ? below(17) : random_value());
    rp[i] = &r[i];
    len += qm_wire_batch_reply_len((int)r[i].result, e, r[i].code);
    at = qm_wire_batch_reply_put(at, (int)r[i].result, e, r[i].code);
  }
  Qmesh__V1__ReportBatchReply out = QMESH__V1__REPORT_BATCH_REPLY__INIT;
  out.n_replies = n;
  out.replies = rp;
  size_t wlen = qmesh__v1__report_batch_reply__pack(&out, want);
  CHECK_EQ_U(len, wlen);
  CHECK_EQ_U((size_t)(at - got), wlen);
  CHECK(memcmp(got, want, wlen) == 0);
}

int main(void) {
  static struct buf o, s, b, m;
  for (int iter = 0; iter < 20000; iter++) compare_replies();
  for (int iter = 0; iter < 60000; iter++) {
    genuine(&o, &s);
    compare_outcome(&o);
    compare_signed(&s);
    m = o;
    mutate(&m);
    compare_outcome(&m);
    m = s;
    mutate(&m);
    compare_signed(&m);

    /* Messages of random fields, nested the way the real ones nest, then mutated. */
    b.n = 0;
    random_fields(&b, 6, below(8), NULL);
    compare_outcome(&b);
    m = b;
    mutate(&m);
    compare_outcome(&m);
    struct buf nested = below(2) ? o : b;
    b.n = 0;
    random_fields(&b, 6, below(10), &nested);
    compare_signed(&b);
    m = b;
    mutate(&m);
    compare_signed(&m);

    /* Batches: genuine votes with a stray field now and then, then mutated. */
    b.n = 0;
    for (size_t k = below(6); k > 0; k--) {
      if (below(10) == 0) random_fields(&b, 2, 1, &s);
      genuine(&o, &s);
      put_tag(&b, 1, 2);
      put_varint(&b, s.n);
      put_bytes(&b, s.b, s.n);
    }
    compare_batch(&b);
    m = b;
    mutate(&m);
    compare_batch(&m);
  }

  /* Edges seen while writing the walker. */
  static const struct {
    const char *name;
    uint8_t bytes[16];
    size_t n;
    int ok, initiated;
  } edges[] = {
      {"one-byte tag of field 0", {0x05, 1, 2, 3, 4}, 5, 0, 0},
      {"two-byte tag of field 0", {0x80, 0x00, 0x01}, 3, 1, 0},
      {"bool from a length-delimited field reads its prefix", {0x22, 0x01, 0x00}, 3, 1, 1},
      {"bool from an empty length-delimited field", {0x22, 0x00}, 2, 1, 0},
      {"bool from a fixed64", {0x21, 0, 0, 0, 0, 0, 0, 0, 1}, 9, 1, 1},
      {"a group", {0x2b}, 1, 0, 0},
      {"a varint of 11 bytes", {0x28, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, 12, 0, 0},
      {"a length of 2^32", {0x0a, 0x80, 0x80, 0x80, 0x80, 0x10}, 6, 0, 0},
      {"a 6-byte length", {0x0a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, 7, 0, 0},
      {"a 6-byte tag", {0xa8, 0x80, 0x80, 0x80, 0x80, 0x00, 0x07}, 7, 0, 0},
  };
  for (size_t i = 0; i < sizeof edges / sizeof *edges; i++) {
    struct qm_outcome_view v;
    int rc = qm_wire_outcome(edges[i].bytes, edges[i].n, &v);
    CHECKF((rc == 0) == edges[i].ok, "%s: %d", edges[i].name, rc);
    if (rc == 0) CHECKF(v.initiated == edges[i].initiated, "%s: initiated %d", edges[i].name, v.initiated);
    memcpy(b.b, edges[i].bytes, edges[i].n);
    b.n = edges[i].n;
    compare_outcome(&b);
  }
  return qm_checks_done();
}
