/* front.c: the regional front ("NUVL"): hashes the request bytes, wraps the opaque metadata
 * in an Artifact, forwards it to its region's hub, answers a constant empty success. It
 * holds no key and never sees an outcome. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "qmesh/v1/qmesh.pb-c.h"
#include "roles.h"
#include "text.h"

struct front {
  struct qm_role *role;
  const struct qm_topology *topo;
  struct qm_channel *hub;
  void *relay;
  uint64_t *accepted, *forwarded, *refused_full, *refused_invalid, *hub_failed, *no_seq;
};

struct pending {
  struct front *f;
  struct qm_call *call;
};

static void on_hub_reply(void *arg, int status, const char *details, const uint8_t *resp, size_t len) {
  (void)resp;
  (void)len;
  struct pending *p = arg;
  struct front *f = p->f;
  if (status == QM_STATUS_OK) {
    (*f->forwarded)++;
    /* The constant reply: the same empty message for every accepted request. */
    qm_call_reply(p->call, NULL, 0);
  } else {
    (*f->hub_failed)++;
    qm_call_fail(p->call, QM_STATUS_UNAVAILABLE, "hub %s did not accept the request: %s: %s",
                 qm_channel_target(f->hub), qm_status_name(status), details);
  }
  free(p);
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
  uint8_t buf[2 * QM_RPC_MD_VALUE_MAX + 256];
  size_t n = qmesh__v1__artifact__pack(&a, buf);
  struct pending *p = malloc(sizeof *p);
  if (!p) {
    qm_call_fail(call, QM_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    goto done;
  }
  p->f = f;
  p->call = call;
  (*f->accepted)++;
  rc = qm_channel_call(f->hub, f->relay, buf, n, NULL, 0, QM_HOP_TIMEOUT_MS, 1, on_hub_reply, p);
  if (rc == -ENOBUFS) {
    /* WORKER_COUNT calls in flight and POST_QUEUE_MAX waiting: refuse, visibly. */
    free(p);
    (*f->accepted)--;
    (*f->refused_full)++;
    qm_call_fail(call, QM_STATUS_RESOURCE_EXHAUSTED, "front %s: queue to %s is full (POST_QUEUE_MAX=%u)",
                 qm_role_id(f->role), qm_channel_target(f->hub), f->topo->post_queue_max);
  } else if (rc) {
    free(p);
    (*f->hub_failed)++;
    qm_call_fail(call, QM_STATUS_UNAVAILABLE, "cannot reach hub %s", qm_channel_target(f->hub));
  }
done:
  qmesh__v1__submit_request__free_unpacked(in, NULL);
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
  f->relay = qm_channel_method(f->hub, "/qmesh.v1.Hub/Relay");
  qm_role_add_upstream(r, reg->hub.advertise);
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
    free(f);
    return qm_err_set(err, rc, "cannot register the Front service");
  }
  *state = f;
  return 0;
}

static void teardown(void *state) {
  struct front *f = state;
  qm_channel_free(f->hub);
  free(f);
}

const struct qm_role_ops qm_front_ops = {.role = "front", .setup = setup, .teardown = teardown};
