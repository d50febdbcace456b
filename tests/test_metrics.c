/* test_metrics.c: the Prometheus text rendering (exact text, a strict check of the format,
 * escaping, sanitized and duplicate names, the size bound), the HTTP addresses, and the HTTP
 * servers' answers when the role's gRPC server does not answer. */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "http.h"
#include "metrics.h"
#include "rpc.h"

/* ---- a strict reader of the text format (0.0.4), enough to hold the renderer to it ---- */

static int name_ok(const char *s, size_t n) {
  if (n == 0) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return 0;
  }
  return 1;
}

/* The histogram being read: one series per family (the renderer labels every sample of a
 * family with the same role and id), its buckets in ascending "le" order, then _sum and
 * _count. */
struct hist_read {
  int active, buckets, inf, sum, count;
  double last_le, last_v, inf_v, count_v;
};

/* hist_end: the violations of the histogram just read: no +Inf bucket, no _sum or _count,
 * +Inf not equal to _count. */
static int hist_end(struct hist_read *h) {
  int errors = 0;
  if (h->active && (!h->inf || h->sum != 1 || h->count != 1 || h->inf_v != h->count_v)) errors++;
  memset(h, 0, sizeof *h);
  return errors;
}

/* hist_sample: one sample |name| (|suffix| after the family's name) of a histogram. */
static int hist_sample(struct hist_read *h, const char *suffix, const char *le, double v) {
  if (strcmp(suffix, "_bucket") == 0) {
    if (!le || h->inf || h->sum || h->count) return 1; /* no le, or a bucket after +Inf/_sum/_count */
    double b;
    if (strcmp(le, "+Inf") == 0) {
      b = INFINITY;
      h->inf = 1;
      h->inf_v = v;
    } else {
      char *end;
      b = strtod(le, &end);
      if (end == le || *end || !isfinite(b)) return 1;
    }
    int errors = (h->buckets && !(b > h->last_le)) || (h->buckets && v < h->last_v) || v < 0;
    h->buckets++;
    h->last_le = b;
    h->last_v = v;
    return errors;
  }
  if (le) return 1;
  if (strcmp(suffix, "_sum") == 0) {
    h->sum++;
    return 0;
  }
  if (strcmp(suffix, "_count") == 0) {
    h->count++;
    h->count_v = v;
    return v < 0;
  }
  return 1; /* the family's bare name, or another suffix */
}

/* format_errors: the number of violations in |text|: lines that are neither HELP, TYPE nor a
 * sample; a family declared twice; a sample before its TYPE or outside its family's block;
 * bad names, label syntax or escapes; a value that is not a number; no final newline; a
 * histogram whose buckets are not in ascending "le" order, decrease, lack le="+Inf", or
 * whose +Inf bucket differs from its _count (or no _sum/_count). */
static int format_errors(const char *text) {
  char families[256][160];
  size_t nf = 0;
  char current[160] = "";
  int histogram = 0;
  struct hist_read hr = {0};
  int errors = 0;
  size_t len = strlen(text);
  if (len == 0 || text[len - 1] != '\n') errors++;
  for (const char *line = text; *line;) {
    const char *end = strchr(line, '\n');
    if (!end) end = line + strlen(line);
    size_t n = (size_t)(end - line);
    char buf[2048];
    if (n >= sizeof buf) {
      errors++;
      goto next;
    }
    memcpy(buf, line, n);
    buf[n] = '\0';
    if (strncmp(buf, "# HELP ", 7) == 0 || strncmp(buf, "# TYPE ", 7) == 0) {
      const char *nm = buf + 7, *sp = strchr(nm, ' ');
      if (!sp || !name_ok(nm, (size_t)(sp - nm))) {
        errors++;
        goto next;
      }
      if (buf[2] == 'T') {
        const char *type = sp + 1;
        if (strcmp(type, "counter") && strcmp(type, "gauge") && strcmp(type, "histogram") &&
            strcmp(type, "summary") && strcmp(type, "untyped"))
          errors++;
        errors += hist_end(&hr);
        histogram = strcmp(type, "histogram") == 0;
        hr.active = histogram;
        snprintf(current, sizeof current, "%.*s", (int)(sp - nm), nm);
        for (size_t i = 0; i < nf; i++)
          if (strcmp(families[i], current) == 0) errors++;
        if (nf < 256) snprintf(families[nf++], sizeof families[0], "%s", current);
      } else {
        for (const char *p = sp + 1; *p; p++)
          if (*p == '\\' && p[1] != '\\' && p[1] != 'n') errors++;
          else if (*p == '\\') p++;
      }
      goto next;
    }
    if (buf[0] == '#' || buf[0] == '\0') {
      errors++;
      goto next;
    }
    {
      const char *p = buf;
      while (*p && *p != '{' && *p != ' ') p++;
      size_t nlen = (size_t)(p - buf), clen = strlen(current);
      /* A histogram's samples are its name with _bucket, _sum or _count; others', its name. */
      if (!name_ok(buf, nlen) || nlen < clen || strncmp(buf, current, clen) != 0 || (!histogram && nlen != clen)) {
        errors++;
        goto next;
      }
      char suffix[16], le[64];
      int has_le = 0;
      snprintf(suffix, sizeof suffix, "%.*s", (int)(nlen - clen), buf + clen);
      if (*p == '{') {
        p++;
        while (*p != '}') {
          const char *k = p;
          while (*p && *p != '=') p++;
          if (!name_ok(k, (size_t)(p - k)) || p[0] != '=' || p[1] != '"') {
            errors++;
            goto next;
          }
          int is_le = p - k == 2 && strncmp(k, "le", 2) == 0;
          p += 2;
          const char *v = p;
          while (*p && *p != '"') {
            if (*p == '\\') {
              if (p[1] != '\\' && p[1] != '"' && p[1] != 'n') errors++;
              p++;
            }
            if (*p) p++;
          }
          if (*p != '"') {
            errors++;
            goto next;
          }
          if (is_le) {
            if (has_le++) errors++;
            snprintf(le, sizeof le, "%.*s", (int)(p - v), v);
          }
          p++;
          if (*p == ',') p++;
          else if (*p != '}') {
            errors++;
            goto next;
          }
        }
        p++;
      }
      if (*p != ' ') {
        errors++;
        goto next;
      }
      char *vend;
      double value = strtod(p + 1, &vend);
      if (vend == p + 1 || *vend) errors++;
      else if (histogram) errors += hist_sample(&hr, suffix, has_le ? le : NULL, value);
    }
  next:
    line = *end ? end + 1 : end;
  }
  return errors + hist_end(&hr);
}

static int count_lines_starting(const char *text, const char *prefix) {
  int n = 0;
  size_t k = strlen(prefix);
  for (const char *line = text; *line;) {
    if (strncmp(line, prefix, k) == 0) n++;
    const char *end = strchr(line, '\n');
    line = end ? end + 1 : line + strlen(line);
  }
  return n;
}

/* ---- rendering ---- */

static void test_front_exact(void) {
  struct qm_metrics_counter c[] = {{"submit_accepted", 100}, {"rpc_calls", 101}};
  struct qm_metrics_role r = {.role = "front", .id = "NUVL_A", .region = "a", .uptime_ms = 1234,
                              .counters = c, .ncounters = 2};
  struct qm_metrics_counter codes[] = {{"204", 7}, {"400", 1}};
  struct qm_metrics_http h = {.ingress_responses = codes, .ningress = 2, .scrape_failures = 3};
  struct qm_text t;
  qm_text_init(&t, QM_METRICS_TEXT_MAX);
  CHECK(qm_metrics_render(&t, &r, NULL, &h) == 0);
  const char *want =
      "# HELP qmesh_info Always 1; the labels name the role instance.\n"
      "# TYPE qmesh_info gauge\n"
      "qmesh_info{role=\"front\",id=\"NUVL_A\",region=\"a\"} 1\n"
      "# HELP qmesh_uptime_seconds Seconds since the role's server started.\n"
      "# TYPE qmesh_uptime_seconds gauge\n"
      "qmesh_uptime_seconds{role=\"front\",id=\"NUVL_A\"} 1.234\n"
      "# HELP qmesh_submit_accepted_total Requests the front accepted and passed towards its hub.\n"
      "# TYPE qmesh_submit_accepted_total counter\n"
      "qmesh_submit_accepted_total{role=\"front\",id=\"NUVL_A\"} 100\n"
      "# HELP qmesh_rpc_calls_total gRPC calls accepted on registered methods.\n"
      "# TYPE qmesh_rpc_calls_total counter\n"
      "qmesh_rpc_calls_total{role=\"front\",id=\"NUVL_A\"} 101\n"
      "# HELP qmesh_http_ingress_responses_total Responses of the front's plain-HTTP ingress, by status code.\n"
      "# TYPE qmesh_http_ingress_responses_total counter\n"
      "qmesh_http_ingress_responses_total{role=\"front\",id=\"NUVL_A\",code=\"204\"} 7\n"
      "qmesh_http_ingress_responses_total{role=\"front\",id=\"NUVL_A\",code=\"400\"} 1\n"
      "# HELP qmesh_http_scrape_failures_total Scrapes of /metrics answered 503 because the role's own gRPC "
      "server did not answer.\n"
      "# TYPE qmesh_http_scrape_failures_total counter\n"
      "qmesh_http_scrape_failures_total{role=\"front\",id=\"NUVL_A\"} 3\n"
      "# HELP qmesh_metrics_skipped Metric families left out of this page (duplicate or invalid name).\n"
      "# TYPE qmesh_metrics_skipped gauge\n"
      "qmesh_metrics_skipped{role=\"front\",id=\"NUVL_A\"} 0\n";
  CHECK(t.buf && strcmp(t.buf, want) == 0);
  if (t.buf && strcmp(t.buf, want) != 0) fprintf(stderr, "got:\n%s", t.buf);
  CHECK_EQ_U(format_errors(t.buf), 0);
  qm_text_free(&t);
}

static void test_gauge_histogram_exact(void) {
  struct qm_metrics_counter c[] = {{"evaluated", 5}};
  struct qm_metrics_gauge g[] = {{"votes_waiting", 2}};
  const double bounds[] = {0.001, 0.25, 1.0, 10.0};
  const uint64_t cum[] = {1, 3, 4, 4};
  struct qm_metrics_histogram hg[] = {{"vote_latency_seconds", bounds, cum, 4, 5, 2.5}};
  struct qm_metrics_role r = {.role = "provider", .id = "PROVIDER_A", .uptime_ms = 5, .counters = c, .ncounters = 1,
                              .gauges = g, .ngauges = 1, .histograms = hg, .nhistograms = 1};
  struct qm_text t;
  qm_text_init(&t, QM_METRICS_TEXT_MAX);
  CHECK(qm_metrics_render(&t, &r, NULL, NULL) == 0);
  const char *want =
      "# HELP qmesh_info Always 1; the labels name the role instance.\n"
      "# TYPE qmesh_info gauge\n"
      "qmesh_info{role=\"provider\",id=\"PROVIDER_A\"} 1\n"
      "# HELP qmesh_uptime_seconds Seconds since the role's server started.\n"
      "# TYPE qmesh_uptime_seconds gauge\n"
      "qmesh_uptime_seconds{role=\"provider\",id=\"PROVIDER_A\"} 0.005\n"
      "# HELP qmesh_evaluated_total Artifacts the provider evaluated.\n"
      "# TYPE qmesh_evaluated_total counter\n"
      "qmesh_evaluated_total{role=\"provider\",id=\"PROVIDER_A\"} 5\n"
      "# HELP qmesh_votes_waiting Signed votes waiting in the provider's batcher for the next report to the "
      "auditor.\n"
      "# TYPE qmesh_votes_waiting gauge\n"
      "qmesh_votes_waiting{role=\"provider\",id=\"PROVIDER_A\"} 2\n"
      "# HELP qmesh_vote_latency_seconds Seconds from a signed vote entering the provider's batcher to the "
      "auditor's answer.\n"
      "# TYPE qmesh_vote_latency_seconds histogram\n"
      "qmesh_vote_latency_seconds_bucket{role=\"provider\",id=\"PROVIDER_A\",le=\"0.001\"} 1\n"
      "qmesh_vote_latency_seconds_bucket{role=\"provider\",id=\"PROVIDER_A\",le=\"0.25\"} 3\n"
      "qmesh_vote_latency_seconds_bucket{role=\"provider\",id=\"PROVIDER_A\",le=\"1\"} 4\n"
      "qmesh_vote_latency_seconds_bucket{role=\"provider\",id=\"PROVIDER_A\",le=\"10\"} 4\n"
      "qmesh_vote_latency_seconds_bucket{role=\"provider\",id=\"PROVIDER_A\",le=\"+Inf\"} 5\n"
      "qmesh_vote_latency_seconds_sum{role=\"provider\",id=\"PROVIDER_A\"} 2.5\n"
      "qmesh_vote_latency_seconds_count{role=\"provider\",id=\"PROVIDER_A\"} 5\n"
      "# HELP qmesh_metrics_skipped Metric families left out of this page (duplicate or invalid name).\n"
      "# TYPE qmesh_metrics_skipped gauge\n"
      "qmesh_metrics_skipped{role=\"provider\",id=\"PROVIDER_A\"} 0\n";
  CHECK(t.buf && strcmp(t.buf, want) == 0);
  if (t.buf && strcmp(t.buf, want) != 0) fprintf(stderr, "got:\n%s", t.buf);
  CHECK_EQ_U(format_errors(t.buf), 0);
  qm_text_free(&t);
}

/* Gauges and histograms: sanitized names, clashes with counters and with each other's
 * sample names, malformed histograms, the name bound; every loss counted. */
static void test_gauge_histogram_rules(void) {
  static char long_name[151];
  memset(long_name, 'x', 150);
  struct qm_metrics_counter c[] = {{"lat_count", 1}, {"q", 2}};
  struct qm_metrics_gauge g[] = {{"q_total", 3},   /* the counter q's sample name: skipped */
                                 {"a.b", -4},      /* qmesh_a_b, negative is fine for a gauge */
                                 {"dup", 1},       /* a histogram "dup" below is skipped */
                                 {long_name, 6}};  /* qmesh_ + 150 characters: fits */
  const double b2[] = {0.5, 2}, desc[] = {2, 1}, nan_b[] = {NAN, 1}, wide[] = {1e-5, 100, 1e15};
  const uint64_t zero[] = {0, 0}, down[] = {2, 1}, over[] = {1, 9}, zero3[] = {0, 0, 0};
  struct qm_metrics_histogram hg[] = {
      {"lat", b2, zero, 2, 0, 0},              /* qmesh_lat_count is the counter lat_count's: skipped */
      {"ok-h", b2, zero, 2, 0, 0},             /* rendered as qmesh_ok_h */
      {"bad_desc", desc, zero, 2, 0, 0},       /* bounds not ascending */
      {"bad_counts", b2, down, 2, 2, 0},       /* counts decrease */
      {"bad_over", b2, over, 2, 3, 0},         /* a bucket above the count */
      {"bad_nan", nan_b, zero, 2, 0, 0},       /* a bound that is not finite */
      {"q", b2, zero, 2, 0, 0},                /* the counter q's family */
      {"dup", b2, zero, 2, 0, 0},              /* the gauge dup's */
      {NULL, b2, zero, 2, 0, 0},               /* no name */
      {long_name, b2, zero, 2, 0, 0},          /* qmesh_<150>_bucket is past the bound */
      {"empty", NULL, NULL, 0, 3, 0.1 + 0.2},  /* only +Inf */
      {"wide", wide, zero3, 3, 0, 0}};
  struct qm_metrics_role r = {.role = "hub", .id = "HUB_A", .counters = c, .ncounters = 2, .gauges = g,
                              .ngauges = 4, .histograms = hg, .nhistograms = sizeof hg / sizeof hg[0]};
  struct qm_text t;
  qm_text_init(&t, QM_METRICS_TEXT_MAX);
  CHECK(qm_metrics_render(&t, &r, NULL, NULL) == 0);
  CHECK_EQ_U(format_errors(t.buf), 0);
  CHECK(strstr(t.buf, "\nqmesh_q_total{role=\"hub\",id=\"HUB_A\"} 2\n") != NULL);
  CHECK_EQ_U(count_lines_starting(t.buf, "qmesh_q_total{"), 1); /* the gauge q_total is not there */
  CHECK_EQ_U(count_lines_starting(t.buf, "# TYPE qmesh_q_total "), 1);
  CHECK(strstr(t.buf, "# TYPE qmesh_a_b gauge\nqmesh_a_b{role=\"hub\",id=\"HUB_A\"} -4\n") != NULL);
  CHECK(strstr(t.buf, "# TYPE qmesh_dup gauge\nqmesh_dup{role=\"hub\",id=\"HUB_A\"} 1\n") != NULL);
  CHECK(strstr(t.buf, "xxxxx{role=\"hub\",id=\"HUB_A\"} 6\n") != NULL);
  CHECK(strstr(t.buf, "qmesh_lat_bucket") == NULL && strstr(t.buf, "qmesh_q_bucket") == NULL);
  CHECK(strstr(t.buf, "qmesh_dup_bucket") == NULL && strstr(t.buf, "qmesh_bad") == NULL);
  CHECK(strstr(t.buf, "# TYPE qmesh_ok_h histogram\n"
                      "qmesh_ok_h_bucket{role=\"hub\",id=\"HUB_A\",le=\"0.5\"} 0\n"
                      "qmesh_ok_h_bucket{role=\"hub\",id=\"HUB_A\",le=\"2\"} 0\n"
                      "qmesh_ok_h_bucket{role=\"hub\",id=\"HUB_A\",le=\"+Inf\"} 0\n"
                      "qmesh_ok_h_sum{role=\"hub\",id=\"HUB_A\"} 0\n"
                      "qmesh_ok_h_count{role=\"hub\",id=\"HUB_A\"} 0\n") != NULL);
  CHECK(strstr(t.buf, "# TYPE qmesh_empty histogram\n"
                      "qmesh_empty_bucket{role=\"hub\",id=\"HUB_A\",le=\"+Inf\"} 3\n"
                      "qmesh_empty_sum{role=\"hub\",id=\"HUB_A\"} 0.30000000000000004\n"
                      "qmesh_empty_count{role=\"hub\",id=\"HUB_A\"} 3\n") != NULL);
  CHECK(strstr(t.buf, "qmesh_wide_bucket{role=\"hub\",id=\"HUB_A\",le=\"1e-05\"} 0\n"
                      "qmesh_wide_bucket{role=\"hub\",id=\"HUB_A\",le=\"100\"} 0\n"
                      "qmesh_wide_bucket{role=\"hub\",id=\"HUB_A\",le=\"1e+15\"} 0\n") != NULL);
  /* q_total, lat, bad_desc, bad_counts, bad_over, bad_nan, q, dup, no name, the long one */
  CHECK(strstr(t.buf, "\nqmesh_metrics_skipped{role=\"hub\",id=\"HUB_A\"} 10\n") != NULL);
  CHECK_EQ_U(count_lines_starting(t.buf, "# HELP "), count_lines_starting(t.buf, "# TYPE "));
  qm_text_free(&t);
  /* The checker holds histograms to the format. */
  const char *h_ok = "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 0.5\nh_count 2\n";
  CHECK(format_errors(h_ok) == 0);
  CHECK(format_errors("# TYPE h histogram\nh_bucket{le=\"1\"} 3\nh_bucket{le=\"+Inf\"} 2\nh_sum 0\nh_count 2\n") >
        0); /* decreasing */
  CHECK(format_errors("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 0\nh_count 3\n") >
        0); /* +Inf != _count */
  CHECK(format_errors("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 0\nh_count 1\n") > 0); /* no +Inf */
  CHECK(format_errors("# TYPE h histogram\nh_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\n"
                      "h_sum 0\nh_count 1\n") > 0); /* le not ascending */
  CHECK(format_errors("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 0\n") > 0);           /* no _count */
  CHECK(format_errors("# TYPE h histogram\nh_bucket 1\nh_bucket{le=\"+Inf\"} 1\nh_sum 0\nh_count 1\n") > 0);
  CHECK(format_errors("# TYPE h histogram\nh 1\n") > 0);
  CHECK(format_errors("# TYPE c counter\nc_bucket{le=\"1\"} 1\n") > 0);
}

static void test_auditor(void) {
  /* The auditor's Stats carry votes_accepted/duplicate/late too: the Summary's win. */
  struct qm_metrics_counter c[] = {{"votes_accepted", 1}, {"votes_duplicate", 2}, {"votes_late", 3},
                                   {"rejected_bad_signature", 4}, {"rpc_calls", 5}};
  /* A Stats gauge "pending" is the Summary's gauge: merged, not a loss. */
  struct qm_metrics_gauge g[] = {{"pending", 7}, {"requests_pending", 2}};
  const double bounds[] = {0.01, 0.1};
  const uint64_t cum[] = {60, 99};
  struct qm_metrics_histogram hg[] = {{"decision_latency_seconds", bounds, cum, 2, 100, 3.25}};
  struct qm_metrics_role r = {.role = "auditor", .id = "AUDITOR", .uptime_ms = 5, .counters = c, .ncounters = 5,
                              .gauges = g, .ngauges = 2, .histograms = hg, .nhistograms = 1};
  struct qm_metrics_provider p[] = {{"PROVIDER_C", 100, 27, 55}, {"PROVIDER_A", 100, 25, 55}};
  struct qm_metrics_auditor a = {.decided = 100, .quorum_successes = 56, .quorum_failures = 44, .pending = 2,
                                 .votes_accepted = 300, .votes_duplicate = 9, .votes_late = 8, .votes_rejected = 4,
                                 .quorum_threshold = 2, .providers = 3, .by_provider = p, .nproviders = 2};
  struct qm_text t;
  qm_text_init(&t, QM_METRICS_TEXT_MAX);
  CHECK(qm_metrics_render(&t, &r, &a, NULL) == 0);
  CHECK_EQ_U(format_errors(t.buf), 0);
  CHECK(strstr(t.buf, "\nqmesh_quorum_successes_total{role=\"auditor\",id=\"AUDITOR\"} 56\n") != NULL);
  CHECK(strstr(t.buf, "\nqmesh_quorum_failures_total{role=\"auditor\",id=\"AUDITOR\"} 44\n") != NULL);
  CHECK(strstr(t.buf, "\nqmesh_decided_total{role=\"auditor\",id=\"AUDITOR\"} 100\n") != NULL);
  CHECK(strstr(t.buf, "# TYPE qmesh_pending gauge\nqmesh_pending{role=\"auditor\",id=\"AUDITOR\"} 2\n") != NULL);
  CHECK(strstr(t.buf, "\nqmesh_votes_accepted_total{role=\"auditor\",id=\"AUDITOR\"} 300\n") != NULL);
  CHECK(strstr(t.buf, "\nqmesh_votes_accepted_total{role=\"auditor\",id=\"AUDITOR\"} 1\n") == NULL);
  CHECK(strstr(t.buf, "\nqmesh_votes_late_total{role=\"auditor\",id=\"AUDITOR\"} 8\n") != NULL);
  CHECK(strstr(t.buf, "\nqmesh_rejected_bad_signature_total{role=\"auditor\",id=\"AUDITOR\"} 4\n") != NULL);
  CHECK(strstr(t.buf,
               "\nqmesh_provider_disagreements_total{role=\"auditor\",id=\"AUDITOR\",provider=\"PROVIDER_C\"} 27\n"
               "qmesh_provider_disagreements_total{role=\"auditor\",id=\"AUDITOR\",provider=\"PROVIDER_A\"} 25\n") !=
        NULL);
  CHECK(strstr(t.buf, "qmesh_provider_votes_total{role=\"auditor\",id=\"AUDITOR\",provider=\"PROVIDER_A\"} 100\n"));
  CHECK_EQ_U(count_lines_starting(t.buf, "# TYPE qmesh_votes_accepted_total "), 1);
  CHECK_EQ_U(count_lines_starting(t.buf, "qmesh_pending{"), 1);
  CHECK(strstr(t.buf, "\nqmesh_requests_pending{role=\"auditor\",id=\"AUDITOR\"} 2\n") != NULL);
  CHECK(strstr(t.buf, "\nqmesh_decision_latency_seconds_bucket{role=\"auditor\",id=\"AUDITOR\",le=\"+Inf\"} 100\n"
                      "qmesh_decision_latency_seconds_sum{role=\"auditor\",id=\"AUDITOR\"} 3.25\n"
                      "qmesh_decision_latency_seconds_count{role=\"auditor\",id=\"AUDITOR\"} 100\n") != NULL);
  CHECK(strstr(t.buf, "\nqmesh_metrics_skipped{role=\"auditor\",id=\"AUDITOR\"} 0\n") != NULL); /* merged */
  CHECK_EQ_U(count_lines_starting(t.buf, "# HELP "), count_lines_starting(t.buf, "# TYPE "));
  qm_text_free(&t);
}

static void test_names_and_escapes(void) {
  struct qm_metrics_counter c[] = {{"initiated_foo-bar.baz", 3}, {"a-b", 1}, {"a_b", 2}, {"pending", 4},
                                   {"info", 5}, {"metrics_skipped", 6}};
  struct qm_metrics_role r = {.role = "pro\"vider", .id = "ID\\x\ny", .counters = c, .ncounters = 6};
  struct qm_metrics_auditor a = {.pending = 1};
  struct qm_text t;
  qm_text_init(&t, QM_METRICS_TEXT_MAX);
  CHECK(qm_metrics_render(&t, &r, &a, NULL) == 0);
  CHECK_EQ_U(format_errors(t.buf), 0);
  CHECK(strstr(t.buf, "# HELP qmesh_initiated_foo_bar_baz_total Decisions with initiated = true in domain "
                      "foo-bar.baz.\n") != NULL);
  CHECK(strstr(t.buf, "qmesh_initiated_foo_bar_baz_total{role=\"pro\\\"vider\",id=\"ID\\\\x\\ny\"} 3\n") != NULL);
  CHECK(strstr(t.buf, "qmesh_a_b_total{role=\"pro\\\"vider\",id=\"ID\\\\x\\ny\"} 1\n") != NULL);
  CHECK_EQ_U(count_lines_starting(t.buf, "qmesh_a_b_total{"), 1); /* a_b collides with a-b: skipped */
  CHECK(strstr(t.buf, "qmesh_pending_total") == NULL);     /* merged into the Summary's gauge */
  CHECK(strstr(t.buf, "qmesh_info_total") == NULL);        /* clashes with qmesh_info: skipped */
  CHECK(strstr(t.buf, "qmesh_metrics_skipped_total") == NULL);
  CHECK(strstr(t.buf, "qmesh_metrics_skipped{role=\"pro\\\"vider\",id=\"ID\\\\x\\ny\"} 3\n") != NULL);
  qm_text_free(&t);
  char out[8];
  CHECK(qm_metrics_sanitize("a.b-c", out, sizeof out) == 0 && strcmp(out, "a_b_c") == 0);
  CHECK(qm_metrics_sanitize("12345678", out, sizeof out) == -E2BIG);
  /* The checker itself rejects what it should. */
  CHECK(format_errors("# TYPE x counter\nx 1\n# TYPE x counter\nx 2\n") > 0);
  CHECK(format_errors("x 1\n") > 0);
  CHECK(format_errors("# TYPE x counter\nx{a=\"b} 1\n") > 0);
  CHECK(format_errors("# TYPE x counter\nx{a=\"\\q\"} 1\n") > 0);
  CHECK(format_errors("# TYPE x counter\nx one\n") > 0);
  CHECK(format_errors("# TYPE x counter\nx 1") > 0);
  CHECK(format_errors("# TYPE x counter\nx{a=\"b\"} 1\n") == 0);
}

static void test_bound(void) {
  struct qm_metrics_counter c[] = {{"submit_accepted", 1}};
  struct qm_metrics_role r = {.role = "front", .id = "NUVL_A", .counters = c, .ncounters = 1};
  struct qm_text t;
  qm_text_init(&t, 200);
  CHECK(qm_metrics_render(&t, &r, NULL, NULL) == -ENOSPC);
  qm_text_free(&t);
  /* More counters than families allowed: the rest are counted, the page stays valid. */
  static struct qm_metrics_counter many[QM_METRICS_FAMILIES_MAX + 10];
  static char names[QM_METRICS_FAMILIES_MAX + 10][16];
  for (size_t i = 0; i < QM_METRICS_FAMILIES_MAX + 10; i++) {
    snprintf(names[i], sizeof names[i], "c%zu", i);
    many[i] = (struct qm_metrics_counter){names[i], i};
  }
  r.counters = many;
  r.ncounters = QM_METRICS_FAMILIES_MAX + 10;
  qm_text_init(&t, QM_METRICS_TEXT_MAX);
  CHECK(qm_metrics_render(&t, &r, NULL, NULL) == 0);
  CHECK_EQ_U(format_errors(t.buf), 0);
  /* 256 families: skipped, info, uptime and 253 counters; 13 counters left out */
  CHECK(strstr(t.buf, "qmesh_metrics_skipped{role=\"front\",id=\"NUVL_A\"} 13\n") != NULL);
  qm_text_free(&t);
}

/* ---- addresses ---- */

static void test_addresses(void) {
  char out[QM_HTTP_ADDR_MAX];
  CHECK(qm_http_default_addr("127.0.0.1:8000", 10000, out, sizeof out, NULL) == 0 && !strcmp(out, "127.0.0.1:18000"));
  CHECK(qm_http_default_addr("0.0.0.0:9001", 20000, out, sizeof out, NULL) == 0 && !strcmp(out, "0.0.0.0:29001"));
  CHECK(qm_http_default_addr("[::]:8200", 10000, out, sizeof out, NULL) == 0 && !strcmp(out, "[::]:18200"));
  CHECK(qm_http_default_addr("auditor.svc:8200", 10000, out, sizeof out, NULL) == 0 &&
        !strcmp(out, "auditor.svc:18200"));
  struct qm_err err = {0};
  CHECK(qm_http_default_addr("127.0.0.1:60000", 10000, out, sizeof out, &err) == -ERANGE);
  CHECK(strstr(err.msg, "127.0.0.1:60000") != NULL);
  CHECK(qm_http_default_addr("nope", 10000, out, sizeof out, NULL) == -EINVAL);
  CHECK(qm_http_default_addr("h:", 10000, out, sizeof out, NULL) == -EINVAL);
  CHECK(qm_http_default_addr("a:b:1", 10000, out, sizeof out, NULL) == -EINVAL);
  qm_http_dial_target("0.0.0.0:18000", out, sizeof out);
  CHECK(!strcmp(out, "127.0.0.1:18000"));
  qm_http_dial_target("[::]:18000", out, sizeof out);
  CHECK(!strcmp(out, "[::1]:18000"));
  qm_http_dial_target("10.0.0.1:1", out, sizeof out);
  CHECK(!strcmp(out, "10.0.0.1:1"));
  CHECK(qm_http_addr_off(NULL) && qm_http_addr_off("") && qm_http_addr_off("off") && !qm_http_addr_off("h:1"));
}

/* ---- the servers, with no gRPC server behind them ---- */

/* http_on: one request on a fresh connection to 127.0.0.1:|port| (or [::1] when |v6|); the
 * status code, or -1. */
static int http_on(int v6, unsigned port, const char *request, size_t len, char *resp, size_t cap) {
  int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  struct sockaddr_in6 sa6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
  sa6.sin6_addr = in6addr_loopback;
  int code = -1;
  if (fd < 0) goto done;
  if (v6 ? connect(fd, (struct sockaddr *)&sa6, sizeof sa6) : connect(fd, (struct sockaddr *)&sa, sizeof sa)) goto done;
  for (size_t off = 0; off < len;) {
    ssize_t n = send(fd, request + off, len - off, MSG_NOSIGNAL);
    if (n <= 0) break; /* the server may answer (413) and close before the whole body */
    off += (size_t)n;
  }
  size_t got = 0;
  for (ssize_t n; got + 1 < cap && (n = recv(fd, resp + got, cap - 1 - got, 0)) > 0;) got += (size_t)n;
  resp[got] = '\0';
  if (sscanf(resp, "HTTP/1.%*d %d", &code) != 1) code = -1;
done:
  if (fd >= 0) close(fd);
  return code;
}

static int http(unsigned port, const char *request, size_t len, char *resp, size_t cap) {
  return http_on(0, port, request, len, resp, cap);
}

static void test_servers(void) {
  qm_rpc_init();
  struct qm_err err = {0};
  struct qm_http *h = NULL;
  struct qm_http_options o = {.metrics_addr = "127.0.0.1:0", .ingress_addr = "127.0.0.1:0", .role = "front",
                              .id = "NUVL_A", .grpc_target = "127.0.0.1:1"};
  CHECK(qm_http_start(&o, &h, &err) == 0);
  if (!h) {
    fprintf(stderr, "qm_http_start: %s\n", err.msg);
    qm_rpc_shutdown();
    return;
  }
  unsigned mp = qm_http_metrics_port(h), ip = qm_http_ingress_port(h);
  CHECK(mp > 0 && ip > 0 && mp != ip);
  char resp[4096];
  const char *get = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  CHECK_EQ_U(http(mp, get, strlen(get), resp, sizeof resp), 503);
  CHECK(strstr(resp, "no metrics") != NULL);
  const char *nope = "GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  CHECK_EQ_U(http(mp, nope, strlen(nope), resp, sizeof resp), 404);
  const char *post_m = "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
  CHECK_EQ_U(http(mp, post_m, strlen(post_m), resp, sizeof resp), 405);
  const char *get_i = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  CHECK_EQ_U(http(ip, get_i, strlen(get_i), resp, sizeof resp), 405);
  CHECK(strstr(resp, "Allow: POST") != NULL);
  const char *post_x = "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi";
  CHECK_EQ_U(http(ip, post_x, strlen(post_x), resp, sizeof resp), 404);
  const char *expect =
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 70000\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n";
  CHECK_EQ_U(http(ip, expect, strlen(expect), resp, sizeof resp), 413);
  char *big = calloc(1, 80000);
  int bn = snprintf(big, 80000, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 70000\r\nConnection: close\r\n\r\n");
  memset(big + bn, 'b', 70000);
  CHECK_EQ_U(http(ip, big, (size_t)bn + 70000, resp, sizeof resp), 413);
  free(big);
  /* chunked: the size is known only while reading */
  size_t cap = 80000;
  char *chunked = malloc(cap);
  int n = snprintf(chunked, cap,
                   "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
  for (int i = 0; i < 9; i++) {
    n += snprintf(chunked + n, cap - (size_t)n, "2000\r\n");
    memset(chunked + n, 'a', 0x2000);
    n += 0x2000;
    n += snprintf(chunked + n, cap - (size_t)n, "\r\n");
  }
  n += snprintf(chunked + n, cap - (size_t)n, "0\r\n\r\n");
  CHECK_EQ_U(http(ip, chunked, (size_t)n, resp, sizeof resp), 413);
  free(chunked);
  const char *bad =
      "POST / HTTP/1.1\r\nHost: x\r\nX-Domain: a\x01z\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi";
  CHECK_EQ_U(http(ip, bad, strlen(bad), resp, sizeof resp), 400);
  const char *ok =
      "POST / HTTP/1.1\r\nHost: x\r\nX-Domain: storage\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi";
  CHECK_EQ_U(http(ip, ok, strlen(ok), resp, sizeof resp), 503); /* no front behind it */
  CHECK(strstr(resp, "unavailable") != NULL);
  qm_http_stop(h);
  /* Refusals: an ingress on a hub, a bad address, a port in use. */
  h = NULL;
  o.role = "hub";
  CHECK(qm_http_start(&o, &h, &err) == -EINVAL && h == NULL);
  o.role = "front";
  o.ingress_addr = "off";
  o.metrics_addr = "127.0.0.1:99999";
  CHECK(qm_http_start(&o, &h, &err) == -EINVAL && h == NULL && strstr(err.msg, "99999"));
  o.metrics_addr = "127.0.0.1:0";
  struct qm_http *first = NULL;
  CHECK(qm_http_start(&o, &first, &err) == 0);
  char taken[64];
  snprintf(taken, sizeof taken, "127.0.0.1:%u", qm_http_metrics_port(first));
  o.metrics_addr = taken;
  CHECK(qm_http_start(&o, &h, &err) == -EADDRINUSE && h == NULL && strstr(err.msg, taken));
  o.metrics_best_effort = 1; /* a default address: left off, with the reason */
  CHECK(qm_http_start(&o, &h, &err) == 0 && h && qm_http_metrics_port(h) == 0);
  CHECK(strstr(qm_http_warning(h), taken) != NULL);
  qm_http_stop(h);
  h = NULL;
  o.metrics_best_effort = 0;
  qm_http_stop(first);
  o.metrics_addr = "[::1]:0"; /* IPv6 */
  CHECK(qm_http_start(&o, &h, &err) == 0 && qm_http_metrics_port(h) > 0);
  if (h) CHECK_EQ_U(http_on(1, qm_http_metrics_port(h), get, strlen(get), resp, sizeof resp), 503);
  qm_http_stop(h);
  h = NULL;
  o.metrics_addr = "off";
  CHECK(qm_http_start(&o, &h, &err) == 0 && qm_http_metrics_port(h) == 0 && qm_http_ingress_port(h) == 0);
  CHECK(strcmp(qm_http_warning(h), "") == 0);
  qm_http_stop(h);
  qm_rpc_shutdown();
}

int main(void) {
  test_front_exact();
  test_gauge_histogram_exact();
  test_gauge_histogram_rules();
  test_auditor();
  test_names_and_escapes();
  test_bound();
  test_addresses();
  test_servers();
  return qm_checks_done();
}
