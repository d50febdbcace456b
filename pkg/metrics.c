/* metrics.c: the Prometheus text exposition (0.0.4) of a role's Stats and the auditor's
 * Summary: families, HELP/TYPE lines, escaping, unique names. */
#include "metrics.h"

#include <errno.h>
#include <inttypes.h>
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

/* The family names already written; the first of two equal names wins. */
struct seen {
  char (*names)[QM_METRICS_NAME_MAX];
  size_t n;
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
  /* The key is the name without a counter's "_total": parsers that follow OpenMetrics file
   * the counter x_total and the gauge x under the same family x. */
  size_t n = strlen(name);
  if (strcmp(type, "counter") == 0 && n > 6 && strcmp(name + n - 6, "_total") == 0) n -= 6;
  if (x->seen.n == QM_METRICS_FAMILIES_MAX || n >= QM_METRICS_NAME_MAX) {
    x->seen.skipped++;
    return 1;
  }
  for (size_t i = 0; i < x->seen.n; i++)
    if (strlen(x->seen.names[i]) == n && memcmp(x->seen.names[i], name, n) == 0) {
      /* The auditor's Stats count votes_accepted/duplicate/late too: the same numbers as
       * its Summary's, merged into one family, not a loss. */
      if (i < x->seen.summary_lo || i >= x->seen.summary_hi) x->seen.skipped++;
      return 1;
    }
  memcpy(x->seen.names[x->seen.n], name, n);
  x->seen.names[x->seen.n++][n] = '\0';
  qm_text_printf(x->out, "# HELP %s ", name);
  help_text(x->out, help);
  qm_text_printf(x->out, "\n# TYPE %s %s\n", name, type);
  return 0;
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
  x.seen.names = malloc(QM_METRICS_FAMILIES_MAX * sizeof *x.seen.names);
  if (!x.seen.names) return -ENOMEM;
  memcpy(x.seen.names[x.seen.n++], "qmesh_metrics_skipped", sizeof "qmesh_metrics_skipped"); /* written last */
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
