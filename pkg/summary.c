/* summary.c: collecting the report over gRPC and printing it as the reference did. */
#include "summary.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qmesh/v1/qmesh.pb-c.h"
#include "plot_svg.h"
#include "rpc.h"
#include "supervisor.h"

#define QM_REPORT_TIMEOUT_MS 5000

static int call(const char *listen, const char *path, const char *id, struct qm_rpc_result *res,
                struct qm_err *err) {
  char dial[QM_ADDR_MAX];
  qm_supervisor_dial(listen, dial, sizeof dial);
  uint8_t empty[1];
  int rc = qm_rpc_call_sync_id(dial, id, path, empty, 0, NULL, 0, QM_REPORT_TIMEOUT_MS, 0, res, err);
  if (rc) return rc;
  if (res->status != QM_STATUS_OK) {
    free(res->resp);
    return qm_err_set(err, -EIO, "%s at %s: %s: %s", id, dial, qm_status_name(res->status), res->details);
  }
  return 0;
}

const char *qm_report_service_of(const char *role) {
  if (strcmp(role, "front") == 0) return "Front";
  if (strcmp(role, "hub") == 0) return "Hub";
  if (strcmp(role, "provider") == 0) return "Provider";
  return "Auditor";
}

Qmesh__V1__RoleStats *qm_report_stats(const char *addr, const char *id, const char *role, struct qm_err *err) {
  char path[64];
  snprintf(path, sizeof path, "/qmesh.v1.%s/Stats", qm_report_service_of(role));
  struct qm_rpc_result res;
  if (call(addr, path, id, &res, err)) return NULL;
  Qmesh__V1__RoleStats *s = qmesh__v1__role_stats__unpack(NULL, res.len, res.resp);
  free(res.resp);
  if (!s) qm_err_set(err, -EINVAL, "%s: malformed RoleStats", id);
  return s;
}

static Qmesh__V1__RoleStats *stats_of(const struct qm_endpoint *ep, const char *role, struct qm_err *err) {
  return qm_report_stats(ep->listen, ep->id, role, err);
}

uint64_t qm_report_counter(const Qmesh__V1__RoleStats *s, const char *name) {
  for (size_t i = 0; i < s->n_counters; i++)
    if (strcmp(s->counters[i]->name, name) == 0) return s->counters[i]->value;
  return 0;
}

static Qmesh__V1__Summary *auditor_summary(const struct qm_topology *t, struct qm_err *err) {
  struct qm_rpc_result res;
  if (call(t->auditor.listen, "/qmesh.v1.Auditor/Summary", t->auditor.id, &res, err)) return NULL;
  Qmesh__V1__Summary *s = qmesh__v1__summary__unpack(NULL, res.len, res.resp);
  free(res.resp);
  if (!s) qm_err_set(err, -EINVAL, "%s: malformed Summary", t->auditor.id);
  return s;
}

int qm_report_auditor_progress(const struct qm_topology *t, uint64_t *decided, uint64_t *pending,
                               struct qm_err *err) {
  Qmesh__V1__Summary *s = auditor_summary(t, err);
  if (!s) return -EIO;
  *decided = s->decided;
  *pending = s->pending;
  qmesh__v1__summary__free_unpacked(s, NULL);
  return 0;
}

int qm_report_collect(struct qm_report *r, const struct qm_topology *t, struct qm_err *err) {
  r->topo = t;
  for (size_t i = 0; i < t->nregions; i++) {
    Qmesh__V1__RoleStats *s = stats_of(&t->regions[i].hub, "hub", err);
    if (!s) return -EIO;
    r->hub_relays[i] = qm_report_counter(s, "relays");
    r->hub_relays_failed[i] = qm_report_counter(s, "relays_failed");
    qmesh__v1__role_stats__free_unpacked(s, NULL);
  }
  Qmesh__V1__Summary *sum = auditor_summary(t, err);
  if (!sum) return -EIO;
  r->nproviders = sum->n_by_provider < QM_PROVIDERS_MAX ? sum->n_by_provider : QM_PROVIDERS_MAX;
  for (size_t k = 0; k < r->nproviders; k++) {
    const Qmesh__V1__ProviderSummary *ps = sum->by_provider[k];
    struct qm_report_provider *p = &r->providers[k];
    snprintf(p->id, sizeof p->id, "%s", ps->id);
    p->votes = ps->votes;
    p->disagreements = ps->disagreements;
    p->disagree_rate = ps->disagree_rate;
    p->audited_initiations = ps->initiations;
    p->drift_suspected = ps->drift_suspected;
    p->drift_change_at = ps->drift_change_at;
    p->drift_alarm_at = ps->drift_alarm_at;
    p->drift_statistic = ps->drift_statistic;
    p->drift_threshold = ps->drift_threshold;
    p->drift_peak = ps->drift_peak;
    const struct qm_provider *tp = qm_topology_find_provider(t, ps->id);
    Qmesh__V1__RoleStats *s = tp ? stats_of(&tp->ep, "provider", err) : NULL;
    if (!s) {
      qmesh__v1__summary__free_unpacked(sum, NULL);
      return tp ? -EIO : qm_err_set(err, -EINVAL, "auditor names unknown provider %s", ps->id);
    }
    p->initiated = qm_report_counter(s, "initiated");
    p->evaluated = qm_report_counter(s, "evaluated");
    p->flips = qm_report_counter(s, "byzantine_flips");
    for (size_t d = 0; d < t->ndomains; d++) {
      char name[QM_ID_MAX + 16];
      snprintf(name, sizeof name, "initiated_%s", t->domains[d].name);
      p->initiated_by_domain[d] = qm_report_counter(s, name);
    }
    qmesh__v1__role_stats__free_unpacked(s, NULL);
  }
  snprintf(r->most_inconsistent, sizeof r->most_inconsistent, "%s", sum->most_inconsistent);
  r->decided = sum->decided;
  r->incomplete = sum->incomplete;
  r->pending = sum->pending;
  r->successes = sum->quorum_successes;
  r->failures = sum->quorum_failures;
  r->votes_accepted = sum->votes_accepted;
  r->votes_rejected = sum->votes_rejected;
  r->votes_duplicate = sum->votes_duplicate;
  r->votes_late = sum->votes_late;
  r->unknown_domain = sum->unknown_domain_votes;
  r->audit_log_records = sum->audit_log_records;
  r->drift_skipped = sum->drift_skipped;
  r->first_vote_ns = sum->first_vote_unix_nanos;
  r->last_decision_ns = sum->last_decision_unix_nanos;
  qmesh__v1__summary__free_unpacked(sum, NULL);
  return 0;
}

int qm_report_plot(const struct qm_topology *t, const char *path, int64_t true_at, const char *true_provider,
                   struct qm_err *err) {
  struct qm_rpc_result res;
  if (call(t->auditor.listen, "/qmesh.v1.Auditor/DriftTrace", t->auditor.id, &res, err)) return -EIO;
  Qmesh__V1__DriftTrace *tr = qmesh__v1__drift_trace__unpack(NULL, res.len, res.resp);
  free(res.resp);
  if (!tr) return qm_err_set(err, -EINVAL, "%s: malformed DriftTrace", t->auditor.id);
  struct qm_plot_series series[QM_PLOT_SERIES_MAX];
  size_t n = tr->n_providers < QM_PLOT_SERIES_MAX ? tr->n_providers : QM_PLOT_SERIES_MAX;
  for (size_t i = 0; i < n; i++) {
    const Qmesh__V1__ProviderTrace *p = tr->providers[i];
    series[i].id = p->id;
    series[i].seqs = p->sequence;
    series[i].values = p->statistic;
    series[i].n = p->n_sequence < p->n_statistic ? p->n_sequence : p->n_statistic;
    memset(&series[i].report, 0, sizeof series[i].report);
    series[i].report.suspected = p->suspected;
    series[i].report.change_at = p->change_at;
    series[i].report.alarm_at = p->alarm_at;
    series[i].report.threshold = p->threshold;
    series[i].report.peak = p->peak;
  }
  int rc = qm_plot_svg_write_series(path, series, n, true_at, true_provider, err);
  qmesh__v1__drift_trace__free_unpacked(tr, NULL);
  return rc;
}

/* The reference's order of providers for the initiation lines is the topology's. */
static const struct qm_report_provider *by_id(const struct qm_report *r, const char *id) {
  for (size_t i = 0; i < r->nproviders; i++)
    if (strcmp(r->providers[i].id, id) == 0) return &r->providers[i];
  return NULL;
}

void qm_report_text(const struct qm_report *r, struct qm_text *o) {
  const struct qm_topology *t = r->topo;
  uint64_t total = r->req ? r->req->sent : r->decided;
  qm_text_printf(o, "\n===== MULTI-HUB + MULTI-DOMAIN (FAILOVER + BYZANTINE QUORUM) =====\n");
  qm_text_printf(o, "Total requests: %" PRIu64 "\n", total);
  if (r->req) {
    const char *from = t->regions[0].front.id;
    const char *to = t->nregions > 1 ? t->regions[1].front.id : from;
    qm_text_printf(o, "Failover at index: %" PRIu64 " (%s -> %s)\n", r->req->failover_at, from, to);
  }
  if (r->byz_provider[0] && strcmp(r->byz_provider, "none") != 0)
    qm_text_printf(o, "Byzantine provider: %s (flip at %" PRId64 ")\n", r->byz_provider, r->byz_at);
  else if (r->byz_provider[0])
    qm_text_printf(o, "Byzantine provider: none\n");
  if (r->req) {
    qm_text_printf(o, "Total time: %.2f ms\n", r->send_ms);
    qm_text_printf(o, "Avg per request: %.4f ms\n", total ? r->send_ms / (double)total : 0.0);
  }
  qm_text_printf(o, "\nHub Relay Counts (fanout posts issued):\n");
  for (size_t i = 0; i < t->nregions; i++)
    qm_text_printf(o, "%s relays: %" PRIu64 "\n", t->regions[i].hub.id, r->hub_relays[i]);
  qm_text_printf(o, "\nProvider Initiations (total):\n");
  for (size_t i = 0; i < t->nproviders; i++) {
    const struct qm_report_provider *p = by_id(r, t->providers[i].ep.id);
    if (p) qm_text_printf(o, "%s: %" PRIu64 "\n", p->id, p->initiated);
  }
  qm_text_printf(o, "\nProvider Initiations (by domain):\n");
  for (size_t i = 0; i < t->nproviders; i++) {
    const struct qm_report_provider *p = by_id(r, t->providers[i].ep.id);
    if (!p) continue;
    qm_text_printf(o, "%s:", p->id);
    for (size_t d = 0; d < t->ndomains; d++)
      qm_text_printf(o, "%s %s=%" PRIu64, d ? "," : "", t->domains[d].name, p->initiated_by_domain[d]);
    qm_text_printf(o, "\n");
  }
  qm_text_printf(o, "\nAuditor Results (non-authoritative aggregation):\n");
  qm_text_printf(o, "Quorum successes: %" PRIu64 "\n", r->successes);
  qm_text_printf(o, "Quorum failures: %" PRIu64 "\n", r->failures);
  qm_text_printf(o, "\nSuspect scoring (provider vote vs quorum outcome):\n");
  for (size_t i = 0; i < r->nproviders; i++) {
    const struct qm_report_provider *p = &r->providers[i];
    qm_text_printf(o, "%s: disagree=%" PRIu64 "/%" PRIu64 " (%.2f%%)\n", p->id, p->disagreements, p->votes,
                   p->disagree_rate * 100.0);
  }
  qm_text_printf(o, "Most inconsistent provider: %s\n", r->most_inconsistent);
  /* Lines the reference did not have: after its lines, never instead. */
  qm_text_printf(o, "\nDecided: %" PRIu64 " (incomplete: %" PRIu64 ", pending: %" PRIu64 ")\n", r->decided,
                 r->incomplete, r->pending);
  qm_text_printf(o, "Votes: accepted=%" PRIu64 ", rejected=%" PRIu64 ", duplicate=%" PRIu64 ", late=%" PRIu64
                    ", unknown domain=%" PRIu64 "\n",
                 r->votes_accepted, r->votes_rejected, r->votes_duplicate, r->votes_late, r->unknown_domain);
  if (r->nproviders) {
    qm_text_printf(o, "Drift detection (per-provider CUSUM, inverted votes vs its peers; threshold %.2f):\n",
                   r->providers[0].drift_threshold);
    for (size_t i = 0; i < t->nproviders; i++) {
      const struct qm_report_provider *p = by_id(r, t->providers[i].ep.id);
      if (!p) continue;
      if (p->drift_suspected)
        qm_text_printf(o, "%s: suspected: behaviour changed near request %" PRIu64 " (alarm at %" PRIu64
                          ", statistic %.2f)\n",
                       p->id, p->drift_change_at, p->drift_alarm_at, p->drift_statistic);
      else
        qm_text_printf(o, "%s: not suspected (statistic %.2f, peak %.2f)\n", p->id, p->drift_statistic,
                       p->drift_peak);
    }
  }
  if (r->req) {
    qm_text_printf(o, "Requester: accepted=%" PRIu64 ", refused=%" PRIu64 ", failed=%" PRIu64 ", failovers=%" PRIu64
                      ", resent=%" PRIu64 ", retried after backpressure=%" PRIu64 "\n",
                   r->req->accepted, r->req->refused, r->req->failed, r->req->failovers, r->req->resent,
                   r->req->retried_busy);
    qm_text_printf(o, "End-to-end rate: %.1f requests/s (%.3f s from first submit to last decision)\n",
                   r->e2e_rate, r->e2e_seconds);
  }
  qm_text_printf(o, "==================================================================\n");
}

void qm_report_json(const struct qm_report *r, struct qm_text *o) {
  const struct qm_topology *t = r->topo;
  qm_text_printf(o, "{\"total_requests\": %" PRIu64, r->req ? r->req->sent : r->decided);
  if (r->req) {
    qm_text_printf(o, ", \"failover_at\": %" PRIu64 ", \"failover_from\": ", r->req->failover_at);
    qm_text_json_string(o, t->regions[0].front.id);
    qm_text_printf(o, ", \"failover_to\": ");
    qm_text_json_string(o, t->nregions > 1 ? t->regions[1].front.id : t->regions[0].front.id);
    qm_text_printf(o, ", \"total_time_ms\": %.3f", r->send_ms);
  }
  qm_text_printf(o, ", \"byzantine_provider\": ");
  qm_text_json_string(o, r->byz_provider);
  qm_text_printf(o, ", \"byzantine_at\": %" PRId64 ", \"hub_relays\": {", r->byz_at);
  for (size_t i = 0; i < t->nregions; i++) {
    qm_text_printf(o, "%s", i ? ", " : "");
    qm_text_json_string(o, t->regions[i].hub.id);
    qm_text_printf(o, ": %" PRIu64, r->hub_relays[i]);
  }
  qm_text_printf(o, "}, \"providers\": [");
  for (size_t i = 0; i < r->nproviders; i++) {
    const struct qm_report_provider *p = &r->providers[i];
    qm_text_printf(o, "%s{\"id\": ", i ? ", " : "");
    qm_text_json_string(o, p->id);
    qm_text_printf(o, ", \"initiations\": %" PRIu64 ", \"initiations_by_domain\": {", p->initiated);
    for (size_t d = 0; d < t->ndomains; d++) {
      qm_text_printf(o, "%s", d ? ", " : "");
      qm_text_json_string(o, t->domains[d].name);
      qm_text_printf(o, ": %" PRIu64, p->initiated_by_domain[d]);
    }
    qm_text_printf(o,
                   "}, \"audited_initiations\": %" PRIu64 ", \"votes\": %" PRIu64 ", \"disagreements\": %" PRIu64
                   ", \"disagree_rate\": %.6f, \"evaluated\": %" PRIu64 ", \"byzantine_flips\": %" PRIu64
                   ", \"drift\": {\"suspected\": %s, \"change_at\": %" PRIu64 ", \"alarm_at\": %" PRIu64
                   ", \"statistic\": %.6f, \"threshold\": %.6f, \"peak\": %.6f}}",
                   p->audited_initiations, p->votes, p->disagreements, p->disagree_rate, p->evaluated, p->flips,
                   p->drift_suspected ? "true" : "false", p->drift_change_at, p->drift_alarm_at, p->drift_statistic,
                   p->drift_threshold, p->drift_peak);
  }
  qm_text_printf(o, "], \"most_inconsistent\": ");
  qm_text_json_string(o, r->most_inconsistent);
  qm_text_printf(o,
                 ", \"quorum_successes\": %" PRIu64 ", \"quorum_failures\": %" PRIu64 ", \"decided\": %" PRIu64
                 ", \"incomplete\": %" PRIu64 ", \"pending\": %" PRIu64 ", \"votes_accepted\": %" PRIu64
                 ", \"votes_rejected\": %" PRIu64 ", \"votes_duplicate\": %" PRIu64 ", \"votes_late\": %" PRIu64
                 ", \"unknown_domain_votes\": %" PRIu64 ", \"audit_log_records\": %" PRIu64
                 ", \"drift_skipped\": %" PRIu64,
                 r->successes, r->failures, r->decided, r->incomplete, r->pending, r->votes_accepted,
                 r->votes_rejected, r->votes_duplicate, r->votes_late, r->unknown_domain, r->audit_log_records,
                 r->drift_skipped);
  if (r->req)
    qm_text_printf(o,
                   ", \"requester\": {\"sent\": %" PRIu64 ", \"accepted\": %" PRIu64 ", \"refused\": %" PRIu64
                   ", \"failed\": %" PRIu64 ", \"failovers\": %" PRIu64 ", \"resent\": %" PRIu64
                   ", \"retried_busy\": %" PRIu64
                   "}, \"e2e_seconds\": %.6f, \"e2e_rate\": %.1f",
                   r->req->sent, r->req->accepted, r->req->refused, r->req->failed, r->req->failovers,
                   r->req->resent, r->req->retried_busy, r->e2e_seconds, r->e2e_rate);
  qm_text_printf(o, "}\n");
}
