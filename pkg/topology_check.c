/* topology_check.c: cross-field validation, lookups and freeing of a loaded topology. */
#include "topology.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#define QM_INSTANCES_MAX (2 * QM_REGIONS_MAX + QM_PROVIDERS_MAX + 1)

/* Every endpoint of a topology with its role and parsed listen address. */
struct inst {
  const struct qm_endpoint *ep;
  const char *role;
  char host[QM_ADDR_MAX];
  unsigned port;
};

struct check {
  const struct qm_topology *t;
  struct qm_err *err;
  size_t n;
  struct inst inst[QM_INSTANCES_MAX];
};

/* bad: fills the error as "source:line:column: message" ("source: message" at {0, 0}). */
static int bad(struct check *k, struct qm_pos pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int bad(struct check *k, struct qm_pos pos, const char *fmt, ...) {
  char msg[QM_ERR_MSG_MAX];
  const char *src = k->t->source[0] ? k->t->source : "topology";
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (pos.line) return qm_err_set(k->err, -EINVAL, "%s:%u:%u: %s", src, pos.line, pos.column, msg);
  return qm_err_set(k->err, -EINVAL, "%s: %s", src, msg);
}

static int terminated(const char *s, size_t size) {
  return memchr(s, '\0', size) != NULL;
}

static int id_valid(const char *s) {
  size_t i;
  for (i = 0; i < QM_ID_MAX && s[i]; i++) {
    char ch = s[i];
    if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
          ch == '_' || ch == '.' || ch == '-'))
      return 0;
  }
  return i >= 1 && i < QM_ID_MAX;
}

/* split_addr: "host:port" or "[v6]:port" into |host| (brackets kept) and |port|.
 * Returns 0, -EINVAL for a bad form, -ERANGE for a port outside 1..65535. */
static int split_addr(const char *addr, char *host, size_t size, unsigned *port) {
  const char *colon = strrchr(addr, ':'), *p;
  size_t hlen, i;
  unsigned long v = 0;
  if (!colon || colon == addr) return -EINVAL;
  hlen = (size_t)(colon - addr);
  if (addr[0] == '[') {
    if (hlen < 3 || addr[hlen - 1] != ']') return -EINVAL;
    for (i = 1; i + 1 < hlen; i++)
      if (!strchr("0123456789abcdefABCDEF:.%", addr[i])) return -EINVAL;
  } else {
    for (i = 0; i < hlen; i++) {
      char ch = addr[i];
      if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '.' || ch == '_'))
        return -EINVAL;
    }
  }
  if (hlen >= size || !colon[1] || strlen(colon + 1) > 6) return -EINVAL;
  for (p = colon + 1; *p; p++) {
    if (*p < '0' || *p > '9') return -EINVAL;
    v = v * 10 + (unsigned long)(*p - '0');
  }
  if (v < 1 || v > 65535) return -ERANGE;
  memcpy(host, addr, hlen);
  host[hlen] = '\0';
  *port = (unsigned)v;
  return 0;
}

static int is_wildcard(const char *host) {
  return !strcmp(host, "0.0.0.0") || !strcmp(host, "[::]");
}

static int check_addr(struct check *k, const struct qm_endpoint *ep, const char *what,
                      const char *addr, struct qm_pos pos, char *host, unsigned *port) {
  char h[QM_ADDR_MAX];
  unsigned pt;
  int rc;
  if (!terminated(addr, QM_ADDR_MAX))
    return bad(k, pos, "%s %s address is not terminated", ep->id, what);
  rc = split_addr(addr, host ? host : h, QM_ADDR_MAX, port ? port : &pt);
  if (rc == -ERANGE)
    return bad(k, pos, "%s %s address '%s': port out of range 1..65535", ep->id, what, addr);
  if (rc) return bad(k, pos, "%s %s address '%s': expected host:port", ep->id, what, addr);
  return 0;
}

/* add_inst: checks one endpoint alone and against those seen before it. */
static int add_inst(struct check *k, const struct qm_endpoint *ep, const char *role) {
  struct inst *in = &k->inst[k->n];
  size_t i;
  int rc;
  if (!terminated(ep->id, QM_ID_MAX) || !id_valid(ep->id))
    return bad(k, ep->id_pos, "invalid %s id '%.63s' (expected [A-Za-z0-9_.-]{1,63})", role,
               ep->id);
  if ((rc = check_addr(k, ep, "listen", ep->listen, ep->listen_pos, in->host, &in->port)) ||
      (rc = check_addr(k, ep, "advertise", ep->advertise, ep->advertise_pos, NULL, NULL)))
    return rc;
  for (i = 0; i < k->n; i++) {
    const struct inst *o = &k->inst[i];
    char at[48] = "";
    if (o->ep->id_pos.line)
      snprintf(at, sizeof at, " at %u:%u", o->ep->id_pos.line, o->ep->id_pos.column);
    if (!strcmp(o->ep->id, ep->id))
      return bad(k, ep->id_pos, "duplicate id '%s' (already the %s%s)", ep->id, o->role, at);
    if (o->port == in->port &&
        (!strcasecmp(o->host, in->host) || is_wildcard(o->host) || is_wildcard(in->host)))
      return bad(k, ep->listen_pos, "%s listen address '%s' clashes with %s's '%s' (port %u)",
                 ep->id, ep->listen, o->ep->id, o->ep->listen, in->port);
  }
  in->ep = ep;
  in->role = role;
  k->n++;
  return 0;
}

static int check_instances(struct check *k) {
  const struct qm_topology *t = k->t;
  struct qm_pos none = {0, 0};
  size_t i, j;
  int rc;
  if (t->nregions < 1 || t->nregions > QM_REGIONS_MAX)
    return bad(k, none, "regions: %zu declared, expected 1..%d", t->nregions, QM_REGIONS_MAX);
  if (t->nproviders < 1 || t->nproviders > QM_PROVIDERS_MAX)
    return bad(k, none, "providers: %zu declared, expected 1..%d", t->nproviders, QM_PROVIDERS_MAX);
  for (i = 0; i < t->nregions; i++) {
    const struct qm_region *r = &t->regions[i];
    if (!terminated(r->name, QM_ID_MAX) || !id_valid(r->name))
      return bad(k, r->name_pos, "invalid region name '%.63s' (expected [A-Za-z0-9_.-]{1,63})",
                 r->name);
    for (j = 0; j < i; j++)
      if (!strcmp(t->regions[j].name, r->name))
        return bad(k, r->name_pos, "duplicate region name '%s'", r->name);
    if ((rc = add_inst(k, &r->front, "front")) || (rc = add_inst(k, &r->hub, "hub"))) return rc;
  }
  for (i = 0; i < t->nproviders; i++) {
    const struct qm_provider *p = &t->providers[i];
    if ((rc = add_inst(k, &p->ep, "provider"))) return rc;
    if (p->score_secret_len > QM_SECRET_MAX)
      return bad(k, p->ep.id_pos, "%s: score secret longer than %d bytes", p->ep.id, QM_SECRET_MAX);
  }
  return add_inst(k, &t->auditor, "auditor");
}

static int check_settings(struct check *k) {
  const struct qm_topology *t = k->t;
  struct qm_pos none = {0, 0};
  size_t i, j;
  if (t->quorum_threshold < 1 || t->quorum_threshold > t->nproviders)
    return bad(k, t->quorum_pos,
               "quorum threshold %u must be between 1 and the number of providers (%zu)",
               t->quorum_threshold, t->nproviders);
  if (t->deadline_ms < 1 || t->deadline_ms > 3600000)
    return bad(k, none, "quorum.deadline_ms %u out of range 1..3600000", t->deadline_ms);
  if (t->worker_count < 1 || t->worker_count > 1024)
    return bad(k, none, "worker_count %u out of range 1..1024", t->worker_count);
  if (t->post_queue_max < 1 || t->post_queue_max > 1000000)
    return bad(k, none, "post_queue_max %u out of range 1..1000000", t->post_queue_max);
  if (!terminated(t->byzantine_provider, QM_ID_MAX))
    return bad(k, t->byzantine_pos, "byzantine provider is not terminated");
  if (t->byzantine_provider[0] && strcmp(t->byzantine_provider, "none") &&
      !qm_topology_find_provider(t, t->byzantine_provider))
    return bad(k, t->byzantine_pos,
               "unknown byzantine provider '%s' (expected \"\", \"none\" or a provider id)",
               t->byzantine_provider);
  if (!terminated(t->expected_context, QM_CTX_MAX) || !t->expected_context[0])
    return bad(k, none, "expected_context must be 1..%d bytes", QM_CTX_MAX - 1);
  if (!terminated(t->random_seed, QM_SEED_MAX))
    return bad(k, none, "random_seed is not terminated");
  if (t->ndomains < 1 || t->ndomains > QM_DOMAINS_MAX)
    return bad(k, none, "domains: %zu declared, expected 1..%d", t->ndomains, QM_DOMAINS_MAX);
  for (i = 0; i < t->ndomains; i++) {
    const struct qm_domain *d = &t->domains[i];
    if (!terminated(d->name, QM_ID_MAX) || !id_valid(d->name))
      return bad(k, none, "invalid domain name '%.63s'", d->name);
    if (!isfinite(d->threshold) || d->threshold < 0.0 || d->threshold > 1.0)
      return bad(k, none, "domain %s: threshold %g outside [0, 1]", d->name, d->threshold);
    for (j = 0; j < i; j++)
      if (!strcmp(t->domains[j].name, d->name))
        return bad(k, none, "duplicate domain '%s'", d->name);
  }
  if (!isfinite(t->default_threshold) || t->default_threshold < 0.0 || t->default_threshold > 1.0)
    return bad(k, none, "default_threshold %g outside [0, 1]", t->default_threshold);
  return 0;
}

int qm_topology_validate(const struct qm_topology *t, struct qm_err *err) {
  struct check *k;
  int rc;
  if (!t) return qm_err_set(err, -EINVAL, "no topology");
  k = calloc(1, sizeof *k);
  if (!k) return qm_err_set(err, -ENOMEM, "%s: out of memory", t->source);
  k->t = t;
  k->err = err;
  rc = check_instances(k);
  if (rc) goto cleanup;
  rc = check_settings(k);
cleanup:
  free(k);
  return rc;
}

const struct qm_region *qm_topology_find_region_of(const struct qm_topology *t, const char *id) {
  size_t i;
  if (!t || !id) return NULL;
  for (i = 0; i < t->nregions && i < QM_REGIONS_MAX; i++)
    if (!strcmp(t->regions[i].front.id, id) || !strcmp(t->regions[i].hub.id, id))
      return &t->regions[i];
  return NULL;
}

const struct qm_provider *qm_topology_find_provider(const struct qm_topology *t, const char *id) {
  size_t i;
  if (!t || !id) return NULL;
  for (i = 0; i < t->nproviders && i < QM_PROVIDERS_MAX; i++)
    if (!strcmp(t->providers[i].ep.id, id)) return &t->providers[i];
  return NULL;
}

double qm_topology_threshold(const struct qm_topology *t, const char *domain) {
  size_t i;
  if (!t) return 0.60;
  for (i = 0; domain && i < t->ndomains && i < QM_DOMAINS_MAX; i++)
    if (!strcmp(t->domains[i].name, domain)) return t->domains[i].threshold;
  return t->default_threshold;
}

const char *qm_topology_role_of(const struct qm_topology *t, const char *id) {
  const struct qm_region *r = qm_topology_find_region_of(t, id);
  if (r) return strcmp(r->front.id, id) ? "hub" : "front";
  if (qm_topology_find_provider(t, id)) return "provider";
  if (t && id && !strcmp(t->auditor.id, id)) return "auditor";
  return NULL;
}

void qm_topology_free(struct qm_topology *t) {
  size_t i;
  if (!t) return;
  for (i = 0; i < QM_PROVIDERS_MAX; i++) {
    OPENSSL_cleanse(t->providers[i].score_secret, sizeof t->providers[i].score_secret);
    t->providers[i].score_secret_len = 0;
  }
  free(t);
}
