/* tools.c: `qmesh validate`, `qmesh keygen`, `qmesh summary`. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <unistd.h>

#include "audit_log.h"
#include "certs.h"
#include "hash.h"
#include "qmesh.h"
#include "report_check.h"
#include "rpc.h"
#include "sign.h"
#include "summary.h"
#include "text.h"

int qm_cmd_validate(int argc, char **argv) {
  if (argc != 2 || argv[1][0] == '-') {
    fprintf(stderr, "usage: qmesh validate FILE\n");
    return argc == 2 && strcmp(argv[1], "--help") == 0 ? 0 : 2;
  }
  struct qm_topology *t = NULL;
  struct qm_err err = {0};
  if (qm_topology_load(argv[1], NULL, &t, &err)) {
    fprintf(stderr, "%s\n", err.msg);
    return 1;
  }
  printf("%s: ok: %zu region(s), %zu provider(s), quorum %u-of-%zu, %zu domain(s)\n", argv[1], t->nregions,
         t->nproviders, t->quorum_threshold, t->nproviders, t->ndomains);
  qm_topology_free(t);
  return 0;
}

int qm_cmd_keygen(int argc, char **argv) {
  static const struct option longs[] = {{"topology", required_argument, NULL, 't'},
                                        {"out", required_argument, NULL, 'o'},
                                        {"help", no_argument, NULL, 'h'},
                                        {NULL, 0, NULL, 0}};
  const char *topology = NULL, *out = "keys";
  int c;
  while ((c = getopt_long(argc, argv, "t:o:h", longs, NULL)) != -1) {
    switch (c) {
      case 't': topology = optarg; break;
      case 'o': out = optarg; break;
      case 'h':
        printf("usage: qmesh keygen [--topology FILE] [--out DIR]\n"
               "Writes DIR/<provider>.key (Ed25519 private, 0600) and DIR/<provider>.pub per provider.\n"
               "Give providers their .key only and the auditor the .pub files only.\n");
        return 0;
      default: return 2;
    }
  }
  struct qm_topology *t = qm_load_topology_arg("qmesh keygen", topology);
  if (!t) return 1;
  if (mkdir(out, 0700) != 0 && errno != EEXIST) {
    fprintf(stderr, "qmesh keygen: mkdir %s: %s\n", out, strerror(errno));
    qm_topology_free(t);
    return 1;
  }
  struct qm_err err = {0};
  int code = 0;
  for (size_t i = 0; i < t->nproviders && !code; i++) {
    if (qm_key_generate(out, t->providers[i].ep.id, &err)) {
      fprintf(stderr, "qmesh keygen: %s\n", err.msg);
      code = 1;
    } else {
      printf("%s/%s.key %s/%s.pub\n", out, t->providers[i].ep.id, out, t->providers[i].ep.id);
    }
  }
  qm_topology_free(t);
  return code;
}

int qm_cmd_summary(int argc, char **argv) {
  static const struct option longs[] = {{"topology", required_argument, NULL, 't'},
                                        {"json", no_argument, NULL, 'j'},
                                        {"help", no_argument, NULL, 'h'},
                                        {NULL, 0, NULL, 0}};
  const char *topology = NULL;
  int json = 0, c;
  while ((c = getopt_long(argc, argv, "t:jh", longs, NULL)) != -1) {
    switch (c) {
      case 't': topology = optarg; break;
      case 'j': json = 1; break;
      case 'h': printf("usage: qmesh summary [--topology FILE] [--json]\n"); return 0;
      default: return 2;
    }
  }
  struct qm_topology *t = qm_load_topology_arg("qmesh summary", topology);
  if (!t) return 1;
  qm_rpc_init();
  struct qm_report rep;
  memset(&rep, 0, sizeof rep);
  struct qm_err err = {0};
  int code = 0;
  if (qm_report_collect(&rep, t, &err)) {
    fprintf(stderr, "qmesh summary: %s\n", err.msg);
    code = 1;
  } else {
    struct qm_text out;
    qm_text_init(&out, 1 << 20);
    if (json) qm_report_json(&rep, &out);
    else qm_report_text(&rep, &out);
    fwrite(out.buf, 1, out.len, stdout);
    qm_text_free(&out);
  }
  qm_rpc_shutdown();
  qm_topology_free(t);
  return code;
}

struct verify_ctx {
  const struct qm_topology *t;
  struct qm_key **keys;
  struct qm_root_cache *cache;
};

static int verify_record(void *arg, const uint8_t *rec, size_t len, uint64_t index, char *why, size_t cap) {
  (void)index;
  struct verify_ctx *v = arg;
  struct qm_vote vote;
  return qm_report_check(rec, len, v->t, v->keys, v->cache, &vote, why, cap) == QM_REPORT_OK ? 0 : -1;
}

/* qmesh audit verify LOG: the chain and every signature, offline. */
int qm_cmd_audit(int argc, char **argv) {
  static const struct option longs[] = {{"topology", required_argument, NULL, 't'},
                                        {"keys", required_argument, NULL, 'k'},
                                        {"help", no_argument, NULL, 'h'},
                                        {NULL, 0, NULL, 0}};
  const char *topology = NULL, *keys_dir = NULL;
  int c;
  while ((c = getopt_long(argc, argv, "t:k:h", longs, NULL)) != -1) {
    switch (c) {
      case 't': topology = optarg; break;
      case 'k': keys_dir = optarg; break;
      case 'h':
        printf("usage: qmesh audit verify LOG [--topology FILE] [--keys DIR]\n"
               "Checks the hash chain and every provider signature of an auditor's log offline,\n"
               "with the providers' public keys (DIR/<id>.pub, or the topology's keys), and names\n"
               "the first bad record.\n");
        return 0;
      default: return 2;
    }
  }
  if (argc - optind != 2 || strcmp(argv[optind], "verify") != 0) {
    fprintf(stderr, "usage: qmesh audit verify LOG [--topology FILE] [--keys DIR]\n");
    return 2;
  }
  const char *log = argv[optind + 1];
  struct qm_topology *t = qm_load_topology_arg("qmesh audit", topology);
  if (!t) return 1;
  struct qm_err err = {0};
  struct verify_ctx v = {t, calloc(t->nproviders, sizeof(struct qm_key *)), calloc(1, sizeof(struct qm_root_cache))};
  int code = v.keys && v.cache ? 0 : 1;
  for (size_t i = 0; !code && i < t->nproviders; i++) {
    char path[QM_PATH_MAX + QM_ID_MAX + 8];
    const char *dir = keys_dir ? keys_dir : t->keys_dir;
    if (!keys_dir && t->providers[i].public_key[0]) snprintf(path, sizeof path, "%s", t->providers[i].public_key);
    else snprintf(path, sizeof path, "%s/%s.pub", dir[0] ? dir : ".", t->providers[i].ep.id);
    if (qm_key_load_public(path, &v.keys[i], &err)) {
      fprintf(stderr, "qmesh audit: %s\n", err.msg);
      code = 1;
    }
  }
  struct qm_audit_scan scan;
  if (!code && qm_audit_log_scan(log, verify_record, &v, &scan, &err)) {
    fprintf(stderr, "%s\n", err.msg);
    code = 1;
  } else if (!code && access(log, R_OK) != 0) {
    fprintf(stderr, "%s: %s\n", log, strerror(errno));
    code = 1;
  } else if (!code && scan.torn_bytes) {
    fprintf(stderr, "%s: %llu intact records, then an incomplete record of %llu bytes at byte %llu (a crash "
                    "mid-append; the auditor cuts it when it starts)\n",
            log, (unsigned long long)scan.records, (unsigned long long)scan.torn_bytes,
            (unsigned long long)scan.good_bytes);
    code = 1;
  } else if (!code) {
    char hex[65];
    qm_hex(scan.last_hash, 32, hex);
    printf("%s: ok: %llu records, hash chain intact, every signature verifies; head %s\n", log,
           (unsigned long long)scan.records, hex);
  }
  for (size_t i = 0; v.keys && i < t->nproviders; i++) qm_key_free(v.keys[i]);
  free(v.keys);
  free(v.cache);
  qm_topology_free(t);
  return code;
}

/* qmesh certs: a CA and a certificate per instance (and one for requesters and tools). */
int qm_cmd_certs(int argc, char **argv) {
  static const struct option longs[] = {{"topology", required_argument, NULL, 't'},
                                        {"out", required_argument, NULL, 'o'},
                                        {"days", required_argument, NULL, 'd'},
                                        {"help", no_argument, NULL, 'h'},
                                        {NULL, 0, NULL, 0}};
  const char *topology = NULL, *out = "certs";
  uint64_t days = 365;
  int c;
  while ((c = getopt_long(argc, argv, "t:o:d:h", longs, NULL)) != -1) {
    switch (c) {
      case 't': topology = optarg; break;
      case 'o': out = optarg; break;
      case 'd':
        if (qm_parse_u64(optarg, &days) || days == 0 || days > 36500) {
          fprintf(stderr, "qmesh certs: --days '%s': expected 1..36500\n", optarg);
          return 2;
        }
        break;
      case 'h':
        printf("usage: qmesh certs [--topology FILE] [--out DIR] [--days N]\n"
               "Writes DIR/ca.crt, ca.key and <id>.crt/<id>.key for every instance of the topology\n"
               "and for \"%s\" (requesters and the qmesh tool). The certificate identity is the id.\n"
               "Point the topology's tls section at them: tls: { ca: DIR/ca.crt, certs_dir: DIR }\n",
               QM_REQUESTER_ID);
        return 0;
      default: return 2;
    }
  }
  struct qm_topology *t = NULL;
  struct qm_err err = {0};
  /* No TLS setup here: the certificates may not exist yet. */
  int rc = topology ? qm_topology_load(topology, NULL, &t, &err)
                    : qm_topology_load_buffer("<built-in>", qm_default_topology_yaml, qm_default_topology_yaml_len,
                                              NULL, &t, &err);
  if (rc) {
    fprintf(stderr, "qmesh certs: %s\n", err.msg);
    return 1;
  }
  const char *ids[2 * QM_REGIONS_MAX + QM_PROVIDERS_MAX + 2];
  size_t n = 0;
  for (size_t i = 0; i < t->nregions; i++) {
    ids[n++] = t->regions[i].front.id;
    ids[n++] = t->regions[i].hub.id;
  }
  for (size_t i = 0; i < t->nproviders; i++) ids[n++] = t->providers[i].ep.id;
  ids[n++] = t->auditor.id;
  ids[n++] = QM_REQUESTER_ID;
  int code = 0;
  if (mkdir(out, 0700) != 0 && errno != EEXIST) {
    fprintf(stderr, "qmesh certs: mkdir %s: %s\n", out, strerror(errno));
    code = 1;
  } else if (qm_certs_make(out, ids, n, (unsigned)days, &err)) {
    fprintf(stderr, "qmesh certs: %s\n", err.msg);
    code = 1;
  } else {
    printf("%s: ca.crt and %zu certificates (valid %llu days)\n", out, n, (unsigned long long)days);
  }
  qm_topology_free(t);
  return code;
}
