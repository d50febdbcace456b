/* metrics.c: the Prometheus text exposition (0.0.4) of a role's Stats and the auditor's
 * Summary: counters, gauges and histograms; families, HELP/TYPE lines, escaping, unique
 * names. */
#include "metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the roles' Stats counters mean (pkg/front.c, hub.c, provider.c, auditor.c, role.c).
 * A counter not listed here is still exported, with a generic HELP line. */
static const struct {
  const char *name, *help;
} known_help[] = {
    {"submit_accepted", "Requests the front accepted and passed towards its hub."},
    {"submit_forwarded", "Requests the front's hub took (relay answered OK)."},
    {"submit_refused_full", "Requests the front refused: its queue to the hub was full (429 on HTTP)."},
    {"submit_refused_invalid", "Requests the front refused as malformed (bad metadata, too large)."},
    {"submit_without_seq", "Requests that carried no x-request-seq."},
    {"hub_failed", "Requests the front could not hand to its hub."},
    {"artifacts_received", "Artifacts the hub received."},
    {"relays", "Relay posts the hub issued to providers (fan-out)."},
    {"relays_failed", "Relay posts to a provider that failed."},
    {"artifacts_undelivered", "Artifacts the hub could not deliver to every provider."},
    {"evaluated", "Artifacts the provider evaluated."},
    {"initiated", "Decisions with initiated = true."},
    {"byzantine_flips", "Decisions this provider inverted as the configured Byzantine provider."},
    {"reported", "Signed outcomes the provider reported to the auditor."},
    {"report_failed", "Signed outcomes the auditor did not take."},
    {"unknown_domain", "Artifacts for a domain outside the topology's list."},
    {"votes_accepted", "Verified votes the auditor counted."},
    {"votes_duplicate", "Votes the auditor had already counted (replays)."},
    {"votes_late", "Votes for requests already decided."},
    {"rejected_malformed", "Reports the auditor rejected as malformed."},
    {"rejected_unknown_signer", "Reports signed by no known provider."},
    {"rejected_bad_signature", "Reports whose signature did not verify."},
    {"rejected_signer_mismatch", "Reports signed by one provider for another's outcome."},
    {"report_batches", "Batches of signed outcomes the provider sent to the auditor."},
    {"report_retries", "Reports the provider offered the auditor again after a failure."},
    {"report_rejected", "Signed outcomes the auditor refused."},
    {"audit_log_failed", "Audit log appends that failed."},
    {"audit_log_replayed", "Audit log records replayed at start."},
    {"refused_unauthorized", "Calls refused: the peer's certificate is not allowed to make them."},
    {"refused_full", "Calls refused because a bounded queue or table was full."},
    {"refused_invalid", "Calls refused as malformed."},
    {"rpc_calls", "gRPC calls accepted on registered methods."},
    {"rpc_unimplemented", "gRPC calls to unknown methods."},
    {"rpc_failed", "gRPC calls that ended with a non-OK status."},
    {"counters_dropped", "Counters the role could not register (table full)."},
};

/* What the roles' Stats gauges and histograms mean (pkg/front.c, hub.c, provider.c,
 * auditor.c). Others are still exported, with a generic HELP line. */
static const struct {
  const char *name, *help;
} known_gauge_help[] = {
    {"requests_outstanding", "Requests the front accepted that its hub has not answered yet."},
    {"batch_waiting", "Requests waiting in the front's batch for the next relay to its hub."},
    {"hub_calls_inflight", "Relay calls from the front to its hub in flight."},
    {"hub_calls_queued", "Relay calls from the front queued for its hub, not sent yet."},
    {"provider_calls_inflight", "Evaluate calls from the hub to its providers in flight (all providers)."},
    {"provider_calls_queued", "Evaluate calls from the hub queued for its providers, not sent yet."},
    {"votes_waiting", "Signed votes waiting in the provider's batcher for the next report to the auditor."},
    {"auditor_batches_inflight", "Report batches from the provider to the auditor in flight."},
    {"requests_pending", "Requests with a first vote and no decision yet (the auditor's queue)."},
    {"drift_reorder_waiting", "Decisions the auditor holds back to hand them to the drift monitor in order."},
}, known_hist_help[] = {
    {"submit_latency_seconds", "Seconds from the front accepting a request to its hub's answer."},
    {"relay_latency_seconds", "Seconds from the hub's fan-out of a relay call to the last provider's answer."},
    {"vote_latency_seconds", "Seconds from a signed vote entering the provider's batcher to the auditor's answer."},
    {"decision_latency_seconds", "Seconds from a request's first vote to its decision at the auditor."},
};

/* The names already taken (a family's own name and the other sample names it writes); the
 * first of two equal names wins. */
#define QM_METRICS_TAKEN_MAX (4 * QM_METRICS_FAMILIES_MAX)
struct seen {
  char (*names)[QM_METRICS_NAME_MAX];
  size_t n;
  size_t families;               /* written, qmesh_metrics_skipped included */
  size_t summary_lo, summary_hi; /* names[lo..hi) came from the auditor's Summary */
  uint64_t skipped;
};

struct render {
  struct qm_text *out;
  struct seen seen;
  const struct qm_metrics_role *r;
};

int qm_metrics_sanitize(const char *name, char *out, size_t cap) {
  size_t n = strlen(name);
  if (n + 1 > cap) return -E2BIG;
  for (size_t i = 0; i < n; i++) {
    char c = name[i];
    int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    out[i] = ok ? c : '_';
  }
  out[n] = '\0';
  return 0;
}

/* label_value: a label value with \, " and newline escaped, as the format asks. */
static void label_value(struct qm_text *t, const char *s) {
  for (const char *p = s ? s : ""; *p; p++) {
    if (*p == '\\') qm_text_printf(t, "\\\\");
    else if (*p == '"') qm_text_printf(t, "\\\"");
    else if (*p == '\n') qm_text_printf(t, "\\n");
    else qm_text_printf(t, "%c", *p);
  }
}

/* help_text: HELP lines escape \ and newline only. */
static void help_text(struct qm_text *t, const char *s) {
  for (const char *p = s; *p; p++) {
    if (*p == '\\') qm_text_printf(t, "\\\\");
    else if (*p == '\n') qm_text_printf(t, "\\n");
    else qm_text_printf(t, "%c", *p);
  }
}

/* family: writes the HELP and TYPE lines of |name|; 0, or 1 when it must be skipped (a
 * duplicate or past the family bound). */
static int family(struct render *x, const char *name, const char *type, const char *help) {
  /* The names the family takes. A counter x_total takes x too: parsers that follow
   * OpenMetrics file the counter x_total and the gauge x under the same family x. A
   * histogram x takes its sample names x_bucket, x_sum and x_count too. */
  static const char *const hist_suffixes[] = {"", "_bucket", "_sum", "_count"};
  char taken[4][QM_METRICS_NAME_MAX];
  size_t ntaken = 0, n = strlen(name);
  if (x->seen.families == QM_METRICS_FAMILIES_MAX) {
    x->seen.skipped++;
    return 1;
  }
  if (strcmp(type, "histogram") == 0) {
    for (size_t i = 0; i < 4; i++) {
      int w = snprintf(taken[ntaken++], QM_METRICS_NAME_MAX, "%s%s", name, hist_suffixes[i]);
      if (w < 0 || (size_t)w >= QM_METRICS_NAME_MAX) {
        x->seen.skipped++;
        return 1;
      }
    }
  } else {
    if (n >= QM_METRICS_NAME_MAX) {
      x->seen.skipped++;
      return 1;
    }
    memcpy(taken[ntaken++], name, n + 1);
    if (strcmp(type, "counter") == 0 && n > 6 && strcmp(name + n - 6, "_total") == 0) {
      memcpy(taken[ntaken], name, n - 6);
      taken[ntaken++][n - 6] = '\0';
    }
  }
  int clash = 0, lost = 0;
  for (size_t k = 0; k < ntaken; k++)
    for (size_t i = 0; i < x->seen.n; i++)
      if (strcmp(x->seen.names[i], taken[k]) == 0) {
        clash = 1;
        /* The auditor's Stats count votes_accepted/duplicate/late too: the same numbers as
         * its Summary's, merged into one family, not a loss. */
        if (i < x->seen.summary_lo || i >= x->seen.summary_hi) lost = 1;
      }
  if (clash) {
    if (lost) x->seen.skipped++;
    return 1;
  }
  if (x->seen.n + ntaken > QM_METRICS_TAKEN_MAX) { /* cannot happen: at most 4 per family */
    x->seen.skipped++;
    return 1;
  }
  for (size_t k = 0; k < ntaken; k++) memcpy(x->seen.names[x->seen.n++], taken[k], QM_METRICS_NAME_MAX);
  x->seen.families++;
  qm_text_printf(x->out, "# HELP %s ", name);
  help_text(x->out, help);
  qm_text_printf(x->out, "\n# TYPE %s %s\n", name, type);
  return 0;
}

/* number: |v| as the format writes a float: the shortest text that reads back as |v|
 * ("0.00025", "1", "10", "0.30000000000000004"; an exponent only below 1e-4 or from 1e15 on),
 * NaN, +Inf or -Inf. */
static void number(char *buf, size_t cap, double v) {
  if (isnan(v)) {
    snprintf(buf, cap, "NaN");
    return;
  }
  if (isinf(v)) {
    snprintf(buf, cap, v > 0 ? "+Inf" : "-Inf");
    return;
  }
  double a = v < 0 ? -v : v;
  int plain = a < 1e15 && (a == 0 || a >= 1e-4);
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(buf, cap, "%.*g", prec, v);
    if (strtod(buf, NULL) == v && (!plain || !strchr(buf, 'e'))) return;
  }
}

/* sample_start: "name{role="..",id=".."" (the caller adds more labels, then sample_end). */
static void sample_start(struct render *x, const char *name) {
  qm_text_printf(x->out, "%s{role=\"", name);
  label_value(x->out, x->r->role);
  qm_text_printf(x->out, "\",id=\"");
  label_value(x->out, x->r->id);
  qm_text_printf(x->out, "\"");
}

static void label(struct render *x, const char *key, const char *value) {
  qm_text_printf(x->out, ",%s=\"", key);
  label_value(x->out, value);
  qm_text_printf(x->out, "\"");
}

static void sample_u64(struct render *x, uint64_t v) { qm_text_printf(x->out, "} %" PRIu64 "\n", v); }

/* one: a family with a single sample. */
static void one(struct render *x, const char *name, const char *type, const char *help, uint64_t v) {
  if (family(x, name, type, help)) return;
  sample_start(x, name);
  sample_u64(x, v);
}

static void render_auditor(struct render *x, const struct qm_metrics_auditor *a) {
  one(x, "qmesh_quorum_successes_total", "counter", "Decided requests whose quorum held (k providers voted initiated).",
      a->quorum_successes);
  one(x, "qmesh_quorum_failures_total", "counter", "Decided requests whose quorum did not hold.", a->quorum_failures);
  one(x, "qmesh_decided_total", "counter", "Requests the auditor decided (complete and incomplete).", a->decided);
  one(x, "qmesh_incomplete_total", "counter", "Requests decided at the deadline with fewer than n votes.",
      a->incomplete);
  one(x, "qmesh_pending", "gauge", "Requests with a first vote and no decision yet (the auditor's queue).",
      a->pending);
  one(x, "qmesh_votes_accepted_total", "counter", "Verified votes the auditor counted.", a->votes_accepted);
  one(x, "qmesh_votes_rejected_total", "counter",
      "Votes rejected: bad signature, unknown signer, signer mismatch or malformed.", a->votes_rejected);
  one(x, "qmesh_votes_duplicate_total", "counter", "Votes the auditor had already counted (replays).",
      a->votes_duplicate);
  one(x, "qmesh_votes_late_total", "counter", "Votes for requests already decided.", a->votes_late);
  one(x, "qmesh_unknown_domain_votes_total", "counter", "Votes for a domain outside the topology's list.",
      a->unknown_domain_votes);
  one(x, "qmesh_quorum_threshold", "gauge", "Votes with initiated = true a request needs (k of k-of-n).",
      a->quorum_threshold);
  one(x, "qmesh_providers", "gauge", "Providers in the topology (n of k-of-n).", a->providers);
  static const struct {
    const char *name, *help;
    size_t field;
  } per[] = {
      {"qmesh_provider_votes_total", "Votes of the provider counted in decided requests.",
       offsetof(struct qm_metrics_provider, votes)},
      {"qmesh_provider_disagreements_total", "Votes of the provider that differ from the request's quorum outcome.",
       offsetof(struct qm_metrics_provider, disagreements)},
      {"qmesh_provider_initiations_total", "Verified votes of the provider with initiated = true.",
       offsetof(struct qm_metrics_provider, initiations)},
  };
  for (size_t k = 0; k < sizeof per / sizeof per[0]; k++) {
    if (family(x, per[k].name, "counter", per[k].help)) continue;
    for (size_t i = 0; i < a->nproviders; i++) {
      const struct qm_metrics_provider *p = &a->by_provider[i];
      sample_start(x, per[k].name);
      label(x, "provider", p->id);
      sample_u64(x, *(const uint64_t *)((const char *)p + per[k].field));
    }
  }
}

static void render_counters(struct render *x) {
  char base[QM_METRICS_NAME_MAX], name[QM_METRICS_NAME_MAX + 16], help[QM_METRICS_NAME_MAX + 64];
  for (size_t i = 0; i < x->r->ncounters; i++) {
    const struct qm_metrics_counter *c = &x->r->counters[i];
    if (!c->name || qm_metrics_sanitize(c->name, base, sizeof base)) {
      x->seen.skipped++;
      continue;
    }
    snprintf(name, sizeof name, "qmesh_%s_total", base);
    const char *h = NULL;
    for (size_t k = 0; k < sizeof known_help / sizeof known_help[0] && !h; k++)
      if (strcmp(known_help[k].name, c->name) == 0) h = known_help[k].help;
    if (!h && strncmp(c->name, "initiated_", 10) == 0) {
      snprintf(help, sizeof help, "Decisions with initiated = true in domain %s.", c->name + 10);
      h = help;
    } else if (!h) {
      snprintf(help, sizeof help, "The role's Stats counter %s.", c->name);
      h = help;
    }
    one(x, name, "counter", h, c->value);
  }
}

static const char *lookup_help(const char *name, int hist, char *buf, size_t cap) {
  size_t n = hist ? sizeof known_hist_help / sizeof known_hist_help[0]
                  : sizeof known_gauge_help / sizeof known_gauge_help[0];
  for (size_t k = 0; k < n; k++) {
    const char *kn = hist ? known_hist_help[k].name : known_gauge_help[k].name;
    if (strcmp(kn, name) == 0) return hist ? known_hist_help[k].help : known_gauge_help[k].help;
  }
  snprintf(buf, cap, hist ? "The role's Stats histogram %s." : "The role's Stats gauge %s.", name);
  return buf;
}

static void render_gauges(struct render *x) {
  char base[QM_METRICS_NAME_MAX], name[QM_METRICS_NAME_MAX + 16], help[QM_METRICS_NAME_MAX + 64];
  for (size_t i = 0; i < x->r->ngauges; i++) {
    const struct qm_metrics_gauge *g = &x->r->gauges[i];
    if (!g->name || qm_metrics_sanitize(g->name, base, sizeof base)) {
      x->seen.skipped++;
      continue;
    }
    snprintf(name, sizeof name, "qmesh_%s", base);
    if (family(x, name, "gauge", lookup_help(g->name, 0, help, sizeof help))) continue;
    sample_start(x, name);
    qm_text_printf(x->out, "} %" PRId64 "\n", g->value);
  }
}

/* hist_ok: finite, strictly ascending bounds; cumulative counts that never decrease and
 * never pass the count; a bounded number of buckets. */
static int hist_ok(const struct qm_metrics_histogram *h) {
  if (h->nbounds > QM_METRICS_BUCKETS_MAX || (h->nbounds && (!h->upper_bounds || !h->cumulative_counts))) return 0;
  for (size_t i = 0; i < h->nbounds; i++) {
    if (!isfinite(h->upper_bounds[i]) || h->cumulative_counts[i] > h->count) return 0;
    if (i && (!(h->upper_bounds[i] > h->upper_bounds[i - 1]) || h->cumulative_counts[i] < h->cumulative_counts[i - 1]))
      return 0;
  }
  return 1;
}

static void render_histograms(struct render *x) {
  char base[QM_METRICS_NAME_MAX], name[QM_METRICS_NAME_MAX + 16], sample[QM_METRICS_NAME_MAX + 32];
  char help[QM_METRICS_NAME_MAX + 64], num[40];
  for (size_t i = 0; i < x->r->nhistograms; i++) {
    const struct qm_metrics_histogram *h = &x->r->histograms[i];
    if (!h->name || qm_metrics_sanitize(h->name, base, sizeof base) || !hist_ok(h)) {
      x->seen.skipped++;
      continue;
    }
    snprintf(name, sizeof name, "qmesh_%s", base);
    if (family(x, name, "histogram", lookup_help(h->name, 1, help, sizeof help))) continue;
    snprintf(sample, sizeof sample, "%s_bucket", name);
    for (size_t b = 0; b < h->nbounds; b++) {
      number(num, sizeof num, h->upper_bounds[b]);
      sample_start(x, sample);
      label(x, "le", num);
      sample_u64(x, h->cumulative_counts[b]);
    }
    sample_start(x, sample);
    label(x, "le", "+Inf");
    sample_u64(x, h->count);
    snprintf(sample, sizeof sample, "%s_sum", name);
    sample_start(x, sample);
    number(num, sizeof num, h->sum);
    qm_text_printf(x->out, "} %s\n", num);
    snprintf(sample, sizeof sample, "%s_count", name);
    sample_start(x, sample);
    sample_u64(x, h->count);
  }
}

static void render_http(struct render *x, const struct qm_metrics_http *h) {
  const char *name = "qmesh_http_ingress_responses_total";
  if (h->ningress && !family(x, name, "counter", "Responses of the front's plain-HTTP ingress, by status code.")) {
    for (size_t i = 0; i < h->ningress; i++) {
      sample_start(x, name);
      label(x, "code", h->ingress_responses[i].name);
      sample_u64(x, h->ingress_responses[i].value);
    }
  }
  one(x, "qmesh_http_scrape_failures_total", "counter",
      "Scrapes of /metrics answered 503 because the role's own gRPC server did not answer.", h->scrape_failures);
}

int qm_metrics_render(struct qm_text *out, const struct qm_metrics_role *r,
                      const struct qm_metrics_auditor *a, const struct qm_metrics_http *h) {
  struct render x = {.out = out, .r = r};
  x.seen.names = malloc(QM_METRICS_TAKEN_MAX * sizeof *x.seen.names);
  if (!x.seen.names) return -ENOMEM;
  memcpy(x.seen.names[x.seen.n++], "qmesh_metrics_skipped", sizeof "qmesh_metrics_skipped"); /* written last */
  x.seen.families = 1;
  if (!family(&x, "qmesh_info", "gauge", "Always 1; the labels name the role instance.")) {
    sample_start(&x, "qmesh_info");
    if (r->region && r->region[0]) label(&x, "region", r->region);
    sample_u64(&x, 1);
  }
  if (!family(&x, "qmesh_uptime_seconds", "gauge", "Seconds since the role's server started.")) {
    sample_start(&x, "qmesh_uptime_seconds");
    qm_text_printf(out, "} %" PRIu64 ".%03u\n", r->uptime_ms / 1000, (unsigned)(r->uptime_ms % 1000));
  }
  /* The Summary's families first: for the auditor they win over equal Stats names. */
  x.seen.summary_lo = x.seen.n;
  if (a) render_auditor(&x, a);
  x.seen.summary_hi = x.seen.n;
  render_counters(&x);
  render_gauges(&x);
  render_histograms(&x);
  if (h) render_http(&x, h);
  /* Written last and never deduplicated: it counts what was left out above. */
  qm_text_printf(out,
                 "# HELP qmesh_metrics_skipped Metric families left out of this page (duplicate or invalid name).\n"
                 "# TYPE qmesh_metrics_skipped gauge\n");
  sample_start(&x, "qmesh_metrics_skipped");
  sample_u64(&x, x.seen.skipped);
  free(x.seen.names);
  return out->truncated ? -ENOSPC : 0;
}
