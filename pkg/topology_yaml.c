/* topology_yaml.c: the topology file as a bounded parse tree (libyaml events -> nodes with
 * positions) and the typed getters that read its scalars and mappings, errors at a node. */
#include "topology_internal.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <yaml.h>

/* ---- the parse tree: what libyaml reports, with positions, nothing resolved ---- */

/* Bound on parse-tree nodes: the largest valid topology (64 regions, 64 providers, 32 domains)
 * has about 3,000; this keeps a 1 MiB file of tiny scalars from costing ~100 MiB of nodes. */
#define YAML_NODES_MAX 20000

void qm__topo_node_free(struct node *n) {
  size_t i;
  if (!n) return;
  for (i = 0; i < n->nkids; i++) qm__topo_node_free(n->kids[i]);
  free(n->kids);
  if (n->text) {
    OPENSSL_cleanse(n->text, n->len); /* scalars may be secrets */
    free(n->text);
  }
  free(n);
}

int qm__topo_fail_at(struct ctx *c, unsigned line, unsigned col, int code, const char *fmt, ...) {
  char msg[QM_ERR_MSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return qm_err_set(c->err, code, "%s:%u:%u: %s", c->name, line, col, msg);
}

/* FAIL_MARK: an error at a libyaml mark (0-based) of the event |ev|. */
#define FAIL_MARK(c, ev, ...)                                                                     \
  qm__topo_fail_at((c), (unsigned)(ev).start_mark.line + 1, (unsigned)(ev).start_mark.column + 1, \
                   -EINVAL, __VA_ARGS__)

/* qm__topo_show: |n| for a message: 'text' (at most 48 bytes, unprintable bytes as '?'),
 * "null", "a mapping" or "a sequence". */
const char *qm__topo_show(const struct node *n, char *buf, size_t size) {
  size_t i, o = 0;
  if (n->kind == NODE_MAP) return "a mapping";
  if (n->kind == NODE_SEQ) return "a sequence";
  if (qm__topo_is_null(n)) return "null";
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
    return qm__topo_fail_at(c, line, col, -EINVAL, "%s (byte 0x%02x)", problem,
                            (unsigned)p->problem_value & 0xff);
  }
  if (p->context)
    return qm__topo_fail_at(c, line, col, -EINVAL, "%s (%s at %u:%u)", problem, p->context,
                            (unsigned)p->context_mark.line + 1,
                            (unsigned)p->context_mark.column + 1);
  return qm__topo_fail_at(c, line, col, -EINVAL, "%s", problem);
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
  if (anchor) return qm__topo_fail_at(c, line, col, -EINVAL, "anchors and aliases are not allowed");
  if (tag)
    return qm__topo_fail_at(c, line, col, -EINVAL, "tags are not allowed ('%.32s')",
                            (const char *)tag);
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

/* qm__topo_parse_tree: the single document of |buf| as a tree in |*root| (caller frees). */
int qm__topo_parse_tree(struct ctx *c, const char *buf, size_t len, struct node **root) {
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
          qm__topo_node_free(n);
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
    rc = qm__topo_fail_at(c, 1, 1, -EINVAL, "empty topology (expected a mapping with version: 1)");
    goto cleanup;
  }
  *root = top;
  top = NULL;
cleanup:
  if (have_event) yaml_event_delete(&ev);
  yaml_parser_delete(&parser);
  qm__topo_node_free(top);
  return rc;
}

/* ---- typed getters: each checks the node's type and range, errors point at the node ---- */

int qm__topo_is_null(const struct node *n) {
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

int qm__topo_get_str(struct ctx *c, const struct node *n, const char *path, char *dst,
                     size_t size) {
  char b[64];
  if (n->kind != NODE_SCALAR || qm__topo_is_null(n))
    return FAIL(c, n, "%s: expected a string, got %s", path, qm__topo_show(n, b, sizeof b));
  if (memchr(n->text, '\0', n->len)) return FAIL(c, n, "%s: contains a NUL byte", path);
  if (n->len >= size) return FAIL(c, n, "%s: longer than %zu bytes", path, size - 1);
  memcpy(dst, n->text, n->len + 1);
  return 0;
}

/* qm__topo_get_id: an instance id, region or domain name: [A-Za-z0-9_.-]{1,63}. */
int qm__topo_get_id(struct ctx *c, const struct node *n, const char *path, char *dst) {
  char b[64];
  if (n->kind != NODE_SCALAR || qm__topo_is_null(n))
    return FAIL(c, n, "%s: expected a string, got %s", path, qm__topo_show(n, b, sizeof b));
  if (n->len >= QM_ID_MAX || memchr(n->text, '\0', n->len) || !id_valid(n->text))
    return FAIL(c, n, "%s: invalid id %s (expected [A-Za-z0-9_.-]{1,63})", path,
                qm__topo_show(n, b, sizeof b));
  memcpy(dst, n->text, n->len + 1);
  return 0;
}

int qm__topo_get_uint(struct ctx *c, const struct node *n, const char *path, uint64_t min,
                      uint64_t max, uint64_t *out) {
  char b[64];
  unsigned long long v;
  char *end;
  if (n->kind != NODE_SCALAR || !n->plain || n->len == 0 || n->len > 20 ||
      strspn(n->text, "0123456789") != n->len)
    return FAIL(c, n, "%s: expected a non-negative integer, got %s", path,
                qm__topo_show(n, b, sizeof b));
  errno = 0;
  v = strtoull(n->text, &end, 10);
  if (errno || *end || v < min || v > max)
    return FAIL(c, n, "%s: %s out of range %llu..%llu", path, qm__topo_show(n, b, sizeof b),
                (unsigned long long)min, (unsigned long long)max);
  *out = v;
  return 0;
}

/* qm__topo_get_ratio: a plain decimal number in [0, 1]. */
int qm__topo_get_ratio(struct ctx *c, const struct node *n, const char *path, double *out) {
  char b[64];
  double v;
  char *end;
  if (n->kind != NODE_SCALAR || !n->plain || n->len == 0 || n->len > 64 ||
      strspn(n->text, "0123456789.eE+-") != n->len)
    return FAIL(c, n, "%s: expected a number in [0, 1], got %s", path,
                qm__topo_show(n, b, sizeof b));
  errno = 0;
  v = strtod(n->text, &end);
  if (errno || *end || !isfinite(v) || v < 0.0 || v > 1.0)
    return FAIL(c, n, "%s: expected a number in [0, 1], got %s", path,
                qm__topo_show(n, b, sizeof b));
  *out = v;
  return 0;
}

/* qm__topo_get_path: a file or directory name, relative ones resolved against the topology's
 * dir. */
int qm__topo_get_path(struct ctx *c, const struct node *n, const char *path, char *dst) {
  char raw[QM_PATH_MAX];
  int rc = qm__topo_get_str(c, n, path, raw, sizeof raw), w;
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

/* qm__topo_map_fields: the values of |keys| (NULL-terminated) in mapping |n| into |vals| and
 * their key nodes into |keyn| (both zeroed by the caller); other and repeated keys are errors. */
int qm__topo_map_fields(struct ctx *c, const struct node *n, const char *where,
                        const char *const *keys, const struct node **vals,
                        const struct node **keyn) {
  char b[64];
  size_t i, j;
  if (n->kind != NODE_MAP)
    return FAIL(c, n, "%s: expected a mapping, got %s", where[0] ? where : "topology",
                qm__topo_show(n, b, sizeof b));
  for (i = 0; i + 1 < n->nkids; i += 2) {
    const struct node *k = n->kids[i];
    if (k->kind != NODE_SCALAR)
      return FAIL(c, k, "%s: mapping keys must be scalars", where[0] ? where : "topology");
    for (j = 0; keys[j]; j++)
      if (strlen(keys[j]) == k->len && !memcmp(keys[j], k->text, k->len)) break;
    if (!keys[j]) {
      if (!where[0]) return FAIL(c, k, "unknown top-level key %s", qm__topo_show(k, b, sizeof b));
      return FAIL(c, k, "unknown key %s in %s", qm__topo_show(k, b, sizeof b), where);
    }
    if (vals[j])
      return FAIL(c, k, "duplicate key %s in %s (first at %u:%u)", qm__topo_show(k, b, sizeof b),
                  where[0] ? where : "topology", keyn[j]->line, keyn[j]->col);
    vals[j] = n->kids[i + 1];
    keyn[j] = k;
  }
  return 0;
}

int qm__topo_require(struct ctx *c, const struct node *map, const char *where, const char *key,
                     const struct node *val) {
  if (val) return 0;
  if (!where[0]) return FAIL(c, map, "missing required top-level key '%s'", key);
  return FAIL(c, map, "missing required key '%s' in %s", key, where);
}
