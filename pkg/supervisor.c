/* supervisor.c: role processes: fork/exec, readiness by health check, orderly stop. */
#include "supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "grpc/health/v1/health.pb-c.h"
#include "rpc.h"

void qm_supervisor_dial(const char *listen, char *out, size_t cap) {
  if (strncmp(listen, "0.0.0.0:", 8) == 0) snprintf(out, cap, "127.0.0.1:%s", listen + 8);
  else if (strncmp(listen, "[::]:", 5) == 0) snprintf(out, cap, "[::1]:%s", listen + 5);
  else snprintf(out, cap, "%s", listen);
}

int qm_supervisor_bin_dir(char *out, size_t cap) {
  ssize_t n = readlink("/proc/self/exe", out, cap - 1);
  if (n <= 0) return -errno;
  out[n] = '\0';
  char *slash = strrchr(out, '/');
  if (slash) *slash = '\0';
  return 0;
}

static void sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
  nanosleep(&ts, NULL);
}

static int spawn(struct qm_supervisor *s, struct qm_child *c, struct qm_err *err) {
  char exe[700];
  snprintf(exe, sizeof exe, "%s/qmesh-%s", s->bin_dir, c->role);
  if (access(exe, X_OK) != 0) return qm_err_set(err, -ENOENT, "%s: not found or not executable", exe);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return qm_err_set(err, -errno, "fork: %m");
  if (pid == 0) {
    /* Die with the supervisor, whatever kills it. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (s->log_dir[0]) {
      char log[QM_PATH_MAX + QM_ID_MAX + 8];
      snprintf(log, sizeof log, "%s/%s.log", s->log_dir, c->id);
      int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
      }
    }
    char *argv[15];
    int a = 0;
    argv[a++] = exe;
    argv[a++] = "--topology";
    argv[a++] = s->topology_path;
    argv[a++] = "--id";
    argv[a++] = c->id;
    if (s->keys_dir[0] && (strcmp(c->role, "provider") == 0 || strcmp(c->role, "auditor") == 0)) {
      argv[a++] = "--keys";
      argv[a++] = s->keys_dir;
    }
    if (s->http) {
      argv[a++] = "--metrics-addr";
      argv[a++] = "auto";
      if (strcmp(c->role, "front") == 0) {
        argv[a++] = "--ingress-addr";
        argv[a++] = "auto";
      }
    }
    if (s->audit_log[0] && strcmp(c->role, "auditor") == 0) {
      argv[a++] = "--audit-log";
      argv[a++] = s->audit_log;
    }
    argv[a] = NULL;
    execv(exe, argv);
    fprintf(stderr, "exec %s: %m\n", exe);
    _exit(127);
  }
  c->pid = pid;
  return 0;
}

static void add(struct qm_supervisor *s, const struct qm_endpoint *ep, const char *role) {
  struct qm_child *c = &s->children[s->n++];
  memset(c, 0, sizeof *c);
  snprintf(c->id, sizeof c->id, "%s", ep->id);
  c->role = role;
  qm_supervisor_dial(ep->listen, c->dial, sizeof c->dial);
}

static int serving(const struct qm_child *c) {
  uint8_t req[4];
  Grpc__Health__V1__HealthCheckRequest in = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
  size_t n = grpc__health__v1__health_check_request__pack(&in, req);
  struct qm_rpc_result res;
  if (qm_rpc_call_sync_id(c->dial, c->id, "/grpc.health.v1.Health/Check", req, n, NULL, 0, 500, 0, &res, NULL)) return 0;
  int ok = 0;
  if (res.status == QM_STATUS_OK) {
    Grpc__Health__V1__HealthCheckResponse *r = grpc__health__v1__health_check_response__unpack(NULL, res.len, res.resp);
    ok = r && r->status == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
    if (r) grpc__health__v1__health_check_response__free_unpacked(r, NULL);
  }
  free(res.resp);
  return ok;
}

int qm_supervisor_check(struct qm_supervisor *s, struct qm_err *err) {
  for (size_t i = 0; i < s->n; i++) {
    struct qm_child *c = &s->children[i];
    if (c->exited || c->pid <= 0) continue;
    if (waitpid(c->pid, &c->status, WNOHANG) == c->pid) {
      c->exited = 1;
      if (WIFEXITED(c->status))
        return qm_err_set(err, -ECHILD, "%s (pid %d) exited with status %d", c->id, (int)c->pid, WEXITSTATUS(c->status));
      return qm_err_set(err, -ECHILD, "%s (pid %d) was killed by signal %d", c->id, (int)c->pid, WTERMSIG(c->status));
    }
  }
  return 0;
}

int qm_supervisor_start(struct qm_supervisor *s, const struct qm_topology *t, const char *bin_dir,
                        const char *topology_path, const char *keys_dir, const char *log_dir,
                        unsigned ready_timeout_ms, struct qm_err *err) {
  char audit_log[QM_PATH_MAX]; /* audit_log and http are set by the caller before start */
  snprintf(audit_log, sizeof audit_log, "%s", s->audit_log);
  int http = s->http;
  memset(s, 0, sizeof *s);
  snprintf(s->audit_log, sizeof s->audit_log, "%s", audit_log);
  s->http = http;
  snprintf(s->bin_dir, sizeof s->bin_dir, "%s", bin_dir);
  snprintf(s->topology_path, sizeof s->topology_path, "%s", topology_path);
  snprintf(s->keys_dir, sizeof s->keys_dir, "%s", keys_dir ? keys_dir : "");
  snprintf(s->log_dir, sizeof s->log_dir, "%s", log_dir ? log_dir : "");
  s->children = calloc(1 + t->nproviders + 2 * t->nregions, sizeof *s->children);
  if (!s->children) return qm_err_set(err, -ENOMEM, "out of memory");
  add(s, &t->auditor, "auditor");
  for (size_t i = 0; i < t->nproviders; i++) add(s, &t->providers[i].ep, "provider");
  for (size_t i = 0; i < t->nregions; i++) add(s, &t->regions[i].hub, "hub");
  for (size_t i = 0; i < t->nregions; i++) add(s, &t->regions[i].front, "front");
  int rc = 0;
  for (size_t i = 0; i < s->n && !rc; i++) rc = spawn(s, &s->children[i], err);
  int64_t deadline = qm_mono_ns() + (int64_t)ready_timeout_ms * 1000000;
  for (size_t i = 0; i < s->n && !rc; i++) {
    while (!serving(&s->children[i])) {
      if ((rc = qm_supervisor_check(s, err))) break;
      if (qm_mono_ns() > deadline) {
        rc = qm_err_set(err, -ETIMEDOUT, "%s did not report SERVING on %s within %u ms", s->children[i].id,
                        s->children[i].dial, ready_timeout_ms);
        break;
      }
      sleep_ms(20);
    }
  }
  if (rc) qm_supervisor_stop(s, 3000);
  return rc;
}

int qm_supervisor_stop(struct qm_supervisor *s, unsigned grace_ms) {
  int unclean = 0;
  for (size_t i = 0; i < s->n; i++)
    if (s->children[i].pid > 0 && !s->children[i].exited) kill(s->children[i].pid, SIGTERM);
  int64_t deadline = qm_mono_ns() + (int64_t)grace_ms * 1000000;
  for (;;) {
    int alive = 0;
    for (size_t i = 0; i < s->n; i++) {
      struct qm_child *c = &s->children[i];
      if (c->pid <= 0 || c->exited) continue;
      if (waitpid(c->pid, &c->status, WNOHANG) == c->pid) {
        c->exited = 1;
        if (!WIFEXITED(c->status) || WEXITSTATUS(c->status) != 0) unclean++;
      } else {
        alive++;
      }
    }
    if (!alive) break;
    if (qm_mono_ns() > deadline) {
      for (size_t i = 0; i < s->n; i++) {
        struct qm_child *c = &s->children[i];
        if (c->pid > 0 && !c->exited) {
          kill(c->pid, SIGKILL);
          waitpid(c->pid, &c->status, 0);
          c->exited = 1;
          unclean++;
        }
      }
      break;
    }
    sleep_ms(10);
  }
  free(s->children);
  s->children = NULL;
  s->n = 0;
  return unclean;
}
