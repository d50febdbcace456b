/* audit_log.c: the hash-chained append-only file: scan, replay, append. */
#include "audit_log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hash.h"

#define MAGIC "QMA1"
#define HEAD 8 /* magic + length */
#define QM_AUDIT_KEEP_BUF (1u << 20)
#define QM_AUDIT_SYNC_MS 20 /* batch policy: appends reach the disk within about this */

struct qm_audit_log {
  int fd;
  enum qm_fsync_policy policy;
  uint8_t last_hash[32];
  uint64_t records;
  atomic_int dirty;
  /* Batch policy: a thread of its own runs fdatasync (0.5-2 ms here) so that the auditor's
   * loop never waits for the disk; the loop only writes. */
  pthread_t syncer;
  int has_syncer;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int stop; /* under mu */
  atomic_uint_fast64_t sync_errors;
  uint8_t *buf; /* kept between appends: a batch's records are framed here, then written */
  size_t cap;
};

int qm_fsync_policy_parse(const char *s, enum qm_fsync_policy *out) {
  if (strcmp(s, "never") == 0) *out = QM_FSYNC_NEVER;
  else if (strcmp(s, "batch") == 0) *out = QM_FSYNC_BATCH;
  else if (strcmp(s, "always") == 0) *out = QM_FSYNC_ALWAYS;
  else return -EINVAL;
  return 0;
}

static void chain(const uint8_t prev[32], const uint8_t head[HEAD], const uint8_t *rec, size_t len,
                  uint8_t out[32]) {
  /* SHA-256(prev || length || bytes), hashed part by part. */
  const void *parts[3] = {prev, head + 4, rec};
  size_t lens[3] = {32, 4, len};
  if (qm_sha256_parts(parts, lens, 3, out)) memset(out, 0, 32);
}

static int read_full(FILE *f, uint8_t *buf, size_t n) { return fread(buf, 1, n, f) == n ? 0 : -1; }

int qm_audit_log_scan(const char *path, qm_audit_record_fn fn, void *arg, struct qm_audit_scan *scan,
                      struct qm_err *err) {
  memset(scan, 0, sizeof *scan);
  FILE *f = fopen(path, "rb");
  if (!f) return errno == ENOENT ? 0 : qm_err_set(err, -errno, "%s: %m", path);
  uint8_t *rec = malloc(QM_AUDIT_RECORD_MAX);
  int rc = rec ? 0 : qm_err_set(err, -ENOMEM, "out of memory");
  uint64_t offset = 0;
  while (!rc) {
    uint8_t head[HEAD], hash[32], want[32];
    size_t got = fread(head, 1, HEAD, f);
    if (got == 0 && feof(f)) break;
    if (got < HEAD) {
      scan->torn_bytes = got;
      break;
    }
    uint32_t len = (uint32_t)head[4] << 24 | (uint32_t)head[5] << 16 | (uint32_t)head[6] << 8 | head[7];
    if (memcmp(head, MAGIC, 4) != 0 || len == 0 || len > QM_AUDIT_RECORD_MAX) {
      rc = qm_err_set(err, -EBADMSG, "%s: record %llu at byte %llu: bad header (magic or length %u)", path,
                      (unsigned long long)scan->records, (unsigned long long)offset, len);
      break;
    }
    if (read_full(f, rec, len) || read_full(f, hash, 32)) {
      /* Only the last record can be short: a crash in the middle of its write. */
      scan->torn_bytes = HEAD + len + 32; /* at most; the file simply ends */
      break;
    }
    chain(scan->last_hash, head, rec, len, want);
    if (memcmp(want, hash, 32) != 0) {
      rc = qm_err_set(err, -EBADMSG, "%s: record %llu at byte %llu: hash chain broken (edited, dropped or "
                      "reordered records)", path, (unsigned long long)scan->records, (unsigned long long)offset);
      break;
    }
    char why[256] = "";
    if (fn && fn(arg, rec, len, scan->records, why, sizeof why)) {
      rc = qm_err_set(err, -EBADMSG, "%s: record %llu at byte %llu: %s", path, (unsigned long long)scan->records,
                      (unsigned long long)offset, why);
      break;
    }
    memcpy(scan->last_hash, hash, 32);
    scan->records++;
    offset += HEAD + len + 32;
    scan->good_bytes = offset;
  }
  if (scan->torn_bytes) {
    /* Measure the real torn size: whatever follows the intact prefix. */
    if (fseek(f, 0, SEEK_END) == 0) scan->torn_bytes = (uint64_t)ftell(f) - scan->good_bytes;
  }
  free(rec);
  fclose(f);
  return rc;
}

static void *syncer_main(void *arg) {
  struct qm_audit_log *log = arg;
  pthread_mutex_lock(&log->mu);
  while (!log->stop) {
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_nsec += QM_AUDIT_SYNC_MS * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&log->cv, &log->mu, &until);
    pthread_mutex_unlock(&log->mu);
    if (atomic_exchange(&log->dirty, 0) && fdatasync(log->fd) != 0) atomic_fetch_add(&log->sync_errors, 1);
    pthread_mutex_lock(&log->mu);
  }
  pthread_mutex_unlock(&log->mu);
  return NULL;
}

static void start_syncer(struct qm_audit_log *log) {
  pthread_condattr_t ca;
  if (pthread_mutex_init(&log->mu, NULL)) return;
  if (pthread_condattr_init(&ca) || pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) ||
      pthread_cond_init(&log->cv, &ca)) {
    pthread_mutex_destroy(&log->mu);
    return;
  }
  pthread_condattr_destroy(&ca);
  if (pthread_create(&log->syncer, NULL, syncer_main, log)) {
    pthread_cond_destroy(&log->cv);
    pthread_mutex_destroy(&log->mu);
    return;
  }
  log->has_syncer = 1;
}

int qm_audit_log_open(const char *path, enum qm_fsync_policy policy, qm_audit_record_fn fn, void *arg,
                      struct qm_audit_log **out, struct qm_audit_scan *scan, struct qm_err *err) {
  int rc = qm_audit_log_scan(path, fn, arg, scan, err);
  if (rc) return rc;
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return qm_err_set(err, -errno, "%s: %m", path);
  if (scan->torn_bytes && ftruncate(fd, (off_t)scan->good_bytes) != 0) {
    rc = qm_err_set(err, -errno, "%s: cannot cut the torn last record: %m", path);
    close(fd);
    return rc;
  }
  struct qm_audit_log *log = calloc(1, sizeof *log);
  if (!log) {
    close(fd);
    return qm_err_set(err, -ENOMEM, "out of memory");
  }
  log->fd = fd;
  log->policy = policy;
  log->records = scan->records;
  memcpy(log->last_hash, scan->last_hash, 32);
  if (policy == QM_FSYNC_BATCH) start_syncer(log); /* if it cannot start, qm_audit_log_sync does it */
  *out = log;
  return 0;
}

int qm_audit_log_append_many(struct qm_audit_log *log, const uint8_t *const *recs, const size_t *lens, size_t n) {
  size_t total = 0;
  for (size_t i = 0; i < n; i++) {
    if (lens[i] == 0 || lens[i] > QM_AUDIT_RECORD_MAX) return -EMSGSIZE;
    total += HEAD + lens[i] + 32;
  }
  if (!n) return 0;
  if (total > log->cap) {
    uint8_t *grown = realloc(log->buf, total);
    if (!grown) return -ENOMEM;
    log->buf = grown;
    log->cap = total;
  }
  uint8_t *buf = log->buf;
  uint8_t hash[32];
  memcpy(hash, log->last_hash, 32);
  size_t at = 0;
  for (size_t i = 0; i < n; i++) {
    uint8_t *rec = buf + at;
    size_t len = lens[i];
    memcpy(rec, MAGIC, 4);
    rec[4] = (uint8_t)(len >> 24);
    rec[5] = (uint8_t)(len >> 16);
    rec[6] = (uint8_t)(len >> 8);
    rec[7] = (uint8_t)len;
    memcpy(rec + HEAD, recs[i], len);
    chain(hash, rec, recs[i], len, hash);
    memcpy(rec + HEAD + len, hash, 32);
    at += HEAD + len + 32;
  }
  ssize_t w = write(log->fd, buf, total);
  int rc = 0;
  if (w != (ssize_t)total) {
    rc = w < 0 ? -errno : -EIO;
    /* Keep the file a sequence of whole records: cut what a short write left. */
    if (w > 0) {
      off_t end = lseek(log->fd, 0, SEEK_END);
      if (end >= w && ftruncate(log->fd, end - w) != 0) rc = -EIO;
    }
  } else {
    memcpy(log->last_hash, hash, 32);
    log->records += n;
    atomic_store(&log->dirty, 1);
    if (log->policy == QM_FSYNC_ALWAYS && fdatasync(log->fd) != 0) rc = -errno;
  }
  if (log->cap > QM_AUDIT_KEEP_BUF) { /* a rare huge batch does not pin its buffer */
    free(log->buf);
    log->buf = NULL;
    log->cap = 0;
  }
  return rc;
}

int qm_audit_log_append(struct qm_audit_log *log, const uint8_t *rec, size_t len) {
  return qm_audit_log_append_many(log, &rec, &len, 1);
}

int qm_audit_log_sync(struct qm_audit_log *log) {
  if (!log || log->policy != QM_FSYNC_BATCH || log->has_syncer || !atomic_exchange(&log->dirty, 0)) return 0;
  return fdatasync(log->fd) != 0 ? -errno : 0;
}

uint64_t qm_audit_log_sync_errors(const struct qm_audit_log *log) {
  return log ? atomic_load(&((struct qm_audit_log *)log)->sync_errors) : 0;
}

uint64_t qm_audit_log_records(const struct qm_audit_log *log) { return log->records; }

void qm_audit_log_close(struct qm_audit_log *log) {
  if (!log) return;
  if (log->has_syncer) {
    pthread_mutex_lock(&log->mu);
    log->stop = 1;
    pthread_cond_signal(&log->cv);
    pthread_mutex_unlock(&log->mu);
    pthread_join(log->syncer, NULL);
    pthread_cond_destroy(&log->cv);
    pthread_mutex_destroy(&log->mu);
  }
  if (log->policy != QM_FSYNC_NEVER) fdatasync(log->fd);
  close(log->fd);
  free(log->buf);
  free(log);
}
