/* echo_bench.c: a bare unary echo on the rpc core: a server in a forked child, a client loop
 * keeping a fixed number of calls in flight for a fixed time. */
#include "echo_bench.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "latency.h"
#include "rpc.h"

#define QM_ECHO_READY_MS 10000
#define QM_ECHO_CALL_TIMEOUT_MS 10000
#define QM_ECHO_PAYLOAD_MAX 4096

/* ---- server (in the child) ---- */

static void on_echo(void *ctx, struct qm_call *call, const uint8_t *req, size_t len) {
  (void)ctx;
  qm_call_reply(call, req, len);
}

/* serve: the child's whole life. Writes the bound port (or -1) to |port_fd|, serves until
 * |ctl_fd| reads end of file, then stops in order and returns the exit code. When it cannot
 * start, it returns at once: the process exits and takes everything with it. */
static int serve(int port_fd, int ctl_fd) {
  struct qm_loop *loop = NULL;
  struct qm_server *srv = NULL;
  struct qm_err err = {0};
  int port = -1;
  qm_rpc_init();
  struct qm_method_spec echo = {.path = QM_ECHO_METHOD, .unary = on_echo};
  if (!qm_loop_new(&loop) && !qm_server_new(loop, &srv) && !qm_server_add_method(srv, &echo)) {
    port = qm_server_listen(srv, "127.0.0.1:0", &err);
    if (port <= 0 || qm_server_start(srv, &err) || qm_loop_start(loop)) port = -1;
  }
  ssize_t w = write(port_fd, &port, sizeof port);
  close(port_fd);
  if (port <= 0 || w != (ssize_t)sizeof port) return 1;
  for (;;) { /* until the parent closes its end or dies */
    char c;
    ssize_t n = read(ctl_fd, &c, 1);
    if (n > 0 || (n < 0 && errno == EINTR)) continue;
    break;
  }
  qm_loop_stop(loop, 0);
  qm_loop_join(loop);
  qm_server_free(srv);
  qm_loop_free(loop);
  qm_rpc_shutdown();
  return 0;
}

int qm_echo_server_start(struct qm_echo_server *s, struct qm_err *err) {
  int port_pipe[2], ctl_pipe[2];
  memset(s, 0, sizeof *s);
  s->ctl_fd = -1;
  if (pipe(port_pipe) != 0) return qm_err_set(err, -errno, "echo server: pipe: %s", strerror(errno));
  if (pipe(ctl_pipe) != 0) {
    int e = errno;
    close(port_pipe[0]);
    close(port_pipe[1]);
    return qm_err_set(err, -e, "echo server: pipe: %s", strerror(e));
  }
  fflush(NULL);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    close(port_pipe[0]);
    close(port_pipe[1]);
    close(ctl_pipe[0]);
    close(ctl_pipe[1]);
    return qm_err_set(err, -e, "echo server: fork: %s", strerror(e));
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    close(port_pipe[0]);
    close(ctl_pipe[1]);
    _exit(serve(port_pipe[1], ctl_pipe[0]));
  }
  close(port_pipe[1]);
  close(ctl_pipe[0]);
  s->pid = pid;
  s->ctl_fd = ctl_pipe[1];
  struct pollfd pfd = {.fd = port_pipe[0], .events = POLLIN};
  int port = -1;
  int ready = poll(&pfd, 1, QM_ECHO_READY_MS);
  if (ready == 1 && read(port_pipe[0], &port, sizeof port) == (ssize_t)sizeof port && port > 0) {
    s->port = port;
    close(port_pipe[0]);
    return 0;
  }
  close(port_pipe[0]);
  qm_echo_server_stop(s, 1000);
  return qm_err_set(err, -EIO, "echo server: the child did not listen on 127.0.0.1 (%s)",
                    ready == 0 ? "timed out" : "it failed to start");
}

int qm_echo_server_stop(struct qm_echo_server *s, unsigned grace_ms) {
  if (!s || !s->pid) return 0;
  if (s->ctl_fd >= 0) close(s->ctl_fd);
  s->ctl_fd = -1;
  int status = 0, waited = 0;
  for (unsigned t = 0; t <= grace_ms; t += 10) {
    if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
      waited = 1;
      break;
    }
    struct timespec ts = {0, 10000000};
    nanosleep(&ts, NULL);
  }
  if (!waited) {
    kill(s->pid, SIGKILL);
    waitpid(s->pid, &status, 0);
  }
  s->pid = 0;
  return waited && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -ECHILD;
}

/* ---- client (in this process) ---- */

struct echo_run {
  const struct qm_echo_opts *o;
  struct qm_echo_result *res;
  struct qm_loop *loop;
  struct qm_channel *ch;
  void *method;
  uint8_t payload[QM_ECHO_PAYLOAD_MAX];
  int64_t warm_end_ns, end_ns;
  unsigned inflight;
};

struct echo_slot {
  struct echo_run *run;
  int64_t start_ns;
};

static void issue(struct echo_run *r, struct echo_slot *s);

static void on_echo_reply(void *arg, int status, const char *details, const uint8_t *resp, size_t len) {
  struct echo_slot *s = arg;
  struct echo_run *r = s->run;
  int64_t now = qm_mono_ns();
  r->inflight--;
  r->res->total++;
  if (status != QM_STATUS_OK || len != r->o->payload || (len && memcmp(resp, r->payload, len) != 0)) {
    r->res->failed++;
    snprintf(r->res->last_error, sizeof r->res->last_error, "%s: %.120s", qm_status_name(status),
             status == QM_STATUS_OK ? "the reply differs from the request" : details);
  } else if (now >= r->warm_end_ns && now < r->end_ns) {
    r->res->calls++;
    if (r->o->latency) qm_latency_record(r->o->latency, now - s->start_ns);
  }
  if (now < r->end_ns) {
    issue(r, s);
    return;
  }
  free(s);
  if (r->inflight == 0) qm_loop_stop(r->loop, 0);
}

static void issue(struct echo_run *r, struct echo_slot *s) {
  s->start_ns = qm_mono_ns();
  r->inflight++;
  /* wait-for-ready: the first calls go out while the channel still connects */
  if (qm_channel_call(r->ch, r->method, r->payload, r->o->payload, NULL, 0, QM_ECHO_CALL_TIMEOUT_MS, 1,
                      on_echo_reply, s) != 0) {
    r->inflight--;
    r->res->failed++;
    snprintf(r->res->last_error, sizeof r->res->last_error, "cannot start a call");
    free(s);
    if (r->inflight == 0) qm_loop_stop(r->loop, 0);
  }
}

int qm_echo_bench_run(const struct qm_echo_opts *o, struct qm_echo_result *res, struct qm_err *err) {
  struct echo_run r = {.o = o, .res = res};
  memset(res, 0, sizeof *res);
  if (o->payload > QM_ECHO_PAYLOAD_MAX)
    return qm_err_set(err, -EINVAL, "echo payload %zu exceeds %d bytes", o->payload, QM_ECHO_PAYLOAD_MAX);
  for (size_t i = 0; i < o->payload; i++) r.payload[i] = (uint8_t)(i * 31 + 7);
  int rc = qm_loop_new(&r.loop);
  if (rc) return qm_err_set(err, rc, "cannot create the event loop");
  rc = qm_channel_new(r.loop, o->target, NULL, &r.ch, err);
  if (rc) goto cleanup;
  r.method = qm_channel_method(r.ch, QM_ECHO_METHOD);
  int64_t start = qm_mono_ns();
  r.warm_end_ns = start + (int64_t)o->warmup_ms * 1000000;
  r.end_ns = r.warm_end_ns + (int64_t)o->duration_ms * 1000000;
  unsigned c = o->concurrency ? o->concurrency : 1;
  for (unsigned i = 0; i < c; i++) {
    struct echo_slot *s = calloc(1, sizeof *s);
    if (!s) {
      rc = qm_err_set(err, -ENOMEM, "out of memory");
      break;
    }
    s->run = &r;
    issue(&r, s);
  }
  if (r.inflight == 0) qm_loop_stop(r.loop, 0);
  qm_loop_run(r.loop);
  res->seconds = (double)o->duration_ms / 1e3;
  res->rate = res->seconds > 0 ? (double)res->calls / res->seconds : 0;
cleanup:
  qm_channel_free(r.ch);
  qm_loop_free(r.loop);
  return rc;
}
