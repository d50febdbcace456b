/* local_mesh.c: a whole topology on this machine: one process per role. */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <time.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qmesh.h"
#include "summary.h"
#include "role.h"
#include "rpc.h"
#include "sign.h"
#include "stream.h"

#define QM_READY_TIMEOUT_MS 20000

volatile int qm_interrupted;

static void *signal_thread(void *arg) {
  (void)arg;
  while (!qm_rpc_wait_signal(1000)) {
  }
  qm_interrupted = 1;
  return NULL;
}

void qm_start_signal_thread(void) {
  pthread_t th;
  qm_rpc_block_signals();
  if (pthread_create(&th, NULL, signal_thread, NULL) == 0) pthread_detach(th);
}

int qm_wait_decided(const struct qm_topology *t, uint64_t accepted, uint64_t *polls, struct qm_err *err) {
  int64_t deadline = qm_mono_ns() + ((int64_t)t->deadline_ms + 30000) * 1000000;
  for (;;) {
    uint64_t decided = 0, pending = 0;
    if (polls) (*polls)++;
    if (qm_report_auditor_progress(t, &decided, &pending, err)) return -1;
    if (decided >= accepted && pending == 0) return 0;
    if (qm_interrupted) return qm_err_set(err, -1, "interrupted");
    if (qm_mono_ns() > deadline)
      return qm_err_set(err, -1, "auditor decided %" PRIu64 " of %" PRIu64 " requests (%" PRIu64 " pending) in time",
                        decided, accepted, pending);
    struct timespec ts = {0, 2000000};
    nanosleep(&ts, NULL);
  }
}

struct qm_topology *qm_load_topology_arg(const char *prog, const char *path) {
  struct qm_topology *t = NULL;
  struct qm_err err = {0};
  int rc = path ? qm_topology_load(path, NULL, &t, &err)
                : qm_topology_load_buffer("<built-in>", qm_default_topology_yaml, qm_default_topology_yaml_len, NULL,
                                          &t, &err);
  if (!rc) rc = qm_topology_apply_env(t, &err);
  /* With mutual TLS the tool speaks as the "requester" instance (qmesh certs makes it). */
  if (!rc) rc = qm_role_tls_setup(t, QM_REQUESTER_ID, &err);
  if (rc) {
    fprintf(stderr, "%s: %s\n", prog, err.msg);
    qm_topology_free(t);
    return NULL;
  }
  return t;
}

static int write_file(const char *path, const char *data, size_t len) {
  FILE *f = fopen(path, "w");
  if (!f) return -errno;
  size_t n = fwrite(data, 1, len, f);
  int rc = fclose(f);
  return (n == len && rc == 0) ? 0 : -EIO;
}

static int needs_keys(const struct qm_topology *t) {
  if (t->keys_dir[0]) return 0;
  for (size_t i = 0; i < t->nproviders; i++)
    if (!t->providers[i].signing_key[0] || !t->providers[i].public_key[0]) return 1;
  return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

/* Remove the private tmpdir: keys, the topology copy and logs. */
static void remove_tmpdir(struct qm_local_mesh *m) {
  if (!m->tmpdir[0]) return;
  if (nftw(m->tmpdir, remove_entry, 8, FTW_DEPTH | FTW_PHYS) != 0)
    fprintf(stderr, "qmesh: could not remove %s\n", m->tmpdir);
  m->tmpdir[0] = '\0';
}

/* show_logs: the last lines each role wrote, for a mesh that did not start. */
static void show_logs(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  while (d && (e = readdir(d))) {
    size_t n = strlen(e->d_name);
    if (n < 5 || strcmp(e->d_name + n - 4, ".log") != 0) continue;
    char path[QM_PATH_MAX + 300], line[512];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    FILE *f = fopen(path, "r");
    char last[4][512] = {{0}};
    size_t count = 0;
    while (f && fgets(line, sizeof line, f)) snprintf(last[count++ % 4], sizeof last[0], "%s", line);
    if (f) fclose(f);
    for (size_t i = count > 4 ? count - 4 : 0; i < count; i++) fprintf(stderr, "  %s", last[i % 4]);
  }
  if (d) closedir(d);
}

int qm_local_mesh_start(struct qm_local_mesh *m, const char *prog, const char *topology_arg, int quiet,
                        int http) {
  struct qm_err err = {0};
  char bin_dir[512];
  memset(m, 0, sizeof *m);
  m->topo = qm_load_topology_arg(prog, topology_arg);
  if (!m->topo) return 1;
  struct qm_topology *t = m->topo;
  /* One seed and one Byzantine draw for every process of the mesh. */
  if (!t->random_seed[0]) snprintf(t->random_seed, sizeof t->random_seed, "%" PRId64, qm_now_ns());
  struct qm_stream s;
  if (qm_stream_init(&s, t, 0, &err)) {
    fprintf(stderr, "%s: %s\n", prog, err.msg);
    return 1;
  }
  char at[32];
  snprintf(at, sizeof at, "%" PRId64, s.byz.at);
  setenv("RANDOM_SEED", t->random_seed, 1);
  setenv("BYZANTINE_PROVIDER", s.byz.provider[0] ? s.byz.provider : "none", 1);
  setenv("BYZANTINE_AT", at, 1);
  /* The children get the drawn values; this process keeps the topology as configured, since
   * a configured index skips the draw and would shift the requester's stream. */
  m->byz = s.byz;

  snprintf(m->tmpdir, sizeof m->tmpdir, "%s/qmesh-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (!mkdtemp(m->tmpdir)) {
    fprintf(stderr, "%s: cannot create a private directory: %s\n", prog, strerror(errno));
    m->tmpdir[0] = '\0';
    return 1;
  }
  if (topology_arg) {
    if (!realpath(topology_arg, m->topology_path)) {
      fprintf(stderr, "%s: %s: %s\n", prog, topology_arg, strerror(errno));
      goto fail;
    }
  } else {
    snprintf(m->topology_path, sizeof m->topology_path, "%s/topology.yaml", m->tmpdir);
    if (write_file(m->topology_path, qm_default_topology_yaml, qm_default_topology_yaml_len)) {
      fprintf(stderr, "%s: cannot write %s\n", prog, m->topology_path);
      goto fail;
    }
  }
  if (needs_keys(t)) {
    /* Fresh demo keys, private to this run: nothing secret is ever committed. */
    snprintf(m->keys_dir, sizeof m->keys_dir, "%s/keys", m->tmpdir);
    if (mkdir(m->keys_dir, 0700) != 0) {
      fprintf(stderr, "%s: mkdir %s: %s\n", prog, m->keys_dir, strerror(errno));
      goto fail;
    }
    for (size_t i = 0; i < t->nproviders; i++)
      if (qm_key_generate(m->keys_dir, t->providers[i].ep.id, &err)) {
        fprintf(stderr, "%s: %s\n", prog, err.msg);
        goto fail;
      }
  }
  if (qm_supervisor_bin_dir(bin_dir, sizeof bin_dir)) {
    fprintf(stderr, "%s: cannot find my own directory\n", prog);
    goto fail;
  }
  qm_rpc_init();
  m->started = 1;
  /* The auditor keeps its log beside the keys: replayed if the auditor restarts. */
  snprintf(m->sup.audit_log, sizeof m->sup.audit_log, "%s/audit.log", m->tmpdir);
  m->sup.http = http;
  if (qm_supervisor_start(&m->sup, t, bin_dir, m->topology_path, m->keys_dir[0] ? m->keys_dir : NULL,
                          quiet ? m->tmpdir : NULL, QM_READY_TIMEOUT_MS, &err)) {
    fprintf(stderr, "%s: the mesh did not start: %s\n", prog, err.msg);
    if (quiet) {
      /* Show what the failing roles said. */
      show_logs(m->tmpdir);
    }
    goto fail;
  }
  return 0;
fail:
  qm_local_mesh_stop(m);
  return 1;
}

void qm_local_mesh_stop(struct qm_local_mesh *m) {
  if (m->sup.children) {
    int unclean = qm_supervisor_stop(&m->sup, 10000);
    if (unclean) fprintf(stderr, "qmesh: %d role(s) did not exit cleanly on SIGTERM\n", unclean);
  }
  remove_tmpdir(m);
  if (m->started) qm_rpc_shutdown();
  m->started = 0;
  qm_topology_free(m->topo);
  m->topo = NULL;
}
