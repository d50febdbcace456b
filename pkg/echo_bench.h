/* echo_bench.h: the ceiling a mesh hop is compared against: a bare unary echo on the
 * project's own rpc core (the same loop, server and channel code the roles use), the server
 * in a forked child process, the client loop in this one.
 *
 * Why a child process and not a thread: every mesh hop crosses processes, and gRPC's core
 * keeps process-wide machinery (the poller, the executor and timer threads) that a server
 * thread and a client thread of one process would share. A child makes the echo what a hop
 * is: two processes, two cores' worth of scheduling, loopback TCP between them; and it lets
 * the caller read the server's CPU from /proc/<pid> apart from the client's. */
#ifndef QM_ECHO_BENCH_H
#define QM_ECHO_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

struct qm_latency;

#define QM_ECHO_METHOD "/qmesh.bench.v1.Echo/Echo"

struct qm_echo_server {
  pid_t pid;  /* the child; 0 when not running */
  int port;   /* its port on 127.0.0.1 */
  int ctl_fd; /* closing it tells the child to stop */
};

/* qm_echo_server_start: forks a child that serves QM_ECHO_METHOD (replies with the request
 * bytes) on 127.0.0.1 with a port of its own choosing, and waits until it listens. Call it
 * before this process calls qm_rpc_init (gRPC's core must not be running across fork). The
 * child dies with this process. Returns 0 or a negative code with |err| filled; on failure
 * |*s| is left stopped (pid 0). */
int qm_echo_server_start(struct qm_echo_server *s, struct qm_err *err);
/* qm_echo_server_stop: tells the child to stop, waits for it (SIGKILL after |grace_ms|).
 * Returns 0 when it exited 0, else -ECHILD. NULL-safe and idempotent. */
int qm_echo_server_stop(struct qm_echo_server *s, unsigned grace_ms);

struct qm_echo_opts {
  const char *target;         /* "127.0.0.1:port" */
  unsigned concurrency;       /* calls in flight, >= 1 */
  unsigned warmup_ms;         /* calls completing in this first stretch are not counted */
  unsigned duration_ms;       /* the measured stretch after the warm-up */
  size_t payload;             /* request bytes (echoed back), <= 4096 */
  struct qm_latency *latency; /* borrowed; NULL = not measured: per counted call */
};

struct qm_echo_result {
  uint64_t calls;  /* OK calls completed in the measured stretch */
  uint64_t failed; /* non-OK calls (any time) */
  uint64_t total;  /* every call completed, warm-up included */
  double seconds;  /* the measured stretch */
  double rate;     /* calls / seconds */
  char last_error[160];
};

/* qm_echo_bench_run: runs a client loop on the calling thread against |o->target| until the
 * measured stretch is over and every call ended. The caller has called qm_rpc_init.
 * Returns 0 (see |res|) or a negative code with |err| filled when it could not run. */
int qm_echo_bench_run(const struct qm_echo_opts *o, struct qm_echo_result *res, struct qm_err *err);

#endif
