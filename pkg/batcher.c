/* batcher.c: Merkle-signed vote batches from a provider to the auditor. Per vote it costs a
 * copy of the Outcome bytes into one shared buffer, a leaf hash and its share of the
 * signature; no allocation per vote. */
#include "batcher.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "merkle.h"
#include "pb_arena.h"
#include "qmesh/v1/qmesh.pb-c.h"
#include "vote_wire.h"

#define QM_REPORT_TIMEOUT_MS 10000
#define QM_RETRY_WINDOW_MS 60000 /* keep offering signed votes to an absent auditor this long */
#define QM_BACKOFF_MAX_MS 1000
#define QM_REPLY_ARENA (64 << 10) /* a ReportBatchReply of QM_BATCH_MAX votes decodes in here */

#if QM_BATCH_MAX > QM_MERKLE_MAX
#error "a batch must fit one Merkle tree"
#endif

struct vote {
  qm_vote_done_fn done;
  void *arg;
  int64_t added_ns;
  size_t off, len; /* the Outcome bytes in the batcher's pending buffer, until signed */
  int answered;    /* done() ran: a resent batch skips this vote's reply */
};

struct batch {
  struct qm_batcher *b;
  uint8_t *packed; /* the SignedOutcomeBatch, kept for resends */
  size_t packed_len;
  unsigned attempts;
  int64_t first_ns, due_ns;
  struct batch *next_due;
  size_t n;
  struct vote votes[];
};

struct qm_batcher {
  struct qm_channel *auditor;
  void *method;
  const char *key_id;
  size_t key_id_len;
  const struct qm_key *key;
  struct qm_batcher_counters c;
  struct vote pending[QM_BATCH_MAX];
  size_t npending;
  uint8_t *bytes; /* the pending votes' Outcome bytes, back to back */
  size_t nbytes, cap_bytes;
  unsigned inflight, hold;
  struct batch *waiting;
  /* scratch of every signing, kept: a batch's tree and proofs would be ~400 KiB of malloc */
  uint8_t (*leaves)[32];
  uint8_t (*proofs)[QM_MERKLE_DEPTH_MAX][32];
  int *nproof;
  struct qm_pb_arena reply_arena;
  uint8_t reply_buf[QM_REPLY_ARENA];
};

int qm_batcher_new(struct qm_channel *auditor, const char *key_id, const struct qm_key *key,
                   const struct qm_batcher_counters *counters, struct qm_batcher **out) {
  struct qm_batcher *b = calloc(1, sizeof *b);
  if (!b) return -ENOMEM;
  b->leaves = malloc(QM_BATCH_MAX * sizeof *b->leaves);
  b->proofs = malloc(QM_BATCH_MAX * sizeof *b->proofs);
  b->nproof = malloc(QM_BATCH_MAX * sizeof *b->nproof);
  if (!b->leaves || !b->proofs || !b->nproof) {
    qm_batcher_free(b);
    return -ENOMEM;
  }
  b->auditor = auditor;
  b->method = qm_channel_method(auditor, "/qmesh.v1.Auditor/ReportBatch");
  b->key_id = key_id;
  b->key_id_len = strlen(key_id);
  b->key = key;
  b->c = *counters;
  qm_pb_arena_init(&b->reply_arena, b->reply_buf, sizeof b->reply_buf);
  *out = b;
  return 0;
}

static void answer(struct qm_batcher *b, struct vote *v, int status, const char *why, int64_t now) {
  if (v->answered) return;
  v->answered = 1;
  if (b->c.latency) qm_hist_observe_ns(b->c.latency, now - v->added_ns);
  v->done(v->arg, status, why);
}

static void fail_all(struct batch *bt, int status, const char *why) {
  char msg[400];
  snprintf(msg, sizeof msg, "provider %s: the auditor did not take the vote: %s", bt->b->key_id, why);
  int64_t now = qm_mono_ns();
  for (size_t i = 0; i < bt->n; i++) {
    if (!bt->votes[i].answered) (*bt->b->c.failed)++;
    answer(bt->b, &bt->votes[i], status, msg, now);
  }
  free(bt->packed);
  free(bt);
}

static int retryable(int status) { return status == QM_STATUS_UNAVAILABLE || status == QM_STATUS_RESOURCE_EXHAUSTED; }

/* retry_later: the whole batch again after a backoff (votes taken already come back as
 * duplicates, which is harmless). 1 when queued, 0 when the retry window is over. */
static int retry_later(struct batch *bt, int64_t now) {
  struct qm_batcher *b = bt->b;
  if (now - bt->first_ns >= (int64_t)QM_RETRY_WINDOW_MS * 1000000) return 0;
  unsigned backoff = 50u << (bt->attempts < 5 ? bt->attempts : 5);
  if (backoff > QM_BACKOFF_MAX_MS) backoff = QM_BACKOFF_MAX_MS;
  bt->attempts++;
  (*b->c.retries)++;
  bt->due_ns = now + (int64_t)backoff * 1000000;
  bt->next_due = b->waiting;
  b->waiting = bt;
  return 1;
}

static void flush(struct qm_batcher *b);

/* may_send: the Nagle-like rule: alone, a vote goes at once (low latency); under load, votes
 * gather while a batch is in flight and share the next signature. */
static int may_send(const struct qm_batcher *b) { return !b->hold && b->inflight < QM_BATCHES_IN_FLIGHT; }

static void on_reply(void *arg, int status, const char *details, const uint8_t *resp, size_t len) {
  struct batch *bt = arg;
  struct qm_batcher *b = bt->b;
  b->inflight--;
  int64_t now = qm_mono_ns();
  /* The auditor is away: the votes are signed and must not be lost. Resending is
   * idempotent: the auditor counts a (request, provider) vote once. */
  if ((status == QM_STATUS_UNAVAILABLE || status == QM_STATUS_DEADLINE_EXCEEDED) && retry_later(bt, now)) {
    if (may_send(b)) flush(b);
    return;
  }
  struct qm_pb_arena *arena = &b->reply_arena;
  Qmesh__V1__ReportBatchReply *r =
      status == QM_STATUS_OK ? qmesh__v1__report_batch_reply__unpack(&arena->alloc, len, resp) : NULL;
  if (!r || r->n_replies != bt->n) {
    char why[300];
    snprintf(why, sizeof why, "%s: %s", qm_status_name(status), r ? "reply does not match the batch" : details);
    qm_pb_arena_release(arena, r ? &r->base : NULL);
    fail_all(bt, QM_STATUS_UNAVAILABLE, why);
  } else {
    int again = 0;
    for (size_t i = 0; i < bt->n; i++) {
      const Qmesh__V1__ReportReply *v = r->replies[i];
      if (bt->votes[i].answered) continue;
      if (v->result != QMESH__V1__REPORT_REPLY__RESULT__REJECTED) {
        (*b->c.reported)++;
        answer(bt->b, &bt->votes[i], QM_STATUS_OK, "", now);
      } else if (retryable((int)v->code)) {
        again = 1; /* not taken yet (log failure, pending table full): send it again */
      } else {
        char msg[300];
        snprintf(msg, sizeof msg, "the auditor refused the vote: %s", v->error);
        (*b->c.rejected)++;
        answer(bt->b, &bt->votes[i], QM_STATUS_FAILED_PRECONDITION, msg, now);
      }
    }
    qm_pb_arena_release(arena, &r->base);
    if (!again) {
      free(bt->packed);
      free(bt);
    } else if (!retry_later(bt, now)) {
      fail_all(bt, QM_STATUS_UNAVAILABLE, "the auditor kept refusing it");
    }
  }
  if (may_send(b)) flush(b); /* what gathered meanwhile goes now */
}

static void send_batch(struct batch *bt) {
  struct qm_batcher *b = bt->b;
  int rc = qm_channel_call(b->auditor, b->method, bt->packed, bt->packed_len, NULL, 0, QM_REPORT_TIMEOUT_MS, 1,
                           on_reply, bt);
  if (rc) {
    fail_all(bt, QM_STATUS_UNAVAILABLE, rc == -ENOBUFS ? "queue to the auditor is full" : "cannot reach the auditor");
    return;
  }
  b->inflight++;
}

/* sign_batch: one signature over the Merkle root of the pending votes; each vote is packed
 * with its own proof, straight into |bt->packed|. */
static int sign_batch(struct qm_batcher *b, struct batch *bt) {
  size_t n = bt->n;
  for (size_t i = 0; i < n; i++) qm_merkle_leaf(b->bytes + bt->votes[i].off, bt->votes[i].len, b->leaves[i]);
  uint8_t root[32], msg[QM_BATCH_SIGNED_LEN], sig[QM_SIG_LEN];
  if (qm_merkle_proofs((const uint8_t(*)[32])b->leaves, n, b->proofs, b->nproof, root)) return -EIO;
  qm_merkle_signed_bytes(root, (uint32_t)n, msg);
  if (qm_sign(b->key, msg, sizeof msg, sig)) return -EIO;
  struct qm_signed_vote_fields v = {.signature = sig,
                                    .signature_len = sizeof sig,
                                    .key_id = b->key_id,
                                    .key_id_len = b->key_id_len,
                                    .leaf_count = (uint32_t)n};
  size_t total = 0;
  for (size_t i = 0; i < n; i++) {
    v.outcome_len = bt->votes[i].len;
    v.nproof = (size_t)b->nproof[i];
    v.leaf_index = (uint32_t)i;
    total += qm_batch_vote_wire_len(&v);
  }
  uint8_t *p = bt->packed = malloc(total ? total : 1);
  if (!p) return -ENOMEM;
  for (size_t i = 0; i < n; i++) {
    v.outcome = b->bytes + bt->votes[i].off;
    v.outcome_len = bt->votes[i].len;
    v.proof = (const uint8_t(*)[32])b->proofs[i];
    v.nproof = (size_t)b->nproof[i];
    v.leaf_index = (uint32_t)i;
    p = qm_batch_vote_wire_put(&v, p);
  }
  bt->packed_len = total;
  (*b->c.batches)++;
  return 0;
}

static void flush(struct qm_batcher *b) {
  if (!b->npending) return;
  struct batch *bt = calloc(1, sizeof *bt + b->npending * sizeof bt->votes[0]);
  if (!bt) return; /* out of memory: the votes wait for the next tick */
  memcpy(bt->votes, b->pending, b->npending * sizeof bt->votes[0]);
  bt->b = b;
  bt->n = b->npending;
  bt->first_ns = qm_mono_ns();
  b->npending = 0;
  int rc = sign_batch(b, bt);
  b->nbytes = 0; /* the Outcome bytes are in the packed batch now (or lost with it) */
  if (b->cap_bytes > QM_BATCH_BYTES_MAX) { /* grown for one outsized vote: give it back */
    free(b->bytes);
    b->bytes = NULL;
    b->cap_bytes = 0;
  }
  if (rc) {
    fail_all(bt, QM_STATUS_INTERNAL, rc == -EIO ? "signing failed" : "out of memory");
    return;
  }
  send_batch(bt);
}

/* reserve: room for |len| more Outcome bytes. */
static int reserve(struct qm_batcher *b, size_t len) {
  if (len <= b->cap_bytes - b->nbytes) return 0;
  size_t cap = b->cap_bytes ? b->cap_bytes : 64 << 10;
  while (cap - b->nbytes < len) {
    if (cap > SIZE_MAX / 2) return -ENOMEM;
    cap *= 2;
  }
  uint8_t *grown = realloc(b->bytes, cap);
  if (!grown) return -ENOMEM;
  b->bytes = grown;
  b->cap_bytes = cap;
  return 0;
}

int qm_batcher_add(struct qm_batcher *b, const uint8_t *outcome, size_t len, qm_vote_done_fn done, void *arg) {
  if (b->npending == QM_BATCH_MAX || (b->npending && b->nbytes + len > QM_BATCH_BYTES_MAX)) flush(b);
  if (b->npending == QM_BATCH_MAX || reserve(b, len)) return -ENOMEM;
  if (len) memcpy(b->bytes + b->nbytes, outcome, len);
  b->pending[b->npending++] = (struct vote){done, arg, qm_mono_ns(), b->nbytes, len, 0};
  b->nbytes += len;
  if (may_send(b) || b->npending == QM_BATCH_MAX) flush(b);
  return 0;
}

void qm_batcher_hold(struct qm_batcher *b) { b->hold++; }

void qm_batcher_release(struct qm_batcher *b) {
  if (b->hold) b->hold--;
  if (b->npending && may_send(b)) flush(b);
}

void qm_batcher_tick(struct qm_batcher *b, int stopping) {
  int64_t now = qm_mono_ns();
  struct batch **link = &b->waiting;
  while (*link) {
    struct batch *bt = *link;
    if (bt->due_ns <= now || stopping) {
      *link = bt->next_due;
      send_batch(bt); /* stopping: one last try, then the calls get their answer either way */
    } else {
      link = &bt->next_due;
    }
  }
  if (b->npending && (may_send(b) || stopping)) flush(b);
}

size_t qm_batcher_pending(const struct qm_batcher *b) { return b->npending; }
unsigned qm_batcher_inflight(const struct qm_batcher *b) { return b->inflight; }

void qm_batcher_free(struct qm_batcher *b) {
  if (!b) return;
  while (b->waiting) {
    struct batch *bt = b->waiting;
    b->waiting = bt->next_due;
    free(bt->packed);
    free(bt);
  }
  free(b->bytes);
  free(b->leaves);
  free(b->proofs);
  free(b->nproof);
  free(b);
}
