/* rpc.h: the project's rpc core on gRPC's C core: one completion queue per event loop,
 * servers with unary and bidi-streaming methods, async client channels. No <grpc/...> type
 * leaks out of pkg/rpc*: everything else includes only this header.
 *
 * Threading: every callback runs on the loop's thread; the loop's objects are not
 * thread-safe except where a function says so. */
#ifndef QM_RPC_H
#define QM_RPC_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* gRPC status codes (same values as grpc_status_code). */
enum {
  QM_STATUS_OK = 0,
  QM_STATUS_CANCELLED = 1,
  QM_STATUS_UNKNOWN = 2,
  QM_STATUS_INVALID_ARGUMENT = 3,
  QM_STATUS_DEADLINE_EXCEEDED = 4,
  QM_STATUS_NOT_FOUND = 5,
  QM_STATUS_ALREADY_EXISTS = 6,
  QM_STATUS_PERMISSION_DENIED = 7,
  QM_STATUS_RESOURCE_EXHAUSTED = 8,
  QM_STATUS_FAILED_PRECONDITION = 9,
  QM_STATUS_ABORTED = 10,
  QM_STATUS_OUT_OF_RANGE = 11,
  QM_STATUS_UNIMPLEMENTED = 12,
  QM_STATUS_INTERNAL = 13,
  QM_STATUS_UNAVAILABLE = 14,
  QM_STATUS_DATA_LOSS = 15,
  QM_STATUS_UNAUTHENTICATED = 16,
};

#define QM_RPC_MSG_MAX (4 << 20)  /* max message size, both directions */
#define QM_RPC_MD_VALUE_MAX 1024  /* longest metadata value a handler accepts */

/* ---- process-wide ---- */

/* qm_rpc_init / qm_rpc_shutdown: grpc_init and grpc_shutdown_blocking. Call init once,
 * after blocking SIGINT/SIGTERM in every thread (qm_rpc_block_signals). */
void qm_rpc_init(void);
void qm_rpc_shutdown(void);
void qm_rpc_block_signals(void);
/* qm_rpc_wait_signal: sigwait for SIGINT/SIGTERM/SIGHUP with a timeout; returns the signal
 * number, 0 on timeout. */
int qm_rpc_wait_signal(unsigned timeout_ms);
const char *qm_status_name(int code);
/* qm_rpc_tls_configure: every later server and channel of the process uses mutual TLS with
 * this CA and this instance's certificate and key (PEM files). Call before creating any. */
int qm_rpc_tls_configure(const char *ca, const char *cert, const char *key, struct qm_err *err);
int qm_rpc_tls_enabled(void);
int64_t qm_now_ns(void);      /* CLOCK_REALTIME, for timestamps on the wire */
int64_t qm_mono_ns(void);     /* CLOCK_MONOTONIC, for durations */

/* ---- event loop ---- */

struct qm_loop;
typedef void (*qm_tick_fn)(void *arg);

/* qm_loop_new: a completion queue and its state. Returns 0 or -ENOMEM. */
int qm_loop_new(struct qm_loop **out);
/* qm_loop_add_tick: calls |fn(arg)| on the loop thread about every |every_ms|. Before run. */
int qm_loop_add_tick(struct qm_loop *loop, unsigned every_ms, qm_tick_fn fn, void *arg);
/* qm_loop_run: runs callbacks on the calling thread until the loop has stopped (every server
 * shut down, every call finished, the queue drained). */
void qm_loop_run(struct qm_loop *loop);
/* qm_loop_start / qm_loop_join: run on a new thread. */
int qm_loop_start(struct qm_loop *loop);
void qm_loop_join(struct qm_loop *loop);
/* qm_loop_stop: thread-safe. Servers stop accepting calls; work in flight gets |grace_ms|
 * to finish, then everything left is cancelled and the loop returns. */
void qm_loop_stop(struct qm_loop *loop, unsigned grace_ms);
/* qm_loop_stopping: nonzero once qm_loop_stop was called (thread-safe). */
int qm_loop_stopping(const struct qm_loop *loop);
/* qm_loop_free: after the loop returned; NULL-safe. */
void qm_loop_free(struct qm_loop *loop);

/* ---- server ---- */

struct qm_server;
struct qm_call;

/* Unary handler: |req| is the whole request message (valid during the callback only). The
 * handler must end the call exactly once, now or later: qm_call_reply or qm_call_fail. */
typedef void (*qm_unary_fn)(void *ctx, struct qm_call *call, const uint8_t *req, size_t len);
/* Stream handler: once per received message; then once with msg == NULL when the client
 * half-closed (end of input). End the call with qm_call_finish. */
typedef void (*qm_stream_fn)(void *ctx, struct qm_call *call, const uint8_t *msg, size_t len);
/* Close notice for stream calls: the call is over (finished, cancelled or failed); the
 * call pointer dies right after. */
typedef void (*qm_close_fn)(void *ctx, struct qm_call *call);
/* Drain notice: the server is about to stop (health turns NOT_SERVING, streams finish). */
typedef void (*qm_drain_fn)(void *ctx);

struct qm_method_spec {
  const char *path;    /* "/package.Service/Method" */
  qm_unary_fn unary;   /* exactly one of unary / stream */
  qm_stream_fn stream;
  qm_close_fn on_close;
  void *ctx;
};

/* qm_server_new: a server on |loop|. Returns 0 or a negative code. */
int qm_server_new(struct qm_loop *loop, struct qm_server **out);
/* qm_server_add_method: before start; |spec| is copied (path is borrowed: keep it alive). */
int qm_server_add_method(struct qm_server *srv, const struct qm_method_spec *spec);
/* qm_server_add_mux: a bidi-streaming method at |path| (borrowed) that takes MuxFrames
 * (proto/qmesh/v1/qmesh.proto): each frame is a call of this server's unary method it names,
 * handled exactly as that method's call (qm_call_* work on it; its metadata, peer and
 * certificate are the stream's), its reply a frame back. Before start. */
int qm_server_add_mux(struct qm_server *srv, const char *path);
/* qm_server_on_drain: registers a drain notice (several allowed). */
int qm_server_on_drain(struct qm_server *srv, qm_drain_fn fn, void *ctx);
/* qm_server_listen: binds |addr| ("host:port"); returns the bound port (> 0) or a negative
 * code with the address in |err|. */
int qm_server_listen(struct qm_server *srv, const char *addr, struct qm_err *err);
int qm_server_start(struct qm_server *srv, struct qm_err *err);
/* qm_server_services: the distinct service names of the registered methods, in order.
 * Returns the count; |names| are borrowed from the server. */
size_t qm_server_services(const struct qm_server *srv, const char **names, size_t max);
/* Counters kept by the server itself. */
struct qm_server_stats {
  uint64_t calls;          /* calls accepted on registered methods */
  uint64_t unimplemented;  /* calls to unknown methods */
  uint64_t failed;         /* calls ended with a non-OK status */
  uint64_t live;           /* call contexts alive now */
};
void qm_server_stats(const struct qm_server *srv, struct qm_server_stats *out);
/* qm_server_free: after its loop returned; NULL-safe. */
void qm_server_free(struct qm_server *srv);

/* Ending a call. Each returns 0, or a negative code if the call was already ended. */
int qm_call_reply(struct qm_call *call, const uint8_t *msg, size_t len);
int qm_call_fail(struct qm_call *call, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Streams: queue one message (copied); -ENOBUFS when the send queue holds QM_CALL_SENDQ_MAX
 * messages (counted by the caller), -EPIPE if the call is over. */
#define QM_CALL_SENDQ_MAX 1024
int qm_call_send(struct qm_call *call, const uint8_t *msg, size_t len);
/* qm_call_finish: sends the status after every queued message. */
int qm_call_finish(struct qm_call *call, int status, const char *message);

/* qm_call_metadata: the value of request metadata |key| (lower case) and its length, or
 * NULL when absent. Borrowed from the call. */
const char *qm_call_metadata(const struct qm_call *call, const char *key, size_t *len);
/* qm_call_peer: the peer address ("ipv4:127.0.0.1:5555"), borrowed. */
const char *qm_call_peer(struct qm_call *call);
const char *qm_call_method(const struct qm_call *call);
/* qm_call_peer_identity: with mutual TLS, the client certificate's identity (its first
 * subject alternative name, else its common name) copied into |out|; returns 0, or -ENOENT
 * for a call without an authenticated peer (plaintext). */
int qm_call_peer_identity(struct qm_call *call, char *out, size_t cap);
void qm_call_set_user(struct qm_call *call, void *user);
void *qm_call_user(const struct qm_call *call);

/* ---- client ---- */

struct qm_channel;
struct qm_rpc_md {
  const char *key;
  const char *value;
  size_t value_len;
};

/* Completion of a unary client call: |status| and |details| (borrowed, may be ""); |resp|
 * holds the reply message when status is OK (borrowed for the callback). */
typedef void (*qm_reply_fn)(void *arg, int status, const char *details, const uint8_t *resp,
                            size_t len);

/* qm_channel_new: a channel to |target| ("host:port") whose calls complete on |loop|. With
 * mutual TLS the server must present a certificate for |server_id| (its instance id; NULL:
 * the target's host name). */
int qm_channel_new(struct qm_loop *loop, const char *target, const char *server_id,
                   struct qm_channel **out, struct qm_err *err);
/* qm_channel_set_limits: at most |max_inflight| calls started at once (0: unbounded); beyond
 * that up to |max_queued| wait in order (0: unbounded); beyond that qm_channel_call refuses
 * with -ENOBUFS. The reference's WORKER_COUNT and POST_QUEUE_MAX per hop. */
void qm_channel_set_limits(struct qm_channel *ch, unsigned max_inflight, unsigned max_queued);
struct qm_channel_stats {
  uint64_t started, failed, refused; /* refused: -ENOBUFS returned */
  uint64_t inflight, queued, queued_peak;
};
void qm_channel_stats(const struct qm_channel *ch, struct qm_channel_stats *out);
/* qm_channel_has_room: 1 when a call now would start or queue, 0 when it would be refused. */
int qm_channel_has_room(const struct qm_channel *ch);
/* qm_channel_method: registers |path| (copied) on the channel; returns a handle for calls,
 * or NULL past QM_CHANNEL_METHODS_MAX. */
#define QM_CHANNEL_METHODS_MAX 8
void *qm_channel_method(struct qm_channel *ch, const char *path);
/* qm_channel_use_mux: from now on the channel carries its calls without metadata as frames
 * on one long-lived stream to the server's Mux method at |path| (qm_server_add_mux), opened
 * on the first call (waiting for ready as that call asked) and again after it ends: no call
 * setup, headers or trailers per call, and what queues while a message is being sent leaves
 * in the next one. Every call keeps its own deadline, limits and exactly-once |done|; when
 * the stream breaks, its calls fail as unary calls on a broken connection do. A server
 * without Mux (UNIMPLEMENTED before any reply) gets plain unary calls from then on. */
void qm_channel_use_mux(struct qm_channel *ch, const char *path);
/* qm_channel_call: starts (or queues, see limits) a unary call with |req| and metadata (both
 * copied); |wait_for_ready| queues it in libgrpc while the channel connects instead of
 * failing UNAVAILABLE. |done| always runs exactly once on the loop thread, never from inside
 * this function. Returns 0, -ENOBUFS when the channel's queue is full, or another negative
 * code (then |done| never runs). */
int qm_channel_call(struct qm_channel *ch, void *method, const uint8_t *req, size_t len,
                    const struct qm_rpc_md *md, size_t nmd, unsigned timeout_ms,
                    int wait_for_ready, qm_reply_fn done, void *arg);
const char *qm_channel_target(const struct qm_channel *ch);
/* qm_channel_free: after the loop stopped (every call ended); NULL-safe. */
void qm_channel_free(struct qm_channel *ch);

/* ---- blocking client calls for tools (own queue; no loop needed) ---- */

struct qm_rpc_result {
  int status;
  char details[512];
  uint8_t *resp; /* malloc'd reply bytes on OK; free() it */
  size_t len;
};
/* qm_rpc_call_sync: one unary call to |target|. Returns 0 when the call completed (any
 * status, see |res|), a negative code when it could not be started. */
int qm_rpc_call_sync(const char *target, const char *path, const uint8_t *req, size_t len,
                     const struct qm_rpc_md *md, size_t nmd, unsigned timeout_ms,
                     int wait_for_ready, struct qm_rpc_result *res, struct qm_err *err);
/* qm_rpc_call_sync_id: the same, expecting the server's certificate for |server_id|. */
int qm_rpc_call_sync_id(const char *target, const char *server_id, const char *path, const uint8_t *req,
                        size_t len, const struct qm_rpc_md *md, size_t nmd, unsigned timeout_ms,
                        int wait_for_ready, struct qm_rpc_result *res, struct qm_err *err);

#endif
