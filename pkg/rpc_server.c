/* rpc_server.c: a gRPC server on the loop's queue: registered unary and bidi-streaming
 * methods, unknown methods answered UNIMPLEMENTED, refcounted call contexts. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>

#include "mux_wire.h"
#include "rpc_internal.h"

#define QM_METHODS_MAX 32
#define QM_DRAINS_MAX 8
#define QM_SLOTS_PER_METHOD 16 /* request_call slots armed per method */
#define QM_GENERIC_SLOTS 4    /* slots for unknown methods */
#define QM_SERVICE_MAX 128

static const uint8_t empty_message[1];

struct qm_method {
  struct qm_method_spec spec;
  void *handle;
  struct qm_server *srv;
};

struct qm_drain {
  qm_drain_fn fn;
  void *ctx;
};

struct qm_server {
  struct qm_loop *loop;
  grpc_server *server;
  struct qm_method methods[QM_METHODS_MAX];
  size_t nmethods;
  struct qm_drain drains[QM_DRAINS_MAX];
  size_t ndrains;
  char services[QM_METHODS_MAX][QM_SERVICE_MAX];
  size_t nservices;
  int started, shutting, shutdown_done;
  uint64_t armed; /* contexts waiting in request_call slots (not held by any handler) */
  struct qm_tag shutdown_tag;
  struct qm_server_stats stats;
  struct qm_call *mux_streams; /* Mux streams open now (intrusive list) */
  uint64_t mux_idle;           /* ... of which carry no frame: not work in flight */
};

struct qm_sendq_item {
  uint8_t *buf;
  size_t len;
};

struct qm_call {
  struct qm_server *srv;
  struct qm_method *method; /* NULL: an unknown method (generic slot) */
  grpc_call *call;
  gpr_timespec deadline;
  grpc_metadata_array md;
  grpc_call_details details; /* generic slots only */
  grpc_byte_buffer *payload; /* unary: the request */
  grpc_byte_buffer *recv_bb;
  grpc_byte_buffer *send_bb;
  struct qm_tag arrive_tag, recv_tag, send_tag, close_tag, final_tag;
  int refs;
  int cancelled; /* written by RECV_CLOSE_ON_SERVER */
  int arrived, ended, closed, sending, input_done;
  /* streams: messages waiting for the one send in flight, then the status */
  struct qm_sendq_item *q;
  size_t qhead, qcount, qcap;
  int finish_pending, finish_status;
  char *finish_msg;
  char *peer;
  void *user;
  grpc_slice status_details; /* alive until the call is freed */
  int has_details;
  /* Mux: a frame's call (parent: the stream it came on, referenced until the frame ends),
   * or a Mux stream (frames_open: frames without a reply yet; the server's list) */
  struct qm_call *parent;
  uint64_t frame_id;
  int is_mux, mux_idle;
  unsigned frames_open;
  struct qm_call *mux_prev, *mux_next;
};

static void call_unref(struct qm_call *c);
static void arm(struct qm_server *srv, struct qm_method *m);

int qm_server_new(struct qm_loop *loop, struct qm_server **out) {
  if (loop->nservers == QM_LOOP_SERVERS_MAX) return -ENOSPC;
  struct qm_server *srv = calloc(1, sizeof *srv);
  if (!srv) return -ENOMEM;
  srv->loop = loop;
  srv->server = grpc_server_create(qm__channel_args(1), NULL);
  if (!srv->server) {
    free(srv);
    return -ENOMEM;
  }
  grpc_server_register_completion_queue(srv->server, loop->cq, NULL);
  loop->servers[loop->nservers++] = srv;
  *out = srv;
  return 0;
}

static void note_service(struct qm_server *srv, const char *path) {
  /* "/pkg.Service/Method" -> "pkg.Service" */
  const char *start = path[0] == '/' ? path + 1 : path;
  const char *slash = strchr(start, '/');
  size_t n = slash ? (size_t)(slash - start) : strlen(start);
  if (n >= QM_SERVICE_MAX) n = QM_SERVICE_MAX - 1;
  for (size_t i = 0; i < srv->nservices; i++)
    if (strlen(srv->services[i]) == n && memcmp(srv->services[i], start, n) == 0) return;
  memcpy(srv->services[srv->nservices], start, n);
  srv->services[srv->nservices][n] = '\0';
  srv->nservices++;
}

int qm_server_add_method(struct qm_server *srv, const struct qm_method_spec *spec) {
  if (srv->started || srv->nmethods == QM_METHODS_MAX) return -ENOSPC;
  if (!spec->path || (!spec->unary == !spec->stream)) return -EINVAL;
  struct qm_method *m = &srv->methods[srv->nmethods];
  m->spec = *spec;
  m->srv = srv;
  m->handle = grpc_server_register_method(
      srv->server, spec->path, NULL,
      spec->unary ? GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER : GRPC_SRM_PAYLOAD_NONE, 0);
  if (!m->handle) return -EEXIST;
  srv->nmethods++;
  note_service(srv, spec->path);
  return 0;
}

int qm_server_on_drain(struct qm_server *srv, qm_drain_fn fn, void *ctx) {
  if (srv->ndrains == QM_DRAINS_MAX) return -ENOSPC;
  srv->drains[srv->ndrains].fn = fn;
  srv->drains[srv->ndrains].ctx = ctx;
  srv->ndrains++;
  return 0;
}

size_t qm_server_services(const struct qm_server *srv, const char **names, size_t max) {
  size_t n = srv->nservices < max ? srv->nservices : max;
  for (size_t i = 0; i < n; i++) names[i] = srv->services[i];
  return srv->nservices;
}

void qm_server_stats(const struct qm_server *srv, struct qm_server_stats *out) {
  *out = srv->stats;
}

int qm_server_listen(struct qm_server *srv, const char *addr, struct qm_err *err) {
  grpc_server_credentials *creds = qm__server_credentials();
  int port = grpc_server_add_http2_port(srv->server, addr, creds);
  grpc_server_credentials_release(creds);
  if (port <= 0)
    return qm_err_set(err, -EADDRINUSE, "cannot listen on %s: address in use or invalid", addr);
  return port;
}

/* ---- call contexts ---- */

static struct qm_call *call_new(struct qm_server *srv, struct qm_method *m) {
  struct qm_call *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->srv = srv;
  c->method = m;
  c->refs = 1; /* the armed slot */
  grpc_metadata_array_init(&c->md);
  if (!m) grpc_call_details_init(&c->details);
  srv->stats.live++;
  return c;
}

static void call_free(struct qm_call *c) {
  struct qm_server *srv = c->srv;
  grpc_metadata_array_destroy(&c->md);
  if (!c->method) grpc_call_details_destroy(&c->details);
  if (c->payload) grpc_byte_buffer_destroy(c->payload);
  if (c->recv_bb) grpc_byte_buffer_destroy(c->recv_bb);
  if (c->send_bb) grpc_byte_buffer_destroy(c->send_bb);
  for (size_t i = 0; i < c->qcount; i++) free(c->q[(c->qhead + i) % c->qcap].buf);
  free(c->q);
  free(c->finish_msg);
  if (c->peer) gpr_free(c->peer);
  if (c->has_details) grpc_slice_unref(c->status_details);
  if (c->call) grpc_call_unref(c->call);
  struct qm_call *parent = c->parent;
  free(c);
  srv->stats.live--;
  if (parent) call_unref(parent);
}

static void call_unref(struct qm_call *c) {
  if (--c->refs == 0) call_free(c);
}

static void start_batch(struct qm_call *c, const grpc_op *ops, size_t n, struct qm_tag *tag) {
  c->refs++;
  grpc_call_error e = grpc_call_start_batch(c->call, ops, n, tag, NULL);
  if (e != GRPC_CALL_OK) {
    /* Only a programming error gets here; keep the books straight. */
    c->refs--;
  }
}

static void on_final(struct qm_tag *tag, int ok) {
  (void)ok;
  struct qm_call *c = QM_CONTAINER_OF(tag, struct qm_call, final_tag);
  if (!c->closed) {
    c->closed = 1;
    if (c->method && c->method->spec.on_close) c->method->spec.on_close(c->method->spec.ctx, c);
  }
  call_unref(c);
}

static int end_frame(struct qm_call *c, int status, const char *msg, const uint8_t *resp, size_t len);

/* Unary (and unknown-method) end: metadata, message, status and close in one batch. */
static int end_unary(struct qm_call *c, int status, const char *msg, const uint8_t *resp, size_t len) {
  if (c->ended) return -EALREADY;
  if (c->parent) return end_frame(c, status, msg, resp, len);
  c->ended = 1;
  if (status != QM_STATUS_OK) c->srv->stats.failed++;
  grpc_op ops[4];
  memset(ops, 0, sizeof ops);
  size_t n = 0;
  ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
  if (status == QM_STATUS_OK) {
    c->send_bb = qm__buffer_from(resp ? resp : empty_message, resp ? len : 0);
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n++].data.send_message.send_message = c->send_bb;
  }
  c->status_details = grpc_slice_from_copied_string(msg ? msg : "");
  c->has_details = 1;
  ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
  ops[n].data.send_status_from_server.status = (grpc_status_code)status;
  ops[n++].data.send_status_from_server.status_details = &c->status_details;
  ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
  ops[n++].data.recv_close_on_server.cancelled = &c->cancelled;
  start_batch(c, ops, n, &c->final_tag);
  call_unref(c); /* the handler's reference */
  return 0;
}

/* ---- streams ---- */

static void pump_send(struct qm_call *c);

static void on_send(struct qm_tag *tag, int ok) {
  struct qm_call *c = QM_CONTAINER_OF(tag, struct qm_call, send_tag);
  c->sending = 0;
  if (c->send_bb) {
    grpc_byte_buffer_destroy(c->send_bb);
    c->send_bb = NULL;
  }
  if (ok) pump_send(c);
  call_unref(c);
}

static void send_status(struct qm_call *c) {
  grpc_op op;
  memset(&op, 0, sizeof op);
  c->status_details = grpc_slice_from_copied_string(c->finish_msg ? c->finish_msg : "");
  c->has_details = 1;
  op.op = GRPC_OP_SEND_STATUS_FROM_SERVER;
  op.data.send_status_from_server.status = (grpc_status_code)c->finish_status;
  op.data.send_status_from_server.status_details = &c->status_details;
  c->sending = 1;
  start_batch(c, &op, 1, &c->send_tag);
  c->finish_pending = 0;
}

static void pump_send(struct qm_call *c) {
  if (c->sending || c->closed) return;
  if (c->qcount) {
    struct qm_sendq_item it = c->q[c->qhead];
    c->qhead = (c->qhead + 1) % c->qcap;
    c->qcount--;
    c->send_bb = qm__buffer_from(it.buf ? it.buf : empty_message, it.len);
    free(it.buf);
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = c->send_bb;
    c->sending = 1;
    start_batch(c, &op, 1, &c->send_tag);
    return;
  }
  if (c->finish_pending) send_status(c);
}

static void arm_recv(struct qm_call *c) {
  grpc_op op;
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_RECV_MESSAGE;
  op.data.recv_message.recv_message = &c->recv_bb;
  start_batch(c, &op, 1, &c->recv_tag);
}

static void on_recv(struct qm_tag *tag, int ok) {
  struct qm_call *c = QM_CONTAINER_OF(tag, struct qm_call, recv_tag);
  grpc_byte_buffer *bb = c->recv_bb;
  c->recv_bb = NULL;
  if (ok && !c->closed && !c->input_done) {
    struct qm_method_spec *s = &c->method->spec;
    if (bb) {
      uint8_t *msg = NULL;
      size_t len = 0;
      if (qm__buffer_read(bb, &msg, &len) == 0) {
        s->stream(s->ctx, c, msg ? msg : empty_message, len);
        free(msg);
        if (!c->ended && !c->closed) arm_recv(c);
      } else {
        qm_call_finish(c, QM_STATUS_INTERNAL, "cannot read message");
      }
    } else {
      c->input_done = 1;
      s->stream(s->ctx, c, NULL, 0);
    }
  }
  if (bb) grpc_byte_buffer_destroy(bb);
  call_unref(c);
}

static void mux_leave(struct qm_call *s);

static void on_close(struct qm_tag *tag, int ok) {
  (void)ok;
  struct qm_call *c = QM_CONTAINER_OF(tag, struct qm_call, close_tag);
  c->closed = 1;
  if (c->is_mux) mux_leave(c);
  if (c->method->spec.on_close) c->method->spec.on_close(c->method->spec.ctx, c);
  if (!c->ended) {
    c->ended = 1;
    call_unref(c); /* the handler's reference: the call is over */
  }
  call_unref(c);
}

static void start_stream(struct qm_call *c) {
  grpc_op op;
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_SEND_INITIAL_METADATA;
  c->sending = 1;
  start_batch(c, &op, 1, &c->send_tag);
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
  op.data.recv_close_on_server.cancelled = &c->cancelled;
  start_batch(c, &op, 1, &c->close_tag);
  arm_recv(c);
}

int qm_call_send(struct qm_call *c, const uint8_t *msg, size_t len) {
  if (c->ended || c->closed || !c->method || !c->method->spec.stream) return -EPIPE;
  if (c->qcount == QM_CALL_SENDQ_MAX) return -ENOBUFS;
  if (c->qcount == c->qcap) {
    size_t cap = c->qcap ? c->qcap * 2 : 8;
    struct qm_sendq_item *q = malloc(cap * sizeof *q);
    if (!q) return -ENOMEM;
    for (size_t i = 0; i < c->qcount; i++) q[i] = c->q[(c->qhead + i) % c->qcap];
    free(c->q);
    c->q = q;
    c->qhead = 0;
    c->qcap = cap;
  }
  uint8_t *copy = NULL;
  if (len) {
    copy = malloc(len);
    if (!copy) return -ENOMEM;
    memcpy(copy, msg, len);
  }
  c->q[(c->qhead + c->qcount) % c->qcap] = (struct qm_sendq_item){copy, len};
  c->qcount++;
  pump_send(c);
  return 0;
}

int qm_call_finish(struct qm_call *c, int status, const char *message) {
  if (!c->method || c->method->spec.unary) return end_unary(c, status, message, NULL, 0);
  if (c->ended) return -EALREADY;
  c->ended = 1;
  if (c->is_mux) mux_leave(c);
  if (status != QM_STATUS_OK) c->srv->stats.failed++;
  c->finish_status = status;
  c->finish_msg = message ? strdup(message) : NULL;
  c->finish_pending = 1;
  pump_send(c);
  call_unref(c); /* the handler's reference; the close tag keeps the context alive */
  return 0;
}

int qm_call_reply(struct qm_call *c, const uint8_t *msg, size_t len) {
  if (c->method && c->method->spec.stream) {
    int rc = qm_call_send(c, msg, len);
    if (rc) return rc;
    return qm_call_finish(c, QM_STATUS_OK, NULL);
  }
  return end_unary(c, QM_STATUS_OK, NULL, msg, len);
}

int qm_call_fail(struct qm_call *c, int status, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return qm_call_finish(c, status, msg);
}

const char *qm_call_metadata(const struct qm_call *c, const char *key, size_t *len) {
  if (c->parent) c = c->parent; /* a frame has the metadata of its stream */
  size_t klen = strlen(key);
  for (size_t i = 0; i < c->md.count; i++) {
    const grpc_metadata *m = &c->md.metadata[i];
    if (GRPC_SLICE_LENGTH(m->key) == klen && memcmp(GRPC_SLICE_START_PTR(m->key), key, klen) == 0) {
      *len = GRPC_SLICE_LENGTH(m->value);
      return (const char *)GRPC_SLICE_START_PTR(m->value);
    }
  }
  return NULL;
}

const char *qm_call_peer(struct qm_call *c) {
  if (c->parent) c = c->parent;
  if (!c->peer) c->peer = grpc_call_get_peer(c->call);
  return c->peer ? c->peer : "";
}

const char *qm_call_method(const struct qm_call *c) {
  return c->method ? c->method->spec.path : "";
}

int qm_call_peer_identity(struct qm_call *c, char *out, size_t cap) {
  grpc_auth_context *ctx = grpc_call_auth_context(c->parent ? c->parent->call : c->call);
  int rc = -ENOENT;
  if (ctx && grpc_auth_context_peer_is_authenticated(ctx)) {
    grpc_auth_property_iterator it = grpc_auth_context_peer_identity(ctx);
    const grpc_auth_property *p = grpc_auth_property_iterator_next(&it);
    if (p && p->value_length < cap) {
      memcpy(out, p->value, p->value_length);
      out[p->value_length] = '\0';
      rc = 0;
    }
  }
  if (ctx) grpc_auth_context_release(ctx);
  return rc;
}

void qm_call_set_user(struct qm_call *c, void *user) { c->user = user; }
void *qm_call_user(const struct qm_call *c) { return c->user; }

/* ---- Mux: unary calls as frames on one stream ---- */

/* mux_set_idle: keeps srv->mux_idle = the open Mux streams that carry no frame. */
static void mux_set_idle(struct qm_call *s, int idle) {
  if (s->mux_idle == idle) return;
  s->mux_idle = idle;
  if (idle) s->srv->mux_idle++;
  else s->srv->mux_idle--;
}

static void mux_join(struct qm_call *s) {
  struct qm_server *srv = s->srv;
  s->is_mux = 1;
  s->mux_next = srv->mux_streams;
  if (srv->mux_streams) srv->mux_streams->mux_prev = s;
  srv->mux_streams = s;
  mux_set_idle(s, 1);
}

/* mux_leave: the stream ended or closed: out of the list (once). */
static void mux_leave(struct qm_call *s) {
  struct qm_server *srv = s->srv;
  if (!s->is_mux) return;
  s->is_mux = 0;
  mux_set_idle(s, 0);
  if (s->mux_prev) s->mux_prev->mux_next = s->mux_next;
  else srv->mux_streams = s->mux_next;
  if (s->mux_next) s->mux_next->mux_prev = s->mux_prev;
}

/* mux_send_frame: one reply frame on the stream (dropped once the stream is over). */
static void mux_send_frame(struct qm_call *s, uint64_t id, int status, const char *msg, const uint8_t *resp,
                           size_t len) {
  if (s->ended || s->closed) return;
  struct qm_mux_frame f = {.id = id, .status = status};
  if (status == QM_STATUS_OK) f.payload = (struct qm_span){resp, resp ? len : 0};
  else if (msg) f.message = (struct qm_span){(const uint8_t *)msg, strlen(msg)};
  size_t n = qm_mux_frame_len(&f);
  uint8_t stackbuf[512], *buf = n <= sizeof stackbuf ? stackbuf : malloc(n);
  if (!buf || qm_call_send(s, buf, (size_t)(qm_mux_frame_put(&f, buf) - buf)) != 0) {
    /* The client's deadline answers this frame; the whole stream is failed so that it
     * learns at once and opens another. */
    qm_call_finish(s, QM_STATUS_RESOURCE_EXHAUSTED, "cannot queue a reply frame");
  }
  if (buf != stackbuf) free(buf);
}

/* end_frame: a frame's call ends: its reply (or status) goes back as a frame. */
static int end_frame(struct qm_call *c, int status, const char *msg, const uint8_t *resp, size_t len) {
  struct qm_call *s = c->parent;
  if (c->ended) return -EALREADY;
  c->ended = 1;
  if (status != QM_STATUS_OK) c->srv->stats.failed++;
  mux_send_frame(s, c->frame_id, status, msg, resp, len);
  if (--s->frames_open == 0) {
    if (s->input_done || c->srv->shutting) qm_call_finish(s, QM_STATUS_OK, NULL);
    else if (s->is_mux) mux_set_idle(s, 1);
  }
  call_unref(c); /* the handler's reference; the stream's goes with the context */
  return 0;
}

static struct qm_method *unary_method(struct qm_server *srv, struct qm_span path) {
  for (size_t i = 0; i < srv->nmethods; i++) {
    struct qm_method *m = &srv->methods[i];
    if (m->spec.unary && strlen(m->spec.path) == path.n && memcmp(m->spec.path, path.p, path.n) == 0) return m;
  }
  return NULL;
}

/* mux_on_message: every frame of a MuxFrames message becomes a call of its unary method,
 * in order; the whole message is checked first (protobuf-c would refuse all of it). */
static void mux_on_message(void *ctx, struct qm_call *s, const uint8_t *msg, size_t len) {
  struct qm_server *srv = ctx;
  if (!msg) { /* the client half-closed: end once every frame has its reply */
    if (!s->frames_open) qm_call_finish(s, QM_STATUS_OK, NULL);
    return;
  }
  if (qm_mux_frames_count(msg, len) < 0) {
    qm_call_finish(s, QM_STATUS_INVALID_ARGUMENT, "malformed MuxFrames");
    return;
  }
  const uint8_t *at = msg, *end = msg + len;
  struct qm_mux_frame f;
  while (!s->ended && !s->closed && qm_mux_frames_next(&at, end, &f) > 0) {
    struct qm_method *m = unary_method(srv, f.method);
    if (srv->shutting) {
      mux_send_frame(s, f.id, QM_STATUS_UNAVAILABLE, "server is shutting down", NULL, 0);
      continue;
    }
    if (!m) {
      char why[300];
      srv->stats.unimplemented++;
      srv->stats.failed++; /* as for an unknown method's call */
      snprintf(why, sizeof why, "unknown unary method %.*s", (int)(f.method.n < 200 ? f.method.n : 200),
               (const char *)f.method.p);
      mux_send_frame(s, f.id, QM_STATUS_UNIMPLEMENTED, why, NULL, 0);
      continue;
    }
    struct qm_call *c = calloc(1, sizeof *c);
    if (!c) {
      mux_send_frame(s, f.id, QM_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL, 0);
      continue;
    }
    c->srv = srv;
    c->method = m;
    c->refs = 1; /* the handler's */
    c->parent = s;
    c->frame_id = f.id;
    c->arrived = 1;
    grpc_metadata_array_init(&c->md);
    s->refs++;
    if (s->frames_open++ == 0) mux_set_idle(s, 0);
    srv->stats.live++;
    srv->stats.calls++;
    m->spec.unary(m->spec.ctx, c, f.payload.n ? f.payload.p : empty_message, f.payload.n);
  }
}

int qm_server_add_mux(struct qm_server *srv, const char *path) {
  struct qm_method_spec spec = {.path = path, .stream = mux_on_message, .ctx = srv};
  return qm_server_add_method(srv, &spec);
}

/* ---- arrivals ---- */

static void on_arrive(struct qm_tag *tag, int ok) {
  struct qm_call *c = QM_CONTAINER_OF(tag, struct qm_call, arrive_tag);
  struct qm_server *srv = c->srv;
  if (!ok || srv->shutting) {
    /* The server is shutting down: the slot comes back unused (or the call is dropped). */
    srv->armed--;
    if (ok && c->call) {
      c->arrived = 1;
      end_unary(c, QM_STATUS_UNAVAILABLE, "server is shutting down", NULL, 0);
      return;
    }
    call_unref(c);
    return;
  }
  c->arrived = 1;
  srv->armed--;
  arm(srv, c->method); /* keep the slot count constant */
  if (!c->method) {
    srv->stats.unimplemented++;
    char msg[300];
    snprintf(msg, sizeof msg, "unknown method %.*s", (int)GRPC_SLICE_LENGTH(c->details.method),
             (const char *)GRPC_SLICE_START_PTR(c->details.method));
    end_unary(c, QM_STATUS_UNIMPLEMENTED, msg, NULL, 0);
    return;
  }
  srv->stats.calls++;
  struct qm_method_spec *s = &c->method->spec;
  if (s->stream) {
    if (s->stream == mux_on_message) mux_join(c);
    start_stream(c);
    return;
  }
  uint8_t *req = NULL;
  size_t len = 0;
  if (!c->payload) {
    end_unary(c, QM_STATUS_INVALID_ARGUMENT, "missing request message", NULL, 0);
    return;
  }
  if (qm__buffer_read(c->payload, &req, &len) != 0) {
    end_unary(c, QM_STATUS_INTERNAL, "cannot read request message", NULL, 0);
    return;
  }
  s->unary(s->ctx, c, req ? req : empty_message, len);
  free(req);
}

static void arm(struct qm_server *srv, struct qm_method *m) {
  if (srv->shutting) return;
  struct qm_call *c = call_new(srv, m);
  if (!c) return; /* out of memory: one slot fewer; calls queue in libgrpc meanwhile */
  c->arrive_tag.fn = on_arrive;
  c->recv_tag.fn = on_recv;
  c->send_tag.fn = on_send;
  c->close_tag.fn = on_close;
  c->final_tag.fn = on_final;
  grpc_call_error e;
  if (m) {
    e = grpc_server_request_registered_call(srv->server, m->handle, &c->call, &c->deadline, &c->md,
                                            m->spec.unary ? &c->payload : NULL, srv->loop->cq,
                                            srv->loop->cq, &c->arrive_tag);
  } else {
    e = grpc_server_request_call(srv->server, &c->call, &c->details, &c->md, srv->loop->cq,
                                 srv->loop->cq, &c->arrive_tag);
  }
  if (e != GRPC_CALL_OK) call_unref(c);
  else srv->armed++;
}

int qm_server_start(struct qm_server *srv, struct qm_err *err) {
  srv->shutdown_tag.fn = NULL;
  grpc_server_start(srv->server);
  srv->started = 1;
  for (size_t i = 0; i < srv->nmethods; i++)
    for (int k = 0; k < QM_SLOTS_PER_METHOD; k++) arm(srv, &srv->methods[i]);
  for (int k = 0; k < QM_GENERIC_SLOTS; k++) arm(srv, NULL);
  (void)err;
  return 0;
}

/* ---- shutdown (driven by the loop) ---- */

static void on_shutdown(struct qm_tag *tag, int ok) {
  (void)ok;
  struct qm_server *srv = QM_CONTAINER_OF(tag, struct qm_server, shutdown_tag);
  srv->shutdown_done = 1;
}

void qm__server_begin_shutdown(struct qm_server *srv) {
  if (srv->shutting) return;
  for (size_t i = 0; i < srv->ndrains; i++) srv->drains[i].fn(srv->drains[i].ctx);
  srv->shutting = 1;
  /* Mux streams end once their frames have their replies (new frames are refused). */
  for (struct qm_call *m = srv->mux_streams, *next; m; m = next) {
    next = m->mux_next;
    if (!m->frames_open) qm_call_finish(m, QM_STATUS_OK, NULL);
  }
  if (!srv->started) {
    srv->shutdown_done = 1;
    return;
  }
  srv->shutdown_tag.fn = on_shutdown;
  grpc_server_shutdown_and_notify(srv->server, srv->loop->cq, &srv->shutdown_tag);
}

void qm__server_cancel_all(struct qm_server *srv) {
  if (srv->started) grpc_server_cancel_all_calls(srv->server);
}

int qm__server_idle(const struct qm_server *srv) { return srv->stats.live == srv->armed + srv->mux_idle; }

int qm__server_done(const struct qm_server *srv) {
  return srv->shutdown_done && srv->stats.live == 0;
}

void qm_server_free(struct qm_server *srv) {
  if (!srv) return;
  grpc_server_destroy(srv->server);
  free(srv);
}
