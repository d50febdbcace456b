/* requester.c: the stream of requests, sent with bounded concurrency and region failover. */
#include "requester.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "latency.h"
#include "qmesh/v1/qmesh.pb-c.h"
#include "rpc.h"

#define QM_BUSY_RETRIES 200        /* RESOURCE_EXHAUSTED retries per request */
#define QM_BUSY_BACKOFF_MAX_MS 200 /* backoff doubles from 2 ms up to this */
/* SubmitBatch calls in flight per front before requests wait for the next: enough that the
 * requester does not hold requests back; the front batches for the internal hops. */
#define QM_REQUESTER_BATCHES_IN_FLIGHT 8

struct slot {
  struct run *run;
  struct slot *next_idle; /* paced: waiting for its next request's due time */
  struct qm_stream_item item;
  size_t region;     /* region tried now */
  unsigned attempts; /* regions tried for this request */
  unsigned busy;     /* RESOURCE_EXHAUSTED answers so far */
  int64_t due_ns;    /* when a backed-off retry is due */
  int64_t submit_ns; /* first submit of this request (monotonic), for opts.latency */
  struct slot *next_due;
};

struct run {
  const struct qm_requester_opts *o;
  struct qm_requester_result *res;
  struct qm_loop *loop;
  size_t nregions;
  struct qm_channel **fronts;
  void **submit;
  struct qm_stream stream;
  size_t shift;        /* regions moved past after failures */
  uint64_t issued, done;
  int64_t next_progress;
  struct slot *waiting; /* backed-off retries */
  struct slot *idle;    /* paced: slots free until the next request is due */
  int gathering;        /* paced, batch mode: inside the pacing tick, requests only gather */
  int64_t start_ns;     /* paced: when request 0 was due (monotonic) */
  struct outbox *out;   /* batch mode: per region */
  void **submit_batch;
};

/* Batch mode: the requests waiting for the next SubmitBatch to one front. */
struct outbox {
  struct slot **items;
  size_t n;
  unsigned inflight;
};

struct batch_call {
  struct run *run;
  size_t region;
  struct slot **items;
  size_t n;
};

static void issue_next(struct run *r, struct slot *s);

static size_t region_of(const struct run *r, uint64_t index) {
  size_t base = (index < r->res->failover_at || r->nregions == 1) ? 0 : 1;
  return (base + r->shift) % r->nregions;
}

static void send_slot(struct run *r, struct slot *s);

/* slot_done: one attempt of one request ended with |status|. */
static void slot_done(struct slot *s, int status, const char *details) {
  struct run *r = s->run;
  if (status == QM_STATUS_OK) {
    r->res->accepted++;
    r->res->per_region[s->region]++;
    r->res->last_ack_ns = qm_now_ns();
    if (r->o->latency) qm_latency_record(r->o->latency, qm_mono_ns() - s->submit_ns);
  } else if ((status == QM_STATUS_UNAVAILABLE || status == QM_STATUS_DEADLINE_EXCEEDED) &&
             s->attempts < r->nregions) {
    /* The front is unreachable: move this requester to the next region and resend. */
    snprintf(r->res->last_error, sizeof r->res->last_error, "%s: %s: %s", qm_channel_target(r->fronts[s->region]),
             qm_status_name(status), details);
    if (region_of(r, s->item.index) == s->region) {
      r->shift++;
      r->res->failovers++;
    }
    s->region = region_of(r, s->item.index);
    s->attempts++;
    r->res->resent++;
    send_slot(r, s);
    return;
  } else if (status == QM_STATUS_RESOURCE_EXHAUSTED && s->busy < QM_BUSY_RETRIES) {
    /* Backpressure: the mesh refused visibly; wait and send the same request again. */
    unsigned backoff = 2u << (s->busy < 7 ? s->busy : 7);
    if (backoff > QM_BUSY_BACKOFF_MAX_MS) backoff = QM_BUSY_BACKOFF_MAX_MS;
    s->busy++;
    r->res->retried_busy++;
    s->due_ns = qm_mono_ns() + (int64_t)backoff * 1000000;
    s->next_due = r->waiting;
    r->waiting = s;
    return;
  } else {
    snprintf(r->res->last_error, sizeof r->res->last_error, "request %" PRIu64 ": %s: %s", s->item.index,
             qm_status_name(status), details);
    if (status == QM_STATUS_UNAVAILABLE || status == QM_STATUS_DEADLINE_EXCEEDED) r->res->failed++;
    else r->res->refused++;
  }
  r->done++;
  issue_next(r, s);
}

static void on_reply(void *arg, int status, const char *details, const uint8_t *resp, size_t len) {
  (void)resp;
  (void)len;
  slot_done(arg, status, details);
}

static void flush_region(struct run *r, size_t region);

static void on_batch_reply(void *arg, int status, const char *details, const uint8_t *resp, size_t len) {
  struct batch_call *bc = arg;
  struct run *r = bc->run;
  size_t region = bc->region;
  Qmesh__V1__BatchReply *rep = status == QM_STATUS_OK ? qmesh__v1__batch_reply__unpack(NULL, len, resp) : NULL;
  if (status == QM_STATUS_OK && (!rep || rep->n_items != bc->n)) {
    status = QM_STATUS_INTERNAL;
    details = "the front's SubmitBatch reply does not match the batch";
  }
  r->out[bc->region].inflight--;
  for (size_t i = 0; i < bc->n; i++) {
    if (status != QM_STATUS_OK) slot_done(bc->items[i], status, details);
    else slot_done(bc->items[i], (int)rep->items[i]->code, rep->items[i]->message);
  }
  if (rep) qmesh__v1__batch_reply__free_unpacked(rep, NULL);
  free(bc->items);
  free(bc);
  flush_region(r, region); /* what gathered meanwhile goes now */
}

/* flush_region: up to opts.batch of the requests waiting for |region|'s front as one
 * SubmitBatch. Out of memory: they keep waiting (the retry tick flushes again). */
static void flush_region(struct run *r, size_t region) {
  struct outbox *ob = &r->out[region];
  size_t n = ob->n < r->o->batch ? ob->n : r->o->batch;
  if (!n) return;
  struct batch_call *bc = calloc(1, sizeof *bc);
  Qmesh__V1__SubmitItem *items = malloc(n * sizeof *items);
  Qmesh__V1__SubmitItem **ptrs = malloc(n * sizeof *ptrs);
  uint8_t *buf = NULL;
  if (bc) bc->items = malloc(n * sizeof *bc->items);
  if (!bc || !bc->items || !items || !ptrs) goto out;
  for (size_t i = 0; i < n; i++) {
    const struct qm_stream_item *it = &ob->items[i]->item;
    qmesh__v1__submit_item__init(&items[i]);
    items[i].payload.data = (uint8_t *)it->payload;
    items[i].payload.len = it->payload_len;
    items[i].verification_context = (char *)it->context;
    items[i].domain = (char *)it->domain;
    items[i].sequence = it->index;
    items[i].has_sequence = 1;
    ptrs[i] = &items[i];
  }
  Qmesh__V1__SubmitBatchRequest req = QMESH__V1__SUBMIT_BATCH_REQUEST__INIT;
  req.n_items = n;
  req.items = ptrs;
  size_t len = qmesh__v1__submit_batch_request__get_packed_size(&req);
  if (!(buf = malloc(len))) goto out;
  qmesh__v1__submit_batch_request__pack(&req, buf);
  memcpy(bc->items, ob->items, n * sizeof *bc->items);
  memmove(ob->items, ob->items + n, (ob->n - n) * sizeof *ob->items);
  ob->n -= n;
  bc->n = n;
  bc->run = r;
  bc->region = region;
  unsigned timeout = r->o->timeout_ms ? r->o->timeout_ms : 10000;
  r->res->calls++;
  if (qm_channel_call(r->fronts[region], r->submit_batch[region], buf, len, NULL, 0, timeout, 0, on_batch_reply,
                      bc) == 0) {
    ob->inflight++;
  } else { /* this attempt failed for each of them (they may fail over) */
    for (size_t i = 0; i < n; i++) slot_done(bc->items[i], QM_STATUS_UNAVAILABLE, "cannot start the call");
    free(bc->items);
    free(bc);
  }
  bc = NULL;
out:
  if (bc) free(bc->items);
  free(bc);
  free(items);
  free(ptrs);
  free(buf);
}

static void send_slot(struct run *r, struct slot *s) {
  if (r->o->batch) {
    struct outbox *ob = &r->out[s->region];
    ob->items[ob->n++] = s; /* room: each slot waits in at most one outbox */
    if (r->gathering && ob->n < r->o->batch) return; /* the pacing tick flushes once at its end */
    while (ob->n && (ob->n >= r->o->batch || ob->inflight < QM_REQUESTER_BATCHES_IN_FLIGHT)) {
      size_t before = ob->n;
      flush_region(r, s->region);
      if (ob->n >= before) break; /* out of memory: the tick tries again */
    }
    return;
  }
  r->res->calls++;
  char seq[24];

  snprintf(seq, sizeof seq, "%" PRIu64, s->item.index);
  struct qm_rpc_md md[3] = {
      {"x-verification-context", s->item.context, strlen(s->item.context)},
      {"x-domain", s->item.domain, strlen(s->item.domain)},
      {"x-request-seq", seq, strlen(seq)},
  };
  Qmesh__V1__SubmitRequest req = QMESH__V1__SUBMIT_REQUEST__INIT;
  req.payload.data = (uint8_t *)s->item.payload;
  req.payload.len = s->item.payload_len;
  uint8_t buf[64];
  size_t n = qmesh__v1__submit_request__pack(&req, buf);
  /* Not wait-for-ready: an unreachable front must fail fast so we can fail over. */
  unsigned timeout = r->o->timeout_ms ? r->o->timeout_ms : 10000;
  if (qm_channel_call(r->fronts[s->region], r->submit[s->region], buf, n, md, 3, timeout, 0, on_reply, s))
    on_reply(s, QM_STATUS_UNAVAILABLE, "cannot start the call", NULL, 0);
}

/* due_ns: paced: when request |i| is due (monotonic). */
static int64_t due_ns(const struct run *r, uint64_t i) { return r->start_ns + (int64_t)((double)i * 1e9 / r->o->rate); }

static void issue_next(struct run *r, struct slot *s) {
  if (r->issued == r->res->sent) {
    free(s);
    if (r->done == r->res->sent) qm_loop_stop(r->loop, 0);
    return;
  }
  int64_t now = qm_mono_ns();
  if (r->o->rate > 0 && due_ns(r, r->issued) > now) {
    s->next_idle = r->idle; /* not due yet: the pacing tick sends it */
    r->idle = s;
    return;
  }
  qm_stream_next(&r->stream, &s->item);
  s->region = region_of(r, s->item.index);
  s->attempts = 1;
  s->busy = 0;
  int64_t wall = qm_now_ns();
  if (!r->res->first_submit_ns) r->res->first_submit_ns = wall;
  if (r->o->submit_times && s->item.index < r->res->sent) r->o->submit_times[s->item.index] = wall;
  s->submit_ns = now;
  if (r->o->rate > 0) {
    /* How far this load generator lags its own schedule (tick granularity, CPU, or every
     * slot busy), reported beside the latency so a lagging run cannot pass unnoticed. */
    int64_t lag = now - due_ns(r, r->issued);
    if (lag > 1000000) r->res->behind++;
    if (lag > r->res->lag_max_ns) r->res->lag_max_ns = lag;
  }
  r->issued++;
  send_slot(r, s);
}

/* flush_ready: every front's waiting requests that may leave now. */
static void flush_ready(struct run *r) {
  if (r->o->batch)
    for (size_t i = 0; i < r->nregions; i++)
      if (r->out[i].n && r->out[i].inflight < QM_REQUESTER_BATCHES_IN_FLIGHT) flush_region(r, i);
}

static void on_pace_tick(void *arg) {
  struct run *r = arg;
  r->gathering = 1; /* what fell due since the last tick leaves as one SubmitBatch per front */
  while (r->idle && r->issued < r->res->sent && due_ns(r, r->issued) <= qm_mono_ns()) {
    struct slot *s = r->idle;
    r->idle = s->next_idle;
    issue_next(r, s);
  }
  r->gathering = 0;
  flush_ready(r);
}

static void on_retry_tick(void *arg) {
  struct run *r = arg;
  flush_ready(r); /* what out of memory held back */
  int64_t now = qm_mono_ns();
  struct slot **link = &r->waiting;
  while (*link) {
    struct slot *s = *link;
    if (s->due_ns <= now) {
      *link = s->next_due;
      send_slot(r, s);
    } else {
      link = &s->next_due;
    }
  }
}

static void on_tick(void *arg) {
  struct run *r = arg;
  if (r->o->cancel && *r->o->cancel) qm_loop_stop(r->loop, 0);
  if (!r->o->progress) return;
  int64_t now = qm_mono_ns();
  if (now < r->next_progress) return;
  r->next_progress = now + 500000000;
  fprintf(stderr, "\rrequests: %" PRIu64 "/%" PRIu64 " done, %" PRIu64 " accepted, %" PRIu64 " failovers   ",
          r->done, r->res->sent, r->res->accepted, r->res->failovers);
}

int qm_requester_run(const struct qm_requester_opts *o, struct qm_requester_result *res, struct qm_err *err) {
  const struct qm_topology *t = o->topo;
  struct run r = {.o = o, .res = res, .nregions = t->nregions};
  memset(res, 0, sizeof *res);
  int rc = qm_stream_init(&r.stream, t, o->clock_seed_ns, err);
  if (rc) return rc;
  res->byz = r.stream.byz;
  res->sent = t->total_requests;
  res->failover_at = t->failover_at >= 0 ? (uint64_t)t->failover_at
                                         : (t->total_requests / 2 > 1 ? t->total_requests / 2 : 1);
  res->per_region = calloc(t->nregions, sizeof *res->per_region);
  r.fronts = calloc(t->nregions, sizeof *r.fronts);
  r.submit = calloc(t->nregions, sizeof *r.submit);
  r.submit_batch = calloc(t->nregions, sizeof *r.submit_batch);
  r.out = calloc(t->nregions, sizeof *r.out);
  unsigned c = o->concurrency ? o->concurrency : 1;
  int outboxes_ok = 1;
  for (size_t i = 0; r.out && o->batch && i < t->nregions; i++)
    if (!(r.out[i].items = malloc(c * sizeof *r.out[i].items))) outboxes_ok = 0;
  if (!res->per_region || !r.fronts || !r.submit || !r.submit_batch || !r.out || !outboxes_ok) {
    rc = qm_err_set(err, -ENOMEM, "out of memory");
    goto cleanup;
  }
  rc = qm_loop_new(&r.loop);
  if (rc) {
    qm_err_set(err, rc, "cannot create the event loop");
    goto cleanup;
  }
  for (size_t i = 0; i < t->nregions; i++) {
    rc = qm_channel_new(r.loop, t->regions[i].front.advertise, t->regions[i].front.id, &r.fronts[i], err);
    if (rc) goto cleanup;
    r.submit[i] = qm_channel_method(r.fronts[i], "/qmesh.v1.Front/Submit");
    r.submit_batch[i] = qm_channel_method(r.fronts[i], "/qmesh.v1.Front/SubmitBatch");
  }
  qm_loop_add_tick(r.loop, 100, on_tick, &r);
  qm_loop_add_tick(r.loop, 2, on_retry_tick, &r);
  if (o->rate > 0) qm_loop_add_tick(r.loop, 1, on_pace_tick, &r);
  r.start_ns = qm_mono_ns();
  if (res->sent == 0) {
    qm_loop_stop(r.loop, 0);
  } else {
    for (unsigned i = 0; i < c && r.issued < res->sent; i++) {
      struct slot *s = calloc(1, sizeof *s);
      if (!s) {
        rc = qm_err_set(err, -ENOMEM, "out of memory");
        break;
      }
      s->run = &r;
      issue_next(&r, s);
    }
    if (rc && r.issued == 0) qm_loop_stop(r.loop, 0);
  }
  qm_loop_run(r.loop);
  while (r.waiting) { /* stopped early (cancel): the backed-off slots never completed */
    struct slot *s = r.waiting;
    r.waiting = s->next_due;
    free(s);
  }
  for (size_t i = 0; r.out && i < t->nregions; i++) /* batch mode: stopped early */
    for (size_t j = 0; j < r.out[i].n; j++) free(r.out[i].items[j]);
  while (r.idle) { /* paced slots left when stopped early */
    struct slot *s = r.idle;
    r.idle = s->next_idle;
    free(s);
  }
  if (o->progress) fprintf(stderr, "\r%70s\r", "");
cleanup:
  if (r.fronts)
    for (size_t i = 0; i < t->nregions; i++) qm_channel_free(r.fronts[i]);
  free(r.fronts);
  free(r.submit);
  free(r.submit_batch);
  for (size_t i = 0; r.out && i < t->nregions; i++) free(r.out[i].items);
  free(r.out);
  qm_loop_free(r.loop);
  return rc;
}

void qm_requester_result_free(struct qm_requester_result *res) {
  free(res->per_region);
  res->per_region = NULL;
}
