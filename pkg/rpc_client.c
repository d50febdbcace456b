/* rpc_client.c: channels and async unary calls completing on a loop. A channel may bound
 * its calls: at most |max_inflight| started, at most |max_queued| waiting in FIFO order
 * (copied), and refuses the rest (-ENOBUFS) so that the caller can refuse upstream. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/grpc_security.h>

#include "rpc_internal.h"

#define QM_CALL_MD_MAX 8

struct qm_channel {
  struct qm_loop *loop;
  grpc_channel *channel;
  char target[256];
  unsigned max_inflight, max_queued; /* 0: unbounded */
  struct qm_channel_stats st;
  struct qm_client_call *qhead, *qtail; /* waiting to start */
};

struct qm_client_call {
  struct qm_tag tag;
  struct qm_loop *loop;
  struct qm_channel *ch;
  void *method;
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
  return grpc_channel_register_call(ch->channel, path, NULL, NULL);
}

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

/* start: creates the grpc call and starts its one batch. 0 or -EIO. */
static int start(struct qm_client_call *cc) {
  struct qm_channel *ch = cc->ch;
  cc->call = grpc_channel_create_registered_call(ch->channel, NULL, GRPC_PROPAGATE_DEFAULTS, cc->loop->cq,
                                                 cc->method, qm__deadline_ms(cc->timeout_ms), NULL);
  if (!cc->call) return -ENOMEM;
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

int qm_channel_call(struct qm_channel *ch, void *method, const uint8_t *req, size_t len,
                    const struct qm_rpc_md *md, size_t nmd, unsigned timeout_ms,
                    int wait_for_ready, qm_reply_fn done, void *arg) {
  if (nmd > QM_CALL_MD_MAX) return -E2BIG;
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
  cc->send_bb = qm__buffer_from(req, len);
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
    if (cc->started) grpc_call_cancel(cc->call, NULL);
  }
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
