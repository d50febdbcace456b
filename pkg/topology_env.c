/* topology_env.c: the reference demo's environment overrides applied to a loaded topology. */
#include "topology.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

/* env_get: the value of |name|, or NULL when unset (and, unless |keep_empty|, when empty). */
static const char *env_get(const char *name, int keep_empty) {
  const char *v = getenv(name);
  if (v && !v[0] && !keep_empty) return NULL;
  return v;
}

/* env_uint: |value| as digits only, in [min, max]; errors name the variable and value. */
static int env_uint(const char *name, const char *value, uint64_t min, uint64_t max, uint64_t *out,
                    struct qm_err *err) {
  unsigned long long v;
  char *end;
  size_t len = strlen(value);
  if (len == 0 || len > 20 || strspn(value, "0123456789") != len)
    return qm_err_set(err, -EINVAL, "environment %s='%.64s': not a non-negative integer", name,
                      value);
  errno = 0;
  v = strtoull(value, &end, 10);
  if (errno || *end)
    return qm_err_set(err, -EINVAL, "environment %s='%.64s': not a non-negative integer", name,
                      value);
  if (v < min || v > max)
    return qm_err_set(err, -ERANGE, "environment %s='%.64s': must be between %llu and %llu", name,
                      value, (unsigned long long)min, (unsigned long long)max);
  *out = v;
  return 0;
}

/* env_number: applies the numeric variable |name| (unset or empty: untouched). */
static int env_number(const char *name, uint64_t min, uint64_t max, uint64_t *out, int *set,
                      struct qm_err *err) {
  const char *v = env_get(name, 0);
  *set = 0;
  if (!v) return 0;
  *set = 1;
  return env_uint(name, v, min, max, out, err);
}

/* set_port: replaces the port after the last ':' of |addr|. */
static int set_port(char *addr, unsigned port) {
  char buf[QM_ADDR_MAX];
  const char *colon = strrchr(addr, ':');
  int w;
  if (!colon) return -EINVAL;
  w = snprintf(buf, sizeof buf, "%.*s:%u", (int)(colon - addr), addr, port);
  if (w < 0 || (size_t)w >= sizeof buf) return -ENAMETOOLONG;
  memcpy(addr, buf, (size_t)w + 1);
  return 0;
}

/* env_port: applies <ID>_PORT (the id upper-cased, '.' and '-' as '_') to |ep|. */
static int env_port(struct qm_endpoint *ep, struct qm_err *err) {
  static const struct qm_pos none = {0, 0};
  char name[QM_ID_MAX + 8];
  const char *v;
  uint64_t port;
  size_t i;
  int rc;
  for (i = 0; ep->id[i] && i + 1 < QM_ID_MAX; i++) {
    char ch = ep->id[i];
    name[i] = (ch >= 'a' && ch <= 'z')   ? (char)(ch - 'a' + 'A')
              : (ch == '.' || ch == '-') ? '_'
                                         : ch;
  }
  snprintf(name + i, sizeof name - i, "_PORT");
  v = env_get(name, 0);
  if (!v) return 0;
  rc = env_uint(name, v, 1, 65535, &port, err);
  if (rc) return qm_err_set(err, -EINVAL, "environment %s='%.64s': not a port (1..65535)", name, v);
  if (set_port(ep->listen, (unsigned)port) || set_port(ep->advertise, (unsigned)port))
    return qm_err_set(err, -EINVAL, "environment %s='%s': cannot set the port of '%s'", name, v,
                      ep->listen);
  ep->listen_pos = none;
  ep->advertise_pos = none;
  return 0;
}

static int apply(struct qm_topology *t, struct qm_err *err) {
  static const struct qm_pos none = {0, 0};
  const char *v;
  uint64_t u;
  size_t i;
  int rc, set;

  if ((rc = env_number("TOTAL_REQUESTS", 0, UINT64_MAX, &u, &set, err))) return rc;
  if (set) t->total_requests = u;
  if ((rc = env_number("FAILOVER_AT", 0, INT64_MAX, &u, &set, err))) return rc;
  if (set) t->failover_at = (int64_t)u;
  if ((rc = env_number("QUORUM_THRESHOLD", 0, UINT32_MAX, &u, &set, err))) return rc;
  if (set) {
    if (u < 1 || u > t->nproviders)
      return qm_err_set(err, -EINVAL,
                        "environment QUORUM_THRESHOLD='%llu': must be between 1 and "
                        "the number of providers (%zu)",
                        (unsigned long long)u, t->nproviders);
    t->quorum_threshold = (unsigned)u;
    t->quorum_pos = none;
  }
  if ((v = env_get("EXPECTED_CONTEXT", 0))) {
    if (strlen(v) >= QM_CTX_MAX)
      return qm_err_set(err, -EINVAL,
                        "environment EXPECTED_CONTEXT='%.64s...': longer than %d bytes", v,
                        QM_CTX_MAX - 1);
    snprintf(t->expected_context, sizeof t->expected_context, "%s", v);
  }
  if ((v = env_get("RANDOM_SEED", 1))) { /* empty: no seed, seeded from the clock */
    size_t sign = v[0] == '-' || v[0] == '+', len = strlen(v);
    if (v[0] && (len <= sign || len >= QM_SEED_MAX || strspn(v + sign, "0123456789") != len - sign))
      return qm_err_set(err, -EINVAL, "environment RANDOM_SEED='%.64s': not a decimal integer", v);
    snprintf(t->random_seed, sizeof t->random_seed, "%s", v);
  }
  if ((v = env_get("BYZANTINE_PROVIDER", 1))) { /* empty: drawn from the seed */
    if (v[0] && strcmp(v, "none") && !qm_topology_find_provider(t, v))
      return qm_err_set(err, -EINVAL,
                        "environment BYZANTINE_PROVIDER='%.64s': not a provider id "
                        "(or \"none\", or empty to draw one)",
                        v);
    snprintf(t->byzantine_provider, sizeof t->byzantine_provider, "%s", v);
    t->byzantine_pos = none;
  }
  if ((v = env_get("BYZANTINE_AT", 1))) { /* empty: drawn from the seed */
    if (!v[0]) {
      t->byzantine_at = -1;
    } else {
      if ((rc = env_uint("BYZANTINE_AT", v, 0, INT64_MAX, &u, err))) return rc;
      t->byzantine_at = (int64_t)u;
    }
  }
  if ((rc = env_number("WORKER_COUNT", 1, 1024, &u, &set, err))) return rc;
  if (set) t->worker_count = (unsigned)u;
  if ((rc = env_number("POST_QUEUE_MAX", 1, 1000000, &u, &set, err))) return rc;
  if (set) t->post_queue_max = (unsigned)u;

  for (i = 0; i < t->nregions && i < QM_REGIONS_MAX; i++)
    if ((rc = env_port(&t->regions[i].front, err)) || (rc = env_port(&t->regions[i].hub, err)))
      return rc;
  for (i = 0; i < t->nproviders && i < QM_PROVIDERS_MAX; i++)
    if ((rc = env_port(&t->providers[i].ep, err))) return rc;
  return env_port(&t->auditor, err);
}

int qm_topology_apply_env(struct qm_topology *t, struct qm_err *err) {
  struct qm_topology *copy;
  int rc;
  if (!t) return qm_err_set(err, -EINVAL, "no topology");
  copy = malloc(sizeof *copy); /* all or nothing: |t| is untouched on failure */
  if (!copy) return qm_err_set(err, -ENOMEM, "%s: out of memory", t->source);
  memcpy(copy, t, sizeof *copy);
  rc = apply(copy, err);
  if (rc) goto cleanup;
  rc = qm_topology_validate(copy, err);
  if (rc) goto cleanup;
  memcpy(t, copy, sizeof *t);
cleanup:
  OPENSSL_cleanse(copy, sizeof *copy);
  free(copy);
  return rc;
}
