/* metrics.h: a role's numbers in the Prometheus text exposition format (version 0.0.4).
 * Pure functions: no I/O, no gRPC; the HTTP side (http.c) fills the structs from Stats and
 * Summary replies and serves the text. */
#ifndef QM_METRICS_H
#define QM_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "text.h"

#define QM_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define QM_METRICS_NAME_MAX 160     /* longest metric name; longer counters are skipped */
#define QM_METRICS_FAMILIES_MAX 256 /* metric families per scrape; more are skipped */
#define QM_METRICS_TEXT_MAX (1u << 20) /* the rendered page's bound */

struct qm_metrics_counter {
  const char *name; /* borrowed */
  uint64_t value;
};

/* What every role's Stats says (RoleStats). */
struct qm_metrics_role {
  const char *role;   /* "front", "hub", "provider", "auditor" */
  const char *id;     /* "NUVL_A" */
  const char *region; /* "" or NULL when none */
  uint64_t uptime_ms;
  const struct qm_metrics_counter *counters;
  size_t ncounters;
};

struct qm_metrics_provider {
  const char *id;
  uint64_t votes, disagreements, initiations;
};

/* What the auditor's Summary says. */
struct qm_metrics_auditor {
  uint64_t decided, incomplete, pending;
  uint64_t quorum_successes, quorum_failures;
  uint64_t votes_accepted, votes_rejected, votes_duplicate, votes_late, unknown_domain_votes;
  uint32_t quorum_threshold, providers;
  const struct qm_metrics_provider *by_provider;
  size_t nproviders;
};

/* The HTTP side's own counters (kept by the HTTP threads). */
struct qm_metrics_http {
  const struct qm_metrics_counter *ingress_responses; /* name = HTTP status code, "204" */
  size_t ningress;                                    /* 0: no ingress on this role */
  uint64_t scrape_failures; /* earlier scrapes answered 503: the role's gRPC did not answer */
};

/* qm_metrics_render: appends the exposition of |r| (required), |a| (the auditor, or NULL) and
 * |h| (or NULL) to |out|: one "# HELP" and one "# TYPE" line per family, then its samples,
 * every sample labelled role="..",id="..". Every Stats counter NAME becomes the counter
 * qmesh_NAME_total (characters outside [A-Za-z0-9_] become '_'). A Stats counter with the
 * name of one of the Summary's families (the auditor's votes_accepted, ...) is merged into
 * it: the Summary's value is shown. Any other clash of names (families are compared without
 * a counter's "_total"), a name too long or families past QM_METRICS_FAMILIES_MAX: the first
 * wins and the rest are counted in the gauge qmesh_metrics_skipped. Returns 0, -ENOMEM, or
 * -ENOSPC when |out| hit its bound (the text is then incomplete and must not be served). */
int qm_metrics_render(struct qm_text *out, const struct qm_metrics_role *r,
                      const struct qm_metrics_auditor *a, const struct qm_metrics_http *h);

/* qm_metrics_sanitize: |name| with every character outside [A-Za-z0-9_] replaced by '_' into
 * |out| (NUL-terminated). Returns 0, or -E2BIG when it does not fit |cap|. */
int qm_metrics_sanitize(const char *name, char *out, size_t cap);

#endif
