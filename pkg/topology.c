/* topology.c: loads the mesh topology from YAML (libyaml events -> bounded tree -> struct). */
#include "topology.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <yaml.h>

/* ---- the parse tree: what libyaml reports, with positions, nothing resolved ---- */

/* Bound on parse-tree nodes: the largest valid topology (64 regions, 64 providers, 32 domains)
 * has about 3,000; this keeps a 1 MiB file of tiny scalars from costing ~100 MiB of nodes. */
#define YAML_NODES_MAX 20000

enum node_kind { NODE_SCALAR, NODE_MAP, NODE_SEQ };

struct node {
  enum node_kind kind;
  unsigned line, col; /* 1-based */
  int plain;          /* scalar written without quotes (may be null, a number...) */
  char *text;         /* scalar bytes, NUL-terminated */
  size_t len;
  struct node **kids; /* map: key, value, key, value...; sequence: items */
  size_t nkids, cap;
};

struct ctx {
  const char *name;      /* for messages */
  const char *for_id;    /* the instance whose secret may be copied, or NULL */
  char dir[QM_PATH_MAX]; /* relative paths resolve against this ("" = as written) */
  struct qm_topology *t;
  struct qm_err *err;
};

static void node_free(struct node *n) {
  size_t i;
  if (!n) return;
  for (i = 0; i < n->nkids; i++) node_free(n->kids[i]);
  free(n->kids);
  if (n->text) {
    OPENSSL_cleanse(n->text, n->len); /* scalars may be secrets */
    free(n->text);
  }
  free(n);
}

static int fail_at(struct ctx *c, unsigned line, unsigned col, int code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int fail_at(struct ctx *c, unsigned line, unsigned col, int code, const char *fmt, ...) {
  char msg[QM_ERR_MSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return qm_err_set(c->err, code, "%s:%u:%u: %s", c->name, line, col, msg);
}

#define FAIL(c, n, ...) fail_at((c), (n)->line, (n)->col, -EINVAL, __VA_ARGS__)
/* FAIL_MARK: an error at a libyaml mark (0-based) of the event |ev|. */
#define FAIL_MARK(c, ev, ...)                                                                     \
  fail_at((c), (unsigned)(ev).start_mark.line + 1, (unsigned)(ev).start_mark.column + 1, -EINVAL, \
          __VA_ARGS__)

/* show: |n| for a message: 'text' (at most 48 bytes, unprintable bytes as '?'), "null",
 * "a mapping" or "a sequence". */
static int is_null(const struct node *n);
static const char *show(const struct node *n, char *buf, size_t size) {
  size_t i, o = 0;
  if (n->kind == NODE_MAP) return "a mapping";
  if (n->kind == NODE_SEQ) return "a sequence";
  if (is_null(n)) return "null";
  buf[o++] = '\'';
  for (i = 0; i < n->len && i < 48 && o + 6 < size; i++) {
    unsigned char ch = (unsigned char)n->text[i];
    buf[o++] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
  }
  if (i < n->len) {
    memcpy(buf + o, "...", 3);
    o += 3;
  }
  buf[o++] = '\'';
  buf[o] = '\0';
  return buf;
}

/* ---- building the tree from libyaml events ---- */

static int yaml_fail(struct ctx *c, const yaml_parser_t *p, const char *buf, size_t len) {
  unsigned line = (unsigned)p->problem_mark.line + 1, col = (unsigned)p->problem_mark.column + 1;
  const char *problem = p->problem ? p->problem : "invalid YAML";
  if (p->error == YAML_MEMORY_ERROR)
    return qm_err_set(c->err, -ENOMEM, "%s: out of memory", c->name);
  if (p->error == YAML_READER_ERROR) { /* libyaml gives a byte offset only */
    size_t i;
    line = 1;
    col = 1;
    for (i = 0; i < p->problem_offset && i < len; i++) {
      if (buf[i] == '\n' || (buf[i] == '\r' && (i + 1 >= len || buf[i + 1] != '\n'))) {
        line++;
        col = 1;
      } else if (((unsigned char)buf[i] & 0xc0) != 0x80) {
        col++;
      }
    }
    return fail_at(c, line, col, -EINVAL, "%s (byte 0x%02x)", problem,
                   (unsigned)p->problem_value & 0xff);
  }
  if (p->context)
    return fail_at(c, line, col, -EINVAL, "%s (%s at %u:%u)", problem, p->context,
                   (unsigned)p->context_mark.line + 1, (unsigned)p->context_mark.column + 1);
  return fail_at(c, line, col, -EINVAL, "%s", problem);
}

static int node_append(struct node *parent, struct node *kid) {
  if (parent->nkids == parent->cap) {
    size_t cap = parent->cap ? parent->cap * 2 : 8;
    struct node **kids = realloc(parent->kids, cap * sizeof *kids);
    if (!kids) return -ENOMEM;
    parent->kids = kids;
    parent->cap = cap;
  }
  parent->kids[parent->nkids++] = kid;
  return 0;
}

/* node_from_event: a new node for a scalar or collection start; anchors and tags refused. */
static int node_from_event(struct ctx *c, const yaml_event_t *ev, struct node **out) {
  const yaml_char_t *anchor = NULL, *tag = NULL;
  unsigned line = (unsigned)ev->start_mark.line + 1, col = (unsigned)ev->start_mark.column + 1;
  struct node *n;
  if (ev->type == YAML_SCALAR_EVENT) {
    anchor = ev->data.scalar.anchor;
    tag = ev->data.scalar.tag;
  } else if (ev->type == YAML_MAPPING_START_EVENT) {
    anchor = ev->data.mapping_start.anchor;
    tag = ev->data.mapping_start.tag;
  } else {
    anchor = ev->data.sequence_start.anchor;
    tag = ev->data.sequence_start.tag;
  }
  if (anchor) return fail_at(c, line, col, -EINVAL, "anchors and aliases are not allowed");
  if (tag)
    return fail_at(c, line, col, -EINVAL, "tags are not allowed ('%.32s')", (const char *)tag);
  n = calloc(1, sizeof *n);
  if (!n) return qm_err_set(c->err, -ENOMEM, "%s: out of memory", c->name);
  n->line = line;
  n->col = col;
  if (ev->type == YAML_SCALAR_EVENT) {
    n->kind = NODE_SCALAR;
    n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    n->len = ev->data.scalar.length;
    n->text = malloc(n->len + 1);
    if (!n->text) {
      free(n);
      return qm_err_set(c->err, -ENOMEM, "%s: out of memory", c->name);
    }
    memcpy(n->text, ev->data.scalar.value, n->len);
    n->text[n->len] = '\0';
  } else {
    n->kind = ev->type == YAML_MAPPING_START_EVENT ? NODE_MAP : NODE_SEQ;
  }
  *out = n;
  return 0;
}

/* parse_tree: the single document of |buf| as a tree in |*root| (caller frees). */
static int parse_tree(struct ctx *c, const char *buf, size_t len, struct node **root) {
  yaml_parser_t parser;
  yaml_event_t ev;
  struct node *stack[QM_YAML_DEPTH_MAX];
  struct node *top = NULL, *n = NULL;
  size_t depth = 0, nodes = 0;
  int rc = 0, have_event = 0, docs = 0, done = 0;

  if (!yaml_parser_initialize(&parser))
    return qm_err_set(c->err, -ENOMEM, "%s: out of memory", c->name);
  yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
  while (!done) {
    if (!yaml_parser_parse(&parser, &ev)) {
      rc = yaml_fail(c, &parser, buf, len);
      goto cleanup;
    }
    have_event = 1;
    switch (ev.type) {
      case YAML_STREAM_END_EVENT:
        done = 1;
        break;
      case YAML_DOCUMENT_START_EVENT:
        if (++docs > 1) {
          rc = FAIL_MARK(c, ev, "multiple documents are not allowed");
          goto cleanup;
        }
        break;
      case YAML_ALIAS_EVENT:
        rc = FAIL_MARK(c, ev, "anchors and aliases are not allowed");
        goto cleanup;
      case YAML_SCALAR_EVENT:
      case YAML_SEQUENCE_START_EVENT:
      case YAML_MAPPING_START_EVENT:
        if (ev.type != YAML_SCALAR_EVENT && depth == QM_YAML_DEPTH_MAX) {
          rc = FAIL_MARK(c, ev, "nesting deeper than %d levels", QM_YAML_DEPTH_MAX);
          goto cleanup;
        }
        if (++nodes > YAML_NODES_MAX) {
          rc = FAIL_MARK(c, ev, "more than %d YAML nodes", YAML_NODES_MAX);
          goto cleanup;
        }
        rc = node_from_event(c, &ev, &n);
        if (rc) goto cleanup;
        if (depth == 0) {
          top = n; /* one document, so one root */
        } else if (node_append(stack[depth - 1], n)) {
          node_free(n);
          rc = qm_err_set(c->err, -ENOMEM, "%s: out of memory", c->name);
          goto cleanup;
        }
        if (n->kind != NODE_SCALAR) stack[depth++] = n;
        break;
      case YAML_SEQUENCE_END_EVENT:
      case YAML_MAPPING_END_EVENT:
        if (depth > 0) depth--;
        break;
      default:
        break;
    }
    yaml_event_delete(&ev);
    have_event = 0;
  }
  if (!top) {
    rc = fail_at(c, 1, 1, -EINVAL, "empty topology (expected a mapping with version: 1)");
    goto cleanup;
  }
  *root = top;
  top = NULL;
cleanup:
  if (have_event) yaml_event_delete(&ev);
  yaml_parser_delete(&parser);
  node_free(top);
  return rc;
}

/* ---- typed getters: each checks the node's type and range, errors point at the node ---- */

static int is_null(const struct node *n) {
  if (n->kind != NODE_SCALAR || !n->plain) return 0;
  return n->len == 0 || !strcmp(n->text, "~") || !strcmp(n->text, "null") ||
         !strcmp(n->text, "Null") || !strcmp(n->text, "NULL");
}

static int id_valid(const char *s) {
  size_t i;
  for (i = 0; s[i]; i++) {
    char ch = s[i];
    if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
          ch == '_' || ch == '.' || ch == '-'))
      return 0;
  }
  return i >= 1 && i < QM_ID_MAX;
}

static int get_str(struct ctx *c, const struct node *n, const char *path, char *dst, size_t size) {
  char b[64];
  if (n->kind != NODE_SCALAR || is_null(n))
    return FAIL(c, n, "%s: expected a string, got %s", path, show(n, b, sizeof b));
  if (memchr(n->text, '\0', n->len)) return FAIL(c, n, "%s: contains a NUL byte", path);
  if (n->len >= size) return FAIL(c, n, "%s: longer than %zu bytes", path, size - 1);
  memcpy(dst, n->text, n->len + 1);
  return 0;
}

/* get_id: an instance id, region or domain name: [A-Za-z0-9_.-]{1,63}. */
static int get_id(struct ctx *c, const struct node *n, const char *path, char *dst) {
  char b[64];
  if (n->kind != NODE_SCALAR || is_null(n))
    return FAIL(c, n, "%s: expected a string, got %s", path, show(n, b, sizeof b));
  if (n->len >= QM_ID_MAX || memchr(n->text, '\0', n->len) || !id_valid(n->text))
    return FAIL(c, n, "%s: invalid id %s (expected [A-Za-z0-9_.-]{1,63})", path,
                show(n, b, sizeof b));
  memcpy(dst, n->text, n->len + 1);
  return 0;
}

static int get_uint(struct ctx *c, const struct node *n, const char *path, uint64_t min,
                    uint64_t max, uint64_t *out) {
  char b[64];
  unsigned long long v;
  char *end;
  if (n->kind != NODE_SCALAR || !n->plain || n->len == 0 || n->len > 20 ||
      strspn(n->text, "0123456789") != n->len)
    return FAIL(c, n, "%s: expected a non-negative integer, got %s", path, show(n, b, sizeof b));
  errno = 0;
  v = strtoull(n->text, &end, 10);
  if (errno || *end || v < min || v > max)
    return FAIL(c, n, "%s: %s out of range %llu..%llu", path, show(n, b, sizeof b),
                (unsigned long long)min, (unsigned long long)max);
  *out = v;
  return 0;
}

/* get_ratio: a plain decimal number in [0, 1]. */
static int get_ratio(struct ctx *c, const struct node *n, const char *path, double *out) {
  char b[64];
  double v;
  char *end;
  if (n->kind != NODE_SCALAR || !n->plain || n->len == 0 || n->len > 64 ||
      strspn(n->text, "0123456789.eE+-") != n->len)
    return FAIL(c, n, "%s: expected a number in [0, 1], got %s", path, show(n, b, sizeof b));
  errno = 0;
  v = strtod(n->text, &end);
  if (errno || *end || !isfinite(v) || v < 0.0 || v > 1.0)
    return FAIL(c, n, "%s: expected a number in [0, 1], got %s", path, show(n, b, sizeof b));
  *out = v;
  return 0;
}

/* get_path: a file or directory name, relative ones resolved against the topology's dir. */
static int get_path(struct ctx *c, const struct node *n, const char *path, char *dst) {
  char raw[QM_PATH_MAX];
  int rc = get_str(c, n, path, raw, sizeof raw), w;
  if (rc) return rc;
  if (!raw[0]) return FAIL(c, n, "%s: empty path", path);
  if (raw[0] == '/' || !c->dir[0])
    w = snprintf(dst, QM_PATH_MAX, "%s", raw);
  else
    w = snprintf(dst, QM_PATH_MAX, "%s%s%s", c->dir, strcmp(c->dir, "/") ? "/" : "", raw);
  if (w < 0 || w >= QM_PATH_MAX)
    return FAIL(c, n, "%s: resolved path longer than %d bytes", path, QM_PATH_MAX - 1);
  return 0;
}

/* map_fields: the values of |keys| (NULL-terminated) in mapping |n| into |vals| and their
 * key nodes into |keyn| (both zeroed by the caller); other and repeated keys are errors. */
static int map_fields(struct ctx *c, const struct node *n, const char *where,
                      const char *const *keys, const struct node **vals, const struct node **keyn) {
  char b[64];
  size_t i, j;
  if (n->kind != NODE_MAP)
    return FAIL(c, n, "%s: expected a mapping, got %s", where[0] ? where : "topology",
                show(n, b, sizeof b));
  for (i = 0; i + 1 < n->nkids; i += 2) {
    const struct node *k = n->kids[i];
    if (k->kind != NODE_SCALAR)
      return FAIL(c, k, "%s: mapping keys must be scalars", where[0] ? where : "topology");
    for (j = 0; keys[j]; j++)
      if (strlen(keys[j]) == k->len && !memcmp(keys[j], k->text, k->len)) break;
    if (!keys[j]) {
      if (!where[0]) return FAIL(c, k, "unknown top-level key %s", show(k, b, sizeof b));
      return FAIL(c, k, "unknown key %s in %s", show(k, b, sizeof b), where);
    }
    if (vals[j])
      return FAIL(c, k, "duplicate key %s in %s (first at %u:%u)", show(k, b, sizeof b),
                  where[0] ? where : "topology", keyn[j]->line, keyn[j]->col);
    vals[j] = n->kids[i + 1];
    keyn[j] = k;
  }
  return 0;
}

static int require(struct ctx *c, const struct node *map, const char *where, const char *key,
                   const struct node *val) {
  if (val) return 0;
  if (!where[0]) return FAIL(c, map, "missing required top-level key '%s'", key);
  return FAIL(c, map, "missing required key '%s' in %s", key, where);
}

static struct qm_pos pos_of(const struct node *n) {
  struct qm_pos p = {n->line, n->col};
  return p;
}

/* ---- schema: one function per mapping ---- */

/* fill_endpoint: id, listen and advertise (default listen) from already collected values. */
static int fill_endpoint(struct ctx *c, const struct node *map, const char *where,
                         const struct node *const *v, struct qm_endpoint *ep) {
  char path[160];
  int rc;
  if ((rc = require(c, map, where, "id", v[0])) || (rc = require(c, map, where, "listen", v[1])))
    return rc;
  snprintf(path, sizeof path, "%s.id", where);
  if ((rc = get_id(c, v[0], path, ep->id))) return rc;
  ep->id_pos = pos_of(v[0]);
  snprintf(path, sizeof path, "%s.listen", where);
  if ((rc = get_str(c, v[1], path, ep->listen, sizeof ep->listen))) return rc;
  ep->listen_pos = pos_of(v[1]);
  if (!v[2]) {
    memcpy(ep->advertise, ep->listen, sizeof ep->advertise);
    ep->advertise_pos = ep->listen_pos;
    return 0;
  }
  snprintf(path, sizeof path, "%s.advertise", where);
  if ((rc = get_str(c, v[2], path, ep->advertise, sizeof ep->advertise))) return rc;
  ep->advertise_pos = pos_of(v[2]);
  return 0;
}

static int load_endpoint(struct ctx *c, const struct node *n, const char *where,
                         struct qm_endpoint *ep) {
  static const char *const keys[] = {"id", "listen", "advertise", NULL};
  const struct node *v[3] = {0}, *k[3] = {0};
  int rc = map_fields(c, n, where, keys, v, k);
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
    rc = fail_at(c, n->line, n->col, rc, "cannot read score_secret_file '%s': %s", file,
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

  if ((rc = map_fields(c, n, where, keys, v, k)) || (rc = fill_endpoint(c, n, where, v, &p->ep)))
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
    if (s->kind != NODE_SCALAR || is_null(s))
      return FAIL(c, s, "%s.score_secret: expected a string, got %s", where, show(s, b, sizeof b));
    if (s->len == 0 || s->len > QM_SECRET_MAX)
      return FAIL(c, s, "%s.score_secret: the secret must be 1..%d bytes", where, QM_SECRET_MAX);
    if (mine) {
      memcpy(p->score_secret, s->text, s->len);
      p->score_secret_len = s->len;
    }
  } else {
    snprintf(path, sizeof path, "%s.score_secret_file", where);
    if ((rc = get_path(c, v[SECRET_FILE], path, p->score_secret_file))) return rc;
    if (mine && (rc = read_secret(c, v[SECRET_FILE], p->score_secret_file, p))) return rc;
  }
  snprintf(path, sizeof path, "%s.signing_key", where);
  if (v[SIGNING] && (rc = get_path(c, v[SIGNING], path, p->signing_key))) return rc;
  snprintf(path, sizeof path, "%s.public_key", where);
  if (v[PUBLIC] && (rc = get_path(c, v[PUBLIC], path, p->public_key))) return rc;
  return 0;
}

static int load_region(struct ctx *c, const struct node *n, const char *where,
                       struct qm_region *r) {
  static const char *const keys[] = {"name", "front", "hub", NULL};
  const struct node *v[3] = {0}, *k[3] = {0};
  char path[160];
  int rc;
  if ((rc = map_fields(c, n, where, keys, v, k)) || (rc = require(c, n, where, "name", v[0])) ||
      (rc = require(c, n, where, "front", v[1])) || (rc = require(c, n, where, "hub", v[2])))
    return rc;
  snprintf(path, sizeof path, "%s.name", where);
  if ((rc = get_id(c, v[0], path, r->name))) return rc;
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
    return FAIL(c, n, "%s: expected a sequence, got %s", name, show(n, b, sizeof b));
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
    return FAIL(c, n, "domains: expected a mapping, got %s", show(n, b, sizeof b));
  if (n->nkids == 0) return FAIL(c, n, "domains: at least one domain is required");
  t->ndomains = 0;
  for (i = 0; i + 1 < n->nkids; i += 2) {
    const struct node *k = n->kids[i];
    if (t->ndomains == QM_DOMAINS_MAX)
      return FAIL(c, k, "domains: more than %d domains", QM_DOMAINS_MAX);
    if (k->kind != NODE_SCALAR) return FAIL(c, k, "domains: mapping keys must be scalars");
    if ((rc = get_id(c, k, "domains", t->domains[t->ndomains].name))) return rc;
    for (j = 0; j < i; j += 2)
      if (!strcmp(n->kids[j]->text, k->text))
        return FAIL(c, k, "duplicate key %s in domains (first at %u:%u)", show(k, b, sizeof b),
                    n->kids[j]->line, n->kids[j]->col);
    snprintf(path, sizeof path, "domains.%s", k->text);
    if ((rc = get_ratio(c, n->kids[i + 1], path, &t->domains[t->ndomains].threshold))) return rc;
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
  int rc = map_fields(c, n, "requests", keys, v, k);
  if (rc) return rc;
  if (v[TOTAL] && (rc = get_uint(c, v[TOTAL], "requests.total", 0, UINT64_MAX, &t->total_requests)))
    return rc;
  if (v[FAILOVER]) {
    if ((rc = get_uint(c, v[FAILOVER], "requests.failover_at", 0, INT64_MAX, &u))) return rc;
    t->failover_at = (int64_t)u;
  }
  if (v[SEED]) {
    const struct node *s = v[SEED];
    char b[64];
    size_t sign = s->kind == NODE_SCALAR && (s->text[0] == '-' || s->text[0] == '+');
    if (s->kind != NODE_SCALAR || s->len <= sign || s->len >= QM_SEED_MAX ||
        strspn(s->text + sign, "0123456789") != s->len - sign)
      return FAIL(c, s, "requests.random_seed: expected a decimal integer, got %s",
                  show(s, b, sizeof b));
    memcpy(t->random_seed, s->text, s->len + 1);
  }
  if (v[WORKERS]) {
    if ((rc = get_uint(c, v[WORKERS], "requests.worker_count", 1, 1024, &u))) return rc;
    t->worker_count = (unsigned)u;
  }
  if (v[QUEUE]) {
    if ((rc = get_uint(c, v[QUEUE], "requests.post_queue_max", 1, 1000000, &u))) return rc;
    t->post_queue_max = (unsigned)u;
  }
  return 0;
}

static int load_quorum(struct ctx *c, const struct node *n) {
  static const char *const keys[] = {"threshold", "deadline_ms", NULL};
  const struct node *v[2] = {0}, *k[2] = {0};
  uint64_t u;
  int rc = map_fields(c, n, "quorum", keys, v, k);
  if (rc) return rc;
  if (v[0]) {
    if ((rc = get_uint(c, v[0], "quorum.threshold", 0, UINT32_MAX, &u))) return rc;
    c->t->quorum_threshold = (unsigned)u;
    c->t->quorum_pos = pos_of(v[0]);
  }
  if (v[1]) {
    if ((rc = get_uint(c, v[1], "quorum.deadline_ms", 1, 3600000, &u))) return rc;
    c->t->deadline_ms = (unsigned)u;
  }
  return 0;
}

static int load_byzantine(struct ctx *c, const struct node *n) {
  static const char *const keys[] = {"provider", "at", NULL};
  const struct node *v[2] = {0}, *k[2] = {0};
  uint64_t u;
  int rc = map_fields(c, n, "byzantine", keys, v, k);
  if (rc) return rc;
  if (v[0]) {
    if ((rc = get_str(c, v[0], "byzantine.provider", c->t->byzantine_provider, QM_ID_MAX)))
      return rc;
    c->t->byzantine_pos = pos_of(v[0]);
  }
  if (v[1]) {
    if ((rc = get_uint(c, v[1], "byzantine.at", 0, INT64_MAX, &u))) return rc;
    c->t->byzantine_at = (int64_t)u;
  }
  return 0;
}

static int load_tls(struct ctx *c, const struct node *n) {
  static const char *const keys[] = {"ca", "certs_dir", NULL};
  const struct node *v[2] = {0}, *k[2] = {0};
  int rc;
  if ((rc = map_fields(c, n, "tls", keys, v, k)) || (rc = require(c, n, "tls", "ca", v[0])) ||
      (rc = require(c, n, "tls", "certs_dir", v[1])) ||
      (rc = get_path(c, v[0], "tls.ca", c->t->tls.ca)) ||
      (rc = get_path(c, v[1], "tls.certs_dir", c->t->tls.certs_dir)))
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

  if ((rc = map_fields(c, root, "", keys, v, k)) ||
      (rc = require(c, root, "", "version", v[VERSION])))
    return rc;
  if (get_uint(c, v[VERSION], "version", 1, 1, &version))
    return FAIL(c, v[VERSION], "unsupported version %s (expected 1)",
                show(v[VERSION], b, sizeof b));
  if ((rc = require(c, root, "", "regions", v[REGIONS])) ||
      (rc = require(c, root, "", "providers", v[PROVIDERS])) ||
      (rc = require(c, root, "", "auditor", v[AUDITOR])))
    return rc;
  if (v[REQUESTS] && (rc = load_requests(c, v[REQUESTS]))) return rc;
  if (v[QUORUM] && (rc = load_quorum(c, v[QUORUM]))) return rc;
  if (v[CONTEXT]) {
    if ((rc = get_str(c, v[CONTEXT], "expected_context", t->expected_context, QM_CTX_MAX)))
      return rc;
    if (!t->expected_context[0]) return FAIL(c, v[CONTEXT], "expected_context: must not be empty");
  }
  if (v[DOMAINS] && (rc = load_domains(c, v[DOMAINS]))) return rc;
  if (v[DEFAULT_T] && (rc = get_ratio(c, v[DEFAULT_T], "default_threshold", &t->default_threshold)))
    return rc;
  if (v[BYZANTINE] && (rc = load_byzantine(c, v[BYZANTINE]))) return rc;
  if ((rc = load_list(c, v[REGIONS], "regions", QM_REGIONS_MAX, &t->nregions, one_region)) ||
      (rc = load_list(c, v[PROVIDERS], "providers", QM_PROVIDERS_MAX, &t->nproviders,
                      one_provider)) ||
      (rc = load_endpoint(c, v[AUDITOR], "auditor", &t->auditor)))
    return rc;
  if (!t->quorum_pos.line) t->quorum_pos = pos_of(v[PROVIDERS]);
  if (v[KEYS_DIR] && (rc = get_path(c, v[KEYS_DIR], "keys_dir", t->keys_dir))) return rc;
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
  rc = parse_tree(&c, buf, len, &root);
  if (rc) goto cleanup;
  rc = load_root(&c, root);
  if (rc) goto cleanup;
  rc = qm_topology_validate(t, err);
  if (rc) goto cleanup;
  *out = t;
  t = NULL;
cleanup:
  node_free(root);
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
