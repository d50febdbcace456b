/* test_vote_wire.c: pkg/vote_wire writes exactly the bytes protobuf-c packs (Outcome and
 * SignedOutcomeBatch, BatchReply, edge values included), and pkg/pb_arena decodes exactly what
 * protobuf-c decodes with malloc, spilling and releasing cleanly. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "pb_arena.h"
#include "qmesh/v1/qmesh.pb-c.h"
#include "vote_wire.h"

static uint64_t rng = 0x9e3779b97f4a7c15u;
static uint64_t next(void) { return qm_xorshift(&rng); }

/* A length that exercises 1-, 2- and 3-byte length prefixes, and zero. */
static size_t some_len(void) {
  static const size_t picks[] = {0, 1, 5, 32, 127, 128, 300, 16383, 16384, 20000};
  return picks[next() % (sizeof picks / sizeof picks[0])];
}

static void fill_text(char *s, size_t n) {
  for (size_t i = 0; i < n; i++) s[i] = (char)('!' + next() % 90); /* printable, no NUL */
  s[n] = '\0';
}

static uint64_t some_u64(void) {
  static const uint64_t picks[] = {0, 1, 127, 128, 300, 1u << 31, UINT64_MAX};
  return next() % 3 ? picks[next() % (sizeof picks / sizeof picks[0])] : next();
}

static void test_outcomes(void) {
  static char id[20001], domain[20001];
  static uint8_t repr[20000], mine[70000], theirs[70000];
  for (int round = 0; round < 2000; round++) {
    size_t rl = round % 4 ? 32 : some_len(), il = some_len(), dl = some_len();
    for (size_t i = 0; i < rl; i++) repr[i] = (uint8_t)next();
    fill_text(id, il);
    fill_text(domain, dl);
    struct qm_outcome_fields o = {repr, rl, id, il, domain, dl, (int)(next() % 2), some_u64(), (int64_t)some_u64()};
    Qmesh__V1__Outcome pb = QMESH__V1__OUTCOME__INIT;
    pb.request_repr.data = repr;
    pb.request_repr.len = rl;
    pb.provider_id = id;
    pb.domain = domain;
    pb.initiated = o.initiated;
    pb.sequence = o.sequence;
    pb.decided_unix_nanos = o.decided_unix_nanos;
    size_t want = qmesh__v1__outcome__pack(&pb, theirs);
    size_t got = qm_outcome_wire_len(&o);
    uint8_t *end = qm_outcome_wire_put(&o, mine);
    CHECKF(got == want && (size_t)(end - mine) == got && memcmp(mine, theirs, want) == 0,
           "round %d: Outcome %zu bytes, protobuf-c %zu (repr %zu, id %zu, domain %zu)", round, got, want, rl, il, dl);
  }
}

static void test_signed_batches(void) {
  enum { N = 40 };
  static uint8_t outcomes[N][20000], proofs[N][12][32], mine[N * 21000], theirs[N * 21000];
  static char key_id[N][300];
  uint8_t sig[64];
  for (int round = 0; round < 200; round++) {
    size_t n = 1 + next() % N, at = 0;
    Qmesh__V1__SignedOutcome so[N], *sop[N];
    ProtobufCBinaryData pd[N][12];
    for (size_t k = 0; k < sizeof sig; k++) sig[k] = (uint8_t)next();
    for (size_t i = 0; i < n; i++) {
      struct qm_signed_vote_fields v = {.outcome = outcomes[i],
                                        .outcome_len = some_len(),
                                        .signature = sig,
                                        .signature_len = next() % 5 ? 64 : 0,
                                        .key_id = key_id[i],
                                        .key_id_len = next() % 5 ? 10 : some_len() % 300,
                                        .proof = (const uint8_t(*)[32])proofs[i],
                                        .nproof = next() % 13,
                                        .leaf_index = (uint32_t)(next() % 3 ? i : some_u64()),
                                        .leaf_count = (uint32_t)(next() % 3 ? n : some_u64())};
      for (size_t k = 0; k < v.outcome_len; k++) outcomes[i][k] = (uint8_t)next();
      for (size_t k = 0; k < v.nproof; k++)
        for (size_t b = 0; b < 32; b++) proofs[i][k][b] = (uint8_t)next();
      fill_text(key_id[i], v.key_id_len);
      size_t len = qm_batch_vote_wire_len(&v);
      uint8_t *end = qm_batch_vote_wire_put(&v, mine + at);
      CHECKF((size_t)(end - mine - at) == len, "round %d vote %zu: put wrote %zu, len says %zu", round, i,
             (size_t)(end - mine - at), len);
      at += len;
      qmesh__v1__signed_outcome__init(&so[i]);
      so[i].outcome.data = outcomes[i];
      so[i].outcome.len = v.outcome_len;
      so[i].signature.data = sig;
      so[i].signature.len = v.signature_len;
      so[i].key_id = key_id[i];
      so[i].n_proof = v.nproof;
      so[i].proof = pd[i];
      for (size_t k = 0; k < v.nproof; k++) pd[i][k] = (ProtobufCBinaryData){32, proofs[i][k]};
      so[i].leaf_index = v.leaf_index;
      so[i].leaf_count = v.leaf_count;
      sop[i] = &so[i];
    }
    Qmesh__V1__SignedOutcomeBatch b = QMESH__V1__SIGNED_OUTCOME_BATCH__INIT;
    b.n_votes = n;
    b.votes = sop;
    size_t want = qmesh__v1__signed_outcome_batch__pack(&b, theirs);
    CHECKF(at == want && memcmp(mine, theirs, want) == 0, "round %d: batch of %zu: %zu bytes, protobuf-c %zu", round, n,
           at, want);
  }
}

/* BatchReply: OK items (code 0, empty message) and refusals with their messages. */
static void test_batch_replies(void) {
  enum { N = 60 };
  static char msgs[N][400];
  static uint8_t mine[N * 420], theirs[N * 420];
  for (int round = 0; round < 500; round++) {
    size_t n = next() % N, at = 0;
    Qmesh__V1__ItemStatus st[N], *sp[N];
    for (size_t i = 0; i < n; i++) {
      uint32_t code = next() % 3 ? 0 : (uint32_t)(next() % 2 ? next() % 17 : some_u64());
      size_t ml = code || next() % 4 == 0 ? some_len() % 400 : 0;
      fill_text(msgs[i], ml);
      at = (size_t)(qm_item_status_wire_put(code, msgs[i], ml, mine + at) - mine);
      qmesh__v1__item_status__init(&st[i]);
      st[i].code = code;
      st[i].message = msgs[i];
      sp[i] = &st[i];
      CHECK(qm_item_status_wire_len(code, ml) > 0);
    }
    size_t len = 0;
    for (size_t i = 0; i < n; i++) len += qm_item_status_wire_len(st[i].code, strlen(msgs[i]));
    Qmesh__V1__BatchReply r = QMESH__V1__BATCH_REPLY__INIT;
    r.n_items = n;
    r.items = sp;
    size_t want = qmesh__v1__batch_reply__pack(&r, theirs);
    CHECKF(at == want && len == want && memcmp(mine, theirs, want) == 0,
           "round %d: reply of %zu: %zu bytes, protobuf-c %zu", round, n, at, want);
  }
}

/* The arena gives the same Artifact as malloc, for small (in the buffer) and large (spilled)
 * fields, and refuses what protobuf-c refuses. */
static void test_arena(void) {
  static char ctx[100001];
  static uint8_t packed[110000];
  uint8_t buf[1024], repr[32] = {1, 2, 3};
  struct qm_pb_arena a;
  qm_pb_arena_init(&a, buf + 1, sizeof buf - 1); /* a misaligned buffer still works */
  for (int round = 0; round < 50; round++) {
    size_t cl = round % 2 ? 100000 : (size_t)round;
    fill_text(ctx, cl);
    Qmesh__V1__Artifact in = QMESH__V1__ARTIFACT__INIT;
    in.request_repr = (ProtobufCBinaryData){32, repr};
    in.verification_context = ctx;
    in.domain = "payments";
    in.sequence = (uint64_t)round;
    size_t len = qmesh__v1__artifact__pack(&in, packed);
    Qmesh__V1__Artifact *x = qmesh__v1__artifact__unpack(&a.alloc, len, packed);
    CHECKF(x && x->request_repr.len == 32 && memcmp(x->request_repr.data, repr, 32) == 0 &&
               strcmp(x->verification_context, ctx) == 0 && strcmp(x->domain, "payments") == 0 &&
               x->sequence == (uint64_t)round,
           "round %d: the arena decodes the Artifact", round);
    CHECKF(((uintptr_t)x & 7) == 0, "round %d: aligned", round);
    CHECKF(a.spilled == (cl > 500 ? 1u : 0u), "round %d: %zu spilled", round, a.spilled);
    qm_pb_arena_release(&a, x ? &x->base : NULL);
    CHECK(a.spilled == 0 && a.used == 0);
    /* truncated: refused, and nothing left behind */
    x = qmesh__v1__artifact__unpack(&a.alloc, len - 1, packed);
    CHECKF(!x && a.spilled == 0, "round %d: a truncated Artifact is refused", round);
    qm_pb_arena_release(&a, NULL);
  }
}

int main(void) {
  test_outcomes();
  test_signed_batches();
  test_batch_replies();
  test_arena();
  return qm_checks_done();
}
