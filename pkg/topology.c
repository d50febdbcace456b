/* topology.c: loads the mesh topology from YAML: the schema (one reader per mapping), the
 * defaults and the entry points; the parse tree and typed getters are in topology_yaml.c. */
#include "topology.h"
#include "topology_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

/* ---- schema: one function per mapping ---- */

static struct qm_pos pos_of(const struct node *n) {
  struct qm_pos p = {n->line, n->col};
  return p;
}

/* fill_endpoint: id, listen and advertise (default listen) from already collected values. */
static int fill_endpoint(struct ctx *c, const struct node *map, const char *where,
                         const struct node *const *v, struct qm_endpoint *ep) {
  char path[160];
  int rc;
  if ((rc = qm__topo_require(c, map, where, "id", v[0])) ||
      (rc = qm__topo_require(c, map, where, "listen", v[1])))
    return rc;
  snprintf(path, sizeof path, "%s.id", where);
  if ((rc = qm__topo_get_id(c, v[0], path, ep->id))) return rc;
  ep->id_pos = pos_of(v[0]);
  snprintf(path, sizeof path, "%s.listen", where);
  if ((rc = qm__topo_get_str(c, v[1], path, ep->listen, sizeof ep->listen))) return rc;
  ep->listen_pos = pos_of(v[1]);
  if (!v[2]) {
    memcpy(ep->advertise, ep->listen, sizeof ep->advertise);
    ep->advertise_pos = ep->listen_pos;
    return 0;
  }
  snprintf(path, sizeof path, "%s.advertise", where);
  if ((rc = qm__topo_get_str(c, v[2], path, ep->advertise, sizeof ep->advertise))) return rc;
  ep->advertise_pos = pos_of(v[2]);
  return 0;
}

static int load_endpoint(struct ctx *c, const struct node *n, const char *where,
                         struct qm_endpoint *ep) {
  static const char *const keys[] = {"id", "listen", "advertise", NULL};
  const struct node *v[3] = {0}, *k[3] = {0};
  int rc = qm__topo_map_fields(c, n, where, keys, v, k);
  if (rc) return rc;
  return fill_endpoint(c, n, where, v, ep);
}

/* read_bounded: at most |cap| bytes of |path| into |buf| (|*len| == |cap|: there is more).
 * |regular_only|: refuse anything but a regular file (-EINVAL) and never block on open.
 * Returns 0 or a negative errno. */
static int read_bounded(const char *path, char *buf, size_t cap, size_t *len, int regular_only) {
  struct stat st;
  ssize_t got;
  int fd, rc = 0;
  *len = 0;
  fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | (regular_only ? O_NONBLOCK : 0));
  if (fd < 0) return -errno;
  if (fstat(fd, &st)) {
    rc = -errno;
    goto cleanup;
  }
  if (regular_only && !S_ISREG(st.st_mode)) {
    rc = -EINVAL;
    goto cleanup;
  }
  while (*len < cap) {
    got = read(fd, buf + *len, cap - *len);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      rc = -errno;
      goto cleanup;
    }
    if (got == 0) break;
    *len += (size_t)got;
  }
cleanup:
  close(fd);
  return rc;
}

/* read_secret: the bytes of |file| (one trailing newline dropped) into |p|. */
static int read_secret(struct ctx *c, const struct node *n, const char *file,
                       struct qm_provider *p) {
  char buf[QM_SECRET_MAX + 3];
  size_t len = 0;
  int rc = read_bounded(file, buf, sizeof buf, &len, 1);
  if (rc == -EINVAL) {
    rc = FAIL(c, n, "score_secret_file '%s' is not a regular file", file);
    goto cleanup;
  }
  if (rc) {
    rc = qm__topo_fail_at(c, n->line, n->col, rc, "cannot read score_secret_file '%s': %s", file,
                          strerror(-rc));
    goto cleanup;
  }
  if (len > 0 && buf[len - 1] == '\n') len--;
  if (len > 0 && buf[len - 1] == '\r') len--;
  if (len == 0 || len > QM_SECRET_MAX) {
    rc = FAIL(c, n, "score_secret_file '%s': the secret must be 1..%d bytes", file, QM_SECRET_MAX);
    goto cleanup;
  }
  memcpy(p->score_secret, buf, len);
  p->score_secret_len = len;
cleanup:
  OPENSSL_cleanse(buf, sizeof buf);
  return rc;
}

static int load_provider(struct ctx *c, const struct node *n, const char *where,
                         struct qm_provider *p) {
  enum { ID, LISTEN, ADVERTISE, SECRET, SECRET_FILE, SIGNING, PUBLIC, NKEYS };
  static const char *const keys[] = {
      "id",          "listen",     "advertise", "score_secret", "score_secret_file",
      "signing_key", "public_key", NULL};
  const struct node *v[NKEYS] = {0}, *k[NKEYS] = {0};
  char path[160];
  int rc, mine;

  if ((rc = qm__topo_map_fields(c, n, where, keys, v, k)) ||
      (rc = fill_endpoint(c, n, where, v, &p->ep)))
    return rc;
  if (v[SECRET] && v[SECRET_FILE]) {
    const struct node *later =
        k[SECRET]->line > k[SECRET_FILE]->line ||
                (k[SECRET]->line == k[SECRET_FILE]->line && k[SECRET]->col > k[SECRET_FILE]->col)
            ? k[SECRET]
            : k[SECRET_FILE];
    return FAIL(c, later, "score_secret and score_secret_file are both set in %s", where);
  }
  if (!v[SECRET] && !v[SECRET_FILE])
    return FAIL(c, n, "%s needs score_secret or score_secret_file", where);
  mine = c->for_id && !strcmp(c->for_id, p->ep.id);
  if (v[SECRET]) {
    const struct node *s = v[SECRET];
    char b[64];
    if (s->kind != NODE_SCALAR || qm__topo_is_null(s))
      return FAIL(c, s, "%s.score_secret: expected a string, got %s", where,
                  qm__topo_show(s, b, sizeof b));
    if (s->len == 0 || s->len > QM_SECRET_MAX)
      return FAIL(c, s, "%s.score_secret: the secret must be 1..%d bytes", where, QM_SECRET_MAX);
    if (mine) {
      memcpy(p->score_secret, s->text, s->len);
      p->score_secret_len = s->len;
    }
  } else {
    snprintf(path, sizeof path, "%s.score_secret_file", where);
    if ((rc = qm__topo_get_path(c, v[SECRET_FILE], path, p->score_secret_file))) return rc;
    if (mine && (rc = read_secret(c, v[SECRET_FILE], p->score_secret_file, p))) return rc;
  }
  snprintf(path, sizeof path, "%s.signing_key", where);
  if (v[SIGNING] && (rc = qm__topo_get_path(c, v[SIGNING], path, p->signing_key))) return rc;
  snprintf(path, sizeof path, "%s.public_key", where);
  if (v[PUBLIC] && (rc = qm__topo_get_path(c, v[PUBLIC], path, p->public_key))) return rc;
  return 0;
}

static int load_region(struct ctx *c, const struct node *n, const char *where,
                       struct qm_region *r) {
  static const char *const keys[] = {"name", "front", "hub", NULL};
  const struct node *v[3] = {0}, *k[3] = {0};
  char path[160];
  int rc;
  if ((rc = qm__topo_map_fields(c, n, where, keys, v, k)) ||
      (rc = qm__topo_require(c, n, where, "name", v[0])) ||
      (rc = qm__topo_require(c, n, where, "front", v[1])) ||
      (rc = qm__topo_require(c, n, where, "hub", v[2])))
    return rc;
  snprintf(path, sizeof path, "%s.name", where);
  if ((rc = qm__topo_get_id(c, v[0], path, r->name))) return rc;
  r->name_pos = pos_of(v[0]);
  snprintf(path, sizeof path, "%s.front", where);
  if ((rc = load_endpoint(c, v[1], path, &r->front))) return rc;
  snprintf(path, sizeof path, "%s.hub", where);
  return load_endpoint(c, v[2], path, &r->hub);
}

/* load_list: a non-empty sequence of at most |max| items, each loaded by |one|. */
static int load_list(struct ctx *c, const struct node *n, const char *name, size_t max,
                     size_t *count,
                     int (*one)(struct ctx *, const struct node *, const char *, size_t)) {
  char b[64], where[64];
  size_t i;
  int rc;
  if (n->kind != NODE_SEQ)
    return FAIL(c, n, "%s: expected a sequence, got %s", name, qm__topo_show(n, b, sizeof b));
  if (n->nkids == 0) return FAIL(c, n, "%s: at least one entry is required", name);
  for (i = 0; i < n->nkids; i++) {
    if (i == max) return FAIL(c, n->kids[i], "%s: more than %zu entries", name, max);
    snprintf(where, sizeof where, "%s[%zu]", name, i);
    if ((rc = one(c, n->kids[i], where, i))) return rc;
    *count = i + 1;
  }
  return 0;
}

static int one_region(struct ctx *c, const struct node *n, const char *where, size_t i) {
  return load_region(c, n, where, &c->t->regions[i]);
}

static int one_provider(struct ctx *c, const struct node *n, const char *where, size_t i) {
  return load_provider(c, n, where, &c->t->providers[i]);
}

static int load_domains(struct ctx *c, const struct node *n) {
  struct qm_topology *t = c->t;
  char b[64], path[96];
  size_t i, j;
  int rc;
  if (n->kind != NODE_MAP)
    return FAIL(c, n, "domains: expected a mapping, got %s", qm__topo_show(n, b, sizeof b));
  if (n->nkids == 0) return FAIL(c, n, "domains: at least one domain is required");
  t->ndomains = 0;
  for (i = 0; i + 1 < n->nkids; i += 2) {
    const struct node *k = n->kids[i];
    if (t->ndomains == QM_DOMAINS_MAX)
      return FAIL(c, k, "domains: more than %d domains", QM_DOMAINS_MAX);
    if (k->kind != NODE_SCALAR) return FAIL(c, k, "domains: mapping keys must be scalars");
    if ((rc = qm__topo_get_id(c, k, "domains", t->domains[t->ndomains].name))) return rc;
    for (j = 0; j < i; j += 2)
      if (!strcmp(n->kids[j]->text, k->text))
        return FAIL(c, k, "duplicate key %s in domains (first at %u:%u)",
                    qm__topo_show(k, b, sizeof b), n->kids[j]->line, n->kids[j]->col);
    snprintf(path, sizeof path, "domains.%s", k->text);
    if ((rc = qm__topo_get_ratio(c, n->kids[i + 1], path, &t->domains[t->ndomains].threshold)))
      return rc;
    t->ndomains++;
  }
  return 0;
}

static int load_requests(struct ctx *c, const struct node *n) {
  enum { TOTAL, FAILOVER, SEED, WORKERS, QUEUE, NKEYS };
  static const char *const keys[] = {"total",        "failover_at",    "random_seed",
                                     "worker_count", "post_queue_max", NULL};
  const struct node *v[NKEYS] = {0}, *k[NKEYS] = {0};
  struct qm_topology *t = c->t;
  uint64_t u;
  int rc = qm__topo_map_fields(c, n, "requests", keys, v, k);
  if (rc) return rc;
  if (v[TOTAL] &&
      (rc = qm__topo_get_uint(c, v[TOTAL], "requests.total", 0, UINT64_MAX, &t->total_requests)))
    return rc;
  if (v[FAILOVER]) {
    if ((rc = qm__topo_get_uint(c, v[FAILOVER], "requests.failover_at", 0, INT64_MAX, &u)))
      return rc;
    t->failover_at = (int64_t)u;
  }
  if (v[SEED]) {
    const struct node *s = v[SEED];
    char b[64];
    size_t sign = s->kind == NODE_SCALAR && (s->text[0] == '-' || s->text[0] == '+');
    if (s->kind != NODE_SCALAR || s->len <= sign || s->len >= QM_SEED_MAX ||
        strspn(s->text + sign, "0123456789") != s->len - sign)
      return FAIL(c, s, "requests.random_seed: expected a decimal integer, got %s",
                  qm__topo_show(s, b, sizeof b));
    memcpy(t->random_seed, s->text, s->len + 1);
  }
  if (v[WORKERS]) {
    if ((rc = qm__topo_get_uint(c, v[WORKERS], "requests.worker_count", 1, 1024, &u))) return rc;
    t->worker_count = (unsigned)u;
  }
  if (v[QUEUE]) {
    if ((rc = qm__topo_get_uint(c, v[QUEUE], "requests.post_queue_max", 1, 1000000, &u))) return rc;
    t->post_queue_max = (unsigned)u;
  }
  return 0;
}

static int load_quorum(struct ctx *c, const struct node *n) {
  static const char *const keys[] = {"threshold", "deadline_ms", NULL};
  const struct node *v[2] = {0}, *k[2] = {0};
  uint64_t u;
  int rc = qm__topo_map_fields(c, n, "quorum", keys, v, k);
  if (rc) return rc;
  if (v[0]) {
    if ((rc = qm__topo_get_uint(c, v[0], "quorum.threshold", 0, UINT32_MAX, &u))) return rc;
    c->t->quorum_threshold = (unsigned)u;
    c->t->quorum_pos = pos_of(v[0]);
  }
  if (v[1]) {
    if ((rc = qm__topo_get_uint(c, v[1], "quorum.deadline_ms", 1, 3600000, &u))) return rc;
    c->t->deadline_ms = (unsigned)u;
  }
  return 0;
}

static int load_byzantine(struct ctx *c, const struct node *n) {
  static const char *const keys[] = {"provider", "at", NULL};
  const struct node *v[2] = {0}, *k[2] = {0};
  uint64_t u;
  int rc = qm__topo_map_fields(c, n, "byzantine", keys, v, k);
  if (rc) return rc;
  if (v[0]) {
    if ((rc = qm__topo_get_str(c, v[0], "byzantine.provider", c->t->byzantine_provider, QM_ID_MAX)))
      return rc;
    c->t->byzantine_pos = pos_of(v[0]);
  }
  if (v[1]) {
    if ((rc = qm__topo_get_uint(c, v[1], "byzantine.at", 0, INT64_MAX, &u))) return rc;
    c->t->byzantine_at = (int64_t)u;
  }
  return 0;
}

static int load_tls(struct ctx *c, const struct node *n) {
  static const char *const keys[] = {"ca", "certs_dir", NULL};
  const struct node *v[2] = {0}, *k[2] = {0};
  int rc;
  if ((rc = qm__topo_map_fields(c, n, "tls", keys, v, k)) ||
      (rc = qm__topo_require(c, n, "tls", "ca", v[0])) ||
      (rc = qm__topo_require(c, n, "tls", "certs_dir", v[1])) ||
      (rc = qm__topo_get_path(c, v[0], "tls.ca", c->t->tls.ca)) ||
      (rc = qm__topo_get_path(c, v[1], "tls.certs_dir", c->t->tls.certs_dir)))
    return rc;
  c->t->tls.enabled = 1;
  return 0;
}

static void set_defaults(struct qm_topology *t) {
  static const struct qm_domain domains[] = {
      {"payments", 0.55}, {"identity", 0.60}, {"storage", 0.50}};
  t->total_requests = 100;
  t->failover_at = -1;
  t->worker_count = 12;
  t->post_queue_max = 5000;
  t->quorum_threshold = 2;
  t->deadline_ms = 3000;
  snprintf(t->expected_context, sizeof t->expected_context, "CTX_ALPHA");
  memcpy(t->domains, domains, sizeof domains);
  t->ndomains = sizeof domains / sizeof domains[0];
  t->default_threshold = 0.60;
  t->byzantine_at = -1;
}

static int load_root(struct ctx *c, const struct node *root) {
  enum {
    VERSION,
    REQUESTS,
    QUORUM,
    CONTEXT,
    DOMAINS,
    DEFAULT_T,
    BYZANTINE,
    REGIONS,
    PROVIDERS,
    AUDITOR,
    KEYS_DIR,
    TLS,
    NKEYS
  };
  static const char *const keys[] = {
      "version",           "requests",  "quorum",  "expected_context", "domains",
      "default_threshold", "byzantine", "regions", "providers",        "auditor",
      "keys_dir",          "tls",       NULL};
  const struct node *v[NKEYS] = {0}, *k[NKEYS] = {0};
  struct qm_topology *t = c->t;
  char b[64];
  uint64_t version;
  int rc;

  if ((rc = qm__topo_map_fields(c, root, "", keys, v, k)) ||
      (rc = qm__topo_require(c, root, "", "version", v[VERSION])))
    return rc;
  if (qm__topo_get_uint(c, v[VERSION], "version", 1, 1, &version))
    return FAIL(c, v[VERSION], "unsupported version %s (expected 1)",
                qm__topo_show(v[VERSION], b, sizeof b));
  if ((rc = qm__topo_require(c, root, "", "regions", v[REGIONS])) ||
      (rc = qm__topo_require(c, root, "", "providers", v[PROVIDERS])) ||
      (rc = qm__topo_require(c, root, "", "auditor", v[AUDITOR])))
    return rc;
  if (v[REQUESTS] && (rc = load_requests(c, v[REQUESTS]))) return rc;
  if (v[QUORUM] && (rc = load_quorum(c, v[QUORUM]))) return rc;
  if (v[CONTEXT]) {
    if ((rc = qm__topo_get_str(c, v[CONTEXT], "expected_context", t->expected_context, QM_CTX_MAX)))
      return rc;
    if (!t->expected_context[0]) return FAIL(c, v[CONTEXT], "expected_context: must not be empty");
  }
  if (v[DOMAINS] && (rc = load_domains(c, v[DOMAINS]))) return rc;
  if (v[DEFAULT_T] &&
      (rc = qm__topo_get_ratio(c, v[DEFAULT_T], "default_threshold", &t->default_threshold)))
    return rc;
  if (v[BYZANTINE] && (rc = load_byzantine(c, v[BYZANTINE]))) return rc;
  if ((rc = load_list(c, v[REGIONS], "regions", QM_REGIONS_MAX, &t->nregions, one_region)) ||
      (rc = load_list(c, v[PROVIDERS], "providers", QM_PROVIDERS_MAX, &t->nproviders,
                      one_provider)) ||
      (rc = load_endpoint(c, v[AUDITOR], "auditor", &t->auditor)))
    return rc;
  if (!t->quorum_pos.line) t->quorum_pos = pos_of(v[PROVIDERS]);
  if (v[KEYS_DIR] && (rc = qm__topo_get_path(c, v[KEYS_DIR], "keys_dir", t->keys_dir))) return rc;
  if (v[TLS] && (rc = load_tls(c, v[TLS]))) return rc;
  return 0;
}

/* ---- entry points ---- */

int qm_topology_load_buffer(const char *name, const char *buf, size_t len, const char *for_id,
                            struct qm_topology **out, struct qm_err *err) {
  struct ctx c;
  struct qm_topology *t = NULL;
  struct node *root = NULL;
  const char *slash;
  int rc;

  memset(&c, 0, sizeof c);
  c.name = name ? name : "<buffer>";
  c.for_id = for_id;
  c.err = err;
  if (!buf || !out) return qm_err_set(err, -EINVAL, "%s: no buffer", c.name);
  if (len > QM_YAML_FILE_MAX)
    return qm_err_set(err, -EFBIG, "%s: larger than %d bytes", c.name, QM_YAML_FILE_MAX);
  slash = strrchr(c.name, '/');
  if (slash && (size_t)(slash - c.name) >= sizeof c.dir)
    return qm_err_set(err, -ENAMETOOLONG, "%.64s...: file name too long", c.name);
  if (slash)
    snprintf(c.dir, sizeof c.dir, "%.*s", slash == c.name ? 1 : (int)(slash - c.name), c.name);
  t = calloc(1, sizeof *t);
  if (!t) return qm_err_set(err, -ENOMEM, "%s: out of memory", c.name);
  snprintf(t->source, sizeof t->source, "%s", c.name);
  set_defaults(t);
  c.t = t;
  rc = qm__topo_parse_tree(&c, buf, len, &root);
  if (rc) goto cleanup;
  rc = load_root(&c, root);
  if (rc) goto cleanup;
  rc = qm_topology_validate(t, err);
  if (rc) goto cleanup;
  *out = t;
  t = NULL;
cleanup:
  qm__topo_node_free(root);
  qm_topology_free(t);
  return rc;
}

int qm_topology_load(const char *path, const char *for_id, struct qm_topology **out,
                     struct qm_err *err) {
  char *buf;
  size_t len = 0;
  int rc;

  if (!path || !out) return qm_err_set(err, -EINVAL, "no topology file given");
  buf = malloc(QM_YAML_FILE_MAX + 1); /* + 1: tells a file of exactly the limit from a larger one */
  if (!buf) return qm_err_set(err, -ENOMEM, "%s: out of memory", path);
  rc = read_bounded(path, buf, QM_YAML_FILE_MAX + 1, &len, 0);
  if (rc) {
    rc = qm_err_set(err, rc, "%s: %s", path, strerror(-rc));
    goto cleanup;
  }
  if (len > QM_YAML_FILE_MAX) {
    rc = qm_err_set(err, -EFBIG, "%s: larger than %d bytes", path, QM_YAML_FILE_MAX);
    goto cleanup;
  }
  rc = qm_topology_load_buffer(path, buf, len, for_id, out, err);
cleanup:
  OPENSSL_cleanse(buf, len); /* the file may hold inline secrets */
  free(buf);
  return rc;
}
