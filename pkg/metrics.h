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
#define QM_METRICS_BUCKETS_MAX 128     /* bounds per histogram; a histogram with more is skipped */

struct qm_metrics_counter {
  const char *name; /* borrowed */
  uint64_t value;
};

/* A level (RoleStats.gauges): a queue depth, calls in flight. */
struct qm_metrics_gauge {
  const char *name; /* borrowed */
  int64_t value;
};

/* A latency histogram (RoleStats.histograms), in Prometheus' shape. */
struct qm_metrics_histogram {
  const char *name;                  /* borrowed; "submit_latency_seconds" */
  const double *upper_bounds;        /* seconds, finite, strictly ascending */
  const uint64_t *cumulative_counts; /* observations <= upper_bounds[i]; non-decreasing */
  size_t nbounds;                    /* both arrays' length */
  uint64_t count;                    /* all observations (the +Inf bucket) */
  double sum;                        /* seconds */
};

/* What every role's Stats says (RoleStats). */
struct qm_metrics_role {
  const char *role;   /* "front", "hub", "provider", "auditor" */
  const char *id;     /* "NUVL_A" */
  const char *region; /* "" or NULL when none */
  uint64_t uptime_ms;
  const struct qm_metrics_counter *counters;
  size_t ncounters;
  const struct qm_metrics_gauge *gauges;
  size_t ngauges;
  const struct qm_metrics_histogram *histograms;
  size_t nhistograms;
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
 * qmesh_NAME_total (characters outside [A-Za-z0-9_] become '_'), every Stats gauge NAME the
 * gauge qmesh_NAME, every Stats histogram NAME the histogram qmesh_NAME (qmesh_NAME_bucket
 * with le="<bound>" per bound and le="+Inf" = count, qmesh_NAME_sum, qmesh_NAME_count). A
 * Stats counter or gauge with the name of one of the Summary's families (the auditor's
 * votes_accepted, ...) is merged into it: the Summary's value is shown. Any other clash of
 * names (a family takes its name, a counter's name without "_total" as well, a histogram's
 * _bucket, _sum and _count names as well), a name too long, a histogram that is not
 * well-formed (bounds not finite and strictly ascending, counts decreasing or above count,
 * more than QM_METRICS_BUCKETS_MAX bounds) or families past QM_METRICS_FAMILIES_MAX: the
 * first wins and the rest are counted in the gauge qmesh_metrics_skipped. Returns 0,
 * -ENOMEM, or -ENOSPC when |out| hit its bound (the text is then incomplete and must not be
 * served). */
int qm_metrics_render(struct qm_text *out, const struct qm_metrics_role *r,
                      const struct qm_metrics_auditor *a, const struct qm_metrics_http *h);

/* qm_metrics_sanitize: |name| with every character outside [A-Za-z0-9_] replaced by '_' into
 * |out| (NUL-terminated). Returns 0, or -E2BIG when it does not fit |cap|. */
int qm_metrics_sanitize(const char *name, char *out, size_t cap);

#endif
