/* topology.h: the mesh declared in one YAML file (regions, providers, quorum, domains, keys).
 *
 * Loading is strict: unknown keys, wrong types, missing fields, duplicate ids or ports,
 * k > n and an unknown Byzantine provider are errors reported as "file:line:column: what".
 * Each role loads the file with its own id: secrets of other instances are never copied. */
#ifndef QM_TOPOLOGY_H
#define QM_TOPOLOGY_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define QM_ID_MAX 64       /* instance ids, region names, domain names */
#define QM_ADDR_MAX 256    /* host:port */
#define QM_PATH_MAX 512    /* key and certificate file paths */
#define QM_CTX_MAX 256     /* expected_context */
#define QM_SECRET_MAX 256  /* provider score secret bytes */
#define QM_DOMAINS_MAX 32
#define QM_REGIONS_MAX 64
#define QM_PROVIDERS_MAX 64
#define QM_SEED_MAX 128    /* RANDOM_SEED as decimal text (Python ints are unbounded) */
#define QM_YAML_DEPTH_MAX 16
#define QM_YAML_FILE_MAX (1 << 20)

/* Where a value was declared: 1-based line and column in the topology file, {0, 0} when it
 * came from a default, the environment or code. qm_topology_validate points its errors
 * there ("file:line:column: ..."), or at the file alone when the position is {0, 0}. */
struct qm_pos {
  unsigned line;
  unsigned column;
};

/* One server instance. |listen| is the address it binds; |advertise| is the address the
 * others dial (a Kubernetes Service name); it defaults to |listen|. */
struct qm_endpoint {
  char id[QM_ID_MAX];
  char listen[QM_ADDR_MAX];
  char advertise[QM_ADDR_MAX];
  struct qm_pos id_pos, listen_pos, advertise_pos;
};

struct qm_region {
  char name[QM_ID_MAX];
  struct qm_pos name_pos;
  struct qm_endpoint front;
  struct qm_endpoint hub;
};

struct qm_provider {
  struct qm_endpoint ep;
  /* Ed25519 key files (PEM). Empty: "<keys_dir>/<id>.key" and "<keys_dir>/<id>.pub". */
  char signing_key[QM_PATH_MAX];
  char public_key[QM_PATH_MAX];
  /* The score secret: filled only when the topology was loaded for this provider's id.
   * Declared inline (score_secret: demo only) or as a file (score_secret_file). */
  uint8_t score_secret[QM_SECRET_MAX];
  size_t score_secret_len;
  char score_secret_file[QM_PATH_MAX];
};

struct qm_domain {
  char name[QM_ID_MAX];
  double threshold;
};

/* Optional mutual TLS: a CA and, per instance id, "<certs_dir>/<id>.crt" and ".key". */
struct qm_tls {
  int enabled;
  char ca[QM_PATH_MAX];
  char certs_dir[QM_PATH_MAX];
};

struct qm_topology {
  char source[QM_PATH_MAX]; /* file name used in messages ("<built-in>" for the default) */

  size_t nregions;
  struct qm_region regions[QM_REGIONS_MAX];
  size_t nproviders;
  struct qm_provider providers[QM_PROVIDERS_MAX];
  struct qm_endpoint auditor;

  /* quorum: */
  unsigned quorum_threshold;  /* k of n, default 2 */
  unsigned deadline_ms;       /* decide incomplete this long after a request's first vote */
  struct qm_pos quorum_pos;   /* quorum.threshold, or the providers list when defaulted */

  /* domains: thresholds in declaration order; requester draws from this order. */
  size_t ndomains;
  struct qm_domain domains[QM_DOMAINS_MAX];
  double default_threshold;   /* any other domain, default 0.60 */
  char expected_context[QM_CTX_MAX];

  /* byzantine: provider "" = drawn from the seed, "none" = nobody; at < 0 = drawn. */
  char byzantine_provider[QM_ID_MAX];
  int64_t byzantine_at;
  struct qm_pos byzantine_pos; /* byzantine.provider */

  /* requester: */
  uint64_t total_requests;    /* default 100 */
  int64_t failover_at;        /* < 0: max(1, N/2) as the reference */
  char random_seed[QM_SEED_MAX]; /* "" = seed from the clock */
  unsigned worker_count;      /* WORKER_COUNT: in-flight sends per hop, default 12 */
  unsigned post_queue_max;    /* POST_QUEUE_MAX: bounded queue per hop, default 5000 */

  char keys_dir[QM_PATH_MAX]; /* where per-provider key files live when not named */
  struct qm_tls tls;
};

/* qm_topology_load: parses |path| for the instance |for_id| (NULL: no secrets at all).
 * Only the provider whose id is |for_id| gets its score secret copied (or read from its
 * score_secret_file); relative paths in the file resolve against the file's directory.
 * Returns 0 and a heap topology in |*out| (free with qm_topology_free), or a negative code
 * (-EINVAL for a bad file, -ENOENT..., -EFBIG past QM_YAML_FILE_MAX) with
 * "path:line:column: message" in |err|; on failure |*out| is untouched. */
int qm_topology_load(const char *path, const char *for_id, struct qm_topology **out,
                     struct qm_err *err);

/* qm_topology_load_buffer: as qm_topology_load, from |len| bytes (borrowed) named |name| in
 * messages; relative paths resolve against |name|'s directory (none: as written). */
int qm_topology_load_buffer(const char *name, const char *buf, size_t len, const char *for_id,
                            struct qm_topology **out, struct qm_err *err);

/* qm_topology_apply_env: applies the reference's environment overrides (TOTAL_REQUESTS,
 * FAILOVER_AT, QUORUM_THRESHOLD, EXPECTED_CONTEXT, RANDOM_SEED, BYZANTINE_PROVIDER,
 * BYZANTINE_AT, WORKER_COUNT, POST_QUEUE_MAX, <ID>_PORT for every instance id: the id in
 * upper case with '.' and '-' as '_'; it sets the port of listen and advertise) and
 * re-validates. An empty RANDOM_SEED clears the seed, an empty BYZANTINE_PROVIDER or
 * BYZANTINE_AT means "draw it"; other empty variables count as unset. Nonsense values are
 * errors naming the variable and value; on failure |t| is untouched. */
int qm_topology_apply_env(struct qm_topology *t, struct qm_err *err);

/* qm_topology_validate: the cross-field checks (unique ids and ports, 1 <= k <= n, known
 * Byzantine provider, ...); the loaders and apply_env call it. */
int qm_topology_validate(const struct qm_topology *t, struct qm_err *err);

/* Lookups by instance id; NULL when absent. */
const struct qm_region *qm_topology_find_region_of(const struct qm_topology *t, const char *id);
const struct qm_provider *qm_topology_find_provider(const struct qm_topology *t, const char *id);

/* qm_topology_threshold: the threshold of |domain|, or default_threshold. */
double qm_topology_threshold(const struct qm_topology *t, const char *domain);

/* qm_topology_role_of: "front", "hub", "provider", "auditor" or NULL for an unknown id. */
const char *qm_topology_role_of(const struct qm_topology *t, const char *id);

/* qm_topology_free: cleanses secrets and frees; NULL-safe. */
void qm_topology_free(struct qm_topology *t);

/* The built-in default topology: the same text as deploy/topology.yaml. */
extern const char qm_default_topology_yaml[];
extern const size_t qm_default_topology_yaml_len;

#endif
