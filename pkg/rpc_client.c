/* rpc_client.c: channels and async unary calls completing on a loop. A channel may bound
 * its calls: at most |max_inflight| started, at most |max_queued| waiting in FIFO order
 * (copied), and refuses the rest (-ENOBUFS) so that the caller can refuse upstream. A channel
 * may carry its calls as frames on one long-lived Mux stream instead (qm_channel_use_mux). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/grpc_security.h>

#include "mux_wire.h"
#include "rpc_internal.h"

#define QM_CALL_MD_MAX 8
#define QM_METHOD_PATH_MAX 128

struct chan_method {
  void *handle; /* grpc_channel_register_call's */
  char path[QM_METHOD_PATH_MAX];
};

struct mux_stream;

struct qm_channel {
  struct qm_loop *loop;
  grpc_channel *channel;
  char target[256];
  unsigned max_inflight, max_queued; /* 0: unbounded */
  struct qm_channel_stats st;
  struct qm_client_call *qhead, *qtail; /* waiting to start */
  struct chan_method methods[QM_CHANNEL_METHODS_MAX];
  size_t nmethods;
  struct chan_method *mux;   /* the Mux method, when the channel uses one */
  int mux_off;               /* the server has no Mux: unary calls */
  struct mux_stream *ms;     /* the open stream, or NULL */
  uint64_t next_frame_id;
};

/* One Mux stream. It lives while any of its operations is in flight; a channel points at it
 * until its status arrives, and then opens another for the next call. */
struct mux_stream {
  struct qm_channel *ch;
  struct qm_loop *loop;
  grpc_call *call;
  struct qm_tag md_tag, send_tag, recv_tag, status_tag;
  int refs; /* operations in flight */
  grpc_metadata_array init_md, trail_md;
  grpc_status_code status;
  grpc_slice details;
  grpc_byte_buffer *send_bb, *recv_bb;
  uint8_t *out; /* frames waiting for the send in flight, as one MuxFrames */
  size_t nout, cap;
  int sending, ended, answered;
  int ready;   /* the server's initial metadata came: the stream is connected */
  int expired; /* cancelled because a frame expired before it was: calls end DEADLINE_EXCEEDED */
  struct qm_client_call *head, *tail; /* calls sent on it, waiting for their reply frames */
  struct mux_stream *prev, *next;     /* the loop's streams */
};

struct qm_client_call {
  struct qm_tag tag;
  struct qm_loop *loop;
  struct qm_channel *ch;
  struct chan_method *method;
  uint8_t *req; /* the request until it is sent as a unary call (a frame may need it again) */
  size_t req_len;
  struct mux_stream *ms; /* sent as a frame on this stream, waiting for the reply */
  uint64_t frame_id;
  int64_t deadline_ns;   /* frames: the loop answers DEADLINE_EXCEEDED at this time */
  struct qm_client_call *mnext;
  grpc_call *call;
  grpc_metadata_array init_md, trail_md;
  grpc_byte_buffer *send_bb, *recv_bb;
  grpc_status_code status;
  grpc_slice details;
  grpc_metadata md[QM_CALL_MD_MAX];
  size_t nmd;
  unsigned timeout_ms;
  int wait_for_ready;
  int started;
  qm_reply_fn done;
  void *arg;
  struct qm_client_call *prev, *next; /* the loop's list of every call not yet done */
  struct qm_client_call *qnext;       /* the channel's waiting queue */
};

int qm_channel_new(struct qm_loop *loop, const char *target, const char *server_id,
                   struct qm_channel **out, struct qm_err *err) {
  struct qm_channel *ch = calloc(1, sizeof *ch);
  if (!ch) return qm_err_set(err, -ENOMEM, "out of memory");
  if (strlen(target) >= sizeof ch->target) {
    free(ch);
    return qm_err_set(err, -EINVAL, "target too long: %.64s...", target);
  }
  memcpy(ch->target, target, strlen(target) + 1);
  ch->channel = qm__channel_create(target, server_id);
  if (!ch->channel) {
    free(ch);
    return qm_err_set(err, -EINVAL, "cannot create a channel to %s", target);
  }
  ch->loop = loop;
  *out = ch;
  return 0;
}

void qm_channel_set_limits(struct qm_channel *ch, unsigned max_inflight, unsigned max_queued) {
  ch->max_inflight = max_inflight;
  ch->max_queued = max_queued;
}

void qm_channel_stats(const struct qm_channel *ch, struct qm_channel_stats *out) { *out = ch->st; }

int qm_channel_has_room(const struct qm_channel *ch) {
  return !ch->max_inflight || ch->st.inflight < ch->max_inflight || !ch->max_queued ||
         ch->st.queued < ch->max_queued;
}

void *qm_channel_method(struct qm_channel *ch, const char *path) {
  if (ch->nmethods == QM_CHANNEL_METHODS_MAX || strlen(path) >= QM_METHOD_PATH_MAX) return NULL;
  struct chan_method *m = &ch->methods[ch->nmethods];
  m->handle = grpc_channel_register_call(ch->channel, path, NULL, NULL);
  if (!m->handle) return NULL;
  snprintf(m->path, sizeof m->path, "%s", path);
  ch->nmethods++;
  return m;
}

void qm_channel_use_mux(struct qm_channel *ch, const char *path) { ch->mux = qm_channel_method(ch, path); }

const char *qm_channel_target(const struct qm_channel *ch) { return ch->target; }

void qm_channel_free(struct qm_channel *ch) {
  if (!ch) return;
  grpc_channel_destroy(ch->channel);
  free(ch);
}

static void list_remove(struct qm_client_call *cc) {
  struct qm_loop *loop = cc->loop;
  if (cc->prev) cc->prev->next = cc->next;
  else loop->calls = cc->next;
  if (cc->next) cc->next->prev = cc->prev;
  loop->ncalls--;
}

static void call_free(struct qm_client_call *cc) {
  free(cc->req);
  if (cc->send_bb) grpc_byte_buffer_destroy(cc->send_bb);
  if (cc->recv_bb) grpc_byte_buffer_destroy(cc->recv_bb);
  grpc_metadata_array_destroy(&cc->init_md);
  grpc_metadata_array_destroy(&cc->trail_md);
  grpc_slice_unref(cc->details);
  for (size_t i = 0; i < cc->nmd; i++) {
    grpc_slice_unref(cc->md[i].key);
    grpc_slice_unref(cc->md[i].value);
  }
  if (cc->call) grpc_call_unref(cc->call);
  free(cc);
}

static void start_next(struct qm_channel *ch);

/* finish: the one place a call's callback runs. */
static void finish(struct qm_client_call *cc, int status, const char *details, const uint8_t *resp, size_t len) {
  struct qm_channel *ch = cc->ch;
  list_remove(cc);
  if (cc->started) ch->st.inflight--;
  if (status != QM_STATUS_OK) ch->st.failed++;
  cc->done(cc->arg, status, details, resp, len);
  call_free(cc);
  start_next(ch);
}

static void on_complete(struct qm_tag *tag, int ok) {
  struct qm_client_call *cc = QM_CONTAINER_OF(tag, struct qm_client_call, tag);
  int status = ok ? (int)cc->status : QM_STATUS_UNAVAILABLE;
  char details[512];
  size_t n = ok ? GRPC_SLICE_LENGTH(cc->details) : 0;
  if (n >= sizeof details) n = sizeof details - 1;
  if (n) memcpy(details, GRPC_SLICE_START_PTR(cc->details), n);
  details[n] = '\0';
  uint8_t *resp = NULL;
  size_t len = 0;
  if (status == QM_STATUS_OK) {
    if (!cc->recv_bb) {
      status = QM_STATUS_INTERNAL;
      snprintf(details, sizeof details, "reply carried no message");
    } else if (qm__buffer_read(cc->recv_bb, &resp, &len) != 0) {
      status = QM_STATUS_INTERNAL;
      snprintf(details, sizeof details, "cannot read reply");
    }
  }
  static const uint8_t empty[1];
  finish(cc, status, details, resp ? resp : empty, len);
  free(resp);
}

/* start_unary: creates the grpc call and starts its one batch. 0 or -EIO. */
static int start_unary(struct qm_client_call *cc) {
  struct qm_channel *ch = cc->ch;
  cc->call = grpc_channel_create_registered_call(ch->channel, NULL, GRPC_PROPAGATE_DEFAULTS, cc->loop->cq,
                                                 cc->method->handle, qm__deadline_ms(cc->timeout_ms), NULL);
  if (!cc->call) return -ENOMEM;
  /* The request's buffer goes to libgrpc as it is (no copy). */
  grpc_slice slice = cc->req_len ? grpc_slice_new(cc->req, cc->req_len, free) : grpc_empty_slice();
  if (!cc->req_len) free(cc->req);
  cc->req = NULL;
  cc->send_bb = grpc_raw_byte_buffer_create(&slice, 1);
  grpc_slice_unref(slice);
  grpc_op ops[6];
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[0].data.send_initial_metadata.count = cc->nmd;
  ops[0].data.send_initial_metadata.metadata = cc->nmd ? cc->md : NULL;
  ops[0].flags = cc->wait_for_ready ? GRPC_INITIAL_METADATA_WAIT_FOR_READY : 0;
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = cc->send_bb;
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[3].data.recv_initial_metadata.recv_initial_metadata = &cc->init_md;
  ops[4].op = GRPC_OP_RECV_MESSAGE;
  ops[4].data.recv_message.recv_message = &cc->recv_bb;
  ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  ops[5].data.recv_status_on_client.trailing_metadata = &cc->trail_md;
  ops[5].data.recv_status_on_client.status = &cc->status;
  ops[5].data.recv_status_on_client.status_details = &cc->details;
  if (grpc_call_start_batch(cc->call, ops, 6, &cc->tag, NULL) != GRPC_CALL_OK) return -EIO;
  return 0;
}

static int mux_start(struct qm_client_call *cc);

/* start: as a frame on the channel's Mux stream, or as a unary call. 0 or a negative code. */
static int start(struct qm_client_call *cc) {
  struct qm_channel *ch = cc->ch;
  int rc = ch->mux && !ch->mux_off && !cc->nmd ? mux_start(cc) : start_unary(cc);
  if (rc) return rc;
  cc->started = 1;
  ch->st.inflight++;
  ch->st.started++;
  return 0;
}

static void start_next(struct qm_channel *ch) {
  while (ch->qhead && (!ch->max_inflight || ch->st.inflight < ch->max_inflight)) {
    struct qm_client_call *cc = ch->qhead;
    ch->qhead = cc->qnext;
    if (!ch->qhead) ch->qtail = NULL;
    ch->st.queued--;
    if (start(cc)) finish(cc, QM_STATUS_INTERNAL, "cannot start the call", NULL, 0);
  }
}

/* ---- Mux: calls as frames on one stream ---- */

static void mux_unref(struct mux_stream *ms) {
  if (--ms->refs > 0) return;
  struct qm_loop *loop = ms->loop;
  if (ms->prev) ms->prev->next = ms->next;
  else loop->streams = ms->next;
  if (ms->next) ms->next->prev = ms->prev;
  loop->nstreams--;
  grpc_metadata_array_destroy(&ms->init_md);
  grpc_metadata_array_destroy(&ms->trail_md);
  grpc_slice_unref(ms->details);
  if (ms->send_bb) grpc_byte_buffer_destroy(ms->send_bb);
  if (ms->recv_bb) grpc_byte_buffer_destroy(ms->recv_bb);
  if (ms->call) grpc_call_unref(ms->call);
  free(ms->out);
  free(ms);
}

static int mux_batch(struct mux_stream *ms, const grpc_op *ops, size_t n, struct qm_tag *tag) {
  if (grpc_call_start_batch(ms->call, ops, n, tag, NULL) != GRPC_CALL_OK) return -EIO;
  ms->refs++;
  return 0;
}

/* mux_unlink: takes |cc| off its stream's waiting list. */
static void mux_unlink(struct qm_client_call *cc) {
  struct mux_stream *ms = cc->ms;
  struct qm_client_call **link = &ms->head, *prev = NULL;
  while (*link && *link != cc) {
    prev = *link;
    link = &(*link)->mnext;
  }
  if (*link) {
    *link = cc->mnext;
    if (ms->tail == cc) ms->tail = prev;
  }
  cc->ms = NULL;
  cc->mnext = NULL;
}

static void mux_flush(struct mux_stream *ms) {
  if (ms->sending || !ms->nout || ms->ended) return;
  /* Every frame queued meanwhile leaves in this one message; libgrpc takes the buffer. */
  grpc_slice slice = grpc_slice_new(ms->out, ms->nout, free);
  ms->out = NULL;
  ms->nout = ms->cap = 0;
  ms->send_bb = grpc_raw_byte_buffer_create(&slice, 1);
  grpc_slice_unref(slice);
  grpc_op op;
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_SEND_MESSAGE;
  op.data.send_message.send_message = ms->send_bb;
  if (mux_batch(ms, &op, 1, &ms->send_tag) == 0) ms->sending = 1;
  else grpc_call_cancel(ms->call, NULL); /* its status fails the frames */
}

static void on_mux_send(struct qm_tag *tag, int ok) {
  struct mux_stream *ms = QM_CONTAINER_OF(tag, struct mux_stream, send_tag);
  ms->sending = 0;
  grpc_byte_buffer_destroy(ms->send_bb);
  ms->send_bb = NULL;
  if (ok) mux_flush(ms);
  mux_unref(ms);
}

static void on_mux_md(struct qm_tag *tag, int ok) {
  struct mux_stream *ms = QM_CONTAINER_OF(tag, struct mux_stream, md_tag);
  if (ok) ms->ready = 1;
  mux_unref(ms);
}

static void mux_arm_recv(struct mux_stream *ms) {
  grpc_op op;
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_RECV_MESSAGE;
  op.data.recv_message.recv_message = &ms->recv_bb;
  if (mux_batch(ms, &op, 1, &ms->recv_tag)) grpc_call_cancel(ms->call, NULL);
}

/* on_mux_recv: each reply frame answers the call with its id (none: it timed out already). */
static void on_mux_recv(struct qm_tag *tag, int ok) {
  struct mux_stream *ms = QM_CONTAINER_OF(tag, struct mux_stream, recv_tag);
  grpc_byte_buffer *bb = ms->recv_bb;
  ms->recv_bb = NULL;
  uint8_t *msg = NULL;
  size_t len = 0;
  if (ok && bb && qm__buffer_read(bb, &msg, &len) == 0 && qm_mux_frames_count(msg, len) >= 0) {
    const uint8_t *at = msg ? msg : (const uint8_t *)"", *end = at + len;
    struct qm_mux_frame f;
    while (qm_mux_frames_next(&at, end, &f) > 0) {
      struct qm_client_call *cc = ms->head;
      while (cc && cc->frame_id != f.id) cc = cc->mnext;
      if (!cc) continue;
      mux_unlink(cc);
      ms->answered = 1;
      char details[512];
      size_t n = f.message.n < sizeof details - 1 ? f.message.n : sizeof details - 1;
      if (n) memcpy(details, f.message.p, n);
      details[n] = '\0';
      static const uint8_t empty[1];
      finish(cc, f.status, details, f.payload.n ? f.payload.p : empty, f.payload.n);
    }
    if (!ms->ended) mux_arm_recv(ms);
  } else if (ok && bb) {
    grpc_call_cancel_with_status(ms->call, GRPC_STATUS_INTERNAL, "malformed MuxFrames from the server", NULL);
  }
  free(msg);
  if (bb) grpc_byte_buffer_destroy(bb);
  mux_unref(ms);
}

/* on_mux_status: the stream is over. Its waiting calls fail as calls on a broken connection
 * would, or, from a server without Mux, start again as unary calls. */
static void on_mux_status(struct qm_tag *tag, int ok) {
  struct mux_stream *ms = QM_CONTAINER_OF(tag, struct mux_stream, status_tag);
  struct qm_channel *ch = ms->ch;
  ms->ended = 1;
  if (ch->ms == ms) ch->ms = NULL;
  int status = ok ? (int)ms->status : QM_STATUS_UNAVAILABLE;
  if (ms->expired && status == QM_STATUS_CANCELLED) status = QM_STATUS_DEADLINE_EXCEEDED;
  int fallback = status == QM_STATUS_UNIMPLEMENTED && !ms->answered;
  if (fallback) ch->mux_off = 1;
  char details[512];
  size_t n = ok ? GRPC_SLICE_LENGTH(ms->details) : 0;
  if (n >= sizeof details) n = sizeof details - 1;
  if (n) memcpy(details, GRPC_SLICE_START_PTR(ms->details), n);
  details[n] = '\0';
  if (!n) snprintf(details, sizeof details, "the Mux stream to %s ended", ch->target);
  while (ms->head) {
    struct qm_client_call *cc = ms->head;
    mux_unlink(cc);
    if (fallback && cc->req && start_unary(cc) == 0) continue;
    finish(cc, status == QM_STATUS_OK ? QM_STATUS_UNAVAILABLE : status, details, NULL, 0);
  }
  mux_unref(ms);
}

/* mux_open: the channel's stream (waiting for ready as |wait_for_ready| says). */
static int mux_open(struct qm_channel *ch, int wait_for_ready) {
  struct qm_loop *loop = ch->loop;
  struct mux_stream *ms = calloc(1, sizeof *ms);
  if (!ms) return -ENOMEM;
  ms->ch = ch;
  ms->loop = loop;
  ms->md_tag.fn = on_mux_md;
  ms->send_tag.fn = on_mux_send;
  ms->recv_tag.fn = on_mux_recv;
  ms->status_tag.fn = on_mux_status;
  ms->details = grpc_empty_slice();
  grpc_metadata_array_init(&ms->init_md);
  grpc_metadata_array_init(&ms->trail_md);
  ms->call = grpc_channel_create_registered_call(ch->channel, NULL, GRPC_PROPAGATE_DEFAULTS, loop->cq,
                                                 ch->mux->handle, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
  ms->refs = 1; /* until the operations below are started */
  ms->next = loop->streams;
  if (loop->streams) loop->streams->prev = ms;
  loop->streams = ms;
  loop->nstreams++;
  int rc = ms->call ? 0 : -ENOMEM;
  grpc_op ops[2];
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[0].flags = wait_for_ready ? GRPC_INITIAL_METADATA_WAIT_FOR_READY : 0;
  ops[1].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[1].data.recv_initial_metadata.recv_initial_metadata = &ms->init_md;
  if (!rc) rc = mux_batch(ms, ops, 2, &ms->md_tag);
  if (!rc) {
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[0].data.recv_status_on_client.trailing_metadata = &ms->trail_md;
    ops[0].data.recv_status_on_client.status = &ms->status;
    ops[0].data.recv_status_on_client.status_details = &ms->details;
    rc = mux_batch(ms, ops, 1, &ms->status_tag);
    if (rc) grpc_call_cancel(ms->call, NULL); /* the metadata batch then completes */
  }
  if (rc) {
    ms->ended = 1;
    mux_unref(ms);
    return rc;
  }
  mux_arm_recv(ms);
  mux_unref(ms); /* the operations hold it now */
  ch->ms = ms;
  return 0;
}

/* mux_start: |cc| as a frame on the channel's stream (opened when there is none). */
static int mux_start(struct qm_client_call *cc) {
  struct qm_channel *ch = cc->ch;
  if (!ch->ms) {
    int rc = mux_open(ch, cc->wait_for_ready);
    if (rc) return rc;
  }
  struct mux_stream *ms = ch->ms;
  struct qm_mux_frame f = {.id = ++ch->next_frame_id,
                           .method = {(const uint8_t *)cc->method->path, strlen(cc->method->path)},
                           .payload = {cc->req, cc->req_len}};
  size_t n = qm_mux_frame_len(&f);
  if (ms->cap - ms->nout < n) {
    size_t cap = ms->cap ? ms->cap : 4096;
    while (cap - ms->nout < n) cap *= 2;
    uint8_t *grown = realloc(ms->out, cap);
    if (!grown) return -ENOMEM;
    ms->out = grown;
    ms->cap = cap;
  }
  ms->nout = (size_t)(qm_mux_frame_put(&f, ms->out + ms->nout) - ms->out);
  cc->ms = ms;
  cc->frame_id = f.id;
  cc->deadline_ns = qm_mono_ns() + (int64_t)cc->timeout_ms * 1000000;
  if (ms->tail) ms->tail->mnext = cc;
  else ms->head = cc;
  ms->tail = cc;
  mux_flush(ms);
  return 0;
}

void qm__client_expire(struct qm_loop *loop, int64_t now) {
  struct qm_client_call *cc = loop->calls, *next;
  for (; cc; cc = next) {
    next = cc->next;
    if (!cc->ms || now < cc->deadline_ns) continue;
    struct mux_stream *ms = cc->ms;
    if (!ms->ready && !ms->ended) {
      /* Never connected: a unary call would not have been sent; neither may these frames
       * be, late. The stream goes, and its calls with it. */
      ms->expired = 1;
      grpc_call_cancel(ms->call, NULL);
    }
    mux_unlink(cc);
    finish(cc, QM_STATUS_DEADLINE_EXCEEDED, "Deadline Exceeded", NULL, 0);
    next = loop->calls; /* callbacks may have changed the list */
  }
}

int qm_channel_call(struct qm_channel *ch, void *method, const uint8_t *req, size_t len,
                    const struct qm_rpc_md *md, size_t nmd, unsigned timeout_ms,
                    int wait_for_ready, qm_reply_fn done, void *arg) {
  if (nmd > QM_CALL_MD_MAX) return -E2BIG;
  if (!method) return -EINVAL; /* qm_channel_method refused it (table full, path too long) */
  struct qm_loop *loop = ch->loop;
  if (loop->stopping && loop->cancelled) return -ESHUTDOWN;
  int must_wait = ch->max_inflight && ch->st.inflight >= ch->max_inflight;
  if (must_wait && ch->max_queued && ch->st.queued >= ch->max_queued) {
    ch->st.refused++;
    return -ENOBUFS;
  }
  struct qm_client_call *cc = calloc(1, sizeof *cc);
  if (!cc) return -ENOMEM;
  cc->tag.fn = on_complete;
  cc->loop = loop;
  cc->ch = ch;
  cc->method = method;
  cc->timeout_ms = timeout_ms;
  cc->wait_for_ready = wait_for_ready;
  cc->done = done;
  cc->arg = arg;
  cc->details = grpc_empty_slice();
  grpc_metadata_array_init(&cc->init_md);
  grpc_metadata_array_init(&cc->trail_md);
  for (size_t i = 0; i < nmd; i++) {
    /* Copies: a call may wait in the queue past the caller's stack frame. */
    cc->md[i].key = grpc_slice_from_copied_string(md[i].key);
    cc->md[i].value = grpc_slice_from_copied_buffer(md[i].value, md[i].value_len);
  }
  cc->nmd = nmd;
  cc->req = malloc(len ? len : 1);
  if (!cc->req) {
    call_free(cc);
    return -ENOMEM;
  }
  if (len) memcpy(cc->req, req, len);
  cc->req_len = len;
  if (must_wait) {
    if (ch->qtail) ch->qtail->qnext = cc;
    else ch->qhead = cc;
    ch->qtail = cc;
    ch->st.queued++;
    if (ch->st.queued > ch->st.queued_peak) ch->st.queued_peak = ch->st.queued;
  } else if (start(cc)) {
    call_free(cc);
    return -EIO;
  }
  cc->next = loop->calls;
  if (loop->calls) loop->calls->prev = cc;
  loop->calls = cc;
  loop->ncalls++;
  return 0;
}

void qm__client_cancel_all(struct qm_loop *loop) {
  /* Started calls complete through the queue; waiting ones never started: end them here. */
  struct qm_client_call *cc = loop->calls, *next;
  for (; cc; cc = next) {
    next = cc->next;
    if (cc->started && cc->call) grpc_call_cancel(cc->call, NULL);
  }
  /* Frames end with their stream's status. */
  for (struct mux_stream *ms = loop->streams; ms; ms = ms->next)
    if (!ms->ended) grpc_call_cancel(ms->call, NULL);
  for (cc = loop->calls; cc; cc = next) {
    next = cc->next;
    if (!cc->started) {
      struct qm_channel *ch = cc->ch;
      struct qm_client_call **link = &ch->qhead, *prev = NULL;
      while (*link != cc) {
        prev = *link;
        link = &(*link)->qnext;
      }
      *link = cc->qnext;
      if (ch->qtail == cc) ch->qtail = prev;
      ch->st.queued--;
      finish(cc, QM_STATUS_CANCELLED, "cancelled: the process is stopping", NULL, 0);
      next = loop->calls; /* callbacks may have changed the list */
    }
  }
}
