/* front.c: the regional front ("NUVL"): hashes the request bytes, wraps the opaque metadata
 * in an Artifact, forwards it to its region's hub, answers a constant empty success. It
 * holds no key and never sees an outcome. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "qmesh/v1/qmesh.pb-c.h"
#include "roles.h"
#include "text.h"

struct pending;

struct front {
  struct qm_role *role;
  const struct qm_topology *topo;
  struct qm_channel *hub;
  void *relay_batch;
  struct pending *pending; /* artifacts waiting for the next batch */
  size_t npending;
  size_t outstanding;      /* requests accepted and not yet answered: bounded by POST_QUEUE_MAX */
  unsigned inflight_batches;
  int admitting; /* a SubmitBatch is being admitted: its items leave together, after the loop */
  struct qm_hist *latency; /* accept -> the hub's answer */
  uint64_t *batches, *accepted, *forwarded, *refused_full, *refused_invalid, *hub_failed, *no_seq;
};

#define QM_FRONT_BATCH_MAX 256     /* artifacts per RelayBatch */
/* Send at once while fewer are in flight (Nagle-like); what arrives meanwhile makes the next
 * batch. Measured at 10,000 requests/s offered, 10 runs of each interleaved
 * (docs/BENCHMARKS.md): with 2, p99 submit->decision at or under 10 ms in 8 runs (~12
 * requests per relay, ~170 us of CPU per request); with 1, in 5 (~20 per relay, ~140 us):
 * the CPUs then sit idle a quarter of the time and this VM's hypervisor takes longer to give
 * an idle vCPU back. */
#define QM_FRONT_BATCHES_IN_FLIGHT 2
#define QM_SUBMIT_BATCH_MAX 4096     /* items per SubmitBatch call */
/* Batches leave on arrival or on a hub reply; the tick only retries one that could not be
 * built (out of memory), so it need not wake an idle front often. */
#define QM_FRONT_RETRY_MS 50

/* A SubmitBatch call being answered item by item: it replies once every item has its status. */
struct submit_batch {
  struct qm_call *call;
  Qmesh__V1__ItemStatus *items;
  Qmesh__V1__ItemStatus **ptrs;
  char **messages; /* malloc'd messages of failed items */
  size_t n, left;
};

/* A request waiting for its batch, then for the hub's answer: either a Submit call or one
 * item of a SubmitBatch call. */
struct pending {
  struct qm_call *call;       /* Submit; NULL for a batch item */
  struct submit_batch *batch; /* SubmitBatch */
  size_t index;               /* the item's place in |batch| */
  uint8_t *artifact;
  size_t len;
  int64_t accepted_ns; /* monotonic: for the submit latency histogram */
};

struct relay_batch {
  struct front *f;
  struct pending *items;
  size_t n;
};

static void batch_item_done(struct submit_batch *b, size_t i, int status, const char *message);

/* answer: the end of one request: the constant success, or why the hub did not take it. */
static void answer(struct front *f, const struct pending *p, int status, const char *why) {
  char msg[400];
  if (status == QM_STATUS_OK) (*f->forwarded)++;
  else (*f->hub_failed)++;
  if (status != QM_STATUS_OK) {
    snprintf(msg, sizeof msg, "hub %s did not take the request: %s", qm_channel_target(f->hub), why);
    status = QM_STATUS_UNAVAILABLE;
  }
  if (p->batch) {
    batch_item_done(p->batch, p->index, status, status == QM_STATUS_OK ? "" : msg);
  } else if (status == QM_STATUS_OK) {
    /* The constant reply: the same empty message for every accepted request. */
    qm_call_reply(p->call, NULL, 0);
  } else {
    qm_call_fail(p->call, status, "%s", msg);
  }
}

static void flush(struct front *f);

static void on_hub_reply(void *arg, int status, const char *details, const uint8_t *resp, size_t len) {
  struct relay_batch *rb = arg;
  struct front *f = rb->f;
  Qmesh__V1__BatchReply *r = status == QM_STATUS_OK ? qmesh__v1__batch_reply__unpack(NULL, len, resp) : NULL;
  char why[300];
  if (status == QM_STATUS_OK && (!r || r->n_items != rb->n)) {
    status = QM_STATUS_INTERNAL;
    details = "the hub's reply does not match the batch";
  }
  snprintf(why, sizeof why, "%s: %s", qm_status_name(status), details);
  int64_t now = qm_mono_ns();
  for (size_t i = 0; i < rb->n; i++) {
    if (f->latency) qm_hist_observe_ns(f->latency, now - rb->items[i].accepted_ns);
    if (status != QM_STATUS_OK) answer(f, &rb->items[i], status, why);
    else answer(f, &rb->items[i], (int)r->items[i]->code, r->items[i]->message);
    free(rb->items[i].artifact);
  }
  if (r) qmesh__v1__batch_reply__free_unpacked(r, NULL);
  f->inflight_batches--;
  f->outstanding -= rb->n;
  free(rb->items);
  free(rb);
  flush(f); /* what gathered meanwhile goes now */
}

/* flush: the waiting artifacts as one RelayBatch (their bytes unchanged inside it). */
static void flush(struct front *f) {
  if (!f->npending) return;
  struct relay_batch *rb = malloc(sizeof *rb);
  ProtobufCBinaryData *arts = malloc(f->npending * sizeof *arts);
  uint8_t *buf = NULL;
  if (!rb || !arts) goto oom;
  Qmesh__V1__ArtifactBatch msg = QMESH__V1__ARTIFACT_BATCH__INIT;
  for (size_t i = 0; i < f->npending; i++) {
    arts[i].data = f->pending[i].artifact;
    arts[i].len = f->pending[i].len;
  }
  msg.n_artifacts = f->npending;
  msg.artifacts = arts;
  size_t len = qmesh__v1__artifact_batch__get_packed_size(&msg);
  buf = malloc(len ? len : 1);
  rb->items = malloc(f->npending * sizeof *rb->items);
  if (!buf || !rb->items) goto oom;
  qmesh__v1__artifact_batch__pack(&msg, buf);
  memcpy(rb->items, f->pending, f->npending * sizeof *rb->items);
  rb->n = f->npending;
  rb->f = f;
  f->npending = 0;
  int rc = qm_channel_call(f->hub, f->relay_batch, buf, len, NULL, 0, QM_HOP_TIMEOUT_MS, 1, on_hub_reply, rb);
  if (rc) {
    int64_t now = qm_mono_ns();
    for (size_t i = 0; i < rb->n; i++) {
      if (f->latency) qm_hist_observe_ns(f->latency, now - rb->items[i].accepted_ns);
      answer(f, &rb->items[i], QM_STATUS_UNAVAILABLE, rc == -ENOBUFS ? "queue full" : "cannot start the call");
      free(rb->items[i].artifact);
    }
    f->outstanding -= rb->n;
    free(rb->items);
    free(rb);
  } else {
    f->inflight_batches++;
  }
  free(arts);
  free(buf);
  return;
oom:
  if (rb) free(rb->items);
  free(rb);
  free(arts);
  free(buf); /* the artifacts stay pending; the tick tries again */
}

/* flush_if_room: what waits leaves now if a relay slot is free. */
static void flush_if_room(struct front *f) {
  if (f->npending && f->inflight_batches < QM_FRONT_BATCHES_IN_FLIGHT) flush(f);
}

static void on_tick(void *arg) { flush_if_room(arg); }

/* text_ok: a context or domain is printable ASCII and fits (as metadata values must). */
static int text_ok(const char *v, size_t len, size_t cap) {
  if (len >= cap || len > QM_RPC_MD_VALUE_MAX) return -E2BIG;
  for (size_t i = 0; i < len; i++)
    if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] > 0x7e) return -EINVAL;
  return 0;
}

/* metadata_text: a metadata value as text; -EINVAL if not printable ASCII / too long. */
static int metadata_text(struct qm_call *call, const char *key, const char *dflt, char *out,
                         size_t cap) {
  size_t len = 0;
  const char *v = qm_call_metadata(call, key, &len);
  if (!v) {
    v = dflt;
    len = strlen(dflt);
  }
  int rc = text_ok(v, len, cap);
  if (rc) return rc;
  memcpy(out, v, len);
  out[len] = '\0';
  return 0;
}

/* One request as the front received it, from Submit's metadata or a SubmitBatch item. */
struct request {
  const uint8_t *payload;
  size_t payload_len;
  const char *context, *domain; /* NUL-terminated, checked */
  uint64_t seq;
  int has_seq;
};

/* admit: hashes the request into an Artifact and queues it for the next batch to the hub.
 * Returns QM_STATUS_OK (|p| now waits for the hub) or a refusal status with |why| filled. */
static int admit(struct front *f, const struct request *rq, struct pending p, char *why, size_t cap) {
  if (rq->payload_len > QM_PAYLOAD_MAX) {
    (*f->refused_invalid)++;
    snprintf(why, cap, "payload of %zu bytes exceeds %d", rq->payload_len, QM_PAYLOAD_MAX);
    return QM_STATUS_RESOURCE_EXHAUSTED;
  }
  if (f->outstanding >= f->topo->post_queue_max) {
    /* POST_QUEUE_MAX requests already wait here: refuse, visibly. */
    (*f->refused_full)++;
    snprintf(why, cap, "front %s: %zu requests outstanding (POST_QUEUE_MAX=%u)", qm_role_id(f->role),
             f->outstanding, f->topo->post_queue_max);
    return QM_STATUS_RESOURCE_EXHAUSTED;
  }
  if (!rq->has_seq) (*f->no_seq)++;
  uint8_t repr[QM_SHA256_LEN];
  qm_sha256(rq->payload, rq->payload_len, repr);
  Qmesh__V1__Artifact a = QMESH__V1__ARTIFACT__INIT;
  a.request_repr.data = repr;
  a.request_repr.len = sizeof repr;
  a.verification_context = (char *)rq->context;
  a.domain = (char *)rq->domain;
  a.sequence = rq->seq;
  a.front_id = (char *)qm_role_id(f->role);
  a.accepted_unix_nanos = qm_now_ns();
  size_t n = qmesh__v1__artifact__get_packed_size(&a);
  p.artifact = malloc(n ? n : 1);
  if (!p.artifact) {
    snprintf(why, cap, "out of memory");
    return QM_STATUS_RESOURCE_EXHAUSTED;
  }
  qmesh__v1__artifact__pack(&a, p.artifact);
  p.len = n;
  p.accepted_ns = qm_mono_ns();
  (*f->accepted)++;
  f->outstanding++;
  f->pending[f->npending++] = p;
  if (f->npending == QM_FRONT_BATCH_MAX || (!f->admitting && f->inflight_batches < QM_FRONT_BATCHES_IN_FLIGHT))
    flush(f);
  return QM_STATUS_OK;
}

static void on_submit(void *ctx, struct qm_call *call, const uint8_t *req, size_t len) {
  struct front *f = ctx;
  /* Domains are names (as in the topology): bounded like ids; contexts are opaque values. */
  char context[QM_RPC_MD_VALUE_MAX + 1], domain[QM_ID_MAX], seq_text[32], why[300];
  Qmesh__V1__SubmitRequest *in = qmesh__v1__submit_request__unpack(NULL, len, req);
  if (!in) {
    (*f->refused_invalid)++;
    qm_call_fail(call, QM_STATUS_INVALID_ARGUMENT, "malformed SubmitRequest");
    return;
  }
  int rc;
  struct request rq = {.payload = in->payload.data, .payload_len = in->payload.len, .context = context,
                       .domain = domain};
  if ((rc = metadata_text(call, "x-verification-context", "", context, sizeof context)) ||
      (rc = metadata_text(call, "x-domain", "payments", domain, sizeof domain)) ||
      (rc = metadata_text(call, "x-request-seq", "", seq_text, sizeof seq_text))) {
    (*f->refused_invalid)++;
    qm_call_fail(call, QM_STATUS_INVALID_ARGUMENT, "metadata: %s",
                 rc == -E2BIG ? "a value is too long" : "a value is not printable ASCII");
    goto done;
  }
  if (seq_text[0]) {
    if (qm_parse_u64(seq_text, &rq.seq)) {
      (*f->refused_invalid)++;
      qm_call_fail(call, QM_STATUS_INVALID_ARGUMENT, "x-request-seq '%s' is not an unsigned integer", seq_text);
      goto done;
    }
    rq.has_seq = 1;
  }
  rc = admit(f, &rq, (struct pending){.call = call}, why, sizeof why);
  if (rc != QM_STATUS_OK) qm_call_fail(call, rc, "%s", why);
done:
  qmesh__v1__submit_request__free_unpacked(in, NULL);
}

/* ---- SubmitBatch ---- */

static void batch_free(struct submit_batch *b) {
  for (size_t i = 0; i < b->n; i++) free(b->messages[i]);
  free(b->messages);
  free(b->ptrs);
  free(b->items);
  free(b);
}

/* batch_release: drops one hold; the last one sends the reply. */
static void batch_release(struct submit_batch *b) {
  if (--b->left) return;
  Qmesh__V1__BatchReply r = QMESH__V1__BATCH_REPLY__INIT;
  r.n_items = b->n;
  r.items = b->ptrs;
  size_t len = qmesh__v1__batch_reply__get_packed_size(&r);
  uint8_t *buf = malloc(len ? len : 1);
  if (buf) {
    qmesh__v1__batch_reply__pack(&r, buf);
    qm_call_reply(b->call, buf, len);
  } else {
    qm_call_fail(b->call, QM_STATUS_RESOURCE_EXHAUSTED, "out of memory for the reply");
  }
  free(buf);
  batch_free(b);
}

/* batch_item_done: one item has its status. */
static void batch_item_done(struct submit_batch *b, size_t i, int status, const char *message) {
  b->items[i].code = (uint32_t)status;
  if (message[0]) {
    b->messages[i] = strdup(message);
    if (b->messages[i]) b->items[i].message = b->messages[i];
  }
  batch_release(b);
}

static void on_submit_batch(void *ctx, struct qm_call *call, const uint8_t *req, size_t len) {
  struct front *f = ctx;
  Qmesh__V1__SubmitBatchRequest *in = qmesh__v1__submit_batch_request__unpack(NULL, len, req);
  (*f->batches)++;
  if (!in || in->n_items == 0 || in->n_items > QM_SUBMIT_BATCH_MAX) {
    (*f->refused_invalid)++;
    if (!in) qm_call_fail(call, QM_STATUS_INVALID_ARGUMENT, "malformed SubmitBatchRequest");
    else qm_call_fail(call, QM_STATUS_INVALID_ARGUMENT, "a SubmitBatch carries 1 to %d items, not %zu",
                      QM_SUBMIT_BATCH_MAX, in->n_items);
    if (in) qmesh__v1__submit_batch_request__free_unpacked(in, NULL);
    return;
  }
  struct submit_batch *b = calloc(1, sizeof *b);
  if (b) {
    b->items = malloc(in->n_items * sizeof *b->items);
    b->ptrs = malloc(in->n_items * sizeof *b->ptrs);
    b->messages = calloc(in->n_items, sizeof *b->messages);
  }
  if (!b || !b->items || !b->ptrs || !b->messages) {
    if (b) batch_free(b);
    qm_call_fail(call, QM_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    qmesh__v1__submit_batch_request__free_unpacked(in, NULL);
    return;
  }
  b->call = call;
  b->n = in->n_items;
  b->left = b->n + 1; /* one hold per item, and one until every item was tried (no early reply) */
  for (size_t i = 0; i < b->n; i++) {
    qmesh__v1__item_status__init(&b->items[i]);
    b->ptrs[i] = &b->items[i];
  }
  char why[300];
  /* Without this, a free slot would carry the call's first item alone and the rest would
   * wait for the next batch: one relay call for one request. */
  f->admitting = 1;
  for (size_t i = 0; i < b->n; i++) {
    const Qmesh__V1__SubmitItem *it = in->items[i];
    const char *domain = it->domain[0] ? it->domain : "payments";
    struct request rq = {.payload = it->payload.data, .payload_len = it->payload.len,
                         .context = it->verification_context, .domain = domain,
                         .seq = it->sequence, .has_seq = it->has_sequence};
    int rc;
    if ((rc = text_ok(rq.context, strlen(rq.context), QM_RPC_MD_VALUE_MAX + 1)) ||
        (rc = text_ok(domain, strlen(domain), QM_ID_MAX))) {
      (*f->refused_invalid)++;
      batch_item_done(b, i, QM_STATUS_INVALID_ARGUMENT,
                      rc == -E2BIG ? "item: a context or domain is too long"
                                   : "item: a context or domain is not printable ASCII");
      continue;
    }
    rc = admit(f, &rq, (struct pending){.batch = b, .index = i}, why, sizeof why);
    if (rc != QM_STATUS_OK) batch_item_done(b, i, rc, why);
  }
  f->admitting = 0;
  flush_if_room(f);
  qmesh__v1__submit_batch_request__free_unpacked(in, NULL);
  batch_release(b);
}

static int64_t gauge_outstanding(void *arg) { return (int64_t)((struct front *)arg)->outstanding; }
static int64_t gauge_batch(void *arg) { return (int64_t)((struct front *)arg)->npending; }
static int64_t gauge_hub_queued(void *arg) {
  struct qm_channel_stats st;
  qm_channel_stats(((struct front *)arg)->hub, &st);
  return (int64_t)st.queued;
}
static int64_t gauge_hub_inflight(void *arg) {
  struct qm_channel_stats st;
  qm_channel_stats(((struct front *)arg)->hub, &st);
  return (int64_t)st.inflight;
}

static int setup(struct qm_role *r, void **state, struct qm_err *err) {
  struct front *f = calloc(1, sizeof *f);
  if (!f) return qm_err_set(err, -ENOMEM, "out of memory");
  f->role = r;
  f->topo = qm_role_topology(r);
  const struct qm_region *reg = qm_topology_find_region_of(f->topo, qm_role_id(r));
  int rc = qm_channel_new(qm_role_loop(r), reg->hub.advertise, reg->hub.id, &f->hub, err);
  if (rc) {
    free(f);
    return rc;
  }
  qm_channel_set_limits(f->hub, f->topo->worker_count, f->topo->post_queue_max);
  f->relay_batch = qm_channel_method(f->hub, "/qmesh.v1.Hub/RelayBatch");
  qm_channel_use_mux(f->hub, "/qmesh.v1.Hub/Mux"); /* relay batches as frames on one stream */
  f->pending = calloc(QM_FRONT_BATCH_MAX, sizeof *f->pending);
  if (!f->pending || qm_loop_add_tick(qm_role_loop(r), QM_FRONT_RETRY_MS, on_tick, f)) {
    qm_channel_free(f->hub);
    free(f->pending);
    free(f);
    return qm_err_set(err, -ENOMEM, "out of memory");
  }
  qm_role_add_upstream(r, reg->hub.advertise);
  f->latency = qm_role_histogram(r, "submit_latency_seconds");
  qm_role_add_gauge(r, "requests_outstanding", gauge_outstanding, f);
  qm_role_add_gauge(r, "batch_waiting", gauge_batch, f);
  qm_role_add_gauge(r, "hub_calls_inflight", gauge_hub_inflight, f);
  qm_role_add_gauge(r, "hub_calls_queued", gauge_hub_queued, f);
  f->accepted = qm_role_counter(r, "submit_accepted");
  f->forwarded = qm_role_counter(r, "submit_forwarded");
  f->refused_full = qm_role_counter(r, "submit_refused_full");
  f->refused_invalid = qm_role_counter(r, "submit_refused_invalid");
  f->hub_failed = qm_role_counter(r, "hub_failed");
  f->no_seq = qm_role_counter(r, "submit_without_seq");
  f->batches = qm_role_counter(r, "submit_batch_calls");
  struct qm_method_spec submit = {.path = "/qmesh.v1.Front/Submit", .unary = on_submit, .ctx = f};
  struct qm_method_spec submit_batch = {.path = "/qmesh.v1.Front/SubmitBatch", .unary = on_submit_batch, .ctx = f};
  rc = qm_server_add_method(qm_role_server(r), &submit);
  if (!rc) rc = qm_server_add_method(qm_role_server(r), &submit_batch);
  if (!rc) rc = qm_role_add_stats_method(r, "/qmesh.v1.Front/Stats");
  if (rc) {
    qm_channel_free(f->hub);
    free(f->pending);
    free(f);
    return qm_err_set(err, rc, "cannot register the Front service");
  }
  *state = f;
  return 0;
}

static void teardown(void *state) {
  struct front *f = state;
  for (size_t i = 0; i < f->npending; i++) free(f->pending[i].artifact);
  free(f->pending);
  qm_channel_free(f->hub);
  free(f);
}

const struct qm_role_ops qm_front_ops = {.role = "front", .setup = setup, .teardown = teardown};
