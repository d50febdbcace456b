/* rpc_loop.c: the event loop: one completion queue, one thread, tags that call back. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rpc_internal.h"

#define QM_LOOP_WAKE_MS 20 /* upper bound on tick latency and stop latency */
#define QM_LOOP_EXPIRY_NS 5000000 /* frames on Mux streams: deadline checked this often */

static int64_t clock_ns(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
int64_t qm_now_ns(void) { return clock_ns(CLOCK_REALTIME); }
int64_t qm_mono_ns(void) { return clock_ns(CLOCK_MONOTONIC); }

/* Debian's abseil (which libgrpc's mutexes come from) is built with its mutex deadlock
 * detector on: every lock updates a lock-order graph, about 3% of every role's CPU in the
 * profiles. gRPC's locking is gRPC's to check, not ours, so it is switched off (kIgnore = 0)
 * when the function is there; weak, so another abseil build simply skips it. */
extern void _ZN4absl7debian329SetMutexDeadlockDetectionModeENS0_15OnDeadlockCycleE(int) __attribute__((weak));

void qm_rpc_init(void) {
  if (_ZN4absl7debian329SetMutexDeadlockDetectionModeENS0_15OnDeadlockCycleE)
    _ZN4absl7debian329SetMutexDeadlockDetectionModeENS0_15OnDeadlockCycleE(0);
  grpc_init();
}
void qm_rpc_shutdown(void) { grpc_shutdown_blocking(); }

static void signal_set(sigset_t *set) {
  sigemptyset(set);
  sigaddset(set, SIGINT);
  sigaddset(set, SIGTERM);
  sigaddset(set, SIGHUP);
}

void qm_rpc_block_signals(void) {
  sigset_t set;
  signal_set(&set);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  signal(SIGPIPE, SIG_IGN);
}

int qm_rpc_wait_signal(unsigned timeout_ms) {
  sigset_t set;
  signal_set(&set);
  struct timespec ts = {.tv_sec = timeout_ms / 1000, .tv_nsec = (long)(timeout_ms % 1000) * 1000000};
  int sig = sigtimedwait(&set, NULL, &ts);
  return sig > 0 ? sig : 0;
}

const char *qm_status_name(int code) {
  static const char *names[] = {"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT",
                                "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
                                "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
                                "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
                                "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
                                "UNAUTHENTICATED"};
  if (code < 0 || code > 16) return "UNKNOWN_STATUS";
  return names[code];
}

gpr_timespec qm__deadline_ms(unsigned ms) {
  return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(ms, GPR_TIMESPAN));
}

static grpc_arg int_arg(const char *key, int value) {
  grpc_arg a;
  a.type = GRPC_ARG_INTEGER;
  a.key = (char *)key;
  a.value.integer = value;
  return a;
}

grpc_channel_args *qm__channel_args(int server) {
  /* Static: the values never change and libgrpc copies channel args. */
  static grpc_arg client_args[5], server_args[4];
  static grpc_channel_args client = {0, client_args}, srv = {0, server_args};
  if (server) {
    if (srv.num_args == 0) {
      server_args[0] = int_arg(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, QM_RPC_MSG_MAX);
      server_args[1] = int_arg(GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, QM_RPC_MSG_MAX);
      /* A second server on the same port must fail, not silently share it. */
      server_args[2] = int_arg(GRPC_ARG_ALLOW_REUSEPORT, 0);
      server_args[3] = int_arg(GRPC_ARG_MAX_METADATA_SIZE, 16 * 1024);
      srv.num_args = 4;
    }
    return &srv;
  }
  if (client.num_args == 0) {
    client_args[0] = int_arg(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, QM_RPC_MSG_MAX);
    client_args[1] = int_arg(GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, QM_RPC_MSG_MAX);
    client_args[2] = int_arg(GRPC_ARG_ENABLE_RETRIES, 0);
    client_args[3] = int_arg(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    /* Reconnect quickly after a peer restarts (default backoff grows to 120 s). */
    client_args[4] = int_arg(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    client.num_args = 5;
  }
  return &client;
}

int qm_loop_new(struct qm_loop **out) {
  struct qm_loop *loop = calloc(1, sizeof *loop);
  if (!loop) return -ENOMEM;
  loop->cq = grpc_completion_queue_create_for_next(NULL);
  if (!loop->cq) {
    free(loop);
    return -ENOMEM;
  }
  *out = loop;
  return 0;
}

int qm_loop_add_tick(struct qm_loop *loop, unsigned every_ms, qm_tick_fn fn, void *arg) {
  if (loop->nticks == QM_LOOP_TICKS_MAX) return -ENOSPC;
  struct qm_tick *t = &loop->ticks[loop->nticks++];
  t->fn = fn;
  t->arg = arg;
  t->every_ns = (int64_t)(every_ms ? every_ms : 1) * 1000000;
  t->next_ns = qm_mono_ns() + t->every_ns;
  return 0;
}

static void run_ticks(struct qm_loop *loop, int64_t now) {
  for (size_t i = 0; i < loop->nticks; i++) {
    struct qm_tick *t = &loop->ticks[i];
    if (now >= t->next_ns) {
      t->next_ns = now + t->every_ns;
      t->fn(t->arg);
    }
  }
}

/* Stopping runs on the loop thread in steps: shut servers down (in-flight calls go on),
 * after the grace period cancel what is left, and shut the queue down once every server
 * reported and every call context is gone. */
static void advance_stop(struct qm_loop *loop, int64_t now) {
  if (!loop->stopping) {
    loop->stopping = 1;
    loop->hard_stop_ns = now + (int64_t)atomic_load(&loop->grace_ms) * 1000000;
    for (size_t i = 0; i < loop->nservers; i++) qm__server_begin_shutdown(loop->servers[i]);
  }
  /* Nothing in flight: do not wait out the grace for clients that merely keep a connection
   * open (libgrpc's shutdown waits for every connection to close). */
  int idle = loop->ncalls == 0;
  for (size_t i = 0; idle && i < loop->nservers; i++) idle = qm__server_idle(loop->servers[i]);
  if (!loop->cancelled && (now >= loop->hard_stop_ns || idle)) {
    loop->cancelled = 1;
    for (size_t i = 0; i < loop->nservers; i++) qm__server_cancel_all(loop->servers[i]);
    qm__client_cancel_all(loop);
  }
  if (loop->cq_shutdown) return;
  for (size_t i = 0; i < loop->nservers; i++)
    if (!qm__server_done(loop->servers[i])) return;
  if (loop->ncalls) {
    /* Servers are gone: the remaining client calls serve nobody waiting for them. */
    if (!loop->cancelled) {
      loop->cancelled = 1;
      qm__client_cancel_all(loop);
    }
    return;
  }
  if (loop->nstreams) {
    /* Idle Mux streams: cancelled, their operations complete through the queue. */
    if (!loop->streams_cancelled) {
      loop->streams_cancelled = 1;
      qm__client_cancel_all(loop);
    }
    return;
  }
  loop->cq_shutdown = 1;
  grpc_completion_queue_shutdown(loop->cq);
}

void qm_loop_run(struct qm_loop *loop) {
  for (;;) {
    int64_t now = qm_mono_ns();
    if (atomic_load(&loop->stop_requested)) advance_stop(loop, now);
    /* Sleep until the next tick is due (at most QM_LOOP_WAKE_MS, to notice a stop). */
    int64_t wait_ns = (int64_t)QM_LOOP_WAKE_MS * 1000000;
    for (size_t i = 0; i < loop->nticks; i++)
      if (loop->ticks[i].next_ns - now < wait_ns) wait_ns = loop->ticks[i].next_ns - now;
    if (wait_ns < 0) wait_ns = 0;
    grpc_event ev = grpc_completion_queue_next(
        loop->cq, gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_nanos(wait_ns, GPR_TIMESPAN)), NULL);
    if (ev.type == GRPC_QUEUE_SHUTDOWN) break;
    if (ev.type == GRPC_OP_COMPLETE) {
      struct qm_tag *tag = ev.tag;
      tag->fn(tag, ev.success);
    }
    int64_t after = qm_mono_ns();
    run_ticks(loop, after);
    if (loop->nstreams && after >= loop->next_expiry_ns) {
      loop->next_expiry_ns = after + QM_LOOP_EXPIRY_NS;
      qm__client_expire(loop, after);
    }
  }
}

static void *loop_thread(void *arg) {
  qm_loop_run(arg);
  return NULL;
}

int qm_loop_start(struct qm_loop *loop) {
  if (pthread_create(&loop->thread, NULL, loop_thread, loop) != 0) return -EAGAIN;
  loop->thread_started = 1;
  return 0;
}

void qm_loop_join(struct qm_loop *loop) {
  if (loop->thread_started) {
    pthread_join(loop->thread, NULL);
    loop->thread_started = 0;
  }
}

void qm_loop_stop(struct qm_loop *loop, unsigned grace_ms) {
  atomic_store(&loop->grace_ms, grace_ms);
  atomic_store(&loop->stop_requested, 1);
}

int qm_loop_stopping(const struct qm_loop *loop) {
  return atomic_load(&((struct qm_loop *)loop)->stop_requested);
}

void qm_loop_free(struct qm_loop *loop) {
  if (!loop) return;
  if (loop->cq) grpc_completion_queue_destroy(loop->cq);
  free(loop);
}

grpc_byte_buffer *qm__buffer_from(const uint8_t *data, size_t len) {
  grpc_slice s = grpc_slice_from_copied_buffer((const char *)data, len);
  grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
  grpc_slice_unref(s);
  return bb;
}

int qm__buffer_read(grpc_byte_buffer *bb, uint8_t **out, size_t *len) {
  grpc_byte_buffer_reader reader;
  *out = NULL;
  *len = 0;
  if (!grpc_byte_buffer_reader_init(&reader, bb)) return -EINVAL;
  grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
  grpc_byte_buffer_reader_destroy(&reader);
  size_t n = GRPC_SLICE_LENGTH(all);
  int rc = 0;
  if (n) {
    *out = malloc(n);
    if (*out) {
      memcpy(*out, GRPC_SLICE_START_PTR(all), n);
      *len = n;
    } else {
      rc = -ENOMEM;
    }
  }
  grpc_slice_unref(all);
  return rc;
}
