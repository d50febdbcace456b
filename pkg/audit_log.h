/* audit_log.h: the auditor's append-only, hash-chained log of accepted SignedOutcomes.
 *
 * Record: "QMA1" | u32 big-endian length | the SignedOutcome bytes | 32-byte chain hash,
 * where hash_i = SHA-256(hash_{i-1} || length || bytes) and hash_{-1} is 32 zero bytes.
 * Editing, dropping or reordering any record breaks every later hash. */
#ifndef QM_AUDIT_LOG_H
#define QM_AUDIT_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define QM_AUDIT_RECORD_MAX (64 * 1024)

enum qm_fsync_policy {
  QM_FSYNC_NEVER = 0,  /* the page cache only: survives a process kill, not a power cut */
  QM_FSYNC_BATCH = 1,  /* fdatasync about every 20 ms on a thread of the log's own (else on
                          qm_audit_log_sync, which the auditor calls every tick) */
  QM_FSYNC_ALWAYS = 2, /* fdatasync before every append returns */
};

/* qm_fsync_policy_parse: "never", "batch", "always"; 0 or -EINVAL. */
int qm_fsync_policy_parse(const char *s, enum qm_fsync_policy *out);

/* Called for every intact record, in order; a nonzero return stops the scan, and the
 * message it put in |why| is reported with the record's index and offset. */
typedef int (*qm_audit_record_fn)(void *arg, const uint8_t *rec, size_t len, uint64_t index, char *why,
                                  size_t cap);

struct qm_audit_scan {
  uint64_t records;      /* intact records */
  uint64_t good_bytes;   /* where the intact prefix ends */
  uint64_t torn_bytes;   /* an incomplete last record (a crash mid-append) */
  uint8_t last_hash[32];
};

/* qm_audit_log_scan: reads |path| record by record, checking framing and the chain. Returns
 * 0 when every byte belongs to an intact record (a torn tail is reported in |scan| and is
 * not an error), or a negative code naming the first bad record (index and byte offset). */
int qm_audit_log_scan(const char *path, qm_audit_record_fn fn, void *arg, struct qm_audit_scan *scan,
                      struct qm_err *err);

struct qm_audit_log;

/* qm_audit_log_open: scans (replaying through |fn|), cuts a torn tail, and opens for append.
 * |*out| untouched on failure. */
int qm_audit_log_open(const char *path, enum qm_fsync_policy policy, qm_audit_record_fn fn, void *arg,
                      struct qm_audit_log **out, struct qm_audit_scan *scan, struct qm_err *err);
/* qm_audit_log_append: one record, written whole with one write(2). 0 or -errno. */
int qm_audit_log_append(struct qm_audit_log *log, const uint8_t *rec, size_t len);
/* qm_audit_log_append_many: |n| records with one write(2): all of them or none (a short
 * write is cut off again). 0 or -errno. */
int qm_audit_log_append_many(struct qm_audit_log *log, const uint8_t *const *recs, const size_t *lens, size_t n);
/* qm_audit_log_sync: fdatasync if the policy is batch, anything was appended since and the
 * log's sync thread could not be started. */
int qm_audit_log_sync(struct qm_audit_log *log);
/* qm_audit_log_sync_errors: failed fdatasync calls of the sync thread. */
uint64_t qm_audit_log_sync_errors(const struct qm_audit_log *log);
uint64_t qm_audit_log_records(const struct qm_audit_log *log);
void qm_audit_log_close(struct qm_audit_log *log);

#endif
