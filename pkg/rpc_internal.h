/* rpc_internal.h: what pkg/rpc_*.c share: tags, the loop's bookkeeping, byte buffers. */
#ifndef QM_RPC_INTERNAL_H
#define QM_RPC_INTERNAL_H

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdatomic.h>

#include "rpc.h"

/* Every completion-queue tag is one of these, embedded in the object it belongs to. */
struct qm_tag {
  void (*fn)(struct qm_tag *tag, int ok);
};

#define QM_CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

struct qm_tick {
  qm_tick_fn fn;
  void *arg;
  int64_t every_ns;
  int64_t next_ns;
};

#define QM_LOOP_TICKS_MAX 8
#define QM_LOOP_SERVERS_MAX 4

struct qm_client_call; /* rpc_client.c */
struct mux_stream;     /* rpc_client.c */

struct qm_loop {
  grpc_completion_queue *cq;
  pthread_t thread;
  int thread_started;
  atomic_int stop_requested;
  atomic_uint grace_ms;
  int stopping;          /* the loop thread has begun stopping */
  int64_t hard_stop_ns;  /* monotonic: cancel everything left at this time */
  int cancelled;
  int cq_shutdown;
  struct qm_tick ticks[QM_LOOP_TICKS_MAX];
  size_t nticks;
  struct qm_server *servers[QM_LOOP_SERVERS_MAX];
  size_t nservers;
  struct qm_client_call *calls; /* client calls in flight (intrusive list) */
  size_t ncalls;
  struct mux_stream *streams; /* client Mux streams with operations in flight */
  size_t nstreams;
  int64_t next_expiry_ns;     /* when to look for frames past their deadline */
  int streams_cancelled;
};

/* Server hooks the loop drives while stopping (rpc_server.c). */
void qm__server_begin_shutdown(struct qm_server *srv);
void qm__server_cancel_all(struct qm_server *srv);
int qm__server_done(const struct qm_server *srv);
/* qm__server_idle: no call is held by a handler (only armed slots remain). */
int qm__server_idle(const struct qm_server *srv);
/* Client hook: cancel every call in flight, and every Mux stream (rpc_client.c). */
void qm__client_cancel_all(struct qm_loop *loop);
/* qm__client_expire: frames past their deadline end with DEADLINE_EXCEEDED (unary calls
 * have theirs in libgrpc). */
void qm__client_expire(struct qm_loop *loop, int64_t now);

/* Byte buffers. */
grpc_byte_buffer *qm__buffer_from(const uint8_t *data, size_t len);
/* qm__buffer_read: the whole message in a malloc'd buffer (*out NULL and 0 for empty). */
int qm__buffer_read(grpc_byte_buffer *bb, uint8_t **out, size_t *len);

gpr_timespec qm__deadline_ms(unsigned ms);
/* Credentials for channels and servers (insecure, or mutual TLS once configured). */
grpc_channel_credentials *qm__channel_credentials(void);
grpc_server_credentials *qm__server_credentials(void);
grpc_channel_args *qm__channel_args(int server);
/* qm__channel_create: a channel with the process' credentials; |server_id| overrides the
 * TLS name checked against the server's certificate. */
grpc_channel *qm__channel_create(const char *target, const char *server_id);

#endif
