/* batcher.c: Merkle-signed vote batches from a provider to the auditor. */
#include "batcher.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "merkle.h"
#include "qmesh/v1/qmesh.pb-c.h"

#define QM_REPORT_TIMEOUT_MS 10000
#define QM_RETRY_WINDOW_MS 60000 /* keep offering signed votes to an absent auditor this long */
#define QM_BACKOFF_MAX_MS 1000

struct vote {
  uint8_t *outcome;
  size_t len;
  qm_vote_done_fn done;
  void *arg;
  int answered; /* done() ran: a resent batch skips this vote's reply */
  int64_t added_ns;
};

struct batch {
  struct qm_batcher *b;
  struct vote *votes;
  size_t n;
  uint8_t *packed; /* the SignedOutcomeBatch, kept for resends */
  size_t packed_len;
  unsigned attempts;
  int64_t first_ns, due_ns;
  struct batch *next_due;
};

struct qm_batcher {
  struct qm_channel *auditor;
  void *method;
  const char *key_id;
  const struct qm_key *key;
  struct qm_batcher_counters c;
  struct vote pending[QM_BATCH_MAX];
  size_t npending;
  unsigned inflight;
  struct batch *waiting;
};

int qm_batcher_new(struct qm_channel *auditor, const char *key_id, const struct qm_key *key,
                   const struct qm_batcher_counters *counters, struct qm_batcher **out) {
  struct qm_batcher *b = calloc(1, sizeof *b);
  if (!b) return -ENOMEM;
  b->auditor = auditor;
  b->method = qm_channel_method(auditor, "/qmesh.v1.Auditor/ReportBatch");
  b->key_id = key_id;
  b->key = key;
  b->c = *counters;
  *out = b;
  return 0;
}

static void batch_free(struct batch *bt) {
  for (size_t i = 0; i < bt->n; i++) free(bt->votes[i].outcome);
  free(bt->votes);
  free(bt->packed);
  free(bt);
}

static void answer(struct qm_batcher *b, struct vote *v, int status, const char *why) {
  if (v->answered) return;
  v->answered = 1;
  if (b->c.latency) qm_hist_observe_ns(b->c.latency, qm_mono_ns() - v->added_ns);
  v->done(v->arg, status, why);
}

static void fail_all(struct batch *bt, int status, const char *why) {
  char msg[400];
  snprintf(msg, sizeof msg, "provider %s: the auditor did not take the vote: %s", bt->b->key_id, why);
  for (size_t i = 0; i < bt->n; i++) {
    if (!bt->votes[i].answered) (*bt->b->c.failed)++;
    answer(bt->b, &bt->votes[i], status, msg);
  }
  batch_free(bt);
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

static void send_batch(struct batch *bt);
static void flush(struct qm_batcher *b);

static void on_reply(void *arg, int status, const char *details, const uint8_t *resp, size_t len) {
  struct batch *bt = arg;
  struct qm_batcher *b = bt->b;
  b->inflight--;
  int64_t now = qm_mono_ns();
  /* The auditor is away: the votes are signed and must not be lost. Resending is
   * idempotent: the auditor counts a (request, provider) vote once. */
  if ((status == QM_STATUS_UNAVAILABLE || status == QM_STATUS_DEADLINE_EXCEEDED) && retry_later(bt, now)) return;
  Qmesh__V1__ReportBatchReply *r =
      status == QM_STATUS_OK ? qmesh__v1__report_batch_reply__unpack(NULL, len, resp) : NULL;
  if (!r || r->n_replies != bt->n) {
    char why[300];
    snprintf(why, sizeof why, "%s: %s", qm_status_name(status), r ? "reply does not match the batch" : details);
    if (r) qmesh__v1__report_batch_reply__free_unpacked(r, NULL);
    fail_all(bt, QM_STATUS_UNAVAILABLE, why);
  } else {
    int again = 0;
    for (size_t i = 0; i < bt->n; i++) {
      const Qmesh__V1__ReportReply *v = r->replies[i];
      if (bt->votes[i].answered) continue;
      if (v->result != QMESH__V1__REPORT_REPLY__RESULT__REJECTED) {
        (*b->c.reported)++;
        answer(bt->b, &bt->votes[i], QM_STATUS_OK, "");
      } else if (retryable((int)v->code)) {
        again = 1; /* not taken yet (log failure, pending table full): send it again */
      } else {
        char msg[300];
        snprintf(msg, sizeof msg, "the auditor refused the vote: %s", v->error);
        (*b->c.rejected)++;
        answer(bt->b, &bt->votes[i], QM_STATUS_FAILED_PRECONDITION, msg);
      }
    }
    qmesh__v1__report_batch_reply__free_unpacked(r, NULL);
    if (!again) batch_free(bt);
    else if (!retry_later(bt, now)) fail_all(bt, QM_STATUS_UNAVAILABLE, "the auditor kept refusing it");
  }
  flush(b); /* what gathered meanwhile goes now */
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

/* sign_batch: one signature over the Merkle root; each vote carries its proof. */
static int sign_batch(struct qm_batcher *b, struct batch *bt) {
  size_t n = bt->n;
  int rc = -ENOMEM;
  uint8_t (*leaves)[32] = malloc(n * 32);
  uint8_t (*proofs)[QM_MERKLE_DEPTH_MAX][32] = malloc(n * sizeof *proofs);
  int *nproof = malloc(n * sizeof *nproof);
  Qmesh__V1__SignedOutcome *so = calloc(n, sizeof *so);
  Qmesh__V1__SignedOutcome **sop = calloc(n, sizeof *sop);
  ProtobufCBinaryData *pd = calloc(n * QM_MERKLE_DEPTH_MAX, sizeof *pd);
  if (!leaves || !proofs || !nproof || !so || !sop || !pd) goto out;
  for (size_t i = 0; i < n; i++) qm_merkle_leaf(bt->votes[i].outcome, bt->votes[i].len, leaves[i]);
  uint8_t root[32], msg[QM_BATCH_SIGNED_LEN], sig[QM_SIG_LEN];
  qm_merkle_proofs((const uint8_t(*)[32])leaves, n, proofs, nproof, root);
  qm_merkle_signed_bytes(root, (uint32_t)n, msg);
  if (qm_sign(b->key, msg, sizeof msg, sig)) {
    rc = -EIO;
    goto out;
  }
  for (size_t i = 0; i < n; i++) {
    int np = nproof[i];
    qmesh__v1__signed_outcome__init(&so[i]);
    so[i].outcome.data = bt->votes[i].outcome;
    so[i].outcome.len = bt->votes[i].len;
    so[i].signature.data = sig;
    so[i].signature.len = sizeof sig;
    so[i].key_id = (char *)b->key_id;
    so[i].leaf_index = (uint32_t)i;
    so[i].leaf_count = (uint32_t)n;
    so[i].n_proof = (size_t)np;
    so[i].proof = &pd[i * QM_MERKLE_DEPTH_MAX];
    for (int k = 0; k < np; k++) {
      so[i].proof[k].data = proofs[i][k];
      so[i].proof[k].len = 32;
    }
    sop[i] = &so[i];
  }
  Qmesh__V1__SignedOutcomeBatch msgb = QMESH__V1__SIGNED_OUTCOME_BATCH__INIT;
  msgb.n_votes = n;
  msgb.votes = sop;
  bt->packed_len = qmesh__v1__signed_outcome_batch__get_packed_size(&msgb);
  bt->packed = malloc(bt->packed_len ? bt->packed_len : 1);
  if (!bt->packed) goto out;
  qmesh__v1__signed_outcome_batch__pack(&msgb, bt->packed);
  (*b->c.batches)++;
  rc = 0;
out:
  free(leaves);
  free(proofs);
  free(nproof);
  free(so);
  free(sop);
  free(pd);
  return rc;
}

static void flush(struct qm_batcher *b) {
  if (!b->npending) return;
  struct batch *bt = calloc(1, sizeof *bt);
  struct vote *votes = bt ? malloc(b->npending * sizeof *votes) : NULL;
  if (!votes) {
    free(bt);
    return; /* out of memory: the votes wait for the next tick */
  }
  memcpy(votes, b->pending, b->npending * sizeof *votes);
  bt->b = b;
  bt->votes = votes;
  bt->n = b->npending;
  bt->first_ns = qm_mono_ns();
  b->npending = 0;
  int rc = sign_batch(b, bt);
  if (rc) {
    fail_all(bt, QM_STATUS_INTERNAL, rc == -EIO ? "signing failed" : "out of memory");
    return;
  }
  send_batch(bt);
}

int qm_batcher_add(struct qm_batcher *b, const uint8_t *outcome, size_t len, qm_vote_done_fn done, void *arg) {
  if (b->npending == QM_BATCH_MAX) flush(b);
  if (b->npending == QM_BATCH_MAX) return -ENOMEM;
  uint8_t *copy = malloc(len ? len : 1);
  if (!copy) return -ENOMEM;
  memcpy(copy, outcome, len);
  b->pending[b->npending++] = (struct vote){copy, len, done, arg, 0, qm_mono_ns()};
  /* Nagle-like: alone, a vote goes at once (low latency); under load, votes gather while
   * batches are in flight and share one signature. */
  if (b->inflight < QM_BATCHES_IN_FLIGHT || b->npending == QM_BATCH_MAX) flush(b);
  return 0;
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
  if (b->npending && (b->inflight < QM_BATCHES_IN_FLIGHT || stopping)) flush(b);
}

size_t qm_batcher_pending(const struct qm_batcher *b) { return b->npending; }
unsigned qm_batcher_inflight(const struct qm_batcher *b) { return b->inflight; }

void qm_batcher_free(struct qm_batcher *b) {
  if (!b) return;
  for (size_t i = 0; i < b->npending; i++) free(b->pending[i].outcome);
  while (b->waiting) {
    struct batch *bt = b->waiting;
    b->waiting = bt->next_due;
    batch_free(bt);
  }
  free(b);
}
