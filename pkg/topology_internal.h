/* topology_internal.h: what pkg/topology.c and pkg/topology_yaml.c share: the parse tree,
 * the loader's context and the typed getters whose errors point at a node. */
#ifndef QM_TOPOLOGY_INTERNAL_H
#define QM_TOPOLOGY_INTERNAL_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "topology.h"

/* ---- the parse tree: what libyaml reports, with positions, nothing resolved ---- */

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

/* qm__topo_parse_tree: the single document of |buf| as a tree in |*root| (caller frees). */
int qm__topo_parse_tree(struct ctx *c, const char *buf, size_t len, struct node **root);

/* qm__topo_node_free: frees |n| and its kids, cleansing scalars; NULL-safe. */
void qm__topo_node_free(struct node *n);

/* qm__topo_fail_at: sets "name:line:column: message" in c->err and returns |code|. */
int qm__topo_fail_at(struct ctx *c, unsigned line, unsigned col, int code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#define FAIL(c, n, ...) qm__topo_fail_at((c), (n)->line, (n)->col, -EINVAL, __VA_ARGS__)

/* qm__topo_show: |n| for a message: 'text' (at most 48 bytes, unprintable bytes as '?'),
 * "null", "a mapping" or "a sequence". */
const char *qm__topo_show(const struct node *n, char *buf, size_t size);

/* ---- typed getters: each checks the node's type and range, errors point at the node ---- */

int qm__topo_is_null(const struct node *n);

int qm__topo_get_str(struct ctx *c, const struct node *n, const char *path, char *dst, size_t size);

/* qm__topo_get_id: an instance id, region or domain name: [A-Za-z0-9_.-]{1,63}. */
int qm__topo_get_id(struct ctx *c, const struct node *n, const char *path, char *dst);

int qm__topo_get_uint(struct ctx *c, const struct node *n, const char *path, uint64_t min,
                      uint64_t max, uint64_t *out);

/* qm__topo_get_ratio: a plain decimal number in [0, 1]. */
int qm__topo_get_ratio(struct ctx *c, const struct node *n, const char *path, double *out);

/* qm__topo_get_path: a file or directory name, relative ones resolved against the topology's
 * dir. */
int qm__topo_get_path(struct ctx *c, const struct node *n, const char *path, char *dst);

/* qm__topo_map_fields: the values of |keys| (NULL-terminated) in mapping |n| into |vals| and
 * their key nodes into |keyn| (both zeroed by the caller); other and repeated keys are errors. */
int qm__topo_map_fields(struct ctx *c, const struct node *n, const char *where,
                        const char *const *keys, const struct node **vals,
                        const struct node **keyn);

/* qm__topo_require: 0 when |val| is present, else "missing required key |key| in |where|". */
int qm__topo_require(struct ctx *c, const struct node *map, const char *where, const char *key,
                     const struct node *val);

#endif
