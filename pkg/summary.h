/* summary.h: the demo's report: what the auditor decided, what the hubs relayed and the
 * providers initiated, and what the requester saw; as the reference's text and as JSON. */
#ifndef QM_SUMMARY_H
#define QM_SUMMARY_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "qmesh/v1/qmesh.pb-c.h"
#include "requester.h"
#include "text.h"
#include "topology.h"

struct qm_report_provider {
  char id[QM_ID_MAX];
  uint64_t initiated;                          /* the provider's own count */
  uint64_t initiated_by_domain[QM_DOMAINS_MAX];
  uint64_t evaluated, flips;
  /* the auditor's view */
  uint64_t votes, disagreements, audited_initiations;
  double disagree_rate;
  /* the auditor's drift detector */
  int drift_suspected;
  uint64_t drift_change_at, drift_alarm_at;
  double drift_statistic, drift_threshold, drift_peak;
};

struct qm_report {
  const struct qm_topology *topo;              /* borrowed */
  const struct qm_requester_result *req;       /* NULL for `qmesh summary` */
  double send_ms;                              /* requester: first submit -> last ack */
  int64_t byz_at;
  char byz_provider[QM_ID_MAX];                /* "" = unknown, "none" */
  uint64_t hub_relays[QM_REGIONS_MAX];
  uint64_t hub_relays_failed[QM_REGIONS_MAX];
  struct qm_report_provider providers[QM_PROVIDERS_MAX]; /* in the auditor's order: worst first */
  size_t nproviders;
  char most_inconsistent[QM_ID_MAX];
  uint64_t decided, incomplete, pending, successes, failures;
  uint64_t votes_accepted, votes_rejected, votes_duplicate, votes_late, unknown_domain;
  uint64_t audit_log_records, drift_skipped;
  int64_t first_vote_ns, last_decision_ns;
  double e2e_seconds, e2e_rate;                /* first submit -> last decision */
};

/* qm_report_stats: the RoleStats of instance |id| (role "front", "hub", "provider" or
 * "auditor") at |addr|; NULL with |err| filled when it did not answer. Free with
 * qmesh__v1__role_stats__free_unpacked. */
Qmesh__V1__RoleStats *qm_report_stats(const char *addr, const char *id, const char *role, struct qm_err *err);
/* qm_report_counter: the counter |name| of |s|, 0 when absent. */
uint64_t qm_report_counter(const Qmesh__V1__RoleStats *s, const char *name);
/* qm_report_service_of: the qmesh.v1 service of a role ("front" -> "Front"). */
const char *qm_report_service_of(const char *role);

/* qm_report_collect: asks the auditor (Summary), every hub and provider (Stats) over gRPC.
 * Returns 0 or a negative code naming the instance that did not answer. */
int qm_report_collect(struct qm_report *r, const struct qm_topology *t, struct qm_err *err);
/* qm_report_auditor_decided: the auditor's decided and pending counts (for waiting). */
int qm_report_auditor_progress(const struct qm_topology *t, uint64_t *decided, uint64_t *pending,
                               struct qm_err *err);

/* qm_report_plot: asks the auditor for its drift traces and writes them as an SVG chart to
 * |path|, marking the true flip when known (|true_at| >= 0). */
int qm_report_plot(const struct qm_topology *t, const char *path, int64_t true_at, const char *true_provider,
                   struct qm_err *err);

void qm_report_text(const struct qm_report *r, struct qm_text *out);
void qm_report_json(const struct qm_report *r, struct qm_text *out);

#endif
