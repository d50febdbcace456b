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
  struct qm_hist *latency; /* accept -> the hub's answer */
  uint64_t *accepted, *forwarded, *refused_full, *refused_invalid, *hub_failed, *no_seq;
};

#define QM_FRONT_BATCH_MAX 256     /* artifacts per RelayBatch */
#define QM_FRONT_BATCHES_IN_FLIGHT 2 /* send at once while fewer are in flight (Nagle-like) */

/* A request waiting for its batch, then for the hub's answer. */
struct pending {
  struct qm_call *call;
  uint8_t *artifact;
  size_t len;
  int64_t accepted_ns; /* monotonic: for the submit latency histogram */
};

struct relay_batch {
  struct front *f;
  struct pending *items;
  size_t n;
};

static void answer(struct front *f, struct qm_call *call, int status, const char *why) {
  if (status == QM_STATUS_OK) {
    (*f->forwarded)++;
    /* The constant reply: the same empty message for every accepted request. */
    qm_call_reply(call, NULL, 0);
  } else {
    (*f->hub_failed)++;
    qm_call_fail(call, QM_STATUS_UNAVAILABLE, "hub %s did not take the request: %s", qm_channel_target(f->hub),
                 why);
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
    if (status != QM_STATUS_OK) answer(f, rb->items[i].call, status, why);
    else answer(f, rb->items[i].call, (int)r->items[i]->code, r->items[i]->message);
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
      answer(f, rb->items[i].call, QM_STATUS_UNAVAILABLE, rc == -ENOBUFS ? "queue full" : "cannot start the call");
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

static void on_tick(void *arg) {
  struct front *f = arg;
  if (f->npending && f->inflight_batches < QM_FRONT_BATCHES_IN_FLIGHT) flush(f);
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
  if (len >= cap || len > QM_RPC_MD_VALUE_MAX) return -E2BIG;
  for (size_t i = 0; i < len; i++)
    if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] > 0x7e) return -EINVAL;
  memcpy(out, v, len);
  out[len] = '\0';
  return 0;
}

static void on_submit(void *ctx, struct qm_call *call, const uint8_t *req, size_t len) {
  struct front *f = ctx;
  /* Domains are names (as in the topology): bounded like ids; contexts are opaque values. */
  char context[QM_RPC_MD_VALUE_MAX + 1], domain[QM_ID_MAX], seq_text[32];
  Qmesh__V1__SubmitRequest *in = qmesh__v1__submit_request__unpack(NULL, len, req);
  if (!in) {
    (*f->refused_invalid)++;
    qm_call_fail(call, QM_STATUS_INVALID_ARGUMENT, "malformed SubmitRequest");
    return;
  }
  int rc;
  uint64_t seq = 0;
  if (in->payload.len > QM_PAYLOAD_MAX) {
    (*f->refused_invalid)++;
    qm_call_fail(call, QM_STATUS_RESOURCE_EXHAUSTED, "payload of %zu bytes exceeds %d", in->payload.len,
                 QM_PAYLOAD_MAX);
    goto done;
  }
  if ((rc = metadata_text(call, "x-verification-context", "", context, sizeof context)) ||
      (rc = metadata_text(call, "x-domain", "payments", domain, sizeof domain)) ||
      (rc = metadata_text(call, "x-request-seq", "", seq_text, sizeof seq_text))) {
    (*f->refused_invalid)++;
    qm_call_fail(call, QM_STATUS_INVALID_ARGUMENT, "metadata: %s",
                 rc == -E2BIG ? "a value is too long" : "a value is not printable ASCII");
    goto done;
  }
  if (seq_text[0]) {
    if (qm_parse_u64(seq_text, &seq)) {
      (*f->refused_invalid)++;
      qm_call_fail(call, QM_STATUS_INVALID_ARGUMENT, "x-request-seq '%s' is not an unsigned integer", seq_text);
      goto done;
    }
  } else {
    (*f->no_seq)++;
  }
  uint8_t repr[QM_SHA256_LEN];
  qm_sha256(in->payload.data, in->payload.len, repr);
  Qmesh__V1__Artifact a = QMESH__V1__ARTIFACT__INIT;
  a.request_repr.data = repr;
  a.request_repr.len = sizeof repr;
  a.verification_context = context;
  a.domain = domain;
  a.sequence = seq;
  a.front_id = (char *)qm_role_id(f->role);
  a.accepted_unix_nanos = qm_now_ns();
  if (f->outstanding >= f->topo->post_queue_max) {
    /* POST_QUEUE_MAX requests already wait here: refuse, visibly. */
    (*f->refused_full)++;
    qm_call_fail(call, QM_STATUS_RESOURCE_EXHAUSTED, "front %s: %zu requests outstanding (POST_QUEUE_MAX=%u)",
                 qm_role_id(f->role), f->outstanding, f->topo->post_queue_max);
    goto done;
  }
  size_t n = qmesh__v1__artifact__get_packed_size(&a);
  uint8_t *buf = malloc(n ? n : 1);
  if (!buf) {
    qm_call_fail(call, QM_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    goto done;
  }
  qmesh__v1__artifact__pack(&a, buf);
  (*f->accepted)++;
  f->outstanding++;
  f->pending[f->npending++] = (struct pending){call, buf, n, qm_mono_ns()};
  if (f->npending == QM_FRONT_BATCH_MAX || f->inflight_batches < QM_FRONT_BATCHES_IN_FLIGHT) flush(f);
done:
  qmesh__v1__submit_request__free_unpacked(in, NULL);
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
  f->pending = calloc(QM_FRONT_BATCH_MAX, sizeof *f->pending);
  if (!f->pending || qm_loop_add_tick(qm_role_loop(r), 2, on_tick, f)) {
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
  struct qm_method_spec submit = {.path = "/qmesh.v1.Front/Submit", .unary = on_submit, .ctx = f};
  rc = qm_server_add_method(qm_role_server(r), &submit);
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
